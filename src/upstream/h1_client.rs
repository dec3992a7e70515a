//! The upstream HTTP/1.1 client: a pooled connection driven by the request's own task.
//!
//! hyper's client runs a task per connection and hands each request to it through a channel
//! (one task hop per request and per body chunk). Here the request's task writes the request
//! and reads the response itself: [`send`] writes the head and as much of the body as it can
//! while it waits for the response head, and the response body ([`H1Response`]) keeps writing
//! the rest of the request body while it reads (an upstream may answer before the whole request
//! is in, e.g. an echo). When the response has been read to its end and the exchange left the
//! connection clean, the body puts the connection back into its host's pool. An idle pooled
//! connection holds no buffer: reads go through a per-thread scratch buffer.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncWrite;

use super::http_pool::{HostPool, PooledIo, SendError};
use crate::filter::http::body::{BoxError, ReqBody};
use crate::filter::http::h1::body::Decoder;
use crate::filter::http::h1::conn::{poll_fill, ReadMode};
use crate::filter::http::h1::parse::{header_spans, shared_header_map, uninit_headers, BadHeader, Framing, Spans};

/// Large enough that a response head and a 64 KiB body usually come in one read.
const SCRATCH_SIZE: usize = 256 * 1024;
/// Most response headers accepted (Envoy's default `max_headers_count`).
const MAX_HEADERS: usize = 100;
/// Largest response head accepted (Envoy's default `max_response_headers_kb`: 60).
const MAX_HEAD: usize = 60 * 1024;
/// Request body bytes gathered before a write.
const WRITE_BATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH_SIZE]);
}

/// A pooled HTTP/1.1 connection.
pub struct H1Conn {
    io: PooledIo,
    rbuf: BytesMut,
    eof: bool,
    mode: ReadMode,
    /// Has carried a request before (a failure before any response byte may be the upstream's
    /// keep-alive close racing our request).
    pub reused: bool,
}

impl H1Conn {
    pub(crate) fn new(io: PooledIo) -> H1Conn {
        H1Conn { io, rbuf: BytesMut::new(), eof: false, mode: ReadMode::default(), reused: false }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_fill(&SCRATCH, &mut self.io, &mut self.rbuf, &mut self.eof, &mut self.mode, cx)
    }

    /// Whether an idle connection is still usable: nothing to read (no EOF, no stray bytes).
    pub async fn still_open(&mut self) -> bool {
        poll_fn(|cx| Poll::Ready(matches!(self.poll_fill(cx), Poll::Pending))).await
    }
}

/// The request side of an exchange: encoded bytes not yet written and the body still to send.
struct Writer {
    pending: BytesMut,
    body: Option<ReqBody>,
    chunked: bool,
    /// The request has been written completely.
    done: bool,
    failed: bool,
}

impl Writer {
    /// Writes what it can; `Ready` once the whole request is out (or writing failed).
    fn poll(&mut self, io: &mut PooledIo, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            while !self.pending.is_empty() {
                match Pin::new(&mut *io).poll_write(cx, &self.pending) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        self.fail();
                        return Poll::Ready(());
                    }
                    Poll::Ready(Ok(n)) => self.pending.advance(n),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.done || self.failed {
                if self.pending.capacity() > 0 {
                    self.pending = BytesMut::new();
                }
                return Poll::Ready(());
            }
            let Some(body) = self.body.as_mut() else {
                self.done = true;
                continue;
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    if self.chunked {
                        self.pending.put_slice(b"0\r\n\r\n");
                    }
                    self.body = None;
                    self.done = true;
                }
                Poll::Ready(Some(Err(_))) => {
                    // The downstream body failed: the upstream cannot be told cleanly.
                    self.fail();
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            if self.chunked {
                                self.pending.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
                            }
                            self.pending.put_slice(&data);
                            if self.chunked {
                                self.pending.put_slice(b"\r\n");
                            }
                        }
                    }
                    if self.pending.len() < WRITE_BATCH {
                        // Gather more before writing when the body has it ready.
                        continue;
                    }
                }
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.body = None;
        self.pending = BytesMut::new();
    }
}

/// The outcome of [`send`]: on failure, a request that can go out again on a fresh connection.
pub type SendResult = Result<Response<H1Response>, (SendError, Option<Resend>)>;

/// Sends `req` on `conn`; on success the response body owns the connection.
pub(crate) async fn send(conn: H1Conn, req: Request<ReqBody>, pool: Arc<HostPool>) -> SendResult {
    let (parts, body) = req.into_parts();
    let mut head = BytesMut::with_capacity(256 + parts.headers.len() * 48);
    let chunked = encode_request_head(&mut head, &parts, &body);
    exchange(conn, head, body, chunked, parts.method == Method::HEAD, pool).await
}

/// Sends a request kept by a failed [`send`] again.
pub(crate) async fn resend(conn: H1Conn, r: Resend, pool: Arc<HostPool>) -> SendResult {
    let body = match r.body {
        Some(b) => ReqBody::Full(Some(b)),
        None => ReqBody::Empty,
    };
    exchange(conn, BytesMut::from(&r.head[..]), body, false, r.head_only, pool).await
}

