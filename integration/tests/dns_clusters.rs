//! Scenario: clusters that name their hosts (`localhost`) instead of giving IP addresses.

use legate_integration::peers::{self, TcpEcho};
use legate_integration::{yaml, Legate};

fn echo_via_named_cluster(kind: &str) {
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("dns", "stat_prefix: dns\ncluster: by_name")],
        &[yaml::cluster("by_name", kind, "ROUND_ROBIN", &[("localhost", echo.port())], "dns_lookup_family: V4_ONLY")],
    );
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("dns");
    for i in 0..3 {
        let mut c = peers::connect(port);
        let msg = format!("{kind} round trip {i}");
        assert_eq!(peers::round_trip(&mut c, msg.as_bytes()), msg.as_bytes());
    }
    let s = legate.stats();
    assert_eq!(s.value("cluster.by_name.upstream_cx_total"), 3);
    assert_eq!(s.value("cluster.by_name.upstream_cx_connect_fail"), 0);
    assert_eq!(s.value("cluster.by_name.membership_total"), 1);
    assert_eq!(echo.accepted(), 3);
}

#[test]
fn strict_dns_localhost_v4_only_reaches_the_ipv4_upstream() {
    echo_via_named_cluster("STRICT_DNS");
}

#[test]
fn logical_dns_localhost_v4_only_reaches_the_ipv4_upstream() {
    echo_via_named_cluster("LOGICAL_DNS");
}
