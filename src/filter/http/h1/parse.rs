//! HTTP/1.x request heads: the request line and headers with `httparse`, then the framing of
//! the body and the connection's persistence, with Envoy's answers to what it refuses.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

/// Headers parsed on the stack up to this many (Envoy's default `max_headers_count` is 100).
const STACK_HEADERS: usize = 128;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
pub struct Head {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client asked to keep the connection open (HTTP/1.1 without `Connection: close`,
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` (removed from the headers).
    pub expect_continue: bool,
}

/// A request the codec refuses: answered locally (Envoy's status, reason phrase as the body,
/// flag `DPE`) and the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecError {
    pub status: u16,
    /// `%RESPONSE_CODE_DETAILS%`, Envoy's names.
    pub details: &'static str,
}

impl CodecError {
    const fn new(status: u16, details: &'static str) -> CodecError {
        CodecError { status, details }
    }
}

pub const BAD_REQUEST: CodecError = CodecError::new(400, "http1.codec_error");
/// `request_headers_timeout` passed with a head still incomplete (not a protocol error).
pub const HEADER_TIMEOUT: CodecError = CodecError::new(408, "request_header_timeout");
/// `request_timeout` passed (shorter than `request_headers_timeout`) with a head still incomplete.
pub const REQUEST_TIMEOUT: CodecError = CodecError::new(408, "request_overall_timeout");
const HEADERS_TOO_LARGE: CodecError = CodecError::new(431, "http1.headers_too_large");
const TOO_MANY_HEADERS: CodecError = CodecError::new(431, "http1.too_many_headers");
const UPGRADE_REQUIRED: CodecError = CodecError::new(426, "http1.codec_error");
const INVALID_URL: CodecError = CodecError::new(400, "http1.invalid_url");
const INVALID_CHARACTERS: CodecError = CodecError::new(400, "http1.invalid_characters");
const CONTENT_LENGTH_AND_CHUNKED: CodecError = CodecError::new(400, "http1.content_length_and_chunked_not_allowed");
const INVALID_TRANSFER_ENCODING: CodecError = CodecError::new(501, "http1.invalid_transfer_encoding");
const INVALID_CONTENT_LENGTH: CodecError = CodecError::new(400, "http1.content_length_not_allowed");

/// Parsing options from the connection manager's config.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `max_request_headers_kb` in bytes: a larger head is answered 431.
    pub max_head_bytes: usize,
    /// `common_http_protocol_options.max_headers_count`.
    pub max_headers: usize,
    pub accept_http_10: bool,
    pub default_host_for_http_10: Option<HeaderValue>,
}

/// Room left in a parsed head's map for the headers the proxy adds.
const ADDED_HEADERS: usize = 8;

/// Where a name or value lies in a message head: (offset, length).
pub(crate) type Span = (usize, usize);

/// Where `s`, a slice of `base`, lies in it.
pub(crate) fn span_in(base: &[u8], s: &[u8]) -> Span {
    (s.as_ptr() as usize - base.as_ptr() as usize, s.len())
}

/// Records where each parsed header's name and value lie in `base` (the buffer the parser
/// borrowed), so that the head can be frozen afterwards and the values share it.
/// Filled in place: returned by value, the inline array would be copied out.
pub(crate) fn header_spans(base: &[u8], headers: &[httparse::Header<'_>], out: &mut Spans) {
    out.extend(headers.iter().map(|h| (span_in(base, h.name.as_bytes()), span_in(base, h.value))));
}

/// Header positions of one head; inline up to a typical head's count (no zeroed array of the
/// maximum size per message).
pub(crate) type Spans = smallvec::SmallVec<[(Span, Span); 32]>;

/// Room for httparse's parsed headers, left uninitialised (a zeroed array of the maximum
/// count, 4 KiB, was most of a small head's parse).
pub(crate) fn uninit_headers<const N: usize>() -> [MaybeUninit<httparse::Header<'static>>; N] {
    [const { MaybeUninit::uninit() }; N]
}

/// Which part of a header [`shared_header_map`] refused.
pub(crate) enum BadHeader {
    Name,
    Value,
}

/// The header map of a frozen head, its values sharing `head` (no allocation per value).
///
/// The map has room for the headers a proxy adds (`x-forwarded-*`, `x-request-id`,
/// `x-envoy-*`, `server`, ...): growing it rehashes every entry, about a thousand instructions,
/// and each message grew once.
pub(crate) fn shared_header_map(head: &Bytes, spans: &[(Span, Span)]) -> Result<HeaderMap, BadHeader> {
    let mut map = HeaderMap::with_capacity(spans.len() + ADDED_HEADERS);
    for &((name_at, name_len), (value_at, value_len)) in spans {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len]).map_err(|_| BadHeader::Name)?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len)).map_err(|_| BadHeader::Value)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Parses a request head from the start of `buf`, removing it. `Ok(None)`: more bytes needed.
pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Head>, CodecError> {
    let mut stack = uninit_headers::<STACK_HEADERS>();
    let mut heap: Vec<MaybeUninit<httparse::Header<'_>>>;
    let headers: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap = std::iter::repeat_with(MaybeUninit::uninit).take(limits.max_headers).collect();
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head_bytes { Err(HEADERS_TOO_LARGE) } else { Ok(None) };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(TOO_MANY_HEADERS),
        Err(httparse::Error::Version) => {
            // Envoy answers a well-formed but unsupported version 426, anything else 400.
            return Err(if has_http_version_token(buf) { UPGRADE_REQUIRED } else { BAD_REQUEST });
        }
        Err(httparse::Error::Token | httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(if buf[..].contains(&0) { INVALID_CHARACTERS } else { BAD_REQUEST });
        }
        Err(_) => return Err(BAD_REQUEST),
    };
    if len > limits.max_head_bytes {
        return Err(HEADERS_TOO_LARGE);
    }
    let version = match req.version {
        Some(1) => Version::HTTP_11,
        Some(0) if limits.accept_http_10 => Version::HTTP_10,
        _ => return Err(UPGRADE_REQUIRED),
    };
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| BAD_REQUEST)?;
    // Offsets into the head, so that the path and the header values can share one frozen copy.
    let (path_at, path_len) = span_in(buf, req.path.unwrap_or("").as_bytes());
    let mut spans = Spans::new();
    header_spans(buf, req.headers, &mut spans);
    let head: Bytes = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_at..path_at + path_len)).map_err(|_| INVALID_URL)?;
    let mut map = shared_header_map(&head, &spans).map_err(|e| match e {
        BadHeader::Name => BAD_REQUEST,
        BadHeader::Value => INVALID_CHARACTERS,
    })?;
    let framing = framing(&map)?;
    let conn_has = |token: &str| {
        map.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let keep_alive = if version == Version::HTTP_11 { !conn_has("close") } else { conn_has("keep-alive") };
    let mut expect_continue = false;
    if version == Version::HTTP_11 {
        if let Some(v) = map.get(header::EXPECT) {
            if v.as_bytes().eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            }
        }
    }
    if version == Version::HTTP_10 && !map.contains_key(header::HOST) {
        if let Some(h) = &limits.default_host_for_http_10 {
            map.insert(header::HOST, h.clone());
        }
    }
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = map;
    Ok(Some(Head { parts, framing, keep_alive, expect_continue }))
}

/// RFC 9112 §6.3: Transfer-Encoding wins over Content-Length; Envoy refuses a request that has
/// both, and any transfer coding other than `chunked` (501).
fn framing(h: &HeaderMap) -> Result<Framing, CodecError> {
    let mut te = h.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if te.peek().is_some() {
        if h.contains_key(header::CONTENT_LENGTH) {
            return Err(CONTENT_LENGTH_AND_CHUNKED);
        }
        let mut chunked = false;
        for v in te {
            for coding in v.to_str().map_err(|_| INVALID_TRANSFER_ENCODING)?.split(',') {
                if !coding.trim().eq_ignore_ascii_case("chunked") || chunked {
                    return Err(INVALID_TRANSFER_ENCODING);
                }
                chunked = true;
            }
        }
        return Ok(Framing::Chunked);
    }
    let mut len: Option<u64> = None;
    for v in h.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().map_err(|_| INVALID_CONTENT_LENGTH)?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD_REQUEST);
            }
            let n: u64 = part.parse().map_err(|_| BAD_REQUEST)?;
            if len.is_some_and(|l| l != n) {
                return Err(BAD_REQUEST);
            }
            len = Some(n);
        }
    }
    Ok(match len {
        Some(0) | None => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

/// Whether the request line ends in a well-formed `HTTP/<digit>.<digit>` token.
fn has_http_version_token(buf: &[u8]) -> bool {
    let end = buf.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(buf.len());
    let line = &buf[..end];
    let token = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    token.len() == 8
        && token.starts_with(b"HTTP/")
        && token[5].is_ascii_digit()
        && token[6] == b'.'
        && token[7].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_head_bytes: 1024, max_headers: 100, accept_http_10: false, default_host_for_http_10: None }
    }

    fn p(b: &[u8]) -> Result<Option<Head>, CodecError> {
        parse(&mut BytesMut::from(b), &limits())
    }

    #[test]
    fn parses_a_request_and_leaves_the_rest() {
        let mut b = BytesMut::from(&b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET"[..]);
        let h = parse(&mut b, &limits()).unwrap().unwrap();
        assert_eq!(h.parts.method, Method::POST);
        assert_eq!(h.parts.uri, "/a?b");
        assert_eq!(h.parts.headers["host"], "x");
        assert_eq!(h.framing, Framing::Length(3));
        assert!(h.keep_alive);
        assert_eq!(&b[..], b"abcGET");
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_431() {
        assert!(p(b"GET / HTTP/1.1\r\nhost: x\r\n").unwrap().is_none());
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(2000));
        assert_eq!(p(big.as_bytes()).err().map(|e| e.status), Some(431));
    }

    #[test]
    fn refusals_match_envoy() {
        assert_eq!(p(b"THIS IS NOT HTTP\r\n\r\n").err().map(|e| e.status), Some(400));
        assert_eq!(p(b"GET / HTTP/9.9\r\nhost: x\r\n\r\n").err().map(|e| e.status), Some(426));
        assert_eq!(p(b"GET / HTTP/1.0\r\n\r\n").err().map(|e| e.status), Some(426));
        assert_eq!(p(b"GET / HTTP/1.1\r\nbad header: v\r\n\r\n").err().map(|e| e.status), Some(400));
        let both = b"POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(p(both).err().map(|e| e.status), Some(400));
        assert_eq!(p(b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n").err().map(|e| e.status), Some(501));
        assert_eq!(p(b"POST / HTTP/1.1\r\ncontent-length: 1, 2\r\n\r\n").err().map(|e| e.status), Some(400));
    }

    #[test]
    fn http10_when_accepted() {
        let mut l = limits();
        l.accept_http_10 = true;
        l.default_host_for_http_10 = Some(HeaderValue::from_static("dflt"));
        let h = parse(&mut BytesMut::from(&b"GET / HTTP/1.0\r\n\r\n"[..]), &l).unwrap().unwrap();
        assert_eq!(h.parts.version, Version::HTTP_10);
        assert!(!h.keep_alive);
        assert_eq!(h.parts.headers["host"], "dflt");
    }

    #[test]
    fn expect_continue_and_close() {
        let h = p(b"PUT / HTTP/1.1\r\nexpect: 100-Continue\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue && !h.keep_alive);
        assert_eq!(h.framing, Framing::Chunked);
    }
}