async fn exchange(
    mut conn: H1Conn,
    head: BytesMut,
    body: ReqBody,
    chunked: bool,
    head_only: bool,
    pool: Arc<HostPool>,
) -> SendResult {
    // What a retry on a fresh connection needs when this one turns out dead before answering.
    let resend = match &body {
        _ if !conn.reused => None,
        ReqBody::Empty => Some(Resend { head: head.clone().freeze(), body: None, head_only }),
        ReqBody::Full(b) => Some(Resend { head: head.clone().freeze(), body: b.clone(), head_only }),
        _ => None,
    };
    let mut w = Writer { pending: head, body: Some(body), chunked, done: false, failed: false };
    let reused = conn.reused;
    conn.io.get_mut().set_busy(true);
    let got = poll_fn(|cx| {
        let _ = w.poll(&mut conn.io, cx);
        loop {
            match parse_response_head(&mut conn.rbuf) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(Some(h)) if h.0.as_u16() >= 100 && h.0.as_u16() < 200 && h.0.as_u16() != 101 => {
                    // Interim responses (100 Continue) are not passed on.
                    continue;
                }
                Ok(Some(h)) => return Poll::Ready(Ok(h)),
                Ok(None) => {}
            }
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(SendError::Reset {
                        reason: "connection termination",
                        detail: "upstream closed before the response".into(),
                    }))
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(SendError::Reset {
                        reason: "connection termination",
                        detail: e.to_string(),
                    }))
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    let (status, headers, version) = match got {
        Ok(h) => h,
        Err(e) => {
            let untouched = reused
                && conn.rbuf.is_empty()
                && matches!(e, SendError::Reset { reason: "connection termination", .. });
            return Err((e, if untouched { resend } else { None }));
        }
    };
    let framing = if head_only || status == 204 || status == 304 {
        Some(Framing::None)
    } else if headers.contains_key(header::TRANSFER_ENCODING) {
        // RFC 9112 §6.3: a transfer coding other than a final chunked means read to the close.
        let last_chunked = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        last_chunked.then_some(Framing::Chunked)
    } else if let Some(v) = headers.get(header::CONTENT_LENGTH) {
        match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(Framing::Length(n)),
            None => {
                return Err((
                    SendError::Reset { reason: "protocol error", detail: "invalid content-length".into() },
                    None,
                ))
            }
        }
    } else {
        None
    };
    let keep_alive = framing.is_some() && keep_alive(&headers, version);
    let mut parts = Response::new(()).into_parts().0;
    parts.status = status;
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    let exact = match framing {
        Some(Framing::Length(n)) => Some(n),
        Some(Framing::None) => Some(0),
        _ => None,
    };
    let mut body = H1Response {
        conn: Some(conn),
        writer: w,
        decoder: framing.map(Decoder::new),
        keep_alive,
        pool,
        ended: false,
        exact,
    };
    body.finish_if_done();
    Ok(Response::from_parts(parts, body))
}

/// A request that never got a byte back from a reused connection, ready to go out again.
pub struct Resend {
    head: Bytes,
    body: Option<Bytes>,
    head_only: bool,
}

/// Encodes the request head; returns whether the body goes chunked.
fn encode_request_head(w: &mut BytesMut, parts: &http::request::Parts, body: &ReqBody) -> bool {
    let mut chunked = false;
    w.put_slice(parts.method.as_str().as_bytes());
    w.put_u8(b' ');
    w.put_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    w.put_slice(b" HTTP/1.1\r\n");
    let h = &parts.headers;
    for (name, value) in h {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        w.put_slice(name.as_str().as_bytes());
        w.put_slice(b": ");
        w.put_slice(value.as_bytes());
        w.put_slice(b"\r\n");
    }
    if !h.contains_key(header::CONTENT_LENGTH) {
        if body.is_end_stream() {
            // RFC 9110 §8.6: a request with content semantics says it has none.
            if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
                w.put_slice(b"content-length: 0\r\n");
            }
        } else if let Some(n) = body.size_hint().exact() {
            w.put_slice(format!("content-length: {n}\r\n").as_bytes());
        } else {
            w.put_slice(b"transfer-encoding: chunked\r\n");
            chunked = true;
        }
    }
    w.put_slice(b"\r\n");
    chunked
}

type ResponseHead = (StatusCode, HeaderMap, Version);

/// A response head from the start of `buf` (removed); `Ok(None)` when more bytes are needed.
fn parse_response_head(buf: &mut BytesMut) -> Result<Option<ResponseHead>, SendError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let protocol_error = |detail: &str| SendError::Reset { reason: "protocol error", detail: detail.to_string() };
    let mut headers = uninit_headers::<MAX_HEADERS>();
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(protocol_error("response head too large")),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(protocol_error(&e.to_string())),
    };
    let status = StatusCode::from_u16(resp.code.unwrap_or(0)).map_err(|_| protocol_error("invalid status"))?;
    let version = if resp.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    // The values share one frozen copy of the head: positions first, while httparse borrows it.
    let mut spans = Spans::new();
    header_spans(buf, resp.headers, &mut spans);
    let head = buf.split_to(len).freeze();
    let map = shared_header_map(&head, &spans).map_err(|e| match e {
        BadHeader::Name => protocol_error("invalid header name"),
        BadHeader::Value => protocol_error("invalid header value"),
    })?;
    Ok(Some((status, map, version)))
}

