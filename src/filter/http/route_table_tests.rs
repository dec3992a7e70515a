//! Virtual-host selection, route matching, rewrites, redirects and header mutations. Expected
//! values marked "Envoy 1.40" were observed by running that Envoy with the same route config
//! (direct responses and redirects) and curl.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Method};

use super::*;
use crate::config::decode::{Cx, Obj};
use crate::config::route::decode_route_config;
use crate::config::source;

fn table(yaml: &str) -> RouteTable {
    let (value, positions) = source::parse(yaml, false).expect("yaml");
    let cx = Cx::new(&positions, false);
    let mut o = Obj::new(&cx, "", &value, "RouteConfiguration").expect("object");
    let cfg = decode_route_config(&mut o);
    let (errors, _) = cx.into_parts();
    assert!(errors.is_empty(), "{errors:?}");
    RouteTable::build(&cfg)
}

struct Req {
    authority: String,
    path: String,
    method: Method,
    headers: HeaderMap,
}

fn req(authority: &str, path: &str) -> Req {
    Req { authority: authority.into(), path: path.into(), method: Method::GET, headers: HeaderMap::new() }
}

impl Req {
    fn header(mut self, k: &'static str, v: &str) -> Req {
        self.headers.append(k, HeaderValue::from_str(v).expect("value"));
        self
    }

    fn method(mut self, m: Method) -> Req {
        self.method = m;
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView { authority: &self.authority, path: &self.path, method: &self.method, headers: &self.headers }
    }
}

/// The name of the selected vhost, or "-" for none.
fn vhost(t: &RouteTable, authority: &str) -> String {
    match t.select(&req(authority, "/").view()) {
        Selection::NoVirtualHost => "-".into(),
        Selection::NoRoute(vh) | Selection::Route(vh, _) => vh.name.clone(),
    }
}

/// The name of the selected route, or "-" for none.
fn route(t: &RouteTable, r: &Req) -> String {
    match t.select(&r.view()) {
        Selection::Route(_, r) => r.name.clone().unwrap_or_default(),
        _ => "-".into(),
    }
}

fn selected<'a>(t: &'a RouteTable, r: &Req) -> &'a Route {
    match t.select(&r.view()) {
        Selection::Route(_, r) => r,
        other => panic!("no route: {other:?}"),
    }
}

const DOMAINS: &str = r#"
virtual_hosts:
- {name: exact, domains: ["foo.com"]}
- {name: exactport, domains: ["bar.com:8080"]}
- {name: suffix, domains: ["*.foo.com"]}
- {name: longsuffix, domains: ["*-bar.foo.com"]}
- {name: prefix, domains: ["foo.*"]}
- {name: star, domains: ["*"]}
"#;

#[test]
fn virtual_hosts_are_chosen_in_envoys_domain_order() {
    let t = table(DOMAINS);
    // Envoy 1.40, the same domains and Host headers.
    for (host, want) in [
        ("foo.com", "exact"),
        ("FOO.com", "exact"),
        ("foo.com:80", "prefix"), // the port is not stripped: `foo.*` matches it
        ("bar.com", "star"),
        ("bar.com:8080", "exactport"),
        ("a.foo.com", "suffix"),
        ("x-bar.foo.com", "longsuffix"),
        ("-bar.foo.com", "suffix"), // a wildcard never matches an empty part
        (".foo.com", "star"),
        ("foo.org", "prefix"),
        ("foo.", "star"),
    ] {
        assert_eq!(vhost(&t, host), want, "{host}");
    }
}

#[test]
fn no_star_host_means_no_virtual_host_and_ports_can_be_ignored() {
    let t = table("virtual_hosts: [{name: a, domains: [a.com, 'B.COM']}]");
    assert_eq!(vhost(&t, "c.com"), "-");
    assert_eq!(vhost(&t, "b.com"), "a");
    assert_eq!(vhost(&t, "a.com:80"), "-");
    assert_eq!(vhost(&t, ""), "-");
    let t = table("ignore_port_in_host_matching: true\nvirtual_hosts: [{name: a, domains: [a.com, '[::1]']}]");
    assert_eq!(vhost(&t, "a.com:80"), "a");
    assert_eq!(vhost(&t, "[::1]:8080"), "a");
    assert_eq!(vhost(&t, "a.com:x"), "-");
    // Only a `*` host: chosen even without an authority, as in Envoy.
    let t = table("virtual_hosts: [{name: s, domains: ['*']}]");
    assert_eq!(vhost(&t, ""), "s");
    // A long upper-case host is lower-cased off the stack buffer.
    let long = format!("{}.COM", "A".repeat(300));
    let t = table(&format!("virtual_hosts: [{{name: l, domains: ['{}']}}]", long.to_lowercase()));
    assert_eq!(vhost(&t, &long), "l");
}

