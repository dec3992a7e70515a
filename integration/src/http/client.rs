//! Real HTTP clients for the tests: `curl` (HTTP/1.1 and `--http2-prior-knowledge`), `h2load`
//! (bounded load over h2c), and a WebSocket client (tungstenite) for upgrade tests. Each run is
//! bounded in time; a missing binary fails the test.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::process::{require_binary, Proc, TempDir};

/// Upper bound of one curl run (`--max-time`); the process is killed a little after it.
pub const CURL_MAX_TIME: Duration = Duration::from_secs(30);

/// What `curl` returned: the final response's status line and headers, its body, trailers (if
/// any), curl's exit code and error text.
#[derive(Clone, Debug, Default)]
pub struct CurlResult {
    /// curl's exit code (0 on success; 7 could not connect, 28 timeout, 52 empty reply, 56
    /// receive failure ...).
    pub exit_code: i32,
    /// 0 when no response head arrived.
    pub status: u16,
    /// `HTTP/1.1` or `HTTP/2` as on the status line.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub stderr: String,
    /// Status codes of interim (1xx) responses that came before the final one.
    pub interim: Vec<u16>,
}

impl CurlResult {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Runs `curl -sS -D <file> -o <file> --max-time 30 <args>` and parses the dump: the last
/// non-1xx header block is the response, what follows it in the dump are trailers. Pass
/// `--http2-prior-knowledge` for h2c, `-H`, `-X`, `--data` ... as usual; the URL is one of
/// `args`.
pub fn curl(args: &[&str]) -> CurlResult {
    let bin = require_binary("curl");
    let dir = TempDir::new("curl");
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let mut cmd = Command::new(bin);
    cmd.args(["-sS", "--max-time", &CURL_MAX_TIME.as_secs().to_string(), "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args);
    let mut p = Proc::spawn("curl", cmd, &dir);
    let status = p.wait_exit(CURL_MAX_TIME + Duration::from_secs(5));
    let dump = std::fs::read(&head).unwrap_or_default();
    let mut r = parse_dump(&String::from_utf8_lossy(&dump));
    r.exit_code = status.code().unwrap_or(-1);
    r.body = std::fs::read(&body).unwrap_or_default();
    r.stderr = p.stderr_text();
    r
}

/// Parses a `curl -D` dump (header blocks separated by blank lines; trailers after the last).
pub fn parse_dump(dump: &str) -> CurlResult {
    let mut r = CurlResult::default();
    let mut in_final = false;
    for line in dump.split('\n').map(|l| l.trim_end_matches('\r')) {
        if let Some(rest) = line.strip_prefix("HTTP/") {
            let mut parts = rest.split_whitespace();
            let version = format!("HTTP/{}", parts.next().unwrap_or(""));
            let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            if r.status != 0 {
                r.interim.push(r.status);
            }
            r.status = status;
            r.version = version;
            r.headers.clear();
            r.trailers.clear();
            in_final = true;
            continue;
        }
        if line.is_empty() {
            in_final = false;
            continue;
        }
        let Some((n, v)) = line.split_once(':') else { continue };
        let pair = (n.trim().to_ascii_lowercase(), v.trim().to_string());
        if in_final {
            r.headers.push(pair);
        } else if r.status != 0 {
            r.trailers.push(pair);
        }
    }
    r
}

/// Result of an `h2load` run (the "requests:" and "status codes:" lines).
#[derive(Clone, Debug, Default)]
pub struct H2loadResult {
    pub exit_code: i32,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub errored: u64,
    pub timeout: u64,
    /// Responses by class: 2xx, 3xx, 4xx, 5xx.
    pub status: [u64; 4],
    pub stdout: String,
}

/// Runs `h2load <args>` (add `-n`, `-c`, `-m` and the URL; h2c prior knowledge is its default
/// for `http://`), bounded by `timeout`.
pub fn h2load(args: &[&str], timeout: Duration) -> H2loadResult {
    let bin = require_binary("h2load");
    let dir = TempDir::new("h2load");
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let mut p = Proc::spawn("h2load", cmd, &dir);
    let status = p.wait_exit(timeout);
    let mut r = parse_h2load(&p.stdout_text());
    r.exit_code = status.code().unwrap_or(-1);
    r
}

fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

/// Parses h2load's summary ("requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed,
/// 0 errored, 0 timeout" and "status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx").
pub fn parse_h2load(out: &str) -> H2loadResult {
    let mut r = H2loadResult { stdout: out.to_string(), ..H2loadResult::default() };
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("requests:") {
            let n = numbers(rest);
            if n.len() >= 7 {
                (r.total, r.succeeded, r.failed, r.errored, r.timeout) = (n[0], n[3], n[4], n[5], n[6]);
            }
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            // "10 2xx, 0 3xx, ...": every other number is the class digit
            let n = numbers(rest);
            for (i, v) in n.iter().step_by(2).take(4).enumerate() {
                r.status[i] = *v;
            }
        }
    }
    r
}

/// What `nghttp -nv` showed of one HTTP/2 response: status, headers, trailers (no body).
#[derive(Clone, Debug, Default)]
pub struct NghttpResult {
    pub exit_code: i32,
    /// 0 when no response head arrived.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    /// The verbose frame log.
    pub stdout: String,
}

impl NghttpResult {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Runs `nghttp -nv <args>` (h2c prior knowledge for `http://`; body discarded) for ONE URL
/// and parses the frame log: the response's headers and, unlike curl, its trailers. Bounded
/// by `timeout`.
pub fn nghttp(args: &[&str], timeout: Duration) -> NghttpResult {
    let bin = require_binary("nghttp");
    let dir = TempDir::new("nghttp");
    let mut cmd = Command::new(bin);
    cmd.arg("-nv").args(args);
    let mut p = Proc::spawn("nghttp", cmd, &dir);
    let status = p.wait_exit(timeout);
    let mut r = parse_nghttp(&p.stdout_text());
    r.exit_code = status.code().unwrap_or(-1);
    r
}

/// Parses `nghttp -v` output: `recv (stream_id=N) name: value` lines before the frame marked
/// "First response header" are the response head, later ones the trailers.
pub fn parse_nghttp(out: &str) -> NghttpResult {
    let mut r = NghttpResult { stdout: out.to_string(), ..NghttpResult::default() };
    let mut head_done = false;
    for line in out.lines() {
        if line.contains("; First response header") {
            head_done = true;
            continue;
        }
        let Some(i) = line.find("recv (stream_id=") else { continue };
        let Some((_, field)) = line[i..].split_once(") ") else { continue };
        // "name: value"; a pseudo-header's name starts with ':' (":status: 200")
        let Some(j) = field.get(1..).and_then(|f| f.find(": ")).map(|j| j + 1) else { continue };
        let (n, v) = (&field[..j], &field[j + 2..]);
        if n == ":status" {
            r.status = v.trim().parse().unwrap_or(0);
        } else if head_done {
            r.trailers.push((n.to_string(), v.to_string()));
        } else {
            r.headers.push((n.to_string(), v.to_string()));
        }
    }
    r
}

/// Opens a WebSocket to `ws://<addr><path>` (HTTP/1.1 Upgrade, extra request headers given),
/// sends each message as a text frame, reads one text frame back per message, closes. Returns
/// the replies, or the first error as text. Bounded by `timeout`.
pub fn ws_echo(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    messages: &[&str],
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}{path}");
    let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let messages: Vec<String> = messages.iter().map(|m| m.to_string()).collect();
    rt.block_on(async move {
        let work = async {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = url.as_str().into_client_request().map_err(|e| e.to_string())?;
            for (n, v) in &headers {
                let name = http::HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?;
                let value = http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
                req.headers_mut().insert(name, value);
            }
            let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.map_err(|e| e.to_string())?;
            if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                return Err(format!("handshake answered {}", resp.status()));
            }
            let mut replies = Vec::new();
            for m in messages {
                ws.send(Message::text(m)).await.map_err(|e| e.to_string())?;
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            replies.push(t.to_string());
                            break;
                        }
                        Some(Ok(Message::Binary(b))) => {
                            replies.push(String::from_utf8_lossy(&b).into_owned());
                            break;
                        }
                        Some(Ok(Message::Close(f))) => return Err(format!("closed by peer: {f:?}")),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("connection ended".into()),
                    }
                }
            }
            let _ = ws.close(None).await;
            Ok(replies)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {timeout:?}")),
        }
    })
}

