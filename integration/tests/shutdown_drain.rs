//! Scenario: shutting down with a connection open. Legate deliberately drains (Envoy 1.40 exits
//! at once on SIGTERM): it stops accepting, lets open connections finish for up to
//! `--drain-time-s`, and exits 0 as soon as the last one closes.

use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use legate_integration::peers::{self, TcpEcho};
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::{yaml, Legate};

/// The drain time given to Legate; every exit we expect happens long before it.
const DRAIN_TIME_S: &str = "60";

fn serving(echo: &TcpEcho, drain_time_s: &str) -> (Legate, u16) {
    let legate =
        Legate::start_with(&yaml::simple_tcp_proxy("drain", "echo", &[echo.addr()]), &["--drain-time-s", drain_time_s]);
    let port = legate.listener_port("drain");
    (legate, port)
}

fn refuses_new_connections(port: u16) -> bool {
    match TcpStream::connect_timeout(&std::net::SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(2)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// After shutdown has been asked for: the open connection still works, new ones are refused,
/// the process keeps running until the client closes, then exits 0.
fn drains_then_exits(mut legate: Legate, port: u16, mut open: TcpStream) {
    wait_until("the listener to stop accepting", PATIENCE, || refuses_new_connections(port).then_some(()));
    assert_eq!(peers::round_trip(&mut open, b"still proxied while draining"), b"still proxied while draining");
    assert!(legate.proc.try_exit().is_none(), "legate exited while a connection was still open");

    open.shutdown(Shutdown::Write).expect("close write side");
    assert!(peers::is_closed_by_peer(&mut open));
    drop(open);
    // Exits once the connection is gone; far sooner than the 60 s drain time.
    let code = legate.wait_exit(PATIENCE);
    assert_eq!(code, Some(0), "stderr:\n{}", legate.proc.stderr_text());
}

#[test]
fn sigterm_drains_open_connection_refuses_new_ones_and_exits_0() {
    let echo = TcpEcho::start();
    let (legate, port) = serving(&echo, DRAIN_TIME_S);
    let mut open = peers::connect(port);
    assert_eq!(peers::round_trip(&mut open, b"before"), b"before");

    legate.proc.signal("TERM");
    drains_then_exits(legate, port, open);
}

#[test]
fn quitquitquit_drains_open_connection_refuses_new_ones_and_exits_0() {
    let echo = TcpEcho::start();
    let (legate, port) = serving(&echo, DRAIN_TIME_S);
    let mut open = peers::connect(port);
    assert_eq!(peers::round_trip(&mut open, b"before"), b"before");

    let r = legate.post("/quitquitquit");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "OK\n");
    drains_then_exits(legate, port, open);
}

#[test]
fn sigint_drains_like_sigterm() {
    let echo = TcpEcho::start();
    let (legate, port) = serving(&echo, DRAIN_TIME_S);
    let mut open = peers::connect(port);
    assert_eq!(peers::round_trip(&mut open, b"before"), b"before");

    legate.proc.signal("INT");
    drains_then_exits(legate, port, open);
}

#[test]
fn drain_time_elapsed_closes_remaining_connections_and_exits_0() {
    let echo = TcpEcho::start();
    let (mut legate, port) = serving(&echo, "1");
    let mut open = peers::connect(port);
    assert_eq!(peers::round_trip(&mut open, b"before"), b"before");

    legate.proc.signal("TERM");
    // The client never closes: after --drain-time-s 1 Legate closes it and exits 0.
    let code = legate.wait_exit(PATIENCE);
    assert_eq!(code, Some(0), "stderr:\n{}", legate.proc.stderr_text());
    assert!(peers::is_closed_by_peer(&mut open), "the connection must be closed when the drain time is over");
}

#[test]
fn idle_server_exits_0_promptly_on_sigterm() {
    let echo = TcpEcho::start();
    let (mut legate, _port) = serving(&echo, DRAIN_TIME_S);
    assert_eq!(legate.stop(), Some(0));
}

#[test]
fn sighup_is_ignored_and_server_keeps_serving() {
    // Envoy logs "caught and eating SIGHUP" and keeps running (envoy-captures signals/).
    let echo = TcpEcho::start();
    let (mut legate, port) = serving(&echo, DRAIN_TIME_S);
    legate.proc.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(legate.proc.try_exit().is_none(), "legate exited on SIGHUP");
    let mut c = peers::connect(port);
    assert_eq!(peers::round_trip(&mut c, b"after HUP"), b"after HUP");
    // Close the client first: an open connection would (rightly) be drained for drain time.
    drop(c);
    assert_eq!(legate.stop(), Some(0));
}
