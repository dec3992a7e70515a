//! The filters driven by plain `StreamFilter` call sequences, as the HCM will drive them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::percent::{capped_by_header, hits, runtime_percent};
use super::*;
use crate::access_log::ResponseFlags;
use crate::config::decode::{Cx, Obj};
use crate::config::http_filters::{decode_http_filter, FractionalPercent, HttpFilterConfig};
use crate::config::source;

fn cfg(yaml: &str) -> HttpFilterConfig {
    let (v, pos) = source::parse(yaml, false).expect("yaml");
    let cx = Cx::new(&pos, false);
    let out = Obj::new(&cx, "f", &v, "HttpFilter").and_then(|mut o| decode_http_filter(&mut o));
    let (errors, _) = cx.into_parts();
    assert!(errors.is_empty(), "{errors:?}");
    out.expect("filter")
}

fn rt(layer: serde_json::Value) -> Runtime {
    Runtime::from_config(&json!({"layers": [{"name": "static", "static_layer": layer}]}))
}

fn request(path: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::builder().method("POST").uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

fn response(status: u16, headers: &[(&str, &str)]) -> http::response::Parts {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("response").into_parts().0
}

const ROUTE: RouteInfo<'static> = RouteInfo { cluster: Some("backend"), route_name: None };

// ---------------------------------------------------------------- percentages

#[test]
fn percentage_math_follows_envoy() {
    let p = FractionalPercent { numerator: 25, denominator: 100 };
    assert!(hits(p, 0) && hits(p, 24) && !hits(p, 25) && hits(p, 124) && !hits(p, 199));
    let m = FractionalPercent { numerator: 1, denominator: 1_000_000 };
    assert!(hits(m, 1_000_000) && !hits(m, 1));
    assert!(!hits(FractionalPercent::ZERO, 0));
    // Numerators above the denominator always hit.
    assert!(hits(FractionalPercent { numerator: 200, denominator: 100 }, 99));
}

#[test]
fn header_percentage_caps_the_configured_one() {
    let c = FractionalPercent { numerator: 50, denominator: 10_000 };
    assert_eq!(capped_by_header(c, Some(b"10")).numerator, 10);
    assert_eq!(capped_by_header(c, Some(b"90")).numerator, 50);
    assert_eq!(capped_by_header(c, Some(b"x")), c);
    assert_eq!(capped_by_header(c, None), c);
    assert_eq!(capped_by_header(c, Some(b"10")).denominator, 10_000);
}

#[test]
fn runtime_percent_reads_integers_and_fractions() {
    let r = rt(json!({"a": 30, "b": 250, "c": {"numerator": 5, "denominator": "MILLION"}}));
    assert_eq!(runtime_percent(&r, "a"), Some(FractionalPercent { numerator: 30, denominator: 100 }));
    assert_eq!(runtime_percent(&r, "b"), Some(FractionalPercent { numerator: 100, denominator: 100 }));
    assert_eq!(runtime_percent(&r, "c"), Some(FractionalPercent { numerator: 5, denominator: 1_000_000 }));
    assert_eq!(runtime_percent(&r, "d"), None);
}

// ---------------------------------------------------------------- token bucket

#[derive(Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn token_bucket_starts_full_and_refills_continuously_up_to_max() {
    let clock = Arc::new(ManualClock::default());
    clock.advance(Duration::from_secs(5));
    // 2 tokens every second, at most 4.
    let b = TokenBucket::new(4, 2, Duration::from_secs(1), clock.clone());
    assert_eq!(b.available(), 4);
    assert!((0..4).all(|_| b.try_consume()));
    assert!(!b.try_consume());
    clock.advance(Duration::from_millis(499));
    assert!(!b.try_consume());
    clock.advance(Duration::from_millis(1));
    assert!(b.try_consume());
    assert!(!b.try_consume());
    // A long idle period refills to max_tokens, not beyond.
    clock.advance(Duration::from_secs(60));
    assert_eq!(b.available(), 4);
    assert_eq!((0..10).filter(|_| b.try_consume()).count(), 4);
}

