//! Loading whole documents: defaults, merge, and that every problem is reported at once with
//! its YAML path, line and column.

use std::time::Duration;

use super::cluster::{DiscoveryType, LbPolicyConfig};
use super::filters::{ClusterSpecifier, NetworkFilterConfig};
use super::{load, LoadOptions};

fn write(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("legate-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

const GOOD: &str = r#"
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 9901}}
static_resources:
  listeners:
  - name: tcp
    address: {socket_address: {address: 0.0.0.0, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: ingress
          weighted_clusters:
            clusters: [{name: a, weight: 3}, {name: b, weight: 1}]
          idle_timeout: 0.25s
  - name: udp
    address: {socket_address: {protocol: UDP, address: 127.0.0.1, port_value: 10001}}
    listener_filters:
    - name: envoy.filters.udp_listener.udp_proxy
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig
        stat_prefix: dns
        matcher:
          on_no_match:
            action:
              name: route
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route
                cluster: a
  clusters:
  - name: a
    load_assignment:
      cluster_name: a
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]
  - name: b
    type: STRICT_DNS
    lb_policy: MAGLEV
    dns_lookup_family: V4_ONLY
    load_assignment:
      cluster_name: b
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: localhost, port_value: 2}}}, load_balancing_weight: 5}]}]
"#;

#[test]
fn an_envoy_bootstrap_loads_with_envoy_defaults() {
    let path = write("good.yaml", GOOD);
    let loaded = load(&LoadOptions { config_path: Some(path), ..Default::default() }).expect("loads");
    let b = loaded.bootstrap;
    assert_eq!(b.listeners.len(), 2);
    let NetworkFilterConfig::TcpProxy(t) = &b.listeners[0].filter_chains[0].filters[0] else {
        panic!("expected tcp_proxy");
    };
    assert_eq!(t.stat_prefix, "ingress");
    assert_eq!(t.idle_timeout, Some(Duration::from_millis(250)));
    assert_eq!(t.max_connect_attempts, 1);
    assert!(matches!(&t.cluster, ClusterSpecifier::Weighted(w) if w.len() == 2 && w[0].weight == 3));
    assert_eq!(b.listeners[0].per_connection_buffer_limit_bytes, 1024 * 1024);
    let u = b.listeners[1].udp_proxy.as_ref().expect("udp proxy");
    assert_eq!((u.cluster.as_str(), u.idle_timeout), ("a", Duration::from_secs(60)));
    assert_eq!(b.clusters[0].connect_timeout, Duration::from_secs(5));
    assert_eq!(b.clusters[0].discovery, DiscoveryType::Static);
    assert_eq!(b.clusters[0].lb_policy, LbPolicyConfig::RoundRobin);
    assert_eq!(b.clusters[1].lb_policy, LbPolicyConfig::Maglev { table_size: 65537 });
    assert_eq!(b.clusters[1].localities[0].endpoints[0].weight, 5);
    assert_eq!(b.stats_flush_interval, Duration::from_secs(5));
}

#[test]
fn every_error_is_reported_at_once_with_path_and_position() {
    let bad = GOOD
        .replace("stat_prefix: ingress", "stat_prefx: ingress")
        .replace("idle_timeout: 0.25s", "idle_timeout: 5 seconds")
        .replace("lb_policy: MAGLEV", "lb_policy: MAGLEVV")
        .replace("address: 127.0.0.1, port_value: 1}", "address: localhost, port_value: 1}");
    let path = write("bad.yaml", &bad);
    let err = load(&LoadOptions { config_path: Some(path), ..Default::default() }).expect_err("rejected");
    let text = err.to_string();
    let fp = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
    assert!(text.contains(&format!("{fp}.stat_prefx (line 13, column 11): unknown field 'stat_prefx' in TcpProxy (did you mean 'stat_prefix'?)")), "{text}");
    assert!(
        text.contains(&format!("{fp} (line 11, column 9): missing required field 'stat_prefix' in TcpProxy")),
        "{text}"
    );
    assert!(text.contains(&format!("{fp}.idle_timeout (line 16, column 11): invalid duration '5 seconds'")), "{text}");
    assert!(
        text.contains("static_resources.clusters[1].lb_policy (line 38, column 5): invalid value 'MAGLEVV' for enum"),
        "{text}"
    );
    assert!(text.contains("did you mean 'MAGLEV'?"), "{text}");
    assert!(text.contains("'localhost' is not an IP address; a STATIC cluster needs IP addresses"), "{text}");
    assert_eq!(err.errors.len(), 5, "{text}");
}

