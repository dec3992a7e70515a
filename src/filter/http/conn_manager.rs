//! `envoy.filters.network.http_connection_manager`: the terminal filter that speaks HTTP/1.1
//! (Legate's codec, `super::h1`) and HTTP/2 (hyper) to the downstream, applies Envoy's request
//! header rules, picks a route, runs the HTTP filters and hands the request to the router.
//!
//! One task per connection, one future per request (boxed while in flight, so an idle
//! keep-alive connection holds no request state).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use super::body::RequestBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::filters::{self, HttpFilterFactory, RouteInfo, StreamFilter};
use super::local_reply::LocalReply;
use super::response::{RespBody, StreamTail};
use super::route_table::{ClusterChoice, RequestView, Route, RouteAction, RouteTable, Selection, VirtualHost};
use super::router;
use super::stats::{HcmListenerStats, HcmStats};
use crate::access_log::{AccessLog, ResponseFlags};
use crate::config::http::{CodecType, HttpConnectionManagerConfig, ServerHeaderTransformation};
use crate::config::http_filters::HttpFilterConfig;
use crate::filter::{ConnContext, Downstream};
use crate::stats::counted_io::CountedIo;
use crate::stats::Store;
use crate::upstream::cluster::Cluster;
use crate::upstream::ClusterManager;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_ENVOY_INTERNAL: HeaderName = HeaderName::from_static("x-envoy-internal");
pub static X_ENVOY_EXTERNAL_ADDRESS: HeaderName = HeaderName::from_static("x-envoy-external-address");

/// The connection manager of one filter chain, built once per config generation.
pub struct HttpConnectionManager {
    pub stats: HcmStats,
    pub listener_stats: HcmListenerStats,
    pub routes: RouteTable,
    pub clusters: HashMap<String, Arc<Cluster>>,
    pub filters: Vec<Arc<dyn HttpFilterFactory>>,
    pub access_logs: Vec<Arc<AccessLog>>,
    pub codec_type: CodecType,
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub skip_xff_append: bool,
    pub via: Option<HeaderValue>,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub always_set_request_id_in_response: bool,
    pub server_name: HeaderValue,
    pub server_header_transformation: ServerHeaderTransformation,
    pub suppress_envoy_headers: bool,
    pub stream_idle_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub request_headers_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// `drain_timeout`: how long a connection stays after the idle timeout or the maximum
    /// duration fired (Envoy's drain sequence; HTTP/1.x).
    pub drain_timeout: Duration,
    pub max_connection_duration: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub max_headers_count: u32,
    pub max_request_headers_bytes: usize,
    pub http2: crate::config::http::Http2Options,
    pub websocket: bool,
    pub proxy_100_continue: bool,
    pub accept_http_10: bool,
    pub default_host_for_http_10: Option<HeaderValue>,
    pub buffer_limit: usize,
    /// `http.<prefix>.` for the filters' own stats.
    pub stat_prefix: String,
}

/// What a request needs to know about its connection.
pub struct ConnInfo {
    pub cx: ConnContext,
    pub h2: bool,
    pub tls: bool,
    /// Requests in flight, for the idle timer.
    pub active: AtomicUsize,
    pub requests: AtomicU64,
    /// The HTTP/1.x client closed while a request was waiting for its response: the stream
    /// ends as a downstream reset (`DC`, `downstream_rq_rx_reset`).
    pub client_gone: AtomicBool,
}

