//! Scenario: clients and upstreams that break the protocol. A malformed HTTP/1.1 request line,
//! oversized headers, invalid HTTP/2 frames, a bounded RST_STREAM/PING flood, an upstream that
//! answers garbage and one that resets mid-body. Each must end in a clean 400/431/502/503, a
//! GOAWAY or the reset of that stream only, with the matching stat; other connections keep
//! being served and Legate never panics (`/ready` still 200 afterwards). Where Envoy answers
//! (status line, body, stats) the real Envoy 1.40 serves the same config and must agree.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::http::{curl, HttpUpstream};
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{yaml, Legate};

/// `max_request_headers_kb` of the test listener.
const MAX_HEADERS_KB: u32 = 8;

/// An upstream on 127.0.0.1 that runs `serve` on each accepted connection (one thread each);
/// stopped on drop.
struct RawPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawPeer {
    fn start(serve: fn(TcpStream)) -> RawPeer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind raw peer");
        l.set_nonblocking(true).expect("non-blocking");
        let addr = l.local_addr().expect("raw peer address");
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RawPeer { addr, stop, thread: Some(thread) }
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads until the end of a request head (bounded by the read timeout).
fn read_head(s: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Answers every request with bytes that are not HTTP.
fn garbage(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"nonsense\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
}

/// Promises 100000 bytes, sends 1000, then resets the connection (RST, not FIN).
fn reset_mid_body(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n");
    let _ = s.write_all(&[b'x'; 1000]);
    let _ = s.flush();
    std::thread::sleep(Duration::from_millis(100));
    let sock = socket2::SockRef::from(&s);
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// One listener `web` (codec AUTO, `max_request_headers_kb` 8): `/garbage` and `/midreset` go to
/// the raw peers, everything else to the HTTP test server.
fn config(up: SocketAddr, garbage: SocketAddr, midreset: SocketAddr) -> String {
    let routes = "- match: {prefix: /garbage}\n  route: {cluster: garbage}\n- match: {prefix: /midreset}\n  route: {cluster: midreset}\n- match: {prefix: /}\n  route: {cluster: up}";
    let hcm = format!("codec_type: AUTO\nmax_request_headers_kb: {MAX_HEADERS_KB}\n{}", yaml::route_config(routes));
    let listener = yaml::http_listener("web", &hcm, "");
    yaml::bootstrap(
        &[listener],
        &[
            yaml::static_cluster("up", &[up]),
            yaml::static_cluster("garbage", &[garbage]),
            yaml::static_cluster("midreset", &[midreset]),
        ],
    )
}

struct Peers {
    up: HttpUpstream,
    _garbage: RawPeer,
    _midreset: RawPeer,
    cfg: String,
}

fn peers() -> Peers {
    let up = HttpUpstream::start();
    let g = RawPeer::start(garbage);
    let m = RawPeer::start(reset_mid_body);
    let cfg = config(up.addr(), g.addr, m.addr);
    Peers { up, _garbage: g, _midreset: m, cfg }
}

struct Side {
    name: &'static str,
    admin: SocketAddr,
    port: u16,
}

impl Side {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    fn wait_eq(&self, name: &str, want: u64) {
        let mut last = None;
        let ok = legate_integration::process::wait_until_or(PATIENCE, || {
            last = self.stats().get(name).map(str::to_string);
            last.as_deref() == Some(want.to_string().as_str())
        });
        assert!(ok, "{}: {name} is {last:?}, expected {want}", self.name);
    }

    /// Still serving: `/ready` answers 200 and a proxied request succeeds.
    fn assert_healthy(&self) {
        let r = admin::get(self.admin, "/ready");
        assert_eq!(r.status, 200, "{}: /ready: {}", self.name, r.body);
        let r = curl(&[&self.url("/hello")]);
        assert_eq!((r.exit_code, r.status), (0, 200), "{}: {r:?}", self.name);
    }
}

fn sides(cfg: &str) -> (Legate, Envoy, Side, Side) {
    let legate = Legate::start(cfg);
    let envoy = Envoy::start(cfg);
    let l = Side { name: "legate", admin: legate.admin, port: legate.listener_port("web") };
    let e = Side { name: "envoy", admin: envoy.admin, port: envoy.listener_port("web") };
    (legate, envoy, l, e)
}

use legate_integration::http::raw_exchange as exchange;

/// Status line and body of a raw HTTP/1.1 response (headers other than the length dropped:
/// `date` and `server` differ by nature).
fn status_and_body(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn malformed_and_oversized_http1_requests_match_envoy() {
    let p = peers();
    let (_legate, _envoy, l, e) = sides(&p.cfg);
    let big =
        format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(MAX_HEADERS_KB as usize * 1024 + 100));
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage request line", b"THIS IS NOT HTTP\r\n\r\n".to_vec()),
        ("bad version", b"GET / HTTP/9.9\r\nhost: x\r\n\r\n".to_vec()),
        ("space in header name", b"GET / HTTP/1.1\r\nhost: x\r\nbad header: v\r\n\r\n".to_vec()),
        ("headers over max_request_headers_kb", big.into_bytes()),
    ];
    for (what, bytes) in &cases {
        let (got, want) = (status_and_body(&exchange(l.port, bytes)), status_and_body(&exchange(e.port, bytes)));
        assert!(got.0.starts_with("HTTP/1.1 4") && want.0.starts_with("HTTP/1.1 4"), "{what}: {got:?} {want:?}");
        // Legate's own HTTP/1 codec answers as Envoy's: same status line (426 for an unknown
        // version), the reason phrase as a text/plain body.
        assert_eq!(got, want, "{what}: status line and body, legate (left) vs envoy (right)");
        assert_eq!(want.1, want.0.splitn(3, ' ').nth(2).unwrap_or(""), "{what}: envoy's body");
    }
    let first = status_and_body(&exchange(e.port, &cases[0].1)).0;
    assert_eq!(first, "HTTP/1.1 400 Bad Request");
    let last = status_and_body(&exchange(e.port, &cases[3].1)).0;
    assert_eq!(last, "HTTP/1.1 431 Request Header Fields Too Large");
    // every case is a codec error on both (envoy saw two more)
    e.wait_eq("http.web.downstream_cx_protocol_error", 6);
    l.wait_eq("http.web.downstream_cx_protocol_error", 4);
    assert_eq!(p.up.count("/"), 0, "nothing malformed reached the upstream");
    l.assert_healthy();
    e.assert_healthy();
}

/// HTTP/2 frame: 9-byte header then payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame types (and GOAWAY error codes) in a server's HTTP/2 byte stream.
fn frames(mut b: &[u8]) -> Vec<(u8, Option<u32>)> {
    let mut out = Vec::new();
    while b.len() >= 9 {
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        let kind = b[3];
        if b.len() < 9 + len {
            break;
        }
        let payload = &b[9..9 + len];
        let code =
            (kind == 7 && len >= 8).then(|| u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]));
        out.push((kind, code));
        b = &b[9 + len..];
    }
    out
}

