//! A small HTTP/1.1 client for the admin endpoint (Legate's and Envoy's), and the parsed text
//! form of `/stats`. One request per connection (`Connection: close`); chunked bodies decoded.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}):\n{}", self.body))
    }
}

/// Sends one request and reads the whole response. `Err` when the connection fails (refused,
/// reset) so callers can poll a server that is starting or stopping.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// `request`, panicking when the admin endpoint cannot be reached.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path).unwrap_or_else(|e| panic!("GET {path} on admin {addr}: {e}"))
}

/// `request` with POST, panicking when the admin endpoint cannot be reached.
pub fn post(addr: SocketAddr, path: &str) -> Response {
    request(addr, "POST", path).unwrap_or_else(|e| panic!("POST {path} on admin {addr}: {e}"))
}

fn parse(raw: &[u8]) -> Result<Response, String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk size line")?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// `/stats` in text form: `name: value` per line (histogram values kept as text).
#[derive(Debug, Clone, Default)]
pub struct Stats(pub BTreeMap<String, String>);

/// The names whose values differ between two stat snapshots (a name missing on one side
/// counts), one line each: `name: legate <v> envoy <v>`.
pub fn differing(legate: &BTreeMap<String, String>, envoy: &BTreeMap<String, String>) -> Vec<String> {
    let names: BTreeSet<&String> = legate.keys().chain(envoy.keys()).collect();
    names
        .into_iter()
        .filter(|n| legate.get(*n) != envoy.get(*n))
        .map(|n| format!("{n}: legate {:?} envoy {:?}", legate.get(n), envoy.get(n)))
        .collect()
}

impl Stats {
    pub fn parse(text: &str) -> Stats {
        Stats(text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A counter or gauge; panics (listing similar names) when it does not exist.
    pub fn value(&self, name: &str) -> u64 {
        match self.get(name) {
            Some(v) => v.parse().unwrap_or_else(|_| panic!("stat {name} is not a number: {v}")),
            None => {
                let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
                let similar: Vec<&String> = self.0.keys().filter(|k| k.starts_with(stem)).collect();
                panic!("stat {name} does not exist; names under {stem}: {similar:?}")
            }
        }
    }

    /// `listener.<ip>_<port>.` of the process's only listener (Envoy names a port-0 listener
    /// after its config, Legate after the bound port); `who` names the process in the panic.
    pub fn only_listener_prefix(&self, who: &str) -> String {
        let re = regex::Regex::new(r"^(listener\.[0-9.]+_\d+\.)downstream_cx_total$").expect("re");
        let found: BTreeSet<String> = self.0.keys().filter_map(|k| re.captures(k).map(|c| c[1].to_string())).collect();
        assert_eq!(found.len(), 1, "{who}: listener stat prefixes {found:?}");
        found.into_iter().next().expect("one")
    }

    /// Every stat name that starts with `prefix`.
    pub fn names_with_prefix(&self, prefix: &str) -> BTreeSet<String> {
        self.0.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
    }
}

/// Parses Envoy's text `/listeners` output (`name::ip:port` per line).
pub fn parse_listeners(text: &str) -> BTreeMap<String, SocketAddr> {
    text.lines()
        .filter_map(|l| l.split_once("::"))
        .filter_map(|(name, addr)| Some((name.to_string(), addr.trim().parse().ok()?)))
        .collect()
}
