//! Admin endpoints driven through `dispatch` with a real config (Envoy's capture config
//! `good.yaml` without its access logs), compared with Envoy 1.40's responses.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use super::fixtures::*;
use super::{dispatch, AdminRequest, AdminState, Reply, JSON, TEXT, TEXT_BARE};
use crate::cli::Options;
use crate::config::{self, LoadOptions};
use crate::logging::LogControl;
use crate::server::{ListenerInfo, ServerState, ServerStats, STATE_LIVE};
use crate::stats::Store;
use crate::upstream::ClusterManager;

const GOOD_YAML: &str = r#"
node: {id: legate-capture-node, cluster: legate-capture-cluster}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 41001}}
static_resources:
  listeners:
  - name: tcp_redis
    address: {socket_address: {address: 127.0.0.1, port_value: 41010}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_redis
          cluster: redis_cluster
  - name: tcp_echo
    address: {socket_address: {address: 127.0.0.1, port_value: 41012}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_echo
          cluster: echo_cluster
  - name: tcp_refused
    address: {socket_address: {address: 127.0.0.1, port_value: 41014}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_refused
          cluster: refused_cluster
  - name: tcp_nohosts
    address: {socket_address: {address: 127.0.0.1, port_value: 41016}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_nohosts
          cluster: empty_cluster
  - name: udp_echo
    address: {socket_address: {protocol: UDP, address: 127.0.0.1, port_value: 41020}}
    listener_filters:
    - name: envoy.filters.udp_listener.udp_proxy
      typed_config:
        '@type': type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig
        stat_prefix: udp_echo
        idle_timeout: 2s
        matcher:
          on_no_match:
            action:
              name: route
              typed_config:
                '@type': type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route
                cluster: udp_cluster
  clusters:
  - name: redis_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: redis_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: 41011}
  - name: echo_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: echo_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: 41013}
  - name: refused_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: refused_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: 41015}
  - name: empty_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: empty_cluster
  - name: udp_cluster
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: udp_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: 127.0.0.1, port_value: 41021}
"#;

fn state_for(yaml: &str) -> AdminState {
    let loaded = config::load(&LoadOptions { config_yaml: Some(yaml.to_string()), ..LoadOptions::default() })
        .expect("test config loads");
    let b = loaded.bootstrap;
    let store = Store::new();
    let cm = ClusterManager::build_unresolved(&b.clusters, &store).expect("clusters build");
    let listeners = b
        .listeners
        .iter()
        .map(|l| ListenerInfo {
            name: l.name.clone(),
            local: l.address.ip().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            udp: l.udp_proxy.is_some(),
        })
        .collect();
    let server = Arc::new(ServerState {
        stats: ServerStats::new(&store, "server."),
        healthy: AtomicBool::new(true),
        state: AtomicU8::new(STATE_LIVE),
        quit: CancellationToken::new(),
        started: Instant::now(),
    });
    server.set_state(STATE_LIVE);
    AdminState {
        store,
        cm: Arc::new(cm),
        listeners,
        bootstrap: Arc::new(b),
        server,
        // "off": the first state installs the process-wide subscriber; keep test output quiet.
        log: LogControl::init("off", &[], None).expect("log control"),
        options: Options::parse_from(["legate", "-c", "configs/good.yaml", "--concurrency", "2", "--base-id", "2"]),
        listeners_stop: tokio_util::sync::CancellationToken::new(),
    }
}

fn state() -> AdminState {
    state_for(GOOD_YAML)
}

fn get(state: &AdminState, path: &str) -> Reply {
    dispatch(state, &AdminRequest::new("GET", path))
}

fn post(state: &AdminState, path: &str) -> Reply {
    dispatch(state, &AdminRequest::new("POST", path))
}

fn body(r: &Reply) -> &str {
    std::str::from_utf8(&r.body).expect("utf-8 body")
}

