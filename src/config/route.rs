//! `envoy.config.route.v3.RouteConfiguration` (the HTTP connection manager's inline
//! `route_config`), decoded and validated as Envoy does, straight into the compiled values the
//! route table serves with (`filter::http::route_table`): regexes, header names and values and
//! `%VAR%` templates are compiled here, once, so a bad one is reported with its YAML path.
//!
//! Checks made as Envoy makes them: domains unique across virtual hosts (case-insensitively)
//! and only one `*`; exactly one path specifier per match and one action per route; regexes
//! compile; statuses in range; `append` and `append_action` not both; pseudo-headers and `host`
//! never mutated; a direct-response body at most `max_direct_response_body_size_bytes`;
//! weighted clusters summing to more than 0; `max_interval` ≥ `base_interval`; no duplicate
//! upgrade types. Stricter than Envoy (it would fail at run time instead): a `regex_rewrite`
//! substitution naming a capture group the pattern lacks, and `cluster_header` /
//! `host_rewrite_header` names that are not valid header names.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::decode::{kind, Obj};
use crate::filter::http::route_table::{
    AppendAction, ClusterChoice, ForwardAction, HashKind, HashPolicy, HeaderAdd, HeaderKey, HeaderMatch, HeaderMatcher,
    HeaderMutations, HeaderValueTemplate, HostRewrite, MirrorPolicy, PathMatch, PathRewrite, QueryMatch,
    QueryParameterMatcher, RedirectAction, RedirectPath, Regex, RequireTls, RetryOn, RetryPolicy, Route, RouteAction,
    RouteMatcher, StringMatch, StringMatcher, ValuePiece, VirtualHost, WeightedCluster, WeightedClusters,
    DEFAULT_NUM_RETRIES, DEFAULT_RETRY_BASE_INTERVAL, DEFAULT_RETRY_MAX_INTERVAL_FACTOR,
};

/// Envoy's route `timeout` default (15 s); `0s` disables it.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Envoy's `max_direct_response_body_size_bytes` default (4096).
pub const DEFAULT_MAX_DIRECT_RESPONSE_BODY_SIZE: u64 = 4096;
/// Envoy's `cluster_not_found_response_code` default: SERVICE_UNAVAILABLE.
pub const DEFAULT_CLUSTER_NOT_FOUND_CODE: u16 = 503;
/// Envoy's redirect `response_code` default: MOVED_PERMANENTLY.
pub const DEFAULT_REDIRECT_CODE: u16 = 301;
/// proto: `HeaderValue.value` is at most 16384 bytes.
const MAX_HEADER_VALUE_LEN: usize = 16384;

/// The `%VAR%` operators Legate evaluates in header values.
const SUPPORTED_OPERATORS: &[(&str, ValuePiece)] = &[
    ("DOWNSTREAM_REMOTE_ADDRESS", ValuePiece::DownstreamRemoteAddress),
    ("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", ValuePiece::DownstreamRemoteAddressWithoutPort),
    ("DOWNSTREAM_LOCAL_ADDRESS", ValuePiece::DownstreamLocalAddress),
    ("PROTOCOL", ValuePiece::Protocol),
    ("UPSTREAM_REMOTE_ADDRESS", ValuePiece::UpstreamRemoteAddress),
];

/// One virtual host and the domains it serves (lower-cased).
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHostConfig {
    pub domains: Vec<String>,
    pub host: VirtualHost,
    pub path: String,
}

/// A decoded `RouteConfiguration`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHostConfig>,
    pub request_headers: HeaderMutations,
    pub response_headers: HeaderMutations,
    pub most_specific_header_mutations_wins: bool,
    pub ignore_port_in_host_matching: bool,
    /// `validate_clusters` (true for a static route table): an unknown cluster is a config error.
    pub validate_clusters: bool,
    pub path: String,
}

impl RouteConfig {
    /// Every statically named cluster (route `cluster`, weighted clusters, mirrors).
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.virtual_hosts.iter().flat_map(|vh| vh.host.routes()).flat_map(|r| {
            let (named, mirrors): (Vec<&str>, &[MirrorPolicy]) = match &r.action {
                RouteAction::Forward(f) => {
                    let named = match &f.cluster {
                        ClusterChoice::Name(n) => vec![n.as_str()],
                        ClusterChoice::Header(_) => vec![],
                        ClusterChoice::Weighted(w) => w.clusters().iter().map(|c| c.name.as_str()).collect(),
                    };
                    (named, &f.mirrors)
                }
                _ => (vec![], &[]),
            };
            named.into_iter().chain(mirrors.iter().map(|m| m.cluster.as_str()))
        })
    }
}

/// `retry_policy` as decoded (the route table shares it as `Arc<RetryPolicy>`).
pub type RetryPolicyConfig = RetryPolicy;

/// Decodes `envoy.config.route.v3.RouteConfiguration` and finishes `o`.
pub fn decode_route_config(o: &mut Obj) -> RouteConfig {
    let name = o.string("name").unwrap_or_default();
    let max_body = o.uint("max_direct_response_body_size_bytes", 0, u64::from(u32::MAX));
    let max_body = max_body.unwrap_or(DEFAULT_MAX_DIRECT_RESPONSE_BODY_SIZE);
    let virtual_hosts = o.list_of("virtual_hosts", "VirtualHost", |v| decode_virtual_host(v, max_body));
    let request_headers = decode_mutations(o, "request_headers_to_add", "request_headers_to_remove");
    let response_headers = decode_mutations(o, "response_headers_to_add", "response_headers_to_remove");
    let most_specific_header_mutations_wins = o.bool("most_specific_header_mutations_wins").unwrap_or(false);
    let ignore_port_in_host_matching = o.bool("ignore_port_in_host_matching").unwrap_or(false);
    let validate_clusters = o.bool("validate_clusters").unwrap_or(true);
    // Harmless: Legate has no metadata consumers.
    o.accept(&["metadata"]);
    check_domains(o, &name, &virtual_hosts);
    o.finish(&[
        "vhds",
        "internal_only_headers",
        "cluster_specifier_plugins",
        "request_mirror_policies",
        "ignore_path_parameters_in_path_matching",
        "typed_per_filter_config",
    ]);
    RouteConfig {
        name,
        virtual_hosts,
        request_headers,
        response_headers,
        most_specific_header_mutations_wins,
        ignore_port_in_host_matching,
        validate_clusters,
        path: o.path.clone(),
    }
}

