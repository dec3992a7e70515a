//! The upstream side: the cluster manager, cluster types (STATIC, STRICT_DNS, LOGICAL_DNS, and
//! `envoy.clusters.redis` in `redis_cluster`), hosts, load balancers and the TCP connect path with
//! Envoy's `cluster.<name>.` stats.

pub mod cluster;
pub mod dns;
pub mod h1_client;
pub mod h2_client;
pub mod host;
pub mod http_pool;
pub mod lb;
pub mod redis_cluster;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use cluster::Cluster;
use stats::ClusterManagerStats;

use crate::config::cluster::{ClusterConfig, DiscoveryType};
use crate::stats::Store;

/// Every cluster of one config generation, by name.
pub struct ClusterManager {
    clusters: HashMap<String, Arc<Cluster>>,
    order: Vec<String>,
    pub stats: ClusterManagerStats,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ClusterManager {
    /// Builds every cluster, resolving DNS clusters once before traffic starts. A name that
    /// does not resolve is an error at start-up (Envoy keeps such a cluster empty and retries;
    /// Legate does the same after start-up, in the refresh loop).
    pub async fn build(configs: &[ClusterConfig], store: &Store) -> Result<ClusterManager, Vec<String>> {
        let stats = ClusterManagerStats::new(store, "cluster_manager.");
        let mut clusters = HashMap::new();
        let mut order = Vec::new();
        let mut errors = Vec::new();
        let mut tasks = Vec::new();
        for cfg in configs {
            let hosts = match dns::resolve_hosts(cfg).await {
                Ok(h) => h,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // A Redis Cluster's endpoints are only seeds: its hosts come from CLUSTER SLOTS.
            let (hosts, seeds) =
                if cfg.discovery == DiscoveryType::RedisCluster { (Vec::new(), hosts) } else { (hosts, Vec::new()) };
            let cluster = match Cluster::new(cfg.clone(), store, hosts) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if cfg.discovery == DiscoveryType::RedisCluster {
                match redis_cluster_discovery(&cluster, seeds).await {
                    Ok(task) => tasks.push(task),
                    Err(e) => errors.push(e),
                }
            } else if cfg.discovery != DiscoveryType::Static {
                cluster.stats.update_attempt.inc();
                cluster.stats.update_success.inc();
                tasks.push(tokio::spawn(dns::refresh_loop(cluster.clone())));
            }
            stats.cluster_added.inc();
            order.push(cfg.name.clone());
            clusters.insert(cfg.name.clone(), cluster);
        }
        stats.active_clusters.set(clusters.len() as u64);
        if !errors.is_empty() {
            for t in &tasks {
                t.abort();
            }
            return Err(errors);
        }
        Ok(ClusterManager { clusters, order, stats, tasks })
    }

    /// Builds clusters without resolving names (for `--mode validate`): DNS clusters start
    /// empty. Nothing is spawned.
    pub fn build_unresolved(configs: &[ClusterConfig], store: &Store) -> Result<ClusterManager, Vec<String>> {
        let stats = ClusterManagerStats::new(store, "cluster_manager.");
        let mut clusters = HashMap::new();
        let mut order = Vec::new();
        let mut errors = Vec::new();
        for cfg in configs {
            let hosts = if cfg.discovery == DiscoveryType::Static {
                futures_ready(dns::resolve_hosts(cfg))
            } else {
                Vec::new()
            };
            match Cluster::new(cfg.clone(), store, hosts) {
                Ok(c) => {
                    order.push(cfg.name.clone());
                    clusters.insert(cfg.name.clone(), Arc::new(c));
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ClusterManager { clusters, order, stats, tasks: Vec::new() })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Clusters in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.order.iter().filter_map(|n| self.clusters.get(n))
    }
}

/// Starts a Redis Cluster's discovery and waits for its first round (Envoy warms the cluster
/// before listeners serve), at most `connect_timeout` + `cluster_refresh_timeout`; a cluster
/// that does not answer starts empty and keeps trying.
async fn redis_cluster_discovery(
    cluster: &Arc<Cluster>,
    seeds: Vec<Arc<host::Host>>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let opts = crate::config::redis_proxy::RedisProtocolOptions::from_cluster(&cluster.config.protocol_options)
        .map_err(|e| format!("cluster '{}': {e}", cluster.name))?;
    let (auth, auth_count) =
        crate::filter::network::redis_proxy::upstream::init_commands(&opts.auth_username, &opts.auth_password, false);
    let seeds = seeds.iter().map(|h| h.address).collect();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(redis_cluster::discovery_loop(cluster.clone(), seeds, auth, auth_count, tx));
    let wait = cluster.config.connect_timeout
        + cluster.config.redis_cluster.as_ref().map_or(std::time::Duration::ZERO, |c| c.cluster_refresh_timeout);
    let _ = tokio::time::timeout(wait, rx).await;
    Ok(task)
}

/// Static clusters resolve without I/O, so their host list is ready at once.
fn futures_ready(f: impl std::future::Future<Output = Result<Vec<Arc<host::Host>>, String>>) -> Vec<Arc<host::Host>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(h)) => h,
        _ => Vec::new(),
    }
}

impl Drop for ClusterManager {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
