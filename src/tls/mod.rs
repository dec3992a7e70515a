//! TLS with rustls (ring provider): termination on filter chains (`DownstreamTlsContext`),
//! certificates from files or inline PEM that are reloaded when their files change, and the
//! `ssl.*` stats.

pub mod certs;
pub mod client;
pub mod reload;
pub mod server;
pub mod stats;
