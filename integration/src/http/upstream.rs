//! [`HttpUpstream`]: an httpbin-like upstream HTTP server for the HTTP tests, on hyper 1.x.
//!
//! One port speaks HTTP/1.1 (keep-alive, Upgrade) and h2c with prior knowledge (hyper-util's
//! `auto` builder reads the connection preface). It runs on its own thread with a
//! current-thread tokio runtime, is bound to 127.0.0.1:0 and stops when dropped. Every request
//! it receives is recorded ([`Recorded`]) before it is answered, so a test can assert on what
//! the proxy sent (headers, host, version, which connection).
//!
//! Endpoints (every response carries `x-upstream: <label>`):
//! - `/status/<n>`: status `n` (200..=999), empty body;
//! - `/delay/<ms>`: waits `ms` (at most 60 s), then 200 `delayed`;
//! - `/headers`: 200 with a JSON object: `method`, `path` (with the query), `version`,
//!   `authority` (`:authority`, else the Host header), `upstream` (the label), `headers`
//!   (name → value; repeated headers joined with `,`);
//! - `/echo`: streams the request body back (and its trailers), with the request's
//!   `content-type`;
//! - `/bytes/<n>`: `n` bytes (at most 64 MiB) of the pattern `abc...z`;
//! - `/trailers`: 200 `trailers` followed by the trailer `x-trailer: yes` (HTTP/2; HTTP/1.1
//!   sends it only to a client that asked with `te: trailers`);
//! - `/close`: HTTP/1.1: 200 `closing` with `connection: close`, then the connection closes;
//! - `/flaky/<key>/<n>`: 500 `flaky` for the first `n` requests with that key, then 200 `ok`;
//! - `/ws`: WebSocket echo (HTTP/1.1 Upgrade → 101, then every text/binary frame is echoed);
//! - anything else: 200 `hello <label>`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::process::wait_until_or;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// Largest `/delay/<ms>`.
const MAX_DELAY_MS: u64 = 60_000;
/// Largest `/bytes/<n>`.
const MAX_BYTES: usize = 64 << 20;

/// Which protocols the server accepts on its port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocols {
    /// HTTP/1.1 and h2c prior knowledge (and HTTP/1.1 Upgrade, for `/ws`).
    #[default]
    Auto,
    /// HTTP/1.x only (an h2c preface is an error; no Upgrade support).
    Http1Only,
    /// h2c prior knowledge only.
    Http2Only,
}

