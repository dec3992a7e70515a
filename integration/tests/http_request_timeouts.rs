//! Scenario: an operator sets the connection manager's `request_timeout` and
//! `request_headers_timeout` against slow or stalled clients (slow loris). A real Envoy 1.40 and
//! Legate serve the same config; a raw HTTP/1.1 client stalls in the head, stalls in the body,
//! and sends a whole request to a slow upstream. What each proxy writes back, and the
//! connection manager's stats afterwards, must be the same.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::http::HttpUpstream;
use legate_integration::{yaml, Legate};

const HCM: &str = "request_timeout: 0.8s
request_headers_timeout: 0.4s
";

const ROUTES: &str = "- match: {prefix: /up/}
  route: {cluster: up, prefix_rewrite: /}
";

/// What came back on one connection: the bytes until the proxy closed (or 4 s passed), and
/// how long the proxy took to close it.
struct Exchange {
    reply: String,
    closed_after: Option<Duration>,
}

fn exchange(port: u16, send: &[u8]) -> Exchange {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    s.write_all(send).expect("write");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed_after = None;
    while start.elapsed() < Duration::from_secs(4) {
        match s.read(&mut buf) {
            Ok(0) => {
                closed_after = Some(start.elapsed());
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed_after = Some(start.elapsed());
                break;
            }
        }
    }
    Exchange { reply: String::from_utf8_lossy(&got).into_owned(), closed_after }
}

/// The status line, the body and the headers that do not vary by nature.
fn comparable(reply: &str) -> (String, String, BTreeMap<String, String>) {
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((reply, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(n, _)| n != "date")
        .collect();
    (status, body.to_string(), headers)
}

fn hcm_stats(s: &Stats) -> BTreeMap<String, u64> {
    s.0.iter()
        .filter(|(k, _)| {
            k.starts_with("http.web.downstream_rq") && *k != "http.web.downstream_rq_time" && !k.contains("_active")
        })
        .filter_map(|(k, v)| v.parse::<u64>().ok().filter(|n| *n > 0).map(|n| (k.clone(), n)))
        .collect()
}

#[test]
fn request_and_header_timeouts_answer_and_count_like_envoy() {
    let up = HttpUpstream::named("up");
    let listener = yaml::http_listener("web", &format!("{HCM}{}", yaml::route_config(ROUTES)), "");
    let cfg = yaml::bootstrap(&[listener], &[yaml::static_cluster("up", &[up.addr()])]);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let ports = [envoy.listener_port("web"), legate.listener_port("web")];

    // 1. A head that never completes: 408 `request header timeout` after
    //    request_headers_timeout, then the connection closes.
    let [e, l] = ports.map(|p| exchange(p, b"GET /up/x HTTP/1.1\r\nHost: a\r\n"));
    assert_eq!(comparable(&l.reply), comparable(&e.reply), "reply to a stalled head (left Legate, right Envoy)");
    assert!(l.reply.ends_with("\r\n\r\nrequest header timeout"), "{}", l.reply);
    for (who, x) in [("envoy", &e), ("legate", &l)] {
        let t = x.closed_after.unwrap_or_else(|| panic!("{who} kept a stalled head open"));
        assert!(t >= Duration::from_millis(300), "{who} closed a stalled head after {t:?}");
    }

    // 2. A body that stalls, to an upstream that would answer after 5 s: 408 after
    //    request_timeout, and the connection closes (the rest of the body never came).
    let stalled = b"POST /up/delay/5000 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc";
    let [e, l] = ports.map(|p| exchange(p, stalled));
    assert_eq!(comparable(&l.reply), comparable(&e.reply), "reply to a stalled body (left Legate, right Envoy)");
    assert!(l.reply.starts_with("HTTP/1.1 408 "), "{}", l.reply);
    assert!(l.reply.ends_with("request timeout"), "{}", l.reply);
    assert!(l.closed_after.is_some() && e.closed_after.is_some(), "closed: {:?} {:?}", l.closed_after, e.closed_after);

    // 3. A whole request to an upstream slower than request_timeout: the timer stopped when
    //    the body was complete, so the upstream's answer comes back.
    let whole = b"POST /up/delay/1200 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
    let [e, l] = ports.map(|p| exchange(p, whole));
    let (ls, lb, _) = comparable(&l.reply);
    let (es, eb, _) = comparable(&e.reply);
    assert_eq!((ls.as_str(), lb.as_str()), (es.as_str(), eb.as_str()), "slow upstream (left Legate, right Envoy)");
    assert!(ls.starts_with("HTTP/1.1 200 "), "{}", l.reply);

    std::thread::sleep(Duration::from_millis(200));
    let es = hcm_stats(&envoy.stats());
    let ls = hcm_stats(&legate.stats());
    assert_eq!(ls, es, "connection manager stats (left Legate, right Envoy)");
    assert_eq!(ls.get("http.web.downstream_rq_header_timeout"), Some(&1));
    assert_eq!(ls.get("http.web.downstream_rq_timeout"), Some(&1));
}

/// Sends `head`, then `body` one byte every `gap`, and reads the reply as [`exchange`] does.
fn trickle(port: u16, head: &[u8], body: &[u8], gap: Duration) -> Exchange {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(head).expect("write head");
    for b in body {
        std::thread::sleep(gap);
        if s.write_all(&[*b]).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(4))).expect("timeout");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    Exchange { reply: String::from_utf8_lossy(&got).into_owned(), closed_after: None }
}

#[test]
fn the_stream_idle_timer_counts_request_body_activity_like_envoy() {
    let up = HttpUpstream::named("up");
    let hcm = format!("stream_idle_timeout: 0.5s\n{}", yaml::route_config(ROUTES));
    let cfg = yaml::bootstrap(&[yaml::http_listener("web", &hcm, "")], &[yaml::static_cluster("up", &[up.addr()])]);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let ports = [envoy.listener_port("web"), legate.listener_port("web")];

    // A body that keeps arriving (a byte every 0.2 s for 1.6 s) is activity: no idle timeout,
    // the upstream's answer comes back.
    let head = b"POST /up/delay/1800 HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\nConnection: close\r\n\r\n";
    let [e, l] = ports.map(|p| trickle(p, head, b"abcdefgh", Duration::from_millis(200)));
    let (ls, lb, _) = comparable(&l.reply);
    let (es, eb, _) = comparable(&e.reply);
    assert_eq!((ls.as_str(), lb.as_str()), (es.as_str(), eb.as_str()), "trickled body (left Legate, right Envoy)");
    assert!(ls.starts_with("HTTP/1.1 200 "), "{}", l.reply);

    // A body that stalls: 408 `stream timeout` after the idle timeout.
    let stalled = b"POST /up/delay/3000 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc";
    let [e, l] = ports.map(|p| exchange(p, stalled));
    assert_eq!(comparable(&l.reply), comparable(&e.reply), "stalled body (left Legate, right Envoy)");
    assert!(l.reply.starts_with("HTTP/1.1 408 "), "{}", l.reply);

    std::thread::sleep(Duration::from_millis(200));
    let es = hcm_stats(&envoy.stats());
    let ls = hcm_stats(&legate.stats());
    assert_eq!(ls, es, "connection manager stats (left Legate, right Envoy)");
    assert_eq!(ls.get("http.web.downstream_rq_idle_timeout"), Some(&1));
}
