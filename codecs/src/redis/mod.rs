//! RESP (Redis serialization protocol), versions 2 and 3.
//!
//! - [`scan`]: a resumable, bounded frame scanner that finds where a frame ends without
//!   building it (so bytes can be forwarded untouched) and refuses what exceeds [`Limits`].
//! - [`request`]: a request frame decoded with `redis-protocol` into zero-copy arguments.
//! - [`commands`]: the commands the proxy supports and how each is routed.
//! - [`reply`]: encoding of locally built replies and a light look at upstream replies.

pub mod commands;
pub mod reply;
pub mod request;
pub mod scan;

#[cfg(test)]
mod proptests;

pub use commands::{has_upstream_stat, is_write, lookup, Family, SUPPORTED};
pub use request::{InvalidRequest, Request};
pub use scan::{Limits, ScanError, Scanner, REPLY_LIMITS, REQUEST_LIMITS};