/// Envoy: a domain may appear once across all virtual hosts (compared lower-cased) and only
/// one `*` is allowed.
fn check_domains(o: &Obj, route_name: &str, vhosts: &[VirtualHostConfig]) {
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut star: Option<&str> = None;
    for vh in vhosts {
        for (i, d) in vh.domains.iter().enumerate() {
            let at = format!("{}.domains[{i}]", vh.path);
            if d == "*" {
                if let Some(other) = star {
                    o.cx.error(
                        &at,
                        format!(
                            "Only a single wildcard domain is permitted in route {route_name} \
                             (virtual host '{other}' already has '*')"
                        ),
                    );
                }
                star = Some(&vh.host.name);
            } else if let Some(other) = seen.insert(d, &vh.host.name) {
                o.cx.error(
                    &at,
                    format!(
                        "Only unique values for domains are permitted. Duplicate entry of domain {d} in route \
                         {route_name} (already in virtual host '{other}')"
                    ),
                );
            }
        }
    }
}

fn decode_virtual_host(o: &mut Obj, max_body: u64) -> VirtualHostConfig {
    let name = o.req_string("name");
    let mut domains = Vec::new();
    let items = o.list("domains");
    if items.is_empty() {
        o.error("domains", "a virtual host needs at least one domain");
    }
    for (path, v) in items {
        match v {
            Value::String(s) if s.is_empty() => o.cx.error(&path, "a domain must not be empty"),
            Value::String(s) if s.chars().any(char::is_control) => {
                o.cx.error(&path, "a domain must not contain control characters")
            }
            Value::String(s) => domains.push(s.to_ascii_lowercase()),
            other => o.cx.error(&path, format!("expected a string, found {}", kind(other))),
        }
    }
    let routes = o.list_of("routes", "Route", |r| decode_route(r, max_body));
    let require_tls = match o.enumeration("require_tls", &["NONE", "EXTERNAL_ONLY", "ALL"]) {
        Some("EXTERNAL_ONLY") => RequireTls::ExternalOnly,
        Some("ALL") => RequireTls::All,
        _ => RequireTls::None,
    };
    let request_headers = decode_mutations(o, "request_headers_to_add", "request_headers_to_remove");
    let response_headers = decode_mutations(o, "response_headers_to_add", "response_headers_to_remove");
    let include_request_attempt_count = o.bool("include_request_attempt_count").unwrap_or(false);
    let include_attempt_count_in_response = o.bool("include_attempt_count_in_response").unwrap_or(false);
    let retry_policy = o.obj("retry_policy", "RetryPolicy").map(|mut r| Arc::new(decode_retry_policy(&mut r)));
    let per_request_buffer_limit_bytes = o.uint("per_request_buffer_limit_bytes", 0, u64::from(u32::MAX));
    o.accept(&["metadata"]);
    o.finish(&[
        "matcher",
        "virtual_clusters",
        "rate_limits",
        "cors",
        "typed_per_filter_config",
        "retry_policy_typed_config",
        "hedge_policy",
        "include_is_timeout_retry_header",
        "request_mirror_policies",
    ]);
    let host = VirtualHost {
        name,
        retry_policy,
        include_request_attempt_count,
        include_attempt_count_in_response,
        request_headers,
        response_headers,
        require_tls,
        per_request_buffer_limit_bytes: per_request_buffer_limit_bytes.map(|n| n as u32),
        routes,
    };
    VirtualHostConfig { domains, host, path: o.path.clone() }
}

/// A placeholder for a route whose match or action did not decode (the errors are recorded).
fn never_matches() -> RouteMatcher {
    RouteMatcher {
        path: PathMatch::Exact(String::new()),
        case_sensitive: true,
        headers: Vec::new(),
        query_parameters: Vec::new(),
        grpc: false,
        runtime_fraction: Some((0, 100)),
    }
}

fn decode_route(o: &mut Obj, max_body: u64) -> Route {
    let name = o.string("name").filter(|n| !n.is_empty());
    let matcher = match o.obj("match", "RouteMatch") {
        Some(mut m) => decode_match(&mut m),
        None => {
            o.missing("match");
            None
        }
    };
    let present: Vec<&str> = ["route", "redirect", "direct_response"].into_iter().filter(|k| o.has(k)).collect();
    let unsupported = ["filter_action", "non_forwarding_action"].into_iter().any(|k| o.has(k));
    let action = match present.as_slice() {
        ["route"] => o.obj("route", "RouteAction").map(|mut a| RouteAction::Forward(Box::new(decode_forward(&mut a)))),
        ["redirect"] => {
            o.obj("redirect", "RedirectAction").map(|mut a| RouteAction::Redirect(Box::new(decode_redirect(&mut a))))
        }
        ["direct_response"] => {
            o.obj("direct_response", "DirectResponseAction").map(|mut a| decode_direct(&mut a, max_body))
        }
        [] if unsupported => None,
        [] => {
            o.cx.error(&o.path, "a Route needs exactly one action: route, redirect or direct_response");
            None
        }
        many => {
            o.cx.error(
                &o.path,
                format!(
                    "a Route needs exactly one action: route, redirect or direct_response (found {})",
                    many.join(", ")
                ),
            );
            None
        }
    };
    let request_headers = decode_mutations(o, "request_headers_to_add", "request_headers_to_remove");
    let response_headers = decode_mutations(o, "response_headers_to_add", "response_headers_to_remove");
    let per_request_buffer_limit_bytes = o.uint("per_request_buffer_limit_bytes", 0, u64::from(u32::MAX));
    // Harmless without a tracer or metadata consumers.
    o.accept(&["metadata", "decorator", "tracing"]);
    o.finish(&["typed_per_filter_config", "stat_prefix", "filter_action", "non_forwarding_action"]);
    Route {
        name,
        action: action.unwrap_or(RouteAction::DirectResponse { status: 404, body: Bytes::new() }),
        request_headers,
        response_headers,
        per_request_buffer_limit_bytes: per_request_buffer_limit_bytes.map(|n| n as u32),
        matcher: matcher.unwrap_or_else(never_matches),
    }
}

