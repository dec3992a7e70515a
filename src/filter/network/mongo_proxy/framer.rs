//! Frames one direction of a MongoDB connection from the chunks the pump shows an observer.
//! A message that lies whole inside a chunk is read in place; only a message split across
//! chunks is copied, into a per-direction buffer bounded by the 48 MB message maximum.

use legate_codecs::mongo::{split_message, FrameError, Header, HEADER_LEN};

/// Capacity kept after a large split message (a bigger buffer is given back).
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
pub struct Framer {
    carry: Vec<u8>,
}

impl Framer {
    /// Calls `f` with every whole message completed by `data`. An error means the stream can
    /// no longer be framed (the caller stops decoding this connection).
    pub fn feed(&mut self, mut data: &[u8], f: &mut impl FnMut(&Header, &[u8])) -> Result<(), FrameError> {
        if !self.carry.is_empty() {
            if self.carry.len() < HEADER_LEN {
                let take = (HEADER_LEN - self.carry.len()).min(data.len());
                self.carry.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            let Some(h) = Header::parse(&self.carry)? else { return Ok(()) };
            let take = (h.len() - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < h.len() {
                return Ok(());
            }
            f(&h, &self.carry);
            self.carry.clear();
            if self.carry.capacity() > KEEP_CAPACITY {
                self.carry = Vec::new();
            }
        }
        while let Some(h) = split_message(data)? {
            f(&h, &data[..h.len()]);
            data = &data[h.len()..];
        }
        self.carry.extend_from_slice(data);
        Ok(())
    }

    /// Drops what is buffered (decoding stopped).
    pub fn clear(&mut self) {
        self.carry = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u8) -> Vec<u8> {
        let mut m =
            Header { message_length: 20, request_id: i32::from(n), response_to: 0, op_code: 2013 }.encode().to_vec();
        m.extend_from_slice(&[n; 4]);
        m
    }

    #[test]
    fn messages_split_at_every_byte_are_framed_once_each() {
        let stream: Vec<u8> = [msg(1), msg(2), msg(3)].concat();
        for cut in 0..stream.len() {
            for cut2 in cut..stream.len() {
                let mut fr = Framer::default();
                let mut seen = Vec::new();
                let mut f = |h: &Header, b: &[u8]| seen.push((h.request_id, b.len()));
                fr.feed(&stream[..cut], &mut f).expect("frames");
                fr.feed(&stream[cut..cut2], &mut f).expect("frames");
                fr.feed(&stream[cut2..], &mut f).expect("frames");
                assert_eq!(seen, vec![(1, 20), (2, 20), (3, 20)]);
            }
        }
    }

    #[test]
    fn a_bad_length_in_a_split_header_is_an_error() {
        let mut fr = Framer::default();
        let mut f = |_: &Header, _: &[u8]| {};
        let bad = Header { message_length: i32::MAX, request_id: 0, response_to: 0, op_code: 2013 }.encode();
        fr.feed(&bad[..10], &mut f).expect("needs more");
        assert!(fr.feed(&bad[10..], &mut f).is_err());
    }
}
