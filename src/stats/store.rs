//! The stats store: a name-keyed registry of counters, gauges, histograms and text readouts
//! (the same name always yields the same handle), the admin operations on them
//! (`/reset_counters`, the periodic histogram merge) and a sorted snapshot for rendering.
//! Registry locks are only taken when a stat is looked up or listed, never on updates.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::hist_stats::HistogramSnapshot;
use super::histogram::{Histogram, HistogramUnit};
use super::metrics::{Counter, Gauge, TextReadout};
use super::tags::{TagExtractor, TagRule};

/// The value of one stat at snapshot time.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    TextReadout(String),
    Histogram(HistogramSnapshot),
}

/// One stat at snapshot time.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    /// Whether the stat was ever written (histograms: merged with at least one sample).
    pub used: bool,
    pub value: MetricValue,
}

/// Tag-extracted name and tags of one stat name.
pub(crate) type Tagged = Arc<(String, Vec<(String, String)>)>;

struct TagState {
    extractor: TagExtractor,
    cache: HashMap<String, Tagged>,
}

struct Inner {
    counters: RwLock<HashMap<String, Counter>>,
    gauges: RwLock<HashMap<String, Gauge>>,
    histograms: RwLock<HashMap<String, Histogram>>,
    text_readouts: RwLock<HashMap<String, TextReadout>>,
    tags: Mutex<TagState>,
}

/// Shared handle to the stats registry.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

fn lookup<T: Clone>(map: &RwLock<HashMap<String, T>>, name: &str, make: impl FnOnce() -> T) -> T {
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(name) {
        return found.clone();
    }
    map.write().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_insert_with(make).clone()
}

