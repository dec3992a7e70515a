//! mongo_proxy's fault injection (`delay`) and its close accounting
//! (`cx_destroy_{local,remote}_with_active_rq`), each run on Legate and on Envoy 1.40 with the
//! same config and the same legacy OP_QUERY traffic (Envoy decodes OP_QUERY, not OP_MSG), and
//! the counters compared. The upstream is nx-27017 where a real answer is needed, and a
//! scripted TCP peer where the test needs the server to stay silent, close or reset at a
//! chosen moment.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use legate_integration::admin::{self, Stats};
use legate_integration::envoy::Envoy;
use legate_integration::mongo::{mongo_listener, NxServer};
use legate_integration::peers::IO_TIMEOUT;
use legate_integration::process::{wait_until, PATIENCE};
use legate_integration::yaml::{bootstrap, static_cluster};
use legate_integration::Legate;

/// `{isMaster: 1}` on `admin.$cmd` as a legacy OP_QUERY (what pre-3.6 drivers send first).
fn op_query_is_master(request_id: i32) -> Vec<u8> {
    // BSON {isMaster: 1 (int32)}.
    let mut doc = vec![0x10];
    doc.extend_from_slice(b"isMaster\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    let mut bson = ((doc.len() + 5) as i32).to_le_bytes().to_vec();
    bson.extend_from_slice(&doc);
    bson.push(0);
    let mut body = 0i32.to_le_bytes().to_vec();
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    body.extend_from_slice(&bson);
    let mut m = Vec::new();
    for v in [16 + body.len() as i32, request_id, 0, 2004] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&body);
    m
}

/// Reads one whole wire message; returns its opCode and responseTo.
fn read_message(s: &mut TcpStream) -> std::io::Result<(i32, i32)> {
    let mut head = [0u8; 16];
    s.read_exact(&mut head)?;
    let word = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let mut rest = vec![0u8; (word(0) as usize).saturating_sub(16)];
    s.read_exact(&mut rest)?;
    Ok((word(12), word(8)))
}

/// One proxy under test, Legate or Envoy, seen through its admin endpoint.
struct Side {
    name: &'static str,
    admin: SocketAddr,
    port: u16,
}

impl Side {
    fn legate(l: &Legate) -> Side {
        Side { name: "legate", admin: l.admin, port: l.listener_port("mongo") }
    }

    fn envoy(e: &Envoy) -> Side {
        Side { name: "envoy", admin: e.admin, port: e.listener_port("mongo") }
    }

    fn stats(&self) -> Stats {
        Stats::parse(&admin::get(self.admin, "/stats").body)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the proxy");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        s
    }

    /// `listener.<ip>_<port>.` of the proxy listener (Envoy names a port-0 listener after its
    /// config, Legate after the bound port).
    fn listener_prefix(&self) -> String {
        self.stats().only_listener_prefix(self.name)
    }

    /// Waits until `n` connections were accepted and none is open any more (the filters have
    /// been told of every close by then, in both proxies).
    fn wait_closed(&self, n: u64) {
        let p = self.listener_prefix();
        wait_until(&format!("{}: {n} connections closed", self.name), PATIENCE, || {
            let s = self.stats();
            let total = s.value(&format!("{p}downstream_cx_total"));
            (total >= n && s.value(&format!("{p}downstream_cx_active")) == 0).then_some(())
        });
    }
}

#[test]
fn a_delay_holds_a_legacy_query_for_the_fixed_delay_and_counts_delays_injected_like_envoy() {
    let nx = NxServer::start();
    let delay = Duration::from_millis(300);
    let extra = "delay: {fixed_delay: 0.3s, percentage: {numerator: 100}}";
    let yaml = bootstrap(&[mongo_listener("mongo", "m", "nx", extra)], &[static_cluster("nx", &[nx.addr])]);
    let legate = Legate::start(&yaml);
    let envoy = Envoy::start(&yaml);
    for side in [Side::legate(&legate), Side::envoy(&envoy)] {
        let mut c = side.connect();
        let started = Instant::now();
        c.write_all(&op_query_is_master(7)).expect("send the query");
        let (op, to) = read_message(&mut c).expect("the server's reply");
        // The request was held back for the whole delay before it went upstream (Envoy's
        // libevent timer may fire a couple of milliseconds early; tokio's never does).
        let at_least = if side.name == "envoy" { delay - Duration::from_millis(20) } else { delay };
        assert!(started.elapsed() >= at_least, "{}: answered after {:?}", side.name, started.elapsed());
        assert_eq!((op, to), (1, 7), "{}: an OP_REPLY to request 7", side.name);
        drop(c);
        side.wait_closed(1);
        let s = side.stats();
        let v = |n: &str| s.value(&format!("mongo.m.{n}"));
        assert_eq!(v("delays_injected"), 1, "{}", side.name);
        assert_eq!(v("op_query"), 1, "{}", side.name);
        assert_eq!(v("op_reply"), 1, "{}", side.name);
        // Envoy's default `commands` (delete, insert, update) folds isMaster into unknown_command.
        let cmd = if side.name == "envoy" { "unknown_command" } else { "isMaster" };
        assert_eq!(v(&format!("cmd.{cmd}.total")), 1, "{}", side.name);
        assert_eq!(v("cx_destroy_remote_with_active_rq") + v("cx_destroy_local_with_active_rq"), 0, "{}", side.name);
    }
}

