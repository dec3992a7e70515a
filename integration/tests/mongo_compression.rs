//! OP_COMPRESSED end to end: pymongo negotiates zstd (`compressors="zstd"`) and runs the same
//! CRUD workload as `mongo_proxy.rs` through Legate's mongo_proxy + tcp_proxy. nx-27017 does
//! not negotiate compression, so a small Python front (`mongo/zstd_front.py`) stands before it
//! and does what a MongoDB server does: advertises zstd in its hello reply, takes compressed
//! requests and compresses the replies to them. Legate must decompress every one and count it
//! per command exactly as the uncompressed run does.

use legate_integration::mongo::{mongo_listener, run_script, script, spawn_script, NxServer};
use legate_integration::process::TempDir;
use legate_integration::yaml::{bootstrap, static_cluster};
use legate_integration::Legate;

#[test]
fn zstd_compressed_pymongo_traffic_is_decompressed_and_counted_per_command() {
    let nx = NxServer::start();
    let dir = TempDir::new("zstdfront");
    let (front, front_addr) = spawn_script(&script("zstd_front.py"), &[&nx.addr.port().to_string()], &dir);
    let yaml = bootstrap(&[mongo_listener("mongo", "z", "front", "")], &[static_cluster("front", &[front_addr])]);
    let legate = Legate::start(&yaml);
    let port = legate.listener_port("mongo").to_string();
    let out = run_script(&script("workload.py"), &[&port, "crud", "zstd"]);
    let out: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out:?}: {e}"));
    assert_eq!(
        out,
        serde_json::json!({"inserted": 6, "by_id": "apple", "by_ids": 3, "by_name": 1, "updated": 2,
            "deleted": 1, "agg": 2, "cursor": 6, "dup": true, "server_error": true, "count": 1}),
        "the driver saw the right answers through the proxy and the front"
    );
    // Every message the front decompressed (requests) or compressed (replies) went through
    // Legate compressed.
    let log = front.stdout_text();
    let requests = log.lines().filter(|l| l.starts_with("c2s ")).count() as u64;
    let replies = log.lines().filter(|l| l.starts_with("s2c ")).count() as u64;
    assert!(requests >= 12, "the workload's commands went compressed: {log}");
    legate.wait_stat_eq("mongo.z.op_compressed", requests + replies);
    let s = legate.stats();
    let v = |n: &str| s.value(&format!("mongo.z.{n}"));
    assert_eq!(v("decoding_error"), 0);
    // The same per-command and per-collection counts as the uncompressed run in mongo_proxy.rs.
    assert_eq!(v("cmd.insert.total"), 3);
    assert_eq!(v("cmd.find.total"), 4);
    assert_eq!(v("cmd.getMore.total"), 2);
    assert_eq!(v("cmd.update.total"), 1);
    assert_eq!(v("cmd.delete.total"), 1);
    assert_eq!(v("cmd.aggregate.total"), 3);
    assert_eq!(v("cmd.aggregate.error"), 1);
    assert_eq!(v("cmd.insert.write_error"), 1);
    assert_eq!(v("collection.items.query.total"), 7);
    assert_eq!(v("collection.items.query.multi_get"), 1);
    assert_eq!(v("collection.items.query.scatter_get"), 4);
    assert_eq!(v("collection.items.docs_inserted"), 7);
    assert_eq!(v("collection.items.docs_updated"), 2);
    assert_eq!(v("collection.items.docs_deleted"), 1);
    assert_eq!(v("op_msg"), v("op_msg_reply"), "every request was answered");
}
