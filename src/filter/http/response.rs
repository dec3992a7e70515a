//! The downstream response body and the end-of-stream bookkeeping carried with it.
//!
//! A request's stats, its access-log line, the HTTP filters' completion hooks and the return
//! of its upstream HTTP/1.1 connection to the pool all happen when the response body ends
//! (or the stream is dropped), in [`StreamTail`]'s `Drop`.

use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Response};
use hyper::body::{Body, Frame, SizeHint};

use super::body::BoxError;
use super::conn_manager::{http_to_grpc_status, protocol_name, status, ConnInfo, HttpConnectionManager, Matched};
use super::filters::{SharedFilters, StreamEnd};
use super::local_reply::LocalReply;
use super::route_table::HeaderVars;
use crate::access_log::{ResponseFlags, StreamInfo};
use crate::upstream::cluster::Cluster;
use crate::upstream::http_pool::UpstreamBody;

// Not boxed: a response body exists only while its request is in flight.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Local(Option<Bytes>),
    Upstream(UpstreamBody),
}

/// The body of a response sent downstream.
pub struct RespBody {
    inner: Inner,
    tail: Option<Box<StreamTail>>,
    /// The route's timeout runs until the upstream response is complete (Envoy's global
    /// timeout), and so does the stream's maximum duration: past either, mid-body, the
    /// downstream stream is reset.
    deadline: Option<(tokio::time::Instant, Deadline)>,
    /// The stream idle timeout, and when the body last moved.
    idle: Option<(Duration, tokio::time::Instant)>,
    /// Armed only once the body has to wait (a body that flows never touches the timer wheel).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Which limit a response body is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// The route timeout: `cluster.<c>.upstream_rq_timeout`, flag `UT`.
    Route,
    /// `max_stream_duration`: `http.<p>.downstream_rq_max_duration_reached`.
    MaxDuration,
    /// `stream_idle_timeout` (or the route's `idle_timeout`): no body for that long.
    Idle,
}

impl RespBody {
    pub fn upstream(body: UpstreamBody, tail: Box<StreamTail>) -> RespBody {
        RespBody { inner: Inner::Upstream(body), tail: Some(tail), deadline: None, idle: None, timer: None }
    }

    /// Resets the stream when the upstream body stalls for `idle` (Envoy's stream idle timer),
    /// counted from `now`.
    pub fn idle_timeout(mut self, idle: Option<Duration>, now: tokio::time::Instant) -> RespBody {
        self.idle = idle.map(|d| (d, now));
        self
    }

    /// The next instant a limit expires and which one, if any.
    fn next_limit(&self) -> Option<(tokio::time::Instant, Deadline)> {
        let idle = self.idle.map(|(d, last)| (last + d, Deadline::Idle));
        match (self.deadline, idle) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Resets the stream if the upstream body has not ended by `deadline` (the route timeout).
    pub fn until(self, deadline: Option<tokio::time::Instant>) -> RespBody {
        self.limit(deadline, Deadline::Route)
    }

    /// Resets the stream if the upstream body has not ended by the stream's maximum duration.
    pub fn max_duration_at(self, at: Option<tokio::time::Instant>) -> RespBody {
        self.limit(at, Deadline::MaxDuration)
    }

    fn limit(mut self, at: Option<tokio::time::Instant>, kind: Deadline) -> RespBody {
        let Some(at) = at else { return self };
        if self.deadline.is_none_or(|(d, _)| at < d) {
            self.deadline = Some((at, kind));
        }
        self
    }

    /// Envoy's `onResponseTimeout` once the response has started: count the timeout, flag
    /// `UT`, and reset the downstream stream (an error from the body does that in hyper).
    fn timed_out(&mut self, kind: Deadline) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.deadline = None;
        self.idle = None;
        self.timer = None;
        if let Some(mut t) = self.tail.take() {
            match kind {
                Deadline::Route => {
                    t.flags.set(ResponseFlags::UT);
                    t.details = Some(Cow::Borrowed("response_timeout"));
                    if let Some(c) = &t.upstream_cluster {
                        c.stats.upstream_rq_timeout.inc();
                    }
                }
                Deadline::MaxDuration => {
                    t.details = Some(Cow::Borrowed("max_duration_timeout"));
                    t.hcm.stats.downstream_rq_max_duration_reached.inc();
                }
                Deadline::Idle => {
                    t.flags.set(ResponseFlags::SI);
                    t.details = Some(Cow::Borrowed("stream_idle_timeout"));
                    t.hcm.stats.downstream_rq_idle_timeout.inc();
                }
            }
        }
        Poll::Ready(Some(Err("upstream request timeout".into())))
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        // An empty body is never polled: it ended when the headers went out.
        if self.is_end_stream() {
            if let Some(t) = self.tail.as_mut() {
                t.ended = true;
            }
        }
    }
}