impl ConnInfo {
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

impl HttpConnectionManager {
    pub fn new(
        cfg: &HttpConnectionManagerConfig,
        store: &Store,
        cm: &ClusterManager,
        buffer_limit: usize,
        listener_prefix: &str,
        runtime: &crate::runtime::Runtime,
    ) -> Result<HttpConnectionManager, String> {
        let stat_prefix = format!("http.{}.", cfg.stat_prefix);
        let stats = HcmStats::new(store, &stat_prefix);
        let listener_stats = HcmListenerStats::new(store, &format!("{listener_prefix}{stat_prefix}"));
        let clusters = cm.iter().map(|c| (c.name.clone(), c.clone())).collect();
        let mut suppress_envoy_headers = false;
        let mut filters_built = Vec::new();
        for f in &cfg.http_filters {
            if let HttpFilterConfig::Router(r) = f {
                suppress_envoy_headers = r.suppress_envoy_headers;
            }
            if let Some(built) = filters::build(f, store, &cfg.stat_prefix, runtime) {
                filters_built.push(built);
            }
        }
        let access_logs = crate::access_log_build::build_all(&cfg.access_log)?;
        let server_name =
            HeaderValue::from_str(&cfg.server_name).map_err(|_| "server_name is not a valid header value")?;
        let via =
            cfg.via.as_deref().map(HeaderValue::from_str).transpose().map_err(|_| "via is not a valid header value")?;
        Ok(HttpConnectionManager {
            stats,
            listener_stats,
            routes: RouteTable::build(&cfg.route_config),
            clusters,
            filters: filters_built,
            access_logs,
            codec_type: cfg.codec_type,
            use_remote_address: cfg.use_remote_address,
            xff_num_trusted_hops: cfg.xff_num_trusted_hops,
            skip_xff_append: cfg.skip_xff_append,
            via,
            generate_request_id: cfg.generate_request_id,
            preserve_external_request_id: cfg.preserve_external_request_id,
            always_set_request_id_in_response: cfg.always_set_request_id_in_response,
            server_name,
            server_header_transformation: cfg.server_header_transformation,
            suppress_envoy_headers,
            stream_idle_timeout: cfg.stream_idle_timeout,
            request_timeout: cfg.request_timeout,
            request_headers_timeout: cfg.request_headers_timeout,
            idle_timeout: cfg.common.idle_timeout,
            drain_timeout: cfg.drain_timeout,
            max_connection_duration: cfg.common.max_connection_duration,
            max_requests_per_connection: cfg.common.max_requests_per_connection,
            max_headers_count: cfg.common.max_headers_count,
            max_request_headers_bytes: cfg.max_request_headers_kb as usize * 1024,
            http2: cfg.http2.clone(),
            websocket: cfg.upgrade_configs.iter().any(|u| u.upgrade_type == "websocket" && u.enabled),
            proxy_100_continue: cfg.proxy_100_continue,
            accept_http_10: cfg.accept_http_10,
            default_host_for_http_10: cfg
                .default_host_for_http_10
                .as_deref()
                .map(HeaderValue::from_str)
                .transpose()
                .map_err(|_| "http_protocol_options.default_host_for_http_10 is not a valid header value")?,
            buffer_limit,
            stat_prefix,
        })
    }

    /// Serves one downstream connection until it closes.
    pub async fn serve(self: Arc<Self>, downstream: Downstream, cx: ConnContext) {
        match downstream {
            Downstream::Tcp(s) => {
                let h2 = match self.codec_type {
                    CodecType::Http1 => false,
                    CodecType::Http2 => true,
                    CodecType::Auto => sniff_h2(&s).await,
                };
                self.serve_io(s, cx, h2, false).await
            }
            Downstream::Tls(s) => {
                let alpn_h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
                let h2 = match self.codec_type {
                    CodecType::Http1 => false,
                    CodecType::Http2 => true,
                    CodecType::Auto => alpn_h2,
                };
                // The TLS stream stays boxed: inline, its state (rustls's) would size every
                // plain connection's future too.
                self.serve_io(s, cx, h2, true).await
            }
        }
    }