#[test]
fn token_bucket_is_shared_across_threads_without_losing_or_inventing_tokens() {
    let clock = Arc::new(ManualClock::default());
    let b = Arc::new(TokenBucket::new(1000, 1, Duration::from_secs(3600), clock));
    let granted: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| (0..500).filter(|_| b.try_consume()).count())).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    assert_eq!(granted, 1000);
}

// ---------------------------------------------------------------- local_ratelimit

fn lrl(body: &str, runtime: &Runtime) -> (LocalRateLimit, Store, Arc<ManualClock>) {
    let HttpFilterConfig::LocalRateLimit(c) = cfg(&format!(
        "name: l\ntyped_config:\n  '@type': type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit\n  stat_prefix: lrl\n{body}"
    )) else {
        panic!("lrl")
    };
    let store = Store::new();
    let clock = Arc::new(ManualClock::default());
    (LocalRateLimit::new(&c, &store, runtime, clock.clone()), store, clock)
}

fn lrl_stats(store: &Store) -> [u64; 4] {
    ["enabled", "ok", "rate_limited", "enforced"]
        .map(|s| store.counter(&format!("lrl.http_local_rate_limit.{s}")).value())
}

const BUCKET_1: &str = "  token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s}\n";
const ALL_ON: &str =
    "  filter_enabled: {default_value: {numerator: 100}}\n  filter_enforced: {default_value: {numerator: 100}}\n";

#[test]
fn local_ratelimit_answers_429_when_the_bucket_is_empty() {
    let (f, store, clock) = lrl(
        &format!(
            "{BUCKET_1}{ALL_ON}  response_headers_to_add: [{{header: {{key: x-local-rate-limit, value: 'true'}}}}]"
        ),
        &Runtime::default(),
    );
    let mut req = request("/", &[]);
    assert!(f.create().on_request_headers(&mut req, &ROUTE).local_reply.is_none());
    let v = f.create().on_request_headers(&mut req, &ROUTE);
    let r = v.local_reply.expect("429");
    assert_eq!((r.status, &*r.body, &*r.details), (429, "local_rate_limited", "local_rate_limited"));
    assert!(r.flags.contains(ResponseFlags::RL));
    assert_eq!(r.grpc_status, None);
    // Envoy 1.40 sends only the configured extra headers (no x-envoy-ratelimited).
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["x-local-rate-limit"]);
    assert_eq!(lrl_stats(&store), [2, 1, 1, 1]);
    assert_eq!(store.counter("lrl.http_local_rate_limit.shadow_mode").value(), 0);
    clock.advance(Duration::from_secs(60));
    assert!(f.create().on_request_headers(&mut req, &ROUTE).local_reply.is_none());
}

#[test]
fn local_ratelimit_does_nothing_by_default_and_only_counts_when_not_enforced() {
    let (f, store, _) = lrl(BUCKET_1, &Runtime::default());
    let mut req = request("/", &[]);
    for _ in 0..3 {
        assert!(f.create().on_request_headers(&mut req, &ROUTE).local_reply.is_none());
    }
    assert_eq!(lrl_stats(&store), [0, 0, 0, 0]);

    let (f, store, _) = lrl(
        &format!("{BUCKET_1}  filter_enabled: {{default_value: {{numerator: 100}}}}\n  request_headers_to_add_when_not_enforced: [{{header: {{key: x-would-limit, value: 'yes'}}}}]"),
        &Runtime::default(),
    );
    let mut first = request("/", &[]);
    assert!(f.create().on_request_headers(&mut first, &ROUTE).local_reply.is_none());
    assert!(first.headers.get("x-would-limit").is_none());
    let mut second = request("/", &[]);
    assert!(f.create().on_request_headers(&mut second, &ROUTE).local_reply.is_none());
    assert_eq!(second.headers.get("x-would-limit").map(|v| v.as_bytes()), Some(&b"yes"[..]));
    assert_eq!(lrl_stats(&store), [2, 1, 1, 0]);
}

