//! `envoy.filters.udp_listener.udp_proxy`: per-client sessions keyed by the client's address
//! (the local side of the 4-tuple is the listener's own socket), each with its own connected
//! upstream socket, expired after `idle_timeout` without traffic in either direction.
//! Counts `udp.<stat_prefix>.*` and the cluster's `upstream_cx_*` / `udp.*` stats.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use tokio::net::UdpSocket;

use crate::access_log::{AccessLog, StreamInfo};
use crate::config::filters::UdpProxyConfig;
use crate::define_stats;
use crate::stats::Store;
use crate::upstream::cluster::Cluster;
use crate::upstream::lb::hash_ip;
use crate::upstream::ClusterManager;

define_stats! {
    /// `udp.<stat_prefix>.*`.
    pub struct UdpProxyStats {
        counter downstream_sess_no_route,
        counter downstream_sess_rx_bytes,
        counter downstream_sess_rx_datagrams,
        counter downstream_sess_rx_errors,
        counter downstream_sess_total,
        counter downstream_sess_tx_bytes,
        counter downstream_sess_tx_datagrams,
        counter downstream_sess_tx_errors,
        counter idle_timeout,
        counter session_filter_config_missing,
        gauge downstream_sess_active,
    }
}

define_stats! {
    /// `cluster.<name>.udp.*`.
    pub struct ClusterUdpStats {
        counter sess_rx_datagrams,
        counter sess_rx_datagrams_dropped,
        counter sess_rx_errors,
        counter sess_tx_datagrams,
        counter sess_tx_errors,
        counter sess_tunnel_buffer_overflow,
        counter sess_tunnel_failure,
        counter sess_tunnel_success,
    }
}

/// Largest datagram we receive (Envoy's default `max_rx_datagram_size` is 1500; we take the
/// UDP maximum so nothing is truncated).
const MAX_DATAGRAM: usize = 65_535;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_DATAGRAM]);
}

struct Session {
    upstream: Arc<UdpSocket>,
    last_activity: AtomicU64,
    /// Bytes from the client / to the client, for the access log.
    rx_bytes: AtomicU64,
    tx_bytes: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

/// The built filter for one UDP listener.
pub struct UdpProxy {
    stats: UdpProxyStats,
    cluster: Option<Arc<Cluster>>,
    cluster_udp: Option<ClusterUdpStats>,
    idle_timeout: Duration,
    hash_source_ip: bool,
    sessions: Mutex<HashMap<SocketAddr, Arc<Session>>>,
    epoch: Instant,
    access_logs: Vec<Arc<AccessLog>>,
    cluster_name: String,
    local: SocketAddr,
}

impl UdpProxy {
    pub fn new(
        cfg: &UdpProxyConfig,
        store: &Store,
        cm: &ClusterManager,
        local: SocketAddr,
    ) -> Result<UdpProxy, String> {
        let cluster = cm.get(&cfg.cluster).cloned();
        let cluster_udp =
            cluster.as_ref().map(|c| ClusterUdpStats::new(store, &format!("cluster.{}.udp.", c.config.stat_name())));
        let access_logs = crate::access_log_build::build_all(&cfg.access_log)?;
        Ok(UdpProxy {
            stats: UdpProxyStats::new(store, &format!("udp.{}.", cfg.stat_prefix)),
            cluster,
            cluster_udp,
            idle_timeout: cfg.idle_timeout,
            hash_source_ip: cfg.hash_source_ip,
            sessions: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            access_logs,
            cluster_name: cfg.cluster.clone(),
            local,
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Receives datagrams on `socket` until the task is cancelled.
    pub async fn run(self: Arc<Self>, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    self.stats.downstream_sess_rx_errors.inc();
                    tracing::debug!(target: "filter", "udp recv error: {e}");
                    continue;
                }
            };
            self.stats.downstream_sess_rx_datagrams.inc();
            self.stats.downstream_sess_rx_bytes.add(n as u64);
            let Some(session) = self.session_for(peer, &socket).await else {
                continue;
            };
            session.last_activity.store(self.now_ms(), Ordering::Relaxed);
            session.rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
            match session.upstream.send(&buf[..n]).await {
                Ok(sent) => {
                    if let (Some(c), Some(u)) = (&self.cluster, &self.cluster_udp) {
                        c.stats.upstream_cx_tx_bytes_total.add(sent as u64);
                        u.sess_tx_datagrams.inc();
                    }
                }
                Err(e) => {
                    if let Some(u) = &self.cluster_udp {
                        u.sess_tx_errors.inc();
                    }
                    tracing::debug!(target: "filter", "udp send to upstream failed: {e}");
                }
            }
        }
    }

