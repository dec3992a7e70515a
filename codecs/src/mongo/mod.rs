//! MongoDB wire protocol (<https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/>),
//! OP_MSG first: the 16-byte header, OP_MSG (flags, kind 0 body, kind 1 document sequences,
//! optional CRC-32C), OP_QUERY and OP_REPLY (the handshake and old clients), OP_COMPRESSED
//! (snappy, zlib and zstd decompressed back into the original message), and the
//! legacy insert/update/delete/getMore/killCursors.
//!
//! Documents are read in place with `bson::RawDocument`: nothing is copied or allocated per
//! message. [`split_message`] frames a message inside a borrowed buffer (what an observer uses on
//! the bytes it is shown), [`decode`] is the `BytesMut` contract of the crate, and
//! [`Message::parse`] turns one framed message into a borrowed view. The facts a proxy counts
//! (command, collection, filter shape, reply documents, ...) are in [`facts`].
//!
//! Errors come in two kinds: a header whose length cannot be right ([`FrameError`]) means the
//! stream can no longer be framed; a message whose body is malformed ([`MessageError`]) is
//! skipped whole, and the stream goes on with the next message.

pub mod compressed;
pub mod facts;
mod header;
pub mod legacy;
pub mod op_msg;
pub mod op_query;
pub mod op_reply;
mod reader;
#[cfg(test)]
mod tests;

pub use compressed::OpCompressed;
pub use facts::{QueryType, ReplyFacts, RequestFacts};
pub use header::{FrameError, Header, OpCode, HEADER_LEN, MAX_MESSAGE_LEN};
pub use legacy::{OpDelete, OpGetMore, OpInsert, OpKillCursors, OpUpdate};
pub use op_msg::{OpMsg, Section, CHECKSUM_PRESENT, EXHAUST_ALLOWED, MORE_TO_COME};
pub use op_query::OpQuery;
pub use op_reply::OpReply;

use bytes::{Bytes, BytesMut};

/// Why a framed message could not be read. The stream can still be framed past it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{0} overruns its message")]
    Overrun(&'static str),
    #[error("invalid BSON in {0}")]
    InvalidBson(&'static str),
    #[error("OP_MSG checksum mismatch (message says {expected:#010x}, bytes give {actual:#010x})")]
    Checksum { expected: u32, actual: u32 },
    #[error("OP_MSG has no body section")]
    NoBody,
    #[error("OP_MSG has more than one body section")]
    TwoBodies,
    #[error("unknown OP_MSG section kind {0}")]
    SectionKind(u8),
    #[error("unknown required OP_MSG flag bits {0:#x}")]
    RequiredFlags(u32),
    #[error("OP_COMPRESSED: {0}")]
    Compressed(&'static str),
}

/// One message, borrowed from the bytes it was framed in.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    Msg(OpMsg<'a>),
    Query(OpQuery<'a>),
    Reply(OpReply<'a>),
    Compressed(OpCompressed<'a>),
    Insert(OpInsert<'a>),
    Update(OpUpdate<'a>),
    Delete(OpDelete<'a>),
    GetMore(OpGetMore<'a>),
    KillCursors(OpKillCursors),
    /// Any other opcode (legacy OP_MSG 1000, OP_COMMAND 2010/2011, future ones): a value.
    Unknown {
        op_code: i32,
        len: usize,
    },
}

impl<'a> Message<'a> {
    /// Reads one whole message (`bytes` is exactly `header.message_length` long).
    pub fn parse(header: &Header, bytes: &'a [u8]) -> Result<Message<'a>, MessageError> {
        let body = bytes.get(HEADER_LEN..).ok_or(MessageError::Overrun("header"))?;
        Ok(match header.op_code() {
            OpCode::Msg => Message::Msg(OpMsg::parse(bytes, body)?),
            OpCode::Query => Message::Query(OpQuery::parse(body)?),
            OpCode::Reply => Message::Reply(OpReply::parse(body)?),
            OpCode::Compressed => Message::Compressed(OpCompressed::parse(body)?),
            OpCode::Insert => Message::Insert(OpInsert::parse(body)?),
            OpCode::Update => Message::Update(OpUpdate::parse(body)?),
            OpCode::Delete => Message::Delete(OpDelete::parse(body)?),
            OpCode::GetMore => Message::GetMore(OpGetMore::parse(body)?),
            OpCode::KillCursors => Message::KillCursors(OpKillCursors::parse(body)?),
            OpCode::Other(op_code) => Message::Unknown { op_code, len: bytes.len() },
        })
    }
}

/// Frames the message at the start of `buf`: `Ok(None)` when fewer bytes than its header
/// declares are there yet, else its header (the message is `buf[..header.len()]`).
pub fn split_message(buf: &[u8]) -> Result<Option<Header>, FrameError> {
    let Some(h) = Header::parse(buf)? else { return Ok(None) };
    Ok((buf.len() >= h.len()).then_some(h))
}

/// One framed message that owns its bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub header: Header,
    pub bytes: Bytes,
}

impl Frame {
    pub fn message(&self) -> Result<Message<'_>, MessageError> {
        Message::parse(&self.header, &self.bytes)
    }
}

/// The crate's decode contract: takes one whole message off the front of `buf`.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    let Some(header) = split_message(buf)? else { return Ok(None) };
    let bytes = buf.split_to(header.len()).freeze();
    Ok(Some(Frame { header, bytes }))
}
