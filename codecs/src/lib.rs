//! `legate-codecs`: pure decoders and encoders for the protocols Legate's filters observe.
//!
//! Contract (ARCHITECTURE.md §3): check-then-parse, `decode(&mut BytesMut) -> Result<Option<Frame>, Error>`
//! returns `Ok(None)` when more bytes are needed, bounds every length before allocating, never
//! panics. No sockets and no `tokio::net` here. The protocol codecs (Redis, Postgres, MongoDB,
//! gRPC framing) arrive with their issues; this crate starts with what the core needs.
//!
//! - [`redis`]: RESP2/RESP3 framing, request decoding and command classification.
//! - [`grpc`]: length-prefixed message framing and counting, `grpc-timeout`.

pub mod grpc;
pub mod mongo;
pub mod postgres;
pub mod redis;
pub mod tls;
pub mod varlen;
