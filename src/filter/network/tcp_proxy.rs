//! `envoy.filters.network.tcp_proxy`: picks a cluster (or a weighted split), connects to a host
//! with `max_connect_attempts`, then moves bytes both ways with half-close, `idle_timeout` and
//! `max_downstream_connection_duration`, counting `tcp.<stat_prefix>.*` and the cluster's
//! `upstream_cx_*` stats, and writes the configured access logs when the connection ends.
//!
//! Memory: reads land in a per-thread scratch buffer and are written straight to the other
//! socket; only a remainder the peer could not take yet is copied into a buffer owned by the
//! connection (and freed once written). An idle connection therefore holds no buffers. The
//! remainder is bounded by `per_connection_buffer_limit_bytes`: we stop reading until it drains.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;

use crate::access_log::{AccessLog, ResponseFlags, StreamInfo};
use crate::config::filters::{ClusterSpecifier, TcpProxyConfig};
use crate::define_stats;
use crate::filter::{ConnContext, FilterAction, Observer};
use crate::stats::{Counter, Gauge, Store};
use crate::upstream::cluster::{Cluster, UpstreamConn};
use crate::upstream::lb::hash_bytes;
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

/// Largest single read; also the most a direction buffers while its peer is slow.
const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH_SIZE]);
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
    pub async fn serve(self: Arc<Self>, downstream: TcpStream, cx: ConnContext, mut observers: Vec<Box<dyn Observer>>) {
        let started = Instant::now();
        let mut info = StreamInfo {
            start_time: SystemTime::now(),
            downstream_remote_address: Some(cx.downstream_remote),
            downstream_local_address: Some(cx.downstream_local),
            connection_id: cx.connection_id,
            ..StreamInfo::default()
        };
        self.stats.downstream_cx_total.inc();
        let upstream = self.connect(&cx, &mut info).await;
        if let Some(mut up) = upstream {
            info.upstream_host = Some(up.host.address);
            info.upstream_local_address = up.stream().local_addr().ok();
            let limit = (cx.listener.buffer_limit as usize).clamp(1, SCRATCH_SIZE);
            let (rx, tx) = self.pump_both(&downstream, &mut up, limit, &mut observers, &mut info).await;
            info.bytes_received = rx;
            info.bytes_sent = tx;
        }
        for o in &mut observers {
            o.on_close();
        }
        info.duration = Some(started.elapsed());
        for log in &self.access_logs {
            log.log(&info);
        }
        for log in &cx.listener.access_logs {
            log.log(&info);
        }
    }

    async fn connect(&self, cx: &ConnContext, info: &mut StreamInfo) -> Option<UpstreamConn> {
        let (cluster, name) = self.pick_cluster();
        info.upstream_cluster = Some(name.to_string());
        let Some(cluster) = cluster else {
            self.stats.downstream_cx_no_route.inc();
            info.response_flags.set(ResponseFlags::NC);
            return None;
        };
        let hash = self.hash_source_ip.then(|| hash_bytes(cx.downstream_remote.ip().to_string().as_bytes()));
        for attempt in 1..=self.max_connect_attempts {
            let Some(host) = cluster.choose_host(hash) else {
                cluster.stats.upstream_cx_none_healthy.inc();
                info.response_flags.set(ResponseFlags::UH);
                return None;
            };
            if !cluster.try_reserve_connection() {
                info.response_flags.set(ResponseFlags::UO);
                return None;
            }
            match cluster.connect(&host).await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::debug!(target: "upstream", "connect to {} (cluster '{}') failed: {e}", host.address, cluster.name);
                    info.upstream_host = Some(host.address);
                    info.upstream_transport_failure_reason = Some(e.transport_failure_reason());
                    info.response_flags.set(ResponseFlags::UF);
                    if attempt == self.max_connect_attempts {
                        // Envoy flags the exhausted attempts as URX even for the default
                        // single attempt (`UF,URX` in its access log).
                        cluster.stats.upstream_cx_connect_attempts_exceeded.inc();
                        info.response_flags.set(ResponseFlags::URX);
                    }
                }
            }
        }
        None
    }

    /// Moves bytes both ways until both directions finish, a timeout fires or an error occurs.
    /// Returns (bytes received from downstream, bytes sent to downstream).
    async fn pump_both(
        &self,
        downstream: &TcpStream,
        up: &mut UpstreamConn,
        limit: usize,
        observers: &mut [Box<dyn Observer>],
        info: &mut StreamInfo,
    ) -> (u64, u64) {
        let cluster = up.cluster.clone();
        let upstream = up.stream();
        let epoch = Instant::now();
        let last_activity = AtomicU64::new(0);
        let observed = !observers.is_empty();
        let observers = parking_lot::Mutex::new(observers);
        let down_to_up = Direction {
            rx: &self.stats.downstream_cx_rx_bytes_total,
            tx: &cluster.stats.upstream_cx_tx_bytes_total,
            buffered: &cluster.stats.upstream_cx_tx_bytes_buffered,
            last_activity: &last_activity,
            epoch,
            limit,
            downstream_side: true,
            rx_total: AtomicU64::new(0),
            observed,
        };
        let up_to_down = Direction {
            rx: &cluster.stats.upstream_cx_rx_bytes_total,
            tx: &self.stats.downstream_cx_tx_bytes_total,
            buffered: &self.stats.downstream_cx_tx_bytes_buffered,
            last_activity: &last_activity,
            epoch,
            limit,
            downstream_side: false,
            rx_total: AtomicU64::new(0),
            observed,
        };
        // Envoy counts the upstream connection as closed by the remote when the upstream ended
        // it: its EOF arrived (also after our half-close) or it reset. It is a local close when
        // we tear it down first (downstream reset, a timer).
        let upstream_ended = AtomicBool::new(false);
        let both = async {
            let a = down_to_up.pump(downstream, upstream, &observers);
            let b = up_to_down.pump(upstream, downstream, &observers);
            // An error in either direction (a reset) ends the connection; a clean EOF only
            // ends its own direction (half-close).
            tokio::pin!(a, b);
            let (mut a_done, mut b_done) = (false, false);
            while !(a_done && b_done) {
                tokio::select! {
                    r = &mut a, if !a_done => { if r.is_err() { return; } a_done = true; }
                    r = &mut b, if !b_done => {
                        upstream_ended.store(true, Ordering::Relaxed);
                        if r.is_err() { return; }
                        b_done = true;
                    }
                }
            }
        };
        let idle = async {
            match self.idle_timeout {
                None => std::future::pending::<()>().await,
                Some(t) => loop {
                    let last = Duration::from_millis(last_activity.load(Ordering::Relaxed));
                    let deadline = last + t;
                    let now = epoch.elapsed();
                    if now >= deadline {
                        return;
                    }
                    tokio::time::sleep(deadline - now).await;
                },
            }
        };
        let max_duration = async {
            match self.max_duration {
                None => std::future::pending::<()>().await,
                Some(d) => tokio::time::sleep(d).await,
            }
        };
        tokio::select! {
            _ = both => {}
            _ = idle => {
                self.stats.idle_timeout.inc();
                cluster.stats.upstream_cx_idle_timeout.inc();
            }
            _ = max_duration => {
                self.stats.max_downstream_connection_duration.inc();
                info.response_flags.set(ResponseFlags::DT);
            }
        }
        if upstream_ended.load(Ordering::Relaxed) {
            up.mark_remote_close();
        }
        (down_to_up.total(), up_to_down.total())
    }
}

