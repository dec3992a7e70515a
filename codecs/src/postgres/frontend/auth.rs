//! The `p` message read as a SASLInitialResponse (mechanism name, then Int32-prefixed data).

use crate::postgres::reader::Reader;
use crate::postgres::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    pub mechanism: &'a [u8],
    /// `None` when the length is -1 (no initial response).
    pub data: Option<&'a [u8]>,
}

/// Reads a `p` body as SASLInitialResponse (valid only after AuthenticationSASL).
pub fn sasl_initial_response(body: &[u8]) -> Result<SaslInitialResponse<'_>, Error> {
    let mut r = Reader::new(body, "SASLInitialResponse");
    let mechanism = r.cstr()?;
    let data = r.nullable()?;
    r.end()?;
    Ok(SaslInitialResponse { mechanism, data })
}
