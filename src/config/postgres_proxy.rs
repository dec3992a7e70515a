//! `envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy`: the config of the
//! postgres_proxy observer filter.
//!
//! The SSL fields work as in Envoy: `terminate_ssl` (deprecated) and `downstream_ssl` answer a
//! client's SSLRequest with `S` and terminate TLS with the filter chain's `starttls` transport
//! socket; `upstream_ssl` asks the server for TLS with the cluster's `starttls` socket. Whether
//! the chain has the socket is checked with the chain (`listener.rs`), where both are known.

use super::decode::Obj;

pub const POSTGRES_PROXY_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy";
pub const POSTGRES_PROXY_NAME: &str = "envoy.filters.network.postgres_proxy";

/// Envoy's default for `enable_sql_parsing` (a BoolValue that defaults to true).
pub const DEFAULT_ENABLE_SQL_PARSING: bool = true;
/// Envoy's default for the deprecated `terminate_ssl`.
pub const DEFAULT_TERMINATE_SSL: bool = false;

/// `PostgresProxy.SSLMode`.
pub const SSL_MODES: &[&str] = &["DISABLE", "REQUIRE", "ALLOW"];

/// `PostgresProxy.SSLMode` (Envoy's default: `DISABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    #[default]
    Disable,
    Require,
    Allow,
}

impl SslMode {
    fn from_name(s: &str) -> SslMode {
        match s {
            "REQUIRE" => SslMode::Require,
            "ALLOW" => SslMode::Allow,
            _ => SslMode::Disable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresProxyConfig {
    pub stat_prefix: String,
    pub enable_sql_parsing: bool,
    /// The deprecated switch: the same as `downstream_ssl: ALLOW`.
    pub terminate_ssl: bool,
    /// `ALLOW`: terminate TLS when the client asks for it; `REQUIRE`: also refuse clients that
    /// do not ask.
    pub downstream_ssl: SslMode,
    /// `REQUIRE`: TLS to the server or no session; `ALLOW`: TLS when the server agrees.
    pub upstream_ssl: SslMode,
    pub path: String,
}

impl PostgresProxyConfig {
    pub fn decode(o: &mut Obj) -> PostgresProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let enable_sql_parsing = o.bool("enable_sql_parsing").unwrap_or(DEFAULT_ENABLE_SQL_PARSING);
        let terminate_ssl = o.bool("terminate_ssl").unwrap_or(DEFAULT_TERMINATE_SSL);
        let upstream_ssl = o.enumeration("upstream_ssl", SSL_MODES).map(SslMode::from_name).unwrap_or_default();
        let downstream_ssl = o.enumeration("downstream_ssl", SSL_MODES).map(SslMode::from_name).unwrap_or_default();
        o.finish(&[]);
        PostgresProxyConfig {
            stat_prefix,
            enable_sql_parsing,
            terminate_ssl,
            downstream_ssl,
            upstream_ssl,
            path: o.path.clone(),
        }
    }

    /// Whether the filter answers the client's SSLRequest itself (and so needs the chain's
    /// `starttls` transport socket).
    pub fn terminates_ssl(&self) -> bool {
        self.terminate_ssl || self.downstream_ssl != SslMode::Disable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::decode::Cx;
    use crate::config::source::Positions;

    fn decode(yaml: &str) -> (Option<PostgresProxyConfig>, Vec<String>) {
        let v: serde_json::Value = serde_saphyr::from_str(yaml).expect("yaml");
        let p = Positions::default();
        let cx = Cx::new(&p, false);
        let out = Obj::new(&cx, "f", &v, "PostgresProxy").map(|mut o| PostgresProxyConfig::decode(&mut o));
        let (errors, _) = cx.into_parts();
        (out, errors.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn defaults_are_envoys() {
        let (c, errs) = decode("stat_prefix: pg\n");
        assert!(errs.is_empty(), "{errs:?}");
        let c = c.expect("config");
        assert!(c.enable_sql_parsing);
        assert!(!c.terminate_ssl);
    }

    #[test]
    fn ssl_settings_decode() {
        let (c, errs) = decode("stat_prefix: pg\nterminate_ssl: true\nupstream_ssl: REQUIRE\n");
        assert!(errs.is_empty(), "{errs:?}");
        let c = c.expect("config");
        assert!(c.terminates_ssl());
        assert_eq!((c.downstream_ssl, c.upstream_ssl), (SslMode::Disable, SslMode::Require));
        let (c, errs) = decode("stat_prefix: pg\nupstream_ssl: DISABLE\ndownstream_ssl: ALLOW\n");
        assert!(errs.is_empty(), "{errs:?}");
        let c = c.expect("config");
        assert!(c.terminates_ssl() && !c.terminate_ssl);
        let (_, errs) = decode("stat_prefix: pg\nupstream_ssl: PREFER\n");
        assert!(errs.iter().any(|e| e.contains("PREFER")), "{errs:?}");
    }

    /// A bootstrap with postgres_proxy (`pg`, indented field lines) before `terminal`, and a
    /// chain `transport_socket` if given.
    fn chain_errors(pg: &str, terminal: &str, socket: &str) -> String {
        let yaml = format!(
            "static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.postgres_proxy
        typed_config:
          '@type': {POSTGRES_PROXY_TYPE}
          stat_prefix: pg
{pg}{terminal}{socket}  clusters: []
"
        );
        let opts = crate::config::LoadOptions { config_yaml: Some(yaml), ..Default::default() };
        crate::config::load(&opts).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn ssl_settings_need_their_sockets_and_tcp_proxy() {
        let tcp = "      - name: envoy.filters.network.tcp_proxy
        typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: t, cluster: c}
";
        let hcm = "      - name: envoy.filters.network.http_connection_manager
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: h
          route_config: {virtual_hosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /}, direct_response: {status: 200}}]}]}
          http_filters: [{name: envoy.filters.http.router, typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
";
        let e = chain_errors("          downstream_ssl: REQUIRE\n", tcp, "");
        assert!(e.contains("filters[0].typed_config.downstream_ssl") && e.contains("starttls"), "{e}");
        let e = chain_errors("          upstream_ssl: ALLOW\n", hcm, "");
        assert!(e.contains("filters[0].typed_config.upstream_ssl") && e.contains("needs tcp_proxy"), "{e}");
        let e = chain_errors("          upstream_ssl: REQUIRE\n", tcp, "");
        assert!(!e.contains("upstream_ssl"), "{e}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let (_, errs) = decode("stat_prefix: pg\nenable_sql_parsin: true\n");
        assert!(errs.iter().any(|e| e.contains("did you mean 'enable_sql_parsing'")), "{errs:?}");
    }
}
