//! Byte-fixture tests (hand-built and captured from real psql/pgbench sessions against
//! PostgreSQL 15), incomplete input, rejected input, and property tests.

use bytes::BytesMut;
use proptest::prelude::*;

use super::backend::{Authentication, BackendMessage, CommandKind, Severity, TransactionStatus};
use super::framer::{Body, Flow, Framer, Handler, Kind, Mode, Msg};
use super::frontend::{FrontendMessage, Target};
use super::startup::StartupPacket;
use super::*;

/// A framed message: its kind and (when wanted) its body.
type Framed = (Kind, Option<Vec<u8>>);

/// Collects every framed message with owned bodies.
#[derive(Default)]
struct Collect {
    all_bodies: bool,
    got: Vec<Framed>,
}

impl Handler for Collect {
    fn wants_body(&mut self, kind: Kind, _len: usize) -> bool {
        self.all_bodies || matches!(kind, Kind::Message(b'C' | b'Z' | b'E'))
    }
    fn on_message(&mut self, m: Msg<'_>) -> Flow {
        let body = match m.body {
            Body::Whole(b) => Some(b.to_vec()),
            _ => None,
        };
        self.got.push((m.kind, body));
        Flow::Continue
    }
}

fn frame_all(mode: Mode, bytes: &[u8], chunk: usize) -> Result<Vec<Framed>, Error> {
    let mut f = Framer::new(mode, 1 << 20);
    let mut c = Collect { all_bodies: true, ..Default::default() };
    for piece in bytes.chunks(chunk.max(1)) {
        f.feed(piece, &mut c)?;
    }
    Ok(c.got)
}

#[test]
fn startup_message_parameters_are_read() {
    let pkt = encode::startup_message(&[("user", "alice"), ("database", "shop"), ("application_name", "psql")]);
    let mut buf = BytesMut::from(&pkt[..]);
    let frame = decode_frontend(&mut buf, true).expect("ok").expect("whole");
    let Frontend::Startup(StartupPacket::Startup { minor, params }) = frame.frontend().expect("parses") else {
        panic!("not a startup message");
    };
    assert_eq!(minor, 0);
    assert_eq!(params.user(), Some(&b"alice"[..]));
    assert_eq!(params.database(), Some(&b"shop"[..]));
    assert_eq!(params.get("application_name"), Some(&b"psql"[..]));
    // The database defaults to the user.
    let pkt = encode::startup_message(&[("user", "bob")]);
    let body = &pkt[4..];
    let Ok(StartupPacket::Startup { params, .. }) = startup::parse(body) else { panic!() };
    assert_eq!(params.database(), Some(&b"bob"[..]));
}

#[test]
fn encryption_and_cancel_requests_are_told_apart() {
    assert_eq!(startup::parse(&encode::ssl_request()[4..]), Ok(StartupPacket::SslRequest));
    let gss = encode::startup_packet(&startup::GSSENC_REQUEST_CODE.to_be_bytes());
    assert_eq!(startup::parse(&gss[4..]), Ok(StartupPacket::GssEncRequest));
    let mut cancel = startup::CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
    cancel.extend_from_slice(&1234u32.to_be_bytes());
    cancel.extend_from_slice(&[9, 9, 9, 9]);
    assert_eq!(startup::parse(&cancel), Ok(StartupPacket::Cancel { pid: 1234, key: &[9, 9, 9, 9] }));
    // Protocol 2.0 is not spoken.
    assert_eq!(startup::parse(&(2u32 << 16).to_be_bytes()), Err(Error::UnsupportedVersion { major: 2, minor: 0 }));
    // A parameter without its terminator.
    let mut bad = startup::PROTOCOL_3_0.to_be_bytes().to_vec();
    bad.extend_from_slice(b"user\0alice");
    assert!(matches!(startup::parse(&bad), Err(Error::Unterminated(_))));
}

#[test]
fn lengths_are_bounded_before_anything_is_buffered() {
    // A message length of 2^31-1.
    let mut huge = vec![b'Q'];
    huge.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    let mut buf = BytesMut::from(&huge[..]);
    assert!(matches!(decode_frontend(&mut buf, false), Err(Error::BadLength { len: 0x7fff_ffff, .. })));
    assert!(matches!(frame_all(Mode::Regular, &huge, 1), Err(Error::BadLength { .. })));
    // A length below its own size.
    assert!(matches!(frame_all(Mode::Regular, &[b'S', 0, 0, 0, 3], 5), Err(Error::BadLength { len: 3, .. })));
    // A startup packet over PostgreSQL's 10000-byte limit, or too short to hold a code.
    assert!(matches!(frame_all(Mode::Startup, &20_000u32.to_be_bytes(), 4), Err(Error::BadLength { .. })));
    assert!(matches!(frame_all(Mode::Startup, &4u32.to_be_bytes(), 4), Err(Error::BadLength { .. })));
}

