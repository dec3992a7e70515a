//! Scenario: HTTPS. Legate terminates TLS in front of its HTTP connection manager (curl with
//! `--cacert`, HTTP/1.1 and HTTP/2 chosen by ALPN with `codec_type: AUTO`), and the router
//! originates TLS to an upstream with an `UpstreamTlsContext` (SNI and verification).

use legate_integration::http::{curl, HttpUpstream};
use legate_integration::process::TempDir;
use legate_integration::tls::Pki;
use legate_integration::{yaml, Legate};

const ROUTES: &str = "- match: {prefix: /}\n  route: {cluster: up}";

/// An HCM listener `web` with a DownstreamTlsContext for `cert`/`key`, ALPN h2 + http/1.1.
fn https_listener(cert: &str, key: &str) -> String {
    let plain = yaml::http_listener("web", &yaml::route_config(ROUTES), "");
    let tls = format!(
        "    - transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n          common_tls_context:\n            alpn_protocols: [h2, http/1.1]\n            tls_certificates:\n            - certificate_chain: {{filename: '{cert}'}}\n              private_key: {{filename: '{key}'}}\n      filters:"
    );
    plain.replace("    - filters:", &tls)
}

#[test]
fn curl_over_https_gets_http1_and_h2_by_alpn() {
    let pki = Pki::new("https-ca");
    let leaf = pki.leaf(&["web.test"], &[], "web.test");
    let dir = TempDir::new("https");
    let cert = dir.write("cert.pem", &leaf.cert_pem);
    let key = dir.write("key.pem", &leaf.key_pem);
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let up = HttpUpstream::named("a");
    let cfg = yaml::bootstrap(
        &[https_listener(&cert.display().to_string(), &key.display().to_string())],
        &[yaml::static_cluster("up", &[up.addr()])],
    );
    let l = Legate::start(&cfg);
    let port = l.listener_port("web");
    let resolve = format!("web.test:{port}:127.0.0.1");
    let url = format!("https://web.test:{port}/headers");
    let ca = ca.display().to_string();
    let h1 = curl(&["--cacert", &ca, "--resolve", &resolve, "--http1.1", &url]);
    assert_eq!((h1.status, h1.version.as_str()), (200, "HTTP/1.1"), "{h1:?}");
    let h2 = curl(&["--cacert", &ca, "--resolve", &resolve, "--http2", &url]);
    assert_eq!((h2.status, h2.version.as_str()), (200, "HTTP/2"), "{h2:?}");
    for r in up.requests() {
        assert_eq!(r.header("x-forwarded-proto"), Some("https"), "{r:?}");
    }
    let s = l.stats();
    assert_eq!(s.value("http.web.downstream_cx_ssl_total"), 2);
    assert_eq!(s.value("http.web.downstream_cx_http1_total"), 1);
    assert_eq!(s.value("http.web.downstream_cx_http2_total"), 1);
    let tls_handshakes: u64 =
        s.0.iter()
            .filter(|(k, _)| k.starts_with("listener.") && k.ends_with(".ssl.handshake"))
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum();
    assert_eq!(tls_handshakes, 2);
}

#[test]
fn the_router_originates_tls_with_sni_and_verification() {
    // Legate itself is the TLS upstream: an HTTPS listener in front of the test server.
    let pki = Pki::new("upstream-ca");
    let leaf = pki.leaf(&["backend.internal"], &[], "backend.internal");
    let dir = TempDir::new("https-up");
    let cert = dir.write("cert.pem", &leaf.cert_pem);
    let key = dir.write("key.pem", &leaf.key_pem);
    let ca = dir.write("ca.pem", &pki.ca_pem());
    let origin = HttpUpstream::named("origin");
    let front = Legate::start(&yaml::bootstrap(
        &[https_listener(&cert.display().to_string(), &key.display().to_string())],
        &[yaml::static_cluster("up", &[origin.addr()])],
    ));
    let tls_port = front.listener_port("web");
    let upstream_tls = |sni: &str| {
        format!(
            "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n    sni: {sni}\n    common_tls_context:\n      validation_context:\n        trusted_ca: {{filename: '{}'}}\n        match_typed_subject_alt_names: [{{san_type: DNS, matcher: {{exact: backend.internal}}}}]",
            ca.display()
        )
    };
    let edge = Legate::start(&yaml::bootstrap(
        &[yaml::http_listener("edge", &yaml::route_config(ROUTES), "")],
        &[yaml::cluster("up", "STATIC", "ROUND_ROBIN", &[("127.0.0.1", tls_port)], &upstream_tls("backend.internal"))],
    ));
    let url = format!("http://127.0.0.1:{}/via-tls", edge.listener_port("edge"));
    let r = curl(&[&url]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.text(), "hello origin");
    let s = edge.stats();
    assert_eq!(s.value("cluster.up.ssl.handshake"), 1);
    assert_eq!(s.value("cluster.up.upstream_rq_200"), 1);
    let r = curl(&[&url]);
    assert_eq!(r.status, 200, "the pooled TLS connection is reused");
    assert_eq!(edge.stats().value("cluster.up.ssl.handshake"), 1);
}
