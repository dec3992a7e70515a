//! The byte pump of a proxied TCP connection: both directions, half-close, the idle timer and
//! the maximum-duration timer, as one hand-written future.
//!
//! Why by hand: an `async` version (two pump futures, a `select!`, two timer futures) weighed
//! about 2 KiB per connection, which is most of what an idle proxied connection costs. This
//! struct is a few hundred bytes, and it holds no buffer while idle: reads land in a per-thread
//! scratch buffer and are written straight to the other socket; only a remainder the peer
//! cannot take yet is copied into a buffer owned by the connection (and that direction stops
//! reading until it drains, which bounds it by the read size, at most
//! `per_connection_buffer_limit_bytes`).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::filter::{FilterAction, Observer};
use crate::stats::{Counter, Gauge};

/// Largest single read; also the most a direction buffers while its peer is slow.
pub const SCRATCH_SIZE: usize = 64 * 1024;

/// Reads handled in one poll before yielding to other tasks.
const READS_PER_POLL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH_SIZE]);
}

/// Why the pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// Both directions saw EOF and everything was written.
    Done,
    /// Reading from the downstream or writing to the upstream failed (or an observer closed).
    DownstreamError,
    /// Reading from the upstream or writing to the downstream failed.
    UpstreamError,
    IdleTimeout,
    MaxDuration,
    /// An observer answered locally and closed the connection (`FilterAction::ReplyAndClose`).
    FilterClosed,
}

/// The counters one direction moves.
pub struct HalfStats<'a> {
    /// Bytes read from this direction's source.
    pub rx: &'a Counter,
    /// Bytes written to this direction's destination.
    pub tx: &'a Counter,
    /// Bytes read but not yet written.
    pub buffered: &'a Gauge,
}

struct Half<'a> {
    stats: HalfStats<'a>,
    pending: Option<Bytes>,
    eof: bool,
    /// The source ended; pass the FIN on once `pending` (an observer's last words) is written.
    eof_after_pending: bool,
    /// An observer's local answer to the downstream, before closing.
    reply: Option<&'static [u8]>,
    total: u64,
}

/// Per-connection limits of the pump.
#[derive(Debug, Clone, Copy)]
pub struct PumpLimits {
    /// Largest single read (`per_connection_buffer_limit_bytes`, at most `SCRATCH_SIZE`).
    pub read_limit: usize,
    pub idle_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
}

/// The pump future. Poll it to completion; then read the byte totals.
pub struct Pump<'a> {
    down: &'a TcpStream,
    up: &'a TcpStream,
    d2u: Half<'a>,
    u2d: Half<'a>,
    observers: &'a mut [Box<dyn Observer>],
    limit: usize,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    max_duration: Option<Pin<Box<Sleep>>>,
    last_activity: Instant,
    /// A local reply being written to the downstream (and how much of it is written).
    closing: Option<(&'static [u8], usize)>,
}

impl<'a> Pump<'a> {
    /// `d2u` counts downstream→upstream bytes, `u2d` the other way. `limit` caps one read.
    pub fn new(
        (down, up): (&'a TcpStream, &'a TcpStream),
        d2u: HalfStats<'a>,
        u2d: HalfStats<'a>,
        observers: &'a mut [Box<dyn Observer>],
        limits: PumpLimits,
    ) -> Pump<'a> {
        let half = |stats| Half { stats, pending: None, eof: false, eof_after_pending: false, reply: None, total: 0 };
        Pump {
            down,
            up,
            d2u: half(d2u),
            u2d: half(u2d),
            observers,
            limit: limits.read_limit.clamp(1, SCRATCH_SIZE),
            idle: limits.idle_timeout.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            max_duration: limits.max_duration.map(|d| Box::pin(tokio::time::sleep(d))),
            last_activity: Instant::now(),
            closing: None,
        }
    }

    /// Bytes read from the downstream.
    pub fn downstream_rx(&self) -> u64 {
        self.d2u.total
    }

    /// Bytes read from the upstream.
    pub fn upstream_rx(&self) -> u64 {
        self.u2d.total
    }

    /// Whether the upstream ended its side (EOF seen), which Envoy counts as a remote close.
    pub fn upstream_ended(&self) -> bool {
        self.u2d.eof
    }
}

