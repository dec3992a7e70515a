//! The `envoy.clusters.redis` cluster type: topology from `CLUSTER SLOTS`.
//!
//! As Envoy's `RedisCluster`: the `load_assignment` endpoints are only seeds. Discovery sends
//! `CLUSTER SLOTS` to a random seed until it has hosts, then to a random discovered host, every
//! `cluster_refresh_rate` (each reply within `cluster_refresh_timeout`), and sooner when the
//! redis proxy reports enough redirections or failures (Envoy's `ClusterRefreshManager`:
//! `redirect_refresh_threshold` events, at most once per `redirect_refresh_interval`). The
//! cluster's hosts become every primary and replica the reply names (deduplicated, in reply
//! order), and the slot map ([`SlotMap`]) gives each of the 16384 slots its shard.
//!
//! Stats, as Envoy's: each attempt counts `update_attempt`; an unchanged topology
//! `update_no_rebuild`; a changed host list `membership_change`; a failed request or an
//! unusable reply `update_failure` (Envoy never counts `update_success` for this type). The
//! discovery connection is an upstream connection of the cluster (`upstream_cx_*`,
//! `upstream_rq_total`) and counts `upstream_commands.cluster.{total,success,failure,latency}`
//! and `upstream_commands.upstream_rq_time` (µs), as Envoy's discovery client does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use legate_codecs::redis::reply::decode_value;
use legate_codecs::redis::{Scanner, REPLY_LIMITS};
use redis_protocol::resp3::types::BytesFrame as Resp3Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::cluster::Cluster;
use super::host::{Host, Locality};
use crate::config::redis_cluster::RedisClusterConfig;
use crate::filter::network::sock::try_read_drained;
use crate::stats::{Counter, Histogram, HistogramUnit, Store};

/// Redis Cluster's number of hash slots.
pub const SLOTS: usize = 16384;
const NO_SHARD: u16 = u16::MAX;

/// The hash slot of a key: CRC16 (XMODEM) of its `{hash tag}` (always honoured, as Redis
/// Cluster requires), modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key)
}

/// One primary and its replicas.
#[derive(Debug)]
pub struct Shard {
    pub primary: Arc<Host>,
    pub replicas: Vec<Arc<Host>>,
    /// The primary, then the replicas.
    pub all: Vec<Arc<Host>>,
}

/// Slot → shard, from one `CLUSTER SLOTS` reply.
#[derive(Debug)]
pub struct SlotMap {
    pub shards: Vec<Shard>,
    slot_shard: Vec<u16>,
}

impl SlotMap {
    /// The shard that serves `slot`; `None` when no node claims it.
    pub fn shard(&self, slot: u16) -> Option<&Shard> {
        let i = *self.slot_shard.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// Same slots on the same addresses.
    fn same_as(&self, other: &SlotMap) -> bool {
        let addrs = |s: &Shard| s.all.iter().map(|h| h.address).collect::<Vec<_>>();
        self.slot_shard.len() == other.slot_shard.len()
            && self.slot_shard.iter().zip(&other.slot_shard).all(|(a, b)| match (*a, *b) {
                (NO_SHARD, NO_SHARD) => true,
                (NO_SHARD, _) | (_, NO_SHARD) => false,
                (a, b) => addrs(&self.shards[usize::from(a)]) == addrs(&other.shards[usize::from(b)]),
            })
    }
}

/// One slot range of a `CLUSTER SLOTS` reply, addresses resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub primary: SocketAddr,
    pub replicas: Vec<SocketAddr>,
}

/// A node entry before resolution: an IP or a hostname, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeEntry {
    host: String,
    port: u16,
}

struct RawRange {
    start: u16,
    end: u16,
    primary: NodeEntry,
    replicas: Vec<NodeEntry>,
}

/// Envoy's `validateCluster`: `[host (non-empty bulk string), port (integer <= 65535), ...]`.
fn node_entry(f: &Resp3Frame) -> Option<NodeEntry> {
    let Resp3Frame::Array { data, .. } = f else { return None };
    let host = match data.first()? {
        Resp3Frame::BlobString { data, .. } => String::from_utf8(data.to_vec()).ok()?,
        _ => return None,
    };
    let port = match data.get(1)? {
        Resp3Frame::Number { data, .. } => u16::try_from(*data).ok()?,
        _ => return None,
    };
    (!host.is_empty()).then_some(NodeEntry { host, port })
}

