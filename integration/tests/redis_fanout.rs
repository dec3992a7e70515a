//! Scenario: a user runs admin and keyless commands through the proxy (KEYS, SCAN, INFO,
//! INFO.SHARD, FLUSHALL/FLUSHDB, CONFIG, SCRIPT, SLOWLOG, CLUSTER, ROLE, RANDOMKEY, HELLO).
//! Envoy 1.40 sends them to its "shards" and merges the replies; Legate must answer exactly as
//! Envoy does over the same three redis-servers, behind RING_HASH (where Envoy sees one shard:
//! the host of hash 0) and behind MAGLEV (where Envoy's shards are maglev table slots 0, 1, 2,
//! which may name a host twice). Replies are compared byte for byte (INFO with its values
//! masked: they are live counters), then the `redis.<prefix>.*` stats.

use std::collections::BTreeMap;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::redis::{redis_cli, RedisServer, Resp};
use legate_integration::{yaml, Legate};

fn config(shards: &[RedisServer], lb: &str) -> String {
    let hosts: Vec<(&str, u16)> = shards.iter().map(|s| ("127.0.0.1", s.port)).collect();
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: fo\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  catch_all_route:\n    cluster: shards",
        )],
        &[yaml::cluster("shards", "STATIC", lb, &hosts, "")],
    )
}

fn sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["KEYS", "*"],
        vec!["KEYS", "k1*"],
        vec!["KEYS"],
        vec!["KEYS", "*", "extra"],
        vec!["SCAN", "0", "COUNT", "1000"],
        vec!["SCAN", "0", "MATCH", "k1*", "COUNT", "1000"],
        vec!["SCAN", "abc"],
        vec!["SCAN"],
        vec!["INFO", "keyspace"],
        vec!["INFO", "KEYSPACE"],
        vec!["INFO", "nosuch"],
        vec!["INFO"],
        vec!["INFO", "server"],
        vec!["INFO.SHARD", "0", "keyspace"],
        vec!["INFO.SHARD", "0"],
        vec!["INFO.SHARD", "9"],
        vec!["INFO.SHARD", "x"],
        vec!["INFO.SHARD", "0", "a", "b"],
        vec!["INFO.SHARD"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["CONFIG", "SET", "maxmemory", "0"],
        vec!["CONFIG", "HELP"],
        vec!["CONFIG"],
        vec!["SCRIPT", "LOAD", "return 1"],
        vec![
            "SCRIPT",
            "EXISTS",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
            "ffffffffffffffffffffffffffffffffffffffff",
        ],
        vec!["SCRIPT", "FLUSH"],
        vec!["SLOWLOG", "RESET"],
        vec!["SLOWLOG", "LEN"],
        vec!["SLOWLOG", "HELP"],
        vec!["CLUSTER", "INFO"],
        vec!["CLUSTER", "RESET"],
        vec!["CLUSTER"],
        vec!["ROLE"],
        vec!["ROLE", "extra"],
        vec!["HELLO"],
        vec!["HELLO", "2", "SETNAME", "me"],
        vec!["HELLO", "3"],
        vec!["HELLO", "x"],
        vec!["HELLO", "2", "FOO"],
        vec!["HELLO", "2", "AUTH", "u"],
        vec!["HELLO", "2", "AUTH", "u", "p"],
        vec!["FLUSHDB"],
        vec!["KEYS", "*"],
        vec!["RANDOMKEY"],
        vec!["SET", "k1", "again"],
        vec!["FLUSHALL"],
        vec!["SCAN", "0"],
    ]
}

