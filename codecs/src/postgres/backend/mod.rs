//! Backend (server → client) messages.

mod auth;
mod command_complete;
mod error_notice;
mod rows;

pub use auth::Authentication;
pub use command_complete::{CommandKind, CommandTag};
pub use error_notice::{Fields, Severity};
pub use rows::{DataRow, Field, RowDescription};

use super::reader::Reader;
use super::Error;

/// Type bytes of the backend messages.
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Whether `t` is a backend type byte this module knows.
pub fn is_known(t: u8) -> bool {
    b"RK23CdcGHWDIEVvnNAtS1sZT".contains(&t)
}

/// ReadyForQuery's transaction status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InBlock,
    /// `E`: in a failed transaction block (queries rejected until it ends).
    Failed,
}

impl TransactionStatus {
    pub fn from_byte(b: u8) -> Option<TransactionStatus> {
        match b {
            b'I' => Some(TransactionStatus::Idle),
            b'T' => Some(TransactionStatus::InBlock),
            b'E' => Some(TransactionStatus::Failed),
            _ => None,
        }
    }
}

/// The copy format in Copy{In,Out,Both}Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse {
    /// 0 text, 1 binary.
    pub format: u8,
    pub columns: u16,
}

/// One backend message; everything borrows from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    Authentication(Authentication<'a>),
    ParameterStatus {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// The key is 4 bytes up to protocol 3.0 and up to 256 bytes from 3.2.
    BackendKeyData {
        pid: u32,
        key: &'a [u8],
    },
    ReadyForQuery(TransactionStatus),
    RowDescription(RowDescription<'a>),
    DataRow(DataRow<'a>),
    CommandComplete(CommandTag<'a>),
    ErrorResponse(Fields<'a>),
    NoticeResponse(Fields<'a>),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    EmptyQueryResponse,
    CopyInResponse(CopyResponse),
    CopyOutResponse(CopyResponse),
    CopyBothResponse(CopyResponse),
    CopyData(&'a [u8]),
    CopyDone,
    ParameterDescription {
        params: u16,
    },
    NotificationResponse {
        pid: u32,
        channel: &'a [u8],
        payload: &'a [u8],
    },
    FunctionCallResponse(Option<&'a [u8]>),
    NegotiateProtocolVersion {
        newest_minor: u32,
        unrecognized: u32,
    },
    Unknown {
        tag: u8,
        body: &'a [u8],
    },
}

/// Parses a backend message body (without its type byte and length).
pub fn parse(t: u8, body: &[u8]) -> Result<BackendMessage<'_>, Error> {
    use BackendMessage as M;
    Ok(match t {
        tag::AUTHENTICATION => M::Authentication(auth::parse(body)?),
        tag::PARAMETER_STATUS => {
            let mut r = Reader::new(body, "ParameterStatus");
            let (name, value) = (r.cstr()?, r.cstr()?);
            r.end()?;
            M::ParameterStatus { name, value }
        }
        tag::BACKEND_KEY_DATA => {
            let mut r = Reader::new(body, "BackendKeyData");
            let pid = r.u32()?;
            let key = r.rest();
            if key.len() < 4 || key.len() > 256 {
                return Err(Error::Malformed("BackendKeyData", "secret key must be 4..=256 bytes"));
            }
            M::BackendKeyData { pid, key }
        }
        tag::READY_FOR_QUERY => {
            let mut r = Reader::new(body, "ReadyForQuery");
            let s = r.u8()?;
            r.end()?;
            M::ReadyForQuery(
                TransactionStatus::from_byte(s)
                    .ok_or(Error::Malformed("ReadyForQuery", "status must be 'I', 'T' or 'E'"))?,
            )
        }
        tag::ROW_DESCRIPTION => M::RowDescription(RowDescription::parse(body)?),
        tag::DATA_ROW => M::DataRow(DataRow::parse(body)?),
        tag::COMMAND_COMPLETE => {
            let mut r = Reader::new(body, "CommandComplete");
            let raw = r.cstr()?;
            r.end()?;
            M::CommandComplete(CommandTag::parse(raw))
        }
        tag::ERROR_RESPONSE => M::ErrorResponse(Fields::parse(body, "ErrorResponse")?),
        tag::NOTICE_RESPONSE => M::NoticeResponse(Fields::parse(body, "NoticeResponse")?),
        tag::PARSE_COMPLETE => empty(body, "ParseComplete", M::ParseComplete)?,
        tag::BIND_COMPLETE => empty(body, "BindComplete", M::BindComplete)?,
        tag::CLOSE_COMPLETE => empty(body, "CloseComplete", M::CloseComplete)?,
        tag::NO_DATA => empty(body, "NoData", M::NoData)?,
        tag::PORTAL_SUSPENDED => empty(body, "PortalSuspended", M::PortalSuspended)?,
        tag::EMPTY_QUERY_RESPONSE => empty(body, "EmptyQueryResponse", M::EmptyQueryResponse)?,
        tag::COPY_DONE => empty(body, "CopyDone", M::CopyDone)?,
        tag::COPY_IN_RESPONSE => M::CopyInResponse(copy_response(body, "CopyInResponse")?),
        tag::COPY_OUT_RESPONSE => M::CopyOutResponse(copy_response(body, "CopyOutResponse")?),
        tag::COPY_BOTH_RESPONSE => M::CopyBothResponse(copy_response(body, "CopyBothResponse")?),
        tag::COPY_DATA => M::CopyData(body),
        tag::PARAMETER_DESCRIPTION => {
            let mut r = Reader::new(body, "ParameterDescription");
            let params = r.count()?;
            r.bytes(usize::from(params) * 4)?;
            r.end()?;
            M::ParameterDescription { params }
        }
        tag::NOTIFICATION_RESPONSE => {
            let mut r = Reader::new(body, "NotificationResponse");
            let pid = r.u32()?;
            let (channel, payload) = (r.cstr()?, r.cstr()?);
            r.end()?;
            M::NotificationResponse { pid, channel, payload }
        }
        tag::FUNCTION_CALL_RESPONSE => {
            let mut r = Reader::new(body, "FunctionCallResponse");
            let v = r.nullable()?;
            r.end()?;
            M::FunctionCallResponse(v)
        }
        tag::NEGOTIATE_PROTOCOL_VERSION => {
            let mut r = Reader::new(body, "NegotiateProtocolVersion");
            let newest_minor = r.u32()?;
            let unrecognized = r.u32()?;
            if unrecognized > body.len() as u32 {
                return Err(Error::Truncated("NegotiateProtocolVersion"));
            }
            for _ in 0..unrecognized {
                r.cstr()?;
            }
            r.end()?;
            M::NegotiateProtocolVersion { newest_minor, unrecognized }
        }
        t => M::Unknown { tag: t, body },
    })
}

fn empty<'a>(body: &[u8], what: &'static str, m: BackendMessage<'a>) -> Result<BackendMessage<'a>, Error> {
    if body.is_empty() {
        Ok(m)
    } else {
        Err(Error::TrailingBytes(what, body.len()))
    }
}

fn copy_response(body: &[u8], what: &'static str) -> Result<CopyResponse, Error> {
    let mut r = Reader::new(body, what);
    let format = r.u8()?;
    let columns = r.count()?;
    r.bytes(usize::from(columns) * 2)?;
    r.end()?;
    Ok(CopyResponse { format, columns })
}