/// Parses a `CLUSTER SLOTS` reply; `None` for anything Envoy calls an unexpected response
/// (not an array, empty, a malformed range or node entry).
fn parse_slots(frame: &Bytes) -> Option<Vec<RawRange>> {
    let Resp3Frame::Array { data, .. } = decode_value(frame)? else { return None };
    if data.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    for part in &data {
        let Resp3Frame::Array { data: range, .. } = part else { return None };
        if range.len() < 3 {
            return None;
        }
        let int = |f: &Resp3Frame| match f {
            Resp3Frame::Number { data, .. } => u16::try_from(*data).ok().filter(|v| usize::from(*v) < SLOTS),
            _ => None,
        };
        let (start, end) = (int(&range[0])?, int(&range[1])?);
        let primary = node_entry(&range[2])?;
        let replicas = range[3..].iter().map(node_entry).collect::<Option<Vec<_>>>()?;
        out.push(RawRange { start, end, primary, replicas });
    }
    Some(out)
}

/// Resolves node names as Envoy does: an IP literal as is; a hostname through DNS (a primary
/// that does not resolve abandons the update, a replica that does not is skipped).
async fn resolve(ranges: Vec<RawRange>, cluster: &Cluster) -> Option<Vec<SlotRange>> {
    async fn one(n: &NodeEntry, cluster: &Cluster) -> Option<SocketAddr> {
        if let Ok(ip) = n.host.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, n.port));
        }
        let r = super::dns::resolve(&n.host, n.port, cluster.config.dns_lookup_family).await;
        match r {
            Ok(a) => a.first().copied(),
            Err(_) => {
                cluster.stats.update_failure.inc();
                None
            }
        }
    }
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let primary = one(&r.primary, cluster).await?;
        let mut replicas = Vec::with_capacity(r.replicas.len());
        for rep in &r.replicas {
            if let Some(a) = one(rep, cluster).await {
                replicas.push(a);
            }
        }
        out.push(SlotRange { start: r.start, end: r.end, primary, replicas });
    }
    Some(out)
}

/// The host list a topology implies: each primary then its replicas, first appearance wins.
pub fn host_addresses(ranges: &[SlotRange]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for r in ranges {
        for a in std::iter::once(&r.primary).chain(&r.replicas) {
            if !out.contains(a) {
                out.push(*a);
            }
        }
    }
    out
}

/// Builds the slot map over the cluster's current host objects (so per-host stats are shared).
/// As Envoy's `onClusterSlotUpdate`: ranges in slot order, one shard per primary (its first
/// range's replicas), so shard `i` of a keyless command (KEYS, SCAN, INFO.SHARD) is the same
/// node as in Envoy.
fn build_map(ranges: &[SlotRange], hosts: &[Arc<Host>]) -> SlotMap {
    let find = |a: &SocketAddr| hosts.iter().find(|h| h.address == *a).cloned();
    let mut shards: Vec<Shard> = Vec::new();
    let mut slot_shard = vec![NO_SHARD; SLOTS];
    let mut sorted: Vec<&SlotRange> = ranges.iter().collect();
    sorted.sort_by_key(|r| (r.start, r.end));
    for r in sorted {
        let Some(primary) = find(&r.primary) else { continue };
        let idx = match shards.iter().position(|s| s.primary.address == r.primary) {
            Some(i) => i,
            None => {
                let replicas: Vec<Arc<Host>> = r.replicas.iter().filter_map(find).collect();
                let mut all = vec![primary.clone()];
                all.extend(replicas.iter().cloned());
                shards.push(Shard { primary, replicas, all });
                shards.len() - 1
            }
        };
        let Ok(idx) = u16::try_from(idx) else { continue };
        for s in &mut slot_shard[usize::from(r.start)..=usize::from(r.end.max(r.start))] {
            *s = idx;
        }
    }
    SlotMap { shards, slot_shard }
}

