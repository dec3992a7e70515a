//! A streaming, zero-copy message splitter for one direction of a connection.
//!
//! A proxy reads bytes in chunks that do not respect message boundaries. [`Framer::feed`] takes
//! each chunk as it comes and calls a [`Handler`] once per whole message, in order. The
//! handler says per message type whether it wants the body ([`Handler::wants_body`]): a wanted
//! body that lies whole inside the chunk is handed out as a slice of the chunk (no copy); one
//! split across chunks is gathered into a small buffer owned by the framer (bounded by
//! `max_keep`); an unwanted body is skipped by counting, so `DataRow` and `CopyData` bytes are
//! never copied. Between messages the framer holds at most 5 header bytes.

use super::startup::{GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};
use super::{Error, MAX_MESSAGE_LEN, MAX_STARTUP_PACKET_LEN};

/// What the next bytes of the stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Startup-phase packets (Int32 length, no type byte).
    Startup,
    /// Regular messages (type byte, Int32 length).
    Regular,
    /// One byte: the server's answer to SSLRequest (`S`/`N`) or GSSENCRequest (`G`/`N`).
    EncryptionAnswer,
}

/// What kind of message was framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A startup-phase packet; its body starts with the Int32 code.
    Startup,
    /// A regular message with its type byte.
    Message(u8),
    /// The server's one-byte answer to an encryption request.
    EncryptionAnswer(u8),
}

/// A message body as handed to the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    Whole(&'a [u8]),
    /// Not wanted: skipped without looking at it.
    Skipped,
    /// Wanted, but longer than the framer keeps when it is split across reads.
    TooLarge,
}

/// One framed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    pub kind: Kind,
    /// Body length (the length field minus its own 4 bytes).
    pub len: usize,
    pub body: Body<'a>,
}

/// Whether to go on framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop for good (e.g. the session became encrypted): later input is ignored.
    Stop,
}

/// Receives framed messages.
pub trait Handler {
    /// Whether the body of a message of this kind and length is wanted.
    fn wants_body(&mut self, kind: Kind, len: usize) -> bool;
    fn on_message(&mut self, msg: Msg<'_>) -> Flow;
}

struct Current {
    kind: Kind,
    len: usize,
    left: usize,
    keep: bool,
    too_large: bool,
}

/// The splitter of one direction.
pub struct Framer {
    mode: Mode,
    hdr: [u8; 5],
    hdr_have: usize,
    cur: Option<Current>,
    keep: Vec<u8>,
    max_keep: usize,
    stopped: bool,
}

/// A gathered buffer larger than this is released after use instead of kept for reuse.
const KEEP_RETAIN: usize = 8 * 1024;

impl Framer {
    /// A framer starting in `mode` that gathers split bodies up to `max_keep` bytes.
    pub fn new(mode: Mode, max_keep: usize) -> Framer {
        // A startup packet is always gathered (it is small and the session needs it).
        let max_keep = max_keep.max(MAX_STARTUP_PACKET_LEN as usize);
        Framer { mode, hdr: [0; 5], hdr_have: 0, cur: None, keep: Vec::new(), max_keep, stopped: false }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Sets what the next message is; meant for a framer at a message boundary (e.g. the
    /// backend side after the client sent SSLRequest).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// Whether everything fed so far ended on a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.cur.is_none() && self.hdr_have == 0
    }

    /// Whether a handler stopped the framer (or an error did).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Stops framing; later input is ignored.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.cur = None;
        self.hdr_have = 0;
        self.keep = Vec::new();
    }

    /// Frames `data`, calling `h` per whole message. After an error the framer is stopped
    /// (the stream cannot be framed any more).
    pub fn feed<H: Handler>(&mut self, data: &[u8], h: &mut H) -> Result<(), Error> {
        let r = self.feed_inner(data, h);
        if r.is_err() {
            self.stop();
        }
        r
    }

