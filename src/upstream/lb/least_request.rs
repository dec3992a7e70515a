//! `LEAST_REQUEST`: power-of-N-choices when weights are equal, active-request-scaled weighted
//! round robin when they differ.
//!
//! What Envoy does (`least_request_lb.{h,cc}`, `EdfLoadBalancerBase`):
//! - **All weights equal** (`N_CHOICES`, the default `selection_method`): draw `choice_count`
//!   (default 2, proto minimum 2) hosts uniformly at random *with replacement*; keep the first
//!   draw and replace it only by a later draw with strictly fewer active requests. So with two
//!   hosts the busier one still wins 25% of the time (both draws land on it).
//! - **Weights differ**: the EDF scheduler of weighted round robin (see [`super::round_robin`]),
//!   but a host is re-inserted after each pick with the *effective* weight
//!   `weight / (active_requests + 1) ^ active_request_bias` (bias default 1.0; `bias == 0`
//!   makes it plain weighted round robin; a negative or NaN bias is replaced by 1.0). Busy
//!   hosts are picked less often but never drained entirely.
//!
//! This port:
//! - Equal weights: the same N-choices algorithm, with `rand::rng()`.
//! - Different weights: a lock-free equivalent of the dynamic EDF. Proposals come from the same
//!   precomputed EDF cycle as round robin (one shared `AtomicU64` cursor); a proposed host is
//!   accepted with probability `1 / (active + 1) ^ bias` (its effective weight over its static
//!   weight). Accepted picks therefore occur with frequency proportional to
//!   `weight / (active + 1) ^ bias`, which is the share Envoy's EDF gives a host under steady
//!   load. With idle hosts or `bias == 0` every proposal is accepted, so the sequence is
//!   exactly Envoy's weighted round robin. After 16 rejected proposals (every host busy) the
//!   pick falls back to one exact O(n) draw proportional to the effective weights.
//!
//! Deviations:
//! - Envoy's per-worker EDF is deterministic given the active counts; this one randomises the
//!   acceptance, so short runs are noisier but long-run shares match.
//! - Newer Envoy (runtime guard `least_request_lb_active_request_bias_forces_weighted`) uses
//!   the weighted path even for equal weights when `active_request_bias` is *explicitly* set;
//!   `LbPolicy::LeastRequest` cannot tell explicit from default, so equal weights always use
//!   N choices (the long-standing behaviour).
//! - `selection_method: FULL_SCAN`, slow start and counting pending requests
//!   (`least_request_lb_count_pending_requests`) are not implemented; `active` should return
//!   what the caller wants counted.
//! - `choice_count` below 2 (rejected by Envoy's proto validation) is coerced: 0 acts as 1
//!   (a single uniform draw).

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::round_robin::edf_cycle;
use super::{weight_of, weights_are_equal, LbContext, LbHost, LoadBalancer};

/// Rejected proposals before the exact O(n) fallback draw.
const MAX_PROPOSALS: usize = 16;

/// Least-request balancer (see the module docs).
#[derive(Debug)]
pub struct LeastRequestLb {
    hosts: usize,
    choice_count: u32,
    /// Present when host weights differ.
    weighted: Option<Weighted>,
}

#[derive(Debug)]
struct Weighted {
    bias: f64,
    weights: Vec<f64>,
    schedule: Vec<u32>,
    cursor: AtomicU64,
}

impl LeastRequestLb {
    /// Builds the balancer; `choice_count` and `active_request_bias` as in
    /// `least_request_lb_config` (see the module docs for out-of-range values).
    pub fn new(hosts: &[LbHost], choice_count: u32, active_request_bias: f64) -> Self {
        let bias = if active_request_bias.is_nan() || active_request_bias < 0.0 { 1.0 } else { active_request_bias };
        let weighted = if hosts.len() <= 1 || weights_are_equal(hosts) {
            None
        } else {
            Some(Weighted {
                bias,
                weights: hosts.iter().map(|h| weight_of(h) as f64).collect(),
                schedule: edf_cycle(hosts),
                cursor: AtomicU64::new(rand::random()),
            })
        };
        LeastRequestLb { hosts: hosts.len(), choice_count: choice_count.max(1), weighted }
    }