/// Options of [`HttpUpstream::start_with`].
#[derive(Clone, Debug)]
pub struct HttpOpts {
    /// The label in `hello <label>`, `x-upstream` and `/headers` (tells upstreams apart).
    pub name: String,
    pub protocols: Protocols,
    /// HTTP/1.1: close a keep-alive connection that has been idle this long (hyper's
    /// `header_read_timeout`, which also runs between requests). Emulates an upstream that
    /// closes pooled connections under the proxy's feet. `None`: hyper's default (30 s).
    pub h1_idle_close: Option<Duration>,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS the server announces (`None`: hyper's default).
    pub h2_max_concurrent_streams: Option<u32>,
}

impl Default for HttpOpts {
    fn default() -> HttpOpts {
        HttpOpts {
            name: "upstream".into(),
            protocols: Protocols::Auto,
            h1_idle_close: None,
            h2_max_concurrent_streams: None,
        }
    }
}

impl HttpOpts {
    pub fn named(name: &str) -> HttpOpts {
        HttpOpts { name: name.into(), ..HttpOpts::default() }
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The path with the query (`/a?b=c`).
    pub path_and_query: String,
    /// The Host header, else the HTTP/2 `:authority`.
    pub host: Option<String>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every header in the order received (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Which accepted connection (1, 2, ... in accept order) carried the request.
    pub conn: u64,
    /// When the request's head was complete.
    pub at: Instant,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Shared {
    name: String,
    log: Mutex<Vec<Recorded>>,
    flaky: Mutex<HashMap<String, u64>>,
    conns: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running upstream test server; stopped (its thread joined, every connection closed) on drop.
pub struct HttpUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpUpstream {
    /// Starts a server labelled `upstream` speaking HTTP/1.1 and h2c.
    pub fn start() -> HttpUpstream {
        HttpUpstream::start_with(HttpOpts::default())
    }

    /// Starts a server labelled `name` (`hello <name>`).
    pub fn named(name: &str) -> HttpUpstream {
        HttpUpstream::start_with(HttpOpts::named(name))
    }

    pub fn start_with(opts: HttpOpts) -> HttpUpstream {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the upstream test server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(Shared {
            name: opts.name.clone(),
            log: Mutex::new(Vec::new()),
            flaky: Mutex::new(HashMap::new()),
            conns: AtomicU64::new(0),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("http-upstream-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the upstream test server");
                rt.block_on(serve(listener, opts, sh, stop_rx));
            })
            .expect("spawn the upstream test server thread");
        HttpUpstream { addr, shared, stop: Some(stop_tx), thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// How many requests received so far have a path starting with `path_prefix`.
    pub fn count(&self, path_prefix: &str) -> usize {
        lock(&self.shared.log).iter().filter(|r| r.path.starts_with(path_prefix)).count()
    }

    /// Waits (at most `timeout`) until at least `n` requests with a path starting with
    /// `path_prefix` have arrived; returns the count then. Panics on timeout.
    pub fn wait_count(&self, path_prefix: &str, n: usize, timeout: Duration) -> usize {
        if !wait_until_or(timeout, || self.count(path_prefix) >= n) {
            panic!(
                "upstream {}: {} request(s) to {path_prefix}* after {timeout:?}, wanted {n}",
                self.shared.name,
                self.count(path_prefix)
            );
        }
        self.count(path_prefix)
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> u64 {
        self.shared.conns.load(Ordering::Relaxed)
    }

    /// Forgets the requests recorded so far (and the `/flaky` counters).
    pub fn clear(&self) {
        lock(&self.shared.log).clear();
        lock(&self.shared.flaky).clear();
    }
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: StdListener, opts: HttpOpts, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener with tokio");
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    if let Some(d) = opts.h1_idle_close {
        builder.http1().header_read_timeout(d);
    }
    builder.http2().timer(TokioTimer::new());
    if let Some(n) = opts.h2_max_concurrent_streams {
        builder.http2().max_concurrent_streams(n);
    }
    let builder = match opts.protocols {
        Protocols::Auto => builder,
        Protocols::Http1Only => builder.http1_only(),
        Protocols::Http2Only => builder.http2_only(),
    };
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = shared.conns.fetch_add(1, Ordering::Relaxed) + 1;
        let sh = shared.clone();
        let b = builder.clone();
        let protocols = opts.protocols;
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, sh.clone(), conn));
            let io = TokioIo::new(stream);
            // `http1_only` / `http2_only` are ignored by the upgrade-capable connection.
            let _ = if protocols == Protocols::Auto {
                b.serve_connection_with_upgrades(io, svc).await
            } else {
                b.serve_connection(io, svc).await
            };
        });
    }
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

fn record(req: &Request<Incoming>, conn: u64) -> Recorded {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let host = req
        .headers()
        .get(http::header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    Recorded {
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        path_and_query: req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.to_string()),
        host,
        version: version_name(req.version()).to_string(),
        headers,
        conn,
        at: Instant::now(),
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).map_err(|never: Infallible| match never {}).boxed());
    *r.status_mut() = status;
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = full(status, body);
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>, conn: u64) -> Result<Response<Body>, Infallible> {
    let rec = record(&req, conn);
    lock(&shared.log).push(rec.clone());
    let mut resp = route(req, &rec, &shared).await;
    if let Ok(v) = HeaderValue::from_str(&shared.name) {
        resp.headers_mut().insert("x-upstream", v);
    }
    Ok(resp)
}

async fn route(req: Request<Incoming>, rec: &Recorded, shared: &Shared) -> Response<Body> {
    let segs: Vec<&str> = rec.path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["status", n] => match n.parse::<u16>().ok().filter(|n| *n >= 200).and_then(|n| StatusCode::from_u16(n).ok()) {
            Some(s) => full(s, Bytes::new()),
            None => text(StatusCode::BAD_REQUEST, "bad status"),
        },
        ["delay", ms] => match ms.parse::<u64>() {
            Ok(ms) => {
                tokio::time::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS))).await;
                text(StatusCode::OK, "delayed")
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "bad delay"),
        },
        ["headers"] => headers_json(rec, &shared.name),
        ["echo"] => {
            let ct = req.headers().get(http::header::CONTENT_TYPE).cloned();
            let mut r = Response::new(req.into_body().map_err(BoxError::from).boxed());
            if let Some(ct) = ct {
                r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
            }
            r
        }
        ["bytes", n] => match n.parse::<usize>() {
            Ok(n) if n <= MAX_BYTES => {
                let mut r = full(StatusCode::OK, pattern(n));
                r.headers_mut()
                    .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                r
            }
            _ => text(StatusCode::BAD_REQUEST, "bad length"),
        },
        ["trailers"] => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-trailer", HeaderValue::from_static("yes"));
            let body = Full::new(Bytes::from_static(b"trailers"))
                .map_err(|never: Infallible| match never {})
                .with_trailers(async move { Some(Ok(trailers)) })
                .boxed();
            let mut r = Response::new(body);
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        ["close"] => {
            let mut r = text(StatusCode::OK, "closing");
            if req.version() < Version::HTTP_2 {
                r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
        ["flaky", key, n] => match n.parse::<u64>() {
            Ok(n) => {
                let seen = {
                    let mut f = lock(&shared.flaky);
                    let c = f.entry((*key).to_string()).or_insert(0);
                    *c += 1;
                    *c
                };
                if seen <= n {
                    text(StatusCode::INTERNAL_SERVER_ERROR, "flaky")
                } else {
                    text(StatusCode::OK, "ok")
                }
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "bad count"),
        },
        ["ws"] => websocket(req),
        _ => text(StatusCode::OK, format!("hello {}", shared.name)),
    }
}

/// `n` bytes of `abc...zabc...`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn headers_json(rec: &Recorded, name: &str) -> Response<Body> {
    let mut headers = serde_json::Map::new();
    for (n, v) in &rec.headers {
        match headers.get_mut(n) {
            Some(serde_json::Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                headers.insert(n.clone(), serde_json::Value::String(v.clone()));
            }
        }
    }
    let doc = serde_json::json!({
        "method": rec.method,
        "path": rec.path_and_query,
        "version": rec.version,
        "authority": rec.host,
        "upstream": name,
        "headers": headers,
    });
    let mut r = full(StatusCode::OK, doc.to_string());
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn header_has_token(req: &Request<Incoming>, name: http::header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Answers an HTTP/1.1 WebSocket Upgrade with 101 and echoes every data frame on the upgraded
/// connection (RFC 6455; the handshake by hand, the framing by tungstenite).
fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let key = req.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes()));
    let upgrade = header_has_token(&req, http::header::UPGRADE, "websocket")
        && header_has_token(&req, http::header::CONNECTION, "upgrade");
    let Some(accept) = key.filter(|_| upgrade && req.version() == Version::HTTP_11) else {
        return text(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break; // tungstenite answers the close frame itself
            }
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                return;
            }
        }
        let _ = ws.close(None).await;
    });
    let mut r = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
    let h = r.headers_mut();
    h.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
