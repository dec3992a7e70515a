//! The admin HTTP endpoint: Envoy's `/`, `/help`, `/stats`, `/clusters`, `/config_dump`, ...
//! served with hyper on the `admin.address` listener.
//!
//! Every endpoint is one row of `table::HANDLERS` (path, help text, POST-only or not, query
//! parameters, handler function); `/help`, the HTML home page `/` and the 404 body are all
//! generated from that table so they cannot disagree. Handlers are plain functions from an
//! `AdminRequest` to a `Reply`, so they are tested without sockets; `serve` is the only part
//! that speaks HTTP.
//!
//! Envoy's rules kept here: paths match exactly (query string ignored; `/stats/` is a 404),
//! a handler that changes state answers 405 `Method GET not allowed, POST required.` to any
//! method but POST, other handlers answer any method (HEAD gets the headers only), and an
//! HTTP/1.0 request gets 426. Parameters come from the query string and, for a POST with a
//! form body (the home page's buttons), from the body as well.

mod clusters;
mod config_dump;
mod help;
mod json;
mod lifecycle;
mod listeners;
mod logging;
mod query;
mod runtime;
mod server_info;
mod stats;
mod table;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::Options;
use crate::config::address::SocketAddress;
use crate::config::Bootstrap;
use crate::logging::LogControl;
use crate::server::{ListenerInfo, ServerState};
use crate::stats::Store;
use crate::upstream::ClusterManager;

pub(crate) use query::Query;

/// Everything the admin handlers read or change.
pub struct AdminState {
    pub store: Store,
    pub cm: Arc<ClusterManager>,
    pub listeners: Vec<ListenerInfo>,
    pub bootstrap: Arc<Bootstrap>,
    pub server: Arc<ServerState>,
    pub log: Arc<LogControl>,
    pub options: Options,
    /// Cancelled by `/drain_listeners`: the traffic listeners stop accepting.
    pub listeners_stop: CancellationToken,
}

/// `text/plain; charset=UTF-8`, Envoy's admin default.
pub(crate) const TEXT: &str = "text/plain; charset=UTF-8";
/// Envoy's JSON endpoints.
pub(crate) const JSON: &str = "application/json";
/// The home page.
pub(crate) const HTML: &str = "text/html; charset=UTF-8";
/// `text/plain` without a charset: what Envoy's `/config_dump` errors carry.
pub(crate) const TEXT_BARE: &str = "text/plain";

/// The `server` header of admin responses (Envoy's default `server_name`).
const SERVER_HEADER: &str = "envoy";
/// The largest form body read from a POST (the home page's forms are a few hundred bytes).
const MAX_FORM_BODY: usize = 64 * 1024;

/// One admin request, as the handlers see it.
#[derive(Debug, Clone)]
pub(crate) struct AdminRequest {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string as sent (still percent-encoded), without `?`.
    pub raw_query: String,
    /// Query-string parameters, then form-body parameters, decoded.
    pub params: Query,
}

impl AdminRequest {
    /// A request from a method and a path with an optional query (`/stats?usedonly`).
    pub fn new(method: &str, path_and_query: &str) -> AdminRequest {
        let (path, raw_query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        AdminRequest {
            method: method.to_string(),
            path: path.to_string(),
            raw_query: raw_query.to_string(),
            params: Query::parse(raw_query),
        }
    }
}

/// What a handler answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply { status, content_type, body: body.into() }
    }

    /// 200 `text/plain; charset=UTF-8`.
    pub fn text(body: impl Into<Bytes>) -> Reply {
        Reply::new(200, TEXT, body)
    }

    /// 200 `application/json`.
    pub fn json(body: impl Into<Bytes>) -> Reply {
        Reply::new(200, JSON, body)
    }

    /// `OK\n`, what every successful POST-only handler answers.
    pub fn ok() -> Reply {
        Reply::text("OK\n")
    }
}