#[test]
fn local_ratelimit_runtime_keys_and_grpc_status() {
    let r = rt(json!({"lrl_on": 0}));
    let (f, store, _) =
        lrl(&format!("{BUCKET_1}  filter_enabled: {{runtime_key: lrl_on, default_value: {{numerator: 100}}}}"), &r);
    f.create().on_request_headers(&mut request("/", &[]), &ROUTE);
    assert_eq!(lrl_stats(&store), [0, 0, 0, 0]);
    let (f, _, _) = lrl(&format!("{BUCKET_1}{ALL_ON}  rate_limited_as_resource_exhausted: true"), &Runtime::default());
    f.create().on_request_headers(&mut request("/", &[]), &ROUTE);
    let reply = f.create().on_request_headers(&mut request("/", &[]), &ROUTE).local_reply.expect("reply");
    assert_eq!(reply.grpc_status, Some(8));
}

#[test]
fn local_ratelimit_without_bucket_allows_everything() {
    let (f, store, _) = lrl(ALL_ON, &Runtime::default());
    for _ in 0..5 {
        assert!(f.create().on_request_headers(&mut request("/", &[]), &ROUTE).local_reply.is_none());
    }
    assert_eq!(lrl_stats(&store), [5, 5, 0, 0]);
}

// ---------------------------------------------------------------- fault

fn fault(body: &str, runtime: &Runtime) -> (Fault, Store) {
    let HttpFilterConfig::Fault(c) = cfg(&format!(
        "name: f\ntyped_config:\n  '@type': type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n{body}"
    )) else {
        panic!("fault")
    };
    let store = Store::new();
    (Fault::new(&c, &store, "ing", runtime), store)
}

fn fstat(store: &Store, name: &str) -> u64 {
    store.counter(&format!("http.ing.fault.{name}")).value()
}

fn active(store: &Store) -> u64 {
    store.gauge("http.ing.fault.active_faults").value()
}

/// Dice that return `values` in turn (then 0).
fn dice(values: &[u64]) -> Box<dyn FnMut() -> u64 + Send> {
    let owned: Vec<u64> = values.to_vec();
    let mut v = owned.into_iter();
    Box::new(move || v.next().unwrap_or(0))
}

#[test]
fn fault_fixed_abort_replies_with_envoy_body_flag_and_details() {
    let (f, store) = fault("  abort: {http_status: 503, percentage: {numerator: 100}}", &Runtime::default());
    let mut flt = f.create();
    let v = flt.on_request_headers(&mut request("/", &[]), &ROUTE);
    assert_eq!(v.delay, None);
    let r = v.local_reply.expect("abort");
    assert_eq!(
        (r.status, &*r.body, &*r.details, r.grpc_status),
        (503, "fault filter abort", "fault_filter_abort", None)
    );
    assert!(r.flags.contains(ResponseFlags::FI) && !r.flags.contains(ResponseFlags::DI));
    assert_eq!((fstat(&store, "aborts_injected"), active(&store)), (1, 1));
    flt.on_complete(&StreamEnd { response_code: Some(503), local_reply: true, ..StreamEnd::default() });
    assert_eq!(active(&store), 0);
    // Every Envoy fault stat exists from the start.
    for s in ["delays_injected", "faults_overflow", "response_rl_injected"] {
        assert_eq!(fstat(&store, s), 0);
    }
}

#[test]
fn fault_percentage_uses_the_dice() {
    let (f, store) = fault("  abort: {http_status: 500, percentage: {numerator: 30}}", &Runtime::default());
    let mut req = request("/", &[]);
    assert!(f.create_with_dice(dice(&[29])).on_request_headers(&mut req, &ROUTE).local_reply.is_some());
    assert!(f.create_with_dice(dice(&[30])).on_request_headers(&mut req, &ROUTE).local_reply.is_none());
    assert!(f.create_with_dice(dice(&[129])).on_request_headers(&mut req, &ROUTE).local_reply.is_some());
    assert_eq!(fstat(&store, "aborts_injected"), 2);
}

