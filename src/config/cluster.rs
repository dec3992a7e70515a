//! `envoy.config.cluster.v3.Cluster`: the subset Legate implements, with Envoy's defaults.

use std::time::Duration;

use serde_json::Value;

use super::address::{address, SocketAddress};
use super::decode::Obj;

/// Envoy's default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy's default `dns_refresh_rate`.
pub const DEFAULT_DNS_REFRESH_RATE: Duration = Duration::from_secs(5);
/// Envoy's default `per_connection_buffer_limit_bytes`.
pub const DEFAULT_BUFFER_LIMIT: u32 = 1024 * 1024;
/// Envoy's circuit-breaker defaults.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
pub const DEFAULT_MAX_PENDING_REQUESTS: u32 = 1024;
pub const DEFAULT_MAX_REQUESTS: u32 = 1024;
pub const DEFAULT_MAX_RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryType {
    Static,
    StrictDns,
    LogicalDns,
    /// `cluster_type: envoy.clusters.redis`: seeds from `load_assignment` (IPs or names), hosts
    /// from `CLUSTER SLOTS`.
    RedisCluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsLookupFamily {
    Auto,
    V4Only,
    V6Only,
    V4Preferred,
    All,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LbPolicyConfig {
    RoundRobin,
    LeastRequest {
        choice_count: u32,
        active_request_bias: f64,
    },
    Random,
    RingHash {
        minimum_ring_size: u64,
        maximum_ring_size: u64,
    },
    Maglev {
        table_size: u64,
    },
    /// `CLUSTER_PROVIDED`: the cluster type picks hosts (Redis Cluster: by hash slot).
    ClusterProvided,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: SocketAddress,
    pub hostname: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocalityEndpoints {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
    pub priority: u32,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending_requests: DEFAULT_MAX_PENDING_REQUESTS,
            max_requests: DEFAULT_MAX_REQUESTS,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub name: String,
    pub alt_stat_name: Option<String>,
    pub discovery: DiscoveryType,
    pub connect_timeout: Duration,
    pub lb_policy: LbPolicyConfig,
    pub localities: Vec<LocalityEndpoints>,
    pub dns_lookup_family: DnsLookupFamily,
    pub dns_refresh_rate: Duration,
    pub per_connection_buffer_limit_bytes: u32,
    pub default_thresholds: Thresholds,
    pub high_thresholds: Thresholds,
    pub tcp_keepalive: bool,
    /// `transport_socket` with an `UpstreamTlsContext`: TLS toward every host.
    pub tls: Option<super::upstream_tls::UpstreamTlsConfig>,
    /// `transport_socket` with an `UpstreamStartTlsConfig`: plain TCP until postgres_proxy's
    /// `upstream_ssl` switches a connection to TLS.
    pub starttls: Option<super::upstream_tls::UpstreamTlsConfig>,
    /// `typed_extension_protocol_options`, kept raw for the protocol filters that read them.
    pub protocol_options: Value,
    /// The `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` entry, decoded.
    pub http_options: super::http::UpstreamHttpOptions,
    /// `cluster_type: envoy.clusters.redis` settings.
    pub redis_cluster: Option<super::redis_cluster::RedisClusterConfig>,
    /// The cluster as written, for `/config_dump`.
    pub raw: Value,
}

const LB_POLICIES: &[&str] = &[
    "ROUND_ROBIN",
    "LEAST_REQUEST",
    "RING_HASH",
    "RANDOM",
    "MAGLEV",
    "CLUSTER_PROVIDED",
    "LOAD_BALANCING_POLICY_CONFIG",
];

impl ClusterConfig {
    pub fn decode(o: &mut Obj, raw: &Value) -> ClusterConfig {
        let name = o.req_string("name");
        let alt_stat_name = o.string("alt_stat_name");
        let mut discovery = match o.enumeration("type", &["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"])
        {
            Some("STRICT_DNS") => DiscoveryType::StrictDns,
            Some("LOGICAL_DNS") => DiscoveryType::LogicalDns,
            Some(other @ ("EDS" | "ORIGINAL_DST")) => {
                o.error("type", format!("cluster type {other} is not supported by Legate yet"));
                DiscoveryType::Static
            }
            _ => DiscoveryType::Static,
        };
        let type_given = o.has("type");
        let redis_cluster = o
            .obj("cluster_type", "CustomClusterType")
            .and_then(|mut ct| super::redis_cluster::decode_cluster_type(&mut ct));
        if redis_cluster.is_some() {
            if type_given {
                o.error("type", "'type' and 'cluster_type' are mutually exclusive");
            }
            discovery = DiscoveryType::RedisCluster;
        }
        let connect_timeout = o.duration("connect_timeout").unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let lb_policy = decode_lb(o);
        if lb_policy == LbPolicyConfig::ClusterProvided && redis_cluster.is_none() {
            o.error(
                "lb_policy",
                "lb_policy CLUSTER_PROVIDED needs a cluster type that provides a load balancer (cluster_type envoy.clusters.redis)",
            );
        }
        let localities = decode_load_assignment(o, discovery);
        if o.has("hosts") {
            o.error("hosts", "the deprecated 'hosts' field was removed from the v3 API; use 'load_assignment'");
        }
        let dns_lookup_family =
            match o.enumeration("dns_lookup_family", &["AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"]) {
                Some("V4_ONLY") => DnsLookupFamily::V4Only,
                Some("V6_ONLY") => DnsLookupFamily::V6Only,
                Some("V4_PREFERRED") => DnsLookupFamily::V4Preferred,
                Some("ALL") => DnsLookupFamily::All,
                _ => DnsLookupFamily::Auto,
            };
        let dns_refresh_rate = o.duration("dns_refresh_rate").unwrap_or(DEFAULT_DNS_REFRESH_RATE);
        if dns_refresh_rate < Duration::from_millis(1) {
            o.error("dns_refresh_rate", "must be at least 1ms");
        }
        // respect_dns_ttl: getaddrinfo does not expose TTLs; we refresh at dns_refresh_rate.
        o.accept(&["respect_dns_ttl", "dns_failure_refresh_rate", "cleanup_interval"]);
        let per_connection_buffer_limit_bytes = o
            .uint("per_connection_buffer_limit_bytes", 1, u64::from(u32::MAX))
            .map_or(DEFAULT_BUFFER_LIMIT, |v| v as u32);
        let (default_thresholds, high_thresholds) = decode_circuit_breakers(o);
        let tcp_keepalive = o
            .obj("upstream_connection_options", "UpstreamConnectionOptions")
            .map(|mut u| {
                let k = u.has("tcp_keepalive");
                u.finish(&["set_local_interface_name_on_upstream_connections", "happy_eyeballs_config"]);
                k
            })
            .unwrap_or(false);
        let (tls, starttls) = match o
            .obj("transport_socket", "TransportSocket")
            .and_then(|mut ts| super::upstream_tls::decode_cluster_transport_socket(&mut ts))
        {
            Some(super::upstream_tls::ClusterTls::Tls(t)) => (Some(t), None),
            Some(super::upstream_tls::ClusterTls::StartTls(t)) => (None, Some(t)),
            None => (None, None),
        };
        let protocol_options = o.raw("typed_extension_protocol_options").cloned().unwrap_or(Value::Null);
        let http_options = super::http::UpstreamHttpOptions::decode_from_cluster(o);
        o.finish(&[
            "eds_cluster_config",
            "transport_socket_matches",
            "health_checks",
            "outlier_detection",
            "common_lb_config",
            "lb_subset_config",
            "dns_resolvers",
            "dns_resolution_config",
            "typed_dns_resolver_config",
            "use_tcp_for_dns_lookups",
            "upstream_bind_config",
            "close_connections_on_host_health_failure",
            "ignore_health_on_host_removal",
            "filters",
            "load_balancing_policy",
            "track_timeout_budgets",
            "track_cluster_stats",
            "preconnect_policy",
            "connection_pool_per_downstream_connection",
            "original_dst_lb_config",
            "upstream_config",
            "max_requests_per_connection",
            "http_protocol_options",
            "http2_protocol_options",
            "common_http_protocol_options",
            "protocol_selection",
            "lrs_server",
            "wait_for_warm_on_init",
            "metadata",
        ]);
        ClusterConfig {
            name,
            alt_stat_name,
            discovery,
            connect_timeout,
            lb_policy,
            localities,
            dns_lookup_family,
            dns_refresh_rate,
            per_connection_buffer_limit_bytes,
            default_thresholds,
            high_thresholds,
            tcp_keepalive,
            tls,
            starttls,
            protocol_options,
            http_options,
            redis_cluster,
            raw: raw.clone(),
        }
    }

    /// The name used in `cluster.<name>.` stats.
    pub fn stat_name(&self) -> &str {
        self.alt_stat_name.as_deref().unwrap_or(&self.name)
    }
}

fn decode_lb(o: &mut Obj) -> LbPolicyConfig {
    let policy = o.enumeration("lb_policy", LB_POLICIES).unwrap_or("ROUND_ROBIN");
    let mut lb = match policy {
        "LEAST_REQUEST" => LbPolicyConfig::LeastRequest { choice_count: 2, active_request_bias: 1.0 },
        "RING_HASH" => LbPolicyConfig::RingHash { minimum_ring_size: 1024, maximum_ring_size: 8 * 1024 * 1024 },
        "RANDOM" => LbPolicyConfig::Random,
        "MAGLEV" => LbPolicyConfig::Maglev { table_size: 65537 },
        "CLUSTER_PROVIDED" => LbPolicyConfig::ClusterProvided,
        "LOAD_BALANCING_POLICY_CONFIG" => {
            o.error("lb_policy", format!("lb_policy {policy} is not supported by Legate yet"));
            LbPolicyConfig::RoundRobin
        }
        _ => LbPolicyConfig::RoundRobin,
    };
    if let Some(mut c) = o.obj("least_request_lb_config", "LeastRequestLbConfig") {
        if let LbPolicyConfig::LeastRequest { choice_count, active_request_bias } = &mut lb {
            *choice_count = c.uint("choice_count", 2, 100).map_or(2, |v| v as u32);
            if let Some(b) = c.obj("active_request_bias", "RuntimeDouble") {
                let mut b = b;
                if let Some(v) = b.raw("default_value").and_then(Value::as_f64) {
                    *active_request_bias = v;
                }
                b.finish(&["runtime_key"]);
            }
        } else {
            c.cx.error(&c.path, "least_request_lb_config needs lb_policy: LEAST_REQUEST");
        }
        c.finish(&["slow_start_config", "locality_lb_config", "selection_method"]);
    }
    if let Some(mut c) = o.obj("ring_hash_lb_config", "RingHashLbConfig") {
        let min = c.uint("minimum_ring_size", 1, 8 * 1024 * 1024).unwrap_or(1024);
        let max = c.uint("maximum_ring_size", 1, 8 * 1024 * 1024).unwrap_or(8 * 1024 * 1024);
        if min > max {
            c.error(
                "minimum_ring_size",
                format!("minimum_ring_size ({min}) must not exceed maximum_ring_size ({max})"),
            );
        }
        if c.enumeration("hash_function", &["XX_HASH", "MURMUR_HASH_2"]) == Some("MURMUR_HASH_2") {
            c.error("hash_function", "MURMUR_HASH_2 is not supported by Legate; use XX_HASH (the default)");
        }
        if let LbPolicyConfig::RingHash { minimum_ring_size, maximum_ring_size } = &mut lb {
            *minimum_ring_size = min;
            *maximum_ring_size = max;
        }
        c.finish(&["use_hostname_for_hashing", "hash_balance_factor", "consistent_hashing_lb_config"]);
    }
    if let Some(mut c) = o.obj("maglev_lb_config", "MaglevLbConfig") {
        let size = c.uint("table_size", 1, 5_000_011).unwrap_or(65537);
        if !crate::upstream::lb::is_prime(size) {
            c.error("table_size", format!("table_size {size} must be a prime number"));
        }
        if let LbPolicyConfig::Maglev { table_size } = &mut lb {
            *table_size = size;
        }
        c.finish(&["consistent_hashing_lb_config", "locality_weighted_lb_config"]);
    }
    lb
}

fn decode_load_assignment(o: &mut Obj, discovery: DiscoveryType) -> Vec<LocalityEndpoints> {
    let Some(mut la) = o.obj("load_assignment", "ClusterLoadAssignment") else {
        return Vec::new();
    };
    la.accept(&["cluster_name"]);
    let localities = la.list_of("endpoints", "LocalityLbEndpoints", |le| {
        let (mut region, mut zone, mut sub_zone) = (String::new(), String::new(), String::new());
        if let Some(mut loc) = le.obj("locality", "Locality") {
            region = loc.string("region").unwrap_or_default();
            zone = loc.string("zone").unwrap_or_default();
            sub_zone = loc.string("sub_zone").unwrap_or_default();
            loc.finish(&[]);
        }
        let priority = le.uint("priority", 0, 128).unwrap_or(0) as u32;
        le.accept(&["load_balancing_weight"]);
        let endpoints = le
            .list_of("lb_endpoints", "LbEndpoint", |lbe| {
                let weight = lbe.uint("load_balancing_weight", 1, 128).map_or(1, |v| v as u32);
                let mut ep = lbe.obj("endpoint", "Endpoint")?;
                let address = address(&mut ep, "address");
                if address.is_none() && !ep.has("address") {
                    ep.missing("address");
                }
                let hostname = ep.string("hostname").unwrap_or_default();
                ep.finish(&["health_check_config", "additional_addresses"]);
                lbe.accept(&["metadata"]);
                if let Some(h) = lbe.enumeration("health_status", &["UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"]) {
                    if h != "UNKNOWN" && h != "HEALTHY" {
                        lbe.error("health_status", format!("health_status {h} is not supported by Legate yet"));
                    }
                }
                let address = address?;
                if discovery == DiscoveryType::Static && address.ip().is_none() {
                    lbe.error(
                        "endpoint.address.socket_address.address",
                        format!("'{}' is not an IP address; a STATIC cluster needs IP addresses (use type STRICT_DNS or LOGICAL_DNS for names)", address.address),
                    );
                }
                if address.port == 0 {
                    lbe.error("endpoint.address.socket_address.port_value", "an upstream endpoint needs a non-zero port");
                }
                Some(Endpoint { address, hostname, weight })
            })
            .into_iter()
            .flatten()
            .collect();
        LocalityEndpoints { region, zone, sub_zone, priority, endpoints }
    });
    la.finish(&["policy", "named_endpoints"]);
    if discovery == DiscoveryType::LogicalDns {
        let n: usize = localities.iter().map(|l| l.endpoints.len()).sum();
        if n != 1 {
            o.error("load_assignment", format!("LOGICAL_DNS clusters must have a single host, found {n}"));
        }
    }
    localities
}

fn decode_circuit_breakers(o: &mut Obj) -> (Thresholds, Thresholds) {
    let mut default = Thresholds::default();
    let mut high = Thresholds::default();
    if let Some(mut cb) = o.obj("circuit_breakers", "CircuitBreakers") {
        cb.list_of("thresholds", "Thresholds", |t| {
            let high_prio = t.enumeration("priority", &["DEFAULT", "HIGH"]) == Some("HIGH");
            let target = if high_prio { &mut high } else { &mut default };
            let max = u64::from(u32::MAX);
            if let Some(v) = t.uint("max_connections", 0, max) {
                target.max_connections = v as u32;
            }
            if let Some(v) = t.uint("max_pending_requests", 0, max) {
                target.max_pending_requests = v as u32;
            }
            if let Some(v) = t.uint("max_requests", 0, max) {
                target.max_requests = v as u32;
            }
            if let Some(v) = t.uint("max_retries", 0, max) {
                target.max_retries = v as u32;
            }
            t.accept(&["track_remaining"]);
            t.finish(&["retry_budget", "max_connection_pools"]);
        });
        cb.finish(&["per_host_thresholds"]);
    }
    (default, high)
}
