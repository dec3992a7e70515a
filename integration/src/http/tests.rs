//! Self tests of the HTTP peers: the upstream test server driven by the real curl, h2load and
//! a WebSocket client, and the gRPC server driven by the gRPC client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::upstream::pattern;
use super::*;
use crate::process::TempDir;

fn url(up: &HttpUpstream, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", up.port())
}

#[test]
fn http1_endpoints() {
    let up = HttpUpstream::named("alpha");
    let r = curl(&[&url(&up, "/anything")]);
    assert_eq!((r.exit_code, r.status, r.version.as_str()), (0, 200, "HTTP/1.1"), "{r:?}");
    assert_eq!(r.text(), "hello alpha");
    assert_eq!(r.header("x-upstream"), Some("alpha"));

    assert_eq!(curl(&[&url(&up, "/status/418")]).status, 418);
    assert_eq!(curl(&[&url(&up, "/status/503")]).status, 503);
    assert_eq!(curl(&[&url(&up, "/status/99")]).status, 400);

    let r = curl(&["-H", "x-custom: 1", "-H", "x-custom: 2", &url(&up, "/headers?q=1")]);
    let j = r.json();
    assert_eq!(j["method"], "GET");
    assert_eq!(j["path"], "/headers?q=1");
    assert_eq!(j["version"], "HTTP/1.1");
    assert_eq!(j["authority"], format!("127.0.0.1:{}", up.port()));
    assert_eq!(j["upstream"], "alpha");
    assert_eq!(j["headers"]["x-custom"], "1,2");
    assert_eq!(j["headers"]["host"], format!("127.0.0.1:{}", up.port()));

    let r = curl(&[&url(&up, "/bytes/100000")]);
    assert_eq!(r.body, pattern(100_000));

    let t0 = Instant::now();
    let r = curl(&[&url(&up, "/delay/300")]);
    assert_eq!((r.status, r.text().as_str()), (200, "delayed"));
    assert!(t0.elapsed() >= Duration::from_millis(300));

    let dir = TempDir::new("echo");
    let big = String::from_utf8(pattern(1 << 20)).expect("ascii");
    let file = dir.write("big", &big);
    let r = curl(&["--data-binary", &format!("@{}", file.display()), "-H", "content-type: x/y", &url(&up, "/echo")]);
    assert_eq!((r.status, r.body.len(), r.header("content-type")), (200, 1 << 20, Some("x/y")));
    assert!(r.body == big.as_bytes());

    let recs = up.requests();
    assert_eq!(recs.len(), 8);
    assert_eq!(recs[0].path, "/anything");
    assert_eq!(recs[0].host.as_deref(), Some(format!("127.0.0.1:{}", up.port()).as_str()));
    assert_eq!(recs[4].header("x-custom"), Some("1"));
    assert_eq!(recs[4].path_and_query, "/headers?q=1");
    assert_eq!(recs[7].method, "POST");
    assert_eq!(up.count("/status/"), 3);
    assert_eq!(up.wait_count("/delay", 1, Duration::from_secs(1)), 1);
    up.clear();
    assert_eq!(up.count("/"), 0);
}

#[test]
fn h2c_prior_knowledge_and_trailers() {
    let up = HttpUpstream::start();
    let r = curl(&["--http2-prior-knowledge", &url(&up, "/headers")]);
    assert_eq!((r.status, r.version.as_str()), (200, "HTTP/2"), "{r:?}");
    let j = r.json();
    assert_eq!(j["version"], "HTTP/2.0");
    assert_eq!(j["authority"], format!("127.0.0.1:{}", up.port()));

    let r = curl(&["--http2-prior-knowledge", &url(&up, "/trailers")]);
    assert_eq!((r.status, r.text().as_str()), (200, "trailers"));
    // curl does not report HTTP/2 trailers; nghttp does
    let r = nghttp(&[&url(&up, "/trailers")], Duration::from_secs(10));
    assert_eq!((r.exit_code, r.status), (0, 200), "{}", r.stdout);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.trailer("x-trailer"), Some("yes"), "{}", r.stdout);

    let r = curl(&["--http2-prior-knowledge", "--data-binary", "ping", &url(&up, "/echo")]);
    assert_eq!(r.text(), "ping");
    assert_eq!(up.requests()[0].version, "HTTP/2.0");
}

#[test]
fn keep_alive_close_and_flaky() {
    let up = HttpUpstream::start();
    // one curl, three URLs: one kept-alive connection
    let r = curl(&[&url(&up, "/a"), &url(&up, "/b"), &url(&up, "/c")]);
    assert_eq!(r.exit_code, 0);
    assert_eq!(up.connections(), 1);
    assert!(up.requests().iter().all(|r| r.conn == 1));

    // /close ends the connection: the next request needs a new one
    let r = curl(&[&url(&up, "/close"), &url(&up, "/d")]);
    assert_eq!(r.exit_code, 0);
    assert_eq!(up.connections(), 3);

    let codes: Vec<u16> = (0..4).map(|_| curl(&[&url(&up, "/flaky/k1/2")]).status).collect();
    assert_eq!(codes, vec![500, 500, 200, 200]);
    assert_eq!(curl(&[&url(&up, "/flaky/k2/1")]).status, 500);
}

