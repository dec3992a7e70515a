//! TLS origination toward a cluster's hosts (`UpstreamTlsContext`): one [`TlsClient`] per
//! cluster per config generation (a rustls `ClientConfig`, the SNI, the session cache and the
//! `cluster.<c>.ssl.*` stats), and the handshake.
//!
//! Verification follows Envoy: without `trusted_ca` the server's certificate is not checked at
//! all; with it the chain must lead to one of those CAs and, when `match_typed_subject_alt_names`
//! is given, one SAN must match. The SNI is never compared with the certificate (Envoy only
//! does that with `auto_sni_san_validation`, which Legate lacks). Signatures of the handshake
//! are always verified, which also gives `ssl.sigalgs.<name>`.
//!
//! Failures carry Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` text. Verification failures and
//! alerts from the server use BoringSSL's codes and names exactly as Envoy 1.40 prints them
//! (`TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:...`); the
//! depth in an X509 message is always 0 (webpki does not say which certificate failed). Other
//! rustls errors keep the `TLS_error:|...:TLS_error_end` frame around rustls's own text.
//!
//! Client certificates (upstream mTLS) are reloaded when their files change, like the
//! listeners' certificates.

use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwapOption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, ProtocolVersion, RootCertStore};
use rustls::{SignatureScheme, SupportedCipherSuite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::certs;
use super::reload::{self, Fingerprint};
use super::server::CertReport;
use super::stats::{curve_name, openssl_cipher_name, sigalg_name, ClientSslStats, DynamicStats};
use crate::config::tls::{SanMatcher, TlsVersion};
use crate::config::upstream_tls::UpstreamTlsConfig;
use crate::stats::{Counter, Store};

/// BoringSSL's packed error code for `SSL_R_CERTIFICATE_VERIFY_FAILED`, as Envoy prints it.
const CERTIFICATE_VERIFY_FAILED: &str = "268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED";
/// BoringSSL's code of `SSL_R_WRONG_VERSION_NUMBER` (the server does not speak TLS).
const WRONG_VERSION_NUMBER: &str = "268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER";

/// BoringSSL's client preference as Envoy configures it (TLS 1.3 first, then Envoy's default
/// TLS 1.2 list restricted to what rustls implements), so Legate negotiates what Envoy would.
const ENVOY_CLIENT_CIPHER_ORDER: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
];

/// The signature algorithms Envoy's client offers, in its order (rustls's others follow).
const ENVOY_SIGALG_ORDER: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// Why an upstream handshake failed, with Envoy's transport failure reason.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct TlsConnectError {
    reason: String,
    #[source]
    source: std::io::Error,
}

impl TlsConnectError {
    /// Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` text (`TLS_error:|...:TLS_error_end`).
    pub fn transport_failure_reason(&self) -> &str {
        &self.reason
    }
}

/// A SAN check that failed; carries the certificate's SANs for the failure reason.
#[derive(Debug)]
struct SanMismatch(String);

impl std::fmt::Display for SanMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SAN matcher, certificate SANs are [{}]", self.0)
    }
}

impl std::error::Error for SanMismatch {}

/// Envoy's server verification: none without roots, else chain + SAN matchers.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    san_matchers: Vec<SanMatcher>,
    algs: WebPkiSupportedAlgorithms,
    fail_verify_error: Counter,
    fail_verify_san: Counter,
    dynamic: Arc<DynamicStats>,
}

