//! `envoy.filters.network.redis_proxy`: a terminal filter that speaks RESP to clients, answers
//! PING/ECHO/TIME/QUIT/AUTH itself, routes each command by its key (prefix routes, then the
//! cluster's RING_HASH/MAGLEV load balancer on Envoy's key hash, or on a Redis Cluster the
//! primary of the key's CRC16 slot, following MOVED/ASK), splits multi-key commands per
//! key, sends keyless commands (KEYS, SCAN, INFO, FLUSHALL, ...) to every shard and merges the
//! replies, mirrors requests to other clusters, and returns replies in request order, counting
//! Envoy's `redis.<stat_prefix>.*` and `cluster.<c>.redis_cluster.*` stats.
//!
//! - `session`: one client connection (decode, dispatch, ordered replies, bounds).
//! - `pending`: a request in flight and the reassembly of split replies.
//! - `upstream`: the shared, capped upstream connections (batched writes, op_timeout).
//! - `router`: prefix routes and per-cluster connection pools.
//! - `cluster`: Redis Cluster host choice (`read_policy`) and redirection replies.
//! - `info`: INFO aggregated over shards.
//! - `hash`: Envoy's key hashes; `stats`: the stat blocks.

pub mod cluster;
pub mod hash;
pub mod info;
pub mod pending;
pub mod router;
pub mod session;
pub mod stats;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use legate_codecs::redis::SUPPORTED;
use tokio::net::TcpStream;

use self::router::{ClusterPool, ClusterRouting, Mirror, Route, Router};
use self::stats::{CommandStats, ProxyStats, RedisClusterStats, SplitterStats, UpstreamCommandStats};
use self::upstream::{init_commands, ConnSettings, MAX_CONNECTIONS_PER_HOST};
use crate::config::redis_proxy::{FaultKind, PrefixRoute, ReadPolicy, RedisProtocolOptions, RedisProxyConfig};
use crate::filter::ConnContext;
use crate::stats::Store;
use crate::upstream::ClusterManager;

/// A configured fault.
pub struct Fault {
    pub kind: FaultKind,
    pub per_million: u32,
    pub delay: Duration,
    /// Indexes into `SUPPORTED`; `None` applies to every command.
    pub commands: Option<Vec<usize>>,
}

/// The built filter (one per chain per config generation), shared by every connection.
pub struct RedisProxy {
    pub stats: ProxyStats,
    pub splitter: SplitterStats,
    pub commands: Vec<CommandStats>,
    pub router: Router,
    pub hashtagging: bool,
    pub passwords: Vec<String>,
    pub username: String,
    pub faults: Vec<Fault>,
    pub latency_in_micros: bool,
}

