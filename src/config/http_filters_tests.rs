//! Decoding `http_filters[]` entries: Envoy's defaults, and every error with its path.

use std::time::Duration;

use super::*;
use crate::config::decode::Cx;
use crate::config::source;

struct Decoded {
    out: Option<HttpFilterConfig>,
    /// `(path, message)`.
    errors: Vec<(String, String)>,
    warnings: Vec<(String, String)>,
}

fn decode(yaml: &str) -> Decoded {
    let (v, pos) = source::parse(yaml, false).expect("yaml");
    let cx = Cx::new(&pos, false);
    let out = Obj::new(&cx, "f", &v, "HttpFilter").and_then(|mut o| decode_http_filter(&mut o));
    let (e, w) = cx.into_parts();
    let pairs = |v: Vec<crate::config::Issue>| v.into_iter().map(|i| (i.path, i.message)).collect();
    Decoded { out, errors: pairs(e), warnings: pairs(w) }
}

fn ok(yaml: &str) -> HttpFilterConfig {
    let d = decode(yaml);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    d.out.expect("a filter")
}

fn err(yaml: &str, path: &str, needle: &str) {
    let d = decode(yaml);
    assert!(
        d.errors.iter().any(|(p, m)| p == path && m.contains(needle)),
        "expected error at {path} containing {needle:?}, got {:?}",
        d.errors
    );
}

const FAULT: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
const LRL: &str = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const GRPC: &str = "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig";

fn fault(body: &str) -> String {
    format!("name: envoy.filters.http.fault\ntyped_config:\n  '@type': {FAULT}\n{body}")
}

fn lrl(body: &str) -> String {
    format!("name: envoy.filters.http.local_ratelimit\ntyped_config:\n  '@type': {LRL}\n{body}")
}

#[test]
fn router_defaults_and_fields() {
    let r = ok("name: envoy.filters.http.router\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}");
    assert_eq!(r, HttpFilterConfig::Router(RouterConfig::default()));
    assert!(RouterConfig::default().dynamic_stats);
    let r = ok("name: r\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, dynamic_stats: false, suppress_envoy_headers: true, start_child_span: true, respect_expected_rq_timeout: true}");
    assert_eq!(
        r,
        HttpFilterConfig::Router(RouterConfig {
            dynamic_stats: false,
            suppress_envoy_headers: true,
            respect_expected_rq_timeout: true
        })
    );
    err(
        "name: r\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router, upstream_log: []}",
        "f.typed_config.upstream_log",
        "field 'upstream_log' of Router is not supported by Legate",
    );
    err(
        "name: r\ndisabled: true\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}",
        "f.disabled",
        "cannot be disabled",
    );
}

#[test]
fn unknown_and_unsupported_filters_are_told_apart() {
    err(
        "name: x\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFaul}",
        "f.typed_config.@type",
        &format!("unknown HTTP filter type 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFaul' (did you mean '{FAULT}'?)"),
    );
    err(
        "name: x\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}",
        "f.typed_config.@type",
        "HTTP filter 'envoy.filters.http.cors' is not supported by Legate",
    );
    err(
        "name: envoy.filters.http.lua\ntyped_config: {}",
        "f.typed_config",
        "'envoy.filters.http.lua' is not supported",
    );
    err("name: x", "f", "missing required field 'typed_config' in HttpFilter");
    err("name: x\nconfig: {}", "f.config", "the untyped 'config' field was removed in v3");
    err("name: x\nconfig_discovery: {}", "f.config_discovery", "not supported by Legate");
    err(&format!("typed_config: {{'@type': {GRPC}}}"), "f", "missing required field 'name'");
    err(
        &format!("name: g\nis_optinal: true\ntyped_config: {{'@type': {GRPC}}}"),
        "f.is_optinal",
        "did you mean 'is_optional'",
    );
}

