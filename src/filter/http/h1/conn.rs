//! One HTTP/1.x downstream connection: read a request head, run the request (the connection
//! manager's `handle`) while feeding it the request body, write the response, repeat.
//!
//! One request at a time: bytes of a pipelined next request stay in the read buffer until the
//! current response is written, so responses go out in request order. The read buffer exists
//! only while a request is being read; an idle connection owns no buffer.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::LocalKey;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::body::{Decoder, Slot, Want};
use super::parse::{self, CodecError, Framing, Limits};
use crate::access_log::ResponseFlags;
use crate::filter::http::body::RequestBody;
use crate::filter::http::conn_manager::{ConnInfo, HttpConnectionManager};
use crate::filter::http::response::RespBody;

/// Bytes read from the socket per read.
const SCRATCH_SIZE: usize = 64 * 1024;

/// Response bytes gathered before a write.
const WRITE_BATCH: usize = 64 * 1024;

/// After a response, at most this much of a request body nobody read is drained to keep the
/// connection; beyond it (or past [`DRAIN_WAIT`]) the connection closes.
const DRAIN_LIMIT: usize = 256 * 1024;
const DRAIN_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH_SIZE]);
}

/// A read of at least this much switches a connection to reading straight into its own buffer.
const BIG_READ: usize = 16 * 1024;

/// Small reads in a row that switch it back to the shared scratch buffer.
const SMALL_READS_BACK: u8 = 4;

/// How a connection reads: small messages through the per-thread scratch buffer (the
/// connection holds no buffer of its own between messages, and a few hundred bytes are copied
/// once), large bodies straight into the connection's buffer (no copy; the body's chunks are
/// handed on as pieces of that buffer). A connection switches after a big read and back after
/// a few small ones in a row, so a keep-alive connection carrying large responses reads each
/// of them without a copy.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReadMode {
    direct: bool,
    small: u8,
}

impl ReadMode {
    fn saw(&mut self, n: usize) {
        if n >= BIG_READ {
            *self = ReadMode { direct: true, small: 0 };
        } else if self.direct {
            self.small += 1;
            if self.small >= SMALL_READS_BACK {
                *self = ReadMode::default();
            }
        }
    }
}

