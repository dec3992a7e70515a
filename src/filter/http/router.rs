//! `envoy.filters.http.router`: sends a routed request to its cluster and brings the response
//! back, with Envoy's timeouts, retries (and their stats), request mirroring, WebSocket
//! upgrades and local replies for upstream failures.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, Uri, Version};
use hyper::body::Body;

use super::body::RequestBody;

use super::body::{BodyProgress, DownstreamBody, ReqBody, Tee};
use super::conn_manager::{ConnInfo, HttpConnectionManager};
use super::local_reply::LocalReply;
use super::response::{RespBody, StreamTail};
use super::route_table::{ForwardAction, HostRewrite, RetryOn, Route, VirtualHost, WeightedCluster};
use crate::access_log::ResponseFlags;
use crate::upstream::cluster::Cluster;
use crate::upstream::http_pool::SendError;

static X_ENVOY_EXPECTED_RQ_TIMEOUT_MS: HeaderName = HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
static X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS: HeaderName = HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
static X_ENVOY_UPSTREAM_RQ_PER_TRY_TIMEOUT_MS: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-per-try-timeout-ms");
static X_ENVOY_UPSTREAM_RQ_TIMEOUT_ALT_RESPONSE: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-alt-response");
static X_ENVOY_MAX_RETRIES: HeaderName = HeaderName::from_static("x-envoy-max-retries");
static X_ENVOY_RETRY_ON: HeaderName = HeaderName::from_static("x-envoy-retry-on");
static X_ENVOY_RETRY_GRPC_ON: HeaderName = HeaderName::from_static("x-envoy-retry-grpc-on");
static X_ENVOY_RETRIABLE_STATUS_CODES: HeaderName = HeaderName::from_static("x-envoy-retriable-status-codes");
static X_ENVOY_ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
static X_ENVOY_RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_DEADLINE_EXCEEDED: u32 = 4;
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Envoy's default route timeout (its header value is preformatted).
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// The retry policy in force for one request (route or vhost policy plus request overrides).
struct Retries {
    on: RetryOn,
    max: u32,
    codes: Vec<u16>,
    base: Duration,
    max_interval: Duration,
    per_try_timeout: Option<Duration>,
}

/// One attempt's failure, before response headers.
enum Failure {
    Send(SendError),
    PerTryTimeout,
    /// `stream_idle_timeout` (or the route's `idle_timeout`) passed with no response.
    StreamIdle,
    /// The connection manager's `request_timeout` passed before the downstream finished
    /// sending the request (and before any response).
    RequestTimeout,
}

