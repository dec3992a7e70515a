//! `redis.<stat_prefix>.*` (Envoy's redis_proxy stats) and `cluster.<c>.redis_cluster.*`.

use legate_codecs::redis::SUPPORTED;

use crate::define_stats;
use crate::stats::{Counter, Histogram, HistogramUnit, Store};

define_stats! {
    /// `redis.<stat_prefix>.*`.
    pub struct ProxyStats {
        gauge downstream_cx_active,
        counter downstream_cx_protocol_error,
        gauge downstream_cx_rx_bytes_buffered,
        counter downstream_cx_rx_bytes_total,
        counter downstream_cx_total,
        gauge downstream_cx_tx_bytes_buffered,
        counter downstream_cx_tx_bytes_total,
        counter downstream_cx_drain_close,
        gauge downstream_rq_active,
        counter downstream_rq_total,
        counter downstream_rq_noproto,
    }
}

define_stats! {
    /// `redis.<stat_prefix>.splitter.*`.
    pub struct SplitterStats {
        counter invalid_request,
        counter unsupported_command,
    }
}

define_stats! {
    /// `cluster.<name>.redis_cluster.*`, created for each cluster a redis_proxy routes to.
    pub struct RedisClusterStats {
        counter max_upstream_unknown_connections_reached,
        counter upstream_cx_drained,
        counter connection_rate_limited,
        counter upstream_resp3_hello_failure,
    }
}

/// `redis.<stat_prefix>.command.<cmd>.*` for one command.
#[derive(Clone, Debug)]
pub struct CommandStats {
    pub total: Counter,
    pub success: Counter,
    pub error: Counter,
    pub error_fault: Counter,
    pub delay_fault: Counter,
    pub latency: Histogram,
}

impl CommandStats {
    fn new(store: &Store, prefix: &str, unit: HistogramUnit) -> CommandStats {
        CommandStats {
            total: store.counter(&format!("{prefix}total")),
            success: store.counter(&format!("{prefix}success")),
            error: store.counter(&format!("{prefix}error")),
            error_fault: store.counter(&format!("{prefix}error_fault")),
            delay_fault: store.counter(&format!("{prefix}delay_fault")),
            latency: store.histogram(&format!("{prefix}latency"), unit),
        }
    }

    /// One per supported command, indexed like `SUPPORTED`, all created at zero (as Envoy does
    /// when the filter is built). The set is fixed, so clients cannot grow it.
    pub fn all(store: &Store, stat_prefix: &str, micros: bool) -> Vec<CommandStats> {
        let unit = if micros { HistogramUnit::Microseconds } else { HistogramUnit::Milliseconds };
        SUPPORTED
            .iter()
            .map(|(name, _)| CommandStats::new(store, &format!("{stat_prefix}command.{name}."), unit))
            .collect()
    }
}