/// `"last_updated": "<any>"` → a fixed value, so dumps from different runs compare.
fn without_timestamps(s: &str) -> String {
    let re = regex::Regex::new(r#""last_updated": "[^"]*""#).expect("regex");
    re.replace_all(s, r#""last_updated": "T""#).into_owned()
}

#[test]
fn unknown_paths_are_404_with_invalid_path_and_the_help() {
    let s = state();
    for path in ["/no_such_path", "/no_such_path?x=1", "/stats/", "/index.html"] {
        let r = get(&s, path);
        assert_eq!((r.status, r.content_type), (404, TEXT), "{path}");
        assert_eq!(body(&r), format!("invalid path. {}", super::help::help_text()));
    }
}

#[test]
fn help_ignores_the_query() {
    let s = state();
    let r = get(&s, "/help?x=1");
    assert_eq!((r.status, r.content_type), (200, TEXT));
    assert_eq!(body(&r), super::help::help_text());
}

#[test]
fn post_only_endpoints_refuse_other_methods_with_405() {
    let s = state();
    for path in [
        "/quitquitquit",
        "/healthcheck/fail",
        "/healthcheck/ok",
        "/logging",
        "/reset_counters",
        "/drain_listeners",
        "/reopen_logs",
    ] {
        let r = get(&s, path);
        assert_eq!((r.status, r.content_type), (405, TEXT), "{path}");
        assert_eq!(body(&r), "Method GET not allowed, POST required.");
    }
    let r = dispatch(&s, &AdminRequest::new("DELETE", "/quitquitquit"));
    assert_eq!(body(&r), "Method DELETE not allowed, POST required.");
    assert!(!s.server.quit.is_cancelled());
}

#[test]
fn read_only_endpoints_answer_any_method() {
    let s = state();
    for m in ["PUT", "POST", "HEAD"] {
        let r = dispatch(&s, &AdminRequest::new(m, "/ready"));
        assert_eq!((r.status, body(&r)), (200, "LIVE\n"), "{m}");
    }
}

#[test]
fn healthcheck_fail_makes_ready_draining_until_ok() {
    let s = state();
    assert_eq!(body(&post(&s, "/healthcheck/fail")), "OK\n");
    let r = get(&s, "/ready");
    assert_eq!((r.status, body(&r)), (503, "DRAINING\n"));
    assert_eq!(s.server.stats.live.value(), 0);
    let info: serde_json::Value = serde_json::from_slice(&get(&s, "/server_info").body).expect("json");
    assert_eq!(info["state"], "DRAINING");
    assert_eq!(body(&post(&s, "/healthcheck/ok")), "OK\n");
    let r = get(&s, "/ready");
    assert_eq!((r.status, body(&r)), (200, "LIVE\n"));
    assert_eq!(s.server.stats.live.value(), 1);
}

#[test]
fn quitquitquit_starts_shutdown() {
    let s = state();
    let r = post(&s, "/quitquitquit");
    assert_eq!((r.status, body(&r)), (200, "OK\n"));
    assert!(s.server.quit.is_cancelled());
}

#[test]
fn clusters_text_matches_envoy_for_a_fresh_cluster() {
    let s = state();
    let r = get(&s, "/clusters?filter=echo");
    assert_eq!((r.status, r.content_type), (200, TEXT));
    assert_eq!(body(&r), ENVOY_CLUSTERS_ECHO);
}

#[test]
fn clusters_text_lists_every_cluster_in_config_order_and_bogus_format_is_text() {
    let s = state();
    let text = body(&get(&s, "/clusters?format=bogus")).to_string();
    let names: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("::observability_name::"))
        .map(|l| l.split("::").next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["redis_cluster", "echo_cluster", "refused_cluster", "empty_cluster", "udp_cluster"]);
    assert_eq!(text.lines().count(), 134 - 9 + 1, "Envoy's 38 has 125 body lines");
}

#[test]
fn clusters_json_matches_envoy() {
    let s = state();
    let echo = s.cm.get("echo_cluster").expect("echo_cluster");
    let host = echo.hosts().all[0].clone();
    host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
    host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
    let only = [echo.as_ref(), s.cm.get("empty_cluster").expect("empty").as_ref()];
    let v = super::clusters::clusters_json(&only);
    assert_eq!(super::json::pretty(&v), ENVOY_CLUSTERS_JSON_ECHO_EMPTY);
    let r = get(&s, "/clusters?format=json");
    assert_eq!((r.status, r.content_type), (200, JSON));
}

#[test]
fn clusters_bad_filter_is_400() {
    let s = state();
    let r = get(&s, "/clusters?filter=(");
    assert_eq!((r.status, body(&r)), (400, "Invalid re2 regex: missing ): ("));
}

#[test]
fn listeners_match_envoy_in_text_and_json() {
    let s = state();
    let r = get(&s, "/listeners");
    assert_eq!((r.status, r.content_type, body(&r)), (200, TEXT, ENVOY_LISTENERS));
    let r = get(&s, "/listeners?format=bogus");
    assert_eq!(body(&r), ENVOY_LISTENERS);
    let r = get(&s, "/listeners?format=json");
    assert_eq!((r.status, r.content_type, body(&r)), (200, JSON, ENVOY_LISTENERS_JSON));
}

#[test]
fn config_dump_resource_elements_match_envoy() {
    let s = state();
    let r = get(&s, "/config_dump?resource=static_clusters&name_regex=echo.*");
    assert_eq!((r.status, r.content_type), (200, JSON));
    assert_eq!(without_timestamps(body(&r)), without_timestamps(ENVOY_DUMP_NAME_REGEX));
    let r = get(&s, "/config_dump?resource=static_listeners&mask=listener.name");
    assert_eq!(body(&r), ENVOY_DUMP_LISTENER_NAMES);
    let r = get(&s, "/config_dump?resource=static_clusters&mask=cluster.name");
    assert_eq!(body(&r), ENVOY_DUMP_CLUSTER_NAMES);
}

#[test]
fn config_dump_has_envoys_sections_in_order() {
    let s = state();
    let r = get(&s, "/config_dump");
    assert_eq!((r.status, r.content_type), (200, JSON));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let types: Vec<&str> =
        v["configs"].as_array().expect("configs").iter().map(|c| c["@type"].as_str().unwrap_or("")).collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
            "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
            "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
        ]
    );
    let boot = &v["configs"][0]["bootstrap"];
    assert_eq!(boot["node"]["id"], "legate-capture-node");
    assert_eq!(boot["node"]["user_agent_name"], "legate");
    assert_eq!(boot["static_resources"]["clusters"][4]["name"], "udp_cluster");
    let clusters = &v["configs"][1]["static_clusters"];
    assert_eq!(clusters[0]["cluster"]["name"], "echo_cluster", "sorted by name");
    assert_eq!(clusters[0]["cluster"]["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    let listeners = &v["configs"][2]["static_listeners"];
    assert_eq!(listeners[0]["listener"]["name"], "tcp_redis", "config order");
    assert!(body(&r).starts_with("{\n \"configs\": [\n  {\n   \"@type\": \"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\n   \"bootstrap\": {\n"));
    assert!(
        body(&r).ends_with("  {\n   \"@type\": \"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\"\n  }\n ]\n}\n")
    );
}

#[test]
fn config_dump_include_eds_adds_endpoints_built_from_hosts() {
    let s = state();
    let r = get(&s, "/config_dump?include_eds&resource=static_endpoint_configs&name_regex=echo_cluster|empty_cluster");
    let expected = r#"{
 "configs": [
  {
   "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.StaticEndpointConfig",
   "endpoint_config": {
    "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "cluster_name": "echo_cluster",
    "endpoints": [
     {
      "locality": {},
      "lb_endpoints": [
       {
        "endpoint": {
         "address": {
          "socket_address": {
           "address": "127.0.0.1",
           "port_value": 41013
          }
         },
         "health_check_config": {}
        },
        "health_status": "HEALTHY",
        "load_balancing_weight": 1
       }
      ],
      "load_balancing_weight": 0
     }
    ],
    "policy": {
     "overprovisioning_factor": 140
    }
   },
   "last_updated": "T"
  },
  {
   "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump.StaticEndpointConfig",
   "endpoint_config": {
    "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "cluster_name": "empty_cluster",
    "policy": {
     "overprovisioning_factor": 140
    }
   },
   "last_updated": "T"
  }
 ]
}
"#;
    assert_eq!(without_timestamps(body(&r)), expected);
    let r = get(&s, "/config_dump?resource=static_endpoint_configs");
    assert_eq!(r.status, 404, "endpoints only with include_eds");
}