#[test]
fn optional_unsupported_filters_are_skipped_with_a_warning_and_disabled_ones_dropped() {
    let d = decode("name: x\nis_optional: true\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer}");
    assert!(d.errors.is_empty() && d.out.is_none(), "{:?}", d.errors);
    assert!(d.warnings.iter().any(|(_, m)| m.contains("skipped (is_optional)")), "{:?}", d.warnings);
    // A typo stays an error even when optional.
    let d = decode("name: x\nis_optional: true\ntyped_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.bufer.v3.Buffer}");
    assert!(!d.errors.is_empty());
    // Disabled: validated, then left out of the chain.
    let d = decode(&format!("name: g\ndisabled: true\ntyped_config: {{'@type': {GRPC}, bogus: 1}}"));
    assert!(d.out.is_none());
    assert_eq!(d.errors.len(), 1);
    let d = decode(&format!("name: g\ndisabled: true\ntyped_config: {{'@type': {GRPC}}}"));
    assert!(d.out.is_none() && d.errors.is_empty());
}

#[test]
fn dispatches_on_name_when_type_is_absent() {
    assert!(matches!(ok("name: envoy.filters.http.grpc_stats\ntyped_config: {}"), HttpFilterConfig::GrpcStats(_)));
}

#[test]
fn fault_fixed_delay_and_http_abort() {
    let HttpFilterConfig::Fault(f) = ok(&fault(
        "  delay: {fixed_delay: 0.5s, percentage: {numerator: 25, denominator: TEN_THOUSAND}}\n  abort: {http_status: 503, percentage: {numerator: 10}}\n  upstream_cluster: backend\n  downstream_nodes: [a, b]\n  max_active_faults: 7\n  headers: [{name: X-Fault, exact_match: 'yes'}]",
    )) else {
        panic!("fault")
    };
    assert_eq!(
        f.delay,
        Some(FaultDelayConfig {
            kind: FaultDelayKind::Fixed(Duration::from_millis(500)),
            percentage: FractionalPercent { numerator: 25, denominator: 10_000 }
        })
    );
    assert_eq!(
        f.abort,
        Some(FaultAbortConfig {
            kind: FaultAbortKind::Http(503),
            percentage: FractionalPercent { numerator: 10, denominator: 100 }
        })
    );
    assert_eq!(f.upstream_cluster.as_deref(), Some("backend"));
    assert_eq!(f.downstream_nodes, vec!["a", "b"]);
    assert_eq!(f.max_active_faults, Some(7));
    assert_eq!(f.headers.len(), 1);
    assert_eq!(f.headers[0].name.as_str(), "x-fault");
    assert_eq!(f.runtime.abort_percent, FAULT_ABORT_PERCENT_KEY);
    assert_eq!(f.runtime.delay_duration, "fault.http.delay.fixed_duration_ms");
}

#[test]
fn fault_header_kinds_grpc_abort_and_runtime_keys() {
    let HttpFilterConfig::Fault(f) = ok(&fault(
        "  delay: {header_delay: {}, percentage: {numerator: 100}}\n  abort: {grpc_status: 14, percentage: {numerator: 100}}\n  abort_percent_runtime: my.abort\n  disable_downstream_cluster_stats: true",
    )) else {
        panic!("fault")
    };
    assert_eq!(f.delay.map(|d| d.kind), Some(FaultDelayKind::Header));
    assert_eq!(f.abort.map(|a| a.kind), Some(FaultAbortKind::Grpc(14)));
    assert_eq!(f.runtime.abort_percent, "my.abort");
    assert!(f.disable_downstream_cluster_stats);
    let HttpFilterConfig::Fault(f) = ok(&fault("  abort: {header_abort: {}, percentage: {numerator: 100}}")) else {
        panic!("fault")
    };
    assert_eq!(f.abort.map(|a| a.kind), Some(FaultAbortKind::Header));
}

