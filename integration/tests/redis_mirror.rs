//! Scenario: a user mirrors Redis traffic to a second server with `request_mirror_policy`
//! (to warm a new cache, or to replay production writes on a test instance). Replies come only
//! from the primary; the mirror receives copies, writes only where `exclude_read_commands` is
//! set. Envoy 1.40 runs the same config and commands: the replies, what the mirror server
//! receives (its `INFO commandstats`), and the stats must be the same.

use std::collections::BTreeMap;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::redis::{redis_cli, RedisServer, Resp};
use legate_integration::{yaml, Legate};

/// Keys under `ro:` mirror writes only; everything else mirrors every command.
fn config(primary: &RedisServer, mirror: &RedisServer) -> String {
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: m
settings:
  op_timeout: 5s
  enable_command_stats: true
prefix_routes:
  routes:
  - prefix: 'ro:'
    cluster: primary
    request_mirror_policy:
    - cluster: mirror
      exclude_read_commands: true
  catch_all_route:
    cluster: primary
    request_mirror_policy:
    - cluster: mirror",
        )],
        &[
            yaml::cluster("primary", "STATIC", "RING_HASH", &[("127.0.0.1", primary.port)], ""),
            yaml::cluster("mirror", "STATIC", "RING_HASH", &[("127.0.0.1", mirror.port)], ""),
        ],
    )
}

fn sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["SET", "a", "1"],
        vec!["GET", "a"],
        vec!["GET", "only-on-mirror"],
        vec!["INCR", "a"],
        vec!["MSET", "b", "2", "c", "3"],
        vec!["MGET", "a", "b", "c"],
        vec!["DEL", "b"],
        vec!["EXISTS", "a", "c"],
        vec!["SET", "ro:x", "1"],
        vec!["GET", "ro:x"],
        vec!["GETSET", "ro:x", "2"],
        vec!["INCR", "ro:x"],
        vec!["HSET", "ro:h", "f", "v"],
        vec!["HGET", "ro:h", "f"],
        vec!["EXISTS", "ro:x", "ro:h"],
        vec!["DEL", "ro:h"],
        vec!["MULTI"],
        vec!["SET", "t", "1"],
        vec!["INCR", "t"],
        vec!["EXEC"],
        vec!["KEYS", "a*"],
        // The last mirrored command: once the mirror has seen it, the run is complete.
        vec!["APPEND", "zz:end", "x"],
    ]
}

/// `cmdstat_<name>` -> (calls, failed_calls) from `INFO commandstats`, without the INFO the
/// test itself sends.
fn commandstats(port: u16) -> BTreeMap<String, String> {
    redis_cli(port, &["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let pick = |k: &str| rest.split(',').find_map(|kv| kv.strip_prefix(k)).unwrap_or("?").to_string();
            (name != "info")
                .then(|| (name.to_string(), format!("calls={} failed={}", pick("calls="), pick("failed_calls="))))
        })
        .collect()
}

/// Runs the sequence against `port`; returns the replies and what the mirror received.
fn run(port: u16, primary: &RedisServer, mirror: &RedisServer) -> (Vec<String>, BTreeMap<String, String>, Vec<String>) {
    for s in [primary, mirror] {
        assert_eq!(redis_cli(s.port, &["FLUSHALL"]), "OK");
    }
    // A key only the mirror has: the proxy must not answer from it.
    assert_eq!(redis_cli(mirror.port, &["SET", "only-on-mirror", "m"]), "OK");
    assert_eq!(redis_cli(mirror.port, &["CONFIG", "RESETSTAT"]), "OK");
    let mut c = Resp::connect(port);
    let replies: Vec<String> = sequence().iter().map(|cmd| c.cmd(cmd)).collect();
    let stats = wait_until("the mirror to receive the last command", PATIENCE, || {
        let s = commandstats(mirror.port);
        (s.contains_key("append") && s.contains_key("exec")).then_some(s)
    });
    let mut keys: Vec<String> = redis_cli(mirror.port, &["KEYS", "*"]).lines().map(str::to_string).collect();
    keys.sort();
    let values = keys.iter().map(|k| format!("{k}:{}", redis_cli(mirror.port, &["TYPE", k]))).collect();
    (replies, stats, values)
}

