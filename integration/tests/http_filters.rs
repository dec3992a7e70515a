//! Scenario: a user pastes Envoy's fault-injection and local rate-limit examples into a Legate
//! config. The real Envoy 1.40 serves the same config (one listener per filter setup) and gets
//! the same requests from curl; status, body, the headers that matter, `%RESPONSE_FLAGS%` in a
//! file access log and the filters' stats must agree.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::http::{curl, CurlResult, HttpUpstream};
use legate_integration::process::{wait_until, TempDir, PATIENCE};
use legate_integration::{yaml, Legate};

/// A listener `name` (stat_prefix `name`) routing everything to cluster `up`, with `filters`
/// (YAML list entries at the http_filters indentation) before the router and a file access
/// log at `<log_dir>/<name>.log` printing `code flags details`.
fn listener(name: &str, filters: &str, log_dir: &Path) -> String {
    let hcm = format!(
        "access_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {}\n    log_format:\n      text_format_source:\n        inline_string: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n\"\n{}",
        log_dir.join(format!("{name}.log")).display(),
        yaml::route_config("- match: {prefix: /}\n  route: {cluster: up}")
    );
    // The filters come indented for the http_filters list; http_listener indents them itself.
    let filters: String = filters.lines().map(|l| format!("{}\n", l.strip_prefix("          ").unwrap_or(l))).collect();
    yaml::http_listener(name, &hcm, &filters)
}

/// Envoy's documented fault examples: a fixed delay for everyone, an abort for everyone,
/// header-driven faults, and both at 0%.
fn fault_config(up: SocketAddr, log_dir: &Path) -> String {
    let fault = |body: &str| {
        format!(
            "          - name: envoy.filters.http.fault\n            typed_config:\n              '@type': type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\n{}",
            body.lines().map(|l| format!("              {l}\n")).collect::<String>()
        )
    };
    let listeners = [
        listener(
            "delay",
            &fault("delay:\n  fixed_delay: 0.2s\n  percentage: {numerator: 100, denominator: HUNDRED}"),
            log_dir,
        ),
        listener(
            "abort",
            &fault("abort:\n  http_status: 503\n  percentage: {numerator: 100, denominator: HUNDRED}"),
            log_dir,
        ),
        listener(
            "hdr",
            &fault(
                "delay:\n  header_delay: {}\n  percentage: {numerator: 100, denominator: HUNDRED}\nabort:\n  header_abort: {}\n  percentage: {numerator: 100, denominator: HUNDRED}",
            ),
            log_dir,
        ),
        listener(
            "zero",
            &fault(
                "delay:\n  fixed_delay: 5s\n  percentage: {numerator: 0, denominator: HUNDRED}\nabort:\n  http_status: 500\n  percentage: {numerator: 0}",
            ),
            log_dir,
        ),
    ];
    yaml::bootstrap(&listeners, &[yaml::static_cluster("up", &[up])])
}

/// Envoy's documented local_ratelimit example: a bucket of 3, one token a second, enabled and
/// enforced for every request, with a response header on limited replies.
fn ratelimit_config(up: SocketAddr, log_dir: &Path) -> String {
    let rl = "          - name: envoy.filters.http.local_ratelimit
            typed_config:
              '@type': type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: http_local_rate_limiter
              token_bucket: {max_tokens: 3, tokens_per_fill: 1, fill_interval: 1s}
              filter_enabled:
                runtime_key: local_rate_limit_enabled
                default_value: {numerator: 100, denominator: HUNDRED}
              filter_enforced:
                runtime_key: local_rate_limit_enforced
                default_value: {numerator: 100, denominator: HUNDRED}
              response_headers_to_add:
              - append_action: OVERWRITE_IF_EXISTS_OR_ADD
                header: {key: x-local-rate-limit, value: 'true'}
";
    yaml::bootstrap(&[listener("rl", rl, log_dir)], &[yaml::static_cluster("up", &[up])])
}

/// One proxy: its admin, its listeners' ports, its access-log directory.
struct Side {
    name: &'static str,
    admin: SocketAddr,
    ports: Vec<(String, u16)>,
    logs: PathBuf,
}

