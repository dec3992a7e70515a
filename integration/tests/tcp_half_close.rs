//! Scenario: TCP echo through tcp_proxy with half-close. The client writes, shuts down its
//! write side, and still reads everything back before EOF.

use std::io::{Read, Write};
use std::net::Shutdown;

use legate_integration::peers::{self, EchoMode, TcpEcho};
use legate_integration::{yaml, Legate};

fn proxy_to(echo: &TcpEcho) -> (Legate, u16) {
    let legate = Legate::start(&yaml::simple_tcp_proxy("echo", "echo", &[echo.addr()]));
    let port = legate.listener_port("echo");
    (legate, port)
}

#[test]
fn reply_sent_after_client_half_close_still_arrives() {
    // This upstream only answers once it has seen the client's FIN, so the reply can only
    // arrive if the proxy forwarded the FIN and kept the other direction open.
    let echo = TcpEcho::start_with(EchoMode::AfterEof, None);
    let (_legate, port) = proxy_to(&echo);

    let mut c = peers::connect(port);
    c.write_all(b"ping after half-close").expect("write");
    c.shutdown(Shutdown::Write).expect("shutdown write side");
    let mut back = Vec::new();
    c.read_to_end(&mut back).expect("read to EOF");
    assert_eq!(back, b"ping after half-close");
}

#[test]
fn large_echo_survives_half_close_byte_for_byte() {
    const SIZE: usize = 4 << 20;
    let echo = TcpEcho::start();
    let (legate, port) = proxy_to(&echo);

    let payload = peers::pattern(SIZE);
    let mut c = peers::connect(port);
    let mut w = c.try_clone().expect("clone socket");
    let to_send = payload.clone();
    // Write from another thread while this one reads, so neither side's buffers deadlock.
    let writer = std::thread::spawn(move || {
        w.write_all(&to_send).expect("write payload");
        w.shutdown(Shutdown::Write).expect("shutdown write side");
    });
    let mut back = Vec::with_capacity(SIZE);
    c.read_to_end(&mut back).expect("read echo to EOF");
    writer.join().expect("writer thread");
    assert_eq!(back.len(), SIZE, "echoed length");
    assert!(back == payload, "echoed bytes differ from the payload");

    // Envoy names listener stats after the configured address (port 0 here).
    let listener = "listener.127.0.0.1_0.".to_string();
    legate.wait_stat_eq(&format!("{listener}downstream_cx_destroy"), 1);
    let s = legate.stats();
    assert_eq!(s.value("tcp.echo.downstream_cx_rx_bytes_total"), SIZE as u64);
    assert_eq!(s.value("tcp.echo.downstream_cx_tx_bytes_total"), SIZE as u64);
    assert_eq!(s.value("cluster.echo.upstream_cx_tx_bytes_total"), SIZE as u64);
    assert_eq!(s.value("cluster.echo.upstream_cx_rx_bytes_total"), SIZE as u64);
}

#[test]
fn upstream_close_reaches_the_client_as_eof() {
    let echo = TcpEcho::start();
    let (legate, port) = proxy_to(&echo);

    let mut c = peers::connect(port);
    assert_eq!(peers::round_trip(&mut c, b"hello"), b"hello");
    c.shutdown(Shutdown::Write).expect("shutdown write side");
    // The echo server shuts down its side on our FIN; the proxy passes that on as EOF.
    assert!(peers::is_closed_by_peer(&mut c), "expected EOF after half-close");
    // Envoy names listener stats after the configured address (port 0 here).
    let listener = "listener.127.0.0.1_0.".to_string();
    legate.wait_stat_eq(&format!("{listener}downstream_cx_active"), 0);
    legate.wait_stat_eq("cluster.echo.upstream_cx_active", 0);
}