const ROUTES: &str = r#"
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {name: exact, match: {path: /exact}, direct_response: {status: 200}}
  - {name: nocase, match: {prefix: /NoCase, case_sensitive: false}, direct_response: {status: 200}}
  - {name: regex, match: {safe_regex: {regex: "/re/[0-9]+"}}, direct_response: {status: 200}}
  - {name: sep, match: {path_separated_prefix: /sep}, direct_response: {status: 200}}
  - {name: grpc, match: {prefix: /pkg.Svc/, grpc: {}}, direct_response: {status: 200}}
  - {name: never, match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 0}}}, direct_response: {status: 200}}
  - {name: always, match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 100}}}, direct_response: {status: 200}}
  - name: hdr
    match:
      prefix: /h
      headers:
      - {name: x-exact, string_match: {exact: A, ignore_case: true}}
      - {name: x-prefix, prefix_match: pre}
      - {name: x-range, range_match: {start: 10, end: 20}}
      - {name: ":method", exact_match: POST}
      - {name: host, string_match: {suffix: .com}}
    direct_response: {status: 200}
  - {name: absent, match: {prefix: /h, headers: [{name: x-gone, present_match: false}]}, direct_response: {status: 200}}
  - {name: regexhdr, match: {prefix: /r, headers: [{name: x-r, safe_regex_match: {regex: "a|b"}}]}, direct_response: {status: 200}}
  - {name: contains, match: {prefix: /r, headers: [{name: x-c, string_match: {contains: MID, ignore_case: true}}]}, direct_response: {status: 200}}
  - {name: inv, match: {prefix: /inv, headers: [{name: x-i, exact_match: a, invert_match: true}]}, direct_response: {status: 200}}
  - {name: empty, match: {prefix: /empty, headers: [{name: x-e, exact_match: "", treat_missing_header_as_empty: true}]}, direct_response: {status: 200}}
  - {name: multi, match: {prefix: /multi, headers: [{name: x-m, exact_match: b}]}, direct_response: {status: 200}}
  - {name: qp, match: {prefix: /qp, query_parameters: [{name: debug, present_match: false}]}, direct_response: {status: 200}}
  - {name: qv, match: {prefix: /q, query_parameters: [{name: v, string_match: {exact: "a%20b"}}, {name: flag}]}, direct_response: {status: 200}}
"#;

#[test]
fn path_specifiers_match_like_envoy() {
    let t = table(ROUTES);
    let r = |p: &str| route(&t, &req("h", p));
    assert_eq!(r("/exact"), "exact");
    assert_eq!(r("/exact?x=1"), "exact");
    assert_eq!(r("/exact/"), "-");
    assert_eq!(r("/EXACT"), "-");
    assert_eq!(r("/nocase/x"), "nocase");
    assert_eq!(r("/re/123"), "regex");
    assert_eq!(r("/re/123?q=abc"), "regex", "the query is not part of the regex match");
    assert_eq!(r("/re/123x"), "-", "full match, not search");
    assert_eq!(r("/x/re/1"), "-");
    assert_eq!(r("/sep"), "sep");
    assert_eq!(r("/sep/a"), "sep");
    assert_eq!(r("/sep?a"), "sep");
    assert_eq!(r("/separate"), "-");
    assert_eq!(r("/rf"), "always");
}

#[test]
fn grpc_matches_application_grpc_and_its_subtypes_only() {
    let t = table(ROUTES);
    let g = |ct: &str| route(&t, &req("h", "/pkg.Svc/M").header("content-type", ct));
    assert_eq!(g("application/grpc"), "grpc");
    assert_eq!(g("application/grpc+proto"), "grpc");
    assert_eq!(g("application/grpc-web"), "-");
    assert_eq!(route(&t, &req("h", "/pkg.Svc/M")), "-");
}

