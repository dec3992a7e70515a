//! Typed configs of the HTTP filters in an `http_connection_manager`'s `http_filters[]`,
//! dispatched on `typed_config["@type"]` (the filter `name` is the fallback), as
//! `filters.rs` does for network filters. Legate implements the router, `fault`,
//! `local_ratelimit` and `grpc_stats`; Envoy's other HTTP filters are named as unsupported.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::decode::{did_you_mean, Obj};
use super::tls::{string_match, StringMatch};
use super::typed_config::{no_typed_config, typed_kind, unknown_type};

const PREFIX: &str = "type.googleapis.com/envoy.extensions.filters.http.";
pub const ROUTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
pub const ROUTER_NAME: &str = "envoy.filters.http.router";
pub const FAULT_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
pub const FAULT_NAME: &str = "envoy.filters.http.fault";
pub const LOCAL_RATELIMIT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
pub const LOCAL_RATELIMIT_NAME: &str = "envoy.filters.http.local_ratelimit";
pub const GRPC_STATS_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig";
pub const GRPC_STATS_NAME: &str = "envoy.filters.http.grpc_stats";

/// The HTTP filters Legate knows, by `@type` and by name.
const KNOWN: &[(&str, &str)] = &[
    (ROUTER_TYPE, ROUTER_NAME),
    (FAULT_TYPE, FAULT_NAME),
    (LOCAL_RATELIMIT_TYPE, LOCAL_RATELIMIT_NAME),
    (GRPC_STATS_TYPE, GRPC_STATS_NAME),
];

/// Envoy HTTP filters Legate does not implement: named as such, not as typos. The `@type`
/// `...filters.http.<x>.v3.<Msg>` is matched on `<x>`.
const ENVOY_ONLY: &[&str] = &[
    "adaptive_concurrency",
    "admission_control",
    "alternate_protocols_cache",
    "api_key_auth",
    "aws_lambda",
    "aws_request_signing",
    "bandwidth_limit",
    "basic_auth",
    "buffer",
    "cache",
    "cdn_loop",
    "composite",
    "compressor",
    "connect_grpc_bridge",
    "cors",
    "credential_injector",
    "csrf",
    "custom_response",
    "decompressor",
    "dynamic_forward_proxy",
    "dynamo",
    "ext_authz",
    "ext_proc",
    "file_system_buffer",
    "gcp_authn",
    "geoip",
    "grpc_field_extraction",
    "grpc_http1_bridge",
    "grpc_http1_reverse_bridge",
    "grpc_json_transcoder",
    "grpc_web",
    "gzip",
    "header_mutation",
    "header_to_metadata",
    "health_check",
    "ip_tagging",
    "json_to_metadata",
    "jwt_authn",
    "kill_request",
    "lua",
    "oauth2",
    "on_demand",
    "original_src",
    "proto_message_extraction",
    "rate_limit_quota",
    "ratelimit",
    "rbac",
    "set_filter_state",
    "set_metadata",
    "stateful_session",
    "tap",
    "upstream_codec",
    "wasm",
];

/// Envoy's `fault.http.*` runtime keys (`RuntimeKeys` in fault_filter.h), the defaults of the
/// `*_runtime` fields.
pub const FAULT_DELAY_PERCENT_KEY: &str = "fault.http.delay.fixed_delay_percent";
pub const FAULT_ABORT_PERCENT_KEY: &str = "fault.http.abort.abort_percent";
pub const FAULT_DELAY_DURATION_KEY: &str = "fault.http.delay.fixed_duration_ms";
pub const FAULT_ABORT_HTTP_STATUS_KEY: &str = "fault.http.abort.http_status";
pub const FAULT_ABORT_GRPC_STATUS_KEY: &str = "fault.http.abort.grpc_status";
pub const FAULT_MAX_ACTIVE_FAULTS_KEY: &str = "fault.http.max_active_faults";

