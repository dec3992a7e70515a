//! `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager` and the
//! cluster-side `envoy.extensions.upstreams.http.v3.HttpProtocolOptions`, with Envoy's defaults.

use std::time::Duration;

use super::access_log::{access_logs, AccessLogConfig};
use super::decode::Obj;
use super::http_filters::{decode_http_filter, HttpFilterConfig};
use super::route::{decode_route_config, RouteConfig};

pub const HCM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
pub const HCM_NAME: &str = "envoy.filters.network.http_connection_manager";
pub const HTTP_PROTOCOL_OPTIONS_KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
pub const HTTP_PROTOCOL_OPTIONS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Envoy's `stream_idle_timeout` default (5 minutes).
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Envoy's connection `idle_timeout` default for the HCM and for upstream pools (1 hour).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Envoy's `max_request_headers_kb` default (60 KiB) and maximum (8 MiB).
pub const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;
pub const MAX_MAX_REQUEST_HEADERS_KB: u64 = 8192;
/// Envoy's `max_headers_count` default.
pub const DEFAULT_MAX_HEADERS_COUNT: u32 = 100;
/// Envoy's `drain_timeout` default (5 s): how long HTTP/2 clients get after GOAWAY.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 windows. Envoy defaults to a 256 MiB stream window and a 1 MiB connection window,
/// which lets one stream buffer 256 MiB; Legate defaults to 1 MiB per stream and 2 MiB per
/// connection (bounded memory per connection), and honours both fields when given.
pub const DEFAULT_H2_STREAM_WINDOW: u32 = 1 << 20;
pub const DEFAULT_H2_CONNECTION_WINDOW: u32 = 2 << 20;
/// Envoy's `max_concurrent_streams` default is 2^31-1; Legate's is 1024 (bounded memory).
pub const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecType {
    Auto,
    Http1,
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeaderTransformation {
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

/// `http2_protocol_options` (downstream or upstream).
#[derive(Debug, Clone, PartialEq)]
pub struct Http2Options {
    pub max_concurrent_streams: u32,
    pub initial_stream_window_size: u32,
    pub initial_connection_window_size: u32,
    pub hpack_table_size: Option<u32>,
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            max_concurrent_streams: DEFAULT_H2_MAX_CONCURRENT_STREAMS,
            initial_stream_window_size: DEFAULT_H2_STREAM_WINDOW,
            initial_connection_window_size: DEFAULT_H2_CONNECTION_WINDOW,
            hpack_table_size: None,
        }
    }
}

impl Http2Options {
    pub fn decode(o: &mut Obj) -> Http2Options {
        let d = Http2Options::default();
        let out = Http2Options {
            max_concurrent_streams: o
                .uint("max_concurrent_streams", 1, 2_147_483_647)
                .map_or(d.max_concurrent_streams, |v| v as u32),
            // Envoy's bounds: 65535 ..= 2^31-1.
            initial_stream_window_size: o
                .uint("initial_stream_window_size", 65_535, 2_147_483_647)
                .map_or(d.initial_stream_window_size, |v| v as u32),
            initial_connection_window_size: o
                .uint("initial_connection_window_size", 65_535, 2_147_483_647)
                .map_or(d.initial_connection_window_size, |v| v as u32),
            hpack_table_size: o.uint("hpack_table_size", 0, u64::from(u32::MAX)).map(|v| v as u32),
        };
        // Flood-protection knobs: Legate's limits are h2's own (it bounds pending control
        // frames and resets); the values are accepted, not tuned.
        o.accept(&[
            "max_outbound_frames",
            "max_outbound_control_frames",
            "max_consecutive_inbound_frames_with_empty_payload",
            "max_inbound_priority_frames_per_stream",
            "max_inbound_window_update_frames_per_data_frame_sent",
            "stream_error_on_invalid_http_messaging",
            "override_stream_error_on_invalid_http_message",
        ]);
        o.finish(&["allow_connect", "allow_metadata", "connection_keepalive", "custom_settings_parameters"]);
        out
    }
}

/// `common_http_protocol_options`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonHttpOptions {
    /// `None` when disabled (`0s`).
    pub idle_timeout: Option<Duration>,
    pub max_connection_duration: Option<Duration>,
    pub max_headers_count: u32,
    pub max_stream_duration: Option<Duration>,
    pub max_requests_per_connection: Option<u32>,
}

