//! Scenario: a client gives up on a slow request and closes its connection while the proxy is
//! still waiting for the upstream. Envoy notices at once (it keeps reading the downstream),
//! resets the upstream request and logs `DC`. A real Envoy 1.40 and Legate serve the same
//! config; the access-log line and the stats afterwards must be the same.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::http::HttpUpstream;
use legate_integration::process::{wait_until_or, TempDir};
use legate_integration::{yaml, Legate};

const ROUTES: &str = "- match: {prefix: /up/}
  route: {cluster: up, prefix_rewrite: /}
";

fn hcm(log: &str) -> String {
    format!(
        "access_log:
- name: envoy.access_loggers.file
  typed_config:
    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: {log}
    log_format: {{text_format_source: {{inline_string: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n\"}}}}
{}",
        yaml::route_config(ROUTES)
    )
}

fn interesting(s: &Stats) -> BTreeMap<String, u64> {
    s.0.iter()
        .filter(|(k, _)| {
            (k.starts_with("http.web.downstream_rq") && *k != "http.web.downstream_rq_time")
                || k.starts_with("http.web.downstream_cx_destroy")
                || k.starts_with("cluster.up.upstream_rq_cancelled")
                || k.starts_with("cluster.up.upstream_rq_tx_reset")
                || k.starts_with("cluster.up.upstream_cx_destroy")
        })
        .filter(|(k, _)| !k.contains("_active") || k.ends_with("_active_rq"))
        .filter_map(|(k, v)| v.parse::<u64>().ok().filter(|n| *n > 0).map(|n| (k.clone(), n)))
        .collect()
}

#[test]
fn a_client_that_closes_while_waiting_is_a_downstream_reset_like_envoy() {
    let up = HttpUpstream::named("up");
    let dir = TempDir::new("client-gone");
    let logs = [dir.path().join("envoy.log"), dir.path().join("legate.log")];
    let cfg = |log: &std::path::Path| {
        let listener = yaml::http_listener("web", &hcm(&log.display().to_string()), "");
        yaml::bootstrap(&[listener], &[yaml::static_cluster("up", &[up.addr()])])
    };
    let envoy = Envoy::start(&cfg(&logs[0]));
    let legate = Legate::start(&cfg(&logs[1]));
    for port in [envoy.listener_port("web"), legate.listener_port("web")] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET /up/delay/1500 HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
    }
    // Both upstream requests arrived; the access logs are written when the streams end.
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    wait_until_or(Duration::from_secs(5), || logs.iter().all(|l| !read(l).is_empty()));
    std::thread::sleep(Duration::from_millis(1500));
    let (el, ll) = (read(&logs[0]), read(&logs[1]));
    assert_eq!(ll, el, "access log (left Legate, right Envoy)");
    assert_eq!(ll.trim(), "0 DC downstream_remote_disconnect");
    let es = interesting(&envoy.stats());
    let ls = interesting(&legate.stats());
    assert_eq!(ls, es, "stats (left Legate, right Envoy)");
}
