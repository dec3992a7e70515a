//! Decoding `RedisProxy` with Envoy's defaults, and its errors.

use std::time::Duration;

use super::filters::NetworkFilterConfig;
use super::redis_proxy::{FaultKind, ReadPolicy, RedisProtocolOptions};
use super::{load, LoadOptions};

fn doc(typed: &str) -> String {
    format!(
        r#"
static_resources:
  listeners:
  - name: r
    address: {{socket_address: {{address: 127.0.0.1, port_value: 6400}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.redis_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy
{typed}
  clusters:
  - name: c
    connect_timeout: 1s
    lb_policy: RING_HASH
    load_assignment:
      cluster_name: c
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 6379}}}}}}}}]}}]
"#
    )
}

fn path_of(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("legate-redis-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn redis_proxy_decodes_with_envoy_defaults() {
    let typed = "          stat_prefix: s
          settings: {op_timeout: 0.5s, read_policy: PREFER_REPLICA}
          prefix_routes:
            case_insensitive: true
            routes: [{prefix: 'ab', remove_prefix: true, cluster: c}]
            catch_all_route:
              cluster: c
              request_mirror_policy:
              - {cluster: c, exclude_read_commands: true}
              - cluster: c
                runtime_fraction: {runtime_key: m, default_value: {numerator: 5, denominator: TEN_THOUSAND}}
          downstream_auth_password: {inline_string: p1}
          downstream_auth_passwords: [{inline_string: p2}, {inline_string: ''}]
          faults:
          - fault_type: DELAY
            fault_enabled: {default_value: {numerator: 25, denominator: HUNDRED}}
            delay: 0.1s
            commands: [GET]";
    let loaded =
        load(&LoadOptions { config_path: Some(path_of("ok.yaml", &doc(typed))), ..Default::default() }).expect("loads");
    let NetworkFilterConfig::RedisProxy(r) = &loaded.bootstrap.listeners[0].filter_chains[0].filters[0] else {
        panic!("expected redis_proxy")
    };
    assert_eq!(r.settings.op_timeout, Duration::from_millis(500));
    assert_eq!(r.settings.buffer_flush_timeout, Duration::from_millis(3));
    assert_eq!(r.settings.max_buffer_size_before_flush, 0);
    assert_eq!(r.settings.max_upstream_unknown_connections, 100);
    assert_eq!(r.settings.read_policy, ReadPolicy::PreferReplica);
    assert!(r.prefix_routes.case_insensitive && r.prefix_routes.routes[0].remove_prefix);
    assert_eq!(r.downstream_auth_passwords, vec!["p1".to_string(), "p2".to_string()]);
    assert_eq!(r.faults[0].kind, FaultKind::Delay);
    assert_eq!(r.faults[0].per_million, 250_000);
    assert_eq!(r.faults[0].commands, vec!["get".to_string()]);
    let mirrors = &r.prefix_routes.catch_all.as_ref().expect("catch-all").mirrors;
    assert_eq!(mirrors.len(), 2);
    assert!(mirrors[0].exclude_read_commands && mirrors[0].per_million.is_none());
    assert_eq!(mirrors[1].per_million, Some(500));
    assert!(r.prefix_routes.routes[0].mirrors.is_empty());
}

#[test]
fn missing_op_timeout_and_unsupported_fields_are_errors() {
    let typed = "          stat_prefix: s
          settings: {enable_hashtagging: true}
          prefix_routes:
            routes: [{prefix: a, cluster: c, key_formatter: '%KEY%'}]";
    let err = load(&LoadOptions { config_path: Some(path_of("bad.yaml", &doc(typed))), ..Default::default() })
        .expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("missing required field 'op_timeout' in ConnPoolSettings"), "{text}");
    assert!(text.contains("'key_formatter' of Route is not supported by Legate"), "{text}");
}

#[test]
fn upstream_credentials_come_from_the_cluster_protocol_options() {
    let v: serde_json::Value = serde_json::json!({"envoy.filters.network.redis_proxy": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions",
        "auth_password": {"inline_string": "pw"}, "auth_username": {"inline_string": "u"}}});
    let o = RedisProtocolOptions::from_cluster(&v).expect("options");
    assert_eq!((o.auth_username.as_str(), o.auth_password.as_str()), ("u", "pw"));
    assert_eq!(
        RedisProtocolOptions::from_cluster(&serde_json::Value::Null).expect("none"),
        RedisProtocolOptions::default()
    );
}