/// Envoy's default local rate limit status (`TooManyRequests`), used when `status` is unset
/// or below 400 (`toErrorCode`).
pub const LOCAL_RATELIMIT_DEFAULT_STATUS: u16 = 429;
/// Envoy's default `token_bucket.tokens_per_fill`.
pub const DEFAULT_TOKENS_PER_FILL: u32 = 1;
/// Envoy: "local rate limit token bucket fill timer must be >= 50ms".
pub const MIN_FILL_INTERVAL: Duration = Duration::from_millis(50);

/// One decoded `http_filters[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilterConfig {
    Router(RouterConfig),
    Fault(Box<FaultConfig>),
    LocalRateLimit(Box<LocalRateLimitConfig>),
    GrpcStats(GrpcStatsConfig),
}

/// `envoy.extensions.filters.http.router.v3.Router`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterConfig {
    /// Envoy's default: true.
    pub dynamic_stats: bool,
    pub suppress_envoy_headers: bool,
    pub respect_expected_rq_timeout: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { dynamic_stats: true, suppress_envoy_headers: false, respect_expected_rq_timeout: false }
    }
}

/// `type.v3.FractionalPercent`: `numerator / denominator` (100, 10 000 or 1 000 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FractionalPercent {
    pub numerator: u32,
    pub denominator: u32,
}

impl FractionalPercent {
    /// The protobuf default: 0 out of HUNDRED (never).
    pub const ZERO: FractionalPercent = FractionalPercent { numerator: 0, denominator: 100 };
}

/// `config.core.v3.RuntimeFractionalPercent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFractionalPercent {
    pub default_value: FractionalPercent,
    pub runtime_key: Option<String>,
}

/// What a `config.route.v3.HeaderMatcher` tests.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderMatch {
    Present(bool),
    /// `[start, end)`, as Envoy's `Int64Range`.
    Range(i64, i64),
    String(StringMatch, bool),
}

/// `config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcherConfig {
    pub name: HeaderName,
    pub kind: HeaderMatch,
    pub invert: bool,
    pub treat_missing_as_empty: bool,
}

/// `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

/// `config.core.v3.HeaderValueOption` (literal values only).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValueOptionConfig {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub action: AppendAction,
    pub keep_empty_value: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultDelayKind {
    Fixed(Duration),
    /// `header_delay`: `x-envoy-fault-delay-request` (ms).
    Header,
}

/// `extensions.filters.common.fault.v3.FaultDelay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultDelayConfig {
    pub kind: FaultDelayKind,
    pub percentage: FractionalPercent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAbortKind {
    Http(u16),
    Grpc(u32),
    /// `header_abort`: `x-envoy-fault-abort-request` / `x-envoy-fault-abort-grpc-request`.
    Header,
}

/// `extensions.filters.http.fault.v3.FaultAbort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultAbortConfig {
    pub kind: FaultAbortKind,
    pub percentage: FractionalPercent,
}

/// The runtime keys of one fault filter (`*_runtime` fields, Envoy's keys by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRuntimeKeys {
    pub delay_percent: String,
    pub abort_percent: String,
    pub delay_duration: String,
    pub abort_http_status: String,
    pub abort_grpc_status: String,
    pub max_active_faults: String,
}

/// `extensions.filters.http.fault.v3.HTTPFault`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub delay: Option<FaultDelayConfig>,
    pub abort: Option<FaultAbortConfig>,
    pub upstream_cluster: Option<String>,
    pub headers: Vec<HeaderMatcherConfig>,
    pub downstream_nodes: Vec<String>,
    /// `None`: unlimited (Envoy's default).
    pub max_active_faults: Option<u64>,
    pub runtime: FaultRuntimeKeys,
    pub disable_downstream_cluster_stats: bool,
    pub path: String,
}

/// `token_bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucketConfig {
    pub max_tokens: u32,
    pub tokens_per_fill: u32,
    pub fill_interval: Duration,
}

