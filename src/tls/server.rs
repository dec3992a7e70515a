//! TLS termination: a rustls `ServerConfig` built from a `DownstreamTlsContext`, a certificate
//! resolver whose certificates are swapped when their files change (no SDS, no restart), the
//! handshake with Envoy's `listener.<addr>.ssl.*` counting, and the SAN check for mTLS.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::certs;
use super::reload::{self, Fingerprint};
use super::stats::{curve_name, openssl_cipher_name, DynamicStats, SslStats};
use crate::config::tls::{DownstreamTlsConfig, TlsVersion};
use crate::stats::Store;

/// Picks the first certificate whose key can sign with a scheme the client offers.
#[derive(Debug)]
struct CertResolver {
    keys: ArcSwap<Vec<Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let keys = self.keys.load();
        let schemes = hello.signature_schemes();
        keys.iter().find(|k| k.key.choose_scheme(schemes).is_some()).or_else(|| keys.first()).cloned()
    }
}

/// One filter chain's TLS termination.
pub struct TlsServer {
    acceptor: TlsAcceptor,
    resolver: Arc<CertResolver>,
    pub stats: SslStats,
    dynamic: DynamicStats,
    cfg: DownstreamTlsConfig,
    /// File fingerprints of the certificate sources, to notice rotation.
    fingerprints: Mutex<Vec<Fingerprint>>,
}

/// What a terminated handshake settled, for access logs.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    pub version: Option<&'static str>,
    pub cipher: Option<&'static str>,
    pub peer_subject: Option<String>,
    pub server_name: Option<String>,
}

/// Every TLS server of this process, for `/certs` and `server.days_until_first_cert_expiring`.
static SERVERS: Mutex<Vec<Weak<TlsServer>>> = Mutex::new(Vec::new());