/// Counts of the events that can trigger an early refresh (Envoy's `ClusterRefreshManager`).
#[derive(Default)]
struct Events {
    redirects: AtomicU32,
    failures: AtomicU32,
    /// Milliseconds since `epoch` of the last trigger, plus one (0: never).
    last_trigger: AtomicU64,
}

/// The discovery client's command stats.
struct DiscoveryStats {
    total: Counter,
    latency: Histogram,
    rq_time: Histogram,
    /// `success` and `failure` are created on first use, as Envoy's command stats are.
    success_name: String,
    failure_name: String,
    store: Store,
}

impl DiscoveryStats {
    fn outcome(&self, success: bool) {
        self.store.counter(if success { &self.success_name } else { &self.failure_name }).inc();
    }
}

/// A running Redis Cluster's topology, shared by the cluster and the redis proxy.
pub struct RedisClusterState {
    pub config: RedisClusterConfig,
    slots: ArcSwapOption<SlotMap>,
    refresh: Notify,
    events: Events,
    epoch: Instant,
    stats: DiscoveryStats,
    /// Bumped whenever the host list changes (pools drain connections to removed hosts).
    hosts_changed: tokio::sync::watch::Sender<u64>,
}

impl RedisClusterState {
    pub fn new(config: RedisClusterConfig, store: &Store, cluster_prefix: &str) -> RedisClusterState {
        let p = format!("{cluster_prefix}upstream_commands.");
        let stats = DiscoveryStats {
            total: store.counter(&format!("{p}cluster.total")),
            latency: store.histogram(&format!("{p}cluster.latency"), HistogramUnit::Microseconds),
            rq_time: store.histogram(&format!("{p}upstream_rq_time"), HistogramUnit::Microseconds),
            success_name: format!("{p}cluster.success"),
            failure_name: format!("{p}cluster.failure"),
            store: store.clone(),
        };
        RedisClusterState {
            config,
            slots: ArcSwapOption::empty(),
            refresh: Notify::new(),
            events: Events::default(),
            epoch: Instant::now(),
            stats,
            hosts_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Signals every change of the cluster's host list.
    pub fn subscribe_hosts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.hosts_changed.subscribe()
    }

    /// The current slot map (`None` before the first successful discovery).
    pub fn slots(&self) -> Option<Arc<SlotMap>> {
        self.slots.load_full()
    }

    /// The current slot map without touching its reference count (the per-request path).
    pub fn slots_guard(&self) -> arc_swap::Guard<Option<Arc<SlotMap>>> {
        self.slots.load()
    }

    /// A MOVED or ASK was followed (Envoy's `onRedirection`).
    pub fn on_redirection(&self) {
        self.on_event(&self.events.redirects, self.config.redirect_refresh_threshold);
    }

    /// A request failed upstream (Envoy's `onFailure`).
    pub fn on_failure(&self) {
        self.on_event(&self.events.failures, self.config.failure_refresh_threshold);
    }

    /// Envoy's `ClusterRefreshManagerImpl::onEvent`: events only count once
    /// `redirect_refresh_interval` has passed since the last trigger; reaching the threshold
    /// triggers a refresh now and resets the counts. A threshold of 0 disables the trigger.
    fn on_event(&self, count: &AtomicU32, threshold: u32) {
        if threshold == 0 {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.events.last_trigger.load(Ordering::Acquire);
        let interval = self.config.redirect_refresh_interval.as_millis() as u64;
        if last != 0 && now < last.saturating_add(interval) {
            return;
        }
        if count.fetch_add(1, Ordering::AcqRel) + 1 >= threshold
            && self.events.last_trigger.compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.events.redirects.store(0, Ordering::Release);
            self.events.failures.store(0, Ordering::Release);
            self.refresh.notify_one();
        }
    }
}

/// The `CLUSTER SLOTS` request.
const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// A discovery connection, kept open across refreshes as Envoy keeps its discovery clients.
struct DiscoveryConn {
    stream: TcpStream,
    host: Option<Arc<Host>>,
    rbuf: BytesMut,
}

/// Runs discovery for `cluster` until the task is aborted: once at once (then `first` is
/// signalled, as Envoy's cluster warms before listeners serve), then every
/// `cluster_refresh_rate` or when a refresh is triggered.
pub async fn discovery_loop(
    cluster: Arc<Cluster>,
    seeds: Vec<SocketAddr>,
    auth: Bytes,
    auth_count: usize,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let Some(state) = cluster.redis.clone() else { return };
    let mut conns: HashMap<SocketAddr, DiscoveryConn> = HashMap::new();
    let mut first = Some(first);
    loop {
        discover_once(&cluster, &state, &seeds, &auth, auth_count, &mut conns).await;
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(state.config.cluster_refresh_rate) => {}
            _ = state.refresh.notified() => {}
        }
    }
}

