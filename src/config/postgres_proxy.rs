//! `envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy`: the config of the
//! postgres_proxy observer filter.
//!
//! TLS is not in Legate yet, so the fields that need it (`terminate_ssl: true`, which needs the
//! `starttls` transport socket, and `upstream_ssl`/`downstream_ssl` other than `DISABLE`) are
//! config errors that say so, never silently ignored.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresProxyConfig {
    pub stat_prefix: String,
    pub enable_sql_parsing: bool,
    /// Always false today (true is a config error until Legate has TLS).
    pub terminate_ssl: bool,
    pub path: String,
}

impl PostgresProxyConfig {
    pub fn decode(o: &mut Obj) -> PostgresProxyConfig {
        let stat_prefix = o.req_string("stat_prefix");
        let enable_sql_parsing = o.bool("enable_sql_parsing").unwrap_or(DEFAULT_ENABLE_SQL_PARSING);
        let terminate_ssl = o.bool("terminate_ssl").unwrap_or(DEFAULT_TERMINATE_SSL);
        if terminate_ssl {
            o.error(
                "terminate_ssl",
                "terminating SSL needs TLS support (the starttls transport socket), which Legate does not have yet",
            );
        }
        for key in ["upstream_ssl", "downstream_ssl"] {
            if let Some(mode) = o.enumeration(key, SSL_MODES) {
                if mode != "DISABLE" {
                    o.error(key, format!("{key}: {mode} needs TLS support (starttls), which Legate does not have yet"));
                }
            }
        }
        o.finish(&[]);
        PostgresProxyConfig { stat_prefix, enable_sql_parsing, terminate_ssl: false, path: o.path.clone() }
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
    fn tls_settings_say_tls_is_missing() {
        let (_, errs) = decode("stat_prefix: pg\nterminate_ssl: true\nupstream_ssl: REQUIRE\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.contains("TLS support")), "{errs:?}");
        let (_, errs) = decode("stat_prefix: pg\nupstream_ssl: DISABLE\nenable_sql_parsing: false\n");
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let (_, errs) = decode("stat_prefix: pg\nenable_sql_parsin: true\n");
        assert!(errs.iter().any(|e| e.contains("did you mean 'enable_sql_parsing'")), "{errs:?}");
    }
}