#[test]
fn header_matchers_cover_every_form() {
    let t = table(ROUTES);
    let full = || {
        req("x.com", "/h")
            .method(Method::POST)
            .header("x-exact", "a")
            .header("x-prefix", "prefix")
            .header("x-range", "15")
    };
    assert_eq!(route(&t, &full()), "hdr");
    assert_eq!(route(&t, &full().method(Method::GET)), "absent");
    assert_eq!(route(&t, &req("x.org", "/h").method(Method::POST)), "absent");
    let mut r = full();
    r.headers.insert("x-range", HeaderValue::from_static("20"));
    assert_eq!(route(&t, &r), "absent", "range end is exclusive");
    r.headers.insert("x-range", HeaderValue::from_static("ten"));
    assert_eq!(route(&t, &r), "absent");
    assert_eq!(route(&t, &full().header("x-gone", "1")), "hdr");
    assert_eq!(route(&t, &req("h", "/h").header("x-gone", "1")), "-");
    assert_eq!(route(&t, &req("h", "/r").header("x-r", "b")), "regexhdr");
    assert_eq!(route(&t, &req("h", "/r").header("x-r", "ab")), "-", "regex full match");
    assert_eq!(route(&t, &req("h", "/r").header("x-c", "a-mid-z")), "contains");
}

#[test]
fn invert_missing_and_multiple_values_follow_envoy_1_40() {
    let t = table(ROUTES);
    let r = |q: Req| route(&t, &q);
    // Envoy 1.40: invert_match does not match a missing header.
    assert_eq!(r(req("h", "/inv")), "-");
    assert_eq!(r(req("h", "/inv").header("x-i", "b")), "inv");
    assert_eq!(r(req("h", "/inv").header("x-i", "a")), "-");
    // Envoy 1.40: with several values the matcher matches if any one does, then inverts.
    assert_eq!(r(req("h", "/inv").header("x-i", "a").header("x-i", "b")), "-");
    assert_eq!(r(req("h", "/inv").header("x-i", "b").header("x-i", "c")), "inv");
    assert_eq!(r(req("h", "/multi").header("x-m", "a").header("x-m", "b")), "multi");
    assert_eq!(r(req("h", "/multi").header("x-m", "a,b")), "-");
    assert_eq!(r(req("h", "/empty")), "empty");
    assert_eq!(r(req("h", "/empty").header("x-e", "x")), "-");
}

#[test]
fn query_parameters_are_matched_raw_and_first_wins() {
    let t = table(ROUTES);
    let r = |p: &str| route(&t, &req("h", p));
    // Envoy 1.40: `present_match: false` matches only when the parameter is absent.
    assert_eq!(r("/qp"), "qp");
    assert_eq!(r("/qp?debug"), "-");
    assert_eq!(r("/qp?debug=1"), "-");
    assert_eq!(r("/q?v=a%20b&flag"), "qv", "values are not percent-decoded");
    assert_eq!(r("/q?v=a+b&flag"), "-");
    assert_eq!(r("/q?v=a%20b"), "-", "flag must be present");
    assert_eq!(r("/q?v=x&v=a%20b&flag="), "-", "the first value counts");
}

const REWRITES: &str = r#"
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {name: slash, match: {prefix: /slash/}, route: {cluster: c, prefix_rewrite: /}}
  - {name: noslash, match: {prefix: /noslash}, route: {cluster: c, prefix_rewrite: /}}
  - {name: nocase, match: {prefix: /API, case_sensitive: false}, route: {cluster: c, prefix_rewrite: /v2}}
  - {name: path, match: {path: /old}, route: {cluster: c, prefix_rewrite: /new}}
  - {name: sep, match: {path_separated_prefix: /sep}, route: {cluster: c, prefix_rewrite: /s}}
  - name: rx
    match: {prefix: /rx/}
    route: {cluster: c, regex_rewrite: {pattern: {regex: "^/rx/(\\w+)/(\\w+)$"}, substitution: "/\\2/\\1"}}
  - name: all
    match: {safe_regex: {regex: "/all/.*"}}
    route: {cluster: c, regex_rewrite: {pattern: {regex: "o"}, substitution: "0$"}}
  - {name: none, match: {prefix: /}, route: {cluster: c}}