/// `extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRateLimitConfig {
    pub stat_prefix: String,
    pub status: u16,
    /// `None`: no bucket, every request is allowed (Envoy's "enabled globally, limited per
    /// route" form; per-route configs are not supported by Legate).
    pub token_bucket: Option<TokenBucketConfig>,
    /// `None`: 0% (Envoy's default: the filter does nothing).
    pub filter_enabled: Option<RuntimeFractionalPercent>,
    /// `None`: 0% (Envoy's default: limited requests are only counted).
    pub filter_enforced: Option<RuntimeFractionalPercent>,
    pub response_headers_to_add: Vec<HeaderValueOptionConfig>,
    pub request_headers_to_add_when_not_enforced: Vec<HeaderValueOptionConfig>,
    /// gRPC requests get RESOURCE_EXHAUSTED (8) rather than the status mapped from 429.
    pub rate_limited_as_resource_exhausted: bool,
    pub path: String,
}

/// Which gRPC methods get their own `<service>.<method>.` stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerMethodStats {
    /// `stats_for_all_methods: true`.
    All,
    /// `individual_method_stats_allowlist`: (service, methods).
    Allowlist(Vec<(String, Vec<String>)>),
    /// Neither set, or `stats_for_all_methods: false` (Envoy's current default).
    None,
}

/// `extensions.filters.http.grpc_stats.v3.FilterConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatsConfig {
    pub per_method: PerMethodStats,
    pub enable_upstream_stats: bool,
    pub replace_dots_in_grpc_service_name: bool,
    pub emit_filter_state: bool,
}

/// Decodes one `http_filters[]` entry `{name, typed_config, is_optional, disabled}`.
///
/// `None` means "not in the chain": an error was recorded, or the filter is `disabled` (Envoy
/// only runs those when a route enables them, which Legate does not support), or it is an
/// Envoy filter Legate lacks marked `is_optional` (skipped with a warning, as Envoy skips
/// optional filters it does not have).
pub fn decode_http_filter(o: &mut Obj) -> Option<HttpFilterConfig> {
    let name = o.req_string("name");
    let is_optional = o.bool("is_optional").unwrap_or(false);
    let disabled = o.bool("disabled").unwrap_or(false);
    let typed_config = o.obj("typed_config", "Any");
    let (has_config, has_discovery) = (o.has("config"), o.has("config_discovery"));
    if has_discovery {
        o.error("config_discovery", "field 'config_discovery' of HttpFilter is not supported by Legate");
    }
    o.finish(&[]);
    let Some(mut tc) = typed_config else {
        if has_config || !has_discovery {
            no_typed_config(o, has_config);
        }
        return None;
    };
    let (ty, kind) = typed_kind(&mut tc, &name, KNOWN);
    let out = match kind {
        Some(ROUTER_TYPE) => {
            tc.retype("Router");
            if disabled {
                o.error("disabled", "the router is the terminal filter and cannot be disabled");
            }
            Some(HttpFilterConfig::Router(decode_router(&mut tc)))
        }
        Some(FAULT_TYPE) => {
            tc.retype("HTTPFault");
            Some(HttpFilterConfig::Fault(Box::new(decode_fault(&mut tc))))
        }
        Some(LOCAL_RATELIMIT_TYPE) => {
            tc.retype("LocalRateLimit");
            Some(HttpFilterConfig::LocalRateLimit(Box::new(decode_local_ratelimit(&mut tc))))
        }
        Some(GRPC_STATS_TYPE) => {
            tc.retype("FilterConfig");
            Some(HttpFilterConfig::GrpcStats(decode_grpc_stats(&mut tc)))
        }
        _ => {
            let shown = if ty.is_empty() { name.clone() } else { ty.clone() };
            let at = if ty.is_empty() { tc.path.clone() } else { tc.at("@type") };
            let envoy_only = ENVOY_ONLY
                .iter()
                .find(|x| shown == format!("envoy.filters.http.{x}") || shown.starts_with(&format!("{PREFIX}{x}.")));
            match envoy_only {
                Some(x) if is_optional => {
                    tc.cx.warn(
                        &at,
                        format!(
                            "HTTP filter 'envoy.filters.http.{x}' is not supported by Legate; skipped (is_optional)"
                        ),
                    );
                }
                Some(x) => tc.cx.error(&at, format!("HTTP filter 'envoy.filters.http.{x}' is not supported by Legate")),
                None => tc.cx.error(&at, unknown_type("HTTP filter", &shown, KNOWN)),
            }
            return None;
        }
    };
    tc.finish(&[]);
    if disabled && !matches!(out, Some(HttpFilterConfig::Router(_))) {
        return None;
    }
    out
}

