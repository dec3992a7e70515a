//! postgres_proxy's SSL, with a real PostgreSQL, psql and pgbench: `terminate_ssl` /
//! `downstream_ssl` answer the client's SSLRequest and terminate TLS with the chain's
//! `starttls` certificate (made in the test with rcgen), `upstream_ssl` opens TLS to a server
//! started with `ssl=on` (checked with `pg_stat_ssl` on the server), and the failures: a server
//! without SSL under REQUIRE and ALLOW, a client without SSL under `downstream_ssl: REQUIRE`,
//! and a client that sends garbage instead of a ClientHello.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use legate_integration::postgres::{pg_listener, pgbench, pgbench_processed, psql, psql_conninfo, PgServer, USER};
use legate_integration::process::{Finished, TempDir};
use legate_integration::tls::Pki;
use legate_integration::{yaml, Legate, Stats};

/// The SSLRequest packet: length 8, code 1234.5679.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// The GSSENCRequest packet: length 8, code 1234.5680.
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// Certificates for one test: a CA, Legate's leaf (for clients), the server's leaf.
struct Certs {
    _dir: TempDir,
    ca: PathBuf,
    legate_cert: PathBuf,
    legate_key: PathBuf,
}

fn certs() -> Certs {
    let pki = Pki::new("legate test CA");
    let dir = TempDir::new("pg-ssl-certs");
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let leaf = pki.leaf(&["localhost", "127.0.0.1"], &[], "legate");
    let legate_cert = dir.write("legate.crt", &leaf.cert_pem);
    let legate_key = dir.write("legate.key", &leaf.key_pem);
    Certs { _dir: dir, ca, legate_cert, legate_key }
}

/// A PostgreSQL server with `ssl=on` and an rcgen certificate (kept in the returned dir).
fn ssl_server() -> (PgServer, TempDir) {
    let pki = Pki::new("pg test CA");
    let dir = TempDir::new("pg-server-ssl");
    let leaf = pki.leaf(&["localhost"], &[], "postgres");
    let crt = dir.write("server.crt", &leaf.cert_pem);
    let key = dir.write("server.key", &leaf.key_pem);
    // PostgreSQL refuses a key others can read; it runs as `postgres` when we are root.
    let _ = Command::new("chmod").arg("600").arg(&key).status();
    let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()).status();
    let pg = PgServer::start_with(&[
        "ssl=on",
        &format!("ssl_cert_file={}", crt.display()),
        &format!("ssl_key_file={}", key.display()),
    ]);
    (pg, dir)
}

