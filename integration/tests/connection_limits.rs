//! Scenario: limits and misbehaving upstreams. A flood of connections beyond a configured
//! limit is refused (closed at once and counted) while the established connections keep
//! working; an upstream that resets mid-stream ends only its own connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use legate_integration::peers::{self, TcpEcho};
use legate_integration::{yaml, Legate};

/// Envoy's global downstream connection limit (overload manager resource monitor).
const GLOBAL_LIMIT: &str = "overload_manager:
  resource_monitors:
  - name: envoy.resource_monitors.global_downstream_max_connections
    typed_config:
      '@type': type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig
      max_active_downstream_connections: 3
";

fn assert_refused(port: u16, n: usize) {
    for i in 0..n {
        let mut c = peers::connect(port);
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let _ = c.write_all(b"should not pass");
        assert!(peers::is_closed_by_peer(&mut c), "connection {i} over the limit was not closed");
    }
}

#[test]
fn global_connection_limit_refuses_the_flood_and_keeps_established_connections() {
    let echo = TcpEcho::start();
    let cfg = format!("{}{GLOBAL_LIMIT}", yaml::simple_tcp_proxy("limited", "echo", &[echo.addr()]));
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("limited");

    let mut held: Vec<_> = (0..3).map(|_| peers::connect(port)).collect();
    for (i, c) in held.iter_mut().enumerate() {
        assert_eq!(peers::round_trip(c, format!("hello {i}").as_bytes()), format!("hello {i}").as_bytes());
    }
    legate.wait_stat_eq("server.total_connections", 3);

    assert_refused(port, 20);
    legate.wait_stat_eq("listener.127.0.0.1_0.downstream_global_cx_overflow", 20);

    // The established connections never noticed.
    for (i, c) in held.iter_mut().enumerate() {
        assert_eq!(peers::round_trip(c, format!("still {i}").as_bytes()), format!("still {i}").as_bytes());
    }
    // Once one closes, a new connection is admitted again.
    drop(held.pop());
    legate.wait_stat_eq("server.total_connections", 2);
    let mut again = peers::connect(port);
    assert_eq!(peers::round_trip(&mut again, b"admitted"), b"admitted");
    assert_eq!(legate.stats().value("tcp.limited.downstream_cx_total"), 4);
}

#[test]
fn listener_runtime_connection_limit_counts_overflow_on_that_listener() {
    let echo = TcpEcho::start();
    let runtime = "layered_runtime:
  layers:
  - name: static
    static_layer:
      envoy.resource_limits.listener.capped.connection_limit: 2
";
    let cfg = format!("{}{runtime}", yaml::simple_tcp_proxy("capped", "echo", &[echo.addr()]));
    let legate = Legate::start(&cfg);
    let port = legate.listener_port("capped");

    let mut held: Vec<_> = (0..2).map(|_| peers::connect(port)).collect();
    for c in held.iter_mut() {
        assert_eq!(peers::round_trip(c, b"in"), b"in");
    }
    assert_refused(port, 5);
    legate.wait_stat_eq("listener.127.0.0.1_0.downstream_cx_overflow", 5);
    for c in held.iter_mut() {
        assert_eq!(peers::round_trip(c, b"still in"), b"still in");
    }
}

#[test]
fn cluster_max_connections_breaker_refuses_with_overflow() {
    let echo = TcpEcho::start();
    let listener = yaml::tcp_proxy_listener("cb", "stat_prefix: cb\ncluster: echo");
    let host = echo.addr();
    let cluster = yaml::cluster(
        "echo",
        "STATIC",
        "ROUND_ROBIN",
        &[(&host.ip().to_string(), host.port())],
        "circuit_breakers:\n  thresholds:\n  - max_connections: 2",
    );
    let legate = Legate::start(&yaml::bootstrap(&[listener], &[cluster]));
    let port = legate.listener_port("cb");

    let mut held: Vec<_> = (0..2).map(|_| peers::connect(port)).collect();
    for c in held.iter_mut() {
        assert_eq!(peers::round_trip(c, b"up"), b"up");
    }
    assert_refused(port, 3);
    legate.wait_stat_eq("cluster.echo.upstream_cx_overflow", 3);
    assert_eq!(legate.stats().value("cluster.echo.circuit_breakers.default.cx_open"), 1);
    for c in held.iter_mut() {
        assert_eq!(peers::round_trip(c, b"still up"), b"still up");
    }
    drop(held);
    legate.wait_stat_eq("cluster.echo.upstream_cx_active", 0);
    assert_eq!(legate.stats().value("cluster.echo.circuit_breakers.default.cx_open"), 0);
}

/// An upstream that reads a little and then resets the connection (SO_LINGER 0).
struct ResettingServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ResettingServer {
    fn start() -> ResettingServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let mut b = [0u8; 4];
                let _ = conn.read(&mut b);
                let _ = socket2::SockRef::from(&conn).set_linger(Some(Duration::ZERO));
                drop(conn);
            }
        });
        ResettingServer { addr, stop, thread: Some(thread) }
    }
}

impl Drop for ResettingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_upstream_reset_closes_only_its_own_connection() {
    let echo = TcpEcho::start();
    let resetting = ResettingServer::start();
    let listeners = [
        yaml::tcp_proxy_listener("good", "stat_prefix: good\ncluster: echo"),
        yaml::tcp_proxy_listener("bad", "stat_prefix: bad\ncluster: resetting"),
    ];
    let clusters = [yaml::static_cluster("echo", &[echo.addr()]), yaml::static_cluster("resetting", &[resetting.addr])];
    let legate = Legate::start(&yaml::bootstrap(&listeners, &clusters));
    let (good, bad) = (legate.listener_port("good"), legate.listener_port("bad"));

    let mut steady = peers::connect(good);
    assert_eq!(peers::round_trip(&mut steady, b"before"), b"before");
    for _ in 0..5 {
        let mut c = peers::connect(bad);
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        c.write_all(b"ping").expect("write");
        assert!(peers::is_closed_by_peer(&mut c), "reset upstream did not close the downstream");
        assert_eq!(peers::round_trip(&mut steady, b"during"), b"during");
    }
    legate.wait_stat_eq("cluster.resetting.upstream_cx_destroy_remote", 5);
    assert_eq!(peers::round_trip(&mut steady, b"after"), b"after");
    assert_eq!(legate.stats().value("cluster.echo.upstream_cx_active"), 1);
}
