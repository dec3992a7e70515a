//! Encoding of the replies the proxy builds itself (local answers, reassembled splits), and a
//! light look at upstream replies (their type and, where needed, their value).

use bytes::{BufMut, Bytes, BytesMut};
use redis_protocol::resp3::decode::complete::decode_bytes;
use redis_protocol::resp3::types::BytesFrame as Resp3Frame;

fn number(out: &mut BytesMut, prefix: u8, n: i64) {
    out.put_u8(prefix);
    if n < 0 {
        out.put_u8(b'-');
    }
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
    out.put_slice(b"\r\n");
}

pub fn simple(out: &mut BytesMut, s: &[u8]) {
    out.put_u8(b'+');
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

/// An error reply; the message must not contain CR or LF.
pub fn error(out: &mut BytesMut, msg: &str) {
    out.put_u8(b'-');
    out.put_slice(msg.as_bytes());
    out.put_slice(b"\r\n");
}

pub fn integer(out: &mut BytesMut, n: i64) {
    number(out, b':', n);
}

pub fn bulk(out: &mut BytesMut, b: &[u8]) {
    number(out, b'$', b.len() as i64);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

pub fn array_header(out: &mut BytesMut, n: usize) {
    number(out, b'*', n as i64);
}

/// The type of a complete reply frame, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    SimpleString,
    Error,
    Integer,
    BulkString,
    Null,
    Array,
    /// Any RESP3-only type (map, set, double, ...).
    Other,
}

/// Classifies a complete reply frame.
pub fn kind(frame: &[u8]) -> ReplyKind {
    match frame.first() {
        Some(b'+') => ReplyKind::SimpleString,
        Some(b'-') | Some(b'!') => ReplyKind::Error,
        Some(b':') => ReplyKind::Integer,
        Some(b'$') if frame.starts_with(b"$-1\r\n") => ReplyKind::Null,
        Some(b'$') => ReplyKind::BulkString,
        Some(b'*') if frame.starts_with(b"*-1\r\n") => ReplyKind::Null,
        Some(b'*') => ReplyKind::Array,
        Some(b'_') => ReplyKind::Null,
        _ => ReplyKind::Other,
    }
}

/// The integer of a `:n` reply.
pub fn integer_value(frame: &[u8]) -> Option<i64> {
    let body = frame.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    super::scan::parse_int(body).ok()
}

/// The text of a simple-string or error reply (without its type byte and CRLF).
pub fn line_text(frame: &[u8]) -> Option<&[u8]> {
    match frame.first() {
        Some(b'+') | Some(b'-') => frame.get(1..frame.len().checked_sub(2)?),
        _ => None,
    }
}

/// The elements of a complete `*N` array reply as zero-copy frames; `None` for any other
/// type (a null array included) or a frame that does not hold exactly N elements.
pub fn array_elements(frame: &Bytes) -> Option<Vec<Bytes>> {
    if frame.first() != Some(&b'*') || frame.starts_with(b"*-1\r\n") {
        return None;
    }
    let end = frame.windows(2).position(|w| w == b"\r\n")?;
    let n = usize::try_from(super::scan::parse_int(&frame[1..end]).ok()?).ok()?;
    let mut at = end + 2;
    // Every element takes at least 3 bytes, which bounds the allocation by the frame's size.
    let mut out = Vec::with_capacity(n.min(frame.len() / 3));
    for _ in 0..n {
        let mut scanner = super::Scanner::new(super::REPLY_LIMITS);
        let len = scanner.scan(frame.get(at..)?).ok()??;
        out.push(frame.slice(at..at + len));
        at += len;
    }
    (at == frame.len()).then_some(out)
}

/// The payload of a `$n` bulk string reply.
pub fn bulk_value(frame: &[u8]) -> Option<&[u8]> {
    if frame.first() != Some(&b'$') {
        return None;
    }
    let end = frame.windows(2).position(|w| w == b"\r\n")?;
    let n = usize::try_from(super::scan::parse_int(&frame[1..end]).ok()?).ok()?;
    frame.get(end + 2..end + 2 + n)
}

/// Fully decodes a reply (RESP2 or RESP3) with `redis-protocol`, for the few places that need
/// its structure (cluster slot discovery, tests).
pub fn decode_value(frame: &Bytes) -> Option<Resp3Frame> {
    match decode_bytes(frame) {
        Ok(Some((f, _))) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_type() {
        let mut out = BytesMut::new();
        simple(&mut out, b"OK");
        error(&mut out, "ERR x");
        integer(&mut out, -3);
        bulk(&mut out, b"ab");
        array_header(&mut out, 2);
        assert_eq!(&out[..], b"+OK\r\n-ERR x\r\n:-3\r\n$2\r\nab\r\n*2\r\n");
    }

    #[test]
    fn classifies_replies() {
        assert_eq!(kind(b"$-1\r\n"), ReplyKind::Null);
        assert_eq!(kind(b"$1\r\na\r\n"), ReplyKind::BulkString);
        assert_eq!(kind(b"-MOVED 1 a:1\r\n"), ReplyKind::Error);
        assert_eq!(integer_value(b":42\r\n"), Some(42));
        assert_eq!(line_text(b"+OK\r\n"), Some(&b"OK"[..]));
        assert!(matches!(decode_value(&Bytes::from_static(b"*1\r\n:1\r\n")), Some(Resp3Frame::Array { .. })));
    }

    #[test]
    fn splits_arrays_and_reads_bulk_strings() {
        let f = Bytes::from_static(b"*3\r\n$1\r\na\r\n*1\r\n:1\r\n$-1\r\n");
        let e = array_elements(&f).expect("array");
        assert_eq!(e.len(), 3);
        assert_eq!(&e[1][..], b"*1\r\n:1\r\n");
        assert_eq!(array_elements(&Bytes::from_static(b"*0\r\n")).map(|v| v.len()), Some(0));
        assert_eq!(array_elements(&Bytes::from_static(b"*-1\r\n")), None);
        assert_eq!(array_elements(&Bytes::from_static(b"*2\r\n:1\r\n")), None);
        assert_eq!(array_elements(&Bytes::from_static(b"+OK\r\n")), None);
        assert_eq!(bulk_value(b"$2\r\nab\r\n"), Some(&b"ab"[..]));
        assert_eq!(bulk_value(b"$-1\r\n"), None);
    }
}