fn decode_match(o: &mut Obj) -> Option<RouteMatcher> {
    let specifiers = ["prefix", "path", "safe_regex", "path_separated_prefix", "connect_matcher", "path_match_policy"];
    let present: Vec<&str> = specifiers.into_iter().filter(|k| o.has(k)).collect();
    let path = match present.as_slice() {
        ["prefix"] => header_value_string(o, "prefix").map(PathMatch::Prefix),
        ["path"] => header_value_string(o, "path").map(PathMatch::Exact),
        ["safe_regex"] => {
            o.obj("safe_regex", "RegexMatcher").and_then(|mut r| regex_matcher(&mut r)).map(PathMatch::Regex)
        }
        ["path_separated_prefix"] => {
            let p = o.string("path_separated_prefix").unwrap_or_default();
            // proto: `^[^?#]+[^?#/]$`.
            let ok = p.len() >= 2 && !p.contains(['?', '#']) && !p.ends_with('/');
            if !ok {
                o.error(
                    "path_separated_prefix",
                    "value does not match regex pattern \"^[^?#]+[^?#/]$\" (no '?' or '#', and no trailing '/')",
                );
            }
            ok.then_some(PathMatch::SeparatedPrefix(p))
        }
        [] => {
            o.cx.error(&o.path, "a RouteMatch needs exactly one of prefix, path, safe_regex or path_separated_prefix");
            None
        }
        [_] => None, // connect_matcher / path_match_policy: reported by finish
        many => {
            o.cx.error(
                &o.path,
                format!(
                    "a RouteMatch needs exactly one of prefix, path, safe_regex or path_separated_prefix (found {})",
                    many.join(", ")
                ),
            );
            None
        }
    };
    let case_sensitive = o.bool("case_sensitive").unwrap_or(true);
    let runtime_fraction = o.obj("runtime_fraction", "RuntimeFractionalPercent").map(|mut r| runtime_fraction(&mut r));
    let headers = o.list_of("headers", "HeaderMatcher", decode_header_matcher).into_iter().flatten().collect();
    let query_parameters =
        o.list_of("query_parameters", "QueryParameterMatcher", decode_query_matcher).into_iter().flatten().collect();
    let grpc = match o.obj("grpc", "GrpcRouteMatchOptions") {
        Some(mut g) => {
            g.finish(&[]);
            true
        }
        None => false,
    };
    o.finish(&["connect_matcher", "path_match_policy", "tls_context", "dynamic_metadata", "filter_state"]);
    Some(RouteMatcher { path: path?, case_sensitive, headers, query_parameters, grpc, runtime_fraction })
}

/// A string that must be a valid header value (proto `well_known_regex: HTTP_HEADER_VALUE`).
fn header_value_string(o: &mut Obj, key: &'static str) -> Option<String> {
    let s = o.string(key)?;
    if s.bytes().any(|b| b == 0 || b == b'\r' || b == b'\n') {
        o.error(key, "must not contain NUL, CR or LF");
        return None;
    }
    Some(s)
}

/// `RuntimeFractionalPercent` → (numerator, denominator); the runtime key is read from
/// nowhere (Legate's runtime has no layers that could override it), so the default applies.
fn runtime_fraction(o: &mut Obj) -> (u64, u64) {
    let out = match o.obj("default_value", "FractionalPercent") {
        Some(mut f) => fractional_percent(&mut f),
        None => {
            o.missing("default_value");
            (0, 100)
        }
    };
    o.accept(&["runtime_key"]);
    o.finish(&[]);
    out
}

fn fractional_percent(o: &mut Obj) -> (u64, u64) {
    let num = o.uint("numerator", 0, u64::from(u32::MAX)).unwrap_or(0);
    let den = match o.enumeration("denominator", &["HUNDRED", "TEN_THOUSAND", "MILLION"]) {
        Some("TEN_THOUSAND") => 10_000,
        Some("MILLION") => 1_000_000,
        _ => 100,
    };
    o.finish(&[]);
    (num, den)
}

/// `RegexMatcher` (full-match).
fn regex_matcher(o: &mut Obj) -> Option<Regex> {
    regex_matcher_with(o, Regex::full)
}

fn regex_matcher_with(o: &mut Obj, compile: fn(&str) -> Result<Regex, String>) -> Option<Regex> {
    // `google_re2{max_program_size}` is deprecated; Legate caps the compiled size instead.
    o.accept(&["google_re2"]);
    let src = o.req_string("regex");
    o.finish(&[]);
    if src.is_empty() {
        return None;
    }
    match compile(&src) {
        Ok(re) => Some(re),
        Err(e) => {
            o.error("regex", format!("invalid regex '{src}': {e}"));
            None
        }
    }
}

/// `envoy.type.matcher.v3.StringMatcher`.
fn decode_string_matcher(o: &mut Obj) -> Option<StringMatcher> {
    let ignore_case = o.bool("ignore_case").unwrap_or(false);
    let present: Vec<&str> =
        ["exact", "prefix", "suffix", "contains", "safe_regex", "custom"].into_iter().filter(|k| o.has(k)).collect();
    let kind = match present.as_slice() {
        ["exact"] => o.string("exact").map(StringMatch::Exact),
        ["prefix"] => non_empty(o, "prefix").map(StringMatch::Prefix),
        ["suffix"] => non_empty(o, "suffix").map(StringMatch::Suffix),
        ["contains"] => non_empty(o, "contains").map(StringMatch::Contains),
        ["safe_regex"] => {
            if ignore_case {
                o.error("ignore_case", "ignore_case has no effect for safe_regex.");
            }
            o.obj("safe_regex", "RegexMatcher").and_then(|mut r| regex_matcher(&mut r)).map(StringMatch::Regex)
        }
        ["custom"] => None,
        [] => {
            o.cx.error(&o.path, "a StringMatcher needs one of exact, prefix, suffix, contains or safe_regex");
            None
        }
        many => {
            o.cx.error(
                &o.path,
                format!(
                    "a StringMatcher needs exactly one of exact, prefix, suffix, contains or safe_regex (found {})",
                    many.join(", ")
                ),
            );
            None
        }
    };
    o.finish(&["custom"]);
    let kind = match kind? {
        StringMatch::Exact(s) if ignore_case => StringMatch::Exact(s.to_ascii_lowercase()),
        k => k,
    };
    Some(StringMatcher { kind, ignore_case })
}

