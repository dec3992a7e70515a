//! The byte pump of a proxied TCP connection: both directions, half-close, the idle timer and
//! the maximum-duration timer, as one hand-written future.
//!
//! Why by hand: an `async` version (two pump futures, a `select!`, two timer futures) weighed
//! about 2 KiB per connection, which is most of what an idle proxied connection costs. This
//! struct is a few hundred bytes, and it holds no buffer while idle: reads land in a per-thread
//! scratch buffer and are written straight to the other socket; only a remainder the peer
//! cannot take yet is copied into a buffer owned by the connection. While that buffer is below
//! `per_connection_buffer_limit_bytes` the direction keeps reading into it (as Envoy does up to
//! its high watermark), so a slow moment of the peer does not stall the sender; at the limit it
//! stops reading until the buffer drains. The buffer is freed as soon as it is empty.
//!
//! Reads go through tokio's `poll_read`, which treats a short read as "drained" (no extra empty
//! `recv` per batch), and a batch keeps reading while reads fill the buffer, so bulk transfers
//! make few, large sends: on loopback most of a proxy's CPU is the kernel's per-send work.
//!
//! An observer may ask for the downstream bytes it just saw to be held back for a while
//! (`FilterAction::Delay`, fault injection): they go to the pending buffer unwritten, and the
//! direction behaves as if its destination were blocked (reading on up to the buffer limit)
//! until the delay's timer fires.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::filter::{CloseOrigin, FilterAction, Observer};
use crate::stats::{Counter, Gauge};

/// Most bytes read in one batch before they are written on (the per-connection buffer limit
/// caps it further; 1 MiB is also Envoy's default limit). One buffer per worker thread, not per
/// connection. Measured on 2 cores with iperf3 through tcp_proxy: 1 MiB moved 1.3× the bytes
/// per CPU-second of 256 KiB, because what a read finds queued goes on in one send, and each
/// send wakes the receiving process once (the wake-up is most of a loopback send's cost).
pub const SCRATCH_SIZE: usize = 1024 * 1024;

/// Batches handled in one poll before yielding to other tasks.
const BATCHES_PER_POLL: usize = 16;

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

/// Per-connection limits of the pump.
#[derive(Debug, Clone, Copy)]
pub struct PumpLimits {
    /// `per_connection_buffer_limit_bytes`: the most one direction holds unwritten.
    pub buffer_limit: usize,
    pub idle_timeout: Option<Duration>,
    pub max_duration: Option<Duration>,
}

/// One direction: where it reads, where it writes, and what it still owes the destination.
struct Half<'a, R, W> {
    src: R,
    dst: W,
    stats: HalfStats<'a>,
    pending: Option<BytesMut>,
    /// The source reached EOF.
    read_eof: bool,
    /// Everything was written and the FIN passed on (or the connection is closing anyway).
    done: bool,
    total: u64,
    from_downstream: bool,
    /// An observer's local answer to the downstream, before closing.
    reply: Option<&'static [u8]>,
    /// Nothing is written before this fires (an observer's `FilterAction::Delay`).
    delay: Option<Pin<Box<Sleep>>>,
    /// Why the direction failed, when it did: a write to the destination (else a read from
    /// the source, or an observer closing).
    write_failed: bool,
    /// An observer asked to close (or answered locally).
    filter_closed: bool,
    /// An observer asked to close once what it saw is written (`FilterAction::FlushAndClose`).
    close_after: bool,
}

/// The pump future. Poll it to completion; then read the byte totals. Each side is any
/// stream's read and write halves: plain TCP (`TcpStream::split`, no locking), or TLS after
/// termination or origination (`tokio::io::split`). Each combination is its own
/// monomorphisation, so the plain path pays nothing for TLS.
pub struct Pump<'a, DR, DW, UR, UW> {
    d2u: Half<'a, DR, UW>,
    u2d: Half<'a, UR, DW>,
    observers: &'a mut [Box<dyn Observer>],
    /// Most bytes one direction buffers.
    limit: usize,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    max_duration: Option<Pin<Box<Sleep>>>,
    last_activity: Instant,
    /// The task's waker the timers were last polled with (see `poll_timers`).
    timer_waker: Option<std::task::Waker>,
    /// A local reply being written to the downstream (and how much of it is written).
    closing: Option<(&'static [u8], usize)>,
    /// Which direction finished last when both did (`true`: downstream→upstream).
    d2u_done_last: bool,
}

