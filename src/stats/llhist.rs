//! Log-linear bucket arithmetic compatible with the circllhist library Envoy uses for its
//! histograms: two significant decimal digits per bucket, quantiles by the "type 1" rule
//! (samples spread evenly inside a bucket), approximate sums from bucket midpoints and
//! inclusive "count below" for the Prometheus / cumulative bucket views.
//!
//! The floating-point operations are performed in the same order as circllhist so that the
//! printed numbers are identical to Envoy's.

/// Exact powers of ten `1e0..=1e20` (u64 values have at most 20 digits).
const POW10_F64: [f64; 21] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
];

/// `10^0..=10^18`, the divisors that leave two significant digits.
const POW10_U64: [u64; 19] = {
    let mut table = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Number of bucket exponents a `u64` can produce (`0..=19`).
pub(crate) const EXPONENTS: usize = 20;

/// Buckets per exponent (mantissas `10..=99`).
pub(crate) const BUCKETS_PER_EXPONENT: usize = 90;

/// One log-linear bucket: the zero bucket (`val == 0`) or `[val/10 * 10^exp, (val+1)/10 * 10^exp)`
/// with `val` in `10..=99`. Ordering follows the real axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    exp: u8,
    val: u8,
}

/// A bucket with its sample count.
pub type BucketCount = (Bucket, u64);

impl Bucket {
    /// The zero bucket.
    pub const ZERO: Bucket = Bucket { exp: 0, val: 0 };

    /// The bucket holding an integer sample (circllhist `int_scale_to_hist_bucket(v, 0)`).
    #[inline]
    pub fn of(value: u64) -> Bucket {
        if value == 0 {
            return Bucket::ZERO;
        }
        if value < 10 {
            return Bucket { exp: 0, val: (value * 10) as u8 };
        }
        let exp = value.ilog10() as usize; // value >= 10, so exp is 1..=19
        Bucket { exp: exp as u8, val: (value / POW10_U64[exp - 1]) as u8 }
    }

    /// Rebuilds a bucket from its storage coordinates (`exp` in `0..EXPONENTS`, `slot` in
    /// `0..BUCKETS_PER_EXPONENT`).
    pub(crate) fn from_slot(exp: usize, slot: usize) -> Bucket {
        Bucket { exp: exp as u8, val: (slot + 10) as u8 }
    }

    /// Storage coordinates `(exp, slot)`, or `None` for the zero bucket.
    #[inline]
    pub(crate) fn slot(self) -> Option<(usize, usize)> {
        if self.val == 0 {
            None
        } else {
            Some((self.exp as usize, self.val as usize - 10))
        }
    }

    /// True for the zero bucket.
    pub fn is_zero(self) -> bool {
        self.val == 0
    }

    /// Lower edge (`hist_bucket_to_double`).
    pub fn lower(self) -> f64 {
        if self.val == 0 {
            return 0.0;
        }
        (f64::from(self.val) / 10.0) * POW10_F64[self.exp as usize]
    }

    /// Width (`hist_bucket_to_double_bin_width`).
    pub fn width(self) -> f64 {
        if self.val == 0 {
            return 0.0;
        }
        POW10_F64[self.exp as usize] / 10.0
    }

    /// Minimum-relative-error midpoint (`hist_bucket_midpoint`).
    fn midpoint(self) -> f64 {
        if self.val == 0 {
            return 0.0;
        }
        let bottom = self.lower();
        let interval = self.width();
        let top = bottom + interval;
        let ratio = bottom / (bottom + top);
        bottom + interval * ratio
    }

    /// Sort key comparable with [`ThresholdKey`].
    fn key(self) -> ThresholdKey {
        if self.val == 0 {
            ThresholdKey::Zero
        } else {
            ThresholdKey::Positive(i32::from(self.exp), i32::from(self.val))
        }
    }
}

/// Position of an arbitrary double on the bucket axis (`double_to_hist_bucket`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ThresholdKey {
    /// Negative values and NaN sort below everything we store.
    Below,
    Zero,
    Positive(i32, i32),
}

