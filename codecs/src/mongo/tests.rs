//! Byte-fixture tests: real pymongo traffic (recorded through a relay by
//! `codecs/tests/fixtures/mongo/capture.py` against nx-27017), hand-built legacy messages, and
//! the bad input the codec must refuse without panicking.

use bson::rawdoc;

use super::facts::{QueryType, ReplyFacts, RequestFacts};
use super::*;

const CLIENT: &[u8] = include_bytes!("../../tests/fixtures/mongo/client_to_server.bin");
const SERVER: &[u8] = include_bytes!("../../tests/fixtures/mongo/server_to_client.bin");

fn messages(mut buf: &[u8]) -> Vec<(Header, &[u8])> {
    let mut out = Vec::new();
    while let Some(h) = split_message(buf).expect("frames") {
        out.push((h, &buf[..h.len()]));
        buf = &buf[h.len()..];
    }
    assert!(buf.is_empty(), "trailing bytes");
    out
}

fn msg<'a>(h: &Header, b: &'a [u8]) -> OpMsg<'a> {
    match Message::parse(h, b).expect("parses") {
        Message::Msg(m) => m,
        other => panic!("not OP_MSG: {other:?}"),
    }
}

#[test]
fn pymongo_requests_give_command_collection_filter_shape_and_counts() {
    let reqs = messages(CLIENT);
    assert_eq!(reqs.len(), 11);
    let facts: Vec<RequestFacts> = reqs.iter().map(|(h, b)| RequestFacts::from_msg(&msg(h, b))).collect();
    let cmds: Vec<&str> = facts.iter().map(|f| f.command.unwrap_or("-")).collect();
    assert_eq!(
        cmds,
        [
            "isMaster",
            "ping",
            "insert",
            "insert",
            "find",
            "find",
            "find",
            "update",
            "delete",
            "aggregate",
            "endSessions"
        ]
    );
    assert_eq!(facts[1].db, Some("admin"));
    assert_eq!(facts[2].db, Some("fixture"));
    assert_eq!(facts[2].collection, Some("people"));
    // insert_one: one document; insert_many: four, in a kind 1 `documents` sequence.
    assert_eq!(facts[2].documents, 1);
    assert_eq!(facts[3].documents, 4);
    let m = msg(&reqs[3].0, reqs[3].1);
    assert_eq!(m.sequence("documents").map(|s| s.count), Some(4));
    assert_eq!(facts[4].query_type, QueryType::PrimaryKey);
    assert_eq!(facts[5].query_type, QueryType::MultiGet);
    assert_eq!(facts[6].query_type, QueryType::ScatterGet);
    assert_eq!((facts[7].collection, facts[7].documents), (Some("people"), 1));
    assert_eq!((facts[8].collection, facts[8].documents), (Some("people"), 1));
    assert_eq!((facts[9].collection, facts[9].query_type), (Some("people"), QueryType::ScatterGet));
}

#[test]
fn pymongo_replies_give_ok_documents_and_write_counts() {
    let reqs = messages(CLIENT);
    let reps = messages(SERVER);
    assert_eq!(reps.len(), reqs.len());
    for ((rq, _), (rp, _)) in reqs.iter().zip(&reps) {
        assert_eq!(rp.response_to, rq.request_id, "replies come in request order");
    }
    let facts: Vec<ReplyFacts> = reps.iter().map(|(h, b)| ReplyFacts::from_msg(&msg(h, b))).collect();
    assert!(facts.iter().all(|f| f.ok));
    assert_eq!(facts[3].n, Some(4));
    assert_eq!((facts[4].documents, facts[4].cursor_id), (1, 0));
    assert_eq!(facts[5].documents, 2);
    assert_eq!(facts[7].n, Some(1));
    assert_eq!(facts[8].n, Some(2));
    assert_eq!(facts[0].size, 0xd7);
}

