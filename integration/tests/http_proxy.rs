//! Scenario: a user puts Legate in front of an HTTP service with an Envoy
//! http_connection_manager config and reaches it with curl (HTTP/1.1 and h2c): routing,
//! rewrites, redirects, direct responses, header mutations, timeouts, local replies,
//! traffic splitting, mirroring, WebSocket, HTTP/2 upstreams and keep-alive pooling.

use std::time::Duration;

use legate_integration::http::{curl, nghttp, ws_echo, HttpOpts, HttpUpstream};
use legate_integration::peers::DeadPort;
use legate_integration::process::{wait_until, TempDir, PATIENCE};
use legate_integration::{yaml, Legate};

fn url(l: &Legate, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", l.listener_port("web"))
}

/// One listener `web` routing `routes` with the given clusters.
fn start(routes: &str, hcm_extra: &str, filters: &str, clusters: &[String]) -> Legate {
    let hcm = format!("{}\n{hcm_extra}", yaml::route_config(routes));
    Legate::start(&yaml::bootstrap(&[yaml::http_listener("web", &hcm, filters)], clusters))
}

fn cluster(name: &str, up: &HttpUpstream) -> String {
    yaml::static_cluster(name, &[up.addr()])
}

#[test]
fn http1_and_h2c_reach_the_upstream_with_envoys_headers() {
    let up = HttpUpstream::named("a");
    let l = start("- match: {prefix: /}\n  route: {cluster: up}", "", "", &[cluster("up", &up)]);
    let r1 = curl(&[&url(&l, "/headers")]);
    assert_eq!(r1.status, 200, "{r1:?}");
    assert_eq!(r1.version, "HTTP/1.1");
    assert_eq!(r1.header("server"), Some("envoy"));
    assert!(r1.header("x-envoy-upstream-service-time").is_some(), "{r1:?}");
    let r2 = curl(&["--http2-prior-knowledge", &url(&l, "/headers")]);
    assert_eq!(r2.status, 200, "{r2:?}");
    assert_eq!(r2.version, "HTTP/2");
    let seen = up.requests();
    assert_eq!(seen.len(), 2);
    let port = l.listener_port("web");
    for r in &seen {
        assert_eq!(r.host.as_deref(), Some(format!("127.0.0.1:{port}").as_str()), "{r:?}");
        assert_eq!(r.version, "HTTP/1.1", "an HTTP/1.1 cluster gets HTTP/1.1 whatever the downstream spoke");
        let id = r.header("x-request-id").expect("x-request-id generated");
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(r.header("x-forwarded-proto"), Some("http"));
        assert_eq!(r.header("x-envoy-expected-rq-timeout-ms"), Some("15000"));
        assert_eq!(r.header("x-forwarded-for"), None, "no XFF without use_remote_address");
    }
    let s = l.stats();
    assert_eq!(s.value("http.web.downstream_rq_2xx"), 2);
    assert_eq!(s.value("http.web.downstream_cx_http1_total"), 1);
    assert_eq!(s.value("http.web.downstream_cx_http2_total"), 1);
    assert_eq!(s.value("http.web.rq_total"), 2);
    assert_eq!(s.value("cluster.up.upstream_rq_200"), 2);
    assert_eq!(s.value("cluster.up.upstream_rq_2xx"), 2);
    assert_eq!(s.value("cluster.up.upstream_rq_completed"), 2);
    assert_eq!(s.value("cluster.up.upstream_cx_http1_total"), 1, "the second request reused the pooled connection");
    for bytes in [
        "http.web.downstream_cx_rx_bytes_total",
        "http.web.downstream_cx_tx_bytes_total",
        "cluster.up.upstream_cx_rx_bytes_total",
        "cluster.up.upstream_cx_tx_bytes_total",
    ] {
        assert!(s.value(bytes) > 100, "{bytes}");
    }
}

#[test]
fn use_remote_address_appends_xff_and_marks_internal() {
    let up = HttpUpstream::named("a");
    let l =
        start("- match: {prefix: /}\n  route: {cluster: up}", "use_remote_address: true", "", &[cluster("up", &up)]);
    let r = curl(&["-H", "x-forwarded-for: 10.1.2.3", "-H", "x-envoy-max-retries: 7", &url(&l, "/headers")]);
    assert_eq!(r.status, 200);
    let seen = &up.requests()[0];
    assert_eq!(seen.header("x-forwarded-for"), Some("10.1.2.3,127.0.0.1"));
    // The peer (loopback) is internal: Envoy marks it and keeps its control headers.
    assert_eq!(seen.header("x-envoy-internal"), Some("true"));
}

