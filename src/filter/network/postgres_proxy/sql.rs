//! `enable_sql_parsing`: each Query and Parse SQL text goes through a PostgreSQL-dialect SQL
//! parser (`sqlparser`), counting `statements_parsed` or `statements_parse_error`, as Envoy's
//! filter does with its own parser.
//!
//! Parsing costs tens of microseconds, more than everything else the filter does per
//! statement, and applications send the same statement shapes over and over with different
//! literals. So the result is cached per worker thread under a hash of the text's *shape*: the
//! text with each numeric literal folded to its class (integer, decimal, exponent) and each
//! plain `'...'` string folded to one token. Texts of one shape parse alike (the parser looks at
//! a literal's class, not its value). Where folding could change meaning the text is not
//! cached but parsed: backslashes, dollar quoting, prefixed strings (`E'..'`, `B'..'`, ...),
//! nested comments, integers of more than 18 digits, unterminated quotes.

use std::cell::RefCell;
use std::collections::HashMap;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use xxhash_rust::xxh64::Xxh64;

/// Most shapes a worker thread remembers; the cache starts over when full.
const MAX_SHAPES: usize = 4096;

/// The keys are xxh64 hashes already: the map uses them as they are instead of hashing them
/// again with SipHash.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ShapeMap = HashMap<u64, bool, std::hash::BuildHasherDefault<Prehashed>>;

thread_local! {
    static SHAPES: RefCell<ShapeMap> = RefCell::new(ShapeMap::default());
}

/// Whether `sql` (client bytes, usually UTF-8) parses as PostgreSQL SQL.
pub fn parses(sql: &[u8]) -> bool {
    let Some(shape) = shape_hash(sql) else {
        return parse(sql);
    };
    if let Some(ok) = SHAPES.with(|s| s.borrow().get(&shape).copied()) {
        return ok;
    }
    let ok = parse(sql);
    SHAPES.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() >= MAX_SHAPES {
            s.clear();
        }
        s.insert(shape, ok);
    });
    ok
}

fn parse(sql: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(sql) else {
        return false;
    };
    Parser::parse_sql(&PostgreSqlDialect {}, text).is_ok()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The hash of `sql` with literals folded, or `None` when folding is not safe for this text.
fn shape_hash(sql: &[u8]) -> Option<u64> {
    let mut h = Xxh64::new(0);
    let n = sql.len();
    let (mut i, mut span) = (0, 0);
    let prev_ident = |i: usize| i > 0 && is_ident(sql[i - 1]);
    while i < n {
        match sql[i] {
            b'\\' => return None,
            b'$' if prev_ident(i) => i += 1,
            // `$1` parameters stay as they are; dollar quoting is not folded.
            b'$' if sql.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            b'$' => return None,
            b'\'' => {
                if prev_ident(i) {
                    return None;
                }
                let end = quoted_end(sql, i, b'\'')?;
                h.update(&sql[span..i]);
                h.update(b"\x01s");
                (i, span) = (end, end);
            }
            b'"' => i = quoted_end(sql, i, b'"')?,
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                while i < n && sql[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                let rest = &sql[i + 2..];
                let close = rest.windows(2).position(|w| w == b"*/")?;
                if rest[..close].windows(2).any(|w| w == b"/*") {
                    return None;
                }
                i += close + 4;
            }
            b'0'..=b'9' if !prev_ident(i) => {
                let (end, class) = number_end(sql, i)?;
                h.update(&sql[span..i]);
                h.update(class);
                (i, span) = (end, end);
            }
            _ => i += 1,
        }
    }
    h.update(&sql[span..n.max(span)]);
    Some(h.digest())
}

/// The end (exclusive) of a quoted token starting at `i`, with doubled quotes as escapes.
fn quoted_end(sql: &[u8], i: usize, q: u8) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match sql.get(j) {
            None => return None,
            Some(b) if *b == q => {
                if sql.get(j + 1) == Some(&q) {
                    j += 2;
                } else {
                    return Some(j + 1);
                }
            }
            Some(_) => j += 1,
        }
    }
}