impl<'a, R, W> Half<'a, R, W> {
    fn new(src: R, dst: W, stats: HalfStats<'a>, from_downstream: bool) -> Self {
        Half {
            src,
            dst,
            stats,
            pending: None,
            read_eof: false,
            done: false,
            total: 0,
            from_downstream,
            reply: None,
            delay: None,
            write_failed: false,
            filter_closed: false,
            close_after: false,
        }
    }
}

impl<'a, DR, DW, UR, UW> Pump<'a, DR, DW, UR, UW>
where
    DR: AsyncRead + Unpin,
    DW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    /// `d2u` counts downstream→upstream bytes, `u2d` the other way.
    pub fn new(
        (down_r, down_w): (DR, DW),
        (up_r, up_w): (UR, UW),
        d2u: HalfStats<'a>,
        u2d: HalfStats<'a>,
        observers: &'a mut [Box<dyn Observer>],
        limits: PumpLimits,
    ) -> Self {
        Pump {
            d2u: Half::new(down_r, up_w, d2u, true),
            u2d: Half::new(up_r, down_w, u2d, false),
            observers,
            limit: limits.buffer_limit.max(1),
            idle: limits.idle_timeout.map(|d| (d, Box::pin(tokio::time::sleep(d)))),
            max_duration: limits.max_duration.map(|d| Box::pin(tokio::time::sleep(d))),
            last_activity: crate::clock::now(),
            timer_waker: None,
            closing: None,
            d2u_done_last: false,
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
        self.u2d.read_eof
    }

    /// Who closed the downstream connection, given how the pump ended, as Envoy tells its
    /// network filters (`RemoteClose` / `LocalClose`). Envoy closes a half-closed connection
    /// on whichever half-close completes it: the downstream's FIN arriving last is a remote
    /// close, our FIN to it going out last a local one. A failed read from the downstream or
    /// write to it is the peer's doing; an upstream failure, a timer or a filter is ours.
    pub fn close_origin(&self, end: PumpEnd) -> CloseOrigin {
        let remote = match end {
            PumpEnd::Done => self.d2u_done_last,
            PumpEnd::DownstreamError => !self.d2u.write_failed && !self.d2u.filter_closed,
            PumpEnd::UpstreamError => self.u2d.write_failed && !self.u2d.filter_closed,
            PumpEnd::IdleTimeout | PumpEnd::MaxDuration | PumpEnd::FilterClosed => false,
        };
        if remote {
            CloseOrigin::Remote
        } else {
            CloseOrigin::Local
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Half<'_, R, W> {
    /// Drives one direction as far as it can go without blocking. `Ready(Ok)` once it is done;
    /// `Pending` otherwise. `active` is set when bytes moved. `other_done` says the opposite
    /// direction has finished: then our EOF ends the connection and needs no `shutdown` call.
    fn poll_move(
        &mut self,
        cx: &mut Context<'_>,
        observers: &mut [Box<dyn Observer>],
        (limit, other_done): (usize, bool),
        active: &mut bool,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        for _ in 0..BATCHES_PER_POLL {
            if self.close_after {
                // The pump closes the connection now (it flushes what is owed first).
                return Poll::Pending;
            }
            let mut write_blocked = false;
            if let Some(d) = &mut self.delay {
                if d.as_mut().poll(cx).is_ready() {
                    self.delay = None;
                } else {
                    // Held back: nothing is written, reading goes on into the buffer.
                    write_blocked = true;
                }
            }
            if let (Some(p), false) = (&mut self.pending, write_blocked) {
                match Pin::new(&mut self.dst).poll_write(cx, p) {
                    Poll::Ready(Err(e)) => {
                        self.write_failed = true;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Ok(0)) => {
                        self.write_failed = true;
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)));
                    }
                    Poll::Ready(Ok(n)) => {
                        p.advance(n);
                        self.stats.tx.add(n as u64);
                        self.stats.buffered.sub(n as u64);
                        *active = true;
                        if p.is_empty() {
                            self.pending = None;
                        }
                        continue;
                    }
                    Poll::Pending => write_blocked = true,
                }
            }
            if self.read_eof {
                if self.pending.is_some() {
                    return Poll::Pending;
                }
                // Half-close: pass the FIN (and, over TLS, close_notify) on and keep the other
                // direction running. When the other direction is done the sockets close anyway.
                if self.pending.is_none() && self.delay.is_some() {
                    // Delayed with nothing left to hold (cannot happen: a delay always holds
                    // the bytes that asked for it); never wait on a timer for nothing.
                    self.delay = None;
                }
                if !other_done && Pin::new(&mut self.dst).poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let moved = if write_blocked {
                self.read_into_pending(cx, observers, limit)?
            } else {
                self.read_batch(cx, observers, limit.min(SCRATCH_SIZE))?
            };
            if self.read_eof {
                show_eof(self, observers);
            }
            match moved {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(m) => *active |= m,
            }
        }
        // Let other connections run; come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// While the destination is blocked, keeps reading straight into the pending buffer up to
    /// the buffer limit. `Pending` when there is nothing to read or no room.
    fn read_into_pending(
        &mut self,
        cx: &mut Context<'_>,
        observers: &mut [Box<dyn Observer>],
        limit: usize,
    ) -> io::Result<Poll<bool>> {
        let Some(p) = &mut self.pending else { return Ok(Poll::Pending) };
        let room = limit.saturating_sub(p.len());
        if room == 0 {
            return Ok(Poll::Pending);
        }
        let before = p.len();
        p.reserve(room.min(SCRATCH_SIZE));
        let n = match tokio_util::io::poll_read_buf(Pin::new(&mut self.src), cx, &mut p.limit(room)) {
            Poll::Pending => return Ok(Poll::Pending),
            Poll::Ready(r) => r?,
        };
        if n == 0 {
            self.read_eof = true;
            return Ok(Poll::Ready(false));
        }
        let data = &p[before..];
        // Already held back: a further delay does not extend this one.
        let v = Verdict {
            from_downstream: self.from_downstream,
            reply: &mut self.reply,
            filter_closed: &mut self.filter_closed,
            close_after: &mut self.close_after,
        };
        let _ = show_observers(observers, data, v)?;
        self.total += n as u64;
        self.stats.rx.add(n as u64);
        self.stats.buffered.add(n as u64);
        Ok(Poll::Ready(true))
    }

    /// Reads one batch into the per-thread scratch buffer (more reads while they fill it),
    /// shows it to the observers and writes it on; keeps what the destination cannot take yet.
    /// `Ready(true)` when bytes moved, `Ready(false)` on EOF with nothing read.
    fn read_batch(
        &mut self,
        cx: &mut Context<'_>,
        observers: &mut [Box<dyn Observer>],
        limit: usize,
    ) -> io::Result<Poll<bool>> {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let mut rb = ReadBuf::new(&mut s[..limit]);
            loop {
                let before = rb.filled().len();
                let want = rb.remaining();
                match Pin::new(&mut self.src).poll_read(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) if before == 0 => return Err(e),
                    // Forward what was read; the error shows again on the next read.
                    Poll::Ready(Err(_)) => break,
                    Poll::Ready(Ok(())) => {
                        let got = rb.filled().len() - before;
                        if got == 0 {
                            self.read_eof = true;
                            break;
                        }
                        // A short read means the socket is drained (tokio clears readiness).
                        if got < want || rb.remaining() == 0 {
                            break;
                        }
                    }
                }
            }
            let n = rb.filled().len();
            if n == 0 {
                return Ok(if self.read_eof { Poll::Ready(false) } else { Poll::Pending });
            }
            let data = &rb.filled()[..n];
            let v = Verdict {
                from_downstream: self.from_downstream,
                reply: &mut self.reply,
                filter_closed: &mut self.filter_closed,
                close_after: &mut self.close_after,
            };
            let delay = show_observers(observers, data, v)?;
            self.total += n as u64;
            self.stats.rx.add(n as u64);
            let mut off = 0;
            if let Some(d) = delay {
                // Held back whole; `poll_move` polls the timer next, which registers the wakeup.
                self.delay = Some(Box::pin(tokio::time::sleep(d)));
            } else {
                while off < n {
                    match Pin::new(&mut self.dst).poll_write(cx, &data[off..]) {
                        Poll::Ready(Ok(w)) if w > 0 => off += w,
                        Poll::Ready(Ok(_)) => {
                            self.write_failed = true;
                            return Err(io::Error::from(io::ErrorKind::WriteZero));
                        }
                        Poll::Ready(Err(e)) => {
                            self.write_failed = true;
                            return Err(e);
                        }
                        Poll::Pending => break,
                    }
                }
            }
            self.stats.tx.add(off as u64);
            if off < n {
                let rest = BytesMut::from(&data[off..]);
                self.stats.buffered.add(rest.len() as u64);
                self.pending = Some(rest);
            }
            Ok(Poll::Ready(true))
        })
    }
}