/// Reads once from `io` and appends what came to `rbuf` (see [`ReadMode`]). `Ok(0)` is EOF: it
/// sets `eof`, and later calls return `Ok(0)` without reading. Shared by the server codec and
/// the upstream client.
pub(crate) fn poll_fill<R: AsyncRead + Unpin>(
    scratch: &'static LocalKey<RefCell<Vec<u8>>>,
    io: &mut R,
    rbuf: &mut BytesMut,
    eof: &mut bool,
    mode: &mut ReadMode,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if *eof {
        return Poll::Ready(Ok(0));
    }
    if mode.direct {
        // Room for a whole scratch-sized read, so a large message takes as few reads as it
        // would through the scratch buffer (a no-op while the buffer has that room).
        rbuf.reserve(scratch.with(|s| s.borrow().len()));
        let r = tokio_util::io::poll_read_buf(Pin::new(io), cx, rbuf);
        if let Poll::Ready(Ok(n)) = r {
            if n == 0 {
                *eof = true;
            }
            mode.saw(n);
        }
        return r;
    }
    scratch.with(|s| {
        let mut s = s.borrow_mut();
        let mut rb = ReadBuf::new(&mut s[..]);
        match Pin::new(io).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    *eof = true;
                } else {
                    rbuf.extend_from_slice(rb.filled());
                }
                mode.saw(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// How the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed, or a response asked for the close.
    Done,
    /// A request could not be parsed (`downstream_cx_protocol_error`).
    ProtocolError,
}

struct Conn<IO> {
    io: IO,
    rbuf: BytesMut,
    eof: bool,
    mode: ReadMode,
    /// Draining after the idle timeout or the maximum duration (Envoy's drain sequence): the
    /// next response says `connection: close`.
    closing: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    /// Reads once and appends to the read buffer (see [`ReadMode`]).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_fill(&SCRATCH, &mut self.io, &mut self.rbuf, &mut self.eof, &mut self.mode, cx)
    }

    /// Moves the request body from the read buffer to its slot while the slot has room.
    fn feed(&mut self, cx: &mut Context<'_>, slot: &Slot, dec: &mut Decoder) {
        loop {
            match slot.wants(cx) {
                Want::Stop | Want::Full => return,
                Want::More => {}
            }
            match dec.decode(&mut self.rbuf) {
                Ok(Some(chunk)) => slot.push(Some(chunk), dec.is_done()),
                Ok(None) if dec.is_done() => {
                    slot.push(None, true);
                    return;
                }
                Ok(None) => match self.poll_fill(cx) {
                    Poll::Ready(Ok(0)) => {
                        slot.fail("downstream closed mid-body");
                        return;
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(_)) => {
                        slot.fail("downstream read failed");
                        return;
                    }
                    Poll::Pending => return,
                },
                Err(_) => {
                    slot.fail("malformed chunked body");
                    return;
                }
            }
        }
    }

    /// Reads what the client sends while its request runs (a pipelined next request stays in
    /// the read buffer, up to `cap` bytes); `true` once the client has closed or failed.
    fn watch_close(&mut self, cx: &mut Context<'_>, cap: usize) -> bool {
        while !self.eof && self.rbuf.len() < cap {
            match self.poll_fill(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return true,
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return false,
            }
        }
        false
    }

    async fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.io.write_all(b).await
    }

    /// Writes all of `b` (one vectored write per round when it holds separate chunks).
    async fn write_batch(&mut self, b: &mut Batch) -> io::Result<()> {
        if b.parts.is_empty() {
            self.io.write_all(&b.small).await?;
            b.small.clear();
            b.len = 0;
            return Ok(());
        }
        b.seal();
        while !b.parts.is_empty() {
            let n = poll_fn(|cx| {
                let mut slices = [io::IoSlice::new(&[]); MAX_IOV];
                let k = b.parts.len().min(MAX_IOV);
                for (slice, part) in slices.iter_mut().zip(b.parts.iter()) {
                    *slice = io::IoSlice::new(part);
                }
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..k])
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            b.consume(n);
        }
        b.len = 0;
        Ok(())
    }
}

/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 16;

/// Body chunks smaller than this are copied into the batch; larger ones are sent as they are.
const COPY_BELOW: usize = 4096;

/// A response's bytes on their way out: the head, chunk framing and small body pieces copied
/// together, body chunks of [`COPY_BELOW`] or more kept as the `Bytes` they arrived in (pieces
/// of the upstream connection's read buffer) and sent with the rest in one vectored write, so
/// a large body crosses the proxy without a copy in user space. Transports that take no
/// vectored writes get everything copied into one buffer, one send.
struct Batch {
    small: BytesMut,
    parts: std::collections::VecDeque<Bytes>,
    len: usize,
    vectored: bool,
}

impl Batch {
    fn new(small: BytesMut, vectored: bool) -> Batch {
        Batch { len: small.len(), small, parts: Default::default(), vectored }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn put(&mut self, b: &[u8]) {
        self.small.put_slice(b);
        self.len += b.len();
    }

    /// A chunk-size line (`<hex>\r\n`), written in place.
    fn put_chunk_size(&mut self, n: usize) {
        let before = self.small.len();
        let _ = std::fmt::Write::write_fmt(&mut self.small, format_args!("{n:x}\r\n"));
        self.len += self.small.len() - before;
    }

    fn put_data(&mut self, d: Bytes) {
        if !self.vectored || d.len() < COPY_BELOW {
            self.put(&d);
            return;
        }
        self.seal();
        self.len += d.len();
        self.parts.push_back(d);
    }

    /// Moves the copied bytes so far into the chunk list, keeping the order.
    fn seal(&mut self) {
        if !self.small.is_empty() {
            let done = self.small.split().freeze();
            self.parts.push_back(done);
        }
    }

    /// Drops the first `n` bytes written.
    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.parts.front_mut() else { return };
            if front.len() <= n {
                n -= front.len();
                self.parts.pop_front();
            } else {
                bytes::Buf::advance(front, n);
                n = 0;
            }
        }
    }
}

