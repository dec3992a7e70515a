//! `envoy.config.bootstrap.v3.Bootstrap`: node, static resources, admin, stats config.

use std::time::Duration;

use serde_json::Value;

use super::access_log::{access_logs, AccessLogConfig};
use super::address::{address, SocketAddress};
use super::cluster::ClusterConfig;
use super::decode::Obj;
use super::listener::ListenerConfig;

/// Envoy's default `stats_flush_interval`.
pub const DEFAULT_STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeConfig {
    pub id: String,
    pub cluster: String,
    pub metadata: Value,
    pub locality: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub address: Option<SocketAddress>,
    pub access_log: Vec<AccessLogConfig>,
    pub access_log_path: Option<String>,
}

/// A user tag rule from `stats_config.stats_tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTagConfig {
    pub tag_name: String,
    pub regex: Option<String>,
    pub fixed_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    pub stats_tags: Vec<StatsTagConfig>,
    pub use_all_default_tags: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub node: NodeConfig,
    pub listeners: Vec<ListenerConfig>,
    pub clusters: Vec<ClusterConfig>,
    pub admin: Option<AdminConfig>,
    pub stats: StatsConfig,
    pub stats_flush_interval: Duration,
    /// `layered_runtime`, kept as written for `/runtime` (static layers only).
    pub layered_runtime: Value,
    /// `overload_manager`'s `global_downstream_max_connections` monitor, if configured.
    pub max_active_downstream_connections: Option<u64>,
    /// The merged document, for `/config_dump`.
    pub raw: Value,
}

/// The one overload-manager resource monitor Legate implements.
pub const GLOBAL_CX_MONITOR: &str = "envoy.resource_monitors.global_downstream_max_connections";
pub const GLOBAL_CX_MONITOR_TYPE: &str =
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig";

fn decode_overload(o: &mut Obj) -> Option<u64> {
    let mut om = o.obj("overload_manager", "OverloadManager")?;
    om.accept(&["refresh_interval"]);
    let cx = om.cx;
    let mut max = None;
    for (path, v) in om.list("resource_monitors") {
        let Some(mut m) = Obj::new(cx, &path, v, "ResourceMonitor") else { continue };
        let name = m.string("name").unwrap_or_default();
        let mut tc = m.obj("typed_config", "Any");
        let ty = tc.as_mut().and_then(|t| t.string("@type")).unwrap_or_default();
        if name == GLOBAL_CX_MONITOR || ty == GLOBAL_CX_MONITOR_TYPE {
            if let Some(t) = tc.as_mut() {
                t.retype("DownstreamConnectionsConfig");
                max = t.uint("max_active_downstream_connections", 1, u64::MAX >> 1);
                if max.is_none() {
                    t.missing("max_active_downstream_connections");
                }
                t.finish(&[]);
            }
        } else {
            cx.error(
                &path,
                format!("resource monitor '{name}' is not supported by Legate; only {GLOBAL_CX_MONITOR} is"),
            );
        }
        m.finish(&[]);
    }
    if om.list("actions").iter().any(|_| true) {
        om.error("actions", "overload actions are not supported by Legate yet");
    }
    om.finish(&["buffer_factory_config", "loadshed_points"]);
    max
}

