//! One client connection: frames requests with the bounded scanner, dispatches each (local
//! answer, single upstream, or split), and writes replies strictly in request order.
//!
//! Bounds: at most [`MAX_IN_FLIGHT`] requests and [`MAX_WRITE_BUFFER`] bytes of unwritten
//! replies per client; past either, the session stops reading, so a client that pipelines
//! without reading is held back by TCP instead of growing memory. A frame that cannot be parsed
//! (garbage, a bulk length over 512 MiB, nesting in a request) counts
//! `downstream_cx_protocol_error`, is answered `-downstream protocol error` and closes only this
//! connection; shared upstream connections are untouched.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use legate_codecs::redis::commands::is;
use legate_codecs::redis::reply;
use legate_codecs::redis::request::encode_command;
use legate_codecs::redis::{lookup, Family, Request, Scanner, REQUEST_LIMITS, SUPPORTED};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::pending::{
    Body, Part, Pending, Shape, AUTH_REQUIRED, DOWNSTREAM_PROTOCOL_ERROR, FAULT_ERROR, INVALID_REQUEST,
    NO_UPSTREAM_HOST,
};
use super::router::Route;
use super::upstream::{HostConns, UpstreamRequest};
use super::RedisProxy;
use crate::config::redis_proxy::FaultKind;
use crate::filter::network::sock::try_read_drained;
use crate::filter::ConnContext;

/// Requests in flight per client before the session stops reading.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Unwritten reply bytes per client before the session stops reading.
pub const MAX_WRITE_BUFFER: usize = 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// The upstream queues a client has used, per (cluster pool, host): found once through the
/// pool's lock, then reused without locking.
struct UpstreamCache {
    id: u64,
    hashtagging: bool,
    entries: Vec<(usize, SocketAddr, mpsc::UnboundedSender<UpstreamRequest>)>,
}

impl UpstreamCache {
    /// Queues `bytes` on the shared connection of the host that owns `hashed` (the key after
    /// any removed prefix); `None` when the route has no cluster or the cluster no host.
    fn send(&mut self, route: &Route, hashed: &[u8], bytes: Bytes) -> Option<Part> {
        let pool = route.pool.as_ref()?;
        let host = pool.host_for(hashed, self.hashtagging)?;
        let pool_id = Arc::as_ptr(pool) as usize;
        let i = match self.entries.iter().position(|(p, a, _)| *p == pool_id && *a == host.address) {
            Some(i) => i,
            None => {
                let tx = pool.conns(&host).sender(self.id);
                self.entries.push((pool_id, host.address, tx));
                self.entries.len() - 1
            }
        };
        let (reply, rx) = oneshot::channel();
        match self.entries[i].2.send(UpstreamRequest { bytes, reply: Some(reply) }) {
            Ok(()) => Some(Part::Wait(rx)),
            Err(_) => Some(Part::failed()),
        }
    }
}

/// A client's transaction (Envoy's `Transaction`): MULTI/EXEC and WATCH pin the client to the
/// server of the first key, over a connection of its own.
#[derive(Default)]
struct Txn {
    active: bool,
    key: Option<Bytes>,
    conn: Option<Arc<HostConns>>,
}

struct Session {
    proxy: Arc<RedisProxy>,
    id: u64,
    authed: bool,
    quit: bool,
    cache: UpstreamCache,
    txn: Txn,
}

pub async fn run(proxy: Arc<RedisProxy>, stream: TcpStream, cx: ConnContext) {
    let stats = &proxy.stats;
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    let _ = stream.set_nodelay(true);
    let authed = proxy.passwords.is_empty() && proxy.username.is_empty();
    let cache = UpstreamCache { id: cx.connection_id, hashtagging: proxy.hashtagging, entries: Vec::new() };
    let mut s = Session { proxy: proxy.clone(), id: cx.connection_id, authed, quit: false, cache, txn: Txn::default() };
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let _ = s.serve(&stream, &mut pending).await;
    // Whatever is still in flight is cancelled (its upstream replies are dropped on arrival).
    proxy.stats.downstream_rq_active.sub(pending.len() as u64);
    proxy.stats.downstream_cx_active.dec();
}