/// `10^exp` as circllhist's literal table has it (exact for the literals it lists).
fn power_of_ten(exp: i32) -> f64 {
    if (0..=20).contains(&exp) {
        POW10_F64[exp as usize]
    } else {
        format!("1e{exp}").parse::<f64>().unwrap_or(f64::NAN)
    }
}

/// Bucket a threshold falls into. Values that circllhist maps to NaN or negative buckets compare
/// below every stored bucket, as they do there.
fn threshold_key(d: f64) -> ThresholdKey {
    if d.is_nan() || d.is_infinite() || d < 0.0 {
        return ThresholdKey::Below;
    }
    if d == 0.0 {
        return ThresholdKey::Zero;
    }
    let big_exp = d.log10().floor() as i32;
    if big_exp > 127 {
        return ThresholdKey::Below;
    }
    if big_exp < -128 {
        return ThresholdKey::Zero;
    }
    let mut exp = big_exp;
    let scaled = d / power_of_ten(exp) * 10.0;
    let mut val = (scaled + 1e-13).floor() as i32;
    if val == 100 {
        if exp < 127 {
            val /= 10;
            exp += 1;
        } else {
            return ThresholdKey::Below;
        }
    }
    if val == 0 {
        return ThresholdKey::Zero;
    }
    if !(10..100).contains(&val) {
        return ThresholdKey::Below;
    }
    ThresholdKey::Positive(exp, val)
}

/// Total number of samples.
pub fn sample_count(bins: &[BucketCount]) -> u64 {
    bins.iter().fold(0u64, |acc, &(_, c)| acc.saturating_add(c))
}

/// Approximate sum of the samples (`hist_approx_sum`).
pub fn approx_sum(bins: &[BucketCount]) -> f64 {
    let mut sum = 0.0;
    for &(bucket, count) in bins {
        sum += bucket.midpoint() * count as f64;
    }
    sum
}

/// Samples in buckets at or below the bucket containing `threshold`
/// (`hist_approx_count_below`, inclusive flavour).
pub fn count_below(bins: &[BucketCount], threshold: f64) -> u64 {
    let target = threshold_key(threshold);
    let mut running = 0u64;
    for &(bucket, count) in bins {
        if target < bucket.key() {
            break;
        }
        running = running.saturating_add(count);
    }
    running
}

/// Quantiles (`q` in `0..=1`, ascending) by circllhist's type-1 rule; NaN when empty.
pub fn quantiles(bins: &[BucketCount], qs: &[f64]) -> Vec<f64> {
    let total: f64 = bins.iter().map(|&(_, c)| c as f64).sum();
    if total == 0.0 {
        return vec![f64::NAN; qs.len()];
    }
    let nonempty: Vec<BucketCount> = bins.iter().copied().filter(|&(_, c)| c > 0).collect();
    let mut out = Vec::with_capacity(qs.len());
    let mut idx = 0usize;
    let mut lower_cnt = 0.0f64;
    let mut upper_cnt = nonempty.first().map_or(0.0, |&(_, c)| c as f64);
    for &q in qs {
        let qn = total * q;
        while idx + 1 < nonempty.len() && upper_cnt < qn {
            idx += 1;
            lower_cnt = upper_cnt;
            upper_cnt = lower_cnt + nonempty[idx].1 as f64;
        }
        let Some(&(bucket, n)) = nonempty.get(idx) else {
            out.push(f64::NAN);
            continue;
        };
        let left = bucket.lower();
        let width = bucket.width();
        if width == 0.0 {
            out.push(left);
            continue;
        }
        let denom = (n + 1) as f64;
        let k = (qn - lower_cnt).ceil();
        if k == 0.0 {
            out.push(left + 1.0 / denom * width);
        } else {
            out.push(left + k / denom * width);
        }
    }
    out
}