"#;

fn rewritten(t: &RouteTable, path: &str) -> Option<String> {
    let r = req("h", path);
    let route = selected(t, &r);
    let RouteAction::Forward(f) = &route.action else { panic!("forward") };
    f.rewrite_path(route, path)
}

#[test]
fn prefix_and_regex_rewrites_keep_the_query() {
    let t = table(REWRITES);
    assert_eq!(rewritten(&t, "/slash/a/b?q=1").as_deref(), Some("/a/b?q=1"));
    // Envoy's documented caveat: a prefix without its trailing slash leaves one behind.
    assert_eq!(rewritten(&t, "/noslash/a").as_deref(), Some("//a"));
    assert_eq!(rewritten(&t, "/noslashes").as_deref(), Some("/es"));
    assert_eq!(rewritten(&t, "/api/users").as_deref(), Some("/v2/users"));
    assert_eq!(rewritten(&t, "/old?x=1").as_deref(), Some("/new?x=1"));
    assert_eq!(rewritten(&t, "/sep/x").as_deref(), Some("/s/x"));
    assert_eq!(rewritten(&t, "/rx/one/two?q=1").as_deref(), Some("/two/one?q=1"));
    assert_eq!(rewritten(&t, "/all/foo?o=o").as_deref(), Some("/all/f0$0$?o=o"), "every match; '$' is literal");
    assert_eq!(rewritten(&t, "/plain"), None);
}

const REDIRECTS: &str = r#"
virtual_hosts:
- name: v
  domains: ["*"]
  routes:
  - {name: port, match: {prefix: /redir-port}, redirect: {port_redirect: 9000}}
  - {name: https, match: {prefix: /redir-https}, redirect: {https_redirect: true}}
  - {name: pfx, match: {prefix: /redir-pfx/}, redirect: {prefix_rewrite: /new/, strip_query: true}}
  - {name: path, match: {prefix: /redir-path}, redirect: {path_redirect: "/p?x=1", strip_query: true}}
  - {name: pathq, match: {prefix: /redir-keepq}, redirect: {path_redirect: "/k", response_code: TEMPORARY_REDIRECT}}
  - name: rx
    match: {prefix: /redir-rx}
    redirect: {regex_rewrite: {pattern: {regex: "^/redir-rx/(\\w+)/(\\w+)$"}, substitution: "/\\2/\\1"}}
  - {name: host, match: {prefix: /redir-host}, redirect: {host_redirect: new.com, scheme_redirect: ftp, response_code: FOUND}}
"#;

fn location(t: &RouteTable, scheme: &str, authority: &str, path: &str) -> (u16, String) {
    let r = req(authority, path);
    let route = selected(t, &r);
    let RouteAction::Redirect(a) = &route.action else { panic!("redirect") };
    (a.status(), a.location(route, scheme, authority, path))
}

#[test]
fn redirect_locations_match_envoy() {
    let t = table(REDIRECTS);
    let l = |a: &str, p: &str| location(&t, "http", a, p).1;
    // Envoy 1.40, same config.
    assert_eq!(l("h.com:8080", "/redir-port/a?b"), "http://h.com:9000/redir-port/a?b");
    assert_eq!(l("h.com:80", "/redir-https/a?b"), "https://h.com/redir-https/a?b");
    assert_eq!(l("h.com:8080", "/redir-https/a?b"), "https://h.com:8080/redir-https/a?b");
    assert_eq!(l("127.0.0.1:18231", "/redir-pfx/a/b?q=1"), "http://127.0.0.1:18231/new/a/b");
    assert_eq!(l("127.0.0.1:18231", "/redir-path/zz?q=1"), "http://127.0.0.1:18231/p?x=1");
    assert_eq!(l("127.0.0.1:18231", "/redir-rx/one/two?q=1"), "http://127.0.0.1:18231/two/one?q=1");
    assert_eq!(location(&t, "http", "h", "/redir-keepq?a=1"), (307, "http://h/k?a=1".to_string()));
    assert_eq!(location(&t, "http", "h", "/redir-host/x"), (302, "ftp://new.com/redir-host/x".to_string()));
    assert_eq!(location(&t, "https", "h:443", "/redir-port"), (301, "https://h:9000/redir-port".to_string()));
    assert_eq!(l("[::1]:80", "/redir-https"), "https://[::1]/redir-https");
}

