//! `envoy.filters.network.tcp_proxy`: picks a cluster (or a weighted split), connects to a host
//! with `max_connect_attempts`, then moves bytes both ways with half-close, `idle_timeout` and
//! `max_downstream_connection_duration`, counting `tcp.<stat_prefix>.*` and the cluster's
//! `upstream_cx_*` stats, and writes the configured access logs when the connection ends.
//!
//! Memory: the bytes move through `pump::Pump`, which holds no buffer while a connection is
//! idle; what a connection keeps for its access log is built only when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::postgres_proxy::starttls::{PgStartTls, UpstreamSsl};
use super::pump::{HalfStats, Pump, PumpEnd, PumpLimits};
use crate::access_log::{AccessLog, ResponseFlags, StreamInfo};
use crate::config::filters::{ClusterSpecifier, TcpProxyConfig};
use crate::define_stats;
use crate::filter::{CloseOrigin, ConnContext, Downstream, Observer};
use crate::stats::Store;
use crate::upstream::cluster::{Cluster, UpstreamConn, UpstreamStream};
use crate::upstream::lb::hash_ip;
use crate::upstream::stats::ClusterStats;
use crate::upstream::ClusterManager;

define_stats! {
    /// `tcp.<stat_prefix>.*` (Envoy's tcp_proxy stats).
    pub struct TcpProxyStats {
        counter downstream_cx_total,
        counter downstream_cx_no_route,
        counter downstream_cx_drain_close,
        counter downstream_cx_overload_close,
        counter route_delayed_total,
        counter downstream_cx_tx_bytes_total,
        gauge downstream_cx_tx_bytes_buffered,
        counter downstream_cx_rx_bytes_total,
        gauge downstream_cx_rx_bytes_buffered,
        counter downstream_flow_control_paused_reading_total,
        counter downstream_flow_control_resumed_reading_total,
        counter idle_timeout,
        counter max_downstream_connection_duration,
        counter upstream_flush_total,
        gauge upstream_flush_active,
        counter early_data_received_count_total,
    }
}

enum Target {
    Single(Option<Arc<Cluster>>, String),
    Weighted(Vec<(Option<Arc<Cluster>>, String, u32)>, u64),
}

/// The built filter (one per chain per config generation).
pub struct TcpProxy {
    stats: TcpProxyStats,
    target: Target,
    idle_timeout: Option<Duration>,
    max_duration: Option<Duration>,
    max_connect_attempts: u32,
    hash_source_ip: bool,
    access_logs: Vec<Arc<AccessLog>>,
}

impl TcpProxy {
    pub fn new(cfg: &TcpProxyConfig, store: &Store, cm: &ClusterManager) -> Result<TcpProxy, String> {
        let stats = TcpProxyStats::new(store, &format!("tcp.{}.", cfg.stat_prefix));
        let target = match &cfg.cluster {
            ClusterSpecifier::Cluster(c) => Target::Single(cm.get(c).cloned(), c.clone()),
            ClusterSpecifier::Weighted(w) => {
                let total = w.iter().map(|c| u64::from(c.weight)).sum();
                Target::Weighted(
                    w.iter().map(|c| (cm.get(&c.name).cloned(), c.name.clone(), c.weight)).collect(),
                    total,
                )
            }
        };
        let access_logs = crate::access_log_build::build_all(&cfg.access_log)?;
        Ok(TcpProxy {
            stats,
            target,
            idle_timeout: cfg.idle_timeout,
            max_duration: cfg.max_downstream_connection_duration,
            max_connect_attempts: cfg.max_connect_attempts,
            hash_source_ip: cfg.hash_source_ip,
            access_logs,
        })
    }

    fn pick_cluster(&self) -> (Option<&Arc<Cluster>>, &str) {
        match &self.target {
            Target::Single(c, name) => (c.as_ref(), name),
            Target::Weighted(list, total) => {
                let mut r = rand::random::<u64>() % (*total).max(1);
                for (c, name, w) in list {
                    if r < u64::from(*w) {
                        return (c.as_ref(), name);
                    }
                    r -= u64::from(*w);
                }
                list.last().map_or((None, ""), |(c, n, _)| (c.as_ref(), n))
            }
        }
    }

