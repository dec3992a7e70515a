//! `envoy.extensions.filters.network.redis_proxy.v3.RedisProxy` and the cluster-side
//! `RedisProtocolOptions`, decoded with Envoy's defaults.

use std::time::Duration;

use serde_json::Value;

use super::decode::{kind, Obj};

pub const REDIS_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy";
pub const REDIS_PROXY_NAME: &str = "envoy.filters.network.redis_proxy";
pub const REDIS_PROTOCOL_OPTIONS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions";

/// Envoy's `buffer_flush_timeout` default (3 ms).
pub const DEFAULT_BUFFER_FLUSH_TIMEOUT: Duration = Duration::from_millis(3);
/// Envoy's `max_buffer_size_before_flush` default: 0, every request is flushed at once.
pub const DEFAULT_MAX_BUFFER_SIZE_BEFORE_FLUSH: u32 = 0;
/// Envoy's `max_upstream_unknown_connections` default (100).
pub const DEFAULT_MAX_UPSTREAM_UNKNOWN_CONNECTIONS: u32 = 100;

/// `ConnPoolSettings.read_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPolicy {
    Master,
    PreferMaster,
    Replica,
    PreferReplica,
    Any,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    pub op_timeout: Duration,
    pub enable_hashtagging: bool,
    pub enable_redirection: bool,
    pub max_buffer_size_before_flush: u32,
    pub buffer_flush_timeout: Duration,
    pub max_upstream_unknown_connections: u32,
    pub enable_command_stats: bool,
    pub read_policy: ReadPolicy,
}

/// One `request_mirror_policy[]` entry of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPolicy {
    pub cluster: String,
    /// `runtime_fraction.default_value` as parts per million; `None` mirrors every request.
    pub per_million: Option<u32>,
    pub exclude_read_commands: bool,
}

/// One `prefix_routes.routes[]` entry (also the catch-all route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRoute {
    pub prefix: String,
    pub remove_prefix: bool,
    pub cluster: String,
    pub mirrors: Vec<MirrorPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixRoutes {
    pub routes: Vec<PrefixRoute>,
    pub case_insensitive: bool,
    pub catch_all: Option<PrefixRoute>,
}

impl PrefixRoutes {
    /// Every cluster the routes name, mirror clusters included.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.routes
            .iter()
            .chain(self.catch_all.iter())
            .flat_map(|r| std::iter::once(r.cluster.as_str()).chain(r.mirrors.iter().map(|m| m.cluster.as_str())))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Error,
    Delay,
}

/// One `faults[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub kind: FaultKind,
    /// `fault_enabled.default_value` as parts per million.
    pub per_million: u32,
    pub delay: Duration,
    /// Lower-case command names; empty means every command.
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisProxyConfig {
    pub stat_prefix: String,
    pub settings: RedisSettings,
    pub prefix_routes: PrefixRoutes,
    pub latency_in_micros: bool,
    /// `downstream_auth_password` then `downstream_auth_passwords`, empty ones dropped.
    pub downstream_auth_passwords: Vec<String>,
    pub downstream_auth_username: String,
    pub faults: Vec<FaultConfig>,
    pub path: String,
}

impl RedisProxyConfig {
    pub fn decode(o: &mut Obj) -> RedisProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let settings = match o.obj("settings", "ConnPoolSettings") {
            Some(mut s) => decode_settings(&mut s),
            None => {
                o.missing("settings");
                decode_settings_default()
            }
        };
        let prefix_routes =
            o.obj("prefix_routes", "PrefixRoutes").map(|mut p| decode_routes(&mut p)).unwrap_or_default();
        if prefix_routes.routes.is_empty() && prefix_routes.catch_all.is_none() {
            o.cx.error(&o.path, "redis_proxy needs prefix_routes with at least one route or a catch_all_route");
        }
        let latency_in_micros = o.bool("latency_in_micros").unwrap_or(false);
        let mut downstream_auth_passwords = Vec::new();
        if let Some(p) = data_source(o, "downstream_auth_password") {
            downstream_auth_passwords.push(p);
        }
        for (path, v) in o.list("downstream_auth_passwords") {
            if let Some(p) = read_data_source(o, &path, v) {
                downstream_auth_passwords.push(p);
            }
        }
        downstream_auth_passwords.retain(|p| !p.is_empty());
        let downstream_auth_username = data_source(o, "downstream_auth_username").unwrap_or_default();
        let faults = o.list_of("faults", "RedisFault", decode_fault);
        o.finish(&["external_auth_provider", "custom_commands"]);
        RedisProxyConfig {
            stat_prefix,
            settings,
            prefix_routes,
            latency_in_micros,
            downstream_auth_passwords,
            downstream_auth_username,
            faults,
            path: o.path.clone(),
        }
    }
}

