//! Legate: a multi-protocol L4/L7 proxy that reads Envoy's v3 config.
//!
//! Layout (one line per module; see `../shared/ARCHITECTURE.md` for the design):
//! - `cli`: Envoy-compatible command-line flags.
//! - `logging`: the application log in Envoy's layout, with per-component levels.
//! - `config`: the Envoy v3 bootstrap subset: loading, `--config-yaml` merge, typed decoding
//!   that reports every error with its YAML path, and cross-resource checks.
//! - `server`: builds a config generation (stats, clusters, listeners, admin) and runs it.
//! - `listener`: TCP/UDP listeners, filter-chain matching, listener stats.
//! - `filter`: the network filter traits (observer/terminal) and the filters
//!   (`filter::network::tcp_proxy`, `filter::network::udp_proxy`).
//! - `upstream`: cluster manager, cluster types, hosts, load balancers, connect path.
//! - `stats`: the stat store, `define_stats!`, text/JSON/Prometheus rendering, tag extraction.
//! - `admin`: the admin HTTP endpoint.
//! - `access_log`: Envoy format strings, `json_format`, and the file/stdout/stderr sinks.
//! - `tls`: TLS termination with rustls, certificate reload, `ssl.*` stats.
//! - `memory`: allocator statistics for `server.memory_*`.
//! - `runtime`: `layered_runtime` static layers (e.g. per-listener connection limits).

pub mod access_log;
pub mod access_log_build;
pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod filter;
pub mod listener;
pub mod logging;
pub mod memory;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod stats_setup;
pub mod tls;
pub mod upstream;
