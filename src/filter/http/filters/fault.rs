//! `envoy.filters.http.fault`: delays and aborts a percentage of requests, from the config or
//! from the caller's `x-envoy-fault-*` headers, as Envoy's `FaultFilter`.
//!
//! Envoy decides the abort when the delay timer fires; Legate decides both when the request
//! headers arrive (the same independent dice, the same outcome distribution) and counts the
//! abort in `on_delay_elapsed`, so a request abandoned during its delay is not counted as
//! aborted, as in Envoy. The `fault.http.*` runtime keys are read from the static runtime
//! layers once per generation (per-downstream-cluster keys included).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use http::HeaderMap;
use parking_lot::RwLock;

use super::headers::all_match;
use super::percent::{capped_by_header, hits, parse_u64, runtime_percent};
use super::{HttpFilterFactory, RequestVerdict, RouteInfo, StreamEnd, StreamFilter};
use crate::access_log::ResponseFlags;
use crate::config::http_filters::{
    FaultAbortKind, FaultConfig, FaultDelayKind, FractionalPercent, HeaderMatcherConfig,
};
use crate::define_stats;
use crate::filter::http::local_reply::LocalReply;
use crate::runtime::Runtime;
use crate::stats::{Counter, Store};

/// Envoy's fault headers (`Filters::Common::Fault::HeaderNames`).
pub const ABORT_REQUEST: &str = "x-envoy-fault-abort-request";
pub const ABORT_GRPC_REQUEST: &str = "x-envoy-fault-abort-grpc-request";
pub const ABORT_REQUEST_PERCENTAGE: &str = "x-envoy-fault-abort-request-percentage";
pub const DELAY_REQUEST: &str = "x-envoy-fault-delay-request";
pub const DELAY_REQUEST_PERCENTAGE: &str = "x-envoy-fault-delay-request-percentage";
const DOWNSTREAM_CLUSTER: &str = "x-envoy-downstream-service-cluster";
const DOWNSTREAM_NODE: &str = "x-envoy-downstream-service-node";

/// Envoy's abort body and `%RESPONSE_CODE_DETAILS%`.
pub const ABORT_BODY: &str = "fault filter abort";
pub const ABORT_DETAILS: &str = "fault_filter_abort";
/// A gRPC abort is answered with HTTP 200 plus the gRPC status.
const GRPC_ABORT_HTTP_STATUS: u16 = 200;

/// Per-downstream-cluster stats are capped (runtime `legate.fault.max_downstream_clusters`):
/// a client could otherwise invent cluster names without end.
const MAX_DOWNSTREAM_CLUSTERS_KEY: &str = "legate.fault.max_downstream_clusters";
const DEFAULT_MAX_DOWNSTREAM_CLUSTERS: usize = 100;

define_stats! {
    /// `http.<hcm prefix>.fault.*`.
    pub struct FaultStats {
        counter delays_injected,
        counter aborts_injected,
        counter faults_overflow,
        counter response_rl_injected,
        gauge active_faults,
        // Legate: downstream clusters past the cap, counted here instead of in their own stats.
        counter downstream_cluster_overflow,
    }
}

/// `http.<p>.fault.<downstream-cluster>.{delays,aborts}_injected`, each created on first use.
#[derive(Default)]
struct ClusterStats {
    delays: OnceLock<Counter>,
    aborts: OnceLock<Counter>,
}

/// The runtime overrides that apply to one downstream cluster (`fault.http.<dc>.*`).
#[derive(Debug, Default, Clone)]
struct ClusterOverrides {
    delay_percent: Option<FractionalPercent>,
    abort_percent: Option<FractionalPercent>,
    delay_ms: Option<u64>,
    http_status: Option<u64>,
    grpc_status: Option<u64>,
}

/// Generic runtime overrides (`fault.http.*` or the configured `*_runtime` keys).
#[derive(Debug, Default, Clone)]
struct Overrides {
    delay_percent: Option<FractionalPercent>,
    abort_percent: Option<FractionalPercent>,
    delay_ms: Option<u64>,
    http_status: Option<u64>,
    grpc_status: Option<u64>,
}