/// Element-wise `current - previous` for two sorted bucket lists; drops empty buckets.
pub fn subtract(current: &[BucketCount], previous: &[BucketCount]) -> Vec<BucketCount> {
    let mut out = Vec::new();
    let mut prev = previous.iter().peekable();
    for &(bucket, count) in current {
        while prev.peek().is_some_and(|&&(b, _)| b < bucket) {
            prev.next();
        }
        let before = match prev.peek() {
            Some(&&(b, c)) if b == bucket => c,
            _ => 0,
        };
        let diff = count.saturating_sub(before);
        if diff > 0 {
            out.push((bucket, diff));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const QS: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1.0];

    fn bins(values: &[(u64, u64)]) -> Vec<BucketCount> {
        let mut v: Vec<BucketCount> = values.iter().map(|&(x, c)| (Bucket::of(x), c)).collect();
        v.sort();
        v
    }

    #[test]
    fn bucket_mapping() {
        assert_eq!(Bucket::of(0), Bucket::ZERO);
        assert_eq!(Bucket::of(5).lower(), 5.0);
        assert_eq!(Bucket::of(5).width(), 0.1);
        assert_eq!(Bucket::of(42).lower(), 42.0);
        assert_eq!(Bucket::of(42).width(), 1.0);
        assert_eq!(Bucket::of(999).lower(), 990.0);
        assert_eq!(Bucket::of(999).width(), 10.0);
        assert_eq!(Bucket::of(u64::MAX).slot(), Some((19, 8)));
        assert!(Bucket::of(9) < Bucket::of(10));
        assert!(Bucket::ZERO < Bucket::of(1));
    }

    #[test]
    fn quantiles_match_envoy_single_bucket() {
        // Envoy 1.40: five samples of 1 -> P0 1.0166666666666666 ... P100 1.0833333333333333.
        let q = quantiles(&bins(&[(1, 5)]), &QS);
        assert_eq!(q[0], 1.0166666666666666);
        assert_eq!(q[1], 1.0333333333333334);
        assert_eq!(q[2], 1.05);
        assert_eq!(q[3], 1.0666666666666667);
        assert_eq!(q[4], 1.0833333333333333);
        assert_eq!(q[9], 1.0833333333333333);
    }

    #[test]
    fn quantiles_interpolate_across_buckets() {
        // Captured from Envoy: totals=0,0:2, 1,0.1:15, 2,0.1:2, 5,0.1:1, 7,0.1:2, 8,0.1:1
        let b = bins(&[(0, 2), (1, 15), (2, 2), (5, 1), (7, 2), (8, 1)]);
        let q = quantiles(&b, &QS);
        assert_eq!(
            q,
            vec![0.0, 1.025, 1.0625, 2.033333333333333, 7.033333333333333, 7.066666666666666, 8.05, 8.05, 8.05, 8.05]
        );
        assert!(quantiles(&[], &QS).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn count_below_is_inclusive_of_threshold_bucket() {
        let b = bins(&[(0, 27), (4, 1)]);
        assert_eq!(count_below(&b, 0.5), 27);
        assert_eq!(count_below(&b, 1.0), 27);
        assert_eq!(count_below(&b, 5.0), 28);
        let ones = bins(&[(1, 5)]);
        assert_eq!(count_below(&ones, 0.5), 0);
        assert_eq!(count_below(&ones, 1.0), 5);
        assert_eq!(count_below(&bins(&[(5, 1)]), 5.0), 1);
        assert_eq!(count_below(&bins(&[(6, 1)]), 5.0), 0);
    }

    #[test]
    fn sum_uses_min_error_midpoint() {
        // Envoy: five samples of 1 -> _sum 5.238095238095238137532305700006
        assert_eq!(approx_sum(&bins(&[(1, 5)])), 5.238095238095238);
        assert_eq!(approx_sum(&bins(&[(0, 3)])), 0.0);
    }

    #[test]
    fn subtract_drops_empty() {
        let cur = bins(&[(1, 5), (2, 3), (30, 1)]);
        let prev = bins(&[(1, 5), (2, 1)]);
        assert_eq!(subtract(&cur, &prev), bins(&[(2, 2), (30, 1)]));
    }
}
