//! Decoding `RouteConfiguration`: Envoy's defaults, and every error reported at once with its
//! YAML path. Error texts in quotes are Envoy 1.40's own (`envoy --mode validate`).

use std::time::Duration;

use super::*;
use crate::config::decode::{Cx, Issue};
use crate::config::source;
use crate::filter::http::route_table::{RouteTable, Selection};

/// Decodes `yaml` as the HCM's `route_config` (paths start at `route_config`).
fn decode(yaml: &str) -> (RouteConfig, Vec<Issue>, Vec<Issue>) {
    let doc = format!("route_config:\n{}", yaml.lines().map(|l| format!("  {l}\n")).collect::<String>());
    let (value, positions) = source::parse(&doc, false).expect("yaml");
    let cx = Cx::new(&positions, false);
    let mut o = Obj::new(&cx, "route_config", &value["route_config"], "RouteConfiguration").expect("object");
    let cfg = decode_route_config(&mut o);
    let (errors, warnings) = cx.into_parts();
    (cfg, errors, warnings)
}

fn ok(yaml: &str) -> RouteConfig {
    let (cfg, errors, _) = decode(yaml);
    assert!(errors.is_empty(), "{errors:?}");
    cfg
}

fn errors(yaml: &str) -> Vec<String> {
    decode(yaml).1.iter().map(|e| format!("{}: {}", e.path, e.message)).collect()
}

fn has(errs: &[String], want: &str) {
    assert!(errs.iter().any(|e| e.contains(want)), "no error containing {want:?} in {errs:#?}");
}

const GOOD: &str = r#"
name: local
virtual_hosts:
- name: backend
  domains: ["Example.com", "*.example.com"]
  retry_policy: {retry_on: "5xx,connect-failure", num_retries: 3}
  routes:
  - name: api
    match: {prefix: /api/}
    route:
      cluster: api
      prefix_rewrite: /
      retry_policy:
        retry_on: gateway-error
        per_try_timeout: 0.5s
        retry_back_off: {base_interval: 0.1s}
        retriable_status_codes: [409]
      request_mirror_policies:
      - {cluster: shadow, runtime_fraction: {default_value: {numerator: 25}}}
      hash_policy:
      - {header: {header_name: X-User}, terminal: true}
      - {connection_properties: {source_ip: true}}
      upgrade_configs: [{upgrade_type: WebSocket}]
      max_stream_duration: {grpc_timeout_header_max: 0s}
  - match: {prefix: /split}
    route:
      weighted_clusters: {clusters: [{name: blue, weight: 90}, {name: green, weight: 10}]}
      timeout: 0s
      cluster_not_found_response_code: NOT_FOUND
  - match: {prefix: /by-header}
    route: {cluster_header: X-Cluster, host_rewrite_literal: upstream.local}
  - match: {prefix: /old}
    redirect: {path_redirect: /new}
  - match: {path: /bytes}
    direct_response: {status: 200, body: {inline_bytes: aGVsbG8=}}
"#;

