//! Startup-phase packets, which carry no type byte: StartupMessage, SSLRequest, GSSENCRequest
//! and CancelRequest, told apart by the Int32 code after the length.

use super::reader::Reader;
use super::Error;

/// Protocol 3.0 in a StartupMessage (major 3 in the high 16 bits, minor 0).
pub const PROTOCOL_3_0: u32 = 3 << 16;
/// `1234.5679`: SSLRequest.
pub const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;
/// `1234.5680`: GSSENCRequest.
pub const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;
/// `1234.5678`: CancelRequest.
pub const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;

/// One startup-phase packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    /// StartupMessage: protocol 3.x and its name/value parameters (`user`, `database`, ...).
    Startup {
        minor: u16,
        params: Params<'a>,
    },
    SslRequest,
    GssEncRequest,
    /// CancelRequest. The key is 4 bytes up to protocol 3.0 and up to 256 bytes from 3.2.
    Cancel {
        pid: u32,
        key: &'a [u8],
    },
}

impl StartupPacket<'_> {
    /// Whether the client asks for an encrypted session (SSL or GSSAPI); the server answers
    /// with one byte, and the next packet is again a startup-phase packet.
    pub fn is_encryption_request(&self) -> bool {
        matches!(self, StartupPacket::SslRequest | StartupPacket::GssEncRequest)
    }
}

/// The parameters of a StartupMessage, validated at parse time, iterated without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut r = Reader::new(self.raw, "StartupMessage");
        std::iter::from_fn(move || {
            let name = r.cstr().ok().filter(|n| !n.is_empty())?;
            let value = r.cstr().ok()?;
            Some((name, value))
        })
    }

    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    /// The `user` parameter (required by the protocol).
    pub fn user(&self) -> Option<&'a [u8]> {
        self.get("user")
    }

    /// The `database` parameter, which defaults to the user name.
    pub fn database(&self) -> Option<&'a [u8]> {
        self.get("database").or_else(|| self.user())
    }
}

/// Parses the body of a startup-phase packet (everything after the Int32 length).
pub fn parse(body: &[u8]) -> Result<StartupPacket<'_>, Error> {
    const WHAT: &str = "startup packet";
    let mut r = Reader::new(body, WHAT);
    let code = r.u32()?;
    match code {
        SSL_REQUEST_CODE => r.end().map(|_| StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE => r.end().map(|_| StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            let pid = r.u32()?;
            let key = r.rest();
            if key.len() < 4 || key.len() > 256 {
                return Err(Error::Malformed("CancelRequest", "secret key must be 4..=256 bytes"));
            }
            Ok(StartupPacket::Cancel { pid, key })
        }
        code if code >> 16 == 3 => {
            let raw = r.rest();
            // Protocol: name/value pairs of C strings, then one terminating NUL.
            let mut p = Reader::new(raw, "StartupMessage");
            loop {
                let name = p.cstr()?;
                if name.is_empty() {
                    break;
                }
                p.cstr()?;
            }
            p.end()?;
            Ok(StartupPacket::Startup { minor: (code & 0xffff) as u16, params: Params { raw } })
        }
        code => Err(Error::UnsupportedVersion { major: (code >> 16) as u16, minor: (code & 0xffff) as u16 }),
    }
}