fn decode_router(o: &mut Obj) -> RouterConfig {
    let d = RouterConfig::default();
    let cfg = RouterConfig {
        dynamic_stats: o.bool("dynamic_stats").unwrap_or(d.dynamic_stats),
        suppress_envoy_headers: o.bool("suppress_envoy_headers").unwrap_or(d.suppress_envoy_headers),
        respect_expected_rq_timeout: o.bool("respect_expected_rq_timeout").unwrap_or(d.respect_expected_rq_timeout),
    };
    // Tracing is not implemented, so there is no span to start a child of.
    o.accept(&["start_child_span"]);
    o.finish(&[
        "upstream_log",
        "upstream_log_options",
        "strict_check_headers",
        "upstream_http_filters",
        "suppress_grpc_request_failure_code_stats",
    ]);
    cfg
}

/// `type.v3.FractionalPercent` at `key`, if present.
pub fn fractional_percent(o: &mut Obj, key: &'static str) -> Option<FractionalPercent> {
    let mut p = o.obj(key, "FractionalPercent")?;
    let numerator = p.uint("numerator", 0, u64::from(u32::MAX)).map_or(0, |n| n as u32);
    let denominator = match p.enumeration("denominator", &["HUNDRED", "TEN_THOUSAND", "MILLION"]) {
        Some("TEN_THOUSAND") => 10_000,
        Some("MILLION") => 1_000_000,
        _ => 100,
    };
    p.finish(&[]);
    Some(FractionalPercent { numerator, denominator })
}

fn runtime_fractional_percent(o: &mut Obj, key: &'static str) -> Option<RuntimeFractionalPercent> {
    let mut r = o.obj(key, "RuntimeFractionalPercent")?;
    let default_value = fractional_percent(&mut r, "default_value").unwrap_or_else(|| {
        r.missing("default_value");
        FractionalPercent::ZERO
    });
    let runtime_key = r.string("runtime_key").filter(|k| !k.is_empty());
    r.finish(&[]);
    Some(RuntimeFractionalPercent { default_value, runtime_key })
}

/// `config.route.v3.HeaderMatcher`.
pub fn header_matcher(o: &mut Obj) -> Option<HeaderMatcherConfig> {
    let raw_name = o.req_string("name");
    let invert = o.bool("invert_match").unwrap_or(false);
    let treat_missing_as_empty = o.bool("treat_missing_header_as_empty").unwrap_or(false);
    let mut kinds = Vec::new();
    if let Some(v) = o.string("exact_match") {
        kinds.push(HeaderMatch::String(StringMatch::Exact(v), false));
    }
    if let Some(v) = o.string("prefix_match") {
        kinds.push(HeaderMatch::String(StringMatch::Prefix(v), false));
    }
    if let Some(v) = o.string("suffix_match") {
        kinds.push(HeaderMatch::String(StringMatch::Suffix(v), false));
    }
    if let Some(v) = o.string("contains_match") {
        kinds.push(HeaderMatch::String(StringMatch::Contains(v), false));
    }
    if let Some(mut r) = o.obj("safe_regex_match", "RegexMatcher") {
        let re = r.req_string("regex");
        r.accept(&["google_re2"]);
        r.finish(&[]);
        match regex::Regex::new(&format!("^(?:{re})$")) {
            Ok(re) => kinds.push(HeaderMatch::String(StringMatch::Regex(re), false)),
            Err(e) => o.error("safe_regex_match", format!("invalid regex: {e}")),
        }
    }
    if let Some(p) = o.bool("present_match") {
        kinds.push(HeaderMatch::Present(p));
    }
    if let Some(mut r) = o.obj("range_match", "Int64Range") {
        let int = |r: &mut Obj, k: &'static str| {
            r.raw(k).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        };
        let (start, end) = (int(&mut r, "start").unwrap_or(0), int(&mut r, "end").unwrap_or(0));
        r.finish(&[]);
        kinds.push(HeaderMatch::Range(start, end));
    }
    if let Some(mut s) = o.obj("string_match", "StringMatcher") {
        let ignore_case = s.bool("ignore_case").unwrap_or(false);
        if let Some(m) = string_match(&mut s) {
            kinds.push(HeaderMatch::String(m, ignore_case));
        }
        s.finish(&[]);
    }
    o.finish(&[]);
    if kinds.len() > 1 {
        o.cx.error(&o.path, "a HeaderMatcher takes only one of its match fields");
    }
    let name = match HeaderName::from_bytes(raw_name.to_ascii_lowercase().as_bytes()) {
        Ok(n) => n,
        Err(_) => {
            if !raw_name.is_empty() {
                o.error("name", format!("invalid header name '{raw_name}'"));
            }
            return None;
        }
    };
    // Envoy: a matcher with only a name matches when the header is present.
    let kind = kinds.pop().unwrap_or(HeaderMatch::Present(true));
    Some(HeaderMatcherConfig { name, kind, invert, treat_missing_as_empty })
}