#[test]
fn partial_input_needs_more_bytes_and_decode_takes_whole_messages() {
    for cut in 0..CLIENT.len().min(400) {
        let first = split_message(&CLIENT[..cut]).expect("frames");
        assert_eq!(first.is_some(), cut >= 348, "cut at {cut}");
    }
    let mut buf = bytes::BytesMut::from(CLIENT);
    let mut n = 0;
    while let Some(f) = decode(&mut buf).expect("decodes") {
        f.message().expect("parses");
        n += 1;
    }
    assert_eq!((n, buf.len()), (11, 0));
}

fn header(len: i32, op: i32) -> Vec<u8> {
    Header { message_length: len, request_id: 7, response_to: 0, op_code: op }.encode().to_vec()
}

#[test]
fn a_length_of_2_pow_31_or_below_the_header_cannot_be_framed() {
    let mut b = header(i32::MIN, 2013);
    assert_eq!(split_message(&b), Err(FrameError::TooShort(i32::MIN)));
    b[..4].copy_from_slice(&48_000_001i32.to_le_bytes());
    assert_eq!(split_message(&b), Err(FrameError::TooLong(48_000_001)));
    b[..4].copy_from_slice(&15i32.to_le_bytes());
    assert_eq!(split_message(&b), Err(FrameError::TooShort(15)));
}

#[test]
fn op_msg_checksum_is_verified() {
    let body = rawdoc! { "ping": 1, "$db": "admin" };
    let mut m = op_msg::encode(1, 0, CHECKSUM_PRESENT, body.as_bytes(), &[]);
    let h = split_message(&m).expect("frames").expect("whole");
    let parsed = msg(&h, &m);
    assert!(parsed.checksum.is_some());
    let last = m.len() - 1;
    m[last] ^= 0xff;
    assert!(matches!(Message::parse(&h, &m), Err(MessageError::Checksum { .. })));
}

#[test]
fn sections_that_overrun_bad_bson_and_unknown_kinds_are_message_errors() {
    let body = rawdoc! { "insert": "c", "$db": "d" };
    let doc = rawdoc! { "x": 1 };
    let good = op_msg::encode(1, 0, 0, body.as_bytes(), &[("documents", &[doc.as_bytes()][..])]);
    let h = split_message(&good).expect("frames").expect("whole");
    assert_eq!(msg(&h, &good).sequence_documents, 1);
    // The kind 1 size says more than the message holds.
    let seq_at = 16 + 4 + 1 + body.as_bytes().len() + 1;
    let mut overrun = good.clone();
    overrun[seq_at..seq_at + 4].copy_from_slice(&1000i32.to_le_bytes());
    assert_eq!(Message::parse(&h, &overrun).err(), Some(MessageError::Overrun("document sequence")));
    // A body document whose element type is invalid: framed, but its facts say invalid.
    let mut bad = good.clone();
    bad[16 + 4 + 1 + 4] = 0x77;
    assert!(!RequestFacts::from_msg(&msg(&h, &bad)).valid);
    assert!(RequestFacts::from_msg(&msg(&h, &good)).valid);
    // A body whose declared length disagrees with its terminator.
    let mut unterminated = good.clone();
    unterminated[16 + 4 + 1 + body.as_bytes().len() - 1] = 1;
    assert_eq!(Message::parse(&h, &unterminated).err(), Some(MessageError::InvalidBson("body section")));
    let mut kind = good.clone();
    kind[seq_at - 1] = 9;
    assert_eq!(Message::parse(&h, &kind).err(), Some(MessageError::SectionKind(9)));
    let mut flags = good.clone();
    flags[16] = 0x04;
    assert_eq!(Message::parse(&h, &flags).err(), Some(MessageError::RequiredFlags(4)));
}

#[test]
fn unknown_opcodes_are_values() {
    let mut b = header(20, 2010);
    b.extend_from_slice(&[1, 2, 3, 4]);
    let h = split_message(&b).expect("frames").expect("whole");
    assert!(matches!(Message::parse(&h, &b), Ok(Message::Unknown { op_code: 2010, len: 20 })));
}

