//! OP_QUERY (opcode 2004): `int32 flags, cstring fullCollectionName, int32 numberToSkip,
//! int32 numberToReturn, document query, [document returnFieldsSelector]`. Drivers still send
//! the first `hello`/`isMaster` of a connection this way.

use bson::RawDocument;

use super::reader::Reader;
use super::MessageError;

/// OP_QUERY flag bits Envoy counts.
pub const TAILABLE_CURSOR: i32 = 1 << 1;
pub const NO_CURSOR_TIMEOUT: i32 = 1 << 4;
pub const AWAIT_DATA: i32 = 1 << 5;
pub const EXHAUST: i32 = 1 << 6;

#[derive(Debug, Clone, Copy)]
pub struct OpQuery<'a> {
    pub flags: i32,
    pub full_collection_name: &'a str,
    pub number_to_skip: i32,
    pub number_to_return: i32,
    pub query: &'a RawDocument,
    pub fields: Option<&'a RawDocument>,
}

impl<'a> OpQuery<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpQuery<'a>, MessageError> {
        let mut r = Reader::new(body);
        let flags = r.i32("OP_QUERY flags")?;
        let full_collection_name = r.cstring("fullCollectionName")?;
        let number_to_skip = r.i32("numberToSkip")?;
        let number_to_return = r.i32("numberToReturn")?;
        let query = r.document("query")?;
        let fields = if r.is_empty() { None } else { Some(r.document("returnFieldsSelector")?) };
        Ok(OpQuery { flags, full_collection_name, number_to_skip, number_to_return, query, fields })
    }
}
