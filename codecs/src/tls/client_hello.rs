//! Peeking a TLS ClientHello: is this TLS, and which server name (SNI) and application
//! protocols (ALPN) does the client ask for. The bytes are only inspected, never consumed, so
//! the connection can then be passed through untouched or terminated.
//!
//! RFC 8446 §5.1: a record is `type(1) version(2) length(2) fragment`; handshake records have
//! type 22 and their fragments concatenate into handshake messages, which may span records.
//! RFC 8446 §4.1.2: `ClientHello` is handshake type 1 with `legacy_version(2) random(32)
//! session_id<0..32> cipher_suites<2..2^16-2> compression_methods<1..2^8-1>
//! extensions<8..2^16-1>`. RFC 6066 §3: `server_name` is extension 0; RFC 7301 §3.1: ALPN is 16.

/// What the peeked bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// More bytes are needed to decide.
    NeedMore,
    /// Not a TLS handshake (plain text, or TLS too broken to parse).
    NotTls,
    /// The ClientHello is larger than the limit.
    TooLarge,
    /// A complete ClientHello.
    Hello(ClientHello),
}

/// The parts of a ClientHello that filter-chain matching uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The SNI host name, lower-cased (RFC 6066: `host_name` is case-insensitive).
    pub server_name: Option<String>,
    /// ALPN protocols in the client's order.
    pub alpn: Vec<String>,
}

const RECORD_HEADER: usize = 5;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// Largest TLS record fragment (RFC 8446 §5.1: 2^14, plus room for TLS 1.2 expansion).
const MAX_FRAGMENT: usize = (1 << 14) + 2048;

/// Inspects the bytes peeked so far; `max` bounds the ClientHello (Envoy's default is 64 KiB).
pub fn peek(buf: &[u8], max: usize) -> Peek {
    // Reassemble the handshake bytes from as many records as are here.
    let mut handshake: Vec<u8> = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + RECORD_HEADER) else {
            return if at == 0 && !buf.is_empty() && buf[0] != CONTENT_HANDSHAKE {
                Peek::NotTls
            } else {
                Peek::NeedMore
            };
        };
        // A TLS record starts with the handshake type and a 3.x version.
        if header[0] != CONTENT_HANDSHAKE || header[1] != 3 {
            return if handshake.is_empty() { Peek::NotTls } else { Peek::NeedMore };
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_FRAGMENT {
            return Peek::NotTls;
        }
        let Some(fragment) = buf.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else {
            return if at + RECORD_HEADER + len > max { Peek::TooLarge } else { Peek::NeedMore };
        };
        handshake.extend_from_slice(fragment);
        at += RECORD_HEADER + len;
        if handshake.len() >= 4 {
            if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                return Peek::NotTls;
            }
            let body_len =
                (usize::from(handshake[1]) << 16) | (usize::from(handshake[2]) << 8) | usize::from(handshake[3]);
            if body_len + 4 > max {
                return Peek::TooLarge;
            }
            if handshake.len() >= body_len + 4 {
                return match parse_body(&handshake[4..4 + body_len]) {
                    Some(h) => Peek::Hello(h),
                    None => Peek::NotTls,
                };
            }
        }
        if at > max {
            return Peek::TooLarge;
        }
    }
}

/// A cursor that refuses to read past its slice.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.b.get(..n)?, self.b.get(n..)?);
        self.b = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn parse_body(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader { b: body };
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    let mut hello = ClientHello::default();
    if r.b.is_empty() {
        return Some(hello); // no extensions (very old clients)
    }
    let mut exts = Reader { b: r.vec16()? };
    while !exts.b.is_empty() {
        let ty = exts.u16()?;
        let mut data = Reader { b: exts.vec16()? };
        match ty {
            EXT_SERVER_NAME => {
                let mut list = Reader { b: data.vec16()? };
                while !list.b.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    // name_type 0 is host_name, the only type defined.
                    if name_type == 0 && hello.server_name.is_none() {
                        hello.server_name = std::str::from_utf8(name).ok().map(str::to_ascii_lowercase);
                    }
                }
            }
            EXT_ALPN => {
                let mut list = Reader { b: data.vec16()? };
                while !list.b.is_empty() {
                    let proto = list.vec8()?;
                    hello.alpn.push(String::from_utf8_lossy(proto).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNI_ALPN: &[u8] = include_bytes!("../../tests/fixtures/client_hello_openssl_sni_alpn.bin");
    const NO_SNI: &[u8] = include_bytes!("../../tests/fixtures/client_hello_openssl_no_sni.bin");
    const MAX: usize = 64 * 1024;

    #[test]
    fn openssl_client_hello_gives_sni_and_alpn() {
        let want =
            ClientHello { server_name: Some("www.example.com".into()), alpn: vec!["h2".into(), "http/1.1".into()] };
        assert_eq!(peek(SNI_ALPN, MAX), Peek::Hello(want));
        assert_eq!(peek(NO_SNI, MAX), Peek::Hello(ClientHello::default()));
    }

    #[test]
    fn every_prefix_of_a_hello_asks_for_more() {
        for n in 1..SNI_ALPN.len() {
            assert_eq!(peek(&SNI_ALPN[..n], MAX), Peek::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn a_hello_split_across_records_is_reassembled() {
        // Re-frame the handshake bytes as two records.
        let hs = &SNI_ALPN[5..];
        let (a, b) = hs.split_at(40);
        let mut two = Vec::new();
        for part in [a, b] {
            two.extend_from_slice(&[22, 3, 1]);
            two.extend_from_slice(&(part.len() as u16).to_be_bytes());
            two.extend_from_slice(part);
        }
        assert!(matches!(peek(&two, MAX), Peek::Hello(h) if h.server_name.as_deref() == Some("www.example.com")));
    }

    #[test]
    fn plain_text_is_not_tls() {
        assert_eq!(peek(b"GET / HTTP/1.1\r\n", MAX), Peek::NotTls);
        assert_eq!(peek(b"*3\r\n$3\r\nSET\r\n", MAX), Peek::NotTls);
        assert_eq!(peek(&[22, 9, 9, 0, 10], MAX), Peek::NotTls);
    }

    #[test]
    fn a_hello_over_the_limit_is_too_large() {
        assert_eq!(peek(SNI_ALPN, 100), Peek::TooLarge);
        // A declared handshake length far beyond the limit is refused before more bytes come.
        let mut huge = vec![22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff];
        huge.resize(9, 0);
        assert_eq!(peek(&huge, MAX), Peek::TooLarge);
    }

    #[test]
    fn corrupted_hellos_never_panic() {
        // Flip every byte in turn, and truncate lengths: any answer is fine, a panic is not.
        for i in 0..SNI_ALPN.len() {
            let mut b = SNI_ALPN.to_vec();
            b[i] ^= 0xff;
            let _ = peek(&b, MAX);
            b[i] = 0;
            let _ = peek(&b, MAX);
        }
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let len = (x % 600) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = peek(&b, MAX);
        }
    }
}