/// Sends the request upstream; returns the response to send downstream.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    hcm: &Arc<HttpConnectionManager>,
    conn: &Arc<ConnInfo>,
    mut parts: http::request::Parts,
    body: RequestBody,
    vh: &VirtualHost,
    route: &Route,
    fwd: &ForwardAction,
    weighted: Option<&WeightedCluster>,
    cluster: Arc<Cluster>,
    upgrade: bool,
    mut tail: Box<StreamTail>,
    authority: &str,
    path: &str,
) -> Response<RespBody> {
    tail.upstream_cluster = Some(cluster.clone());
    if hcm.always_set_request_id_in_response {
        tail.request_id = parts.headers.get(&super::conn_manager::X_REQUEST_ID).cloned();
    }
    let h = &mut parts.headers;

    // Timeouts: the route's, or the request's override. A route with `max_stream_duration`
    // uses Envoy's "new timeouts": no route timeout, and the stream's maximum duration (the
    // capped `grpc-timeout`, else `max_stream_duration`) counted from the request's start.
    // Most requests carry no `x-envoy-*` header: one pass over the names spares the dozen
    // lookups (each hashing a name) that reading and removing the overrides would cost.
    let overrides = h.keys().any(|k| k.as_str().starts_with("x-envoy-"));
    let new_timeouts = fwd.uses_new_timeouts();
    let mut timeout = if new_timeouts { None } else { fwd.timeout };
    if let Some(ms) = overrides.then(|| header_u64(h, &X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS)).flatten() {
        timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let max_duration = if new_timeouts { stream_max_duration(fwd, h) } else { None };
    let max_duration_at = max_duration.map(|d| tokio::time::Instant::from_std(tail.started) + d);
    let alt_response = overrides && h.contains_key(&X_ENVOY_UPSTREAM_RQ_TIMEOUT_ALT_RESPONSE);
    let mut retries = retries_for(fwd, vh, h, overrides);
    if let Some(ms) = overrides.then(|| header_u64(h, &X_ENVOY_UPSTREAM_RQ_PER_TRY_TIMEOUT_MS)).flatten() {
        retries.per_try_timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if overrides {
        for n in [
            &X_ENVOY_UPSTREAM_RQ_TIMEOUT_MS,
            &X_ENVOY_UPSTREAM_RQ_PER_TRY_TIMEOUT_MS,
            &X_ENVOY_UPSTREAM_RQ_TIMEOUT_ALT_RESPONSE,
            &X_ENVOY_MAX_RETRIES,
            &X_ENVOY_RETRY_ON,
            &X_ENVOY_RETRY_GRPC_ON,
            &X_ENVOY_RETRIABLE_STATUS_CODES,
        ] {
            h.remove(n);
        }
    }
    if !hcm.suppress_envoy_headers {
        let expected = match (retries.per_try_timeout, timeout) {
            (Some(p), Some(t)) => Some(p.min(t)),
            (p, t) => p.or(t),
        };
        if let Some(e) = expected {
            let v = if e == DEFAULT_ROUTE_TIMEOUT {
                HeaderValue::from_static("15000")
            } else {
                HeaderValue::from(e.as_millis() as u64)
            };
            h.insert(X_ENVOY_EXPECTED_RQ_TIMEOUT_MS.clone(), v);
        }
    }
    let mut upstream_path = Cow::Borrowed(path);
    if let Some(new) = fwd.rewrite_path(route, path) {
        if let Ok(v) = HeaderValue::from_str(path) {
            if !hcm.suppress_envoy_headers {
                h.insert(X_ENVOY_ORIGINAL_PATH.clone(), v);
            }
        }
        upstream_path = Cow::Owned(new);
    }
    let mut upstream_authority = Cow::Borrowed(authority);
    match &fwd.host_rewrite {
        HostRewrite::None | HostRewrite::Auto => {}
        HostRewrite::Literal(v) => upstream_authority = Cow::Borrowed(v.to_str().unwrap_or(authority)),
        HostRewrite::Header(name) => {
            if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
                upstream_authority = Cow::Owned(v.to_string());
            }
        }
    }
    hcm.routes.finalize_request_headers(vh, route, weighted, h, &tail.header_vars());
    strip_hop_by_hop(h, upgrade);

    // The request body's progress: for %BYTES_RECEIVED%, for the stream idle timer (a body still
    // arriving is activity, as Envoy counts it) and for `request_timeout`, which runs from the
    // stream's start until the body has been read (Envoy: "until the last byte of the request is
    // sent upstream") and so never applies to a request without a body.
    if !hcm.access_logs.is_empty() || !body.is_end_stream() {
        tail.received = Some(Arc::default());
    }
    let request_deadline =
        hcm.request_timeout.filter(|_| !body.is_end_stream()).map(|t| tokio::time::Instant::from_std(tail.started) + t);
    let body = DownstreamBody::new(body, tail.filters.clone(), tail.received.clone());
    let ended = body.is_end_stream();
    let replayable = !upgrade && (retries.max > 0 || !fwd.mirrors.is_empty());
    let (tee, mut first_body) =
        if !ended && replayable { (Some(Tee::new(body, hcm.buffer_limit)), None) } else { (None, Some(body)) };

    let hash = if cluster.uses_hash() { request_hash(fwd, &parts, path, conn) } else { None };
    let h2 = cluster.http.uses_h2(conn.h2) && !upgrade;
    // One clock reading per event where several deadlines and durations start or end
    // together (a clock read is tens of nanoseconds, about a dozen per request otherwise).
    let started = crate::clock::now();
    let deadline = timeout.map(|t| tokio::time::Instant::from_std(started) + t);
    let mut attempt: u32 = 0;
    let mut retried = false;
    loop {
        attempt += 1;
        let Some(host) = cluster.choose_host(hash) else {
            cluster.stats.upstream_cx_none_healthy.inc();
            cluster.http_stats.charge(&cluster, 503);
            let reply = LocalReply::new(503, "no healthy upstream", ResponseFlags::UH, "no_healthy_upstream");
            return tail.local_reply(reply, Some((vh, route)));
        };
        tail.upstream_host = Some(host.address);
        let authority_now = match fwd.host_rewrite {
            HostRewrite::Auto if !host.hostname.is_empty() => host.hostname.as_str(),
            _ => &upstream_authority,
        };
        // The headers are kept for another try only when one can happen.
        let mut headers = if retries.max > 0 || !fwd.mirrors.is_empty() {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        if vh.include_request_attempt_count {
            headers.insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
        }
        let body = if ended {
            ReqBody::Empty
        } else if let Some(t) = &tee {
            match t.reader() {
                Some(r) => ReqBody::Replay(r),
                None => {
                    let reply = LocalReply::new(
                        507,
                        "exceeded request buffer limit while retrying upstream",
                        ResponseFlags::default(),
                        "request_payload_exceeded_retry_buffer_limit",
                    );
                    return tail.local_reply(reply, Some((vh, route)));
                }
            }
        } else {
            first_body.take().map_or(ReqBody::Empty, ReqBody::Stream)
        };
        let req = match build_request(&parts.method, authority_now, &upstream_path, headers, body, h2) {
            Some(r) => r,
            None => {
                let reply = LocalReply::new(400, "", ResponseFlags::default(), "invalid_url");
                return tail.local_reply(reply, Some((vh, route)));
            }
        };
        let attempt_started = if attempt == 1 { started } else { crate::clock::now() };
        let try_deadline = retries.per_try_timeout.map(|p| tokio::time::Instant::from_std(attempt_started) + p);
        let limit = [deadline, try_deadline, max_duration_at].into_iter().flatten().min();
        // The stream idle timer: with no response it fires like Envoy's (504/408 `stream timeout`).
        let idle_timeout = match fwd.idle_timeout {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => hcm.stream_idle_timeout,
        };
        // Boxed: the send future is a few KB, and moving it into `wait_for_response`'s
        // future and that into ours would copy it twice per request.
        let send = Box::pin(cluster.http.send(&cluster, &host, req, h2, upgrade));
        let timers = Timers {
            start: attempt_started,
            limit,
            idle: idle_timeout,
            request: request_deadline,
            progress: tail.received.as_deref(),
        };
        let outcome = wait_for_response(send, timers).await;
        let answered = crate::clock::now();
        let answered_t = tokio::time::Instant::from_std(answered);
        let global_expired = deadline.is_some_and(|d| answered_t >= d);
        if max_duration_at.is_some_and(|d| answered_t >= d) && !global_expired {
            return max_duration_reply(hcm, tail, vh, route);
        }
        match outcome {
            Ok(sent) => {
                let code = sent.response.status().as_u16();
                let retriable = retry_on_response(&retries, code, sent.response.headers());
                if retriable && attempt <= retries.max && !global_expired && can_replay(ended, &tee) {
                    cluster.http_stats.charge_retry(code);
                    // A bodiless answer already went back to the pool (HTTP/1.1).
                    drop(sent);
                    backoff(&cluster, &retries, attempt, deadline).await;
                    retried = true;
                    continue;
                }
                if retriable && attempt > retries.max && retries.max > 0 {
                    cluster.stats.upstream_rq_retry_limit_exceeded.inc();
                } else if retried && !retriable {
                    cluster.stats.upstream_rq_retry_success.inc();
                }
                cluster.http_stats.charge(&cluster, code);
                let service_time = answered.saturating_duration_since(attempt_started);
                tail.upstream_time = Some(service_time);
                tail.upstream_local = sent.upstream_local;
                tail.active_rq = Some(sent.active);
                tail.response_code = Some(code);
                tail.details = Some(Cow::Borrowed("via_upstream"));
                if let Some(t) = &tee {
                    start_mirrors(hcm, fwd, &parts, &upstream_authority, &upstream_path, t.full_body());
                } else if ended {
                    start_mirrors(hcm, fwd, &parts, &upstream_authority, &upstream_path, Some(bytes::Bytes::new()));
                }
                let (mut rp, rbody) = sent.response.into_parts();
                // The downstream hears its own protocol, whatever the upstream spoke.
                rp.version = if conn.h2 { Version::HTTP_2 } else { Version::HTTP_11 };
                if upgrade && code == 101 {
                    // The upstream's upgrade handle stays in the response's extensions: the
                    // downstream codec joins the two connections once the 101 is written.
                    rp.headers.remove(header::CONTENT_LENGTH);
                    tail.finish_response_headers(&mut rp.headers, Some((vh, route)), weighted);
                    tail.run_response_filters(&mut rp);
                    cluster
                        .http_stats
                        .upstream_rq_time
                        .record(answered.saturating_duration_since(started).as_millis() as u64);
                    return Response::from_parts(rp, RespBody::upstream(rbody, tail));
                }
                strip_hop_by_hop(&mut rp.headers, false);
                if !hcm.suppress_envoy_headers {
                    rp.headers.insert(
                        X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
                        HeaderValue::from(service_time.as_millis() as u64),
                    );
                }
                if vh.include_attempt_count_in_response {
                    rp.headers.insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(attempt));
                }
                tail.finish_response_headers(&mut rp.headers, Some((vh, route)), weighted);
                tail.run_response_filters(&mut rp);
                cluster
                    .http_stats
                    .upstream_rq_time
                    .record(answered.saturating_duration_since(started).as_millis() as u64);
                let body = RespBody::upstream(rbody, tail)
                    .until(deadline)
                    .max_duration_at(max_duration_at)
                    .idle_timeout(idle_timeout, answered_t);
                return Response::from_parts(rp, body);
            }
            Err(failure) => {
                let per_try = matches!(failure, Failure::PerTryTimeout) && !global_expired;
                if per_try {
                    cluster.stats.upstream_rq_per_try_timeout.inc();
                }
                if matches!(failure, Failure::StreamIdle) {
                    hcm.stats.downstream_rq_idle_timeout.inc();
                    // Envoy: 504 once the downstream request is complete, 408 while it is not.
                    let complete = ended || tee.as_ref().is_some_and(Tee::complete);
                    let code = if complete { 504 } else { 408 };
                    let reply = LocalReply::new(code, "stream timeout", ResponseFlags::SI, "stream_idle_timeout");
                    return tail.local_reply(reply, Some((vh, route)));
                }
                let retriable = match &failure {
                    Failure::StreamIdle | Failure::RequestTimeout => false,
                    Failure::PerTryTimeout => {
                        per_try
                            && (retries.on.contains(RetryOn::FIVE_XX)
                                || retries.on.contains(RetryOn::GATEWAY_ERROR)
                                || retries.on.contains(RetryOn::RESET))
                    }
                    Failure::Send(e) => retry_on_reset(&retries, e),
                };
                if retriable && attempt <= retries.max && !global_expired && can_replay(ended, &tee) {
                    if per_try {
                        cluster.http_stats.charge_retry(504);
                    } else {
                        cluster.http_stats.charge_retry(503);
                    }
                    backoff(&cluster, &retries, attempt, deadline).await;
                    retried = true;
                    continue;
                }
                if retriable && attempt > retries.max && retries.max > 0 {
                    cluster.stats.upstream_rq_retry_limit_exceeded.inc();
                }
                return failure_reply(hcm, &cluster, failure, global_expired, alt_response, retried, tail, vh, route);
            }
        }
    }
}

/// The deadlines an attempt waits for its response headers under.
struct Timers<'a> {
    /// When the attempt started (the idle timer's first arming).
    start: Instant,
    /// The route timeout, the per-try timeout or the stream's maximum duration, the earliest.
    limit: Option<tokio::time::Instant>,
    /// `stream_idle_timeout` (or the route's `idle_timeout`): re-armed while the request body
    /// is still arriving, as Envoy re-arms it on any activity of the stream.
    idle: Option<Duration>,
    /// The connection manager's `request_timeout`, while the body is not complete.
    request: Option<tokio::time::Instant>,
    /// The request body's progress (present whenever the request has a body).
    progress: Option<&'a BodyProgress>,
}