/// One discovery round (Envoy's `startResolveRedis` and its callbacks).
async fn discover_once(
    cluster: &Arc<Cluster>,
    state: &RedisClusterState,
    seeds: &[SocketAddr],
    auth: &Bytes,
    auth_count: usize,
    conns: &mut HashMap<SocketAddr, DiscoveryConn>,
) {
    cluster.stats.update_attempt.inc();
    let hosts = cluster.hosts();
    let target = if hosts.all.is_empty() {
        if seeds.is_empty() {
            cluster.stats.update_empty.inc();
            return;
        }
        seeds[rand::random::<u32>() as usize % seeds.len()]
    } else {
        hosts.all[rand::random::<u32>() as usize % hosts.all.len()].address
    };
    let host = hosts.all.iter().find(|h| h.address == target).cloned();
    drop(hosts);
    let reply = match request(cluster, state, target, host, auth, auth_count, conns).await {
        Some(r) => r,
        None => {
            if let Some(c) = conns.remove(&target) {
                close(cluster, c, true);
            }
            cluster.stats.update_failure.inc();
            return;
        }
    };
    let Some(raw) = parse_slots(&reply) else {
        tracing::warn!(target: "upstream", "cluster '{}': unexpected response to CLUSTER SLOTS from {target}", cluster.name);
        cluster.stats.update_failure.inc();
        return;
    };
    let Some(ranges) = resolve(raw, cluster).await else { return };
    apply(cluster, state, &ranges);
    // Discovery connections to hosts that left the topology are closed (seeds are kept).
    let hosts = cluster.hosts();
    let gone: Vec<SocketAddr> =
        conns.keys().filter(|a| !seeds.contains(a) && !hosts.all.iter().any(|h| h.address == **a)).copied().collect();
    for a in gone {
        if let Some(c) = conns.remove(&a) {
            close(cluster, c, true);
        }
    }
}

/// Installs a topology: the host list (when it changed) and the slot map.
pub fn apply(cluster: &Cluster, state: &RedisClusterState, ranges: &[SlotRange]) {
    let addrs = host_addresses(ranges);
    let current = cluster.hosts();
    // As a set, as Envoy's `updateDynamicHostList` compares: CLUSTER SLOTS lists ranges by slot,
    // so a resharding can reorder the same hosts.
    let same_hosts = current.all.len() == addrs.len() && current.all.iter().all(|h| addrs.contains(&h.address));
    drop(current);
    if !same_hosts {
        let hosts =
            addrs.iter().map(|a| Arc::new(Host::new(*a, String::new(), 1, 0, Locality::default()))).collect::<Vec<_>>();
        cluster.set_hosts(hosts);
        cluster.stats.max_host_weight.set(1);
        state.hosts_changed.send_modify(|g| *g += 1);
    }
    let map = build_map(ranges, &cluster.hosts().all);
    let slots_same = state.slots.load().as_ref().is_some_and(|old| old.same_as(&map));
    if same_hosts && slots_same {
        cluster.stats.update_no_rebuild.inc();
        return;
    }
    let covered = map.slot_shard.iter().filter(|s| **s != NO_SHARD).count();
    tracing::info!(
        target: "upstream",
        "cluster '{}': {} hosts, {} shards, {covered} of {SLOTS} slots served (CLUSTER SLOTS)",
        cluster.name,
        addrs.len(),
        map.shards.len()
    );
    state.slots.store(Some(Arc::new(map)));
}

