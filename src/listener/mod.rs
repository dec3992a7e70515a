//! Listeners: TCP accept loops with filter-chain selection, and UDP listeners that hand every
//! datagram to udp_proxy. Each listener counts `listener.<address>.*` (the address is
//! `stat_prefix` or `ip_port` with the port actually bound).

pub mod matcher;
pub mod tls_inspector;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLog;
use crate::config::listener::{FilterChainMatch, ListenerConfig, TlsInspectorConfig};
use crate::define_stats;
use crate::filter::{ConnContext, Downstream, FilterChain};

/// The TLS handshake's deadline when `listener_filters_timeout` is 0 (no limit there).
pub(crate) const DEFAULT_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
use crate::stats::{Gauge, Store};
use tls_inspector::{Inspected, TlsInspectorStats};

define_stats! {
    /// `listener.<address>.*`.
    pub struct ListenerStats {
        counter downstream_cx_total,
        counter downstream_cx_destroy,
        gauge downstream_cx_active,
        histogram downstream_cx_length_ms: Milliseconds,
        counter downstream_cx_overflow,
        counter downstream_cx_overload_reject,
        counter downstream_cx_transport_socket_connect_timeout,
        counter downstream_global_cx_overflow,
        counter downstream_pre_cx_timeout,
        gauge downstream_pre_cx_active,
        counter no_filter_chain_match,
        counter extension_config_missing,
        counter downstream_listener_filter_remote_close,
        counter downstream_listener_filter_error,
        counter network_extension_config_missing,
        histogram connections_accepted_per_socket_event: Unspecified,
    }
}

define_stats! {
    /// `listener.<address>.udp.*`.
    pub struct UdpListenerStats {
        counter downstream_rx_datagram_dropped,
    }
}

