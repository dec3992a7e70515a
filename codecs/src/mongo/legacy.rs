//! The legacy write and cursor opcodes (removed in MongoDB 6.0, still counted by Envoy):
//! OP_UPDATE 2001, OP_INSERT 2002, OP_GET_MORE 2005, OP_DELETE 2006, OP_KILL_CURSORS 2007.

use bson::RawDocument;

use super::reader::Reader;
use super::MessageError;

/// `int32 ZERO, cstring fullCollectionName, int32 flags, document selector, document update`.
#[derive(Debug, Clone, Copy)]
pub struct OpUpdate<'a> {
    pub full_collection_name: &'a str,
    pub flags: i32,
    pub selector: &'a RawDocument,
    pub update: &'a RawDocument,
}

impl<'a> OpUpdate<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpUpdate<'a>, MessageError> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = r.cstring("fullCollectionName")?;
        let flags = r.i32("OP_UPDATE flags")?;
        let selector = r.document("selector")?;
        let update = r.document("update")?;
        Ok(OpUpdate { full_collection_name, flags, selector, update })
    }
}

/// `int32 flags, cstring fullCollectionName, documents`.
#[derive(Debug, Clone, Copy)]
pub struct OpInsert<'a> {
    pub flags: i32,
    pub full_collection_name: &'a str,
    pub document_count: u32,
}

impl<'a> OpInsert<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpInsert<'a>, MessageError> {
        let mut r = Reader::new(body);
        let flags = r.i32("OP_INSERT flags")?;
        let full_collection_name = r.cstring("fullCollectionName")?;
        let mut document_count = 0;
        while !r.is_empty() {
            r.document("inserted document")?;
            document_count += 1;
        }
        Ok(OpInsert { flags, full_collection_name, document_count })
    }
}

/// `int32 ZERO, cstring fullCollectionName, int32 flags, document selector`.
#[derive(Debug, Clone, Copy)]
pub struct OpDelete<'a> {
    pub full_collection_name: &'a str,
    pub flags: i32,
    pub selector: &'a RawDocument,
}

impl<'a> OpDelete<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpDelete<'a>, MessageError> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = r.cstring("fullCollectionName")?;
        let flags = r.i32("OP_DELETE flags")?;
        let selector = r.document("selector")?;
        Ok(OpDelete { full_collection_name, flags, selector })
    }
}

/// `int32 ZERO, cstring fullCollectionName, int32 numberToReturn, int64 cursorID`.
#[derive(Debug, Clone, Copy)]
pub struct OpGetMore<'a> {
    pub full_collection_name: &'a str,
    pub number_to_return: i32,
    pub cursor_id: i64,
}

impl<'a> OpGetMore<'a> {
    pub fn parse(body: &'a [u8]) -> Result<OpGetMore<'a>, MessageError> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let full_collection_name = r.cstring("fullCollectionName")?;
        let number_to_return = r.i32("numberToReturn")?;
        let cursor_id = r.i64("cursorID")?;
        Ok(OpGetMore { full_collection_name, number_to_return, cursor_id })
    }
}

/// `int32 ZERO, int32 numberOfCursorIDs, int64* cursorIDs`.
#[derive(Debug, Clone, Copy)]
pub struct OpKillCursors {
    pub number_of_cursor_ids: i32,
}

impl OpKillCursors {
    pub fn parse(body: &[u8]) -> Result<OpKillCursors, MessageError> {
        let mut r = Reader::new(body);
        r.i32("ZERO")?;
        let number_of_cursor_ids = r.i32("numberOfCursorIDs")?;
        let n = usize::try_from(number_of_cursor_ids).map_err(|_| MessageError::Overrun("cursorIDs"))?;
        r.bytes(n.checked_mul(8).ok_or(MessageError::Overrun("cursorIDs"))?, "cursorIDs")?;
        Ok(OpKillCursors { number_of_cursor_ids })
    }
}