impl RespBody {
    pub fn local(body: Bytes, tail: Option<Box<StreamTail>>) -> RespBody {
        let data = if body.is_empty() { None } else { Some(body) };
        let mut b = RespBody { inner: Inner::Local(data), tail, deadline: None, idle: None, timer: None };
        b.end_if_done();
        b
    }

    fn end_if_done(&mut self) {
        if let (Inner::Local(None), Some(t)) = (&self.inner, self.tail.as_mut()) {
            t.ended = true;
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Local(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Inner::Upstream(s) => Pin::new(s).poll_frame(cx),
        };
        if polled.is_pending() {
            if let Some((at, kind)) = this.next_limit() {
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return this.timed_out(kind);
                }
            }
        } else if let Some((_, last)) = this.idle.as_mut() {
            *last = crate::clock::tokio_now();
        }
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = this.tail.as_mut() {
                    if let Some(d) = frame.data_ref() {
                        t.bytes_sent += d.len() as u64;
                        t.filters.for_each(|f| f.on_response_data(d));
                    } else if let Some(tr) = frame.trailers_ref() {
                        t.filters.for_each(|f| f.on_response_trailers(tr));
                        if !t.hcm.access_logs.is_empty() {
                            t.response_trailers = header_pairs(tr);
                        }
                    }
                }
                if this.is_end_stream() {
                    if let Some(t) = this.tail.as_mut() {
                        t.ended = true;
                    }
                    this.tail = None;
                }
            }
            Poll::Ready(None) => {
                if let Some(t) = this.tail.as_mut() {
                    t.ended = true;
                }
                this.tail = None;
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(t) = this.tail.as_mut() {
                    t.upstream_reset = true;
                }
                this.tail = None;
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Local(b) => b.is_none(),
            Inner::Upstream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Local(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Upstream(s) => s.size_hint(),
        }
    }
}