#[test]
fn incomplete_input_asks_for_more() {
    let q = encode::query("SELECT 1");
    for cut in 0..q.len() {
        let mut buf = BytesMut::from(&q[..cut]);
        assert_eq!(decode_frontend(&mut buf, false), Ok(None), "cut at {cut}");
        assert_eq!(buf.len(), cut, "nothing consumed");
    }
    let mut buf = BytesMut::from(&q[..]);
    let f = decode_frontend(&mut buf, false).expect("ok").expect("whole");
    assert_eq!(f.frontend(), Ok(Frontend::Message(FrontendMessage::Query { sql: b"SELECT 1" })));
    assert!(buf.is_empty());
}

#[test]
fn command_complete_tags_are_parsed() {
    let cases: &[(&[u8], CommandKind, Option<u64>)] = &[
        (b"SELECT 5", CommandKind::Select, Some(5)),
        (b"INSERT 0 3", CommandKind::Insert, Some(3)),
        (b"UPDATE 2", CommandKind::Update, Some(2)),
        (b"DELETE 0", CommandKind::Delete, Some(0)),
        (b"MERGE 1", CommandKind::Merge, Some(1)),
        (b"COPY 100", CommandKind::Copy, Some(100)),
        (b"FETCH 10", CommandKind::Fetch, Some(10)),
        (b"BEGIN", CommandKind::Begin, None),
        (b"COMMIT", CommandKind::Commit, None),
        (b"ROLLBACK", CommandKind::Rollback, None),
        (b"SAVEPOINT", CommandKind::Savepoint, None),
        (b"RELEASE", CommandKind::Release, None),
        (b"PREPARE TRANSACTION", CommandKind::PrepareTransaction, None),
        (b"CREATE TABLE", CommandKind::Other, None),
        (b"SELECT", CommandKind::Other, None),
        (b"", CommandKind::Other, None),
    ];
    for (raw, kind, rows) in cases {
        let t = backend::CommandTag::parse(raw);
        assert_eq!((t.kind, t.rows), (*kind, *rows), "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn error_and_notice_fields_and_severity() {
    let e = encode::error_response("ERROR", "42P01", "relation \"nope\" does not exist");
    let BackendMessage::ErrorResponse(f) = backend::parse(e[0], &e[5..]).expect("parses") else { panic!() };
    assert_eq!(f.severity(), Severity::Error);
    assert_eq!(f.code(), Some(&b"42P01"[..]));
    assert_eq!(f.message(), Some(&b"relation \"nope\" does not exist"[..]));
    for (sev, want) in [
        ("FATAL", Severity::Fatal),
        ("PANIC", Severity::Panic),
        ("WARNING", Severity::Warning),
        ("NOTICE", Severity::Notice),
        ("DEBUG", Severity::Debug),
        ("INFO", Severity::Info),
        ("LOG", Severity::Log),
        ("FEHLER", Severity::Unknown),
    ] {
        let n = encode::notice_response(sev, "00000", "x");
        let BackendMessage::NoticeResponse(f) = backend::parse(b'N', &n[5..]).expect("parses") else { panic!() };
        assert_eq!(f.severity(), want, "{sev}");
    }
    // A localized S with the non-localized V (PostgreSQL 9.6+): V wins.
    let body = b"SFEHLER\0VERROR\0C42601\0Mx\0\0";
    let BackendMessage::ErrorResponse(f) = backend::parse(b'E', body).expect("parses") else { panic!() };
    assert_eq!(f.severity(), Severity::Error);
    // Missing the final zero byte.
    assert!(backend::parse(b'E', b"SERROR\0").is_err());
}

#[test]
fn ready_for_query_status_and_unknown_types() {
    assert_eq!(backend::parse(b'Z', b"I"), Ok(BackendMessage::ReadyForQuery(TransactionStatus::Idle)));
    assert_eq!(backend::parse(b'Z', b"T"), Ok(BackendMessage::ReadyForQuery(TransactionStatus::InBlock)));
    assert_eq!(backend::parse(b'Z', b"E"), Ok(BackendMessage::ReadyForQuery(TransactionStatus::Failed)));
    assert!(backend::parse(b'Z', b"Q").is_err());
    // Unknown types are values.
    assert_eq!(backend::parse(b'~', b"xyz"), Ok(BackendMessage::Unknown { tag: b'~', body: b"xyz" }));
    assert_eq!(frontend::parse(b'~', b""), Ok(FrontendMessage::Unknown { tag: b'~', body: b"" }));
}

#[test]
fn extended_protocol_messages_are_parsed() {
    let parse = b"s1\0SELECT $1\0\0\x01\0\0\0\x17";
    assert_eq!(
        frontend::parse(b'P', parse),
        Ok(FrontendMessage::Parse { statement: b"s1", sql: b"SELECT $1", param_types: 1 })
    );
    // Bind: portal "", statement "s1", 0 formats, 1 param "42", 0 result formats.
    let bind = b"\0s1\0\0\0\0\x01\0\0\0\x0242\0\0";
    assert_eq!(
        frontend::parse(b'B', bind),
        Ok(FrontendMessage::Bind { portal: b"", statement: b"s1", params: 1, result_formats: 0 })
    );
    assert_eq!(
        frontend::parse(b'D', b"Ss1\0"),
        Ok(FrontendMessage::Describe { target: Target::Statement, name: b"s1" })
    );
    assert_eq!(frontend::parse(b'E', b"\0\0\0\0\0"), Ok(FrontendMessage::Execute { portal: b"", max_rows: 0 }));
    assert_eq!(frontend::parse(b'S', b""), Ok(FrontendMessage::Sync));
    assert!(frontend::parse(b'S', b"x").is_err());
    // A Bind whose parameter length runs past the end.
    assert!(frontend::parse(b'B', b"\0s1\0\0\0\0\x01\0\0\0\x09ab\0\0").is_err());
    let sasl = b"SCRAM-SHA-256\0\0\0\0\x03abc";
    let r = frontend::sasl_initial_response(sasl).expect("parses");
    assert_eq!((r.mechanism, r.data), (&b"SCRAM-SHA-256"[..], Some(&b"abc"[..])));
    let auth = backend::parse(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0").expect("parses");
    let BackendMessage::Authentication(a) = auth else { panic!() };
    assert_eq!(a.sasl_mechanisms().collect::<Vec<_>>(), vec![&b"SCRAM-SHA-256"[..]]);
    assert_eq!(backend::parse(b'R', b"\0\0\0\0"), Ok(BackendMessage::Authentication(Authentication::Ok)));
}

#[test]
fn data_rows_are_iterated_without_copying() {
    // 3 columns: "1", NULL, "abc".
    let body = b"\0\x03\0\0\0\x011\xff\xff\xff\xff\0\0\0\x03abc";
    let BackendMessage::DataRow(row) = backend::parse(b'D', body).expect("parses") else { panic!() };
    let cols: Vec<_> = row.columns().collect();
    assert_eq!(cols, vec![Some(&b"1"[..]), None, Some(&b"abc"[..])]);
    assert!(std::ptr::eq(cols[2].expect("value").as_ptr(), body[15..].as_ptr()));
    assert!(backend::parse(b'D', b"\0\x02\0\0\0\x011").is_err());
}

#[test]
fn the_framer_skips_unwanted_bodies_and_hands_out_slices() {
    let mut stream = Vec::new();
    stream.extend(encode::message(b'T', b"\0\0"));
    stream.extend(encode::message(b'D', &[7u8; 300]));
    stream.extend(encode::command_complete("SELECT 1"));
    stream.extend(encode::ready_for_query(b'I'));
    for chunk in [1, 2, 3, 7, 64, 1000] {
        let mut f = Framer::new(Mode::Regular, 1 << 20);
        let mut c = Collect::default();
        for piece in stream.chunks(chunk) {
            f.feed(piece, &mut c).expect("frames");
        }
        assert!(f.at_boundary());
        assert_eq!(c.got.len(), 4, "chunk {chunk}");
        assert_eq!(c.got[1], (Kind::Message(b'D'), None));
        assert_eq!(c.got[2], (Kind::Message(b'C'), Some(b"SELECT 1\0".to_vec())));
        assert_eq!(c.got[3], (Kind::Message(b'Z'), Some(b"I".to_vec())));
    }
}

#[test]
fn the_framer_follows_the_encryption_handshake() {
    // Frontend: SSLRequest, then (after 'N') a StartupMessage, then a Query.
    let mut front = encode::ssl_request();
    front.extend(encode::startup_message(&[("user", "u")]));
    front.extend(encode::query("SELECT 1"));
    let got = frame_all(Mode::Startup, &front, 3).expect("frames");
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![Kind::Startup, Kind::Startup, Kind::Message(b'Q')]);
    // Backend: the one-byte answer, then regular messages.
    let mut f = Framer::new(Mode::EncryptionAnswer, 1024);
    let mut c = Collect::default();
    let mut back = vec![b'N'];
    back.extend(encode::message(b'R', &[0, 0, 0, 0]));
    f.feed(&back, &mut c).expect("frames");
    assert_eq!(c.got[0].0, Kind::EncryptionAnswer(b'N'));
    assert_eq!(c.got[1].0, Kind::Message(b'R'));
}

/// Messages recorded from real sessions (psql and pgbench through a socket recorder against
/// PostgreSQL 15.18): each file holds the raw bytes of one direction.
mod captured {
    use super::*;

    const PSQL_FRONTEND: &[u8] = include_bytes!("fixtures/psql_frontend.bin");
    const PSQL_BACKEND: &[u8] = include_bytes!("fixtures/psql_backend.bin");
    const PGBENCH_FRONTEND: &[u8] = include_bytes!("fixtures/pgbench_extended_frontend.bin");
    const PGBENCH_BACKEND: &[u8] = include_bytes!("fixtures/pgbench_extended_backend.bin");

    fn all_parse(mode: Mode, bytes: &[u8], backend_side: bool) -> Vec<u8> {
        let got = frame_all(mode, bytes, 7).expect("a real capture frames");
        let mut tags = Vec::new();
        for (kind, body) in got {
            let body = body.expect("all bodies wanted");
            match kind {
                Kind::Startup => {
                    startup::parse(&body).expect("startup parses");
                    tags.push(b'0');
                }
                Kind::Message(t) if backend_side => {
                    let m = backend::parse(t, &body).expect("backend message parses");
                    assert!(!matches!(m, BackendMessage::Unknown { .. }), "{}", t as char);
                    tags.push(t);
                }
                Kind::Message(t) => {
                    let m = frontend::parse(t, &body).expect("frontend message parses");
                    assert!(!matches!(m, FrontendMessage::Unknown { .. }), "{}", t as char);
                    tags.push(t);
                }
                Kind::EncryptionAnswer(_) => unreachable!(),
            }
        }
        tags
    }

    #[test]
    fn a_psql_session_frames_and_parses_both_ways() {
        let f = all_parse(Mode::Startup, PSQL_FRONTEND, false);
        assert_eq!(f.first(), Some(&b'0'));
        assert!(f.contains(&b'Q') && f.last() == Some(&b'X'), "{}", String::from_utf8_lossy(&f));
        let b = all_parse(Mode::Regular, PSQL_BACKEND, true);
        for t in [b'R', b'S', b'K', b'Z', b'T', b'D', b'C', b'E', b'G', b'H'] {
            assert!(b.contains(&t), "backend capture lacks {}", t as char);
        }
    }

    #[test]
    fn a_pgbench_extended_session_frames_and_parses_both_ways() {
        let f = all_parse(Mode::Startup, PGBENCH_FRONTEND, false);
        for t in [b'P', b'B', b'D', b'E', b'S'] {
            assert!(f.contains(&t), "frontend capture lacks {}", t as char);
        }
        let b = all_parse(Mode::Regular, PGBENCH_BACKEND, true);
        for t in [b'1', b'2', b'C', b'Z'] {
            assert!(b.contains(&t), "backend capture lacks {}", t as char);
        }
    }
}

fn arb_message() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300))
}

