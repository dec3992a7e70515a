//! `postgres.<stat_prefix>.*`: Envoy's postgres_proxy stats, plus Legate's own (a protocol-error
//! counter, a latency histogram per statement kind, per-database and per-user session counts).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::define_stats;
use crate::stats::{Counter, Store};

define_stats! {
    /// Envoy's `postgres.<stat_prefix>.*` (contrib postgres_filter.h), plus `protocol_errors`.
    pub struct PostgresStats {
        counter errors,
        counter errors_error,
        counter errors_fatal,
        counter errors_panic,
        counter errors_unknown,
        counter messages,
        counter messages_backend,
        counter messages_frontend,
        counter messages_unknown,
        counter notices,
        counter notices_debug,
        counter notices_info,
        counter notices_log,
        counter notices_notice,
        counter notices_unknown,
        counter notices_warning,
        counter sessions,
        counter sessions_encrypted,
        counter sessions_terminated_ssl,
        counter sessions_unencrypted,
        counter sessions_upstream_ssl_failed,
        counter sessions_upstream_ssl_success,
        counter statements,
        counter statements_delete,
        counter statements_insert,
        counter statements_other,
        counter statements_parse_error,
        counter statements_parsed,
        counter statements_select,
        counter statements_update,
        counter transactions,
        counter transactions_commit,
        counter transactions_rollback,
        /// Legate: a stream that could not be framed, a truncated message at close, a client
        /// gone mid-COPY, a server gone without a word.
        counter protocol_errors,
    }
}

define_stats! {
    /// Legate: `postgres.<stat_prefix>.statement_latency.<kind>`, from the Query or Execute
    /// that started a statement to its CommandComplete, in microseconds.
    pub struct StatementLatency {
        histogram select: Microseconds,
        histogram insert: Microseconds,
        histogram update: Microseconds,
        histogram delete: Microseconds,
        histogram other: Microseconds,
    }
}

/// Most distinct database (and user) names given their own session counter; later names
/// share the `OVERFLOW_NAME` counter, so clients cannot grow the stat store at will.
pub const MAX_TRACKED_NAMES: usize = 100;
/// The counter that names past `MAX_TRACKED_NAMES` share.
pub const OVERFLOW_NAME: &str = "_overflow_";
/// PostgreSQL's identifiers are at most NAMEDATALEN-1 bytes.
const MAX_NAME_LEN: usize = 63;

/// `postgres.<prefix>.<dimension>.<name>.sessions`, bounded.
pub struct SessionNames {
    store: Store,
    prefix: String,
    map: Mutex<HashMap<String, Counter>>,
    overflow: Counter,
}

impl SessionNames {
    /// `dimension` is `database` or `user`.
    pub fn new(store: &Store, stat_prefix: &str, dimension: &str) -> SessionNames {
        let prefix = format!("postgres.{stat_prefix}.{dimension}.");
        let overflow = store.counter(&format!("{prefix}{OVERFLOW_NAME}.sessions"));
        SessionNames { store: store.clone(), prefix, map: Mutex::new(HashMap::new()), overflow }
    }

    /// Counts one session for `name` (once per connection, not per statement).
    pub fn inc(&self, name: &[u8]) {
        let name = sanitize(name);
        let mut map = self.map.lock();
        if let Some(c) = map.get(&name) {
            c.inc();
            return;
        }
        if map.len() >= MAX_TRACKED_NAMES {
            self.overflow.inc();
            return;
        }
        let c = self.store.counter(&format!("{}{name}.sessions", self.prefix));
        c.inc();
        map.insert(name, c);
    }
}

/// A stat-name-safe form: ASCII letters, digits, `_` and `-` kept, anything else `_`.
fn sanitize(name: &[u8]) -> String {
    let name = &name[..name.len().min(MAX_NAME_LEN)];
    let s: String = name
        .iter()
        .map(|b| if b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-' { *b as char } else { '_' })
        .collect();
    if s.is_empty() {
        "_empty_".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MetricValue;

    #[test]
    fn names_are_sanitized_and_capped() {
        let store = Store::new();
        let names = SessionNames::new(&store, "pg", "database");
        names.inc(b"app.db");
        names.inc(b"app.db");
        for i in 0..MAX_TRACKED_NAMES + 5 {
            names.inc(format!("db{i}").as_bytes());
        }
        let value = |n: &str| store.snapshot().into_iter().find(|m| m.name == n).map(|m| m.value);
        assert_eq!(value("postgres.pg.database.app_db.sessions"), Some(MetricValue::Counter(2)));
        // app_db took one of the slots: 99 of the 105 dbN names got their own counter.
        assert_eq!(value("postgres.pg.database._overflow_.sessions"), Some(MetricValue::Counter(6)));
        assert_eq!(value(&format!("postgres.pg.database.db{}.sessions", MAX_TRACKED_NAMES + 1)), None);
    }
}
