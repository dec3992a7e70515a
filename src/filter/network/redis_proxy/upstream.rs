//! Upstream Redis connections shared by every client and every worker thread.
//!
//! Each (cluster, host) gets a small fixed number of connection slots ([`HostConns`]); a slot
//! is one task that owns one TCP connection and a queue. A client session is pinned to one
//! slot per host (by its connection id), so all of its requests to that host travel one
//! connection in order, and replies come back in the order they were sent (Redis answers a
//! connection's requests in order). Requests from many sessions are written in batches, which
//! is what makes pipelining through a shared connection cheap.
//!
//! The task connects lazily on its first request and again after a failure; it never exits
//! while the filter that created it is alive. Like Envoy's redis client it arms `op_timeout`
//! while requests are outstanding (refreshed by each reply); when it fires the connection is
//! closed and every outstanding request fails with `upstream failure`.
//!
//! Envoy opens one connection per worker per host without a cap; here the cap is
//! `min(worker threads, MAX_CONNECTIONS_PER_HOST)`.
//!
//! With `enable_redirection` (Envoy's client): a `MOVED` or `ASK` reply is not returned; the
//! request is sent again to the named host (after `ASKING` for ASK, on the same connection
//! and in the same write), its reply goes to the waiting client, and the cluster's refresh
//! manager is told; `upstream_internal_redirect_{succeeded,failed}_total` count the outcome. A
//! `CLUSTERDOWN` reply fails the request (`upstream failure`). Unlike Envoy, a request is
//! redirected at most [`MAX_REDIRECTS`] times, so two nodes that disagree cannot bounce it
//! forever.
//!
//! When a Redis Cluster's topology drops a host, its connections are drained as Envoy drains
//! them: an idle connection closes at once; one with requests in flight closes when they are
//! answered, counting `redis_cluster.upstream_cx_drained`. A later request reconnects.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use legate_codecs::redis::reply;
use legate_codecs::redis::{Scanner, REPLY_LIMITS};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::cluster::{classify_error, ErrorReply};
use super::router::ClusterPool;
use crate::filter::network::sock::try_read_drained;
use crate::upstream::cluster::Cluster;
use crate::upstream::host::Host;

/// At most this many connections per Redis host, whatever the number of workers.
pub const MAX_CONNECTIONS_PER_HOST: usize = 4;
/// Stop taking new requests from the queue while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Redirections one request may follow before its MOVED/ASK reply is returned as is.
pub const MAX_REDIRECTS: u8 = 5;
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connect failure, timeout, close or a reply that could not be framed: Envoy's
    /// `upstream failure`.
    Upstream,
}

pub type Reply = Result<Bytes, Failure>;

/// One request for a connection task.
pub struct UpstreamRequest {
    pub bytes: Bytes,
    /// `None` for a request whose reply is dropped (a transaction's opening MULTI, a mirrored
    /// request).
    pub reply: Option<oneshot::Sender<Reply>>,
    /// The command's index in `SUPPORTED`, for the per-command upstream stats.
    pub cmd: Option<usize>,
    /// A mirrored request's place among its cluster's mirrored requests in flight, given back
    /// when its reply arrives or it fails (a redirection carries it along).
    pub guard: Option<InFlight>,
    /// How many redirections brought the request here (0 for a client's request).
    pub redirects: u8,
    /// `bytes` start with `ASKING` (an ASK redirection), whose reply is dropped.
    pub asking: bool,
}

impl UpstreamRequest {
    /// A request for command `cmd` (an index into `SUPPORTED`), not redirected.
    pub fn new(bytes: Bytes, reply: Option<oneshot::Sender<Reply>>, cmd: Option<usize>) -> UpstreamRequest {
        UpstreamRequest { bytes, reply, cmd, guard: None, redirects: 0, asking: false }
    }

