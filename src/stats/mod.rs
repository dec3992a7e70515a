//! TEMPORARY stand-in for the stats store (replaced by the real module).
#![allow(dead_code)]
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub enum HistogramUnit {
    Unspecified,
    Bytes,
    Microseconds,
    Milliseconds,
    Percent,
}
#[derive(Default)]
struct Cell {
    v: AtomicU64,
    used: AtomicBool,
}
#[derive(Clone)]
pub struct Counter(Arc<Cell>);
#[derive(Clone)]
pub struct Gauge(Arc<Cell>);
#[derive(Clone)]
pub struct Histogram(Arc<Cell>);
#[derive(Clone)]
pub struct TextReadout(Arc<Mutex<String>>);
impl Counter {
    pub fn inc(&self) {
        self.add(1)
    }
    pub fn add(&self, n: u64) {
        self.0.v.fetch_add(n, Ordering::Relaxed);
        self.0.used.store(true, Ordering::Relaxed);
    }
    pub fn value(&self) -> u64 {
        self.0.v.load(Ordering::Relaxed)
    }
    pub fn detached() -> Counter {
        Counter(Arc::default())
    }
}
impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.v.store(v, Ordering::Relaxed)
    }
    pub fn inc(&self) {
        self.add(1)
    }
    pub fn dec(&self) {
        self.sub(1)
    }
    pub fn add(&self, n: u64) {
        self.0.v.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sub(&self, n: u64) {
        self.0.v.fetch_sub(n, Ordering::Relaxed);
    }
    pub fn value(&self) -> u64 {
        self.0.v.load(Ordering::Relaxed)
    }
    pub fn detached() -> Gauge {
        Gauge(Arc::default())
    }
}
impl Histogram {
    pub fn record(&self, v: u64) {
        self.0.v.store(v, Ordering::Relaxed)
    }
    pub fn detached(_u: HistogramUnit) -> Histogram {
        Histogram(Arc::default())
    }
}
impl TextReadout {
    pub fn set(&self, s: &str) {
        *self.0.lock() = s.to_string()
    }
    pub fn value(&self) -> String {
        self.0.lock().clone()
    }
}
#[derive(Clone, Default)]
pub struct Store {
    c: Arc<Mutex<BTreeMap<String, Counter>>>,
    g: Arc<Mutex<BTreeMap<String, Gauge>>>,
}
impl Store {
    pub fn new() -> Store {
        Store::default()
    }
    pub fn counter(&self, name: &str) -> Counter {
        self.c.lock().entry(name.to_string()).or_insert_with(Counter::detached).clone()
    }
    pub fn gauge(&self, name: &str) -> Gauge {
        self.g.lock().entry(name.to_string()).or_insert_with(Gauge::detached).clone()
    }
    pub fn histogram(&self, _name: &str, u: HistogramUnit) -> Histogram {
        Histogram::detached(u)
    }
    pub fn text_readout(&self, _name: &str) -> TextReadout {
        TextReadout(Arc::default())
    }
    pub fn reset_counters(&self) {}
    pub fn merge_histograms(&self) {}
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.c.lock().iter() {
            s += &format!("{k}: {}\n", v.value());
        }
        for (k, v) in self.g.lock().iter() {
            s += &format!("{k}: {}\n", v.value());
        }
        s
    }
}
#[macro_export]
macro_rules! define_stats {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($kind:ident $field:ident $(: $unit:ident)?),* $(,)? }) => {
        $(#[$m])* #[derive(Clone)] $vis struct $name { $(pub $field: $crate::define_stats!(@ty $kind)),* }
        impl $name { pub fn new(store: &$crate::stats::Store, prefix: &str) -> Self { $name { $($field: $crate::define_stats!(@mk store, prefix, $kind, $field $(, $unit)?)),* } } }
    };
    (@ty counter) => { $crate::stats::Counter };
    (@ty gauge) => { $crate::stats::Gauge };
    (@ty histogram) => { $crate::stats::Histogram };
    (@mk $s:ident, $p:ident, counter, $f:ident) => { $s.counter(&format!("{}{}", $p, stringify!($f))) };
    (@mk $s:ident, $p:ident, gauge, $f:ident) => { $s.gauge(&format!("{}{}", $p, stringify!($f))) };
    (@mk $s:ident, $p:ident, histogram, $f:ident, $u:ident) => { $s.histogram(&format!("{}{}", $p, stringify!($f)), $crate::stats::HistogramUnit::$u) };
}