/// postgres_proxy (with `filter_extra` fields) + tcp_proxy; a starttls socket with Legate's
/// certificate when `certs` is given; the cluster's `cluster_extra` (e.g. its transport socket).
fn config(pg_port: u16, filter_extra: &str, certs: Option<&Certs>, cluster_extra: &str) -> String {
    let socket = match certs {
        Some(c) => format!(
            "      transport_socket:
        name: envoy.transport_sockets.starttls
        typed_config:
          '@type': type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.StartTlsConfig
          cleartext_socket_config: {{}}
          tls_socket_config:
            common_tls_context:
              tls_certificates:
              - certificate_chain: {{filename: {}}}
                private_key: {{filename: {}}}
",
            c.legate_cert.display(),
            c.legate_key.display()
        ),
        None => String::new(),
    };
    let listener = pg_listener(filter_extra, &socket);
    yaml::bootstrap(
        &[listener],
        &[yaml::cluster("pg", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", pg_port)], cluster_extra)],
    )
}

/// The cluster's starttls socket (`UpstreamStartTlsConfig`); the server is not verified
/// (no `trusted_ca`: Envoy's default).
const UPSTREAM_STARTTLS: &str = "transport_socket:
  name: envoy.transport_sockets.starttls
  typed_config:
    '@type': type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.UpstreamStartTlsConfig
    cleartext_socket_config: {}
    tls_socket_config: {sni: localhost}
";

fn v(s: &Stats, name: &str) -> u64 {
    s.value(&format!("postgres.pg.{name}"))
}

/// (sessions, encrypted, unencrypted, terminated_ssl, upstream_ssl_success, upstream_ssl_failed).
fn sessions(s: &Stats) -> (u64, u64, u64, u64, u64, u64) {
    (
        v(s, "sessions"),
        v(s, "sessions_encrypted"),
        v(s, "sessions_unencrypted"),
        v(s, "sessions_terminated_ssl"),
        v(s, "sessions_upstream_ssl_success"),
        v(s, "sessions_upstream_ssl_failed"),
    )
}

/// A conninfo for Legate's listener that verifies Legate's certificate against the test CA.
fn verified(port: u16, c: &Certs) -> String {
    format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=verify-full sslrootcert={} gssencmode=disable",
        c.ca.display()
    )
}

const SERVER_SAW_SSL: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn psql_sslmode_require_is_terminated_with_the_starttls_certificate() {
    let pg = PgServer::start();
    let c = certs();
    let legate = Legate::start(&config(pg.port, "          terminate_ssl: true\n", Some(&c), ""));
    let port = legate.listener_port("pg");
    // verify-full: the certificate served is the chain's, for name localhost, from our CA.
    let out = psql_conninfo(&verified(port, &c), &["-Atc", SERVER_SAW_SSL, "-c", "SELECT 1", "-c", "SELECT 2"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    // The server saw a clear connection: Legate terminated the client's TLS.
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["f", "1", "2"], "{}", out.stderr);
    let s = legate.stats();
    // Envoy's counting for a terminated session: terminated_ssl, and the login is unencrypted
    // (from here to the server), not encrypted.
    assert_eq!(sessions(&s), (1, 0, 1, 1, 0, 0));
    assert_eq!(v(&s, "statements_select"), 3);
    assert_eq!(v(&s, "statements"), 3);
    assert_eq!(v(&s, "transactions_commit"), 3);
    assert_eq!(v(&s, "errors"), 0);
    assert_eq!(v(&s, "protocol_errors"), 0);
    assert_eq!(v(&s, "messages"), v(&s, "messages_frontend") + v(&s, "messages_backend"));
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.handshake"), 1);
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.connection_error"), 0);

    // A client that does not ask for SSL goes on in clear (terminate_ssl is ALLOW).
    let out = psql_conninfo(
        &format!("host=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=disable"),
        &["-Atc", "SELECT 3"],
    );
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "3"), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (2, 0, 2, 1, 0, 0));
}