fn decode_settings_default() -> RedisSettings {
    RedisSettings {
        op_timeout: Duration::ZERO,
        enable_hashtagging: false,
        enable_redirection: false,
        max_buffer_size_before_flush: DEFAULT_MAX_BUFFER_SIZE_BEFORE_FLUSH,
        buffer_flush_timeout: DEFAULT_BUFFER_FLUSH_TIMEOUT,
        max_upstream_unknown_connections: DEFAULT_MAX_UPSTREAM_UNKNOWN_CONNECTIONS,
        enable_command_stats: false,
        read_policy: ReadPolicy::Master,
    }
}

fn decode_settings(s: &mut Obj) -> RedisSettings {
    let mut out = decode_settings_default();
    match s.duration("op_timeout") {
        // Envoy: `op_timeout` is required and must be greater than zero.
        Some(d) if !d.is_zero() => out.op_timeout = d,
        Some(_) => s.error("op_timeout", "op_timeout must be greater than 0s"),
        None => s.missing("op_timeout"),
    }
    out.enable_hashtagging = s.bool("enable_hashtagging").unwrap_or(false);
    out.enable_redirection = s.bool("enable_redirection").unwrap_or(false);
    if let Some(n) = s.uint("max_buffer_size_before_flush", 0, u64::from(u32::MAX)) {
        out.max_buffer_size_before_flush = n as u32;
    }
    if let Some(d) = s.duration("buffer_flush_timeout") {
        out.buffer_flush_timeout = d;
    }
    if let Some(n) = s.uint("max_upstream_unknown_connections", 0, u64::from(u32::MAX)) {
        out.max_upstream_unknown_connections = n as u32;
    }
    out.enable_command_stats = s.bool("enable_command_stats").unwrap_or(false);
    out.read_policy =
        match s.enumeration("read_policy", &["MASTER", "PREFER_MASTER", "REPLICA", "PREFER_REPLICA", "ANY"]) {
            Some("PREFER_MASTER") => ReadPolicy::PreferMaster,
            Some("REPLICA") => ReadPolicy::Replica,
            Some("PREFER_REPLICA") => ReadPolicy::PreferReplica,
            Some("ANY") => ReadPolicy::Any,
            _ => ReadPolicy::Master,
        };
    s.finish(&["dns_cache_config", "connection_rate_limit"]);
    out
}

fn decode_route(r: &mut Obj) -> PrefixRoute {
    let prefix = r.string("prefix").unwrap_or_default();
    let remove_prefix = r.bool("remove_prefix").unwrap_or(false);
    let cluster = r.req_string("cluster");
    let mirrors = r.list_of("request_mirror_policy", "RequestMirrorPolicy", decode_mirror);
    r.finish(&["key_formatter", "read_command_policy"]);
    PrefixRoute { prefix, remove_prefix, cluster, mirrors }
}

fn decode_mirror(m: &mut Obj) -> MirrorPolicy {
    let cluster = m.req_string("cluster");
    let per_million = m.obj("runtime_fraction", "RuntimeFractionalPercent").map(|mut fe| {
        let per_million = fe.obj("default_value", "FractionalPercent").map(|mut dv| fractional_percent(&mut dv));
        // As for faults: the runtime key is accepted; Legate uses the default value.
        fe.accept(&["runtime_key"]);
        fe.finish(&[]);
        per_million.unwrap_or(0)
    });
    let exclude_read_commands = m.bool("exclude_read_commands").unwrap_or(false);
    m.finish(&[]);
    MirrorPolicy { cluster, per_million, exclude_read_commands }
}

/// A `type.v3.FractionalPercent` as parts per million.
fn fractional_percent(dv: &mut Obj) -> u32 {
    let num = dv.uint("numerator", 0, u64::from(u32::MAX)).unwrap_or(0);
    let scale = match dv.enumeration("denominator", &["HUNDRED", "TEN_THOUSAND", "MILLION"]) {
        Some("TEN_THOUSAND") => 100,
        Some("MILLION") => 1,
        _ => 10_000,
    };
    dv.finish(&[]);
    (num.saturating_mul(scale)).min(1_000_000) as u32
}