    /// Serves one downstream connection until both directions are done.
    pub async fn serve(
        self: Arc<Self>,
        mut downstream: Downstream,
        cx: ConnContext,
        mut observers: Vec<Box<dyn Observer>>,
        starttls: Option<&PgStartTls>,
    ) {
        let started = crate::clock::now();
        let started = (crate::clock::wall(started), started);
        self.stats.downstream_cx_total.inc();
        let mut out = Outcome::default();
        let (mut bytes, mut upstream_local) = ((0, 0), None);
        // No upstream: we close the downstream.
        let mut close_origin = CloseOrigin::Local;
        let mut up = self.connect(&cx, &mut out).await;
        if let (Some(st), Some(u)) = (starttls, up.as_mut()) {
            // Boxed: only chains that ask the server for SSL pay for this state.
            if let UpstreamSsl::Refuse(reply, reason) = Box::pin(st.connect_upstream(u)).await {
                out.upstream_host = Some(u.host.address);
                out.flags.set(ResponseFlags::UF);
                out.failure_reason = reason;
                refuse(&mut downstream, reply).await;
                up = None;
            }
        }
        if let Some(mut up) = up {
            out.upstream_host = Some(up.host.address);
            for o in &mut observers {
                o.on_upstream_host(up.host.address);
            }
            // getsockname only when a log will print it.
            if !(self.access_logs.is_empty() && cx.listener.access_logs.is_empty()) {
                upstream_local = up.stream().local_addr().ok();
            }
            let cluster = up.cluster.clone();
            let limits = PumpLimits {
                buffer_limit: cx.listener.buffer_limit as usize,
                idle_timeout: self.idle_timeout,
                max_duration: self.max_duration,
            };
            let (end, rx, tx, upstream_ended, origin) = match (&mut downstream, up.transport_mut()) {
                (Downstream::Tcp(s), UpstreamStream::Tcp(u)) => {
                    pump(s.split(), u.split(), (&self.stats, &cluster.stats), &mut observers, limits).await
                }
                // Boxed so plain TCP connections do not carry the TLS variants' larger state.
                (Downstream::Tls(t), UpstreamStream::Tcp(u)) => {
                    Box::pin(pump(
                        tokio::io::split(&mut **t),
                        u.split(),
                        (&self.stats, &cluster.stats),
                        &mut observers,
                        limits,
                    ))
                    .await
                }
                (Downstream::Tcp(s), UpstreamStream::Tls(u)) => {
                    Box::pin(pump(
                        s.split(),
                        tokio::io::split(&mut **u),
                        (&self.stats, &cluster.stats),
                        &mut observers,
                        limits,
                    ))
                    .await
                }
                (Downstream::Tls(t), UpstreamStream::Tls(u)) => {
                    let (d, u) = (tokio::io::split(&mut **t), tokio::io::split(&mut **u));
                    Box::pin(pump(d, u, (&self.stats, &cluster.stats), &mut observers, limits)).await
                }
            };
            bytes = (rx, tx);
            // Envoy counts the upstream connection as closed by the remote when the upstream
            // ended it (its EOF arrived, also after our half-close, or it reset); a local close
            // when we tore it down first (downstream reset, a timer).
            let remote = upstream_ended || end == PumpEnd::UpstreamError;
            match end {
                PumpEnd::IdleTimeout => {
                    self.stats.idle_timeout.inc();
                    cluster.stats.upstream_cx_idle_timeout.inc();
                }
                PumpEnd::MaxDuration => {
                    self.stats.max_downstream_connection_duration.inc();
                    out.flags.set(ResponseFlags::DT);
                }
                PumpEnd::Done | PumpEnd::DownstreamError | PumpEnd::UpstreamError | PumpEnd::FilterClosed => {}
            }
            if remote {
                up.mark_remote_close();
            }
            close_origin = origin;
        }
        for o in &mut observers {
            o.on_close(close_origin);
        }
        if self.access_logs.is_empty() && cx.listener.access_logs.is_empty() {
            return;
        }
        let info = StreamInfo {
            start_time: started.0,
            duration: Some(crate::clock::since(started.1)),
            bytes_received: bytes.0,
            bytes_sent: bytes.1,
            response_flags: out.flags,
            upstream_host: out.upstream_host,
            upstream_cluster: out.cluster.map(str::to_string),
            upstream_local_address: upstream_local,
            upstream_transport_failure_reason: out.failure_reason,
            downstream_remote_address: Some(cx.downstream_remote),
            downstream_local_address: Some(cx.downstream_local),
            connection_id: cx.connection_id,
            requested_server_name: cx.requested_server_name.clone(),
            downstream_tls_version: cx.tls.as_ref().and_then(|t| t.version),
            downstream_tls_cipher: cx.tls.as_ref().and_then(|t| t.cipher),
            downstream_peer_subject: cx.tls.as_ref().and_then(|t| t.peer_subject.clone()),
            ..StreamInfo::default()
        };
        for log in self.access_logs.iter().chain(&cx.listener.access_logs) {
            log.log(&info);
        }
    }