/// One direction of a proxied connection.
struct Direction<'a> {
    rx: &'a Counter,
    tx: &'a Counter,
    buffered: &'a Gauge,
    last_activity: &'a AtomicU64,
    epoch: Instant,
    limit: usize,
    downstream_side: bool,
    /// Bytes read so far (exact even when a timer ends the connection mid-stream).
    rx_total: AtomicU64,
    /// Whether the chain has observer filters to feed.
    observed: bool,
}

enum ReadOutcome {
    Eof,
    WouldBlock,
    /// `n` bytes read and forwarded; `rest` could not be written yet.
    Data(usize, Option<bytes::Bytes>),
}

impl Direction<'_> {
    fn total(&self) -> u64 {
        self.rx_total.load(Ordering::Relaxed)
    }

    async fn pump(
        &self,
        src: &TcpStream,
        dst: &TcpStream,
        observers: &parking_lot::Mutex<&mut [Box<dyn Observer>]>,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            src.readable().await?;
            let outcome = SCRATCH.with(|s| -> io::Result<ReadOutcome> {
                let mut s = s.borrow_mut();
                let buf = &mut s[..self.limit];
                match src.try_read(buf) {
                    Ok(0) => Ok(ReadOutcome::Eof),
                    Ok(n) => {
                        let data = &buf[..n];
                        // Chains without observers (plain tcp_proxy) skip the lock entirely.
                        let mut obs = if self.observed { Some(observers.lock()) } else { None };
                        for o in obs.iter_mut().flat_map(|o| o.iter_mut()) {
                            let act = if self.downstream_side {
                                o.on_downstream_data(data)
                            } else {
                                o.on_upstream_data(data)
                            };
                            if act == FilterAction::Close {
                                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by filter"));
                            }
                        }
                        drop(obs);
                        let mut off = 0;
                        while off < n {
                            match dst.try_write(&data[off..]) {
                                Ok(w) => off += w,
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(e),
                            }
                        }
                        let rest = (off < n).then(|| bytes::Bytes::copy_from_slice(&data[off..]));
                        Ok(ReadOutcome::Data(n, rest))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                    Err(e) => Err(e),
                }
            });
            match outcome? {
                ReadOutcome::WouldBlock => continue,
                ReadOutcome::Eof => {
                    // Half-close: pass the FIN on and keep the other direction running.
                    let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
                    return Ok(total);
                }
                ReadOutcome::Data(n, rest) => {
                    total += n as u64;
                    self.rx.add(n as u64);
                    self.rx_total.fetch_add(n as u64, Ordering::Relaxed);
                    self.touch();
                    if let Some(rest) = rest {
                        self.buffered.add(rest.len() as u64);
                        let r = write_all(dst, &rest).await;
                        self.buffered.sub(rest.len() as u64);
                        r?;
                    }
                    self.tx.add(n as u64);
                }
            }
        }
    }

    fn touch(&self) {
        self.last_activity.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        dst.writable().await?;
        match dst.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
