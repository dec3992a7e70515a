//! Scenario: Legate's own HTTP/1.1 server codec on the wire, byte for byte beside Envoy 1.40
//! on the same config: pipelined requests answered in order, chunked bodies both ways,
//! `Expect: 100-continue`, HTTP/1.0 (refused with 426 unless `accept_http_10`), oversized and
//! malformed requests (status line, body and the codec stats Envoy counts).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::http::HttpUpstream;
use legate_integration::process::PATIENCE;
use legate_integration::{yaml, Legate};

/// Two listeners on one upstream: `web` (defaults, `max_request_headers_kb: 8`) and `h10`
/// (`accept_http_10` with `default_host_for_http_10`).
fn config(up: SocketAddr) -> String {
    let routes = yaml::route_config("- match: {prefix: /}\n  route: {cluster: up}");
    let web = yaml::http_listener("web", &format!("max_request_headers_kb: 8\n{routes}"), "");
    let h10 = yaml::http_listener(
        "h10",
        &format!("http_protocol_options: {{accept_http_10: true, default_host_for_http_10: legacy.example}}\n{routes}"),
        "",
    );
    yaml::bootstrap(&[web, h10], &[yaml::static_cluster("up", &[up])])
}

struct Side {
    name: &'static str,
    admin: SocketAddr,
    web: u16,
    h10: u16,
}

impl Side {
    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    /// Waits (bounded) for counter `name` to read `want`; returns what it read last.
    fn settle(&self, name: &str, want: u64) -> Option<u64> {
        let mut last = None;
        legate_integration::process::wait_until_or(PATIENCE, || {
            last = self.stats().get(name).and_then(|v| v.parse().ok());
            last == Some(want)
        });
        last
    }
}

fn sides(cfg: &str) -> (Legate, Envoy, Side, Side) {
    let legate = Legate::start(cfg);
    let envoy = Envoy::start(cfg);
    let l = Side {
        name: "legate",
        admin: legate.admin,
        web: legate.listener_port("web"),
        h10: legate.listener_port("h10"),
    };
    let e =
        Side { name: "envoy", admin: envoy.admin, web: envoy.listener_port("web"), h10: envoy.listener_port("h10") };
    (legate, envoy, l, e)
}

use legate_integration::http::{raw_exchange as exchange, read_to_close};

/// One parsed response: status line, headers (lower-case names, in order), decoded body.
#[derive(Debug, Clone, PartialEq)]
struct Resp {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Status, body and the headers that do not differ by nature (date, server timing, ids).
    fn comparable(&self) -> (String, Vec<(String, String)>, Vec<u8>) {
        let keep = ["content-length", "content-type", "transfer-encoding", "connection"];
        let h = self.headers.iter().filter(|(n, _)| keep.contains(&n.as_str())).cloned().collect();
        (self.status.clone(), h, self.body.clone())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses every response in `raw` (content-length, chunked, or to the end).
fn responses(mut raw: &[u8], head_only_first: bool) -> Vec<Resp> {
    let mut out = Vec::new();
    while let Some(end) = find(raw, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        raw = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut r = Resp { status, headers, body: Vec::new() };
        let informational = r.status.split(' ').nth(1).is_some_and(|c| c.starts_with('1'));
        if informational || (head_only_first && out.is_empty()) {
            out.push(r);
            continue;
        }
        if r.header("transfer-encoding") == Some("chunked") {
            while let Some(le) = find(raw, b"\r\n") {
                let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..le]).trim(), 16).unwrap_or(0);
                raw = &raw[le + 2..];
                if size == 0 {
                    raw = raw.get(2..).unwrap_or(&[]);
                    break;
                }
                let n = size.min(raw.len());
                r.body.extend_from_slice(&raw[..n]);
                raw = raw.get(n + 2..).unwrap_or(&[]);
            }
        } else if let Some(n) = r.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let n = n.min(raw.len());
            r.body = raw[..n].to_vec();
            raw = &raw[n..];
        } else {
            r.body = raw.to_vec();
            raw = &[];
        }
        out.push(r);
    }
    out
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    let burst = b"GET /status/201 HTTP/1.1\r\nhost: a\r\n\r\n\
        POST /echo HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello\
        GET /bytes/10 HTTP/1.1\r\nhost: a\r\n\r\n\
        GET /status/204 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n";
    let mut all = Vec::new();
    for side in [&l, &e] {
        let got = responses(&exchange(side.web, burst), false);
        let statuses: Vec<&str> = got.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(
            statuses,
            ["HTTP/1.1 201 Created", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 204 No Content"],
            "{}: {got:?}",
            side.name
        );
        assert_eq!(got[1].body, b"hello", "{}", side.name);
        assert_eq!(got[2].body, b"abcdefghij", "{}", side.name);
        assert_eq!(got[3].header("connection"), Some("close"), "{}", side.name);
        all.push(got.iter().map(|r| (r.status.clone(), r.body.clone())).collect::<Vec<_>>());
    }
    assert_eq!(all[0], all[1], "legate (left) vs envoy (right)");
    // All four went upstream on the one downstream connection, in order.
    let paths: Vec<String> = up.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/status/201", "/echo", "/bytes/10", "/status/204"].repeat(2));
}