/// Waits for the upstream's response headers under `t`'s deadlines.
async fn wait_for_response<F, T>(mut send: Pin<Box<F>>, t: Timers<'_>) -> Result<T, Failure>
where
    F: std::future::Future<Output = Result<T, SendError>>,
{
    let body_done = || t.progress.is_none_or(|p| p.done.load(Ordering::Relaxed));
    let body_bytes = || t.progress.map_or(0, |p| p.bytes.load(Ordering::Relaxed));
    let mut idle_at = t.idle.map(|d| tokio::time::Instant::from_std(t.start) + d);
    let mut seen = body_bytes();
    loop {
        let request_at = t.request.filter(|_| !body_done());
        let Some(wake) = [t.limit, idle_at, request_at].into_iter().flatten().min() else {
            return send.await.map_err(Failure::Send);
        };
        if let Ok(r) = tokio::time::timeout_at(wake, send.as_mut()).await {
            return r.map_err(Failure::Send);
        }
        if t.limit == Some(wake) {
            return Err(Failure::PerTryTimeout);
        }
        if request_at == Some(wake) {
            if !body_done() {
                return Err(Failure::RequestTimeout);
            }
            // The body finished just in time: `request_at` is off from now on.
            continue;
        }
        // The idle timer: body bytes since it was armed count as activity.
        let now_seen = body_bytes();
        if now_seen == seen {
            return Err(Failure::StreamIdle);
        }
        seen = now_seen;
        idle_at = t.idle.map(|d| crate::clock::tokio_now() + d);
    }
}

#[allow(clippy::too_many_arguments)]
fn failure_reply(
    hcm: &Arc<HttpConnectionManager>,
    cluster: &Arc<Cluster>,
    failure: Failure,
    global_expired: bool,
    alt_response: bool,
    retried: bool,
    mut tail: Box<StreamTail>,
    vh: &VirtualHost,
    route: &Route,
) -> Response<RespBody> {
    if let Failure::RequestTimeout = failure {
        // Envoy's `onRequestTimeout`: 408 while the request is still arriving.
        hcm.stats.downstream_rq_timeout.inc();
        let reply = LocalReply::new(408, "request timeout", ResponseFlags::default(), "request_overall_timeout");
        return tail.local_reply(reply, Some((vh, route)));
    }
    // A send error after the deadline is reported as the timeout, as Envoy does.
    let e = match failure {
        Failure::Send(e) if !global_expired => e,
        _ => {
            if global_expired {
                cluster.stats.upstream_rq_timeout.inc();
            }
            if alt_response {
                cluster.http_stats.charge(cluster, 204);
                let reply = LocalReply::new(204, "", ResponseFlags::UT, "response_timeout");
                return tail.local_reply(reply, Some((vh, route)));
            }
            cluster.http_stats.charge(cluster, 504);
            let reply = LocalReply::new(504, "upstream request timeout", ResponseFlags::UT, "response_timeout");
            return tail.local_reply(reply, Some((vh, route)));
        }
    };
    let (reason, transport, flag, code) = match &e {
        SendError::Connect(c) => {
            ("remote connection failure", Some(c.transport_failure_reason()), ResponseFlags::UF, 503)
        }
        SendError::Reset { reason, .. } => {
            let flag = if *reason == "connection termination" { ResponseFlags::UC } else { ResponseFlags::UR };
            let code = if *reason == "protocol error" { 502 } else { 503 };
            (*reason, None, flag, code)
        }
    };
    if let SendError::Connect(crate::upstream::cluster::ConnectError::Timeout) = &e {
        // Envoy reports a connect timeout as a connection failure with this transport reason.
    }
    tail.upstream_failure = transport.clone();
    cluster.http_stats.charge(cluster, code);
    let mut body = String::from("upstream connect error or disconnect/reset before headers. ");
    if retried {
        body.push_str("retried and the latest ");
    }
    body.push_str("reset reason: ");
    body.push_str(reason);
    // Envoy 1.40 leaves the transport failure reason out of the body; it is in the details
    // and in %UPSTREAM_TRANSPORT_FAILURE_REASON%.
    let mut details = format!("upstream_reset_before_response_started{{{}", reason.replace(' ', "_"));
    if let Some(t) = &transport {
        details.push(',');
        details.push_str(&t.replace(' ', "_"));
    }
    details.push('}');
    let reply = LocalReply::new(code, body, flag, details);
    tail.local_reply(reply, Some((vh, route)))
}

/// Envoy's `onStreamMaxDurationReached` before the response started: 408 `downstream duration
/// timeout` (gRPC: DEADLINE_EXCEEDED), details `max_duration_timeout`.
fn max_duration_reply(
    hcm: &Arc<HttpConnectionManager>,
    tail: Box<StreamTail>,
    vh: &VirtualHost,
    route: &Route,
) -> Response<RespBody> {
    hcm.stats.downstream_rq_max_duration_reached.inc();
    let mut reply =
        LocalReply::new(408, "downstream duration timeout", ResponseFlags::default(), "max_duration_timeout");
    reply.grpc_status = Some(GRPC_DEADLINE_EXCEEDED);
    tail.local_reply(reply, Some((vh, route)))
}

/// Envoy's `ActiveStream::refreshDurationTimeout`: the capped (and offset) `grpc-timeout` when
/// the route has `grpc_timeout_header_max` and the request the header, else the route's
/// `max_stream_duration`; zero means none.
fn stream_max_duration(fwd: &ForwardAction, h: &HeaderMap) -> Option<Duration> {
    let header = h.get(&GRPC_TIMEOUT).and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
    let d = match (header, fwd.grpc_timeout_header_max) {
        (Some(mut t), Some(max)) => {
            if !max.is_zero() && t > max {
                t = max;
            }
            if let Some(off) = fwd.grpc_timeout_header_offset.filter(|_| !t.is_zero()) {
                t = if off < t { t - off } else { Duration::from_millis(1) };
            }
            t
        }
        _ => fwd.max_stream_duration?,
    };
    (!d.is_zero()).then_some(d)
}

fn can_replay(ended: bool, tee: &Option<Tee>) -> bool {
    ended || tee.as_ref().is_some_and(|t| t.reader().is_some())
}

/// `overrides`: the request has `x-envoy-*` headers (else they are not looked up).
fn retries_for(fwd: &ForwardAction, vh: &VirtualHost, h: &HeaderMap, overrides: bool) -> Retries {
    let policy = fwd.retry_policy.as_ref().or(vh.retry_policy.as_ref());
    let mut r = match policy {
        Some(p) => Retries {
            on: p.retry_on,
            max: p.num_retries,
            codes: p.retriable_status_codes.clone(),
            base: p.base_interval,
            max_interval: p.max_interval,
            per_try_timeout: p.per_try_timeout,
        },
        None => Retries {
            on: RetryOn::default(),
            max: 0,
            codes: Vec::new(),
            base: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
            per_try_timeout: None,
        },
    };
    if overrides {
        let mut from_header = false;
        if let Some(v) = h.get(&X_ENVOY_RETRY_ON).and_then(|v| v.to_str().ok()) {
            r.on = r.on | RetryOn::parse(v);
            from_header = true;
        }
        if let Some(v) = h.get(&X_ENVOY_RETRY_GRPC_ON).and_then(|v| v.to_str().ok()) {
            r.on = r.on | RetryOn::parse(v);
            from_header = true;
        }
        if let Some(v) = h.get(&X_ENVOY_RETRIABLE_STATUS_CODES).and_then(|v| v.to_str().ok()) {
            r.codes.extend(v.split(',').filter_map(|c| c.trim().parse::<u16>().ok()));
        }
        if from_header && policy.is_none() {
            // A header-only policy retries once, as Envoy's default num_retries.
            r.max = 1;
        }
        if let Some(n) = header_u64(h, &X_ENVOY_MAX_RETRIES) {
            r.max = n.min(u64::from(u32::MAX)) as u32;
        }
    }
    if r.on.is_empty() {
        r.max = 0;
    }
    r
}

fn retry_on_response(r: &Retries, code: u16, headers: &HeaderMap) -> bool {
    if r.max == 0 {
        // No retry policy: the response's headers need not be looked at (each custom-name
        // lookup hashes the name).
        return false;
    }
    let grpc: Option<u32> = headers.get(&GRPC_STATUS).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let ratelimited = headers.contains_key(&X_ENVOY_RATELIMITED);
    if ratelimited && !r.on.contains(RetryOn::ENVOY_RATELIMITED) {
        return false;
    }
    if ratelimited && r.on.contains(RetryOn::ENVOY_RATELIMITED) {
        return true;
    }
    if r.on.contains(RetryOn::FIVE_XX) && code >= 500 {
        return true;
    }
    if r.on.contains(RetryOn::GATEWAY_ERROR) && matches!(code, 502..=504) {
        return true;
    }
    if r.on.contains(RetryOn::RETRIABLE_4XX) && code == 409 {
        return true;
    }
    if r.on.contains(RetryOn::RETRIABLE_STATUS_CODES) && r.codes.contains(&code) {
        return true;
    }
    match grpc {
        Some(1) => r.on.contains(RetryOn::GRPC_CANCELLED),
        Some(4) => r.on.contains(RetryOn::GRPC_DEADLINE_EXCEEDED),
        Some(8) => r.on.contains(RetryOn::GRPC_RESOURCE_EXHAUSTED),
        Some(13) => r.on.contains(RetryOn::GRPC_INTERNAL),
        Some(14) => r.on.contains(RetryOn::GRPC_UNAVAILABLE),
        _ => false,
    }
}

fn retry_on_reset(r: &Retries, e: &SendError) -> bool {
    if r.max == 0 {
        return false;
    }
    let broad =
        r.on.contains(RetryOn::FIVE_XX) || r.on.contains(RetryOn::GATEWAY_ERROR) || r.on.contains(RetryOn::RESET);
    match e {
        SendError::Connect(_) => broad || r.on.contains(RetryOn::CONNECT_FAILURE),
        SendError::Reset { reason, .. } => {
            broad || (reason.contains("refused") && r.on.contains(RetryOn::REFUSED_STREAM))
        }
    }
}

/// Envoy's fully jittered exponential back-off: retry n waits a random time in
/// [0, (2^n - 1) * base), capped at max_interval; never past the request's deadline.
async fn backoff(cluster: &Cluster, r: &Retries, attempt: u32, deadline: Option<tokio::time::Instant>) {
    cluster.stats.upstream_rq_retry.inc();
    cluster.stats.upstream_rq_retry_backoff_exponential.inc();
    let mult = (1u64 << attempt.min(30)) - 1;
    let ceiling = (r.base.as_millis() as u64).saturating_mul(mult).min(r.max_interval.as_millis() as u64).max(1);
    let wait = Duration::from_millis(rand::random::<u64>() % ceiling);
    let until = crate::clock::tokio_now() + wait;
    tokio::time::sleep_until(deadline.map_or(until, |d| d.min(until))).await;
}

/// Envoy's `HashPolicyImpl::generateHash`: each policy's hash folded in order (rotate left by
/// one, xor); a terminal policy that produced a hash ends the list.
fn request_hash(fwd: &ForwardAction, parts: &http::request::Parts, path: &str, conn: &ConnInfo) -> Option<u64> {
    use super::route_table::HashKind;
    use crate::upstream::lb::{hash_bytes, hash_ip};
    let mut out: Option<u64> = None;
    for p in &fwd.hash_policy {
        let h = match &p.kind {
            HashKind::Header(name) => parts.headers.get(name).map(|v| hash_bytes(v.as_bytes())),
            HashKind::SourceIp => Some(hash_ip(conn.cx.downstream_remote.ip())),
            HashKind::Cookie { name, .. } => parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| hash_bytes(v.as_bytes())),
            HashKind::QueryParameter(name) => path
                .split_once('?')
                .and_then(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| k == name))
                .map(|(_, v)| hash_bytes(v.as_bytes())),
        };
        if let Some(h) = h {
            out = Some(out.map_or(h, |o| o.rotate_left(1) ^ h));
            if p.terminal {
                break;
            }
        }
    }
    out
}

