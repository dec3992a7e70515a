//! `enable_sql_parsing`: each Query and Parse SQL text goes through a PostgreSQL-dialect SQL
//! parser (`sqlparser`), counting `statements_parsed` or `statements_parse_error`, as Envoy's
//! filter does with its own parser.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Whether `sql` (client bytes, usually UTF-8) parses as PostgreSQL SQL.
pub fn parses(sql: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(sql) else {
        return false;
    };
    Parser::parse_sql(&PostgreSqlDialect {}, text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_sql_parses_and_garbage_does_not() {
        assert!(parses(b"SELECT abalance FROM pgbench_accounts WHERE aid = $1"));
        assert!(parses(b"BEGIN; UPDATE t SET v = v + 1 WHERE id = 3; COMMIT"));
        assert!(!parses(b"SELEKT 1"));
        assert!(!parses(&[0xff, 0xfe]));
    }
}