fn values<K: Eq + Hash + Clone, T: Clone>(map: &RwLock<HashMap<K, T>>) -> Vec<(K, T)> {
    map.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl Store {
    /// An empty store using Envoy's default tag extraction rules.
    pub fn new() -> Store {
        Store {
            inner: Arc::new(Inner {
                counters: RwLock::default(),
                gauges: RwLock::default(),
                histograms: RwLock::default(),
                text_readouts: RwLock::default(),
                tags: Mutex::new(TagState {
                    extractor: TagExtractor::new(&TagRule::defaults()),
                    cache: HashMap::new(),
                }),
            }),
        }
    }

    /// The counter called `name`, created on first use.
    pub fn counter(&self, name: &str) -> Counter {
        lookup(&self.inner.counters, name, Counter::new)
    }

    /// The gauge called `name`, created on first use.
    pub fn gauge(&self, name: &str) -> Gauge {
        lookup(&self.inner.gauges, name, Gauge::new)
    }

    /// The histogram called `name`, created on first use (a later call's unit is ignored).
    pub fn histogram(&self, name: &str, unit: HistogramUnit) -> Histogram {
        lookup(&self.inner.histograms, name, || Histogram::new(unit))
    }

    /// The text readout called `name`, created on first use.
    pub fn text_readout(&self, name: &str) -> TextReadout {
        lookup(&self.inner.text_readouts, name, TextReadout::new)
    }

    /// `/reset_counters`: every counter back to zero (gauges and histograms untouched).
    pub fn reset_counters(&self) {
        for (_, c) in values(&self.inner.counters) {
            c.reset();
        }
    }

    /// Closes the histogram interval (call every `stats_flush_interval`).
    pub fn merge_histograms(&self) {
        for (_, h) in values(&self.inner.histograms) {
            h.merge();
        }
    }

    /// All stats, sorted by name (for equal names: counter, gauge, text readout, histogram).
    pub fn snapshot(&self) -> Vec<Metric> {
        let mut out = Vec::new();
        for (name, c) in values(&self.inner.counters) {
            out.push(Metric { name, used: c.used(), value: MetricValue::Counter(c.value()) });
        }
        for (name, g) in values(&self.inner.gauges) {
            out.push(Metric { name, used: g.used(), value: MetricValue::Gauge(g.value()) });
        }
        for (name, t) in values(&self.inner.text_readouts) {
            out.push(Metric { name, used: t.used(), value: MetricValue::TextReadout(t.value()) });
        }
        for (name, h) in values(&self.inner.histograms) {
            let snap = h.snapshot();
            out.push(Metric { name, used: snap.used, value: MetricValue::Histogram(snap) });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Envoy's defaults followed by `extra` (`stats_config.stats_tags`,
    /// `use_all_default_tags: true`).
    pub fn set_tag_rules(&self, extra: Vec<TagRule>) {
        self.set_tag_config(true, extra);
    }

    /// Like [`Store::set_tag_rules`], with `use_all_default_tags` explicit.
    pub fn set_tag_config(&self, use_all_default_tags: bool, extra: Vec<TagRule>) {
        let mut rules = if use_all_default_tags { TagRule::defaults() } else { Vec::new() };
        rules.extend(extra);
        let mut state = self.inner.tags.lock().unwrap_or_else(PoisonError::into_inner);
        state.extractor = TagExtractor::new(&rules);
        state.cache.clear();
    }

    /// Tag-extracted name and tags for `name` under the current rules (cached).
    pub(crate) fn tagged(&self, name: &str) -> Tagged {
        let mut state = self.inner.tags.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = state.cache.get(name) {
            return found.clone();
        }
        let tagged = Arc::new(state.extractor.extract(name));
        state.cache.insert(name.to_string(), tagged.clone());
        tagged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_handle() {
        let s = Store::new();
        let a = s.counter("x.y");
        let b = s.counter("x.y");
        assert!(a.same_as(&b));
        a.inc();
        assert_eq!(b.value(), 1);
        assert!(s.gauge("g").same_as(&s.gauge("g")));
        let h = s.histogram("h", HistogramUnit::Milliseconds);
        assert!(h.same_as(&s.histogram("h", HistogramUnit::Bytes)));
        assert_eq!(s.histogram("h", HistogramUnit::Bytes).unit(), HistogramUnit::Milliseconds);
        s.text_readout("t").set("v");
        assert_eq!(s.text_readout("t").value(), "v");
        assert_eq!(s.snapshot().len(), 4);
    }

    #[test]
    fn reset_counters_leaves_gauges() {
        let s = Store::new();
        s.counter("c").add(5);
        s.gauge("g").set(7);
        s.reset_counters();
        assert_eq!(s.counter("c").value(), 0);
        assert!(s.counter("c").used());
        assert_eq!(s.gauge("g").value(), 7);
    }

    #[test]
    fn snapshot_is_sorted() {
        let s = Store::new();
        s.gauge("b.g").set(1);
        s.counter("a.c").inc();
        s.counter("c").inc();
        s.histogram("b.a", HistogramUnit::Unspecified).record(3);
        s.merge_histograms();
        let names: Vec<String> = s.snapshot().into_iter().map(|m| m.name).collect();
        assert_eq!(names, vec!["a.c", "b.a", "b.g", "c"]);
        let h = s.snapshot().into_iter().find(|m| m.name == "b.a");
        assert!(matches!(h, Some(Metric { used: true, value: MetricValue::Histogram(_), .. })));
    }

    #[test]
    fn tag_rules_can_change() {
        let s = Store::new();
        assert_eq!(s.tagged("tcp.ingress.downstream_cx_total").0, "tcp.downstream_cx_total");
        s.set_tag_config(false, vec![TagRule::fixed("k", "v")]);
        let t = s.tagged("tcp.ingress.downstream_cx_total");
        assert_eq!(t.0, "tcp.ingress.downstream_cx_total");
        assert_eq!(t.1, vec![("k".to_string(), "v".to_string())]);
    }

    #[test]
    fn concurrent_updates() {
        let s = Store::new();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let c = s.counter("conc.counter");
                    let g = s.gauge("conc.gauge");
                    let h = s.histogram("conc.hist", HistogramUnit::Milliseconds);
                    for j in 0..10_000u64 {
                        c.inc();
                        g.inc();
                        h.record(j % 1000 + i);
                        if j % 1000 == 0 {
                            s.counter(&format!("conc.dyn_{}", j / 1000)).inc();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker thread panicked");
        }
        s.merge_histograms();
        assert_eq!(s.counter("conc.counter").value(), 80_000);
        assert_eq!(s.gauge("conc.gauge").value(), 80_000);
        assert_eq!(s.counter("conc.dyn_3").value(), 8);
        let snap = s.histogram("conc.hist", HistogramUnit::Milliseconds).snapshot();
        assert_eq!(snap.sample_count(), 80_000);
        assert_eq!(snap.interval, snap.cumulative);
    }
}
