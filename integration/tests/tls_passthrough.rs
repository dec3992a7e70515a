//! Scenario: TLS passed through untouched, routed by SNI. The `tls_inspector` listener filter
//! peeks at the ClientHello; filter chains with `server_names` (exact beats `*.suffix` beats
//! none) send the connection to different upstreams, which receive the ClientHello byte for
//! byte. Checked against a real Envoy on the same config and the same bytes.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use legate_integration::envoy::Envoy;
use legate_integration::peers::{self, TcpEcho};
use legate_integration::{yaml, Legate};

/// A ClientHello from `openssl s_client -servername www.example.com -alpn h2,http/1.1`.
const HELLO_WWW: &[u8] = include_bytes!("../../codecs/tests/fixtures/client_hello_openssl_sni_alpn.bin");
/// A ClientHello from `openssl s_client -noservername`.
const HELLO_NO_SNI: &[u8] = include_bytes!("../../codecs/tests/fixtures/client_hello_openssl_no_sni.bin");

struct Upstreams {
    exact: TcpEcho,
    wildcard: TcpEcho,
    fallback: TcpEcho,
}

fn config(u: &Upstreams) -> String {
    let chain = |matcher: &str, prefix: &str, cluster: &str| {
        format!(
            "    - filter_chain_match: {matcher}\n      filters:\n      - name: envoy.filters.network.tcp_proxy\n        typed_config:\n          '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\n          stat_prefix: {prefix}\n          cluster: {cluster}\n"
        )
    };
    let listener = format!(
        "  - name: sni\n    address:\n      socket_address: {{address: 127.0.0.1, port_value: 0}}\n    listener_filters:\n    - name: envoy.filters.listener.tls_inspector\n      typed_config:\n        '@type': type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\n    filter_chains:\n{}{}{}",
        chain("{server_names: [www.example.com]}", "exact", "exact"),
        chain("{server_names: ['*.example.com']}", "wildcard", "wildcard"),
        chain("{}", "fallback", "fallback"),
    );
    yaml::bootstrap(
        &[listener],
        &[
            yaml::static_cluster("exact", &[u.exact.addr()]),
            yaml::static_cluster("wildcard", &[u.wildcard.addr()]),
            yaml::static_cluster("fallback", &[u.fallback.addr()]),
        ],
    )
}

fn upstreams() -> Upstreams {
    Upstreams {
        exact: TcpEcho::with_banner("exact"),
        wildcard: TcpEcho::with_banner("wildcard"),
        fallback: TcpEcho::with_banner("fallback"),
    }
}

/// Sends `first` bytes and returns (the upstream's banner, the echo of `first`).
fn route(port: u16, first: &[u8]) -> (String, Vec<u8>) {
    let mut c = peers::connect(port);
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    c.write_all(first).expect("send first bytes");
    let banner = peers::read_line(&mut c);
    let mut echo = vec![0u8; first.len()];
    std::io::Read::read_exact(&mut c, &mut echo).expect("echo");
    (banner, echo)
}

/// Runs `openssl s_client` with `-servername name` against `port` (the handshake itself fails:
/// the upstream is not a TLS server; only the routing matters).
fn openssl_hello(port: u16, name: &str) {
    let status = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed (run-tests.sh installs it)");
    let _ = status;
}

#[test]
fn sni_chooses_the_chain_and_the_client_hello_passes_through_untouched() {
    let u = upstreams();
    let legate = Legate::start(&config(&u));
    let port = legate.listener_port("sni");

    let (banner, echo) = route(port, HELLO_WWW);
    assert_eq!(banner, "exact", "www.example.com has an exact chain");
    assert_eq!(echo, HELLO_WWW, "the ClientHello must reach the upstream byte for byte");
    assert_eq!(route(port, HELLO_NO_SNI).0, "fallback", "no SNI: the chain without server_names");
    assert_eq!(route(port, b"plain text\n").0, "fallback", "not TLS: the chain without server_names");

    openssl_hello(port, "api.example.com");
    openssl_hello(port, "example.org");
    legate.wait_stat_eq("tcp.wildcard.downstream_cx_total", 1);
    let s = legate.stats();
    assert_eq!(s.value("tcp.exact.downstream_cx_total"), 1);
    assert_eq!(s.value("tcp.fallback.downstream_cx_total"), 3);
    assert_eq!(s.value("tls_inspector.tls_found"), 4);
    assert_eq!(s.value("tls_inspector.tls_not_found"), 1);
    assert_eq!(s.value("tls_inspector.sni_found"), 3);
    assert_eq!(s.value("tls_inspector.sni_not_found"), 1);
    assert_eq!(s.value("tls_inspector.alpn_found"), 1);
}

#[test]
fn envoy_routes_the_same_client_hellos_to_the_same_chains() {
    let u = upstreams();
    let cfg = config(&u);
    let legate = Legate::start(&cfg);
    let envoy = Envoy::start(&cfg);
    for (what, bytes) in [("www", HELLO_WWW), ("no sni", HELLO_NO_SNI), ("plain", b"plain text\n".as_slice())] {
        let l = route(legate.listener_port("sni"), bytes).0;
        let e = route(envoy.listener_port("sni"), bytes).0;
        assert_eq!(l, e, "{what}: Legate chose '{l}', Envoy chose '{e}'");
    }
}

#[test]
fn a_client_that_sends_nothing_is_closed_after_listener_filters_timeout() {
    let u = upstreams();
    let cfg =
        config(&u).replace("    listener_filters:\n", "    listener_filters_timeout: 0.3s\n    listener_filters:\n");
    let legate = Legate::start(&cfg);
    let mut silent = TcpStream::connect(("127.0.0.1", legate.listener_port("sni"))).expect("connect");
    silent.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert!(peers::is_closed_by_peer(&mut silent), "a silent client must be closed after the timeout");
    legate.wait_stat_eq("listener.127.0.0.1_0.downstream_pre_cx_timeout", 1);
    assert_eq!(legate.stats().value("tcp.fallback.downstream_cx_total"), 0);
}
