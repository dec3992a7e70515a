//! `prefix_routes`: the longest matching key prefix picks the cluster (optionally case
//! insensitive), else the catch-all route, else `no upstream host`. Each routed cluster keeps
//! its shared upstream connections ([`super::upstream::HostConns`]) per host. A route may
//! mirror requests to other clusters (`request_mirror_policy`, fire-and-forget).
//!
//! On a Redis Cluster (`envoy.clusters.redis` with `lb_policy: CLUSTER_PROVIDED`) the host is
//! the one serving the key's hash slot, chosen by `read_policy` ([`super::cluster::pick`]), and
//! the shards of the keyless commands are the cluster's primaries (with their replicas).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use legate_codecs::redis::is_write;

use super::hash::key_hash;
use super::stats::RedisClusterStats;
use super::upstream::{ConnSettings, HostConns};
use crate::config::cluster::LbPolicyConfig;
use crate::config::redis_proxy::ReadPolicy;
use crate::upstream::cluster::{Cluster, HostSet};
use crate::upstream::host::{Host, Locality};
use crate::upstream::redis_cluster::key_slot;

/// How a pool treats Redis Cluster replies and hosts.
pub struct ClusterRouting {
    pub read_policy: ReadPolicy,
    pub enable_redirection: bool,
    pub max_upstream_unknown_connections: u32,
    pub stats: RedisClusterStats,
}

/// A routed cluster and its upstream connections.
pub struct ClusterPool {
    pub cluster: Arc<Cluster>,
    settings: ConnSettings,
    slots: usize,
    hosts: Mutex<HashMap<SocketAddr, Arc<HostConns>>>,
    pub routing: ClusterRouting,
    /// Route by hash slot (a Redis Cluster with CLUSTER_PROVIDED).
    by_slot: bool,
    /// Hosts created for redirections to addresses the cluster does not list.
    unknown_hosts: AtomicU32,
    /// [`ClusterPool::shards`] for the host set it was computed from (16384 load balancer
    /// picks are worth keeping until the membership changes).
    shards: Mutex<Option<ShardCache>>,
    /// Requests mirrored to this cluster whose replies are still due (see [`super::upstream::InFlight`]).
    pub mirror_in_flight: Arc<AtomicUsize>,
}

/// At most this many mirrored requests per mirror cluster wait for their replies; past that,
/// copies are not sent (the primary is unaffected).
pub const MAX_MIRROR_IN_FLIGHT: usize = 65536;

/// Shards and the host set they were computed from.
type ShardCache = (Arc<HostSet>, Vec<Arc<Host>>);

impl ClusterPool {
    pub fn new(
        cluster: Arc<Cluster>,
        mut settings: ConnSettings,
        slots: usize,
        routing: ClusterRouting,
    ) -> Arc<ClusterPool> {
        let by_slot = cluster.redis.is_some() && cluster.config.lb_policy == LbPolicyConfig::ClusterProvided;
        let pool = Arc::new_cyclic(|weak: &Weak<ClusterPool>| {
            if routing.enable_redirection {
                settings.redirect = Some(weak.clone());
            }
            ClusterPool {
                cluster,
                settings,
                slots,
                hosts: Mutex::new(HashMap::new()),
                routing,
                by_slot,
                unknown_hosts: AtomicU32::new(0),
                shards: Mutex::new(None),
                mirror_in_flight: Arc::default(),
            }
        });
        // Drain the connections of hosts that leave a Redis Cluster's topology.
        if let (Some(state), Ok(rt)) = (&pool.cluster.redis, tokio::runtime::Handle::try_current()) {
            let mut changes = state.subscribe_hosts();
            let weak = Arc::downgrade(&pool);
            rt.spawn(async move {
                while changes.changed().await.is_ok() {
                    let Some(pool) = weak.upgrade() else { return };
                    pool.drain_removed_hosts();
                }
            });
        }
        pool
    }

    fn drain_removed_hosts(&self) {
        let current = self.cluster.hosts();
        for (addr, conns) in self.hosts.lock().iter() {
            if !current.all.iter().any(|h| h.address == *addr) {
                conns.drain();
            }
        }
    }

    /// The host for `key` of a write (or a command whose kind does not matter).
    pub fn host_for(&self, key: &[u8], hashtagging: bool) -> Option<Arc<Host>> {
        self.host_for_command(key, hashtagging, b"")
    }