/// Sends `CLUSTER SLOTS` (after `AUTH` on a new connection) and returns the reply frame.
async fn request(
    cluster: &Arc<Cluster>,
    state: &RedisClusterState,
    target: SocketAddr,
    host: Option<Arc<Host>>,
    auth: &Bytes,
    auth_count: usize,
    conns: &mut HashMap<SocketAddr, DiscoveryConn>,
) -> Option<Bytes> {
    let timeout = state.config.cluster_refresh_timeout;
    let mut skip = 0;
    let mut out = BytesMut::new();
    if let std::collections::hash_map::Entry::Vacant(e) = conns.entry(target) {
        let stream = connect(cluster, target, host.as_ref()).await?;
        e.insert(DiscoveryConn { stream, host, rbuf: BytesMut::new() });
        if auth_count > 0 {
            out.extend_from_slice(auth);
            skip = auth_count;
        }
    }
    let conn = conns.get_mut(&target)?;
    out.extend_from_slice(CLUSTER_SLOTS);
    for _ in 0..=skip {
        cluster.stats.upstream_rq_total.inc();
        if let Some(h) = &conn.host {
            h.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        }
    }
    state.stats.total.inc();
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, exchange(cluster, conn, &out, skip + 1)).await;
    let elapsed = started.elapsed().as_micros() as u64;
    state.stats.rq_time.record(elapsed);
    state.stats.latency.record(elapsed);
    match result {
        Ok(Some(reply)) => {
            state.stats.outcome(reply.first() != Some(&b'-'));
            Some(reply)
        }
        Ok(None) => {
            state.stats.outcome(false);
            None
        }
        Err(_) => {
            cluster.stats.upstream_rq_timeout.inc();
            state.stats.outcome(false);
            None
        }
    }
}