    async fn session_for(self: &Arc<Self>, peer: SocketAddr, downstream: &Arc<UdpSocket>) -> Option<Arc<Session>> {
        if let Some(s) = self.sessions.lock().get(&peer) {
            return Some(s.clone());
        }
        let Some(cluster) = &self.cluster else {
            self.stats.downstream_sess_no_route.inc();
            return None;
        };
        let hash = (self.hash_source_ip && cluster.uses_hash()).then(|| hash_ip(peer.ip()));
        let Some(host) = cluster.choose_host(hash) else {
            cluster.stats.upstream_cx_none_healthy.inc();
            return None;
        };
        // Sessions per cluster are capped by the max_connections circuit breaker (Envoy);
        // they are not upstream connections, so `upstream_cx_*` stay untouched.
        if self.stats.downstream_sess_active.value() >= u64::from(cluster.config.default_thresholds.max_connections) {
            cluster.stats.upstream_cx_overflow.inc();
            return None;
        }
        let bind: SocketAddr = if host.address.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
        let upstream = match UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: "filter", "udp_proxy cannot bind an upstream socket: {e}");
                return None;
            }
        };
        if let Err(e) = upstream.connect(host.address).await {
            tracing::debug!(target: "filter", "udp_proxy cannot connect to {}: {e}", host.address);
            return None;
        }
        let upstream = Arc::new(upstream);
        self.stats.downstream_sess_total.inc();
        self.stats.downstream_sess_active.inc();
        let me = self.clone();
        let (up, down) = (upstream.clone(), downstream.clone());
        let host_addr = host.address;
        let started = (SystemTime::now(), Instant::now());
        let task = tokio::spawn(async move {
            me.session_loop(peer, up, down).await;
            let ended = me.sessions.lock().remove(&peer);
            me.stats.downstream_sess_active.dec();
            if !me.access_logs.is_empty() {
                let (rx, tx) =
                    ended.map_or((0, 0), |s| (s.rx_bytes.load(Ordering::Relaxed), s.tx_bytes.load(Ordering::Relaxed)));
                let info = StreamInfo {
                    start_time: started.0,
                    duration: Some(started.1.elapsed()),
                    bytes_received: rx,
                    bytes_sent: tx,
                    upstream_host: Some(host_addr),
                    upstream_cluster: Some(me.cluster_name.clone()),
                    downstream_remote_address: Some(peer),
                    downstream_local_address: Some(me.local),
                    ..StreamInfo::default()
                };
                for l in &me.access_logs {
                    l.log(&info);
                }
            }
        });
        let session = Arc::new(Session {
            upstream,
            last_activity: AtomicU64::new(self.now_ms()),
            rx_bytes: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            task,
        });
        self.sessions.lock().insert(peer, session.clone());
        Some(session)
    }

    /// Relays upstream replies to the client until the session has been idle for `idle_timeout`.
    /// A session holds no buffer: datagrams are read into a per-thread scratch buffer once the
    /// socket is readable and sent on at once (a reply the client socket cannot take right now
    /// is dropped and counted, as UDP allows).
    async fn session_loop(&self, peer: SocketAddr, upstream: Arc<UdpSocket>, downstream: Arc<UdpSocket>) {
        loop {
            let idle_for = || {
                let last =
                    self.sessions.lock().get(&peer).map_or(self.now_ms(), |s| s.last_activity.load(Ordering::Relaxed));
                Duration::from_millis(self.now_ms().saturating_sub(last))
            };
            let remaining = self.idle_timeout.saturating_sub(idle_for());
            if remaining.is_zero() {
                self.stats.idle_timeout.inc();
                return;
            }
            match tokio::time::timeout(remaining, upstream.readable()).await {
                Err(_) => continue,
                Ok(Err(e)) => {
                    tracing::debug!(target: "filter", "udp upstream socket error: {e}");
                    return;
                }
                Ok(Ok(())) => {}
            }
            let got = SCRATCH.with(|b| {
                let mut b = b.borrow_mut();
                match upstream.try_recv(&mut b[..]) {
                    Ok(n) => Ok(Some((n, downstream.try_send_to(&b[..n], peer)))),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                }
            });
            match got {
                Ok(None) => {}
                Err(e) => {
                    // ICMP port unreachable surfaces here as ECONNREFUSED; count and go on.
                    if let Some(u) = &self.cluster_udp {
                        u.sess_rx_errors.inc();
                    }
                    tracing::debug!(target: "filter", "udp upstream recv error: {e}");
                }
                Ok(Some((n, sent))) => {
                    if let Some(s) = self.sessions.lock().get(&peer) {
                        s.last_activity.store(self.now_ms(), Ordering::Relaxed);
                        s.tx_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    if let (Some(c), Some(u)) = (&self.cluster, &self.cluster_udp) {
                        c.stats.upstream_cx_rx_bytes_total.add(n as u64);
                        u.sess_rx_datagrams.inc();
                    }
                    match sent {
                        Ok(_) => {
                            self.stats.downstream_sess_tx_datagrams.inc();
                            self.stats.downstream_sess_tx_bytes.add(n as u64);
                        }
                        Err(_) => self.stats.downstream_sess_tx_errors.inc(),
                    }
                }
            }
        }
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        for s in self.sessions.lock().values() {
            s.task.abort();
        }
    }
}
