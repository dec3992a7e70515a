//! Histogram statistics as Envoy computes them at a merge: the supported quantiles, the default
//! bucket bounds, per-bound (cumulative and disjoint) counts, sample count and approximate sum,
//! for both the interval and the cumulative view of a [`HistogramSnapshot`].

use super::histogram::{HistogramUnit, PERCENT_SCALE};
use super::llhist::{self, Bucket, BucketCount};

/// Quantiles Envoy reports (`P0 .. P100`), as fractions.
pub const SUPPORTED_QUANTILES: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1.0];

/// Envoy's default histogram bucket upper bounds.
pub const DEFAULT_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0,
    600000.0, 1800000.0, 3600000.0,
];

/// The state of one histogram as of its last merge.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub unit: HistogramUnit,
    /// False until a merge has seen at least one sample (`No recorded values`).
    pub used: bool,
    /// Every sample recorded up to the last merge.
    pub cumulative: Vec<BucketCount>,
    /// Samples recorded between the previous merge and the last one.
    pub interval: Vec<BucketCount>,
}

/// One raw log-linear bucket, for the `detailed` views.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetailedBucket {
    pub lower_bound: f64,
    pub width: f64,
    pub count: u64,
}

impl HistogramSnapshot {
    fn scale(&self) -> f64 {
        if self.unit == HistogramUnit::Percent {
            PERCENT_SCALE
        } else {
            1.0
        }
    }

    fn quantiles_of(&self, bins: &[BucketCount]) -> Vec<f64> {
        let scale = self.scale();
        llhist::quantiles(bins, &SUPPORTED_QUANTILES)
            .into_iter()
            .map(|v| if scale == 1.0 { v } else { v / scale })
            .collect()
    }

    fn buckets_of(&self, bins: &[BucketCount], bounds: &[f64]) -> Vec<u64> {
        let scale = self.scale();
        bounds.iter().map(|&b| llhist::count_below(bins, if scale == 1.0 { b } else { b * scale })).collect()
    }

    /// Quantiles of the interval view (NaN when it is empty).
    pub fn interval_quantiles(&self) -> Vec<f64> {
        self.quantiles_of(&self.interval)
    }

    /// Quantiles of the cumulative view (NaN when it is empty).
    pub fn cumulative_quantiles(&self) -> Vec<f64> {
        self.quantiles_of(&self.cumulative)
    }

    /// Interval samples at or below each bound.
    pub fn interval_buckets(&self, bounds: &[f64]) -> Vec<u64> {
        self.buckets_of(&self.interval, bounds)
    }

    /// Cumulative samples at or below each bound.
    pub fn cumulative_buckets(&self, bounds: &[f64]) -> Vec<u64> {
        self.buckets_of(&self.cumulative, bounds)
    }

    /// Number of samples in the cumulative view.
    pub fn sample_count(&self) -> u64 {
        llhist::sample_count(&self.cumulative)
    }

    /// Approximate sum of the cumulative samples (bucket midpoints), unit-scaled.
    pub fn sample_sum(&self) -> f64 {
        let sum = llhist::approx_sum(&self.cumulative);
        let scale = self.scale();
        if scale == 1.0 {
            sum
        } else {
            sum / scale
        }
    }

    /// Raw buckets of the cumulative view.
    pub fn detailed_totals(&self) -> Vec<DetailedBucket> {
        detailed(&self.cumulative)
    }

    /// Raw buckets of the interval view.
    pub fn detailed_intervals(&self) -> Vec<DetailedBucket> {
        detailed(&self.interval)
    }
}

fn detailed(bins: &[BucketCount]) -> Vec<DetailedBucket> {
    bins.iter()
        .map(|&(bucket, count): &(Bucket, u64)| DetailedBucket {
            lower_bound: bucket.lower(),
            width: bucket.width(),
            count,
        })
        .collect()
}

/// Turns cumulative per-bound counts into per-bucket (disjoint) counts.
pub fn disjoint(cumulative: &[u64]) -> Vec<u64> {
    let mut prev = 0u64;
    cumulative
        .iter()
        .map(|&c| {
            let d = c.saturating_sub(prev);
            prev = c;
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(unit: HistogramUnit, values: &[u64]) -> HistogramSnapshot {
        let mut bins: Vec<BucketCount> = Vec::new();
        for &v in values {
            let b = Bucket::of(v);
            match bins.iter_mut().find(|(x, _)| *x == b) {
                Some(e) => e.1 += 1,
                None => bins.push((b, 1)),
            }
        }
        bins.sort();
        HistogramSnapshot { unit, used: true, cumulative: bins.clone(), interval: bins }
    }

    #[test]
    fn percent_unit_is_scaled() {
        let s = snap(HistogramUnit::Percent, &[500_000, 500_000]);
        let q = s.cumulative_quantiles();
        assert!((q[0] - 0.5).abs() < 0.01, "{q:?}");
        assert_eq!(s.cumulative_buckets(&[0.5, 1.0]), vec![2, 2]);
        assert!((s.sample_sum() - 1.0).abs() < 0.05);
    }

    #[test]
    fn buckets_and_disjoint() {
        let s = snap(HistogramUnit::Milliseconds, &[0, 1, 3, 7, 700]);
        let c = s.cumulative_buckets(&DEFAULT_BUCKETS);
        assert_eq!(&c[..4], &[1, 2, 3, 4]);
        assert_eq!(c[9], 5);
        let d = disjoint(&c);
        assert_eq!(d.iter().sum::<u64>(), 5);
        assert_eq!(&d[..4], &[1, 1, 1, 1]);
        assert_eq!(s.sample_count(), 5);
    }

    #[test]
    fn detailed_lists_raw_buckets() {
        let s = snap(HistogramUnit::Milliseconds, &[0, 0, 4]);
        assert_eq!(
            s.detailed_totals(),
            vec![
                DetailedBucket { lower_bound: 0.0, width: 0.0, count: 2 },
                DetailedBucket { lower_bound: 4.0, width: 0.1, count: 1 },
            ]
        );
    }
}
