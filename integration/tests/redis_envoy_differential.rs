//! Scenario: a user swaps Envoy's redis_proxy for Legate's. Both serve the same config in front
//! of the same three redis-server shards and get the same command sequence; replies must be
//! byte-identical (error strings included), keys written through Envoy must be found through
//! Legate (same key hash, same ring), and the `redis.<prefix>.*` stats must have the same names
//! and values.

use std::collections::BTreeMap;

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::redis::{redis_cli, RedisServer, Resp};
use legate_integration::{yaml, Legate};

fn config(shards: &[RedisServer]) -> String {
    let hosts: Vec<(&str, u16)> = shards.iter().map(|s| ("127.0.0.1", s.port)).collect();
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: diff\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  catch_all_route:\n    cluster: shards",
        )],
        &[yaml::cluster("shards", "STATIC", "RING_HASH", &hosts, "")],
    )
}

/// The command sequence, each sent on one connection; TIME's reply is masked (it is a clock).
fn sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["PING"],
        vec!["ECHO", "hello"],
        vec!["ECHO"],
        vec!["TIME"],
        vec!["SET", "a", "1"],
        vec!["GET", "a"],
        vec!["GET", "missing"],
        vec!["INCR", "a"],
        vec!["INCR", "a"],
        vec!["GET"],
        vec!["NOSUCHCMD", "x"],
        vec!["BLPOP", "q", "0"],
        vec!["AUTH", "pw"],
        vec!["AUTH", "user", "pw"],
        vec!["MSET", "k1", "v1", "k2", "v2", "k3", "v3"],
        vec!["MSET", "k1", "v1", "k2"],
        vec!["MGET", "k1", "k2", "nope", "k3"],
        vec!["MGET", "k1"],
        vec!["EXISTS", "k1", "k2", "nope"],
        vec!["DEL", "k1", "nope"],
        vec!["TOUCH", "k2", "k3"],
        vec!["UNLINK", "k3"],
        vec!["HSET", "h", "f", "v"],
        vec!["HGET", "h", "f"],
        vec!["LPUSH", "l", "x", "y"],
        vec!["LRANGE", "l", "0", "-1"],
        vec!["GET", "l"],
        vec!["MGET", "l", "a"],
        vec!["EVAL", "return 1", "0"],
        vec!["EVAL", "return KEYS[1]", "1", "a"],
        vec!["SADD", "s", "m"],
        vec!["SMEMBERS", "s"],
        vec!["ZADD", "z", "1", "m"],
        vec!["ZSCORE", "z", "m"],
        vec!["EXPIRE", "a", "100"],
        vec!["TYPE", "h"],
        vec!["OBJECT", "ENCODING", "a"],
        vec!["NOSUCH"],
        vec!["EXEC"],
        vec!["DISCARD"],
        vec!["UNWATCH"],
        vec!["MULTI"],
        vec!["MULTI"],
        vec!["SET", "t", "1"],
        vec!["INCR", "t"],
        vec!["MGET", "t", "a"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["EXEC"],
        vec!["WATCH", "w"],
        vec!["MULTI"],
        vec!["SET", "w", "1"],
        vec!["DISCARD"],
        vec!["GET", "t"],
    ]
}

fn run(port: u16) -> Vec<String> {
    let mut c = Resp::connect(port);
    let mut out = Vec::new();
    for cmd in sequence() {
        let r = c.cmd(&cmd);
        out.push(if cmd[0] == "TIME" { format!("TIME:{}", r.lines().count()) } else { r });
    }
    // Raw frames: an array holding a non-bulk element.
    c.send_raw(b"*2\r\n$3\r\nGET\r\n:1\r\n");
    out.push(c.reply());
    // Nested arrays, then inline commands.
    c.send_raw(b"*1\r\n*1\r\n$1\r\na\r\nGET t\r\nFOO bar baz\r\n");
    for _ in 0..3 {
        out.push(c.reply());
    }
    out.push(c.cmd(&["QUIT"]));
    out
}

fn flush(shards: &[RedisServer]) {
    for s in shards {
        assert_eq!(redis_cli(s.port, &["FLUSHALL"]), "OK");
    }
}

