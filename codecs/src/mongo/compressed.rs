//! OP_COMPRESSED (opcode 2012): `int32 originalOpcode, int32 uncompressedSize, uint8
//! compressorId, compressed bytes`. Legate reads the header and counts the original opcode; it
//! does not decompress (see the README: drivers only compress after both sides agreed to).

use super::reader::Reader;
use super::MessageError;

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
}
