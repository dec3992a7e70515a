//! Counter, gauge and text-readout handles. Counters and gauges are an `Arc` around an
//! `AtomicU64` plus a "used" flag (Envoy's `usedonly` filter), so every update is a lock-free
//! atomic operation with no allocation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
struct Cell {
    value: AtomicU64,
    used: AtomicBool,
}

impl Cell {
    #[inline]
    fn mark_used(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

/// A monotonically increasing count (reset only by `/reset_counters`).
#[derive(Clone, Default)]
pub struct Counter(Arc<Cell>);

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter::default()
    }

    /// A counter not registered in any store (for tests and defaults).
    pub fn detached() -> Counter {
        Counter::new()
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        self.0.mark_used();
    }

    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }

    /// True once the counter has been written (a reset does not clear it, as in Envoy).
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }

    /// True when both handles refer to the same counter.
    pub fn same_as(&self, other: &Counter) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn reset(&self) {
        self.0.value.store(0, Ordering::Relaxed);
    }
}

/// A value that goes up and down. Like Envoy's gauges, arithmetic wraps on underflow.
#[derive(Clone, Default)]
pub struct Gauge(Arc<Cell>);

impl Gauge {
    pub(crate) fn new() -> Gauge {
        Gauge::default()
    }

    /// A gauge not registered in any store (for tests and defaults).
    pub fn detached() -> Gauge {
        Gauge::new()
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.value.store(v, Ordering::Relaxed);
        self.0.mark_used();
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn dec(&self) {
        self.sub(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        self.0.mark_used();
    }

    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.value.fetch_sub(n, Ordering::Relaxed);
        self.0.mark_used();
    }

    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }

    /// True once the gauge has been written.
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }

    /// True when both handles refer to the same gauge.
    pub fn same_as(&self, other: &Gauge) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Default)]
struct TextCell {
    value: Mutex<String>,
    used: AtomicBool,
}

/// A string-valued stat (rare, not on hot paths: `set` takes a short lock and copies).
#[derive(Clone, Default)]
pub struct TextReadout(Arc<TextCell>);

impl TextReadout {
    pub(crate) fn new() -> TextReadout {
        TextReadout::default()
    }

    /// A text readout not registered in any store.
    pub fn detached() -> TextReadout {
        TextReadout::new()
    }

    pub fn set(&self, s: &str) {
        let mut value = self.0.value.lock().unwrap_or_else(PoisonError::into_inner);
        value.clear();
        value.push_str(s);
        self.0.used.store(true, Ordering::Relaxed);
    }

    pub fn value(&self) -> String {
        self.0.value.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// True once the readout has been set.
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counter({})", self.value())
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gauge({})", self.value())
    }
}

impl std::fmt::Debug for TextReadout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextReadout({:?})", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_basics() {
        let c = Counter::detached();
        assert!(!c.used());
        c.inc();
        c.add(4);
        assert_eq!(c.value(), 5);
        assert!(c.used());
        c.reset();
        assert_eq!(c.value(), 0);
        assert!(c.used(), "reset keeps the used flag");
        let c2 = c.clone();
        c2.inc();
        assert_eq!(c.value(), 1);
    }

    #[test]
    fn gauge_basics() {
        let g = Gauge::detached();
        assert!(!g.used());
        g.set(10);
        g.inc();
        g.dec();
        g.dec();
        g.add(5);
        g.sub(3);
        assert_eq!(g.value(), 11);
        assert!(g.used());
        let g2 = Gauge::detached();
        g2.set(0);
        assert!(g2.used(), "setting zero still marks the gauge used");
    }

    #[test]
    fn text_readout_basics() {
        let t = TextReadout::detached();
        assert_eq!(t.value(), "");
        assert!(!t.used());
        t.set("v1.2");
        assert_eq!(t.value(), "v1.2");
        assert!(t.used());
    }
}