#[test]
fn fault_errors_have_paths() {
    let t = "f.typed_config";
    err(
        &fault("  abort: {http_status: 100, percentage: {numerator: 1}}"),
        &format!("{t}.abort.http_status"),
        "out of range [200, 599]",
    );
    err(&fault("  abort: {percentage: {numerator: 1}}"), &format!("{t}.abort"), "FaultAbort needs");
    err(
        &fault("  abort: {http_status: 500, header_abort: {}, percentage: {numerator: 1}}"),
        &format!("{t}.abort"),
        "only one of",
    );
    err(&fault("  delay: {percentage: {numerator: 1}}"), &format!("{t}.delay"), "FaultDelay needs");
    err(&fault("  delay: {fixed_delay: 0s}"), &format!("{t}.delay.fixed_delay"), "greater than 0s");
    err(&fault("  delay: {fixed_delay: 1s, header_delay: {}}"), &format!("{t}.delay"), "only one of");
    err(
        &fault("  delay: {fixed_delay: 1s, percentage: {numerator: 1, denominator: THOUSAND}}"),
        &format!("{t}.delay.percentage.denominator"),
        "invalid value 'THOUSAND'",
    );
    err(
        &fault("  response_rate_limit: {fixed_limit: {limit_kbps: 1}}"),
        &format!("{t}.response_rate_limit"),
        "field 'response_rate_limit' of HTTPFault is not supported by Legate",
    );
    err(&fault("  upstream_clster: x"), &format!("{t}.upstream_clster"), "did you mean 'upstream_cluster'");
    err(&fault("  headers: [{name: x, exact_match: a, prefix_match: b}]"), &format!("{t}.headers[0]"), "only one of");
    err(
        &fault("  headers: [{name: x, safe_regex_match: {regex: '('}}]"),
        &format!("{t}.headers[0].safe_regex_match"),
        "invalid regex",
    );
}

#[test]
fn fault_without_percentage_warns_that_it_never_fires() {
    let d = decode(&fault("  abort: {http_status: 503}"));
    assert!(d.errors.is_empty());
    assert!(d.warnings.iter().any(|(_, m)| m.contains("0%")), "{:?}", d.warnings);
    let HttpFilterConfig::Fault(f) = d.out.expect("fault") else { panic!("fault") };
    assert_eq!(f.abort.map(|a| a.percentage), Some(FractionalPercent::ZERO));
}

#[test]
fn local_ratelimit_fields_and_defaults() {
    let HttpFilterConfig::LocalRateLimit(l) = ok(&lrl(
        "  stat_prefix: lrl\n  token_bucket: {max_tokens: 10, fill_interval: 1s}\n  filter_enabled: {runtime_key: k, default_value: {numerator: 100}}\n  filter_enforced: {default_value: {numerator: 50, denominator: HUNDRED}}\n  response_headers_to_add: [{append_action: OVERWRITE_IF_EXISTS_OR_ADD, header: {key: X-Local-Rate-Limit, value: 'true'}}]\n  request_headers_to_add_when_not_enforced: [{header: {key: x-shadow, value: '100%%'}}]",
    )) else {
        panic!("lrl")
    };
    assert_eq!(l.stat_prefix, "lrl");
    assert_eq!(l.status, 429);
    assert_eq!(
        l.token_bucket,
        Some(TokenBucketConfig { max_tokens: 10, tokens_per_fill: 1, fill_interval: Duration::from_secs(1) })
    );
    assert_eq!(
        l.filter_enabled,
        Some(RuntimeFractionalPercent {
            default_value: FractionalPercent { numerator: 100, denominator: 100 },
            runtime_key: Some("k".into())
        })
    );
    assert_eq!(l.filter_enforced.map(|p| p.default_value.numerator), Some(50));
    assert_eq!(l.response_headers_to_add[0].name.as_str(), "x-local-rate-limit");
    assert_eq!(l.response_headers_to_add[0].action, AppendAction::OverwriteIfExistsOrAdd);
    assert_eq!(l.request_headers_to_add_when_not_enforced[0].value, "100%");
    assert_eq!(l.request_headers_to_add_when_not_enforced[0].action, AppendAction::AppendIfExistsOrAdd);
    // `status` below 400 falls back to 429; names and numbers both work.
    let status = |s: &str| match ok(&lrl(&format!("  stat_prefix: a\n  status: {{code: {s}}}"))) {
        HttpFilterConfig::LocalRateLimit(l) => l.status,
        _ => 0,
    };
    assert_eq!(status("ServiceUnavailable"), 503);
    assert_eq!(status("200"), 429);
    assert_eq!(status("403"), 403);
}

#[test]
fn local_ratelimit_without_filter_enabled_warns() {
    let d = decode(&lrl("  stat_prefix: a\n  token_bucket: {max_tokens: 1, fill_interval: 1s}"));
    assert!(d.errors.is_empty());
    assert!(d.warnings.iter().any(|(_, m)| m.contains("filter_enabled")), "{:?}", d.warnings);
}

