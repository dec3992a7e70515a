//! Encoders: the messages a proxy may send on its own (an ErrorResponse before closing), and
//! builders for tests and fuzzing.

use super::startup::{PROTOCOL_3_0, SSL_REQUEST_CODE};

/// A regular message: type byte, Int32 length (counting itself), body.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A startup-phase packet: Int32 length (counting itself), body.
pub fn startup_packet(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A protocol 3.0 StartupMessage with the given parameters.
pub fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    for (k, v) in params {
        cstr(&mut body, k.as_bytes());
        cstr(&mut body, v.as_bytes());
    }
    body.push(0);
    startup_packet(&body)
}

/// SSLRequest.
pub fn ssl_request() -> Vec<u8> {
    startup_packet(&SSL_REQUEST_CODE.to_be_bytes())
}

/// A simple-protocol Query.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(sql.len() + 1);
    cstr(&mut body, sql.as_bytes());
    message(b'Q', &body)
}

/// An ErrorResponse (or, with tag `N`, a NoticeResponse) with severity (both `S` and `V`),
/// SQLSTATE and message.
pub fn error_response(severity: &str, sqlstate: &str, text: &str) -> Vec<u8> {
    fields_message(b'E', severity, sqlstate, text)
}

/// A NoticeResponse.
pub fn notice_response(severity: &str, sqlstate: &str, text: &str) -> Vec<u8> {
    fields_message(b'N', severity, sqlstate, text)
}

fn fields_message(tag: u8, severity: &str, sqlstate: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, v) in [(b'S', severity), (b'V', severity), (b'C', sqlstate), (b'M', text)] {
        body.push(code);
        cstr(&mut body, v.as_bytes());
    }
    body.push(0);
    message(tag, &body)
}

/// A CommandComplete with `tag`.
pub fn command_complete(tag: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstr(&mut body, tag.as_bytes());
    message(b'C', &body)
}

/// A ReadyForQuery with status `I`, `T` or `E`.
pub fn ready_for_query(status: u8) -> Vec<u8> {
    message(b'Z', &[status])
}

fn cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}