#[test]
fn fault_header_abort_http_and_grpc() {
    let (f, _) = fault("  abort: {header_abort: {}, percentage: {numerator: 100}}", &Runtime::default());
    let abort = |h: &[(&str, &str)]| f.create().on_request_headers(&mut request("/", h), &ROUTE).local_reply;
    assert_eq!(abort(&[("x-envoy-fault-abort-request", "418")]).map(|r| r.status), Some(418));
    // Outside [200, 600) and non-numbers are ignored.
    assert!(abort(&[("x-envoy-fault-abort-request", "600")]).is_none());
    assert!(abort(&[("x-envoy-fault-abort-request", "abc")]).is_none());
    assert!(abort(&[]).is_none());
    let g = abort(&[("x-envoy-fault-abort-grpc-request", "5")]).expect("grpc abort");
    assert_eq!((g.status, g.grpc_status), (200, Some(5)));
    // Both: the HTTP status wins.
    let both = abort(&[("x-envoy-fault-abort-request", "503"), ("x-envoy-fault-abort-grpc-request", "5")]);
    assert_eq!(both.map(|r| (r.status, r.grpc_status)), Some((503, None)));
}

#[test]
fn fault_header_percentage_caps_the_configured_percentage() {
    let (f, _) = fault("  abort: {header_abort: {}, percentage: {numerator: 50}}", &Runtime::default());
    let h = [("x-envoy-fault-abort-request", "503"), ("x-envoy-fault-abort-request-percentage", "10")];
    assert!(f.create_with_dice(dice(&[9])).on_request_headers(&mut request("/", &h), &ROUTE).local_reply.is_some());
    assert!(f.create_with_dice(dice(&[10])).on_request_headers(&mut request("/", &h), &ROUTE).local_reply.is_none());
    // A header asking for more than configured gets the configured 50%.
    let h = [("x-envoy-fault-abort-request", "503"), ("x-envoy-fault-abort-request-percentage", "90")];
    assert!(f.create_with_dice(dice(&[60])).on_request_headers(&mut request("/", &h), &ROUTE).local_reply.is_none());
    // Fixed aborts ignore the header.
    let (f, _) = fault("  abort: {http_status: 503, percentage: {numerator: 50}}", &Runtime::default());
    let h = [("x-envoy-fault-abort-request-percentage", "0")];
    assert!(f.create_with_dice(dice(&[1])).on_request_headers(&mut request("/", &h), &ROUTE).local_reply.is_some());
}

#[test]
fn fault_delay_then_abort_counts_the_abort_when_the_delay_ends() {
    let (f, store) = fault(
        "  delay: {fixed_delay: 0.2s, percentage: {numerator: 100}}\n  abort: {http_status: 503, percentage: {numerator: 100}}",
        &Runtime::default(),
    );
    let mut flt = f.create();
    let v = flt.on_request_headers(&mut request("/", &[("x-envoy-downstream-service-cluster", "web")]), &ROUTE);
    assert_eq!(v.delay, Some(Duration::from_millis(200)));
    let r = v.local_reply.expect("abort after delay");
    assert!(r.flags.contains(ResponseFlags::FI) && r.flags.contains(ResponseFlags::DI));
    assert_eq!((fstat(&store, "delays_injected"), fstat(&store, "aborts_injected"), active(&store)), (1, 0, 1));
    assert_eq!(fstat(&store, "web.delays_injected"), 1);
    flt.on_delay_elapsed();
    assert_eq!((fstat(&store, "aborts_injected"), fstat(&store, "web.aborts_injected"), active(&store)), (1, 1, 1));
    drop(flt);
    assert_eq!(active(&store), 0);
}

#[test]
fn fault_delay_alone_stops_being_active_when_it_ends_and_header_delay_works() {
    let (f, store) = fault("  delay: {header_delay: {}, percentage: {numerator: 100}}", &Runtime::default());
    let mut flt = f.create();
    assert_eq!(flt.on_request_headers(&mut request("/", &[]), &ROUTE).delay, None);
    let mut flt2 = f.create();
    let v = flt2.on_request_headers(&mut request("/", &[("x-envoy-fault-delay-request", "150")]), &ROUTE);
    assert_eq!((v.delay, v.local_reply.is_none()), (Some(Duration::from_millis(150)), true));
    assert_eq!(active(&store), 1);
    flt2.on_delay_elapsed();
    assert_eq!(active(&store), 0);
    // A zero delay is no delay.
    let v = f.create().on_request_headers(&mut request("/", &[("x-envoy-fault-delay-request", "0")]), &ROUTE);
    assert_eq!(v.delay, None);
    assert_eq!(fstat(&store, "delays_injected"), 1);
    flt.on_complete(&StreamEnd::default());
}

