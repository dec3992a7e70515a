//! HTTP/2 to upstreams through the `h2` crate directly.
//!
//! hyper's HTTP/2 client puts three hops between a request and its stream: a channel to the
//! connection's task, a task spawned per request that waits for the response, and a oneshot
//! back to the caller. Here the request's own task opens the stream on the shared connection
//! handle and reads the response itself; the connection's task only does the I/O. A request
//! body, when there is one, is pumped by a task of its own (as hyper does), so that it keeps
//! flowing while the response streams back (gRPC bidirectional calls).
//!
//! What hyper did on the way that Legate relies on is done here: connection-specific headers
//! are dropped (HTTP/2 forbids them), `content-length` is set from an exactly sized body, flow
//! control capacity is handed back as response data is read, and a body that fails resets the
//! stream with INTERNAL_ERROR.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use hyper::body::{Body, Frame, SizeHint};

use super::http_pool::{PooledIo, SendError};
use crate::config::http::Http2Options;
use crate::filter::http::body::{BoxError, ReqBody};

/// A handle on one upstream HTTP/2 connection, shared by every request to the host.
#[derive(Clone)]
pub(crate) struct H2Sender {
    tx: h2::client::SendRequest<Bytes>,
    /// Set when the connection's task ends (closed by either side or failed).
    closed: Arc<AtomicBool>,
}

impl H2Sender {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// Handshakes on `io` with the cluster's `http2_protocol_options` and spawns the connection's
/// task.
pub(crate) async fn open(io: PooledIo, o: &Http2Options) -> Result<H2Sender, SendError> {
    let mut b = h2::client::Builder::new();
    b.initial_window_size(o.initial_stream_window_size)
        .initial_connection_window_size(o.initial_connection_window_size)
        .max_concurrent_streams(o.max_concurrent_streams)
        // hyper's client settings, kept: no server push, 1 MiB of queued data per stream.
        .enable_push(false)
        .max_send_buffer_size(1024 * 1024);
    if let Some(t) = o.hpack_table_size {
        b.header_table_size(t);
    }
    let (tx, connection) = b.handshake::<_, Bytes>(io).await.map_err(reset_error)?;
    let closed = Arc::new(AtomicBool::new(false));
    let done = closed.clone();
    tokio::spawn(crate::clock::scoped(async move {
        if let Err(e) = connection.await {
            tracing::debug!(target: "router", "upstream HTTP/2 connection ended: {e}");
        }
        done.store(true, Ordering::Relaxed);
    }));
    Ok(H2Sender { tx, closed })
}

/// Sends `req` as a new stream and waits for the response headers.
pub(crate) async fn send(sender: H2Sender, req: Request<ReqBody>) -> Result<Response<H2Body>, SendError> {
    // Waits while the connection is at the server's SETTINGS_MAX_CONCURRENT_STREAMS.
    let mut tx = sender.tx.ready().await.map_err(reset_error)?;
    let (parts, body) = req.into_parts();
    let mut head = Request::from_parts(parts, ());
    prepare_head(&mut head, &body);
    let eos = body.is_end_stream();
    let (response, stream) = tx.send_request(head, eos).map_err(reset_error)?;
    if !eos {
        tokio::spawn(crate::clock::scoped(pipe_body(body, stream)));
    }
    let response = response.await.map_err(reset_error)?;
    let (parts, recv) = response.into_parts();
    let length = content_length(&parts.headers).or_else(|| recv.is_end_stream().then_some(0));
    Ok(Response::from_parts(parts, H2Body { recv, length, data_done: false, done: false }))
}

/// A body of known size gets its `content-length`, except a bodiless GET/HEAD/DELETE/CONNECT
/// (hyper's rule). Connection-specific headers, which HTTP/2 forbids (RFC 9113 §8.2.2), are
/// already gone: the router strips them from every request it sends (`strip_hop_by_hop`).
fn prepare_head(head: &mut Request<()>, body: &ReqBody) {
    if let Some(len) = body.size_hint().exact() {
        let payload = !matches!(*head.method(), Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT);
        if (len != 0 || payload) && !head.headers().contains_key(header::CONTENT_LENGTH) {
            head.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
}

fn content_length(h: &http::HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The request body onto the stream, as hyper's client pumps it: wait for some send capacity,
/// hand over each chunk, trailers at the end, an empty END_STREAM DATA frame if the body just
/// ends; stop when the server resets the stream; reset it with INTERNAL_ERROR when the body
/// fails (the downstream went away mid-body, a filter refused it).
async fn pipe_body(mut body: ReqBody, mut tx: h2::SendStream<Bytes>) {
    let r: Result<(), h2::Error> = poll_fn(|cx| pipe_step(&mut body, &mut tx, cx)).await;
    if let Err(e) = r {
        tracing::debug!(target: "router", "upstream HTTP/2 request body: {e}");
    }
}

fn pipe_step(body: &mut ReqBody, tx: &mut h2::SendStream<Bytes>, cx: &mut Context<'_>) -> Poll<Result<(), h2::Error>> {
    loop {
        // At least one byte of window before pulling more from the downstream.
        tx.reserve_capacity(1);
        if tx.capacity() == 0 {
            loop {
                match ready!(tx.poll_capacity(cx)) {
                    Some(Ok(0)) => {}
                    Some(Ok(_)) => break,
                    Some(Err(e)) => return Poll::Ready(Err(e)),
                    None => return Poll::Ready(Ok(())),
                }
            }
        } else if let Poll::Ready(r) = tx.poll_reset(cx) {
            return Poll::Ready(r.map(|_| ()));
        }
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let eos = body.is_end_stream();
                    tx.send_data(data, eos)?;
                    if eos {
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        tx.reserve_capacity(0);
                        tx.send_trailers(trailers)?;
                        return Poll::Ready(Ok(()));
                    }
                }
            },
            Some(Err(e)) => {
                tracing::debug!(target: "router", "request body failed, resetting the upstream stream: {e}");
                tx.send_reset(h2::Reason::INTERNAL_ERROR);
                return Poll::Ready(Ok(()));
            }
            None => return Poll::Ready(tx.send_data(Bytes::new(), true)),
        }
    }
}

/// A response body read from an upstream HTTP/2 stream.
pub struct H2Body {
    recv: h2::RecvStream,
    /// From `content-length` (or 0 when the headers ended the stream), as hyper sizes it.
    length: Option<u64>,
    data_done: bool,
    done: bool,
}

impl Body for H2Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    // The window opens again as soon as the bytes are ours: the downstream's
                    // own flow control (or socket) is what slows a fast upstream down.
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => this.data_done = true,
            }
        }
        let r = ready!(this.recv.poll_trailers(cx));
        this.done = true;
        match r {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.recv.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.length.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// Envoy's reset reasons for an HTTP/2 failure before response headers.
fn reset_error(e: h2::Error) -> SendError {
    let reason = match e.reason() {
        Some(h2::Reason::REFUSED_STREAM) => "remote refused stream reset",
        Some(_) => "remote reset",
        None => "connection termination",
    };
    SendError::Reset { reason, detail: e.to_string() }
}
