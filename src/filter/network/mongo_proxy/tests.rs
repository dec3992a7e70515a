//! The observer on scripted byte streams: pipelined requests, exhaust replies, `moreToCome`
//! requests, bytes split at every position, and bad input.

use std::sync::Arc;

use bson::rawdoc;
use legate_codecs::mongo::op_msg::{encode, EXHAUST_ALLOWED, MORE_TO_COME};

use std::time::Duration;

use super::{MongoObserver, MongoProxy};
use crate::config::http_filters::FractionalPercent;
use crate::config::mongo_proxy::{MongoDelay, MongoProxyConfig};
use crate::filter::{CloseOrigin, FilterAction, Observer};
use crate::runtime::Runtime;
use crate::stats::Store;

fn proxy(store: &Store) -> Arc<MongoProxy> {
    proxy_with(store, None, &Runtime::default())
}

fn proxy_with(store: &Store, delay: Option<MongoDelay>, rt: &Runtime) -> Arc<MongoProxy> {
    let cfg = MongoProxyConfig {
        stat_prefix: "p".into(),
        access_log: None,
        emit_dynamic_metadata: false,
        commands: None,
        delay,
        path: String::new(),
    };
    Arc::new(MongoProxy::new(&cfg, store, rt).expect("builds"))
}

fn always(ms: u64) -> Option<MongoDelay> {
    Some(MongoDelay {
        fixed: Some(Duration::from_millis(ms)),
        percentage: FractionalPercent { numerator: 100, denominator: 100 },
    })
}

fn find(id: i32) -> Vec<u8> {
    let body = rawdoc! { "find": "users", "filter": { "_id": id }, "$db": "app" };
    encode(id, 0, 0, body.as_bytes(), &[])
}

fn batch(id: i32, to: i32, flags: u32, docs: i32, cursor: i64) -> Vec<u8> {
    let mut arr = bson::RawArrayBuf::new();
    for i in 0..docs {
        arr.push(rawdoc! { "_id": i });
    }
    let body = rawdoc! { "cursor": { "id": cursor, "ns": "app.users", "firstBatch": arr }, "ok": 1.0 };
    encode(id, to, flags, body.as_bytes(), &[])
}

fn value(store: &Store, name: &str) -> u64 {
    store.counter(&format!("mongo.p.{name}")).value()
}

#[test]
fn pipelined_requests_split_at_every_byte_are_matched_to_their_replies() {
    let reqs = [find(1), find(2), find(3)].concat();
    // Replies out of order: 3, 1, 2.
    let reps = [batch(10, 3, 0, 1, 0), batch(11, 1, 0, 1, 0), batch(12, 2, 0, 1, 0)].concat();
    for cut in (0..reqs.len()).step_by(7) {
        let store = Store::new();
        let mut o = MongoObserver::new(proxy(&store));
        o.on_downstream_data(&reqs[..cut]);
        o.on_downstream_data(&reqs[cut..]);
        let rc = cut.min(reps.len());
        o.on_upstream_data(&reps[..rc]);
        o.on_upstream_data(&reps[rc..]);
        assert_eq!(value(&store, "cmd.find.total"), 3);
        assert_eq!(value(&store, "collection.users.query.total"), 3);
        assert_eq!(value(&store, "op_msg_reply"), 3);
        assert_eq!(value(&store, "decoding_error"), 0, "cut {cut}");
        assert!(o.pending.is_empty());
        assert_eq!(store.gauge("mongo.p.op_msg_active").value(), 0);
    }
}

#[test]
fn exhaust_replies_each_answer_the_previous_one() {
    let store = Store::new();
    let mut o = MongoObserver::new(proxy(&store));
    let body = rawdoc! { "getMore": 77i64, "collection": "users", "$db": "app" };
    o.on_downstream_data(&encode(5, 0, EXHAUST_ALLOWED, body.as_bytes(), &[]));
    // The server streams three batches: to 5, then to its own 20, then to 21 (the last
    // without moreToCome ends the exchange).
    o.on_upstream_data(&batch(20, 5, MORE_TO_COME, 2, 77));
    o.on_upstream_data(&batch(21, 20, MORE_TO_COME, 2, 77));
    o.on_upstream_data(&batch(22, 21, 0, 1, 0));
    assert_eq!(value(&store, "op_msg_exhaust_allowed"), 1);
    assert_eq!(value(&store, "op_msg_reply_more_to_come"), 2);
    assert_eq!(value(&store, "cmd.getMore.total"), 1);
    assert_eq!(value(&store, "decoding_error"), 0);
    assert!(o.pending.is_empty());
    let h = store.histogram("mongo.p.cmd.getMore.reply_num_docs", crate::stats::HistogramUnit::Unspecified);
    store.merge_histograms();
    assert_eq!(h.snapshot().cumulative.iter().map(|(_, c)| c).sum::<u64>(), 3, "one sample per reply");
}