/// `config.core.v3.HeaderValueOption` list at `key`. Envoy's `%OPERATOR%` substitutions are
/// not supported (a literal `%` is written `%%`, as in Envoy).
pub fn header_value_options(o: &mut Obj, key: &'static str) -> Vec<HeaderValueOptionConfig> {
    o.list_of(key, "HeaderValueOption", |h| {
        let append = h.bool("append");
        let action = h.enumeration(
            "append_action",
            &["APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"],
        );
        let keep_empty_value = h.bool("keep_empty_value").unwrap_or(false);
        let action = match (action, append) {
            (Some(_), Some(_)) => {
                h.cx.error(&h.path, "only one of 'append' and 'append_action' may be set");
                AppendAction::AppendIfExistsOrAdd
            }
            (Some("ADD_IF_ABSENT"), None) => AppendAction::AddIfAbsent,
            (Some("OVERWRITE_IF_EXISTS_OR_ADD"), None) | (None, Some(false)) => AppendAction::OverwriteIfExistsOrAdd,
            (Some("OVERWRITE_IF_EXISTS"), None) => AppendAction::OverwriteIfExists,
            _ => AppendAction::AppendIfExistsOrAdd,
        };
        let header = h.obj("header", "HeaderValue").and_then(|mut hv| {
            let key = hv.req_string("key");
            let value = hv.string("value").unwrap_or_default();
            hv.finish(&["raw_value"]);
            let name = HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes());
            if value.replace("%%", "").contains('%') {
                hv.error(
                    "value",
                    "header value operators (%...%) are not supported by Legate; write a literal % as %%",
                );
                return None;
            }
            let value = HeaderValue::from_str(&value.replace("%%", "%"));
            match (name, value) {
                (Ok(n), Ok(v)) => Some((n, v)),
                (Err(_), _) => {
                    if !key.is_empty() {
                        hv.error("key", format!("invalid header name '{key}'"));
                    }
                    None
                }
                (_, Err(_)) => {
                    hv.error("value", "invalid header value");
                    None
                }
            }
        });
        if !h.has("header") {
            h.missing("header");
        }
        header.map(|(name, value)| HeaderValueOptionConfig { name, value, action, keep_empty_value })
    })
    .into_iter()
    .flatten()
    .collect()
}

fn warn_zero_percent(o: &Obj, key: &str, what: &str) {
    o.cx.warn(&o.path, format!("{what} has no '{key}': Envoy's default is 0%, so this fault is never injected"));
}