#[test]
fn unsupported_envoy_fields_are_named_and_can_be_allowed() {
    let with = GOOD.replace("idle_timeout: 0.25s", "idle_timeout: 0.25s\n          tunneling_config: {hostname: x}");
    let path = write("unsupported.yaml", &with);
    let err = load(&LoadOptions { config_path: Some(path.clone()), ..Default::default() }).expect_err("rejected");
    assert!(err.to_string().contains("field 'tunneling_config' of TcpProxy is not supported by Legate"), "{err}");
    let ok = load(&LoadOptions { config_path: Some(path), allow_unknown_static_fields: true, ..Default::default() })
        .expect("allowed");
    assert_eq!(ok.unknown_fields, 1);
    assert_eq!(ok.warnings.len(), 1);
}

#[test]
fn config_yaml_merges_over_the_file_like_envoy() {
    let path = write("merge.yaml", GOOD);
    let over = "admin: {address: {socket_address: {port_value: 9902}}}\nstatic_resources: {clusters: [{name: c, load_assignment: {cluster_name: c}}]}";
    let loaded = load(&LoadOptions { config_path: Some(path), config_yaml: Some(over.into()), ..Default::default() })
        .expect("loads");
    let admin = loaded.bootstrap.admin.expect("admin").address.expect("address");
    assert_eq!((admin.address.as_str(), admin.port), ("127.0.0.1", 9902));
    assert_eq!(loaded.bootstrap.clusters.len(), 3);
}

#[test]
fn duplicates_and_missing_clusters_are_caught_across_resources() {
    let dup = GOOD
        .replace("name: udp", "name: tcp")
        .replace("port_value: 10001", "port_value: 10000")
        .replace("cluster: a\n", "cluster: nope\n");
    let path = write("dup.yaml", &dup);
    let err = load(&LoadOptions { config_path: Some(path), ..Default::default() }).expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("listener with the same name already exists"), "{text}");
    // TCP and UDP on the same port number do not collide.
    assert!(!text.contains("already used by listener"), "{text}");
    let missing = GOOD.replace("cluster: a\n", "cluster: nope\n");
    let path = write("missing.yaml", &missing);
    let ok =
        load(&LoadOptions { config_path: Some(path), ..Default::default() }).expect("Envoy accepts unknown clusters");
    assert!(
        ok.warnings.iter().any(|w| w.message.contains("names cluster 'nope', which is not defined")),
        "{:?}",
        ok.warnings
    );
}

#[test]
fn malformed_yaml_and_missing_config_are_clear() {
    let path = write("malformed.yaml", "static_resources: {listeners: [\n");
    let err = load(&LoadOptions { config_path: Some(path), ..Default::default() }).expect_err("rejected");
    assert!(err.to_string().contains("unable to parse"), "{err}");
    let err = load(&LoadOptions::default()).expect_err("nothing to load");
    assert!(err.to_string().contains("At least one of --config-path or --config-yaml"), "{err}");
    let err = load(&LoadOptions { config_path: Some("/nonexistent/x.yaml".into()), ..Default::default() })
        .expect_err("missing");
    assert!(err.to_string().contains("cannot read '/nonexistent/x.yaml'"), "{err}");
}
