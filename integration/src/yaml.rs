//! Builders for the Envoy v3 YAML the tests serve. Every listener binds 127.0.0.1 port 0 and
//! the admin binds 127.0.0.1 port 0, so tests run in parallel without fixed ports. The same
//! text is valid for Envoy (the differential tests feed it to both).

use std::net::SocketAddr;

use crate::legate::ADMIN_EPHEMERAL;

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{pad}{l}\n")).collect()
}

/// A listener with one tcp_proxy filter; `fields` are the TcpProxy fields, one per line,
/// unindented (e.g. `"stat_prefix: p\ncluster: c"`).
pub fn tcp_proxy_listener(name: &str, fields: &str) -> String {
    format!(
        "  - name: {name}\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n{}",
        indent(fields, 10)
    )
}

/// A listener with one redis_proxy filter; `fields` are the RedisProxy fields, unindented.
pub fn redis_proxy_listener(name: &str, fields: &str) -> String {
    format!(
        "  - name: {name}\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.redis_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy\n{}",
        indent(fields, 10)
    )
}

/// A UDP listener with udp_proxy routing everything to `cluster` (`matcher.on_no_match`);
/// `fields` are further UdpProxyConfig fields, unindented.
pub fn udp_proxy_listener(name: &str, stat_prefix: &str, cluster: &str, fields: &str) -> String {
    format!(
        "  - name: {name}\n    address:\n      socket_address: {{protocol: UDP, address: 127.0.0.1, port_value: 0}}\n    listener_filters:\n    - name: envoy.filters.udp_listener.udp_proxy\n      typed_config:\n        '@type': type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig\n        stat_prefix: {stat_prefix}\n        matcher:\n          on_no_match:\n            action:\n              name: route\n              typed_config:\n                '@type': type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route\n                cluster: {cluster}\n{}",
        indent(fields, 8)
    )
}

/// A cluster of discovery `kind` (`STATIC`, `STRICT_DNS`, ...) with `lb_policy` over
/// `hosts` (`(address, port)`); `extra` are further Cluster fields, unindented.
pub fn cluster(name: &str, kind: &str, lb_policy: &str, hosts: &[(&str, u16)], extra: &str) -> String {
    let endpoints: String = hosts
        .iter()
        .map(|(a, p)| {
            format!("        - endpoint: {{address: {{socket_address: {{address: {a}, port_value: {p}}}}}}}\n")
        })
        .collect();
    let endpoints =
        if hosts.is_empty() { String::new() } else { format!("      endpoints:\n      - lb_endpoints:\n{endpoints}") };
    format!(
        "  - name: {name}\n    type: {kind}\n    connect_timeout: 1s\n    lb_policy: {lb_policy}\n{}    load_assignment:\n      cluster_name: {name}\n{endpoints}",
        indent(extra, 4)
    )
}

/// A STATIC round-robin cluster over `hosts`.
pub fn static_cluster(name: &str, hosts: &[SocketAddr]) -> String {
    let owned: Vec<(String, u16)> = hosts.iter().map(|h| (h.ip().to_string(), h.port())).collect();
    let refs: Vec<(&str, u16)> = owned.iter().map(|(a, p)| (a.as_str(), *p)).collect();
    cluster(name, "STATIC", "ROUND_ROBIN", &refs, "")
}

/// A bootstrap with an ephemeral admin port and the given listeners and clusters.
pub fn bootstrap(listeners: &[String], clusters: &[String]) -> String {
    let mut s = String::from(ADMIN_EPHEMERAL);
    s.push_str("static_resources:\n  listeners:\n");
    for l in listeners {
        s.push_str(l);
    }
    if clusters.is_empty() {
        s.push_str("  clusters: []\n");
    } else {
        s.push_str("  clusters:\n");
        for c in clusters {
            s.push_str(c);
        }
    }
    s
}

/// The most common config: one tcp_proxy listener `name` (stat_prefix `name`) to one STATIC
/// cluster `cluster` over `hosts`.
pub fn simple_tcp_proxy(name: &str, cluster_name: &str, hosts: &[SocketAddr]) -> String {
    bootstrap(
        &[tcp_proxy_listener(name, &format!("stat_prefix: {name}\ncluster: {cluster_name}"))],
        &[static_cluster(cluster_name, hosts)],
    )
}

/// A listener with an http_connection_manager (stat_prefix `name`); `hcm` are further
/// HttpConnectionManager fields and must include `route_config` (unindented YAML);
/// `filters` are HTTP filters placed before the router (unindented list items, `- name: ...`).
pub fn http_listener(name: &str, hcm: &str, filters: &str) -> String {
    format!(
        "  - name: {name}\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    filter_chains:\n    - filters:\n      - name: envoy.filters.network.http_connection_manager\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n          stat_prefix: {name}\n{}          http_filters:\n{}          - name: envoy.filters.http.router\n            typed_config: {{'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}\n",
        indent(hcm, 10),
        indent(filters, 10)
    )
}

/// `route_config` with one virtual host `vh` for every domain and the given routes
/// (unindented list items, `- match: ...`).
pub fn route_config(routes: &str) -> String {
    format!("route_config:\n  virtual_hosts:\n  - name: vh\n    domains: ['*']\n    routes:\n{}", indent(routes, 4))
}

/// The cluster option that makes the router speak HTTP/2 (h2c) to a cluster.
pub const HTTP2_UPSTREAM: &str = "typed_extension_protocol_options:\n  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n    '@type': type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n    explicit_http_config: {http2_protocol_options: {}}";