    async fn serve_io<IO>(self: Arc<Self>, io: IO, cx: ConnContext, h2: bool, tls: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let s = &self.stats;
        s.downstream_cx_total.inc();
        s.downstream_cx_active.inc();
        if tls {
            s.downstream_cx_ssl_total.inc();
            s.downstream_cx_ssl_active.inc();
        }
        if h2 {
            s.downstream_cx_http2_total.inc();
            s.downstream_cx_http2_active.inc();
        } else {
            s.downstream_cx_http1_total.inc();
            s.downstream_cx_http1_active.inc();
        }
        let started = crate::clock::now();
        let conn = Arc::new(ConnInfo {
            cx,
            h2,
            tls,
            active: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            client_gone: AtomicBool::new(false),
        });
        let counted = CountedIo::new(
            io,
            self.stats.downstream_cx_rx_bytes_total.clone(),
            self.stats.downstream_cx_tx_bytes_total.clone(),
        );
        let protocol_error = if h2 {
            // Boxed: hyper's HTTP/2 connection state (several KiB) would otherwise size every
            // HTTP/1.x connection's future too.
            Box::pin(self.serve_h2(&conn, counted)).await
        } else {
            super::h1::conn::serve(&self, &conn, counted).await == super::h1::conn::End::ProtocolError
        };
        if protocol_error {
            s.downstream_cx_protocol_error.inc();
        }
        s.downstream_cx_destroy_remote.inc();
        s.downstream_cx_destroy.inc();
        if conn.active.load(Ordering::Relaxed) > 0 || conn.client_gone.load(Ordering::Relaxed) {
            s.downstream_cx_destroy_active_rq.inc();
            s.downstream_cx_destroy_remote_active_rq.inc();
        }
        s.downstream_cx_length_ms.record(crate::clock::since(started).as_millis() as u64);
        s.downstream_cx_active.dec();
        if tls {
            s.downstream_cx_ssl_active.dec();
        }
        if h2 {
            s.downstream_cx_http2_active.dec();
        } else {
            s.downstream_cx_http1_active.dec();
        }
    }

    /// Serves HTTP/2 on `io` (hyper); `true` when the connection ended on a protocol error.
    async fn serve_h2<IO>(self: &Arc<Self>, conn: &Arc<ConnInfo>, io: IO) -> bool
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let hcm = self.clone();
        let c2 = conn.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let hcm = hcm.clone();
            let conn = c2.clone();
            // Boxed: hyper spawns a task per stream holding this future, and a task's future
            // is moved a few times on its way into the task; a box moves as one pointer.
            let fut = Box::pin(hcm.handle(conn, req.map(RequestBody::Hyper)));
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let mut b = hyper::server::conn::http2::Builder::new(crate::clock::ScopedExecutor);
        b.timer(TokioTimer::new())
            .initial_stream_window_size(self.http2.initial_stream_window_size)
            .initial_connection_window_size(self.http2.initial_connection_window_size)
            .max_concurrent_streams(self.http2.max_concurrent_streams)
            .max_header_list_size(self.max_request_headers_bytes as u32);
        let fut = b.serve_connection(TokioIo::new(io), svc);
        match self.drive(fut, conn).await {
            Ok(()) => false,
            Err(e) => e.is_parse() || e.is_parse_too_large() || e.is_parse_status() || is_h2_protocol_error(&e),
        }
    }