impl RedisProxy {
    pub fn new(cfg: &RedisProxyConfig, store: &Store, cm: &ClusterManager) -> Result<RedisProxy, String> {
        let prefix = format!("redis.{}.", cfg.stat_prefix);
        let s = &cfg.settings;
        // Connections per host: one per worker thread as Envoy, but never more than the cap.
        let slots = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1)
            .clamp(1, MAX_CONNECTIONS_PER_HOST);
        let mut pools: Vec<(String, Arc<ClusterPool>)> = Vec::new();
        // One pool per cluster name, shared by the routes and mirrors that name it.
        let mut pool = |name: &str| -> Result<Option<Arc<ClusterPool>>, String> {
            Ok(match pools.iter().find(|(n, _)| n == name) {
                Some((_, p)) => Some(p.clone()),
                None => match cm.get(name) {
                    Some(cluster) => {
                        let opts = RedisProtocolOptions::from_cluster(&cluster.config.protocol_options)
                            .map_err(|e| format!("cluster '{name}': {e}"))?;
                        let (init, init_count) = init_commands(
                            &opts.auth_username,
                            &opts.auth_password,
                            s.read_policy != ReadPolicy::Master,
                        );
                        let cluster_prefix = format!("cluster.{}.", cluster.config.stat_name());
                        let rq_time = store.histogram(
                            &format!("{cluster_prefix}redis_cluster.upstream_commands.upstream_rq_time"),
                            crate::stats::HistogramUnit::Microseconds,
                        );
                        let redis_cluster = RedisClusterStats::new(store, &format!("{cluster_prefix}redis_cluster."));
                        let commands = s.enable_command_stats.then(|| {
                            Arc::new(UpstreamCommandStats::new(
                                store,
                                format!("{cluster_prefix}redis_cluster.upstream_commands."),
                            ))
                        });
                        let settings = ConnSettings {
                            rq_time,
                            op_timeout: s.op_timeout,
                            max_buffer_size_before_flush: s.max_buffer_size_before_flush as usize,
                            buffer_flush_timeout: s.buffer_flush_timeout,
                            init,
                            init_count,
                            commands,
                            redirect: None,
                            cx_drained: redis_cluster.upstream_cx_drained.clone(),
                        };
                        let routing = ClusterRouting {
                            read_policy: s.read_policy,
                            enable_redirection: s.enable_redirection,
                            max_upstream_unknown_connections: s.max_upstream_unknown_connections,
                            stats: redis_cluster,
                        };
                        let p = ClusterPool::new(cluster.clone(), settings, slots, routing);
                        pools.push((name.to_string(), p.clone()));
                        Some(p)
                    }
                    None => None,
                },
            })
        };
        let mut route = |r: &PrefixRoute| -> Result<Route, String> {
            let mirrors = r
                .mirrors
                .iter()
                .map(|m| {
                    Ok(Mirror {
                        pool: pool(&m.cluster)?,
                        per_million: m.per_million,
                        exclude_read_commands: m.exclude_read_commands,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Route {
                prefix: r.prefix.as_bytes().to_vec(),
                remove_prefix: r.remove_prefix,
                pool: pool(&r.cluster)?,
                mirrors,
            })
        };
        let routes = cfg.prefix_routes.routes.iter().map(&mut route).collect::<Result<Vec<_>, _>>()?;
        let catch_all = cfg.prefix_routes.catch_all.as_ref().map(&mut route).transpose()?;
        let router = Router::new(routes, catch_all, cfg.prefix_routes.case_insensitive);
        let faults = cfg
            .faults
            .iter()
            .map(|f| Fault {
                kind: f.kind,
                per_million: f.per_million,
                delay: f.delay,
                commands: if f.commands.is_empty() {
                    None
                } else {
                    Some(f.commands.iter().filter_map(|c| SUPPORTED.iter().position(|(n, _)| n == c)).collect())
                },
            })
            .collect();
        Ok(RedisProxy {
            stats: ProxyStats::new(store, &prefix),
            splitter: SplitterStats::new(store, &format!("{prefix}splitter.")),
            commands: CommandStats::all(store, &prefix, cfg.latency_in_micros),
            router,
            hashtagging: s.enable_hashtagging,
            passwords: cfg.downstream_auth_passwords.clone(),
            username: cfg.downstream_auth_username.clone(),
            faults,
            latency_in_micros: cfg.latency_in_micros,
        })
    }

    /// Serves one client connection until it closes.
    pub async fn serve(self: Arc<Self>, downstream: TcpStream, cx: ConnContext) {
        session::run(self, downstream, cx).await;
    }

    /// Envoy's `FaultManagerImpl::getFaultForCommand`: faults naming the command first, then
    /// the ones for every command, each taken with its configured probability.
    pub fn fault_for(&self, cmd: usize) -> Option<&Fault> {
        if self.faults.is_empty() {
            return None;
        }
        let pick = |specific: bool| -> Option<&Fault> {
            let r = rand::random::<u32>() % 1_000_000;
            let mut acc = 0u32;
            for f in &self.faults {
                let applies = match &f.commands {
                    Some(list) => specific && list.contains(&cmd),
                    None => !specific,
                };
                if applies {
                    acc = acc.saturating_add(f.per_million);
                    if r < acc {
                        return Some(f);
                    }
                }
            }
            None
        };
        pick(true).or_else(|| pick(false))
    }
}