fn decode_routes(p: &mut Obj) -> PrefixRoutes {
    let routes = p.list_of("routes", "Route", decode_route);
    let case_insensitive = p.bool("case_insensitive").unwrap_or(false);
    let catch_all = p.obj("catch_all_route", "Route").map(|mut r| decode_route(&mut r));
    let mut seen = std::collections::HashSet::new();
    for (i, r) in routes.iter().enumerate() {
        let key = if case_insensitive { r.prefix.to_lowercase() } else { r.prefix.clone() };
        if !seen.insert(key) {
            // Envoy: "prefix `x` already exists."
            p.cx.error(&format!("{}.routes[{i}].prefix", p.path), format!("prefix `{}` already exists.", r.prefix));
        }
    }
    p.finish(&["catch_all_cluster"]);
    PrefixRoutes { routes, case_insensitive, catch_all }
}

fn decode_fault(f: &mut Obj) -> FaultConfig {
    let kind = match f.enumeration("fault_type", &["ERROR", "DELAY"]) {
        Some("DELAY") => FaultKind::Delay,
        _ => FaultKind::Error,
    };
    let mut per_million = 0;
    if let Some(mut fe) = f.obj("fault_enabled", "RuntimeFractionalPercent") {
        if let Some(mut dv) = fe.obj("default_value", "FractionalPercent") {
            per_million = fractional_percent(&mut dv);
        }
        // The runtime key is read from Legate's static runtime layer only when present.
        fe.accept(&["runtime_key"]);
        fe.finish(&[]);
    }
    let delay = f.duration("delay").unwrap_or(Duration::ZERO);
    let commands = f.strings("commands").into_iter().map(|c| c.to_lowercase()).collect();
    f.finish(&[]);
    FaultConfig { kind, per_million, delay, commands }
}

/// A `config.core.v3.DataSource` field.
fn data_source(o: &mut Obj, key: &'static str) -> Option<String> {
    let path = o.at(key);
    let v = o.raw(key)?;
    read_data_source(o, &path, v)
}

fn read_data_source(o: &Obj, path: &str, v: &Value) -> Option<String> {
    let Value::Object(m) = v else {
        o.cx.error(path, format!("expected a DataSource message (a mapping), found {}", kind(v)));
        return None;
    };
    if let Some(Value::String(s)) = m.get("inline_string") {
        return Some(s.clone());
    }
    if let Some(Value::String(f)) = m.get("filename") {
        return match std::fs::read_to_string(f) {
            Ok(s) => Some(s),
            Err(e) => {
                o.cx.error(path, format!("cannot read '{f}': {e}"));
                None
            }
        };
    }
    if let Some(Value::String(var)) = m.get("environment_variable") {
        return match std::env::var(var) {
            Ok(s) => Some(s),
            Err(_) => {
                o.cx.error(path, format!("environment variable '{var}' is not set"));
                None
            }
        };
    }
    o.cx.error(
        path,
        "DataSource needs inline_string, filename or environment_variable (inline_bytes is not supported by Legate)",
    );
    None
}

/// Upstream credentials from a cluster's `typed_extension_protocol_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisProtocolOptions {
    pub auth_username: String,
    pub auth_password: String,
}

impl RedisProtocolOptions {
    /// Reads `typed_extension_protocol_options["envoy.filters.network.redis_proxy"]`.
    pub fn from_cluster(options: &Value) -> Result<RedisProtocolOptions, String> {
        let Some(v) = options.get(REDIS_PROXY_NAME) else { return Ok(RedisProtocolOptions::default()) };
        let ty = v.get("@type").and_then(Value::as_str).unwrap_or_default();
        if ty != REDIS_PROTOCOL_OPTIONS_TYPE {
            return Err(format!(
                "protocol options for {REDIS_PROXY_NAME} must have @type {REDIS_PROTOCOL_OPTIONS_TYPE}"
            ));
        }
        let read = |key: &str| -> Result<String, String> {
            match v.get(key) {
                None => Ok(String::new()),
                Some(Value::Object(m)) => {
                    if let Some(Value::String(s)) = m.get("inline_string") {
                        Ok(s.clone())
                    } else if let Some(Value::String(f)) = m.get("filename") {
                        std::fs::read_to_string(f).map_err(|e| format!("cannot read '{f}': {e}"))
                    } else if let Some(Value::String(var)) = m.get("environment_variable") {
                        std::env::var(var).map_err(|_| format!("environment variable '{var}' is not set"))
                    } else {
                        Err(format!("{key}: DataSource needs inline_string, filename or environment_variable"))
                    }
                }
                Some(_) => Err(format!("{key}: expected a DataSource message")),
            }
        };
        Ok(RedisProtocolOptions { auth_username: read("auth_username")?, auth_password: read("auth_password")? })
    }
}
