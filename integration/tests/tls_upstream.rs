//! Scenario: TLS origination. A cluster's `transport_socket` (`UpstreamTlsContext`) makes the
//! tcp_proxy speak TLS to a real `openssl s_server`: the SNI and the ALPN list are read on the
//! far side (from `-tlsextdebug`'s dump of the ClientHello), the server is verified against
//! `trusted_ca` and SAN matchers (a wrong CA or SAN refuses the connection with Envoy's stats
//! and transport failure reason), a client certificate is presented for upstream mTLS, and
//! without `validation_context` the server is not verified, as in Envoy. A differential run of
//! Envoy 1.40 on the same config checks the stat names, values and failure reasons.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use legate_integration::envoy::Envoy;
use legate_integration::process::{wait_until, Proc, TempDir};
use legate_integration::tls::Pki;
use legate_integration::{peers, yaml, Legate};

/// An `openssl s_server -rev` (answers each line reversed) on an ephemeral port.
struct SServer {
    proc: Proc,
    port: u16,
}

impl SServer {
    fn start(dir: &TempDir, name: &str, cert: &str, key: &str, extra: &[&str]) -> SServer {
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept", "127.0.0.1:0", "-rev", "-tlsextdebug", "-cert", cert, "-key", key]);
        cmd.args(extra);
        let proc = Proc::spawn(name, cmd, dir);
        let port = wait_until(
            "openssl s_server to print its port (openssl must be installed)",
            Duration::from_secs(10),
            || {
                let out = proc.stdout_text();
                let line = out.lines().find(|l| l.starts_with("ACCEPT "))?;
                line.rsplit(':').next()?.trim().parse().ok()
            },
        );
        SServer { proc, port }
    }

    /// The data of every client extension `id` (e.g. 0 = server_name, 16 = ALPN) seen so far,
    /// parsed from `-tlsextdebug`'s hex dump.
    fn extensions(&self, id: u16) -> Vec<Vec<u8>> {
        let out = self.proc.stdout_text();
        let header = format!("(id={id}),");
        let mut found = Vec::new();
        let mut lines = out.lines().peekable();
        while let Some(l) = lines.next() {
            if !(l.starts_with("TLS client extension") && l.contains(&header)) {
                continue;
            }
            let mut bytes = Vec::new();
            while let Some(d) = lines.peek().filter(|d| d.len() > 7 && d.as_bytes()[4..7] == *b" - ") {
                // `0000 - 00 17 00 00 14 75 70 73-74 72 65 61 6d 2e 65 78   .....upstream.ex`
                let hex = d[7..].split("   ").next().unwrap_or("");
                bytes.extend(
                    hex.split([' ', '-']).filter(|h| h.len() == 2).filter_map(|h| u8::from_str_radix(h, 16).ok()),
                );
                lines.next();
            }
            found.push(bytes);
        }
        found
    }

    /// The SNI host names the server was sent, one per handshake.
    fn server_names(&self) -> Vec<String> {
        // server_name_list length (2), name type (1), name length (2), name.
        self.extensions(0).iter().filter_map(|d| d.get(5..).map(|n| String::from_utf8_lossy(n).into_owned())).collect()
    }

    /// The ALPN lists offered, one per handshake.
    fn alpn_offers(&self) -> Vec<Vec<String>> {
        self.extensions(16)
            .iter()
            .map(|d| {
                let mut out = Vec::new();
                let mut i = 2;
                while let Some(&n) = d.get(i) {
                    let Some(p) = d.get(i + 1..i + 1 + usize::from(n)) else { break };
                    out.push(String::from_utf8_lossy(p).into_owned());
                    i += 1 + usize::from(n);
                }
                out
            })
            .collect()
    }
}

