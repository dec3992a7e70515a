//! PostgreSQL frontend/backend protocol 3.0, both directions
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>).
//!
//! Two ways in:
//! - [`framer::Framer`]: a streaming splitter over borrowed `&[u8]` chunks (what a proxy reads
//!   off a socket). It never copies a message body it is not asked to keep, so `DataRow` and
//!   `CopyData` bytes pass without a copy; a wanted body that lies whole inside one chunk is
//!   handed out as a slice of that chunk, and only a wanted body split across reads is gathered.
//! - [`decode_frontend`] / [`decode_backend`]: the crate's `decode(&mut BytesMut)` contract,
//!   returning a [`Frame`] whose body is split off the buffer without a copy.
//!
//! Either way, [`frontend::parse`], [`backend::parse`] and [`startup::parse`] turn a body into
//! a typed message that borrows from it. Unknown message types are values, not errors; an error
//! means the stream can no longer be framed (or a known message is malformed).

pub mod backend;
pub mod encode;
pub mod framer;
pub mod frontend;
mod reader;
pub mod startup;

use bytes::{Buf, Bytes, BytesMut};

/// Largest startup-phase packet, length field included (PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET_LEN: u32 = 10_000;
/// Largest regular message, length field included: PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT`
/// (`MaxAllocSize - 1`, just under 1 GiB). Anything longer cannot come from a real peer.
pub const MAX_MESSAGE_LEN: u32 = 0x3fff_fffe;

/// Why a stream could not be framed or a known message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("message length {len} is out of range ({min}..={max})")]
    BadLength { len: u32, min: u32, max: u32 },
    #[error("{0}: message body ends early")]
    Truncated(&'static str),
    #[error("{0}: string without a NUL terminator")]
    Unterminated(&'static str),
    #[error("{0}: {1} bytes left over after the last field")]
    TrailingBytes(&'static str, usize),
    #[error("{0}: {1}")]
    Malformed(&'static str, &'static str),
    #[error("startup packet: unsupported protocol version {major}.{minor}")]
    UnsupportedVersion { major: u16, minor: u16 },
}

/// One whole message taken off a `BytesMut`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The type byte; `None` for a startup-phase packet (which has none).
    pub tag: Option<u8>,
    /// The body, without the type byte and the length field.
    pub body: Bytes,
}

impl Frame {
    /// Parses a frame read with [`decode_frontend`].
    pub fn frontend(&self) -> Result<Frontend<'_>, Error> {
        match self.tag {
            None => startup::parse(&self.body).map(Frontend::Startup),
            Some(t) => frontend::parse(t, &self.body).map(Frontend::Message),
        }
    }

    /// Parses a frame read with [`decode_backend`].
    pub fn backend(&self) -> Result<backend::BackendMessage<'_>, Error> {
        backend::parse(self.tag.unwrap_or(0), &self.body)
    }
}

/// A frontend frame: a startup-phase packet or a regular message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend<'a> {
    Startup(startup::StartupPacket<'a>),
    Message(frontend::FrontendMessage<'a>),
}

/// Takes one frontend frame off `buf`. `startup` says whether the connection is still in its
/// startup phase (no type byte: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
pub fn decode_frontend(buf: &mut BytesMut, startup: bool) -> Result<Option<Frame>, Error> {
    if startup {
        decode_with(buf, false, 8, MAX_STARTUP_PACKET_LEN)
    } else {
        decode_with(buf, true, 4, MAX_MESSAGE_LEN)
    }
}

/// Takes one backend message off `buf`.
pub fn decode_backend(buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
    decode_with(buf, true, 4, MAX_MESSAGE_LEN)
}

fn decode_with(buf: &mut BytesMut, tagged: bool, min: u32, max: u32) -> Result<Option<Frame>, Error> {
    let hdr = if tagged { 5 } else { 4 };
    if buf.len() < hdr {
        return Ok(None);
    }
    let off = usize::from(tagged);
    let len = u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]);
    // Protocol: the length counts itself but not the type byte.
    if len < min || len > max {
        return Err(Error::BadLength { len, min, max });
    }
    let total = off + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let tag = tagged.then(|| buf[0]);
    buf.advance(hdr);
    let body = buf.split_to(total - hdr).freeze();
    Ok(Some(Frame { tag, body }))
}

#[cfg(test)]
mod tests;
