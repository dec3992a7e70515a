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
            .arg(dir.path());
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
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
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