    /// Runs a hyper connection future with the connection idle timeout, the max duration and
    /// the server's drain: each of them asks hyper for a graceful close (an idle HTTP/1.1
    /// connection closes at once, a busy one after its response with `Connection: close`;
    /// HTTP/2 sends GOAWAY and finishes its streams).
    async fn drive<F>(&self, fut: F, conn: &ConnInfo) -> Result<(), hyper::Error>
    where
        F: std::future::Future<Output = Result<(), hyper::Error>> + GracefulShutdown,
    {
        let mut fut = std::pin::pin!(fut);
        let max_end = self.max_connection_duration.map(|d| crate::clock::tokio_now() + d);
        let idle = self.idle_timeout.or(self.max_connection_duration).unwrap_or(Duration::from_secs(3600));
        let mut closing = false;
        loop {
            let last = conn.requests.load(Ordering::Relaxed);
            let deadline = crate::clock::tokio_now() + idle;
            let wake = max_end.map_or(deadline, |m| m.min(deadline));
            tokio::select! {
                r = fut.as_mut() => return r,
                _ = conn.cx.drain.cancelled(), if !closing => {
                    self.stats.downstream_cx_drain_close.inc();
                    fut.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = tokio::time::sleep_until(wake), if !closing => {
                    let now = crate::clock::tokio_now();
                    if max_end.is_some_and(|m| now >= m) {
                        self.stats.downstream_cx_max_duration_reached.inc();
                        fut.as_mut().graceful_shutdown();
                        closing = true;
                    } else if self.idle_timeout.is_some() && conn.active.load(Ordering::Relaxed) == 0
                        && conn.requests.load(Ordering::Relaxed) == last {
                        self.stats.downstream_cx_idle_timeout.inc();
                        fut.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }

    /// Envoy's reply to a request its HTTP/1 codec refused (`sendProtocolError`): a local
    /// reply with the reason phrase as the body, flag `DPE`, then the connection closes.
    pub(crate) fn codec_error_reply(
        self: &Arc<Self>,
        conn: &Arc<ConnInfo>,
        code: u16,
        details: &'static str,
    ) -> Response<RespBody> {
        let reason = status(code).canonical_reason().unwrap_or("");
        self.reply_before_head(conn, code, reason, ResponseFlags::DPE, details)
    }

    /// A local reply on an HTTP/1.x connection with no complete request head (a codec error, a
    /// header timeout): counted as a request, then the connection closes.
    pub(crate) fn reply_before_head(
        self: &Arc<Self>,
        conn: &Arc<ConnInfo>,
        code: u16,
        body: &'static str,
        flags: ResponseFlags,
        details: &'static str,
    ) -> Response<RespBody> {
        let s = &self.stats;
        conn.requests.fetch_add(1, Ordering::Relaxed);
        s.downstream_rq_total.inc();
        s.downstream_rq_http1_total.inc();
        s.downstream_rq_active.inc();
        conn.active.fetch_add(1, Ordering::Relaxed);
        let (parts, ()) = Request::new(()).into_parts();
        let now = crate::clock::now();
        let mut tail = StreamTail::new(self.clone(), conn.clone(), now, crate::clock::wall(now), &parts);
        tail.close_connection = true;
        tail.local_reply(LocalReply::new(code, body, flags, details), None)
    }

    /// One request, start to response headers; the rest happens in the response body.
    pub(crate) async fn handle(self: Arc<Self>, conn: Arc<ConnInfo>, req: Request<RequestBody>) -> Response<RespBody> {
        let started = crate::clock::now();
        let start_time = crate::clock::wall(started);
        conn.requests.fetch_add(1, Ordering::Relaxed);
        let s = &self.stats;
        s.downstream_rq_total.inc();
        if conn.h2 {
            s.downstream_rq_http2_total.inc();
        } else {
            s.downstream_rq_http1_total.inc();
        }
        s.downstream_rq_active.inc();
        conn.active.fetch_add(1, Ordering::Relaxed);
        let wants_upgrade = is_websocket_upgrade(req.headers());
        let upgrade = !conn.h2 && wants_upgrade;
        let (mut parts, body) = req.into_parts();
        let mut tail = StreamTail::new(self.clone(), conn.clone(), started, start_time, &parts);
        let is_grpc = is_grpc(&parts.headers);
        tail.is_grpc = is_grpc;
        self.mutate_request_headers(&mut parts, &conn, &mut tail);
        // Snapshots that outlive the filters' edits of `parts`: reference-counted clones, no copy.
        // `:authority` (HTTP/2) before `Host` (HTTP/1.1), as `request_authority`.
        let uri_authority = parts.uri.authority().cloned();
        let host = if uri_authority.is_none() { parts.headers.get(header::HOST).cloned() } else { None };
        let authority = uri_authority
            .as_ref()
            .map(|a| a.as_str())
            .or_else(|| host.as_ref().and_then(|v| v.to_str().ok()))
            .unwrap_or("");
        let pq = parts.uri.path_and_query().cloned();
        let path_and_query = pq.as_ref().map_or("/", |p| p.as_str());
        if self.max_requests_per_connection.is_some_and(|m| conn.requests.load(Ordering::Relaxed) >= u64::from(m)) {
            s.downstream_cx_max_requests_reached.inc();
            tail.close_connection = true;
        }
        let selection = self.routes.select(&RequestView {
            authority,
            path: path_and_query,
            method: &parts.method,
            headers: &parts.headers,
        });
        let (vh, route) = match selection {
            Selection::Route(vh, r) => (vh, r),
            Selection::NoVirtualHost | Selection::NoRoute(_) => {
                s.rq_total.inc();
                s.no_route.inc();
                let reply = LocalReply::new(404, "", ResponseFlags::NR, "route_not_found");
                return tail.local_reply(reply, None);
            }
        };
        tail.route_name = route.name.clone();
        // The cluster, known before the filters run so they can see it.
        let mut weighted = None;
        let cluster_name: Option<std::borrow::Cow<'_, str>> = match &route.action {
            RouteAction::Forward(f) => match &f.cluster {
                ClusterChoice::Name(n) => Some(n.as_str().into()),
                ClusterChoice::Header(h) => {
                    parts.headers.get(h).and_then(|v| v.to_str().ok()).map(|v| v.to_string().into())
                }
                ClusterChoice::Weighted(w) => {
                    let picked = w.pick(rand::random::<u64>());
                    weighted = Some(picked);
                    Some(picked.name.as_str().into())
                }
            },
            _ => None,
        };
        let mut stream_filters: Vec<Box<dyn StreamFilter>> = Vec::new();
        if !self.filters.is_empty() {
            let info = RouteInfo { cluster: cluster_name.as_deref(), route_name: route.name.as_deref() };
            for f in &self.filters {
                let mut sf = f.create();
                let verdict = sf.on_request_headers(&mut parts, &info);
                if let Some(d) = verdict.delay {
                    tail.flags.set(ResponseFlags::DI);
                    tokio::time::sleep(d).await;
                    sf.on_delay_elapsed();
                }
                stream_filters.push(sf);
                if let Some(reply) = verdict.local_reply {
                    tail.filters = stream_filters.into();
                    return tail.local_reply(reply, Some((vh, route)));
                }
            }
        }
        tail.filters = stream_filters.into();
        s.rq_total.inc();
        match &route.action {
            RouteAction::DirectResponse { status, body } => {
                s.rq_direct_response.inc();
                let mut reply = LocalReply::new(*status, "", ResponseFlags::default(), "direct_response");
                if let Some(loc) =
                    super::route_table::direct_response_location(*status, conn.scheme(), authority, path_and_query)
                {
                    if let Ok(v) = HeaderValue::from_str(&loc) {
                        reply.headers.push((header::LOCATION, v));
                    }
                }
                tail.local_reply_raw(reply, Some((vh, route)), body.clone())
            }
            RouteAction::Redirect(r) => {
                // Envoy 1.40 counts route redirects under rq_direct_response (rq_redirect is
                // for internal redirects), whatever its docs say.
                s.rq_direct_response.inc();
                let location = r.location(route, conn.scheme(), authority, path_and_query);
                let mut reply = LocalReply::new(r.status(), "", ResponseFlags::default(), "via_route_redirect");
                if let Ok(v) = HeaderValue::from_str(&location) {
                    reply.headers.push((header::LOCATION, v));
                }
                tail.local_reply(reply, Some((vh, route)))
            }
            RouteAction::Forward(fwd) => {
                let Some(cluster) = cluster_name.as_deref().and_then(|n| self.clusters.get(n)).cloned() else {
                    s.no_cluster.inc();
                    let reply = LocalReply::new(
                        fwd.cluster_not_found_response_code,
                        "",
                        ResponseFlags::NC,
                        "cluster_not_found",
                    );
                    return tail.local_reply(reply, Some((vh, route)));
                };
                let ws = upgrade && {
                    let allowed = fwd
                        .upgrade_configs
                        .iter()
                        .find(|(t, _)| t == "websocket")
                        .map_or(self.websocket, |(_, enabled)| *enabled);
                    if !allowed {
                        s.downstream_rq_ws_on_non_ws_route.inc();
                    }
                    allowed
                };
                // (Only a filter can have changed `connection`/`upgrade` since the first look.)
                let still_upgrade =
                    if self.filters.is_empty() { wants_upgrade } else { is_websocket_upgrade(&parts.headers) };
                if !ws && still_upgrade {
                    let reply = LocalReply::new(403, "", ResponseFlags::default(), "upgrade_failed");
                    return tail.local_reply(reply, Some((vh, route)));
                }
                // Boxed: hyper keeps room for one request future per connection for the
                // connection's whole life; the router's state only exists while a request is
                // in flight, so idle keep-alive connections stay small.
                Box::pin(router::forward(
                    &self,
                    &conn,
                    parts,
                    body,
                    vh,
                    route,
                    fwd,
                    weighted,
                    cluster,
                    ws,
                    tail,
                    authority,
                    path_and_query,
                ))
                .await
            }
        }
    }

    /// Envoy's `ConnectionManagerUtility::mutateRequestHeaders`, the parts Legate implements.
    fn mutate_request_headers(&self, parts: &mut http::request::Parts, conn: &ConnInfo, tail: &mut StreamTail) {
        let h = &mut parts.headers;
        let peer = conn.cx.downstream_remote.ip();
        // One pass over the names first: lookups of absent custom headers (each hashing the
        // name) are most of this function's cost otherwise.
        let (mut has_xff, mut has_xfp, mut has_envoy) = (false, false, false);
        for k in h.keys() {
            has_xff |= k == X_FORWARDED_FOR;
            has_xfp |= k == X_FORWARDED_PROTO;
            has_envoy |= k.as_str().starts_with("x-envoy-");
        }
        // The trusted client address and whether the request is internal.
        let (trusted, internal) = if self.use_remote_address {
            if !self.skip_xff_append {
                append_xff(h, peer);
            }
            (Some(peer), is_internal(peer))
        } else if !has_xff {
            (Some(peer), false)
        } else {
            let from_xff = xff_entry(h, self.xff_num_trusted_hops);
            let single = h.get_all(&X_FORWARDED_FOR).iter().count() <= 1
                && h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()).is_some_and(|v| !v.contains(','));
            let internal = from_xff.is_some_and(|ip| single && is_internal(ip));
            (from_xff.or(Some(peer)), internal)
        };
        tail.trusted_address = trusted;
        let edge = self.use_remote_address && !internal;
        if edge && has_envoy {
            // Envoy strips its control headers from external requests.
            let names: Vec<HeaderName> = h.keys().filter(|k| is_envoy_control_header(k.as_str())).cloned().collect();
            for n in names {
                h.remove(&n);
            }
        }
        if internal {
            h.insert(X_ENVOY_INTERNAL.clone(), HeaderValue::from_static("true"));
        } else {
            if has_envoy {
                h.remove(&X_ENVOY_INTERNAL);
            }
            if self.use_remote_address {
                if let Some(ip) = trusted {
                    if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
                        h.insert(X_ENVOY_EXTERNAL_ADDRESS.clone(), v);
                    }
                }
            }
        }
        // (The names pass ran before the edits above, none of which touch this header.)
        if self.xff_num_trusted_hops == 0 || !has_xfp {
            h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(conn.scheme()));
        }
        if self.generate_request_id {
            // One lookup: a kept id stays, a missing or distrusted one is replaced.
            match h.entry(&X_REQUEST_ID) {
                http::header::Entry::Occupied(_) if !edge || self.preserve_external_request_id => {}
                http::header::Entry::Occupied(mut o) => {
                    o.insert(new_request_id());
                }
                http::header::Entry::Vacant(v) => {
                    v.insert(new_request_id());
                }
            }
        }
        if let Some(v) = &self.via {
            h.append(header::VIA, v.clone());
        }
        // h2 requests carry :authority; HTTP/1.1 upstreams need Host.
        if !h.contains_key(header::HOST) {
            if let Some(a) = parts.uri.authority() {
                if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                    h.insert(header::HOST, v);
                }
            }
        }
    }