impl Default for CommonHttpOptions {
    fn default() -> Self {
        CommonHttpOptions {
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connection_duration: None,
            max_headers_count: DEFAULT_MAX_HEADERS_COUNT,
            max_stream_duration: None,
            max_requests_per_connection: None,
        }
    }
}

impl CommonHttpOptions {
    pub fn decode(o: &mut Obj) -> CommonHttpOptions {
        let idle_timeout = match o.duration("idle_timeout") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_IDLE_TIMEOUT),
        };
        let out = CommonHttpOptions {
            idle_timeout,
            max_connection_duration: o.duration("max_connection_duration").filter(|d| !d.is_zero()),
            max_headers_count: o
                .uint("max_headers_count", 1, u64::from(u32::MAX))
                .map_or(DEFAULT_MAX_HEADERS_COUNT, |v| v as u32),
            max_stream_duration: o.duration("max_stream_duration").filter(|d| !d.is_zero()),
            max_requests_per_connection: o
                .uint("max_requests_per_connection", 0, u64::from(u32::MAX))
                .filter(|v| *v > 0)
                .map(|v| v as u32),
        };
        o.enumeration("headers_with_underscores_action", &["ALLOW", "REJECT_REQUEST", "DROP_HEADER"]).inspect(|a| {
            if *a != "ALLOW" {
                o.error(
                    "headers_with_underscores_action",
                    format!("headers_with_underscores_action {a} is not supported by Legate yet"),
                );
            }
        });
        o.finish(&["max_response_headers_kb"]);
        out
    }
}

/// One `upgrade_configs[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeConfig {
    /// Lower-case, e.g. `websocket`.
    pub upgrade_type: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectionManagerConfig {
    pub stat_prefix: String,
    pub codec_type: CodecType,
    pub route_config: RouteConfig,
    pub http_filters: Vec<HttpFilterConfig>,
    pub access_log: Vec<AccessLogConfig>,
    pub use_remote_address: bool,
    pub xff_num_trusted_hops: u32,
    pub skip_xff_append: bool,
    pub via: Option<String>,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub always_set_request_id_in_response: bool,
    pub server_name: String,
    pub server_header_transformation: ServerHeaderTransformation,
    /// `None` when disabled.
    pub stream_idle_timeout: Option<Duration>,
    pub request_timeout: Option<Duration>,
    pub request_headers_timeout: Option<Duration>,
    pub drain_timeout: Duration,
    pub common: CommonHttpOptions,
    pub http2: Http2Options,
    pub max_request_headers_kb: u32,
    pub upgrade_configs: Vec<UpgradeConfig>,
    pub strip_any_host_port: bool,
    pub strip_matching_host_port: bool,
    pub add_user_agent: bool,
    pub proxy_100_continue: bool,
    /// `http_protocol_options.accept_http_10` (Envoy: false, HTTP/1.0 gets 426).
    pub accept_http_10: bool,
    /// `http_protocol_options.default_host_for_http_10`.
    pub default_host_for_http_10: Option<String>,
    pub path: String,
}