/// Writes `out` and reads `replies` replies, returning the last.
async fn exchange(cluster: &Cluster, conn: &mut DiscoveryConn, out: &[u8], replies: usize) -> Option<Bytes> {
    conn.stream.write_all(out).await.ok()?;
    cluster.stats.upstream_cx_tx_bytes_total.add(out.len() as u64);
    let mut scanner = Scanner::new(REPLY_LIMITS);
    let mut last = None;
    let mut got = 0;
    while got < replies {
        match scanner.scan(&conn.rbuf) {
            Ok(Some(n)) => {
                last = Some(conn.rbuf.split_to(n).freeze());
                got += 1;
                continue;
            }
            Ok(None) => {}
            Err(_) => {
                cluster.stats.upstream_cx_protocol_error.inc();
                return None;
            }
        }
        conn.stream.readable().await.ok()?;
        conn.rbuf.reserve(16 * 1024);
        match try_read_drained(&conn.stream, &mut conn.rbuf) {
            Ok(0) => return None,
            Ok(n) => cluster.stats.upstream_cx_rx_bytes_total.add(n as u64),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
    last
}

async fn connect(cluster: &Cluster, addr: SocketAddr, host: Option<&Arc<Host>>) -> Option<TcpStream> {
    let s = &cluster.stats;
    s.upstream_cx_total.inc();
    if let Some(h) = host {
        h.stats.cx_total.fetch_add(1, Ordering::Relaxed);
    }
    match tokio::time::timeout(cluster.config.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            s.upstream_cx_active.inc();
            if let Some(h) = host {
                h.stats.cx_active.fetch_add(1, Ordering::Relaxed);
            }
            Some(stream)
        }
        Ok(Err(e)) => {
            tracing::debug!(target: "upstream", "cluster '{}': discovery connect to {addr} failed: {e}", cluster.name);
            s.upstream_cx_connect_fail.inc();
            s.upstream_cx_destroy.inc();
            s.upstream_cx_destroy_remote.inc();
            if let Some(h) = host {
                h.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
        Err(_) => {
            s.upstream_cx_connect_timeout.inc();
            s.upstream_cx_connect_fail.inc();
            s.upstream_cx_destroy.inc();
            s.upstream_cx_destroy_local.inc();
            if let Some(h) = host {
                h.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
    }
}

fn close(cluster: &Cluster, c: DiscoveryConn, local: bool) {
    let s = &cluster.stats;
    s.upstream_cx_active.dec();
    s.upstream_cx_destroy.inc();
    if local {
        s.upstream_cx_destroy_local.inc();
    } else {
        s.upstream_cx_destroy_remote.inc();
    }
    if let Some(h) = &c.host {
        h.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values of `CLUSTER KEYSLOT` on a real Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{a}x"), key_slot(b"a"));
        assert_eq!(key_slot(b"a"), 15495);
        assert_eq!(key_slot(b"{}a"), key_slot(b"{}a"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"{"), key_slot(b"{"));
    }

    #[test]
    fn cluster_slots_reply_is_parsed_and_validated() {
        let reply = Bytes::from_static(
            b"*2\r\n*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n*2\r\n$9\r\n127.0.0.1\r\n:7004\r\n\
              *3\r\n:5461\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n$2\r\nid\r\n*0\r\n",
        );
        let r = parse_slots(&reply).expect("parses");
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].start, r[0].end, r[0].primary.port, r[0].replicas.len()), (0, 5460, 7001, 1));
        assert_eq!((r[1].start, r[1].end, r[1].primary.port), (5461, 16383, 7002));
        // Envoy's unexpected responses.
        for bad in [
            &b"*0\r\n"[..],
            b"-ERR This instance has cluster support disabled\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n*2\r\n:0\r\n:1\r\n",
        ] {
            assert!(parse_slots(&Bytes::copy_from_slice(bad)).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        // An empty host or a port over 65535.
        let bad = Bytes::from_static(b"*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$0\r\n\r\n:7001\r\n");
        assert!(parse_slots(&bad).is_none());
        let bad = Bytes::from_static(b"*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:70000\r\n");
        assert!(parse_slots(&bad).is_none());
    }

    #[test]
    fn refresh_triggers_after_the_threshold_at_most_once_per_interval() {
        let cfg = RedisClusterConfig {
            redirect_refresh_threshold: 2,
            failure_refresh_threshold: 0,
            redirect_refresh_interval: std::time::Duration::from_secs(3600),
            ..RedisClusterConfig::default()
        };
        let s = RedisClusterState::new(cfg, &Store::new(), "cluster.c.");
        let triggered = |s: &RedisClusterState| s.events.last_trigger.load(Ordering::Acquire) != 0;
        s.on_failure();
        s.on_failure();
        assert!(!triggered(&s), "failure_refresh_threshold 0 never triggers");
        s.on_redirection();
        assert!(!triggered(&s), "one redirection of two");
        s.on_redirection();
        assert!(triggered(&s), "the second reaches the threshold");
        assert_eq!(s.events.redirects.load(Ordering::Acquire), 0, "counts reset");
        let at = s.events.last_trigger.load(Ordering::Acquire);
        s.on_redirection();
        s.on_redirection();
        assert_eq!(s.events.last_trigger.load(Ordering::Acquire), at, "not again within the interval");
        assert_eq!(s.events.redirects.load(Ordering::Acquire), 0, "events inside the interval are not counted");
    }

    #[test]
    fn slot_map_routes_each_range_to_its_shard() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let c: SocketAddr = "127.0.0.1:3".parse().expect("addr");
        let ranges = vec![
            SlotRange { start: 0, end: 99, primary: a, replicas: vec![c] },
            SlotRange { start: 100, end: 199, primary: b, replicas: vec![] },
            SlotRange { start: 200, end: 299, primary: a, replicas: vec![c] },
        ];
        assert_eq!(host_addresses(&ranges), vec![a, c, b]);
        let hosts: Vec<Arc<Host>> = host_addresses(&ranges)
            .into_iter()
            .map(|x| Arc::new(Host::new(x, String::new(), 1, 0, Locality::default())))
            .collect();
        let m = build_map(&ranges, &hosts);
        assert_eq!(m.shards.len(), 2);
        assert_eq!(m.shard(50).map(|s| s.primary.address), Some(a));
        assert_eq!(m.shard(250).map(|s| s.replicas[0].address), Some(c));
        assert_eq!(m.shard(150).map(|s| s.primary.address), Some(b));
        assert!(m.shard(300).is_none());
        assert!(m.same_as(&build_map(&ranges, &hosts)));
        let moved = vec![SlotRange { start: 0, end: 99, primary: b, replicas: vec![] }];
        assert!(!m.same_as(&build_map(&moved, &hosts)));
    }
}