/// Routes one request through the handler table (404, 405 and the handlers themselves).
pub(crate) fn dispatch(state: &AdminState, req: &AdminRequest) -> Reply {
    let Some(handler) = table::find(&req.path) else {
        return Reply::new(404, TEXT, format!("invalid path. {}", help::help_text()));
    };
    if handler.mutates && req.method != "POST" {
        tracing::error!(target: "admin", "admin path \"{}\" mutates state, method={} rather than POST", handler.path, req.method);
        return Reply::new(405, TEXT, format!("Method {} not allowed, POST required.", req.method));
    }
    (handler.run)(state, req)
}

/// Binds the admin address.
pub async fn bind(addr: &SocketAddress) -> Result<TcpListener, String> {
    let ip = addr.ip().ok_or_else(|| format!("admin: address '{}' is not an IP address", addr.address))?;
    TcpListener::bind(ip).await.map_err(|e| format!("admin: cannot bind {ip}: {e}"))
}

/// Serves admin requests until `stop` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, stop: CancellationToken) {
    loop {
        let (stream, _peer): (_, SocketAddr) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(target: "admin", "admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn handle(state: &AdminState, req: Request<Incoming>) -> Response<AdminBody> {
    // Envoy's admin connection manager does not accept HTTP/1.0 (accept_http_10 is off).
    if matches!(req.version(), Version::HTTP_10 | Version::HTTP_09) {
        return upgrade_required();
    }
    let mut areq = AdminRequest::new(req.method().as_str(), req.uri().path_and_query().map_or("/", |p| p.as_str()));
    let is_form = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if areq.method == "POST" && is_form {
        match Limited::new(req.into_body(), MAX_FORM_BODY).collect().await {
            Ok(body) => {
                let bytes = body.to_bytes();
                areq.params.extend_form(&String::from_utf8_lossy(&bytes));
            }
            Err(_) => return respond(Reply::new(413, TEXT, format!("form body larger than {MAX_FORM_BODY} bytes\n"))),
        }
    }
    respond(dispatch(state, &areq))
}

/// The body of an admin response: one chunk. Sent chunked (as Envoy does) unless `sized`.
pub struct AdminBody {
    data: Option<Bytes>,
    sized: bool,
    len: u64,
}

impl AdminBody {
    fn chunked(data: Bytes) -> AdminBody {
        AdminBody { len: data.len() as u64, data: (!data.is_empty()).then_some(data), sized: false }
    }

    fn sized(data: Bytes) -> AdminBody {
        AdminBody { len: data.len() as u64, data: (!data.is_empty()).then_some(data), sized: true }
    }
}

impl Body for AdminBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.sized || self.data.is_none() {
            SizeHint::with_exact(if self.data.is_none() { 0 } else { self.len })
        } else {
            SizeHint::default()
        }
    }
}

/// `date` in HTTP's IMF-fixdate form. Set here (hyper would add one) so the headers come in
/// Envoy's order: content-type, cache-control, x-content-type-options, date, server.
fn date_header() -> HeaderValue {
    let now = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    HeaderValue::from_str(&now).unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

/// A reply with Envoy's admin headers.
pub(crate) fn respond(reply: Reply) -> Response<AdminBody> {
    let mut r = Response::new(AdminBody::chunked(reply.body));
    *r.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    h.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache, max-age=0"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(hyper::header::DATE, date_header());
    h.insert(hyper::header::SERVER, HeaderValue::from_static(SERVER_HEADER));
    r
}

/// Envoy's answer to HTTP/1.0: `426 Upgrade Required`, sized, and the connection closes.
fn upgrade_required() -> Response<AdminBody> {
    const BODY: &[u8] = b"Upgrade Required";
    let mut r = Response::new(AdminBody::sized(Bytes::from_static(BODY)));
    *r.status_mut() = hyper::StatusCode::UPGRADE_REQUIRED;
    let h = r.headers_mut();
    h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(BODY.len()));
    h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(hyper::header::DATE, date_header());
    h.insert(hyper::header::SERVER, HeaderValue::from_static(SERVER_HEADER));
    h.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    r
}
