//! Scenario: load-balancer policies seen from clients. Three upstreams greet each connection
//! with their name; hash policies keep a client IP on one upstream, round robin rotates, and
//! every policy reaches every host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use legate_integration::peers::{self, TcpEcho};
use legate_integration::{yaml, Legate};

struct Pool {
    upstreams: Vec<TcpEcho>,
}

impl Pool {
    fn new() -> Pool {
        Pool { upstreams: ["a", "b", "c"].iter().map(|n| TcpEcho::with_banner(n)).collect() }
    }

    /// Legate with one tcp_proxy listener to a cluster of the three upstreams.
    fn serve(&self, lb_policy: &str, tcp_proxy_extra: &str) -> (Legate, u16) {
        let hosts: Vec<(&str, u16)> = self.upstreams.iter().map(|u| ("127.0.0.1", u.port())).collect();
        let cfg = yaml::bootstrap(
            &[yaml::tcp_proxy_listener("lb", &format!("stat_prefix: lb\ncluster: pool\n{tcp_proxy_extra}"))],
            &[yaml::cluster("pool", "STATIC", lb_policy, &hosts, "")],
        );
        let legate = Legate::start(&cfg);
        let port = legate.listener_port("lb");
        (legate, port)
    }
}

/// Client source addresses 127.0.0.1 .. 127.0.0.n.
fn client_ips(n: u8) -> Vec<Ipv4Addr> {
    (1..=n).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect()
}

fn same_client_ip_always_lands_on_same_upstream(lb_policy: &str) {
    let pool = Pool::new();
    let (_legate, port) = pool.serve(lb_policy, "hash_policy:\n- source_ip: {}");
    let mut chosen: BTreeMap<Ipv4Addr, BTreeSet<String>> = BTreeMap::new();
    for _round in 0..5 {
        for ip in client_ips(16) {
            let banner = peers::banner_via_from(ip, port);
            chosen.entry(ip).or_default().insert(banner);
        }
    }
    for (ip, upstreams) in &chosen {
        assert_eq!(upstreams.len(), 1, "{lb_policy}: client {ip} reached {upstreams:?}");
    }
    // Different clients are spread: with 16 client IPs over 3 hosts, all on one host would
    // mean the hash ignores the client (chance ~1e-7 for a working hash).
    let used: BTreeSet<&String> = chosen.values().flatten().collect();
    assert!(used.len() >= 2, "{lb_policy}: all clients went to {used:?}");
}

#[test]
fn ring_hash_keeps_each_client_ip_on_one_upstream() {
    same_client_ip_always_lands_on_same_upstream("RING_HASH");
}

#[test]
fn maglev_keeps_each_client_ip_on_one_upstream() {
    same_client_ip_always_lands_on_same_upstream("MAGLEV");
}

#[test]
fn round_robin_rotates_through_every_upstream_in_turn() {
    let pool = Pool::new();
    let (_legate, port) = pool.serve("ROUND_ROBIN", "");
    let seq: Vec<String> = (0..12).map(|_| peers::banner_via(port)).collect();
    let first: BTreeSet<&String> = seq[..3].iter().collect();
    assert_eq!(first.len(), 3, "first three picks must be distinct: {seq:?}");
    for (i, b) in seq.iter().enumerate() {
        assert_eq!(b, &seq[i % 3], "round robin must repeat its cycle: {seq:?}");
    }
}

#[test]
fn every_lb_policy_reaches_every_upstream() {
    for policy in ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"] {
        let pool = Pool::new();
        let (legate, port) = pool.serve(policy, "hash_policy:\n- source_ip: {}");
        let mut used = BTreeSet::new();
        // 60 connections from 60 client IPs. The chance that a working policy leaves one of
        // the 3 hosts out is about 3·(2/3)^60 ≈ 1e-10 (hash policies: each IP lands on a
        // host with probability ~1/3; RANDOM and LEAST_REQUEST pick at random).
        for ip in client_ips(60) {
            used.insert(peers::banner_via_from(ip, port));
        }
        let want: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(used, want, "{policy} did not reach every upstream");
        assert_eq!(legate.stats().value("cluster.pool.upstream_cx_connect_fail"), 0);
    }
}