struct Shared {
    delay: Option<(FaultDelayKind, FractionalPercent)>,
    abort: Option<(FaultAbortKind, FractionalPercent)>,
    upstream_cluster: Option<String>,
    headers: Vec<HeaderMatcherConfig>,
    downstream_nodes: Vec<String>,
    max_active_faults: u64,
    overrides: Overrides,
    by_cluster: HashMap<String, ClusterOverrides>,
    disable_downstream_cluster_stats: bool,
    stats: FaultStats,
    cluster_stats: RwLock<HashMap<String, Arc<ClusterStats>>>,
    max_clusters: usize,
    store: Store,
    prefix: String,
}

/// The factory (one per HCM filter config).
pub struct Fault(Arc<Shared>);

/// Collects `fault.http.<dc>.<suffix>` keys from the runtime.
fn cluster_overrides(rt: &Runtime) -> HashMap<String, ClusterOverrides> {
    const SUFFIXES: &[&str] = &[
        ".delay.fixed_delay_percent",
        ".abort.abort_percent",
        ".delay.fixed_duration_ms",
        ".abort.http_status",
        ".abort.grpc_status",
    ];
    let mut out: HashMap<String, ClusterOverrides> = HashMap::new();
    for key in rt.entries.keys() {
        let Some(rest) = key.strip_prefix("fault.http.") else { continue };
        for (i, suffix) in SUFFIXES.iter().enumerate() {
            // A fraction is flattened to `<key>.numerator` / `<key>.denominator`.
            let base = rest.strip_suffix(".numerator").unwrap_or(rest);
            let Some(dc) = base.strip_suffix(suffix).filter(|d| !d.is_empty()) else { continue };
            let full = format!("fault.http.{dc}{suffix}");
            let e = out.entry(dc.to_string()).or_default();
            match i {
                0 => e.delay_percent = runtime_percent(rt, &full),
                1 => e.abort_percent = runtime_percent(rt, &full),
                2 => e.delay_ms = rt.get_u64(&full),
                3 => e.http_status = rt.get_u64(&full),
                _ => e.grpc_status = rt.get_u64(&full),
            }
        }
    }
    out
}

impl Fault {
    pub fn new(cfg: &FaultConfig, store: &Store, hcm_stat_prefix: &str, rt: &Runtime) -> Fault {
        let prefix = format!("http.{hcm_stat_prefix}.fault.");
        let k = &cfg.runtime;
        let overrides = Overrides {
            delay_percent: runtime_percent(rt, &k.delay_percent),
            abort_percent: runtime_percent(rt, &k.abort_percent),
            delay_ms: rt.get_u64(&k.delay_duration),
            http_status: rt.get_u64(&k.abort_http_status),
            grpc_status: rt.get_u64(&k.abort_grpc_status),
        };
        let max_active_faults = rt.get_u64(&k.max_active_faults).or(cfg.max_active_faults).unwrap_or(u64::MAX);
        let max_clusters = rt
            .get_u64(MAX_DOWNSTREAM_CLUSTERS_KEY)
            .map_or(DEFAULT_MAX_DOWNSTREAM_CLUSTERS, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Fault(Arc::new(Shared {
            delay: cfg.delay.as_ref().map(|d| (d.kind.clone(), d.percentage)),
            abort: cfg.abort.as_ref().map(|a| (a.kind, a.percentage)),
            upstream_cluster: cfg.upstream_cluster.clone(),
            headers: cfg.headers.clone(),
            downstream_nodes: cfg.downstream_nodes.clone(),
            max_active_faults,
            overrides,
            by_cluster: cluster_overrides(rt),
            disable_downstream_cluster_stats: cfg.disable_downstream_cluster_stats,
            stats: FaultStats::new(store, &prefix),
            cluster_stats: RwLock::default(),
            max_clusters,
            store: store.clone(),
            prefix,
        }))
    }

    /// A filter with its dice given (tests): `random()` is called once per percentage check.
    pub fn create_with_dice(&self, dice: Box<dyn FnMut() -> u64 + Send>) -> FaultFilter {
        FaultFilter { shared: self.0.clone(), active: false, pending_abort: None, dice }
    }
}

impl HttpFilterFactory for Fault {
    fn create(&self) -> Box<dyn StreamFilter> {
        Box::new(self.create_with_dice(Box::new(rand::random::<u64>)))
    }
}

impl Shared {
    fn cluster_stats(&self, dc: &str) -> Option<Arc<ClusterStats>> {
        if let Some(s) = self.cluster_stats.read().get(dc) {
            return Some(s.clone());
        }
        let mut map = self.cluster_stats.write();
        if let Some(s) = map.get(dc) {
            return Some(s.clone());
        }
        if map.len() >= self.max_clusters {
            self.stats.downstream_cluster_overflow.inc();
            return None;
        }
        let s = Arc::new(ClusterStats::default());
        map.insert(dc.to_string(), s.clone());
        Some(s)
    }