/// Envoy's `extensions.filters.common.fault.v3.FaultDelay`, shared by the HTTP fault filter and
/// mongo_proxy's `delay`.
pub(crate) fn decode_fault_delay(d: &mut Obj) -> Option<FaultDelayConfig> {
    let fixed = d.duration("fixed_delay");
    let header = d.has("header_delay");
    let percentage = fractional_percent(d, "percentage");
    if percentage.is_none() {
        warn_zero_percent(d, "percentage", "delay");
    }
    // `type` is deprecated in Envoy and has the single value FIXED.
    d.accept(&["type"]);
    d.finish(&[]);
    let kind = match (fixed, header) {
        (Some(_), true) => {
            d.cx.error(&d.path, "only one of 'fixed_delay' and 'header_delay' may be set");
            return None;
        }
        (Some(f), false) if f.is_zero() => {
            d.error("fixed_delay", "fixed_delay must be greater than 0s");
            return None;
        }
        (Some(f), false) => FaultDelayKind::Fixed(f),
        (None, true) => FaultDelayKind::Header,
        (None, false) => {
            d.cx.error(&d.path, "FaultDelay needs 'fixed_delay' or 'header_delay'");
            return None;
        }
    };
    Some(FaultDelayConfig { kind, percentage: percentage.unwrap_or(FractionalPercent::ZERO) })
}

fn decode_fault(o: &mut Obj) -> FaultConfig {
    let delay = o.obj("delay", "FaultDelay").and_then(|mut d| decode_fault_delay(&mut d));
    let abort = o.obj("abort", "FaultAbort").and_then(|mut a| {
        let mut kinds = Vec::new();
        // FaultAbort.http_status: `[(validate.rules).uint32 = {lt: 600 gte: 200}]`.
        if let Some(s) = a.uint("http_status", 200, 599) {
            kinds.push(FaultAbortKind::Http(s as u16));
        }
        if let Some(s) = a.uint("grpc_status", 0, u64::from(u32::MAX)) {
            kinds.push(FaultAbortKind::Grpc(s as u32));
        }
        if a.has("header_abort") {
            kinds.push(FaultAbortKind::Header);
        }
        let percentage = fractional_percent(&mut a, "percentage");
        if percentage.is_none() {
            warn_zero_percent(&a, "percentage", "abort");
        }
        a.finish(&[]);
        if kinds.len() > 1 {
            a.cx.error(&a.path, "only one of 'http_status', 'grpc_status' and 'header_abort' may be set");
        }
        let Some(kind) = kinds.pop() else {
            if !a.has("http_status") {
                a.cx.error(&a.path, "FaultAbort needs 'http_status', 'grpc_status' or 'header_abort'");
            }
            return None;
        };
        Some(FaultAbortConfig { kind, percentage: percentage.unwrap_or(FractionalPercent::ZERO) })
    });
    let upstream_cluster = o.string("upstream_cluster").filter(|c| !c.is_empty());
    let headers = o.list_of("headers", "HeaderMatcher", header_matcher).into_iter().flatten().collect();
    let downstream_nodes = o.strings("downstream_nodes");
    let max_active_faults = o.uint("max_active_faults", 0, u64::from(u32::MAX));
    let mut key = |k: &'static str, default: &str| o.string(k).filter(|s| !s.is_empty()).unwrap_or(default.into());
    let runtime = FaultRuntimeKeys {
        delay_percent: key("delay_percent_runtime", FAULT_DELAY_PERCENT_KEY),
        abort_percent: key("abort_percent_runtime", FAULT_ABORT_PERCENT_KEY),
        delay_duration: key("delay_duration_runtime", FAULT_DELAY_DURATION_KEY),
        abort_http_status: key("abort_http_status_runtime", FAULT_ABORT_HTTP_STATUS_KEY),
        abort_grpc_status: key("abort_grpc_status_runtime", FAULT_ABORT_GRPC_STATUS_KEY),
        max_active_faults: key("max_active_faults_runtime", FAULT_MAX_ACTIVE_FAULTS_KEY),
    };
    let disable_downstream_cluster_stats = o.bool("disable_downstream_cluster_stats").unwrap_or(false);
    o.finish(&["response_rate_limit", "response_rate_limit_percent_runtime", "filter_metadata"]);
    FaultConfig {
        delay,
        abort,
        upstream_cluster,
        headers,
        downstream_nodes,
        max_active_faults,
        runtime,
        disable_downstream_cluster_stats,
        path: o.path.clone(),
    }
}