fn read_response(s: &mut TcpStream) -> String {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("hello") {
        let n = s.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn idle_keep_alive_connections_are_closed_when_asked() {
    let up =
        HttpUpstream::start_with(HttpOpts { h1_idle_close: Some(Duration::from_millis(300)), ..HttpOpts::default() });
    let mut s = TcpStream::connect(up.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
    assert!(read_response(&mut s).starts_with("HTTP/1.1 200"));
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    assert_eq!(s.read(&mut b).expect("read EOF"), 0, "server should close the idle connection");
    assert!(t0.elapsed() < Duration::from_secs(3));

    // without the option the connection stays open
    let up = HttpUpstream::start();
    let mut s = TcpStream::connect(up.addr()).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
    read_response(&mut s);
    s.set_read_timeout(Some(Duration::from_millis(600))).expect("timeout");
    assert!(s.read(&mut b).is_err(), "connection must stay open");
}

#[test]
fn protocol_restrictions() {
    let up = HttpUpstream::start_with(HttpOpts { protocols: Protocols::Http2Only, ..HttpOpts::default() });
    assert_ne!(curl(&[&url(&up, "/")]).status, 200);
    assert_eq!(curl(&["--http2-prior-knowledge", &url(&up, "/")]).status, 200);
    let up = HttpUpstream::start_with(HttpOpts { protocols: Protocols::Http1Only, ..HttpOpts::default() });
    assert_eq!(curl(&[&url(&up, "/")]).status, 200);
    assert_ne!(curl(&["--http2-prior-knowledge", &url(&up, "/")]).status, 200);
}

#[test]
fn websocket_echo() {
    let up = HttpUpstream::start();
    let replies = ws_echo(up.addr(), "/ws", &[("x-test", "1")], &["one", "two", "three"], Duration::from_secs(10))
        .expect("websocket echo");
    assert_eq!(replies, vec!["one", "two", "three"]);
    let rec = &up.requests()[0];
    assert_eq!((rec.path.as_str(), rec.header("upgrade"), rec.header("x-test")), ("/ws", Some("websocket"), Some("1")));
    // a plain GET to /ws is refused
    assert_eq!(curl(&[&url(&up, "/ws")]).status, 400);
}

#[test]
fn h2load_bounded_load() {
    let up = HttpUpstream::start();
    let r = h2load(&["-n", "200", "-c", "2", "-m", "10", &url(&up, "/")], Duration::from_secs(30));
    assert_eq!((r.exit_code, r.total, r.succeeded, r.status[0]), (0, 200, 200, 200), "{}", r.stdout);
    assert_eq!(up.count("/"), 200);
    assert!(up.requests().iter().all(|r| r.version == "HTTP/2.0"));
}

#[test]
fn grpc_peers_all_call_kinds() {
    let server = GrpcServer::named("g1");
    let t = server.target();
    let md = vec![("x-req".to_string(), "v1".to_string())];
    let msgs = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let opts = GrpcOpts { messages: msgs, metadata: md, repeat: 2, ..GrpcOpts::default() };

    let r = grpc_call(&t, GrpcKind::Unary, &opts);
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["responses"][0]["message"], "a");
    assert_eq!(r["responses"][0]["server"], "g1");
    assert_eq!(r["responses"][0]["metadata"]["x-req"], "v1");
    assert_eq!(r["initial_metadata"]["x-req"], "v1");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes");

    let r = grpc_call(&t, GrpcKind::ClientStream, &opts);
    assert_eq!((r["code"].as_str(), r["responses"][0]["message"].as_str()), (Some("OK"), Some("a,b,c")), "{r}");

    let r = grpc_call(&t, GrpcKind::ServerStream, &opts);
    let got: Vec<&str> =
        r["responses"].as_array().expect("responses").iter().filter_map(|x| x["message"].as_str()).collect();
    assert_eq!(got, vec!["a#0", "a#1"], "{r}");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes");

    let r = grpc_call(&t, GrpcKind::Bidi, &opts);
    let got: Vec<&str> =
        r["responses"].as_array().expect("responses").iter().filter_map(|x| x["message"].as_str()).collect();
    assert_eq!(got, vec!["a", "b", "c"], "{r}");

    // failures carry the requested code, details and the trailer
    let fail = GrpcOpts { fail_code: 5, fail_message: "nope".into(), repeat: 1, ..GrpcOpts::default() };
    let r = grpc_call(&t, GrpcKind::ServerStream, &fail);
    assert_eq!(
        (r["code"].as_str(), r["code_value"].as_i64(), r["details"].as_str()),
        (Some("NOT_FOUND"), Some(5), Some("nope"))
    );
    assert_eq!(r["responses"].as_array().map(Vec::len), Some(1), "one reply before the failure: {r}");
    assert_eq!(r["trailing_metadata"]["x-trailer"], "yes");

    // a deadline shorter than the server's sleep
    let slow = GrpcOpts { sleep_ms: 2000, deadline: Some(Duration::from_millis(300)), ..GrpcOpts::default() };
    let r = grpc_call(&t, GrpcKind::Unary, &slow);
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert!(r["elapsed_ms"].as_u64().is_some_and(|ms| ms < 1800), "{r}");
}
