//! Test support for Legate's end-to-end tests (`tests/*.rs`, one file per user scenario).
//!
//! Every test starts the real `legate` binary (built by `cargo build --workspace`; see
//! [`legate::legate_binary`]) with a YAML config written into its own temporary directory, and
//! real peers on 127.0.0.1 ephemeral ports: in-process echo servers written with `std::net`
//! ([`peers`]), `redis-server` and `redis-cli` ([`redis`]), and the real Envoy for differential
//! tests ([`envoy`]). Every process a test starts is owned by a guard that kills it by PID on
//! drop ([`process::Proc`]). No traffic leaves 127.0.0.0/8, every wait is bounded, and a missing
//! peer binary fails the test rather than skipping it.
//!
//! Layout:
//! - [`process`]: process guards, scratch directories, required binaries, bounded polling.
//! - [`admin`]: a minimal HTTP/1.1 client for the admin endpoint; `/stats` and `/listeners`
//!   parsing.
//! - [`legate`]: locating, validating with and serving the `legate` binary.
//! - [`envoy`]: locating and serving the real Envoy (unique `--base-id` per run).
//! - [`http`]: the upstream HTTP test server (HTTP/1.1 + h2c, WebSocket), curl / h2load /
//!   WebSocket clients, and the gRPC echo peers.
//! - [`peers`]: TCP/UDP echo servers (optionally with an identifying banner), a refusing port,
//!   client helpers.
//! - [`postgres`]: a throw-away PostgreSQL cluster per test, psql and pgbench.
//! - [`redis`]: a real redis-server and redis-cli.
//! - [`yaml`]: builders for the Envoy v3 configs the tests serve.

pub mod admin;
pub mod envoy;
pub mod http;
pub mod legate;
pub mod mongo;
pub mod peers;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod tls;
pub mod yaml;

pub use admin::Stats;
pub use legate::Legate;
