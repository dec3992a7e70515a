//! Scenario: an operator turns on `settings.enable_command_stats` to see, per upstream cluster,
//! how many of each command were sent, how many failed and how long they took. Legate and
//! Envoy 1.40 serve the same config over the same three shards and get the same commands:
//! the `cluster.<c>.redis_cluster.upstream_commands.*` names (created lazily, as Envoy does)
//! and counter values must be identical.

use std::collections::BTreeMap;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::redis::{redis_cli, RedisServer, Resp};
use legate_integration::{yaml, Legate};

const PREFIX: &str = "cluster.shards.redis_cluster.upstream_commands.";

fn config(shards: &[RedisServer], command_stats: bool) -> String {
    let hosts: Vec<(&str, u16)> = shards.iter().map(|s| ("127.0.0.1", s.port)).collect();
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            &format!(
                "stat_prefix: cs\nsettings:\n  op_timeout: 5s\n  enable_command_stats: {command_stats}\nprefix_routes:\n  catch_all_route:\n    cluster: shards"
            ),
        )],
        &[yaml::cluster("shards", "STATIC", "RING_HASH", &hosts, "")],
    )
}

fn sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["SET", "a", "1"],
        vec!["SET", "b", "x"],
        vec!["get", "a"],
        vec!["INCR", "b"],
        vec!["LPUSH", "a", "v"],
        vec!["MGET", "a", "b", "c"],
        vec!["MSET", "c", "1", "d", "2"],
        vec!["DEL", "c", "d", "nope"],
        vec!["EVAL", "return 1", "1", "a"],
        vec!["OBJECT", "ENCODING", "a"],
        vec!["HSET", "h", "f", "v"],
        vec!["MULTI"],
        vec!["SET", "t", "1"],
        vec!["GET", "t"],
        vec!["EXEC"],
        vec!["KEYS", "a*"],
        vec!["SCAN", "0", "MATCH", "a*"],
        vec!["INFO", "keyspace"],
        vec!["PING"],
        vec!["NOSUCH", "x"],
    ]
}

/// The upstream command stats: counter values, and histograms by name only (they are timings).
fn command_stats(s: &Stats) -> BTreeMap<String, String> {
    s.0.iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(k, v)| {
            (k.clone(), if k.ends_with(".latency") || k.ends_with("upstream_rq_time") { "H".into() } else { v.clone() })
        })
        .collect()
}

fn run(port: u16, shards: &[RedisServer]) -> Vec<String> {
    for s in shards {
        assert_eq!(redis_cli(s.port, &["FLUSHALL"]), "OK");
    }
    let mut c = Resp::connect(port);
    sequence().iter().map(|cmd| c.cmd(cmd)).collect()
}

#[test]
fn command_stats_count_each_upstream_command_like_envoy() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let cfg = config(&shards, true);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let from_envoy = run(envoy.listener_port("redis"), &shards);
    let from_legate = run(legate.listener_port("redis"), &shards);
    assert_eq!(from_legate, from_envoy);
    let es = command_stats(&envoy.stats());
    let ls = command_stats(&legate.stats());
    assert!(es.contains_key(&format!("{PREFIX}set.total")), "{es:#?}");
    assert_eq!(ls, es);
}

#[test]
fn command_stats_are_created_on_first_use_with_envoys_names() {
    let shards = [RedisServer::start()];
    let legate = Legate::start(&config(&shards, true));
    let s = legate.stats();
    assert_eq!(command_stats(&s).keys().cloned().collect::<Vec<_>>(), vec![format!("{PREFIX}upstream_rq_time")]);
    let mut c = Resp::connect(legate.listener_port("redis"));
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GeT", "k"]), "$1\r\nv\r\n");
    assert!(c.cmd(&["INCR", "k"]).starts_with("-ERR"));
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*1\r\n$1\r\nv\r\n");
    let s = legate.stats();
    let got = command_stats(&s);
    let want: BTreeMap<String, String> = [
        ("get.latency", "H"),
        ("get.success", "2"),
        ("get.total", "2"),
        // An error reply from Redis is a failure here (unlike `redis.<p>.command.*`).
        ("incr.failure", "1"),
        ("incr.latency", "H"),
        ("incr.total", "1"),
        ("set.latency", "H"),
        ("set.success", "1"),
        ("set.total", "1"),
        // MULTI and EXEC are not among Envoy's named commands.
        ("unknown.latency", "H"),
        ("unknown.success", "2"),
        ("unknown.total", "2"),
        ("upstream_rq_time", "H"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn without_command_stats_only_the_request_time_is_kept() {
    let shards = [RedisServer::start()];
    let legate = Legate::start(&config(&shards, false));
    let port = legate.listener_port("redis");
    assert_eq!(redis_cli(port, &["SET", "k", "v"]), "OK");
    let s = legate.stats();
    assert_eq!(command_stats(&s).keys().cloned().collect::<Vec<_>>(), vec![format!("{PREFIX}upstream_rq_time")]);
}