impl Session {
    async fn serve(&mut self, stream: &TcpStream, pending: &mut VecDeque<Pending>) -> io::Result<()> {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut wbuf = BytesMut::new();
        let mut scanner = Scanner::new(REQUEST_LIMITS);
        let mut eof = false;
        let mut broken = false;
        loop {
            // Move every reply that is ready, in order, to the write buffer.
            let mut close_now = false;
            while let Some(front) = pending.front_mut() {
                if !front.ready() {
                    break;
                }
                let Some(p) = pending.pop_front() else { break };
                close_now |= p.close_after;
                self.complete(p, &mut wbuf);
            }
            if !wbuf.is_empty() {
                self.write(stream, &mut wbuf)?;
            }
            if (close_now || self.quit || eof || broken) && pending.is_empty() && wbuf.is_empty() {
                return Ok(());
            }
            let can_read =
                !eof && !broken && !self.quit && pending.len() < MAX_IN_FLIGHT && wbuf.len() < MAX_WRITE_BUFFER;
            let front_waiting = !pending.is_empty();
            tokio::select! {
                biased;
                _ = async { if let Some(p) = pending.front_mut() { p.wait().await } }, if front_waiting => {}
                r = stream.writable(), if !wbuf.is_empty() => r?,
                r = stream.readable(), if can_read => {
                    r?;
                    rbuf.reserve(READ_CHUNK);
                    match try_read_drained(stream, &mut rbuf) {
                        Ok(0) => eof = true,
                        Ok(n) => {
                            self.proxy.stats.downstream_cx_rx_bytes_total.add(n as u64);
                            loop {
                                if self.quit {
                                    // Envoy ignores what follows QUIT.
                                    rbuf.clear();
                                    break;
                                }
                                match scanner.scan(&rbuf) {
                                    Ok(Some(len)) => {
                                        let frame = rbuf.split_to(len).freeze();
                                        let p = self.dispatch(frame);
                                        pending.push_back(p);
                                    }
                                    Ok(None) => break,
                                    Err(e) => {
                                        tracing::debug!(target: "filter", "redis client {}: {e}", self.id);
                                        self.proxy.stats.downstream_cx_protocol_error.inc();
                                        // Envoy answers the error and closes; replies still in
                                        // flight are dropped.
                                        self.proxy.stats.downstream_rq_active.sub(pending.len() as u64);
                                        pending.clear();
                                        reply::error(&mut wbuf, DOWNSTREAM_PROTOCOL_ERROR);
                                        rbuf.clear();
                                        broken = true;
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    fn write(&self, stream: &TcpStream, wbuf: &mut BytesMut) -> io::Result<()> {
        while !wbuf.is_empty() {
            match stream.try_write(wbuf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.proxy.stats.downstream_cx_tx_bytes_total.add(n as u64);
                    let _ = wbuf.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if wbuf.is_empty() {
            wbuf.clear();
        }
        Ok(())
    }

    /// Settles the stats of a finished request and appends its reply.
    fn complete(&self, p: Pending, wbuf: &mut BytesMut) {
        self.proxy.stats.downstream_rq_active.dec();
        let cmd = p.cmd;
        let started = p.started;
        let delayed = p.delay.is_some();
        let is_local = matches!(p.body, Body::Local(_));
        let outcome = p.finish();
        if let Some(i) = cmd {
            let c = &self.proxy.commands[i];
            if !is_local {
                if outcome.success {
                    c.success.inc();
                } else {
                    c.error.inc();
                }
            }
            if delayed {
                c.delay_fault.inc();
            }
            let e = started.elapsed();
            c.latency.record(if self.proxy.latency_in_micros { e.as_micros() as u64 } else { e.as_millis() as u64 });
        }
        wbuf.extend_from_slice(&outcome.bytes);
    }

    /// Turns one request frame into a pending reply (Envoy's `InstanceImpl::makeRequest`).
    fn dispatch(&mut self, frame: Bytes) -> Pending {
        let stats = &self.proxy.stats;
        stats.downstream_rq_total.inc();
        stats.downstream_rq_active.inc();
        let req = match Request::decode(&frame) {
            Ok(r) => r,
            Err(_) => return self.invalid(),
        };
        let args = &req.args;
        let name = req.name();
        if is(name, "auth") {
            return match args.len() {
                0 | 1 => self.invalid(),
                3 => self.auth(Some(&args[1]), &args[2]),
                _ => self.auth(None, &args[1]),
            };
        }
        if !self.authed {
            return Pending::error(AUTH_REQUIRED);
        }
        if is(name, "ping") {
            return Pending::local(Bytes::from_static(b"+PONG\r\n"));
        }
        if is(name, "echo") {
            if args.len() != 2 {
                return self.invalid();
            }
            let mut b = BytesMut::new();
            reply::bulk(&mut b, &args[1]);
            return Pending::local(b.freeze());
        }
        if is(name, "time") {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let mut b = BytesMut::new();
            reply::array_header(&mut b, 2);
            reply::bulk(&mut b, now.as_secs().to_string().as_bytes());
            reply::bulk(&mut b, now.as_micros().to_string().as_bytes());
            return Pending::local(b.freeze());
        }
        if is(name, "quit") {
            self.quit = true;
            let mut p = Pending::local(Bytes::from_static(b"+OK\r\n"));
            p.close_after = true;
            return p;
        }
        let Some(cmd) = lookup(name) else {
            // Envoy 1.40's reply for a command outside its list, naming the first argument.
            self.proxy.splitter.unsupported_command.inc();
            let first = args.get(1).map(|a| String::from_utf8_lossy(a)).unwrap_or_default();
            let msg =
                format!("ERR unknown command '{}', with args beginning with: {first}", String::from_utf8_lossy(name));
            return Pending::error(&msg);
        };
        let family = SUPPORTED[cmd].1;
        let no_args_ok = matches!(family, Family::Transaction | Family::RandomShard) || is(name, "hello");
        if args.len() < 2 && !no_args_ok {
            return self.invalid();
        }
        let family = SUPPORTED[cmd].1;
        // Inside a transaction every command is MULTI's (Envoy counts them on `command.multi`).
        let in_txn = self.txn.active || family == Family::Transaction;
        let cmd = if self.txn.active { lookup(b"multi").unwrap_or(cmd) } else { cmd };
        let stats = &self.proxy.commands[cmd];
        let fault = self.proxy.fault_for(cmd).map(|f| (f.kind, f.delay));
        stats.total.inc();
        let started = Instant::now();
        let mut p = if let Some((FaultKind::Error, _)) = fault {
            stats.error.inc();
            stats.error_fault.inc();
            let mut p = Pending::error(FAULT_ERROR);
            p.cmd = Some(cmd);
            p
        } else if in_txn {
            self.transaction(&req, &frame, cmd, started)
        } else {
            self.route(&req, &frame, cmd, family, started)
        };
        if let Some((_, delay)) = fault {
            if !delay.is_zero() {
                p.delay = Some(delay);
            }
        }
        p
    }

    fn invalid(&self) -> Pending {
        self.proxy.splitter.invalid_request.inc();
        Pending::error(INVALID_REQUEST)
    }

    /// Envoy's `ProxyFilter::onAuth` (one and two argument forms).
    fn auth(&mut self, username: Option<&[u8]>, password: &[u8]) -> Pending {
        let p = &self.proxy;
        let ok = p.passwords.iter().any(|x| x.as_bytes() == password);
        let (accepted, msg) = match username {
            None if p.passwords.is_empty() => (None, "ERR Client sent AUTH, but no password is set"),
            None if ok => (Some(true), "OK"),
            None => (Some(false), "ERR invalid password"),
            Some(_) if p.username.is_empty() && p.passwords.is_empty() => {
                (None, "ERR Client sent AUTH, but no username-password pair is set")
            }
            Some(u) if p.username.is_empty() && u == b"default" && ok => (Some(true), "OK"),
            Some(u) if !p.username.is_empty() && u == p.username.as_bytes() && ok => (Some(true), "OK"),
            Some(_) => (Some(false), "WRONGPASS invalid username-password pair"),
        };
        if let Some(a) = accepted {
            self.authed = a;
        }
        if accepted == Some(true) {
            Pending::local(Bytes::from_static(b"+OK\r\n"))
        } else {
            Pending::error(msg)
        }
    }

    /// Routes a supported command by its family.
    fn route(&mut self, req: &Request, frame: &Bytes, cmd: usize, family: Family, started: Instant) -> Pending {
        let args = &req.args;
        match family {
            Family::Simple => self.single(args, frame, 1, cmd, started),
            Family::Eval => {
                if args.len() < 4 {
                    self.proxy.commands[cmd].error.inc();
                    let msg = format!("wrong number of arguments for '{}' command", String::from_utf8_lossy(&args[0]));
                    return Pending::error(&msg);
                }
                self.single(args, frame, 3, cmd, started)
            }
            Family::MGet => {
                let parts = args[1..].iter().map(|k| self.fragment(&[b"get", k], 1)).collect();
                Pending::upstream(Body::Split(Shape::MGet, parts), cmd, started)
            }
            Family::MSet => {
                if !(args.len() - 1).is_multiple_of(2) {
                    self.proxy.commands[cmd].error.inc();
                    let msg = format!("wrong number of arguments for '{}' command", String::from_utf8_lossy(&args[0]));
                    return Pending::error(&msg);
                }
                let parts = args[1..].chunks(2).map(|kv| self.fragment(&[b"set", &kv[0], &kv[1]], 1)).collect();
                Pending::upstream(Body::Split(Shape::MSet, parts), cmd, started)
            }
            Family::SumMulti => {
                let parts = args[1..].iter().map(|k| self.fragment(&[&args[0], k], 1)).collect();
                Pending::upstream(Body::Split(Shape::Sum, parts), cmd, started)
            }
            Family::Transaction => self.transaction(req, frame, cmd, started),
            Family::KeyAt2 => {
                if args.len() < 3 {
                    self.proxy.commands[cmd].error.inc();
                    let msg = format!("wrong number of arguments for '{}' command", String::from_utf8_lossy(&args[0]));
                    return Pending::error(&msg);
                }
                self.single(args, frame, 2, cmd, started)
            }
            Family::RandomShard => {
                // A random key picks a random server through the same load balancer.
                let key = rand::random::<u64>().to_le_bytes();
                let route = self.proxy.router.route(b"").or_else(|| self.proxy.router.route(&key));
                let part = route.and_then(|r| self.cache.send(r, &key, frame.clone()));
                match part {
                    Some(part) => Pending::upstream(Body::Single(part), cmd, started),
                    None => self.no_host(cmd),
                }
            }
            Family::LocalOk => {
                self.proxy.commands[cmd].success.inc();
                Pending::local(Bytes::from_static(b"+OK\r\n"))
            }
            Family::NotYet => {
                self.proxy.commands[cmd].error.inc();
                let msg = format!("ERR '{}' is not supported by Legate yet", String::from_utf8_lossy(&args[0]));
                Pending::error(&msg)
            }
        }
    }

    /// Envoy's `TransactionRequest::create`.
    /// Envoy 1.40 sends every supported command of an open transaction, whole, to the
    /// transaction's server (MGET included).
    fn transaction(&mut self, req: &Request, frame: &Bytes, cmd: usize, started: Instant) -> Pending {
        let args = &req.args;
        let name = &args[0];
        let mut ends = false;
        if is(name, "multi") {
            if self.txn.active {
                return Pending::error("MULTI calls can not be nested");
            }
            self.txn.active = true;
            if self.txn.key.is_none() {
                return Pending::local(Bytes::from_static(b"+OK\r\n"));
            }
        } else if is(name, "exec") || is(name, "discard") {
            let upper = if is(name, "exec") { "EXEC" } else { "DISCARD" };
            if !self.txn.active {
                return Pending::error(&format!("{upper} without MULTI"));
            }
            if self.txn.key.is_none() {
                self.txn = Txn::default();
                return Pending::local(Bytes::from_static(if upper == "EXEC" { b"*0\r\n" } else { b"+OK\r\n" }));
            }
            ends = true;
        }
        if is(name, "watch") && !self.txn.active {
            self.txn.key = Some(args[1].clone());
        }
        let mut prelude = None;
        if self.txn.key.is_none() {
            if is(name, "unwatch") {
                let reply: &'static [u8] = if self.txn.active { b"+QUEUED\r\n" } else { b"+OK\r\n" };
                return Pending::local(Bytes::from_static(reply));
            }
            self.txn.key = Some(args[1].clone());
            // The first keyed command opens the transaction on that key's server.
            let mut m = BytesMut::new();
            encode_command(&mut m, &[b"MULTI"]);
            prelude = Some(m.freeze());
        }
        let Some(key) = self.txn.key.clone() else { return self.no_host(cmd) };
        if self.txn.conn.is_none() {
            let proxy = self.proxy.clone();
            let conn = proxy.router.route(&key).and_then(|r| {
                let strip = if r.remove_prefix { r.prefix.len() } else { 0 };
                let pool = r.pool.as_ref()?;
                let host = pool.host_for(&key[strip..], self.cache.hashtagging)?;
                Some(pool.dedicated(&host))
            });
            self.txn.conn = conn;
        }
        let Some(conn) = self.txn.conn.clone() else {
            if ends || is(name, "unwatch") && !self.txn.active {
                self.txn = Txn::default();
            }
            return self.no_host(cmd);
        };
        let tx = conn.sender(0);
        if let Some(bytes) = prelude {
            let _ = tx.send(UpstreamRequest { bytes, reply: None });
        }
        let (reply, rx) = oneshot::channel();
        let part = match tx.send(UpstreamRequest { bytes: frame.clone(), reply: Some(reply) }) {
            Ok(()) => Part::Wait(rx),
            Err(_) => Part::failed(),
        };
        let mut p = Pending::upstream(Body::Single(part), cmd, started);
        if ends || (is(name, "unwatch") && !self.txn.active) {
            // The transaction is over once this reply arrives; its connection closes then.
            p.hold = self.txn.conn.take();
            self.txn = Txn::default();
        }
        p
    }

    /// A command sent whole to the server of `args[key_at]`.
    fn single(&mut self, args: &[Bytes], frame: &Bytes, key_at: usize, cmd: usize, started: Instant) -> Pending {
        let key = &args[key_at];
        let Some(route) = self.proxy.router.route(key) else { return self.no_host(cmd) };
        let strip = if route.remove_prefix { route.prefix.len() } else { 0 };
        let bytes = if strip > 0 { rewrite(args, key_at, strip) } else { frame.clone() };
        match self.cache.send(route, &key[strip..], bytes) {
            Some(part) => Pending::upstream(Body::Single(part), cmd, started),
            None => self.no_host(cmd),
        }
    }

    /// One per-key piece of a split command; a key without a host becomes an error part.
    fn fragment(&mut self, args: &[&[u8]], key_at: usize) -> Part {
        let key = args[key_at];
        let Some(route) = self.proxy.router.route(key) else { return Part::error(NO_UPSTREAM_HOST) };
        let strip = if route.remove_prefix { route.prefix.len() } else { 0 };
        let mut out = BytesMut::new();
        if strip > 0 {
            let mut v: Vec<&[u8]> = args.to_vec();
            v[key_at] = &key[strip..];
            encode_command(&mut out, &v);
        } else {
            encode_command(&mut out, args);
        }
        self.cache.send(route, &key[strip..], out.freeze()).unwrap_or_else(|| Part::error(NO_UPSTREAM_HOST))
    }

    fn no_host(&self, cmd: usize) -> Pending {
        self.proxy.commands[cmd].error.inc();
        Pending::error(NO_UPSTREAM_HOST)
    }
}

/// The request with `args[at]` shortened by `strip` bytes (a route's `remove_prefix`).
fn rewrite(args: &[Bytes], at: usize, strip: usize) -> Bytes {
    let mut v: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    v[at] = &args[at][strip..];
    let mut out = BytesMut::new();
    encode_command(&mut out, &v);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_strips_the_prefix_of_one_argument() {
        let args = vec![Bytes::from_static(b"GET"), Bytes::from_static(b"pre:key")];
        assert_eq!(&rewrite(&args, 1, 4)[..], b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
    }
}