    /// A mirrored copy of command `cmd`: no reply, holding its place among the in-flight copies.
    pub fn mirrored(bytes: Bytes, cmd: Option<usize>, guard: InFlight) -> UpstreamRequest {
        UpstreamRequest { bytes, reply: None, cmd, guard: Some(guard), redirects: 0, asking: false }
    }
}

/// Counts a fire-and-forget (mirrored) request until its reply arrives or it fails. A client
/// waits for its own replies, which bounds what it can have queued; nothing waits for a
/// mirror's, so a slow mirror would let copies pile up without this cap.
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// A place from `counter`, unless `max` are taken.
    pub fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<InFlight> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| InFlight(counter.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection needs to know from the filter.
#[derive(Clone)]
pub struct ConnSettings {
    pub op_timeout: Duration,
    pub max_buffer_size_before_flush: usize,
    pub buffer_flush_timeout: Duration,
    /// `AUTH` (and `READONLY`) sent first on every new connection; replies are ignored, as Envoy
    /// ignores them.
    pub init: Bytes,
    pub init_count: usize,
    /// `cluster.<c>.redis_cluster.upstream_commands.upstream_rq_time` (microseconds, as
    /// Envoy's, every request).
    pub rq_time: crate::stats::Histogram,
    /// The per-command stats, with `settings.enable_command_stats`.
    pub commands: Option<Arc<super::stats::UpstreamCommandStats>>,
    /// Set with `enable_redirection`: the pool that redirected requests go through.
    pub redirect: Option<Weak<ClusterPool>>,
    /// `cluster.<c>.redis_cluster.upstream_cx_drained`.
    pub cx_drained: crate::stats::Counter,
}

/// The connection slots of one host.
pub struct HostConns {
    host: Arc<Host>,
    cluster: Arc<Cluster>,
    settings: ConnSettings,
    slots: Vec<OnceLock<mpsc::UnboundedSender<UpstreamRequest>>>,
    drain: tokio::sync::watch::Sender<u64>,
}

impl HostConns {
    pub fn new(cluster: Arc<Cluster>, host: Arc<Host>, settings: ConnSettings, slots: usize) -> HostConns {
        HostConns {
            host,
            cluster,
            settings,
            slots: (0..slots.max(1)).map(|_| OnceLock::new()).collect(),
            drain: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The host left the cluster's topology: close its connections once they are idle.
    pub fn drain(&self) {
        self.drain.send_modify(|g| *g += 1);
    }

    pub fn address(&self) -> SocketAddr {
        self.host.address
    }

    /// The queue of slot `id % slots`, starting its task on first use.
    pub fn sender(&self, id: u64) -> mpsc::UnboundedSender<UpstreamRequest> {
        let slot = &self.slots[(id % self.slots.len() as u64) as usize];
        slot.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task =
                ConnTask { host: self.host.clone(), cluster: self.cluster.clone(), settings: self.settings.clone() };
            tokio::spawn(task.run(rx, self.drain.subscribe()));
            tx
        })
        .clone()
    }
}

struct ConnTask {
    host: Arc<Host>,
    cluster: Arc<Cluster>,
    settings: ConnSettings,
}

/// An outstanding request on a live connection.
struct Waiting {
    reply: Option<oneshot::Sender<Reply>>,
    sent: Instant,
    cmd: Option<usize>,
    guard: Option<InFlight>,
    /// The request, kept for a redirection (only with `enable_redirection`).
    request: Option<Bytes>,
    redirects: u8,
}

/// How a live connection ended.
enum End {
    /// Every sender is gone: the filter was dropped.
    Shutdown,
    Remote,
    Local,
    /// The host left the topology; `true` when requests were in flight at that moment.
    Drained(bool),
}

impl ConnTask {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<UpstreamRequest>, mut drain: tokio::sync::watch::Receiver<u64>) {
        loop {
            let Some(first) = rx.recv().await else { return };
            match self.connect().await {
                Ok(stream) => {
                    let mut live = Live::new(&self, stream);
                    if self.settings.init_count > 0 {
                        live.wbuf.extend_from_slice(&self.settings.init);
                        for _ in 0..self.settings.init_count {
                            live.push_internal();
                        }
                        live.flush_at = Some(Instant::now());
                    }
                    live.enqueue(first);
                    drain.mark_unchanged();
                    let end = live.run(&mut rx, &mut drain).await;
                    live.close(&end);
                    if matches!(end, End::Shutdown) {
                        return;
                    }
                }
                Err(()) => {
                    self.note_failure();
                    fail(first);
                    while let Ok(r) = rx.try_recv() {
                        self.note_failure();
                        fail(r);
                    }
                }
            }
        }
    }

    /// Connects within the cluster's `connect_timeout`, counting what Envoy's redis client
    /// counts: the connection exists (total, active) from the attempt on.
    async fn connect(&self) -> Result<TcpStream, ()> {
        let s = &self.cluster.stats;
        s.upstream_cx_total.inc();
        s.upstream_cx_active.inc();
        self.host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
        self.host.stats.cx_active.fetch_add(1, Ordering::Relaxed);
        let result =
            tokio::time::timeout(self.cluster.config.connect_timeout, TcpStream::connect(self.host.address)).await;
        match result {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => {
                tracing::debug!(target: "upstream", "redis connect to {} failed: {e}", self.host.address);
                s.upstream_cx_connect_fail.inc();
                self.host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                self.destroyed(true, 1);
                Err(())
            }
            Err(_) => {
                s.upstream_cx_connect_timeout.inc();
                self.host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                self.destroyed(false, 1);
                Err(())
            }
        }
    }

    /// A request failed: a Redis Cluster may refresh its topology (`failure_refresh_threshold`).
    fn note_failure(&self) {
        if let Some(state) = &self.cluster.redis {
            state.on_failure();
        }
    }

    /// Envoy's `reportUpstreamCxDestroy` (+ `...ActiveRequest` when requests were outstanding).
    fn destroyed(&self, remote: bool, outstanding: usize) {
        let s = &self.cluster.stats;
        s.upstream_cx_active.dec();
        self.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
        s.upstream_cx_destroy.inc();
        if remote {
            s.upstream_cx_destroy_remote.inc();
        } else {
            s.upstream_cx_destroy_local.inc();
        }
        if outstanding > 0 {
            s.upstream_cx_destroy_with_active_rq.inc();
            if remote {
                s.upstream_cx_destroy_remote_with_active_rq.inc();
            } else {
                s.upstream_cx_destroy_local_with_active_rq.inc();
            }
        }
    }
}