/// The PKI of one test: CA `ca` signs the upstream's certificate (SAN upstream.example.com) and
/// Legate's client certificate; `other_ca` signs nothing the upstream presents.
struct Files {
    dir: TempDir,
    ca: String,
    other_ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn files() -> Files {
    let dir = TempDir::new("tls-upstream");
    let pki = Pki::new("upstream test CA");
    let other = Pki::new("some other CA");
    let server = pki.leaf(&["upstream.example.com"], &[], "upstream");
    let client = pki.leaf(&["legate.example.com"], &[], "legate-client");
    let p = |name: &str, text: &str| dir.write(name, text).display().to_string();
    Files {
        ca: p("ca.pem", &pki.ca_pem()),
        other_ca: p("other_ca.pem", &other.ca_pem()),
        server_cert: p("server.pem", &server.cert_pem),
        server_key: p("server.key", &server.key_pem),
        client_cert: p("client.pem", &client.cert_pem),
        client_key: p("client.key", &client.key_pem),
        dir,
    }
}

/// A cluster over `port` with an UpstreamTlsContext whose fields are `tls` (unindented).
fn tls_cluster(name: &str, port: u16, tls: &str) -> String {
    let tls: String = tls.lines().map(|l| format!("    {l}\n")).collect();
    yaml::cluster(
        name,
        "STATIC",
        "ROUND_ROBIN",
        &[("127.0.0.1", port)],
        &format!(
            "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n{tls}"
        ),
    )
}

/// A tcp_proxy listener to cluster `name` that logs `name f=<flags> utfr=<reason>` to `log`.
fn logged_listener(name: &str, log: &str) -> String {
    yaml::tcp_proxy_listener(
        name,
        &format!(
            "stat_prefix: {name}\ncluster: {name}\naccess_log:\n- name: envoy.access_loggers.file\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n    path: {log}\n    log_format: {{text_format_source: {{inline_string: \"{name} f=%RESPONSE_FLAGS% utfr=%UPSTREAM_TRANSPORT_FAILURE_REASON%\\n\"}}}}"
        ),
    )
}

/// Sends a line through the proxy and returns what came back (`None` when the connection was
/// closed without an answer).
fn through(port: u16, line: &str) -> Option<String> {
    let mut c = peers::connect(port);
    c.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match c.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return Some(String::from_utf8_lossy(&buf).into_owned()),
            Ok(1) => buf.push(b[0]),
            _ => return (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()),
        }
    }
}

fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

/// Envoy 1.40's reasons for the two verification failures (spaces become `_` in access logs).
const WRONG_CA_REASON: &str = "TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_X509_verify_cert:_certificate_verification_error_at_depth_0:_unable_to_get_local_issuer_certificate:TLS_error_end";
const WRONG_SAN_REASON: &str = "TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:verify_cert_failed:_SAN_matcher,_certificate_SANs_are_[upstream.example.com]:TLS_error_end";

/// Clusters `good`, `wrong_ca` and `wrong_san` toward `port`, with logged listeners.
fn verification_config(f: &Files, port: u16, log: &str) -> String {
    let good = format!(
        "sni: upstream.example.com\ncommon_tls_context:\n  validation_context:\n    trusted_ca: {{filename: {}}}",
        f.ca
    );
    let wrong_ca = format!(
        "sni: upstream.example.com\ncommon_tls_context:\n  validation_context:\n    trusted_ca: {{filename: {}}}",
        f.other_ca
    );
    let wrong_san = format!("sni: upstream.example.com\ncommon_tls_context:\n  validation_context:\n    trusted_ca: {{filename: {}}}\n    match_typed_subject_alt_names:\n    - san_type: DNS\n      matcher: {{exact: other.example.com}}", f.ca);
    yaml::bootstrap(
        &[logged_listener("good", log), logged_listener("wrong_ca", log), logged_listener("wrong_san", log)],
        &[
            tls_cluster("good", port, &good),
            tls_cluster("wrong_ca", port, &wrong_ca),
            tls_cluster("wrong_san", port, &wrong_san),
        ],
    )
}

fn read_log(path: &str, lines: usize) -> Vec<String> {
    wait_until("the access log lines", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(path).ok()?;
        let mut l: Vec<String> = text.lines().map(str::to_string).collect();
        l.sort();
        (l.len() >= lines).then_some(l)
    })
}