#[test]
fn a_runtime_percent_of_zero_turns_the_delay_off_like_envoy() {
    let nx = NxServer::start();
    let extra = "delay: {fixed_delay: 60s, percentage: {numerator: 100}}";
    let mut yaml = bootstrap(&[mongo_listener("mongo", "m", "nx", extra)], &[static_cluster("nx", &[nx.addr])]);
    yaml.push_str(
        "layered_runtime:\n  layers:\n  - name: static\n    static_layer:\n      mongo.fault.fixed_delay.percent: 0\n",
    );
    let legate = Legate::start(&yaml);
    let envoy = Envoy::start(&yaml);
    for side in [Side::legate(&legate), Side::envoy(&envoy)] {
        let mut c = side.connect();
        c.write_all(&op_query_is_master(3)).expect("send");
        // Not held for a minute: the read timeout would fail this first.
        assert_eq!(read_message(&mut c).expect("reply").0, 1, "{}", side.name);
        assert_eq!(side.stats().value("mongo.m.delays_injected"), 0, "{}", side.name);
    }
}

/// What the scripted upstream does once it has read the client's first message.
#[derive(Clone, Copy, Debug)]
enum Upstream {
    /// Never answers; closes when the proxy closes its side.
    Silent,
    /// Closes its socket (FIN).
    Close,
    /// Resets the connection (RST: SO_LINGER 0).
    Reset,
}

/// A TCP peer that reads one message per connection, then behaves as told; reports each
/// request it read so the client knows the request reached the server.
struct ScriptedUpstream {
    addr: SocketAddr,
    got: mpsc::Receiver<()>,
}

impl ScriptedUpstream {
    fn start(mode: Upstream) -> ScriptedUpstream {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the scripted upstream");
        let addr = l.local_addr().expect("addr");
        let (tx, got) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    if read_message(&mut s).is_err() {
                        return;
                    }
                    let _ = tx.send(());
                    match mode {
                        Upstream::Silent => {
                            let mut sink = [0u8; 1024];
                            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                        }
                        Upstream::Close => drop(s),
                        Upstream::Reset => {
                            socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).ok();
                            drop(s);
                        }
                    }
                });
            }
        });
        ScriptedUpstream { addr, got }
    }

    fn wait_request(&self) {
        self.got.recv_timeout(PATIENCE).expect("the request reached the upstream");
    }
}

/// How the client ends the connection.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// Closes (FIN) while the request is unanswered.
    Close,
    /// Resets (RST) while the request is unanswered.
    Reset,
    /// Waits until the proxy ends the connection (it sees EOF or a reset), then closes.
    WaitForEnd,
}

/// Runs one scenario on one proxy: sends a legacy query, lets the upstream and the client
/// behave as told, and returns (remote, local) `cx_destroy_*_with_active_rq`.
fn scenario(side: &Side, up: &ScriptedUpstream, client: Client, round: u64) -> (u64, u64) {
    let mut c = side.connect();
    c.write_all(&op_query_is_master(1)).expect("send");
    up.wait_request();
    match client {
        Client::Close => drop(c),
        Client::Reset => {
            socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).expect("linger");
            drop(c);
        }
        Client::WaitForEnd => {
            let mut b = [0u8; 64];
            while matches!(c.read(&mut b), Ok(n) if n > 0) {}
            c.shutdown(Shutdown::Both).ok();
        }
    }
    side.wait_closed(round);
    let s = side.stats();
    (s.value("mongo.m.cx_destroy_remote_with_active_rq"), s.value("mongo.m.cx_destroy_local_with_active_rq"))
}

fn run_both(mode: Upstream, client: Client) -> [(u64, u64); 2] {
    let up = ScriptedUpstream::start(mode);
    let yaml = bootstrap(&[mongo_listener("mongo", "m", "up", "")], &[static_cluster("up", &[up.addr])]);
    let envoy = Envoy::start(&yaml);
    let e = scenario(&Side::envoy(&envoy), &up, client, 1);
    let legate = Legate::start(&yaml);
    let l = scenario(&Side::legate(&legate), &up, client, 1);
    [l, e]
}