fn keep_alive(h: &HeaderMap, v: Version) -> bool {
    let has = |t: &str| {
        h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t)))
    };
    if v == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

/// The body of an upstream HTTP/1.1 response; owns the connection until the body has been
/// read, then returns it to the pool.
pub struct H1Response {
    conn: Option<H1Conn>,
    writer: Writer,
    /// `None`: delimited by the connection's close.
    decoder: Option<Decoder>,
    keep_alive: bool,
    pool: Arc<HostPool>,
    ended: bool,
    exact: Option<u64>,
}

impl H1Response {
    /// The body is complete: give the connection back if the exchange left it clean.
    fn finish_if_done(&mut self) {
        if self.ended || !self.decoder.as_ref().is_some_and(Decoder::is_done) {
            return;
        }
        self.ended = true;
        let Some(mut conn) = self.conn.take() else { return };
        conn.io.get_mut().set_busy(false);
        // The request must be fully out (an early answer leaves it half written).
        if !self.writer.done {
            if let Some(w) = futures_noop_poll(&mut self.writer, &mut conn) {
                if !w {
                    return;
                }
            }
        }
        if self.keep_alive && self.writer.done && !self.writer.failed && conn.rbuf.is_empty() && !conn.eof {
            conn.rbuf = BytesMut::new();
            conn.reused = true;
            self.pool.put_idle(conn);
        }
    }
}

/// Tries to finish writing the request without a task context to wake (a noop waker): the
/// request is usually all out already; if not, the connection is not reused.
fn futures_noop_poll(w: &mut Writer, conn: &mut H1Conn) -> Option<bool> {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    match w.poll(&mut conn.io, &mut cx) {
        Poll::Ready(()) => Some(w.done && !w.failed),
        Poll::Pending => Some(false),
    }
}

impl Body for H1Response {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if this.conn.is_none() {
            return Poll::Ready(None);
        }
        if !this.writer.done && !this.writer.failed {
            if let Some(conn) = this.conn.as_mut() {
                let _ = this.writer.poll(&mut conn.io, cx);
            }
        }
        loop {
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            let piece = match this.decoder.as_mut() {
                Some(d) => match d.decode(&mut conn.rbuf) {
                    Ok(p) => p,
                    Err(_) => {
                        this.conn = None;
                        return Poll::Ready(Some(Err("malformed upstream chunked body".into())));
                    }
                },
                None => (!conn.rbuf.is_empty()).then(|| conn.rbuf.split().freeze()),
            };
            if let Some(data) = piece {
                this.finish_if_done();
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.decoder.as_ref().is_some_and(Decoder::is_done) {
                this.finish_if_done();
                return Poll::Ready(None);
            }
            let Some(conn) = this.conn.as_mut() else { return Poll::Ready(None) };
            match conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    this.conn = None;
                    if this.decoder.is_none() {
                        this.ended = true;
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err("upstream connection closed mid-body".into())));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn response_heads_parse_and_wait_for_more() {
        let mut b = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx: y\r\n\r\nhi"[..]);
        let (status, h, v) = parse_response_head(&mut b).unwrap().unwrap();
        assert_eq!((status.as_u16(), v), (200, Version::HTTP_11));
        assert_eq!(h["x"], "y");
        assert_eq!(&b[..], b"hi");
        assert!(parse_response_head(&mut BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..])).unwrap().is_none());
        assert!(parse_response_head(&mut BytesMut::from(&b"nonsense\r\n\r\n"[..])).is_err());
        let big = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD + 1));
        assert!(parse_response_head(&mut BytesMut::from(big.as_bytes())).is_err());
    }

    #[test]
    fn request_heads_carry_the_body_framing() {
        let mut req = Request::new(ReqBody::Empty);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = "/a?b".parse().unwrap();
        req.headers_mut().insert(header::HOST, HeaderValue::from_static("h"));
        req.headers_mut().insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let (parts, body) = req.into_parts();
        let mut w = BytesMut::new();
        assert!(!encode_request_head(&mut w, &parts, &body));
        assert_eq!(&w[..], b"POST /a?b HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n");
        let mut w = BytesMut::new();
        let full = ReqBody::Full(Some(Bytes::from_static(b"abc")));
        assert!(!encode_request_head(&mut w, &parts, &full));
        assert!(w.ends_with(b"content-length: 3\r\n\r\n"));
    }

    #[test]
    fn keep_alive_by_version() {
        let mut h = HeaderMap::new();
        assert!(keep_alive(&h, Version::HTTP_11));
        assert!(!keep_alive(&h, Version::HTTP_10));
        h.insert(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        assert!(keep_alive(&h, Version::HTTP_10));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        assert!(!keep_alive(&h, Version::HTTP_11));
    }
}
