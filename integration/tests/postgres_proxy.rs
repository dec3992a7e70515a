//! postgres_proxy in front of a real PostgreSQL: psql and pgbench (simple, extended and
//! prepared) through Legate, with the stats checked against what the clients report; COPY
//! both ways, failing transactions, notices, SSL pass-through, and bad input on raw sockets.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use legate_codecs::postgres::backend::BackendMessage;
use legate_codecs::postgres::{decode_backend, encode};
use legate_integration::postgres::{pg_listener, pgbench, pgbench_processed, psql, psql_conninfo, PgServer, USER};
use legate_integration::process::{require_binary, run_to_end, TempDir};
use legate_integration::{yaml, Legate, Stats};

fn config(pg_port: u16, filter_extra: &str) -> String {
    let listener = pg_listener(filter_extra, "");
    yaml::bootstrap(&[listener], &[yaml::cluster("pg", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", pg_port)], "")])
}

fn start(pg: &PgServer) -> (Legate, u16) {
    let legate = Legate::start(&config(pg.port, ""));
    let port = legate.listener_port("pg");
    (legate, port)
}

fn v(s: &Stats, name: &str) -> u64 {
    s.value(&format!("postgres.pg.{name}"))
}

/// pgbench's TPC-B transaction as a script (the built-in scripts add set-up queries of their
/// own, which would blur the comparison).
const TPCB: &str = "\\set aid random(1, 100000)
\\set bid 1
\\set tid random(1, 10)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
";

/// pgbench -S's transaction: one autocommit SELECT.
const SELECT_ONLY: &str = "\\set aid random(1, 100000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
";

const CLIENTS: u64 = 2;

fn pgbench_counts_match(mode: &str) {
    let pg = PgServer::start();
    let init = pgbench(pg.port, &["-i", "-s", "1", "-q"]);
    assert_eq!(init.code, Some(0), "pgbench -i: {}{}", init.stdout, init.stderr);
    let (legate, port) = start(&pg);
    let dir = TempDir::new("pgbench");
    let tpcb = dir.write("tpcb.sql", TPCB);
    let select = dir.write("select.sql", SELECT_ONLY);
    let c = CLIENTS.to_string();
    let run = |script: &std::path::Path, t: &str| {
        let out = pgbench(port, &["-n", "-M", mode, "-c", &c, "-j", "1", "-t", t, "-f", &script.to_string_lossy()]);
        assert_eq!(out.code, Some(0), "pgbench -M {mode}: {}{}", out.stdout, out.stderr);
        pgbench_processed(&out)
    };
    let n = run(&tpcb, "40");
    assert_eq!(n, 80);
    let s = legate.stats();
    assert_eq!(v(&s, "transactions"), n, "one per pgbench transaction");
    assert_eq!(v(&s, "transactions_commit"), n);
    assert_eq!(v(&s, "transactions_rollback"), 0);
    assert_eq!(v(&s, "statements"), 7 * n);
    assert_eq!(v(&s, "statements_select"), n);
    assert_eq!(v(&s, "statements_update"), 3 * n);
    assert_eq!(v(&s, "statements_insert"), n);
    assert_eq!(v(&s, "statements_delete"), 0);
    assert_eq!(v(&s, "statements_other"), 2 * n, "BEGIN and END");
    assert_eq!(v(&s, "errors"), 0);
    // pgbench opens one connection of its own before the clients'.
    assert_eq!(v(&s, "sessions"), CLIENTS + 1);
    assert_eq!(v(&s, "sessions_unencrypted"), CLIENTS + 1);
    assert_eq!(s.value("postgres.pg.database.postgres.sessions"), CLIENTS + 1);
    assert_eq!(s.value(&format!("postgres.pg.user.{USER}.sessions")), CLIENTS + 1);
    // The SQL parser sees each Query (simple), each Parse of the unnamed statement (extended),
    // or each statement once per connection (prepared).
    let parsed = if mode == "prepared" { 7 * CLIENTS } else { 7 * n };
    assert_eq!(v(&s, "statements_parsed"), parsed);
    assert_eq!(v(&s, "statements_parse_error"), 0);
    assert_eq!(v(&s, "protocol_errors"), 0);
    assert_eq!(v(&s, "messages_unknown"), 0);
    assert_eq!(v(&s, "messages"), v(&s, "messages_frontend") + v(&s, "messages_backend"));

    // Then pgbench -S's transaction: each is one autocommit SELECT.
    let m = run(&select, "100");
    assert_eq!(m, 200);
    let s = legate.stats();
    assert_eq!(v(&s, "transactions"), n + m);
    assert_eq!(v(&s, "transactions_commit"), n + m);
    assert_eq!(v(&s, "statements_select"), n + m);
    assert_eq!(v(&s, "statements"), 7 * n + m);
    let latency = s.names_with_prefix("postgres.pg.statement_latency.");
    assert!(latency.contains("postgres.pg.statement_latency.select"), "{latency:?}");
}

#[test]
fn pgbench_simple_protocol_counts_equal_pgbench_transactions() {
    pgbench_counts_match("simple");
}

#[test]
fn pgbench_extended_protocol_counts_equal_pgbench_transactions() {
    pgbench_counts_match("extended");
}

#[test]
fn pgbench_prepared_statements_count_every_execution() {
    pgbench_counts_match("prepared");
}

fn psql_ok(port: u16, args: &[&str]) -> String {
    let out = psql(port, args);
    assert_eq!(out.code, Some(0), "psql {args:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn psql_multi_statement_copy_failed_transactions_and_notices_are_counted_exactly() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    let dir = TempDir::new("psql");
    let snap = || legate.stats();

    psql_ok(port, &["-c", "CREATE TABLE t (id int PRIMARY KEY, v text)"]);
    let s = snap();
    assert_eq!((v(&s, "statements"), v(&s, "statements_other"), v(&s, "transactions")), (1, 1, 1));

    // One Query with three statements: one implicit transaction.
    psql_ok(port, &["-c", "INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b'); SELECT * FROM t"]);
    let s = snap();
    assert_eq!((v(&s, "statements_insert"), v(&s, "statements_select"), v(&s, "statements")), (2, 1, 4));
    assert_eq!((v(&s, "transactions"), v(&s, "transactions_commit")), (2, 2));

    // COPY in (the rows follow in the script) and out.
    let copy_in = dir.write("copy_in.sql", "COPY t FROM STDIN;\n3\tc\n4\td\n\\.\n");
    psql_ok(port, &["-f", &copy_in.to_string_lossy()]);
    let out = psql_ok(port, &["-c", "COPY t TO STDOUT"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    let s = snap();
    assert_eq!((v(&s, "statements_other"), v(&s, "transactions"), v(&s, "protocol_errors")), (3, 4, 0));

    // A transaction rolled back after an error.
    let fail = dir.write(
        "fail.sql",
        "BEGIN;\nINSERT INTO t VALUES (5, 'e');\nINSERT INTO t VALUES (1, 'duplicate');\nROLLBACK;\n",
    );
    let out = psql(port, &["-f", &fail.to_string_lossy()]);
    assert!(out.stderr.contains("duplicate key"), "{}", out.stderr);
    let s = snap();
    assert_eq!((v(&s, "errors"), v(&s, "errors_error")), (1, 1));
    assert_eq!((v(&s, "transactions"), v(&s, "transactions_commit"), v(&s, "transactions_rollback")), (5, 4, 1));
    assert_eq!(v(&s, "statements_insert"), 3, "the failed INSERT is not a statement");
    assert_eq!(psql_ok(port, &["-Atc", "SELECT count(*) FROM t"]).trim(), "4");

    // An error in an autocommit statement rolls it back; a savepoint keeps the block alive.
    let out = psql(port, &["-c", "SELECT 1/0"]);
    assert_ne!(out.code, Some(0));
    let sp = dir.write(
        "savepoint.sql",
        "BEGIN;\nSAVEPOINT a;\nSELECT 1/0;\nROLLBACK TO SAVEPOINT a;\nINSERT INTO t VALUES (9, 'z');\nCOMMIT;\n",
    );
    psql(port, &["-f", &sp.to_string_lossy()]);
    let s = snap();
    assert_eq!((v(&s, "errors_error"), v(&s, "transactions_rollback"), v(&s, "transactions_commit")), (3, 2, 6));
    assert_eq!(psql_ok(port, &["-Atc", "SELECT count(*) FROM t"]).trim(), "5");

    // Notices by severity.
    psql_ok(port, &["-c", "DO $$ BEGIN RAISE NOTICE 'n'; RAISE WARNING 'w'; RAISE INFO 'i'; END $$"]);
    let s = snap();
    assert_eq!(
        (v(&s, "notices"), v(&s, "notices_notice"), v(&s, "notices_warning"), v(&s, "notices_info")),
        (3, 1, 1, 1)
    );
    // Every psql run was one session.
    assert_eq!(v(&s, "sessions"), 10);
    // 18 Query messages; sqlparser has no grammar for DO blocks.
    assert_eq!((v(&s, "statements_parsed"), v(&s, "statements_parse_error")), (17, 1));
}

/// A minimal client: StartupMessage, then messages until ReadyForQuery.
struct RawClient {
    s: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    fn connect(port: u16) -> RawClient {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        RawClient { s, buf: BytesMut::new() }
    }

    fn login(port: u16) -> RawClient {
        let mut c = RawClient::connect(port);
        c.send(&encode::startup_message(&[("user", USER), ("database", "postgres")]));
        c.until(b'Z');
        c
    }

    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("send");
    }

    /// The next message's type and body; `None` at EOF.
    fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(f) = decode_backend(&mut self.buf).expect("server bytes frame") {
                return Some((f.tag.unwrap_or(0), f.body.to_vec()));
            }
            let mut tmp = [0u8; 8192];
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    /// Reads until a message of type `t`; returns the messages seen.
    fn until(&mut self, t: u8) -> Vec<(u8, Vec<u8>)> {
        let mut seen = Vec::new();
        loop {
            let m = self.next().unwrap_or_else(|| panic!("EOF before '{}'; saw {seen:?}", t as char));
            let done = m.0 == t;
            seen.push(m);
            if done {
                return seen;
            }
        }
    }

    /// Expects an ErrorResponse with `sqlstate`, then EOF.
    fn expect_error_then_eof(&mut self, sqlstate: &str) {
        let (t, body) = self.next().expect("an ErrorResponse before the close");
        let m = legate_codecs::postgres::backend::parse(t, &body).expect("parses");
        let BackendMessage::ErrorResponse(f) = m else { panic!("expected ErrorResponse, got {m:?}") };
        assert_eq!(f.code(), Some(sqlstate.as_bytes()), "{:?}", String::from_utf8_lossy(&body));
        assert!(self.next().is_none(), "the connection should be closed");
    }
}

#[test]
fn a_message_length_of_2_pow_31_gets_an_error_response_and_a_clean_close() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    let mut c = RawClient::login(port);
    let mut bad = vec![b'Q'];
    bad.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    bad.extend_from_slice(b"SELECT 1");
    c.send(&bad);
    c.expect_error_then_eof("08P01");
    legate.wait_stat_eq("postgres.pg.protocol_errors", 1);
    // Nothing else is affected.
    assert_eq!(psql_ok(port, &["-Atc", "SELECT 41 + 1"]).trim(), "42");
    assert_eq!(v(&legate.stats(), "protocol_errors"), 1);
}

#[test]
fn a_truncated_or_invalid_startup_packet_is_a_protocol_error() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    // Says 100 bytes, sends 10, then ends its side.
    let mut c = RawClient::connect(port);
    c.send(&[0, 0, 0, 100, 0, 3, 0, 0, b'u', b's', b'e', b'r', 0, b'x']);
    c.s.shutdown(Shutdown::Write).expect("shutdown");
    assert!(c.next().is_none(), "the connection closes");
    legate.wait_stat_eq("postgres.pg.protocol_errors", 1);
    // Protocol 2.0: answered with an ErrorResponse by the filter.
    let mut c = RawClient::connect(port);
    c.send(&encode::startup_packet(&(2u32 << 16).to_be_bytes()));
    c.expect_error_then_eof("08P01");
    legate.wait_stat_eq("postgres.pg.protocol_errors", 2);
    assert_eq!(psql_ok(port, &["-Atc", "SELECT 1"]).trim(), "1");
    assert_eq!(v(&legate.stats(), "sessions"), 1);
}

#[test]
fn a_client_gone_mid_copy_is_a_protocol_error_and_the_copy_is_aborted() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    psql_ok(port, &["-c", "CREATE TABLE c (id int, v text)"]);
    let mut c = RawClient::login(port);
    c.send(&encode::query("COPY c FROM STDIN"));
    c.until(b'G');
    c.send(&encode::message(b'd', b"1\tone\n"));
    drop(c);
    legate.wait_stat_eq("postgres.pg.protocol_errors", 1);
    assert_eq!(psql_ok(port, &["-Atc", "SELECT count(*) FROM c"]).trim(), "0");
}

#[test]
fn a_server_gone_mid_transaction_is_reported_to_the_client_and_rolled_back() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    let mut c = RawClient::login(port);
    c.send(&encode::query("BEGIN"));
    c.until(b'Z');
    // The backend serving that connection, found from a direct connection.
    let pid = psql(
        pg.port,
        &["-Atc", "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"],
    );
    let pid = pid.stdout.trim().to_string();
    assert!(!pid.is_empty() && pid.chars().all(|ch| ch.is_ascii_digit()), "backend pid: {pid:?}");
    let killed = std::process::Command::new("sh").args(["-c", "kill -9 \"$1\"", "sh", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid} failed");
    c.expect_error_then_eof("08006");
    // The connection ends when the client closes its side too.
    drop(c);
    legate.wait_stat_eq("postgres.pg.transactions_rollback", 1);
    assert_eq!(v(&legate.stats(), "protocol_errors"), 1);
}

#[test]
fn an_ssl_request_the_server_refuses_keeps_the_session_decoded() {
    let pg = PgServer::start();
    let (legate, port) = start(&pg);
    // sslmode=prefer: SSLRequest, the server's 'N', then the startup in clear.
    let conninfo = format!("host=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=prefer");
    let out = psql_conninfo(&conninfo, &["-Atc", "SELECT 7"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "7"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!((v(&s, "sessions"), v(&s, "sessions_unencrypted"), v(&s, "sessions_encrypted")), (1, 1, 0));
    assert_eq!(v(&s, "statements_select"), 1);
}

#[test]
fn an_ssl_session_passes_through_and_counts_as_encrypted() {
    let dir = TempDir::new("pg-ssl");
    let (crt, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let gen = run_to_end(
        &require_binary("openssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &crt.to_string_lossy(),
        ],
        None,
    );
    assert_eq!(gen.code, Some(0), "openssl: {}", gen.stderr);
    let _ = std::process::Command::new("chmod").arg("600").arg(&key).status();
    let _ = std::process::Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()).status();
    let pg = PgServer::start_with(&[
        "ssl=on",
        &format!("ssl_cert_file={}", crt.display()),
        &format!("ssl_key_file={}", key.display()),
    ]);
    let (legate, port) = start(&pg);
    let conninfo = format!("host=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=require");
    let out = psql_conninfo(&conninfo, &["-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "t"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!((v(&s, "sessions"), v(&s, "sessions_encrypted"), v(&s, "sessions_unencrypted")), (1, 1, 0));
    assert_eq!(v(&s, "statements"), 0, "encrypted traffic is not decoded");
    assert_eq!(v(&s, "protocol_errors"), 0);
}
