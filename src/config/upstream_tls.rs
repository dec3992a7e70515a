//! `envoy.transport_sockets.tls` on a cluster: `UpstreamTlsContext` (TLS origination).
//!
//! As in Envoy, the server's certificate is verified only when
//! `common_tls_context.validation_context.trusted_ca` is given (Envoy's documented default is
//! no verification); the system roots are one `trusted_ca: {filename:
//! /etc/ssl/certs/ca-certificates.crt}` away. The host name (`sni`) is never checked against the
//! certificate: names are checked only through `match_typed_subject_alt_names`, as in Envoy.

use super::decode::{did_you_mean, Obj};
use super::tls::{decode_cleartext_socket, CommonTls, TLS_SOCKET_NAME, UPSTREAM_STARTTLS_TYPE};

pub const UPSTREAM_TLS_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
pub const RAW_BUFFER_NAME: &str = "envoy.transport_sockets.raw_buffer";
pub const RAW_BUFFER_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
/// Envoy's default `max_session_keys`: one stored session per upstream server name.
pub const DEFAULT_MAX_SESSION_KEYS: u32 = 1;

/// A decoded `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTlsConfig {
    /// The SNI sent; none when empty (Envoy sends no SNI then).
    pub sni: Option<String>,
    /// Client certificates (upstream mTLS: at most one, as in Envoy), ALPN, versions, ciphers;
    /// no `trusted_ca` = the server is not verified (Envoy's default).
    pub common: CommonTls,
    /// Size of the session-resumption cache; 0 disables resumption.
    pub max_session_keys: u32,
}

/// A cluster's TLS transport socket.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterTls {
    /// `envoy.transport_sockets.tls`: TLS from the first byte.
    Tls(UpstreamTlsConfig),
    /// `envoy.transport_sockets.starttls` (`UpstreamStartTlsConfig`): clear text until a filter
    /// (postgres_proxy's `upstream_ssl`) negotiates the switch.
    StartTls(UpstreamTlsConfig),
}

/// Decodes a cluster's `transport_socket`: `None` for the plain `raw_buffer` socket (and on errors).
pub fn decode_cluster_transport_socket(ts: &mut Obj) -> Option<ClusterTls> {
    let name = ts.string("name").unwrap_or_default();
    let Some(mut tc) = ts.obj("typed_config", "Any") else {
        if name != RAW_BUFFER_NAME {
            let msg = if name == TLS_SOCKET_NAME || name == super::tls::STARTTLS_SOCKET_NAME {
                format!("{TLS_SOCKET_NAME} needs a typed_config with @type {UPSTREAM_TLS_TYPE}")
            } else {
                format!("transport socket '{name}' is not supported by Legate; use {TLS_SOCKET_NAME} with {UPSTREAM_TLS_TYPE}")
            };
            ts.error("name", msg);
        }
        ts.finish(&[]);
        return None;
    };
    ts.finish(&[]);
    let ty = tc.string("@type").unwrap_or_default();
    if ty == RAW_BUFFER_TYPE {
        tc.finish(&[]);
        return None;
    }
    if ty == UPSTREAM_STARTTLS_TYPE {
        tc.retype("UpstreamStartTlsConfig");
        decode_cleartext_socket(&mut tc);
        let out = match tc.obj("tls_socket_config", "UpstreamTlsContext") {
            Some(mut t) => {
                let c = decode(&mut t);
                t.finish(&["auto_host_sni", "auto_sni_san_validation", "enforce_rsa_key_usage"]);
                Some(ClusterTls::StartTls(c))
            }
            None => {
                tc.missing("tls_socket_config");
                None
            }
        };
        tc.finish(&[]);
        return out;
    }
    if ty != UPSTREAM_TLS_TYPE {
        let shown = if ty.is_empty() { name } else { ty };
        let mut msg = format!(
            "transport socket '{shown}' is not supported by Legate on a cluster; use {TLS_SOCKET_NAME} with {UPSTREAM_TLS_TYPE}"
        );
        if let Some(b) = did_you_mean(&shown, [UPSTREAM_TLS_TYPE].into_iter()) {
            msg = format!("unknown transport socket type '{shown}' (did you mean '{b}'?)");
        }
        tc.error("@type", msg);
        return None;
    }
    tc.retype("UpstreamTlsContext");
    let out = decode(&mut tc);
    tc.finish(&["auto_host_sni", "auto_sni_san_validation", "enforce_rsa_key_usage"]);
    Some(ClusterTls::Tls(out))
}

fn decode(o: &mut Obj) -> UpstreamTlsConfig {
    let sni = o.string("sni").filter(|s| !s.is_empty());
    if let Some(s) = &sni {
        if rustls_pki_types::ServerName::try_from(s.as_str()).is_err() {
            o.error("sni", format!("'{s}' is not a valid DNS name or IP address for SNI"));
        }
    }
    // Renegotiation is a TLS 1.2 feature rustls does not implement (by design).
    if o.bool("allow_renegotiation") == Some(true) {
        o.error(
            "allow_renegotiation",
            "allow_renegotiation: true is not supported by Legate (rustls never renegotiates)",
        );
    }
    let max_session_keys =
        o.uint("max_session_keys", 0, u64::from(u32::MAX)).map_or(DEFAULT_MAX_SESSION_KEYS, |v| v as u32);
    let common = match o.obj("common_tls_context", "CommonTlsContext") {
        Some(mut c) => CommonTls::decode(&mut c, super::tls::DEFAULT_CLIENT_MAX_VERSION),
        None => CommonTls::empty(super::tls::DEFAULT_CLIENT_MAX_VERSION),
    };
    if common.certificates.len() > 1 {
        o.error(
            "common_tls_context.tls_certificates",
            "an UpstreamTlsContext takes at most one client certificate (as in Envoy)",
        );
    }
    if !common.san_matchers.is_empty() && common.trusted_ca.is_none() {
        o.error(
            "common_tls_context.validation_context.match_typed_subject_alt_names",
            "SAN-based verification of peer certificates without trusted CA is insecure and not allowed (Envoy's rule): add validation_context.trusted_ca",
        );
    }
    UpstreamTlsConfig { sni, common, max_session_keys }
}