impl Bootstrap {
    pub fn decode(o: &mut Obj, raw: &Value) -> Bootstrap {
        let node = o
            .obj("node", "Node")
            .map(|mut n| {
                let id = n.string("id").unwrap_or_default();
                let cluster = n.string("cluster").unwrap_or_default();
                let metadata = n.raw("metadata").cloned().unwrap_or(Value::Null);
                let locality = n.raw("locality").cloned().unwrap_or(Value::Null);
                n.accept(&[
                    "user_agent_name",
                    "user_agent_version",
                    "user_agent_build_version",
                    "extensions",
                    "client_features",
                    "listening_addresses",
                ]);
                n.finish(&["dynamic_parameters"]);
                NodeConfig { id, cluster, metadata, locality }
            })
            .unwrap_or_default();
        let (mut listeners, mut clusters) = (Vec::new(), Vec::new());
        if let Some(mut sr) = o.obj("static_resources", "StaticResources") {
            let cx = sr.cx;
            for (i, (path, v)) in sr.list("listeners").into_iter().enumerate() {
                if let Some(mut l) = Obj::new(cx, &path, v, "Listener") {
                    listeners.push(ListenerConfig::decode(&mut l, v, i));
                }
            }
            for (path, v) in sr.list("clusters") {
                if let Some(mut c) = Obj::new(cx, &path, v, "Cluster") {
                    clusters.push(ClusterConfig::decode(&mut c, v));
                }
            }
            sr.finish(&["secrets"]);
        }
        let admin = o.obj("admin", "Admin").map(|mut a| {
            let address = address(&mut a, "address");
            let access_log = access_logs(&mut a);
            let access_log_path = a.string("access_log_path").filter(|p| p != "/dev/null" && !p.is_empty());
            a.accept(&["profile_path", "ignore_global_conn_limit"]);
            a.finish(&["socket_options"]);
            AdminConfig { address, access_log, access_log_path }
        });
        let stats = o
            .obj("stats_config", "StatsConfig")
            .map(|mut s| {
                let stats_tags = s.list_of("stats_tags", "TagSpecifier", |t| {
                    let tag_name = t.req_string("tag_name");
                    let regex = t.string("regex");
                    let fixed_value = t.string("fixed_value");
                    if let Some(r) = &regex {
                        if let Err(e) = regex::Regex::new(r) {
                            t.error("regex", format!("invalid regex: {e}"));
                        }
                    }
                    if regex.is_some() && fixed_value.is_some() {
                        t.cx.error(&t.path, "only one of 'regex' and 'fixed_value' may be set");
                    }
                    t.finish(&[]);
                    StatsTagConfig { tag_name, regex, fixed_value }
                });
                let use_all_default_tags = s.bool("use_all_default_tags").unwrap_or(true);
                s.finish(&["stats_matcher", "histogram_bucket_settings"]);
                StatsConfig { stats_tags, use_all_default_tags }
            })
            .unwrap_or(StatsConfig { stats_tags: Vec::new(), use_all_default_tags: true });
        let stats_flush_interval = o.duration("stats_flush_interval").unwrap_or(DEFAULT_STATS_FLUSH_INTERVAL);
        if o.bool("stats_flush_on_admin") == Some(true) && o.has("stats_flush_interval") {
            o.cx.error(&o.path, "only one of 'stats_flush_interval' and 'stats_flush_on_admin' may be set");
        }
        let layered_runtime = decode_runtime(o);
        let max_active_downstream_connections = decode_overload(o);
        // Watchdogs have no Legate counterpart (tokio tasks are not watched); accepted so
        // Envoy configs load, and documented in the README.
        o.accept(&["watchdog", "watchdogs", "header_prefix"]);
        o.finish(&[
            "dynamic_resources",
            "cluster_manager",
            "hds_config",
            "flags_path",
            "stats_sinks",
            "enable_dispatcher_stats",
            "stats_server_version_override",
            "use_tcp_for_dns_lookups",
            "dns_resolution_config",
            "typed_dns_resolver_config",
            "bootstrap_extensions",
            "fatal_actions",
            "config_sources",
            "default_config_source",
            "default_socket_interface",
            "certificate_provider_instances",
            "inline_headers",
            "perf_tracing_file_path",
            "default_regex_engine",
            "xds_delegate_extension",
            "xds_config_tracker_extension",
            "listener_manager",
            "application_log_config",
            "grpc_async_client_manager_config",
            "memory_allocator_manager",
            "tracing",
        ]);
        Bootstrap {
            node,
            listeners,
            clusters,
            admin,
            stats,
            stats_flush_interval,
            layered_runtime,
            max_active_downstream_connections,
            raw: raw.clone(),
        }
    }
}

/// `layered_runtime`: static layers are supported; other layer kinds are named as unsupported.
fn decode_runtime(o: &mut Obj) -> Value {
    let Some(v) = o.raw("layered_runtime").cloned() else { return Value::Null };
    if let Some(mut lr) = o.obj("layered_runtime", "LayeredRuntime") {
        lr.list_of("layers", "RuntimeLayer", |l| {
            let _ = l.req_string("name");
            let _ = l.raw("static_layer");
            l.finish(&["disk_layer", "admin_layer", "rtds_layer"]);
        });
        lr.finish(&[]);
    }
    v
}