#[test]
fn tcp_proxy_originates_tls_with_sni_alpn_and_verification() {
    let f = files();
    let upstream = SServer::start(&f.dir, "s_server", &f.server_cert, &f.server_key, &["-alpn", "h2,http/1.1"]);
    let log = f.dir.path().join("legate_access.log").display().to_string();
    let mut yaml = verification_config(&f, upstream.port, &log);
    // ALPN offered, and no validation_context at all: Envoy does not verify the server then.
    let alpn = "sni: alpn.example.com\ncommon_tls_context:\n  alpn_protocols: [h2, http/1.1]";
    yaml = yaml.replace(
        "  clusters:\n",
        &format!(
            "{}  clusters:\n{}",
            yaml::tcp_proxy_listener("alpn", "stat_prefix: alpn\ncluster: alpn"),
            tls_cluster("alpn", upstream.port, alpn)
        ),
    );
    let legate = Legate::start(&yaml);

    // Verified against trusted_ca; the far side saw the SNI.
    assert_eq!(
        through(legate.listener_port("good"), "hello upstream").as_deref(),
        Some(reversed("hello upstream").as_str())
    );
    assert_eq!(upstream.server_names(), ["upstream.example.com"]);
    let s = legate.stats();
    assert_eq!(s.value("cluster.good.ssl.handshake"), 1);
    // Envoy's client default is TLS 1.2 at most, and its cipher preference.
    assert_eq!(s.value("cluster.good.ssl.versions.TLSv1.2"), 1);
    assert_eq!(s.value("cluster.good.ssl.ciphers.ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
    assert_eq!(s.value("cluster.good.ssl.curves.X25519"), 1);
    assert_eq!(s.value("cluster.good.ssl.sigalgs.ecdsa_secp256r1_sha256"), 1);
    assert_eq!(s.value("cluster.good.upstream_cx_connect_fail"), 0);

    // A CA that did not sign the server: refused, downstream closed, Envoy's stats and reason.
    assert_eq!(through(legate.listener_port("wrong_ca"), "x"), None);
    legate.wait_stat_eq("cluster.wrong_ca.upstream_cx_connect_fail", 1);
    let s = legate.stats();
    assert_eq!(s.value("cluster.wrong_ca.ssl.fail_verify_error"), 1);
    assert_eq!(s.value("cluster.wrong_ca.ssl.connection_error"), 0, "Envoy does not count verify failures twice");
    assert_eq!(s.value("cluster.wrong_ca.ssl.handshake"), 0);
    assert_eq!(s.value("cluster.wrong_ca.upstream_cx_destroy_remote"), 1);

    // The right CA but a SAN matcher the certificate does not satisfy.
    assert_eq!(through(legate.listener_port("wrong_san"), "x"), None);
    legate.wait_stat_eq("cluster.wrong_san.upstream_cx_connect_fail", 1);
    assert_eq!(legate.stats().value("cluster.wrong_san.ssl.fail_verify_san"), 1);
    assert_eq!(legate.stats().value("cluster.wrong_san.ssl.fail_verify_error"), 0);

    assert_eq!(
        read_log(&log, 3),
        [
            "good f=- utfr=-".to_string(),
            format!("wrong_ca f=UF,URX utfr={WRONG_CA_REASON}"),
            format!("wrong_san f=UF,URX utfr={WRONG_SAN_REASON}")
        ]
    );

    // No validation_context: the server's certificate (from a CA Legate was not told about)
    // is accepted; the ALPN list goes out in order.
    assert_eq!(through(legate.listener_port("alpn"), "abc").as_deref(), Some("cba"));
    assert_eq!(upstream.alpn_offers().last().cloned(), Some(vec!["h2".to_string(), "http/1.1".to_string()]));
    assert_eq!(upstream.server_names().last().map(String::as_str), Some("alpn.example.com"));
    assert_eq!(legate.stats().value("cluster.alpn.ssl.handshake"), 1);

    // /certs lists the clusters' trusted CAs; the expiry gauge covers them.
    let certs = legate.get("/certs").json();
    let paths: Vec<String> = certs["certificates"]
        .as_array()
        .expect("certificates")
        .iter()
        .flat_map(|c| c["ca_cert"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["path"].as_str().map(str::to_string))
        .collect();
    assert!(paths.contains(&f.ca) && paths.contains(&f.other_ca), "{certs}");
    assert!(legate.stats().get("server.days_until_first_cert_expiring").is_some());
}

#[test]
fn upstream_mtls_presents_the_client_certificate() {
    let f = files();
    let upstream =
        SServer::start(&f.dir, "s_server_mtls", &f.server_cert, &f.server_key, &["-Verify", "1", "-CAfile", &f.ca]);
    let with_cert = format!(
        "common_tls_context:\n  tls_certificates:\n  - certificate_chain: {{filename: {}}}\n    private_key: {{filename: {}}}\n  validation_context:\n    trusted_ca: {{filename: {}}}\n  tls_params: {{tls_maximum_protocol_version: TLSv1_3}}",
        f.client_cert, f.client_key, f.ca
    );
    let without = format!("common_tls_context:\n  validation_context:\n    trusted_ca: {{filename: {}}}", f.ca);
    let yaml = yaml::bootstrap(
        &[
            yaml::tcp_proxy_listener("mtls", "stat_prefix: mtls\ncluster: mtls"),
            yaml::tcp_proxy_listener("nocert", "stat_prefix: nocert\ncluster: nocert"),
        ],
        &[tls_cluster("mtls", upstream.port, &with_cert), tls_cluster("nocert", upstream.port, &without)],
    );
    let legate = Legate::start(&yaml);
    assert_eq!(through(legate.listener_port("mtls"), "mutual").as_deref(), Some("lautum"));
    let s = legate.stats();
    assert_eq!(s.value("cluster.mtls.ssl.handshake"), 1);
    assert_eq!(s.value("cluster.mtls.ssl.versions.TLSv1.3"), 1);
    wait_until("s_server to log the client certificate", Duration::from_secs(10), || {
        upstream.proc.stderr_text().contains("Peer certificate: CN = legate-client").then_some(())
    });

    // Without a client certificate the server refuses: a failed connect, not a verify error.
    assert_eq!(through(legate.listener_port("nocert"), "x"), None);
    legate.wait_stat_eq("cluster.nocert.upstream_cx_connect_fail", 1);
    let s = legate.stats();
    assert_eq!(s.value("cluster.nocert.ssl.connection_error"), 1);
    assert_eq!(s.value("cluster.nocert.ssl.fail_verify_error"), 0);
    let certs = legate.get("/certs").body;
    assert!(certs.contains(&f.client_cert), "/certs lists the client certificate:\n{certs}");
}

/// Every `cluster.<c>.ssl.*` and connect stat of the clusters, without the certificate gauges
/// Envoy 1.40 adds (`ssl.certificate.<name>.expiration_unix_time_seconds`, not in Legate).
fn ssl_stats(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| {
            k.starts_with("cluster.")
                && (k.contains(".ssl.")
                    || k.ends_with(".upstream_cx_connect_fail")
                    || k.ends_with(".upstream_cx_destroy_remote"))
                && !k.contains(".ssl.certificate.")
                && !k.contains(".ssl.certificate_reload_")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn envoy_differential_ssl_stats_and_failure_reasons() {
    let f = files();
    let upstream = SServer::start(&f.dir, "s_server_diff", &f.server_cert, &f.server_key, &[]);
    let log = |proxy: &str| f.dir.path().join(format!("{proxy}_access.log")).display().to_string();
    let (legate_log, envoy_log) = (log("legate"), log("envoy"));

    let legate = Legate::start(&verification_config(&f, upstream.port, &legate_log));
    for l in ["good", "wrong_ca", "wrong_san"] {
        through(legate.listener_port(l), "ping");
    }
    legate.wait_stat_eq("cluster.wrong_san.upstream_cx_connect_fail", 1);
    let legate_lines = read_log(&legate_log, 3);
    let legate_stats = ssl_stats(&legate.stats().0);
    drop(legate);

    let envoy = Envoy::start(&verification_config(&f, upstream.port, &envoy_log));
    for l in ["good", "wrong_ca", "wrong_san"] {
        through(envoy.listener_port(l), "ping");
    }
    wait_until("envoy to count the SAN failure", Duration::from_secs(10), || {
        (envoy.stats().value("cluster.wrong_san.upstream_cx_connect_fail") == 1).then_some(())
    });
    let envoy_lines = read_log(&envoy_log, 3);
    let envoy_stats = ssl_stats(&envoy.stats().0);

    assert_eq!(legate_lines, envoy_lines, "access-log lines (flags and transport failure reasons)");
    assert_eq!(legate_stats, envoy_stats, "cluster ssl.* and connect stats");
}

#[test]
fn a_stalled_handshake_is_a_connect_timeout() {
    // Accepts TCP and never answers the ClientHello.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
    let yaml = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("stall", "stat_prefix: stall\ncluster: stall")],
        &[tls_cluster("stall", port, "sni: upstream.example.com")],
    );
    let legate = Legate::start(&yaml);
    // connect_timeout is 1s: the handshake's time counts against it, as in Envoy.
    assert_eq!(through(legate.listener_port("stall"), "x"), None);
    legate.wait_stat_eq("cluster.stall.upstream_cx_connect_timeout", 1);
    let s = legate.stats();
    assert_eq!(s.value("cluster.stall.upstream_cx_connect_fail"), 1);
    assert_eq!(s.value("cluster.stall.ssl.handshake"), 0);
    drop(held.join());
}
