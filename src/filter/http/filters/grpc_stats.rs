//! `envoy.filters.http.grpc_stats`: per-cluster (and optionally per-method) gRPC call and
//! message counts, as Envoy's `GrpcStatsFilter` and `Grpc::ContextImpl`:
//!
//! - a request is gRPC when its `content-type` is `application/grpc` or `application/grpc+…`;
//!   it is tracked when a route chose a cluster and its path is `/<service>/<method>` (query
//!   stripped, empty segments skipped);
//! - stats go to `cluster.<c>.grpc.<service>.<method>.` when `stats_for_all_methods` is true or
//!   the method is allowlisted, else to `cluster.<c>.grpc.` (stats_for_all_methods defaults to
//!   false: invalid paths are then not tracked at all with `stats_for_all_methods: true`, and
//!   counted generically otherwise, as Envoy);
//! - each `grpc-status` seen (trailers-only headers, then trailers) counts `<status>`,
//!   `success` (status 0) or `failure`, and `total`; message counts come from the
//!   length-prefixed framing of both bodies.
//!
//! Clusters and methods are not known up front, so the handles are created on first use in a
//! concurrent map capped by runtime `legate.grpc_stats.max_methods` (1024): past it a call is
//! counted under `cluster.<c>.grpc.` and in `http.<hcm prefix>.grpc_stats.method_overflow`.
//! `grpc-status` values outside 0..=16 count in success/failure/total only (Envoy would make a
//! stat per string the upstream sends). `emit_filter_state` is accepted: Legate has no filter
//! state to write to.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use legate_codecs::grpc::MessageCounter;
use parking_lot::{Mutex, RwLock};

use super::{HttpFilterFactory, RouteInfo, StreamEnd, StreamFilter};
use crate::config::http_filters::{GrpcStatsConfig, PerMethodStats};
use crate::define_stats;
use crate::runtime::Runtime;
use crate::stats::{Counter, Histogram, HistogramUnit, Store};

const MAX_METHODS_KEY: &str = "legate.grpc_stats.max_methods";
const DEFAULT_MAX_METHODS: usize = 1024;
/// gRPC's status codes run 0 (OK) to 16 (UNAUTHENTICATED).
const STATUS_CODES: usize = 17;

define_stats! {
    /// `http.<hcm prefix>.grpc_stats.*` (Legate only).
    pub struct GrpcStatsOverflow {
        counter method_overflow,
    }
}

/// The stats of one (cluster, service, method) or one cluster's generic `grpc.` prefix.
pub struct CallStats {
    prefix: String,
    success: OnceLock<Counter>,
    failure: OnceLock<Counter>,
    total: OnceLock<Counter>,
    request_message_count: OnceLock<Counter>,
    response_message_count: OnceLock<Counter>,
    upstream_rq_time: OnceLock<Histogram>,
    by_status: [OnceLock<Counter>; STATUS_CODES],
    store: Store,
}

impl CallStats {
    fn new(store: &Store, prefix: String) -> CallStats {
        // Envoy creates each of these on first use (a call that never failed has no `failure`).
        CallStats {
            success: OnceLock::new(),
            failure: OnceLock::new(),
            total: OnceLock::new(),
            request_message_count: OnceLock::new(),
            response_message_count: OnceLock::new(),
            upstream_rq_time: OnceLock::new(),
            by_status: std::array::from_fn(|_| OnceLock::new()),
            store: store.clone(),
            prefix,
        }
    }

