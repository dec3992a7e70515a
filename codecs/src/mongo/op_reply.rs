//! OP_REPLY (opcode 1): `int32 responseFlags, int64 cursorID, int32 startingFrom,
//! int32 numberReturned, documents`.

use super::reader::Reader;
use super::MessageError;

pub const CURSOR_NOT_FOUND: i32 = 1 << 0;
pub const QUERY_FAILURE: i32 = 1 << 1;

#[derive(Debug, Clone, Copy)]
pub struct OpReply<'a> {
    pub flags: i32,
    pub cursor_id: i64,
    pub starting_from: i32,
    pub number_returned: i32,
    /// The documents, back to back, each bounds-checked.
    pub documents: &'a [u8],
    /// How many documents there are (counted, not trusted from `number_returned`).
    pub document_count: u32,
}

impl<'a> OpReply<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpReply<'a>, MessageError> {
        let mut r = Reader::new(body);
        let flags = r.i32("responseFlags")?;
        let cursor_id = r.i64("cursorID")?;
        let starting_from = r.i32("startingFrom")?;
        let number_returned = r.i32("numberReturned")?;
        let documents = r.rest();
        let mut count = 0u32;
        while !r.is_empty() {
            r.document("reply document")?;
            count += 1;
        }
        Ok(OpReply { flags, cursor_id, starting_from, number_returned, documents, document_count: count })
    }

    /// The first document (a command's reply).
    pub fn first(&self) -> Option<&'a bson::RawDocument> {
        Reader::new(self.documents).document("reply document").ok()
    }
}
