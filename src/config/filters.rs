//! Typed configs of the network filters, dispatched on `typed_config["@type"]` (the filter
//! `name` is the fallback when `@type` is absent). New protocol filters add a variant here.

use std::time::Duration;

use super::access_log::{access_logs, AccessLogConfig};
use super::decode::Obj;
use super::http::{HttpConnectionManagerConfig, HCM_NAME, HCM_TYPE};
use super::mongo_proxy::{MongoProxyConfig, MONGO_PROXY_NAME, MONGO_PROXY_TYPE};
use super::postgres_proxy::{PostgresProxyConfig, POSTGRES_PROXY_NAME, POSTGRES_PROXY_TYPE};
use super::redis_proxy::{RedisProxyConfig, REDIS_PROXY_NAME, REDIS_PROXY_TYPE};
use super::typed_config::{no_typed_config, typed_kind, unknown_type};

pub const TCP_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
pub const TCP_PROXY_NAME: &str = "envoy.filters.network.tcp_proxy";
pub const UDP_ROUTE_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route";

/// Envoy's default tcp_proxy `idle_timeout` (1 hour).
pub const TCP_DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Envoy's default udp_proxy `idle_timeout` (1 minute).
pub const UDP_DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The network filters Legate knows, by `@type` and by name.
const KNOWN: &[(&str, &str)] = &[
    (TCP_PROXY_TYPE, TCP_PROXY_NAME),
    (HCM_TYPE, HCM_NAME),
    (REDIS_PROXY_TYPE, REDIS_PROXY_NAME),
    (MONGO_PROXY_TYPE, MONGO_PROXY_NAME),
    (POSTGRES_PROXY_TYPE, POSTGRES_PROXY_NAME),
];

/// Envoy network filters Legate does not implement (yet): named as such, not as typos.
const ENVOY_ONLY: &[&str] = &[
    "envoy.filters.network.mysql_proxy",
    "envoy.filters.network.thrift_proxy",
    "envoy.filters.network.dubbo_proxy",
    "envoy.filters.network.kafka_broker",
    "envoy.filters.network.rbac",
    "envoy.filters.network.local_ratelimit",
    "envoy.filters.network.ext_authz",
    "envoy.filters.network.sni_cluster",
    "envoy.filters.network.echo",
];

#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFilterConfig {
    TcpProxy(TcpProxyConfig),
    HttpConnectionManager(Box<HttpConnectionManagerConfig>),
    RedisProxy(Box<RedisProxyConfig>),
    MongoProxy(MongoProxyConfig),
    /// An observer placed before the terminal filter.
    PostgresProxy(PostgresProxyConfig),
}