impl<DR, DW, UR, UW> Pump<'_, DR, DW, UR, UW>
where
    DR: AsyncRead + Unpin,
    DW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    fn start_reply(&mut self, reply: &'static [u8], cx: &mut Context<'_>) -> Poll<PumpEnd> {
        self.closing = Some((reply, 0));
        self.poll_reply(cx).map(|_| PumpEnd::FilterClosed)
    }

    /// Writes what the downstream is already owed, then the local reply, then ends the
    /// downstream's write side. Errors end it early (the connection closes either way).
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let down = &mut self.u2d;
        while let Some(p) = &mut down.pending {
            match Pin::new(&mut down.dst).poll_write(cx, p) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => {
                    p.advance(n);
                    down.stats.tx.add(n as u64);
                    down.stats.buffered.sub(n as u64);
                    if p.is_empty() {
                        down.pending = None;
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
            }
        }
        while let Some((r, off)) = &mut self.closing {
            if *off == r.len() {
                return Pin::new(&mut down.dst).poll_shutdown(cx).map(|_| ());
            }
            match Pin::new(&mut down.dst).poll_write(cx, &r[*off..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) if n > 0 => {
                    *off += n;
                    down.stats.tx.add(n as u64);
                }
                Poll::Ready(_) => return Poll::Ready(()),
            }
        }
        Poll::Ready(())
    }
}