#[test]
fn writes_are_mirrored_and_replies_come_from_the_primary() {
    let (primary, mirror) = (RedisServer::start(), RedisServer::start());
    let legate = Legate::start(&config(&primary, &mirror));
    let (replies, stats, _) = run(legate.listener_port("redis"), &primary, &mirror);
    // The primary answers: the mirror's own key is not seen, and the mirror's replies are dropped.
    assert_eq!(replies[2], "$-1\r\n");
    assert_eq!(replies[5], "*3\r\n$1\r\n2\r\n$1\r\n2\r\n$1\r\n3\r\n");
    // Everything reached the mirror on the catch-all route, reads included.
    assert_eq!(redis_cli(mirror.port, &["GET", "a"]), "2");
    assert_eq!(redis_cli(mirror.port, &["GET", "t"]), "2");
    assert_eq!(stats.get("mget"), None, "MGET is mirrored per key, as GET");
    assert!(stats.contains_key("keys") && stats.contains_key("multi"), "{stats:?}");
    // Under `ro:` only writes were mirrored: SET and INCR but not GET, GETSET (a read for
    // Envoy), HGET or EXISTS.
    assert_eq!(redis_cli(mirror.port, &["GET", "ro:x"]), "2");
    assert_eq!(stats.get("getset"), None);
    assert_eq!(stats.get("hget"), None);
    // `GET a`, `GET only-on-mirror` and the three MGET keys; `GET ro:x` was not mirrored.
    assert_eq!(stats.get("get").map(String::as_str), Some("calls=5 failed=0"));
    // `EXISTS a c` was mirrored per key; `EXISTS ro:x ro:h` was not.
    assert_eq!(stats.get("exists").map(String::as_str), Some("calls=2 failed=0"));
    let s = legate.stats();
    assert_eq!(s.value("redis.m.command.set.total"), 2);
}

#[test]
fn mirroring_matches_envoy() {
    let (primary, mirror) = (RedisServer::start(), RedisServer::start());
    let cfg = config(&primary, &mirror);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let from_envoy = run(envoy.listener_port("redis"), &primary, &mirror);
    let from_legate = run(legate.listener_port("redis"), &primary, &mirror);
    for (i, (e, l)) in from_envoy.0.iter().zip(&from_legate.0).enumerate() {
        assert_eq!(l, e, "reply {i} differs ({:?})", sequence()[i]);
    }
    assert_eq!(from_legate.1, from_envoy.1, "commands the mirror received");
    assert_eq!(from_legate.2, from_envoy.2, "keys on the mirror");
    // Every mirrored reply is in (the mirror's stats are counted when its replies arrive).
    wait_until("envoy's mirror requests to finish", PATIENCE, || {
        (envoy.stats().value("cluster.mirror.upstream_rq_active") == 0).then_some(())
    });
    legate.wait_stat_eq("cluster.mirror.upstream_rq_active", 0);
    let es = envoy.stats();
    let ls = legate.stats();
    let wanted = |s: &Stats| -> BTreeMap<String, u64> {
        s.0.iter()
            .filter(|(k, _)| {
                k.starts_with("redis.m.command.") && !k.ends_with(".latency")
                    || k.starts_with("redis.m.splitter.")
                    || k.ends_with(".upstream_rq_total") && k.starts_with("cluster.")
                    // Per-command upstream stats on both clusters. On the mirror only what was
                    // sent is compared: the replies on its transaction connection race that
                    // connection's close once the primary's EXEC reply is in (in Envoy too).
                    || k.starts_with("cluster.primary.redis_cluster.upstream_commands.")
                        && !k.ends_with(".latency")
                        && !k.ends_with("upstream_rq_time")
                    || k.starts_with("cluster.mirror.redis_cluster.upstream_commands.") && k.ends_with(".total")
            })
            .map(|(k, _)| (k.clone(), s.value(k)))
            .collect()
    };
    assert!(wanted(&es).get("cluster.mirror.upstream_rq_total").is_some_and(|n| *n > 0));
    assert!(wanted(&es).contains_key("cluster.mirror.redis_cluster.upstream_commands.set.total"));
    let (l, e) = (wanted(&ls), wanted(&es));
    let differ: Vec<String> = l
        .keys()
        .chain(e.keys())
        .filter(|k| l.get(*k) != e.get(*k))
        .map(|k| format!("{k}: legate {:?} envoy {:?}", l.get(k), e.get(k)))
        .collect();
    assert!(differ.is_empty(), "stats differ:\n{}", differ.join("\n"));
}

