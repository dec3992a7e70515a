//! Scenario: a user runs the docker-compose sandbox. It must mirror `configs/`: every example
//! config is served by a Legate service, and every upstream host name a config uses is a
//! service. (The compose file itself is checked by `docker-compose config -q` in the test
//! command; there is no Docker engine here.)

use std::collections::BTreeSet;

use legate_integration::legate::workspace_root;

fn compose() -> String {
    std::fs::read_to_string(workspace_root().join("docker-compose.yml")).expect("read docker-compose.yml")
}

fn example_configs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(workspace_root().join("configs"))
        .expect("read configs")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

/// Top-level service names: keys indented by two spaces under `services:`.
fn services(compose: &str) -> BTreeSet<String> {
    let mut in_services = false;
    let mut out = BTreeSet::new();
    for line in compose.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_services = line.starts_with("services:");
            continue;
        }
        if in_services {
            if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !name.starts_with(' ') && !name.starts_with('#') {
                    out.insert(name.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn docker_compose_serves_every_example_config() {
    let text = compose();
    for f in example_configs() {
        let arg = format!("\"configs/{f}\"");
        assert!(text.contains(&arg), "docker-compose.yml has no Legate service running {arg}");
    }
}

#[test]
fn every_upstream_host_name_in_the_examples_is_a_compose_service() {
    let services = services(&compose());
    assert!(services.contains("redis"), "services: {services:?}");
    let re = regex::Regex::new(r"address:\s*([A-Za-z][A-Za-z0-9.-]*)\s*,").expect("regex");
    let mut hosts = BTreeSet::new();
    for f in example_configs() {
        let cfg = std::fs::read_to_string(workspace_root().join("configs").join(&f)).expect("read config");
        for c in re.captures_iter(&cfg) {
            let host = &c[1];
            hosts.insert(host.to_string());
            if host == "localhost" {
                continue;
            }
            assert!(
                services.contains(host),
                "configs/{f} sends traffic to '{host}', which is not a docker-compose service \
                 ({services:?})"
            );
        }
    }
    // The scan itself works: it found the upstreams the examples are known to use.
    for h in ["redis", "udp-echo", "echo-a", "echo-b"] {
        assert!(hosts.contains(h), "host {h} not found; scanned {hosts:?}");
    }
}

/// Two services publishing one host port cannot both start (`docker compose up` fails with
/// "port is already allocated"); `docker-compose config -q` does not notice.
#[test]
fn no_host_port_is_published_twice() {
    let re = regex::Regex::new(r#"^\s*-\s*"(\d+):\d+(?:/(?:tcp|udp))?""#).expect("regex");
    let mut seen = BTreeSet::new();
    for line in compose().lines() {
        if let Some(c) = re.captures(line) {
            let proto = if line.contains("/udp") { "udp" } else { "tcp" };
            let port = format!("{}/{proto}", &c[1]);
            assert!(seen.insert(port.clone()), "docker-compose.yml publishes host port {port} twice");
        }
    }
    assert!(seen.len() >= 5, "the scan found the published ports: {seen:?}");
}