#[test]
fn a_route_configuration_decodes_with_envoy_defaults() {
    let cfg = ok(GOOD);
    assert_eq!(cfg.name, "local");
    assert!(cfg.validate_clusters);
    assert_eq!(cfg.virtual_hosts[0].domains, ["example.com", "*.example.com"]);
    let vh = &cfg.virtual_hosts[0].host;
    let vp = vh.retry_policy.as_ref().expect("vhost retry policy");
    assert_eq!(vp.num_retries, 3);
    assert!(vp.retry_on.contains(RetryOn::FIVE_XX | RetryOn::CONNECT_FAILURE));
    assert_eq!((vp.base_interval, vp.max_interval), (Duration::from_millis(25), Duration::from_millis(250)));
    let routes = vh.routes();
    let RouteAction::Forward(api) = &routes[0].action else { panic!("forward") };
    assert_eq!(api.timeout, Some(Duration::from_secs(15)));
    assert_eq!(api.cluster_not_found_response_code, 503);
    let rp = api.retry_policy.as_ref().expect("route retry policy");
    assert_eq!(rp.num_retries, 1);
    assert_eq!(rp.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!((rp.base_interval, rp.max_interval), (Duration::from_millis(100), Duration::from_secs(1)));
    assert_eq!(rp.retriable_status_codes, [409]);
    assert_eq!(api.mirrors[0].per_million, 250_000);
    assert!(matches!(&api.hash_policy[0].kind, HashKind::Header(h) if h == "x-user"));
    assert!(api.hash_policy[0].terminal);
    assert!(matches!(api.hash_policy[1].kind, HashKind::SourceIp));
    assert_eq!(api.upgrade_configs, [("websocket".to_string(), true)]);
    assert_eq!(api.grpc_timeout_header_max, Some(Duration::ZERO));
    let RouteAction::Forward(split) = &routes[1].action else { panic!("forward") };
    assert_eq!((split.timeout, split.cluster_not_found_response_code), (None, 404));
    let RouteAction::Forward(by_header) = &routes[2].action else { panic!("forward") };
    assert!(matches!(&by_header.cluster, ClusterChoice::Header(h) if h == "x-cluster"));
    assert!(matches!(&by_header.host_rewrite, HostRewrite::Literal(v) if v == "upstream.local"));
    let RouteAction::Redirect(r) = &routes[3].action else { panic!("redirect") };
    assert_eq!(r.status(), 301);
    assert!(matches!(&routes[4].action, RouteAction::DirectResponse { status: 200, body } if &body[..] == b"hello"));
    let clusters: Vec<&str> = cfg.clusters().collect();
    assert_eq!(clusters, ["api", "shadow", "blue", "green"]);
    // And it builds.
    let t = RouteTable::build(&cfg);
    let m = http::Method::GET;
    let h = http::HeaderMap::new();
    let view = crate::filter::http::route_table::RequestView {
        authority: "a.EXAMPLE.com",
        path: "/old",
        method: &m,
        headers: &h,
    };
    assert!(matches!(t.select(&view), Selection::Route(v, _) if v.name == "backend"));
}

#[test]
fn a_direct_response_body_comes_from_a_file_within_the_size_limit() {
    let dir = std::env::temp_dir().join(format!("legate-route-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("body.txt");
    std::fs::write(&file, "from file\n").expect("write");
    let yaml = format!(
        "virtual_hosts: [{{name: v, domains: ['*'], routes: [{{match: {{prefix: /}}, direct_response: {{status: 503, body: {{filename: '{}'}}}}}}]}}]",
        file.display()
    );
    let cfg = ok(&yaml);
    assert!(matches!(&cfg.virtual_hosts[0].host.routes()[0].action,
        RouteAction::DirectResponse { status: 503, body } if &body[..] == b"from file\n"));
    let big = format!("max_direct_response_body_size_bytes: 5\n{yaml}");
    has(&errors(&big), "response body size is 10 bytes; maximum is 5");
}

const BAD: &str = r#"
virtual_hosts:
- name: a
  domains: ["*", "a.com"]
  routes:
  - match: {prefix: /, path: /x}
    direct_response: {status: 200}
  - match: {headers: [{name: x}]}
    direct_response: {status: 150}
  - match: {prefix: /}
  - match: {safe_regex: {regex: "a("}}
    route: {cluster: c, timeout: 5 seconds}
  - match: {path_separated_prefix: /a/}
    request_headers_to_add:
    - {header: {key: host, value: x}}
    - {header: {key: x-pct, value: "50%"}}
    - {header: {key: x-op, value: "%START_TIME%"}}
    - {header: {key: x-both, value: v}, append: true, append_action: ADD_IF_ABSENT}
    request_headers_to_remove: [":path"]
    route: {cluster: c, prefix_rewrite: /x, regex_rewrite: {pattern: {regex: a}, substitution: b}}
  - match: {prefix: /, headers: [{name: x, string_match: {safe_regex: {regex: a}, ignore_case: true}}]}
    route:
      weighted_clusters: {clusters: [{name: c, weight: 0}]}
      retry_policy: {retry_back_off: {base_interval: 1s, max_interval: 0.5s}, retry_on: "5xx,bogus"}
      upgrade_configs: [{upgrade_type: websocket}, {upgrade_type: WebSocket}]
      regex_rewrite: {pattern: {regex: "(a)"}, substitution: '\2'}
      clustr: c
  - match: {prefix: /}
    redirect: {https_redirect: true, scheme_redirect: http}
    typed_per_filter_config: {}
- name: b
  domains: ["A.com", "*"]
"#;

#[test]
fn every_error_is_reported_at_once_with_its_path() {
    let (_, errs, warnings) = decode(BAD);
    let errs: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
    let r = "route_config.virtual_hosts[0].routes";
    has(&errs, &format!("{r}[0].match: a RouteMatch needs exactly one of prefix, path, safe_regex or path_separated_prefix (found prefix, path)"));
    has(&errs, &format!("{r}[1].match: a RouteMatch needs exactly one of"));
    has(&errs, &format!("{r}[1].direct_response.status: value 150 is out of range [200, 599]"));
    has(&errs, &format!("{r}[2]: a Route needs exactly one action: route, redirect or direct_response"));
    has(&errs, &format!("{r}[3].match.safe_regex.regex: invalid regex 'a('"));
    has(&errs, &format!("{r}[3].route.timeout: invalid duration '5 seconds'"));
    has(&errs, &format!("{r}[4].match.path_separated_prefix: value does not match regex pattern"));
    has(&errs, &format!("{r}[4].request_headers_to_add[0].header.key: :-prefixed or host headers may not be modified"));
    has(&errs, &format!("{r}[4].request_headers_to_add[1].header.value: Incorrect configuration: 50%. Couldn't find valid command at position 2"));
    has(
        &errs,
        &format!("{r}[4].request_headers_to_add[2].header.value: operator %START_TIME% is not supported by Legate"),
    );
    has(
        &errs,
        &format!("{r}[4].request_headers_to_add[3]: Both append and append_action are set and it's not allowed"),
    );
    has(&errs, &format!("{r}[4].request_headers_to_remove[0]: :-prefixed or host headers may not be removed"));
    has(&errs, &format!("{r}[4].route: Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy"));
    has(&errs, &format!("{r}[5].match.headers[0].string_match.ignore_case: ignore_case has no effect for safe_regex."));
    has(
        &errs,
        &format!("{r}[5].route.weighted_clusters: Sum of weights in the weighted_cluster must be greater than 0."),
    );
    has(&errs, &format!("{r}[5].route.retry_policy.retry_back_off.max_interval: retry_policy.max_interval must greater than or equal to the base_interval"));
    has(&errs, &format!("{r}[5].route.upgrade_configs[1].upgrade_type: Duplicate upgrade WebSocket"));
    has(&errs, &format!("{r}[5].route.regex_rewrite.substitution: substitution '\\2' refers to \\2 but the pattern has 1 capture group(s)"));
    has(&errs, &format!("{r}[5].route.clustr: unknown field 'clustr' in RouteAction (did you mean 'cluster'?)"));
    has(&errs, &format!("{r}[6].redirect: only one of https_redirect or scheme_redirect may be set"));
    has(
        &errs,
        &format!("{r}[6].typed_per_filter_config: field 'typed_per_filter_config' of Route is not supported by Legate"),
    );
    has(&errs, "route_config.virtual_hosts[1].domains[0]: Only unique values for domains are permitted. Duplicate entry of domain a.com");
    has(&errs, "route_config.virtual_hosts[1].domains[1]: Only a single wildcard domain is permitted in route");
    assert_eq!(errs.len(), 23, "{errs:#?}");
    assert!(warnings.iter().any(|w| w.message == "unknown retry_on condition 'bogus' is ignored"), "{warnings:?}");
    // Errors carry positions and come in document order.
    let (_, issues, _) = decode(BAD);
    assert!(issues.iter().all(|i| i.pos.is_some()), "{issues:?}");
}

#[test]
fn matchers_and_actions_reject_what_envoy_rejects() {
    let route = |m: &str, a: &str| {
        errors(&format!("virtual_hosts: [{{name: v, domains: ['*'], routes: [{{match: {m}, {a}}}]}}]"))
    };
    let direct = "direct_response: {status: 200}";
    has(&route("{prefix: /, headers: [{name: x, prefix_match: ''}]}", direct), "value length must be at least 1");
    has(
        &route("{prefix: /, headers: [{name: x, exact_match: a, present_match: true}]}", direct),
        "at most one match specifier",
    );
    has(
        &route("{prefix: /, headers: [{name: ':scheme', exact_match: http}]}", direct),
        "pseudo-header ':scheme' is not supported by Legate",
    );
    has(&route("{prefix: /, query_parameters: [{name: ''}]}", direct), "must not be empty");
    has(
        &route("{prefix: /}", "route: {cluster: c, cluster_header: x}"),
        "exactly one of cluster, cluster_header or weighted_clusters (found cluster, cluster_header)",
    );
    has(
        &route("{prefix: /}", "route: {prefix_rewrite: /}"),
        "exactly one of cluster, cluster_header or weighted_clusters",
    );
    has(&route("{prefix: /}", "route: {cluster_header: 'bad header'}"), "'bad header' is not a valid header name");
    has(
        &route("{prefix: /}", "route: {cluster: c, request_mirror_policies: [{cluster: c, cluster_header: x}]}"),
        "Only one of cluster or cluster_header in request mirror policy can be specified",
    );
    has(
        &route("{prefix: /}", "route: {cluster: c, retry_policy: {retry_back_off: {max_interval: 1s}}}"),
        "missing required field 'base_interval' in RetryBackOff",
    );
    has(
        &route("{prefix: /}", "route: {cluster: c, retry_policy: {retry_host_predicate: []}}"),
        "field 'retry_host_predicate' of RetryPolicy is not supported by Legate",
    );
    has(&route("{prefix: /}", "route: {cluster: c, priority: HIGH}"), "priority HIGH is not supported by Legate");
    has(
        &route("{prefix: /}", "redirect: {path_redirect: /a, prefix_rewrite: /b}"),
        "only one of path_redirect, prefix_rewrite or regex_rewrite",
    );
    has(&route("{prefix: /}", "direct_response: {status: 600}"), "value 600 is out of range [200, 599]");
    has(
        &route("{prefix: /}", "direct_response: {status: 200, body: {inline_bytes: '*'}}"),
        "inline_bytes must be base64",
    );
    has(
        &route("{prefix: /}", "direct_response: {status: 200, body: {filename: /nonexistent/body}}"),
        "response body file /nonexistent/body cannot be read",
    );
    has(&errors("virtual_hosts: [{name: v, domains: []}]"), "a virtual host needs at least one domain");
    has(&errors("virtual_hosts: [{domains: [a]}]"), "missing required field 'name' in VirtualHost");
    has(
        &errors("internal_only_headers: [x]"),
        "field 'internal_only_headers' of RouteConfiguration is not supported by Legate",
    );
}

#[test]
fn substitutions_are_translated_from_re2_syntax() {
    assert_eq!(re2_substitution(r"/\2/\1\\x$", 2).as_deref(), Ok(r"/${2}/${1}\x$$"));
    assert!(re2_substitution(r"\q", 2).is_err());
    assert!(re2_substitution(r"\3", 2).is_err());
    assert_eq!(base64_decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
    assert_eq!(base64_decode("-_8="), Some(vec![0xfb, 0xff]));
}