#[test]
fn fault_max_active_faults_overflows() {
    let (f, store) =
        fault("  abort: {http_status: 503, percentage: {numerator: 100}}\n  max_active_faults: 1", &Runtime::default());
    let mut first = f.create();
    assert!(first.on_request_headers(&mut request("/", &[]), &ROUTE).local_reply.is_some());
    let mut second = f.create();
    assert!(second.on_request_headers(&mut request("/", &[]), &ROUTE).local_reply.is_none());
    assert_eq!((fstat(&store, "faults_overflow"), fstat(&store, "aborts_injected")), (1, 1));
    first.on_complete(&StreamEnd::default());
    assert!(f.create().on_request_headers(&mut request("/", &[]), &ROUTE).local_reply.is_some());
}

#[test]
fn fault_matches_upstream_cluster_nodes_and_headers() {
    let (f, store) = fault(
        "  abort: {http_status: 503, percentage: {numerator: 100}}\n  upstream_cluster: backend\n  downstream_nodes: [n1]\n  headers: [{name: x-canary, string_match: {prefix: 'ye', ignore_case: true}}, {name: x-skip, present_match: false}]",
        &Runtime::default(),
    );
    let ok_h = [("x-envoy-downstream-service-node", "n1"), ("x-canary", "YES")];
    let hit = |h: &[(&str, &str)], route: RouteInfo<'_>| {
        f.create().on_request_headers(&mut request("/", h), &route).local_reply.is_some()
    };
    assert!(hit(&ok_h, ROUTE));
    assert!(!hit(&ok_h, RouteInfo { cluster: Some("other"), route_name: None }));
    assert!(!hit(&ok_h, RouteInfo::default()));
    assert!(!hit(&[("x-envoy-downstream-service-node", "n2"), ("x-canary", "yes")], ROUTE));
    assert!(!hit(&[("x-canary", "yes")], ROUTE));
    assert!(!hit(&[("x-envoy-downstream-service-node", "n1"), ("x-canary", "no")], ROUTE));
    assert!(!hit(&[("x-envoy-downstream-service-node", "n1"), ("x-canary", "yes"), ("x-skip", "1")], ROUTE));
    assert_eq!(fstat(&store, "aborts_injected"), 1);
}

#[test]
fn fault_runtime_overrides_generic_and_per_downstream_cluster() {
    let r = rt(json!({"fault": {"http": {
        "abort": {"abort_percent": 0, "http_status": 502},
        "web": {"abort": {"abort_percent": 100, "http_status": 504}},
        "api": {"abort": {"abort_percent": 100}}
    }}}));
    let (f, _) = fault("  abort: {http_status: 503, percentage: {numerator: 100}}", &r);
    let abort = |h: &[(&str, &str)]| f.create().on_request_headers(&mut request("/", h), &ROUTE).local_reply;
    // Generic key: 0% wins over the configured 100%.
    assert!(abort(&[]).is_none());
    // A downstream cluster's key replaces the generic one.
    assert_eq!(abort(&[("x-envoy-downstream-service-cluster", "web")]).map(|r| r.status), Some(504));
    // Its status defaults to the configured one, not the generic runtime one (as Envoy).
    assert_eq!(abort(&[("x-envoy-downstream-service-cluster", "api")]).map(|r| r.status), Some(503));
    // A cluster with no keys of its own falls back to the configured percentage.
    assert_eq!(abort(&[("x-envoy-downstream-service-cluster", "other")]).map(|r| r.status), Some(503));
}

#[test]
fn fault_downstream_cluster_stats_are_capped() {
    let r = rt(json!({"legate": {"fault": {"max_downstream_clusters": 2}}}));
    let (f, store) = fault("  abort: {http_status: 503, percentage: {numerator: 100}}", &r);
    for dc in ["a", "b", "c", "a"] {
        f.create().on_request_headers(&mut request("/", &[("x-envoy-downstream-service-cluster", dc)]), &ROUTE);
    }
    assert_eq!((fstat(&store, "a.aborts_injected"), fstat(&store, "b.aborts_injected")), (2, 1));
    assert_eq!(fstat(&store, "downstream_cluster_overflow"), 1);
    assert_eq!(fstat(&store, "aborts_injected"), 4);
    assert!(!store.snapshot().iter().any(|m| m.name.contains("fault.c.")));
    // Envoy creates a downstream cluster's counters only when used.
    assert!(!store.snapshot().iter().any(|m| m.name == "http.ing.fault.a.delays_injected"));
}