impl Side {
    fn url(&self, listener: &str, path: &str) -> String {
        let port = self.ports.iter().find(|(n, _)| n == listener).map(|(_, p)| *p).expect("listener");
        format!("http://127.0.0.1:{port}{path}")
    }

    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    /// The access-log lines of `listener`, waiting (bounded) until there are `n` (Envoy
    /// flushes its file logs once a second).
    fn log_lines(&self, listener: &str, n: usize) -> Vec<String> {
        let path = self.logs.join(format!("{listener}.log"));
        wait_until(&format!("{}: {n} access-log lines in {}", self.name, path.display()), PATIENCE, || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            (lines.len() >= n).then_some(lines)
        })
    }
}

fn start_both(make: impl Fn(&Path) -> String, listeners: &[&str]) -> (Legate, Envoy, Side, Side, TempDir, TempDir) {
    let (ldir, edir) = (TempDir::new("legate-logs"), TempDir::new("envoy-logs"));
    let legate = Legate::start(&make(ldir.path()));
    let envoy = Envoy::start(&make(edir.path()));
    let l = Side {
        name: "legate",
        admin: legate.admin,
        ports: listeners.iter().map(|n| (n.to_string(), legate.listener_port(n))).collect(),
        logs: ldir.path().to_path_buf(),
    };
    let e = Side {
        name: "envoy",
        admin: envoy.admin,
        ports: listeners.iter().map(|n| (n.to_string(), envoy.listener_port(n))).collect(),
        logs: edir.path().to_path_buf(),
    };
    (legate, envoy, l, e, ldir, edir)
}

/// What must agree between the proxies for one response.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    body: String,
    headers: Vec<(&'static str, Option<String>)>,
}

const HEADERS: &[&str] = &["content-type", "content-length", "x-envoy-ratelimited", "x-local-rate-limit", "server"];

fn seen(r: &CurlResult) -> Seen {
    assert_eq!(r.exit_code, 0, "curl failed: {}", r.stderr);
    Seen {
        status: r.status,
        // the upstream names itself in its answer; what matters is that it answered
        body: if r.header("x-upstream").is_some() { "<upstream>".into() } else { r.text() },
        headers: HEADERS.iter().map(|h| (*h, r.header(h).map(str::to_string))).collect(),
    }
}

fn fault_sequence(side: &Side) -> Vec<Seen> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    let r = curl(&[&side.url("delay", "/")]);
    assert!(t0.elapsed() >= Duration::from_millis(200), "{}: the fixed delay was not applied", side.name);
    out.push(seen(&r));
    out.push(seen(&curl(&[&side.url("abort", "/")])));
    out.push(seen(&curl(&["--http2-prior-knowledge", &side.url("abort", "/")])));
    out.push(seen(&curl(&["-H", "x-envoy-fault-abort-request: 418", &side.url("hdr", "/")])));
    let t0 = Instant::now();
    let r = curl(&["-H", "x-envoy-fault-delay-request: 150", &side.url("hdr", "/")]);
    assert!(t0.elapsed() >= Duration::from_millis(150), "{}: the header delay was not applied", side.name);
    out.push(seen(&r));
    // both headers: delayed, then aborted
    out.push(seen(&curl(&[
        "-H",
        "x-envoy-fault-delay-request: 50",
        "-H",
        "x-envoy-fault-abort-request: 502",
        &side.url("hdr", "/"),
    ])));
    // header_* without the header: nothing happens
    out.push(seen(&curl(&[&side.url("hdr", "/")])));
    // an out-of-range abort code is ignored
    out.push(seen(&curl(&["-H", "x-envoy-fault-abort-request: 99", &side.url("hdr", "/")])));
    let t0 = Instant::now();
    out.push(seen(&curl(&[&side.url("zero", "/")])));
    assert!(t0.elapsed() < Duration::from_secs(4), "{}: a 0% delay was applied", side.name);
    out
}