/// `type.v3.StatusCode` names (`HttpStatus.code`).
const STATUS_CODES: &[(&str, u16)] = &[
    ("Continue", 100),
    ("OK", 200),
    ("Created", 201),
    ("Accepted", 202),
    ("NoContent", 204),
    ("MovedPermanently", 301),
    ("Found", 302),
    ("NotModified", 304),
    ("BadRequest", 400),
    ("Unauthorized", 401),
    ("PaymentRequired", 402),
    ("Forbidden", 403),
    ("NotFound", 404),
    ("MethodNotAllowed", 405),
    ("NotAcceptable", 406),
    ("ProxyAuthenticationRequired", 407),
    ("RequestTimeout", 408),
    ("Conflict", 409),
    ("Gone", 410),
    ("LengthRequired", 411),
    ("PreconditionFailed", 412),
    ("PayloadTooLarge", 413),
    ("URITooLong", 414),
    ("UnsupportedMediaType", 415),
    ("RangeNotSatisfiable", 416),
    ("ExpectationFailed", 417),
    ("MisdirectedRequest", 421),
    ("UnprocessableEntity", 422),
    ("Locked", 423),
    ("FailedDependency", 424),
    ("UpgradeRequired", 426),
    ("PreconditionRequired", 428),
    ("TooManyRequests", 429),
    ("RequestHeaderFieldsTooLarge", 431),
    ("InternalServerError", 500),
    ("NotImplemented", 501),
    ("BadGateway", 502),
    ("ServiceUnavailable", 503),
    ("GatewayTimeout", 504),
    ("HTTPVersionNotSupported", 505),
    ("VariantAlsoNegotiates", 506),
    ("InsufficientStorage", 507),
    ("LoopDetected", 508),
    ("NotExtended", 510),
    ("NetworkAuthenticationRequired", 511),
];

fn http_status(o: &mut Obj, key: &'static str) -> Option<u16> {
    let mut s = o.obj(key, "HttpStatus")?;
    let code = match s.raw("code") {
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(c) if (100..=599).contains(&c) => Some(c as u16),
            _ => {
                s.error("code", format!("invalid HTTP status {n}"));
                None
            }
        },
        Some(serde_json::Value::String(name)) => {
            let found = STATUS_CODES.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
            if found.is_none() {
                let mut msg = format!("invalid value '{name}' for enum StatusCode");
                if let Some(best) = did_you_mean(name, STATUS_CODES.iter().map(|(n, _)| *n)) {
                    msg.push_str(&format!(" (did you mean '{best}'?)"));
                }
                s.error("code", msg);
            }
            found
        }
        Some(_) => {
            s.error("code", "expected a StatusCode name or number");
            None
        }
        None => {
            s.missing("code");
            None
        }
    };
    s.finish(&[]);
    code
}