/// A numeric literal at `i`: its end and class, or `None` when it is not a plain one.
fn number_end(sql: &[u8], i: usize) -> Option<(usize, &'static [u8])> {
    let digits = |mut j: usize| {
        while sql.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let mut j = digits(i);
    // More than 18 digits may overflow where the parser wants an integer.
    if j - i > 18 {
        return None;
    }
    let mut class: &'static [u8] = b"\x01i";
    if sql.get(j) == Some(&b'.') && sql.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j = digits(j + 1);
        class = b"\x01d";
    }
    if matches!(sql.get(j), Some(b'e' | b'E')) {
        let k = j + 1 + usize::from(matches!(sql.get(j + 1), Some(b'+' | b'-')));
        if !sql.get(k).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        j = digits(k);
        class = b"\x01e";
    }
    if sql.get(j).is_some_and(|b| is_ident(*b) || *b == b'.') {
        return None;
    }
    Some((j, class))
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

    #[test]
    fn texts_differing_only_in_literal_values_share_a_shape() {
        let a = shape_hash(b"SELECT abalance FROM pgbench_accounts WHERE aid = 12345;");
        let b = shape_hash(b"SELECT abalance FROM pgbench_accounts WHERE aid = 7;");
        assert!(a.is_some() && a == b);
        assert_eq!(shape_hash(b"SELECT 'it''s', 1"), shape_hash(b"SELECT 'x', 22"));
        assert_eq!(shape_hash(b"SELECT \"a1\" -- 'x\n"), shape_hash(b"SELECT \"a1\" -- 'x\n"));
    }

    #[test]
    fn the_shape_is_the_text_with_literals_folded() {
        let folded = b"SELECT a FROM t WHERE id = \x01i AND name = \x01s AND -- 'x\n v > \x01d;";
        assert_eq!(
            shape_hash(b"SELECT a FROM t WHERE id = 42 AND name = 'bob' AND -- 'x\n v > 1.5;"),
            Some(xxhash_rust::xxh64::xxh64(folded, 0))
        );
        // Longer than the inline buffer.
        let long = format!("SELECT {} FROM t WHERE id = 7", "col, ".repeat(200));
        let long_folded = format!("SELECT {} FROM t WHERE id = \x01i", "col, ".repeat(200));
        assert_eq!(shape_hash(long.as_bytes()), Some(xxhash_rust::xxh64::xxh64(long_folded.as_bytes(), 0)));
    }

    #[test]
    fn literal_classes_and_risky_texts_are_kept_apart() {
        // varchar(10) parses, varchar(10.5) does not: integer and decimal are different shapes.
        assert_ne!(shape_hash(b"CREATE TABLE t (v varchar(10))"), shape_hash(b"CREATE TABLE t (v varchar(10.5))"));
        assert!(parses(b"CREATE TABLE t (v varchar(10))"));
        assert!(!parses(b"CREATE TABLE t (v varchar(10.5))"));
        // Identifiers with digits are not literals.
        assert_ne!(shape_hash(b"SELECT a1 FROM t"), shape_hash(b"SELECT a2 FROM t"));
        assert_ne!(shape_hash(b"SELECT \"1\" FROM t"), shape_hash(b"SELECT \"2\" FROM t"));
        for risky in [
            &b"SELECT E'\\n'"[..],
            b"SELECT $$x$$",
            b"SELECT 'open",
            b"SELECT 1e",
            b"SELECT 12345678901234567890",
            b"SELECT /* /* */ */ 1",
        ] {
            assert_eq!(shape_hash(risky), None, "{}", String::from_utf8_lossy(risky));
        }
        // Cached answers equal fresh ones.
        for _ in 0..2 {
            assert!(parses(b"SELECT abalance FROM pgbench_accounts WHERE aid = 99"));
            assert!(!parses(b"SELECT abalance FROM WHERE aid = 99"));
        }
    }
}
