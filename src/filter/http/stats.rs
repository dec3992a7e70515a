//! `http.<stat_prefix>.*` (the connection manager) and the router's dynamic per-cluster
//! response-code stats (`cluster.<c>.upstream_rq_<code>`, `upstream_rq_<N>xx`,
//! `retry.upstream_rq_<code>`), created on first use.

use std::sync::OnceLock;

use crate::define_stats;
use crate::stats::{Counter, Histogram, HistogramUnit, Store};

define_stats! {
    /// `http.<stat_prefix>.*`, Envoy's HCM stats.
    pub struct HcmStats {
        counter downstream_cx_total,
        counter downstream_cx_ssl_total,
        counter downstream_cx_http1_total,
        counter downstream_cx_http2_total,
        counter downstream_cx_http3_total,
        counter downstream_cx_upgrades_total,
        counter downstream_cx_destroy,
        counter downstream_cx_destroy_remote,
        counter downstream_cx_destroy_local,
        counter downstream_cx_destroy_active_rq,
        counter downstream_cx_destroy_local_active_rq,
        counter downstream_cx_destroy_remote_active_rq,
        gauge downstream_cx_active,
        gauge downstream_cx_ssl_active,
        gauge downstream_cx_http1_active,
        gauge downstream_cx_http2_active,
        gauge downstream_cx_http3_active,
        gauge downstream_cx_upgrades_active,
        counter downstream_cx_protocol_error,
        histogram downstream_cx_length_ms: Milliseconds,
        counter downstream_cx_rx_bytes_total,
        gauge downstream_cx_rx_bytes_buffered,
        counter downstream_cx_tx_bytes_total,
        gauge downstream_cx_tx_bytes_buffered,
        counter downstream_cx_drain_close,
        counter downstream_cx_idle_timeout,
        counter downstream_cx_max_duration_reached,
        counter downstream_cx_max_requests_reached,
        counter downstream_cx_overload_disable_keepalive,
        counter downstream_flow_control_paused_reading_total,
        counter downstream_flow_control_resumed_reading_total,
        counter downstream_rq_total,
        counter downstream_rq_http1_total,
        counter downstream_rq_http2_total,
        counter downstream_rq_http3_total,
        gauge downstream_rq_active,
        counter downstream_rq_rejected_via_ip_detection,
        counter downstream_rq_response_before_rq_complete,
        counter downstream_rq_rx_reset,
        counter downstream_rq_tx_reset,
        counter downstream_rq_non_relative_path,
        counter downstream_rq_too_large,
        counter downstream_rq_completed,
        counter downstream_rq_failed_path_normalization,
        counter downstream_rq_1xx,
        counter downstream_rq_2xx,
        counter downstream_rq_3xx,
        counter downstream_rq_4xx,
        counter downstream_rq_5xx,
        counter downstream_rq_ws_on_non_ws_route,
        histogram downstream_rq_time: Milliseconds,
        counter downstream_rq_idle_timeout,
        counter downstream_rq_max_duration_reached,
        counter downstream_rq_timeout,
        counter downstream_rq_overload_close,
        counter downstream_rq_redirected_with_normalized_path,
        counter downstream_rq_header_timeout,
        counter rs_too_large,
        counter no_route,
        counter no_cluster,
        counter rq_redirect,
        counter rq_direct_response,
        counter rq_total,
        counter rq_reset_after_downstream_response_started,
        counter rq_overload_local_reply,
        counter passthrough_internal_redirect_bad_location,
        counter passthrough_internal_redirect_no_route,
        counter passthrough_internal_redirect_predicate,
        counter passthrough_internal_redirect_too_many_redirects,
        counter passthrough_internal_redirect_unsafe_scheme,
    }
}

define_stats! {
    /// `listener.<address>.http.<stat_prefix>.*`: the HCM's per-listener response stats.
    pub struct HcmListenerStats {
        counter downstream_rq_completed,
        counter downstream_rq_1xx,
        counter downstream_rq_2xx,
        counter downstream_rq_3xx,
        counter downstream_rq_4xx,
        counter downstream_rq_5xx,
    }
}

/// The `downstream_rq_<N>xx` counter of a status code, from the five in order.
fn class_of(status: u16, classes: [&Counter; 5]) -> Option<&Counter> {
    let i = usize::from(status / 100).checked_sub(1)?;
    classes.get(i).copied()
}

impl HcmListenerStats {
    pub fn class(&self, status: u16) -> Option<&Counter> {
        class_of(
            status,
            [
                &self.downstream_rq_1xx,
                &self.downstream_rq_2xx,
                &self.downstream_rq_3xx,
                &self.downstream_rq_4xx,
                &self.downstream_rq_5xx,
            ],
        )
    }
}

impl HcmStats {
    /// `downstream_rq_<N>xx` for a status code.
    pub fn class(&self, status: u16) -> Option<&Counter> {
        class_of(
            status,
            [
                &self.downstream_rq_1xx,
                &self.downstream_rq_2xx,
                &self.downstream_rq_3xx,
                &self.downstream_rq_4xx,
                &self.downstream_rq_5xx,
            ],
        )
    }
}

/// Counters named by a status code under one prefix, created on first use.
pub struct CodeStats {
    store: Store,
    prefix: String,
    codes: Box<[OnceLock<Counter>]>,
    classes: [OnceLock<Counter>; 5],
}

impl CodeStats {
    /// `prefix` ends with `upstream_rq_` (e.g. `cluster.x.upstream_rq_`).
    pub fn new(store: &Store, prefix: String) -> CodeStats {
        CodeStats {
            store: store.clone(),
            prefix,
            codes: (100..600).map(|_| OnceLock::new()).collect(),
            classes: Default::default(),
        }
    }

    pub fn charge(&self, status: u16) {
        if !(100..600).contains(&status) {
            return;
        }
        self.codes[usize::from(status - 100)]
            .get_or_init(|| self.store.counter(&format!("{}{status}", self.prefix)))
            .inc();
        let class = usize::from(status / 100 - 1);
        self.classes[class].get_or_init(|| self.store.counter(&format!("{}{}xx", self.prefix, class + 1))).inc();
    }
}

/// The router's per-cluster HTTP stats.
pub struct ClusterHttpStats {
    codes: CodeStats,
    retry_codes: CodeStats,
    retry_completed: Counter,
    pub upstream_rq_time: Histogram,
}

impl ClusterHttpStats {
    pub fn new(store: &Store, cluster_stat_name: &str) -> ClusterHttpStats {
        let p = format!("cluster.{cluster_stat_name}.");
        ClusterHttpStats {
            codes: CodeStats::new(store, format!("{p}upstream_rq_")),
            retry_codes: CodeStats::new(store, format!("{p}retry.upstream_rq_")),
            retry_completed: store.counter(&format!("{p}retry.upstream_rq_completed")),
            upstream_rq_time: store.histogram(&format!("{p}upstream_rq_time"), HistogramUnit::Milliseconds),
        }
    }

    /// The final response of a request (Envoy's `chargeUpstreamCode`): `upstream_rq_<code>`,
    /// `upstream_rq_<N>xx` and `upstream_rq_completed`, local 503/504s included.
    pub fn charge(&self, cluster: &crate::upstream::cluster::Cluster, status: u16) {
        self.codes.charge(status);
        cluster.stats.upstream_rq_completed.inc();
    }

    /// A response that was retried: under `retry.`.
    pub fn charge_retry(&self, status: u16) {
        self.retry_codes.charge(status);
        self.retry_completed.inc();
    }
}