/// Writes `bytes` on a new connection to 127.0.0.1:`port` and reads until the peer closes
/// (each read waits at most 5 s, the whole exchange at most 10 s).
pub fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    let _ = s.write_all(bytes);
    read_to_close(&mut s)
}

/// Reads from `s` until EOF, an error, or 10 s.
pub fn read_to_close(s: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_interim_final_and_trailers() {
        let dump = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nX-A: 2\r\n\r\nx-trailer: yes\r\n";
        let r = parse_dump(dump);
        assert_eq!(r.status, 200);
        assert_eq!(r.interim, vec![100]);
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header_all("x-a"), vec!["1", "2"]);
        assert_eq!(r.trailer("x-trailer"), Some("yes"));
    }

    #[test]
    fn parses_nghttp_heads_and_trailers() {
        let out = "[  0.010] recv (stream_id=13) :status: 200\n\
                   [  0.010] recv (stream_id=13) content-type: text/plain\n\
                   [  0.010] recv HEADERS frame <length=55, flags=0x04, stream_id=13>\n          ; First response header\n\
                   [  0.010] recv (stream_id=13) x-trailer: yes\n";
        let r = parse_nghttp(out);
        assert_eq!(r.status, 200);
        assert_eq!(r.headers, vec![("content-type".to_string(), "text/plain".to_string())]);
        assert_eq!(r.trailer("x-trailer"), Some("yes"));
    }

    #[test]
    fn parses_h2load_summary() {
        let out = "finished in 10.01ms, 999.00 req/s, 1KB/s\n\
                   requests: 10 total, 10 started, 9 done, 8 succeeded, 1 failed, 1 errored, 0 timeout\n\
                   status codes: 8 2xx, 0 3xx, 0 4xx, 1 5xx\n";
        let r = parse_h2load(out);
        assert_eq!((r.total, r.succeeded, r.failed, r.errored, r.timeout), (10, 8, 1, 1, 0));
        assert_eq!(r.status, [8, 0, 0, 1]);
    }
}