    fn counter<'a>(&self, cell: &'a OnceLock<Counter>, name: &str) -> &'a Counter {
        cell.get_or_init(|| self.store.counter(&format!("{}{name}", self.prefix)))
    }

    /// `ContextImpl::chargeStat` for one `grpc-status` value.
    fn charge(&self, status: &[u8]) {
        let code = std::str::from_utf8(status).ok().and_then(|s| s.parse::<usize>().ok());
        if let Some(code) = code.filter(|c| *c < STATUS_CODES) {
            self.counter(&self.by_status[code], &code.to_string()).inc();
        }
        if status == b"0" {
            self.counter(&self.success, "success").inc();
        } else {
            self.counter(&self.failure, "failure").inc();
        }
        self.counter(&self.total, "total").inc();
    }

    fn request_messages(&self, n: u64) {
        self.counter(&self.request_message_count, "request_message_count").add(n);
    }

    fn response_messages(&self, n: u64) {
        self.counter(&self.response_message_count, "response_message_count").add(n);
    }

    fn upstream_time(&self, ms: u64) {
        self.upstream_rq_time
            .get_or_init(|| {
                self.store.histogram(&format!("{}upstream_rq_time", self.prefix), HistogramUnit::Milliseconds)
            })
            .record(ms);
    }
}

/// service → method → stats.
type Methods = HashMap<String, HashMap<String, Arc<CallStats>>>;

struct ClusterEntry {
    generic: Arc<CallStats>,
    methods: RwLock<Methods>,
}

struct Shared {
    per_method: PerMethodStats,
    enable_upstream_stats: bool,
    replace_dots: bool,
    clusters: RwLock<HashMap<String, Arc<ClusterEntry>>>,
    /// Method entries created so far (all clusters), against `max_methods`.
    methods: Mutex<usize>,
    max_methods: usize,
    overflow: GrpcStatsOverflow,
    store: Store,
}

/// The factory.
pub struct GrpcStats(Arc<Shared>);

impl GrpcStats {
    pub fn new(cfg: &GrpcStatsConfig, store: &Store, hcm_stat_prefix: &str, rt: &Runtime) -> GrpcStats {
        let max_methods =
            rt.get_u64(MAX_METHODS_KEY).map_or(DEFAULT_MAX_METHODS, |n| usize::try_from(n).unwrap_or(usize::MAX));
        GrpcStats(Arc::new(Shared {
            per_method: cfg.per_method.clone(),
            enable_upstream_stats: cfg.enable_upstream_stats,
            replace_dots: cfg.replace_dots_in_grpc_service_name,
            clusters: RwLock::default(),
            methods: Mutex::new(0),
            max_methods,
            overflow: GrpcStatsOverflow::new(store, &format!("http.{hcm_stat_prefix}.grpc_stats.")),
            store: store.clone(),
        }))
    }

    pub fn filter(&self) -> GrpcStatsFilter {
        GrpcStatsFilter {
            shared: self.0.clone(),
            stats: None,
            grpc_request: false,
            grpc_response: false,
            status_seen: false,
            request: MessageCounter::new(),
            response: MessageCounter::new(),
        }
    }
}

impl HttpFilterFactory for GrpcStats {
    fn create(&self) -> Box<dyn StreamFilter> {
        Box::new(self.filter())
    }
}

/// `Grpc::Common::resolveServiceAndMethod`: `/<service>/<method>`, query stripped, empty
/// segments skipped.
pub fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let path = path.split('?').next().unwrap_or("");
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let (svc, method) = (parts.next()?, parts.next()?);
    parts.next().is_none().then_some((svc, method))
}

/// `Grpc::Common::hasGrpcContentType`: exactly `application/grpc` or `application/grpc+…`.
pub fn is_grpc_content_type(v: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    v.starts_with(GRPC) && (v.len() == GRPC.len() || v[GRPC.len()] == b'+')
}

impl Shared {
    fn cluster(&self, cluster: &str) -> Arc<ClusterEntry> {
        if let Some(c) = self.clusters.read().get(cluster) {
            return c.clone();
        }
        // Clusters come from the config (routes name them), so this map is bounded by it.
        self.clusters
            .write()
            .entry(cluster.to_string())
            .or_insert_with(|| {
                Arc::new(ClusterEntry {
                    generic: Arc::new(CallStats::new(&self.store, format!("cluster.{cluster}.grpc."))),
                    methods: RwLock::default(),
                })
            })
            .clone()
    }

