//! A bounds-checked cursor over a message body: every read checks before it slices.

use super::Error;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { buf, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Error> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A count field (Int16) that must not be negative.
    pub(crate) fn count(&mut self) -> Result<u16, Error> {
        u16::try_from(self.i16()?).map_err(|_| Error::Malformed(self.what, "negative count"))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Error> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string (without its NUL). Bytes, not `str`: PostgreSQL strings are in
    /// the client encoding, which need not be UTF-8.
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], Error> {
        let Some(nul) = self.buf.iter().position(|b| *b == 0) else {
            return Err(Error::Unterminated(self.what));
        };
        let s = &self.buf[..nul];
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    /// A value prefixed by an Int32 length, where -1 means NULL.
    pub(crate) fn nullable(&mut self) -> Result<Option<&'a [u8]>, Error> {
        let n = self.i32()?;
        match n {
            -1 => Ok(None),
            n if n < -1 => Err(Error::Malformed(self.what, "negative value length")),
            n => self.bytes(n as usize).map(Some),
        }
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Fails if anything is left.
    pub(crate) fn end(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes(self.what, self.buf.len()))
        }
    }
}
