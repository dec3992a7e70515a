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

/// Reads one HTTP/1.1 response (Content-Length framed) from `s`; `None` when the connection
/// closed (or nothing came for 2 s) first.
fn read_response(s: &mut TcpStream) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&got[..end + 4 + len]).into_owned());
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Requests on one keep-alive connection every `gap` until `count` were answered or the proxy
/// closed it; then waits (up to 3 s) for the proxy to close the idle connection. Returns the
/// answers and how long the connection stayed open after the last one.
fn keep_alive_run(port: u16, count: usize, gap: Duration) -> (Vec<String>, Option<Duration>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut answers = Vec::new();
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(gap);
        }
        if s.write_all(b"GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n").is_err() {
            break;
        }
        match read_response(&mut s) {
            // A client stops after `connection: close` (Envoy would answer one more request
            // until its drain timer closes the connection; Legate closes at once).
            Some(r) if r.to_ascii_lowercase().contains("connection: close") => {
                answers.push(r);
                break;
            }
            Some(r) => answers.push(r),
            None => break,
        }
    }
    let idle_from = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let mut b = [0u8; 64];
    let closed = match s.read(&mut b) {
        Ok(0) => Some(idle_from.elapsed()),
        Err(e) if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Some(idle_from.elapsed())
        }
        _ => None,
    };
    (answers, closed)
}

fn cx_stats(s: &Stats, prefix: &str) -> BTreeMap<String, u64> {
    ["downstream_cx_idle_timeout", "downstream_cx_max_duration_reached", "downstream_cx_total", "downstream_rq_2xx"]
        .iter()
        .map(|n| {
            let k = format!("http.{prefix}.{n}");
            let v = s.0.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
            (k, v)
        })
        .collect()
}

#[test]
fn keep_alive_idle_timeout_and_max_connection_duration_close_like_envoy() {
    let up = HttpUpstream::named("up");
    let routes = yaml::route_config(ROUTES);
    let idle = yaml::http_listener(
        "idle",
        &format!("drain_timeout: 0.4s\ncommon_http_protocol_options: {{idle_timeout: 0.5s}}\n{routes}"),
        "",
    );
    let maxd = yaml::http_listener(
        "maxd",
        &format!("drain_timeout: 0.4s\ncommon_http_protocol_options: {{max_connection_duration: 0.7s}}\n{routes}"),
        "",
    );
    let cfg = yaml::bootstrap(&[idle, maxd], &[yaml::static_cluster("up", &[up.addr()])]);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);

    // 1. Requests 0.2 s apart for 1.2 s, longer than the 0.5 s idle timeout: busy, so the
    //    connection stays open (Legate's idle timer is armed once and re-armed when it fires
    //    early); then idle, and the proxy closes it after the timeout and `drain_timeout`
    //    (Envoy's drain sequence).
    for (who, port) in [("envoy", envoy.listener_port("idle")), ("legate", legate.listener_port("idle"))] {
        let (answers, closed) = keep_alive_run(port, 7, Duration::from_millis(200));
        assert_eq!(answers.len(), 7, "{who}: a busy connection was closed: {answers:?}");
        assert!(answers.iter().all(|a| a.starts_with("HTTP/1.1 200 ")), "{who}: {answers:?}");
        let t = closed.unwrap_or_else(|| panic!("{who} kept an idle connection open past its idle timeout"));
        assert!(t >= Duration::from_millis(750), "{who} closed an idle connection after {t:?}");
    }

    // 2. A request in the drain window after the idle timeout: answered, with
    //    `connection: close`, and the connection ends.
    for (who, port) in [("envoy", envoy.listener_port("idle")), ("legate", legate.listener_port("idle"))] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        let first = read_response(&mut s).unwrap_or_else(|| panic!("{who}: no first answer"));
        assert!(!first.to_ascii_lowercase().contains("connection: close"), "{who}: {first}");
        std::thread::sleep(Duration::from_millis(650));
        s.write_all(b"GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        let second = read_response(&mut s).unwrap_or_else(|| panic!("{who}: no answer in the drain window"));
        assert!(second.starts_with("HTTP/1.1 200 "), "{who}: {second}");
        assert!(second.to_ascii_lowercase().contains("connection: close"), "{who}: {second}");
        let mut b = [0u8; 16];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)), "{who} kept the connection after connection: close");
    }

    // 3. Requests 0.2 s apart on a connection with a 0.7 s maximum duration: the response
    //    after the timer says `connection: close` and the connection ends.
    for (who, port) in [("envoy", envoy.listener_port("maxd")), ("legate", legate.listener_port("maxd"))] {
        let started = Instant::now();
        let (answers, closed) = keep_alive_run(port, 10, Duration::from_millis(200));
        assert!((2..10).contains(&answers.len()), "{who}: {} answers", answers.len());
        assert!(closed.is_some(), "{who} kept the connection open past its maximum duration");
        let t = started.elapsed();
        assert!(t >= Duration::from_millis(600) && t < Duration::from_millis(2500), "{who}: ended after {t:?}");
    }

    std::thread::sleep(Duration::from_millis(200));
    let (es, ls) = (envoy.stats(), legate.stats());
    for prefix in ["idle", "maxd"] {
        assert_eq!(cx_stats(&ls, prefix), cx_stats(&es, prefix), "{prefix} stats (left Legate, right Envoy)");
    }
    assert_eq!(cx_stats(&ls, "idle").get("http.idle.downstream_cx_idle_timeout"), Some(&2));
    assert_eq!(cx_stats(&ls, "maxd").get("http.maxd.downstream_cx_max_duration_reached"), Some(&1));
}