    fn method(&self, cluster: &str, c: &ClusterEntry, svc: &str, method: &str) -> Arc<CallStats> {
        if let Some(s) = c.methods.read().get(svc).and_then(|m| m.get(method)) {
            return s.clone();
        }
        let mut methods = c.methods.write();
        if let Some(s) = methods.get(svc).and_then(|m| m.get(method)) {
            return s.clone();
        }
        let mut created = self.methods.lock();
        if *created >= self.max_methods {
            self.overflow.method_overflow.inc();
            return c.generic.clone();
        }
        *created += 1;
        let stat_svc = if self.replace_dots { svc.replace('.', "_") } else { svc.to_string() };
        let s = Arc::new(CallStats::new(&self.store, format!("cluster.{cluster}.grpc.{stat_svc}.{method}.")));
        methods.entry(svc.to_string()).or_default().insert(method.to_string(), s.clone());
        s
    }

    /// The stats a request counts in, or `None` when Envoy does not track it.
    fn resolve(&self, cluster: &str, path: &str) -> Option<Arc<CallStats>> {
        let (svc, method) = service_and_method(path)?;
        let c = self.cluster(cluster);
        let per_method = match &self.per_method {
            PerMethodStats::All => true,
            PerMethodStats::Allowlist(list) => list.iter().any(|(s, ms)| s == svc && ms.iter().any(|m| m == method)),
            PerMethodStats::None => false,
        };
        Some(if per_method { self.method(cluster, &c, svc, method) } else { c.generic.clone() })
    }
}

/// One stream.
pub struct GrpcStatsFilter {
    shared: Arc<Shared>,
    stats: Option<Arc<CallStats>>,
    grpc_request: bool,
    grpc_response: bool,
    /// A `grpc-status` was charged (the call ended as far as gRPC is concerned).
    status_seen: bool,
    request: MessageCounter,
    response: MessageCounter,
}

impl StreamFilter for GrpcStatsFilter {
    fn on_request_headers(&mut self, req: &mut http::request::Parts, route: &RouteInfo<'_>) -> super::RequestVerdict {
        self.grpc_request =
            req.headers.get(http::header::CONTENT_TYPE).is_some_and(|v| is_grpc_content_type(v.as_bytes()));
        if self.grpc_request {
            if let Some(cluster) = route.cluster {
                self.stats = self.shared.resolve(cluster, req.uri.path_and_query().map_or("/", |p| p.as_str()));
            }
        }
        super::RequestVerdict::default()
    }

    fn on_request_data(&mut self, data: &[u8]) {
        if self.grpc_request {
            let n = self.request.feed(data);
            if let Some(s) = self.stats.as_ref().filter(|_| n > 0) {
                s.request_messages(n);
            }
        }
    }

    fn on_response_headers(&mut self, resp: &mut http::response::Parts) {
        let status = resp.headers.get("grpc-status");
        // `isGrpcResponseHeaders`: trailers-only (grpc-status in the headers), or 200 + gRPC type.
        self.grpc_response = status.is_some()
            || (resp.status == http::StatusCode::OK
                && resp.headers.get(http::header::CONTENT_TYPE).is_some_and(|v| is_grpc_content_type(v.as_bytes())));
        if let (Some(s), Some(status)) = (&self.stats, status) {
            s.charge(status.as_bytes());
            self.status_seen = true;
        }
    }

    fn on_response_data(&mut self, data: &[u8]) {
        if self.grpc_response {
            let n = self.response.feed(data);
            if let Some(s) = self.stats.as_ref().filter(|_| n > 0) {
                s.response_messages(n);
            }
        }
    }

    fn on_response_trailers(&mut self, trailers: &http::HeaderMap) {
        if !self.grpc_request {
            return;
        }
        if let (Some(s), Some(status)) = (&self.stats, trailers.get("grpc-status")) {
            s.charge(status.as_bytes());
            self.status_seen = true;
        }
    }

    fn on_complete(&mut self, end: &StreamEnd<'_>) {
        if !self.shared.enable_upstream_stats || !self.status_seen {
            return;
        }
        if let (Some(s), Some(t)) = (&self.stats, end.upstream_time) {
            s.upstream_time(u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
        }
    }
}
