//! `cluster.<name>.` and `cluster_manager.` stats, declared once (Envoy's names).

use crate::define_stats;

define_stats! {
    /// `cluster.<name>.*`: the connection, request and membership trees Envoy creates at zero.
    pub struct ClusterStats {
        counter upstream_cx_total,
        gauge upstream_cx_active,
        counter upstream_cx_http1_total,
        counter upstream_cx_http2_total,
        counter upstream_cx_http3_total,
        counter upstream_cx_connect_fail,
        counter upstream_cx_connect_timeout,
        counter upstream_cx_connect_with_0_rtt,
        counter upstream_cx_idle_timeout,
        counter upstream_cx_max_duration_reached,
        counter upstream_cx_connect_attempts_exceeded,
        counter upstream_cx_overflow,
        histogram upstream_cx_connect_ms: Milliseconds,
        histogram upstream_cx_length_ms: Milliseconds,
        counter upstream_cx_destroy,
        counter upstream_cx_destroy_local,
        counter upstream_cx_destroy_remote,
        counter upstream_cx_destroy_with_active_rq,
        counter upstream_cx_destroy_local_with_active_rq,
        counter upstream_cx_destroy_remote_with_active_rq,
        counter upstream_cx_close_notify,
        counter upstream_cx_rx_bytes_total,
        gauge upstream_cx_rx_bytes_buffered,
        counter upstream_cx_tx_bytes_total,
        gauge upstream_cx_tx_bytes_buffered,
        counter upstream_cx_pool_overflow,
        counter upstream_cx_preconnect_skipped,
        counter upstream_http3_broken,
        gauge upstream_queue_overloaded,
        counter upstream_cx_protocol_error,
        counter upstream_cx_max_requests,
        counter upstream_cx_none_healthy,
        counter upstream_rq_total,
        counter upstream_rq_0rtt,
        gauge upstream_rq_active,
        counter upstream_rq_active_overflow,
        counter upstream_rq_completed,
        histogram upstream_rq_per_cx: Unspecified,
        counter upstream_rq_rx_reset_no_error,
        counter upstream_rq_pending_total,
        counter upstream_rq_pending_overflow,
        counter upstream_rq_pending_failure_eject,
        gauge upstream_rq_pending_active,
        counter upstream_rq_cancelled,
        counter upstream_rq_maintenance_mode,
        counter upstream_rq_timeout,
        counter upstream_rq_max_duration_reached,
        counter upstream_rq_per_try_timeout,
        counter upstream_rq_per_try_idle_timeout,
        counter upstream_rq_rx_reset,
        counter upstream_rq_tx_reset,
        counter upstream_rq_retry,
        counter upstream_rq_retry_backoff_exponential,
        counter upstream_rq_retry_backoff_ratelimited,
        counter upstream_rq_retry_limit_exceeded,
        counter upstream_rq_retry_success,
        counter upstream_rq_retry_overflow,
        counter upstream_flow_control_paused_reading_total,
        counter upstream_flow_control_resumed_reading_total,
        counter upstream_flow_control_backed_up_total,
        counter upstream_flow_control_drained_total,
        counter upstream_internal_redirect_failed_total,
        counter upstream_internal_redirect_succeeded_total,
        counter membership_change,
        gauge membership_healthy,
        gauge membership_degraded,
        gauge membership_excluded,
        gauge membership_total,
        counter retry_or_shadow_abandoned,
        counter update_attempt,
        counter update_success,
        counter update_failure,
        counter update_empty,
        counter update_no_rebuild,
        gauge version,
        gauge max_host_weight,
        counter bind_errors,
        counter assignment_timeout_received,
        counter assignment_stale,
        counter assignment_use_cached,
        gauge warming_state,
        gauge lb_subsets_active,
        counter lb_subsets_created,
        counter lb_subsets_fallback,
        counter lb_subsets_fallback_panic,
        counter lb_subsets_removed,
        counter lb_subsets_selected,
        counter lb_healthy_panic,
        counter lb_local_cluster_not_ok,
        counter lb_recalculate_zone_structures,
        counter lb_zone_cluster_too_small,
        counter lb_zone_no_capacity_left,
        counter lb_zone_routing_all_directly,
        counter lb_zone_routing_cross_zone,
        counter lb_zone_routing_sampled,
        counter original_dst_host_invalid,
    }
}

define_stats! {
    /// `cluster.<name>.default.*` (the default transport-socket match).
    pub struct DefaultMatchStats {
        counter total_match_count,
    }
}

define_stats! {
    /// `cluster.<name>.circuit_breakers.<default|high>.*` (0/1 gauges).
    pub struct CircuitBreakerStats {
        gauge cx_open,
        gauge cx_pool_open,
        gauge rq_pending_open,
        gauge rq_open,
        gauge rq_retry_open,
    }
}

define_stats! {
    /// `cluster_manager.*`.
    pub struct ClusterManagerStats {
        counter cluster_added,
        counter cluster_modified,
        counter cluster_removed,
        counter cluster_updated,
        counter cluster_updated_via_merge,
        counter update_merge_cancelled,
        counter update_out_of_merge_window,
        gauge active_clusters,
        gauge warming_clusters,
    }
}