fn fail(r: UpstreamRequest) {
    if let Some(tx) = r.reply {
        let _ = tx.send(Err(Failure::Upstream));
    }
}

/// A connected upstream.
struct Live<'t> {
    task: &'t ConnTask,
    stream: TcpStream,
    wbuf: BytesMut,
    rbuf: BytesMut,
    scanner: Scanner,
    waiting: VecDeque<Waiting>,
    /// When the op timer should fire (refreshed by every reply while requests are outstanding).
    op_deadline: Instant,
    /// Set once the buffered bytes may be written (`max_buffer_size_before_flush` reached or
    /// `buffer_flush_timeout` expired, or batching disabled).
    flush_at: Option<Instant>,
}

impl<'t> Live<'t> {
    fn new(task: &'t ConnTask, stream: TcpStream) -> Live<'t> {
        Live {
            task,
            stream,
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            scanner: Scanner::new(REPLY_LIMITS),
            waiting: VecDeque::new(),
            op_deadline: Instant::now() + task.settings.op_timeout,
            flush_at: None,
        }
    }

    /// A request whose reply is dropped and never redirected (AUTH, READONLY, ASKING): counted
    /// as Envoy counts them, under the `unknown` command.
    fn push_internal(&mut self) {
        self.push_waiting(Waiting {
            reply: None,
            sent: Instant::now(),
            cmd: None,
            guard: None,
            request: None,
            redirects: 0,
        });
    }

    fn push_waiting(&mut self, w: Waiting) {
        if self.waiting.is_empty() {
            self.op_deadline = Instant::now() + self.task.settings.op_timeout;
        }
        let s = &self.task.cluster.stats;
        s.upstream_rq_total.inc();
        s.upstream_rq_active.inc();
        self.task.host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        self.task.host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = &self.task.settings.commands {
            c.sent(w.cmd);
        }
        self.waiting.push_back(w);
    }

    fn pop_waiting(&mut self) -> Option<Waiting> {
        let w = self.waiting.pop_front()?;
        self.task.cluster.stats.upstream_rq_active.dec();
        self.task.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
        Some(w)
    }

    fn enqueue(&mut self, r: UpstreamRequest) {
        if r.reply.as_ref().is_some_and(|tx| tx.is_closed()) {
            // The client went away before its request was written: drop it, as Envoy cancels.
            self.task.cluster.stats.upstream_rq_cancelled.inc();
            return;
        }
        let was_empty = self.wbuf.is_empty();
        self.wbuf.extend_from_slice(&r.bytes);
        if r.asking {
            self.push_internal();
        }
        // Mirrored copies follow redirections too (Envoy redirects at the pool, whoever waits).
        let keep = if self.task.settings.redirect.is_some() && (r.reply.is_some() || r.guard.is_some()) {
            Some(if r.asking { r.bytes.slice(ASKING.len().min(r.bytes.len())..) } else { r.bytes })
        } else {
            None
        };
        let w = Waiting {
            reply: r.reply,
            sent: Instant::now(),
            cmd: r.cmd,
            guard: r.guard,
            request: keep,
            redirects: r.redirects,
        };
        self.push_waiting(w);
        let max = self.task.settings.max_buffer_size_before_flush;
        if self.wbuf.len() >= max {
            self.flush_at = Some(Instant::now());
        } else if was_empty {
            self.flush_at = Some(Instant::now() + self.task.settings.buffer_flush_timeout);
        }
    }

    async fn run(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<UpstreamRequest>,
        drain: &mut tokio::sync::watch::Receiver<u64>,
    ) -> End {
        let op_sleep = tokio::time::sleep(self.task.settings.op_timeout);
        tokio::pin!(op_sleep);
        let mut armed_for = None;
        // `None` once the HostConns is gone (nothing can signal a drain any more).
        let mut draining: Option<bool> = Some(false);
        loop {
            if draining == Some(true) && self.waiting.is_empty() && self.wbuf.is_empty() {
                return End::Drained(true);
            }
            let now = Instant::now();
            let flush_due = self.flush_at.is_some_and(|t| t <= now);
            if flush_due && !self.wbuf.is_empty() {
                match self.try_write() {
                    Ok(()) => {}
                    Err(_) => return End::Remote,
                }
            }
            // The timer is re-armed lazily: replies only move the deadline later, so an early
            // wake-up just re-arms it (no timer reset per reply).
            if !self.waiting.is_empty() && armed_for.is_none() {
                op_sleep.as_mut().reset(self.op_deadline.into());
                armed_for = Some(());
            }
            let want_write = flush_due && !self.wbuf.is_empty();
            let flush_wait = self.flush_at.filter(|_| !flush_due && !self.wbuf.is_empty());
            tokio::select! {
                biased;
                r = self.stream.readable() => {
                    if r.is_err() {
                        return End::Remote;
                    }
                    if let Some(end) = self.read() {
                        return end;
                    }
                }
                m = rx.recv(), if self.wbuf.len() < WRITE_HIGH_WATER => match m {
                    Some(r) => {
                        self.enqueue(r);
                        self.drain(rx);
                        if self.flush_at.is_some_and(|t| t <= Instant::now()) {
                            // A flush is due now: let the other clients that are ready on this
                            // worker add their requests first (one scheduler pass), so that they
                            // share one write instead of one write each (twemproxy batches the
                            // same way, per event loop turn).
                            tokio::task::yield_now().await;
                            self.drain(rx);
                        }
                    }
                    None => return End::Shutdown,
                },
                r = self.stream.writable(), if want_write => {
                    if r.is_err() {
                        return End::Remote;
                    }
                }
                _ = tokio::time::sleep_until(flush_wait.unwrap_or(now).into()), if flush_wait.is_some() => {}
                r = drain.changed(), if draining == Some(false) => match r {
                    Err(_) => draining = None,
                    Ok(()) if self.waiting.is_empty() && self.wbuf.is_empty() => return End::Drained(false),
                    Ok(()) => draining = Some(true),
                },
                _ = &mut op_sleep, if !self.waiting.is_empty() => {
                    if Instant::now() >= self.op_deadline {
                        self.task.cluster.stats.upstream_rq_timeout.inc();
                        self.task.host.stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
                        return End::Local;
                    }
                    armed_for = None;
                }
            }
        }
    }

    /// Moves queued requests into the write buffer, up to the high-water mark.
    fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<UpstreamRequest>) {
        while self.wbuf.len() < WRITE_HIGH_WATER {
            match rx.try_recv() {
                Ok(r) => self.enqueue(r),
                Err(_) => break,
            }
        }
    }

