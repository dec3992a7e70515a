//! `envoy.transport_sockets.tls`: `DownstreamTlsContext` on a filter chain (TLS termination).
//! TLS itself is rustls; what rustls cannot do (TLS 1.0/1.1, CBC and non-ECDHE cipher suites)
//! is named in the error instead of being silently dropped.

use super::decode::{did_you_mean, Obj};

pub const TLS_SOCKET_NAME: &str = "envoy.transport_sockets.tls";
pub const DOWNSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
/// `envoy.transport_sockets.starttls`: clear text first, TLS once a filter (postgres_proxy)
/// negotiates the switch in band.
pub const STARTTLS_SOCKET_NAME: &str = "envoy.transport_sockets.starttls";
pub const STARTTLS_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.StartTlsConfig";
pub const UPSTREAM_STARTTLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.UpstreamStartTlsConfig";

/// A filter chain's TLS transport socket: TLS from the first byte, or after an in-band switch.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainTls {
    /// `envoy.transport_sockets.tls`.
    Tls(DownstreamTlsConfig),
    /// `envoy.transport_sockets.starttls` (`StartTlsConfig.tls_socket_config`).
    StartTls(DownstreamTlsConfig),
}

/// `config.core.v3.DataSource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    File(String),
    Inline(Vec<u8>),
}

/// One `tls_certificates` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKeyPair {
    pub chain: DataSource,
    pub key: DataSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// The SAN kinds of `match_typed_subject_alt_names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    Dns,
    Uri,
    Email,
    IpAddress,
}

/// `type.matcher.v3.StringMatcher` (exact, prefix, suffix, contains, safe_regex).
#[derive(Debug, Clone)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(regex::Regex),
}

impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

