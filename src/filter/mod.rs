//! Network filters: the observer/terminal split of ARCHITECTURE.md §2.
//!
//! A filter chain is zero or more *observers* (protocol sniffers such as postgres_proxy and
//! mongo_proxy: they see every byte in both directions, count stats, and hold bytes back
//! only when asked to by their config, e.g. fault injection's `FilterAction::Delay`) followed by exactly one *terminal* filter that owns the upstream side (tcp_proxy,
//! later redis_proxy and the HTTP connection manager). Factories are built once per config
//! generation, so stat handles and parsed settings are resolved before traffic arrives.

pub mod http;
pub mod network;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::listener::ListenerShared;

/// What an observer asks the connection to do after seeing some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    Continue,
    /// Hold the downstream bytes just seen (and everything read after them) for this long
    /// before forwarding them (fault injection, e.g. mongo_proxy's `delay`). Only downstream
    /// data can be delayed; a request while a delay runs does not extend it. Other observers
    /// still see the bytes at once; only the forwarding waits.
    Delay(std::time::Duration),
    /// Forward the upstream bytes just seen, then close the connection once everything owed
    /// to the downstream is written (Envoy's `close(FlushWrite)`; e.g. mongo_proxy's drain
    /// close after a reply). On downstream bytes it is `Close`.
    FlushAndClose,
    /// Close the connection (e.g. a protocol violation the filter must not let through).
    Close,
    /// Answer locally, then close: the bytes that triggered this are not forwarded; these are
    /// written to the downstream (after anything it is already owed), then the connection
    /// closes. For a protocol's own error form (e.g. a Postgres ErrorResponse) where the
    /// protocol allows one. Static: such answers are fixed messages.
    ReplyAndClose(&'static [u8]),
}

/// A per-connection observer.
pub trait Observer: Send {
    fn on_downstream_data(&mut self, data: &[u8]) -> FilterAction;
    fn on_upstream_data(&mut self, data: &[u8]) -> FilterAction;
    /// The terminal connected to this upstream host (before any upstream data).
    fn on_upstream_host(&mut self, _addr: SocketAddr) {}
    /// The upstream ended its side. Bytes returned here are written to the downstream before
    /// the close is passed on (e.g. an error message telling the client the server went away).
    fn on_upstream_eof(&mut self) -> Option<&'static [u8]> {
        None
    }
    /// The downstream ended its side (its FIN is passed on to the upstream).
    fn on_downstream_eof(&mut self) {}
    /// The downstream connection closed; `origin` says which side closed it, with Envoy's
    /// meaning of `ConnectionEvent::RemoteClose` / `LocalClose`.
    fn on_close(&mut self, _origin: CloseOrigin) {}
}

/// Who closed the downstream connection (Envoy's `Network::ConnectionEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOrigin {
    /// The downstream peer: it reset the connection, or its FIN completed the close (our FIN
    /// to it went first).
    Remote,
    /// The proxy: the upstream side failed or ended the connection, a timer fired, a filter
    /// closed it, or our FIN to the downstream completed the close.
    Local,
}

/// Builds an observer for each new connection.
pub trait ObserverFactory: Send + Sync {
    fn create(&self, cx: &ConnContext) -> Box<dyn Observer>;
}

/// Per-connection facts a filter may need.
#[derive(Clone)]
pub struct ConnContext {
    pub connection_id: u64,
    pub downstream_remote: SocketAddr,
    pub downstream_local: SocketAddr,
    pub listener: Arc<ListenerShared>,
    /// The SNI the client asked for (from the TLS inspector or the terminated handshake).
    pub requested_server_name: Option<String>,
    /// What the TLS handshake settled, when the chain terminated TLS.
    pub tls: Option<Arc<crate::tls::server::TlsFacts>>,
    /// Cancelled when the server starts draining (SIGTERM, `/quitquitquit`): protocols that can
    /// close gracefully do (the HTTP connection manager: `Connection: close` / GOAWAY).
    pub drain: tokio_util::sync::CancellationToken,
}

/// An accepted downstream connection: plain TCP, or TLS terminated by the filter chain's
/// transport socket.
pub enum Downstream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The terminal filter of a chain (enum dispatch: no boxed futures on the hot path).
pub enum Terminal {
    TcpProxy(Arc<network::tcp_proxy::TcpProxy>),
    RedisProxy(Arc<network::redis_proxy::RedisProxy>),
    Http(Arc<http::conn_manager::HttpConnectionManager>),
}

/// One built filter chain.
pub struct FilterChain {
    pub name: String,
    pub observers: Vec<Arc<dyn ObserverFactory>>,
    pub terminal: Terminal,
    /// TLS termination, when the chain has a `DownstreamTlsContext` transport socket.
    pub tls: Option<Arc<crate::tls::server::TlsServer>>,
    /// In-band TLS negotiated by postgres_proxy (`starttls` sockets), before the pump starts.
    pub starttls: Option<Arc<network::postgres_proxy::starttls::PgStartTls>>,
}

impl FilterChain {
    /// Runs the chain on an accepted connection until it closes.
    pub async fn serve(&self, mut downstream: Downstream, mut cx: ConnContext) {
        let starttls = self.starttls.as_deref();
        if let Some(st) = starttls.filter(|s| s.negotiates_downstream() && matches!(downstream, Downstream::Tcp(_))) {
            let Downstream::Tcp(s) = downstream else { return };
            let timeout = cx.listener.listener_filters_timeout.unwrap_or(crate::listener::DEFAULT_HANDSHAKE_TIMEOUT);
            // Boxed: only starttls chains pay for the negotiation's state, and only while it runs.
            match Box::pin(st.accept(s, timeout)).await {
                network::postgres_proxy::starttls::Accepted::Serve(d, facts) => {
                    downstream = d;
                    if let Some(f) = facts {
                        if cx.requested_server_name.is_none() {
                            cx.requested_server_name = f.server_name.clone();
                        }
                        cx.tls = Some(Arc::new(f));
                    }
                }
                network::postgres_proxy::starttls::Accepted::Closed => return,
            }
        }
        let observers: Vec<Box<dyn Observer>> = self.observers.iter().map(|f| f.create(&cx)).collect();
        match (&self.terminal, downstream) {
            // Boxed too: every terminal's state lives in its own allocation, so the listener's
            // connection task is only as large as the listener's own state.
            (Terminal::TcpProxy(t), d) => Box::pin(t.clone().serve(d, cx, observers, starttls)).await,
            // Boxed: a future is as large as its largest variant, and redis_proxy's session state
            // is larger than tcp_proxy's; boxing keeps plain TCP connections small.
            (Terminal::RedisProxy(r), Downstream::Tcp(s)) => Box::pin(r.clone().serve(s, cx)).await,
            // Rejected at config time (redis_proxy over a TLS transport socket is not supported yet).
            (Terminal::RedisProxy(_), Downstream::Tls(_)) => {}
            (Terminal::Http(h), d) => Box::pin(h.clone().serve(d, cx)).await,
        }
    }
}