#[test]
fn invalid_http2_frames_get_goaway() {
    let p = peers();
    let (_legate, _envoy, l, e) = sides(&p.cfg);
    // A PING on stream 1 (RFC 9113 §6.7: PING is connection-level: PROTOCOL_ERROR), a frame
    // far over the default max frame size (FRAME_SIZE_ERROR), and plain garbage.
    let mut bad_ping = PREFACE.to_vec();
    bad_ping.extend(frame(4, 0, 0, &[]));
    bad_ping.extend(frame(6, 0, 1, &[0; 8]));
    let mut too_big = PREFACE.to_vec();
    too_big.extend(frame(4, 0, 0, &[]));
    too_big.extend(frame(0, 0, 1, &vec![0u8; 20_000]));
    let mut junk = PREFACE.to_vec();
    junk.extend(frame(4, 0, 0, &[]));
    junk.extend_from_slice(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff nonsense nonsense nonsense");
    for (what, bytes) in [("oversized frame", &too_big), ("garbage", &junk)] {
        let got = frames(&exchange(l.port, bytes));
        let want = frames(&exchange(e.port, bytes));
        let goaway = |f: &[(u8, Option<u32>)]| f.iter().find(|(k, _)| *k == 7).and_then(|(_, c)| *c);
        assert_eq!(
            goaway(&got),
            goaway(&want),
            "{what}: GOAWAY code, legate (left) vs envoy (right): {got:?} {want:?}"
        );
        // FRAME_SIZE_ERROR: 0xffffff is over the default SETTINGS_MAX_FRAME_SIZE too
        assert_eq!(goaway(&want), Some(6), "{what}: {want:?}");
    }
    // Envoy closes the connection on a PING sent on a stream without a word; Legate says why
    // with GOAWAY PROTOCOL_ERROR. Either way the connection is closed (exchange reads to EOF).
    let got = frames(&exchange(l.port, &bad_ping));
    assert_eq!(got.iter().find(|(k, _)| *k == 7).and_then(|(_, c)| *c), Some(1), "{got:?}");
    assert!(frames(&exchange(e.port, &bad_ping)).iter().all(|(k, _)| *k != 0 && *k != 1), "envoy answered a stream");
    for side in [&e, &l] {
        side.wait_eq("http.web.downstream_cx_protocol_error", 3);
        side.assert_healthy();
    }
    assert_eq!(p.up.count("/"), 2, "only the health checks reached the upstream");
}

#[test]
fn rst_stream_and_ping_floods_do_not_affect_other_connections() {
    let p = peers();
    let legate = Legate::start(&p.cfg);
    let side = Side { name: "legate", admin: legate.admin, port: legate.listener_port("web") };
    // A bounded flood on one connection: 2000 PINGs and 2000 streams opened and reset at once
    // (HEADERS with END_STREAM then RST_STREAM CANCEL), written without reading.
    let mut flood = PREFACE.to_vec();
    flood.extend(frame(4, 0, 0, &[]));
    // HPACK: :method GET (idx 2), :scheme http (6), :path / (4), :authority "x" (literal, idx 1)
    let hpack = [0x82, 0x86, 0x84, 0x41, 0x01, b'x'];
    for i in 0..2000u32 {
        flood.extend(frame(6, 0, 0, &i.to_be_bytes().repeat(2)));
        let id = 2 * i + 1;
        flood.extend(frame(1, 0x5, id, &hpack));
        flood.extend(frame(3, 0, id, &8u32.to_be_bytes()));
    }
    let port = side.port;
    let flooder = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(10))).expect("write timeout");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        let _ = s.write_all(&flood);
        // drain whatever comes back until the server closes or goes quiet
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || got.len() > 4 << 20 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        frames(&got)
    });
    // Meanwhile, on other connections, plain requests keep working.
    for _ in 0..5 {
        let r = curl(&["--http2-prior-knowledge", &side.url("/during")]);
        assert_eq!((r.exit_code, r.status), (0, 200), "{r:?}");
    }
    let got = flooder.join().expect("flooder thread");
    // The server either answered the flood or closed the connection with GOAWAY; either way it
    // never took more than the bounded flood.
    assert!(!got.is_empty(), "the flooded connection got nothing back");
    side.assert_healthy();
    let r = curl(&[&side.url("/after")]);
    assert_eq!(r.status, 200);
}

