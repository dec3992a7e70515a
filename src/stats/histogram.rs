//! Histogram handle: lock-free recording into log-linear bucket arrays that are allocated one
//! decade at a time on first use, plus the interval/cumulative views frozen at each merge
//! (Envoy's stats flush). Until the first merge after a sample, a histogram is "unused" and
//! renders as `No recorded values`, exactly like Envoy's `ParentHistogram`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::hist_stats::HistogramSnapshot;
use super::llhist::{self, Bucket, BucketCount, BUCKETS_PER_EXPONENT, EXPONENTS};

/// Unit of a histogram's samples (affects only `Percent`, whose samples are fixed-point values
/// scaled by [`PERCENT_SCALE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HistogramUnit {
    #[default]
    Unspecified,
    Bytes,
    Microseconds,
    Milliseconds,
    Percent,
}

/// Envoy's `Histogram::PercentScale`: a Percent sample of 1.0 (100%) is recorded as this value.
pub const PERCENT_SCALE: f64 = 1_000_000.0;

type Decade = [AtomicU64; BUCKETS_PER_EXPONENT];

/// Values frozen by the last merge.
#[derive(Default)]
struct Merged {
    /// Set by the first merge that saw at least one sample; never cleared.
    used: bool,
    /// All samples recorded up to the last merge.
    cumulative: Vec<BucketCount>,
    /// Samples recorded between the previous merge and the last one.
    interval: Vec<BucketCount>,
}

struct Cell {
    unit: HistogramUnit,
    zero: AtomicU64,
    decades: [OnceLock<Box<Decade>>; EXPONENTS],
    merged: Mutex<Merged>,
}

/// A cheap, cloneable handle to one histogram.
#[derive(Clone)]
pub struct Histogram(Arc<Cell>);

impl Histogram {
    pub(crate) fn new(unit: HistogramUnit) -> Histogram {
        Histogram(Arc::new(Cell {
            unit,
            zero: AtomicU64::new(0),
            decades: std::array::from_fn(|_| OnceLock::new()),
            merged: Mutex::new(Merged::default()),
        }))
    }

    /// A histogram not registered in any store (for tests and defaults).
    pub fn detached(unit: HistogramUnit) -> Histogram {
        Histogram::new(unit)
    }

    /// Records one sample. Lock-free: one atomic add (plus a one-time allocation of the
    /// sample's decade).
    #[inline]
    pub fn record(&self, value: u64) {
        match Bucket::of(value).slot() {
            None => {
                self.0.zero.fetch_add(1, Ordering::Relaxed);
            }
            Some((exp, slot)) => {
                let decade = self.0.decades[exp].get_or_init(new_decade);
                decade[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The unit given at creation.
    pub fn unit(&self) -> HistogramUnit {
        self.0.unit
    }

    /// True when both handles refer to the same histogram.
    pub fn same_as(&self, other: &Histogram) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Current totals of every non-empty bucket, in bucket order.
    fn live_counts(&self) -> Vec<BucketCount> {
        let mut out = Vec::new();
        let zero = self.0.zero.load(Ordering::Relaxed);
        if zero > 0 {
            out.push((Bucket::ZERO, zero));
        }
        for (exp, decade) in self.0.decades.iter().enumerate() {
            if let Some(decade) = decade.get() {
                for (slot, count) in decade.iter().enumerate() {
                    let count = count.load(Ordering::Relaxed);
                    if count > 0 {
                        out.push((Bucket::from_slot(exp, slot), count));
                    }
                }
            }
        }
        out
    }

    /// Closes the current interval: the samples recorded since the previous merge become the
    /// interval view and everything recorded so far becomes the cumulative view.
    pub(crate) fn merge(&self) {
        let current = self.live_counts();
        let mut merged = self.0.merged.lock().unwrap_or_else(PoisonError::into_inner);
        if !merged.used && current.is_empty() {
            return;
        }
        merged.interval = llhist::subtract(&current, &merged.cumulative);
        merged.cumulative = current;
        merged.used = true;
    }

    /// The views frozen by the last merge.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let merged = self.0.merged.lock().unwrap_or_else(PoisonError::into_inner);
        HistogramSnapshot {
            unit: self.0.unit,
            used: merged.used,
            cumulative: merged.cumulative.clone(),
            interval: merged.interval.clone(),
        }
    }
}

fn new_decade() -> Box<Decade> {
    Box::new(std::array::from_fn(|_| AtomicU64::new(0)))
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").field("unit", &self.0.unit).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_histogram_is_small() {
        let size = std::mem::size_of::<Cell>();
        println!("unused histogram: {size} bytes + Arc header");
        assert!(size <= 512, "{size}");
        let h = Histogram::detached(HistogramUnit::Milliseconds);
        assert!(h.0.decades.iter().all(|d| d.get().is_none()));
        h.record(5);
        assert_eq!(h.0.decades.iter().filter(|d| d.get().is_some()).count(), 1);
    }

    #[test]
    fn not_used_until_merged() {
        let h = Histogram::detached(HistogramUnit::Unspecified);
        h.merge();
        assert!(!h.snapshot().used);
        h.record(3);
        assert!(!h.snapshot().used, "samples show only after a merge");
        h.merge();
        let s = h.snapshot();
        assert!(s.used);
        assert_eq!(s.cumulative, vec![(Bucket::of(3), 1)]);
        assert_eq!(s.interval, vec![(Bucket::of(3), 1)]);
    }

    #[test]
    fn interval_vs_cumulative_after_merges() {
        let h = Histogram::detached(HistogramUnit::Milliseconds);
        h.record(1);
        h.record(1);
        h.record(250);
        h.merge();
        h.record(250);
        h.record(0);
        h.merge();
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![(Bucket::ZERO, 1), (Bucket::of(1), 2), (Bucket::of(250), 2)]);
        assert_eq!(s.interval, vec![(Bucket::ZERO, 1), (Bucket::of(250), 1)]);
        h.merge();
        let s = h.snapshot();
        assert!(s.used);
        assert!(s.interval.is_empty());
        assert_eq!(s.cumulative.len(), 3);
    }

    #[test]
    fn clones_share_storage() {
        let h = Histogram::detached(HistogramUnit::Bytes);
        let h2 = h.clone();
        h2.record(7);
        h.merge();
        assert_eq!(h.snapshot().cumulative, vec![(Bucket::of(7), 1)]);
        assert!(h.same_as(&h2));
    }
}
