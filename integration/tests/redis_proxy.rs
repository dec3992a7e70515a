//! Scenario: redis_proxy in front of real redis-server processes, driven by redis-cli,
//! redis-benchmark and a raw RESP client: local commands, key hashing over three shards,
//! split commands, pipelining, auth, op_timeout, a dying server, bad input, exact stats.

use std::io::Write as _;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use legate_integration::process::{self, require_binary};
use legate_integration::redis::{redis_cli, RedisServer, Resp};
use legate_integration::{yaml, Legate};

/// A redis_proxy listener `redis` (stat_prefix `p`) over a RING_HASH cluster `shards`.
fn proxy_yaml(servers: &[&RedisServer], extra_fields: &str, cluster_extra: &str) -> String {
    let hosts: Vec<(&str, u16)> = servers.iter().map(|s| ("127.0.0.1", s.port)).collect();
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            &format!("stat_prefix: p\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  catch_all_route:\n    cluster: shards\n{extra_fields}"),
        )],
        &[yaml::cluster("shards", "STATIC", "RING_HASH", &hosts, cluster_extra)],
    )
}

fn start(servers: &[&RedisServer], extra: &str) -> (Legate, u16) {
    let legate = Legate::start(&proxy_yaml(servers, extra, ""));
    let port = legate.listener_port("redis");
    (legate, port)
}

#[test]
fn local_commands_and_envoy_error_strings() {
    let redis = RedisServer::start();
    let (_legate, port) = start(&[&redis], "");
    let mut c = Resp::connect(port);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["ECHO", "hi"]), "$2\r\nhi\r\n");
    assert_eq!(c.cmd(&["ECHO"]), "-invalid request\r\n");
    assert!(c.cmd(&["TIME"]).starts_with("*2\r\n$10\r\n"));
    assert_eq!(c.cmd(&["GET"]), "-invalid request\r\n");
    assert_eq!(c.cmd(&["BLPOP", "k", "0"]), "-ERR unknown command 'BLPOP', with args beginning with: k\r\n");
    assert_eq!(c.cmd(&["NOSUCH"]), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    assert_eq!(c.cmd(&["AUTH", "x"]), "-ERR Client sent AUTH, but no password is set\r\n");
    assert_eq!(c.cmd(&["EVAL", "return 1", "0"]), "-wrong number of arguments for 'EVAL' command\r\n");
    assert_eq!(c.cmd(&["MSET", "a", "1", "b"]), "-wrong number of arguments for 'MSET' command\r\n");
    c.send_raw(b"*1\r\n:1\r\n");
    assert_eq!(c.reply(), "-invalid request\r\n");
    assert_eq!(c.cmd(&["QUIT"]), "+OK\r\n");
    assert!(c.is_closed());
}

#[test]
fn redis_cli_set_get_and_exact_stats() {
    let redis = RedisServer::start();
    let (legate, port) = start(&[&redis], "");
    assert_eq!(redis_cli(port, &["SET", "greeting", "hello"]), "OK");
    assert_eq!(redis_cli(port, &["GET", "greeting"]), "hello");
    assert_eq!(redis_cli(redis.port, &["GET", "greeting"]), "hello");
    let mut c = Resp::connect(port);
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(c.cmd(&["INCR", "greeting"]), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmd(&["NOPE", "x"]), "-ERR unknown command 'NOPE', with args beginning with: x\r\n");
    assert_eq!(c.cmd(&["GET"]), "-invalid request\r\n");
    drop(c);
    legate.wait_stat_eq("redis.p.downstream_cx_active", 0);
    let s = legate.stats();
    // redis-cli sends COMMAND DOCS first on an interactive start only; with arguments it sends
    // just the command.
    assert_eq!(s.value("redis.p.downstream_cx_total"), 3);
    assert_eq!(s.value("redis.p.downstream_rq_total"), 6);
    assert_eq!(s.value("redis.p.downstream_rq_active"), 0);
    assert_eq!(s.value("redis.p.command.set.total"), 1);
    assert_eq!(s.value("redis.p.command.set.success"), 1);
    assert_eq!(s.value("redis.p.command.get.total"), 2);
    assert_eq!(s.value("redis.p.command.get.success"), 2);
    // An error reply from Redis is still a successful proxying, as Envoy counts it.
    assert_eq!(s.value("redis.p.command.incr.success"), 1);
    assert_eq!(s.value("redis.p.command.incr.error"), 0);
    assert_eq!(s.value("redis.p.splitter.unsupported_command"), 1);
    assert_eq!(s.value("redis.p.splitter.invalid_request"), 1);
    // Every supported command's stats exist at zero.
    assert_eq!(s.value("redis.p.command.zrevrangebyscore.total"), 0);
    assert!(s.get("redis.p.command.bf.add.error_fault").is_some());
    assert!(s.get("redis.p.command.info.shard.total").is_some());
    assert_eq!(s.value("cluster.shards.redis_cluster.upstream_cx_drained"), 0);
    // Shared upstream connections carried everything: at most one per worker thread (2 here).
    assert!(s.value("cluster.shards.upstream_cx_total") <= 2);
    assert_eq!(s.value("cluster.shards.upstream_rq_total"), 4);
}