/// INFO text with every value masked (the fields, their order and the sections stay).
fn mask_info(reply: &str) -> String {
    reply
        .split("\r\n")
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((k, _)) => format!("{k}:*"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The elements of an array reply, sorted (`None` for anything else).
fn sorted_elements(reply: &[u8]) -> Option<Vec<String>> {
    let frame = bytes::Bytes::from(reply.to_vec());
    let elements = legate_codecs::redis::reply::array_elements(&frame)?;
    let mut v: Vec<String> = elements.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
    v.sort();
    Some(v)
}

/// KEYS and SCAN replies in a canonical order. Redis lists a server's keys in its hash table's
/// order, which differs between two fills of the same keys, so the keys of each reply (of each
/// shard, for SCAN) are sorted. SCAN's per-shard pairs are sorted too: Envoy appends them in
/// the order the shards answer (a race), Legate in shard order.
fn canonical(cmd: &str, reply: &str) -> String {
    let Some(elements) = sorted_elements(reply.as_bytes()) else { return reply.to_string() };
    if cmd == "KEYS" {
        return format!("*{}\r\n{}", elements.len(), elements.concat());
    }
    let frame = bytes::Bytes::from(reply.as_bytes().to_vec());
    let Some(raw) = legate_codecs::redis::reply::array_elements(&frame) else { return reply.to_string() };
    let mut pairs: Vec<String> = raw
        .chunks(2)
        .map(|p| {
            let cursor = String::from_utf8_lossy(&p[0]).into_owned();
            let keys = p.get(1).and_then(|k| sorted_elements(k)).unwrap_or_default();
            format!("{cursor}{}", keys.concat())
        })
        .collect();
    pairs.sort();
    format!("*{}\r\n{}", raw.len(), pairs.join("|"))
}

fn run(port: u16, shards: &[RedisServer]) -> Vec<String> {
    for s in shards {
        assert_eq!(redis_cli(s.port, &["FLUSHALL"]), "OK");
    }
    let mut c = Resp::connect(port);
    // The same keys on the same shards for both proxies (same key hash, same ring or table).
    for i in 0..24 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    sequence()
        .iter()
        .map(|cmd| {
            let r = c.cmd(cmd);
            let info = cmd[0] == "INFO" && (cmd.len() < 2 || cmd[1] == "server");
            if info || cmd == &["INFO.SHARD", "0"] {
                mask_info(&r)
            } else if cmd[0] == "SCAN" || cmd[0] == "KEYS" {
                canonical(cmd[0], &r)
            } else {
                r
            }
        })
        .collect()
}

/// The stats whose values differ between two snapshots, one line each.
fn stat_diff(legate: &BTreeMap<String, String>, envoy: &BTreeMap<String, String>) -> String {
    legate_integration::admin::differing(legate, envoy).join("\n")
}

fn redis_stats(s: &Stats) -> BTreeMap<String, String> {
    s.0.iter()
        .filter(|(k, _)| k.starts_with("redis.fo.") && !k.ends_with(".latency") && !k.contains("bytes"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same_as_envoy(lb: &str) -> Vec<String> {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let cfg = config(&shards, lb);
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let from_envoy = run(envoy.listener_port("redis"), &shards);
    let from_legate = run(legate.listener_port("redis"), &shards);
    for (i, (e, l)) in from_envoy.iter().zip(&from_legate).enumerate() {
        assert_eq!(l, e, "{lb}: reply {i} differs ({:?})", sequence()[i]);
    }
    legate.wait_stat_eq("redis.fo.downstream_rq_active", 0);
    let diff = stat_diff(&redis_stats(&legate.stats()), &redis_stats(&envoy.stats()));
    assert!(diff.is_empty(), "{lb}: redis.fo.* stats differ:\n{diff}");
    from_legate
}

#[test]
fn keyless_commands_on_ring_hash_shards_reply_like_envoy() {
    let replies = same_as_envoy("RING_HASH");
    // RING_HASH: one Envoy shard, so KEYS lists only the keys of the host for hash 0.
    assert!(replies[0].starts_with('*') && !replies[0].starts_with("*24\r\n"), "{}", replies[0]);
    assert_eq!(replies[2], "-invalid request\r\n");
    assert_eq!(replies[7], "-ERR wrong number of arguments for 'SCAN' command\r\n");
    assert_eq!(replies[15], "-ERR shard_id 9 out of range (0-0)\r\n");
    assert_eq!(replies[21], "-ERR unsupported cluster scope command or invalid arguments\r\n");
    assert_eq!(replies[30], "-ERR cluster subcommand 'reset' is not supported\r\n");
    assert_eq!(replies[36], "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(replies[43], "$-1\r\n");
}

#[test]
fn keyless_commands_on_maglev_shards_reply_like_envoy() {
    let replies = same_as_envoy("MAGLEV");
    // MAGLEV: three Envoy shards; INFO sums their keyspaces.
    assert_eq!(replies[15], "-ERR shard_id 9 out of range (0-2)\r\n");
    assert!(replies[32].starts_with("*3\r\n*3\r\n$6\r\nmaster\r\n"), "{}", replies[32]);
}

#[test]
fn flushall_reaches_every_shard_envoy_would_reach() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let legate = Legate::start(&config(&shards, "RING_HASH"));
    let mut c = Resp::connect(legate.listener_port("redis"));
    for i in 0..24 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    let sizes =
        || shards.iter().map(|s| redis_cli(s.port, &["DBSIZE"]).parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    let before = sizes();
    let listed = c.cmd(&["KEYS", "*"]);
    let on_shard0 =
        before.iter().copied().find(|n| listed.starts_with(&format!("*{n}\r\n"))).expect("KEYS lists one shard");
    assert_eq!(c.cmd(&["FLUSHALL"]), "+OK\r\n");
    let after = sizes();
    // Exactly one server was flushed (the one KEYS listed), as with Envoy.
    assert_eq!(after.iter().filter(|n| **n == 0).count(), 1, "{before:?} -> {after:?}");
    assert_eq!(after.iter().sum::<u64>() + on_shard0, 24);
    let s = legate.stats();
    assert_eq!(s.value("redis.fo.command.flushall.success"), 1);
    assert_eq!(s.value("redis.fo.command.keys.success"), 1);
}

/// HELLO with AUTH, CLIENT, unknown commands before AUTH, and the commands Envoy refuses inside
/// a transaction, on a listener that requires a password.
fn auth_sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["NOSUCH", "x"],
        vec!["CLIENT", "SETNAME", "x"],
        vec!["HELLO"],
        vec!["HELLO", "3"],
        vec!["HELLO", "2", "AUTH", "default", "wrong"],
        vec!["KEYS", "*"],
        vec!["HELLO", "2", "AUTH", "default", "pw"],
        vec!["CLIENT", "SETINFO", "lib-name", "x"],
        vec!["CLIENT", "LIST"],
        vec!["CLIENT"],
        vec!["MULTI"],
        vec!["KEYS", "*"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["SET", "a", "1"],
        vec!["EVAL", "return 1", "1", "a"],
        vec!["EXISTS", "a"],
        vec!["OBJECT", "ENCODING", "a"],
        vec!["SCAN", "0"],
        vec!["MGET", "a", "b"],
        vec!["DEL", "b"],
        vec!["SELECT", "0"],
        vec!["RANDOMKEY"],
        vec!["HELLO"],
        vec!["INFO"],
        vec!["ROLE"],
        vec!["GETSET", "a", "2"],
        vec!["EXEC"],
        vec!["MULTI"],
        vec!["INCR", "a"],
        vec!["EXEC"],
        vec!["HELLO", "2", "AUTH", "someone", "pw"],
        vec!["GET", "a"],
    ]
}

#[test]
fn hello_client_and_transactions_reply_like_envoy() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let hosts: Vec<(&str, u16)> = shards.iter().map(|s| ("127.0.0.1", s.port)).collect();
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: fo\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  catch_all_route:\n    cluster: shards\ndownstream_auth_password: {inline_string: pw}",
        )],
        &[yaml::cluster("shards", "STATIC", "RING_HASH", &hosts, "")],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let mut replies = Vec::new();
    for port in [envoy.listener_port("redis"), legate.listener_port("redis")] {
        for s in &shards {
            assert_eq!(redis_cli(s.port, &["FLUSHALL"]), "OK");
        }
        let mut c = Resp::connect(port);
        replies.push(auth_sequence().iter().map(|cmd| c.cmd(cmd)).collect::<Vec<_>>());
    }
    for (i, (e, l)) in replies[0].iter().zip(&replies[1]).enumerate() {
        assert_eq!(l, e, "reply {i} differs ({:?})", auth_sequence()[i]);
    }
    assert_eq!(replies[1][0], "-ERR unknown command 'NOSUCH', with args beginning with: x\r\n");
    assert_eq!(replies[1][11], "-'KEYS' command is not supported within transaction\r\n");
    assert_eq!(replies[1][5], "-NOAUTH Authentication required.\r\n");
    legate.wait_stat_eq("redis.fo.downstream_rq_active", 0);
    let diff = stat_diff(&redis_stats(&legate.stats()), &redis_stats(&envoy.stats()));
    assert!(diff.is_empty(), "redis.fo.* stats differ:\n{diff}");
}

/// Three `redis-server --cluster-enabled yes` primaries joined with `redis-cli --cluster create`.
fn redis_cluster() -> (Vec<u16>, Vec<legate_integration::process::Proc>, legate_integration::process::TempDir) {
    use legate_integration::process::{require_binary, run_to_end, wait_until, Proc, TempDir, PATIENCE};
    let bin = require_binary("redis-server");
    let dir = TempDir::new("redis-cluster-fanout");
    let (mut ports, mut procs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (port, bus) = (legate_integration::peers::free_port(), legate_integration::peers::free_port());
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--cluster-port", &bus.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(dir.path().join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(dir.path());
        procs.push(Proc::spawn(&format!("redis-cluster-{port}"), cmd, &dir));
        ports.push(port);
    }
    let cli = require_binary("redis-cli");
    for &p in &ports {
        wait_until("a cluster node to answer", PATIENCE, || {
            (run_to_end(&cli, &["-p", &p.to_string(), "PING"], None).stdout.trim() == "PONG").then_some(())
        });
    }
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend(["--cluster-replicas".into(), "0".into(), "--cluster-yes".into()]);
    let out = run_to_end(&cli, &args, None);
    assert_eq!(out.code, Some(0), "redis-cli --cluster create: {}{}", out.stdout, out.stderr);
    wait_until("every node to see the whole cluster", PATIENCE, || {
        ports
            .iter()
            .all(|&p| {
                redis_cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && redis_cli(p, &["CLUSTER", "SLOTS"]).lines().filter(|l| *l == "127.0.0.1").count() == 3
            })
            .then_some(())
    });
    (ports, procs, dir)
}

#[test]
fn keyless_commands_on_a_redis_cluster_reach_every_primary_like_envoy() {
    let (ports, _procs, _dir) = redis_cluster();
    let extra = "cluster_type:\n  name: envoy.clusters.redis\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig\n    cluster_refresh_rate: 300s";
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: fo\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  catch_all_route:\n    cluster: rc",
        )],
        &[yaml::cluster("rc", "STATIC", "CLUSTER_PROVIDED", &[("127.0.0.1", ports[0])], extra)
            .replace("    type: STATIC\n", "")],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let sequence: Vec<Vec<&str>> = vec![
        vec!["KEYS", "*"],
        vec!["SCAN", "0", "COUNT", "1000"],
        vec!["INFO", "keyspace"],
        vec!["INFO.SHARD", "0", "keyspace"],
        vec!["INFO.SHARD", "2", "keyspace"],
        vec!["INFO.SHARD", "3"],
        vec!["CONFIG", "GET", "maxmemory"],
        vec!["SLOWLOG", "LEN"],
        vec!["FLUSHALL"],
        vec!["KEYS", "*"],
        // One random primary answers, unchanged (every node has the same slot map).
        vec!["CLUSTER", "KEYSLOT", "foo"],
        vec!["CLUSTER", "SLOTS"],
    ];
    let mut replies = Vec::new();
    for port in [envoy.listener_port("redis"), legate.listener_port("redis")] {
        for &p in &ports {
            assert_eq!(redis_cli(p, &["FLUSHALL"]), "OK");
        }
        let mut c = Resp::connect(port);
        for i in 0..30 {
            assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
        }
        replies.push(
            sequence
                .iter()
                .map(|cmd| {
                    let r = c.cmd(cmd);
                    if cmd[0] == "KEYS" || cmd[0] == "SCAN" {
                        canonical(cmd[0], &r)
                    } else {
                        r
                    }
                })
                .collect::<Vec<_>>(),
        );
    }
    for (i, (e, l)) in replies[0].iter().zip(&replies[1]).enumerate() {
        assert_eq!(l, e, "reply {i} differs ({:?})", sequence[i]);
    }
    // Every primary's keys: all 30.
    assert!(replies[1][0].starts_with("*30\r\n"), "{}", replies[1][0]);
    assert_eq!(replies[1][2], "$45\r\n# Keyspace\r\ndb0:keys=30,expires=0,avg_ttl=0\r\n\r\n");
    assert_eq!(replies[1][5], "-ERR shard_id 3 out of range (0-2)\r\n");
    assert_eq!(replies[1][9], "*0\r\n");
    assert_eq!(replies[1][10], ":12182\r\n");
    legate.wait_stat_eq("redis.fo.downstream_rq_active", 0);
    let diff = stat_diff(&redis_stats(&legate.stats()), &redis_stats(&envoy.stats()));
    assert!(diff.is_empty(), "redis.fo.* stats differ:\n{diff}");
}
