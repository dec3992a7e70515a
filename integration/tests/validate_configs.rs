//! Scenario: `legate --mode validate`. Every example in `configs/` is OK; every broken config in
//! `configs/invalid/` is rejected with exit code 1, naming the file, the YAML path with line and
//! column, and (for typos) a "did you mean". `--allow-unknown-static-fields` turns unknown
//! fields into counted warnings.

use std::path::{Path, PathBuf};

use legate_integration::legate::{run_legate, validate, workspace_root};
use legate_integration::peers::{self, TcpEcho};
use legate_integration::process::TempDir;
use legate_integration::{yaml, Legate};

/// What Legate must say about each file in `configs/invalid/`: where (a substring with the
/// YAML path and position) and what (substrings of the message).
struct Expect {
    file: &'static str,
    location: &'static str,
    message: &'static [&'static str],
}

const INVALID: &[Expect] = &[
    Expect {
        file: "malformed-yaml.yaml",
        location: "line 10 column 18",
        message: &["unable to parse", "flow mapping"],
    },
    Expect {
        file: "unknown-field-typo.yaml",
        location: "typed_config.idle_timout (line 17, column 11)",
        message: &["unknown field 'idle_timout'", "did you mean 'idle_timeout'?"],
    },
    Expect {
        file: "unknown-top-level-field.yaml",
        location: "static_resource (line 5, column 1)",
        message: &["unknown field 'static_resource'", "did you mean 'static_resources'?"],
    },
    Expect {
        file: "wrong-type.yaml",
        location: "typed_config.@type (line 14, column 11)",
        message: &[
            "unknown network filter type 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxyy'",
            "did you mean 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy'?",
        ],
    },
    Expect {
        file: "duplicate-listener-name.yaml",
        location: "static_resources.listeners[1] (line 17, column 5)",
        message: &["listener named 'l1'", "same name already exists"],
    },
    Expect {
        file: "same-port.yaml",
        location: "static_resources.listeners[1].address (line 18, column 5)",
        message: &["'l2'", "127.0.0.1:10001", "already used by listener 'l1'"],
    },
    Expect {
        file: "static-dns-name.yaml",
        location: "endpoint.address.socket_address.address (line 27, column 32)",
        message: &["'localhost' is not an IP address", "STRICT_DNS"],
    },
    Expect {
        file: "missing-stat-prefix.yaml",
        location: "filters[0].typed_config (line 13, column 9)",
        message: &["missing required field 'stat_prefix'"],
    },
    Expect {
        file: "bad-duration.yaml",
        location: "static_resources.clusters[0].connect_timeout (line 20, column 5)",
        message: &["invalid duration '5 seconds'"],
    },
    Expect {
        file: "unsupported-field.yaml",
        location: "typed_config.tunneling_config (line 17, column 11)",
        message: &["'tunneling_config'", "not supported by Legate"],
    },
];