/// `redis.diff.*` counters and gauges (histograms are timings, compared by name only).
fn redis_stats(s: &Stats) -> BTreeMap<String, String> {
    s.0.iter().filter(|(k, _)| k.starts_with("redis.diff.")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn legate_answers_and_counts_like_envoy_redis_proxy() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let cfg = config(&shards);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let (ep, lp) = (envoy.listener_port("redis"), legate.listener_port("redis"));

    // Same key hash and ring: what Envoy wrote, Legate finds, on every shard.
    let mut e = Resp::connect(ep);
    for i in 0..50 {
        assert_eq!(e.cmd(&["SET", &format!("ring:{i}"), &i.to_string()]), "+OK\r\n");
    }
    let mut l = Resp::connect(lp);
    for i in 0..50 {
        let v = i.to_string();
        assert_eq!(l.cmd(&["GET", &format!("ring:{i}")]), format!("${}\r\n{v}\r\n", v.len()), "ring:{i}");
    }
    // And the other way round (which also keeps the two sides' stats equal).
    for i in 0..50 {
        assert_eq!(l.cmd(&["SET", &format!("ring2:{i}"), &i.to_string()]), "+OK\r\n");
    }
    for i in 0..50 {
        let v = i.to_string();
        assert_eq!(e.cmd(&["GET", &format!("ring2:{i}")]), format!("${}\r\n{v}\r\n", v.len()), "ring2:{i}");
    }
    let used = shards.iter().filter(|s| redis_cli(s.port, &["DBSIZE"]) != "0").count();
    assert_eq!(used, 3, "keys spread over all shards");
    drop((e, l));
    flush(&shards);

    let from_envoy = run(ep);
    flush(&shards);
    let from_legate = run(lp);
    for (i, (a, b)) in from_envoy.iter().zip(&from_legate).enumerate() {
        assert_eq!(b, a, "reply {i} differs (command {:?})", sequence().get(i));
    }
    assert_eq!(from_envoy.len(), from_legate.len());

    legate.wait_stat_eq("redis.diff.downstream_cx_active", 0);
    legate_integration::process::wait_until(
        "envoy downstream_cx_active == 0",
        legate_integration::process::PATIENCE,
        || (envoy.stats().value("redis.diff.downstream_cx_active") == 0).then_some(()),
    );
    let es = redis_stats(&Stats::parse(&admin::get(envoy.admin, "/stats").body));
    let ls = redis_stats(&legate.stats());
    let missing: Vec<&String> = es.keys().filter(|k| !ls.contains_key(*k)).collect();
    assert!(missing.is_empty(), "Legate lacks Envoy's stats: {missing:#?}");
    let extra: Vec<&String> = ls.keys().filter(|k| !es.contains_key(*k)).collect();
    assert!(extra.is_empty(), "Legate has stats Envoy lacks: {extra:#?}");
    let mut diffs = Vec::new();
    for (k, v) in &es {
        if k.ends_with(".latency") || k.contains("bytes") {
            continue;
        }
        if ls.get(k) != Some(v) {
            diffs.push(format!("{k}: envoy {v} legate {:?}", ls.get(k)));
        }
    }
    assert!(diffs.is_empty(), "stat values differ:\n{}", diffs.join("\n"));

    // Cluster side: the redis_cluster tree, and the request counters of the shared connections.
    let ec = Stats::parse(&admin::get(envoy.admin, "/stats").body);
    let lc = legate.stats();
    assert_eq!(
        ec.names_with_prefix("cluster.shards.redis_cluster."),
        lc.names_with_prefix("cluster.shards.redis_cluster.")
    );
    for name in [
        "cluster.shards.upstream_rq_total",
        "cluster.shards.upstream_rq_active",
        "cluster.shards.upstream_rq_timeout",
        "cluster.shards.upstream_cx_connect_fail",
        "cluster.shards.upstream_cx_protocol_error",
    ] {
        assert_eq!(lc.value(name), ec.value(name), "{name}: legate vs envoy");
    }
}