impl NetworkFilterConfig {
    /// Terminal filters own the upstream side and must come last.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            NetworkFilterConfig::TcpProxy(_)
                | NetworkFilterConfig::RedisProxy(_)
                | NetworkFilterConfig::HttpConnectionManager(_)
        )
    }

    pub fn decode(f: &mut Obj) -> Option<NetworkFilterConfig> {
        let name = f.string("name").unwrap_or_default();
        let Some(mut tc) = f.obj("typed_config", "Any") else {
            let has_config = f.has("config");
            no_typed_config(f, has_config);
            return None;
        };
        let (ty, kind) = typed_kind(&mut tc, &name, KNOWN);
        let out = match kind {
            Some(TCP_PROXY_TYPE) => {
                tc.retype("TcpProxy");
                Some(NetworkFilterConfig::TcpProxy(TcpProxyConfig::decode(&mut tc)))
            }
            Some(HCM_TYPE) => {
                tc.retype("HttpConnectionManager");
                Some(NetworkFilterConfig::HttpConnectionManager(Box::new(HttpConnectionManagerConfig::decode(&mut tc))))
            }
            Some(REDIS_PROXY_TYPE) => {
                tc.retype("RedisProxy");
                Some(NetworkFilterConfig::RedisProxy(Box::new(RedisProxyConfig::decode(&mut tc))))
            }
            Some(MONGO_PROXY_TYPE) => {
                tc.retype("MongoProxy");
                Some(NetworkFilterConfig::MongoProxy(MongoProxyConfig::decode(&mut tc)))
            }
            Some(POSTGRES_PROXY_TYPE) => {
                tc.retype("PostgresProxy");
                Some(NetworkFilterConfig::PostgresProxy(PostgresProxyConfig::decode(&mut tc)))
            }
            _ => {
                let shown = if ty.is_empty() { name.clone() } else { ty.clone() };
                // `type.googleapis.com/envoy.extensions.filters.network.<x>.v3.<Msg>` names
                // the filter `envoy.filters.network.<x>`.
                let envoy_name = ENVOY_ONLY.iter().find(|n| {
                    let suffix = n.trim_start_matches("envoy.filters.network.");
                    **n == name || **n == shown || shown.contains(&format!("filters.network.{suffix}."))
                });
                let msg = match envoy_name {
                    Some(n) => format!("network filter '{n}' is not supported by Legate yet"),
                    None => unknown_type("network filter", &shown, KNOWN),
                };
                tc.error(if ty.is_empty() { "" } else { "@type" }, msg);
                return None;
            }
        };
        tc.finish(&[]);
        out
    }
}

/// One `weighted_clusters` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedCluster {
    pub name: String,
    pub weight: u32,
}

/// Where a TCP connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSpecifier {
    Cluster(String),
    Weighted(Vec<WeightedCluster>),
}

impl ClusterSpecifier {
    pub fn names(&self) -> Vec<&str> {
        match self {
            ClusterSpecifier::Cluster(c) => vec![c.as_str()],
            ClusterSpecifier::Weighted(w) => w.iter().map(|c| c.name.as_str()).collect(),
        }
    }
}

/// `envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxyConfig {
    pub stat_prefix: String,
    pub cluster: ClusterSpecifier,
    /// `None` when disabled with `0s`.
    pub idle_timeout: Option<Duration>,
    pub max_connect_attempts: u32,
    pub max_downstream_connection_duration: Option<Duration>,
    /// Hash on the source IP for RING_HASH / MAGLEV clusters (`hash_policy: [{source_ip: {}}]`).
    pub hash_source_ip: bool,
    pub access_log: Vec<AccessLogConfig>,
    pub path: String,
}

impl TcpProxyConfig {
    pub fn decode(o: &mut Obj) -> TcpProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let cluster = decode_cluster_specifier(o);
        let idle_timeout = match o.duration("idle_timeout") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(TCP_DEFAULT_IDLE_TIMEOUT),
        };
        let max_connect_attempts = o.uint("max_connect_attempts", 1, 1000).map_or(1, |v| v as u32);
        let max_downstream_connection_duration =
            o.duration("max_downstream_connection_duration").filter(|d| !d.is_zero());
        let mut hash_source_ip = true;
        let policies = o.list_of("hash_policy", "HashPolicy", |h| {
            let src = h.has("source_ip");
            h.finish(&["filter_state"]);
            src
        });
        if !policies.is_empty() {
            hash_source_ip = policies.iter().any(|p| *p);
        }
        let access_log = access_logs(o);
        o.finish(&[
            "metadata_match",
            "tunneling_config",
            "on_demand",
            "access_log_options",
            "upstream_connect_mode",
            "max_early_data_bytes",
            "proxy_protocol_tlvs",
            "backoff_options",
            "access_log_flush_interval",
            "flush_access_log_on_connected",
        ]);
        TcpProxyConfig {
            stat_prefix,
            cluster,
            idle_timeout,
            max_connect_attempts,
            max_downstream_connection_duration,
            hash_source_ip,
            access_log,
            path: o.path.clone(),
        }
    }
}