/// proto `min_len: 1`.
fn non_empty(o: &mut Obj, key: &'static str) -> Option<String> {
    let s = o.string(key)?;
    if s.is_empty() {
        o.error(key, "value length must be at least 1 characters");
        return None;
    }
    Some(s)
}

/// A header name as matchers see it: pseudo-headers map to the request's parts.
fn header_key(o: &Obj, at: &str, name: &str) -> Option<HeaderKey> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "" => {
            o.cx.error(at, "a header name must not be empty");
            None
        }
        ":authority" | "host" => Some(HeaderKey::Authority),
        ":path" => Some(HeaderKey::Path),
        ":method" => Some(HeaderKey::Method),
        ":status" => Some(HeaderKey::Status),
        p if p.starts_with(':') => {
            o.cx.error(at, format!("matching on pseudo-header '{p}' is not supported by Legate"));
            None
        }
        _ => header_name(o, at, &lower).map(HeaderKey::Name),
    }
}

fn header_name(o: &Obj, at: &str, name: &str) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            o.cx.error(at, format!("'{name}' is not a valid header name"));
            None
        }
    }
}

/// `envoy.config.route.v3.HeaderMatcher`.
pub fn decode_header_matcher(o: &mut Obj) -> Option<HeaderMatcher> {
    let name = o.req_string("name");
    let key = if name.is_empty() { None } else { header_key(o, &o.at("name"), &name) };
    let specifiers = [
        "exact_match",
        "safe_regex_match",
        "range_match",
        "present_match",
        "prefix_match",
        "suffix_match",
        "contains_match",
        "string_match",
    ];
    let present: Vec<&str> = specifiers.into_iter().filter(|k| o.has(k)).collect();
    let string = |kind| Some(HeaderMatch::String(StringMatcher { kind, ignore_case: false }));
    let kind = match present.as_slice() {
        [] => Some(HeaderMatch::Present),
        // The deprecated forms still work in Envoy 1.40 (with a deprecation warning).
        ["exact_match"] => o.string("exact_match").and_then(|s| string(StringMatch::Exact(s))),
        ["prefix_match"] => non_empty(o, "prefix_match").and_then(|s| string(StringMatch::Prefix(s))),
        ["suffix_match"] => non_empty(o, "suffix_match").and_then(|s| string(StringMatch::Suffix(s))),
        ["contains_match"] => non_empty(o, "contains_match").and_then(|s| string(StringMatch::Contains(s))),
        ["safe_regex_match"] => o
            .obj("safe_regex_match", "RegexMatcher")
            .and_then(|mut r| regex_matcher(&mut r))
            .and_then(|re| string(StringMatch::Regex(re))),
        ["present_match"] => o.bool("present_match").map(HeaderMatch::PresentMatch),
        ["range_match"] => o.obj("range_match", "Int64Range").and_then(|mut r| {
            let start = int64(&mut r, "start");
            let end = int64(&mut r, "end");
            r.finish(&[]);
            Some(HeaderMatch::Range { start: start?, end: end? })
        }),
        ["string_match"] => o
            .obj("string_match", "StringMatcher")
            .and_then(|mut s| decode_string_matcher(&mut s))
            .map(HeaderMatch::String),
        many => {
            o.cx.error(
                &o.path,
                format!("a HeaderMatcher takes at most one match specifier (found {})", many.join(", ")),
            );
            None
        }
    };
    let invert_match = o.bool("invert_match").unwrap_or(false);
    let treat_missing_header_as_empty = o.bool("treat_missing_header_as_empty").unwrap_or(false);
    o.finish(&[]);
    Some(HeaderMatcher { key: key?, kind: kind?, invert_match, treat_missing_header_as_empty })
}

fn int64(o: &mut Obj, key: &'static str) -> Option<i64> {
    let v = o.raw(key)?;
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    if n.is_none() {
        o.error(key, format!("expected a 64-bit integer, found {}", kind(v)));
    }
    n
}

fn decode_query_matcher(o: &mut Obj) -> Option<QueryParameterMatcher> {
    let name = o.req_string("name");
    if name.len() > 1024 {
        o.error("name", "value length must be at most 1024 bytes");
    }
    let kind = match (o.has("string_match"), o.has("present_match")) {
        (true, true) => {
            o.cx.error(&o.path, "a QueryParameterMatcher takes one of string_match or present_match, not both");
            None
        }
        (true, false) => o
            .obj("string_match", "StringMatcher")
            .and_then(|mut s| decode_string_matcher(&mut s))
            .map(QueryMatch::String),
        (false, true) => o.bool("present_match").map(QueryMatch::PresentMatch),
        (false, false) => Some(QueryMatch::Present),
    };
    o.finish(&[]);
    (!name.is_empty() && name.len() <= 1024).then_some(())?;
    Some(QueryParameterMatcher { name, kind: kind? })
}

// ---------------------------------------------------------------------------------------------
// Actions.

