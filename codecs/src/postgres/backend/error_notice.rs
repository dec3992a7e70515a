//! ErrorResponse and NoticeResponse bodies: `(code byte, C string)` fields ending with a zero
//! byte (protocol-error-fields: `S` localized severity, `V` non-localized severity (9.6+),
//! `C` SQLSTATE, `M` message, ...).

use crate::postgres::reader::Reader;
use crate::postgres::Error;

/// The severity of an error or notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Panic,
    Warning,
    Notice,
    Debug,
    Info,
    Log,
    /// No severity field, or one this crate does not know (a localized `S` without `V`).
    Unknown,
}

impl Severity {
    fn from_word(w: &[u8]) -> Severity {
        match w {
            b"ERROR" => Severity::Error,
            b"FATAL" => Severity::Fatal,
            b"PANIC" => Severity::Panic,
            b"WARNING" => Severity::Warning,
            b"NOTICE" => Severity::Notice,
            b"DEBUG" => Severity::Debug,
            b"INFO" => Severity::Info,
            b"LOG" => Severity::Log,
            _ => Severity::Unknown,
        }
    }
}

/// The validated fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    raw: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(super) fn parse(body: &'a [u8], what: &'static str) -> Result<Fields<'a>, Error> {
        let mut r = Reader::new(body, what);
        loop {
            if r.u8()? == 0 {
                break;
            }
            r.cstr()?;
        }
        r.end()?;
        Ok(Fields { raw: body })
    }

    /// `(code, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> {
        let mut r = Reader::new(self.raw, "fields");
        std::iter::from_fn(move || {
            let code = r.u8().ok().filter(|c| *c != 0)?;
            Some((code, r.cstr().ok()?))
        })
    }

    pub fn get(&self, code: u8) -> Option<&'a [u8]> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The severity: the non-localized `V` field when present, else `S` (which is English
    /// unless the server's `lc_messages` says otherwise).
    pub fn severity(&self) -> Severity {
        match self.get(b'V').or_else(|| self.get(b'S')) {
            Some(w) => Severity::from_word(w),
            None => Severity::Unknown,
        }
    }

    /// The SQLSTATE code (`C`).
    pub fn code(&self) -> Option<&'a [u8]> {
        self.get(b'C')
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&'a [u8]> {
        self.get(b'M')
    }
}