/// Serves HTTP/1.x on `io` until the connection ends.
pub async fn serve<IO>(hcm: &Arc<HttpConnectionManager>, info: &Arc<ConnInfo>, io: IO) -> End
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = Limits {
        max_head_bytes: hcm.max_request_headers_bytes,
        max_headers: hcm.max_headers_count as usize,
        accept_http_10: hcm.accept_http_10,
        default_host_for_http_10: hcm.default_host_for_http_10.clone(),
    };
    let mut c = Conn { io, rbuf: BytesMut::new(), eof: false, mode: ReadMode::default(), closing: false };
    let max_end = hcm.max_connection_duration.map(|d| crate::clock::tokio_now() + d);
    let mut between = std::pin::pin!(BetweenRequests::new(&info.cx.drain, max_end));
    let end = loop {
        // 1. The next request head.
        let head = match read_head(hcm, &mut c, &limits, between.as_mut()).await {
            Ok(Some(h)) => h,
            Ok(None) => break End::Done,
            Err(e) if e == parse::HEADER_TIMEOUT || e == parse::REQUEST_TIMEOUT => {
                // Envoy's `onRequestHeaderTimeout` / `onRequestTimeout` while the head is still
                // arriving: 408, then close.
                hcm.stats.downstream_rq_response_before_rq_complete.inc();
                hcm.stats.downstream_rq_rx_reset.inc();
                let body = if e == parse::HEADER_TIMEOUT {
                    hcm.stats.downstream_rq_header_timeout.inc();
                    "request header timeout"
                } else {
                    hcm.stats.downstream_rq_timeout.inc();
                    "request timeout"
                };
                let reply = hcm.reply_before_head(info, 408, body, ResponseFlags::default(), e.details);
                let _ = Box::pin(write_response(&mut c, reply, &Method::GET, Version::HTTP_11, true, None)).await;
                break End::Done;
            }
            Err(e) => {
                let reply = hcm.codec_error_reply(info, e.status, e.details);
                let _ = Box::pin(write_response(&mut c, reply, &Method::GET, Version::HTTP_11, true, None)).await;
                break End::ProtocolError;
            }
        };
        let parse::Head { mut parts, framing, keep_alive, expect_continue } = head;
        if expect_continue && !hcm.proxy_100_continue {
            // Envoy answers `100 Continue` itself and does not pass `Expect` on.
            parts.headers.remove(header::EXPECT);
            hcm.stats.downstream_rq_1xx.inc();
            if c.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
                break End::Done;
            }
        }
        let method = parts.method.clone();
        let version = parts.version;
        let mut dec = Decoder::new(framing);
        let (slot, body) = if dec.is_done() {
            (None, RequestBody::Empty)
        } else {
            let exact = match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            };
            let (slot, body) = Slot::new(exact);
            (Some(slot), RequestBody::H1(body))
        };
        let req = http::Request::from_parts(parts, body);
        // Boxed: the request's state exists only while it is in flight, so an idle connection
        // stays a few hundred bytes.
        let mut fut = Box::pin(hcm.clone().handle(info.clone(), req));
        // 2. Run the request to its response headers, feeding it the body meanwhile.
        let resp = poll_fn(|cx| {
            if let Some(s) = &slot {
                c.feed(cx, s, &mut dec);
            }
            // With the whole request in, keep reading (within bounds) so a client that closes
            // is noticed now, as Envoy does, not when the response is written.
            if slot.as_ref().is_none_or(|s| s.is_ended()) && c.watch_close(cx, limits.max_head_bytes) {
                return Poll::Ready(None);
            }
            fut.as_mut().poll(cx).map(Some)
        })
        .await;
        let Some(resp) = resp else {
            // Dropping the request ends the upstream attempt; the stream logs `DC`.
            info.client_gone.store(true, Ordering::Relaxed);
            drop(fut);
            break End::Done;
        };
        drop(fut);
        let closing =
            c.closing || info.cx.drain.is_cancelled() || max_end.is_some_and(|m| crate::clock::tokio_now() >= m);
        if closing && !c.closing {
            if info.cx.drain.is_cancelled() {
                hcm.stats.downstream_cx_drain_close.inc();
            } else {
                hcm.stats.downstream_cx_max_duration_reached.inc();
            }
        }
        // A response before the whole request arrived: Envoy counts it and closes the HTTP/1
        // connection after it (`connection: close`) rather than wait for the rest.
        let early = slot.as_ref().is_some_and(|s| !s.is_ended());
        if early {
            hcm.stats.downstream_rq_response_before_rq_complete.inc();
        }
        // 3. The response, still feeding the request body.
        let feed = slot.as_ref().map(|s| (s, &mut dec));
        // Boxed, as the other states a request passes through: the connection's future keeps
        // only what an idle keep-alive connection needs (it waits in `read_head`).
        let outcome =
            Box::pin(write_response(&mut c, resp, &method, version, !keep_alive || closing || early, feed)).await;
        let keep = match outcome {
            Ok(Written::KeepAlive) => true,
            Ok(Written::Close) | Err(_) => false,
            Ok(Written::Upgrade(on)) => {
                if let Ok(up) = on.await {
                    hcm.stats.downstream_cx_upgrades_total.inc();
                    hcm.stats.downstream_cx_upgrades_active.inc();
                    Box::pin(tunnel(&mut c, up)).await;
                    hcm.stats.downstream_cx_upgrades_active.dec();
                }
                break End::Done;
            }
        };
        // 4. A request body nobody read: drain a little of it to keep the connection.
        let mut body_ok = true;
        if let Some(s) = &slot {
            if !s.is_ended() {
                s.fail("response already sent");
                if early {
                    // Closed with the request unfinished: Envoy resets that stream.
                    hcm.stats.downstream_rq_rx_reset.inc();
                }
                body_ok = keep && Box::pin(drain(&mut c, &mut dec)).await;
            }
        }
        if !keep || !body_ok || c.eof {
            break End::Done;
        }
        if c.rbuf.is_empty() {
            // Free the buffer while idle.
            c.rbuf = BytesMut::new();
        }
    };
    // Best effort (TLS close_notify, FIN); a client that went away needs none.
    let _ = tokio::time::timeout(Duration::from_secs(1), c.io.shutdown()).await;
    end
}