fn decode_forward(o: &mut Obj) -> ForwardAction {
    let specifiers = [
        "cluster",
        "cluster_header",
        "weighted_clusters",
        "cluster_specifier_plugin",
        "inline_cluster_specifier_plugin",
    ];
    let present: Vec<&str> = specifiers.into_iter().filter(|k| o.has(k)).collect();
    let cluster = match present.as_slice() {
        ["cluster"] => ClusterChoice::Name(o.req_string("cluster")),
        ["cluster_header"] => {
            let h = o.req_string("cluster_header");
            let at = o.at("cluster_header");
            match h.starts_with(':') {
                true => {
                    o.error("cluster_header", "a pseudo-header as cluster_header is not supported by Legate");
                    ClusterChoice::Name(String::new())
                }
                false => header_name(o, &at, &h).map_or(ClusterChoice::Name(String::new()), ClusterChoice::Header),
            }
        }
        ["weighted_clusters"] => o
            .obj("weighted_clusters", "WeightedCluster")
            .and_then(|mut w| decode_weighted(&mut w))
            .map_or(ClusterChoice::Name(String::new()), ClusterChoice::Weighted),
        [_] => ClusterChoice::Name(String::new()), // plugins: reported by finish
        [] => {
            o.cx.error(&o.path, "a RouteAction needs exactly one of cluster, cluster_header or weighted_clusters");
            ClusterChoice::Name(String::new())
        }
        many => {
            o.cx.error(
                &o.path,
                format!(
                    "a RouteAction needs exactly one of cluster, cluster_header or weighted_clusters (found {})",
                    many.join(", ")
                ),
            );
            ClusterChoice::Name(String::new())
        }
    };
    let cluster_not_found_response_code = match o
        .enumeration("cluster_not_found_response_code", &["SERVICE_UNAVAILABLE", "NOT_FOUND", "INTERNAL_SERVER_ERROR"])
    {
        Some("NOT_FOUND") => 404,
        Some("INTERNAL_SERVER_ERROR") => 500,
        _ => DEFAULT_CLUSTER_NOT_FOUND_CODE,
    };
    let path_rewrite = decode_path_rewrite(o);
    let host_rewrite = decode_host_rewrite(o);
    let timeout = o.duration("timeout").unwrap_or(DEFAULT_ROUTE_TIMEOUT);
    let idle_timeout = o.duration("idle_timeout");
    let retry_policy = o.obj("retry_policy", "RetryPolicy").map(|mut r| Arc::new(decode_retry_policy(&mut r)));
    let mirrors =
        o.list_of("request_mirror_policies", "RequestMirrorPolicy", decode_mirror).into_iter().flatten().collect();
    let hash_policy = o.list_of("hash_policy", "HashPolicy", decode_hash_policy).into_iter().flatten().collect();
    let upgrade_configs = decode_upgrades(o);
    let (mut max_stream_duration, mut grpc_max, mut grpc_offset) = (None, None, None);
    if let Some(mut m) = o.obj("max_stream_duration", "MaxStreamDuration") {
        max_stream_duration = m.duration("max_stream_duration").filter(|d| !d.is_zero());
        grpc_max = m.duration("grpc_timeout_header_max");
        grpc_offset = m.duration("grpc_timeout_header_offset");
        m.finish(&[]);
    }
    // The deprecated route-level forms apply when max_stream_duration does not set them.
    let legacy_max = o.duration("max_grpc_timeout");
    let legacy_offset = o.duration("grpc_timeout_offset");
    if grpc_max.is_none() {
        grpc_max = legacy_max;
    }
    if grpc_offset.is_none() {
        grpc_offset = legacy_offset;
    }
    if o.enumeration("priority", &["DEFAULT", "HIGH"]) == Some("HIGH") {
        o.error("priority", "priority HIGH is not supported by Legate (it has one circuit-breaker priority)");
    }
    o.finish(&[
        "cluster_specifier_plugin",
        "inline_cluster_specifier_plugin",
        "metadata_match",
        "path_rewrite_policy",
        "host_rewrite_path_regex",
        "append_x_forwarded_host",
        "early_data_policy",
        "retry_policy_typed_config",
        "rate_limits",
        "include_vh_rate_limits",
        "cors",
        "internal_redirect_policy",
        "internal_redirect_action",
        "max_internal_redirects",
        "hedge_policy",
        "flush_timeout",
    ]);
    ForwardAction {
        cluster,
        cluster_not_found_response_code,
        timeout: Some(timeout).filter(|d| !d.is_zero()),
        idle_timeout,
        retry_policy,
        mirrors,
        host_rewrite,
        hash_policy,
        upgrade_configs,
        max_stream_duration,
        grpc_timeout_header_max: grpc_max,
        grpc_timeout_header_offset: grpc_offset,
        path_rewrite,
    }
}

fn decode_weighted(o: &mut Obj) -> Option<WeightedClusters> {
    let clusters = o.list_of("clusters", "ClusterWeight", |c| {
        let name = c.req_string("name");
        let weight = c.uint("weight", 0, u64::from(u32::MAX)).unwrap_or(0) as u32;
        let request_headers = decode_mutations(c, "request_headers_to_add", "request_headers_to_remove");
        let response_headers = decode_mutations(c, "response_headers_to_add", "response_headers_to_remove");
        c.accept(&["metadata_match"]);
        c.finish(&["cluster_header", "typed_per_filter_config", "host_rewrite_literal"]);
        WeightedCluster { name, weight, request_headers, response_headers }
    });
    // Deprecated; Envoy 1.40 accepts any value and uses the sum of the weights.
    o.accept(&["total_weight"]);
    // The runtime has no layers that could override the weights.
    o.accept(&["runtime_key_prefix"]);
    let sum: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if clusters.is_empty() {
        o.error("clusters", "weighted_clusters needs at least one cluster");
    } else if sum == 0 {
        o.cx.error(&o.path, "Sum of weights in the weighted_cluster must be greater than 0.");
    } else if sum > u64::from(u32::MAX) {
        o.cx.error(&o.path, format!("Sum of weights in the weighted_cluster must not exceed {}", u32::MAX));
    }
    o.finish(&["header_name", "random_value_specifier", "use_hash_policy"]);
    WeightedClusters::new(clusters)
}

fn decode_path_rewrite(o: &mut Obj) -> PathRewrite {
    let prefix = header_value_string(o, "prefix_rewrite").filter(|p| !p.is_empty());
    let regex = o.obj("regex_rewrite", "RegexMatchAndSubstitute").and_then(|mut r| decode_regex_rewrite(&mut r));
    match (prefix, regex) {
        (Some(_), Some(_)) => {
            o.cx.error(&o.path, "Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy");
            PathRewrite::None
        }
        (Some(p), None) => PathRewrite::Prefix(p),
        (None, Some(r)) => r,
        (None, None) => PathRewrite::None,
    }
}