#[test]
fn an_http2_cluster_gets_h2_on_one_multiplexed_connection() {
    let up = HttpUpstream::named("h2");
    let c = yaml::cluster("up", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", up.port())], yaml::HTTP2_UPSTREAM);
    let l = start("- match: {prefix: /}\n  route: {cluster: up}", "", "", &[c]);
    for _ in 0..3 {
        let r = curl(&[&url(&l, "/trailers")]);
        assert_eq!(r.status, 200, "{r:?}");
    }
    // curl 7.88 does not show HTTP/2 trailers; nghttp does.
    let r = nghttp(&[&url(&l, "/trailers")], PATIENCE);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.trailer("x-trailer"), Some("yes"), "trailers cross h2 -> h2: {r:?}");
    // Request bodies go up on their own pump: sized, chunked, and 3 MiB, more than the
    // upstream's stream window (the pump waits for window updates).
    let dir = TempDir::new("h2-body");
    let big = legate_integration::http::upstream::pattern(3 << 20);
    let big_file = dir.path().join("big");
    std::fs::write(&big_file, &big).unwrap();
    let big_arg = format!("@{}", big_file.display());
    let u = url(&l, "/echo");
    for (args, want) in [
        (vec!["--data-binary", "ping"], &b"ping"[..]),
        (vec!["-H", "transfer-encoding: chunked", "--data-binary", "pong"], &b"pong"[..]),
        (vec!["--data-binary", big_arg.as_str()], &big[..]),
    ] {
        let mut a = args.clone();
        a.push(&u);
        let r = curl(&a);
        assert_eq!(r.status, 200, "{}", r.stderr);
        assert!(r.body == want, "the body crosses h1 -> h2 intact ({} bytes back)", r.body.len());
    }
    assert!(up.requests().iter().all(|r| r.version == "HTTP/2.0"));
    assert_eq!(up.connections(), 1);
    let s = l.stats();
    assert_eq!(s.value("cluster.up.upstream_cx_http2_total"), 1);
    assert_eq!(s.value("cluster.up.upstream_rq_200"), 7);
}

/// An h2c upstream on the `h2` crate that resets the first `refuse` streams with REFUSED_STREAM
/// (what a server at its stream limit does) and answers later ones 200 `ok`.
struct RefusingH2 {
    port: u16,
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl RefusingH2 {
    fn start(refuse: usize) -> RefusingH2 {
        use std::sync::atomic::Ordering;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((sock, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(sock).await else { return };
                    while let Some(Ok((_req, mut respond))) = conn.accept().await {
                        if counter.fetch_add(1, Ordering::SeqCst) < refuse {
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                            continue;
                        }
                        let head = http::Response::builder().status(200).body(()).expect("response");
                        if let Ok(mut body) = respond.send_response(head, false) {
                            let _ = body.send_data(bytes::Bytes::from_static(b"ok"), true);
                        }
                    }
                });
            }
        });
        RefusingH2 { port, seen, _rt: rt }
    }

    fn seen(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn an_http2_upstream_refusing_a_stream_is_retried_or_answered_as_envoy_does() {
    let once = RefusingH2::start(1);
    let always = RefusingH2::start(usize::MAX);
    let h2 = yaml::HTTP2_UPSTREAM;
    let clusters = [
        yaml::cluster("once", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", once.port)], h2),
        yaml::cluster("always", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", always.port)], h2),
    ];
    let routes = "- match: {prefix: /once}
  route: {cluster: once, retry_policy: {retry_on: refused-stream, num_retries: 2}}
- match: {prefix: /retry}
  route: {cluster: always, retry_policy: {retry_on: refused-stream, num_retries: 2}}
- match: {prefix: /}
  route: {cluster: always}";
    let l = start(routes, "", "", &clusters);
    // Refused once, retried on the same connection, answered.
    let r = curl(&[&url(&l, "/once")]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]), "{}", r.stderr);
    assert_eq!(once.seen(), 2);
    // Refused every time: three attempts, then Envoy's 503 naming the last reset reason.
    let r = curl(&[&url(&l, "/retry")]);
    assert_eq!(r.status, 503);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: \
         remote refused stream reset"
    );
    assert_eq!(always.seen(), 3);
    // No retry policy: one attempt, and the reset reason as it is.
    let r = curl(&[&url(&l, "/plain")]);
    assert_eq!(r.status, 503);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset"
    );
    assert_eq!(always.seen(), 4);
    let s = l.stats();
    assert_eq!(s.value("cluster.once.upstream_rq_retry"), 1);
    assert_eq!(s.value("cluster.once.upstream_rq_retry_success"), 1);
    assert_eq!(s.value("cluster.always.upstream_rq_retry"), 2);
    assert_eq!(s.value("cluster.always.upstream_rq_retry_limit_exceeded"), 1);
    assert_eq!(s.value("cluster.always.upstream_cx_http2_total"), 1, "a refused stream leaves the connection up");
}

