//! Envoy-compatible command-line options (`envoy --help`), parsed with clap. Flags Envoy has
//! for hot restart and shared memory are accepted and have no effect (Legate has no hot
//! restart); each is marked so in `--help`.

use clap::Parser;

/// What `--mode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Validate,
    InitOnly,
}

/// Legate's command line, with Envoy's flag names.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "legate",
    disable_version_flag = true,
    about = "Legate: a multi-protocol proxy that reads Envoy's v3 config"
)]
pub struct Options {
    /// Path to configuration file (.yaml, .yml or .json)
    #[arg(short = 'c', long = "config-path", value_name = "string")]
    pub config_path: Option<String>,
    /// YAML string for a v3 bootstrap proto, merged over --config-path
    #[arg(long = "config-yaml", value_name = "string")]
    pub config_yaml: Option<String>,
    /// One of 'serve' (default; validate configs and then serve traffic normally) or
    /// 'validate' (validate configs and exit) or 'init_only' (initialise and exit)
    #[arg(long = "mode", value_name = "string", default_value = "serve")]
    pub mode: String,
    /// Log levels: [trace][debug][info][warning|warn][error][critical][off]
    #[arg(short = 'l', long = "log-level", value_name = "string", default_value = "info")]
    pub log_level: String,
    /// Comma-separated list of component log levels, e.g. upstream:debug,connection:trace
    #[arg(long = "component-log-level", value_name = "string")]
    pub component_log_level: Option<String>,
    /// Path to logfile (default: stderr)
    #[arg(long = "log-path", value_name = "string")]
    pub log_path: Option<String>,
    /// Log message format (accepted for compatibility; Legate uses Envoy's default layout)
    #[arg(long = "log-format", value_name = "string")]
    pub log_format: Option<String>,
    /// Number of worker threads to run (default: hardware threads; 0 becomes 1)
    #[arg(long = "concurrency", value_name = "uint32_t")]
    pub concurrency: Option<u32>,
    /// Hot restart and stats drain time in seconds
    #[arg(long = "drain-time-s", value_name = "uint32_t", default_value_t = 600)]
    pub drain_time_s: u32,
    /// Hot restart parent shutdown time in seconds (accepted; no hot restart in Legate)
    #[arg(long = "parent-shutdown-time-s", value_name = "uint32_t", default_value_t = 900)]
    pub parent_shutdown_time_s: u32,
    /// Hot restart drain sequence behaviour, one of 'gradual' (default) or 'immediate'
    #[arg(long = "drain-strategy", value_name = "string", default_value = "gradual")]
    pub drain_strategy: String,
    /// Cluster name (overrides node.cluster)
    #[arg(long = "service-cluster", value_name = "string")]
    pub service_cluster: Option<String>,
    /// Node name (overrides node.id)
    #[arg(long = "service-node", value_name = "string")]
    pub service_node: Option<String>,
    /// Zone name (overrides node.locality.zone)
    #[arg(long = "service-zone", value_name = "string")]
    pub service_zone: Option<String>,
    /// Allow unknown fields in static configuration (each becomes a warning, counted in server.static_unknown_fields)
    #[arg(long = "allow-unknown-static-fields")]
    pub allow_unknown_static_fields: bool,
    /// Reject unknown fields in dynamic configuration (accepted; no dynamic configuration yet)
    #[arg(long = "reject-unknown-dynamic-fields")]
    pub reject_unknown_dynamic_fields: bool,
    /// Ignore unknown fields in dynamic configuration (accepted; no dynamic configuration yet)
    #[arg(long = "ignore-unknown-dynamic-fields")]
    pub ignore_unknown_dynamic_fields: bool,
    /// Base ID for shared memory regions (accepted; no hot restart in Legate)
    #[arg(long = "base-id", value_name = "uint32_t", default_value_t = 0)]
    pub base_id: u32,
    /// Use a dynamically chosen base ID (accepted; no hot restart in Legate)
    #[arg(long = "use-dynamic-base-id")]
    pub use_dynamic_base_id: bool,
    /// Hot restart epoch # (accepted; no hot restart in Legate)
    #[arg(long = "restart-epoch", value_name = "uint32_t", default_value_t = 0)]
    pub restart_epoch: u32,
    /// Disable hot restart functionality (always disabled in Legate)
    #[arg(long = "disable-hot-restart")]
    pub disable_hot_restart: bool,
    /// Interval for log flushing in msec
    #[arg(long = "file-flush-interval-msec", value_name = "uint32_t", default_value_t = 10000)]
    pub file_flush_interval_msec: u32,
    /// The local IP address version (v4 or v6)
    #[arg(long = "local-address-ip-version", value_name = "string", default_value = "v4")]
    pub local_address_ip_version: String,
    /// Admin address path: write the admin address to this file once bound
    #[arg(long = "admin-address-path", value_name = "string")]
    pub admin_address_path: Option<String>,
    /// Display version information and exit
    #[arg(long = "version")]
    pub version: bool,
}

/// A command-line value Envoy would reject, with Envoy's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

/// The log levels Envoy accepts.
pub const LEVELS: &[&str] = &["trace", "debug", "info", "warning", "warn", "error", "critical", "off"];

impl Options {
    pub fn mode(&self) -> Result<Mode, CliError> {
        match self.mode.as_str() {
            "serve" => Ok(Mode::Serve),
            "validate" => Ok(Mode::Validate),
            "init_only" => Ok(Mode::InitOnly),
            other => Err(CliError(format!("error: unknown mode '{other}'"))),
        }
    }

    /// Worker threads: the flag, or the machine's hardware threads; 0 becomes 1.
    pub fn workers(&self) -> usize {
        match self.concurrency {
            Some(n) => (n as usize).max(1),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Checks the log options the way Envoy does, with its messages.
    pub fn check_log_levels(&self) -> Result<Vec<(String, String)>, CliError> {
        if !LEVELS.contains(&self.log_level.as_str()) {
            return Err(CliError(format!("error: invalid log level specified '{}'", self.log_level)));
        }
        let mut out = Vec::new();
        if let Some(spec) = &self.component_log_level {
            for part in spec.split(',') {
                let Some((c, l)) = part.split_once(':') else {
                    return Err(CliError(format!("error: component log level not correctly specified '{part}'")));
                };
                if !LEVELS.contains(&l) {
                    return Err(CliError(format!("error: invalid log level specified '{l}'")));
                }
                if !crate::logging::COMPONENTS.contains(&c) {
                    return Err(CliError(format!("error: invalid component specified '{c}'")));
                }
                out.push((c.to_string(), l.to_string()));
            }
        }
        Ok(out)
    }
}

/// `--version` output, laid out like Envoy's (`\nenvoy  version: <sha>/<v>/Clean/RELEASE/<ssl>\n\n`).
pub fn version_text() -> String {
    format!("\nlegate  version: {}\n\n", build_version())
}

/// `<sha>/<version>/Clean/<RELEASE|DEBUG>/rustls`, as in `/server_info`.
pub fn build_version() -> String {
    let sha = option_env!("LEGATE_GIT_SHA").unwrap_or("0000000000000000000000000000000000000000");
    let profile = if cfg!(debug_assertions) { "DEBUG" } else { "RELEASE" };
    format!("{sha}/{}/Clean/{profile}/rustls", env!("CARGO_PKG_VERSION"))
}
