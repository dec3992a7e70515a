//! OP_COMPRESSED (opcode 2012): `int32 originalOpcode, int32 uncompressedSize, uint8
//! compressorId, compressed bytes`. Snappy (1), zlib (2) and zstd (3) bodies are decompressed
//! into a whole message of the original opcode, so it can be read like any other. Output is
//! bounded by the declared `uncompressedSize` (itself bounded by the 48 MB message maximum):
//! a body that inflates past it is an error, not an allocation.

use std::io::Read;

use super::reader::Reader;
use super::{Header, MessageError, HEADER_LEN, MAX_MESSAGE_LEN};

pub const NOOP: u8 = 0;
pub const SNAPPY: u8 = 1;
pub const ZLIB: u8 = 2;
pub const ZSTD: u8 = 3;

#[derive(Debug, Clone, Copy)]
pub struct OpCompressed<'a> {
    pub original_op_code: i32,
    pub uncompressed_size: i32,
    /// 0 noop, 1 snappy, 2 zlib, 3 zstd.
    pub compressor_id: u8,
    pub compressed: &'a [u8],
}

impl<'a> OpCompressed<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpCompressed<'a>, MessageError> {
        let mut r = Reader::new(body);
        let original_op_code = r.i32("originalOpcode")?;
        let uncompressed_size = r.i32("uncompressedSize")?;
        let compressor_id = r.u8("compressorId")?;
        Ok(OpCompressed { original_op_code, uncompressed_size, compressor_id, compressed: r.rest() })
    }

    /// Rebuilds the original message (its header with `header`'s ids, then the decompressed
    /// body) into `out`. `Ok(None)` for a compressor id the spec does not define.
    pub fn decompress(&self, header: &Header, out: &mut Vec<u8>) -> Result<Option<Header>, MessageError> {
        // Spec: the original message is never itself OP_COMPRESSED.
        if self.original_op_code == 2012 {
            return Err(MessageError::Compressed("nested OP_COMPRESSED"));
        }
        let size = usize::try_from(self.uncompressed_size)
            .ok()
            .filter(|s| *s <= MAX_MESSAGE_LEN - HEADER_LEN)
            .ok_or(MessageError::Compressed("uncompressedSize out of range"))?;
        let original = Header {
            message_length: (HEADER_LEN + size) as i32,
            request_id: header.request_id,
            response_to: header.response_to,
            op_code: self.original_op_code,
        };
        out.clear();
        out.extend_from_slice(&original.encode());
        match self.compressor_id {
            NOOP => out.extend_from_slice(self.compressed),
            SNAPPY => {
                let len = snap::raw::decompress_len(self.compressed).map_err(|_| MessageError::Compressed("snappy"))?;
                if len != size {
                    return Err(MessageError::Compressed("snappy length differs from uncompressedSize"));
                }
                out.resize(HEADER_LEN + size, 0);
                snap::raw::Decoder::new()
                    .decompress(self.compressed, &mut out[HEADER_LEN..])
                    .map_err(|_| MessageError::Compressed("snappy"))?;
            }
            ZLIB => {
                // Read at most one byte more than declared, so a lying size is caught
                // without inflating an unbounded stream.
                let mut d = flate2::read::ZlibDecoder::new(self.compressed).take(size as u64 + 1);
                d.read_to_end(out).map_err(|_| MessageError::Compressed("zlib"))?;
            }
            ZSTD => {
                // The window a frame may ask for is bounded too (ruzstd grows its buffer as it
                // decodes; a message never needs a window larger than the message maximum).
                let d = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                    self.compressed,
                    MAX_MESSAGE_LEN as u64,
                )
                .map_err(|_| MessageError::Compressed("zstd"))?;
                d.take(size as u64 + 1).read_to_end(out).map_err(|_| MessageError::Compressed("zstd"))?;
            }
            _ => return Ok(None),
        }
        if out.len() != HEADER_LEN + size {
            return Err(MessageError::Compressed("decompressed length differs from uncompressedSize"));
        }
        Ok(Some(original))
    }
}