#[test]
fn direct_responses_get_a_location_for_201_and_3xx() {
    // Envoy 1.40: `direct_response: {status: 302}` answers `location: http://127.0.0.1:18231/dr302?q=1`.
    assert_eq!(
        direct_response_location(302, "http", "127.0.0.1:18231", "/dr302?q=1").as_deref(),
        Some("http://127.0.0.1:18231/dr302?q=1")
    );
    assert!(direct_response_location(201, "http", "h", "/").is_some());
    assert_eq!(direct_response_location(200, "http", "h", "/"), None);
    let t = table("virtual_hosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /}, direct_response: {status: 418, body: {inline_string: tea}}}]}]");
    let RouteAction::DirectResponse { status, body } = &selected(&t, &req("h", "/")).action else { panic!() };
    assert_eq!((*status, &body[..]), (418, &b"tea"[..]));
}

fn vars() -> HeaderVars<'static> {
    HeaderVars {
        downstream_remote: "10.0.0.1:5555".parse::<SocketAddr>().expect("addr"),
        downstream_local: "[::1]:80".parse::<SocketAddr>().expect("addr"),
        protocol: "HTTP/1.1",
        upstream_remote: None,
    }
}

fn values(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name).iter().map(|v| v.to_str().expect("ascii").to_string()).collect()
}

