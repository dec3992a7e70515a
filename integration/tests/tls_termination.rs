//! Scenario: TLS terminated on a filter chain (`DownstreamTlsContext`) in front of a plain
//! upstream: certificates from files, ALPN, mTLS with SAN matching, a plain-text client on the
//! TLS port, and certificate files replaced on disk while traffic flows (no restart, no SDS).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use legate_integration::peers::{self, TcpEcho};
use legate_integration::tls::{self, Leaf, Pki};
use legate_integration::{yaml, Legate};

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("legate-it-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(d: &Path, name: &str, text: &str) -> String {
    let p = d.join(name);
    std::fs::write(&p, text).expect("write PEM");
    p.to_string_lossy().into_owned()
}

/// A TLS listener named `tls` proxying to `echo`; `ctx_extra` adds DownstreamTlsContext fields.
fn config(echo: &TcpEcho, cert: &str, key: &str, common_extra: &str, ctx_extra: &str) -> String {
    let listener = yaml::tcp_proxy_listener("tls", "stat_prefix: tls\ncluster: echo").replace(
        "      - name: envoy.filters.network.tcp_proxy",
        &format!(
            "      transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n{ctx_extra}          common_tls_context:\n            tls_certificates:\n            - certificate_chain: {{filename: '{cert}'}}\n              private_key: {{filename: '{key}'}}\n{common_extra}      filters:\n      - name: envoy.filters.network.tcp_proxy"
        ),
    );
    // The generated listener has `filters:` right under `- `; move the transport socket before it.
    let listener = listener.replace("    - filters:\n      transport_socket:", "    - transport_socket:");
    yaml::bootstrap(&[listener], &[yaml::static_cluster("echo", &[echo.addr()])])
}

#[test]
fn tls_is_terminated_and_plain_bytes_reach_the_upstream() {
    let pki = Pki::new("test CA");
    let leaf = pki.leaf(&["localhost", "127.0.0.1"], &[], "localhost");
    let d = dir("basic");
    let (cert, key) = (write(&d, "cert.pem", &leaf.cert_pem), write(&d, "key.pem", &leaf.key_pem));
    let echo = TcpEcho::start();
    let legate = Legate::start(&config(&echo, &cert, &key, "            alpn_protocols: [h2, http/1.1]\n", ""));
    let port = legate.listener_port("tls");

    let mut c = tls::connect(port, tls::client_config(&pki.ca_pem(), None, &["h2", "http/1.1"]), "localhost")
        .expect("handshake");
    assert_eq!(c.conn.alpn_protocol(), Some(&b"h2"[..]), "ALPN picks the server's first common protocol");
    assert_eq!(tls::round_trip(&mut c, b"through TLS").expect("echo"), b"through TLS");
    let s = legate.stats();
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.handshake"), 1);
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.versions.TLSv1.3"), 1);
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.no_certificate"), 1);
    let ciphers = s.names_with_prefix("listener.127.0.0.1_0.ssl.ciphers.TLS_");
    assert_eq!(ciphers.iter().map(|n| s.value(n)).sum::<u64>(), 1, "one TLS 1.3 cipher counted: {ciphers:?}");
    // The upstream saw plain bytes: the echo came back decrypted and re-encrypted.
    assert!(s.value("tcp.tls.downstream_cx_rx_bytes_total") >= 11);
    assert!(legate.stats().value("server.days_until_first_cert_expiring") > 0);
    // `/certs` shows the served certificate in Envoy's CertificateDetails shape.
    let r = legate.get("/certs");
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("/certs is JSON");
    let leaf = &v["certificates"][0]["cert_chain"][0];
    assert_eq!(leaf["path"], cert.as_str(), "{}", r.body);
    assert_eq!(leaf["subject_alt_names"][0]["dns"], "localhost", "{}", r.body);
    assert!(leaf["days_until_expiration"].as_str().is_some_and(|d| d.parse::<u64>().is_ok()), "{}", r.body);
}

