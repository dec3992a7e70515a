//! Fuzz target: the RESP scanner (request and reply limits), the request decoder and the reply
//! helpers must never panic, and a frame the scanner accepts must lie within the input.
#![no_main]

use bytes::Bytes;
use legate_codecs::redis::{reply, Request, Scanner, REPLY_LIMITS, REQUEST_LIMITS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [REQUEST_LIMITS, REPLY_LIMITS] {
        let mut scanner = Scanner::new(limits);
        let mut rest = data;
        while let Ok(Some(n)) = scanner.scan(rest) {
            assert!(n > 0 && n <= rest.len());
            let frame = Bytes::copy_from_slice(&rest[..n]);
            let _ = Request::decode(&frame);
            let _ = reply::kind(&frame);
            let _ = reply::integer_value(&frame);
            let _ = reply::decode_value(&frame);
            rest = &rest[n..];
        }
    }
});