/// pgbench with `PGSSLMODE=require` (pgbench has no flag for it).
fn pgbench_ssl(port: u16, args: &[&str]) -> Finished {
    let bin = legate_integration::process::require_binary("pgbench");
    let port = port.to_string();
    let mut cmd = Command::new(bin);
    cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", USER]).args(args).arg("postgres");
    cmd.env("PGSSLMODE", "require").env("PGGSSENCMODE", "disable");
    let out = cmd.output().expect("run pgbench");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn pgbench_over_terminated_ssl_counts_equal_pgbench_transactions() {
    let pg = PgServer::start();
    let init = pgbench(pg.port, &["-i", "-s", "1", "-q"]);
    assert_eq!(init.code, Some(0), "pgbench -i: {}{}", init.stdout, init.stderr);
    let c = certs();
    let legate = Legate::start(&config(pg.port, "          downstream_ssl: ALLOW\n", Some(&c), ""));
    let port = legate.listener_port("pg");
    // pgbench -S's transaction as a script: the built-in one adds set-up queries of its own.
    let dir = TempDir::new("pgbench-ssl");
    let script = dir
        .write("select.sql", "\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n");
    let script = script.to_string_lossy();
    let out = pgbench_ssl(port, &["-n", "-M", "extended", "-c", "2", "-j", "1", "-t", "50", "-f", &script]);
    assert_eq!(out.code, Some(0), "pgbench: {}{}", out.stdout, out.stderr);
    let n = pgbench_processed(&out);
    assert_eq!(n, 100);
    let s = legate.stats();
    // pgbench opens one connection of its own before the clients'.
    assert_eq!(sessions(&s), (3, 0, 3, 3, 0, 0));
    assert_eq!(v(&s, "statements_select"), n);
    assert_eq!(v(&s, "transactions"), n);
    assert_eq!(v(&s, "transactions_commit"), n);
    assert_eq!(v(&s, "protocol_errors"), 0);
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.handshake"), 3);
}

#[test]
fn upstream_ssl_require_opens_tls_to_the_server() {
    let (pg, _certs) = ssl_server();
    let legate = Legate::start(&config(pg.port, "          upstream_ssl: REQUIRE\n", None, UPSTREAM_STARTTLS));
    let port = legate.listener_port("pg");
    // The client speaks clear text to Legate; the server sees TLS.
    let out = psql_conninfo(
        &format!("host=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=disable"),
        &["-Atc", SERVER_SAW_SSL],
    );
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "t"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!(sessions(&s), (1, 0, 1, 0, 1, 0));
    assert_eq!(v(&s, "statements_select"), 1, "the session is decoded");
    assert_eq!(s.value("cluster.pg.ssl.handshake"), 1);
    // libpq's default (sslmode=prefer) asks Legate for SSL first: refused with 'N', so the
    // session stays readable and still goes to the server over TLS.
    let out = psql(port, &["-Atc", SERVER_SAW_SSL]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "t"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!(sessions(&s), (2, 0, 2, 0, 2, 0));
    assert_eq!(v(&s, "protocol_errors"), 0);
}

#[test]
fn upstream_ssl_verifies_the_server_against_trusted_ca() {
    let (pg, _server_certs) = ssl_server();
    // A CA that did not sign the server's certificate.
    let other = Pki::new("some other CA");
    let dir = TempDir::new("pg-other-ca");
    let ca = dir.write("ca.pem", &other.ca_pem());
    let cluster = format!(
        "transport_socket:
  name: envoy.transport_sockets.starttls
  typed_config:
    '@type': type.googleapis.com/envoy.extensions.transport_sockets.starttls.v3.UpstreamStartTlsConfig
    tls_socket_config:
      sni: localhost
      common_tls_context: {{validation_context: {{trusted_ca: {{filename: {}}}}}}}
",
        ca.display()
    );
    let log = dir.path().join("access.log");
    let access_log = format!(
        "    access_log:
    - name: envoy.access_loggers.file
      typed_config:
        '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
        path: {}
        log_format: {{text_format_source: {{inline_string: \"f=%RESPONSE_FLAGS% utfr=%UPSTREAM_TRANSPORT_FAILURE_REASON%\\n\"}}}}
    filter_chains:
",
        log.display()
    );
    let yaml = config(pg.port, "          upstream_ssl: REQUIRE\n", None, &cluster)
        .replace("    filter_chains:\n", &access_log);
    let legate = Legate::start(&yaml);
    let out = psql(legate.listener_port("pg"), &["-Atc", "SELECT 1"]);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stderr.contains("could not establish SSL with the server"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!(sessions(&s), (0, 0, 0, 0, 0, 1));
    assert_eq!(s.value("cluster.pg.ssl.fail_verify_error"), 1);
    assert_eq!(s.value("cluster.pg.ssl.handshake"), 0);
    let line = legate_integration::process::wait_until("the access log line", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).ok().filter(|t| t.ends_with('\n'))
    });
    assert!(line.starts_with("f=UF utfr=TLS_error:") && line.contains("CERTIFICATE_VERIFY_FAILED"), "{line}");
}

#[test]
fn terminated_client_and_tls_server_decode_in_between() {
    let (pg, _certs) = ssl_server();
    let c = certs();
    let extra = "          downstream_ssl: REQUIRE\n          upstream_ssl: REQUIRE\n";
    let legate = Legate::start(&config(pg.port, extra, Some(&c), UPSTREAM_STARTTLS));
    let port = legate.listener_port("pg");
    let out = psql_conninfo(&verified(port, &c), &["-Atc", SERVER_SAW_SSL]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "t"), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (1, 0, 1, 1, 1, 0));
    assert_eq!(v(&legate.stats(), "statements_select"), 1);
}

#[test]
fn upstream_ssl_require_against_a_server_without_ssl_fails_cleanly() {
    let pg = PgServer::start();
    let legate = Legate::start(&config(pg.port, "          upstream_ssl: REQUIRE\n", None, UPSTREAM_STARTTLS));
    let port = legate.listener_port("pg");
    let out = psql(port, &["-Atc", "SELECT 1"]);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stderr.contains("could not establish SSL with the server"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!(sessions(&s), (0, 0, 0, 0, 0, 1));
    // psql's default sslmode=prefer sent an SSLRequest first, refused by Legate itself.
    assert_eq!((v(&s, "messages_frontend"), v(&s, "messages_backend")), (1, 0), "nothing reached the server");
    // The listener and Legate are fine: a plain chain would still serve; the server too.
    let direct = psql(pg.port, &["-Atc", "SELECT 1"]);
    assert_eq!(direct.code, Some(0));
}

#[test]
fn upstream_ssl_allow_falls_back_to_clear_text() {
    let pg = PgServer::start();
    let legate = Legate::start(&config(pg.port, "          upstream_ssl: ALLOW\n", None, UPSTREAM_STARTTLS));
    let port = legate.listener_port("pg");
    let out = psql(port, &["-Atc", SERVER_SAW_SSL]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "f"), "{}", out.stderr);
    let s = legate.stats();
    assert_eq!(sessions(&s), (1, 0, 1, 0, 0, 1));
    assert_eq!(v(&s, "statements_select"), 1);

    // And with a server that has SSL, ALLOW uses it.
    let (tls_pg, _tls_certs) = ssl_server();
    let legate = Legate::start(&config(tls_pg.port, "          upstream_ssl: ALLOW\n", None, UPSTREAM_STARTTLS));
    let out = psql(legate.listener_port("pg"), &["-Atc", SERVER_SAW_SSL]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "t"), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (1, 0, 1, 0, 1, 0));
}

#[test]
fn downstream_ssl_require_refuses_clear_text_clients_with_envoys_error() {
    let pg = PgServer::start();
    let c = certs();
    let legate = Legate::start(&config(pg.port, "          downstream_ssl: REQUIRE\n", Some(&c), ""));
    let port = legate.listener_port("pg");
    let out = psql_conninfo(
        &format!("host=127.0.0.1 port={port} user={USER} dbname=postgres sslmode=disable"),
        &["-Atc", "SELECT 1"],
    );
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stderr.contains("connection denied by Envoy proxy: downstream ssl required."), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (0, 0, 0, 0, 0, 0));
    // With SSL the same listener serves.
    let out = psql_conninfo(&verified(port, &c), &["-Atc", "SELECT 5"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "5"), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (1, 0, 1, 1, 0, 0));

    // Ctrl-C: libpq (before 17) sends the CancelRequest on a new connection in clear; it
    // carries no credentials and PostgreSQL takes it so, and so does Legate under REQUIRE.
    let psql_bin = legate_integration::process::require_binary("psql");
    let child = Command::new(psql_bin)
        .args(["-X", "-d", &verified(port, &c), "-Atc", "SELECT pg_sleep(60)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn psql");
    let sleeping = || {
        let out = psql(pg.port, &["-Atc", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"]);
        (out.stdout.trim() == "1").then_some(())
    };
    legate_integration::process::wait_until("the query to run", Duration::from_secs(20), sleeping);
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("psql ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("canceling statement due to user request"), "{err}");
}

fn raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to legate");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s
}

/// Reads until the peer closes; true when it did (EOF or reset) without sending more than `max`.
fn closes(s: &mut TcpStream, max: usize) -> bool {
    let mut got = 0;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                got += n;
                if got > max {
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn garbage_instead_of_a_client_hello_closes_only_that_connection() {
    let pg = PgServer::start();
    let c = certs();
    let legate = Legate::start(&config(pg.port, "          terminate_ssl: true\n", Some(&c), ""));
    let port = legate.listener_port("pg");

    // A GSSENCRequest is refused ('N'); the SSLRequest that follows is accepted ('S').
    let mut s = raw(port);
    s.write_all(&GSSENC_REQUEST).expect("write");
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"N");
    s.write_all(&SSL_REQUEST).expect("write");
    s.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"S");
    // Then plain text where the ClientHello belongs: a StartupMessage smuggled in clear.
    s.write_all(&legate_codecs::postgres::encode::startup_message(&[("user", USER), ("database", "postgres")]))
        .expect("write");
    assert!(closes(&mut s, 64), "the handshake must fail and the connection close");
    legate.wait_stat_eq("listener.127.0.0.1_0.ssl.connection_error", 1);

    // The SSLRequest with garbage right behind it in the same write: the garbage is the
    // handshake's, never a clear-text message.
    let mut s = raw(port);
    let mut req = SSL_REQUEST.to_vec();
    req.extend_from_slice(b"Q\0\0\0\x0dSELECT 1;\0garbage");
    s.write_all(&req).expect("write");
    s.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"S");
    assert!(closes(&mut s, 64));
    legate.wait_stat_eq("listener.127.0.0.1_0.ssl.connection_error", 2);

    // A client that asks again after being refused gets PostgreSQL's answer to that: a
    // protocol violation, and the close.
    let mut s = raw(port);
    s.write_all(&GSSENC_REQUEST).expect("write");
    s.read_exact(&mut b).expect("answer");
    assert_eq!(&b, b"N");
    s.write_all(&GSSENC_REQUEST).expect("write");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&b'E'), "an ErrorResponse: {reply:?}");
    assert!(String::from_utf8_lossy(&reply).contains("08P01"), "{reply:?}");

    let st = legate.stats();
    assert_eq!(v(&st, "protocol_errors"), 1);
    assert_eq!(sessions(&st), (0, 0, 0, 0, 0, 0));
    assert_eq!(v(&st, "statements"), 0, "nothing smuggled reached the server");
    // Others are unaffected.
    let out = psql_conninfo(&verified(port, &c), &["-Atc", "SELECT 9"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "9"), "{}", out.stderr);
    assert_eq!(sessions(&legate.stats()), (1, 0, 1, 1, 0, 0));
}

#[test]
fn terminate_ssl_without_a_starttls_socket_is_a_config_error() {
    let dir = TempDir::new("pg-cfg");
    let path = dir.write("bad.yaml", &config(5432, "          terminate_ssl: true\n", None, ""));
    let out = legate_integration::legate::validate(&path, &[]);
    assert_eq!(out.code, Some(1));
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("filter_chains[0].filters[0].typed_config.terminate_ssl")
            && text.contains("envoy.transport_sockets.starttls"),
        "{text}"
    );
    // The socket without a filter to drive it would never switch: said up front.
    let c = certs();
    let idle = dir.write("idle.yaml", &config(5432, "", Some(&c), ""));
    let out = legate_integration::legate::validate(&idle, &[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("filter_chains[0].transport_socket") && out.stderr.contains("starttls"),
        "{}",
        out.stderr
    );
    let ok = dir.write("ok.yaml", &config(5432, "          upstream_ssl: REQUIRE\n", None, UPSTREAM_STARTTLS));
    let out = legate_integration::legate::validate(&ok, &[]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
}

#[test]
fn envoy_accepts_the_starttls_sockets_as_written_here() {
    // Envoy's PyPI build lacks the contrib postgres_proxy, so the filter cannot be checked
    // there; the starttls sockets (core extensions) can: the same YAML without the filter.
    let c = certs();
    let yaml = config(5432, "", Some(&c), UPSTREAM_STARTTLS);
    let start = yaml.find("      - name: envoy.filters.network.postgres_proxy").expect("filter");
    let end = yaml.find("      - name: envoy.filters.network.tcp_proxy").expect("tcp_proxy");
    let without_filter = format!("{}{}", &yaml[..start], &yaml[end..]);
    let dir = TempDir::new("pg-envoy");
    let path = dir.write("starttls.yaml", &without_filter);
    let out = legate_integration::envoy::envoy_validate(&path);
    assert_eq!(out.code, Some(0), "envoy rejects:\n{without_filter}\n{}", out.stderr);
}
