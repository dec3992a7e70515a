//! Scenario: `per_connection_buffer_limit_bytes` bounds what Legate holds for a slow peer. An
//! upstream that stops reading for a while makes the sender wait (TCP back-pressure through the
//! proxy) instead of growing Legate's memory, and every byte still arrives in order.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use legate_integration::peers;
use legate_integration::{yaml, Legate};

const LIMIT: u64 = 64 * 1024;
/// More than the kernel's loopback socket buffers absorb on both sides of Legate.
const TOTAL: usize = 24 * 1024 * 1024;

#[test]
fn a_stalled_upstream_never_makes_legate_buffer_more_than_the_limit() {
    // Upstream: accepts, stalls 1.5 s without reading, then reads everything and reports it.
    // A small receive buffer (inherited by the accepted socket) so the stall reaches Legate.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    sock.bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).expect("bind");
    sock.listen(8).expect("listen");
    let upstream: TcpListener = sock.into();
    let up_addr = upstream.local_addr().expect("addr");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().expect("accept");
        std::thread::sleep(Duration::from_millis(1500));
        let mut got = Vec::with_capacity(TOTAL);
        s.read_to_end(&mut got).expect("read all");
        got
    });
    let listener = yaml::tcp_proxy_listener("slow", "stat_prefix: slow\ncluster: up")
        .replace("    filter_chains:", &format!("    per_connection_buffer_limit_bytes: {LIMIT}\n    filter_chains:"));
    let legate = Legate::start(&yaml::bootstrap(&[listener], &[yaml::static_cluster("up", &[up_addr])]));
    let port = legate.listener_port("slow");

    let data = peers::pattern(TOTAL);
    let sender = {
        let data = data.clone();
        std::thread::spawn(move || {
            let mut c = peers::connect(port);
            c.write_all(&data).expect("write through proxy");
            c.shutdown(std::net::Shutdown::Write).expect("half-close");
        })
    };
    // While the upstream stalls, sample what Legate holds for it.
    let mut peak = 0;
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        peak = peak.max(legate.stats().value("cluster.up.upstream_cx_tx_bytes_buffered"));
        std::thread::sleep(Duration::from_millis(50));
    }
    sender.join().expect("sender");
    let got = reader.join().expect("reader");
    assert_eq!(got.len(), TOTAL, "bytes lost or added");
    assert!(got == data, "bytes reordered or corrupted");
    assert!(peak <= LIMIT, "Legate buffered {peak} bytes for the stalled upstream, over the {LIMIT}-byte limit");
    assert!(peak > 0, "the stall never reached Legate's buffer (test did not exercise the limit)");
    legate.wait_stat_eq("cluster.up.upstream_cx_tx_bytes_buffered", 0);
    assert_eq!(legate.stats().value("tcp.slow.downstream_cx_rx_bytes_total"), TOTAL as u64);
}
