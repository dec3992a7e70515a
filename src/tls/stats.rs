//! The `ssl.*` stats of a TLS context (a listener's filter chain or a cluster), with Envoy's
//! names, and the OpenSSL-style names Envoy gives ciphers, curves and signature algorithms.

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::{CipherSuite, NamedGroup, SignatureScheme};

use crate::define_stats;
use crate::stats::{Counter, Store};

define_stats! {
    /// `listener.<addr>.ssl.*` (Envoy's names), plus Legate's certificate-reload counters.
    pub struct SslStats {
        counter connection_error,
        counter handshake,
        counter session_reused,
        counter no_certificate,
        counter fail_verify_no_cert,
        counter fail_verify_error,
        counter fail_verify_san,
        counter fail_verify_cert_hash,
        counter ocsp_staple_failed,
        counter ocsp_staple_omitted,
        counter ocsp_staple_responses,
        counter ocsp_staple_requests,
        counter was_key_usage_invalid,
        counter certificate_reload_success,
        counter certificate_reload_failure,
    }
}

define_stats! {
    /// `cluster.<c>.ssl.*`: Envoy 1.40 has no `was_key_usage_invalid` there; plus Legate's
    /// client-certificate reload counters.
    pub struct ClientSslStats {
        counter connection_error,
        counter handshake,
        counter session_reused,
        counter no_certificate,
        counter fail_verify_no_cert,
        counter fail_verify_error,
        counter fail_verify_san,
        counter fail_verify_cert_hash,
        counter ocsp_staple_failed,
        counter ocsp_staple_omitted,
        counter ocsp_staple_responses,
        counter ocsp_staple_requests,
        counter certificate_reload_success,
        counter certificate_reload_failure,
    }
}

/// `ssl.ciphers.<c>`, `ssl.versions.<v>`, `ssl.curves.<c>`: created on first use, as Envoy does
/// (the set is small and fixed by what rustls implements).
pub struct DynamicStats {
    store: Store,
    prefix: String,
    made: Mutex<HashMap<String, Counter>>,
}

impl std::fmt::Debug for DynamicStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicStats").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl DynamicStats {
    pub fn new(store: &Store, prefix: &str) -> DynamicStats {
        DynamicStats { store: store.clone(), prefix: prefix.to_string(), made: Mutex::new(HashMap::new()) }
    }

    pub fn inc(&self, kind: &str, name: &str) {
        let key = format!("{kind}.{name}");
        if let Ok(mut m) = self.made.lock() {
            m.entry(key).or_insert_with_key(|k| self.store.counter(&format!("{}{k}", self.prefix))).inc();
        }
    }
}

pub fn openssl_cipher_name(s: CipherSuite) -> Option<&'static str> {
    Some(match s {
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        _ => return None,
    })
}

pub fn curve_name(g: NamedGroup) -> Option<&'static str> {
    Some(match g {
        NamedGroup::X25519 => "X25519",
        NamedGroup::secp256r1 => "P-256",
        NamedGroup::secp384r1 => "P-384",
        NamedGroup::secp521r1 => "P-521",
        _ => return None,
    })
}

/// BoringSSL's name of a signature scheme (`ssl.sigalgs.<name>`).
pub fn sigalg_name(s: SignatureScheme) -> Option<&'static str> {
    Some(match s {
        SignatureScheme::RSA_PKCS1_SHA1 => "rsa_pkcs1_sha1",
        SignatureScheme::ECDSA_SHA1_Legacy => "ecdsa_sha1",
        SignatureScheme::RSA_PKCS1_SHA256 => "rsa_pkcs1_sha256",
        SignatureScheme::RSA_PKCS1_SHA384 => "rsa_pkcs1_sha384",
        SignatureScheme::RSA_PKCS1_SHA512 => "rsa_pkcs1_sha512",
        SignatureScheme::ECDSA_NISTP256_SHA256 => "ecdsa_secp256r1_sha256",
        SignatureScheme::ECDSA_NISTP384_SHA384 => "ecdsa_secp384r1_sha384",
        SignatureScheme::ECDSA_NISTP521_SHA512 => "ecdsa_secp521r1_sha512",
        SignatureScheme::RSA_PSS_SHA256 => "rsa_pss_rsae_sha256",
        SignatureScheme::RSA_PSS_SHA384 => "rsa_pss_rsae_sha384",
        SignatureScheme::RSA_PSS_SHA512 => "rsa_pss_rsae_sha512",
        SignatureScheme::ED25519 => "ed25519",
        _ => return None,
    })
}