#[test]
fn config_dump_errors_use_envoys_texts() {
    let s = state();
    let r = get(&s, "/config_dump?resource=bogus");
    assert_eq!((r.status, r.content_type, body(&r)), (404, TEXT_BARE, "bogus not found in config dump"));
    let r = get(&s, "/config_dump?resource=bootstrap");
    assert_eq!(
        (r.status, r.content_type, body(&r)),
        (400, TEXT_BARE, "bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field")
    );
    let r = get(&s, "/config_dump?mask=bogus_field");
    assert_eq!((r.status, body(&r)), (400, "FieldMask bogus_field could not be successfully applied to any configs."));
    let r = get(&s, "/config_dump?name_regex=(");
    assert_eq!(
        (r.status, r.content_type, body(&r)),
        (400, TEXT_BARE, "INVALID_ARGUMENT: Error while parsing name_regex from (: missing ): (")
    );
    let r = get(&s, "/config_dump?resource=dynamic_listeners");
    assert_eq!((r.status, body(&r)), (200, "{}\n"));
}

#[test]
fn config_dump_mask_without_resource_keeps_only_fitting_configs() {
    let s = state();
    let v: serde_json::Value = serde_json::from_slice(&get(&s, "/config_dump?mask=bootstrap").body).expect("json");
    let configs = v["configs"].as_array().expect("configs");
    assert_eq!(configs.len(), 1);
    assert_eq!(configs[0]["@type"], "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump");
    assert!(configs[0].get("last_updated").is_none());
    assert!(configs[0]["bootstrap"]["static_resources"].is_object());
}