    fn feed_inner<H: Handler>(&mut self, mut data: &[u8], h: &mut H) -> Result<(), Error> {
        while !data.is_empty() && !self.stopped {
            if let Some(cur) = &mut self.cur {
                let take = cur.left.min(data.len());
                if cur.keep {
                    self.keep.extend_from_slice(&data[..take]);
                }
                cur.left -= take;
                data = &data[take..];
                if cur.left == 0 {
                    if let Some(cur) = self.cur.take() {
                        self.finish_split(cur, h);
                    }
                }
                continue;
            }
            match self.mode {
                Mode::EncryptionAnswer => {
                    let b = data[0];
                    self.mode = Mode::Regular;
                    // A server too old to know the request answers with an ErrorResponse:
                    // frame it as a regular message.
                    if b == b'E' {
                        continue;
                    }
                    data = &data[1..];
                    let m = Msg { kind: Kind::EncryptionAnswer(b), len: 0, body: Body::Whole(&[]) };
                    if h.on_message(m) == Flow::Stop {
                        self.stop();
                    }
                }
                Mode::Startup | Mode::Regular => {
                    let hdr_len = if self.mode == Mode::Startup { 4 } else { 5 };
                    let hdr: [u8; 5] = if self.hdr_have == 0 && data.len() >= hdr_len {
                        let mut h5 = [0u8; 5];
                        h5[..hdr_len].copy_from_slice(&data[..hdr_len]);
                        data = &data[hdr_len..];
                        h5
                    } else {
                        let take = (hdr_len - self.hdr_have).min(data.len());
                        self.hdr[self.hdr_have..self.hdr_have + take].copy_from_slice(&data[..take]);
                        self.hdr_have += take;
                        data = &data[take..];
                        if self.hdr_have < hdr_len {
                            return Ok(());
                        }
                        self.hdr_have = 0;
                        self.hdr
                    };
                    let (kind, len_field, min, max) = if self.mode == Mode::Startup {
                        (Kind::Startup, u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]), 8, MAX_STARTUP_PACKET_LEN)
                    } else {
                        (
                            Kind::Message(hdr[0]),
                            u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]),
                            4,
                            MAX_MESSAGE_LEN,
                        )
                    };
                    // Protocol: the length counts itself; startup packets are at most
                    // MAX_STARTUP_PACKET_LENGTH, regular messages under 1 GiB.
                    if len_field < min || len_field > max {
                        return Err(Error::BadLength { len: len_field, min, max });
                    }
                    let len = (len_field - 4) as usize;
                    let wanted = kind == Kind::Startup || h.wants_body(kind, len);
                    if len <= data.len() {
                        let body = if wanted { Body::Whole(&data[..len]) } else { Body::Skipped };
                        data = &data[len..];
                        self.deliver(Msg { kind, len, body }, h);
                    } else {
                        let too_large = wanted && len > self.max_keep;
                        let keep = wanted && !too_large;
                        if keep {
                            self.keep.reserve(len);
                        }
                        self.cur = Some(Current { kind, len, left: len, keep, too_large });
                    }
                }
            }
        }
        Ok(())
    }

    fn finish_split<H: Handler>(&mut self, cur: Current, h: &mut H) {
        let kept = std::mem::take(&mut self.keep);
        let body = if cur.keep {
            Body::Whole(&kept)
        } else if cur.too_large {
            Body::TooLarge
        } else {
            Body::Skipped
        };
        self.deliver(Msg { kind: cur.kind, len: cur.len, body }, h);
        if kept.capacity() <= KEEP_RETAIN {
            self.keep = kept;
            self.keep.clear();
        }
    }

    fn deliver<H: Handler>(&mut self, msg: Msg<'_>, h: &mut H) {
        if msg.kind == Kind::Startup {
            // After a StartupMessage come regular messages; after an encryption request the
            // next packet is again a startup packet (or TLS/GSS bytes).
            let code = match msg.body {
                Body::Whole(b) if b.len() >= 4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                _ => 0,
            };
            if code != SSL_REQUEST_CODE && code != GSSENC_REQUEST_CODE {
                self.mode = Mode::Regular;
            }
        }
        if h.on_message(msg) == Flow::Stop {
            self.stop();
        }
    }
}
