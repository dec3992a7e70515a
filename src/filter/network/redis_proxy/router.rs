//! `prefix_routes`: the longest matching key prefix picks the cluster (optionally case
//! insensitive), else the catch-all route, else `no upstream host`. Each routed cluster keeps
//! its shared upstream connections ([`super::upstream::HostConns`]) per host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::hash::key_hash;
use super::upstream::{ConnSettings, HostConns};
use crate::upstream::cluster::Cluster;
use crate::upstream::host::Host;

/// A routed cluster and its upstream connections.
pub struct ClusterPool {
    pub cluster: Arc<Cluster>,
    settings: ConnSettings,
    slots: usize,
    hosts: Mutex<HashMap<SocketAddr, Arc<HostConns>>>,
}

impl ClusterPool {
    pub fn new(cluster: Arc<Cluster>, settings: ConnSettings, slots: usize) -> ClusterPool {
        ClusterPool { cluster, settings, slots, hosts: Mutex::new(HashMap::new()) }
    }

    /// The host for `key`: Envoy's MurmurHash2 of the key (or its hash tag) given to the
    /// cluster's load balancer (RING_HASH or MAGLEV). Lock-free.
    pub fn host_for(&self, key: &[u8], hashtagging: bool) -> Option<Arc<Host>> {
        self.cluster.choose_host(Some(key_hash(key, hashtagging)))
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
    pub fn dedicated(&self, host: &Arc<Host>) -> Arc<HostConns> {
        Arc::new(HostConns::new(self.cluster.clone(), host.clone(), self.settings.clone(), 1))
    }
}

pub struct Route {
    pub prefix: Vec<u8>,
    pub remove_prefix: bool,
    /// `None` when the named cluster does not exist (requests get `no upstream host`).
    pub pool: Option<Arc<ClusterPool>>,
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
        Route { prefix: prefix.as_bytes().to_vec(), remove_prefix: false, pool: None }
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
}