    /// The host for `key` of command `name`: on a Redis Cluster the host of the key's slot
    /// (reads per `read_policy`); otherwise Envoy's MurmurHash2 of the key (or its hash tag)
    /// given to the cluster's load balancer (RING_HASH or MAGLEV). Lock-free.
    pub fn host_for_command(&self, key: &[u8], hashtagging: bool, name: &[u8]) -> Option<Arc<Host>> {
        if self.by_slot {
            let state = self.cluster.redis.as_ref()?;
            let map = state.slots_guard();
            let shard = map.as_ref()?.shard(key_slot(key))?;
            let read = || !name.is_empty() && super::cluster::is_read_command(name);
            return super::cluster::pick(shard, self.routing.read_policy, read);
        }
        self.cluster.choose_host(Some(key_hash(key, hashtagging)))
    }

    /// The shared connections to `addr`, for a redirection: a host of the cluster, else a host
    /// created for it (Envoy's `makeRequestToHost`), at most `max_upstream_unknown_connections`
    /// of them (`redis_cluster.max_upstream_unknown_connections_reached` past that).
    pub fn conns_for_address(&self, addr: SocketAddr) -> Option<Arc<HostConns>> {
        if let Some(c) = self.hosts.lock().get(&addr) {
            return Some(c.clone());
        }
        let known = self.cluster.hosts().all.iter().find(|h| h.address == addr).cloned();
        let host = match known {
            Some(h) => h,
            None => {
                let max = self.routing.max_upstream_unknown_connections;
                if self.unknown_hosts.fetch_add(1, Ordering::AcqRel) >= max {
                    self.unknown_hosts.fetch_sub(1, Ordering::AcqRel);
                    self.routing.stats.max_upstream_unknown_connections_reached.inc();
                    return None;
                }
                Arc::new(Host::new(addr, String::new(), 1, 0, Locality::default()))
            }
        };
        Some(self.conns(&host))
    }

    /// Envoy's shards of the cluster for command `name` (lower case), for the commands it sends
    /// to every shard (KEYS, INFO, SCAN, FLUSHALL, ...): Envoy asks the load balancer for
    /// "shard i" (`RedisSpecifyShardContext`) for i = 0, 1, ... and shard `i` is its answer; a
    /// `None` is a shard whose host `read_policy` cannot pick (a fragment without a host).
    ///
    /// On a Redis Cluster the shards are the slot map's primaries in slot order, each with its
    /// replicas, and reads among them follow `read_policy`, as for keyed commands. Elsewhere the
    /// load balancer gets a context whose hash is `i`, for i in 0..16384, and the shards are the
    /// distinct hosts counted (`shardSize()`); shard `i` is then the host for hash `i`. On
    /// RING_HASH every small hash lands on the ring's first entry, so such a cluster has one
    /// shard; on MAGLEV each hash picks a table slot.
    pub fn shards(&self, name: &str) -> Vec<Option<Arc<Host>>> {
        if self.by_slot {
            let Some(state) = self.cluster.redis.as_ref() else { return Vec::new() };
            let map = state.slots_guard();
            let Some(map) = map.as_ref() else { return Vec::new() };
            let read = !is_write(name);
            return map.shards.iter().map(|s| super::cluster::pick(s, self.routing.read_policy, || read)).collect();
        }
        let set = self.cluster.hosts();
        let mut cached = self.shards.lock();
        if let Some((for_set, shards)) = cached.as_ref() {
            if Arc::ptr_eq(for_set, &set) {
                return shards.iter().cloned().map(Some).collect();
            }
        }
        let shards = self.compute_shards();
        *cached = Some((set, shards.clone()));
        shards.into_iter().map(Some).collect()
    }

    /// Shard `i` of this cluster for command `name` (a mirror's copy of shard `i`'s fragment):
    /// `None` past the cluster's shards or where `read_policy` finds no host.
    pub fn shard_host(&self, i: usize, name: &str) -> Option<Arc<Host>> {
        if self.by_slot {
            return self.shards(name).into_iter().nth(i).flatten();
        }
        self.cluster.choose_host(Some(i as u64))
    }

    fn compute_shards(&self) -> Vec<Arc<Host>> {
        let mut distinct: Vec<SocketAddr> = Vec::new();
        for i in 0..MAX_SHARDS {
            let Some(h) = self.cluster.choose_host(Some(i)) else { break };
            if !distinct.contains(&h.address) {
                distinct.push(h.address);
            }
        }
        (0..distinct.len() as u64).filter_map(|i| self.cluster.choose_host(Some(i))).collect()
    }