fn decode_regex_rewrite(o: &mut Obj) -> Option<PathRewrite> {
    let pattern = match o.obj("pattern", "RegexMatcher") {
        Some(mut p) => regex_matcher_with(&mut p, Regex::search),
        None => {
            o.missing("pattern");
            None
        }
    };
    let raw = o.string("substitution").unwrap_or_default();
    o.finish(&[]);
    let pattern = pattern?;
    match re2_substitution(&raw, pattern.groups()) {
        Ok(substitution) => Some(PathRewrite::Regex { pattern, substitution }),
        Err(e) => {
            o.error("substitution", e);
            None
        }
    }
}

/// RE2's rewrite syntax (`\1`, `\\`) in the regex crate's (`${1}`, `$$`).
fn re2_substitution(raw: &str, groups: usize) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len() + 8);
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '0'..='9') => {
                    let n = d as usize - '0' as usize;
                    if n > groups {
                        return Err(format!(
                            "substitution '{raw}' refers to \\{n} but the pattern has {groups} capture group(s)"
                        ));
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('\\') => out.push('\\'),
                _ => return Err(format!("invalid substitution '{raw}': a '\\' must be followed by a digit or '\\'")),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn decode_host_rewrite(o: &mut Obj) -> HostRewrite {
    let literal = header_value_string(o, "host_rewrite_literal");
    let auto = o.bool("auto_host_rewrite");
    let header = o.string("host_rewrite_header");
    let set = usize::from(literal.is_some()) + usize::from(auto.is_some()) + usize::from(header.is_some());
    if set > 1 {
        o.cx.error(&o.path, "only one of host_rewrite_literal, auto_host_rewrite or host_rewrite_header may be set");
        return HostRewrite::None;
    }
    if let Some(l) = literal {
        return match HeaderValue::from_str(&l) {
            Ok(v) => HostRewrite::Literal(v),
            Err(_) => {
                o.error("host_rewrite_literal", "not a valid header value");
                HostRewrite::None
            }
        };
    }
    if let Some(h) = header {
        let at = o.at("host_rewrite_header");
        return header_name(o, &at, &h.to_ascii_lowercase()).map_or(HostRewrite::None, HostRewrite::Header);
    }
    if auto == Some(true) {
        return HostRewrite::Auto;
    }
    HostRewrite::None
}

fn decode_mirror(o: &mut Obj) -> Option<MirrorPolicy> {
    let cluster = o.string("cluster");
    if o.has("cluster_header") {
        if cluster.is_some() {
            o.cx.error(&o.path, "Only one of cluster or cluster_header in request mirror policy can be specified");
        }
        o.finish(&["cluster_header"]);
        return None;
    }
    let per_million = match o.obj("runtime_fraction", "RuntimeFractionalPercent") {
        Some(mut r) => {
            let (num, den) = runtime_fraction(&mut r);
            (num.saturating_mul(1_000_000 / den)).min(1_000_000) as u32
        }
        None => 1_000_000,
    };
    let disable_shadow_host_suffix_append = o.bool("disable_shadow_host_suffix_append").unwrap_or(false);
    // No tracing in Legate.
    o.accept(&["trace_sampled"]);
    o.finish(&["cluster_header"]);
    match cluster {
        Some(c) if !c.is_empty() => Some(MirrorPolicy { cluster: c, per_million, disable_shadow_host_suffix_append }),
        _ => {
            o.cx.error(
                &o.path,
                "Exactly one of cluster or cluster_header in request mirror policy need to be specified",
            );
            None
        }
    }
}

fn decode_hash_policy(o: &mut Obj) -> Option<HashPolicy> {
    let terminal = o.bool("terminal").unwrap_or(false);
    let present: Vec<&str> = ["header", "cookie", "connection_properties", "query_parameter", "filter_state"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect();
    let kind = match present.as_slice() {
        ["header"] => o.obj("header", "Header").and_then(|mut h| {
            let name = h.req_string("header_name");
            let at = h.at("header_name");
            let out = if name.starts_with(':') {
                h.error("header_name", "hashing on a pseudo-header is not supported by Legate");
                None
            } else if name.is_empty() {
                None
            } else {
                header_name(&h, &at, &name.to_ascii_lowercase()).map(HashKind::Header)
            };
            h.finish(&["regex_rewrite"]);
            out
        }),
        ["cookie"] => o.obj("cookie", "Cookie").map(|mut c| {
            let name = c.req_string("name");
            let ttl = c.duration("ttl");
            let path = c.string("path").filter(|p| !p.is_empty());
            c.finish(&["attributes"]);
            HashKind::Cookie { name, ttl, path }
        }),
        ["connection_properties"] => o.obj("connection_properties", "ConnectionProperties").and_then(|mut c| {
            let ip = c.bool("source_ip").unwrap_or(false);
            c.finish(&[]);
            ip.then_some(HashKind::SourceIp)
        }),
        ["query_parameter"] => o.obj("query_parameter", "QueryParameter").map(|mut q| {
            let name = q.req_string("name");
            q.finish(&[]);
            HashKind::QueryParameter(name)
        }),
        [_] => None, // filter_state: reported by finish
        [] => {
            o.cx.error(&o.path, "a HashPolicy needs one of header, cookie, connection_properties or query_parameter");
            None
        }
        many => {
            o.cx.error(&o.path, format!("a HashPolicy takes exactly one policy (found {})", many.join(", ")));
            None
        }
    };
    o.finish(&["filter_state"]);
    Some(HashPolicy { kind: kind?, terminal })
}

fn decode_upgrades(o: &mut Obj) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let cx = o.cx;
    for (path, v) in o.list("upgrade_configs") {
        let Some(mut u) = Obj::new(cx, &path, v, "UpgradeConfig") else { continue };
        let ty = u.req_string("upgrade_type");
        let enabled = u.bool("enabled").unwrap_or(true);
        u.finish(&["connect_config"]);
        if ty.is_empty() {
            continue;
        }
        let lower = ty.to_ascii_lowercase();
        if out.iter().any(|(t, _)| *t == lower) {
            cx.error(&format!("{path}.upgrade_type"), format!("Duplicate upgrade {ty}"));
            continue;
        }
        out.push((lower, enabled));
    }
    out
}

fn decode_redirect(o: &mut Obj) -> RedirectAction {
    let https = o.bool("https_redirect");
    let scheme_redirect = o.string("scheme_redirect").filter(|s| !s.is_empty());
    let scheme = match (https, scheme_redirect) {
        (Some(true), Some(_)) => {
            o.cx.error(&o.path, "only one of https_redirect or scheme_redirect may be set");
            None
        }
        (Some(true), None) => Some("https".to_string()),
        (_, s) => s,
    };
    let host = header_value_string(o, "host_redirect").filter(|h| !h.is_empty());
    let port = o.uint("port_redirect", 0, 65535).filter(|p| *p != 0).map(|p| format!(":{p}"));
    let path_redirect = header_value_string(o, "path_redirect").filter(|p| !p.is_empty());
    let prefix = header_value_string(o, "prefix_rewrite");
    let regex = o.obj("regex_rewrite", "RegexMatchAndSubstitute").and_then(|mut r| decode_regex_rewrite(&mut r));
    let set = usize::from(path_redirect.is_some()) + usize::from(prefix.is_some()) + usize::from(regex.is_some());
    if set > 1 {
        o.cx.error(&o.path, "only one of path_redirect, prefix_rewrite or regex_rewrite may be set");
    }
    let path = if let Some(p) = path_redirect {
        let has_query = p.contains('?');
        RedirectPath::Path { value: p, has_query }
    } else if let Some(p) = prefix {
        RedirectPath::Rewrite(PathRewrite::Prefix(p))
    } else if let Some(r) = regex {
        RedirectPath::Rewrite(r)
    } else {
        RedirectPath::Keep
    };
    let status = match o.enumeration(
        "response_code",
        &["MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"],
    ) {
        Some("FOUND") => 302,
        Some("SEE_OTHER") => 303,
        Some("TEMPORARY_REDIRECT") => 307,
        Some("PERMANENT_REDIRECT") => 308,
        _ => DEFAULT_REDIRECT_CODE,
    };
    let strip_query = o.bool("strip_query").unwrap_or(false);
    o.finish(&[]);
    RedirectAction { scheme, host, port, path, strip_query, status }
}

fn decode_direct(o: &mut Obj, max_body: u64) -> RouteAction {
    let status = o.uint("status", 200, 599).unwrap_or(200) as u16;
    if !o.has("status") {
        o.missing("status");
    }
    let body_path = o.at("body");
    let body = match o.obj("body", "DataSource") {
        Some(mut d) => read_body(&mut d),
        None => Some(Bytes::new()),
    };
    o.finish(&["body_format"]);
    let body = body.unwrap_or_default();
    if body.len() as u64 > max_body {
        o.cx.error(&body_path, format!("response body size is {} bytes; maximum is {max_body}", body.len()));
    }
    RouteAction::DirectResponse { status, body }
}

/// A `DataSource` body: `inline_string`, `inline_bytes` (base64, as proto JSON carries bytes)
/// or `filename` (read now, as Envoy reads it at load).
fn read_body(d: &mut Obj) -> Option<Bytes> {
    let present: Vec<&str> = ["inline_string", "inline_bytes", "filename", "environment_variable"]
        .into_iter()
        .filter(|k| d.has(k))
        .collect();
    let out = match present.as_slice() {
        ["inline_string"] => d.string("inline_string").map(Bytes::from),
        ["inline_bytes"] => d.string("inline_bytes").and_then(|b| match base64_decode(&b) {
            Some(v) => Some(Bytes::from(v)),
            None => {
                d.error("inline_bytes", "inline_bytes must be base64 (as proto JSON/YAML carries bytes)");
                None
            }
        }),
        ["filename"] => d.string("filename").and_then(|f| match std::fs::read(&f) {
            Ok(b) => Some(Bytes::from(b)),
            Err(e) => {
                d.error("filename", format!("response body file {f} cannot be read: {e}"));
                None
            }
        }),
        ["environment_variable"] => d.string("environment_variable").and_then(|v| match std::env::var(&v) {
            Ok(s) => Some(Bytes::from(s)),
            Err(_) => {
                d.error("environment_variable", format!("environment variable '{v}' is not set"));
                None
            }
        }),
        [] => Some(Bytes::new()),
        many => {
            d.cx.error(&d.path, format!("a DataSource takes exactly one source (found {})", many.join(", ")));
            None
        }
    };
    d.finish(&["watched_directory"]);
    out
}

/// Standard or URL-safe base64, padding optional (what protobuf's JSON parser accepts).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Retry policy.

/// `envoy.config.route.v3.RetryPolicy` (virtual host and route level); finishes `o`.
pub fn decode_retry_policy(o: &mut Obj) -> RetryPolicyConfig {
    let retry_on_path = o.at("retry_on");
    let retry_on = match o.string("retry_on") {
        Some(s) => RetryOn::parse_reporting(&s, |name| {
            // Envoy ignores unknown names silently; Legate says so.
            o.cx.warn(&retry_on_path, format!("unknown retry_on condition '{name}' is ignored"));
        }),
        None => RetryOn::NONE,
    };
    let num_retries = o.uint("num_retries", 0, u64::from(u32::MAX)).map_or(DEFAULT_NUM_RETRIES, |n| n as u32);
    let per_try_timeout = o.duration("per_try_timeout").filter(|d| !d.is_zero());
    let (mut base_interval, mut max_interval) = (DEFAULT_RETRY_BASE_INTERVAL, None);
    if let Some(mut b) = o.obj("retry_back_off", "RetryBackOff") {
        match b.duration("base_interval") {
            Some(d) if !d.is_zero() => base_interval = d,
            Some(_) => b.error("base_interval", "value must be greater than 0s"),
            None => b.missing("base_interval"),
        }
        match b.duration("max_interval") {
            Some(d) if d.is_zero() => b.error("max_interval", "value must be greater than 0s"),
            Some(d) if d < base_interval => {
                b.error("max_interval", "retry_policy.max_interval must greater than or equal to the base_interval")
            }
            Some(d) => max_interval = Some(d),
            None => {}
        }
        b.finish(&[]);
    }
    let mut retriable_status_codes = Vec::new();
    let cx = o.cx;
    for (path, v) in o.list("retriable_status_codes") {
        match v.as_u64() {
            Some(n) if n <= u64::from(u16::MAX) => retriable_status_codes.push(n as u16),
            _ => cx.error(&path, format!("expected a status code, found {v}")),
        }
    }
    let retriable_headers =
        o.list_of("retriable_headers", "HeaderMatcher", decode_header_matcher).into_iter().flatten().collect();
    o.finish(&[
        "per_try_idle_timeout",
        "retry_priority",
        "retry_host_predicate",
        "retry_options_predicates",
        "host_selection_retry_max_attempts",
        "rate_limited_retry_back_off",
        "retriable_request_headers",
    ]);
    RetryPolicy {
        retry_on,
        num_retries,
        per_try_timeout,
        base_interval,
        max_interval: max_interval.unwrap_or(base_interval * DEFAULT_RETRY_MAX_INTERVAL_FACTOR),
        retriable_status_codes,
        retriable_headers,
    }
}

// ---------------------------------------------------------------------------------------------
// Header mutations.

/// `<add_key>` (HeaderValueOption list) and `<remove_key>` (names) of one level.
pub fn decode_mutations(o: &mut Obj, add_key: &'static str, remove_key: &'static str) -> HeaderMutations {
    let add = o.list_of(add_key, "HeaderValueOption", decode_header_add).into_iter().flatten().collect();
    let cx = o.cx;
    let mut remove = Vec::new();
    for (path, v) in o.list(remove_key) {
        let Value::String(s) = v else {
            cx.error(&path, format!("expected a string, found {}", kind(v)));
            continue;
        };
        let lower = s.to_ascii_lowercase();
        if lower.starts_with(':') || lower == "host" {
            cx.error(&path, ":-prefixed or host headers may not be removed");
        } else if let Some(n) = header_name(o, &path, &lower) {
            remove.push(n);
        }
    }
    HeaderMutations { remove, add }
}

fn decode_header_add(o: &mut Obj) -> Option<HeaderAdd> {
    let (name, value) = match o.obj("header", "HeaderValue") {
        Some(mut h) => {
            let key = h.req_string("key").to_ascii_lowercase();
            let value = h.string("value").unwrap_or_default();
            let at = h.at("key");
            h.finish(&["raw_value"]);
            let name = if key.is_empty() {
                None
            } else if key.starts_with(':') || key == "host" {
                h.error("key", ":-prefixed or host headers may not be modified");
                None
            } else {
                header_name(&h, &at, &key)
            };
            let value = if value.len() > MAX_HEADER_VALUE_LEN {
                h.error("value", format!("value length must be at most {MAX_HEADER_VALUE_LEN} bytes"));
                None
            } else {
                parse_template(&h, &value)
            };
            (name, value)
        }
        None => {
            o.missing("header");
            (None, None)
        }
    };
    let append = o.bool("append");
    let action = o.enumeration(
        "append_action",
        &["APPEND_IF_EXISTS_OR_ADD", "ADD_IF_ABSENT", "OVERWRITE_IF_EXISTS_OR_ADD", "OVERWRITE_IF_EXISTS"],
    );
    let action = match (append, action) {
        (Some(_), Some(_)) => {
            o.cx.error(&o.path, "Both append and append_action are set and it's not allowed");
            AppendAction::default()
        }
        (Some(false), None) => AppendAction::OverwriteIfExistsOrAdd,
        (_, Some("ADD_IF_ABSENT")) => AppendAction::AddIfAbsent,
        (_, Some("OVERWRITE_IF_EXISTS_OR_ADD")) => AppendAction::OverwriteIfExistsOrAdd,
        (_, Some("OVERWRITE_IF_EXISTS")) => AppendAction::OverwriteIfExists,
        _ => AppendAction::AppendIfExistsOrAdd,
    };
    let keep_empty_value = o.bool("keep_empty_value").unwrap_or(false);
    o.finish(&[]);
    Some(HeaderAdd { name: name?, value: value?, action, keep_empty_value })
}

/// A header value with `%OPERATOR%`s (`%%` is a literal `%`). A value without operators is
/// built once as a `HeaderValue`.
fn parse_template(h: &Obj, value: &str) -> Option<HeaderValueTemplate> {
    let at = h.at("value");
    let mut pieces: Vec<ValuePiece> = Vec::new();
    let mut text = String::new();
    let mut rest = value;
    let mut offset = 0;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('%') else {
            h.cx.error(
                &at,
                format!("Incorrect configuration: {value}. Couldn't find valid command at position {}", offset + i),
            );
            return None;
        };
        let op = &after[..j];
        if op.is_empty() {
            text.push('%');
        } else {
            match SUPPORTED_OPERATORS.iter().find(|(n, _)| *n == op) {
                Some((_, piece)) => {
                    if !text.is_empty() {
                        pieces.push(ValuePiece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(piece.clone());
                }
                None => {
                    let supported: Vec<String> = SUPPORTED_OPERATORS.iter().map(|(n, _)| format!("%{n}%")).collect();
                    h.cx.error(
                        &at,
                        format!(
                            "operator %{op}% is not supported by Legate in header values (supported: {})",
                            supported.join(", ")
                        ),
                    );
                    return None;
                }
            }
        }
        offset += i + 1 + j + 1;
        rest = &after[j + 1..];
    }
    text.push_str(rest);
    if pieces.is_empty() {
        return match HeaderValue::from_str(&text) {
            Ok(v) => Some(HeaderValueTemplate::Static(v)),
            Err(_) => {
                h.cx.error(&at, "not a valid header value (control characters are not allowed)");
                None
            }
        };
    }
    if !text.is_empty() {
        pieces.push(ValuePiece::Text(text));
    }
    if pieces.iter().any(|p| matches!(p, ValuePiece::Text(t) if HeaderValue::from_str(t).is_err())) {
        h.cx.error(&at, "not a valid header value (control characters are not allowed)");
        return None;
    }
    Some(HeaderValueTemplate::Format(pieces))
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