    async fn connect<'s>(&'s self, cx: &ConnContext, out: &mut Outcome<'s>) -> Option<UpstreamConn> {
        let (cluster, name) = self.pick_cluster();
        out.cluster = Some(name);
        let Some(cluster) = cluster else {
            self.stats.downstream_cx_no_route.inc();
            out.flags.set(ResponseFlags::NC);
            return None;
        };
        let hash = (self.hash_source_ip && cluster.uses_hash()).then(|| hash_ip(cx.downstream_remote.ip()));
        for attempt in 1..=self.max_connect_attempts {
            let Some(host) = cluster.choose_host(hash) else {
                cluster.stats.upstream_cx_none_healthy.inc();
                out.flags.set(ResponseFlags::UH);
                return None;
            };
            if !cluster.try_reserve_connection() {
                out.flags.set(ResponseFlags::UO);
                return None;
            }
            match cluster.connect(&host).await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::debug!(target: "upstream", "connect to {} (cluster '{}') failed: {e}", host.address, cluster.name);
                    out.upstream_host = Some(host.address);
                    out.failure_reason = Some(e.transport_failure_reason());
                    out.flags.set(ResponseFlags::UF);
                    if attempt == self.max_connect_attempts {
                        // Envoy flags the exhausted attempts as URX even for the default
                        // single attempt (`UF,URX` in its access log).
                        cluster.stats.upstream_cx_connect_attempts_exceeded.inc();
                        out.flags.set(ResponseFlags::URX);
                    }
                }
            }
        }
        None
    }
}

/// Tells the client why its session cannot go on, then ends the downstream's write side.
async fn refuse(downstream: &mut Downstream, reply: &[u8]) {
    use tokio::io::AsyncWriteExt;
    match downstream {
        Downstream::Tcp(s) => {
            let _ = s.write_all(reply).await;
            let _ = s.shutdown().await;
        }
        Downstream::Tls(t) => {
            let _ = t.write_all(reply).await;
            let _ = t.shutdown().await;
        }
    }
}

/// Moves bytes between the downstream and upstream halves until the pump ends; returns how it
/// ended, the bytes read each way, whether the upstream ended its side, and who closed the
/// downstream.
async fn pump<DR, DW, UR, UW>(
    down: (DR, DW),
    up: (UR, UW),
    (proxy, cluster): (&TcpProxyStats, &ClusterStats),
    observers: &mut [Box<dyn Observer>],
    limits: PumpLimits,
) -> (PumpEnd, u64, u64, bool, CloseOrigin)
where
    DR: AsyncRead + Unpin,
    DW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    let d2u = HalfStats {
        rx: &proxy.downstream_cx_rx_bytes_total,
        tx: &cluster.upstream_cx_tx_bytes_total,
        buffered: &cluster.upstream_cx_tx_bytes_buffered,
    };
    let u2d = HalfStats {
        rx: &cluster.upstream_cx_rx_bytes_total,
        tx: &proxy.downstream_cx_tx_bytes_total,
        buffered: &proxy.downstream_cx_tx_bytes_buffered,
    };
    let mut pump = Pump::new(down, up, d2u, u2d, observers, limits);
    // The pump keeps its own budget (`BATCHES_PER_POLL`, then it yields), so tokio's
    // cooperative budget, a thread-local read and write on every socket poll, is not needed.
    let end = tokio::task::unconstrained(&mut pump).await;
    (end, pump.downstream_rx(), pump.upstream_rx(), pump.upstream_ended(), pump.close_origin(end))
}

/// What a connection remembers for its access log while it runs (kept small: it lives as long
/// as the connection).
#[derive(Default)]
struct Outcome<'a> {
    flags: ResponseFlags,
    cluster: Option<&'a str>,
    upstream_host: Option<SocketAddr>,
    failure_reason: Option<String>,
}