impl HttpConnectionManagerConfig {
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.route_config.clusters()
    }

    pub fn decode(o: &mut Obj) -> HttpConnectionManagerConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let codec_type = match o.enumeration("codec_type", &["AUTO", "HTTP1", "HTTP2", "HTTP3"]) {
            Some("HTTP1") => CodecType::Http1,
            Some("HTTP2") => CodecType::Http2,
            Some("HTTP3") => {
                o.error("codec_type", "codec_type HTTP3 is not supported by Legate");
                CodecType::Auto
            }
            _ => CodecType::Auto,
        };
        let route_config = match o.obj("route_config", "RouteConfiguration") {
            Some(mut r) => {
                let rc = decode_route_config(&mut r);
                r.finish(&[]);
                rc
            }
            None => {
                if o.has("rds") {
                    o.error("rds", "RDS is not supported by Legate; give the routes inline in 'route_config'");
                } else if o.has("scoped_routes") {
                    o.error("scoped_routes", "scoped_routes is not supported by Legate; use 'route_config'");
                } else {
                    o.missing("route_config");
                }
                RouteConfig::default()
            }
        };
        let cx = o.cx;
        let mut http_filters = Vec::new();
        let list = o.list("http_filters");
        for (path, v) in &list {
            if let Some(mut f) = Obj::new(cx, path, v, "HttpFilter") {
                if let Some(c) = decode_http_filter(&mut f) {
                    http_filters.push(c);
                }
                f.finish(&[]);
            }
        }
        if let Some(pos) = http_filters.iter().position(|f| matches!(f, HttpFilterConfig::Router(_))) {
            if pos + 1 != http_filters.len() {
                o.error("http_filters", "envoy.filters.http.router must be the last HTTP filter");
            }
        } else if !list.is_empty() || o.cx.has_errors() {
            // Envoy refuses a chain with no terminal filter.
            o.error("http_filters", "the HTTP filter chain needs envoy.filters.http.router as its last filter");
        } else {
            o.error("http_filters", "the HTTP filter chain needs envoy.filters.http.router as its last filter");
        }
        let access_log = access_logs(o);
        let use_remote_address = o.bool("use_remote_address").unwrap_or(false);
        let xff_num_trusted_hops = o.uint("xff_num_trusted_hops", 0, u64::from(u32::MAX)).map_or(0, |v| v as u32);
        let skip_xff_append = o.bool("skip_xff_append").unwrap_or(false);
        let via = o.string("via").filter(|v| !v.is_empty());
        let generate_request_id = o.bool("generate_request_id").unwrap_or(true);
        let preserve_external_request_id = o.bool("preserve_external_request_id").unwrap_or(false);
        let always_set_request_id_in_response = o.bool("always_set_request_id_in_response").unwrap_or(false);
        let server_name = o.string("server_name").filter(|s| !s.is_empty()).unwrap_or_else(|| "envoy".to_string());
        let server_header_transformation =
            match o.enumeration("server_header_transformation", &["OVERWRITE", "APPEND_IF_ABSENT", "PASS_THROUGH"]) {
                Some("APPEND_IF_ABSENT") => ServerHeaderTransformation::AppendIfAbsent,
                Some("PASS_THROUGH") => ServerHeaderTransformation::PassThrough,
                _ => ServerHeaderTransformation::Overwrite,
            };
        let stream_idle_timeout = match o.duration("stream_idle_timeout") {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_STREAM_IDLE_TIMEOUT),
        };
        let request_timeout = o.duration("request_timeout").filter(|d| !d.is_zero());
        let request_headers_timeout = o.duration("request_headers_timeout").filter(|d| !d.is_zero());
        let drain_timeout = o.duration("drain_timeout").unwrap_or(DEFAULT_DRAIN_TIMEOUT);
        let common = o
            .obj("common_http_protocol_options", "HttpProtocolOptions")
            .map(|mut c| CommonHttpOptions::decode(&mut c))
            .unwrap_or_default();
        let http2 = o
            .obj("http2_protocol_options", "Http2ProtocolOptions")
            .map(|mut h| Http2Options::decode(&mut h))
            .unwrap_or_default();
        let mut accept_http_10 = false;
        let mut default_host_for_http_10 = None;
        if let Some(mut h1) = o.obj("http_protocol_options", "Http1ProtocolOptions") {
            accept_http_10 = h1.bool("accept_http_10").unwrap_or(false);
            default_host_for_http_10 = h1.string("default_host_for_http_10").filter(|s| !s.is_empty());
            // Absolute URLs are always accepted (Envoy's default is true).
            h1.accept(&["allow_absolute_url"]);
            h1.finish(&[
                "header_key_format",
                "enable_trailers",
                "allow_chunked_length",
                "override_stream_error_on_invalid_http_message",
                "send_fully_qualified_url",
                "use_balsa_parser",
                "allow_custom_methods",
            ]);
        }
        let max_request_headers_kb = o
            .uint("max_request_headers_kb", 1, MAX_MAX_REQUEST_HEADERS_KB)
            .map_or(DEFAULT_MAX_REQUEST_HEADERS_KB, |v| v as u32);
        let upgrade_configs = o.list_of("upgrade_configs", "UpgradeConfig", |u| {
            let upgrade_type = u.req_string("upgrade_type").to_ascii_lowercase();
            let enabled = u.bool("enabled").unwrap_or(true);
            u.finish(&["filters"]);
            UpgradeConfig { upgrade_type, enabled }
        });
        let strip_any_host_port = o.bool("strip_any_host_port").unwrap_or(false);
        let strip_matching_host_port = o.bool("strip_matching_host_port").unwrap_or(false);
        let add_user_agent = o.bool("add_user_agent").unwrap_or(false);
        let proxy_100_continue = o.bool("proxy_100_continue").unwrap_or(false);
        // No-ops here: Legate closes at once where Envoy waits `delayed_close_timeout` for the
        // peer to read a final reply; normalize_path/merge_slashes default to off in Envoy too.
        o.accept(&["delayed_close_timeout", "normalize_path", "merge_slashes", "internal_address_config"]);
        if o.bool("normalize_path") == Some(true) {
            o.error("normalize_path", "normalize_path is not supported by Legate yet");
        }
        o.finish(&[
            "tracing",
            "local_reply_config",
            "forward_client_cert_details",
            "set_current_client_cert_details",
            "scheme_header_transformation",
            "path_with_escaped_slashes_action",
            "original_ip_detection_extensions",
            "early_header_mutation_extensions",
            "request_id_extension",
            "user_agent",
            "http3_protocol_options",
            "max_request_headers_count",
            "represent_ipv4_remote_address_as_ipv4_mapped_ipv6",
            "proxy_status_config",
            "typed_header_validation_config",
            "append_x_forwarded_port",
            "append_local_overload",
            "add_proxy_protocol_connection_state",
            "access_log_options",
            "stream_error_on_invalid_http_message",
            "strip_trailing_host_dot",
        ]);
        HttpConnectionManagerConfig {
            stat_prefix,
            codec_type,
            route_config,
            http_filters,
            access_log,
            use_remote_address,
            xff_num_trusted_hops,
            skip_xff_append,
            via,
            generate_request_id,
            preserve_external_request_id,
            always_set_request_id_in_response,
            server_name,
            server_header_transformation,
            stream_idle_timeout,
            request_timeout,
            request_headers_timeout,
            drain_timeout,
            common,
            http2,
            max_request_headers_kb,
            upgrade_configs,
            strip_any_host_port,
            strip_matching_host_port,
            add_user_agent,
            proxy_100_continue,
            accept_http_10,
            default_host_for_http_10,
            path: o.path.clone(),
        }
    }
}