#[test]
fn large_and_small_bodies_alternate_on_one_pooled_connection_intact() {
    // A pooled HTTP/1.1 connection reads large bodies straight into its own buffer and small
    // ones through the shared scratch buffer, switching as sizes change; the downstream gets
    // large chunks by vectored writes. Every body must come through byte for byte.
    let up = HttpUpstream::named("a");
    let l = start("- match: {prefix: /}\n  route: {cluster: up}", "", "", &[cluster("up", &up)]);
    for n in [300_000usize, 10, 70_000, 5, 5, 5, 5, 5, 1_000_000, 20_000, 3] {
        let r = curl(&[&url(&l, &format!("/bytes/{n}"))]);
        assert_eq!(r.status, 200, "{}", r.stderr);
        assert!(r.body == legate_integration::http::upstream::pattern(n), "/bytes/{n}: {} bytes back", r.body.len());
    }
    assert_eq!(up.connections(), 1, "one pooled upstream connection carried them all");
}

#[test]
fn an_upstream_closing_a_pooled_connection_is_not_a_503() {
    // The upstream closes keep-alive connections idle for 200 ms; the next request finds its
    // pooled connection closed and must go out on a fresh one.
    let up =
        HttpUpstream::start_with(HttpOpts { h1_idle_close: Some(Duration::from_millis(200)), ..HttpOpts::named("a") });
    let l = start("- match: {prefix: /}\n  route: {cluster: up}", "", "", &[cluster("up", &up)]);
    for i in 0..4 {
        let r = curl(&[&url(&l, "/x")]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        std::thread::sleep(Duration::from_millis(400));
    }
    assert_eq!(l.stats().value("http.web.downstream_rq_5xx"), 0);
}

#[test]
fn routing_by_domain_path_regex_headers_query_and_grpc() {
    let ups: Vec<HttpUpstream> = ["exact", "suffix", "prefix", "star", "path", "regex", "sep", "hdr", "query", "grpc"]
        .iter()
        .map(|n| HttpUpstream::named(n))
        .collect();
    let clusters: Vec<String> = ups.iter().map(|u| cluster(u.name(), u)).collect();
    let routes = "route_config:
  virtual_hosts:
  - name: exact
    domains: [www.example.com]
    routes: [{match: {prefix: /}, route: {cluster: exact}}]
  - name: suffix
    domains: ['*.example.com']
    routes: [{match: {prefix: /}, route: {cluster: suffix}}]
  - name: prefix
    domains: ['api.*']
    routes: [{match: {prefix: /}, route: {cluster: prefix}}]
  - name: star
    domains: ['*']
    routes:
    - {match: {path: /exact-path}, route: {cluster: path}}
    - {match: {safe_regex: {regex: '/items/[0-9]+'}}, route: {cluster: regex}}
    - {match: {path_separated_prefix: /sep}, route: {cluster: sep}}
    - {match: {prefix: /, headers: [{name: x-tenant, string_match: {exact: blue}}]}, route: {cluster: hdr}}
    - {match: {prefix: /, query_parameters: [{name: q, string_match: {exact: '1'}}]}, route: {cluster: query}}
    - {match: {prefix: /, grpc: {}}, route: {cluster: grpc}}
    - {match: {prefix: /}, route: {cluster: star}}
";
    let l = Legate::start(&yaml::bootstrap(&[yaml::http_listener("web", routes, "")], &clusters));
    let body = |args: &[&str]| {
        let r = curl(args);
        assert_eq!(r.status, 200, "{args:?}: {r:?}");
        r.text()
    };
    let u = |p: &str| url(&l, p);
    assert_eq!(body(&["-H", "host: www.example.com", &u("/")]), "hello exact");
    assert_eq!(body(&["-H", "host: a.b.example.com", &u("/")]), "hello suffix");
    assert_eq!(body(&["-H", "host: api.other.org", &u("/")]), "hello prefix");
    assert_eq!(body(&["-H", "host: nothing.org", &u("/")]), "hello star");
    assert_eq!(body(&[&u("/exact-path")]), "hello path");
    assert_eq!(body(&[&u("/exact-path/more")]), "hello star");
    assert_eq!(body(&[&u("/items/42")]), "hello regex");
    assert_eq!(body(&[&u("/items/42x")]), "hello star", "safe_regex is a full match");
    assert_eq!(body(&[&u("/sep/a")]), "hello sep");
    assert_eq!(body(&[&u("/sep")]), "hello sep");
    assert_eq!(body(&[&u("/separate")]), "hello star", "path_separated_prefix stops at '/' boundaries");
    assert_eq!(body(&["-H", "x-tenant: blue", &u("/t")]), "hello hdr");
    assert_eq!(body(&["-H", "x-tenant: red", &u("/t")]), "hello star");
    assert_eq!(body(&[&u("/t?q=1")]), "hello query");
    assert_eq!(body(&[&u("/t?q=2")]), "hello star");
    assert_eq!(body(&["-H", "content-type: application/grpc", &u("/t")]), "hello grpc");
}

#[test]
fn rewrites_redirects_direct_responses_and_header_mutations() {
    let up = HttpUpstream::named("a");
    let routes = "route_config:
  request_headers_to_add: [{header: {key: x-level, value: config}}]
  response_headers_to_add: [{header: {key: x-resp-config, value: c}}]
  virtual_hosts:
  - name: vh
    domains: ['*']
    request_headers_to_add: [{header: {key: x-level, value: vhost}}]
    response_headers_to_remove: [x-upstream]
    routes:
    - match: {prefix: /old/}
      route: {cluster: up, prefix_rewrite: /new/}
      request_headers_to_add: [{header: {key: x-level, value: route}}, {header: {key: x-peer, value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%'}}]
      response_headers_to_add: [{header: {key: x-resp-route, value: r}}]
    - match: {prefix: /re/}
      route: {cluster: up, regex_rewrite: {pattern: {regex: '^/re/(\\w+)/(\\w+)$'}, substitution: '/\\2/\\1'}, host_rewrite_literal: rewritten.example}
    - match: {prefix: /go}
      redirect: {host_redirect: example.org, path_redirect: /landing, response_code: FOUND}
    - match: {prefix: /secure}
      redirect: {https_redirect: true}
    - match: {prefix: /direct}
      direct_response: {status: 201, body: {inline_string: made here}}
";
    let l = Legate::start(&yaml::bootstrap(&[yaml::http_listener("web", routes, "")], &[cluster("up", &up)]));
    let r = curl(&[&url(&l, "/old/thing?x=1")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), None, "removed at the vhost level");
    assert_eq!(r.header("x-resp-route"), Some("r"));
    assert_eq!(r.header("x-resp-config"), Some("c"));
    let seen = &up.requests()[0];
    assert_eq!(seen.path_and_query, "/new/thing?x=1");
    assert_eq!(seen.header("x-envoy-original-path"), Some("/old/thing?x=1"));
    let levels: Vec<&str> = seen.headers.iter().filter(|(n, _)| n == "x-level").map(|(_, v)| v.as_str()).collect();
    assert_eq!(levels, ["route", "vhost", "config"], "Envoy's order: route, vhost, route config");
    assert_eq!(seen.header("x-peer"), Some("127.0.0.1"));

    let r = curl(&[&url(&l, "/re/one/two")]);
    assert_eq!(r.status, 200);
    let seen = up.requests().pop().expect("second request");
    assert_eq!(seen.path, "/two/one");
    assert_eq!(seen.host.as_deref(), Some("rewritten.example"));

    let r = curl(&[&url(&l, "/go/x")]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.org/landing"));
    let r = curl(&["-H", "host: site.test", &url(&l, "/secure/a?b=c")]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://site.test/secure/a?b=c"));
    let r = curl(&[&url(&l, "/direct")]);
    assert_eq!(r.status, 201);
    assert_eq!(r.text(), "made here");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let s = l.stats();
    // Envoy 1.40 counts route redirects as direct responses.
    assert_eq!(s.value("http.web.rq_direct_response"), 3);
    assert_eq!(up.requests().len(), 2, "redirects and direct responses never reach the upstream");
}

#[test]
fn route_timeout_504_and_local_replies_with_flags() {
    let up = HttpUpstream::named("a");
    let dead = DeadPort::new();
    let dir = TempDir::new("http-log");
    let log = dir.path().join("access.log");
    let routes = "- match: {prefix: /delay}\n  route: {cluster: up, timeout: 1s}\n- match: {prefix: /dead}\n  route: {cluster: dead}\n- match: {prefix: /empty}\n  route: {cluster: empty}\n- match: {prefix: /missing}\n  route: {cluster_header: x-cluster}\n";
    let access = format!(
        "access_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {}\n    log_format: {{text_format_source: {{inline_string: \"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_CLUSTER% %REQ(:PATH)%\\n\"}}}}",
        log.display()
    );
    let clusters = [
        cluster("up", &up),
        yaml::static_cluster("dead", &[dead.addr()]),
        yaml::cluster("empty", "STATIC", "ROUND_ROBIN", &[], ""),
    ];
    let l = start(routes, &access, "", &clusters);
    let ok = curl(&[&url(&l, "/delay/500")]);
    assert_eq!(ok.status, 200, "0.5 s answer within a 1 s timeout: {ok:?}");
    let expected = &up.requests()[0];
    assert_eq!(expected.header("x-envoy-expected-rq-timeout-ms"), Some("1000"));
    let slow = curl(&[&url(&l, "/delay/2000")]);
    assert_eq!(slow.status, 504, "{slow:?}");
    assert_eq!(slow.text(), "upstream request timeout");
    assert_eq!(slow.header("content-type"), Some("text/plain"));
    assert_eq!(slow.header("x-envoy-upstream-service-time"), None, "never on local replies");
    let dead_r = curl(&[&url(&l, "/dead")]);
    assert_eq!(dead_r.status, 503);
    assert_eq!(
        dead_r.text(),
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
    );
    let empty = curl(&[&url(&l, "/empty")]);
    assert_eq!(empty.status, 503);
    assert_eq!(empty.text(), "no healthy upstream");
    let nr = curl(&[&url(&l, "/nowhere")]);
    assert_eq!(nr.status, 404);
    assert!(nr.body.is_empty());
    let missing = curl(&["-H", "x-cluster: nope", &url(&l, "/missing")]);
    assert_eq!(missing.status, 503);
    let s = l.stats();
    assert_eq!(s.value("cluster.up.upstream_rq_timeout"), 1);
    assert_eq!(s.value("cluster.up.upstream_rq_504"), 1);
    assert_eq!(s.value("cluster.dead.upstream_cx_connect_fail"), 1);
    assert_eq!(s.value("cluster.empty.upstream_cx_none_healthy"), 1);
    assert_eq!(s.value("http.web.no_route"), 1);
    assert_eq!(s.value("http.web.no_cluster"), 1);
    let lines = wait_until("six access-log lines", PATIENCE, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 6).then_some(text)
    });
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines[0], "200 - via_upstream up /delay/500");
    assert_eq!(lines[1], "504 UT response_timeout up /delay/2000");
    assert!(
        lines[2].starts_with("503 UF upstream_reset_before_response_started{remote_connection_failure"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "503 UH no_healthy_upstream empty /empty");
    assert_eq!(lines[4], "404 NR route_not_found - /nowhere");
    assert_eq!(lines[5], "503 NC cluster_not_found - /missing");
}

#[test]
fn weighted_clusters_split_traffic_within_tolerance() {
    let a = HttpUpstream::named("a");
    let b = HttpUpstream::named("b");
    let routes = "- match: {prefix: /}\n  route:\n    weighted_clusters:\n      clusters: [{name: a, weight: 80}, {name: b, weight: 20}]";
    let l = start(routes, "", "", &[cluster("a", &a), cluster("b", &b)]);
    // One curl process, 200 requests on one keep-alive connection.
    let u = url(&l, "/w");
    let args: Vec<String> = (0..200).flat_map(|_| ["-o".to_string(), "/dev/null".to_string(), u.clone()]).collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = curl(&refs);
    assert_eq!(r.exit_code, 0, "{r:?}");
    let (na, nb) = (a.count("/w"), b.count("/w"));
    assert_eq!(na + nb, 200);
    // 80% of 200 = 160; binomial sd ~5.7: +-30 is over 5 sd.
    assert!((130..=190).contains(&na), "a got {na}, b got {nb}");
}

#[test]
fn mirrored_requests_reach_the_shadow_with_the_shadow_host() {
    let main = HttpUpstream::named("main");
    let shadow = HttpUpstream::named("shadow");
    let routes = "- match: {prefix: /}\n  route:\n    cluster: main\n    request_mirror_policies: [{cluster: shadow}]";
    let l = start(routes, "", "", &[cluster("main", &main), cluster("shadow", &shadow)]);
    let r = curl(&["-H", "host: app.test:8080", &url(&l, "/m")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello main");
    let r = curl(&["-H", "host: app.test:8080", "--data", "payload", &url(&l, "/echo")]);
    assert_eq!(r.text(), "payload");
    assert_eq!(shadow.wait_count("/", 2, PATIENCE), 2);
    let seen = shadow.requests();
    assert_eq!(seen[0].host.as_deref(), Some("app.test-shadow:8080"));
    assert_eq!(seen[1].method, "POST");
}

#[test]
fn websocket_upgrade_tunnels_both_ways() {
    let up = HttpUpstream::named("ws");
    let l = start(
        "- match: {prefix: /}\n  route: {cluster: up}",
        "upgrade_configs: [{upgrade_type: websocket}]",
        "",
        &[cluster("up", &up)],
    );
    let replies =
        ws_echo(l.listener_addr("web"), "/ws", &[], &["one", "two", "three"], PATIENCE).expect("websocket echo");
    assert_eq!(replies, ["one", "two", "three"]);
    l.wait_stat_eq("http.web.downstream_cx_upgrades_total", 1);
    // Without upgrade_configs, Envoy refuses the upgrade with 403.
    let l2 = start("- match: {prefix: /}\n  route: {cluster: up}", "", "", &[cluster("up", &up)]);
    let refused = ws_echo(l2.listener_addr("web"), "/ws", &[], &["x"], PATIENCE);
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(l2.stats().value("http.web.downstream_rq_4xx"), 1);
}

#[test]
fn retries_recover_flaky_upstreams_and_honour_the_request_overrides() {
    let up = HttpUpstream::named("a");
    let routes = "- match: {prefix: /policy/}
  route:
    cluster: up
    prefix_rewrite: /
    retry_policy: {retry_on: 5xx, num_retries: 3, per_try_timeout: 0.3s, retry_back_off: {base_interval: 0.001s}}
- match: {prefix: /}
  route: {cluster: up}";
    let l = start(routes, "", "", &[cluster("up", &up)]);
    // Fails twice, then answers: two retries, one success.
    let r = curl(&[&url(&l, "/policy/flaky/k1/2")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(up.count("/flaky/k1"), 3);
    let s = l.stats();
    assert_eq!(s.value("cluster.up.upstream_rq_retry"), 2);
    assert_eq!(s.value("cluster.up.upstream_rq_retry_success"), 1);
    // A try slower than per_try_timeout is retried; all three are too slow: 504 UT.
    let r = curl(&[&url(&l, "/policy/delay/600")]);
    assert_eq!(r.status, 504, "{r:?}");
    assert_eq!(l.stats().value("cluster.up.upstream_rq_per_try_timeout"), 4);
    // No policy on the route: the request asks for retries itself.
    let r = curl(&["-H", "x-envoy-retry-on: 5xx", "-H", "x-envoy-max-retries: 2", &url(&l, "/flaky/k2/2")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(up.count("/flaky/k2"), 3);
    assert!(
        up.requests().iter().all(|r| r.header("x-envoy-max-retries").is_none()),
        "control headers are not forwarded"
    );
    // A POST body is replayed on each try.
    let r = curl(&["-H", "x-envoy-retry-on: 5xx", "--data", "same body", &url(&l, "/flaky/k3/1")]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn connect_failures_are_retried_on_the_next_host() {
    let up = HttpUpstream::named("alive");
    let dead = DeadPort::new();
    let c = yaml::cluster("up", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", dead.port()), ("127.0.0.1", up.port())], "");
    let routes =
        "- match: {prefix: /}\n  route: {cluster: up, retry_policy: {retry_on: connect-failure, num_retries: 1}}";
    let l = start(routes, "", "", &[c]);
    for i in 0..4 {
        let r = curl(&[&url(&l, "/x")]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
    }
    assert!(l.stats().value("cluster.up.upstream_cx_connect_fail") >= 1);
}

/// `configs/http-gateway.yaml` (docker-compose service `legate-http`), natively: the same
/// config with the `httpbin` service replaced by the test server and ports made ephemeral.
#[test]
fn the_http_gateway_example_works_as_documented() {
    let up = HttpUpstream::named("httpbin");
    let root = legate_integration::legate::workspace_root();
    let cfg = std::fs::read_to_string(root.join("configs/http-gateway.yaml")).expect("example config");
    let cfg = cfg
        .replace("address: httpbin, port_value: 80", &format!("address: 127.0.0.1, port_value: {}", up.port()))
        .replace("type: STRICT_DNS", "type: STATIC")
        .replace("address: 0.0.0.0, port_value: 8000", "address: 127.0.0.1, port_value: 0")
        .replace("address: 0.0.0.0, port_value: 9901", "address: 127.0.0.1, port_value: 0");
    let l = Legate::start(&cfg);
    let base = format!("http://127.0.0.1:{}", l.listener_port("http"));
    let r = curl(&[&format!("{base}/")]);
    assert_eq!((r.status, r.text().as_str()), (200, "legate http gateway\n"));
    let r = curl(&[&format!("{base}/httpbin/headers")]);
    assert_eq!(r.status, 200);
    assert_eq!(up.requests()[0].path, "/headers");
    let r = curl(&[&format!("{base}/httpbin/delay/2500")]);
    assert_eq!((r.status, r.text().as_str()), (504, "upstream request timeout"));
    let r = curl(&["--http2-prior-knowledge", &format!("{base}/httpbin/status/503")]);
    assert_eq!(r.status, 503);
    let s = l.stats();
    assert_eq!(s.value("cluster.httpbin.upstream_rq_retry"), 3);
    assert_eq!(s.value("cluster.httpbin.upstream_rq_retry_limit_exceeded"), 1);
}

#[test]
fn access_log_counts_request_and_response_body_bytes() {
    let up = HttpUpstream::named("a");
    let dir = TempDir::new("http-bytes");
    let log = dir.path().join("access.log");
    let access = format!(
        "access_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {}\n    log_format: {{text_format_source: {{inline_string: \"%REQ(:METHOD)% %BYTES_RECEIVED% %BYTES_SENT% %PROTOCOL%\\n\"}}}}",
        log.display()
    );
    let l = start("- match: {prefix: /}\n  route: {cluster: up}", &access, "", &[cluster("up", &up)]);
    let r = curl(&["--data", "123456789", &url(&l, "/echo")]);
    assert_eq!(r.text(), "123456789");
    let text = wait_until("one access-log line", PATIENCE, || {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(text.trim_end(), "POST 9 9 HTTP/1.1");
}

#[test]
fn draining_closes_idle_keep_alive_connections_at_once() {
    use std::io::{Read, Write};
    let up = HttpUpstream::named("a");
    let yaml_text = yaml::bootstrap(
        &[yaml::http_listener("web", &yaml::route_config("- match: {prefix: /}\n  route: {cluster: up}"), "")],
        &[cluster("up", &up)],
    );
    let mut l = Legate::start_with(&yaml_text, &["--drain-time-s", "60"]);
    let mut c = std::net::TcpStream::connect(l.listener_addr("web")).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c.write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n").expect("request");
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).expect("response");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    // SIGTERM: the idle keep-alive connection is closed gracefully right away, so Legate exits
    // long before the 60 s drain time.
    let started = std::time::Instant::now();
    assert_eq!(l.stop(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(30), "exit took {:?}", started.elapsed());
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "the client sees the connection closed");
}
