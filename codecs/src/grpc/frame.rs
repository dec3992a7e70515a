//! Length-Prefixed-Message framing: `Compressed-Flag (1 byte) Message-Length (4 bytes, big
//! endian) Message`.

use bytes::{Buf, Bytes, BytesMut};

/// The 5-byte prefix of every message.
pub const HEADER_LEN: usize = 5;

/// PROTOCOL-HTTP2.md: "Compressed-Flag → 0 / 1; encoded as 1 byte unsigned integer". Any
/// other bit set makes the stream unframeable.
const COMPRESSED_FLAG: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid gRPC message flags 0x{0:02x}")]
    InvalidFlags(u8),
    #[error("gRPC message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
}

/// One whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub compressed: bool,
    pub data: Bytes,
}

/// Decodes one message from the front of `buf`: `Ok(None)` until the whole message is there.
/// `max_len` bounds the declared length before anything is allocated.
pub fn decode_message(buf: &mut BytesMut, max_len: u32) -> Result<Option<Message>, Error> {
    let Some(header) = buf.get(..HEADER_LEN) else { return Ok(None) };
    let flags = header[0];
    if flags & !COMPRESSED_FLAG != 0 {
        return Err(Error::InvalidFlags(flags));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > max_len {
        return Err(Error::TooLarge { len, max: max_len });
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let data = buf.split_to(len as usize).freeze();
    Ok(Some(Message { compressed: flags & COMPRESSED_FLAG != 0, data }))
}

/// Appends `data` as one message (lengths above `u32::MAX` cannot be framed and are truncated
/// by the caller's contract: gRPC messages are far below that).
pub fn encode_message(out: &mut BytesMut, compressed: bool, data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.reserve(HEADER_LEN + len as usize);
    out.extend_from_slice(&[u8::from(compressed)]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&data[..len as usize]);
}

/// Where the counter is inside the current message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the flag byte of the next message.
    Flag,
    /// Read `n` (1..=4) bytes of the length so far.
    Len { n: u8, acc: u32 },
    /// Skipping the rest of the payload.
    Payload { left: u32 },
}

/// Counts messages in a body fed in chunks of any size, copying nothing.
///
/// As Envoy's `FrameInspector`, a message is counted when its first (flag) byte arrives, and
/// the flag byte is not validated: `grpc_stats` counts what it sees, the upstream judges it.
#[derive(Debug, Clone)]
pub struct MessageCounter {
    state: State,
    count: u64,
}

impl Default for MessageCounter {
    fn default() -> Self {
        MessageCounter { state: State::Flag, count: 0 }
    }
}

impl MessageCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk; returns how many messages started in it.
    pub fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut delta = 0;
        while !data.is_empty() {
            match self.state {
                State::Flag => {
                    delta += 1;
                    self.state = State::Len { n: 0, acc: 0 };
                    data = &data[1..];
                }
                State::Len { n, acc } => {
                    let acc = (acc << 8) | u32::from(data[0]);
                    data = &data[1..];
                    self.state = match n + 1 {
                        4 if acc == 0 => State::Flag,
                        4 => State::Payload { left: acc },
                        n => State::Len { n, acc },
                    };
                }
                State::Payload { left } => {
                    let take = data.len().min(left as usize);
                    data = &data[take..];
                    // `take <= left`, so this cannot underflow or truncate.
                    let left = left - take as u32;
                    self.state = if left == 0 { State::Flag } else { State::Payload { left } };
                }
            }
        }
        self.count += delta;
        delta
    }

    /// Messages started so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the body so far ends on a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Flag
    }
}
