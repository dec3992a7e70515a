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
use super::router::{ClusterPool, Route, MAX_MIRROR_IN_FLIGHT};
use super::upstream::{HostConns, InFlight, UpstreamRequest};
use super::RedisProxy;
use crate::config::redis_proxy::FaultKind;
use crate::filter::network::sock::try_read_drained;
use crate::filter::ConnContext;
use crate::upstream::host::Host;

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
    fn queue(&mut self, pool: &Arc<ClusterPool>, host: &Arc<Host>) -> &mpsc::UnboundedSender<UpstreamRequest> {
        let pool_id = Arc::as_ptr(pool) as usize;
        let i = match self.entries.iter().position(|(p, a, _)| *p == pool_id && *a == host.address) {
            Some(i) => i,
            None => {
                let tx = pool.conns(host).sender(self.id);
                self.entries.push((pool_id, host.address, tx));
                self.entries.len() - 1
            }
        };
        &self.entries[i].2
    }

    /// Queues `bytes` (command `cmd`, an index into `SUPPORTED`) on `host`'s shared connection.
    fn send_to(&mut self, pool: &Arc<ClusterPool>, host: &Arc<Host>, bytes: Bytes, cmd: usize) -> Part {
        let (reply, rx) = oneshot::channel();
        match self.queue(pool, host).send(UpstreamRequest::new(bytes, Some(reply), Some(cmd))) {
            Ok(()) => Part::Wait(rx),
            Err(_) => Part::failed(),
        }
    }

    /// Queues `bytes` on the shared connection of the host that owns `hashed` (the key after
    /// any removed prefix), and on the route's mirrors; `None` when the route has no cluster or
    /// the cluster no host. On a Redis Cluster the command's name decides whether `read_policy`
    /// applies.
    fn send(&mut self, route: &Route, hashed: &[u8], bytes: Bytes, cmd: usize) -> Option<Part> {
        let pool = route.pool.as_ref()?;
        let name = SUPPORTED.get(cmd).map_or("", |(n, _)| *n).as_bytes();
        let host = pool.host_for_command(hashed, self.hashtagging, name)?;
        if route.mirrors.is_empty() {
            return Some(self.send_to(pool, &host, bytes, cmd));
        }
        let part = self.send_to(pool, &host, bytes.clone(), cmd);
        let hashtagging = self.hashtagging;
        self.mirror(route, cmd, &bytes, |m| m.host_for_command(hashed, hashtagging, name));
        Some(part)
    }

    /// Envoy's mirroring: once the primary request is queued, each mirror policy that takes
    /// the command gets a copy on the host `pick` chooses in its cluster; its reply is dropped.
    fn mirror(&mut self, route: &Route, cmd: usize, bytes: &Bytes, pick: impl Fn(&ClusterPool) -> Option<Arc<Host>>) {
        let Some((name, _)) = SUPPORTED.get(cmd) else { return };
        for m in &route.mirrors {
            let Some(pool) = m.pool.as_ref().filter(|_| m.should_mirror(name)) else { continue };
            let Some(host) = pick(pool) else { continue };
            let Some(guard) = InFlight::take(&pool.mirror_in_flight, MAX_MIRROR_IN_FLIGHT) else {
                tracing::debug!(target: "filter", "mirror cluster {}: too many requests in flight, copy not sent", pool.cluster.name);
                continue;
            };
            let r = UpstreamRequest::mirrored(bytes.clone(), Some(cmd), guard);
            let _ = self.queue(pool, &host).send(r);
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
    /// One connection of its own per mirror policy of the route (Envoy's transaction clients
    /// `1..`), `None` where the mirror has no host.
    mirrors: Vec<Option<Arc<HostConns>>>,
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
        // Complete frames wait in `rbuf` because `MAX_IN_FLIGHT` requests are pending.
        let mut held = false;
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
            if held && pending.len() < MAX_IN_FLIGHT {
                // Frames read earlier but past the in-flight bound: their turn now.
                (held, broken) = self.parse(&mut rbuf, &mut scanner, pending, &mut wbuf);
            }
            if !wbuf.is_empty() {
                self.write(stream, &mut wbuf)?;
            }
            if (close_now || self.quit || eof || broken) && pending.is_empty() && wbuf.is_empty() && !held {
                return Ok(());
            }
            let can_read = !eof
                && !broken
                && !held
                && !self.quit
                && pending.len() < MAX_IN_FLIGHT
                && wbuf.len() < MAX_WRITE_BUFFER;
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
                            (held, broken) = self.parse(&mut rbuf, &mut scanner, pending, &mut wbuf);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Dispatches the complete frames in `rbuf`, stopping at `MAX_IN_FLIGHT` pending requests
    /// (one read can hold hundreds of small frames). Returns (frames are held back, the stream
    /// is broken).
    fn parse(
        &mut self,
        rbuf: &mut BytesMut,
        scanner: &mut Scanner,
        pending: &mut VecDeque<Pending>,
        wbuf: &mut BytesMut,
    ) -> (bool, bool) {
        loop {
            if self.quit {
                // Envoy ignores what follows QUIT.
                rbuf.clear();
                return (false, false);
            }
            if pending.len() >= MAX_IN_FLIGHT {
                return (!rbuf.is_empty(), false);
            }
            match scanner.scan(rbuf) {
                Ok(Some(len)) => {
                    let frame = rbuf.split_to(len).freeze();
                    let p = self.dispatch(frame);
                    pending.push_back(p);
                }
                Ok(None) => return (false, false),
                Err(e) => {
                    tracing::debug!(target: "filter", "redis client {}: {e}", self.id);
                    self.proxy.stats.downstream_cx_protocol_error.inc();
                    // Envoy answers the error and closes; replies still in flight are dropped.
                    self.proxy.stats.downstream_rq_active.sub(pending.len() as u64);
                    pending.clear();
                    reply::error(wbuf, DOWNSTREAM_PROTOCOL_ERROR);
                    rbuf.clear();
                    return (false, true);
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
        // Envoy 1.40 answers an unknown command before checking authentication (some clients
        // probe commands before AUTH and expect Redis's reply).
        let found = lookup(name);
        if found.is_none() && !["auth", "ping", "echo", "time", "quit", "client"].iter().any(|l| is(name, l)) {
            return self.unknown(args);
        }
        if is(name, "auth") {
            return match args.len() {
                0 | 1 => self.invalid(),
                3 => self.auth(Some(&args[1]), &args[2]),
                _ => self.auth(None, &args[1]),
            };
        }
        if is(name, "hello") {
            return self.hello(args);
        }
        if !self.authed {
            return Pending::error(AUTH_REQUIRED);
        }
        if is(name, "client") {
            return self.client(args);
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
        let Some(cmd) = found else { return self.unknown(args) };
        let family = SUPPORTED[cmd].1;
        if family == Family::Scan && args.len() < 2 {
            // Envoy answers this itself, without counting it.
            let msg = format!("ERR wrong number of arguments for '{}' command", String::from_utf8_lossy(name));
            return Pending::error(&msg);
        }
        // Envoy's `isCommandValidWithoutArgs`.
        let no_args_ok = family == Family::Transaction
            || matches!(SUPPORTED[cmd].0, "flushall" | "flushdb" | "randomkey" | "role" | "info");
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

    /// Envoy 1.40's reply for a command outside its list, naming the first argument.
    fn unknown(&self, args: &[Bytes]) -> Pending {
        self.proxy.splitter.unsupported_command.inc();
        let first = args.get(1).map(|a| String::from_utf8_lossy(a)).unwrap_or_default();
        let name = args.first().map(|a| String::from_utf8_lossy(a)).unwrap_or_default();
        Pending::error(&format!("ERR unknown command '{name}', with args beginning with: {first}"))
    }

    /// Envoy 1.40's CLIENT: `SETNAME` and `SETINFO` (sent by client libraries on connect) are
    /// accepted and ignored, as the proxy has no per-client identity upstream; every other
    /// subcommand is refused.
    fn client(&self, args: &[Bytes]) -> Pending {
        let Some(sub) = args.get(1) else { return self.invalid() };
        if is(sub, "setname") || is(sub, "setinfo") {
            return Pending::local(Bytes::from_static(b"+OK\r\n"));
        }
        let msg = format!("ERR CLIENT subcommand '{}' is not supported by the proxy", String::from_utf8_lossy(sub));
        Pending::error(&msg)
    }

    fn invalid(&self) -> Pending {
        self.proxy.splitter.invalid_request.inc();
        Pending::error(INVALID_REQUEST)
    }

    /// Envoy's `ProxyFilter::onAuth` (one and two argument forms).
    fn auth(&mut self, username: Option<&[u8]>, password: &[u8]) -> Pending {
        let (accepted, msg) = self.check_auth(username, password);
        if accepted == Some(true) {
            Pending::local(Bytes::from_static(b"+OK\r\n"))
        } else {
            Pending::error(msg)
        }
    }

    /// Checks credentials and updates the session: `Some(accepted)`, or `None` when no
    /// credentials are configured; with the reply text.
    fn check_auth(&mut self, username: Option<&[u8]>, password: &[u8]) -> (Option<bool>, &'static str) {
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
        (accepted, msg)
    }

    /// Envoy 1.40's `HELLO [protover [AUTH username password] [SETNAME clientname]]`: answered
    /// locally with a fixed RESP2 description of the proxy; any protocol version other than 2 is
    /// refused (the downstream codec speaks RESP2). It is counted under `command.hello`, and
    /// with the AUTH option it authenticates the connection like `AUTH`.
    fn hello(&mut self, args: &[Bytes]) -> Pending {
        let Some(cmd) = lookup(b"hello") else { return self.invalid() };
        let stats = self.proxy.commands[cmd].clone();
        stats.total.inc();
        let failed = |msg: &str| {
            stats.error.inc();
            Pending::error(msg)
        };
        if self.txn.active {
            // Counted on HELLO (not MULTI) and named in lower case, as Envoy 1.40 does.
            return failed("'hello' command is not supported within transaction");
        }
        let mut i = 1;
        if let Some(v) = args.get(1) {
            let version = std::str::from_utf8(v).ok().and_then(|v| v.parse::<i64>().ok());
            if version != Some(2) {
                return failed("NOPROTO unsupported protocol version");
            }
            i = 2;
        }
        let mut auth = None;
        while i < args.len() {
            if is(&args[i], "auth") {
                if i + 2 >= args.len() {
                    return failed("ERR Syntax error: HELLO AUTH requires <username> <password>");
                }
                auth = Some((args[i + 1].clone(), args[i + 2].clone()));
                i += 3;
            } else if is(&args[i], "setname") {
                if i + 1 >= args.len() {
                    return failed("ERR Syntax error: HELLO SETNAME requires a <clientname>");
                }
                i += 2;
            } else {
                let msg = format!("ERR Syntax error: unknown HELLO option '{}'", String::from_utf8_lossy(&args[i]));
                return failed(&msg);
            }
        }
        if let Some((user, password)) = auth {
            match self.check_auth(Some(&user), &password) {
                (None, msg) => return Pending::error(msg),
                (Some(false), msg) => return failed(msg),
                (Some(true), _) => {}
            }
        } else if !self.authed {
            return failed(AUTH_REQUIRED);
        }
        stats.success.inc();
        Pending::local(Bytes::from_static(HELLO_REPLY))
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
                let get = lookup(b"get").unwrap_or(cmd);
                let parts = args[1..].iter().map(|k| self.fragment(&[b"get", k], 1, get)).collect();
                Pending::upstream(Body::Split(Shape::MGet, parts), cmd, started)
            }
            Family::MSet => {
                if !(args.len() - 1).is_multiple_of(2) {
                    self.proxy.commands[cmd].error.inc();
                    let msg = format!("wrong number of arguments for '{}' command", String::from_utf8_lossy(&args[0]));
                    return Pending::error(&msg);
                }
                let set = lookup(b"set").unwrap_or(cmd);
                let parts = args[1..].chunks(2).map(|kv| self.fragment(&[b"set", &kv[0], &kv[1]], 1, set)).collect();
                Pending::upstream(Body::Split(Shape::MSet, parts), cmd, started)
            }
            Family::SumMulti => {
                let parts = args[1..].iter().map(|k| self.fragment(&[&args[0], k], 1, cmd)).collect();
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
            Family::RandomShard => self.random_shard(args, frame, cmd, started),
            Family::ClusterScope => {
                let shape = cluster_scope_shape(SUPPORTED[cmd].0, args.get(1).map(|a| a.to_ascii_lowercase()));
                self.fan_out(b"", frame, cmd, shape, started)
            }
            Family::Scan => self.fan_out(&args[1], frame, cmd, Some(Shape::Scan), started),
            Family::InfoShard => self.info_shard(args, cmd, started),
            Family::Hello => self.hello(args),
            Family::LocalOk => {
                self.proxy.commands[cmd].success.inc();
                Pending::local(Bytes::from_static(b"+OK\r\n"))
            }
        }
    }

    /// Sends one shard's copy of `frame` (and mirrors it to shard `i` of each mirror); a shard
    /// without a host (`read_policy: REPLICA` on a shard without replicas) answers `no upstream
    /// host`.
    fn send_to_shard(&mut self, route: &Route, shard: (usize, &Option<Arc<Host>>), frame: &Bytes, cmd: usize) -> Part {
        let (Some(pool), Some(host)) = (route.pool.as_ref(), shard.1) else { return Part::error(NO_UPSTREAM_HOST) };
        let part = self.cache.send_to(pool, host, frame.clone(), cmd);
        let (i, name) = (shard.0, SUPPORTED.get(cmd).map_or("", |(n, _)| *n));
        self.cache.mirror(route, cmd, frame, |m| m.shard_host(i, name));
        part
    }

    /// Envoy's `ClusterScopeCmdRequest` and `ScanRequest`: the same request to every shard,
    /// replies merged by `shape` (`None`: a subcommand Envoy does not handle). Keyless commands
    /// are routed on the empty key (SCAN on its cursor), as in Envoy.
    fn fan_out(&mut self, key: &[u8], frame: &Bytes, cmd: usize, shape: Option<Shape>, started: Instant) -> Pending {
        let proxy = self.proxy.clone();
        let Some(route) = proxy.router.route(key) else { return self.no_host(cmd) };
        let shards = shards_of(route, SUPPORTED[cmd].0);
        if shards.is_empty() {
            return self.no_host(cmd);
        }
        let Some(shape) = shape else {
            self.proxy.commands[cmd].error.inc();
            return Pending::error("ERR unsupported cluster scope command or invalid arguments");
        };
        let parts = shards.iter().enumerate().map(|s| self.send_to_shard(route, s, frame, cmd)).collect();
        Pending::upstream(Body::Split(shape, parts), cmd, started)
    }

    /// Envoy's `RandomShardRequest` (RANDOMKEY; CLUSTER INFO/SLOTS/KEYSLOT/NODES).
    fn random_shard(&mut self, args: &[Bytes], frame: &Bytes, cmd: usize, started: Instant) -> Pending {
        let name = SUPPORTED[cmd].0;
        if let (Some(sub), "cluster") = (args.get(1), name) {
            let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
            if !matches!(sub.as_str(), "info" | "slots" | "keyslot" | "nodes") {
                self.proxy.commands[cmd].error.inc();
                return Pending::error(&format!("ERR {name} subcommand '{sub}' is not supported"));
            }
        }
        let proxy = self.proxy.clone();
        let Some(route) = proxy.router.route(b"") else { return self.no_host(cmd) };
        let shards = shards_of(route, SUPPORTED[cmd].0);
        if shards.is_empty() {
            return self.no_host(cmd);
        }
        let i = rand::random::<u32>() as usize % shards.len();
        let part = self.send_to_shard(route, (i, &shards[i]), frame, cmd);
        Pending::upstream(Body::Shard(part), cmd, started)
    }

    /// Envoy's `ShardInfoRequest`: `INFO.SHARD <shard> [section]` becomes `INFO [section]` on
    /// that shard alone.
    fn info_shard(&mut self, args: &[Bytes], cmd: usize, started: Instant) -> Pending {
        let stats = self.proxy.commands[cmd].clone();
        if args.len() > 3 {
            stats.error.inc();
            return Pending::error(&format!(
                "wrong number of arguments for '{}' command",
                String::from_utf8_lossy(&args[0])
            ));
        }
        let Some(id) = std::str::from_utf8(&args[1]).ok().and_then(|s| s.parse::<u16>().ok()) else {
            stats.error.inc();
            return Pending::error("ERR invalid shard_id - must be a numeric shard index");
        };
        let proxy = self.proxy.clone();
        let Some(route) = proxy.router.route(b"") else { return self.no_host(cmd) };
        let shards = shards_of(route, "info");
        if shards.is_empty() {
            return self.no_host(cmd);
        }
        let id = usize::from(id);
        if id >= shards.len() {
            stats.error.inc();
            return Pending::error(&format!("ERR shard_id {id} out of range (0-{})", shards.len() - 1));
        }
        let mut out = BytesMut::new();
        let mut info: Vec<&[u8]> = vec![b"INFO"];
        info.extend(args.get(2).map(|a| &a[..]));
        encode_command(&mut out, &info);
        let info_cmd = lookup(b"info").unwrap_or(cmd);
        let part = self.send_to_shard(route, (id, &shards[id]), &out.freeze(), info_cmd);
        Pending::upstream(Body::Shard(part), cmd, started)
    }

    /// Envoy's `TransactionRequest::create`.
    /// Envoy 1.40 sends every supported command of an open transaction, whole, to the
    /// transaction's server (MGET included).
    fn transaction(&mut self, req: &Request, frame: &Bytes, cmd: usize, started: Instant) -> Pending {
        let args = &req.args;
        let name = &args[0];
        // Envoy 1.40 queues only single-key, transaction and multi-key commands (EXISTS, EVAL
        // and the keyless commands are refused).
        let allowed = lookup(name).is_some_and(|c| match SUPPORTED[c].1 {
            Family::Simple | Family::Transaction | Family::MGet | Family::MSet => true,
            Family::SumMulti => SUPPORTED[c].0 != "exists",
            _ => false,
        });
        if !allowed {
            let shown = String::from_utf8_lossy(name);
            return Pending::error(&format!("'{shown}' command is not supported within transaction"));
        }
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
        let proxy = self.proxy.clone();
        let route = proxy.router.route(&key);
        if self.txn.conn.is_none() {
            let hashtagging = self.cache.hashtagging;
            let conn = route.and_then(|r| {
                let strip = if r.remove_prefix { r.prefix.len() } else { 0 };
                let pool = r.pool.as_ref()?;
                let host = pool.host_for(&key[strip..], hashtagging)?;
                Some(pool.dedicated(&host))
            });
            if conn.is_some() {
                self.txn.mirrors = route
                    .map(|r| {
                        let strip = if r.remove_prefix { r.prefix.len() } else { 0 };
                        r.mirrors
                            .iter()
                            .map(|m| {
                                let pool = m.pool.as_ref()?;
                                Some(pool.dedicated(&pool.host_for(&key[strip..], hashtagging)?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            self.txn.conn = conn;
        }
        let Some(conn) = self.txn.conn.clone() else {
            if ends || is(name, "unwatch") && !self.txn.active {
                self.txn = Txn::default();
            }
            return self.no_host(cmd);
        };
        let tx = conn.sender(0);
        // The command itself (not MULTI, whose stats count it) names the upstream stats and
        // decides mirroring.
        let own = lookup(name);
        let mirrors = route.map(|r| &r.mirrors[..]).unwrap_or_default();
        let send_mirrors = |bytes: &Bytes, c: Option<usize>| {
            let lower = c.and_then(|c| SUPPORTED.get(c)).map_or("", |(n, _)| *n);
            for (m, conn) in mirrors.iter().zip(&self.txn.mirrors) {
                let (Some(conn), Some(pool)) = (conn.as_ref(), m.pool.as_ref()) else { continue };
                if !m.should_mirror(lower) {
                    continue;
                }
                if let Some(guard) = InFlight::take(&pool.mirror_in_flight, MAX_MIRROR_IN_FLIGHT) {
                    let r = UpstreamRequest::mirrored(bytes.clone(), c, guard);
                    let _ = conn.sender(0).send(r);
                }
            }
        };
        if let Some(bytes) = prelude {
            let multi = lookup(b"multi");
            send_mirrors(&bytes, multi);
            let _ = tx.send(UpstreamRequest::new(bytes, None, multi));
        }
        let (reply, rx) = oneshot::channel();
        let part = match tx.send(UpstreamRequest::new(frame.clone(), Some(reply), own)) {
            Ok(()) => Part::Wait(rx),
            Err(_) => Part::failed(),
        };
        send_mirrors(frame, own);
        let mut p = Pending::upstream(Body::Single(part), cmd, started);
        if ends || (is(name, "unwatch") && !self.txn.active) {
            // The transaction is over once this reply arrives; its connections close then.
            p.hold.extend(self.txn.conn.take());
            p.hold.extend(self.txn.mirrors.drain(..).flatten());
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
        match self.cache.send(route, &key[strip..], bytes, cmd) {
            Some(part) => Pending::upstream(Body::Single(part), cmd, started),
            None => self.no_host(cmd),
        }
    }

    /// One per-key piece of a split command (command `cmd`); a key without a host becomes an
    /// error part.
    fn fragment(&mut self, args: &[&[u8]], key_at: usize, cmd: usize) -> Part {
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
        self.cache.send(route, &key[strip..], out.freeze(), cmd).unwrap_or_else(|| Part::error(NO_UPSTREAM_HOST))
    }

    fn no_host(&self, cmd: usize) -> Pending {
        self.proxy.commands[cmd].error.inc();
        Pending::error(NO_UPSTREAM_HOST)
    }
}

/// The shards of a route's cluster for command `name` (none when the cluster does not exist).
fn shards_of(route: &Route, name: &str) -> Vec<Option<Arc<Host>>> {
    route.pool.as_ref().map(|p| p.shards(name)).unwrap_or_default()
}

/// Envoy's `ClusterResponseHandlerFactory`: how the replies of a cluster-scope command are
/// merged, by command and (lower-case) first argument.
fn cluster_scope_shape(name: &str, sub: Option<Vec<u8>>) -> Option<Shape> {
    Some(match (name, sub.as_deref()) {
        ("slowlog", Some(b"len")) => Shape::IntSum,
        ("slowlog", Some(b"get")) | ("config", Some(b"get")) | ("keys", _) => Shape::Merge,
        ("slowlog", Some(b"reset"))
        | ("config", Some(b"set" | b"rewrite" | b"resetstat"))
        | ("script" | "flushall" | "flushdb", _) => Shape::Same,
        ("info", section) => Shape::Info(section.map(<[u8]>::to_vec).unwrap_or_default()),
        ("role", _) => Shape::Append,
        _ => return None,
    })
}

/// Envoy 1.40's HELLO reply (a RESP2 map as a flat array).
const HELLO_REPLY: &[u8] = b"*14\r\n$6\r\nserver\r\n$17\r\nenvoy-redis-proxy\r\n$7\r\nversion\r\n$5\r\n6.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:0\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

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
