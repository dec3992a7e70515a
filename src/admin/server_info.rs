//! Read-only server endpoints: `/ready`, `/server_info`, `/memory`, `/hot_restart_version`
//! and `/certs`, in Envoy's formats.
//!
//! Legate has no hot restart, so `/hot_restart_version` prints `disabled` (what Envoy prints
//! when hot restart is disabled) and `/server_info` says the same. `/certs` lists the
//! certificates of every TLS-terminating filter chain and every upstream TLS context (and
//! their trusted CAs), in Envoy's `CertificateDetails` shape.

use serde_json::{json, Map, Value};

use super::json::{build_version, duration, pretty};
use super::{AdminRequest, AdminState, Reply, TEXT};
use crate::cli::Options;
use crate::config::bootstrap::NodeConfig;

/// What Legate answers for the hot restart version.
const HOT_RESTART_DISABLED: &str = "disabled";
/// Legate's log line layout as an Envoy `--log-format` pattern (no source location).
const DEFAULT_LOG_FORMAT: &str = "[%Y-%m-%d %T.%e][%t][%l][%n] %v";

/// `GET /ready`: `LIVE` (200) or the state that keeps the server from serving (503).
pub(crate) fn ready(state: &AdminState, _req: &AdminRequest) -> Reply {
    let s = state.server.state_name();
    Reply::new(if s == "LIVE" { 200 } else { 503 }, TEXT, format!("{s}\n"))
}

/// `GET /hot_restart_version`: no trailing newline, as in Envoy.
pub(crate) fn hot_restart_version(_state: &AdminState, _req: &AdminRequest) -> Reply {
    Reply::text(HOT_RESTART_DISABLED)
}

/// `GET /certs`.
pub(crate) fn certs(_state: &AdminState, _req: &AdminRequest) -> Reply {
    let mut certificates: Vec<Value> =
        crate::tls::server::all_servers().iter().map(|s| certs_json(&s.certificate_report())).collect();
    // Then every cluster's UpstreamTlsContext (its trusted CA and client certificate).
    certificates.extend(crate::tls::client::all_clients().iter().map(|c| certs_json(&c.certificate_report())));
    Reply::json(pretty(&json!({ "certificates": certificates })))
}

/// One TLS context's entry: `ca_cert` and `cert_chain` as lists of `CertificateDetails`.
fn certs_json(r: &crate::tls::server::CertReport) -> Value {
    let details = |(path, der): &(String, Vec<u8>)| -> Option<Value> {
        let i = crate::tls::certs::info(der)?;
        let sans: Vec<Value> = i
            .subject_alt_names
            .iter()
            .map(|(t, v)| {
                let k = match t {
                    crate::config::tls::SanType::Dns => "dns",
                    crate::config::tls::SanType::Uri => "uri",
                    crate::config::tls::SanType::Email => "email",
                    crate::config::tls::SanType::IpAddress => "ip_address",
                };
                json!({ k: v })
            })
            .collect();
        // uint64 fields are strings in protobuf JSON.
        Some(json!({
            "path": path,
            "serial_number": i.serial_number,
            "subject_alt_names": sans,
            "days_until_expiration": i.days_until_expiration.max(0).to_string(),
            "valid_from": i.valid_from,
            "expiration_time": i.expiration_time,
        }))
    };
    let mut m = Map::new();
    m.insert("ca_cert".into(), Value::Array(r.ca.iter().filter_map(details).collect()));
    m.insert("cert_chain".into(), Value::Array(r.chain.iter().filter_map(details).collect()));
    Value::Object(m)
}

/// `GET /memory`: Envoy's tcmalloc figures, filled from jemalloc. `heap_size` is jemalloc's
/// mapped bytes, `pageheap_free` the mapped bytes not in active pages, and
/// `total_physical_bytes` the resident bytes; jemalloc reports no counterpart of
/// `pageheap_unmapped` or `total_thread_cache`, which stay 0.
pub(crate) fn memory(_state: &AdminState, _req: &AdminRequest) -> Reply {
    Reply::json(pretty(&memory_json(&crate::memory::read())))
}