/// Envoy's answer to an upstream that speaks garbage, and to one that resets mid-body.
#[test]
fn upstream_garbage_and_mid_body_reset_match_envoy() {
    let p = peers();
    let (_legate, _envoy, l, e) = sides(&p.cfg);
    let seq = |side: &Side| {
        let r = curl(&[&side.url("/garbage")]);
        let garbage = (r.exit_code, r.status, r.text(), r.header("content-type").map(str::to_string));
        // the response started: the only thing left is to reset the downstream stream
        let r1 = curl(&[&side.url("/midreset")]);
        let r2 = curl(&["--http2-prior-knowledge", &side.url("/midreset")]);
        assert_eq!(r1.status, 200, "{}: {r1:?}", side.name);
        assert_ne!(r1.exit_code, 0, "{}: curl must see the HTTP/1.1 response cut short", side.name);
        assert!(r1.body.len() < 100_000, "{}", side.name);
        assert_ne!(r2.exit_code, 0, "{}: curl must see the HTTP/2 stream reset: {r2:?}", side.name);
        side.assert_healthy();
        garbage
    };
    let got = seq(&l);
    let want = seq(&e);
    assert_eq!(got, want, "upstream garbage: legate (left) vs envoy (right)");
    assert_eq!(want.1, 502);
    assert!(
        want.2.starts_with("upstream connect error or disconnect/reset before headers. reset reason: "),
        "{}",
        want.2
    );
    for name in ["cluster.garbage.upstream_rq_502", "cluster.midreset.upstream_rq_200", "http.web.downstream_rq_5xx"] {
        assert_eq!(l.stats().value(name), e.stats().value(name), "{name}: legate vs envoy");
    }
    for side in [&l, &e] {
        assert!(side.stats().value("cluster.midreset.upstream_cx_rx_bytes_total") >= 1000, "{}", side.name);
    }
    wait_until("legate counted the downstream resets", PATIENCE, || {
        (l.stats().value("http.web.downstream_rq_tx_reset") >= 2).then_some(())
    });
}

/// Sends the head and 1000 of 100000 promised bytes, then nothing for 3 s.
fn stall_mid_body(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n");
    let _ = s.write_all(&[b'x'; 1000]);
    let _ = s.flush();
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn a_body_that_stalls_is_reset_after_the_stream_idle_timeout() {
    let stall = RawPeer::start(stall_mid_body);
    let hcm =
        format!("stream_idle_timeout: 0.5s\n{}", yaml::route_config("- match: {prefix: /}\n  route: {cluster: stall}"));
    let legate = Legate::start(&yaml::bootstrap(
        &[yaml::http_listener("web", &hcm, "")],
        &[yaml::static_cluster("stall", &[stall.addr])],
    ));
    let started = Instant::now();
    let r = curl(&[&format!("http://127.0.0.1:{}/s", legate.listener_port("web"))]);
    assert_eq!(r.status, 200, "the head arrived: {r:?}");
    assert_ne!(r.exit_code, 0, "the body was cut: {r:?}");
    assert!(started.elapsed() < Duration::from_millis(2500), "reset after {:?}", started.elapsed());
    legate.wait_stat_eq("http.web.downstream_rq_idle_timeout", 1);
}