#[test]
fn fault_injection_matches_envoy() {
    let up = HttpUpstream::start();
    let names = ["delay", "abort", "hdr", "zero"];
    let (_legate, _envoy, l, e, _ld, _ed) = start_both(|d| fault_config(up.addr(), d), &names);
    let got = fault_sequence(&l);
    let want = fault_sequence(&e);
    assert_eq!(got, want, "responses: legate (left) vs envoy (right)");
    // what they are
    assert_eq!((want[1].status, want[1].body.as_str()), (503, "fault filter abort"));
    assert_eq!((want[3].status, want[3].body.as_str()), (418, "fault filter abort"));
    assert_eq!(want[5].status, 502);
    for i in [0, 4, 6, 7, 8] {
        assert_eq!((want[i].status, want[i].body.as_str()), (200, "<upstream>"), "response {i}");
    }

    // %RESPONSE_FLAGS% and details, per listener
    let expect_lines = [("delay", 1), ("abort", 2), ("hdr", 5), ("zero", 1)];
    for (listener, n) in expect_lines {
        let (gl, wl) = (l.log_lines(listener, n), e.log_lines(listener, n));
        assert_eq!(gl, wl, "{listener}.log: legate (left) vs envoy (right)");
    }
    assert_eq!(e.log_lines("delay", 1), vec!["200 DI via_upstream"]);
    assert_eq!(e.log_lines("abort", 2)[0], "503 FI fault_filter_abort");

    // the fault stats
    for listener in names {
        let prefix = format!("http.{listener}.fault.");
        // `downstream_cluster_overflow` is Legate's own (the cap on per-cluster fault stats)
        let pick = |s: &Stats| -> Vec<(String, String)> {
            s.names_with_prefix(&prefix)
                .into_iter()
                .filter(|n| !n.ends_with(".downstream_cluster_overflow"))
                .map(|n| (n.clone(), s.get(&n).unwrap_or("").to_string()))
                .collect()
        };
        let (gs, ws) = (pick(&l.stats()), pick(&e.stats()));
        assert_eq!(gs, ws, "{prefix}*: legate (left) vs envoy (right)");
    }
    let s = l.stats();
    assert_eq!(s.value("http.delay.fault.delays_injected"), 1);
    assert_eq!(s.value("http.abort.fault.aborts_injected"), 2);
    assert_eq!(s.value("http.hdr.fault.aborts_injected"), 2);
    assert_eq!(s.value("http.hdr.fault.delays_injected"), 2);
    assert_eq!(s.value("http.zero.fault.aborts_injected"), 0);
    assert_eq!(s.value("http.zero.fault.delays_injected"), 0);
}

#[test]
fn local_ratelimit_matches_envoy() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e, _ld, _ed) = start_both(|d| ratelimit_config(up.addr(), d), &["rl"]);
    // Four requests back to back: the bucket holds 3 (far less than a second passes between
    // them, so at most a fraction of a token is refilled).
    let burst = |side: &Side| -> Vec<Seen> { (0..4).map(|_| seen(&curl(&[&side.url("rl", "/")]))).collect() };
    let got = burst(&l);
    let want = burst(&e);
    assert_eq!(got, want, "responses: legate (left) vs envoy (right)");
    let codes: Vec<u16> = want.iter().map(|s| s.status).collect();
    assert_eq!(codes, vec![200, 200, 200, 429]);
    assert_eq!(want[3].body, "local_rate_limited");
    assert_eq!(want[3].headers[3], ("x-local-rate-limit", Some("true".to_string())));

    let (gl, wl) = (l.log_lines("rl", 4), e.log_lines("rl", 4));
    assert_eq!(gl, wl, "rl.log: legate (left) vs envoy (right)");
    assert_eq!(wl[3], "429 RL local_rate_limited");

    let prefix = "http_local_rate_limiter.http_local_rate_limit.";
    let pick = |s: &Stats| -> Vec<(String, String)> {
        s.names_with_prefix(prefix).into_iter().map(|n| (n.clone(), s.get(&n).unwrap_or("").to_string())).collect()
    };
    assert_eq!(pick(&l.stats()), pick(&e.stats()), "{prefix}*: legate (left) vs envoy (right)");
    let s = l.stats();
    assert_eq!(s.value(&format!("{prefix}enabled")), 4);
    assert_eq!(s.value(&format!("{prefix}ok")), 3);
    assert_eq!(s.value(&format!("{prefix}rate_limited")), 1);
    assert_eq!(s.value(&format!("{prefix}enforced")), 1);
    assert_eq!(s.value("http.rl.downstream_rq_4xx"), 1);
}
