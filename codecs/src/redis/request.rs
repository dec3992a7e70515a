//! A client request: one RESP array of bulk strings, decoded with `redis-protocol` into
//! zero-copy `Bytes` arguments that share the frame's buffer.

use bytes::Bytes;
use redis_protocol::resp2::decode::decode_bytes;
use redis_protocol::resp2::types::BytesFrame;

/// A request the proxy cannot route: Envoy answers these with `invalid request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("request is not an array")]
    NotArray,
    #[error("request is an empty array")]
    Empty,
    #[error("request element is not a bulk string")]
    NotBulkString,
}

/// The arguments of a request, the command name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub args: Vec<Bytes>,
}

impl Request {
    /// Decodes one complete frame (as delimited by [`super::Scanner`]).
    pub fn decode(frame: &Bytes) -> Result<Request, InvalidRequest> {
        if frame.first().is_some_and(|&b| !super::scan::is_type_byte(b)) {
            return Request::decode_inline(frame);
        }
        // The scanner accepted the framing; RESP3-only types inside a request are not RESP2
        // arrays of bulk strings, so they are invalid requests, not protocol errors.
        let Ok(Some((decoded, _))) = decode_bytes(frame) else { return Err(InvalidRequest::NotArray) };
        let BytesFrame::Array(items) = decoded else { return Err(InvalidRequest::NotArray) };
        if items.is_empty() {
            return Err(InvalidRequest::Empty);
        }
        let mut args = Vec::with_capacity(items.len());
        for item in items {
            match item {
                BytesFrame::BulkString(b) => args.push(b),
                _ => return Err(InvalidRequest::NotBulkString),
            }
        }
        Ok(Request { args })
    }

    /// An inline command line (`GET key\r\n`): arguments separated by spaces or tabs.
    fn decode_inline(frame: &Bytes) -> Result<Request, InvalidRequest> {
        let line = frame.len().saturating_sub(2);
        let mut args = Vec::new();
        let mut start = None;
        for (i, &b) in frame[..line].iter().enumerate() {
            let sep = b == b' ' || b == b'\t';
            match (sep, start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    args.push(frame.slice(s..i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            args.push(frame.slice(s..line));
        }
        if args.is_empty() {
            return Err(InvalidRequest::Empty);
        }
        Ok(Request { args })
    }

    /// The command name as sent.
    pub fn name(&self) -> &[u8] {
        &self.args[0]
    }
}

/// Appends the RESP encoding of an array of bulk strings (how a split request is sent).
pub fn encode_command(out: &mut bytes::BytesMut, args: &[&[u8]]) {
    super::reply::array_header(out, args.len());
    for a in args {
        super::reply::bulk(out, a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_array_of_bulk_strings_without_copying() {
        let frame = Bytes::from_static(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
        let r = Request::decode(&frame).expect("valid");
        assert_eq!(r.args, vec![Bytes::from_static(b"GET"), Bytes::from_static(b"key")]);
        assert_eq!(r.args[1].as_ptr(), frame[17..].as_ptr());
    }

    #[test]
    fn non_arrays_and_non_bulk_elements_are_invalid() {
        for (f, e) in [
            (&b"+PING\r\n"[..], InvalidRequest::NotArray),
            (b"*0\r\n", InvalidRequest::Empty),
            (b"*-1\r\n", InvalidRequest::NotArray),
            (b"*2\r\n$3\r\nGET\r\n:1\r\n", InvalidRequest::NotBulkString),
            (b"*1\r\n$-1\r\n", InvalidRequest::NotBulkString),
            (b"*1\r\n*1\r\n$1\r\na\r\n", InvalidRequest::NotBulkString),
        ] {
            assert_eq!(Request::decode(&Bytes::from_static(f)), Err(e), "{f:?}");
        }
    }

    #[test]
    fn inline_commands_split_on_spaces() {
        let r = Request::decode(&Bytes::from_static(b"SET  k\tv\r\n")).expect("inline");
        assert_eq!(r.args, vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"v")]);
        assert_eq!(Request::decode(&Bytes::from_static(b"  \r\n")), Err(InvalidRequest::Empty));
    }

    #[test]
    fn encode_command_round_trips() {
        let mut out = bytes::BytesMut::new();
        encode_command(&mut out, &[b"SET", b"k", b"v"]);
        let frame = out.freeze();
        assert_eq!(&frame[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        assert_eq!(Request::decode(&frame).map(|r| r.args.len()), Ok(3));
    }
}
