//! Frames, parses and reads the facts of arbitrary bytes as a MongoDB stream; must never panic.
#![no_main]

use legate_codecs::mongo::{self, facts, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let Ok(Some(h)) = mongo::split_message(buf) {
        if let Ok(m) = Message::parse(&h, &buf[..h.len()]) {
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
});