    /// The shared connections of `host`; sessions cache the result, so this lock is taken once
    /// per client per host.
    pub fn conns(&self, host: &Arc<Host>) -> Arc<HostConns> {
        let mut hosts = self.hosts.lock();
        hosts
            .entry(host.address)
            .or_insert_with(|| {
                Arc::new(HostConns::new(self.cluster.clone(), host.clone(), self.settings.clone(), self.slots))
            })
            .clone()
    }
}

impl ClusterPool {
    /// A connection of its own for one client's transaction (Envoy's transaction client): not
    /// shared, closed when the returned value and its senders are dropped.
    /// Redirections are not followed on it, as in Envoy: a MOVED/ASK inside MULTI reaches the
    /// client (and EXEC then aborts), instead of running the command outside the transaction.
    pub fn dedicated(&self, host: &Arc<Host>) -> Arc<HostConns> {
        let settings = ConnSettings { redirect: None, ..self.settings.clone() };
        Arc::new(HostConns::new(self.cluster.clone(), host.clone(), settings, 1))
    }
}

/// Envoy's `MaxSlot`: how many shard indexes `shardSize()` probes.
const MAX_SHARDS: u64 = 16384;

/// One `request_mirror_policy` of a route (Envoy's `MirrorPolicyImpl`).
pub struct Mirror {
    /// `None` when the cluster does not exist: nothing is mirrored.
    pub pool: Option<Arc<ClusterPool>>,
    pub per_million: Option<u32>,
    pub exclude_read_commands: bool,
}

impl Mirror {
    /// Envoy's `shouldMirror`: reads are skipped with `exclude_read_commands`, then the
    /// `runtime_fraction` (its default value) decides.
    pub fn should_mirror(&self, lower: &str) -> bool {
        if self.pool.is_none() || (self.exclude_read_commands && !is_write(lower)) {
            return false;
        }
        match self.per_million {
            Some(p) => rand::random::<u32>() % 1_000_000 < p,
            None => true,
        }
    }
}

pub struct Route {
    pub prefix: Vec<u8>,
    pub remove_prefix: bool,
    /// `None` when the named cluster does not exist (requests get `no upstream host`).
    pub pool: Option<Arc<ClusterPool>>,
    pub mirrors: Vec<Mirror>,
}

pub struct Router {
    /// Longest prefix first.
    routes: Vec<Route>,
    catch_all: Option<Route>,
    case_insensitive: bool,
}

impl Router {
    pub fn new(mut routes: Vec<Route>, catch_all: Option<Route>, case_insensitive: bool) -> Router {
        if case_insensitive {
            for r in &mut routes {
                r.prefix.make_ascii_lowercase();
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Router { routes, catch_all, case_insensitive }
    }

    /// The route for `key`.
    pub fn route(&self, key: &[u8]) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| {
                key.len() >= r.prefix.len()
                    && if self.case_insensitive {
                        key[..r.prefix.len()].eq_ignore_ascii_case(&r.prefix)
                    } else {
                        key.starts_with(&r.prefix)
                    }
            })
            .or(self.catch_all.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route { prefix: prefix.as_bytes().to_vec(), remove_prefix: false, pool: None, mirrors: Vec::new() }
    }

    #[test]
    fn longest_prefix_wins_then_catch_all() {
        let r = Router::new(vec![route("ab"), route("abc"), route("x")], Some(route("")), false);
        assert_eq!(r.route(b"abcd").map(|r| &r.prefix[..]), Some(&b"abc"[..]));
        assert_eq!(r.route(b"abx").map(|r| &r.prefix[..]), Some(&b"ab"[..]));
        assert_eq!(r.route(b"zzz").map(|r| &r.prefix[..]), Some(&b""[..]));
        let r = Router::new(vec![route("AB")], None, true);
        assert!(r.route(b"abc").is_some());
        assert!(r.route(b"zz").is_none());
    }

    #[test]
    fn a_mirror_without_a_cluster_mirrors_nothing() {
        let all = Mirror { pool: None, per_million: None, exclude_read_commands: false };
        // A mirror whose cluster does not exist mirrors nothing.
        assert!(!all.should_mirror("set"));
    }
}