/// What the observers asked of one direction.
struct Verdict<'h> {
    from_downstream: bool,
    reply: &'h mut Option<&'static [u8]>,
    filter_closed: &'h mut bool,
    close_after: &'h mut bool,
}

/// Shows bytes to every observer. An observer asking to close ends the connection; one that
/// answers locally leaves its reply in `reply` (the bytes are not forwarded). Returns the
/// longest delay asked for downstream bytes (upstream bytes are never delayed).
fn show_observers(observers: &mut [Box<dyn Observer>], data: &[u8], v: Verdict<'_>) -> io::Result<Option<Duration>> {
    let mut delay: Option<Duration> = None;
    for o in observers.iter_mut() {
        let act = if v.from_downstream { o.on_downstream_data(data) } else { o.on_upstream_data(data) };
        match act {
            FilterAction::Continue => {}
            FilterAction::Delay(d) if v.from_downstream => delay = Some(delay.map_or(d, |x| x.max(d))),
            FilterAction::Delay(_) => {}
            FilterAction::FlushAndClose if !v.from_downstream => *v.close_after = true,
            FilterAction::Close | FilterAction::FlushAndClose => {
                *v.filter_closed = true;
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by a network filter"));
            }
            FilterAction::ReplyAndClose(r) => {
                *v.reply = Some(r);
                *v.filter_closed = true;
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "answered locally by a network filter"));
            }
        }
    }
    Ok(delay)
}