#[test]
fn chunked_bodies_both_ways() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    // A chunked request (with an extension and a trailer section) to /echo, which streams the
    // body back without a length: chunked on the way back too.
    let req = b"POST /echo HTTP/1.1\r\nhost: a\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\
        connection: close\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n";
    let mut seen = Vec::new();
    for side in [&l, &e] {
        let got = responses(&exchange(side.web, req), false);
        assert_eq!(got.len(), 1, "{}: {got:?}", side.name);
        assert_eq!(got[0].status, "HTTP/1.1 200 OK", "{}", side.name);
        assert_eq!(got[0].header("transfer-encoding"), Some("chunked"), "{}: {got:?}", side.name);
        assert_eq!(got[0].body, b"hello world!", "{}", side.name);
        seen.push(got[0].comparable());
    }
    assert_eq!(seen[0], seen[1], "legate (left) vs envoy (right)");
    // The upstream got the body chunked as well (no length was known).
    let echo: Vec<_> = up.requests().into_iter().filter(|r| r.path == "/echo").collect();
    assert_eq!(echo.len(), 2);
    for r in &echo {
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
    }
    // A 1 MiB response with a length passes through with its length.
    for side in [&l, &e] {
        let got = responses(
            &exchange(side.web, b"GET /bytes/1048576 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"),
            false,
        );
        assert_eq!(got[0].header("content-length"), Some("1048576"), "{}", side.name);
        assert_eq!(got[0].body.len(), 1_048_576, "{}", side.name);
    }
}

#[test]
fn expect_100_continue_is_answered_locally_as_envoy() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    let mut seen = Vec::new();
    for side in [&l, &e] {
        let mut s = TcpStream::connect(("127.0.0.1", side.web)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(
            b"PUT /echo HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 4\r\nconnection: close\r\n\r\n",
        )
        .expect("write head");
        // The interim response comes before any body byte is sent.
        let mut interim = Vec::new();
        let mut buf = [0u8; 1024];
        while find(&interim, b"\r\n\r\n").is_none() {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => interim.extend_from_slice(&buf[..n]),
            }
        }
        s.write_all(b"ping").expect("write body");
        interim.extend_from_slice(&read_to_close(&mut s));
        let got = responses(&interim, false);
        assert_eq!(got.len(), 2, "{}: {got:?}", side.name);
        assert_eq!(got[0].status, "HTTP/1.1 100 Continue", "{}", side.name);
        assert_eq!(got[1].body, b"ping", "{}", side.name);
        seen.push((got[0].clone(), got[1].status.clone()));
    }
    assert_eq!(seen[0], seen[1], "legate (left) vs envoy (right)");
    // `Expect` is not passed on: the upstream never answers a 100 itself.
    for r in up.requests() {
        assert_eq!(r.header("expect"), None, "{r:?}");
    }
    for name in ["http.web.downstream_rq_1xx", "http.web.downstream_rq_2xx", "http.web.downstream_rq_total"] {
        let want = e.settle(name, 1).unwrap_or(0);
        assert_eq!(l.settle(name, want), Some(want), "{name}: legate vs envoy ({want})");
    }
}

