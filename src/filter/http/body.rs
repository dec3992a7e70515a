//! Request and response bodies as they cross the proxy.
//!
//! Bodies stream. A request body is kept only when a retry or a mirror may need it again
//! ([`Tee`]): each attempt reads it through its own cursor, the first reader pulls from the
//! downstream and appends, later ones replay. Past the buffer limit the copy is dropped and
//! the request can no longer be retried (Envoy answers 507 if a retry is then needed).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use parking_lot::Mutex;

use super::filters::SharedFilters;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as the downstream codec delivers it.
pub enum RequestBody {
    /// No body (HTTP/1.x without a length or with length 0).
    Empty,
    /// HTTP/2 (hyper).
    Hyper(Incoming),
    /// HTTP/1.x (Legate's codec).
    H1(super::h1::body::H1Body),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            RequestBody::H1(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Hyper(b) => b.is_end_stream(),
            RequestBody::H1(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Hyper(b) => b.size_hint(),
            RequestBody::H1(b) => b.size_hint(),
        }
    }
}

/// How far the downstream has sent the request body: bytes read (`%BYTES_RECEIVED%`, and
/// activity for the stream idle timer) and whether it is complete (`request_timeout` stops then).
#[derive(Default)]
pub struct BodyProgress {
    pub bytes: AtomicU64,
    pub done: AtomicBool,
}

/// The request body as read from the downstream: every data frame is shown to the stream's
/// HTTP filters (`on_request_data`) once, however many attempts replay it.
pub struct DownstreamBody {
    body: RequestBody,
    filters: SharedFilters,
    /// Kept when an access log or a timer needs it.
    progress: Option<Arc<BodyProgress>>,
}

impl DownstreamBody {
    pub fn new(body: RequestBody, filters: SharedFilters, progress: Option<Arc<BodyProgress>>) -> DownstreamBody {
        DownstreamBody { body, filters, progress }
    }
}

impl Body for DownstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(d) = frame.data_ref() {
                this.filters.for_each(|f| f.on_request_data(d));
            }
        }
        if let Some(p) = &this.progress {
            let ended = match &polled {
                Poll::Ready(None) => true,
                Poll::Ready(Some(Ok(f))) => {
                    if let Some(d) = f.data_ref() {
                        p.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                    }
                    f.is_trailers() || this.body.is_end_stream()
                }
                _ => false,
            };
            if ended {
                p.done.store(true, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body going upstream.
pub enum ReqBody {
    Empty,
    Full(Option<Bytes>),
    Stream(DownstreamBody),
    Replay(Replay),
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Stream(s) => Pin::new(s).poll_frame(cx),
            ReqBody::Replay(r) => r.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Stream(s) => s.is_end_stream(),
            ReqBody::Replay(r) => r.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Stream(s) => s.size_hint(),
            ReqBody::Replay(r) => r.size_hint(),
        }
    }
}

struct TeeState {
    source: Option<DownstreamBody>,
    frames: Vec<Frame<Bytes>>,
    buffered: usize,
    /// The copy outgrew the limit: only the attempt that is reading can go on.
    overflowed: bool,
    ended: bool,
    size_hint: SizeHint,
}

/// A request body shared by the attempts of one request.
#[derive(Clone)]
pub struct Tee {
    state: Arc<Mutex<TeeState>>,
    limit: usize,
}

impl Tee {
    pub fn new(source: DownstreamBody, limit: usize) -> Tee {
        let size_hint = source.size_hint();
        let ended = source.is_end_stream();
        Tee {
            state: Arc::new(Mutex::new(TeeState {
                source: Some(source),
                frames: Vec::new(),
                buffered: 0,
                overflowed: false,
                ended,
                size_hint,
            })),
            limit,
        }
    }

    /// A body reading from the start; `None` once the copy overflowed and part of the body is gone.
    pub fn reader(&self) -> Option<Replay> {
        let s = self.state.lock();
        if s.overflowed {
            return None;
        }
        Some(Replay { tee: self.clone(), next: 0 })
    }

    /// Whether the whole body has been read from the downstream.
    pub fn complete(&self) -> bool {
        self.state.lock().ended
    }

    /// The whole body, when it has been read and kept.
    pub fn full_body(&self) -> Option<Bytes> {
        let s = self.state.lock();
        if !s.ended || s.overflowed {
            return None;
        }
        let mut out = Vec::with_capacity(s.buffered);
        for f in &s.frames {
            if let Some(d) = f.data_ref() {
                out.extend_from_slice(d);
            }
        }
        Some(Bytes::from(out))
    }
}

/// One attempt's cursor over a [`Tee`].
pub struct Replay {
    tee: Tee,
    next: usize,
}

impl Replay {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut s = self.tee.state.lock();
        if self.next < s.frames.len() {
            let f = clone_frame(&s.frames[self.next]);
            self.next += 1;
            return Poll::Ready(Some(Ok(f)));
        }
        if s.overflowed && self.next != usize::MAX {
            // Another cursor went past us and dropped the copy: this attempt cannot replay.
            return Poll::Ready(Some(Err("request body no longer buffered".into())));
        }
        if s.ended {
            return Poll::Ready(None);
        }
        let Some(src) = s.source.as_mut() else { return Poll::Ready(None) };
        match Pin::new(src).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                s.ended = true;
                s.source = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                s.ended = true;
                s.source = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if !s.overflowed && s.buffered + len <= self.tee.limit {
                    s.buffered += len;
                    s.frames.push(clone_frame(&frame));
                    self.next = s.frames.len();
                } else {
                    s.overflowed = true;
                    s.frames.clear();
                    // This cursor owns the stream from here on.
                    self.next = usize::MAX;
                }
                if s.source.as_ref().is_some_and(Body::is_end_stream) {
                    s.ended = true;
                    s.source = None;
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = self.tee.state.lock();
        s.ended && (self.next == usize::MAX || self.next >= s.frames.len())
    }

    fn size_hint(&self) -> SizeHint {
        self.tee.state.lock().size_hint
    }
}

fn clone_frame(f: &Frame<Bytes>) -> Frame<Bytes> {
    if let Some(d) = f.data_ref() {
        Frame::data(d.clone())
    } else if let Some(t) = f.trailers_ref() {
        Frame::trailers(t.clone())
    } else {
        Frame::trailers(HeaderMap::new())
    }
}