impl TlsServer {
    /// Builds the server side of one chain; `stats_prefix` is `listener.<addr>.ssl.`.
    pub fn new(cfg: &DownstreamTlsConfig, store: &Store, stats_prefix: &str) -> Result<Arc<TlsServer>, String> {
        let keys: Vec<Arc<CertifiedKey>> =
            cfg.common.certificates.iter().map(certs::certified_key).collect::<Result<_, _>>()?;
        let resolver = Arc::new(CertResolver { keys: ArcSwap::from_pointee(keys) });
        let mut provider = rustls::crypto::ring::default_provider();
        if !cfg.common.cipher_suites.is_empty() {
            // TLS 1.3 suites are not configurable (as in Envoy); TLS 1.2 ones follow the list.
            provider.cipher_suites.retain(|s| match s {
                rustls::SupportedCipherSuite::Tls13(_) => true,
                rustls::SupportedCipherSuite::Tls12(_) => {
                    openssl_cipher_name(s.suite()).is_some_and(|n| cfg.common.cipher_suites.iter().any(|c| c == n))
                }
            });
        }
        let provider: Arc<CryptoProvider> = Arc::new(provider);
        let versions: &[&rustls::SupportedProtocolVersion] = match (cfg.common.min_version, cfg.common.max_version) {
            (TlsVersion::V1_3, _) => &[&rustls::version::TLS13],
            (_, TlsVersion::V1_2) => &[&rustls::version::TLS12],
            _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS parameters: {e}"))?;
        let builder = match &cfg.common.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs::certificates(ca)? {
                    roots.add(c).map_err(|e| format!("trusted_ca {}: {e}", certs::describe(ca)))?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if cfg.require_client_certificate { v } else { v.allow_unauthenticated() };
                builder.with_client_cert_verifier(v.build().map_err(|e| format!("trusted_ca: {e}"))?)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.alpn_protocols = cfg.common.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        let server = Arc::new(TlsServer {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            stats: SslStats::new(store, stats_prefix),
            dynamic: DynamicStats::new(store, stats_prefix),
            fingerprints: Mutex::new(reload::fingerprints(&cfg.common.certificates)),
            cfg: cfg.clone(),
        });
        if let Ok(mut all) = SERVERS.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&server));
        }
        Ok(server)
    }

    /// Completes the handshake within `timeout`, counting the outcome; `None` closes the
    /// connection.
    pub async fn accept(&self, stream: TcpStream, timeout: Duration) -> Option<(TlsStream<TcpStream>, TlsFacts)> {
        let s = &self.stats;
        let tls = match tokio::time::timeout(timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                s.connection_error.inc();
                match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::NoCertificatesPresented) => s.fail_verify_no_cert.inc(),
                    Some(rustls::Error::InvalidCertificate(_)) => s.fail_verify_error.inc(),
                    _ => {}
                }
                tracing::debug!(target: "connection", "TLS handshake failed: {e}");
                return None;
            }
            Err(_) => {
                s.connection_error.inc();
                return None;
            }
        };
        let (_, conn) = tls.get_ref();
        let mut facts = TlsFacts { server_name: conn.server_name().map(str::to_string), ..TlsFacts::default() };
        s.handshake.inc();
        if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            s.session_reused.inc();
        }
        match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => facts.version = Some("TLSv1.3"),
            Some(ProtocolVersion::TLSv1_2) => facts.version = Some("TLSv1.2"),
            _ => {}
        }
        if let Some(v) = facts.version {
            self.dynamic.inc("versions", v);
        }
        if let Some(name) = conn.negotiated_cipher_suite().and_then(|c| openssl_cipher_name(c.suite())) {
            self.dynamic.inc("ciphers", name);
            facts.cipher = Some(name);
        }
        if let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) {
            facts.peer_subject = certs::subject(leaf);
        }
        if let Some(name) = conn.negotiated_key_exchange_group().and_then(|g| curve_name(g.name())) {
            self.dynamic.inc("curves", name);
        }
        match conn.peer_certificates().and_then(|c| c.first()) {
            None => s.no_certificate.inc(),
            Some(leaf) if !self.cfg.common.san_matchers.is_empty() => {
                let sans = certs::sans(leaf);
                let ok = self
                    .cfg
                    .common
                    .san_matchers
                    .iter()
                    .any(|m| sans.iter().any(|(t, v)| *t == m.san_type && m.matcher.matches(v, m.ignore_case)));
                if !ok {
                    s.fail_verify_san.inc();
                    s.connection_error.inc();
                    return None;
                }
            }
            Some(_) => {}
        }
        Some((tls, facts))
    }

    /// Reloads the certificates if their files changed. A file that is unreadable or does not
    /// match its key keeps the old pair in service and counts `certificate_reload_failure`.
    pub fn reload_if_changed(&self) {
        let load = || {
            let keys = self.cfg.common.certificates.iter().map(certs::certified_key).collect::<Result<Vec<_>, _>>()?;
            self.resolver.keys.store(Arc::new(keys));
            Ok(())
        };
        let stats = &self.stats;
        let (success, failure) = (&stats.certificate_reload_success, &stats.certificate_reload_failure);
        // A failed load is tried again on the next change (or the next check, if the writer is mid-way).
        match reload::reload_on_change(&self.fingerprints, &self.cfg.common.certificates, success, failure, load) {
            Some(Ok(())) => tracing::info!(target: "connection", "TLS certificates reloaded"),
            Some(Err(e)) => tracing::warn!(
                target: "connection",
                "TLS certificate reload failed, keeping the previous certificates: {e}"
            ),
            None => {}
        }
    }

    /// What `/certs` shows: `(path or "<inline>", DER)` of the trusted CA certificates and of
    /// the leaf of each certificate chain in service.
    pub fn certificate_report(&self) -> CertReport {
        let keys = self.resolver.keys.load();
        CertReport {
            ca: reload::ca_report(self.cfg.common.trusted_ca.as_ref()),
            chain: reload::leaf_report(keys.iter().map(|k| &**k).zip(&self.cfg.common.certificates)),
        }
    }

    /// The certificates in service, DER.
    pub fn certificate_chains(&self) -> Vec<Vec<Vec<u8>>> {
        self.resolver.keys.load().iter().map(|k| k.cert.iter().map(|c| c.as_ref().to_vec()).collect()).collect()
    }
}

/// What one TLS context serves, for `/certs`.
pub struct CertReport {
    pub ca: Vec<(String, Vec<u8>)>,
    pub chain: Vec<(String, Vec<u8>)>,
}

/// Every live TLS server (for `/certs`).
pub fn all_servers() -> Vec<Arc<TlsServer>> {
    SERVERS.lock().map(|s| s.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default()
}

/// `server.days_until_first_cert_expiring`: the fewest days left over every served certificate
/// and every upstream TLS context's client certificate and trusted CA.
pub fn days_until_first_cert_expiring() -> Option<i64> {
    let served = all_servers()
        .iter()
        .flat_map(|s| s.certificate_chains())
        .filter_map(|chain| chain.first().and_then(|leaf| certs::info(leaf)))
        .map(|i| i.days_until_expiration)
        .min();
    let upstream = super::client::all_clients()
        .iter()
        .flat_map(|c| {
            let r = c.certificate_report();
            r.ca.into_iter().chain(r.chain).filter_map(|(_, der)| certs::info(&der)).map(|i| i.days_until_expiration)
        })
        .min();
    served.into_iter().chain(upstream).min()
}

/// Checks every TLS server's (and upstream client's) files every `every` until cancelled.
pub async fn reload_loop(every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        for s in all_servers() {
            s.reload_if_changed();
        }
        super::client::reload_all();
    }
}
