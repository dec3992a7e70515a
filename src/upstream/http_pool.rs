//! Upstream HTTP connection pools, one per (cluster, host), shared by every worker thread.
//!
//! - HTTP/1.1: idle keep-alive connections on a stack (the most recently used first, so a
//!   quiet pool lets old connections time out); a connection returns to the pool when its
//!   response body has been read to the end. Requests are written and responses read by the
//!   request's own task (`super::h1_client`): no task per connection. Upgrade requests
//!   (WebSocket) go through hyper's client, whose upgrade the downstream codec joins.
//! - HTTP/2: one multiplexed connection per host, reopened when it closes (Envoy opens more
//!   when `max_concurrent_streams` is reached; Legate queues on the one connection). Spoken
//!   through the `h2` crate directly (`super::h2_client`): the request's own task opens the
//!   stream and reads the response; a task of its own only pumps a request body.
//!
//! A request that finds a pooled HTTP/1.1 connection the upstream has just closed is not
//! failed: a pooled connection is checked before use, and a request that got no byte back
//! from a reused connection goes out again on a fresh one (Envoy's "503 UC" on keep-alive
//! races).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

use super::cluster::{Cluster, ConnectError, UpstreamConn};
use super::h1_client::{self, H1Conn, H1Response};
use super::h2_client::{self, H2Body, H2Sender};
use super::host::Host;
use crate::config::http::{UpstreamHttpOptions, UpstreamProtocol};
use crate::filter::http::body::{BoxError, ReqBody};
use crate::stats::counted_io::CountedIo;

/// The socket of a pooled connection, counting the cluster's `upstream_cx_rx/tx_bytes_total`;
/// dropping it settles the cluster's cx stats.
pub(crate) type PooledIo = CountedIo<UpstreamConn>;

fn pooled(conn: UpstreamConn) -> PooledIo {
    let (rx, tx) =
        (conn.cluster.stats.upstream_cx_rx_bytes_total.clone(), conn.cluster.stats.upstream_cx_tx_bytes_total.clone());
    CountedIo::new(conn, rx, tx)
}

/// Why a request got no response from the upstream.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(ConnectError),
    /// The connection failed or was reset before response headers arrived.
    Reset { reason: &'static str, detail: String },
}

impl SendError {
    /// Envoy's reset reason for the local reply body and `%RESPONSE_CODE_DETAILS%`.
    pub fn reset_reason(&self) -> &'static str {
        match self {
            SendError::Connect(ConnectError::Timeout) => "connection timeout",
            SendError::Connect(_) => "connection failure",
            SendError::Reset { reason, .. } => reason,
        }
    }
}

struct Idle {
    conn: H1Conn,
    since: Instant,
}

/// The pool of one host.
#[derive(Default)]
pub(crate) struct HostPool {
    idle: Mutex<Vec<Idle>>,
    h2: tokio::sync::Mutex<Option<H2Sender>>,
}

impl HostPool {
    /// A connection whose exchange ended cleanly, ready for the next request.
    pub(crate) fn put_idle(&self, conn: H1Conn) {
        self.idle.lock().push(Idle { conn, since: crate::clock::now() });
    }
}

/// A response body from either client. Not boxed: it exists only while a request is in
/// flight, and the HTTP/1.1 variant is the common one.
#[allow(clippy::large_enum_variant)]
pub enum UpstreamBody {
    Hyper(Incoming),
    H1(H1Response),
    H2(H2Body),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpstreamBody::H1(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::H2(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::H1(b) => b.is_end_stream(),
            UpstreamBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::H1(b) => b.size_hint(),
            UpstreamBody::H2(b) => b.size_hint(),
        }
    }
}

/// The HTTP side of one cluster.
pub struct HttpUpstream {
    pub options: UpstreamHttpOptions,
    /// Looked up on every request: foldhash, not SipHash (the keys are our own endpoints).
    pools: Mutex<HashMap<SocketAddr, Arc<HostPool>, foldhash::fast::RandomState>>,
}

/// A response (an HTTP/1.1 body gives its connection back to the pool once read).
pub struct Sent {
    pub response: Response<UpstreamBody>,
    pub upstream_local: Option<SocketAddr>,
    /// Holds `upstream_rq_active` up until the response is done with.
    pub active: ActiveRq,
}

impl HttpUpstream {
    pub fn new(options: UpstreamHttpOptions) -> HttpUpstream {
        HttpUpstream { options, pools: Mutex::new(HashMap::default()) }
    }

    fn pool(&self, host: &Host) -> Arc<HostPool> {
        self.pools.lock().entry(host.address).or_default().clone()
    }