pin_project_lite::pin_project! {
    /// What a keep-alive connection waits on between requests besides its socket: the idle
    /// timeout, the maximum duration and the server's drain. Made once per connection and kept
    /// across requests: a timer and a drain waiter made and dropped for every request cost four
    /// locked updates (tokio's timer wheel, the drain's waiter list) per request.
    struct BetweenRequests {
        // Lazy, as nginx's timers: armed once, and when it fires early (the connection was busy
        // since) re-armed for the real deadline, instead of moved on every request.
        #[pin]
        idle: Option<tokio::time::Sleep>,
        #[pin]
        max: Option<tokio::time::Sleep>,
        #[pin]
        drain: tokio_util::sync::WaitForCancellationFutureOwned,
    }
}

impl BetweenRequests {
    /// Nothing is registered until the first poll.
    fn new(drain: &tokio_util::sync::CancellationToken, max_end: Option<tokio::time::Instant>) -> Self {
        BetweenRequests {
            idle: None,
            max: max_end.map(tokio::time::sleep_until),
            drain: drain.clone().cancelled_owned(),
        }
    }
}

/// Which of the [`BetweenRequests`] waits ended.
enum BetweenEnd {
    Idle,
    MaxDuration,
    Drain,
}

/// Polls the waits of an idle connection: the drain always, the timers unless `timers` is off
/// (the drain window after one of them fired). The idle timer firing before `idle_at` (it was
/// armed for an earlier idle period) re-arms it for `idle_at` and keeps waiting.
fn poll_between(
    w: Pin<&mut BetweenRequests>,
    cx: &mut Context<'_>,
    idle_at: Option<tokio::time::Instant>,
    timers: bool,
) -> Poll<BetweenEnd> {
    let mut p = w.project();
    if p.drain.poll(cx).is_ready() {
        return Poll::Ready(BetweenEnd::Drain);
    }
    if !timers {
        return Poll::Pending;
    }
    if p.max.as_pin_mut().is_some_and(|s| s.poll(cx).is_ready()) {
        return Poll::Ready(BetweenEnd::MaxDuration);
    }
    if let Some(at) = idle_at {
        // Deadlines only move later (each idle period starts after the last), so an armed
        // timer is never late: at worst early, and re-armed below.
        if p.idle.as_mut().as_pin_mut().is_none() {
            p.idle.set(Some(tokio::time::sleep_until(at)));
        }
        while let Some(mut s) = p.idle.as_mut().as_pin_mut() {
            if s.as_mut().poll(cx).is_pending() {
                break;
            }
            if crate::clock::tokio_now() >= at {
                return Poll::Ready(BetweenEnd::Idle);
            }
            s.reset(at);
        }
    }
    Poll::Pending
}