impl StringMatch {
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        let lowered = if ignore_case { value.to_ascii_lowercase() } else { value.to_string() };
        let v = lowered.as_str();
        let norm = |p: &str| if ignore_case { p.to_ascii_lowercase() } else { p.to_string() };
        match self {
            StringMatch::Exact(p) => v == norm(p),
            StringMatch::Prefix(p) => v.starts_with(&norm(p)),
            StringMatch::Suffix(p) => v.ends_with(&norm(p)),
            StringMatch::Contains(p) => v.contains(&norm(p)),
            StringMatch::Regex(r) => r.is_match(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SanMatcher {
    pub san_type: SanType,
    pub matcher: StringMatch,
    pub ignore_case: bool,
}

/// A decoded `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamTlsConfig {
    pub common: CommonTls,
    pub require_client_certificate: bool,
    pub require_sni: bool,
}

/// The TLS 1.2 suites rustls implements, by the OpenSSL name Envoy's config uses.
pub const TLS12_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

pub(crate) fn data_source(o: &mut Obj, key: &'static str) -> Option<DataSource> {
    let mut d = o.obj(key, "DataSource")?;
    let out = if let Some(f) = d.string("filename") {
        Some(DataSource::File(f))
    } else if let Some(s) = d.string("inline_string") {
        Some(DataSource::Inline(s.into_bytes()))
    } else if let Some(b) = d.string("inline_bytes") {
        // proto JSON carries bytes as base64; PEM is text, so accept it as written too.
        Some(DataSource::Inline(b.into_bytes()))
    } else {
        d.cx.error(&d.path, "a DataSource needs 'filename', 'inline_string' or 'inline_bytes'");
        None
    };
    d.finish(&["environment_variable", "watched_directory"]);
    out
}

fn version(o: &mut Obj, key: &'static str) -> Option<Option<TlsVersion>> {
    let v = o.enumeration(key, &["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"])?;
    Some(match v {
        "TLSv1_2" => Some(TlsVersion::V1_2),
        "TLSv1_3" => Some(TlsVersion::V1_3),
        "TLSv1_0" | "TLSv1_1" => {
            o.cx.warn(
                &o.at(key),
                format!("{v} is not implemented by rustls; Legate uses TLS 1.2 as the lowest version"),
            );
            Some(TlsVersion::V1_2)
        }
        _ => None,
    })
}

pub(crate) fn string_match(o: &mut Obj) -> Option<StringMatch> {
    let m = if let Some(s) = o.string("exact") {
        StringMatch::Exact(s)
    } else if let Some(s) = o.string("prefix") {
        StringMatch::Prefix(s)
    } else if let Some(s) = o.string("suffix") {
        StringMatch::Suffix(s)
    } else if let Some(s) = o.string("contains") {
        StringMatch::Contains(s)
    } else if let Some(mut r) = o.obj("safe_regex", "RegexMatcher") {
        let re = r.req_string("regex");
        r.accept(&["google_re2"]);
        r.finish(&[]);
        match regex::Regex::new(&format!("^(?:{re})$")) {
            Ok(re) => StringMatch::Regex(re),
            Err(e) => {
                o.error("safe_regex", format!("invalid regex: {e}"));
                return None;
            }
        }
    } else {
        o.cx.error(&o.path, "a StringMatcher needs one of exact, prefix, suffix, contains, safe_regex");
        return None;
    };
    Some(m)
}

impl DownstreamTlsConfig {
    /// Decodes a filter chain's `transport_socket`: `tls`, or `starttls` (whose
    /// `tls_socket_config` is the same `DownstreamTlsContext`).
    pub fn decode_transport_socket(ts: &mut Obj) -> Option<ChainTls> {
        let name = ts.string("name").unwrap_or_default();
        let mut tc = ts.obj("typed_config", "Any")?;
        let ty = tc.string("@type").unwrap_or_default();
        if ty == STARTTLS_TYPE {
            tc.retype("StartTlsConfig");
            decode_cleartext_socket(&mut tc);
            let out = match tc.obj("tls_socket_config", "DownstreamTlsContext") {
                Some(mut t) => Self::decode_context(&mut t),
                None => {
                    tc.missing("tls_socket_config");
                    None
                }
            };
            tc.finish(&[]);
            return out.map(ChainTls::StartTls);
        }
        if ty != DOWNSTREAM_TLS_TYPE {
            let shown = if ty.is_empty() { name } else { ty };
            let mut msg = format!("transport socket '{shown}' is not supported by Legate; use {TLS_SOCKET_NAME} with {DOWNSTREAM_TLS_TYPE} (or {STARTTLS_SOCKET_NAME} with {STARTTLS_TYPE} for postgres_proxy)");
            if let Some(b) = did_you_mean(&shown, [DOWNSTREAM_TLS_TYPE, STARTTLS_TYPE].into_iter()) {
                msg = format!("unknown transport socket type '{shown}' (did you mean '{b}'?)");
            }
            tc.error("@type", msg);
            return None;
        }
        tc.retype("DownstreamTlsContext");
        Self::decode_context(&mut tc).map(ChainTls::Tls)
    }

    /// A `DownstreamTlsContext` message (the body of either socket).
    fn decode_context(tc: &mut Obj) -> Option<DownstreamTlsConfig> {
        let out = Self::decode(tc);
        tc.finish(&[
            "session_ticket_keys",
            "session_ticket_keys_sds_secret_config",
            "disable_stateless_session_resumption",
            "disable_stateful_session_resumption",
            "ocsp_staple_policy",
            "full_scan_certs_on_sni_mismatch",
            "prefer_client_ciphers",
            "tls_session_timeout",
        ]);
        out
    }

    fn decode(o: &mut Obj) -> Option<DownstreamTlsConfig> {
        let require_client_certificate = o.bool("require_client_certificate").unwrap_or(false);
        let require_sni = o.bool("require_sni").unwrap_or(false);
        o.accept(&["session_timeout"]);
        let mut common = o.obj("common_tls_context", "CommonTlsContext");
        let Some(c) = common.as_mut() else {
            o.missing("common_tls_context");
            return None;
        };
        let sds = c.has("tls_certificate_sds_secret_configs");
        let common = CommonTls::decode(c, DEFAULT_SERVER_MAX_VERSION);
        if common.certificates.is_empty() && !sds {
            c.error("tls_certificates", "a DownstreamTlsContext needs at least one certificate");
        }
        if require_client_certificate && common.trusted_ca.is_none() {
            o.error(
                "require_client_certificate",
                "require_client_certificate needs common_tls_context.validation_context.trusted_ca",
            );
        }
        Some(DownstreamTlsConfig { common, require_client_certificate, require_sni })
    }
}

/// `cleartext_socket_config` of a starttls socket: a `RawBuffer`, which has no fields.
pub fn decode_cleartext_socket(tc: &mut Obj) {
    if let Some(mut raw) = tc.obj("cleartext_socket_config", "RawBuffer") {
        raw.finish(&[]);
    }
}

/// Envoy's default lowest TLS version (clients and servers): TLS 1.2.
pub const DEFAULT_MIN_VERSION: TlsVersion = TlsVersion::V1_2;
/// Envoy's default highest TLS version for servers (downstream): TLS 1.3.
pub const DEFAULT_SERVER_MAX_VERSION: TlsVersion = TlsVersion::V1_3;
/// Envoy's default highest TLS version for clients (upstream): TLS 1.2 (Envoy 1.40 still
/// negotiates TLS 1.2 with a TLS 1.3 upstream unless `tls_maximum_protocol_version` says more).
pub const DEFAULT_CLIENT_MAX_VERSION: TlsVersion = TlsVersion::V1_2;

/// A decoded `CommonTlsContext`: what both directions (`DownstreamTlsContext`,
/// `UpstreamTlsContext`) share.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonTls {
    pub certificates: Vec<CertKeyPair>,
    pub alpn_protocols: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// OpenSSL-style names, checked against what rustls implements.
    pub cipher_suites: Vec<String>,
    pub trusted_ca: Option<DataSource>,
    pub san_matchers: Vec<SanMatcher>,
}

impl CommonTls {
    /// No `common_tls_context`: no certificates, no verification, Envoy's default versions.
    pub(crate) fn empty(default_max: TlsVersion) -> CommonTls {
        CommonTls {
            certificates: Vec::new(),
            alpn_protocols: Vec::new(),
            min_version: DEFAULT_MIN_VERSION,
            max_version: default_max,
            cipher_suites: Vec::new(),
            trusted_ca: None,
            san_matchers: Vec::new(),
        }
    }