proptest! {
    /// Any sequence of well-framed messages, cut anywhere, frames back to the same messages.
    #[test]
    fn framing_round_trips_at_any_cut(msgs in proptest::collection::vec(arb_message(), 0..20), chunk in 1usize..64) {
        let mut stream = Vec::new();
        for (t, b) in &msgs {
            stream.extend(encode::message(*t, b));
        }
        let got = frame_all(Mode::Regular, &stream, chunk).expect("frames");
        let want: Vec<_> = msgs.iter().map(|(t, b)| (Kind::Message(*t), Some(b.clone()))).collect();
        prop_assert_eq!(got, want);
        let mut buf = BytesMut::from(&stream[..]);
        for (t, b) in &msgs {
            let f = decode_backend(&mut buf).expect("ok").expect("whole");
            prop_assert_eq!(f.tag, Some(*t));
            prop_assert_eq!(&f.body[..], &b[..]);
        }
        prop_assert!(buf.is_empty());
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), t in any::<u8>()) {
        let _ = frame_all(Mode::Startup, &bytes, 5);
        let _ = frame_all(Mode::Regular, &bytes, 3);
        let _ = startup::parse(&bytes);
        let _ = frontend::parse(t, &bytes);
        if let Ok(BackendMessage::DataRow(r)) = backend::parse(t, &bytes) {
            let _ = r.columns().count();
        }
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(f)) = decode_frontend(&mut buf, false) {
            let _ = f.frontend();
            let _ = f.backend();
        }
    }

    /// Parameters survive a StartupMessage round trip.
    #[test]
    fn startup_parameters_round_trip(user in "[a-z]{1,20}", db in "[a-z_]{1,30}") {
        let pkt = encode::startup_message(&[("user", &user), ("database", &db)]);
        let Ok(StartupPacket::Startup { params, .. }) = startup::parse(&pkt[4..]) else { panic!() };
        prop_assert_eq!(params.user(), Some(user.as_bytes()));
        prop_assert_eq!(params.database(), Some(db.as_bytes()));
    }
}