/// Tells the observers that this direction's source ended; the upstream's end may leave last
/// words for the downstream, queued before the FIN.
fn show_eof<W>(half: &mut Half<'_, impl AsyncRead, W>, observers: &mut [Box<dyn Observer>]) {
    if half.from_downstream {
        for o in observers.iter_mut() {
            o.on_downstream_eof();
        }
    } else if let Some(r) = observers.iter_mut().find_map(|o| o.on_upstream_eof()) {
        half.stats.buffered.add(r.len() as u64);
        match &mut half.pending {
            Some(p) => p.extend_from_slice(r),
            None => half.pending = Some(BytesMut::from(r)),
        }
    }
}

impl<DR, DW, UR, UW> Future for Pump<'_, DR, DW, UR, UW>
where
    DR: AsyncRead + Unpin,
    DW: AsyncWrite + Unpin,
    UR: AsyncRead + Unpin,
    UW: AsyncWrite + Unpin,
{
    type Output = PumpEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PumpEnd> {
        let this = self.get_mut();
        if this.closing.is_some() {
            return this.poll_reply(cx).map(|_| PumpEnd::FilterClosed);
        }
        let mut active = false;
        let limit = this.limit;
        let u2d_was_done = this.u2d.done;
        let a = this.d2u.poll_move(cx, this.observers, (limit, this.u2d.done), &mut active);
        if let Poll::Ready(Err(_)) = a {
            return match this.d2u.reply.take() {
                Some(r) => this.start_reply(r, cx),
                None => Poll::Ready(PumpEnd::DownstreamError),
            };
        }
        let b = this.u2d.poll_move(cx, this.observers, (limit, this.d2u.done), &mut active);
        if this.u2d.close_after {
            // Flush what the downstream is owed (the bytes that asked for this included),
            // then end it: a local close.
            return this.start_reply(b"", cx);
        }
        if let Poll::Ready(Err(_)) = b {
            return match this.u2d.reply.take() {
                Some(r) => this.start_reply(r, cx),
                None => Poll::Ready(PumpEnd::UpstreamError),
            };
        }
        if a.is_ready() && b.is_ready() {
            // The upstream direction was finished before this poll, so ours closed it.
            this.d2u_done_last = u2d_was_done;
            return Poll::Ready(PumpEnd::Done);
        }
        if active && this.idle.is_some() {
            this.last_activity = crate::clock::now();
        }
        match this.poll_timers(cx) {
            Some(end) => Poll::Ready(end),
            None => Poll::Pending,
        }
    }
}

impl<DR, DW, UR, UW> Pump<'_, DR, DW, UR, UW> {
    /// The idle and maximum-duration timers. Polling a tokio timer re-registers the task's
    /// waker with it, which costs more than the rest of a small exchange's bookkeeping; so
    /// they are polled only when one of them may have fired (its deadline has passed) or the
    /// task's waker is not the one they hold.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Option<PumpEnd> {
        let earliest =
            [self.idle.as_ref().map(|(_, s)| s.deadline()), self.max_duration.as_ref().map(|s| s.deadline())]
                .into_iter()
                .flatten()
                .min()?;
        let registered = self.timer_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if registered && crate::clock::now() < earliest.into_std() {
            return None;
        }
        if !registered {
            self.timer_waker = Some(cx.waker().clone());
        }
        if let Some(max) = &mut self.max_duration {
            if max.as_mut().poll(cx).is_ready() {
                return Some(PumpEnd::MaxDuration);
            }
        }
        if let Some((timeout, sleep)) = &mut self.idle {
            // The timer is moved forward lazily: only when it fires do we look at whether
            // there was activity since it was set.
            while sleep.as_mut().poll(cx).is_ready() {
                let deadline = self.last_activity + *timeout;
                if crate::clock::now() >= deadline {
                    return Some(PumpEnd::IdleTimeout);
                }
                sleep.as_mut().reset(deadline.into());
            }
        }
        None
    }
}