    /// Decodes a `CommonTlsContext` (and finishes it); `default_max` is the side's default
    /// highest version.
    pub(crate) fn decode(c: &mut Obj, default_max: TlsVersion) -> CommonTls {
        let certificates: Vec<CertKeyPair> = c
            .list_of("tls_certificates", "TlsCertificate", |t| {
                let chain = data_source(t, "certificate_chain");
                let key = data_source(t, "private_key");
                if chain.is_none() && !t.has("certificate_chain") {
                    t.missing("certificate_chain");
                }
                if key.is_none() && !t.has("private_key") {
                    t.missing("private_key");
                }
                t.finish(&[
                    "password",
                    "pkey_provider",
                    "ocsp_staple",
                    "signed_certificate_timestamp",
                    "watched_directory",
                    "private_key_provider",
                ]);
                Some(CertKeyPair { chain: chain?, key: key? })
            })
            .into_iter()
            .flatten()
            .collect();
        let alpn_protocols = c.strings("alpn_protocols");
        let (mut min_version, mut max_version) = (DEFAULT_MIN_VERSION, default_max);
        let mut cipher_suites = Vec::new();
        if let Some(mut p) = c.obj("tls_params", "TlsParameters") {
            if let Some(Some(v)) = version(&mut p, "tls_minimum_protocol_version") {
                min_version = v;
            }
            match p
                .enumeration("tls_maximum_protocol_version", &["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"])
            {
                Some("TLSv1_2") => max_version = TlsVersion::V1_2,
                Some("TLSv1_3") => max_version = TlsVersion::V1_3,
                Some(v @ ("TLSv1_0" | "TLSv1_1")) => p.error(
                    "tls_maximum_protocol_version",
                    format!("{v} is not implemented by rustls (Legate supports TLS 1.2 and 1.3)"),
                ),
                _ => {}
            }
            if min_version > max_version {
                p.cx.error(&p.path, "tls_minimum_protocol_version is above tls_maximum_protocol_version");
            }
            let cx = p.cx;
            for (path, v) in p.list("cipher_suites") {
                let Some(s) = v.as_str() else {
                    cx.error(&path, "expected a cipher suite name");
                    continue;
                };
                // `[A|B]` is an OpenSSL equal-preference group.
                for name in s.trim_matches(['[', ']']).split('|') {
                    if TLS12_SUITES.contains(&name) {
                        cipher_suites.push(name.to_string());
                    } else {
                        let mut msg = format!(
                            "cipher suite '{name}' is not implemented by rustls; supported: {}",
                            TLS12_SUITES.join(", ")
                        );
                        if let Some(b) = did_you_mean(name, TLS12_SUITES.iter().copied()) {
                            msg.push_str(&format!(" (did you mean '{b}'?)"));
                        }
                        cx.error(&path, msg);
                    }
                }
            }
            p.finish(&["ecdh_curves", "signature_algorithms", "compliance_policies"]);
        }
        let (mut trusted_ca, mut san_matchers) = (None, Vec::new());
        if let Some(mut v) = c.obj("validation_context", "CertificateValidationContext") {
            trusted_ca = data_source(&mut v, "trusted_ca");
            san_matchers = v
                .list_of("match_typed_subject_alt_names", "SubjectAltNameMatcher", |m| {
                    let san_type = match m.enumeration(
                        "san_type",
                        &["SAN_TYPE_UNSPECIFIED", "EMAIL", "DNS", "URI", "IP_ADDRESS", "OTHER_NAME"],
                    ) {
                        Some("EMAIL") => SanType::Email,
                        Some("DNS") => SanType::Dns,
                        Some("URI") => SanType::Uri,
                        Some("IP_ADDRESS") => SanType::IpAddress,
                        other => {
                            m.error(
                                "san_type",
                                format!("san_type {} is not supported by Legate", other.unwrap_or("(missing)")),
                            );
                            return None;
                        }
                    };
                    let mut sm = m.obj("matcher", "StringMatcher")?;
                    let ignore_case = sm.bool("ignore_case").unwrap_or(false);
                    let matcher = string_match(&mut sm);
                    sm.finish(&[]);
                    m.finish(&["oid"]);
                    Some(SanMatcher { san_type, matcher: matcher?, ignore_case })
                })
                .into_iter()
                .flatten()
                .collect();
            v.accept(&["trust_chain_verification"]);
            v.finish(&[
                "verify_certificate_spki",
                "verify_certificate_hash",
                "crl",
                "allow_expired_certificate",
                "match_subject_alt_names",
                "custom_validator_config",
                "only_verify_leaf_cert_crl",
                "max_verify_depth",
                "system_root_certs",
                "watched_directory",
                "custom_signer_config",
            ]);
        }
        c.finish(&[
            "tls_certificate_sds_secret_configs",
            "validation_context_sds_secret_config",
            "combined_validation_context",
            "tls_certificate_provider_instance",
            "tls_certificate_certificate_provider",
            "tls_certificate_certificate_provider_instance",
            "validation_context_certificate_provider",
            "validation_context_certificate_provider_instance",
            "custom_handshaker",
            "key_log",
            "custom_tls_certificate_selector",
        ]);
        CommonTls { certificates, alpn_protocols, min_version, max_version, cipher_suites, trusted_ca, san_matchers }
    }
}
