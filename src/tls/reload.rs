//! Certificate rotation shared by TLS servers and clients: file fingerprints (mtime, size) of
//! the certificate sources, the reload step that runs when they change, and what `/certs`
//! shows of a context's sources.

use std::sync::Mutex;
use std::time::SystemTime;

use rustls::sign::CertifiedKey;

use super::certs;
use crate::config::tls::{CertKeyPair, DataSource};
use crate::stats::Counter;

/// A source file's modification time and size (`None` for inline data or an unreadable file).
pub type Fingerprint = Option<(SystemTime, u64)>;

pub(crate) fn fingerprint(src: &DataSource) -> Fingerprint {
    match src {
        DataSource::File(p) => std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))),
        DataSource::Inline(_) => None,
    }
}

/// The fingerprints of every certificate chain and key file of `pairs`.
pub(crate) fn fingerprints(pairs: &[CertKeyPair]) -> Vec<Fingerprint> {
    pairs.iter().flat_map(|p| [fingerprint(&p.chain), fingerprint(&p.key)]).collect()
}

/// Runs `load` (which loads and swaps in the certificates) when the files of `pairs` changed
/// since `seen` was taken, and counts `success` or `failure`. `None` when nothing changed; a
/// failed load is not retried until the files change again (the old certificates stay).
pub(crate) fn reload_on_change(
    seen: &Mutex<Vec<Fingerprint>>,
    pairs: &[CertKeyPair],
    success: &Counter,
    failure: &Counter,
    load: impl FnOnce() -> Result<(), String>,
) -> Option<Result<(), String>> {
    let now = fingerprints(pairs);
    let mut seen = seen.lock().ok()?;
    if *seen == now {
        return None;
    }
    *seen = now;
    let result = load();
    match &result {
        Ok(()) => success.inc(),
        Err(_) => failure.inc(),
    }
    Some(result)
}

/// `(path or "<inline>", DER)` of every certificate of the trusted CA, for `/certs`.
pub fn ca_report(trusted_ca: Option<&DataSource>) -> Vec<(String, Vec<u8>)> {
    trusted_ca
        .and_then(|src| {
            certs::certificates(src).ok().map(|c| c.iter().map(|d| (report_path(src), d.as_ref().to_vec())).collect())
        })
        .unwrap_or_default()
}

/// `(path or "<inline>", DER)` of the leaf of each certificate in service, for `/certs`.
pub fn leaf_report<'a>(
    served: impl IntoIterator<Item = (&'a CertifiedKey, &'a CertKeyPair)>,
) -> Vec<(String, Vec<u8>)> {
    served
        .into_iter()
        .filter_map(|(k, pair)| k.cert.first().map(|leaf| (report_path(&pair.chain), leaf.as_ref().to_vec())))
        .collect()
}

fn report_path(src: &DataSource) -> String {
    match src {
        DataSource::File(p) => p.clone(),
        DataSource::Inline(_) => "<inline>".to_string(),
    }
}
