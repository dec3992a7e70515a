//! Scenario: a user puts Legate in front of a gRPC service (h2c downstream, HTTP/2 upstream
//! through `typed_extension_protocol_options`) and calls it with a real grpcio client: the four
//! call kinds with request, initial and trailing metadata; `grpc-timeout` honoured under
//! `max_stream_duration.grpc_timeout_header_max`; local failures (no route, dead cluster,
//! upstream timeout) answered as HTTP 200 + `grpc-status`; `envoy.filters.http.grpc_stats`
//! counts. Where the behaviour is Envoy's, the real Envoy 1.40 serves the same config and gets
//! the same calls, and the two must agree.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::http::{grpc_call, GrpcKind, GrpcOpts, GrpcServer};
use legate_integration::peers::DeadPort;
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{yaml, Legate};

/// The route to the echo service caps `grpc-timeout` at this (Envoy's `grpc_timeout_header_max`).
const CAP_MS: u64 = 600;

/// One listener `grpc` (stat_prefix `grpc`, codec AUTO): `echo.test` and `*` route the echo
/// service's calls to cluster `echo` (HTTP/2) with the timeout cap on `/legate.test.Echo/Unary`
/// only; `dead.test` routes to a cluster whose only host refuses connections; any other
/// authority matches no virtual host; `silent.test` routes (capped timeout) to a host that
/// accepts connections and never answers.
fn config(echo: &str, dead: SocketAddr, silent: SocketAddr) -> String {
    let hcm = format!(
        r#"codec_type: AUTO
route_config:
  name: local
  virtual_hosts:
  - name: echo
    domains: ["echo.test", "127.0.0.1:*"]
    routes:
    - match: {{prefix: "/legate.test.Echo/Unary", grpc: {{}}}}
      route:
        cluster: echo
        max_stream_duration: {{grpc_timeout_header_max: {cap}s}}
    - match: {{prefix: "/legate.test.Echo/", grpc: {{}}}}
      route: {{cluster: echo}}
  - name: silent
    domains: ["silent.test"]
    routes:
    - match: {{prefix: "/"}}
      route:
        cluster: silent
        max_stream_duration: {{grpc_timeout_header_max: {cap}s}}
  - name: dead
    domains: ["dead.test"]
    routes:
    - match: {{prefix: "/"}}
      route: {{cluster: dead}}"#,
        cap = CAP_MS as f64 / 1000.0
    );
    let grpc_stats = "- name: envoy.filters.http.grpc_stats\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig\n    stats_for_all_methods: true";
    let listener = yaml::http_listener("grpc", &hcm, grpc_stats);
    let h2 = yaml::HTTP2_UPSTREAM;
    let (host, port) = echo.split_once(':').expect("host:port");
    let port: u16 = port.parse().expect("port");
    yaml::bootstrap(
        &[listener],
        &[
            yaml::cluster("echo", "STATIC", "ROUND_ROBIN", &[(host, port)], h2),
            yaml::cluster("dead", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", dead.port())], h2),
            yaml::cluster("silent", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", silent.port())], h2),
        ],
    )
}

/// A listening socket never accepted from: the kernel completes each connection, nothing is
/// ever read or written.
fn silent_peer() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind the silent peer")
}

/// Either proxy as the calls and the stats see it.
struct Side {
    name: &'static str,
    admin: SocketAddr,
    port: u16,
}

impl Side {
    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    fn call(&self, kind: GrpcKind, opts: &GrpcOpts) -> serde_json::Value {
        grpc_call(&self.target(), kind, opts)
    }

    fn wait_eq(&self, name: &str, want: u64) {
        wait_until(&format!("{}: {name} == {want}", self.name), PATIENCE, || {
            (self.stats().get(name).and_then(|v| v.parse::<u64>().ok()) == Some(want)).then_some(())
        });
    }
}

fn legate_side(l: &Legate) -> Side {
    Side { name: "legate", admin: l.admin, port: l.listener_port("grpc") }
}

fn envoy_side(e: &Envoy) -> Side {
    Side { name: "envoy", admin: e.admin, port: e.listener_port("grpc") }
}

fn md(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn msgs(m: &[&str]) -> Vec<String> {
    m.iter().map(|s| s.to_string()).collect()
}

fn code(r: &serde_json::Value) -> &str {
    r["code"].as_str().unwrap_or("?")
}

#[test]
fn four_call_kinds_carry_metadata_and_trailers_both_ways() {
    let server = GrpcServer::named("echo-a");
    let dead = DeadPort::new();
    let silent = silent_peer();
    let legate = Legate::start(&config(&server.target(), dead.addr(), silent.local_addr().expect("silent address")));
    let side = legate_side(&legate);
    let meta = md(&[("x-client", "c1"), ("x-other", "v2")]);

    let r = side
        .call(GrpcKind::Unary, &GrpcOpts { messages: msgs(&["one"]), metadata: meta.clone(), ..Default::default() });
    assert_eq!(code(&r), "OK", "{r}");
    assert_eq!(r["responses"][0]["message"], "one");
    assert_eq!(r["responses"][0]["server"], "echo-a");
    // request metadata reached the server; the server's initial and trailing metadata came back
    assert_eq!(r["responses"][0]["metadata"]["x-client"], "c1", "{r}");
    assert_eq!(r["initial_metadata"]["x-client"], "c1", "{r}");
    assert_eq!(r["initial_metadata"]["x-other"], "v2", "{r}");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes", "{r}");
    // the router's own request headers rode along too
    assert!(r["responses"][0]["metadata"]["x-request-id"].as_str().is_some_and(|v| v.len() == 36), "{r}");

    let r = side.call(
        GrpcKind::ClientStream,
        &GrpcOpts { messages: msgs(&["a", "b", "c"]), metadata: meta.clone(), ..Default::default() },
    );
    assert_eq!(code(&r), "OK", "{r}");
    assert_eq!(r["responses"][0]["message"], "a,b,c");
    assert_eq!(r["responses"][0]["index"], 3);
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes", "{r}");

    let r = side.call(
        GrpcKind::ServerStream,
        &GrpcOpts { messages: msgs(&["s"]), repeat: 5, metadata: meta.clone(), ..Default::default() },
    );
    assert_eq!(code(&r), "OK", "{r}");
    let got: Vec<&str> =
        r["responses"].as_array().expect("responses").iter().filter_map(|x| x["message"].as_str()).collect();
    assert_eq!(got, vec!["s#0", "s#1", "s#2", "s#3", "s#4"]);
    assert_eq!(r["initial_metadata"]["x-client"], "c1", "{r}");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes", "{r}");

    let r = side.call(
        GrpcKind::Bidi,
        &GrpcOpts { messages: msgs(&["p", "q", "r", "s"]), metadata: meta.clone(), ..Default::default() },
    );
    assert_eq!(code(&r), "OK", "{r}");
    let got: Vec<&str> =
        r["responses"].as_array().expect("responses").iter().filter_map(|x| x["message"].as_str()).collect();
    assert_eq!(got, vec!["p", "q", "r", "s"]);
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes", "{r}");

    // An upstream failure status travels in the trailers, with its message and metadata,
    // after the replies already streamed.
    let r = side.call(
        GrpcKind::ServerStream,
        &GrpcOpts {
            messages: msgs(&["f"]),
            repeat: 2,
            fail_code: 9,
            fail_message: "precondition, 100% sure".into(),
            metadata: meta,
            ..Default::default()
        },
    );
    assert_eq!(code(&r), "FAILED_PRECONDITION", "{r}");
    assert_eq!(r["details"], "precondition, 100% sure", "{r}");
    assert_eq!(r["responses"].as_array().map(Vec::len), Some(2), "{r}");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes", "{r}");

    // Five calls went upstream over HTTP/2, all answered 200.
    side.wait_eq("cluster.echo.upstream_rq_200", 5);
    side.wait_eq("http.grpc.downstream_rq_2xx", 5);
    let s = side.stats();
    assert_eq!(s.value("cluster.echo.upstream_cx_http2_total"), 1, "one multiplexed upstream connection");
    assert_eq!(s.value("http.grpc.downstream_cx_http2_total"), 5, "grpcio opens one channel per client run");
}

/// The call outcomes both proxies must agree on: code, details and trailing metadata.
fn outcome(r: &serde_json::Value) -> (String, String) {
    (code(r).to_string(), r["details"].as_str().unwrap_or("").to_string())
}

/// Runs the same sequence of calls through one proxy and returns each call's outcome.
fn failure_sequence(side: &Side) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // 1. No virtual host for the authority: 404 answered as UNIMPLEMENTED.
    let r = side.call(GrpcKind::Unary, &GrpcOpts { authority: Some("nowhere.test".into()), ..Default::default() });
    assert!(r["responses"].as_array().is_some_and(Vec::is_empty), "{}: {r}", side.name);
    out.push(outcome(&r));
    // 2. A cluster whose host refuses connections: 503 answered as UNAVAILABLE.
    let r = side.call(GrpcKind::Unary, &GrpcOpts { authority: Some("dead.test".into()), ..Default::default() });
    out.push(outcome(&r));
    // 3. The same for a streaming call.
    let r = side.call(
        GrpcKind::Bidi,
        &GrpcOpts { authority: Some("dead.test".into()), messages: msgs(&["x", "y"]), ..Default::default() },
    );
    out.push(outcome(&r));
    // 4. An upstream that never answers, a deadline longer than the cap: the stream's maximum
    //    duration (the capped grpc-timeout) is reached before any response header: Envoy's
    //    408 `downstream duration timeout`, answered as DEADLINE_EXCEEDED.
    let r = side.call(
        GrpcKind::Unary,
        &GrpcOpts {
            authority: Some("silent.test".into()),
            deadline: Some(Duration::from_secs(20)),
            ..Default::default()
        },
    );
    let elapsed = r["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(elapsed < 10_000, "{}: the capped timeout did not fire: {r}", side.name);
    out.push(outcome(&r));
    // 5. The echo server sends its response headers at once and sleeps: the capped timeout
    //    fires after the response started, so the stream is reset (Envoy: RST_STREAM
    //    INTERNAL_ERROR, which grpcio reports as INTERNAL).
    let r = side.call(
        GrpcKind::Unary,
        &GrpcOpts { deadline: Some(Duration::from_secs(20)), sleep_ms: 3000, ..Default::default() },
    );
    let elapsed = r["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(elapsed < 2500, "{}: the capped timeout did not fire before the server answered: {r}", side.name);
    out.push(outcome(&r));
    // 6. No deadline at all: Envoy then sets no timeout (the cap applies to a grpc-timeout
    //    only, and the route's 15 s default is replaced by none): the call outlives the cap.
    let r = side.call(GrpcKind::Unary, &GrpcOpts { sleep_ms: 1000, ..Default::default() });
    out.push(outcome(&r));
    let expected = r["responses"][0]["metadata"]["x-envoy-expected-rq-timeout-ms"].as_str().unwrap_or("none");
    out.push(("x-envoy-expected-rq-timeout-ms without grpc-timeout".into(), expected.to_string()));
    // 7. A deadline shorter than the cap: the proxy's timer (the grpc-timeout the client sent)
    //    and the client's own deadline race; either way the call ends early and fails.
    let r = side.call(
        GrpcKind::Unary,
        &GrpcOpts { deadline: Some(Duration::from_millis(300)), sleep_ms: 3000, ..Default::default() },
    );
    let elapsed = r["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(elapsed < 2500, "{}: {r}", side.name);
    assert!(["DEADLINE_EXCEEDED", "INTERNAL"].contains(&code(&r)), "{}: {r}", side.name);
    // 8. A call that succeeds under the cap.
    let r = side.call(GrpcKind::Unary, &GrpcOpts { sleep_ms: 50, ..Default::default() });
    out.push(outcome(&r));
    out
}

/// Local failures are gRPC statuses (HTTP 200, `grpc-status`, `grpc-message`), exactly as the
/// real Envoy answers them; and `grpc-timeout` is capped by `grpc_timeout_header_max`.
#[test]
fn local_failures_and_deadlines_match_envoy() {
    let server = GrpcServer::start();
    let dead = DeadPort::new();
    let silent = silent_peer();
    let cfg = config(&server.target(), dead.addr(), silent.local_addr().expect("silent address"));
    let legate = Legate::start(&cfg);
    let envoy = Envoy::start(&cfg);
    let (l, e) = (legate_side(&legate), envoy_side(&envoy));
    let mut got = failure_sequence(&l);
    let mut want = failure_sequence(&e);
    // Call 5 (timeout after the response started): Legate resets the stream with
    // INTERNAL_ERROR, as Envoy does most of the time; now and then Envoy's client sees
    // DEADLINE_EXCEEDED instead (without counting downstream_rq_max_duration_reached).
    let reset =
        ("INTERNAL".to_string(), "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))".to_string());
    assert_eq!(got[4], reset, "legate, call 5");
    assert!(want[4] == reset || want[4].0 == "DEADLINE_EXCEEDED", "envoy, call 5: {:?}", want[4]);
    got.remove(4);
    want.remove(4);
    assert_eq!(got, want, "legate's outcomes (left) differ from envoy's (right)");
    // and what they are, so a change in both is noticed too
    assert_eq!(want[0].0, "UNIMPLEMENTED");
    assert_eq!(want[1].0, "UNAVAILABLE");
    assert_eq!(want[3], ("DEADLINE_EXCEEDED".to_string(), "downstream duration timeout".to_string()));
    assert_eq!(want[4].0, "OK");
    assert_eq!(want[5].1, "none");
    assert_eq!(want[6].0, "OK");

    for side in [&l, &e] {
        let s = side.stats();
        // calls 4 and 5 (7 too when the proxy's timer beat the client's)
        let min = if side.name == "legate" { 2 } else { 1 };
        assert!(s.value("http.grpc.downstream_rq_max_duration_reached") >= min, "{}", side.name);
        // "new timeouts": no route timeout ran
        assert_eq!(s.value("cluster.echo.upstream_rq_timeout"), 0, "{}", side.name);
        assert_eq!(s.value("cluster.silent.upstream_rq_timeout"), 0, "{}", side.name);
        assert_eq!(s.value("http.grpc.no_route"), 1, "{}", side.name);
        assert_eq!(s.value("cluster.dead.upstream_cx_connect_fail"), 2, "{}", side.name);
    }
    // Local replies are HTTP 200 to the downstream.
    l.wait_eq("http.grpc.downstream_rq_4xx", 0);
    assert_eq!(l.stats().value("http.grpc.downstream_rq_5xx"), 0);
}

/// `grpc_stats` with `stats_for_all_methods`: the per-method success/failure/total counts after
/// a known sequence of calls, compared with the real Envoy's.
#[test]
fn grpc_stats_counts_match_envoy() {
    let server = GrpcServer::start();
    let dead = DeadPort::new();
    let silent = silent_peer();
    let cfg = config(&server.target(), dead.addr(), silent.local_addr().expect("silent address"));
    let legate = Legate::start(&cfg);
    let envoy = Envoy::start(&cfg);
    let sequence = |side: &Side| {
        for _ in 0..3 {
            assert_eq!(code(&side.call(GrpcKind::Unary, &GrpcOpts::default())), "OK");
        }
        let fail = GrpcOpts { fail_code: 5, fail_message: "nope".into(), ..Default::default() };
        assert_eq!(code(&side.call(GrpcKind::Unary, &fail)), "NOT_FOUND");
        let r = side.call(GrpcKind::Bidi, &GrpcOpts { messages: msgs(&["a", "b", "c"]), ..Default::default() });
        assert_eq!(code(&r), "OK");
        let r = side.call(GrpcKind::ServerStream, &GrpcOpts { repeat: 4, ..Default::default() });
        assert_eq!(code(&r), "OK");
        let r = side.call(
            GrpcKind::ClientStream,
            &GrpcOpts { messages: msgs(&["a", "b"]), fail_code: 14, ..Default::default() },
        );
        assert_eq!(code(&r), "UNAVAILABLE");
        side.wait_eq("cluster.echo.grpc.legate.test.Echo.ClientStream.total", 1);
    };
    sequence(&legate_side(&legate));
    sequence(&envoy_side(&envoy));
    let prefix = "cluster.echo.grpc.";
    let (l, e) = (legate_side(&legate).stats(), envoy_side(&envoy).stats());
    let pick = |s: &Stats| -> Vec<(String, String)> {
        s.names_with_prefix(prefix)
            .into_iter()
            .filter(|n| !n.ends_with("upstream_rq_time"))
            .map(|n| (n.clone(), s.get(&n).unwrap_or("").to_string()))
            .collect()
    };
    assert_eq!(pick(&l), pick(&e), "grpc_stats: legate (left) vs envoy (right)");
    let m = "cluster.echo.grpc.legate.test.Echo.";
    for (name, want) in [
        ("Unary.success", 3),
        ("Unary.failure", 1),
        ("Unary.total", 4),
        ("Bidi.success", 1),
        ("Bidi.total", 1),
        ("ServerStream.total", 1),
        ("ClientStream.failure", 1),
        ("ClientStream.total", 1),
    ] {
        assert_eq!(l.value(&format!("{m}{name}")), want, "{m}{name}");
    }
}
