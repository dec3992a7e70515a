//! In-process peers written with `std::net`: TCP and UDP echo servers (optionally greeting each
//! connection with a banner line so a test can tell upstreams apart), a port that refuses
//! connections, and client helpers. They are the proxy's peers, not the protocol under test.
//! Each server stops its thread when dropped.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// Read and write timeout of every client socket the tests open: a hung proxy fails the test
/// instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`TcpEcho`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// Echo every read at once; on EOF from the client, shut down our write side.
    Streaming,
    /// Collect everything until the client's EOF (half-close), then send it all back and close.
    AfterEof,
}

/// A TCP echo server on 127.0.0.1 with an ephemeral port.
pub struct TcpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl TcpEcho {
    /// Echoes as it reads.
    pub fn start() -> TcpEcho {
        TcpEcho::start_with(EchoMode::Streaming, None)
    }

    /// Sends `"<banner>\n"` on every new connection, then echoes.
    pub fn with_banner(banner: &str) -> TcpEcho {
        TcpEcho::start_with(EchoMode::Streaming, Some(banner.to_string()))
    }

    pub fn start_with(mode: EchoMode, banner: Option<String>) -> TcpEcho {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo server");
        let addr = listener.local_addr().expect("echo server address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                accepted2.fetch_add(1, Ordering::Relaxed);
                let banner = banner.clone();
                std::thread::spawn(move || {
                    let _ = serve_echo(conn, mode, banner.as_deref());
                });
            }
        });
        TcpEcho { addr, stop, accepted, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

fn serve_echo(mut conn: TcpStream, mode: EchoMode, banner: Option<&str>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    if let Some(b) = banner {
        conn.write_all(format!("{b}\n").as_bytes())?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = Vec::new();
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match mode {
            EchoMode::Streaming => conn.write_all(&buf[..n])?,
            EchoMode::AfterEof => kept.extend_from_slice(&buf[..n]),
        }
    }
    if mode == EchoMode::AfterEof {
        conn.write_all(&kept)?;
    }
    conn.shutdown(Shutdown::Write)
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP echo server on 127.0.0.1 with an ephemeral port: every datagram goes back to its sender.
pub struct UdpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start() -> UdpEcho {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP echo");
        sock.set_read_timeout(Some(Duration::from_millis(100))).expect("UDP echo read timeout");
        let addr = sock.local_addr().expect("UDP echo address");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicUsize::new(0));
        let (stop2, received2) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    received2.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        UdpEcho { addr, stop, received, thread: Some(thread) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams received so far.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP port on 127.0.0.1 that is bound but not listening: nothing else can take it, and every
/// connection to it is refused. A dead upstream for as long as this value lives.
pub struct DeadPort {
    _socket: Socket,
    addr: SocketAddr,
}

impl DeadPort {
    pub fn new() -> DeadPort {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).expect("bind dead port");
        let addr = s.local_addr().expect("dead port address").as_socket().expect("inet address");
        DeadPort { _socket: s, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Default for DeadPort {
    fn default() -> Self {
        DeadPort::new()
    }
}

/// A port that was free a moment ago (bound to port 0, read, released). Only for peers that
/// cannot bind port 0 themselves and report it (redis-server, a `--config-yaml` override):
/// another process could take it in between, so callers retry where that matters.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("bind port 0").port()
}

/// Connects to 127.0.0.1:`port` with [`IO_TIMEOUT`] on reads and writes.
pub fn connect(port: u16) -> TcpStream {
    connect_from(Ipv4Addr::LOCALHOST, port)
}

/// Connects to 127.0.0.1:`port` from source address `src` (any 127.0.0.0/8 address works on
/// Linux without configuration).
pub fn connect_from(src: Ipv4Addr, port: u16) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::from((src, 0)).into()).unwrap_or_else(|e| panic!("bind client socket to {src}: {e}"));
    s.connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {src} -> 127.0.0.1:{port}: {e}"));
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    s
}

/// Reads one `\n`-terminated line (without the newline), byte by byte so nothing after it is
/// consumed.
pub fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => panic!("connection closed before end of line (got {:?})", String::from_utf8_lossy(&out)),
            Ok(_) if b[0] == b'\n' => return String::from_utf8_lossy(&out).into_owned(),
            Ok(_) => out.push(b[0]),
            Err(e) => panic!("reading a line failed after {:?}: {e}", String::from_utf8_lossy(&out)),
        }
    }
}

/// Connects through a proxy listening on `port` and returns the upstream's banner line.
pub fn banner_via(port: u16) -> String {
    banner_via_from(Ipv4Addr::LOCALHOST, port)
}

/// [`banner_via`] from source address `src`.
pub fn banner_via_from(src: Ipv4Addr, port: u16) -> String {
    let mut s = connect_from(src, port);
    read_line(&mut s)
}

/// Writes `msg` and reads exactly as many bytes back.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).expect("write to proxy");
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("read echo through proxy");
    back
}

/// Whether the peer closed the connection: the next read gives EOF or a reset (not data, and
/// not a timeout).
pub fn is_closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted),
    }
}

/// `n` bytes of a fixed pseudo-random pattern (so a misordered or dropped chunk is detected).
pub fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}