#[cfg(test)]
mod tests {
    use super::super::tls::{DataSource, TlsVersion};
    use super::super::{load, LoadOptions};
    use super::*;

    fn cluster_yaml(tls: &str) -> String {
        format!(
            "static_resources:\n  clusters:\n  - name: up\n    load_assignment:\n      cluster_name: up\n      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 1}}}}}}}}]}}]\n    transport_socket:\n      name: envoy.transport_sockets.tls\n      typed_config:\n        '@type': {UPSTREAM_TLS_TYPE}\n{tls}"
        )
    }

    fn decode(tls: &str) -> Result<Option<UpstreamTlsConfig>, String> {
        let opts = LoadOptions { config_yaml: Some(cluster_yaml(tls)), ..Default::default() };
        load(&opts).map(|l| l.bootstrap.clusters[0].tls.clone()).map_err(|e| e.to_string())
    }

    #[test]
    fn upstream_tls_context_decodes_with_envoy_defaults() {
        let t = decode("        sni: db.example.com\n        common_tls_context:\n          alpn_protocols: [h2]\n          validation_context: {trusted_ca: {filename: /etc/ssl/certs/ca-certificates.crt}, match_typed_subject_alt_names: [{san_type: DNS, matcher: {suffix: .example.com}}]}\n")
            .expect("valid")
            .expect("tls");
        assert_eq!(t.sni.as_deref(), Some("db.example.com"));
        assert_eq!(t.common.alpn_protocols, ["h2"]);
        assert_eq!((t.common.min_version, t.common.max_version), (TlsVersion::V1_2, TlsVersion::V1_2));
        assert_eq!(t.max_session_keys, DEFAULT_MAX_SESSION_KEYS);
        assert_eq!(t.common.trusted_ca, Some(DataSource::File("/etc/ssl/certs/ca-certificates.crt".into())));
        assert_eq!(t.common.san_matchers.len(), 1);
        let bare =
            decode("        max_session_keys: 0\n        allow_renegotiation: false\n").expect("valid").expect("tls");
        assert_eq!((bare.sni, bare.common.trusted_ca, bare.max_session_keys), (None, None, 0));
    }

    #[test]
    fn unsupported_upstream_tls_settings_are_named() {
        let e = decode("        allow_renegotiation: true\n").expect_err("rejected");
        assert!(e.contains("allow_renegotiation: true is not supported by Legate"), "{e}");
        let e = decode("        common_tls_context: {validation_context: {match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: a}}]}}\n")
            .expect_err("rejected");
        assert!(e.contains("without trusted CA is insecure"), "{e}");
        let e = decode("        auto_host_sni: true\n").expect_err("rejected");
        assert!(e.contains("field 'auto_host_sni' of UpstreamTlsContext is not supported by Legate"), "{e}");
        let e = decode("        sni: 'bad name!'\n").expect_err("rejected");
        assert!(e.contains("not a valid DNS name"), "{e}");
    }

    #[test]
    fn raw_buffer_transport_socket_is_plain_tcp() {
        let yaml = cluster_yaml("").replace(
            &format!(
                "      name: envoy.transport_sockets.tls\n      typed_config:\n        '@type': {UPSTREAM_TLS_TYPE}\n"
            ),
            &format!("      name: {RAW_BUFFER_NAME}\n"),
        );
        let l = load(&LoadOptions { config_yaml: Some(yaml), ..Default::default() }).expect("valid");
        assert_eq!(l.bootstrap.clusters[0].tls, None);
    }

    fn starttls_yaml(body: &str) -> String {
        cluster_yaml("").replace(
            &format!("      name: envoy.transport_sockets.tls\n      typed_config:\n        '@type': {UPSTREAM_TLS_TYPE}\n"),
            &format!("      name: envoy.transport_sockets.starttls\n      typed_config:\n        '@type': {UPSTREAM_STARTTLS_TYPE}\n{body}"),
        )
    }

    #[test]
    fn starttls_transport_socket_is_plain_until_switched() {
        let yaml =
            starttls_yaml("        cleartext_socket_config: {}\n        tls_socket_config: {sni: db.example.com}\n");
        let l = load(&LoadOptions { config_yaml: Some(yaml), ..Default::default() }).expect("valid");
        let c = &l.bootstrap.clusters[0];
        assert_eq!(c.tls, None, "connections start in clear");
        assert_eq!(c.starttls.as_ref().and_then(|t| t.sni.as_deref()), Some("db.example.com"));
        let yaml = starttls_yaml("        tls_socket_config: {alow_renegotiation: false}\n");
        let e = load(&LoadOptions { config_yaml: Some(yaml), ..Default::default() }).expect_err("typo");
        let e = e.to_string();
        assert!(e.contains("transport_socket.typed_config.tls_socket_config.alow_renegotiation"), "{e}");
        assert!(e.contains("did you mean 'allow_renegotiation'"), "{e}");
        let yaml = starttls_yaml("        cleartext_socket_config: {}\n");
        let e = load(&LoadOptions { config_yaml: Some(yaml), ..Default::default() }).expect_err("missing");
        assert!(e.to_string().contains("tls_socket_config"), "{e}");
    }
}