fn header_u64(h: &HeaderMap, name: &HeaderName) -> Option<u64> {
    h.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// gRPC's `grpc-timeout`: digits then one of H M S m u n.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Connection-specific headers never cross the proxy (and HTTP/2 forbids them).
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // One pass over the names (cheap comparisons) finds which are present; each removal is a
    // hash lookup, and most messages carry one of these at most.
    let (mut connection, mut upgrade, mut keep_alive, mut proxy_connection, mut te, mut transfer_encoding) =
        (false, false, false, false, false, false);
    for k in h.keys() {
        if k == header::CONNECTION {
            connection = true;
        } else if k == header::UPGRADE {
            upgrade = true;
        } else if k == header::TRANSFER_ENCODING {
            transfer_encoding = true;
        } else if k == header::TE {
            te = true;
        } else if k == KEEP_ALIVE {
            keep_alive = true;
        } else if k == PROXY_CONNECTION {
            proxy_connection = true;
        }
    }
    if !keep_upgrade {
        if connection {
            h.remove(header::CONNECTION);
        }
        if upgrade {
            h.remove(header::UPGRADE);
        }
    }
    if keep_alive {
        h.remove(&KEEP_ALIVE);
    }
    if proxy_connection {
        h.remove(&PROXY_CONNECTION);
    }
    if transfer_encoding {
        h.remove(header::TRANSFER_ENCODING);
    }
    if te && h.get(header::TE).is_some_and(|v| v.as_bytes() != b"trailers") {
        h.remove(header::TE);
    }
}