#[test]
fn a_plain_text_client_on_the_tls_port_is_closed_and_counted() {
    let pki = Pki::new("test CA");
    let leaf = pki.leaf(&["localhost"], &[], "localhost");
    let d = dir("plain");
    let (cert, key) = (write(&d, "cert.pem", &leaf.cert_pem), write(&d, "key.pem", &leaf.key_pem));
    let echo = TcpEcho::start();
    let legate = Legate::start(&config(&echo, &cert, &key, "", ""));
    let mut c = peers::connect(legate.listener_port("tls"));
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    // Legate may answer with a TLS alert first; then the connection must end.
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut sink);
    assert!(sink.len() < 64, "no HTTP answer, at most an alert: {sink:?}");
    legate.wait_stat_eq("listener.127.0.0.1_0.ssl.connection_error", 1);
    assert_eq!(echo.accepted(), 0, "nothing may reach the upstream");
}

#[test]
fn mtls_accepts_a_good_client_certificate_and_refuses_none_a_foreign_one_or_a_wrong_san() {
    let pki = Pki::new("test CA");
    let server = pki.leaf(&["localhost"], &[], "localhost");
    let good = pki.leaf(&[], &["spiffe://legate/client"], "client");
    let wrong_san = pki.leaf(&[], &["spiffe://legate/intruder"], "intruder");
    let foreign = Pki::new("other CA").leaf(&[], &["spiffe://legate/client"], "client");
    let d = dir("mtls");
    let (cert, key) = (write(&d, "cert.pem", &server.cert_pem), write(&d, "key.pem", &server.key_pem));
    let ca = write(&d, "ca.pem", &pki.ca_pem());
    let common = format!(
        "            validation_context:\n              trusted_ca: {{filename: '{ca}'}}\n              match_typed_subject_alt_names:\n              - san_type: URI\n                matcher: {{exact: 'spiffe://legate/client'}}\n"
    );
    let echo = TcpEcho::start();
    let log = d.join("access.log");
    let log_cfg = format!(
        "          cluster: echo\n          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n              '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n              path: '{}'\n              log_format: {{text_format_source: {{inline_string: \"%DOWNSTREAM_TLS_VERSION% %REQUESTED_SERVER_NAME% %DOWNSTREAM_PEER_SUBJECT%\\n\"}}}}\n",
        log.display()
    );
    let cfg = config(&echo, &cert, &key, &common, "          require_client_certificate: true\n")
        .replace("          cluster: echo\n", &log_cfg);
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("tls");
    let ca_pem = pki.ca_pem();
    let attempt = |client: Option<&Leaf>| -> bool {
        match tls::connect(port, tls::client_config(&ca_pem, client, &[]), "localhost") {
            Ok(mut c) => tls::round_trip(&mut c, b"hi").is_ok_and(|b| b == b"hi"),
            Err(_) => false,
        }
    };
    assert!(attempt(Some(&good)), "a client certificate from the trusted CA with the right SAN is accepted");
    assert!(!attempt(None), "no client certificate is refused");
    assert!(!attempt(Some(&foreign)), "a certificate from another CA is refused");
    assert!(!attempt(Some(&wrong_san)), "a certificate with the wrong SAN is refused");
    legate.wait_stat_eq("listener.127.0.0.1_0.ssl.fail_verify_san", 1);
    let s = legate.stats();
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.fail_verify_no_cert"), 1);
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.fail_verify_error"), 1);
    assert_eq!(s.value("tcp.tls.downstream_cx_total"), 1, "only the good client reached tcp_proxy");
    let line = std::fs::read_to_string(&log).expect("access log");
    assert_eq!(line, "TLSv1.3 localhost CN=client\n", "TLS operators in the access log");
}