impl Verifier {
    fn signed(
        &self,
        scheme: SignatureScheme,
        ok: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if ok.is_ok() {
            if let Some(name) = sigalg_name(scheme) {
                self.dynamic.inc("sigalgs", name);
            }
        }
        ok
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else { return Ok(ServerCertVerified::assertion()) };
        let chain = ParsedCertificate::try_from(end_entity).and_then(|leaf| {
            rustls::client::verify_server_cert_signed_by_trust_anchor(&leaf, roots, intermediates, now, self.algs.all)
        });
        if let Err(e) = chain {
            self.fail_verify_error.inc();
            return Err(e);
        }
        if !self.san_matchers.is_empty() {
            let sans = certs::sans(end_entity.as_ref());
            let ok = self
                .san_matchers
                .iter()
                .any(|m| sans.iter().any(|(t, v)| *t == m.san_type && m.matcher.matches(v, m.ignore_case)));
            if !ok {
                self.fail_verify_san.inc();
                let list = sans.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ");
                return Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    SanMismatch(list),
                )))));
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signed(dss.scheme, rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signed(dss.scheme, rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // BoringSSL's order as Envoy offers it, so servers pick what they pick for Envoy.
        let mut schemes = self.algs.supported_schemes();
        schemes.sort_by_key(|s| ENVOY_SIGALG_ORDER.iter().position(|o| o == s).unwrap_or(usize::MAX));
        schemes
    }
}

/// The client certificate, swapped when its files change.
#[derive(Debug)]
struct ClientCert {
    key: ArcSwapOption<CertifiedKey>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.key.load_full()
    }

    fn has_certs(&self) -> bool {
        self.key.load().is_some()
    }
}

/// One cluster's TLS origination (built once per config generation).
pub struct TlsClient {
    connector: TlsConnector,
    /// The SNI; without one the host's address names the server (and no SNI is sent).
    server_name: Option<ServerName<'static>>,
    pub stats: ClientSslStats,
    dynamic: Arc<DynamicStats>,
    client_cert: Arc<ClientCert>,
    cfg: UpstreamTlsConfig,
    fingerprints: Mutex<Vec<Fingerprint>>,
}

/// Every TLS client of this process, for `/certs`, expiry and reloads.
static CLIENTS: Mutex<Vec<Weak<TlsClient>>> = Mutex::new(Vec::new());