#[test]
fn config_dump_redacts_secrets() {
    let yaml = GOOD_YAML.replace(
        "cluster: legate-capture-cluster}",
        "cluster: legate-capture-cluster, metadata: {tls: {private_key: {inline_string: SECRET}, password: [PW]}}}",
    );
    let s = state_for(&yaml);
    let r = get(&s, "/config_dump");
    let text = body(&r);
    assert!(!text.contains("SECRET") && !text.contains("\"PW\""), "{text}");
    assert!(text.contains("\"inline_string\": \"[redacted]\""));
}

#[test]
fn runtime_without_layers_is_empty() {
    let s = state();
    let r = get(&s, "/runtime");
    assert_eq!((r.status, r.content_type, body(&r)), (200, JSON, "{\n \"layers\": [],\n \"entries\": {}\n}\n"));
}

#[test]
fn small_endpoints_match_envoy() {
    let s = state();
    let r = get(&s, "/certs");
    assert_eq!((r.status, r.content_type, body(&r)), (200, JSON, "{\n \"certificates\": []\n}\n"));
    let r = get(&s, "/hot_restart_version");
    assert_eq!((r.status, r.content_type, body(&r)), (200, TEXT, "disabled"));
    let r = get(&s, "/stats/recentlookups");
    assert_eq!(body(&r), "Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: 0\n");
    let r = get(&s, "/memory");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        ["allocated", "heap_size", "pageheap_unmapped", "pageheap_free", "total_thread_cache", "total_physical_bytes"]
    );
    assert!(v["allocated"].is_string());
}

