//! A real `redis-server` on 127.0.0.1 (no persistence, its own scratch directory), and the
//! real `redis-cli` to talk to it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::free_port;
use crate::process::{self, require_binary, Proc, TempDir, PATIENCE};

/// A running `redis-server`, killed by PID when dropped.
pub struct RedisServer {
    pub port: u16,
    _proc: Proc,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts redis-server on a free port. redis-server cannot report a kernel-chosen port, so
    /// a free one is picked; if another process takes it first, another is tried.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts redis-server with extra arguments (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let bin = require_binary("redis-server");
        let dir = TempDir::new("redis");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(extra);
            let mut proc = Proc::spawn(&format!("redis-server-{port}"), cmd, &dir);
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if proc.try_exit().is_some() {
                    break; // most likely the port was taken: try another
                }
                if ping(port) {
                    return RedisServer { port, _proc: proc, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }
}

/// Sends an inline PING and checks for `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    // `+PONG`, or `-NOAUTH ...` from a server started with --requirepass: either way it serves.
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

/// Runs `redis-cli -h 127.0.0.1 -p <port> <args>` and returns its trimmed stdout; panics when
/// it fails.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let bin = require_binary("redis-cli");
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", port.as_str()];
    all.extend_from_slice(args);
    let out = process::run_to_end(&bin, &all, None);
    assert_eq!(out.code, Some(0), "redis-cli {all:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout.trim().to_string()
}

/// A raw RESP client: sends commands and returns each reply's exact bytes, so tests can compare
/// error strings byte for byte.
pub struct Resp {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Resp {
    pub fn connect(port: u16) -> Resp {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to redis port");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Resp { stream, buf: Vec::new() }
    }

    /// The RESP encoding of a command.
    pub fn encode(args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to proxy");
    }

    /// Sends one command and returns its reply as text (lossy UTF-8, CRLFs kept).
    pub fn cmd(&mut self, args: &[&str]) -> String {
        self.send_raw(&Self::encode(args));
        self.reply()
    }

    /// Reads one complete reply; panics on timeout or close.
    pub fn reply(&mut self) -> String {
        String::from_utf8_lossy(&self.reply_bytes()).into_owned()
    }

    pub fn reply_bytes(&mut self) -> Vec<u8> {
        self.try_reply().unwrap_or_else(|e| panic!("no reply: {e}"))
    }

    /// One reply, or why none came (closed, timeout, unframable).
    pub fn try_reply(&mut self) -> Result<Vec<u8>, String> {
        let mut scanner = legate_codecs::redis::Scanner::new(legate_codecs::redis::REPLY_LIMITS);
        loop {
            match scanner.scan(&self.buf) {
                Ok(Some(n)) => return Ok(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => return Err(format!("bad reply {:?}: {e}", String::from_utf8_lossy(&self.buf))),
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Whether the proxy closed the connection (EOF) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1024];
        loop {
            match self.stream.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    }
}
