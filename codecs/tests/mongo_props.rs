//! Property tests of the MongoDB codec: arbitrary bytes never panic (framing, parsing and fact
//! extraction), and OP_MSG messages built from arbitrary documents read back as built.

use bson::{rawdoc, RawDocumentBuf};
use legate_codecs::mongo::{self, facts, op_msg, Message, MessageError};
use proptest::prelude::*;

/// Frames and reads everything in `buf`, as an observer would, touching every fact.
fn exercise(mut buf: &[u8]) {
    while let Ok(Some(h)) = mongo::split_message(buf) {
        let whole = &buf[..h.len()];
        if let Ok(m) = Message::parse(&h, whole) {
            match m {
                Message::Msg(m) => {
                    let _ = facts::RequestFacts::from_msg(&m);
                    let _ = facts::ReplyFacts::from_msg(&m);
                }
                Message::Query(q) => {
                    let _ = facts::RequestFacts::from_query(&q);
                }
                Message::Reply(r) => {
                    let _ = facts::ReplyFacts::from_reply(&r, true);
                }
                _ => {}
            }
        }
        buf = &buf[h.len()..];
    }
}

fn doc_strategy() -> impl Strategy<Value = RawDocumentBuf> {
    (
        prop::sample::select(vec!["find", "insert", "update", "delete", "aggregate", "getMore", "hello"]),
        "[a-z]{1,12}",
        prop::option::of(any::<i64>()),
        any::<bool>(),
    )
        .prop_map(|(cmd, coll, id, in_list)| {
            let mut d = rawdoc! {};
            d.append(cmd, coll.as_str());
            if let Some(id) = id {
                if in_list {
                    d.append("filter", rawdoc! { "_id": { "$in": [id, 1] } });
                } else {
                    d.append("filter", rawdoc! { "_id": id });
                }
            }
            d.append("$db", "db");
            d
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_real_traffic_never_panics(idx in 0usize..1818, val in any::<u8>(), cut in 0usize..1818) {
        let mut b = include_bytes!("fixtures/mongo/client_to_server.bin").to_vec();
        let i = idx % b.len();
        b[i] = val;
        b.truncate(cut.max(1));
        exercise(&b);
    }

    #[test]
    fn op_msg_round_trips(
        body in doc_strategy(),
        docs in prop::collection::vec("[a-z]{0,20}", 0..8),
        checksum in any::<bool>(),
        more in any::<bool>(),
        id in any::<i32>(),
    ) {
        let seq: Vec<RawDocumentBuf> = docs.iter().map(|s| rawdoc! { "s": s.as_str() }).collect();
        let seq_bytes: Vec<&[u8]> = seq.iter().map(|d| d.as_bytes()).collect();
        let mut flags = if checksum { op_msg::CHECKSUM_PRESENT } else { 0 };
        if more { flags |= op_msg::MORE_TO_COME; }
        let sections: Vec<(&str, &[&[u8]])> =
            if seq.is_empty() { vec![] } else { vec![("documents", &seq_bytes[..])] };
        let bytes = op_msg::encode(id, 0, flags, body.as_bytes(), &sections);
        let h = mongo::split_message(&bytes).expect("frames").expect("whole");
        prop_assert_eq!(h.len(), bytes.len());
        prop_assert_eq!(h.request_id, id);
        let Ok(Message::Msg(m)) = Message::parse(&h, &bytes) else {
            return Err(TestCaseError::fail("not an OP_MSG"));
        };
        prop_assert_eq!(m.body.as_bytes(), body.as_bytes());
        prop_assert_eq!(m.flags, flags);
        prop_assert_eq!(m.more_to_come(), more);
        prop_assert_eq!(m.sequence_documents as usize, seq.len());
        let back: Vec<&[u8]> = m.sequence("documents").map(|s| s.documents().map(|d| d.as_bytes()).collect()).unwrap_or_default();
        prop_assert_eq!(back, seq_bytes);
        // A flipped byte after the flags is caught by the checksum.
        if checksum && bytes.len() > 21 {
            let mut bad = bytes.clone();
            bad[20] ^= 0x10;
            let caught = matches!(Message::parse(&h, &bad), Err(MessageError::Checksum { .. }));
            prop_assert!(caught, "a flipped byte passed the checksum");
        }
    }
}