    fn count(&self, dc: Option<&str>, delay: bool) {
        if delay {
            self.stats.delays_injected.inc();
        } else {
            self.stats.aborts_injected.inc();
        }
        let Some(dc) = dc.filter(|d| !d.is_empty() && !self.disable_downstream_cluster_stats) else { return };
        let Some(s) = self.cluster_stats(dc) else { return };
        let (cell, stat) = if delay { (&s.delays, "delays_injected") } else { (&s.aborts, "aborts_injected") };
        cell.get_or_init(|| self.store.counter(&format!("{}{dc}.{stat}", self.prefix))).inc();
    }
}

/// The abort a request gets: HTTP status and, for gRPC aborts, the gRPC status.
type Abort = (u16, Option<u32>);

/// One stream's fault filter.
pub struct FaultFilter {
    shared: Arc<Shared>,
    /// Counted in `active_faults` (at most once per stream, as Envoy).
    active: bool,
    /// An abort decided at request time, sent once the delay has elapsed; carries the
    /// downstream cluster for its stats.
    pending_abort: Option<Option<String>>,
    dice: Box<dyn FnMut() -> u64 + Send>,
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    h.get(name).map(|v| v.as_bytes())
}

impl FaultFilter {
    fn roll(&mut self, p: FractionalPercent) -> bool {
        p.numerator > 0 && hits(p, (self.dice)())
    }

    /// `tryIncActiveFaults`: the overflow check happens only when a fault is about to start.
    fn try_inc_active(&mut self) -> bool {
        if self.active {
            return true;
        }
        let s = &self.shared;
        if s.stats.active_faults.value() >= s.max_active_faults {
            s.stats.faults_overflow.inc();
            return false;
        }
        s.stats.active_faults.inc();
        self.active = true;
        true
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.active) {
            self.shared.stats.active_faults.dec();
        }
    }

