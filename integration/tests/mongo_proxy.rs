//! mongo_proxy end to end: pymongo drives nx-27017 (a MongoDB wire-protocol server) through
//! Legate's mongo_proxy + tcp_proxy, and every stat the workload moves is checked exactly; bad
//! input is counted and forwarded untouched; and Envoy 1.40 on the same traffic counts
//! `decoding_error` and nothing else (it cannot decode OP_MSG).

use std::io::{Read, Write};
use std::net::TcpStream;

use legate_integration::envoy::Envoy;
use legate_integration::mongo::{mongo_listener, run_script, script, spawn_script, NxServer};
use legate_integration::peers::{TcpEcho, IO_TIMEOUT};
use legate_integration::process::TempDir;
use legate_integration::yaml::{bootstrap, static_cluster};
use legate_integration::{Legate, Stats};

fn crud_through(port: u16) -> serde_json::Value {
    let out = run_script(&script("workload.py"), &[&port.to_string(), "crud"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("workload output {out:?}: {e}"))
}

#[test]
fn pymongo_crud_through_mongo_proxy_counts_every_command_exactly() {
    let nx = NxServer::start();
    let log = legate_integration::process::TempDir::new("mongolog");
    let log_path = log.path().join("mongo.log");
    let yaml = bootstrap(
        &[mongo_listener("mongo", "nx", "nx", &format!("access_log: {}", log_path.display()))],
        &[static_cluster("nx", &[nx.addr])],
    );
    let legate = Legate::start(&yaml);
    let out = crud_through(legate.listener_port("mongo"));
    assert_eq!(
        out,
        serde_json::json!({"inserted": 6, "by_id": "apple", "by_ids": 3, "by_name": 1, "updated": 2,
            "deleted": 1, "agg": 2, "cursor": 6, "dup": true, "server_error": true, "count": 1}),
        "the driver saw the right answers through the proxy"
    );
    let s = legate.stats();
    let v = |n: &str| s.value(&format!("mongo.nx.{n}"));
    legate_integration::mongo::assert_crud_workload_stats(v);
    // The access log has one JSON object per message, in Envoy's envelope.
    let text = std::fs::read_to_string(&log_path).expect("mongo access log");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert_eq!(lines.len() as u64, v("op_msg") + v("op_msg_reply"));
    let first_insert = lines.iter().find(|l| l["message"]["command"] == "insert").expect("an insert line");
    assert_eq!(first_insert["message"]["collection"], "items");
    assert_eq!(first_insert["message"]["db"], "shop");
    assert_eq!(first_insert["upstream_host"], nx.addr.to_string());
}

fn op_msg_ping(id: i32) -> Vec<u8> {
    // {ping: 1, $db: "admin"} as BSON.
    let mut doc = Vec::new();
    doc.extend_from_slice(&[0x10]);
    doc.extend_from_slice(b"ping\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.extend_from_slice(&[0x02]);
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    let mut bson = ((doc.len() + 5) as i32).to_le_bytes().to_vec();
    bson.extend_from_slice(&doc);
    bson.push(0);
    let len = 16 + 4 + 1 + bson.len();
    let mut m = Vec::new();
    for v in [len as i32, id, 0, 2013, 0] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.push(0);
    m.extend_from_slice(&bson);
    m
}

fn echo_round_trip(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    c.write_all(bytes).expect("write");
    let mut back = vec![0u8; bytes.len()];
    c.read_exact(&mut back).expect("echoed");
    back
}

#[test]
fn a_length_of_2_pow_31_is_counted_and_forwarded_untouched_and_other_connections_still_decode() {
    let echo = TcpEcho::start();
    let yaml = bootstrap(&[mongo_listener("mongo", "bad", "echo", "")], &[static_cluster("echo", &[echo.addr()])]);
    let legate = Legate::start(&yaml);
    let port = legate.listener_port("mongo");
    // A header declaring 2^31 bytes (i32::MIN), then a valid message: the connection is no
    // longer decoded, but every byte still goes through both ways.
    let mut bad = Vec::new();
    for v in [i32::MIN, 1, 0, 2013] {
        bad.extend_from_slice(&v.to_le_bytes());
    }
    bad.extend_from_slice(&op_msg_ping(2));
    assert_eq!(echo_round_trip(port, &bad), bad);
    legate.wait_stat_eq("mongo.bad.decoding_error", 1);
    assert_eq!(legate.stats().value("mongo.bad.op_msg"), 0);
    // A new connection decodes: the echo answers with the request itself, whose responseTo (0)
    // names no request: the reply is counted and so is the unknown requestID.
    let ping = op_msg_ping(3);
    assert_eq!(echo_round_trip(port, &ping), ping);
    legate.wait_stat_eq("mongo.bad.op_msg_reply", 1);
    let s = legate.stats();
    assert_eq!(s.value("mongo.bad.op_msg"), 1);
    assert_eq!(s.value("mongo.bad.cmd.ping.total"), 1);
    assert_eq!(s.value("mongo.bad.decoding_error"), 2);
}

fn envoy_only_counts_decoding_errors(s: &Stats) {
    let v = |n: &str| s.value(&format!("mongo.nx.{n}"));
    for n in ["op_query", "op_insert", "op_get_more", "op_reply", "op_command", "op_kill_cursors"] {
        assert_eq!(v(n), 0, "Envoy decoded {n} from OP_MSG traffic?");
    }
}

#[test]
fn envoy_counts_only_decoding_error_on_the_same_pymongo_traffic() {
    let nx = NxServer::start();
    let yaml = bootstrap(&[mongo_listener("mongo", "nx", "nx", "")], &[static_cluster("nx", &[nx.addr])]);
    let envoy = Envoy::start(&yaml);
    let out = crud_through(envoy.listener_port("mongo"));
    assert_eq!(out["inserted"], 6, "bytes still flow through Envoy's tcp_proxy");
    let s = envoy.stats();
    // Envoy stops sniffing a connection at its first OP_MSG (`invalid mongo op 2013`): one
    // decoding_error per connection, and no command or collection stats at all.
    let connections = s.value("tcp.nx.downstream_cx_total");
    assert!(connections >= 1);
    assert_eq!(s.value("mongo.nx.decoding_error"), connections);
    envoy_only_counts_decoding_errors(&s);
    let names = s.names_with_prefix("mongo.nx.");
    assert!(!names.iter().any(|n| n.contains(".cmd.") || n.contains(".collection.")), "per-command stats: {names:?}");
}

#[test]
fn mockupdb_scripted_errors_and_a_legacy_op_query_are_counted_exactly() {
    let dir = TempDir::new("mockupdb");
    let portfile = dir.path().join("legate_port");
    let (mut mock, addr) = spawn_script(&script("edge.py"), &[&portfile.to_string_lossy()], &dir);
    let yaml = bootstrap(&[mongo_listener("mongo", "mock", "mock", "")], &[static_cluster("mock", &[addr])]);
    let legate = Legate::start(&yaml);
    std::fs::write(&portfile, legate.listener_port("mongo").to_string()).expect("write the port file");
    let status = mock.wait_exit(std::time::Duration::from_secs(60));
    assert!(status.success(), "edge.py failed: {}", mock.stderr_text());
    let stdout = mock.stdout_text();
    let last = stdout.lines().last().unwrap_or_default();
    let out: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{stdout:?}: {e}"));
    assert_eq!(
        out,
        serde_json::json!({"legacy": {"op": 1, "response_to": 42}, "find_error": true, "write_error": true, "inserted": 2})
    );
    let s = legate.stats();
    let v = |n: &str| s.value(&format!("mongo.mock.{n}"));
    // The legacy handshake: Envoy's OP_QUERY/OP_REPLY stats.
    assert_eq!(v("op_query"), 1);
    assert_eq!(v("op_reply"), 1);
    assert_eq!(v("op_query_active"), 0);
    // The scripted server error and write errors, per command.
    assert_eq!(v("cmd.find.total"), 1);
    assert_eq!(v("cmd.find.error"), 1);
    assert_eq!(v("op_msg_reply_error"), 1);
    assert_eq!(v("collection.items.query.total"), 1);
    assert_eq!(v("collection.items.query.scatter_get"), 0, "find by _id");
    assert_eq!(v("cmd.insert.total"), 2);
    assert_eq!(v("cmd.insert.write_error"), 1);
    assert_eq!(v("cmd.insert.error"), 0, "write errors come with ok: 1");
    assert_eq!(v("collection.items.docs_inserted"), 2, "the replies' n: 0 then 2");
    assert_eq!(v("decoding_error"), 0);
}

#[test]
fn mongo_proxy_config_checks_delay_and_suggests_misspelt_fields() {
    let dir = TempDir::new("mongocfg");
    let validate = |extra: &str| {
        let listener = mongo_listener("m", "m", "c", extra);
        let yaml = bootstrap(&[listener], &[static_cluster("c", &["127.0.0.1:1".parse().expect("addr")])]);
        let out = legate_integration::legate::validate(&dir.write("m.yaml", &yaml), &[]);
        (out.code, format!("{}{}", out.stdout, out.stderr))
    };
    let (code, text) = validate(
        "commands: [find]\nemit_dynamic_metadata: true\ndelay: {fixed_delay: 1s, percentage: {numerator: 50}}",
    );
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = validate("delay: {fixed_delay: 0s, percentage: {numerator: 50}}\nacces_log: /tmp/x");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("fixed_delay must be greater than 0s"), "{text}");
    assert!(text.contains(".delay.fixed_delay"), "the error names the YAML path: {text}");
    assert!(text.contains("unknown field 'acces_log' in MongoProxy (did you mean 'access_log'?)"), "{text}");
}