impl TlsClient {
    /// Builds a cluster's client side; `stats_prefix` is `cluster.<name>.ssl.`.
    pub fn new(cfg: &UpstreamTlsConfig, store: &Store, stats_prefix: &str) -> Result<Arc<TlsClient>, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        // TLS 1.3 suites are not configurable (as in Envoy); TLS 1.2 ones follow the list, in
        // its order of preference, or Envoy's default client order.
        let order: Vec<&str> = if cfg.common.cipher_suites.is_empty() {
            ENVOY_CLIENT_CIPHER_ORDER.to_vec()
        } else {
            ENVOY_CLIENT_CIPHER_ORDER[..3]
                .iter()
                .copied()
                .chain(cfg.common.cipher_suites.iter().map(String::as_str))
                .collect()
        };
        let rank = |s: &SupportedCipherSuite| {
            openssl_cipher_name(s.suite()).and_then(|n| order.iter().position(|o| *o == n)).unwrap_or(usize::MAX)
        };
        // Without TLS 1.3 no TLS 1.3 suite is offered (BoringSSL does the same).
        let tls13 = cfg.common.max_version == TlsVersion::V1_3;
        provider.cipher_suites.retain(|s| match s {
            SupportedCipherSuite::Tls13(_) => tls13,
            SupportedCipherSuite::Tls12(_) => rank(s) != usize::MAX,
        });
        provider.cipher_suites.sort_by_key(rank);
        let provider: Arc<CryptoProvider> = Arc::new(provider);
        let versions: &[&rustls::SupportedProtocolVersion] = match (cfg.common.min_version, cfg.common.max_version) {
            (TlsVersion::V1_3, _) => &[&rustls::version::TLS13],
            (_, TlsVersion::V1_2) => &[&rustls::version::TLS12],
            _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let roots = match &cfg.common.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs::certificates(ca)? {
                    roots.add(c).map_err(|e| format!("trusted_ca {}: {e}", certs::describe(ca)))?;
                }
                Some(Arc::new(roots))
            }
            None => None,
        };
        let key = cfg.common.certificates.first().map(certs::certified_key).transpose()?;
        let client_cert = Arc::new(ClientCert { key: ArcSwapOption::new(key) });
        let stats = ClientSslStats::new(store, stats_prefix);
        let dynamic = Arc::new(DynamicStats::new(store, stats_prefix));
        let verifier = Verifier {
            roots,
            san_matchers: cfg.common.san_matchers.clone(),
            algs: provider.signature_verification_algorithms,
            fail_verify_error: stats.fail_verify_error.clone(),
            fail_verify_san: stats.fail_verify_san.clone(),
            dynamic: dynamic.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS parameters: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(client_cert.clone());
        config.alpn_protocols = cfg.common.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        config.resumption = match cfg.max_session_keys {
            0 => Resumption::disabled(),
            n => Resumption::store(Arc::new(ClientSessionMemoryCache::new(n as usize))),
        };
        config.enable_sni = cfg.sni.is_some();
        let server_name = match &cfg.sni {
            Some(s) => Some(ServerName::try_from(s.clone()).map_err(|e| format!("sni '{s}': {e}"))?),
            None => None,
        };
        let client = Arc::new(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            stats,
            dynamic,
            client_cert,
            fingerprints: Mutex::new(reload::fingerprints(&cfg.common.certificates)),
            cfg: cfg.clone(),
        });
        if let Ok(mut all) = CLIENTS.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&client));
        }
        Ok(client)
    }

    /// Runs the handshake over a connected socket, counting `ssl.*`. The caller bounds it in
    /// time (Envoy's `connect_timeout` covers the handshake).
    pub async fn connect(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, TlsConnectError> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => {
                let ip = tcp.peer_addr().map_err(|e| TlsConnectError { reason: reason_of(&e), source: e })?.ip();
                ServerName::IpAddress(ip.into())
            }
        };
        let tls = match self.connector.connect(name, tcp).await {
            Ok(t) => t,
            Err(e) => {
                let rustls_err = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                // As in Envoy, failures the verifier already counted are not connection errors.
                if !matches!(rustls_err, Some(rustls::Error::InvalidCertificate(_))) {
                    self.stats.connection_error.inc();
                }
                tracing::debug!(target: "upstream", "upstream TLS handshake failed: {e}");
                return Err(TlsConnectError { reason: reason_of(&e), source: e });
            }
        };
        let (_, conn) = tls.get_ref();
        let s = &self.stats;
        s.handshake.inc();
        if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            s.session_reused.inc();
        }
        match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => self.dynamic.inc("versions", "TLSv1.3"),
            Some(ProtocolVersion::TLSv1_2) => self.dynamic.inc("versions", "TLSv1.2"),
            _ => {}
        }
        if let Some(name) = conn.negotiated_cipher_suite().and_then(|c| openssl_cipher_name(c.suite())) {
            self.dynamic.inc("ciphers", name);
        }
        if let Some(name) = conn.negotiated_key_exchange_group().and_then(|g| curve_name(g.name())) {
            self.dynamic.inc("curves", name);
        }
        if conn.peer_certificates().is_none_or(|c| c.is_empty()) {
            s.no_certificate.inc();
        }
        Ok(tls)
    }

    /// The protocol ALPN settled on (`h2`, `http/1.1`), if any.
    pub fn negotiated_alpn(tls: &TlsStream<TcpStream>) -> Option<&[u8]> {
        tls.get_ref().1.alpn_protocol()
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &UpstreamTlsConfig {
        &self.cfg
    }

    /// Reloads the client certificate if its files changed; a bad pair keeps the old one and
    /// counts `certificate_reload_failure`.
    pub fn reload_if_changed(&self) {
        let Some(pair) = self.cfg.common.certificates.first() else { return };
        let load = || {
            self.client_cert.key.store(Some(certs::certified_key(pair)?));
            Ok(())
        };
        let stats = &self.stats;
        let (success, failure) = (&stats.certificate_reload_success, &stats.certificate_reload_failure);
        match reload::reload_on_change(&self.fingerprints, &self.cfg.common.certificates, success, failure, load) {
            Some(Ok(())) => tracing::info!(target: "upstream", "upstream TLS client certificate reloaded"),
            Some(Err(e)) => tracing::warn!(
                target: "upstream",
                "upstream TLS client certificate reload failed, keeping the previous one: {e}"
            ),
            None => {}
        }
    }

    /// What `/certs` shows: the trusted CA and the client certificate in service.
    pub fn certificate_report(&self) -> CertReport {
        let key = self.client_cert.key.load();
        CertReport {
            ca: reload::ca_report(self.cfg.common.trusted_ca.as_ref()),
            chain: reload::leaf_report(key.as_deref().zip(self.cfg.common.certificates.first())),
        }
    }
}