impl Pump<'_> {
    /// Writes what the downstream is already owed, then the local reply, then closes the
    /// downstream's write side.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(p) = &mut self.u2d.pending {
            ready!(self.down.poll_write_ready(cx))?;
            match self.down.try_write(p) {
                Ok(n) => {
                    p.advance(n);
                    self.u2d.stats.tx.add(n as u64);
                    self.u2d.stats.buffered.sub(n as u64);
                    if p.is_empty() {
                        self.u2d.pending = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        while let Some((r, off)) = &mut self.closing {
            if *off == r.len() {
                let _ = socket2::SockRef::from(self.down).shutdown(Shutdown::Write);
                return Poll::Ready(Ok(()));
            }
            ready!(self.down.poll_write_ready(cx))?;
            match self.down.try_write(&r[*off..]) {
                Ok(n) => {
                    *off += n;
                    self.u2d.stats.tx.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

enum Read {
    Eof,
    WouldBlock,
    /// An observer answers locally and closes.
    Reply(&'static [u8]),
    /// Bytes read; how many were written at once; what is left to write.
    Data(usize, usize, Option<Bytes>),
}

impl Half<'_> {
    /// Drives one direction as far as it can go without blocking. `Ready(Ok)` once it is done
    /// (EOF passed on and nothing pending); `Pending` otherwise. `active` is set when bytes moved.
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        (src, dst): (&TcpStream, &TcpStream),
        observers: &mut [Box<dyn Observer>],
        (from_downstream, limit): (bool, usize),
        active: &mut bool,
    ) -> Poll<io::Result<()>> {
        let mut reads = 0;
        loop {
            if let Some(p) = &mut self.pending {
                ready!(dst.poll_write_ready(cx))?;
                match dst.try_write(p) {
                    Ok(n) => {
                        p.advance(n);
                        self.stats.tx.add(n as u64);
                        self.stats.buffered.sub(n as u64);
                        *active = true;
                        if p.is_empty() {
                            self.pending = None;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            if self.eof_after_pending {
                let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
                self.eof_after_pending = false;
                self.eof = true;
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            if reads == READS_PER_POLL {
                // Let other connections run; come back at once.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(src.poll_read_ready(cx))?;
            reads += 1;
            match read_and_forward(src, dst, observers, from_downstream, limit)? {
                Read::WouldBlock => {}
                Read::Reply(r) => {
                    self.reply = Some(r);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "closed by a network filter",
                    )));
                }
                Read::Eof if !from_downstream => {
                    // The upstream ended: observers may have last words for the downstream.
                    let last = observers.iter_mut().find_map(|o| o.on_upstream_eof());
                    if let Some(r) = last {
                        self.stats.buffered.add(r.len() as u64);
                        self.pending = Some(Bytes::from_static(r));
                    }
                    self.eof_after_pending = true;
                }
                Read::Eof => {
                    for o in observers.iter_mut() {
                        o.on_downstream_eof();
                    }
                    // Half-close: pass the FIN on and keep the other direction running.
                    let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
                    self.eof = true;
                    return Poll::Ready(Ok(()));
                }
                Read::Data(n, written, rest) => {
                    *active = true;
                    self.total += n as u64;
                    self.stats.rx.add(n as u64);
                    self.stats.tx.add(written as u64);
                    if let Some(rest) = rest {
                        self.stats.buffered.add(rest.len() as u64);
                        self.pending = Some(rest);
                    }
                }
            }
        }
    }
}

/// One read. A short read means the socket's receive queue was empty after it, so the read
/// readiness is cleared right away (through `try_io`, which ignores the clear when an event
/// arrived meanwhile; tokio never clears the read-closed state, so a FIN queued behind the data
/// is still seen). This saves the extra `recv` that would only return EAGAIN, one system call of
/// three per request/response exchange.
fn read_drained(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = None;
    let r = src.try_io(tokio::io::Interest::READABLE, || {
        let n = io::Read::read(&mut &*socket2::SockRef::from(src), buf)?;
        if n > 0 && n < buf.len() {
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match short {
        Some(n) => Ok(n),
        None => r,
    }
}

/// One read into the per-thread scratch buffer, shown to the observers, written on at once.
fn read_and_forward(
    src: &TcpStream,
    dst: &TcpStream,
    observers: &mut [Box<dyn Observer>],
    from_downstream: bool,
    limit: usize,
) -> io::Result<Read> {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let buf = &mut s[..limit];
        let n = match read_drained(src, buf) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::WouldBlock),
            Err(e) => return Err(e),
        };
        let data = &buf[..n];
        for o in observers.iter_mut() {
            let act = if from_downstream { o.on_downstream_data(data) } else { o.on_upstream_data(data) };
            match act {
                FilterAction::Continue => {}
                FilterAction::Close => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by a network filter"));
                }
                FilterAction::ReplyAndClose(r) => return Ok(Read::Reply(r)),
            }
        }
        let mut off = 0;
        while off < n {
            match dst.try_write(&data[off..]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let rest = (off < n).then(|| Bytes::copy_from_slice(&data[off..]));
        Ok(Read::Data(n, off, rest))
    })
}

impl Future for Pump<'_> {
    type Output = PumpEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PumpEnd> {
        let this = self.get_mut();
        let mut active = false;
        let (down, up, limit) = (this.down, this.up, this.limit);
        if this.closing.is_none() {
            let a = this.d2u.poll_move(cx, (down, up), this.observers, (true, limit), &mut active);
            if let Poll::Ready(Err(_)) = a {
                match this.d2u.reply.take() {
                    Some(r) => this.closing = Some((r, 0)),
                    None => return Poll::Ready(PumpEnd::DownstreamError),
                }
            }
            if this.closing.is_none() {
                let b = this.u2d.poll_move(cx, (up, down), this.observers, (false, limit), &mut active);
                if let Poll::Ready(Err(_)) = b {
                    match this.u2d.reply.take() {
                        Some(r) => this.closing = Some((r, 0)),
                        None => return Poll::Ready(PumpEnd::UpstreamError),
                    }
                }
                if a.is_ready() && b.is_ready() && this.closing.is_none() {
                    return Poll::Ready(PumpEnd::Done);
                }
            }
        }
        if this.closing.is_some() {
            match this.poll_reply(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(PumpEnd::FilterClosed),
                Poll::Ready(Err(_)) => return Poll::Ready(PumpEnd::DownstreamError),
                Poll::Pending => {}
            }
        }
        if let Some(max) = &mut this.max_duration {
            if max.as_mut().poll(cx).is_ready() {
                return Poll::Ready(PumpEnd::MaxDuration);
            }
        }
        if active {
            this.last_activity = Instant::now();
        }
        if let Some((timeout, sleep)) = &mut this.idle {
            // The timer is moved forward lazily: only when it fires do we look at whether
            // there was activity since it was set.
            while sleep.as_mut().poll(cx).is_ready() {
                let deadline = this.last_activity + *timeout;
                if Instant::now() >= deadline {
                    return Poll::Ready(PumpEnd::IdleTimeout);
                }
                sleep.as_mut().reset(deadline.into());
            }
        }
        Poll::Pending
    }
}
