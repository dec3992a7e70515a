//! Legate's own HTTP/1.1 server codec, used by the connection manager for HTTP/1.x
//! connections (HTTP/2 stays on hyper/h2).
//!
//! Why not hyper's: hyper's h1 server keeps an 8 KiB header buffer and an 8 KiB read buffer
//! for a connection's whole life, which is most of what an idle keep-alive connection costs.
//! Here an idle connection holds no buffer: reads land in a per-thread scratch buffer and only
//! the bytes of a request being read are copied into a buffer owned by the connection, freed
//! as soon as the request has been read (as the TCP pump does, `filter::network::pump`).
//!
//! - `parse`: the request head (httparse) and Envoy's framing and version rules.
//! - `body`: the request body decoder (content-length, chunked) and the slot through which the
//!   connection hands body chunks to whoever reads the request body.
//! - `conn`: the connection loop: one request at a time (pipelined requests wait in the read
//!   buffer, so responses go out in order), keep-alive, `Connection: close`, HTTP/1.0,
//!   `Expect: 100-continue`, upgrades, codec errors answered as Envoy does.

pub mod body;
pub mod conn;
pub mod parse;
