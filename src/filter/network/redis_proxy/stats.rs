//! `redis.<stat_prefix>.*` (Envoy's redis_proxy stats) and `cluster.<c>.redis_cluster.*`.

use std::sync::OnceLock;

use legate_codecs::redis::{has_upstream_stat, SUPPORTED};

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

/// `cluster.<c>.redis_cluster.upstream_commands.<cmd>.{total,success,failure,latency}`
/// (`settings.enable_command_stats`), created the first time each is touched, as Envoy creates
/// them: `total` when a command is sent, `success`/`failure` with its first such reply, and the
/// `latency` histogram (microseconds) with its first reply. A command outside Envoy's named set
/// counts as `unknown`. The table is fixed (one slot per supported command), so clients cannot
/// grow it; after the first use each update is an atomic add.
pub struct UpstreamCommandStats {
    store: Store,
    prefix: String,
    slots: Vec<LazyCommand>,
}

#[derive(Default)]
struct LazyCommand {
    total: OnceLock<Counter>,
    success: OnceLock<Counter>,
    failure: OnceLock<Counter>,
    latency: OnceLock<Histogram>,
}

impl UpstreamCommandStats {
    /// `prefix` is `cluster.<c>.redis_cluster.upstream_commands.`.
    pub fn new(store: &Store, prefix: String) -> UpstreamCommandStats {
        let slots = (0..=SUPPORTED.len()).map(|_| LazyCommand::default()).collect();
        UpstreamCommandStats { store: store.clone(), prefix, slots }
    }

    /// The slot and stat name of a command (an index into `SUPPORTED`, or `None`).
    fn slot(&self, cmd: Option<usize>) -> (&LazyCommand, &'static str) {
        match cmd.and_then(|i| SUPPORTED.get(i).map(|(n, _)| (i, *n))) {
            Some((i, name)) if has_upstream_stat(name) => (&self.slots[i], name),
            _ => (&self.slots[SUPPORTED.len()], "unknown"),
        }
    }

    pub fn sent(&self, cmd: Option<usize>) {
        let (slot, name) = self.slot(cmd);
        slot.total.get_or_init(|| self.store.counter(&format!("{}{name}.total", self.prefix))).inc();
    }

    pub fn replied(&self, cmd: Option<usize>, success: bool, micros: u64) {
        let (slot, name) = self.slot(cmd);
        let (cell, leaf) = if success { (&slot.success, "success") } else { (&slot.failure, "failure") };
        cell.get_or_init(|| self.store.counter(&format!("{}{name}.{leaf}", self.prefix))).inc();
        slot.latency
            .get_or_init(|| {
                self.store.histogram(&format!("{}{name}.latency", self.prefix), HistogramUnit::Microseconds)
            })
            .record(micros);
    }
}