fn legacy(op: i32, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut b = header(16 + body.len() as i32, op);
    b.extend_from_slice(&body);
    b
}

#[test]
fn op_query_handshake_and_plain_queries() {
    let hello = rawdoc! { "isMaster": 1, "client": { "driver": "x" } };
    let q = legacy(
        2004,
        &[&0i32.to_le_bytes(), b"admin.$cmd\0", &0i32.to_le_bytes(), &(-1i32).to_le_bytes(), hello.as_bytes()],
    );
    let h = split_message(&q).expect("frames").expect("whole");
    let Message::Query(op) = Message::parse(&h, &q).expect("parses") else { panic!("not a query") };
    let f = RequestFacts::from_query(&op);
    assert_eq!((f.command, f.db), (Some("isMaster"), Some("admin")));

    let find = rawdoc! { "$query": { "_id": { "$in": [1, 2] } }, "$comment": "{\"callingFunction\": \"getUsers\"}", "$maxTimeMS": 50 };
    let q = legacy(
        2004,
        &[&(1i32 << 1).to_le_bytes(), b"db.users\0", &0i32.to_le_bytes(), &0i32.to_le_bytes(), find.as_bytes()],
    );
    let h = split_message(&q).expect("frames").expect("whole");
    let Message::Query(op) = Message::parse(&h, &q).expect("parses") else { panic!("not a query") };
    let f = RequestFacts::from_query(&op);
    assert_eq!(f.command, None);
    assert_eq!(f.collection, Some("users"));
    assert_eq!(f.query_type, QueryType::MultiGet);
    assert_eq!(f.max_time_ms, 50);
    assert_eq!(f.comment, Some("{\"callingFunction\": \"getUsers\"}"));
    assert_eq!(op.flags & op_query::TAILABLE_CURSOR, op_query::TAILABLE_CURSOR);
}

#[test]
fn op_reply_and_legacy_writes() {
    let d1 = rawdoc! { "_id": 1 };
    let d2 = rawdoc! { "_id": 2 };
    let r = legacy(
        1,
        &[
            &2i32.to_le_bytes(),
            &99i64.to_le_bytes(),
            &0i32.to_le_bytes(),
            &2i32.to_le_bytes(),
            d1.as_bytes(),
            d2.as_bytes(),
        ],
    );
    let h = split_message(&r).expect("frames").expect("whole");
    let Message::Reply(op) = Message::parse(&h, &r).expect("parses") else { panic!("not a reply") };
    let f = ReplyFacts::from_reply(&op, false);
    assert_eq!((f.ok, f.documents, f.cursor_id), (false, 2, 99));
    assert_eq!(f.size, (d1.as_bytes().len() + d2.as_bytes().len()) as u64);

    let ins = legacy(2002, &[&0i32.to_le_bytes(), b"db.c\0", d1.as_bytes(), d2.as_bytes()]);
    let h = split_message(&ins).expect("frames").expect("whole");
    assert!(matches!(Message::parse(&h, &ins), Ok(Message::Insert(OpInsert { document_count: 2, .. }))));
    let gm = legacy(2005, &[&0i32.to_le_bytes(), b"db.c\0", &10i32.to_le_bytes(), &99i64.to_le_bytes()]);
    let h = split_message(&gm).expect("frames").expect("whole");
    assert!(matches!(Message::parse(&h, &gm), Ok(Message::GetMore(OpGetMore { cursor_id: 99, .. }))));
    let kc = legacy(2007, &[&0i32.to_le_bytes(), &1000i32.to_le_bytes(), &99i64.to_le_bytes()]);
    let h = split_message(&kc).expect("frames").expect("whole");
    assert_eq!(Message::parse(&h, &kc).err(), Some(MessageError::Overrun("cursorIDs")));
    let upd = legacy(2001, &[&0i32.to_le_bytes(), b"db.c\0", &0i32.to_le_bytes(), d1.as_bytes(), d2.as_bytes()]);
    let h = split_message(&upd).expect("frames").expect("whole");
    assert!(matches!(Message::parse(&h, &upd), Ok(Message::Update(_))));
    let del = legacy(2006, &[&0i32.to_le_bytes(), b"db.c\0", &0i32.to_le_bytes(), d1.as_bytes()]);
    let h = split_message(&del).expect("frames").expect("whole");
    assert!(matches!(Message::parse(&h, &del), Ok(Message::Delete(_))));
    let comp = legacy(2012, &[&2013i32.to_le_bytes(), &100i32.to_le_bytes(), &[1u8], b"xyz"]);
    let h = split_message(&comp).expect("frames").expect("whole");
    assert!(matches!(
        Message::parse(&h, &comp),
        Ok(Message::Compressed(OpCompressed { original_op_code: 2013, compressor_id: 1, .. }))
    ));
}

