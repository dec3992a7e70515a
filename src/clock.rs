//! The clock, read at most once per poll of a connection's task.
//!
//! Reading the monotonic clock costs 20 to 40 ns here, and one proxied HTTP request read it
//! about seven times (request start, upstream start, the timers, the pool's idle bookkeeping,
//! the end), a PostgreSQL transaction four times. nginx and haproxy read the time once per turn
//! of their event loop and use that reading for everything the turn does; Legate does the same
//! per poll of a connection's task: [`scoped`] wraps the task's future, the first [`now`] inside
//! a poll reads the clock, and later calls in the same poll get that reading. Outside such a
//! poll (other tasks, threads, tests) [`now`] is `Instant::now()`.
//!
//! A reading is never older than the start of the poll that uses it, and one poll does a
//! bounded amount of work (tokio's co-operative budget), so durations and deadlines are off by
//! at most that poll's own run time: microseconds.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

/// How long a per-thread wall-clock anchor is used before it is taken again, so that a step
/// of the system clock shows within this time.
const ANCHOR_TTL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Slot {
    /// Not inside a scoped poll: every `now()` reads the clock.
    Off,
    /// Inside a scoped poll that has not read the clock yet.
    Empty,
    Read(Instant),
}

thread_local! {
    static SLOT: Cell<Slot> = const { Cell::new(Slot::Off) };
    static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The wall-clock time of `at` (a monotonic reading, usually from [`now`]) for access logs'
/// start times: an anchor pair of readings, taken again after [`ANCHOR_TTL`], plus the
/// monotonic time since then, instead of a second clock read per request.
pub fn wall(at: Instant) -> SystemTime {
    ANCHOR.with(|a| {
        if let Some((i, w)) = a.get() {
            if let Some(d) = at.checked_duration_since(i).filter(|d| *d < ANCHOR_TTL) {
                return w + d;
            }
        }
        let (i, w) = (Instant::now(), SystemTime::now());
        a.set(Some((i, w)));
        match i.checked_duration_since(at) {
            Some(back) => w.checked_sub(back).unwrap_or(w),
            None => w + at.duration_since(i),
        }
    })
}

/// The current time: inside a scoped poll, the reading that poll took first.
#[inline]
pub fn now() -> Instant {
    SLOT.with(|s| match s.get() {
        Slot::Off => Instant::now(),
        Slot::Read(t) => t,
        Slot::Empty => {
            let t = Instant::now();
            s.set(Slot::Read(t));
            t
        }
    })
}

/// [`now`] as tokio's instant, for deadlines of tokio timers.
#[inline]
pub fn tokio_now() -> tokio::time::Instant {
    tokio::time::Instant::from_std(now())
}

/// The time since `earlier` (zero if `earlier` is later), measured with [`now`].
#[inline]
pub fn since(earlier: Instant) -> std::time::Duration {
    now().saturating_duration_since(earlier)
}

/// Wraps a task's future so that each of its polls reads the clock at most once.
pub fn scoped<F: Future>(fut: F) -> Scoped<F> {
    Scoped { fut }
}

pin_project_lite::pin_project! {
    /// See [`scoped`].
    pub struct Scoped<F> {
        #[pin]
        fut: F,
    }
}

/// hyper's executor for the tasks it spawns (HTTP/2 streams and connections): tokio's, with
/// each task [`scoped`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ScopedExecutor;

impl<F> hyper::rt::Executor<F> for ScopedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(scoped(fut));
    }
}

/// Restores the slot as it was before the poll, also when the poll panics (tokio catches a
/// task's panic and goes on with other tasks on this thread).
struct Restore(Slot);

impl Drop for Restore {
    fn drop(&mut self) {
        SLOT.with(|s| s.set(self.0));
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _restore = Restore(SLOT.with(|s| s.replace(Slot::Empty)));
        self.project().fut.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spin(d: Duration) {
        let t = Instant::now();
        while t.elapsed() < d {}
    }

    #[test]
    fn one_reading_per_poll_and_fresh_readings_outside() {
        let a = now();
        spin(Duration::from_micros(50));
        assert!(now() > a, "outside a scoped poll every call reads the clock");

        let mut polls = Vec::new();
        let mut fut = std::pin::pin!(scoped(std::future::poll_fn(|cx| {
            let first = now();
            spin(Duration::from_micros(50));
            assert_eq!(now(), first, "one reading per poll");
            polls.push(first);
            if polls.len() < 2 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        spin(Duration::from_micros(50));
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert!(polls[1] > polls[0], "each poll takes its own reading");
        let after = now();
        spin(Duration::from_micros(50));
        assert!(now() > after, "the scope ends with the poll");
    }

    #[test]
    fn wall_clock_times_follow_the_monotonic_readings() {
        let t0 = Instant::now();
        let w0 = wall(t0);
        let sys = SystemTime::now();
        let off = |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_else(|e| e.duration());
        assert!(off(w0, sys) < Duration::from_millis(50));
        let later = t0 + Duration::from_millis(300);
        assert_eq!(wall(later).duration_since(w0).unwrap(), Duration::from_millis(300));
        // Past the anchor's lifetime: a fresh anchor, still consistent.
        let much_later = t0 + Duration::from_secs(5);
        assert!(off(wall(much_later), w0 + Duration::from_secs(5)) < Duration::from_millis(50));
        assert!(off(wall(t0), w0) < Duration::from_millis(50));
    }

    #[test]
    fn a_panicking_poll_leaves_no_stale_reading_behind() {
        let r = std::panic::catch_unwind(|| {
            let mut fut = std::pin::pin!(scoped(std::future::poll_fn(|_| -> Poll<()> {
                let _ = now();
                panic!("task panics");
            })));
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let _ = fut.as_mut().poll(&mut cx);
        });
        assert!(r.is_err());
        let a = now();
        spin(Duration::from_micros(50));
        assert!(now() > a);
    }
}