    /// Envoy's `unweightedHostPickNChoices`.
    fn pick_n_choices(&self, active: &dyn Fn(usize) -> u64) -> usize {
        let mut rng = rand::rng();
        let mut candidate = rng.random_range(0..self.hosts);
        if self.choice_count == 1 {
            return candidate;
        }
        let mut candidate_active = active(candidate);
        for _ in 1..self.choice_count {
            let sampled = rng.random_range(0..self.hosts);
            let sampled_active = active(sampled);
            if sampled_active < candidate_active {
                candidate = sampled;
                candidate_active = sampled_active;
            }
        }
        candidate
    }
}

/// `1 / (active + 1) ^ bias`, Envoy's effective weight divided by the static weight.
fn load_factor(active: u64, bias: f64) -> f64 {
    // Envoy does not add 1 to u64::MAX (it would wrap to a division by zero).
    let denominator = active.saturating_add(1) as f64;
    if bias == 1.0 {
        1.0 / denominator
    } else if bias == 0.0 {
        1.0
    } else {
        1.0 / denominator.powf(bias)
    }
}

impl Weighted {
    fn pick(&self, active: &dyn Fn(usize) -> u64) -> Option<usize> {
        let len = self.schedule.len() as u64;
        if len == 0 {
            return None;
        }
        let mut rng = rand::rng();
        let mut last = None;
        for _ in 0..MAX_PROPOSALS {
            let c = self.cursor.fetch_add(1, Ordering::Relaxed);
            let host = *self.schedule.get((c % len) as usize)? as usize;
            let factor = load_factor(active(host), self.bias);
            if factor >= 1.0 || rng.random::<f64>() < factor {
                return Some(host);
            }
            last = Some(host);
        }
        // Every proposal was busy: one exact draw proportional to the effective weights.
        let effective = |i: usize| self.weights[i] * load_factor(active(i), self.bias);
        let total: f64 = (0..self.weights.len()).map(effective).sum();
        if !(total > 0.0 && total.is_finite()) {
            return last;
        }
        let mut r = rng.random::<f64>() * total;
        for i in 0..self.weights.len() {
            let e = effective(i);
            if r < e {
                return Some(i);
            }
            r -= e;
        }
        // Loads changed between the two scans (or rounding): take the last host.
        Some(self.weights.len() - 1)
    }
}

impl LoadBalancer for LeastRequestLb {
    fn pick(&self, _ctx: &LbContext, active: &dyn Fn(usize) -> u64) -> Option<usize> {
        if self.hosts == 0 {
            return None;
        }
        if self.hosts == 1 {
            return Some(0);
        }
        match &self.weighted {
            Some(w) => w.pick(active),
            None => Some(self.pick_n_choices(active)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_shares, counts, hosts};
    use super::*;

    fn shares_with_load(lb: &LeastRequestLb, load: &[u64], n: usize) -> Vec<usize> {
        let mut c = vec![0usize; load.len()];
        for _ in 0..n {
            let i = lb.pick(&LbContext::default(), &|i| load[i]).expect("a host");
            c[i] += 1;
        }
        c
    }

    #[test]
    fn least_request_honours_weights_when_idle() {
        let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, 1.0);
        // Idle hosts accept every proposal: exactly the weighted round robin cycle.
        assert_eq!(counts(&lb, 3, 60_000, |_| None), [10_000, 20_000, 30_000]);
    }

    #[test]
    fn least_request_prefers_the_idle_host() {
        // Equal weights, P2C with replacement: the idle middle host wins unless both draws
        // miss it: 1 - (2/3)^2 = 5/9.
        let lb = LeastRequestLb::new(&hosts(&[1, 1, 1]), 2, 1.0);
        let c = shares_with_load(&lb, &[10, 0, 10], 100_000);
        assert_shares(&c, &[2.0, 5.0, 2.0], 0.01);
        // More choices, stronger preference: 1 - (2/3)^5.
        let lb = LeastRequestLb::new(&hosts(&[1, 1, 1]), 5, 1.0);
        let c = shares_with_load(&lb, &[10, 0, 10], 100_000);
        let idle = c[1] as f64 / 100_000.0;
        assert!((idle - (1.0 - (2.0f64 / 3.0).powi(5))).abs() < 0.01, "{c:?}");
    }

    #[test]
    fn least_request_two_hosts_busy_one_still_wins_a_quarter() {
        let lb = LeastRequestLb::new(&hosts(&[1, 1]), 2, 1.0);
        let c = shares_with_load(&lb, &[0, 3], 100_000);
        assert_shares(&c, &[3.0, 1.0], 0.01);
    }

    #[test]
    fn least_request_equal_loads_are_uniform() {
        let lb = LeastRequestLb::new(&hosts(&[4, 4, 4, 4]), 2, 1.0);
        let c = shares_with_load(&lb, &[2, 2, 2, 2], 100_000);
        assert_shares(&c, &[1.0; 4], 0.01);
    }

    #[test]
    fn least_request_weighted_divides_weight_by_active_plus_one() {
        // Effective weights 1/1, 2/2, 3/6 -> 1 : 1 : 0.5.
        let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, 1.0);
        let c = shares_with_load(&lb, &[0, 1, 5], 100_000);
        assert_shares(&c, &[1.0, 1.0, 0.5], 0.01);
    }