#[test]
fn more_to_come_requests_expect_no_reply_and_count_their_documents() {
    let store = Store::new();
    let mut o = MongoObserver::new(proxy(&store));
    let body = rawdoc! { "insert": "users", "$db": "app", "writeConcern": { "w": 0 } };
    let (d1, d2) = (rawdoc! { "_id": 1 }, rawdoc! { "_id": 2 });
    let docs: &[&[u8]] = &[d1.as_bytes(), d2.as_bytes()];
    o.on_downstream_data(&encode(9, 0, MORE_TO_COME, body.as_bytes(), &[("documents", docs)]));
    assert_eq!(value(&store, "op_msg_more_to_come"), 1);
    assert_eq!(value(&store, "collection.users.docs_inserted"), 2);
    assert!(o.pending.is_empty());
}

#[test]
fn bad_messages_are_skipped_and_unframeable_streams_are_dropped() {
    let store = Store::new();
    let mut o = MongoObserver::new(proxy(&store));
    // A checksum that does not match: skipped, the next message still decodes.
    let body = rawdoc! { "ping": 1, "$db": "admin" };
    let mut bad = encode(1, 0, legate_codecs::mongo::CHECKSUM_PRESENT, body.as_bytes(), &[]);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    o.on_downstream_data(&bad);
    o.on_downstream_data(&find(2));
    assert_eq!(value(&store, "decoding_error"), 1);
    assert_eq!(value(&store, "cmd.find.total"), 1);
    // A reply to a request never sent.
    o.on_upstream_data(&batch(3, 999, 0, 0, 0));
    assert_eq!(value(&store, "decoding_error"), 2);
    // A length of 2^31: the connection is no longer decoded.
    let mut h = Vec::new();
    for v in [i32::MIN, 1, 0, 2013] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    o.on_downstream_data(&h);
    o.on_downstream_data(&find(4));
    assert_eq!(value(&store, "decoding_error"), 3);
    assert_eq!(value(&store, "cmd.find.total"), 1);
    assert!(o.dead);
}

#[test]
fn zlib_compressed_requests_and_replies_are_decoded_like_plain_ones() {
    use std::io::Write;
    let store = Store::new();
    let mut o = MongoObserver::new(proxy(&store));
    let compress = |m: &[u8]| {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&m[16..]).expect("zlib");
        let z = z.finish().expect("zlib");
        let mut out = Vec::new();
        let op = i32::from_le_bytes([m[12], m[13], m[14], m[15]]);
        let body_len = (m.len() - 16) as i32;
        let total = (16 + 9 + z.len()) as i32;
        for v in [
            total,
            i32::from_le_bytes([m[4], m[5], m[6], m[7]]),
            i32::from_le_bytes([m[8], m[9], m[10], m[11]]),
            2012,
            op,
            body_len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(legate_codecs::mongo::compressed::ZLIB);
        out.extend_from_slice(&z);
        out
    };
    o.on_downstream_data(&compress(&find(1)));
    o.on_upstream_data(&compress(&batch(2, 1, 0, 3, 0)));
    assert_eq!(value(&store, "op_compressed"), 2);
    assert_eq!(value(&store, "cmd.find.total"), 1);
    assert_eq!(value(&store, "op_msg_reply"), 1);
    assert_eq!(value(&store, "decoding_error"), 0);
    assert!(o.pending.is_empty());
}

