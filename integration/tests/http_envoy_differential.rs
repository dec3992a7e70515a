//! Scenario: a user swaps Envoy for Legate in front of an HTTP service. A real Envoy 1.40 and
//! Legate serve the same http_connection_manager config against the same upstreams and get the
//! same requests; the replies (status, body, the headers Envoy adds) and the stats after the
//! sequence must be the same — local replies, timeouts and the retry counters included.

use std::collections::BTreeMap;
use std::time::Duration;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::http::{curl, CurlResult, HttpUpstream};
use legate_integration::peers::DeadPort;
use legate_integration::{yaml, Legate};

const ROUTES: &str = "- match: {prefix: /retry/}
  route:
    cluster: up
    prefix_rewrite: /
    retry_policy: {retry_on: 5xx, num_retries: 3, retry_back_off: {base_interval: 0.001s, max_interval: 0.002s}}
- match: {prefix: /slow/}
  route: {cluster: up, timeout: 1s, prefix_rewrite: /}
- match: {prefix: /idle/}
  route: {cluster: up, timeout: 0s, idle_timeout: 0.3s, prefix_rewrite: /}
- match: {prefix: /dead}
  route: {cluster: dead}
- match: {prefix: /empty}
  route: {cluster: empty}
- match: {prefix: /direct}
  direct_response: {status: 200, body: {inline_string: direct}}
- match: {prefix: /moved}
  redirect: {path_redirect: /new}
- match: {prefix: /up/}
  route: {cluster: up, prefix_rewrite: /}
";

/// The requests of the sequence, as curl arguments after the URL's path.
const SEQUENCE: &[&str] = &[
    "/up/status/200",
    "/up/status/503",
    "/up/headers",
    "/nothing",
    "/dead",
    "/empty",
    "/direct",
    "/moved",
    "/slow/delay/1500",
    "/slow/delay/100",
    "/idle/delay/800",
    "/retry/status/500",
    "/retry/status/500",
    "/retry/status/500",
];

/// Headers whose values differ by nature (time, ids, ports).
const VOLATILE: &[&str] = &["date", "x-envoy-upstream-service-time", "x-request-id", "x-upstream-conn"];

fn config(up: &HttpUpstream, dead: &DeadPort) -> String {
    let clusters = [
        yaml::static_cluster("up", &[up.addr()]),
        yaml::static_cluster("dead", &[dead.addr()]),
        yaml::cluster("empty", "STATIC", "ROUND_ROBIN", &[], ""),
    ];
    yaml::bootstrap(&[yaml::http_listener("web", &yaml::route_config(ROUTES), "")], &clusters)
}

fn run(port: u16) -> Vec<CurlResult> {
    SEQUENCE.iter().map(|p| curl(&[&format!("http://127.0.0.1:{port}{p}")])).collect()
}

/// Status, body and the non-volatile headers, the proxy's own port written as `PORT`.
fn comparable(r: &CurlResult, port: u16) -> (u16, String, BTreeMap<String, String>) {
    let headers = r
        .headers
        .iter()
        .filter(|(n, _)| !VOLATILE.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.replace(&port.to_string(), "PORT")))
        .collect();
    (r.status, r.text(), headers)
}

/// Stats of the trees both create for this config, zero-valued ones dropped (Legate creates
/// some of Envoy's lazily-named stats only when they count).
fn http_stats(s: &Stats) -> BTreeMap<String, u64> {
    let keep = |k: &str| {
        (k.starts_with("http.web.") || k.starts_with("cluster.up.upstream_rq") || k.starts_with("cluster.up.retry."))
            && !k.contains("_time")
            && !k.contains("per_cx")
            // Connections opened differ by design: Envoy pools per worker, Legate per host.
            && !k.contains("pending_total")
            && !k.contains("_active")
            && !k.starts_with("http.web.downstream_cx")
            && !k.starts_with("http.web.rs_")
    };
    s.0.iter()
        .filter(|(k, _)| keep(k))
        .filter_map(|(k, v)| v.parse::<u64>().ok().filter(|n| *n > 0).map(|n| (k.clone(), n)))
        .collect()
}

#[test]
fn same_replies_and_same_stats_as_envoy() {
    let up = HttpUpstream::named("up");
    let dead = DeadPort::new();
    let cfg = config(&up, &dead);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let (ep, lp) = (envoy.listener_port("web"), legate.listener_port("web"));
    let e = run(ep);
    let l = run(lp);
    for (i, (er, lr)) in e.iter().zip(&l).enumerate() {
        let (es, eb, eh) = comparable(er, ep);
        let (ls, lb, lh) = comparable(lr, lp);
        assert_eq!(ls, es, "{}: status", SEQUENCE[i]);
        if SEQUENCE[i] != "/up/headers" {
            assert_eq!(lb, eb, "{}: body", SEQUENCE[i]);
        }
        assert_eq!(lh, eh, "{}: headers", SEQUENCE[i]);
    }
    // What the upstream saw from each: the same header names (values may differ: ids, ports).
    let seen: Vec<_> = up.requests().into_iter().filter(|r| r.path == "/headers").collect();
    assert_eq!(seen.len(), 2);
    let names = |i: usize| {
        let mut n: Vec<String> = seen[i].headers.iter().map(|(n, _)| n.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(1), names(0), "headers sent upstream (Envoy first, Legate second)");
    // Retry counters land after the responses; give both a moment.
    std::thread::sleep(Duration::from_millis(300));
    let es = http_stats(&envoy.stats());
    let ls = http_stats(&legate.stats());
    assert_eq!(ls, es, "stats after the same sequence (left Legate, right Envoy)");
    // The figures for three requests to an always-500 endpoint with num_retries 3.
    assert_eq!(ls.get("cluster.up.upstream_rq_retry"), Some(&9));
    assert_eq!(ls.get("cluster.up.upstream_rq_retry_limit_exceeded"), Some(&3));
    assert_eq!(ls.get("cluster.up.retry.upstream_rq_500"), Some(&9));
    assert_eq!(ls.get("cluster.up.upstream_rq_retry_backoff_exponential"), Some(&9));
}
