//! A bounds-checked cursor over a message body: int32/int64, C strings and BSON documents,
//! each checked against what is left before it is read.

use bson::RawDocument;

use super::MessageError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MessageError> {
        if n > self.buf.len() {
            return Err(MessageError::Overrun(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, MessageError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, MessageError> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, MessageError> {
        Ok(self.i32(what)? as u32)
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, MessageError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A NUL-terminated UTF-8 string (collection names, section identifiers).
    pub fn cstring(&mut self, what: &'static str) -> Result<&'a str, MessageError> {
        let nul = self.buf.iter().position(|&b| b == 0).ok_or(MessageError::Overrun(what))?;
        let s = std::str::from_utf8(&self.buf[..nul]).map_err(|_| MessageError::InvalidBson(what))?;
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    /// One BSON document: its declared length is checked against the bytes left and its
    /// terminating NUL is checked. Its elements are walked when facts are read from it (one
    /// pass; a broken element makes those facts `valid: false`), never here.
    pub fn document(&mut self, what: &'static str) -> Result<&'a RawDocument, MessageError> {
        let len = self.buf.get(..4).ok_or(MessageError::Overrun(what))?;
        let len = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        if len < 5 {
            return Err(MessageError::InvalidBson(what));
        }
        let bytes = self.bytes(len as usize, what)?;
        RawDocument::from_bytes(bytes).map_err(|_| MessageError::InvalidBson(what))
    }
}