#[test]
fn runtime_fraction_decides_what_is_mirrored() {
    let (primary, mirror) = (RedisServer::start(), RedisServer::start());
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: m
settings:
  op_timeout: 5s
prefix_routes:
  routes:
  - prefix: 'none:'
    cluster: primary
    request_mirror_policy:
    - cluster: mirror
      runtime_fraction: {runtime_key: redis.mirror.none, default_value: {numerator: 0}}
  - prefix: 'all:'
    cluster: primary
    request_mirror_policy:
    - cluster: mirror
      runtime_fraction: {runtime_key: redis.mirror.all, default_value: {numerator: 100}}
  catch_all_route:
    cluster: primary",
        )],
        &[
            yaml::cluster("primary", "STATIC", "RING_HASH", &[("127.0.0.1", primary.port)], ""),
            yaml::cluster("mirror", "STATIC", "RING_HASH", &[("127.0.0.1", mirror.port)], ""),
        ],
    );
    let legate = Legate::start(&cfg);
    let mut c = Resp::connect(legate.listener_port("redis"));
    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("none:{i}"), "v"]), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["SET", "all:last", "v"]), "+OK\r\n");
    wait_until("the mirrored write", PATIENCE, || {
        (redis_cli(mirror.port, &["EXISTS", "all:last"]) == "1").then_some(())
    });
    assert_eq!(redis_cli(mirror.port, &["DBSIZE"]), "1", "only the 100% route was mirrored");
    assert_eq!(redis_cli(primary.port, &["DBSIZE"]), "21");
}

fn signal(pid: &str, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, pid]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_stalled_mirror_gets_a_bounded_number_of_copies_and_never_holds_up_the_primary() {
    let (primary, mirror) = (RedisServer::start(), RedisServer::start());
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: m\nsettings:\n  op_timeout: 120s\nprefix_routes:\n  catch_all_route:\n    cluster: primary\n    request_mirror_policy: [{cluster: mirror}]",
        )],
        &[
            yaml::cluster("primary", "STATIC", "RING_HASH", &[("127.0.0.1", primary.port)], ""),
            yaml::cluster("mirror", "STATIC", "RING_HASH", &[("127.0.0.1", mirror.port)], ""),
        ],
    );
    let legate = Legate::start(&cfg);
    let info = redis_cli(mirror.port, &["INFO", "server"]);
    let pid = info.lines().find_map(|l| l.trim().strip_prefix("process_id:")).expect("process_id").to_string();
    // The mirror stops reading (its connection still opens: the kernel accepts it).
    signal(&pid, "-STOP");
    const N: usize = 70_000;
    const CAP: usize = 65_536;
    let mut c = Resp::connect(legate.listener_port("redis"));
    for batch in 0..N / 1000 {
        let mut out = Vec::new();
        for i in batch * 1000..(batch + 1) * 1000 {
            out.extend(Resp::encode(&["SET", &format!("m:{i}"), "v"]));
        }
        c.send_raw(&out);
        for _ in 0..1000 {
            assert_eq!(c.reply(), "+OK\r\n");
        }
    }
    assert_eq!(redis_cli(primary.port, &["DBSIZE"]), N.to_string());
    signal(&pid, "-CONT");
    legate.wait_stat_eq("cluster.mirror.upstream_rq_active", 0);
    // The first 65,536 copies waited for the mirror and arrived; the others were not sent.
    assert_eq!(redis_cli(mirror.port, &["DBSIZE"]), CAP.to_string());
    assert_eq!(redis_cli(mirror.port, &["EXISTS", &format!("m:{}", CAP - 1)]), "1");
    assert_eq!(redis_cli(mirror.port, &["EXISTS", &format!("m:{CAP}")]), "0");
    // With the mirror answering again, copies flow again.
    assert_eq!(c.cmd(&["SET", "after", "v"]), "+OK\r\n");
    wait_until("the copy after the stall", PATIENCE, || {
        (redis_cli(mirror.port, &["EXISTS", "after"]) == "1").then_some(())
    });
}
