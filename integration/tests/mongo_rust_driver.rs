//! The official Rust `mongodb` driver through Legate's mongo_proxy + tcp_proxy to nx-27017: the
//! same CRUD workload as pymongo's in `mongo_proxy.rs` (insert one and many, find by `_id`, by
//! `_id $in` and by a field, update, delete, aggregate, a cursor that needs getMore, a duplicate
//! key and a server-side error, a count), every answer checked, and every stat the workload
//! moves checked exactly. A second driver shows the decoding does not depend on pymongo's
//! choices (the Rust driver's own section layout, `lsid`s and handshake).

use futures_util::TryStreamExt;
use legate_integration::mongo::{mongo_listener, NxServer};
use legate_integration::yaml::{bootstrap, static_cluster};
use legate_integration::Legate;
use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::options::ClientOptions;
use mongodb::Client;

/// What the driver saw, to compare with what the proxy counted.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    inserted: usize,
    by_id: String,
    by_ids: usize,
    by_name: usize,
    updated: u64,
    deleted: u64,
    agg: usize,
    cursor: usize,
    dup: bool,
    server_error: bool,
    count: u64,
}

/// Runs the workload; returns what the driver saw and the client, still connected (its
/// shutdown sends `endSessions`, which the test wants to see after the workload's stats).
async fn crud(port: u16) -> (Seen, Client) {
    // One application connection; the monitor polls (no streaming `hello` left waiting on the
    // server, no RTT monitor) and rarely, so every request the test sees has been answered.
    let uri = format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&maxPoolSize=1&heartbeatFrequencyMS=60000\
         &serverMonitoringMode=poll&serverSelectionTimeoutMS=10000&retryWrites=false&retryReads=false"
    );
    let opts = ClientOptions::parse(uri).await.expect("parse the URI");
    let client = Client::with_options(opts).expect("client");
    let coll = client.database("shop").collection::<Document>("items");
    let mut seen = Seen::default();
    coll.insert_one(doc! {"_id": 1, "name": "apple", "qty": 5}).await.expect("insert_one");
    let many: Vec<Document> = (2..8).map(|i| doc! {"_id": i, "name": format!("item{i}"), "qty": i}).collect();
    seen.inserted = coll.insert_many(many).await.expect("insert_many").inserted_ids.len();
    let one = coll.find_one(doc! {"_id": 1}).await.expect("find_one").expect("found");
    seen.by_id = one.get_str("name").expect("name").to_string();
    let docs: Vec<Document> =
        coll.find(doc! {"_id": {"$in": [2, 3, 4]}}).await.expect("find").try_collect().await.expect("docs");
    seen.by_ids = docs.len();
    let docs: Vec<Document> = coll.find(doc! {"name": "item5"}).await.expect("find").try_collect().await.expect("docs");
    seen.by_name = docs.len();
    seen.updated = coll
        .update_many(doc! {"qty": {"$gte": 6}}, doc! {"$set": {"big": true}})
        .await
        .expect("update_many")
        .modified_count;
    seen.deleted = coll.delete_one(doc! {"_id": 7}).await.expect("delete_one").deleted_count;
    let docs: Vec<Document> = coll
        .aggregate([doc! {"$match": {"qty": {"$lte": 3}}}])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("docs");
    seen.agg = docs.len();
    // 6 documents in batches of 2: find + 2 getMores.
    let docs: Vec<Document> = coll.find(doc! {}).batch_size(2).await.expect("find").try_collect().await.expect("docs");
    seen.cursor = docs.len();
    let dup = coll.insert_one(doc! {"_id": 1}).await.expect_err("duplicate _id");
    seen.dup = matches!(*dup.kind, ErrorKind::Write(_));
    // nx-27017 answers an unknown aggregation stage with ok: 0 (a server-side error). It leaves
    // out `code`, which the Rust driver requires of a command error, so the driver reports the
    // reply as an invalid response rather than a command error; either is the server's ok: 0.
    let err = coll.aggregate([doc! {"$bogus": 1}]).await.expect_err("unknown stage");
    seen.server_error = matches!(*err.kind, ErrorKind::Command(_) | ErrorKind::InvalidResponse { .. });
    seen.count = coll.count_documents(doc! {"_id": 1}).await.expect("count_documents");
    (seen, client)
}

#[test]
fn rust_driver_crud_through_mongo_proxy_counts_every_command_exactly() {
    let nx = NxServer::start();
    let yaml = bootstrap(&[mongo_listener("mongo", "rs", "nx", "")], &[static_cluster("nx", &[nx.addr])]);
    let legate = Legate::start(&yaml);
    let port = legate.listener_port("mongo");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (seen, client) = rt.block_on(crud(port));
    assert_eq!(
        seen,
        Seen {
            inserted: 6,
            by_id: "apple".into(),
            by_ids: 3,
            by_name: 1,
            updated: 2,
            deleted: 1,
            agg: 2,
            cursor: 6,
            dup: true,
            server_error: true,
            count: 1
        },
        "the driver saw the right answers through the proxy"
    );
    let s = legate.stats();
    let v = |n: &str| s.value(&format!("mongo.rs.{n}"));
    legate_integration::mongo::assert_crud_workload_stats(v);
    assert_eq!(v("cx_destroy_remote_with_active_rq") + v("cx_destroy_local_with_active_rq"), 0);
    // Shutting down ends the server sessions the workload used (one `endSessions`); the driver
    // does not wait for its reply, so only the request is certain.
    rt.block_on(async { client.shutdown().await });
    legate.wait_stat_eq("mongo.rs.cmd.endSessions.total", 1);
}
