//! Scenario: the only upstream host has nothing listening. The client's connection is closed,
//! the failure is counted, and the access log says `UF` (Envoy writes `UF,URX`).

use legate_integration::peers::{self, DeadPort, TcpEcho};
use legate_integration::{yaml, Legate};

fn tcp_proxy_with(fields: &str, clusters: &[String]) -> Legate {
    Legate::start(&yaml::bootstrap(&[yaml::tcp_proxy_listener("dead", fields)], clusters))
}

#[test]
fn dead_upstream_closes_the_client_and_counts_connect_fail() {
    let dead = DeadPort::new();
    let legate = tcp_proxy_with("stat_prefix: dead\ncluster: dead", &[yaml::static_cluster("dead", &[dead.addr()])]);
    let port = legate.listener_port("dead");

    let mut c = peers::connect(port);
    assert!(peers::is_closed_by_peer(&mut c), "the proxy must close a connection whose upstream refused");
    legate.wait_stat_eq("cluster.dead.upstream_cx_connect_fail", 1);
    let s = legate.stats();
    assert_eq!(s.value("cluster.dead.upstream_cx_total"), 1);
    assert_eq!(s.value("cluster.dead.upstream_cx_connect_attempts_exceeded"), 1);
    assert_eq!(s.value("cluster.dead.upstream_cx_active"), 0);
    assert_eq!(s.value("tcp.dead.downstream_cx_total"), 1);
    assert_eq!(s.value("tcp.dead.downstream_cx_rx_bytes_total"), 0);
    assert_eq!(s.value("tcp.dead.downstream_cx_tx_bytes_total"), 0);
}

#[test]
fn max_connect_attempts_tries_each_attempt_and_counts_every_failure() {
    let dead = DeadPort::new();
    let legate = tcp_proxy_with(
        "stat_prefix: dead\ncluster: dead\nmax_connect_attempts: 3",
        &[yaml::static_cluster("dead", &[dead.addr()])],
    );
    let port = legate.listener_port("dead");

    let mut c = peers::connect(port);
    assert!(peers::is_closed_by_peer(&mut c));
    legate.wait_stat_eq("cluster.dead.upstream_cx_connect_attempts_exceeded", 1);
    let s = legate.stats();
    assert_eq!(s.value("cluster.dead.upstream_cx_connect_fail"), 3);
    assert_eq!(s.value("cluster.dead.upstream_cx_total"), 3);
}

#[test]
fn second_connect_attempt_goes_to_the_live_host() {
    let dead = DeadPort::new();
    let echo = TcpEcho::start();
    // Round robin alternates hosts, so with two attempts every connection reaches the echo
    // server whichever host the rotation starts on.
    let legate = tcp_proxy_with(
        "stat_prefix: dead\ncluster: mixed\nmax_connect_attempts: 2",
        &[yaml::static_cluster("mixed", &[dead.addr(), echo.addr()])],
    );
    let port = legate.listener_port("dead");
    for i in 0..6 {
        let mut c = peers::connect(port);
        let msg = format!("attempt {i}");
        assert_eq!(peers::round_trip(&mut c, msg.as_bytes()), msg.as_bytes());
    }
    let s = legate.stats();
    assert!(s.value("cluster.mixed.upstream_cx_connect_fail") >= 1);
    assert_eq!(s.value("cluster.mixed.upstream_cx_connect_attempts_exceeded"), 0);
    assert_eq!(echo.accepted(), 6);
}

/// The access log line's fields in Envoy's default TCP format:
/// `[start] "- - -" 0 <flags> <rx> <tx> <duration> - "-" "-" "-" "-" "<upstream host>"`.
fn default_format_fields(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

#[test]
fn dead_upstream_is_access_logged_with_uf_urx_like_envoy() {
    let dead = DeadPort::new();
    let dir = legate_integration::process::TempDir::new("accesslog");
    let log = dir.path().join("access.log");
    let legate_cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener(
            "dead",
            &format!(
                "stat_prefix: dead\ncluster: dead\naccess_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {}",
                log.display()
            ),
        )],
        &[yaml::static_cluster("dead", &[dead.addr()])],
    );
    let mut legate = Legate::start(&legate_cfg);
    let port = legate.listener_port("dead");
    let mut c = peers::connect(port);
    assert!(peers::is_closed_by_peer(&mut c));
    legate.wait_stat_eq("cluster.dead.upstream_cx_connect_fail", 1);
    // File access logs are buffered; a clean shutdown flushes them.
    assert_eq!(legate.stop(), Some(0));

    let text = std::fs::read_to_string(&log).expect("access log file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one connection, one line: {text:?}");
    let f = default_format_fields(lines[0]);
    assert!(f.len() >= 13, "not Envoy's default format: {:?}", lines[0]);
    assert_eq!(&f[1..4], ["\"-", "-", "-\""], "{:?}", lines[0]);
    assert_eq!(f[5], "UF,URX", "response flags in {:?}", lines[0]);
    assert_eq!(f[6], "0", "bytes received");
    assert_eq!(f[7], "0", "bytes sent");
    let upstream = format!("\"{}\"", dead.addr());
    assert_eq!(f.last().copied(), Some(upstream.as_str()), "{:?}", lines[0]);
}
