//! Scenario: a user puts Legate's redis_proxy in front of a real Redis Cluster (cluster type
//! `envoy.clusters.redis`, `lb_policy: CLUSTER_PROVIDED`): the topology is discovered with
//! CLUSTER SLOTS, each key goes to the primary of its hash slot (checked on the nodes
//! directly), MGET spans slots in order, reads go to replicas with `read_policy: REPLICA`, and a
//! slot migration is followed through ASK and then MOVED — with the same replies and stats as
//! Envoy 1.40 on the same cluster. Keyless commands (KEYS, SCAN, INFO, FLUSHALL) reach every
//! primary and are mirrored to another cluster as Envoy mirrors them.
//!
//! The clusters are real `redis-server --cluster-enabled yes` processes on loopback ports,
//! joined with `redis-cli --cluster create`, killed by PID when the test ends.

use std::collections::BTreeMap;
use std::process::Command;

use legate_integration::admin::Stats;
use legate_integration::envoy::Envoy;
use legate_integration::peers::free_port;
use legate_integration::process::{self, require_binary, wait_until, Proc, TempDir, PATIENCE};
use legate_integration::redis::{redis_cli, Resp};
use legate_integration::{yaml, Legate};

/// One node of `CLUSTER NODES`.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    port: u16,
    primary: bool,
    /// The primary's id, for a replica.
    of: String,
    slots: Vec<(u16, u16)>,
}

/// A running Redis Cluster.
struct RedisCluster {
    ports: Vec<u16>,
    procs: Vec<Proc>,
    /// Nodes taken out of the cluster but still running.
    detached: Vec<Proc>,
    _dir: TempDir,
}

impl RedisCluster {
    /// `primaries` primaries with `replicas` replicas each, all slots assigned, every node
    /// agreeing on the topology.
    fn start(primaries: usize, replicas: usize) -> RedisCluster {
        let bin = require_binary("redis-server");
        let dir = TempDir::new("redis-cluster");
        let mut procs = Vec::new();
        let mut ports = Vec::new();
        // redis-server cannot bind port 0: free ports are picked, and a node whose port was
        // taken in the meantime (it exits) is started again on others.
        let ping = |p: u16| {
            let out = process::run_to_end(&require_binary("redis-cli"), &["-p", &p.to_string(), "PING"], None);
            out.stdout.trim() == "PONG"
        };
        for _ in 0..primaries * (1 + replicas) {
            let started = (0..5).find_map(|_| {
                let (port, bus) = (free_port(), free_port());
                if port == bus || ports.contains(&port) || ports.contains(&bus) {
                    return None;
                }
                let mut cmd = Command::new(&bin);
                cmd.args(["--port", &port.to_string(), "--cluster-port", &bus.to_string()])
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                    .arg("--cluster-config-file")
                    .arg(dir.path().join(format!("nodes-{port}.conf")))
                    .arg("--dir")
                    .arg(dir.path());
                let mut proc = Proc::spawn(&format!("redis-cluster-{port}"), cmd, &dir);
                let up = process::wait_until_or(PATIENCE, || proc.try_exit().is_some() || ping(port));
                (up && proc.try_exit().is_none()).then_some((port, proc))
            });
            let (port, proc) = started.expect("a redis cluster node started on free ports within 5 tries");
            procs.push(proc);
            ports.push(port);
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
        args.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
        let out = process::run_to_end(&require_binary("redis-cli"), &args, None);
        assert_eq!(out.code, Some(0), "redis-cli --cluster create: {}{}", out.stdout, out.stderr);
        let c = RedisCluster { ports, procs, detached: Vec::new(), _dir: dir };
        // Every node sees every primary with its slots and replicas, and replicas are in sync.
        wait_until("the cluster to agree on its topology", PATIENCE, || {
            let all_agree = c.ports.iter().all(|&p| {
                let nodes = nodes_of(p);
                redis_cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    // CLUSTER SLOTS lists every node (replicas show up there last).
                    && slots_nodes(p).len() == c.ports.len()
                    && nodes.iter().filter(|n| n.primary && !n.slots.is_empty()).count() == primaries
                    && nodes.iter().filter(|n| !n.primary).count() == primaries * replicas
            });
            let synced = c
                .nodes()
                .iter()
                .filter(|n| !n.primary)
                .all(|n| redis_cli(n.port, &["INFO", "replication"]).contains("master_link_status:up"));
            (all_agree && synced).then_some(())
        });
        c
    }

    fn nodes(&self) -> Vec<Node> {
        nodes_of(self.ports[0])
    }

    /// Kills the node on `port` (SIGKILL, by PID).
    fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        self.procs[i].signal("KILL");
        self.procs[i].wait_exit(PATIENCE);
        self.ports.remove(i);
        self.procs.remove(i);
    }

