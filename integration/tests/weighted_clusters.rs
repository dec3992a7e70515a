//! Scenario: tcp_proxy `weighted_clusters` 3:1 across two upstreams that say who they are.

use std::collections::BTreeMap;

use legate_integration::peers::{self, TcpEcho};
use legate_integration::{yaml, Legate};

const CONNECTIONS: usize = 400;

#[test]
fn weighted_clusters_split_traffic_within_tolerance() {
    let heavy = TcpEcho::with_banner("heavy");
    let light = TcpEcho::with_banner("light");
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener(
            "weighted",
            "stat_prefix: weighted\nweighted_clusters:\n  clusters:\n  - {name: heavy, weight: 3}\n  - {name: light, weight: 1}",
        )],
        &[
            yaml::static_cluster("heavy", &[heavy.addr()]),
            yaml::static_cluster("light", &[light.addr()]),
        ],
    );
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("weighted");

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..CONNECTIONS {
        *seen.entry(peers::banner_via(port)).or_default() += 1;
    }
    let h = seen.get("heavy").copied().unwrap_or(0);
    let l = seen.get("light").copied().unwrap_or(0);
    assert_eq!(h + l, CONNECTIONS, "unexpected upstreams: {seen:?}");
    // Expected 300:100. The count of `heavy` is Binomial(400, 0.75), standard deviation 8.7;
    // ±50 is more than 5.7 standard deviations (a false failure about once in 10^8 runs).
    assert!((250..=350).contains(&h), "3:1 split expected about 300:100, got {h}:{l}");

    // The cluster stats agree with what the clients saw.
    // Envoy names listener stats after the configured address (port 0 here).
    let listener = "listener.127.0.0.1_0.".to_string();
    legate.wait_stat_eq(&format!("{listener}downstream_cx_destroy"), CONNECTIONS as u64);
    let s = legate.stats();
    assert_eq!(s.value("cluster.heavy.upstream_cx_total"), h as u64);
    assert_eq!(s.value("cluster.light.upstream_cx_total"), l as u64);
    assert_eq!(s.value("tcp.weighted.downstream_cx_total"), CONNECTIONS as u64);
    assert_eq!(heavy.accepted(), h);
    assert_eq!(light.accepted(), l);
}