fn decode_local_ratelimit(o: &mut Obj) -> LocalRateLimitConfig {
    let stat_prefix = o.req_string("stat_prefix");
    // Envoy's `toErrorCode`: a status below 400 becomes 429.
    let status = http_status(o, "status").filter(|c| *c >= 400).unwrap_or(LOCAL_RATELIMIT_DEFAULT_STATUS);
    let token_bucket = o.obj("token_bucket", "TokenBucket").and_then(|mut t| {
        let max_tokens = t.uint("max_tokens", 1, u64::from(u32::MAX)).map(|n| n as u32);
        if !t.has("max_tokens") {
            t.missing("max_tokens");
        }
        let tokens_per_fill =
            t.uint("tokens_per_fill", 1, u64::from(u32::MAX)).map_or(DEFAULT_TOKENS_PER_FILL, |n| n as u32);
        let fill_interval = t.duration("fill_interval");
        match fill_interval {
            None if !t.has("fill_interval") => t.missing("fill_interval"),
            Some(d) if d < MIN_FILL_INTERVAL => {
                t.error("fill_interval", "local rate limit token bucket fill timer must be >= 50ms")
            }
            _ => {}
        }
        t.finish(&[]);
        Some(TokenBucketConfig {
            max_tokens: max_tokens?,
            tokens_per_fill,
            fill_interval: fill_interval.filter(|d| *d >= MIN_FILL_INTERVAL)?,
        })
    });
    let filter_enabled = runtime_fractional_percent(o, "filter_enabled");
    if filter_enabled.is_none() {
        o.cx.warn(
            &o.path,
            "local_ratelimit has no 'filter_enabled': Envoy's default is 0%, so this filter does nothing",
        );
    }
    let filter_enforced = runtime_fractional_percent(o, "filter_enforced");
    let response_headers_to_add = header_value_options(o, "response_headers_to_add");
    let request_headers_to_add_when_not_enforced = header_value_options(o, "request_headers_to_add_when_not_enforced");
    let rate_limited_as_resource_exhausted = o.bool("rate_limited_as_resource_exhausted").unwrap_or(false);
    if o.bool("local_rate_limit_per_downstream_connection") == Some(true) {
        o.error(
            "local_rate_limit_per_downstream_connection",
            "per-connection token buckets are not supported by Legate (the bucket is shared by all workers)",
        );
    }
    if o.raw("descriptors").and_then(|d| d.as_array()).is_some_and(|d| !d.is_empty()) {
        o.error("descriptors", "field 'descriptors' of LocalRateLimit is not supported by Legate");
    }
    if o.enumeration("enable_x_ratelimit_headers", &["OFF", "DRAFT_VERSION_03"]) == Some("DRAFT_VERSION_03") {
        o.error("enable_x_ratelimit_headers", "x-ratelimit-* headers are not supported by Legate");
    }
    // Only meaningful with descriptors / route rate-limit actions.
    o.accept(&["stage", "always_consume_default_token_bucket", "vh_rate_limits", "max_dynamic_descriptors"]);
    o.finish(&["rate_limits", "local_cluster_rate_limit"]);
    LocalRateLimitConfig {
        stat_prefix,
        status,
        token_bucket,
        filter_enabled,
        filter_enforced,
        response_headers_to_add,
        request_headers_to_add_when_not_enforced,
        rate_limited_as_resource_exhausted,
        path: o.path.clone(),
    }
}

fn decode_grpc_stats(o: &mut Obj) -> GrpcStatsConfig {
    let all = o.bool("stats_for_all_methods");
    let allowlist = o.obj("individual_method_stats_allowlist", "GrpcMethodList").map(|mut l| {
        let services = l.list_of("services", "Service", |s| (s.req_string("name"), s.strings("method_names")));
        l.finish(&[]);
        services
    });
    let per_method = match (all, allowlist) {
        (Some(_), Some(_)) => {
            o.cx.error(
                &o.path,
                "only one of 'stats_for_all_methods' and 'individual_method_stats_allowlist' may be set",
            );
            PerMethodStats::None
        }
        (Some(true), None) => PerMethodStats::All,
        (None, Some(list)) => PerMethodStats::Allowlist(list),
        // Envoy's default became false (stats_for_all_methods=false) after its deprecation.
        _ => PerMethodStats::None,
    };
    let cfg = GrpcStatsConfig {
        per_method,
        enable_upstream_stats: o.bool("enable_upstream_stats").unwrap_or(false),
        replace_dots_in_grpc_service_name: o.bool("replace_dots_in_grpc_service_name").unwrap_or(false),
        emit_filter_state: o.bool("emit_filter_state").unwrap_or(false),
    };
    o.finish(&[]);
    cfg
}

#[cfg(test)]
#[path = "http_filters_tests.rs"]
mod tests;