#[test]
fn error_replies_give_code_and_write_errors() {
    let body = rawdoc! { "ok": 0.0, "errmsg": "no", "code": 11000 };
    let m = op_msg::encode(5, 4, 0, body.as_bytes(), &[]);
    let h = split_message(&m).expect("frames").expect("whole");
    let f = ReplyFacts::from_msg(&msg(&h, &m));
    assert_eq!((f.ok, f.code), (false, Some(11000)));
    let body = rawdoc! { "ok": 1.0, "n": 1, "writeErrors": [{ "index": 1, "code": 11000 }] };
    let m = op_msg::encode(5, 4, 0, body.as_bytes(), &[]);
    let h = split_message(&m).expect("frames").expect("whole");
    let f = ReplyFacts::from_msg(&msg(&h, &m));
    assert_eq!((f.ok, f.n, f.write_errors), (true, Some(1), 1));
}

#[test]
fn op_compressed_snappy_and_zlib_give_back_the_original_message() {
    use std::io::Write;
    let (_, whole) = messages(CLIENT)[2];
    let body = &whole[HEADER_LEN..];
    let snappy = snap::raw::Encoder::new().compress_vec(body).expect("snappy");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body).expect("zlib");
    let zlib = z.finish().expect("zlib");
    for (id, payload) in [(compressed::SNAPPY, &snappy), (compressed::ZLIB, &zlib), (compressed::NOOP, &body.to_vec())]
    {
        let m = legacy(2012, &[&2013i32.to_le_bytes(), &(body.len() as i32).to_le_bytes(), &[id], payload]);
        let h = split_message(&m).expect("frames").expect("whole");
        let Message::Compressed(c) = Message::parse(&h, &m).expect("parses") else { panic!("not compressed") };
        let mut out = Vec::new();
        let orig = c.decompress(&h, &mut out).expect("decompresses").expect("known compressor");
        assert_eq!(orig.op_code, 2013);
        assert_eq!(&out[HEADER_LEN..], body);
        let f = RequestFacts::from_msg(&msg(&orig, &out));
        assert_eq!((f.command, f.collection, f.documents), (Some("insert"), Some("people"), 1));
    }
    // A size that lies, and a compressor id the spec does not define (counted only).
    let m = legacy(2012, &[&2013i32.to_le_bytes(), &(body.len() as i32 - 1).to_le_bytes(), &[compressed::ZLIB], &zlib]);
    assert!(decompress(&m).is_err());
    let m = legacy(2012, &[&2013i32.to_le_bytes(), &10i32.to_le_bytes(), &[9], b"zz"]);
    assert_eq!(decompress(&m), Ok(None));
}