/// Waits for and parses the next request head; `Ok(None)` when the connection should end
/// quietly (closed by the client, idle timeout, drain, maximum duration).
async fn read_head<IO: AsyncRead + AsyncWrite + Unpin>(
    hcm: &HttpConnectionManager,
    c: &mut Conn<IO>,
    limits: &Limits,
    mut between: Pin<&mut BetweenRequests>,
) -> Result<Option<parse::Head>, CodecError> {
    // `request_headers_timeout` (and `request_timeout`, whichever is shorter): from the first
    // byte of a request head until the head is complete, as Envoy's stream timers.
    let head_timeout = match (hcm.request_headers_timeout, hcm.request_timeout) {
        (Some(h), Some(r)) if r < h => Some((r, parse::REQUEST_TIMEOUT)),
        (Some(h), _) => Some((h, parse::HEADER_TIMEOUT)),
        (None, r) => r.map(|r| (r, parse::REQUEST_TIMEOUT)),
    };
    let mut head_deadline = None;
    let mut idle_at = None;
    // Set once the idle timeout or the maximum duration fired between requests: as Envoy's
    // drain sequence, the connection stays for `drain_timeout` more, and a request that comes
    // meanwhile is answered with `connection: close`.
    let mut drain_at: Option<tokio::time::Instant> = None;
    loop {
        if !c.rbuf.is_empty() {
            if let Some(h) = parse::parse(&mut c.rbuf, limits)? {
                return Ok(Some(h));
            }
        }
        if c.eof {
            // Part of a head and then EOF: nothing to answer.
            return Ok(None);
        }
        // Fast path: bytes already there.
        let mut cx_got = None;
        poll_fn(|cx| {
            cx_got = Some(c.poll_fill(cx));
            Poll::Ready(())
        })
        .await;
        match cx_got {
            Some(Poll::Ready(Ok(_))) => continue,
            Some(Poll::Ready(Err(_))) => return Ok(None),
            _ => {}
        }
        let between_requests = c.rbuf.is_empty();
        if between_requests {
            c.rbuf = BytesMut::new();
            // The idle period starts when the connection is first found with nothing to read.
            if idle_at.is_none() {
                idle_at = hcm.idle_timeout.map(|d| crate::clock::tokio_now() + d);
            }
        } else if head_deadline.is_none() {
            head_deadline = head_timeout.map(|(d, e)| (crate::clock::tokio_now() + d, e));
        }
        let head_sleep = async {
            match head_deadline {
                Some((d, e)) => {
                    tokio::time::sleep_until(d).await;
                    e
                }
                None => std::future::pending().await,
            }
        };
        let waits = poll_fn(|cx| poll_between(between.as_mut(), cx, idle_at, drain_at.is_none()));
        let drain_sleep = async {
            match drain_at {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = poll_fn(|cx| c.poll_fill(cx)) => {
                if r.is_err() {
                    return Ok(None);
                }
            }
            end = waits, if between_requests => {
                match end {
                    BetweenEnd::Drain => {
                        hcm.stats.downstream_cx_drain_close.inc();
                        return Ok(None);
                    }
                    BetweenEnd::Idle => hcm.stats.downstream_cx_idle_timeout.inc(),
                    BetweenEnd::MaxDuration => hcm.stats.downstream_cx_max_duration_reached.inc(),
                }
                c.closing = true;
                drain_at = Some(crate::clock::tokio_now() + hcm.drain_timeout);
            }
            _ = drain_sleep, if between_requests => return Ok(None),
            e = head_sleep => return Err(e),
        }
    }
}

/// Reads and drops the rest of a request body nobody read, within bounds.
async fn drain<IO: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<IO>, dec: &mut Decoder) -> bool {
    let mut drained = 0usize;
    let work = async {
        loop {
            match dec.decode(&mut c.rbuf) {
                Ok(Some(b)) => {
                    drained += b.len();
                    if drained > DRAIN_LIMIT {
                        return false;
                    }
                }
                Ok(None) if dec.is_done() => return true,
                Ok(None) => match poll_fn(|cx| c.poll_fill(cx)).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(DRAIN_WAIT, work).await.unwrap_or(false)
}

enum Written {
    KeepAlive,
    Close,
    /// `101 Switching Protocols` went out: the connection becomes a tunnel to the upstream.
    Upgrade(hyper::upgrade::OnUpgrade),
}

enum Out {
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 without a length: the close ends the body.
    UntilClose,
}

enum Step {
    Frame(Option<Result<hyper::body::Frame<Bytes>, crate::filter::http::body::BoxError>>),
    Flush,
}

/// Writes a response (head, body with its framing); `feed` keeps the request body moving.
async fn write_response<IO: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<IO>,
    resp: Response<RespBody>,
    method: &Method,
    version: Version,
    mut close: bool,
    mut feed: Option<(&Slot, &mut Decoder)>,
) -> io::Result<Written> {
    let (mut parts, mut body) = resp.into_parts();
    let code = parts.status.as_u16();
    let h = &mut parts.headers;
    // One pass over the names (pointer comparisons of standard names) instead of a hashed
    // lookup each for headers most responses do not carry.
    let (mut has_connection, mut has_te, mut has_date) = (false, false, false);
    for k in h.keys() {
        if k == header::CONNECTION {
            has_connection = true;
        } else if k == header::TRANSFER_ENCODING {
            has_te = true;
        } else if k == header::DATE {
            has_date = true;
        }
    }
    if has_connection && connection_has(h, "close") {
        close = true;
    }
    let upgrade = code == 101;
    let no_body = upgrade || *method == Method::HEAD || code == 204 || code == 304 || (100..200).contains(&code);
    // Framing headers the codec adds go last, as Envoy's codec writes them.
    let mut framing_header: Option<(&'static [u8], HeaderValue)> = None;
    // A response with a body gets the codec's own framing: the upstream's transfer-encoding goes.
    if has_te && !no_body {
        h.remove(header::TRANSFER_ENCODING);
    }
    let out = if no_body {
        Out::None
    } else if let Some(n) = content_length(h) {
        Out::Length(n)
    } else if body.is_end_stream() {
        framing_header = Some((b"content-length", HeaderValue::from(0)));
        Out::None
    } else if let Some(n) = body.size_hint().exact() {
        framing_header = Some((b"content-length", HeaderValue::from(n)));
        Out::Length(n)
    } else if version == Version::HTTP_10 {
        close = true;
        Out::UntilClose
    } else {
        framing_header = Some((b"transfer-encoding", HeaderValue::from_static("chunked")));
        Out::Chunked
    };
    if close && !upgrade && !(has_connection && connection_has(h, "close")) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    } else if !close && version == Version::HTTP_10 {
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    if !has_date {
        h.insert(header::DATE, date());
    }
    let mut w = BytesMut::with_capacity(256 + h.len() * 32);
    encode_head(&mut w, version, parts.status, h, framing_header);
    if upgrade {
        c.write_all(&w).await?;
        c.io.flush().await?;
        drop(body);
        let mut r = Response::from_parts(parts, ());
        return Ok(Written::Upgrade(hyper::upgrade::on(&mut r)));
    }
    let mut w = Batch::new(w, c.io.is_write_vectored());
    let chunked = matches!(out, Out::Chunked);
    let mut sent: u64 = 0;
    if !matches!(out, Out::None) {
        loop {
            let step = poll_fn(|cx| {
                if let Some((slot, dec)) = feed.as_mut() {
                    c.feed(cx, slot, dec);
                }
                match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(f) => Poll::Ready(Step::Frame(f)),
                    Poll::Pending if !w.is_empty() => Poll::Ready(Step::Flush),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match step {
                Step::Flush => c.write_batch(&mut w).await?,
                Step::Frame(None) => {
                    if chunked {
                        w.put(b"0\r\n\r\n");
                    }
                    break;
                }
                Step::Frame(Some(Err(_))) => {
                    // A body that fails mid-way: what was written stands, the rest is cut by
                    // closing the connection (no terminating chunk), as hyper and Envoy do.
                    if !w.is_empty() {
                        let _ = c.write_batch(&mut w).await;
                    }
                    return Ok(Written::Close);
                }
                Step::Frame(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if data.is_empty() {
                            continue;
                        }
                        let mut data = data;
                        if let Out::Length(n) = out {
                            // Never more than announced.
                            let room = n.saturating_sub(sent) as usize;
                            if data.len() > room {
                                data.truncate(room);
                                close = true;
                            }
                        }
                        sent += data.len() as u64;
                        if chunked {
                            w.put_chunk_size(data.len());
                        }
                        // Into the batch: one send for head and body (see `Batch`).
                        w.put_data(data);
                        if chunked {
                            w.put(b"\r\n");
                        }
                    }
                    // Response trailers have no HTTP/1.1 form Legate sends: dropped.
                }
            }
            if w.len >= WRITE_BATCH {
                c.write_batch(&mut w).await?;
            }
        }
        if let Out::Length(n) = out {
            if sent < n {
                close = true;
            }
        }
    }
    drop(body);
    if !w.is_empty() {
        c.write_batch(&mut w).await?;
    }
    c.io.flush().await?;
    Ok(if close { Written::Close } else { Written::KeepAlive })
}

fn encode_head(
    w: &mut BytesMut,
    version: Version,
    status: StatusCode,
    h: &HeaderMap,
    framing: Option<(&'static [u8], HeaderValue)>,
) {
    // Envoy answers in the request's version.
    w.put_slice(if version == Version::HTTP_10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    w.put_slice(status.as_str().as_bytes());
    w.put_u8(b' ');
    w.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    w.put_slice(b"\r\n");
    for (name, value) in h {
        w.put_slice(name.as_str().as_bytes());
        w.put_slice(b": ");
        w.put_slice(value.as_bytes());
        w.put_slice(b"\r\n");
    }
    if let Some((name, value)) = framing {
        w.put_slice(name);
        w.put_slice(b": ");
        w.put_slice(value.as_bytes());
        w.put_slice(b"\r\n");
    }
    w.put_slice(b"\r\n");
}

fn connection_has(h: &HeaderMap, token: &str) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The `date` header, formatted once a second per thread.
fn date() -> HeaderValue {
    thread_local! {
        static DATE: RefCell<(u64, HeaderValue)> = const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    // The connection task's clock reading of this poll (`crate::clock`), not a clock read more.
    let now = crate::clock::wall(crate::clock::now()).duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != now {
            let s = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(v) = HeaderValue::from_str(&s) {
                *d = (now, v);
            }
        }
        d.1.clone()
    })
}

/// Joins the upgraded downstream connection with the upstream's (WebSocket) until either closes.
async fn tunnel<IO: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<IO>, up: hyper::upgrade::Upgraded) {
    let mut up = TokioIo::new(up);
    if !c.rbuf.is_empty() {
        let early = std::mem::take(&mut c.rbuf);
        if up.write_all(&early).await.is_err() {
            return;
        }
    }
    let _ = tokio::io::copy_bidirectional(&mut c.io, &mut up).await;
}
