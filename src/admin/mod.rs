//! The admin HTTP endpoint (Envoy's `/`, `/stats`, `/clusters`, ... — see `handlers`), served
//! with hyper on the `admin.address` listener.

mod handlers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
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

/// Everything the admin handlers read or change.
pub struct AdminState {
    pub store: Store,
    pub cm: Arc<ClusterManager>,
    pub listeners: Vec<ListenerInfo>,
    pub bootstrap: Arc<Bootstrap>,
    pub server: Arc<ServerState>,
    pub log: Arc<LogControl>,
    pub options: Options,
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
                async move { Ok::<_, Infallible>(handlers::handle(&state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// A plain response with Envoy's admin headers.
pub(crate) fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(hyper::header::CONTENT_TYPE, v);
    }
    h.insert("cache-control", hyper::header::HeaderValue::from_static("no-cache, max-age=0"));
    h.insert("x-content-type-options", hyper::header::HeaderValue::from_static("nosniff"));
    r
}