fn build_request(
    method: &http::Method,
    authority: &str,
    path: &str,
    mut headers: HeaderMap,
    body: ReqBody,
    h2: bool,
) -> Option<Request<ReqBody>> {
    let mut req = Request::new(body);
    *req.method_mut() = method.clone();
    if h2 {
        *req.uri_mut() = Uri::builder().scheme("http").authority(authority).path_and_query(path).build().ok()?;
        *req.version_mut() = Version::HTTP_2;
        headers.remove(header::HOST);
    } else {
        *req.uri_mut() = path.parse().ok()?;
        *req.version_mut() = Version::HTTP_11;
        headers.insert(header::HOST, HeaderValue::from_str(authority).ok()?);
    }
    *req.headers_mut() = headers;
    Some(req)
}

/// Fire-and-forget copies to the mirror clusters (the host gets `-shadow`).
fn start_mirrors(
    hcm: &Arc<HttpConnectionManager>,
    fwd: &ForwardAction,
    parts: &http::request::Parts,
    authority: &str,
    path: &str,
    body: Option<bytes::Bytes>,
) {
    if fwd.mirrors.is_empty() {
        return;
    }
    let Some(body) = body else { return };
    for m in &fwd.mirrors {
        if m.per_million < 1_000_000 && rand::random::<u32>() % 1_000_000 >= m.per_million {
            continue;
        }
        let Some(cluster) = hcm.clusters.get(&m.cluster).cloned() else { continue };
        let shadow =
            if m.disable_shadow_host_suffix_append { authority.to_string() } else { shadow_authority(authority) };
        let mut headers = parts.headers.clone();
        let method = parts.method.clone();
        let path = path.to_string();
        let body = body.clone();
        tokio::spawn(async move {
            let Some(host) = cluster.choose_host(None) else { return };
            let h2 = cluster.http.uses_h2(false);
            if h2 {
                // The request kept `connection`/`upgrade` only if it is an upgrade, which a
                // mirror does not repeat; HTTP/2 forbids them.
                strip_hop_by_hop(&mut headers, false);
            }
            let b = if body.is_empty() { ReqBody::Empty } else { ReqBody::Full(Some(body)) };
            let Some(req) = build_request(&method, &shadow, &path, headers, b, h2) else { return };
            if let Ok(sent) = cluster.http.send(&cluster, &host, req, h2, false).await {
                cluster.http_stats.charge(&cluster, sent.response.status().as_u16());
                let mut b = sent.response.into_body();
                while let Some(Ok(_)) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut b).poll_frame(cx)).await {}
            }
        });
    }
}

/// Envoy's shadow host: `-shadow` appended to the host, before any port.
fn shadow_authority(a: &str) -> String {
    match a.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') && p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => {
            format!("{h}-shadow:{p}")
        }
        _ => format!("{a}-shadow"),
    }
}