fn configs_dir() -> PathBuf {
    workspace_root().join("configs")
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

fn check_invalid(file: &str) {
    let e = INVALID.iter().find(|e| e.file == file).unwrap_or_else(|| panic!("no expectation for {file}"));
    let rel = format!("configs/invalid/{file}");
    let out = run_legate(&["--mode", "validate", "-c", &rel], Some(&workspace_root()));
    assert_eq!(out.code, Some(1), "{file} must be rejected: {out:?}");
    assert!(out.stdout.is_empty(), "stdout must be empty: {:?}", out.stdout);
    assert!(out.stderr.contains(&format!("'{rel}'")), "stderr must name the file {rel}:\n{}", out.stderr);
    assert!(out.stderr.contains(e.location), "stderr must point at {:?}:\n{}", e.location, out.stderr);
    for m in e.message {
        assert!(out.stderr.contains(m), "stderr must say {m:?}:\n{}", out.stderr);
    }
}

#[test]
fn every_example_config_validates_ok() {
    let files = yaml_files(&configs_dir());
    assert!(files.contains(&"legate-demo.yaml".to_string()), "{files:?}");
    for f in files {
        let rel = format!("configs/{f}");
        let out = run_legate(&["--mode", "validate", "-c", &rel], Some(&workspace_root()));
        assert_eq!(out.code, Some(0), "{rel}: {out:?}");
        // Envoy's exact line: `configuration '<path as given>' OK`.
        assert_eq!(out.stdout, format!("configuration '{rel}' OK\n"), "{rel}");
    }
}

#[test]
fn every_invalid_config_has_an_expectation() {
    let files = yaml_files(&configs_dir().join("invalid"));
    let known: Vec<String> = INVALID.iter().map(|e| e.file.to_string()).collect();
    assert_eq!(files, {
        let mut k = known.clone();
        k.sort();
        k
    });
}

#[test]
fn malformed_yaml_is_rejected_with_line_and_column() {
    check_invalid("malformed-yaml.yaml");
}

#[test]
fn misspelt_field_is_rejected_with_did_you_mean() {
    check_invalid("unknown-field-typo.yaml");
}

#[test]
fn misspelt_top_level_field_is_rejected_with_did_you_mean() {
    check_invalid("unknown-top-level-field.yaml");
}

#[test]
fn wrong_type_url_is_rejected_with_did_you_mean() {
    check_invalid("wrong-type.yaml");
}

#[test]
fn duplicate_listener_name_is_rejected() {
    check_invalid("duplicate-listener-name.yaml");
}

#[test]
fn two_listeners_on_one_port_are_rejected() {
    check_invalid("same-port.yaml");
}

#[test]
fn static_cluster_with_dns_name_is_rejected() {
    check_invalid("static-dns-name.yaml");
}

#[test]
fn missing_stat_prefix_is_rejected() {
    check_invalid("missing-stat-prefix.yaml");
}

#[test]
fn bad_duration_is_rejected() {
    check_invalid("bad-duration.yaml");
}

#[test]
fn unsupported_envoy_field_is_rejected_as_not_supported_by_legate() {
    check_invalid("unsupported-field.yaml");
}

#[test]
fn allow_unknown_static_fields_turns_unknown_and_unsupported_fields_into_warnings() {
    for (file, field) in [("unknown-field-typo.yaml", "idle_timout"), ("unsupported-field.yaml", "tunneling_config")] {
        let rel = format!("configs/invalid/{file}");
        let out =
            run_legate(&["--mode", "validate", "-c", &rel, "--allow-unknown-static-fields"], Some(&workspace_root()));
        assert_eq!(out.code, Some(0), "{file}: {out:?}");
        assert_eq!(out.stdout, format!("configuration '{rel}' OK\n"));
        assert!(
            out.stderr.contains("warning") && out.stderr.contains(field),
            "{file}: the field must still be reported as a warning:\n{}",
            out.stderr
        );
    }
}

#[test]
fn allow_unknown_static_fields_counts_server_static_unknown_fields_when_serving() {
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("l1", "stat_prefix: l1\ncluster: echo\nidle_timout: 10s")],
        &[yaml::static_cluster("echo", &[echo.addr()])],
    );
    let legate = Legate::start_with(&cfg, &["--allow-unknown-static-fields"]);
    assert_eq!(legate.stats().value("server.static_unknown_fields"), 1);
    // The config still serves.
    let mut c = peers::connect(legate.listener_port("l1"));
    assert_eq!(peers::round_trip(&mut c, b"served"), b"served");
}

#[test]
fn unknown_cluster_is_a_warning_and_connections_count_as_no_route() {
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("l1", "stat_prefix: l1\ncluster: echo_clustr")],
        &[yaml::static_cluster("echo_cluster", &[echo.addr()])],
    );
    let dir = TempDir::new("unknown-cluster");
    let path = dir.write("unknown-cluster.yaml", &cfg);
    let out = validate(&path, &[]);
    // Envoy accepts a tcp_proxy naming a missing cluster; Legate accepts it too but warns.
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.stderr.contains("'echo_clustr'"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean 'echo_cluster'?"), "{}", out.stderr);

    let legate = Legate::start(&cfg);
    let mut c = peers::connect(legate.listener_port("l1"));
    assert!(peers::is_closed_by_peer(&mut c));
    legate.wait_stat_eq("tcp.l1.downstream_cx_no_route", 1);
    assert_eq!(echo.accepted(), 0);
}

#[test]
fn empty_config_file_is_rejected_like_envoy() {
    let dir = TempDir::new("empty");
    let path = dir.write("empty.yaml", "");
    let out = validate(&path, &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn tcp_proxy_errors_name_the_tcp_proxy_message() {
    for (file, want) in [
        ("missing-stat-prefix.yaml", "missing required field 'stat_prefix' in TcpProxy"),
        ("unsupported-field.yaml", "field 'tunneling_config' of TcpProxy is not supported by Legate"),
    ] {
        let out = validate(&configs_dir().join("invalid").join(file), &[]);
        assert!(out.stderr.contains(want), "{file}:\n{}", out.stderr);
    }
}

#[test]
fn envoy_filter_legate_lacks_is_named_not_supported() {
    let cfg = std::fs::read_to_string(configs_dir().join("legate-demo.yaml")).expect("read demo config").replace(
        "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "type.googleapis.com/envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker",
    );
    let dir = TempDir::new("kafka");
    let path = dir.write("kafka.yaml", &cfg);
    let out = validate(&path, &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("envoy.filters.network.kafka_broker") && out.stderr.contains("not supported by Legate"),
        "{}",
        out.stderr
    );
}
