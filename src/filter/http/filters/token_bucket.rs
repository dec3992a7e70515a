//! A lock-free token bucket refilled lazily from a monotonic clock, as Envoy's
//! `AtomicTokenBucket` (Envoy ≥ 1.31 has no fill timer): tokens accrue continuously at
//! `tokens_per_fill / fill_interval` up to `max_tokens`, and the bucket starts full.
//!
//! The state is one atomic: the time (ns since the clock's origin, shifted by the time a full
//! bucket takes to fill so it is never negative) at which the bucket would have been empty.
//! Taking a token moves it forward by one token's worth of time, never past "now".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Monotonic time since some fixed origin.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The real clock (`Instant`).
#[derive(Debug)]
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    pub fn new() -> Self {
        MonotonicClock(Instant::now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

pub struct TokenBucket {
    max_tokens: u64,
    /// Nanoseconds per token (at least 1).
    per_token: u64,
    /// `max_tokens * per_token`: how long an empty bucket takes to fill.
    capacity: u64,
    /// "Empty at" time plus `capacity`, in ns.
    empty_at: AtomicU64,
    clock: Arc<dyn Clock>,
}

/// Keeps `now + capacity` far from overflow.
const MAX_CAPACITY_NS: u64 = 1 << 62;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl std::fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBucket").field("max_tokens", &self.max_tokens).field("per_token", &self.per_token).finish()
    }
}

impl TokenBucket {
    /// A full bucket. Zero `tokens_per_fill` is treated as 1 (the config decoder rejects it).
    pub fn new(max_tokens: u32, tokens_per_fill: u32, fill_interval: Duration, clock: Arc<dyn Clock>) -> Self {
        let max_tokens = u64::from(max_tokens);
        let per_token = (nanos(fill_interval) / u64::from(tokens_per_fill.max(1))).max(1);
        let capacity = max_tokens.saturating_mul(per_token).min(MAX_CAPACITY_NS);
        // Shifted by `capacity`, "empty at now - capacity" (full) is "now".
        let empty_at = AtomicU64::new(nanos(clock.now()));
        TokenBucket { max_tokens, per_token, capacity, empty_at, clock }
    }

    /// Takes one token if there is one.
    pub fn try_consume(&self) -> bool {
        let now = nanos(self.clock.now()).min(MAX_CAPACITY_NS);
        let mut cur = self.empty_at.load(Ordering::Relaxed);
        loop {
            // A bucket cannot hold more than `max_tokens`: the empty time is at least now - capacity.
            let next = cur.max(now) + self.per_token;
            if next > now + self.capacity {
                return false;
            }
            match self.empty_at.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Whole tokens available now.
    pub fn available(&self) -> u64 {
        let now = nanos(self.clock.now()).min(MAX_CAPACITY_NS);
        let empty_at = self.empty_at.load(Ordering::Relaxed).max(now);
        ((now + self.capacity - empty_at) / self.per_token).min(self.max_tokens)
    }
}
