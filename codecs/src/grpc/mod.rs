//! gRPC over HTTP/2 (<https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>): the
//! length-prefixed messages inside a request or response body, and the `grpc-timeout` header.
//!
//! - [`MessageCounter`]: counts messages in a body that arrives in arbitrary chunks, without
//!   buffering or copying (what Envoy's `Grpc::FrameInspector` does for `grpc_stats`).
//! - [`decode_message`] / [`encode_message`]: whole-message framing for callers that do buffer.
//! - [`parse_timeout`]: `grpc-timeout` (`TimeoutValue TimeoutUnit`) to a `Duration`.

mod frame;
mod timeout;

pub use frame::{decode_message, encode_message, Error, Message, MessageCounter, HEADER_LEN};
pub use timeout::parse_timeout;

#[cfg(test)]
mod tests;
