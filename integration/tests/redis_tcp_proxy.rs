//! Scenario: tcp_proxy in front of a real redis-server, driven by the real redis-cli.

use legate_integration::redis::{redis_cli, RedisServer};
use legate_integration::yaml;
use legate_integration::Legate;

fn redis_front(redis: &RedisServer) -> Legate {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], redis.port));
    Legate::start(&yaml::simple_tcp_proxy("redis_tcp", "redis", &[addr]))
}

#[test]
fn redis_cli_set_and_get_pass_through_tcp_proxy() {
    let redis = RedisServer::start();
    let legate = redis_front(&redis);
    let port = legate.listener_port("redis_tcp");

    assert_eq!(redis_cli(port, &["SET", "greeting", "hello from legate"]), "OK");
    assert_eq!(redis_cli(port, &["GET", "greeting"]), "hello from legate");
    // The value really is in the redis-server behind the proxy.
    assert_eq!(redis_cli(redis.port, &["GET", "greeting"]), "hello from legate");
}

#[test]
fn redis_traffic_is_counted_in_tcp_and_cluster_stats() {
    let redis = RedisServer::start();
    let legate = redis_front(&redis);
    let port = legate.listener_port("redis_tcp");

    assert_eq!(redis_cli(port, &["SET", "k", "v"]), "OK");
    assert_eq!(redis_cli(port, &["GET", "k"]), "v");

    // Both redis-cli connections have ended once the listener has destroyed them.
    // Envoy names listener stats after the configured address (port 0 here).
    let listener = "listener.127.0.0.1_0.".to_string();
    legate.wait_stat_eq(&format!("{listener}downstream_cx_destroy"), 2);
    let s = legate.stats();
    assert_eq!(s.value("tcp.redis_tcp.downstream_cx_total"), 2);
    assert_eq!(s.value(&format!("{listener}downstream_cx_total")), 2);
    assert_eq!(s.value("cluster.redis.upstream_cx_total"), 2);
    assert_eq!(s.value("cluster.redis.upstream_cx_connect_fail"), 0);

    let down_rx = s.value("tcp.redis_tcp.downstream_cx_rx_bytes_total");
    let down_tx = s.value("tcp.redis_tcp.downstream_cx_tx_bytes_total");
    let up_rx = s.value("cluster.redis.upstream_cx_rx_bytes_total");
    let up_tx = s.value("cluster.redis.upstream_cx_tx_bytes_total");
    assert!(down_rx > 0 && down_tx > 0, "downstream bytes: rx {down_rx} tx {down_tx}");
    // Every byte read from a client was written to redis and every reply byte went back.
    assert_eq!(down_rx, up_tx, "client->redis bytes");
    assert_eq!(up_rx, down_tx, "redis->client bytes");
    // `+OK\r\n` and `$1\r\nv\r\n` came back.
    assert_eq!(down_tx, 5 + 7);
}
