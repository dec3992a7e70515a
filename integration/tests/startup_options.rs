//! Scenario: start-up options and start-up failures that name what is wrong.

use std::time::Duration;

use legate_integration::legate::run_legate;
use legate_integration::peers::{self, TcpEcho};
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{yaml, Legate};

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("legate-it-startup-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn a_dns_cluster_that_resolves_to_nothing_stops_startup_naming_the_cluster() {
    // `::1` has no IPv4 address: the same path as an unresolvable name, without a DNS query.
    let listener = yaml::tcp_proxy_listener("l", "stat_prefix: l\ncluster: nowhere");
    let cluster = yaml::cluster("nowhere", "STRICT_DNS", "ROUND_ROBIN", &[("'::1'", 9)], "dns_lookup_family: V4_ONLY");
    let dir = temp_dir("dns");
    let cfg = dir.join("dns.yaml");
    std::fs::write(&cfg, yaml::bootstrap(&[listener], &[cluster])).expect("write config");
    let out = run_legate(&["-c", cfg.to_str().expect("utf-8 path"), "--concurrency", "1"], None);
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("cluster 'nowhere': cannot resolve '::1'"),
        "the error should name the cluster and the name:\n{}",
        out.stderr
    );
}

#[test]
fn log_path_sends_the_application_log_to_a_file() {
    let echo = TcpEcho::start();
    let dir = temp_dir("logpath");
    let log = dir.join("legate.log");
    let _ = std::fs::remove_file(&log);
    let legate = Legate::start_with(
        &yaml::simple_tcp_proxy("l", "echo", &[echo.addr()]),
        &["--log-path", log.to_str().expect("utf-8 path")],
    );
    wait_until("the log file to get the start-up line", PATIENCE, || {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains("starting main dispatch loop"))
    });
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(text.lines().all(|l| l.starts_with('[')), "Envoy's layout `[time][thread][level][component] msg`:\n{text}");
    // Rotation: move the file away, ask for a reopen, and the next lines go to a new file.
    let rotated = dir.join("legate.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    assert_eq!(legate.post("/reopen_logs").status, 200);
    assert_eq!(legate.post("/logging?level=info").status, 200);
    legate.post("/healthcheck/fail");
    wait_until("a new log file after /reopen_logs", Duration::from_secs(5), || log.exists().then_some(()));
    drop(legate);
}

#[test]
fn service_node_and_cluster_override_the_bootstrap_node() {
    let echo = TcpEcho::start();
    let cfg = format!(
        "node: {{id: from-file, cluster: file-cluster}}\n{}",
        yaml::simple_tcp_proxy("l", "echo", &[echo.addr()])
    );
    let legate = Legate::start_with(&cfg, &["--service-node", "cli-node", "--service-cluster", "cli-cluster"]);
    let info = legate.get("/server_info");
    assert_eq!(info.status, 200);
    let v: serde_json::Value = serde_json::from_str(&info.body).expect("server_info is JSON");
    assert_eq!(v["node"]["id"], "cli-node", "{}", info.body);
    assert_eq!(v["node"]["cluster"], "cli-cluster", "{}", info.body);
    let mut c = peers::connect(legate.listener_port("l"));
    assert_eq!(peers::round_trip(&mut c, b"ok"), b"ok");
}
