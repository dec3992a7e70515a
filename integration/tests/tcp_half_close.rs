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

#[test]
fn idle_timeout_closes_a_quiet_connection_and_activity_keeps_one_open() {
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener("quiet", "stat_prefix: quiet\ncluster: echo\nidle_timeout: 0.4s")],
        &[yaml::static_cluster("echo", &[echo.addr()])],
    );
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("quiet");

    // Traffic every 100 ms for 1 s keeps the connection past several idle periods.
    let mut busy = peers::connect(port);
    for i in 0..10 {
        let msg = format!("tick {i}");
        assert_eq!(peers::round_trip(&mut busy, msg.as_bytes()), msg.as_bytes());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(legate.stats().value("tcp.quiet.idle_timeout"), 0);

    // Silence ends it, and it is counted on both sides.
    busy.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    assert!(peers::is_closed_by_peer(&mut busy), "idle connection was not closed");
    legate.wait_stat_eq("tcp.quiet.idle_timeout", 1);
    assert_eq!(legate.stats().value("cluster.echo.upstream_cx_idle_timeout"), 1);
}

#[test]
fn max_downstream_connection_duration_ends_a_busy_connection() {
    let echo = TcpEcho::start();
    let cfg = yaml::bootstrap(
        &[yaml::tcp_proxy_listener(
            "capped",
            "stat_prefix: capped\ncluster: echo\nmax_downstream_connection_duration: 0.5s",
        )],
        &[yaml::static_cluster("echo", &[echo.addr()])],
    );
    let legate = Legate::start(&cfg);
    let mut c = peers::connect(legate.listener_port("capped"));
    assert_eq!(peers::round_trip(&mut c, b"hello"), b"hello");
    c.set_read_timeout(Some(std::time::Duration::from_secs(5))).expect("timeout");
    assert!(peers::is_closed_by_peer(&mut c), "connection outlived max_downstream_connection_duration");
    legate.wait_stat_eq("tcp.capped.max_downstream_connection_duration", 1);
}