// ---------------------------------------------------------------- grpc_stats

fn grpc(body: &str, runtime: &Runtime) -> (GrpcStats, Store) {
    let HttpFilterConfig::GrpcStats(c) = cfg(&format!(
        "name: g\ntyped_config:\n  '@type': type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig\n{body}"
    )) else {
        panic!("grpc")
    };
    let store = Store::new();
    (GrpcStats::new(&c, &store, "ing", runtime), store)
}

const GRPC_CT: (&str, &str) = ("content-type", "application/grpc");

fn frames(n: usize) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for i in 0..n {
        legate_codecs::grpc::encode_message(&mut out, false, &vec![7u8; i * 3]);
    }
    out.to_vec()
}

/// A unary call with a normal response: headers, data, trailers.
fn call(g: &GrpcStats, path: &str, status: &str, upstream_ms: Option<u64>) {
    let mut f = g.create();
    f.on_request_headers(&mut request(path, &[GRPC_CT]), &ROUTE);
    let body = frames(1);
    f.on_request_data(&body[..2]);
    f.on_request_data(&body[2..]);
    f.on_response_headers(&mut response(200, &[GRPC_CT]));
    f.on_response_data(&frames(2));
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", status.parse().expect("value"));
    f.on_response_trailers(&t);
    f.on_complete(&StreamEnd {
        response_code: Some(200),
        upstream_time: upstream_ms.map(Duration::from_millis),
        local_reply: false,
        cluster: Some("backend"),
    });
}

fn value(store: &Store, name: &str) -> Option<u64> {
    store.snapshot().into_iter().find(|m| m.name == name).map(|_| store.counter(name).value())
}

#[test]
fn grpc_stats_for_all_methods_uses_envoy_names() {
    let (g, store) = grpc("  stats_for_all_methods: true\n  enable_upstream_stats: true", &Runtime::default());
    call(&g, "/helloworld.Greeter/SayHello", "0", Some(3));
    call(&g, "/helloworld.Greeter/SayHello", "14", Some(3));
    let p = "cluster.backend.grpc.helloworld.Greeter.SayHello.";
    let v = |s: &str| value(&store, &format!("{p}{s}"));
    assert_eq!((v("success"), v("failure"), v("total")), (Some(1), Some(1), Some(2)));
    assert_eq!((v("0"), v("14"), v("3")), (Some(1), Some(1), None));
    assert_eq!((v("request_message_count"), v("response_message_count")), (Some(2), Some(4)));
    let h = store.histogram(&format!("{p}upstream_rq_time"), crate::stats::HistogramUnit::Milliseconds);
    assert_eq!(h.unit(), crate::stats::HistogramUnit::Milliseconds);
    assert!(store.snapshot().iter().any(|m| m.name == format!("{p}upstream_rq_time")));
    // Nothing generic.
    assert_eq!(value(&store, "cluster.backend.grpc.total"), None);
}

#[test]
fn grpc_stats_default_counts_generically_and_invalid_paths_follow_envoy() {
    let (g, store) = grpc("  emit_filter_state: true", &Runtime::default());
    call(&g, "/pkg.Svc/Method", "0", None);
    // Query stripped, empty segments skipped: still a gRPC path.
    call(&g, "//x//y?q=1", "2", None);
    // Not /<service>/<method>: untracked.
    call(&g, "/a/b/c", "0", None);
    assert_eq!(value(&store, "cluster.backend.grpc.total"), Some(2));
    assert_eq!(value(&store, "cluster.backend.grpc.success"), Some(1));
    assert_eq!(value(&store, "cluster.backend.grpc.2"), Some(1));
    assert_eq!(value(&store, "cluster.backend.grpc.request_message_count"), Some(2));
    assert!(!store.snapshot().iter().any(|m| m.name.contains("pkg.Svc")));
    // stats_for_all_methods: true does not track invalid paths at all.
    let (g, store) = grpc("  stats_for_all_methods: true", &Runtime::default());
    call(&g, "/a/b/c", "0", None);
    assert!(!store.snapshot().iter().any(|m| m.name.starts_with("cluster.")));
}