    fn delay_ms(&mut self, h: &HeaderMap, dc: Option<&ClusterOverrides>, in_dc: bool) -> Option<u64> {
        let shared = self.shared.clone();
        let (kind, configured) = shared.delay.as_ref()?;
        let (percent, config_ms) = match kind {
            FaultDelayKind::Fixed(d) => (*configured, Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
            FaultDelayKind::Header => (
                capped_by_header(*configured, header(h, DELAY_REQUEST_PERCENTAGE)),
                header(h, DELAY_REQUEST).and_then(parse_u64),
            ),
        };
        // With a downstream cluster, its key replaces the generic one (featureEnabled).
        let rt_percent = if in_dc { dc.and_then(|c| c.delay_percent) } else { shared.overrides.delay_percent };
        if !self.roll(rt_percent.unwrap_or(percent)) {
            return None;
        }
        let mut ms = shared.overrides.delay_ms.unwrap_or(config_ms?);
        if in_dc {
            ms = dc.and_then(|c| c.delay_ms).unwrap_or(ms);
        }
        (ms > 0).then_some(ms)
    }

    fn abort(&mut self, h: &HeaderMap, dc: Option<&ClusterOverrides>, in_dc: bool) -> Option<Abort> {
        let shared = self.shared.clone();
        let (kind, configured) = shared.abort.as_ref()?;
        let percent = match kind {
            FaultAbortKind::Header => capped_by_header(*configured, header(h, ABORT_REQUEST_PERCENTAGE)),
            _ => *configured,
        };
        let rt_percent = if in_dc { dc.and_then(|c| c.abort_percent) } else { shared.overrides.abort_percent };
        if !self.roll(rt_percent.unwrap_or(percent)) {
            return None;
        }
        let (config_http, config_grpc) = match kind {
            FaultAbortKind::Http(s) => (Some(u64::from(*s)), None),
            FaultAbortKind::Grpc(g) => (None, Some(u64::from(*g))),
            // `HeaderAbortProvider`: an HTTP status must be in [200, 600).
            FaultAbortKind::Header => (
                header(h, ABORT_REQUEST).and_then(parse_u64).filter(|c| (200..600).contains(c)),
                header(h, ABORT_GRPC_REQUEST).and_then(parse_u64),
            ),
        };
        // The HTTP status wins; the runtime may replace it (per downstream cluster: from the
        // configured value, as Envoy).
        if let Some(default) = config_http {
            let mut code = shared.overrides.http_status.unwrap_or(default);
            if in_dc {
                code = dc.and_then(|c| c.http_status).unwrap_or(default);
            }
            let code = u16::try_from(code).ok().filter(|c| (200..600).contains(c)).unwrap_or(default as u16);
            return Some((code, None));
        }
        let default = config_grpc?;
        let mut code = shared.overrides.grpc_status.unwrap_or(default);
        if in_dc {
            code = dc.and_then(|c| c.grpc_status).unwrap_or(default);
        }
        Some((GRPC_ABORT_HTTP_STATUS, Some(u32::try_from(code).unwrap_or(u32::MAX))))
    }

    fn reply((status, grpc): Abort, delayed: bool) -> LocalReply {
        let mut flags = ResponseFlags::FI;
        if delayed {
            flags.set(ResponseFlags::DI);
        }
        let mut r = LocalReply::new(status, ABORT_BODY, flags, ABORT_DETAILS);
        r.grpc_status = grpc;
        r
    }
}

impl StreamFilter for FaultFilter {
    fn on_request_headers(&mut self, req: &mut http::request::Parts, route: &RouteInfo<'_>) -> RequestVerdict {
        let shared = self.shared.clone();
        let h = &req.headers;
        if let Some(target) = &shared.upstream_cluster {
            if route.cluster != Some(target.as_str()) {
                return RequestVerdict::default();
            }
        }
        if !shared.downstream_nodes.is_empty() {
            let node = h.get(DOWNSTREAM_NODE).and_then(|v| v.to_str().ok());
            if !node.is_some_and(|n| shared.downstream_nodes.iter().any(|d| d == n)) {
                return RequestVerdict::default();
            }
        }
        if !all_match(h, &shared.headers) {
            return RequestVerdict::default();
        }
        let dc_name = h.get(DOWNSTREAM_CLUSTER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let in_dc = dc_name.is_some();
        let dc = dc_name.as_deref().and_then(|d| shared.by_cluster.get(d));
        let mut verdict = RequestVerdict::default();
        if let Some(ms) = self.delay_ms(h, dc, in_dc) {
            if self.try_inc_active() {
                shared.count(dc_name.as_deref(), true);
                verdict.delay = Some(std::time::Duration::from_millis(ms));
                if let Some(a) = self.abort(h, dc, in_dc) {
                    verdict.local_reply = Some(Self::reply(a, true));
                    self.pending_abort = Some(dc_name);
                }
                return verdict;
            }
        }
        if let Some(a) = self.abort(h, dc, in_dc) {
            if self.try_inc_active() {
                shared.count(dc_name.as_deref(), false);
                verdict.local_reply = Some(Self::reply(a, false));
            }
        }
        verdict
    }

    fn on_delay_elapsed(&mut self) {
        match self.pending_abort.take() {
            Some(dc) => self.shared.count(dc.as_deref(), false),
            // Envoy: a delay alone stops being an active fault once it has elapsed.
            None => self.release(),
        }
    }

    fn on_complete(&mut self, _end: &StreamEnd<'_>) {
        self.release();
    }
}

impl Drop for FaultFilter {
    fn drop(&mut self) {
        self.release();
    }
}
