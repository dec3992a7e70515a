//! A running cluster: its hosts (swapped atomically when DNS changes them), its load balancer,
//! its circuit breaker on connections, and the connect path that drives `upstream_cx_*`.
//!
//! With a `transport_socket` (`UpstreamTlsContext`) the connect path also runs the TLS
//! handshake, inside `connect_timeout` as in Envoy: a failed handshake is a failed connect
//! (`upstream_cx_connect_fail`, Envoy's `TLS_error:...` transport failure reason), and the
//! connection handed out is already encrypted.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::host::Host;
use super::lb::{self, LbContext, LbHost, LbPolicy, LoadBalancer};
use super::stats::{CircuitBreakerStats, ClusterStats, DefaultMatchStats};
use crate::config::cluster::{ClusterConfig, LbPolicyConfig};
use crate::stats::Store;
use crate::tls::client::{TlsClient, TlsConnectError};

/// The hosts of the highest-priority level that has any, with a load balancer built for them.
pub struct HostSet {
    /// Every host of every priority, for `/clusters`.
    pub all: Vec<Arc<Host>>,
    /// The hosts traffic goes to (the lowest priority number that has hosts).
    pub active: Vec<Arc<Host>>,
    lb: Box<dyn LoadBalancer>,
}

impl HostSet {
    fn build(policy: &LbPolicy, all: Vec<Arc<Host>>) -> HostSet {
        // Without health checking every host is healthy, so priority 0 (or the first level
        // with hosts) takes all traffic; Envoy spills to lower levels only on unhealthy hosts.
        let best = all.iter().map(|h| h.priority).min();
        let active: Vec<Arc<Host>> = all.iter().filter(|h| Some(h.priority) == best).cloned().collect();
        let lb_hosts: Vec<LbHost> =
            active.iter().map(|h| LbHost { weight: h.weight.max(1), key: h.address.to_string() }).collect();
        let lb = lb::build(policy, &lb_hosts);
        HostSet { all, active, lb }
    }
}