#[test]
fn a_client_reset_with_a_query_outstanding_is_a_remote_close_like_envoy() {
    let [l, e] = run_both(Upstream::Silent, Client::Reset);
    assert_eq!(e, (1, 0), "envoy (remote, local)");
    assert_eq!(l, e, "legate vs envoy (remote, local)");
}

/// With half-close, the client's FIN is passed on and the connection closes when the silent
/// server, seeing EOF, closes too: our FIN to the client completes the close, so Envoy calls
/// it a local close.
#[test]
fn a_client_fin_with_a_query_outstanding_is_a_local_close_like_envoy() {
    let [l, e] = run_both(Upstream::Silent, Client::Close);
    assert_eq!(e, (0, 1), "envoy (remote, local)");
    assert_eq!(l, e, "legate vs envoy (remote, local)");
}

#[test]
fn an_upstream_reset_with_a_query_outstanding_is_a_local_close_like_envoy() {
    let [l, e] = run_both(Upstream::Reset, Client::WaitForEnd);
    assert_eq!(e, (0, 1), "envoy (remote, local)");
    assert_eq!(l, e, "legate vs envoy (remote, local)");
}

/// The server's FIN is passed on; the client, seeing EOF, closes, and its FIN completes the
/// close: a remote close.
#[test]
fn an_upstream_fin_with_a_query_outstanding_is_a_remote_close_like_envoy() {
    let [l, e] = run_both(Upstream::Close, Client::WaitForEnd);
    assert_eq!(e, (1, 0), "envoy (remote, local)");
    assert_eq!(l, e, "legate vs envoy (remote, local)");
}

/// Sends a legacy isMaster on `c` and reads its OP_REPLY.
fn is_master(c: &mut TcpStream, id: i32) {
    c.write_all(&op_query_is_master(id)).expect("send");
    assert_eq!(read_message(c).expect("reply"), (1, id));
}

/// The proxy closed `c` (EOF, or a reset after its last write).
fn closed_by_proxy(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn while_draining_a_reply_that_leaves_nothing_outstanding_closes_the_connection_like_envoy() {
    let nx = NxServer::start();
    let yaml = bootstrap(&[mongo_listener("mongo", "m", "nx", "")], &[static_cluster("nx", &[nx.addr])]);
    // Envoy drains on `/drain_listeners?graceful`; the immediate strategy makes every
    // connection's drainClose() true at once, as Legate's drain is.
    let envoy = Envoy::start_with(&yaml, &["--drain-strategy", "immediate", "--drain-time-s", "60"]);
    let mut legate = Legate::start_with(&yaml, &["--drain-time-s", "60"]);
    let (es, ls) = (Side::envoy(&envoy), Side::legate(&legate));
    let (mut ea, mut eb, mut la, mut lb) = (es.connect(), es.connect(), ls.connect(), ls.connect());
    for c in [&mut ea, &mut eb, &mut la, &mut lb] {
        is_master(c, 1);
    }
    assert_eq!(admin::post(es.admin, "/drain_listeners?graceful").status, 200);
    legate.proc.signal("TERM");
    // Legate stops accepting once it drains.
    wait_until("legate to stop accepting", PATIENCE, || {
        TcpStream::connect(("127.0.0.1", ls.port)).is_err().then_some(())
    });
    for (side, a) in [(&es, &mut ea), (&ls, &mut la)] {
        // The reply still arrives whole, then the proxy closes the connection.
        is_master(a, 2);
        assert!(closed_by_proxy(a), "{}: connection A still open after its reply", side.name);
        wait_until(&format!("{}: cx_drain_close", side.name), PATIENCE, || {
            (side.stats().value("mongo.m.cx_drain_close") == 1).then_some(())
        });
        let s = side.stats();
        assert_eq!(s.value("mongo.m.cx_destroy_local_with_active_rq"), 0, "{}", side.name);
        assert_eq!(s.value("mongo.m.cx_destroy_remote_with_active_rq"), 0, "{}", side.name);
    }
    // Legate exits as soon as its last Mongo connection has had a reply.
    is_master(&mut lb, 3);
    assert!(closed_by_proxy(&mut lb));
    assert_eq!(legate.wait_exit(PATIENCE), Some(0), "stderr:\n{}", legate.proc.stderr_text());
    is_master(&mut eb, 3);
    assert!(closed_by_proxy(&mut eb));
    assert_eq!(es.stats().value("mongo.m.cx_drain_close"), 2);
}
