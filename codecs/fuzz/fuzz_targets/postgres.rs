//! Arbitrary bytes through every PostgreSQL decoder: the streaming framer in each mode, cut
//! into chunks of a size taken from the input, each framed body through the message parsers,
//! and the `BytesMut` decoders. Nothing may panic, and the framer must deliver exactly what
//! the `BytesMut` decoder does.
#![no_main]

use bytes::BytesMut;
use legate_codecs::postgres::framer::{Body, Flow, Framer, Handler, Kind, Mode, Msg};
use legate_codecs::postgres::{backend, decode_backend, decode_frontend, frontend, startup};
use libfuzzer_sys::fuzz_target;

struct Sink {
    bodies: Vec<(Option<u8>, Vec<u8>)>,
}

impl Handler for Sink {
    fn wants_body(&mut self, _kind: Kind, _len: usize) -> bool {
        true
    }

    fn on_message(&mut self, m: Msg<'_>) -> Flow {
        if let Body::Whole(b) = m.body {
            match m.kind {
                Kind::Startup => {
                    let _ = startup::parse(b);
                    self.bodies.push((None, b.to_vec()));
                }
                Kind::Message(t) => {
                    let _ = frontend::parse(t, b);
                    if let Ok(backend::BackendMessage::DataRow(r)) = backend::parse(t, b) {
                        let _ = r.columns().count();
                    }
                    self.bodies.push((Some(t), b.to_vec()));
                }
                Kind::EncryptionAnswer(_) => {}
            }
        }
        Flow::Continue
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let chunk = usize::from(first % 64) + 1;
    for mode in [Mode::Startup, Mode::Regular, Mode::EncryptionAnswer] {
        let mut f = Framer::new(mode, 1 << 20);
        let mut sink = Sink { bodies: Vec::new() };
        for piece in rest.chunks(chunk) {
            if f.feed(piece, &mut sink).is_err() {
                break;
            }
        }
        if mode == Mode::Regular {
            // The BytesMut decoder frames the same messages.
            let mut buf = BytesMut::from(rest);
            for (tag, body) in &sink.bodies {
                let frame = decode_backend(&mut buf).expect("framed once").expect("whole");
                assert_eq!(frame.tag, *tag);
                assert_eq!(&frame.body[..], &body[..]);
            }
        }
    }
    let mut buf = BytesMut::from(rest);
    while let Ok(Some(frame)) = decode_frontend(&mut buf, first & 1 == 0) {
        let _ = frame.frontend();
        let _ = frame.backend();
    }
});