#[test]
fn local_ratelimit_errors_have_paths() {
    let t = "f.typed_config";
    err(&lrl("  token_bucket: {max_tokens: 1, fill_interval: 1s}"), t, "missing required field 'stat_prefix'");
    err(
        &lrl("  stat_prefix: a\n  token_bucket: {max_tokens: 1, fill_interval: 0.01s}"),
        &format!("{t}.token_bucket.fill_interval"),
        "local rate limit token bucket fill timer must be >= 50ms",
    );
    err(&lrl("  stat_prefix: a\n  token_bucket: {fill_interval: 1s}"), &format!("{t}.token_bucket"), "'max_tokens'");
    err(
        &lrl("  stat_prefix: a\n  token_bucket: {max_tokens: 0, fill_interval: 1s}"),
        &format!("{t}.token_bucket.max_tokens"),
        "out of range",
    );
    err(&lrl("  stat_prefix: a\n  token_bucket: {max_tokens: 1}"), &format!("{t}.token_bucket"), "'fill_interval'");
    err(
        &lrl("  stat_prefix: a\n  status: {code: TooManyRequest}"),
        &format!("{t}.status.code"),
        "did you mean 'TooManyRequests'",
    );
    err(
        &lrl("  stat_prefix: a\n  local_rate_limit_per_downstream_connection: true"),
        &format!("{t}.local_rate_limit_per_downstream_connection"),
        "not supported by Legate",
    );
    err(
        &lrl("  stat_prefix: a\n  descriptors: [{entries: [{key: a, value: b}]}]"),
        &format!("{t}.descriptors"),
        "not supported by Legate",
    );
    err(
        &lrl("  stat_prefix: a\n  response_headers_to_add: [{header: {key: x, value: '%START_TIME%'}}]"),
        &format!("{t}.response_headers_to_add[0].header.value"),
        "not supported by Legate",
    );
    err(
        &lrl("  stat_prefix: a\n  response_headers_to_add: [{header: {key: 'bad key', value: v}}]"),
        &format!("{t}.response_headers_to_add[0].header.key"),
        "invalid header name",
    );
    err(
        &lrl("  stat_prefix: a\n  response_headers_to_add: [{append: true, append_action: ADD_IF_ABSENT, header: {key: x, value: v}}]"),
        &format!("{t}.response_headers_to_add[0]"),
        "only one of 'append' and 'append_action'",
    );
    err(
        &lrl("  stat_prefix: a\n  filter_enabled: {runtime_key: k}"),
        &format!("{t}.filter_enabled"),
        "'default_value'",
    );
    err(
        &lrl("  stat_prefix: a\n  rate_limits: []"),
        &format!("{t}.rate_limits"),
        "field 'rate_limits' of LocalRateLimit is not supported by Legate",
    );
}

#[test]
fn grpc_stats_per_method_modes() {
    let g = |body: &str| match ok(&format!("name: g\ntyped_config:\n  '@type': {GRPC}\n{body}")) {
        HttpFilterConfig::GrpcStats(g) => g,
        other => panic!("{other:?}"),
    };
    // Envoy's default is stats_for_all_methods=false.
    assert_eq!(g("  emit_filter_state: true").per_method, PerMethodStats::None);
    assert_eq!(g("  stats_for_all_methods: true").per_method, PerMethodStats::All);
    assert_eq!(g("  stats_for_all_methods: false").per_method, PerMethodStats::None);
    let a = g("  individual_method_stats_allowlist: {services: [{name: helloworld.Greeter, method_names: [SayHello]}]}\n  enable_upstream_stats: true\n  replace_dots_in_grpc_service_name: true");
    assert_eq!(a.per_method, PerMethodStats::Allowlist(vec![("helloworld.Greeter".into(), vec!["SayHello".into()])]));
    assert!(a.enable_upstream_stats && a.replace_dots_in_grpc_service_name);
    err(
        &format!("name: g\ntyped_config:\n  '@type': {GRPC}\n  stats_for_all_methods: true\n  individual_method_stats_allowlist: {{services: []}}"),
        "f.typed_config",
        "only one of",
    );
    err(
        &format!("name: g\ntyped_config:\n  '@type': {GRPC}\n  individual_method_stats_allowlist: {{services: [{{method_names: [a]}}]}}"),
        "f.typed_config.individual_method_stats_allowlist.services[0]",
        "missing required field 'name'",
    );
}