const MUTATIONS: &str = r#"
response_headers_to_add:
- {header: {key: x-order, value: global}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
virtual_hosts:
- name: v
  domains: ["*"]
  response_headers_to_add:
  - {header: {key: x-order, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  - {header: {key: x-fmt, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%PROTOCOL%|%UPSTREAM_REMOTE_ADDRESS%|100%%"}}
  - {header: {key: x-empty, value: "%UPSTREAM_REMOTE_ADDRESS%"}}
  - {header: {key: x-kept, value: ""}, keep_empty_value: true}
  - {header: {key: x-dropped, value: ""}}
  routes:
  - name: order
    match: {prefix: /}
    response_headers_to_remove: [x-remove]
    response_headers_to_add:
    - {header: {key: x-order, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-a, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-a, value: "2"}}
    - {header: {key: x-b, value: "2"}}
    - {header: {key: x-b, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-c, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-c, value: "2"}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-d, value: "new"}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-e, value: "new"}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-f, value: "new"}, append: false}
    - {header: {key: x-g, value: "2"}, append_action: ADD_IF_ABSENT}
    route: {cluster: c}
"#;

#[test]
fn header_mutations_follow_envoys_order_and_append_actions() {
    let t = table(MUTATIONS);
    let r = req("h", "/");
    let Selection::Route(vh, route) = t.select(&r.view()) else { panic!("route") };
    let mut h = HeaderMap::new();
    for (k, v) in [("x-remove", "1"), ("x-e", "old"), ("x-f", "old"), ("x-f", "old2"), ("x-g", "1")] {
        h.append(k, HeaderValue::from_static(v));
    }
    t.finalize_response_headers(vh, route, None, &mut h, &vars());
    // Envoy 1.40 with the same list: overwrites first, then appends; ADD_IF_ABSENT sees the
    // headers as they were before this level's adds.
    assert_eq!(values(&h, "x-a"), ["1", "2"]);
    assert_eq!(values(&h, "x-b"), ["1", "2"]);
    assert_eq!(values(&h, "x-c"), ["1", "2"]);
    assert_eq!(values(&h, "x-d"), Vec::<String>::new());
    assert_eq!(values(&h, "x-e"), ["new"]);
    assert_eq!(values(&h, "x-f"), ["new"]);
    assert_eq!(values(&h, "x-g"), ["1"]);
    assert!(h.get("x-remove").is_none());
    // The route config level runs last and wins.
    assert_eq!(values(&h, "x-order"), ["global"]);
    assert_eq!(values(&h, "x-fmt"), ["10.0.0.1|HTTP/1.1||100%"]);
    assert!(h.get("x-empty").is_none(), "an empty value is not added");
    assert_eq!(values(&h, "x-kept"), [""]);
    assert!(h.get("x-dropped").is_none());
    let mut with_upstream = vars();
    with_upstream.upstream_remote = Some("192.0.2.7:8080".parse().expect("addr"));
    let mut h = HeaderMap::new();
    vh.response_headers.apply(&mut h, &with_upstream);
    assert_eq!(values(&h, "x-empty"), ["192.0.2.7:8080"]);
}

#[test]
fn most_specific_header_mutations_wins_reverses_the_levels() {
    let yaml = format!("most_specific_header_mutations_wins: true\n{MUTATIONS}");
    let t = table(&yaml);
    let r = req("h", "/");
    let Selection::Route(vh, route) = t.select(&r.view()) else { panic!("route") };
    let mut h = HeaderMap::new();
    t.finalize_response_headers(vh, route, None, &mut h, &vars());
    assert_eq!(values(&h, "x-order"), ["route"]);
}

#[test]
fn weighted_clusters_pick_by_cumulative_weight_and_their_headers_go_first() {
    let t = table(
        r#"
virtual_hosts:
- name: v
  domains: ["*"]
  request_headers_to_add: [{header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]
  routes:
  - match: {prefix: /}
    route:
      weighted_clusters:
        clusters:
        - {name: a, weight: 1, request_headers_to_add: [{header: {key: x-level, value: weighted}}]}
        - {name: b, weight: 0}
        - {name: c, weight: 3}
"#,
    );
    let r = req("h", "/");
    let Selection::Route(vh, route) = t.select(&r.view()) else { panic!("route") };
    let RouteAction::Forward(f) = &route.action else { panic!("forward") };
    let ClusterChoice::Weighted(w) = &f.cluster else { panic!("weighted") };
    let picks: Vec<&str> = (0..8).map(|r| w.pick(r).name.as_str()).collect();
    assert_eq!(picks, ["a", "c", "c", "c", "a", "c", "c", "c"]);
    let mut h = HeaderMap::new();
    t.finalize_request_headers(vh, route, Some(w.pick(0)), &mut h, &vars());
    assert_eq!(values(&h, "x-level"), ["vhost"]);
}

#[test]
fn retry_on_parses_envoys_names_and_ignores_unknown_ones() {
    let r = RetryOn::parse(" 5xx,reset , unknown,,cancelled,retriable-status-codes");
    assert!(r.contains(RetryOn::FIVE_XX));
    assert!(r.contains(RetryOn::RESET | RetryOn::GRPC_CANCELLED));
    assert!(r.contains(RetryOn::RETRIABLE_STATUS_CODES));
    assert!(!r.intersects(RetryOn::GATEWAY_ERROR | RetryOn::CONNECT_FAILURE));
    assert!(!r.contains(RetryOn::NONE));
    for (name, bit) in RetryOn::NAMES {
        assert_eq!(RetryOn::parse(name), *bit, "{name}");
    }
    let mut unknown = Vec::new();
    RetryOn::parse_reporting("5xx,bogus", |n| unknown.push(n.to_string()));
    assert_eq!(unknown, ["bogus"]);
    assert!(RetryOn::parse("").is_empty());
}

#[test]
fn retriable_headers_match_response_status_and_headers() {
    let t = table(
        r#"
virtual_hosts:
- name: v
  domains: ["*"]
  retry_policy:
    retry_on: retriable-headers
    retriable_headers: [{name: ":status", exact_match: "503"}, {name: x-retry, present_match: true}]
"#,
    );
    let Selection::NoRoute(vh) = t.select(&req("h", "/").view()) else { panic!("vhost") };
    let p = vh.retry_policy.as_ref().expect("policy");
    let mut h = HeaderMap::new();
    assert!(p.retriable_headers[0].matches_response(StatusCode::SERVICE_UNAVAILABLE, &h));
    assert!(!p.retriable_headers[0].matches_response(StatusCode::OK, &h));
    assert!(!p.retriable_headers[1].matches_response(StatusCode::OK, &h));
    h.insert("x-retry", HeaderValue::from_static("1"));
    assert!(p.retriable_headers[1].matches_response(StatusCode::OK, &h));
}