/// Decompresses a whole OP_COMPRESSED message: the original opcode and message.
fn decompress(m: &[u8]) -> Result<Option<(i32, Vec<u8>)>, MessageError> {
    let h = split_message(m).expect("frames").expect("whole");
    let Message::Compressed(c) = Message::parse(&h, m).expect("parses") else { panic!("not compressed") };
    let mut out = Vec::new();
    Ok(c.decompress(&h, &mut out)?.map(|orig| (orig.op_code, out)))
}

fn zstd_message(op: i32, size: usize, frame: &[u8]) -> Vec<u8> {
    legacy(2012, &[&op.to_le_bytes(), &(size as i32).to_le_bytes(), &[compressed::ZSTD], frame])
}

/// Fixtures compressed by the zstd tool itself (`zstd -19` with its content checksum, and
/// `zstd -3 --no-check`) from the recorded pymongo insert and nx-27017 hello reply.
const ZSTD_INSERT: &[u8] = include_bytes!("../../tests/fixtures/mongo/insert_body.zst");
const ZSTD_REPLY: &[u8] = include_bytes!("../../tests/fixtures/mongo/reply_body.zst");

#[test]
fn op_compressed_zstd_gives_back_the_original_message() {
    let (_, insert) = messages(CLIENT)[2];
    let body = &insert[HEADER_LEN..];
    let (op, out) = decompress(&zstd_message(2013, body.len(), ZSTD_INSERT)).expect("zstd").expect("known");
    assert_eq!(op, 2013);
    assert_eq!(&out[HEADER_LEN..], body);
    let h = split_message(&out).expect("frames").expect("whole");
    let f = RequestFacts::from_msg(&msg(&h, &out));
    assert_eq!((f.command, f.collection, f.documents), (Some("insert"), Some("people"), 1));

    let reply = messages(SERVER).into_iter().map(|(_, b)| b).max_by_key(|b| b.len()).expect("replies");
    let body = &reply[HEADER_LEN..];
    let (_, out) = decompress(&zstd_message(2013, body.len(), ZSTD_REPLY)).expect("zstd").expect("known");
    assert_eq!(&out[HEADER_LEN..], body);
    let h = split_message(&out).expect("frames").expect("whole");
    assert!(ReplyFacts::from_msg(&msg(&h, &out)).ok);

    // ruzstd's own encoder (a different compressor) reads back the same.
    let frame = ruzstd::encoding::compress_to_vec(body, ruzstd::encoding::CompressionLevel::Fastest);
    let (_, out) = decompress(&zstd_message(2013, body.len(), &frame)).expect("zstd").expect("known");
    assert_eq!(&out[HEADER_LEN..], body);
}

#[test]
fn op_compressed_zstd_that_lies_or_is_broken_is_an_error() {
    let (_, insert) = messages(CLIENT)[2];
    let len = insert.len() - HEADER_LEN;
    // A declared size smaller than what the frame holds: stops one byte past it.
    assert!(decompress(&zstd_message(2013, len - 1, ZSTD_INSERT)).is_err());
    // Larger than what it holds.
    assert!(decompress(&zstd_message(2013, len + 1, ZSTD_INSERT)).is_err());
    // Not a zstd frame; a truncated frame; a bit flipped in the middle.
    assert!(decompress(&zstd_message(2013, len, b"zz")).is_err());
    assert!(decompress(&zstd_message(2013, len, &ZSTD_INSERT[..ZSTD_INSERT.len() / 2])).is_err());
    let mut flipped = ZSTD_INSERT.to_vec();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    assert!(
        !matches!(decompress(&zstd_message(2013, len, &flipped)), Ok(Some((_, ref out))) if out[HEADER_LEN..] == insert[HEADER_LEN..])
    );
    // A small frame that inflates to far more than declared (1 MB of zeros, 64 bytes said).
    let bomb = ruzstd::encoding::compress_to_vec(&vec![0u8; 1 << 20][..], ruzstd::encoding::CompressionLevel::Fastest);
    assert!(bomb.len() < 1024);
    assert!(decompress(&zstd_message(2013, 64, &bomb)).is_err());
}
