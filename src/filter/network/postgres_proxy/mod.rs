//! `envoy.filters.network.postgres_proxy`: an observer placed before tcp_proxy that decodes
//! PostgreSQL's protocol 3.0 in both directions (with `legate_codecs::postgres`) and counts
//! `postgres.<stat_prefix>.*` from what the server confirms: CommandComplete tags for
//! statements, ReadyForQuery's transaction status and the COMMIT/ROLLBACK tags for
//! transactions, ErrorResponse/NoticeResponse severities, AuthenticationOk for sessions. So the
//! counts are the same for the simple and the extended protocol, named or unnamed statements
//! executed any number of times, pipelining, COPY, and transactions that fail part-way.
//!
//! Bytes are never held back or copied for pass-through: the framers skip bodies they do not
//! need by counting (see `legate_codecs::postgres::framer`).
//!
//! Files: `session.rs` (the per-connection observer), `tx.rs` (transaction accounting),
//! `latency.rs` (statement latency), `stats.rs`, `sql.rs` (`enable_sql_parsing`),
//! `replies.rs` (the ErrorResponses sent before closing on bad input), `starttls.rs` (SSL
//! termination toward the client and SSL toward the server, before the pump starts).

mod latency;
mod replies;
mod session;
mod sql;
pub mod starttls;
pub mod stats;
mod tx;

use std::sync::Arc;

use self::session::PostgresSession;
use self::starttls::PgStartTls;
use self::stats::{PostgresStats, SessionNames, StatementLatency};
use crate::config::postgres_proxy::{PostgresProxyConfig, SslMode};
use crate::filter::{ConnContext, Observer, ObserverFactory};
use crate::stats::Store;

/// What every session of one filter config shares.
pub(crate) struct Shared {
    stats: PostgresStats,
    latency: StatementLatency,
    databases: SessionNames,
    users: SessionNames,
    sql_parsing: bool,
}

/// The filter factory (one per filter chain per config generation).
pub struct PostgresProxy {
    shared: Arc<Shared>,
}

impl PostgresProxy {
    pub fn new(cfg: &PostgresProxyConfig, store: &Store) -> PostgresProxy {
        let p = &cfg.stat_prefix;
        PostgresProxy {
            shared: Arc::new(Shared {
                stats: PostgresStats::new(store, &format!("postgres.{p}.")),
                latency: StatementLatency::new(store, &format!("postgres.{p}.statement_latency.")),
                databases: SessionNames::new(store, p, "database"),
                users: SessionNames::new(store, p, "user"),
                sql_parsing: cfg.enable_sql_parsing,
            }),
        }
    }
}

impl PostgresProxy {
    /// The in-band TLS this filter drives on its chain, if any: `server` is the chain's
    /// `starttls` certificate (required by config validation when the filter terminates).
    pub fn starttls(
        &self,
        cfg: &PostgresProxyConfig,
        server: Option<&Arc<crate::tls::server::TlsServer>>,
    ) -> Option<Arc<PgStartTls>> {
        let mode = match (cfg.downstream_ssl, cfg.terminate_ssl) {
            (SslMode::Disable, true) => SslMode::Allow,
            (m, _) => m,
        };
        let downstream = match (mode, server) {
            (SslMode::Disable, _) | (_, None) => None,
            (m, Some(s)) => Some((s.clone(), m)),
        };
        let st = PgStartTls::new(self.shared.clone(), downstream, cfg.upstream_ssl);
        st.negotiates_downstream().then(|| Arc::new(st))
    }
}

impl ObserverFactory for PostgresProxy {
    fn create(&self, _cx: &ConnContext) -> Box<dyn Observer> {
        Box::new(PostgresSession::new(self.shared.clone()))
    }
}