#[test]
fn server_info_has_envoys_fields() {
    let s = state();
    let r = get(&s, "/server_info");
    assert_eq!((r.status, r.content_type), (200, JSON));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "version",
            "state",
            "uptime_current_epoch",
            "uptime_all_epochs",
            "hot_restart_version",
            "command_line_options",
            "node",
            "hot_restart_initializing"
        ]
    );
    assert_eq!(v["version"], crate::cli::build_version());
    assert_eq!(v["state"], "LIVE");
    assert_eq!(v["uptime_current_epoch"], "0s");
    let o = &v["command_line_options"];
    assert_eq!(o["base_id"], "2");
    assert_eq!(o["concurrency"], 2);
    assert_eq!(o["config_path"], "configs/good.yaml");
    assert_eq!(o["drain_time"], "600s");
    assert_eq!(o["parent_shutdown_time"], "900s");
    assert_eq!(o["file_flush_interval"], "10s");
    assert_eq!(o["mode"], "Serve");
    assert_eq!(o["drain_strategy"], "Gradual");
    assert_eq!(o.as_object().map(|m| m.len()), Some(39), "Envoy's 39 options");
    assert_eq!(v["node"]["id"], "legate-capture-node");
    assert_eq!(v["node"]["cluster"], "legate-capture-cluster");
    assert_eq!(v["node"]["user_agent_build_version"]["metadata"]["ssl.version"], "rustls");
}

#[test]
fn logging_lists_and_changes_levels() {
    let s = state();
    let r = post(&s, "/logging");
    assert_eq!((r.status, r.content_type), (200, TEXT));
    assert!(body(&r).starts_with("active loggers:\n  admin: off\n"));
    assert!(body(&r).ends_with("\n\n"));
    let r = post(&s, "/logging?upstream=trace");
    assert!(body(&r).contains("  upstream: trace\n"));
    assert!(body(&r).contains("  admin: off\n"));
    let r = post(&s, "/logging?bogus=debug");
    assert_eq!(r.status, 400);
    assert!(body(&r).starts_with(ENVOY_LOGGING_ERROR_HEAD));
    let r = post(&s, "/logging?level=");
    assert_eq!(r.status, 200);
}

#[test]
fn reset_counters_answers_ok() {
    let s = state();
    let r = post(&s, "/reset_counters");
    assert_eq!((r.status, body(&r)), (200, "OK\n"));
}

#[test]
fn stats_formats_and_errors_are_envoys() {
    let s = state();
    let r = get(&s, "/stats?format=bogus");
    assert_eq!(
        (r.status, r.content_type, body(&r)),
        (400, TEXT, "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n")
    );
    let r = get(&s, "/stats?type=bogus");
    assert_eq!((r.status, body(&r)), (400, "invalid &type= param"));
    let r = get(&s, "/stats?filter=(");
    assert_eq!((r.status, body(&r)), (400, "Invalid re2 regex: missing ): ("));
    let r = get(&s, "/stats?format=html");
    assert_eq!(r.status, 400);
    let r = get(&s, "/stats?filter=server.live");
    assert_eq!((r.status, r.content_type, body(&r)), (200, TEXT, "server.live: 1\n"));
    let r = get(&s, "/stats?format=json&filter=server.live");
    assert_eq!(
        (r.status, r.content_type, body(&r)),
        (200, JSON, "{\"stats\":[{\"name\":\"server.live\",\"value\":1}]}")
    );
    let r = get(&s, "/stats?format=prometheus&filter=server.live");
    assert_eq!((r.status, r.content_type), (200, TEXT));
    assert!(body(&r).starts_with("# TYPE envoy_server_live gauge\nenvoy_server_live{} 1\n"), "{}", body(&r));
    assert_eq!(body(&get(&s, "/stats/prometheus?filter=server.live")), body(&r));
    let r = get(&s, "/stats/prometheus?histogram_buckets=detailed");
    assert_eq!((r.status, body(&r)), (400, "unsupported prometheus histogram bucket mode"));
}

#[test]
fn home_page_is_html() {
    let s = state();
    let r = get(&s, "/");
    assert_eq!((r.status, r.content_type), (200, super::HTML));
}