#[test]
fn three_shards_keys_land_on_one_shard_and_mget_reassembles_in_order() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let refs: Vec<&RedisServer> = shards.iter().collect();
    let (legate, port) = start(&refs, "");
    let mut c = Resp::connect(port);
    let keys: Vec<String> = (0..60).map(|i| format!("key:{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, &format!("v-{k}")]), "+OK\r\n");
    }
    let mut per_shard = [0usize; 3];
    for k in &keys {
        let holders: Vec<usize> = (0..3).filter(|&i| redis_cli(shards[i].port, &["EXISTS", k]) == "1").collect();
        assert_eq!(holders.len(), 1, "{k} is on shards {holders:?}");
        per_shard[holders[0]] += 1;
        // Reading through the proxy finds it where it was stored.
        assert_eq!(c.cmd(&["GET", k]), format!("${}\r\nv-{k}\r\n", 2 + k.len()));
    }
    assert!(per_shard.iter().all(|&n| n > 0), "keys spread over every shard: {per_shard:?}");
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("nosuchkey");
    let reply = c.cmd(&mget);
    let mut want = format!("*{}\r\n", keys.len() + 1);
    for k in &keys {
        want.push_str(&format!("${}\r\nv-{k}\r\n", 2 + k.len()));
    }
    want.push_str("$-1\r\n");
    assert_eq!(reply, want);
    assert_eq!(c.cmd(&["MSET", "m:1", "a", "m:2", "b", "m:3", "c"]), "+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", "m:1", "m:2", "m:3", "none"]), ":3\r\n");
    assert_eq!(c.cmd(&["DEL", "m:1", "m:2", "none"]), ":2\r\n");
    assert_eq!(c.cmd(&["UNLINK", "m:3"]), ":1\r\n");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "key:7"]), "$7\r\nv-key:7\r\n");
    let s = legate.stats();
    assert_eq!(s.value("redis.p.command.mget.total"), 1);
    assert_eq!(s.value("redis.p.command.mget.success"), 1);
    assert_eq!(s.value("redis.p.command.del.success"), 1);
    // One connection per shard, shared.
    assert_eq!(s.value("cluster.shards.upstream_cx_total"), 3);
}

#[test]
fn hashtags_keep_related_keys_on_one_shard() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let refs: Vec<&RedisServer> = shards.iter().collect();
    let legate = Legate::start(
        &proxy_yaml(&refs, "", "").replace("op_timeout: 5s", "op_timeout: 5s\n            enable_hashtagging: true"),
    );
    let port = legate.listener_port("redis");
    let mut c = Resp::connect(port);
    for i in 0..20 {
        assert_eq!(c.cmd(&["SET", &format!("{{user42}}:{i}"), "x"]), "+OK\r\n");
    }
    let counts: Vec<String> = shards.iter().map(|s| redis_cli(s.port, &["DBSIZE"])).collect();
    assert_eq!(counts.iter().filter(|n| *n == "20").count(), 1, "all tagged keys on one shard: {counts:?}");
}