pub(crate) fn memory_json(m: &crate::memory::Memory) -> Value {
    // uint64 fields are strings in protobuf JSON.
    json!({
        "allocated": m.allocated.to_string(),
        "heap_size": m.heap_size.to_string(),
        "pageheap_unmapped": "0",
        "pageheap_free": m.heap_size.saturating_sub(m.active).to_string(),
        "total_thread_cache": "0",
        "total_physical_bytes": m.physical_size.to_string(),
    })
}

/// `GET /server_info`.
pub(crate) fn server_info(state: &AdminState, _req: &AdminRequest) -> Reply {
    let uptime = format!("{}s", state.server.started.elapsed().as_secs());
    let v = json!({
        "version": crate::cli::build_version(),
        "state": state.server.state_name(),
        "uptime_current_epoch": uptime,
        "uptime_all_epochs": uptime,
        "hot_restart_version": HOT_RESTART_DISABLED,
        "command_line_options": command_line_options(&state.options),
        "node": node_json(&state.bootstrap.node),
        "hot_restart_initializing": false,
    });
    Reply::json(pretty(&v))
}

/// `envoy.admin.v3.CommandLineOptions` from Legate's options. Options Legate does not have
/// show Envoy's defaults.
pub(crate) fn command_line_options(o: &Options) -> Value {
    let mode = match o.mode() {
        Ok(crate::cli::Mode::Validate) => "Validate",
        Ok(crate::cli::Mode::InitOnly) => "InitOnly",
        _ => "Serve",
    };
    let drain_strategy = if o.drain_strategy == "immediate" { "Immediate" } else { "Gradual" };
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    json!({
        "base_id": o.base_id.to_string(),
        "concurrency": o.workers(),
        "config_path": s(&o.config_path),
        "config_yaml": s(&o.config_yaml),
        "allow_unknown_static_fields": o.allow_unknown_static_fields,
        "admin_address_path": s(&o.admin_address_path),
        "local_address_ip_version": o.local_address_ip_version,
        "log_level": o.log_level,
        "component_log_level": s(&o.component_log_level),
        "log_format": o.log_format.clone().unwrap_or_else(|| DEFAULT_LOG_FORMAT.to_string()),
        "log_path": s(&o.log_path),
        "service_cluster": s(&o.service_cluster),
        "service_node": s(&o.service_node),
        "service_zone": s(&o.service_zone),
        "file_flush_interval": duration(std::time::Duration::from_millis(u64::from(o.file_flush_interval_msec))),
        "drain_time": duration(std::time::Duration::from_secs(u64::from(o.drain_time_s))),
        "parent_shutdown_time": duration(std::time::Duration::from_secs(u64::from(o.parent_shutdown_time_s))),
        "mode": mode,
        "disable_hot_restart": o.disable_hot_restart,
        "enable_mutex_tracing": false,
        "restart_epoch": o.restart_epoch,
        "cpuset_threads": false,
        "reject_unknown_dynamic_fields": o.reject_unknown_dynamic_fields,
        "log_format_escaped": false,
        "disabled_extensions": [],
        "ignore_unknown_dynamic_fields": o.ignore_unknown_dynamic_fields,
        "use_dynamic_base_id": o.use_dynamic_base_id,
        "base_id_path": "",
        "drain_strategy": drain_strategy,
        "enable_fine_grain_logging": false,
        "socket_path": "@envoy_domain_socket",
        "socket_mode": 0,
        "enable_core_dump": false,
        "stats_tag": [],
        "skip_hot_restart_on_no_parent": false,
        "skip_hot_restart_parent_stats": false,
        "skip_deprecated_logs": false,
        "file_flush_min_size": 0,
        "log_stacktrace_single_entry": false,
    })
}

/// The node as `/server_info` prints it (every field, as Envoy prints this message).
pub(crate) fn node_json(n: &NodeConfig) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), n.id.clone().into());
    m.insert("cluster".into(), n.cluster.clone().into());
    if !n.metadata.is_null() {
        m.insert("metadata".into(), n.metadata.clone());
    }
    if !n.locality.is_null() {
        m.insert("locality".into(), n.locality.clone());
    }
    m.insert("user_agent_name".into(), "legate".into());
    m.insert("user_agent_build_version".into(), build_version(true));
    m.insert("extensions".into(), json!([]));
    m.insert("client_features".into(), json!([]));
    m.insert("listening_addresses".into(), json!([]));
    m.insert("dynamic_parameters".into(), json!({}));
    Value::Object(m)
}
