//! HTTP peers and clients for the `http_connection_manager` tests.
//!
//! - [`upstream`]: [`HttpUpstream`], an httpbin-like upstream on hyper (HTTP/1.1 and h2c on
//!   one port, WebSocket echo, `/flaky` for retries) that records every request it receives.
//! - [`client`]: the real `curl` ([`curl`], parsed into [`CurlResult`]), `h2load` ([`h2load`]), `nghttp`
//!   ([`nghttp`]: HTTP/2 heads and trailers, which curl does not report),
//!   and a WebSocket client ([`ws_echo`]).
//! - [`grpc`]: the Python grpcio echo server and client of `integration/grpc/`
//!   ([`GrpcServer`], [`grpc_call`]).

pub mod client;
pub mod grpc;
pub mod upstream;

#[cfg(test)]
mod tests;

pub use client::{curl, h2load, nghttp, raw_exchange, read_to_close, ws_echo, CurlResult, H2loadResult, NghttpResult};
pub use grpc::{grpc_call, GrpcKind, GrpcOpts, GrpcServer};
pub use upstream::{HttpOpts, HttpUpstream, Protocols, Recorded};