#[test]
fn pipelined_replies_come_back_in_request_order() {
    let shards = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let refs: Vec<&RedisServer> = shards.iter().collect();
    let (_legate, port) = start(&refs, "");
    let mut c = Resp::connect(port);
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(Resp::encode(&["SET", &format!("p{i}"), &i.to_string()]));
        batch.extend(Resp::encode(&["GET", &format!("p{i}")]));
        if i % 100 == 0 {
            batch.extend(Resp::encode(&["PING"]));
        }
    }
    c.send_raw(&batch);
    for i in 0..2000 {
        assert_eq!(c.reply(), "+OK\r\n");
        let v = i.to_string();
        assert_eq!(c.reply(), format!("${}\r\n{v}\r\n", v.len()));
        if i % 100 == 0 {
            assert_eq!(c.reply(), "+PONG\r\n");
        }
    }
}

#[test]
fn downstream_and_upstream_auth() {
    let redis = RedisServer::start_with(&["--requirepass", "upw"]);
    let cluster_extra = "typed_extension_protocol_options:\n  envoy.filters.network.redis_proxy:\n    '@type': type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProtocolOptions\n    auth_password: {inline_string: upw}";
    let legate = Legate::start(&proxy_yaml(
        &[&redis],
        "downstream_auth_passwords:\n- inline_string: dpw\n- inline_string: dpw2",
        cluster_extra,
    ));
    let port = legate.listener_port("redis");
    let mut c = Resp::connect(port);
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "bad"]), "-ERR invalid password\r\n");
    assert_eq!(c.cmd(&["AUTH", "dpw2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["AUTH", "someone", "dpw"]), "-WRONGPASS invalid username-password pair\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "default", "dpw"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn op_timeout_fails_requests_on_a_sleeping_server_and_recovers() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let legate = Legate::start(&proxy_yaml(&[&redis], "", "").replace("op_timeout: 5s", "op_timeout: 0.3s"));
    let port = legate.listener_port("redis");
    let mut c = Resp::connect(port);
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    // DEBUG is not a proxied command: pause the server directly.
    let sleeper = std::thread::spawn({
        let port = redis.port;
        move || redis_cli(port, &["DEBUG", "SLEEP", "1.5"])
    });
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(c.cmd(&["GET", "k"]), "-upstream failure\r\n");
    assert!(t.elapsed() < Duration::from_millis(1400), "failed at op_timeout, not when redis woke");
    assert_eq!(sleeper.join().expect("sleeper"), "OK");
    // A new upstream connection serves the next request.
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    let s = legate.stats();
    assert_eq!(s.value("cluster.shards.upstream_rq_timeout"), 1);
    assert_eq!(s.value("redis.p.command.get.error"), 1);
    assert_eq!(s.value("redis.p.command.get.success"), 1);
    assert_eq!(s.value("cluster.shards.upstream_cx_total"), 2);
}

#[test]
fn a_server_killed_mid_pipeline_fails_only_its_requests() {
    let a = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let b = RedisServer::start();
    let (legate, port) = start(&[&a, &b], "");
    let mut c = Resp::connect(port);
    // Keys on each shard.
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, "v"]), "+OK\r\n");
    }
    let on_a: Vec<&String> = keys.iter().filter(|k| redis_cli(a.port, &["EXISTS", k]) == "1").collect();
    let on_b: Vec<&String> = keys.iter().filter(|k| redis_cli(b.port, &["EXISTS", k]) == "1").collect();
    assert!(!on_a.is_empty() && !on_b.is_empty());
    // Pause a, pipeline to both, then kill a while its requests are outstanding.
    let pause = std::thread::spawn({
        let port = a.port;
        move || {
            let _ = process::run_to_end(
                &require_binary("redis-cli"),
                &["-p", &port.to_string(), "DEBUG", "SLEEP", "3"],
                None,
            );
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut batch = Vec::new();
    for k in on_a.iter().take(3).chain(on_b.iter().take(3)) {
        batch.extend(Resp::encode(&["GET", k]));
    }
    c.send_raw(&batch);
    std::thread::sleep(Duration::from_millis(200));
    drop(a);
    for _ in 0..3 {
        assert_eq!(c.reply(), "-upstream failure\r\n");
    }
    for _ in 0..3 {
        assert_eq!(c.reply(), "$1\r\nv\r\n");
    }
    let _ = pause.join();
    // The other shard and this client keep working.
    assert_eq!(c.cmd(&["GET", on_b[0]]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", on_a[0]]), "-upstream failure\r\n");
    assert!(legate.stats().value("cluster.shards.upstream_cx_destroy_remote_with_active_rq") >= 1);
}

#[test]
fn bad_input_closes_only_that_client() {
    let redis = RedisServer::start();
    let (legate, port) = start(&[&redis], "");
    let mut good = Resp::connect(port);
    assert_eq!(good.cmd(&["SET", "k", "v"]), "+OK\r\n");
    let deep = b"*1\r\n".repeat(17);
    let cases: [&[u8]; 4] = [b"\x00\x01\x02\r\n", b"*1\r\n$1099511627776\r\n", &deep, b"*2\r\n$3\r\nGET\r\n$1\r\nkXY"];
    // Inline commands and nested arrays are framed: an answer, not a protocol error.
    let mut inline = Resp::connect(port);
    inline.send_raw(b"GET k\r\nGARBAGE IN\r\n*1\r\n*1\r\n$1\r\na\r\n");
    assert_eq!(inline.reply(), "$1\r\nv\r\n");
    assert_eq!(inline.reply(), "-ERR unknown command 'GARBAGE', with args beginning with: IN\r\n");
    assert_eq!(inline.reply(), "-invalid request\r\n");
    for (i, bytes) in cases.iter().enumerate() {
        let mut bad = Resp::connect(port);
        bad.send_raw(bytes);
        assert_eq!(bad.reply(), "-downstream protocol error\r\n", "case {i}");
        assert!(bad.is_closed(), "case {i}");
        assert_eq!(good.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    }
    // An unterminated frame just waits for more; its client can still close cleanly.
    let mut partial = Resp::connect(port);
    partial.send_raw(b"*2\r\n$3\r\nGET\r\n$100\r\nabc");
    drop(partial);
    assert_eq!(legate.stats().value("redis.p.downstream_cx_protocol_error"), 4);
    assert_eq!(good.cmd(&["GET", "k"]), "$1\r\nv\r\n");
}

#[test]
fn a_client_that_pipelines_100k_commands_and_never_reads_is_bounded() {
    let redis = RedisServer::start();
    let (legate, port) = start(&[&redis], "");
    let mut good = Resp::connect(port);
    // 64 KiB replies: the client's kernel buffers fill after a few dozen, then Legate's.
    let big = "x".repeat(64 * 1024);
    assert_eq!(good.cmd(&["SET", "big", &big]), "+OK\r\n");
    let mut hog = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    hog.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let one = Resp::encode(&["GET", "big"]);
    let all: Vec<u8> = one.iter().copied().cycle().take(one.len() * 100_000).collect();
    let _ = hog.write_all(&all);
    std::thread::sleep(Duration::from_millis(500));
    let s = legate.stats();
    let taken = s.value("redis.p.downstream_rq_total");
    let active = s.value("redis.p.downstream_rq_active");
    // Legate stopped reading: at most its in-flight bound of requests is held.
    assert!(taken < 10_000, "the proxy took {taken} of 100,000 commands from a client that never reads");
    assert!(active <= 1024, "in-flight requests bounded: {active}");
    // Others are unaffected, on the same shared upstream connection.
    let mut other = Resp::connect(port);
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(other.cmd(&["SET", "x", "1"]), "+OK\r\n");
    assert_eq!(good.cmd(&["GET", "x"]), "$1\r\n1\r\n");
    let _ = hog.shutdown(Shutdown::Both);
    drop(hog);
    legate.wait_stat_eq("redis.p.downstream_cx_active", 2);
    legate.wait_stat_eq("redis.p.downstream_rq_active", 0);
    assert_eq!(other.cmd(&["GET", "x"]), "$1\r\n1\r\n");
}

#[test]
fn redis_benchmark_runs_through_the_proxy() {
    let shards = [RedisServer::start(), RedisServer::start()];
    let refs: Vec<&RedisServer> = shards.iter().collect();
    let (legate, port) = start(&refs, "");
    let bench = require_binary("redis-benchmark");
    let out = process::run_to_end(
        &bench,
        &["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set,get", "-n", "20000", "-c", "20", "-P", "8", "-q"],
        None,
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("SET") && out.stdout.contains("GET"), "{}", out.stdout);
    let s = legate.stats();
    assert_eq!(s.value("redis.p.command.set.total"), 20000);
    assert_eq!(s.value("redis.p.command.get.total"), 20000);
    assert_eq!(s.value("redis.p.command.get.error"), 0);
    // 20 clients share at most the cap of connections per shard.
    assert!(s.value("cluster.shards.upstream_cx_total") <= 2 * 4);
}

#[test]
fn redis_py_client_library_works_through_the_proxy() {
    let python = std::env::var("LEGATE_REDIS_PY").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/legate-test/redis-py-venv/bin/python")
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "redis-py not found at {python}: run integration/run-tests.sh (integration/provision.d/redis.sh) or set LEGATE_REDIS_PY"
    );
    let shards = [RedisServer::start(), RedisServer::start()];
    let refs: Vec<&RedisServer> = shards.iter().collect();
    let (_legate, port) = start(&refs, "");
    let script = format!(
        r#"
import redis
r = redis.Redis(host="127.0.0.1", port={port})
assert r.ping()
r.set("a", "1"); r.set("b", "2")
assert r.mget(["a", "b", "zz"]) == [b"1", b"2", None], r.mget(["a", "b", "zz"])
p = r.pipeline(transaction=False)
for i in range(100):
    p.incr("ctr")
assert p.execute()[-1] == 100
assert r.delete("a", "b") == 2
try:
    r.blpop(["q"], 1)
    raise SystemExit("blpop should fail")
except redis.ResponseError as e:
    assert "unknown command 'BLPOP'" in str(e), e
print("ok")
"#
    );
    let mut child = std::process::Command::new(&python)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn prefix_routes_with_remove_prefix_and_error_faults() {
    let main = RedisServer::start();
    let other = RedisServer::start();
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "redis",
            "stat_prefix: p\nsettings:\n  op_timeout: 5s\nprefix_routes:\n  routes:\n  - prefix: 'other:'\n    remove_prefix: true\n    cluster: other\n  catch_all_route:\n    cluster: main\nfaults:\n- fault_type: ERROR\n  fault_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}\n  commands: [hget]",
        )],
        &[
            yaml::cluster("main", "STATIC", "RING_HASH", &[("127.0.0.1", main.port)], ""),
            yaml::cluster("other", "STATIC", "MAGLEV", &[("127.0.0.1", other.port)], ""),
        ],
    );
    let legate = Legate::start(&cfg);
    let mut c = Resp::connect(legate.listener_port("redis"));
    assert_eq!(c.cmd(&["SET", "other:k", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "k", "2"]), "+OK\r\n");
    // The prefix was removed on the way to the other cluster.
    assert_eq!(redis_cli(other.port, &["GET", "k"]), "1");
    assert_eq!(redis_cli(main.port, &["GET", "k"]), "2");
    assert_eq!(c.cmd(&["MGET", "other:k", "k"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(c.cmd(&["HGET", "h", "f"]), "-Fault Injected: Error\r\n");
    let s = legate.stats();
    assert_eq!(s.value("redis.p.command.hget.total"), 1);
    assert_eq!(s.value("redis.p.command.hget.error"), 1);
    assert_eq!(s.value("redis.p.command.hget.error_fault"), 1);
}

#[test]
fn upstream_writes_wait_for_the_flush_size_or_timeout() {
    let redis = RedisServer::start();
    let legate = Legate::start(&proxy_yaml(&[&redis], "", "").replace(
        "op_timeout: 5s",
        "op_timeout: 5s\n            max_buffer_size_before_flush: 1024\n            buffer_flush_timeout: 0.3s",
    ));
    let mut c = Resp::connect(legate.listener_port("redis"));
    // A small request sits in the buffer until buffer_flush_timeout...
    let t = Instant::now();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(t.elapsed() >= Duration::from_millis(250), "flushed after {:?}", t.elapsed());
    // ...a request over max_buffer_size_before_flush takes the immediate-flush path (not timed
    // here: a loaded CI machine makes upper bounds flaky).
    let big = "x".repeat(2048);
    let mut c2 = Resp::connect(legate.listener_port("redis"));
    assert_eq!(c2.cmd(&["SET", "big", &big]), "+OK\r\n");
    assert_eq!(c.cmd(&["STRLEN", "big"]), ":2048\r\n");
}