    fn try_write(&mut self) -> io::Result<()> {
        while !self.wbuf.is_empty() {
            match self.stream.try_write(&self.wbuf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.task.cluster.stats.upstream_cx_tx_bytes_total.add(n as u64);
                    let _ = self.wbuf.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.wbuf.is_empty() {
            self.wbuf.clear();
            self.flush_at = None;
        }
        Ok(())
    }

    /// Reads what is available and completes the requests whose replies arrived.
    fn read(&mut self) -> Option<End> {
        loop {
            self.rbuf.reserve(READ_CHUNK);
            let room = self.rbuf.capacity() - self.rbuf.len();
            match try_read_drained(&self.stream, &mut self.rbuf) {
                Ok(0) => return Some(End::Remote),
                Ok(n) => {
                    self.task.cluster.stats.upstream_cx_rx_bytes_total.add(n as u64);
                    if let Some(end) = self.parse() {
                        return Some(end);
                    }
                    if n < room {
                        // Drained (readiness cleared): wait for the next `readable()`.
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) => return Some(End::Remote),
            }
        }
    }

    fn parse(&mut self) -> Option<End> {
        loop {
            match self.scanner.scan(&self.rbuf) {
                Ok(Some(n)) => {
                    let frame = self.rbuf.split_to(n).freeze();
                    // RESP3 push frames are not replies (Envoy drops them too).
                    if frame.first() == Some(&b'>') {
                        continue;
                    }
                    let Some(w) = self.pop_waiting() else {
                        // A reply nobody asked for: the stream is out of step.
                        self.task.cluster.stats.upstream_cx_protocol_error.inc();
                        return Some(End::Local);
                    };
                    let micros = w.sent.elapsed().as_micros() as u64;
                    self.task.settings.rq_time.record(micros);
                    let error = reply::kind(&frame) == reply::ReplyKind::Error;
                    if let Some(c) = &self.task.settings.commands {
                        // Envoy: a reply to a cancelled request, or an error reply, is a failure;
                        // a MOVED/ASK counts so before the redirected copy counts again.
                        let cancelled = w.reply.as_ref().is_some_and(|tx| tx.is_closed());
                        c.replied(w.cmd, !cancelled && !error, micros);
                    }
                    if w.request.is_some() && error {
                        self.redirect_or_reply(w, frame);
                    } else if let Some(tx) = w.reply {
                        let _ = tx.send(Ok(frame));
                    }
                    self.op_deadline = Instant::now() + self.task.settings.op_timeout;
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!(target: "upstream", "redis reply from {} cannot be framed: {e}", self.task.host.address);
                    self.task.cluster.stats.upstream_cx_protocol_error.inc();
                    self.task.host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
                    return Some(End::Local);
                }
            }
        }
    }

    /// Envoy's `ClientImpl::onRespValue` with `enable_redirection`, for an error reply.
    fn redirect_or_reply(&mut self, w: Waiting, frame: Bytes) {
        let stats = &self.task.cluster.stats;
        let reply = |w: Waiting, r: Reply| {
            if let Some(tx) = w.reply {
                let _ = tx.send(r);
            }
        };
        match classify_error(&frame) {
            ErrorReply::Other => reply(w, Ok(frame)),
            ErrorReply::ClusterDown => {
                self.task.note_failure();
                reply(w, Err(Failure::Upstream));
            }
            ErrorReply::BadRedirect => {
                stats.upstream_internal_redirect_failed_total.inc();
                reply(w, Ok(frame));
            }
            ErrorReply::Redirect(r) => {
                let pool = self.task.settings.redirect.as_ref().and_then(Weak::upgrade);
                let conns =
                    pool.as_ref().filter(|_| w.redirects < MAX_REDIRECTS).and_then(|p| p.conns_for_address(r.to));
                let (Some(pool), Some(conns), Some(request)) = (pool, conns, w.request.clone()) else {
                    stats.upstream_internal_redirect_failed_total.inc();
                    return reply(w, Ok(frame));
                };
                let bytes = if r.ask {
                    let mut b = BytesMut::with_capacity(ASKING.len() + request.len());
                    b.extend_from_slice(ASKING);
                    b.extend_from_slice(&request);
                    b.freeze()
                } else {
                    request
                };
                let req = UpstreamRequest {
                    bytes,
                    reply: w.reply,
                    cmd: w.cmd,
                    guard: w.guard,
                    redirects: w.redirects + 1,
                    asking: r.ask,
                };
                match conns.sender(u64::from(w.redirects)).send(req) {
                    Ok(()) => {
                        stats.upstream_internal_redirect_succeeded_total.inc();
                        if let Some(state) = &pool.cluster.redis {
                            state.on_redirection();
                        }
                    }
                    Err(e) => {
                        stats.upstream_internal_redirect_failed_total.inc();
                        fail(e.0);
                    }
                }
            }
        }
    }

    /// Fails what is outstanding and settles the connection's stats.
    fn close(mut self, end: &End) {
        let outstanding = self.waiting.len();
        while let Some(w) = self.pop_waiting() {
            if let Some(tx) = w.reply {
                self.task.note_failure();
                let _ = tx.send(Err(Failure::Upstream));
            }
        }
        if matches!(end, End::Drained(true)) {
            self.task.settings.cx_drained.inc();
        }
        self.task.destroyed(matches!(end, End::Remote), outstanding);
    }
}

/// Builds the commands sent first on every connection: `AUTH [user] password` when the
/// cluster's `RedisProtocolOptions` give credentials, `READONLY` for a read policy other than
/// MASTER (as Envoy's client does).
pub fn init_commands(username: &str, password: &str, readonly: bool) -> (Bytes, usize) {
    let mut out = BytesMut::new();
    let mut n = 0;
    if !username.is_empty() {
        legate_codecs::redis::request::encode_command(&mut out, &[b"AUTH", username.as_bytes(), password.as_bytes()]);
        n += 1;
    } else if !password.is_empty() {
        legate_codecs::redis::request::encode_command(&mut out, &[b"AUTH", password.as_bytes()]);
        n += 1;
    }
    if readonly {
        reply::array_header(&mut out, 1);
        reply::bulk(&mut out, b"READONLY");
        n += 1;
    }
    (out.freeze(), n)
}
