//! The 16-byte standard message header: messageLength, requestID, responseTo, opCode (all
//! little-endian int32).

/// Header size in bytes.
pub const HEADER_LEN: usize = 16;

/// The largest message a server accepts (`maxMessageSizeBytes`, 48,000,000 bytes): any
/// declared length above it cannot be a real message, so the stream cannot be framed.
pub const MAX_MESSAGE_LEN: usize = 48_000_000;

/// The stream can no longer be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message length {0} is shorter than the 16-byte header")]
    TooShort(i32),
    #[error("message length {0} exceeds the 48,000,000-byte maximum")]
    TooLong(i32),
}

/// Opcodes (the wire protocol's `opCode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Reply,
    Update,
    Insert,
    Query,
    GetMore,
    Delete,
    KillCursors,
    Compressed,
    Msg,
    Other(i32),
}

impl OpCode {
    pub fn from_i32(v: i32) -> OpCode {
        match v {
            1 => OpCode::Reply,
            2001 => OpCode::Update,
            2002 => OpCode::Insert,
            2004 => OpCode::Query,
            2005 => OpCode::GetMore,
            2006 => OpCode::Delete,
            2007 => OpCode::KillCursors,
            2012 => OpCode::Compressed,
            2013 => OpCode::Msg,
            other => OpCode::Other(other),
        }
    }

    /// Envoy's access-log name (`OP_MSG`, `OP_QUERY`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Reply => "OP_REPLY",
            OpCode::Update => "OP_UPDATE",
            OpCode::Insert => "OP_INSERT",
            OpCode::Query => "OP_QUERY",
            OpCode::GetMore => "OP_GET_MORE",
            OpCode::Delete => "OP_DELETE",
            OpCode::KillCursors => "OP_KILL_CURSORS",
            OpCode::Compressed => "OP_COMPRESSED",
            OpCode::Msg => "OP_MSG",
            OpCode::Other(_) => "OP_UNKNOWN",
        }
    }
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub message_length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
}

impl Header {
    /// Reads a header: `Ok(None)` with fewer than 16 bytes.
    pub fn parse(buf: &[u8]) -> Result<Option<Header>, FrameError> {
        let Some(h) = buf.get(..HEADER_LEN) else { return Ok(None) };
        let int = |i: usize| i32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let header = Header { message_length: int(0), request_id: int(4), response_to: int(8), op_code: int(12) };
        // messageLength counts the header itself.
        if header.message_length < HEADER_LEN as i32 {
            return Err(FrameError::TooShort(header.message_length));
        }
        if header.message_length as usize > MAX_MESSAGE_LEN {
            return Err(FrameError::TooLong(header.message_length));
        }
        Ok(Some(header))
    }

    /// The whole message's length (header included), already bounded.
    pub fn len(&self) -> usize {
        self.message_length as usize
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn op_code(&self) -> OpCode {
        OpCode::from_i32(self.op_code)
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.message_length.to_le_bytes());
        out[4..8].copy_from_slice(&self.request_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.response_to.to_le_bytes());
        out[12..16].copy_from_slice(&self.op_code.to_le_bytes());
        out
    }
}