#[test]
fn replaced_certificate_files_are_served_without_restart_or_failed_connections() {
    let pki = Pki::new("test CA");
    let first = pki.leaf(&["localhost"], &[], "first");
    let second = pki.leaf(&["localhost"], &[], "second");
    let d = dir("rotate");
    let (cert, key) = (write(&d, "cert.pem", &first.cert_pem), write(&d, "key.pem", &first.key_pem));
    let echo = TcpEcho::start();
    let legate = Legate::start(&config(&echo, &cert, &key, "", ""));
    let port = legate.listener_port("tls");
    let ca_pem = pki.ca_pem();
    // A fresh client each time: a resumed session would not show the server's new certificate.
    let leaf_now = || {
        let mut c = tls::connect(port, tls::client_config(&ca_pem, None, &[]), "localhost").expect("handshake");
        assert_eq!(tls::round_trip(&mut c, b"x").expect("echo"), b"x");
        tls::peer_leaf(&c)
    };
    let first_der = leaf_now();

    // Kubernetes-style swap: write new files next to the old ones and rename over them.
    std::fs::write(d.join("key.pem.new"), &second.key_pem).expect("write");
    std::fs::write(d.join("cert.pem.new"), &second.cert_pem).expect("write");
    std::fs::rename(d.join("key.pem.new"), &key).expect("rename");
    std::fs::rename(d.join("cert.pem.new"), &cert).expect("rename");
    // A steady loop of connections across the reload: none may fail.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rotated = false;
    let mut connections = 0;
    while Instant::now() < deadline {
        let der = leaf_now();
        connections += 1;
        if der != first_der {
            rotated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rotated, "the new certificate was not served within 10 s ({connections} connections, all fine)");
    assert_eq!(legate.stats().value("listener.127.0.0.1_0.ssl.certificate_reload_success"), 1);

    // A broken key keeps the current pair in service and counts the failure.
    std::fs::write(&key, "not a key").expect("write");
    legate.wait_stat_eq("listener.127.0.0.1_0.ssl.certificate_reload_failure", 1);
    assert_ne!(leaf_now(), first_der, "the second certificate stays in service");
}

#[test]
fn several_certificates_on_one_port_are_chosen_by_sni() {
    let pki = Pki::new("test CA");
    let d = dir("sni");
    let mut chains = String::new();
    for name in ["a.example.com", "b.example.com"] {
        let leaf = pki.leaf(&[name], &[], name);
        let cert = write(&d, &format!("{name}.pem"), &leaf.cert_pem);
        let key = write(&d, &format!("{name}.key"), &leaf.key_pem);
        chains.push_str(&format!(
            "    - filter_chain_match: {{server_names: [{name}]}}\n      transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n          common_tls_context:\n            tls_certificates:\n            - certificate_chain: {{filename: '{cert}'}}\n              private_key: {{filename: '{key}'}}\n      filters:\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n          stat_prefix: {}\n          cluster: echo\n",
            &name[..1]
        ));
    }
    let listener = format!(
        "  - name: tls\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    listener_filters:\n    - name: envoy.filters.listener.tls_inspector\n      typed_config:\n        '@type': type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\n    filter_chains:\n{chains}"
    );
    let echo = TcpEcho::start();
    let legate = Legate::start(&yaml::bootstrap(&[listener], &[yaml::static_cluster("echo", &[echo.addr()])]));
    let port = legate.listener_port("tls");
    for name in ["a.example.com", "b.example.com"] {
        // The client verifies the certificate against the name it asked for: a wrong pick fails.
        let mut c = tls::connect(port, tls::client_config(&pki.ca_pem(), None, &[]), name)
            .expect("handshake with the right certificate");
        assert_eq!(tls::round_trip(&mut c, b"sni").expect("echo"), b"sni");
    }
    let s = legate.stats();
    assert_eq!((s.value("tcp.a.downstream_cx_total"), s.value("tcp.b.downstream_cx_total")), (1, 1));
    assert_eq!(s.value("listener.127.0.0.1_0.ssl.handshake"), 2);
}