    /// Forgets the node on `port` as a member (it keeps running until the test ends).
    fn detach(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).expect("a node of this cluster");
        self.ports.remove(i);
        self.detached.push(self.procs.remove(i));
    }

    fn primaries(&self) -> Vec<Node> {
        // Running members only (a killed primary stays listed, flagged `fail`).
        self.nodes().into_iter().filter(|n| n.primary && self.ports.contains(&n.port)).collect()
    }

    /// The primary that serves `key`'s slot.
    fn owner(&self, key: &str) -> Node {
        let slot: u16 = redis_cli(self.ports[0], &["CLUSTER", "KEYSLOT", key]).parse().expect("slot");
        self.primaries()
            .into_iter()
            .find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// Every node agrees that `slot` is served by the node with `id`.
    fn wait_slot_owner(&self, slot: u16, port: u16) {
        wait_until(&format!("slot {slot} to move to {port} everywhere"), PATIENCE, || {
            self.ports
                .iter()
                .all(|&p| {
                    nodes_of(p).iter().any(|n| n.port == port && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
                })
                .then_some(())
        });
    }
}

/// The distinct nodes (ports) `CLUSTER SLOTS` on `port` names.
fn slots_nodes(port: u16) -> std::collections::BTreeSet<u16> {
    let out = redis_cli(port, &["CLUSTER", "SLOTS"]);
    let lines: Vec<&str> = out.lines().collect();
    lines.windows(2).filter(|w| w[0] == "127.0.0.1").filter_map(|w| w[1].parse().ok()).collect()
}

fn nodes_of(port: u16) -> Vec<Node> {
    redis_cli(port, &["CLUSTER", "NODES"])
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let primary = f.get(2)?.contains("master");
            let slots = f
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|v| (v, v)),
                })
                .collect();
            Some(Node { id: f[0].to_string(), port, primary, of: f.get(3)?.to_string(), slots })
        })
        .collect()
}

/// A redis_proxy listener over cluster `rc`.
fn listener(name: &str, settings: &str) -> String {
    yaml::redis_proxy_listener(
        name,
        &format!("stat_prefix: {name}\nsettings: {{op_timeout: 5s, {settings}}}\nprefix_routes:\n  catch_all_route:\n    cluster: rc"),
    )
}

/// The Redis Cluster `rc` seeded with `seed`.
fn cluster(seed: u16, cluster_config: &str) -> String {
    let extra = format!(
        "cluster_type:\n  name: envoy.clusters.redis\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.clusters.redis.v3.RedisClusterConfig\n{}",
        cluster_config.lines().map(|l| format!("    {l}\n")).collect::<String>()
    );
    // `type` and `cluster_type` are exclusive: drop the helper's `type:` line.
    yaml::cluster("rc", "STATIC", "CLUSTER_PROVIDED", &[("127.0.0.1", seed)], &extra).replace("    type: STATIC\n", "")
}

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

