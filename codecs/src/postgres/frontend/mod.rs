//! Frontend (client → server) messages after the startup packet.

mod auth;

pub use auth::{sasl_initial_response, SaslInitialResponse};

use super::reader::Reader;
use super::Error;

/// Type bytes of the frontend messages.
pub mod tag {
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share `p`; which one
    /// it is depends on the Authentication request that came before.
    pub const AUTH_RESPONSE: u8 = b'p';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
}

/// Whether `t` is a frontend type byte this module knows.
pub fn is_known(t: u8) -> bool {
    b"BCdcfDEHFPpQSX".contains(&t)
}

/// `S` (prepared statement) or `P` (portal) in Describe and Close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

/// One frontend message; strings borrow from the body (they are in the client encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    Query {
        sql: &'a [u8],
    },
    Parse {
        statement: &'a [u8],
        sql: &'a [u8],
        param_types: u16,
    },
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
        params: u16,
        result_formats: u16,
    },
    Describe {
        target: Target,
        name: &'a [u8],
    },
    Execute {
        portal: &'a [u8],
        max_rows: i32,
    },
    Sync,
    Flush,
    Close {
        target: Target,
        name: &'a [u8],
    },
    Terminate,
    CopyData(&'a [u8]),
    CopyDone,
    CopyFail {
        message: &'a [u8],
    },
    /// PasswordMessage / SASLInitialResponse / SASLResponse / GSSResponse: the raw body; see
    /// [`sasl_initial_response`] to read it as a SASLInitialResponse.
    AuthResponse(&'a [u8]),
    FunctionCall {
        oid: u32,
    },
    Unknown {
        tag: u8,
        body: &'a [u8],
    },
}

/// Parses a frontend message body (without its type byte and length).
pub fn parse(t: u8, body: &[u8]) -> Result<FrontendMessage<'_>, Error> {
    use FrontendMessage as M;
    Ok(match t {
        tag::QUERY => {
            let mut r = Reader::new(body, "Query");
            let sql = r.cstr()?;
            r.end()?;
            M::Query { sql }
        }
        tag::PARSE => {
            let mut r = Reader::new(body, "Parse");
            let statement = r.cstr()?;
            let sql = r.cstr()?;
            let param_types = r.count()?;
            r.bytes(usize::from(param_types) * 4)?;
            r.end()?;
            M::Parse { statement, sql, param_types }
        }
        tag::BIND => parse_bind(body)?,
        tag::DESCRIBE | tag::CLOSE => {
            let what = if t == tag::DESCRIBE { "Describe" } else { "Close" };
            let mut r = Reader::new(body, what);
            let target = match r.u8()? {
                b'S' => Target::Statement,
                b'P' => Target::Portal,
                _ => return Err(Error::Malformed(what, "target must be 'S' or 'P'")),
            };
            let name = r.cstr()?;
            r.end()?;
            if t == tag::DESCRIBE {
                M::Describe { target, name }
            } else {
                M::Close { target, name }
            }
        }
        tag::EXECUTE => {
            let mut r = Reader::new(body, "Execute");
            let portal = r.cstr()?;
            let max_rows = r.i32()?;
            r.end()?;
            M::Execute { portal, max_rows }
        }
        tag::SYNC => empty(body, "Sync", M::Sync)?,
        tag::FLUSH => empty(body, "Flush", M::Flush)?,
        tag::TERMINATE => empty(body, "Terminate", M::Terminate)?,
        tag::COPY_DONE => empty(body, "CopyDone", M::CopyDone)?,
        tag::COPY_DATA => M::CopyData(body),
        tag::COPY_FAIL => {
            let mut r = Reader::new(body, "CopyFail");
            let message = r.cstr()?;
            r.end()?;
            M::CopyFail { message }
        }
        tag::AUTH_RESPONSE => M::AuthResponse(body),
        tag::FUNCTION_CALL => {
            let mut r = Reader::new(body, "FunctionCall");
            M::FunctionCall { oid: r.u32()? }
        }
        t => M::Unknown { tag: t, body },
    })
}

fn empty<'a>(body: &[u8], what: &'static str, m: FrontendMessage<'a>) -> Result<FrontendMessage<'a>, Error> {
    if body.is_empty() {
        Ok(m)
    } else {
        Err(Error::TrailingBytes(what, body.len()))
    }
}

fn parse_bind(body: &[u8]) -> Result<FrontendMessage<'_>, Error> {
    let mut r = Reader::new(body, "Bind");
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let formats = r.count()?;
    r.bytes(usize::from(formats) * 2)?;
    let params = r.count()?;
    for _ in 0..params {
        r.nullable()?;
    }
    let result_formats = r.count()?;
    r.bytes(usize::from(result_formats) * 2)?;
    r.end()?;
    Ok(FrontendMessage::Bind { portal, statement, params, result_formats })
}