#[test]
fn grpc_stats_allowlist_and_replace_dots() {
    let (g, store) = grpc(
        "  individual_method_stats_allowlist: {services: [{name: pkg.Svc, method_names: [Good]}]}\n  replace_dots_in_grpc_service_name: true",
        &Runtime::default(),
    );
    call(&g, "/pkg.Svc/Good", "0", None);
    call(&g, "/pkg.Svc/Other", "0", None);
    assert_eq!(value(&store, "cluster.backend.grpc.pkg_Svc.Good.total"), Some(1));
    assert_eq!(value(&store, "cluster.backend.grpc.total"), Some(1));
}

#[test]
fn grpc_stats_trailers_only_and_non_grpc_requests() {
    let (g, store) = grpc("  stats_for_all_methods: true", &Runtime::default());
    // Trailers-only (e.g. a local reply converted to gRPC): status in the headers.
    let mut f = g.create();
    f.on_request_headers(&mut request("/s/m", &[GRPC_CT]), &ROUTE);
    f.on_response_headers(&mut response(200, &[GRPC_CT, ("grpc-status", "14")]));
    f.on_complete(&StreamEnd::default());
    assert_eq!(value(&store, "cluster.backend.grpc.s.m.failure"), Some(1));
    // grpc-web and plain HTTP are not gRPC; neither is a request with no route.
    for ct in ["application/grpc-web", "application/json"] {
        let mut f = g.create();
        f.on_request_headers(&mut request("/s/n", &[("content-type", ct)]), &ROUTE);
        f.on_response_headers(&mut response(200, &[("grpc-status", "0")]));
    }
    let mut f = g.create();
    f.on_request_headers(&mut request("/s/n", &[GRPC_CT]), &RouteInfo::default());
    f.on_response_headers(&mut response(200, &[("grpc-status", "0")]));
    assert!(!store.snapshot().iter().any(|m| m.name.contains(".s.n.")));
    // application/grpc+proto is gRPC; a status outside 0..=16 has no stat of its own.
    let mut f = g.create();
    f.on_request_headers(&mut request("/s/p", &[("content-type", "application/grpc+proto")]), &ROUTE);
    f.on_response_headers(&mut response(200, &[("grpc-status", "99")]));
    assert_eq!(value(&store, "cluster.backend.grpc.s.p.failure"), Some(1));
    assert_eq!(value(&store, "cluster.backend.grpc.s.p.99"), None);
}

#[test]
fn grpc_stats_methods_past_the_cap_fold_into_the_cluster_stats() {
    let r = rt(json!({"legate": {"grpc_stats": {"max_methods": 2}}}));
    let (g, store) = grpc("  stats_for_all_methods: true", &r);
    for m in ["a", "b", "c", "d", "a"] {
        call(&g, &format!("/svc/{m}"), "0", None);
    }
    assert_eq!(value(&store, "cluster.backend.grpc.svc.a.total"), Some(2));
    assert_eq!(value(&store, "cluster.backend.grpc.svc.b.total"), Some(1));
    assert_eq!(value(&store, "cluster.backend.grpc.total"), Some(2));
    assert_eq!(value(&store, "http.ing.grpc_stats.method_overflow"), Some(2));
}

#[test]
fn grpc_stat_names_get_envoy_prometheus_tags() {
    let (name, tags) = crate::stats::extract_tags(
        "cluster.backend.grpc.helloworld.Greeter.SayHello.success",
        &crate::stats::TagRule::defaults(),
    );
    // Envoy 1.40 (checked against the binary): with a dotted service, the tokenized rules take
    // `helloworld` as the service and `Greeter` as the method, and keep `SayHello` in the name.
    let has = |k: &str, v: &str| tags.iter().any(|(a, b)| a == k && b == v);
    assert!(has("envoy.grpc_bridge_service", "helloworld"), "{tags:?}");
    assert!(has("envoy.grpc_bridge_method", "Greeter"), "{tags:?}");
    assert!(has("envoy.cluster_name", "backend"), "{tags:?}");
    assert_eq!(name, "cluster.grpc.SayHello.success");
}
