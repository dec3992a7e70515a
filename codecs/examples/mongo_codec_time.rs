//! Codec-only time per command on recorded pymongo traffic (the fixture both directions):
//! frame, parse and read the request or reply facts of every message, many times over.
//!
//!     cargo run --release -p legate-codecs --example mongo_codec_time [iterations]

use std::hint::black_box;
use std::time::Instant;

use legate_codecs::mongo::{self, facts, Message};

const CLIENT: &[u8] = include_bytes!("../tests/fixtures/mongo/client_to_server.bin");
const SERVER: &[u8] = include_bytes!("../tests/fixtures/mongo/server_to_client.bin");

fn run(mut buf: &[u8], request: bool) -> usize {
    let mut n = 0;
    while let Ok(Some(h)) = mongo::split_message(buf) {
        if let Ok(Message::Msg(m)) = Message::parse(&h, &buf[..h.len()]) {
            if request {
                black_box(facts::RequestFacts::from_msg(&m));
            } else {
                black_box(facts::ReplyFacts::from_msg(&m));
            }
        }
        buf = &buf[h.len()..];
        n += 1;
    }
    n
}

fn main() {
    let iters: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    for (name, bytes, request) in [("requests", CLIENT, true), ("replies", SERVER, false)] {
        let per = run(bytes, request);
        let t = Instant::now();
        for _ in 0..iters {
            black_box(run(black_box(bytes), request));
        }
        let ns = t.elapsed().as_nanos() as f64 / (iters * per) as f64;
        println!("{name}: {per} messages ({} bytes) x {iters}: {ns:.0} ns per message", bytes.len());
    }
}