#[test]
fn http10_is_refused_with_426_unless_accepted() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    let mut refused = Vec::new();
    let mut accepted = Vec::new();
    for side in [&l, &e] {
        let got = responses(&exchange(side.web, b"GET /hello HTTP/1.0\r\n\r\n"), false);
        assert_eq!(got.len(), 1, "{}: {got:?}", side.name);
        assert_eq!(got[0].status, "HTTP/1.1 426 Upgrade Required", "{}", side.name);
        refused.push(got[0].comparable());
        // Accepted: no Host, so the default host is used; answered in HTTP/1.0, and the
        // connection closes after the response.
        let got = responses(&exchange(side.h10, b"GET /headers HTTP/1.0\r\n\r\n"), false);
        assert_eq!(got.len(), 1, "{}: {got:?}", side.name);
        assert_eq!(got[0].status, "HTTP/1.0 200 OK", "{}", side.name);
        let c = got[0].comparable();
        accepted.push((c.0, c.1.into_iter().filter(|(n, _)| n != "content-length").collect::<Vec<_>>()));
    }
    assert_eq!(refused[0], refused[1], "426: legate (left) vs envoy (right)");
    assert_eq!(accepted[0], accepted[1]);
    let hosts: Vec<Option<String>> = up.requests().iter().map(|r| r.host.clone()).collect();
    assert_eq!(hosts, [Some("legacy.example".to_string()), Some("legacy.example".to_string())]);
    let name = "http.web.downstream_cx_protocol_error";
    let want = e.settle(name, 1).unwrap_or(0);
    assert_eq!(l.settle(name, want), Some(want), "{name}: legate vs envoy");
}

#[test]
fn oversized_and_malformed_requests_match_envoy() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    let many =
        format!("GET / HTTP/1.1\r\nhost: a\r\n{}\r\n", (0..101).map(|i| format!("x-h{i}: v\r\n")).collect::<String>());
    let big = format!("GET / HTTP/1.1\r\nhost: a\r\nx-big: {}\r\n\r\n", "a".repeat(9000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("headers over max_request_headers_kb", big.into_bytes()),
        ("more than max_headers_count headers", many.into_bytes()),
        (
            "content-length and chunked",
            b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        ),
        ("unknown transfer-encoding", b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\n\r\n".to_vec()),
        ("non-numeric content-length", b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: abc\r\n\r\n".to_vec()),
        ("garbage request line", b"HELLO\r\n\r\n".to_vec()),
        ("bad version", b"GET / HTTP/2.5\r\nhost: a\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in &cases {
        let got = responses(&exchange(l.web, bytes), false);
        let want = responses(&exchange(e.web, bytes), false);
        assert_eq!(got.len(), 1, "{what}: legate: {got:?}");
        assert_eq!(want.len(), 1, "{what}: envoy: {want:?}");
        assert_eq!(got[0].comparable(), want[0].comparable(), "{what}: legate (left) vs envoy (right)");
    }
    let n = cases.len() as u64;
    for name in ["http.web.downstream_cx_protocol_error", "http.web.downstream_rq_4xx", "http.web.downstream_rq_5xx"] {
        let want = e.settle(name, n).unwrap_or(0);
        assert_eq!(l.settle(name, want), Some(want), "{name}: legate vs envoy");
    }
    assert_eq!(up.count("/"), 0, "nothing malformed reached the upstream");
}

#[test]
fn upstream_keep_alive_reuses_one_pooled_connection() {
    let up = HttpUpstream::start();
    let (_legate, _envoy, l, e) = sides(&config(up.addr()));
    // Sequential requests from separate downstream connections, bodies of every framing the
    // upstream client reads (length, chunked, none), then a chunked request body: all on one
    // pooled upstream connection.
    let reqs: [&[u8]; 5] = [
        b"GET /bytes/100000 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        b"GET /status/204 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        b"HEAD /bytes/10 HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    ];
    let mut opened = Vec::new();
    for side in [&l, &e] {
        let before = up.connections();
        for (i, r) in reqs.iter().enumerate() {
            let got = responses(&exchange(side.web, r), i == 2);
            assert_eq!(got.len(), 1, "{} request {i}: {got:?}", side.name);
            assert!(got[0].status.starts_with("HTTP/1.1 2"), "{} request {i}: {got:?}", side.name);
            if i == 0 {
                assert_eq!(got[0].body.len(), 100_000, "{}", side.name);
            }
            if i == 3 {
                assert_eq!(got[0].body, b"abc", "{}", side.name);
            }
        }
        opened.push(up.connections() - before);
    }
    // Legate keeps the one connection; Envoy 1.40 opened a second one in this sequence (which
    // request made it do so was not investigated), so only Legate's count is pinned.
    assert_eq!(opened[0], 1, "legate: one upstream connection for all");
    assert!(opened[1] >= 1 && opened[1] <= 5, "envoy: {}", opened[1]);
    assert_eq!(l.settle("cluster.up.upstream_cx_http1_total", 1), Some(1));
    for name in ["cluster.up.upstream_rq_total", "cluster.up.upstream_rq_2xx"] {
        let want = e.settle(name, 5).unwrap_or(0);
        assert_eq!(l.settle(name, want), Some(want), "{name}: legate vs envoy");
    }
}
