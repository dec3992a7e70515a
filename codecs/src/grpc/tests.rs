use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;

fn body(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in messages {
        encode_message(&mut out, false, m);
    }
    out.to_vec()
}

#[test]
fn counts_whole_messages_in_one_chunk() {
    let b = body(&[b"ab", b"", b"hello"]);
    let mut c = MessageCounter::new();
    assert_eq!(c.feed(&b), 3);
    assert_eq!(c.count(), 3);
    assert!(c.at_boundary());
}

#[test]
fn counts_a_message_when_its_first_byte_arrives() {
    let b = body(&[b"abcdef"]);
    let mut c = MessageCounter::new();
    assert_eq!(c.feed(&b[..1]), 1);
    assert!(!c.at_boundary());
    assert_eq!(c.feed(&b[1..7]), 0);
    assert_eq!(c.feed(&b[7..]), 0);
    assert!(c.at_boundary());
    assert_eq!(c.feed(&[]), 0);
}

#[test]
fn zero_length_messages_end_at_their_prefix() {
    let b = body(&[b"", b"", b""]);
    let mut c = MessageCounter::new();
    for byte in &b {
        c.feed(std::slice::from_ref(byte));
    }
    assert_eq!(c.count(), 3);
    assert!(c.at_boundary());
}

#[test]
fn unvalidated_flag_byte_counts_like_envoy() {
    // Envoy's FrameInspector counts `xxxxxxx` as one message of 0x78787878 bytes.
    let mut c = MessageCounter::new();
    assert_eq!(c.feed(b"xxxxxxx"), 1);
    assert!(!c.at_boundary());
}

#[test]
fn decode_waits_for_the_whole_message_and_bounds_the_length() {
    let mut buf = BytesMut::from(&body(&[b"hello"])[..4]);
    assert_eq!(decode_message(&mut buf, 100), Ok(None));
    buf = BytesMut::from(&body(&[b"hello"])[..8]);
    assert_eq!(decode_message(&mut buf, 100), Ok(None));
    buf = BytesMut::from(&body(&[b"hello", b"x"])[..]);
    let m = decode_message(&mut buf, 100).expect("ok").expect("message");
    assert_eq!((m.compressed, &m.data[..]), (false, &b"hello"[..]));
    assert_eq!(buf.len(), 6);
    let mut big = BytesMut::from(&[0u8, 0, 0, 1, 0][..]);
    assert_eq!(decode_message(&mut big, 255), Err(Error::TooLarge { len: 256, max: 255 }));
    let mut bad = BytesMut::from(&[2u8, 0, 0, 0, 0][..]);
    assert_eq!(decode_message(&mut bad, 255), Err(Error::InvalidFlags(2)));
    let mut compressed = BytesMut::new();
    encode_message(&mut compressed, true, b"z");
    assert!(decode_message(&mut compressed, 10).expect("ok").expect("message").compressed);
}

#[test]
fn grpc_timeout_units() {
    assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_timeout(b"2M"), Some(Duration::from_secs(120)));
    assert_eq!(parse_timeout(b"3S"), Some(Duration::from_secs(3)));
    assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
    assert_eq!(parse_timeout(b"7u"), Some(Duration::from_micros(7)));
    assert_eq!(parse_timeout(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
    assert_eq!(parse_timeout(b"0S"), Some(Duration::ZERO));
    assert_eq!(parse_timeout(b"99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
}

#[test]
fn grpc_timeout_rejects_malformed_values() {
    for bad in [&b""[..], b"S", b"10", b"10s", b"123456789S", b"-1S", b"1.5S", b" 1S", b"1 S", b"1SS"] {
        assert_eq!(parse_timeout(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

proptest! {
    #[test]
    fn arbitrary_chunking_gives_the_same_count(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let b = body(&refs);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(b.len() + 1)).collect();
        points.sort_unstable();
        let mut c = MessageCounter::new();
        let mut start = 0;
        let mut sum = 0;
        for p in points.into_iter().chain([b.len()]) {
            sum += c.feed(&b[start..p]);
            start = p;
        }
        prop_assert_eq!(c.count(), messages.len() as u64);
        prop_assert_eq!(sum, messages.len() as u64);
        prop_assert!(c.at_boundary());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200), split in any::<prop::sample::Index>()) {
        let mut c = MessageCounter::new();
        let at = split.index(data.len() + 1);
        c.feed(&data[..at]);
        c.feed(&data[at..]);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = decode_message(&mut buf, 64) {}
    }

    #[test]
    fn timeout_parsing_never_panics(s in "\\PC{0,12}") {
        let _ = parse_timeout(s.as_bytes());
    }
}
