//! Loading PEM certificates and keys from `DataSource`s, and the facts `/certs` and SAN
//! matching need from a certificate.

use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::tls::{CertKeyPair, DataSource, SanType};

/// Reads a data source (a file is read each time, so a reload sees the new contents).
pub fn read(src: &DataSource) -> Result<Vec<u8>, String> {
    match src {
        DataSource::File(p) => std::fs::read(p).map_err(|e| format!("cannot read '{p}': {e}")),
        DataSource::Inline(b) => Ok(b.clone()),
    }
}

/// Where a data source comes from, for messages (never the contents: keys stay secret).
pub fn describe(src: &DataSource) -> String {
    match src {
        DataSource::File(p) => format!("'{p}'"),
        DataSource::Inline(_) => "the inline value".to_string(),
    }
}

pub fn certificates(src: &DataSource) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(src)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", describe(src)))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", describe(src)));
    }
    Ok(certs)
}

/// Loads a certificate chain and its private key and checks that they belong together.
pub fn certified_key(pair: &CertKeyPair) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(&pair.chain)?;
    let key_pem = read(&pair.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| format!("{}: no PEM private key found", describe(&pair.key)))?;
    let signer =
        any_supported_type(&key).map_err(|e| format!("{}: unsupported private key: {e}", describe(&pair.key)))?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|e| {
        format!("certificate {} and key {} do not match: {e}", describe(&pair.chain), describe(&pair.key))
    })?;
    Ok(Arc::new(ck))
}

/// What `/certs` shows of one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub serial_number: String,
    pub subject_alt_names: Vec<(SanType, String)>,
    pub days_until_expiration: i64,
    pub valid_from: String,
    pub expiration_time: String,
}

/// Parses the facts of a DER certificate.
pub fn info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(CertInfo {
        serial_number: cert.raw_serial_as_string().replace(':', ""),
        subject_alt_names: sans(der),
        days_until_expiration: (not_after - now).div_euclid(86_400),
        valid_from: rfc3339(cert.validity().not_before.timestamp()),
        expiration_time: rfc3339(not_after),
    })
}

fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// The subject alternative names of a DER certificate.
pub fn sans(der: &[u8]) -> Vec<(SanType, String)> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Vec::new() };
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return Vec::new() };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) => Some((SanType::Dns, s.to_string())),
            GeneralName::URI(s) => Some((SanType::Uri, s.to_string())),
            GeneralName::RFC822Name(s) => Some((SanType::Email, s.to_string())),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some((SanType::IpAddress, std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())),
                16 => {
                    <[u8; 16]>::try_from(*b).ok().map(|a| (SanType::IpAddress, std::net::Ipv6Addr::from(a).to_string()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The subject of a DER certificate in RFC 2253 form (`CN=client,O=Example`).
pub fn subject(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}