    /// Whether requests to this cluster go out as HTTP/2 (`downstream_h2` for
    /// `use_downstream_protocol_config`).
    pub fn uses_h2(&self, downstream_h2: bool) -> bool {
        match self.options.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Downstream => downstream_h2,
        }
    }

    /// Sends `req` to `host` on a pooled connection.
    pub async fn send(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        req: Request<ReqBody>,
        h2: bool,
        upgrade: bool,
    ) -> Result<Sent, SendError> {
        // Every future awaited here lives inside this one, and this one inside the router's
        // per-request future, which is moved into a box per request: the rare, large ones
        // (connecting, TLS and HTTP/2 handshakes, hyper's upgrade client) are boxed so that
        // the common path (a pooled HTTP/1.1 or HTTP/2 connection) stays a few hundred bytes.
        let pool = self.pool(host);
        if h2 {
            return self.send_h2(cluster, host, &pool, req).await;
        }
        let mut req = Some(req);
        if upgrade {
            return Box::pin(self.send_upgrade(cluster, host, req)).await;
        }
        let idle_timeout = self.options.common.idle_timeout;
        let mut resend = None;
        // Pooled connections first; a request a reused connection never answered goes on.
        loop {
            let candidate = {
                let mut idle = pool.idle.lock();
                let mut found = None;
                while let Some(i) = idle.pop() {
                    if idle_timeout.is_some_and(|t| crate::clock::since(i.since) >= t) {
                        continue;
                    }
                    found = Some(i.conn);
                    break;
                }
                found
            };
            let Some(mut conn) = candidate else { break };
            if !conn.still_open().await {
                continue;
            }
            let active = count_request(cluster, host);
            let sent = match resend.take() {
                Some(r) => h1_client::resend(conn, r, pool.clone()).await,
                None => match req.take() {
                    Some(r) => h1_client::send(conn, r, pool.clone()).await,
                    None => break,
                },
            };
            match sent {
                Ok(response) => {
                    return Ok(Sent { response: response.map(UpstreamBody::H1), upstream_local: None, active })
                }
                Err((_, Some(again))) => {
                    // Never answered: not a request of this connection after all.
                    active.unsent();
                    resend = Some(again);
                }
                Err((e, None)) => return Err(e),
            }
        }
        let conn = Box::pin(connect_pending(cluster, host)).await?;
        let local = conn.stream().local_addr().ok();
        cluster.stats.upstream_cx_http1_total.inc();
        let conn = H1Conn::new(pooled(conn));
        let active = count_request(cluster, host);
        let sent = match (resend, req) {
            (Some(r), _) => h1_client::resend(conn, r, pool).await,
            (None, Some(r)) => h1_client::send(conn, r, pool).await,
            (None, None) => return Err(SendError::Reset { reason: "connection termination", detail: String::new() }),
        };
        match sent {
            Ok(response) => Ok(Sent { response: response.map(UpstreamBody::H1), upstream_local: local, active }),
            Err((e, _)) => Err(e),
        }
    }

    /// An upgrade request (WebSocket) on a new connection through hyper's client, whose
    /// upgrade handle the downstream codec takes from the 101 response.
    async fn send_upgrade(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        req: Option<Request<ReqBody>>,
    ) -> Result<Sent, SendError> {
        let Some(req) = req else {
            return Err(SendError::Reset { reason: "connection termination", detail: String::new() });
        };
        let conn = connect_pending(cluster, host).await?;
        let local = conn.stream().local_addr().ok();
        cluster.stats.upstream_cx_http1_total.inc();
        let (mut sender, connection) =
            http1::Builder::new().handshake::<_, ReqBody>(TokioIo::new(pooled(conn))).await.map_err(reset_error)?;
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        let active = count_request(cluster, host);
        let response = sender.send_request(req).await.map_err(reset_error)?;
        Ok(Sent { response: response.map(UpstreamBody::Hyper), upstream_local: local, active })
    }

    async fn send_h2(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        pool: &HostPool,
        req: Request<ReqBody>,
    ) -> Result<Sent, SendError> {
        let sender = {
            let mut slot = pool.h2.lock().await;
            match slot.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let sender = Box::pin(self.open_h2(cluster, host)).await?;
                    *slot = Some(sender.clone());
                    sender
                }
            }
        };
        let active = count_request(cluster, host);
        let response = h2_client::send(sender, req).await?;
        Ok(Sent { response: response.map(UpstreamBody::H2), upstream_local: None, active })
    }

    /// A new HTTP/2 connection to `host`, its driver spawned.
    async fn open_h2(&self, cluster: &Arc<Cluster>, host: &Arc<Host>) -> Result<H2Sender, SendError> {
        let conn = connect_pending(cluster, host).await?;
        cluster.stats.upstream_cx_http2_total.inc();
        h2_client::open(pooled(conn), &self.options.http2).await
    }
}

/// Opens a new pooled connection while a request waits for it (Envoy's pending request).
async fn connect_pending(cluster: &Arc<Cluster>, host: &Arc<Host>) -> Result<UpstreamConn, SendError> {
    cluster.stats.upstream_rq_pending_total.inc();
    cluster.stats.upstream_rq_pending_active.inc();
    let conn = cluster.connect_pooled(host).await;
    cluster.stats.upstream_rq_pending_active.dec();
    conn.map_err(|e| {
        cluster.stats.upstream_rq_pending_failure_eject.inc();
        SendError::Connect(e)
    })
}

/// A request got a connection: Envoy's `upstream_rq_total` (counted when the pool assigns a
/// stream, so requests whose connect failed are not in it).
fn count_request(cluster: &Arc<Cluster>, host: &Arc<Host>) -> ActiveRq {
    cluster.stats.upstream_rq_total.inc();
    cluster.stats.upstream_rq_active.inc();
    host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
    host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
    ActiveRq { cluster: cluster.clone(), host: host.clone(), counted: true }
}

/// One upstream request in flight (`upstream_rq_active`, the host's `rq_active` that the
/// least-request balancer reads); settled on drop.
pub struct ActiveRq {
    cluster: Arc<Cluster>,
    host: Arc<Host>,
    counted: bool,
}

impl ActiveRq {
    /// hyper handed the request back unsent: take back the count.
    fn unsent(mut self) {
        self.counted = false;
        self.cluster.stats.upstream_rq_active.dec();
        self.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for ActiveRq {
    fn drop(&mut self) {
        if self.counted {
            self.cluster.stats.upstream_rq_active.dec();
            self.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Maps a hyper error before response headers (the upgrade client) to Envoy's reset reasons.
fn reset_error(e: hyper::Error) -> SendError {
    let detail = e.to_string();
    let reason = if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        "protocol error"
    } else {
        "connection termination"
    };
    SendError::Reset { reason, detail }
}