fn decode_cluster_specifier(o: &mut Obj) -> ClusterSpecifier {
    let single = o.string("cluster");
    let weighted = o.obj("weighted_clusters", "WeightedCluster").map(|mut w| {
        let list = w.list_of("clusters", "ClusterWeight", |c| {
            let name = c.req_string("name");
            let weight = c.uint("weight", 1, u64::from(u32::MAX)).map_or(1, |v| v as u32);
            c.finish(&["metadata_match"]);
            WeightedCluster { name, weight }
        });
        if list.is_empty() {
            w.error("clusters", "weighted_clusters needs at least one cluster");
        }
        w.finish(&[]);
        list
    });
    match (single, weighted) {
        (Some(_), Some(_)) => {
            o.cx.error(&o.path, "only one of 'cluster' and 'weighted_clusters' may be set");
            ClusterSpecifier::Cluster(String::new())
        }
        (Some(c), None) => ClusterSpecifier::Cluster(c),
        (None, Some(w)) => ClusterSpecifier::Weighted(w),
        (None, None) => {
            o.cx.error(&o.path, format!("{} needs 'cluster' or 'weighted_clusters'", o.type_name()));
            ClusterSpecifier::Cluster(String::new())
        }
    }
}

/// `envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct UdpProxyConfig {
    pub stat_prefix: String,
    pub cluster: String,
    pub idle_timeout: Duration,
    pub hash_source_ip: bool,
    pub per_packet_load_balancing: bool,
    /// Logged once per session, when it ends.
    pub access_log: Vec<AccessLogConfig>,
    pub path: String,
}

impl UdpProxyConfig {
    pub fn decode(o: &mut Obj) -> UdpProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let mut cluster = o.string("cluster");
        if let Some(mut m) = o.obj("matcher", "Matcher") {
            if m.has("matcher_list") || m.has("matcher_tree") {
                m.error("matcher_list", "only matcher.on_no_match is supported by Legate for udp_proxy");
            }
            if let Some(mut nm) = m.obj("on_no_match", "OnMatch") {
                if let Some(mut action) = nm.obj("action", "TypedExtensionConfig") {
                    action.accept(&["name"]);
                    if let Some(mut tc) = action.obj("typed_config", "Route") {
                        let ty = tc.string("@type").unwrap_or_default();
                        if ty != UDP_ROUTE_TYPE {
                            tc.error("@type", format!("expected @type {UDP_ROUTE_TYPE}, found '{ty}'"));
                        }
                        cluster = Some(tc.req_string("cluster"));
                        tc.finish(&[]);
                    }
                    action.finish(&[]);
                }
                nm.finish(&["matcher", "keep_matching"]);
            }
            m.finish(&[]);
        }
        let cluster = cluster.unwrap_or_else(|| {
            o.cx.error(&o.path, "udp_proxy needs 'matcher' (on_no_match route) or 'cluster'");
            String::new()
        });
        let idle_timeout = o.duration("idle_timeout").unwrap_or(UDP_DEFAULT_IDLE_TIMEOUT);
        let hashes = o.list_of("hash_policies", "HashPolicy", |h| {
            let s = h.has("source_ip");
            h.finish(&["key"]);
            s
        });
        let per_packet_load_balancing = o.bool("use_per_packet_load_balancing").unwrap_or(false);
        if per_packet_load_balancing {
            o.error("use_per_packet_load_balancing", "per-packet load balancing is not supported by Legate yet");
        }
        let access_log = access_logs(o);
        o.accept(&["upstream_socket_config"]);
        o.finish(&[
            "use_original_src_ip",
            "session_filters",
            "proxy_access_log",
            "tunneling_config",
            "access_log_options",
        ]);
        UdpProxyConfig {
            stat_prefix,
            cluster,
            idle_timeout,
            hash_source_ip: hashes.iter().any(|h| *h),
            per_packet_load_balancing,
            access_log,
            path: o.path.clone(),
        }
    }
}