/// The upstream HTTP protocol a cluster asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    Http2,
    /// `use_downstream_protocol_config`: the downstream request's protocol.
    Downstream,
}

/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamHttpOptions {
    pub protocol: UpstreamProtocol,
    pub http2: Http2Options,
    pub common: CommonHttpOptions,
}

impl Default for UpstreamHttpOptions {
    fn default() -> Self {
        UpstreamHttpOptions {
            protocol: UpstreamProtocol::Http1,
            http2: Http2Options::default(),
            common: CommonHttpOptions::default(),
        }
    }
}

impl UpstreamHttpOptions {
    /// Decodes the cluster's `typed_extension_protocol_options` entry for HTTP, when present.
    pub fn decode_from_cluster(o: &mut Obj) -> UpstreamHttpOptions {
        let Some(mut all) = o.obj("typed_extension_protocol_options", "map<string, Any>") else {
            return UpstreamHttpOptions::default();
        };
        // Other keys belong to other protocols' filters (redis_proxy reads its own).
        let Some(mut h) = all.obj(HTTP_PROTOCOL_OPTIONS_KEY, "HttpProtocolOptions") else {
            return UpstreamHttpOptions::default();
        };
        let ty = h.string("@type").unwrap_or_default();
        if ty != HTTP_PROTOCOL_OPTIONS_TYPE {
            h.error("@type", format!("expected @type {HTTP_PROTOCOL_OPTIONS_TYPE}, found '{ty}'"));
        }
        let mut out = UpstreamHttpOptions::default();
        if let Some(mut e) = h.obj("explicit_http_config", "ExplicitHttpConfig") {
            if let Some(mut h2) = e.obj("http2_protocol_options", "Http2ProtocolOptions") {
                out.protocol = UpstreamProtocol::Http2;
                out.http2 = Http2Options::decode(&mut h2);
            }
            if let Some(mut h1) = e.obj("http_protocol_options", "Http1ProtocolOptions") {
                h1.finish(&[]);
            }
            e.finish(&["http3_protocol_options"]);
        }
        if let Some(mut d) = h.obj("use_downstream_protocol_config", "UseDownstreamHttpConfig") {
            out.protocol = UpstreamProtocol::Downstream;
            if let Some(mut h2) = d.obj("http2_protocol_options", "Http2ProtocolOptions") {
                out.http2 = Http2Options::decode(&mut h2);
            }
            d.accept(&["http_protocol_options"]);
            d.finish(&["http3_protocol_options"]);
        }
        if let Some(mut c) = h.obj("common_http_protocol_options", "HttpProtocolOptions") {
            out.common = CommonHttpOptions::decode(&mut c);
        }
        h.finish(&[
            "auto_config",
            "upstream_http_protocol_options",
            "http_filters",
            "header_validation_config",
            "outlier_detection",
        ]);
        out
    }
}