/// The integer after `<name>:calls=` in `INFO commandstats` (0 when absent).
fn calls(port: u16, cmd: &str) -> u64 {
    let info = redis_cli(port, &["INFO", "commandstats"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn keys_go_to_their_slot_primary_reads_to_replicas_and_moved_refreshes_the_slot_map() {
    let mut rc = RedisCluster::start(3, 1);
    let cfg = yaml::bootstrap(
        &[
            listener("primary", "enable_redirection: true"),
            listener("replica", "enable_redirection: true, read_policy: REPLICA"),
            listener("noredirect", "read_policy: MASTER"),
        ],
        &[cluster(
            rc.ports[0],
            "cluster_refresh_rate: 1s\nredirect_refresh_threshold: 1\nfailure_refresh_threshold: 1\nredirect_refresh_interval: 0.5s",
        )],
    );
    let legate = Legate::start(&cfg);
    let stats = legate.stats();
    // The hosts are the discovered primaries and replicas, not the one seed.
    assert_eq!(stats.value("cluster.rc.membership_total"), 6);
    assert!(stats.value("cluster.rc.update_attempt") >= 1);
    let clusters = legate.get("/clusters").body;
    for p in &rc.ports {
        assert!(clusters.contains(&format!("rc::127.0.0.1:{p}::cx_total::")), "{p} missing:\n{clusters}");
    }

    // Every key lands on the primary of its slot; the other primaries answer MOVED.
    let mut c = Resp::connect(legate.listener_port("primary"));
    let keys: Vec<String> = (0..24).map(|i| format!("key:{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.cmd(&["SET", k, &i.to_string()]), "+OK\r\n");
    }
    let primaries = rc.primaries();
    let mut used = std::collections::BTreeSet::new();
    for (i, k) in keys.iter().enumerate() {
        let owner = rc.owner(k);
        used.insert(owner.port);
        for n in &primaries {
            let mut direct = Resp::connect(n.port);
            let r = direct.cmd(&["GET", k]);
            if n.port == owner.port {
                assert_eq!(r, bulk(&i.to_string()), "{k} on its owner {}", n.port);
            } else {
                assert!(r.starts_with("-MOVED "), "{k} on {}: {r}", n.port);
            }
        }
    }
    assert_eq!(used.len(), 3, "keys spread over all primaries");
    // Hash tags keep keys on one slot.
    assert_eq!(c.cmd(&["SET", "{user}.a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "{user}.b", "2"]), "+OK\r\n");
    assert_eq!(rc.owner("{user}.a").port, rc.owner("user").port);

    // MGET across slots comes back in key order; DEL across slots sums.
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    args.push("missing");
    let mut want = format!("*{}\r\n", keys.len() + 1);
    for i in 0..keys.len() {
        want.push_str(&bulk(&i.to_string()));
    }
    want.push_str("$-1\r\n");
    assert_eq!(c.cmd(&args), want);
    assert_eq!(c.cmd(&["DEL", "key:0", "key:1", "key:2", "missing"]), ":3\r\n");

    // read_policy REPLICA: GETs go to the key's replica (after READONLY), SETs to its primary.
    let mut r = Resp::connect(legate.listener_port("replica"));
    assert_eq!(r.cmd(&["SET", "key:5", "five"]), "+OK\r\n");
    let owner = rc.owner("key:5");
    let replica = rc.nodes().into_iter().find(|n| n.of == owner.id).expect("the owner has a replica");
    redis_cli(owner.port, &["WAIT", "1", "5000"]);
    let before = (calls(replica.port, "get"), calls(owner.port, "get"));
    assert_eq!(r.cmd(&["GET", "key:5"]), bulk("five"));
    assert_eq!(calls(replica.port, "get"), before.0 + 1, "the GET went to the replica");
    assert_eq!(calls(owner.port, "get"), before.1, "not to the primary");
    assert!(calls(replica.port, "readonly") >= 1, "READONLY was sent to the replica");

    // Move the slot of `key:7` to another primary.
    let key = "key:7";
    let src = rc.owner(key);
    let dst = primaries.iter().find(|n| n.port != src.port).expect("another primary").clone();
    let slot = redis_cli(src.port, &["CLUSTER", "KEYSLOT", key]);
    assert_eq!(redis_cli(dst.port, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src.id]), "OK");
    assert_eq!(redis_cli(src.port, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst.id]), "OK");
    assert_eq!(redis_cli(src.port, &["MIGRATE", "127.0.0.1", &dst.port.to_string(), key, "0", "5000"]), "OK");
    // While migrating: ASK, followed without a refresh.
    assert_eq!(c.cmd(&["GET", key]), bulk("7"));
    let s = legate.stats();
    assert_eq!(s.value("cluster.rc.upstream_internal_redirect_succeeded_total"), 1);
    for n in rc.nodes().iter().filter(|n| n.primary) {
        assert_eq!(redis_cli(n.port, &["CLUSTER", "SETSLOT", &slot, "NODE", &dst.id]), "OK");
    }
    rc.wait_slot_owner(slot.parse().expect("slot"), dst.port);
    // Without enable_redirection, MOVED reaches the client unchanged (as in Envoy).
    let mut n = Resp::connect(legate.listener_port("noredirect"));
    assert_eq!(n.cmd(&["GET", key]), format!("-MOVED {slot} 127.0.0.1:{}\r\n", dst.port));
    // Assigned: MOVED is followed, and (threshold 1) triggers a refresh, after which the key
    // goes straight to its new primary.
    assert_eq!(c.cmd(&["GET", key]), bulk("7"));
    let s = legate.stats();
    assert_eq!(s.value("cluster.rc.upstream_internal_redirect_succeeded_total"), 2);
    assert_eq!(s.value("cluster.rc.upstream_internal_redirect_failed_total"), 0);
    legate.wait_stat("cluster.rc.update_attempt", 2);
    wait_until("GET to reach the new owner without a redirection", PATIENCE, || {
        let before = legate.stats().value("cluster.rc.upstream_internal_redirect_succeeded_total");
        assert_eq!(c.cmd(&["GET", key]), bulk("7"));
        (legate.stats().value("cluster.rc.upstream_internal_redirect_succeeded_total") == before).then_some(())
    });
    assert_eq!(n.cmd(&["GET", key]), bulk("7"), "the refreshed slot map serves every listener");

    // A primary dies: its replica takes over, and a refresh (the upstream failures trigger one,
    // threshold 1) finds the new primary.
    // (Not the primary of `key:5`, whose replica leaves the cluster below.)
    let key = keys.iter().find(|k| rc.owner(k).port != owner.port && rc.owner(k).port != dst.port).expect("a key");
    let key = key.as_str();
    let dead = rc.owner(key);
    let value = c.cmd(&["GET", key]);
    redis_cli(dead.port, &["WAIT", "1", "5000"]);
    let heir = rc.nodes().into_iter().find(|n| n.of == dead.id).expect("a replica");
    rc.kill(dead.port);
    wait_until("the replica to be promoted", std::time::Duration::from_secs(30), || {
        nodes_of(heir.port).iter().any(|n| n.port == heir.port && n.primary && !n.slots.is_empty()).then_some(())
    });
    wait_until("the key to be served by the new primary", std::time::Duration::from_secs(30), || {
        let r = c.cmd(&["GET", key]);
        assert!(r == value || r == "-upstream failure\r\n", "{r}");
        (r == value).then_some(())
    });
    assert!(legate.stats().value("cluster.rc.update_attempt") >= 3);

    // The replica that served reads leaves the cluster: once a refresh no longer lists it,
    // Legate closes its idle connections to it (proxy and discovery alike).
    let clients = |port: u16| -> u64 {
        let info = redis_cli(port, &["INFO", "clients"]);
        info.lines().find_map(|l| l.strip_prefix("connected_clients:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    assert!(clients(replica.port) >= 2, "Legate is connected to the replica");
    assert_eq!(redis_cli(replica.port, &["CLUSTER", "RESET", "HARD"]), "OK");
    rc.detach(replica.port);
    for p in &rc.ports {
        assert_eq!(redis_cli(*p, &["CLUSTER", "FORGET", &replica.id]), "OK");
    }
    let serving = rc.ports.len();
    wait_until("every node to drop the replica from CLUSTER SLOTS", PATIENCE, || {
        rc.ports.iter().all(|p| slots_nodes(*p).len() == serving).then_some(())
    });
    wait_until("Legate to close its connections to the removed replica", PATIENCE, || {
        (clients(replica.port) == 1).then_some(())
    });
    assert_eq!(legate.stats().value("cluster.rc.membership_total") as usize, serving);
}

/// The cluster-side stats both proxies have, compared by value.
const SAME_VALUE: &[&str] = &[
    "cluster.rc.membership_total",
    "cluster.rc.membership_healthy",
    "cluster.rc.membership_change",
    "cluster.rc.max_host_weight",
    "cluster.rc.update_attempt",
    "cluster.rc.update_failure",
    "cluster.rc.update_no_rebuild",
    "cluster.rc.update_success",
    "cluster.rc.upstream_commands.cluster.total",
    "cluster.rc.upstream_commands.cluster.success",
    "cluster.rc.upstream_internal_redirect_succeeded_total",
    "cluster.rc.upstream_internal_redirect_failed_total",
    "cluster.rc.redis_cluster.max_upstream_unknown_connections_reached",
    "cluster.rc.upstream_rq_total",
    "cluster.rc.upstream_rq_active",
    "cluster.rc.upstream_rq_timeout",
];

/// The per-command counters under `prefix` (not the latency histograms) whose values differ
/// between Envoy and Legate, names on either side included.
fn command_stat_diffs(e: &Stats, l: &Stats, prefix: &str) -> Vec<String> {
    let counters = |s: &Stats| -> BTreeMap<String, String> {
        s.0.iter()
            .filter(|(k, _)| k.starts_with(prefix) && !k.ends_with("latency") && !k.ends_with("upstream_rq_time"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    legate_integration::admin::differing(&counters(l), &counters(e))
}

fn redis_stats(s: &Stats) -> BTreeMap<String, String> {
    redis_stats_of(s, "redis.rc_diff.")
}

/// The `redis.<prefix>.*` stats both proxies must agree on (not latencies or byte counts).
fn redis_stats_of(s: &Stats, prefix: &str) -> BTreeMap<String, String> {
    s.0.iter()
        .filter(|(k, _)| k.starts_with(prefix) && !k.ends_with(".latency") && !k.contains("bytes"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn migration_through_ask_and_moved_matches_envoy() {
    let rc = RedisCluster::start(3, 0);
    // No periodic or triggered refresh during the test: every redirection is counted.
    let cfg = yaml::bootstrap(
        &[listener("rc_diff", "enable_redirection: true, enable_command_stats: true")],
        &[cluster(rc.ports[0], "cluster_refresh_rate: 300s\nredirect_refresh_threshold: 100000")],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let (ep, lp) = (envoy.listener_port("rc_diff"), legate.listener_port("rc_diff"));

    let key = "{mig}k";
    let src = rc.owner(key);
    let dst = rc.primaries().into_iter().find(|n| n.port != src.port).expect("another primary");
    let slot = redis_cli(src.port, &["CLUSTER", "KEYSLOT", key]);
    let setup = |port: u16| {
        let mut c = Resp::connect(port);
        let mut out = Vec::new();
        for cmd in [
            vec!["SET", key, "v"],
            vec!["SET", "{mig}other", "o"],
            vec!["MSET", "a", "1", "b", "2", "c", "3", "d", "4"],
            vec!["MGET", "a", "b", "c", "d", "nope"],
            vec!["INCR", "a"],
            vec!["EXISTS", "a", "b", "c", "nope"],
            // A transaction stays on its first key's node: a key of another node gets MOVED
            // inside MULTI (not followed, so it cannot run outside the transaction).
            vec!["MULTI"],
            vec!["SET", "{t}a", "1"],
            vec!["SET", "k2", "2"],
            vec!["EXEC"],
            vec!["GET", "k2"],
        ] {
            out.push(c.cmd(&cmd));
        }
        out
    };
    let during = |port: u16| {
        let mut c = Resp::connect(port);
        let mut out = Vec::new();
        for cmd in [
            vec!["GET", key],
            vec!["GET", "{mig}other"],
            vec!["MGET", key, "a", "{mig}missing"],
            vec!["SET", "{mig}new", "n"],
            vec!["GET", "{mig}new"],
            vec!["DEL", "{mig}new"],
        ] {
            out.push(c.cmd(&cmd));
        }
        out
    };
    let (es, ls) = (setup(ep), setup(lp));
    assert_eq!(ls, es);
    assert_eq!(es[3], format!("*5\r\n{}{}{}{}$-1\r\n", bulk("1"), bulk("2"), bulk("3"), bulk("4")));
    assert!(es[8].starts_with("-MOVED "), "{es:?}");
    assert_eq!(es[10], "$-1\r\n", "{es:?}");

    // Migrating: the moved keys are answered with ASK by the source and followed.
    assert_eq!(redis_cli(dst.port, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src.id]), "OK");
    assert_eq!(redis_cli(src.port, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst.id]), "OK");
    let moved = redis_cli(
        src.port,
        &["MIGRATE", "127.0.0.1", &dst.port.to_string(), "", "0", "5000", "KEYS", key, "{mig}other"],
    );
    assert_eq!(moved, "OK");
    let (ea, la) = (during(ep), during(lp));
    assert_eq!(la, ea, "replies while the slot migrates");
    assert_eq!(ea[0], bulk("v"));
    assert_eq!(ea[2], format!("*3\r\n{}{}$-1\r\n", bulk("v"), bulk("2")));

    // Assigned to the destination: MOVED, followed.
    for n in rc.primaries() {
        assert_eq!(redis_cli(n.port, &["CLUSTER", "SETSLOT", &slot, "NODE", &dst.id]), "OK");
    }
    rc.wait_slot_owner(slot.parse().expect("slot"), dst.port);
    let (em, lm) = (during(ep), during(lp));
    assert_eq!(lm, em, "replies after the slot moved");
    assert_eq!(em[0], bulk("v"));

    legate.wait_stat_eq("redis.rc_diff.downstream_cx_active", 0);
    wait_until("envoy downstream_cx_active == 0", PATIENCE, || {
        (envoy.stats().value("redis.rc_diff.downstream_cx_active") == 0).then_some(())
    });
    let (e, l) = (envoy.stats(), legate.stats());
    let (er, lr) = (redis_stats(&e), redis_stats(&l));
    let missing: Vec<&String> = er.keys().filter(|k| !lr.contains_key(*k)).collect();
    assert!(missing.is_empty(), "Legate lacks Envoy's stats: {missing:#?}");
    let extra: Vec<&String> = lr.keys().filter(|k| !er.contains_key(*k)).collect();
    assert!(extra.is_empty(), "Legate has stats Envoy lacks: {extra:#?}");
    let diffs: Vec<String> = er
        .iter()
        .filter(|(k, v)| lr.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: envoy {v} legate {:?}", lr.get(k)))
        .collect();
    assert!(diffs.is_empty(), "redis stat values differ:\n{}", diffs.join("\n"));
    assert_eq!(
        l.names_with_prefix("cluster.rc.redis_cluster."),
        e.names_with_prefix("cluster.rc.redis_cluster."),
        "redis_cluster stat names"
    );
    assert_eq!(
        l.names_with_prefix("cluster.rc.upstream_commands."),
        e.names_with_prefix("cluster.rc.upstream_commands.")
    );
    for n in SAME_VALUE {
        assert!(e.get(n).is_some(), "envoy has {n}");
    }
    let diffs: Vec<String> = SAME_VALUE
        .iter()
        .filter(|n| l.get(n) != e.get(n))
        .map(|n| format!("{n}: envoy {:?} legate {:?}", e.get(n), l.get(n)))
        .collect();
    assert!(diffs.is_empty(), "cluster stat values differ:\n{}", diffs.join("\n"));
    // Per-command upstream stats through redirections: a MOVED/ASK reply is a failure of the
    // command, the redirected copy another total (and ASKING a command of its own).
    let diffs = command_stat_diffs(&e, &l, "cluster.rc.redis_cluster.upstream_commands.");
    assert!(diffs.is_empty(), "per-command upstream stats differ:\n{}", diffs.join("\n"));
    assert!(l.value("cluster.rc.redis_cluster.upstream_commands.get.failure") >= 2, "MOVED/ASK counted as failures");
    assert!(e.value("cluster.rc.redis_cluster.upstream_commands.unknown.total") >= 1, "ASKING, as Envoy names it");
    // Every command on the slot was redirected once per phase (ASK, then MOVED).
    assert!(l.value("cluster.rc.upstream_internal_redirect_succeeded_total") >= 12, "{:?}", (la, lm));
}

#[test]
fn a_seed_that_is_not_a_cluster_leaves_the_cluster_empty_and_keeps_trying() {
    // A plain redis-server answers CLUSTER SLOTS with an error: Envoy's "unexpected response".
    let plain = legate_integration::redis::RedisServer::start();
    let cfg = yaml::bootstrap(
        &[listener("empty", "enable_redirection: true")],
        &[cluster(plain.port, "cluster_refresh_rate: 0.2s\ncluster_refresh_timeout: 1s")],
    );
    // Legate serves anyway (Envoy would hold its listeners until the cluster warms).
    let legate = Legate::start(&cfg);
    let mut c = Resp::connect(legate.listener_port("empty"));
    assert_eq!(c.cmd(&["SET", "a", "1"]), "-no upstream host\r\n");
    assert_eq!(c.cmd(&["MGET", "a", "b"]), "*2\r\n-no upstream host\r\n-no upstream host\r\n");
    legate.wait_stat("cluster.rc.update_attempt", 3);
    let s = legate.stats();
    assert_eq!(s.value("cluster.rc.membership_total"), 0);
    assert!(s.value("cluster.rc.update_failure") >= 2);
    assert!(s.value("cluster.rc.upstream_commands.cluster.failure") >= 2);
    assert_eq!(s.get("cluster.rc.upstream_commands.cluster.success"), None, "created on first success only");
    assert_eq!(s.value("cluster.rc.upstream_cx_total"), 1, "the discovery connection is kept");
    assert_eq!(redis_cli(plain.port, &["DBSIZE"]), "0");
}

/// `cmdstat_<name>` -> calls from `INFO commandstats` (without the test's own INFO).
fn command_calls(port: u16) -> BTreeMap<String, u64> {
    redis_cli(port, &["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            (name != "info").then(|| (name.to_string(), calls))
        })
        .collect()
}

/// A listener whose route goes to the Redis Cluster and mirrors every command to `mirror`.
fn mirrored_config(rc: &RedisCluster, mirror: u16) -> String {
    yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "fan",
            "stat_prefix: fan
settings: {op_timeout: 5s, enable_redirection: true, enable_command_stats: true}
prefix_routes:
  catch_all_route:
    cluster: rc
    request_mirror_policy:
    - cluster: mirror",
        )],
        &[
            cluster(rc.ports[0], "cluster_refresh_rate: 300s"),
            yaml::cluster("mirror", "STATIC", "RING_HASH", &[("127.0.0.1", mirror)], ""),
        ],
    )
}

/// Keyed writes, then the keyless commands Envoy sends to every shard, each also mirrored.
fn fan_out_sequence() -> Vec<Vec<&'static str>> {
    vec![
        vec!["SET", "k:1", "1"],
        vec!["SET", "k:2", "2"],
        vec!["SET", "k:3", "3"],
        vec!["MSET", "k:4", "4", "k:5", "5", "k:6", "6"],
        vec!["KEYS", "k:*"],
        vec!["SCAN", "0", "COUNT", "1000"],
        vec!["INFO", "keyspace"],
        vec!["INFO.SHARD", "0", "keyspace"],
        vec!["INFO.SHARD", "3"],
        vec!["FLUSHALL"],
        vec!["KEYS", "*"],
        // The last mirrored command: once the mirror has seen it, the run is complete.
        vec!["APPEND", "zz:end", "x"],
    ]
}

/// A reply with the elements of every array sorted (shards answer KEYS and SCAN in their own
/// order), for comparing key sets.
fn sorted_lines(reply: &str) -> Vec<String> {
    let mut v: Vec<String> = reply.split("\r\n").map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn fan_out_commands_reach_every_primary_and_are_mirrored_like_envoy() {
    let rc = RedisCluster::start(3, 0);
    let (em, lm) = (legate_integration::redis::RedisServer::start(), legate_integration::redis::RedisServer::start());
    let envoy = Envoy::start(&mirrored_config(&rc, em.port));
    let legate = Legate::start(&mirrored_config(&rc, lm.port));
    let run = |port: u16, mirror: u16| {
        // Each run starts from empty primaries (the previous run's last key is still there).
        for n in rc.primaries() {
            assert_eq!(redis_cli(n.port, &["FLUSHALL"]), "OK");
        }
        assert_eq!(redis_cli(mirror, &["CONFIG", "RESETSTAT"]), "OK");
        let mut c = Resp::connect(port);
        let replies: Vec<String> = fan_out_sequence().iter().map(|cmd| c.cmd(cmd)).collect();
        let calls = wait_until("the mirror to receive the last command", PATIENCE, || {
            let s = command_calls(mirror);
            s.contains_key("append").then_some(s)
        });
        (replies, calls)
    };
    let (er, ecalls) = run(envoy.listener_port("fan"), em.port);
    let (lr, lcalls) = run(legate.listener_port("fan"), lm.port);

    // KEYS and SCAN reach the three primaries (each holds some of the six keys).
    let keys: Vec<&str> = lr[4].split("\r\n").filter(|l| l.starts_with("k:")).collect();
    assert_eq!(keys.len(), 6, "KEYS over every primary: {}", lr[4]);
    assert!(lr[5].starts_with("*6\r\n"), "SCAN: a [cursor, keys] pair per primary: {}", lr[5]);
    assert!(lr[6].contains("db0:keys=6,"), "INFO keyspace sums the primaries: {}", lr[6]);
    assert_eq!(lr[8], "-ERR shard_id 3 out of range (0-2)\r\n");
    assert_eq!(lr[9], "+OK\r\n");
    assert_eq!(lr[10], "*0\r\n", "FLUSHALL emptied every primary");
    let left: u64 = rc.primaries().iter().map(|n| redis_cli(n.port, &["DBSIZE"]).parse::<u64>().expect("DBSIZE")).sum();
    assert_eq!(left, 1, "every primary flushed; only the key written after FLUSHALL is left");
    for (i, (e, l)) in er.iter().zip(&lr).enumerate() {
        if i == 4 || i == 5 {
            assert_eq!(sorted_lines(l), sorted_lines(e), "reply {i} (as sets)");
        } else {
            assert_eq!(l, e, "reply {i}");
        }
    }
    // The mirror (one server) got a copy per key and one per shard of each keyless command.
    assert_eq!(lcalls, ecalls, "what the mirror received");
    assert_eq!(lcalls.get("keys"), Some(&6), "{lcalls:?}");
    assert_eq!(lcalls.get("flushall"), Some(&3), "{lcalls:?}");
    assert_eq!(redis_cli(lm.port, &["GET", "zz:end"]), "x");

    legate.wait_stat_eq("redis.fan.downstream_cx_active", 0);
    wait_until("envoy downstream_cx_active == 0", PATIENCE, || {
        (envoy.stats().value("redis.fan.downstream_cx_active") == 0).then_some(())
    });
    let (e, l) = (envoy.stats(), legate.stats());
    let (erd, lrd) = (redis_stats_of(&e, "redis.fan."), redis_stats_of(&l, "redis.fan."));
    assert_eq!(lrd, erd, "redis.fan.* stats");
    for prefix in ["cluster.rc.redis_cluster.upstream_commands.", "cluster.mirror.redis_cluster.upstream_commands."] {
        let diffs = command_stat_diffs(&e, &l, prefix);
        assert!(diffs.is_empty(), "per-command upstream stats differ:\n{}", diffs.join("\n"));
    }
    assert_eq!(l.value("cluster.rc.redis_cluster.upstream_commands.keys.total"), 6, "KEYS twice, to 3 primaries");
}

/// Calls of `cmd` on every node, by port, counting those the node refused (`rejected_calls`:
/// a write on a replica).
fn calls_by_node(rc: &RedisCluster, cmd: &str) -> BTreeMap<u16, u64> {
    let attempts = |port: u16| -> u64 {
        let info = redis_cli(port, &["INFO", "commandstats"]);
        let Some(line) = info.lines().find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:"))) else { return 0 };
        let field = |k: &str| line.split(',').find_map(|kv| kv.strip_prefix(k)).and_then(|n| n.parse::<u64>().ok());
        field("calls=").unwrap_or(0) + field("rejected_calls=").unwrap_or(0)
    };
    rc.ports.iter().map(|&p| (p, attempts(p))).collect()
}

#[test]
fn fan_out_with_read_policy_replica_picks_hosts_like_envoy() {
    let rc = RedisCluster::start(3, 1);
    let cfg = yaml::bootstrap(
        &[listener("rep", "enable_redirection: true, read_policy: REPLICA")],
        &[cluster(rc.ports[0], "cluster_refresh_rate: 300s")],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let nodes = rc.nodes();
    let mut replicas: Vec<u16> = nodes.iter().filter(|n| !n.primary).map(|n| n.port).collect();
    replicas.sort();
    let run = |port: u16| {
        let mut c = Resp::connect(port);
        for i in 0..6 {
            assert_eq!(c.cmd(&["SET", &format!("k:{i}"), "v"]), "+OK\r\n");
        }
        wait_until("the replicas to hold every key", PATIENCE, || {
            let n: u64 = replicas.iter().map(|&p| redis_cli(p, &["DBSIZE"]).parse::<u64>().expect("DBSIZE")).sum();
            (n == 6).then_some(())
        });
        let before = (calls_by_node(&rc, "keys"), calls_by_node(&rc, "flushall"));
        let replies: Vec<String> =
            [vec!["KEYS", "k:*"], vec!["FLUSHALL"]].iter().map(|cmd| sorted_lines(&c.cmd(cmd)).join("|")).collect();
        let after = (calls_by_node(&rc, "keys"), calls_by_node(&rc, "flushall"));
        let delta = |a: &BTreeMap<u16, u64>, b: &BTreeMap<u16, u64>| -> Vec<u16> {
            a.iter().filter(|(p, n)| b.get(*p) != Some(*n)).map(|(p, _)| *p).collect()
        };
        // Clean up for the next run whatever the proxy did.
        for n in rc.primaries() {
            redis_cli(n.port, &["FLUSHALL"]);
        }
        (replies, delta(&after.0, &before.0), delta(&after.1, &before.1))
    };
    let (er, ekeys, eflush) = run(envoy.listener_port("rep"));
    let (lr, lkeys, lflush) = run(legate.listener_port("rep"));
    assert_eq!(lr, er, "replies");
    // KEYS is a read: one copy per shard, to its replica.
    assert_eq!(lkeys, replicas, "KEYS went to the replicas");
    assert_eq!(ekeys, lkeys, "KEYS reached the same nodes as Envoy's");
    assert_eq!(lflush, eflush, "FLUSHALL reached the same nodes as Envoy's");
    // Envoy's write list does not name FLUSHALL: it goes to the replicas too, which refuse it.
    assert_eq!(lflush, replicas, "FLUSHALL went to the replicas");
    assert!(lr[1].contains("READONLY"), "replicas refuse FLUSHALL: {lr:?}");
}

#[test]
fn a_redis_cluster_mirror_gets_keys_on_their_slot_primary_and_follows_moved_like_envoy() {
    let rc = RedisCluster::start(3, 0);
    let primary = legate_integration::redis::RedisServer::start();
    let cfg = yaml::bootstrap(
        &[yaml::redis_proxy_listener(
            "tocluster",
            "stat_prefix: tocluster
settings: {op_timeout: 5s, enable_redirection: true, enable_command_stats: true}
prefix_routes:
  catch_all_route:
    cluster: plain
    request_mirror_policy:
    - cluster: rc",
        )],
        &[
            yaml::cluster("plain", "STATIC", "RING_HASH", &[("127.0.0.1", primary.port)], ""),
            cluster(rc.ports[0], "cluster_refresh_rate: 300s"),
        ],
    );
    let envoy = Envoy::start(&cfg);
    let legate = Legate::start(&cfg);
    let keys: Vec<String> = (0..9).map(|i| format!("m:{i}")).collect();
    let run = |port: u16| {
        for p in std::iter::once(primary.port).chain(rc.primaries().iter().map(|n| n.port)) {
            assert_eq!(redis_cli(p, &["FLUSHALL"]), "OK");
            assert_eq!(redis_cli(p, &["CONFIG", "RESETSTAT"]), "OK");
        }
        let mut c = Resp::connect(port);
        let mut replies: Vec<String> = keys.iter().map(|k| c.cmd(&["SET", k, k])).collect();
        replies.push(c.cmd(&["KEYS", "*"]));
        replies.push(c.cmd(&["APPEND", "zz:end", "x"]));
        let owner_of_end = rc.owner("zz:end").port;
        wait_until("the mirror to receive the last command", PATIENCE, || {
            (redis_cli(owner_of_end, &["GET", "zz:end"]) == "x").then_some(())
        });
        // Every mirrored key on the primary of its slot; KEYS once per primary.
        for k in &keys {
            assert_eq!(redis_cli(rc.owner(k).port, &["GET", k]), *k, "{k} mirrored to its slot's primary");
        }
        let per_node: BTreeMap<u16, (u64, u64)> =
            rc.primaries().iter().map(|n| (n.port, (calls(n.port, "set"), calls(n.port, "keys")))).collect();
        (replies, per_node)
    };
    let (er, enodes) = run(envoy.listener_port("tocluster"));
    let (lr, lnodes) = run(legate.listener_port("tocluster"));
    assert_eq!(lr, er, "replies come from the plain primary");
    assert_eq!(lnodes, enodes, "what each cluster node received, as through Envoy");
    // The route's cluster has one shard, so KEYS is mirrored once: to the mirror's shard 0,
    // the primary of slot 0 (Envoy mirrors shard i to the mirror's shard i).
    let shard0 = rc.primaries().into_iter().find(|n| n.slots.iter().any(|(a, _)| *a == 0)).expect("slot 0").port;
    let keys_to: Vec<u16> = lnodes.iter().filter(|(_, (_, k))| *k > 0).map(|(p, _)| *p).collect();
    assert_eq!(keys_to, vec![shard0], "KEYS mirrored to shard 0 only: {lnodes:?}");
    assert_eq!(lnodes.values().map(|(set, _)| set).sum::<u64>(), keys.len() as u64);
    let (e, l) = (envoy.stats(), legate.stats());
    let diffs = command_stat_diffs(&e, &l, "cluster.rc.redis_cluster.upstream_commands.");
    assert!(diffs.is_empty(), "per-command upstream stats on the mirror differ:\n{}", diffs.join("\n"));

    // The slot of `m:0` moves behind both proxies' backs: the mirrored copy gets MOVED and
    // follows it to the new primary (Envoy redirects at the pool, for mirrored requests too).
    let src = rc.owner("m:0");
    let dst = rc.primaries().into_iter().find(|n| n.port != src.port).expect("another primary");
    let slot = redis_cli(src.port, &["CLUSTER", "KEYSLOT", "m:0"]);
    for n in rc.primaries() {
        assert_eq!(redis_cli(n.port, &["FLUSHALL"]), "OK");
    }
    for n in rc.primaries() {
        assert_eq!(redis_cli(n.port, &["CLUSTER", "SETSLOT", &slot, "NODE", &dst.id]), "OK");
    }
    rc.wait_slot_owner(slot.parse().expect("slot"), dst.port);
    let stats = |name: &str| if name == "envoy" { envoy.stats() } else { legate.stats() };
    for (name, port) in [("envoy", envoy.listener_port("tocluster")), ("legate", legate.listener_port("tocluster"))] {
        let before = stats(name).value("cluster.rc.upstream_internal_redirect_succeeded_total");
        let mut c = Resp::connect(port);
        assert_eq!(c.cmd(&["SET", "m:0", name]), "+OK\r\n");
        wait_until(&format!("{name}'s mirrored SET to reach the slot's new primary"), PATIENCE, || {
            (redis_cli(dst.port, &["GET", "m:0"]) == name).then_some(())
        });
        assert_eq!(stats(name).value("cluster.rc.upstream_internal_redirect_succeeded_total"), before + 1, "{name}");
    }
}
