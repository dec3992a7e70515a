//! The request body of an HTTP/1.x request: the decoder of its framing, and the slot through
//! which the connection hands decoded chunks to the body's reader (the router, possibly on
//! another task: the upstream connection's), one chunk at a time, so the downstream is read
//! only as fast as the upstream takes the body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use parking_lot::Mutex;

use super::parse::Framing;
use crate::filter::http::body::BoxError;

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// Decodes a body of the given framing from the connection's read buffer.
#[derive(Debug)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunk),
    Done,
}

/// The body cannot be framed (RFC 9112 §7.1 violated): the connection closes.
#[derive(Debug)]
pub struct BadChunk;

impl Decoder {
    pub fn new(f: Framing) -> Decoder {
        match f {
            Framing::None | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunk::Size),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Decoder::Done)
    }

    /// The next piece of body in `buf`; `Ok(None)` when more bytes are needed or the body is done.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BadChunk> {
        loop {
            match self {
                Decoder::Done => return Ok(None),
                Decoder::Length(rem) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = (*rem).min(buf.len() as u64) as usize;
                    *rem -= n as u64;
                    if *rem == 0 {
                        *self = Decoder::Done;
                    }
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                Decoder::Chunked(state) => match *state {
                    Chunk::Size => {
                        let Some(line) = take_line(buf)? else { return Ok(None) };
                        // RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF; extensions are ignored.
                        let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
                        let digits = trim(digits);
                        if digits.is_empty() || digits.len() > 16 {
                            return Err(BadChunk);
                        }
                        let mut size: u64 = 0;
                        for &d in digits {
                            let v = (d as char).to_digit(16).ok_or(BadChunk)?;
                            size = (size << 4) | u64::from(v);
                        }
                        *state = if size == 0 { Chunk::Trailers } else { Chunk::Data(size) };
                    }
                    Chunk::Data(rem) => {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        let n = rem.min(buf.len() as u64) as usize;
                        *state = if rem == n as u64 { Chunk::DataEnd } else { Chunk::Data(rem - n as u64) };
                        return Ok(Some(buf.split_to(n).freeze()));
                    }
                    Chunk::DataEnd => {
                        let Some(line) = take_line(buf)? else { return Ok(None) };
                        if !trim(&line).is_empty() {
                            return Err(BadChunk);
                        }
                        *state = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        // Request trailers are read and dropped (HTTP/1.1 upstreams rarely take them).
                        let Some(line) = take_line(buf)? else { return Ok(None) };
                        if trim(&line).is_empty() {
                            *self = Decoder::Done;
                            return Ok(None);
                        }
                    }
                },
            }
        }
    }
}

/// One line ending in LF, removed from `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BadChunk> {
    match buf.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(i) => {
            let line = buf.split_to(i + 1).freeze();
            Ok(Some(line.slice(..i)))
        }
        None if buf.len() >= MAX_LINE => Err(BadChunk),
        None => Ok(None),
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

#[derive(Default)]
struct SlotState {
    chunk: Option<Bytes>,
    ended: bool,
    error: Option<&'static str>,
    reader: Option<Waker>,
    feeder: Option<Waker>,
    reader_gone: bool,
}

/// The connection's side of a request body.
#[derive(Clone)]
pub struct Slot(Arc<Mutex<SlotState>>);

/// What [`Slot::wants`] says about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Room for the next chunk.
    More,
    /// The reader has not taken the last chunk yet (the feeder is woken when it does).
    Full,
    /// Ended, failed, or nobody reads it any more.
    Stop,
}

impl Slot {
    pub fn new(exact: Option<u64>) -> (Slot, H1Body) {
        let slot = Slot(Arc::default());
        (slot.clone(), H1Body { slot, exact })
    }

    pub fn wants(&self, cx: &Context<'_>) -> Want {
        let mut s = self.0.lock();
        if s.ended || s.error.is_some() || s.reader_gone {
            return Want::Stop;
        }
        if s.chunk.is_some() {
            if !s.feeder.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.feeder = Some(cx.waker().clone());
            }
            return Want::Full;
        }
        Want::More
    }

    pub fn push(&self, chunk: Option<Bytes>, end: bool) {
        let mut s = self.0.lock();
        if let Some(c) = chunk {
            if !c.is_empty() {
                s.chunk = Some(c);
            }
        }
        s.ended |= end;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    pub fn fail(&self, why: &'static str) {
        let mut s = self.0.lock();
        if !s.ended {
            s.error = Some(why);
        }
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    pub fn is_ended(&self) -> bool {
        self.0.lock().ended
    }
}

/// The request body as its reader sees it.
pub struct H1Body {
    slot: Slot,
    exact: Option<u64>,
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut s = self.slot.0.lock();
        if let Some(c) = s.chunk.take() {
            if let Some(w) = s.feeder.take() {
                w.wake();
            }
            return Poll::Ready(Some(Ok(Frame::data(c))));
        }
        if let Some(e) = s.error {
            return Poll::Ready(Some(Err(e.into())));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        if !s.reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.reader = Some(cx.waker().clone());
        }
        if let Some(w) = s.feeder.take() {
            w.wake();
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let s = self.slot.0.lock();
        s.ended && s.chunk.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        let mut s = self.slot.0.lock();
        s.reader_gone = true;
        if let Some(w) = s.feeder.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder, input: &[u8]) -> Result<Vec<u8>, BadChunk> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(c) = d.decode(&mut buf)? {
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut d = Decoder::new(Framing::Chunked);
        let out = all(&mut d, b"3;x=y\r\nabc\r\n0A\r\n0123456789\r\n0\r\nt: v\r\n\r\nNEXT").unwrap();
        assert_eq!(out, b"abc0123456789");
        assert!(d.is_done());
    }

    #[test]
    fn chunked_byte_by_byte() {
        let input = b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n";
        let mut d = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while let Some(c) = d.decode(&mut buf).unwrap() {
                out.extend_from_slice(&c);
            }
        }
        assert_eq!(out, b"hello!");
        assert!(d.is_done());
    }

    #[test]
    fn bad_chunks_are_errors() {
        assert!(all(&mut Decoder::new(Framing::Chunked), b"zz\r\n").is_err());
        assert!(all(&mut Decoder::new(Framing::Chunked), b"2\r\nabX\r\n").is_err());
        assert!(all(&mut Decoder::new(Framing::Chunked), b"fffffffffffffffff\r\n").is_err());
        assert!(all(&mut Decoder::new(Framing::Chunked), &[b'1'; 5000]).is_err());
    }

    #[test]
    fn length_stops_at_the_end() {
        let mut d = Decoder::new(Framing::Length(3));
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(&d.decode(&mut buf).unwrap().unwrap()[..], b"abc");
        assert!(d.is_done());
        assert_eq!(&buf[..], b"def");
    }
}
