//! L7: the HTTP connection manager (`envoy.filters.network.http_connection_manager`) and what
//! it is made of.
//!
//! - `conn_manager`: the terminal network filter: serves HTTP/1.1 (`h1`, Legate's own codec)
//!   and HTTP/2 (hyper; h2c prior knowledge, or ALPN) on a downstream connection.
//! - `h1`: the HTTP/1.x server codec: request heads, bodies, keep-alive, pipelining, upgrades.
//! - `route_table`: the route configuration compiled once per generation: virtual-host
//!   selection in Envoy's domain order, route matching, rewrites, redirects, header mutations.
//! - `router`: `envoy.filters.http.router`: cluster choice, timeouts, retries, mirroring.
//! - `pool`: upstream HTTP/1.1 keep-alive and HTTP/2 connection pools, per host.
//! - `local_reply`: Envoy's locally generated responses (404 `NR`, 503 `UH`, 504 `UT`, ...).
//! - `filters`: the other HTTP filters (fault, local_ratelimit, grpc_stats).

pub mod body;
pub mod conn_manager;
pub mod filters;
pub mod h1;
pub mod local_reply;
pub mod response;
pub mod route_table;
pub mod router;
pub mod stats;