    #[test]
    fn least_request_weighted_prefers_the_idle_host() {
        let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, 1.0);
        let c = shares_with_load(&lb, &[0, 20, 20], 100_000);
        // Effective 1, 2/21, 3/21.
        assert_shares(&c, &[1.0, 2.0 / 21.0, 3.0 / 21.0], 0.01);
    }

    #[test]
    fn least_request_bias_exponent_applies() {
        // bias 2: 1/1^2 and 2/2^2 -> 2 : 1.
        let lb = LeastRequestLb::new(&hosts(&[1, 2]), 2, 2.0);
        let c = shares_with_load(&lb, &[0, 1], 100_000);
        assert_shares(&c, &[2.0, 1.0], 0.01);
        // bias 0.5: 1/1 and 2/sqrt(4) -> 1 : 1.
        let lb = LeastRequestLb::new(&hosts(&[1, 2]), 2, 0.5);
        let c = shares_with_load(&lb, &[0, 3], 100_000);
        assert_shares(&c, &[1.0, 1.0], 0.01);
    }

    #[test]
    fn least_request_zero_bias_is_weighted_round_robin() {
        let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, 0.0);
        let c = shares_with_load(&lb, &[100, 0, 50], 6000);
        assert_eq!(c, [1000, 2000, 3000]);
    }

    #[test]
    fn least_request_invalid_bias_means_one() {
        for bias in [f64::NAN, -1.0] {
            let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, bias);
            let c = shares_with_load(&lb, &[0, 1, 5], 100_000);
            assert_shares(&c, &[1.0, 1.0, 0.5], 0.01);
        }
    }

    #[test]
    fn least_request_all_busy_keeps_weight_shares() {
        // Every proposal is mostly rejected; the exact fallback keeps the 1:2:3 shares.
        let lb = LeastRequestLb::new(&hosts(&[1, 2, 3]), 2, 1.0);
        let c = shares_with_load(&lb, &[1000, 1000, 1000], 100_000);
        assert_shares(&c, &[1.0, 2.0, 3.0], 0.01);
        // Saturated counters do not divide by zero.
        let c = shares_with_load(&lb, &[u64::MAX; 3], 1000);
        assert_eq!(c.iter().sum::<usize>(), 1000);
    }

    #[test]
    fn least_request_choice_count_below_two_is_a_single_draw() {
        for choice_count in [0, 1] {
            let lb = LeastRequestLb::new(&hosts(&[1, 1]), choice_count, 1.0);
            let c = shares_with_load(&lb, &[0, 100], 100_000);
            assert_shares(&c, &[1.0, 1.0], 0.01);
        }
    }
}