    /// Adds the response headers Envoy adds to every response it sends downstream.
    pub fn decorate_response(&self, h: &mut HeaderMap, request_id: Option<&HeaderValue>) {
        match self.server_header_transformation {
            ServerHeaderTransformation::Overwrite => {
                h.insert(header::SERVER, self.server_name.clone());
            }
            ServerHeaderTransformation::AppendIfAbsent => {
                if !h.contains_key(header::SERVER) {
                    h.insert(header::SERVER, self.server_name.clone());
                }
            }
            ServerHeaderTransformation::PassThrough => {}
        }
        if self.always_set_request_id_in_response {
            if let Some(id) = request_id {
                h.insert(X_REQUEST_ID.clone(), id.clone());
            }
        }
        if let Some(v) = &self.via {
            h.append(header::VIA, v.clone());
        }
    }
}

/// Lets [`HttpConnectionManager::drive`] start a graceful shutdown on hyper's connection futures.
pub trait GracefulShutdown {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, E> GracefulShutdown for hyper::server::conn::http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = RespBody>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, RespBody>,
{
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self)
    }
}

/// Whether the client opened with the HTTP/2 connection preface (h2c prior knowledge).
async fn sniff_h2(s: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 3];
    for _ in 0..50 {
        match s.peek(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if n >= 3 => return &buf == b"PRI",
            Ok(n) => {
                if buf[..n] != b"PRI"[..n] {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    false
}

/// An HTTP/2 connection error Legate detected in what the client sent (it answered GOAWAY with
/// a code other than NO_ERROR), which Envoy counts in `downstream_cx_protocol_error`.
fn is_h2_protocol_error(e: &hyper::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h2e) = s.downcast_ref::<h2::Error>() {
            return h2e.is_go_away() && !h2e.is_remote() && h2e.reason().is_some_and(|r| r != h2::Reason::NO_ERROR);
        }
        src = s.source();
    }
    false
}

pub fn is_grpc(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/grpc"))
}

pub fn is_websocket_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && h.get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// `:authority` (HTTP/2) or `Host` (HTTP/1.1).
pub fn request_authority(parts: &http::request::Parts) -> &str {
    parts
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        .unwrap_or("")
}

/// Envoy's `Network::Utility::isInternalAddress`: RFC 1918, loopback and RFC 4193 addresses.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

fn append_xff(h: &mut HeaderMap, ip: IpAddr) {
    let value = match h.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(old) if !old.is_empty() => format!("{old},{ip}"),
        _ => ip.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// The address `hops` entries from the right of `x-forwarded-for` (Envoy's trusted client).
fn xff_entry(h: &HeaderMap, hops: u32) -> Option<IpAddr> {
    let all: Vec<&str> = h
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let idx = all.len().checked_sub(1 + hops as usize)?;
    all.get(idx)?.parse().ok()
}

/// Envoy's control headers, which `cleanInternalHeaders` removes from external requests (other
/// `x-envoy-*` headers pass).
fn is_envoy_control_header(name: &str) -> bool {
    matches!(
        name,
        "x-envoy-decorator-operation"
            | "x-envoy-downstream-service-cluster"
            | "x-envoy-downstream-service-node"
            | "x-envoy-expected-rq-timeout-ms"
            | "x-envoy-external-address"
            | "x-envoy-force-trace"
            | "x-envoy-internal"
            | "x-envoy-ip-tags"
            | "x-envoy-max-retries"
            | "x-envoy-original-path"
            | "x-envoy-retry-grpc-on"
            | "x-envoy-retry-on"
            | "x-envoy-retriable-status-codes"
            | "x-envoy-retriable-header-names"
            | "x-envoy-upstream-alt-stat-name"
            | "x-envoy-upstream-rq-per-try-timeout-ms"
            | "x-envoy-upstream-rq-timeout-alt-response"
            | "x-envoy-upstream-rq-timeout-ms"
            | "x-envoy-hedge-on-per-try-timeout"
    )
}

/// A random (version 4) UUID, as Envoy's default request-id extension makes; formatted
/// without `fmt` (this runs on every request).
fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = [0u8; 36];
    let mut o = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[o] = b'-';
            o += 1;
        }
        out[o] = HEX[usize::from(byte >> 4)];
        out[o + 1] = HEX[usize::from(byte & 0x0f)];
        o += 2;
    }
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

/// The `%PROTOCOL%` string.
pub fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Envoy's `Grpc::Utility::httpToGrpcStatus`.
pub fn http_to_grpc_status(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

/// Status from a u16, 500 when out of range.
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The vhost/route pair a reply was produced for (header mutations).
pub type Matched<'a> = Option<(&'a VirtualHost, &'a Route)>;