/// Everything settled when a request's response ends.
pub struct StreamTail {
    pub hcm: Arc<HttpConnectionManager>,
    pub conn: Arc<ConnInfo>,
    pub started: Instant,
    pub start_time: SystemTime,
    pub protocol: &'static str,
    pub request_id: Option<HeaderValue>,
    pub is_grpc: bool,
    pub route_name: Option<String>,
    pub trusted_address: Option<IpAddr>,
    pub flags: ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%` (a static string on the common paths: no allocation).
    pub details: Option<Cow<'static, str>>,
    pub response_code: Option<u16>,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_local: Option<SocketAddr>,
    pub upstream_cluster: Option<Arc<Cluster>>,
    pub upstream_failure: Option<String>,
    pub upstream_time: Option<Duration>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How much of the request body the downstream sent (when an access log or a timer needs it).
    pub received: Option<Arc<super::body::BodyProgress>>,
    pub filters: SharedFilters,
    /// The upstream request's `upstream_rq_active` share, held to the end of the response.
    pub active_rq: Option<crate::upstream::http_pool::ActiveRq>,
    pub ended: bool,
    pub upstream_reset: bool,
    pub local: bool,
    pub close_connection: bool,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub response_trailers: Vec<(String, String)>,
}

impl StreamTail {
    pub fn new(
        hcm: Arc<HttpConnectionManager>,
        conn: Arc<ConnInfo>,
        started: Instant,
        start_time: SystemTime,
        parts: &http::request::Parts,
    ) -> Box<StreamTail> {
        let request_headers = if hcm.access_logs.is_empty() { Vec::new() } else { request_pairs(parts) };
        Box::new(StreamTail {
            protocol: protocol_name(parts.version),
            hcm,
            conn,
            started,
            start_time,
            request_id: None,
            is_grpc: false,
            route_name: None,
            trusted_address: None,
            flags: ResponseFlags::default(),
            details: None,
            response_code: None,
            upstream_host: None,
            upstream_local: None,
            upstream_cluster: None,
            upstream_failure: None,
            upstream_time: None,
            bytes_sent: 0,
            bytes_received: 0,
            received: None,
            filters: SharedFilters::default(),
            active_rq: None,
            ended: false,
            upstream_reset: false,
            local: false,
            close_connection: false,
            request_headers,
            response_headers: Vec::new(),
            response_trailers: Vec::new(),
        })
    }

    /// Vars for `%...%` in header values.
    pub fn header_vars(&self) -> HeaderVars<'_> {
        HeaderVars {
            downstream_remote: self.conn.cx.downstream_remote,
            downstream_local: self.conn.cx.downstream_local,
            protocol: self.protocol,
            upstream_remote: self.upstream_host,
        }
    }

    /// Sends a local reply (Envoy's `sendLocalReply`).
    pub fn local_reply(self: Box<Self>, reply: LocalReply, matched: Matched<'_>) -> Response<RespBody> {
        let body = Bytes::copy_from_slice(reply.body.as_bytes());
        self.local_reply_raw(reply, matched, body)
    }

    /// A local reply whose body is given as bytes (direct responses may be binary).
    pub fn local_reply_raw(
        mut self: Box<Self>,
        reply: LocalReply,
        matched: Matched<'_>,
        body: Bytes,
    ) -> Response<RespBody> {
        self.local = true;
        self.flags.set(reply.flags);
        self.details = Some(reply.details.clone());
        let mut h = HeaderMap::new();
        let (code, body) = if self.is_grpc {
            let grpc = reply.grpc_status.unwrap_or_else(|| http_to_grpc_status(reply.status));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(grpc));
            if !reply.body.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&percent_encode_grpc(&reply.body)) {
                    h.insert("grpc-message", v);
                }
            }
            (200, Bytes::new())
        } else {
            // Envoy's order: content-length, then content-type.
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            if !body.is_empty() {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            (reply.status, body)
        };
        for (n, v) in reply.headers {
            h.insert(n, v);
        }
        self.finish_response_headers(&mut h, matched, None);
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status(code);
        parts.headers = h;
        self.response_code = Some(code);
        self.run_response_filters(&mut parts);
        Response::from_parts(parts, RespBody::local(body, Some(self)))
    }

    /// Route/vhost/route-config response header mutations, then Envoy's own response headers.
    pub fn finish_response_headers(
        &mut self,
        h: &mut HeaderMap,
        matched: Matched<'_>,
        weighted: Option<&super::route_table::WeightedCluster>,
    ) {
        let vars = self.header_vars();
        match matched {
            Some((vh, route)) => self.hcm.routes.finalize_response_headers(vh, route, weighted, h, &vars),
            None => self.hcm.routes.response_headers().apply(h, &vars),
        }
        self.hcm.decorate_response(h, self.request_id.as_ref());
        if self.close_connection && !self.conn.h2 {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if !self.hcm.access_logs.is_empty() {
            self.response_headers = header_pairs(h);
        }
    }

    pub fn run_response_filters(&mut self, parts: &mut http::response::Parts) {
        self.filters.for_each(|f| f.on_response_headers(parts));
    }
}

impl Drop for StreamTail {
    fn drop(&mut self) {
        let s = &self.hcm.stats;
        s.downstream_rq_active.dec();
        self.conn.active.fetch_sub(1, Ordering::Relaxed);
        let ls = &self.hcm.listener_stats;
        if let Some(code) = self.response_code {
            if let Some(c) = s.class(code) {
                c.inc();
            }
            if let Some(c) = ls.class(code) {
                c.inc();
            }
        }
        if self.ended {
            s.downstream_rq_completed.inc();
            ls.downstream_rq_completed.inc();
        } else if self.conn.client_gone.load(Ordering::Relaxed) && self.response_code.is_none() {
            // The client went away before any response: Envoy's downstream reset.
            s.downstream_rq_rx_reset.inc();
            self.flags.set(ResponseFlags::DC);
            if self.details.is_none() {
                self.details = Some(Cow::Borrowed("downstream_remote_disconnect"));
            }
        } else {
            s.downstream_rq_tx_reset.inc();
            if self.response_code.is_some() && !self.local {
                s.rq_reset_after_downstream_response_started.inc();
            }
            if self.upstream_reset {
                self.flags.set(ResponseFlags::UR);
            }
        }
        let elapsed = crate::clock::since(self.started);
        s.downstream_rq_time.record(elapsed.as_millis() as u64);
        if !self.filters.is_empty() {
            let cluster_name = self.upstream_cluster.as_ref().map(|c| c.name.clone());
            let end = StreamEnd {
                response_code: self.response_code,
                upstream_time: self.upstream_time,
                local_reply: self.local,
                cluster: cluster_name.as_deref(),
            };
            self.filters.for_each(|f| f.on_complete(&end));
        }
        if !self.hcm.access_logs.is_empty() {
            let info = self.stream_info(elapsed);
            for log in &self.hcm.access_logs {
                log.log(&info);
            }
        }
    }
}

impl StreamTail {
    fn stream_info(&mut self, elapsed: Duration) -> StreamInfo {
        let cx = &self.conn.cx;
        StreamInfo {
            start_time: self.start_time,
            duration: Some(elapsed),
            bytes_received: self.received.as_ref().map_or(self.bytes_received, |r| r.bytes.load(Ordering::Relaxed)),
            bytes_sent: self.bytes_sent,
            protocol: Some(self.protocol),
            response_code: self.response_code,
            response_code_details: self.details.as_ref().map(|d| d.to_string()),
            response_flags: self.flags,
            upstream_host: self.upstream_host,
            upstream_cluster: self.upstream_cluster.as_ref().map(|c| c.config.stat_name().to_string()),
            upstream_local_address: self.upstream_local,
            upstream_transport_failure_reason: self.upstream_failure.clone(),
            downstream_remote_address: Some(cx.downstream_remote),
            downstream_local_address: Some(cx.downstream_local),
            connection_id: cx.connection_id,
            route_name: self.route_name.clone(),
            requested_server_name: cx.requested_server_name.clone(),
            downstream_tls_version: cx.tls.as_ref().and_then(|t| t.version),
            downstream_tls_cipher: cx.tls.as_ref().and_then(|t| t.cipher),
            downstream_peer_subject: cx.tls.as_ref().and_then(|t| t.peer_subject.clone()),
            request_headers: std::mem::take(&mut self.request_headers),
            response_headers: std::mem::take(&mut self.response_headers),
            response_trailers: std::mem::take(&mut self.response_trailers),
        }
    }
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Request headers as Envoy's access log sees them, pseudo-headers included.
fn request_pairs(parts: &http::request::Parts) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(parts.headers.len() + 4);
    let authority = super::conn_manager::request_authority(parts);
    out.push((":authority".to_string(), authority.to_string()));
    out.push((":path".to_string(), parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string()));
    out.push((":method".to_string(), parts.method.as_str().to_string()));
    out.push((":scheme".to_string(), parts.uri.scheme_str().unwrap_or("http").to_string()));
    for (n, v) in &parts.headers {
        if n == header::HOST {
            continue;
        }
        out.push((n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()));
    }
    out
}

/// gRPC's percent-encoding of `grpc-message`.
fn percent_encode_grpc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