/// Every live TLS client.
pub fn all_clients() -> Vec<Arc<TlsClient>> {
    CLIENTS.lock().map(|s| s.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default()
}

/// Envoy's transport failure reason for a failed handshake.
fn reason_of(e: &std::io::Error) -> String {
    let frame = |inner: String| format!("TLS_error:|{inner}:TLS_error_end");
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return frame(e.to_string());
    };
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) if o.0.downcast_ref::<SanMismatch>().is_some() => {
            frame(format!("{CERTIFICATE_VERIFY_FAILED}:verify cert failed: {}", o.0))
        }
        rustls::Error::InvalidCertificate(c) => frame(format!(
            "{CERTIFICATE_VERIFY_FAILED}:verify cert failed: X509_verify_cert: certificate verification error at depth 0: {}",
            x509_error_text(c)
        )),
        rustls::Error::AlertReceived(a) => {
            let code = u8::from(*a);
            match alert_name(code) {
                // BoringSSL packs `ERR_LIB_SSL` (16 << 24) with reason 1000 + the alert number.
                Some(name) => frame(format!("{}:SSL routines:OPENSSL_internal:{name}", (16u32 << 24) + 1000 + u32::from(code))),
                None => frame(err.to_string()),
            }
        }
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => frame(WRONG_VERSION_NUMBER.to_string()),
        other => frame(other.to_string()),
    }
}

/// OpenSSL's `X509_verify_cert_error_string` for webpki's verdicts.
fn x509_error_text(c: &CertificateError) -> &'static str {
    match c {
        CertificateError::UnknownIssuer => "unable to get local issuer certificate",
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "certificate has expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "certificate is not yet valid",
        CertificateError::BadSignature => "certificate signature failure",
        CertificateError::Revoked => "certificate revoked",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "unsupported certificate purpose"
        }
        CertificateError::BadEncoding => "unable to decode issuer public key",
        _ => "certificate verify failed",
    }
}

/// BoringSSL's reason names for alerts received from the peer.
fn alert_name(code: u8) -> Option<&'static str> {
    Some(match code {
        10 => "SSLV3_ALERT_UNEXPECTED_MESSAGE",
        40 => "SSLV3_ALERT_HANDSHAKE_FAILURE",
        42 => "SSLV3_ALERT_BAD_CERTIFICATE",
        43 => "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        44 => "SSLV3_ALERT_CERTIFICATE_REVOKED",
        45 => "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        46 => "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        47 => "SSLV3_ALERT_ILLEGAL_PARAMETER",
        48 => "TLSV1_ALERT_UNKNOWN_CA",
        49 => "TLSV1_ALERT_ACCESS_DENIED",
        50 => "TLSV1_ALERT_DECODE_ERROR",
        51 => "TLSV1_ALERT_DECRYPT_ERROR",
        70 => "TLSV1_ALERT_PROTOCOL_VERSION",
        71 => "TLSV1_ALERT_INSUFFICIENT_SECURITY",
        80 => "TLSV1_ALERT_INTERNAL_ERROR",
        112 => "TLSV1_ALERT_UNRECOGNIZED_NAME",
        116 => "TLSV1_ALERT_CERTIFICATE_REQUIRED",
        120 => "TLSV1_ALERT_NO_APPLICATION_PROTOCOL",
        _ => return None,
    })
}

/// Checks every TLS client's certificate files (called from the reload loop).
pub fn reload_all() {
    for c in all_clients() {
        c.reload_if_changed();
    }
}