#[test]
fn a_delay_holds_the_read_of_a_request_and_no_second_delay_starts_while_it_runs() {
    let store = Store::new();
    let mut o = MongoObserver::new(proxy_with(&store, always(60_000), &Runtime::default()));
    // Two pipelined requests in one read: one delay for the read.
    let two = [find(1), find(2)].concat();
    assert_eq!(o.on_downstream_data(&two), FilterAction::Delay(Duration::from_millis(60_000)));
    assert_eq!(value(&store, "delays_injected"), 1);
    // A request while the delay runs is not delayed again (Envoy: no timer while one is armed).
    assert_eq!(o.on_downstream_data(&find(3)), FilterAction::Continue);
    assert_eq!(value(&store, "delays_injected"), 1);
    // Replies are never delayed, and half a request asks for nothing.
    assert_eq!(o.on_upstream_data(&batch(10, 1, 0, 1, 0)), FilterAction::Continue);
    assert_eq!(value(&store, "cmd.find.total"), 3);
}

#[test]
fn delay_percentage_and_duration_follow_envoys_runtime_keys() {
    let rt =
        |v: serde_json::Value| Runtime::from_config(&serde_json::json!({"layers": [{"name": "l", "static_layer": v}]}));
    // Runtime 0% turns a configured 100% off.
    let store = Store::new();
    let r = rt(serde_json::json!({"mongo.fault.fixed_delay.percent": 0}));
    let mut o = MongoObserver::new(proxy_with(&store, always(5), &r));
    assert_eq!(o.on_downstream_data(&find(1)), FilterAction::Continue);
    assert_eq!(value(&store, "delays_injected"), 0);
    // The duration key overrides the configured delay.
    let store = Store::new();
    let r = rt(serde_json::json!({"mongo": {"fault": {"fixed_delay": {"duration_ms": 7}}}}));
    let mut o = MongoObserver::new(proxy_with(&store, always(5), &r));
    assert_eq!(o.on_downstream_data(&find(1)), FilterAction::Delay(Duration::from_millis(7)));
    // header_delay has no duration on a Mongo connection: never delays.
    let store = Store::new();
    let d = Some(MongoDelay { fixed: None, percentage: FractionalPercent { numerator: 100, denominator: 100 } });
    let mut o = MongoObserver::new(proxy_with(&store, d, &r));
    assert_eq!(o.on_downstream_data(&find(1)), FilterAction::Continue);
}

#[test]
fn closing_with_requests_outstanding_counts_who_closed() {
    let store = Store::new();
    let shared = proxy(&store);
    let mut o = MongoObserver::new(shared.clone());
    o.on_downstream_data(&find(1));
    o.on_close(CloseOrigin::Remote);
    let mut o = MongoObserver::new(shared.clone());
    o.on_downstream_data(&find(1));
    o.on_close(CloseOrigin::Local);
    // Answered: nothing outstanding, nothing counted.
    let mut o = MongoObserver::new(shared);
    o.on_downstream_data(&find(1));
    o.on_upstream_data(&batch(2, 1, 0, 0, 0));
    o.on_close(CloseOrigin::Remote);
    assert_eq!(value(&store, "cx_destroy_remote_with_active_rq"), 1);
    assert_eq!(value(&store, "cx_destroy_local_with_active_rq"), 1);
    assert_eq!(store.gauge("mongo.p.op_msg_active").value(), 0);
}

#[test]
fn while_draining_the_reply_that_leaves_nothing_outstanding_asks_for_a_flushed_close() {
    let store = Store::new();
    let mut o = MongoObserver::new(proxy(&store));
    let drain = tokio_util::sync::CancellationToken::new();
    o.drain = Some(drain.clone());
    o.on_downstream_data(&[find(1), find(2)].concat());
    assert_eq!(o.on_upstream_data(&batch(10, 1, 0, 1, 0)), FilterAction::Continue, "not draining");
    drain.cancel();
    assert_eq!(o.on_upstream_data(&batch(11, 2, 0, 1, 0)), FilterAction::FlushAndClose);
    assert_eq!(value(&store, "cx_drain_close"), 1);
    // A reply with another request still outstanding does not close.
    let mut o = MongoObserver::new(proxy(&store));
    o.drain = Some(drain);
    o.on_downstream_data(&[find(1), find(2)].concat());
    assert_eq!(o.on_upstream_data(&batch(10, 1, 0, 1, 0)), FilterAction::Continue);
    assert_eq!(value(&store, "cx_drain_close"), 1);
}
