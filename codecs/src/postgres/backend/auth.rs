//! Authentication* messages (`R`), told apart by their Int32 code.

use crate::postgres::reader::Reader;
use crate::postgres::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication<'a> {
    Ok,
    KerberosV5,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Gss,
    GssContinue(&'a [u8]),
    Sspi,
    /// The mechanisms the server offers (a list of C strings ending with an empty one).
    Sasl {
        mechanisms: &'a [u8],
    },
    SaslContinue(&'a [u8]),
    SaslFinal(&'a [u8]),
    Unknown {
        code: u32,
        body: &'a [u8],
    },
}

impl<'a> Authentication<'a> {
    /// The SASL mechanisms offered, in order.
    pub fn sasl_mechanisms(&self) -> impl Iterator<Item = &'a [u8]> {
        let raw: &'a [u8] = match self {
            Authentication::Sasl { mechanisms } => mechanisms,
            _ => &[],
        };
        raw.split(|b| *b == 0).take_while(|m| !m.is_empty())
    }
}

pub(super) fn parse(body: &[u8]) -> Result<Authentication<'_>, Error> {
    const WHAT: &str = "Authentication";
    let mut r = Reader::new(body, WHAT);
    let code = r.u32()?;
    let simple = |m: Authentication<'static>, r: &Reader| r.end().map(|_| m);
    match code {
        0 => simple(Authentication::Ok, &r),
        2 => simple(Authentication::KerberosV5, &r),
        3 => simple(Authentication::CleartextPassword, &r),
        5 => {
            let s = r.bytes(4)?;
            r.end()?;
            Ok(Authentication::Md5Password { salt: [s[0], s[1], s[2], s[3]] })
        }
        7 => simple(Authentication::Gss, &r),
        8 => Ok(Authentication::GssContinue(r.rest())),
        9 => simple(Authentication::Sspi, &r),
        10 => {
            let mechanisms = r.rest();
            // Protocol: C strings, then an empty one.
            let mut m = Reader::new(mechanisms, "AuthenticationSASL");
            while !m.cstr()?.is_empty() {}
            m.end()?;
            Ok(Authentication::Sasl { mechanisms })
        }
        11 => Ok(Authentication::SaslContinue(r.rest())),
        12 => Ok(Authentication::SaslFinal(r.rest())),
        code => Ok(Authentication::Unknown { code, body: r.rest() }),
    }
}