define_stats! {
    /// `listener.<address>.worker_<N>.*`.
    pub struct WorkerStats {
        counter downstream_cx_total,
        gauge downstream_cx_active,
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Index of the runtime worker thread this code runs on (set by the runtime builder).
    pub static WORKER_ID: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// What every connection of a listener shares.
pub struct ListenerShared {
    pub name: String,
    pub stats: ListenerStats,
    pub workers: Vec<WorkerStats>,
    pub buffer_limit: u32,
    pub access_logs: Vec<Arc<AccessLog>>,
    pub chains: Vec<(FilterChainMatch, FilterChain)>,
    pub default_chain: Option<FilterChain>,
    pub local: SocketAddr,
    /// Downstream connections open on every listener (`server.total_connections`).
    pub total_connections: Gauge,
    /// `overload_manager` global_downstream_max_connections.
    pub global_limit: Option<u64>,
    /// Runtime `envoy.resource_limits.listener.<name>.connection_limit`.
    pub connection_limit: Option<u64>,
    /// The TLS inspector, when the listener has it.
    pub tls_inspector: Option<(TlsInspectorConfig, TlsInspectorStats)>,
    pub listener_filters_timeout: Option<std::time::Duration>,
    pub continue_on_listener_filters_timeout: bool,
}

/// A bound socket, before its loop runs.
pub enum Bound {
    Tcp(TcpListener),
    Udp(Arc<UdpSocket>),
}

/// Binds the listener's socket; errors name the listener and the address.
pub async fn bind(cfg: &ListenerConfig) -> Result<(Bound, SocketAddr), String> {
    let addr = cfg
        .address
        .ip()
        .ok_or_else(|| format!("listener '{}': address '{}' is not an IP address", cfg.name, cfg.address.address))?;
    let fail = |e: std::io::Error| format!("listener '{}': cannot bind {addr}: {e}", cfg.name);
    if cfg.udp_proxy.is_some() {
        let s = UdpSocket::bind(addr).await.map_err(fail)?;
        let local = s.local_addr().map_err(fail)?;
        Ok((Bound::Udp(Arc::new(s)), local))
    } else {
        let sock = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(fail)?;
        sock.set_reuseaddr(true).map_err(fail)?;
        sock.bind(addr).map_err(fail)?;
        let l = sock.listen(cfg.tcp_backlog_size).map_err(fail)?;
        let local = l.local_addr().map_err(fail)?;
        Ok((Bound::Tcp(l), local))
    }
}

/// Builds the per-listener stats (named after the configured address, as Envoy does).
pub fn listener_stats(store: &Store, cfg: &ListenerConfig, concurrency: usize) -> (ListenerStats, Vec<WorkerStats>) {
    let prefix = format!("listener.{}.", cfg.stats_name());
    let stats = ListenerStats::new(store, &prefix);
    let workers = (0..concurrency.max(1)).map(|i| WorkerStats::new(store, &format!("{prefix}worker_{i}."))).collect();
    (stats, workers)
}

/// Accepts connections until `stop` is cancelled; each connection runs on `tracker`.
/// Connections over the global or the listener's limit are closed at once and counted
/// (`downstream_global_cx_overflow`, `downstream_cx_overflow`); established ones are untouched.
pub async fn run_tcp(
    listener: TcpListener,
    shared: Arc<ListenerShared>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors or a transient error: back off briefly instead of
                // spinning, and keep serving the connections we have.
                tracing::warn!(target: "conn_handler", "listener '{}': accept failed: {e}", shared.name);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.global_limit.is_some_and(|max| shared.total_connections.value() >= max) {
            shared.stats.downstream_global_cx_overflow.inc();
            drop(stream);
            continue;
        }
        if shared.connection_limit.is_some_and(|max| shared.stats.downstream_cx_active.value() >= max) {
            shared.stats.downstream_cx_overflow.inc();
            drop(stream);
            continue;
        }
        let guard = ConnAccounting::open(&shared);
        let shared = shared.clone();
        let drain = stop.clone();
        tracker.spawn(crate::clock::scoped(async move {
            handle_connection(stream, remote, &shared, drain).await;
            drop(guard);
        }));
    }
}

/// Counts a connection open on creation and closed on drop.
struct ConnAccounting {
    shared: Arc<ListenerShared>,
    worker: usize,
    started: Instant,
}

impl ConnAccounting {
    fn open(shared: &Arc<ListenerShared>) -> ConnAccounting {
        let worker = WORKER_ID.with(|w| w.get()) % shared.workers.len().max(1);
        shared.stats.downstream_cx_total.inc();
        shared.stats.downstream_cx_active.inc();
        shared.total_connections.inc();
        if let Some(w) = shared.workers.get(worker) {
            w.downstream_cx_total.inc();
            w.downstream_cx_active.inc();
        }
        ConnAccounting { shared: shared.clone(), worker, started: crate::clock::now() }
    }
}

impl Drop for ConnAccounting {
    fn drop(&mut self) {
        let s = &self.shared;
        s.stats.downstream_cx_active.dec();
        s.stats.downstream_cx_destroy.inc();
        s.stats.downstream_cx_length_ms.record(crate::clock::since(self.started).as_millis() as u64);
        s.total_connections.dec();
        if let Some(w) = s.workers.get(self.worker) {
            w.downstream_cx_active.dec();
        }
    }
}

async fn handle_connection(
    stream: TcpStream,
    remote: SocketAddr,
    shared: &Arc<ListenerShared>,
    drain: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    // A listener bound to one address knows the local address without a getsockname call.
    let local =
        if shared.local.ip().is_unspecified() { stream.local_addr().unwrap_or(shared.local) } else { shared.local };
    let inspected = match &shared.tls_inspector {
        None => None,
        Some((cfg, stats)) => {
            shared.stats.downstream_pre_cx_active.inc();
            // Boxed: only inspecting listeners pay for this future, and only while it runs.
            let r = Box::pin(tls_inspector::inspect(
                &stream,
                cfg,
                stats,
                shared.listener_filters_timeout,
                shared.continue_on_listener_filters_timeout,
            ))
            .await;
            shared.stats.downstream_pre_cx_active.dec();
            match r {
                Inspected::Close { timed_out } => {
                    if timed_out {
                        shared.stats.downstream_pre_cx_timeout.inc();
                    }
                    return;
                }
                Inspected::Raw => None,
                Inspected::Tls(h) => Some(h),
            }
        }
    };
    // Scoped so the ClientHello facts are freed before the connection runs.
    let selected = {
        let facts = matcher::ConnFacts {
            local,
            remote,
            server_name: inspected.as_ref().and_then(|h| h.server_name.as_deref()),
            transport: if inspected.is_some() { "tls" } else { "raw_buffer" },
            alpn: inspected.as_ref().map_or(&[], |h| h.alpn.as_slice()),
        };
        matcher::select(shared.chains.len(), |i| &shared.chains[i].0, &facts)
    };
    let requested_server_name = inspected.and_then(|h| h.server_name);
    let chain = match selected {
        Some(i) => shared.chains.get(i).map(|(_, c)| c),
        None => shared.default_chain.as_ref(),
    };
    match chain {
        Some(chain) => {
            let mut cx = ConnContext {
                connection_id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                downstream_remote: remote,
                downstream_local: local,
                listener: shared.clone(),
                requested_server_name,
                tls: None,
                drain,
            };
            let downstream = match &chain.tls {
                None => Downstream::Tcp(stream),
                Some(tls) => {
                    let timeout = shared.listener_filters_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
                    // Boxed: the handshake's state is large and only TLS chains need it.
                    match Box::pin(tls.accept(stream, timeout)).await {
                        Some((s, facts)) => {
                            if cx.requested_server_name.is_none() {
                                cx.requested_server_name = facts.server_name.clone();
                            }
                            cx.tls = Some(Arc::new(facts));
                            Downstream::Tls(Box::new(s))
                        }
                        None => return,
                    }
                }
            };
            chain.serve(downstream, cx).await;
        }
        None => {
            shared.stats.no_filter_chain_match.inc();
            tracing::debug!(target: "conn_handler", "listener '{}': no filter chain matches {remote} -> {local}", shared.name);
            drop(stream);
        }
    }
}