/// Why an upstream connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection timeout")]
    Timeout,
    #[error("delayed connect error: {0}")]
    Io(#[source] std::io::Error),
    /// The TCP connection opened but the TLS handshake failed (boxed: keeps the plain
    /// connect path's futures small).
    #[error("{0}")]
    Tls(#[source] Box<TlsConnectError>),
}

impl ConnectError {
    /// Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` text.
    pub fn transport_failure_reason(&self) -> String {
        match self {
            ConnectError::Timeout => "connection timeout".to_string(),
            ConnectError::Io(e) => {
                format!("delayed connect error: {}", e.raw_os_error().unwrap_or(0))
            }
            ConnectError::Tls(e) => e.transport_failure_reason().to_string(),
        }
    }
}

pub struct Cluster {
    pub name: String,
    pub config: ClusterConfig,
    pub stats: ClusterStats,
    pub cb_default: CircuitBreakerStats,
    pub cb_high: CircuitBreakerStats,
    /// HTTP connection pools (used by the HTTP router only).
    pub http: super::http_pool::HttpUpstream,
    /// The router's per-response-code stats.
    pub http_stats: crate::filter::http::stats::ClusterHttpStats,
    /// `envoy.clusters.redis`: the slot map and its discovery state.
    pub redis: Option<Arc<super::redis_cluster::RedisClusterState>>,
    policy: LbPolicy,
    hosts: ArcSwap<HostSet>,
    tls: Option<Arc<TlsClient>>,
    /// The `starttls` socket's TLS: used only when a filter switches a connection over.
    starttls: Option<Arc<TlsClient>>,
}

impl Cluster {
    /// Builds the cluster; fails when its TLS context cannot be built (unreadable files).
    pub fn new(config: ClusterConfig, store: &Store, hosts: Vec<Arc<Host>>) -> Result<Cluster, String> {
        let prefix = format!("cluster.{}.", config.stat_name());
        let tls = match &config.tls {
            Some(t) => Some(
                TlsClient::new(t, store, &format!("{prefix}ssl."))
                    .map_err(|e| format!("cluster '{}': transport_socket: {e}", config.name))?,
            ),
            None => None,
        };
        let starttls = match &config.starttls {
            Some(t) => Some(
                TlsClient::new(t, store, &format!("{prefix}ssl."))
                    .map_err(|e| format!("cluster '{}': transport_socket: {e}", config.name))?,
            ),
            None => None,
        };
        let stats = ClusterStats::new(store, &prefix);
        let cb_default = CircuitBreakerStats::new(store, &format!("{prefix}circuit_breakers.default."));
        let cb_high = CircuitBreakerStats::new(store, &format!("{prefix}circuit_breakers.high."));
        let default_match = DefaultMatchStats::new(store, &format!("{prefix}default."));
        // Without transport_socket_matches every host uses the cluster's transport socket.
        default_match.total_match_count.add(hosts.len() as u64);
        let policy = match &config.lb_policy {
            // CLUSTER_PROVIDED (Redis Cluster): the redis proxy routes by slot; anything else
            // that asks this cluster for a host gets round robin over the discovered hosts.
            LbPolicyConfig::RoundRobin | LbPolicyConfig::ClusterProvided => LbPolicy::RoundRobin,
            LbPolicyConfig::LeastRequest { choice_count, active_request_bias } => {
                LbPolicy::LeastRequest { choice_count: *choice_count, active_request_bias: *active_request_bias }
            }
            LbPolicyConfig::Random => LbPolicy::Random,
            LbPolicyConfig::RingHash { minimum_ring_size, maximum_ring_size } => {
                LbPolicy::RingHash { minimum_ring_size: *minimum_ring_size, maximum_ring_size: *maximum_ring_size }
            }
            LbPolicyConfig::Maglev { table_size } => LbPolicy::Maglev { table_size: *table_size },
        };
        // The first host set is a membership change, as Envoy counts it.
        let initial_change = !hosts.is_empty();
        let set = HostSet::build(&policy, hosts);
        let http = super::http_pool::HttpUpstream::new(config.http_options.clone());
        let http_stats = crate::filter::http::stats::ClusterHttpStats::new(store, config.stat_name());
        let redis = config
            .redis_cluster
            .clone()
            .map(|c| Arc::new(super::redis_cluster::RedisClusterState::new(c, store, &prefix)));
        let cluster = Cluster {
            redis,
            http,
            http_stats,
            name: config.name.clone(),
            config,
            stats,
            cb_default,
            cb_high,
            policy,
            hosts: ArcSwap::from_pointee(set),
            tls,
            starttls,
        };
        cluster.update_membership_stats();
        if initial_change {
            cluster.stats.membership_change.inc();
        }
        Ok(cluster)
    }

    /// The cluster's TLS origination, when it has a `transport_socket` with an
    /// `UpstreamTlsContext`. [`Cluster::connect`] already runs the handshake; call
    /// [`TlsClient::connect`] only on a socket opened some other way.
    pub fn tls(&self) -> Option<&Arc<TlsClient>> {
        self.tls.as_ref()
    }

    /// The TLS of the cluster's `starttls` transport socket (`UpstreamStartTlsConfig`), for
    /// [`UpstreamConn::start_tls`].
    pub fn starttls(&self) -> Option<&Arc<TlsClient>> {
        self.starttls.as_ref()
    }

    /// Whether the load balancer uses the request hash (ring hash, maglev): callers skip
    /// computing one otherwise.
    pub fn uses_hash(&self) -> bool {
        matches!(self.policy, LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. })
    }

    /// The current host set.
    pub fn hosts(&self) -> Arc<HostSet> {
        self.hosts.load_full()
    }

    /// Replaces the hosts (DNS refresh). Hosts whose address is unchanged keep their stats.
    pub fn set_hosts(&self, hosts: Vec<Arc<Host>>) {
        let old = self.hosts.load();
        let same = old.all.len() == hosts.len()
            && old
                .all
                .iter()
                .zip(&hosts)
                .all(|(a, b)| a.address == b.address && a.weight == b.weight && a.priority == b.priority);
        if same {
            self.stats.update_no_rebuild.inc();
            return;
        }
        let hosts = hosts
            .into_iter()
            .map(|h| {
                old.all
                    .iter()
                    .find(|o| o.address == h.address && o.weight == h.weight && o.priority == h.priority)
                    .cloned()
                    .unwrap_or(h)
            })
            .collect();
        self.hosts.store(Arc::new(HostSet::build(&self.policy, hosts)));
        self.stats.membership_change.inc();
        self.update_membership_stats();
    }

    /// `max_host_weight` is left at 0 as Envoy 1.40 leaves it for static and DNS clusters.
    fn update_membership_stats(&self) {
        let set = self.hosts.load();
        let n = set.all.len() as u64;
        self.stats.membership_total.set(n);
        self.stats.membership_healthy.set(n);
    }

    /// Picks a host for a new connection or request; `None` when the cluster has no hosts.
    pub fn choose_host(&self, hash: Option<u64>) -> Option<Arc<Host>> {
        let set = self.hosts.load();
        let i = set.lb.pick(&LbContext { hash }, &|i| set.active.get(i).map_or(0, |h| h.active_requests()))?;
        set.active.get(i).cloned()
    }

    /// The TLS handshake over a fresh connection; a failure records the TCP connection's
    /// length, as Envoy does.
    async fn handshake(
        &self,
        tls: &TlsClient,
        tcp: TcpStream,
        deadline: Instant,
    ) -> Result<UpstreamStream, ConnectError> {
        let opened = Instant::now();
        match tokio::time::timeout_at(deadline.into(), tls.connect(tcp)).await {
            Err(_) => Err(ConnectError::Timeout),
            Ok(Ok(s)) => Ok(UpstreamStream::Tls(Box::new(s))),
            Ok(Err(e)) => {
                self.stats.upstream_cx_length_ms.record(opened.elapsed().as_millis() as u64);
                Err(ConnectError::Tls(Box::new(e)))
            }
        }
    }

    /// Checks the default-priority `max_connections` breaker; connections being established
    /// count against it too (the caller connects right away, without awaiting in between).
    pub fn try_reserve_connection(&self) -> bool {
        let max = u64::from(self.config.default_thresholds.max_connections);
        if self.stats.upstream_cx_active.value() + self.stats.upstream_rq_pending_active.value() >= max {
            self.stats.upstream_cx_overflow.inc();
            self.cb_default.cx_open.set(1);
            return false;
        }
        true
    }

    /// Opens a connection to `host` (TCP, then TLS when the cluster has a TLS context) within
    /// `connect_timeout`, counting Envoy's stats.
    /// As in Envoy's TCP connection pool, the connection is also one upstream request: pending
    /// while connecting, active for the connection's life.
    pub async fn connect(self: &Arc<Self>, host: &Arc<Host>) -> Result<UpstreamConn, ConnectError> {
        self.connect_as(host, true).await
    }

    /// Opens a connection for an HTTP pool: the cx stats only; the pool counts requests.
    pub async fn connect_pooled(self: &Arc<Self>, host: &Arc<Host>) -> Result<UpstreamConn, ConnectError> {
        self.connect_as(host, false).await
    }

    async fn connect_as(self: &Arc<Self>, host: &Arc<Host>, as_request: bool) -> Result<UpstreamConn, ConnectError> {
        let started = Instant::now();
        self.stats.upstream_cx_total.inc();
        if as_request {
            self.stats.upstream_rq_pending_total.inc();
            self.stats.upstream_rq_pending_active.inc();
        }
        host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        let timeout = self.config.connect_timeout;
        let result = match tokio::time::timeout(timeout, connect_socket(host.address, self.config.tcp_keepalive)).await
        {
            Err(_) => Err(ConnectError::Timeout),
            Ok(Err(e)) => Err(ConnectError::Io(e)),
            Ok(Ok(tcp)) => match &self.tls {
                None => Ok(UpstreamStream::Tcp(tcp)),
                // Boxed: plain connections do not carry the handshake's state. The handshake
                // gets what is left of connect_timeout.
                Some(t) => Box::pin(self.handshake(t, tcp, started + timeout)).await,
            },
        };
        if as_request {
            self.stats.upstream_rq_pending_active.dec();
            if result.is_err() {
                self.stats.upstream_rq_pending_failure_eject.inc();
            }
        }
        match result {
            Ok(stream) => {
                self.stats.upstream_cx_connect_ms.record(started.elapsed().as_millis() as u64);
                self.stats.upstream_cx_active.inc();
                host.stats.cx_active.fetch_add(1, Ordering::Relaxed);
                if as_request {
                    self.stats.upstream_rq_total.inc();
                    self.stats.upstream_rq_active.inc();
                    host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
                    host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
                }
                let max = u64::from(self.config.default_thresholds.max_connections);
                if self.stats.upstream_cx_active.value() >= max {
                    self.cb_default.cx_open.set(1);
                }
                Ok(UpstreamConn {
                    stream: Some(stream),
                    cluster: self.clone(),
                    host: host.clone(),
                    opened: crate::clock::now(),
                    closed_by_remote: false,
                    as_request,
                    busy: false,
                })
            }
            Err(ConnectError::Timeout) => {
                self.stats.upstream_cx_destroy.inc();
                self.stats.upstream_cx_destroy_local.inc();
                self.stats.upstream_cx_connect_timeout.inc();
                self.stats.upstream_cx_connect_fail.inc();
                host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                Err(ConnectError::Timeout)
            }
            Err(e) => {
                // A refused connect (or a failed handshake, which Envoy's TLS socket ends as a
                // remote close) is a connection the remote closed, in Envoy's counting.
                self.stats.upstream_cx_destroy.inc();
                self.stats.upstream_cx_destroy_remote.inc();
                self.stats.upstream_cx_connect_fail.inc();
                host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

async fn connect_socket(addr: SocketAddr, keepalive: bool) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    if keepalive {
        let sock = socket2::SockRef::from(&stream);
        sock.set_keepalive(true)?;
    }
    Ok(stream)
}

/// The transport of an upstream connection: plain TCP, or TLS over it.
pub enum UpstreamStream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open upstream connection. Dropping it closes the socket and settles the cluster's
/// `upstream_cx_active`, `upstream_cx_destroy*` and `upstream_cx_length_ms` stats.
pub struct UpstreamConn {
    stream: Option<UpstreamStream>,
    pub cluster: Arc<Cluster>,
    pub host: Arc<Host>,
    opened: Instant,
    closed_by_remote: bool,
    /// A TCP-proxy connection is also one upstream request (Envoy's TCP pool counting).
    as_request: bool,
    /// An HTTP/1.1 request is on it (sent or being sent, its response not complete): closing
    /// it now counts `upstream_cx_destroy_*_with_active_rq`.
    busy: bool,
}

impl UpstreamConn {
    /// The TCP socket (under TLS when the cluster originates TLS); for addresses and socket
    /// options, not for bytes when [`UpstreamConn::transport_mut`] is TLS.
    pub fn stream(&self) -> &TcpStream {
        match self.stream.as_ref().expect("stream is present until drop") {
            UpstreamStream::Tcp(s) => s,
            UpstreamStream::Tls(t) => t.get_ref().0,
        }
    }

    /// The transport, mutably (to split it into read and write halves).
    pub fn transport_mut(&mut self) -> &mut UpstreamStream {
        self.stream.as_mut().expect("stream is present until drop")
    }

    /// Switches a plain connection to TLS in band (the starttls socket): the handshake runs
    /// over the open socket within `timeout`. On failure the connection is unusable and must
    /// be dropped.
    pub async fn start_tls(&mut self, tls: &TlsClient, timeout: std::time::Duration) -> Result<(), String> {
        let tcp = match self.stream.take() {
            Some(UpstreamStream::Tcp(t)) => t,
            other => {
                self.stream = other;
                return Err("the connection is already TLS".to_string());
            }
        };
        match tokio::time::timeout(timeout, tls.connect(tcp)).await {
            Ok(Ok(s)) => {
                self.stream = Some(UpstreamStream::Tls(Box::new(s)));
                Ok(())
            }
            Ok(Err(e)) => Err(e.transport_failure_reason().to_string()),
            Err(_) => Err("TLS handshake timed out".to_string()),
        }
    }

    /// The TLS stream, when the cluster originates TLS.
    pub fn tls_stream(&self) -> Option<&TlsStream<TcpStream>> {
        match self.stream.as_ref()? {
            UpstreamStream::Tcp(_) => None,
            UpstreamStream::Tls(t) => Some(t),
        }
    }

    /// The protocol ALPN settled on with the upstream (`h2`, `http/1.1`), if any.
    pub fn negotiated_alpn(&self) -> Option<&[u8]> {
        self.tls_stream().and_then(TlsClient::negotiated_alpn)
    }

    /// Marks an HTTP/1.1 exchange as started (`true`) or complete (`false`).
    pub fn set_busy(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Records that the upstream closed first (for `upstream_cx_destroy_remote`).
    pub fn mark_remote_close(&mut self) {
        self.closed_by_remote = true;
    }

    pub fn age(&self) -> Duration {
        crate::clock::since(self.opened)
    }
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        let s = &self.cluster.stats;
        s.upstream_cx_active.dec();
        self.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
        s.upstream_cx_destroy.inc();
        if self.closed_by_remote {
            s.upstream_cx_destroy_remote.inc();
        } else {
            s.upstream_cx_destroy_local.inc();
        }
        if self.as_request {
            s.upstream_rq_active.dec();
            self.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
        }
        if self.as_request || self.busy {
            // The connection's own request is active until the end, as Envoy counts it.
            s.upstream_cx_destroy_with_active_rq.inc();
            if self.closed_by_remote {
                s.upstream_cx_destroy_remote_with_active_rq.inc();
            } else {
                s.upstream_cx_destroy_local_with_active_rq.inc();
            }
        }
        s.upstream_cx_length_ms.record(crate::clock::since(self.opened).as_millis() as u64);
        let max = u64::from(self.cluster.config.default_thresholds.max_connections);
        if s.upstream_cx_active.value() < max {
            self.cluster.cb_default.cx_open.set(0);
        }
    }
}

/// The connection as a byte stream (for hyper's client connections); an EOF from the upstream
/// marks it closed by the remote.
impl tokio::io::AsyncRead for UpstreamConn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = std::pin::Pin::new(this.transport_mut()).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) && buf.filled().len() == before {
            this.mark_remote_close();
        }
        r
    }
}

impl tokio::io::AsyncWrite for UpstreamConn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.get_mut().transport_mut()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.get_mut().transport_mut()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.get_mut().transport_mut()).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.get_mut().transport_mut()).poll_shutdown(cx)
    }
}

impl tokio::io::AsyncRead for UpstreamStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for UpstreamStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Tcp(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
