//! Scenario: udp_proxy in front of a UDP echo server: datagrams round-trip, sessions and
//! datagrams are counted, and an idle session expires.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use legate_integration::peers::UdpEcho;
use legate_integration::{yaml, Legate};

fn udp_front(echo: &UdpEcho, idle_timeout: &str) -> (Legate, SocketAddr) {
    let cfg = yaml::bootstrap(
        &[yaml::udp_proxy_listener("udp_echo", "udp_echo", "udp_cluster", &format!("idle_timeout: {idle_timeout}"))],
        &[yaml::static_cluster("udp_cluster", &[echo.addr()])],
    );
    let legate = Legate::start(&cfg);
    let addr = legate.listener_addr("udp_echo");
    (legate, addr)
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP client");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    s
}

fn round_trip(s: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    s.send_to(msg, to).expect("send datagram");
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("echo datagram through udp_proxy");
    assert_eq!(from, to, "reply must come from the proxy's listener address");
    buf[..n].to_vec()
}

#[test]
fn datagrams_round_trip_and_are_counted_per_session() {
    let echo = UdpEcho::start();
    let (legate, addr) = udp_front(&echo, "60s");

    let c = client();
    for i in 0..5 {
        let msg = format!("datagram {i}");
        assert_eq!(round_trip(&c, addr, msg.as_bytes()), msg.as_bytes());
    }
    // A second client address is a second session.
    let c2 = client();
    assert_eq!(round_trip(&c2, addr, b"other client"), b"other client");

    legate.wait_stat_eq("udp.udp_echo.downstream_sess_tx_datagrams", 6);
    let s = legate.stats();
    assert_eq!(s.value("udp.udp_echo.downstream_sess_total"), 2);
    assert_eq!(s.value("udp.udp_echo.downstream_sess_active"), 2);
    assert_eq!(s.value("udp.udp_echo.downstream_sess_rx_datagrams"), 6);
    let bytes = 5 * "datagram 0".len() as u64 + "other client".len() as u64;
    assert_eq!(s.value("udp.udp_echo.downstream_sess_rx_bytes"), bytes);
    assert_eq!(s.value("udp.udp_echo.downstream_sess_tx_bytes"), bytes);
    assert_eq!(s.value("cluster.udp_cluster.udp.sess_tx_datagrams"), 6);
    assert_eq!(s.value("cluster.udp_cluster.udp.sess_rx_datagrams"), 6);
    assert_eq!(s.value("cluster.udp_cluster.upstream_cx_tx_bytes_total"), bytes);
    assert_eq!(s.value("cluster.udp_cluster.upstream_cx_rx_bytes_total"), bytes);
    assert_eq!(echo.received(), 6);
}

#[test]
fn udp_sessions_are_not_counted_as_upstream_connections_like_envoy() {
    let echo = UdpEcho::start();
    let (legate, addr) = udp_front(&echo, "60s");
    let c = client();
    assert_eq!(round_trip(&c, addr, b"one"), b"one");
    let c2 = client();
    assert_eq!(round_trip(&c2, addr, b"two"), b"two");
    legate.wait_stat_eq("udp.udp_echo.downstream_sess_total", 2);
    let s = legate.stats();
    assert_eq!(s.value("cluster.udp_cluster.upstream_cx_total"), 0);
    assert_eq!(s.value("cluster.udp_cluster.upstream_cx_active"), 0);
}

#[test]
fn idle_session_times_out_and_next_datagram_opens_a_new_one() {
    let echo = UdpEcho::start();
    let (legate, addr) = udp_front(&echo, "1s");

    let c = client();
    assert_eq!(round_trip(&c, addr, b"first"), b"first");
    assert_eq!(legate.stats().value("udp.udp_echo.downstream_sess_total"), 1);

    // Nothing is sent for longer than idle_timeout: the session is closed and counted.
    legate.wait_stat_eq("udp.udp_echo.idle_timeout", 1);
    legate.wait_stat_eq("udp.udp_echo.downstream_sess_active", 0);

    assert_eq!(round_trip(&c, addr, b"second"), b"second");
    let s = legate.stats();
    assert_eq!(s.value("udp.udp_echo.downstream_sess_total"), 2);
    assert_eq!(s.value("udp.udp_echo.downstream_sess_active"), 1);
}
