//! Property tests: arbitrary bytes never panic the scanner or the request decoder; encoded
//! commands round-trip; splitting a valid stream anywhere gives the same frames.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::request::{encode_command, Request};
use super::scan::{Scanner, REPLY_LIMITS, REQUEST_LIMITS};

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        for limits in [REQUEST_LIMITS, REPLY_LIMITS] {
            let mut s = Scanner::new(limits);
            let mut buf = &data[..];
            while let Ok(Some(n)) = s.scan(buf) {
                prop_assert!(n > 0 && n <= buf.len());
                let _ = Request::decode(&Bytes::copy_from_slice(&buf[..n]));
                buf = &buf[n..];
            }
        }
    }

    #[test]
    fn commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)) {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut out = BytesMut::new();
        encode_command(&mut out, &refs);
        let frame = out.freeze();
        prop_assert_eq!(Scanner::new(REQUEST_LIMITS).scan(&frame), Ok(Some(frame.len())));
        let req = Request::decode(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<&[u8]> = req.args.iter().map(|b| &b[..]).collect();
        prop_assert_eq!(got, refs);
    }

    #[test]
    fn feeding_in_pieces_finds_the_same_frames(cuts in proptest::collection::vec(1usize..30, 1..20)) {
        let mut stream = BytesMut::new();
        for i in 0..5 {
            encode_command(&mut stream, &[b"SET", format!("key{i}").as_bytes(), b"value"]);
        }
        let whole = stream.freeze();
        let mut s = Scanner::new(REQUEST_LIMITS);
        let (mut start, mut avail, mut frames) = (0usize, 0usize, 0usize);
        let mut cut = cuts.iter().cycle();
        while start < whole.len() {
            avail = (avail + cut.next().copied().unwrap_or(1)).min(whole.len());
            while let Ok(Some(n)) = s.scan(&whole[start..avail]) {
                start += n;
                frames += 1;
            }
        }
        prop_assert_eq!(frames, 5);
    }
}
