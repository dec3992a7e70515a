//! `ROUND_ROBIN`: weighted round robin over a precomputed EDF cycle.
//!
//! What Envoy does (`round_robin_lb.h`, `EdfLoadBalancerBase` in `load_balancer_impl.cc`,
//! `edf_scheduler.h`):
//! - When all host weights are equal (or there is at most one host) no scheduler is built and
//!   a pick is `hosts[rr_index++ % hosts.size()]`, where `rr_index` starts at a random seed.
//! - Otherwise an earliest-deadline-first scheduler is built: every host starts with deadline
//!   `1 / weight`; a pick pops the earliest deadline (ties: earliest insertion first), sets the
//!   scheduler clock to it and re-inserts the host at `clock + 1 / weight`. Over any unit of
//!   scheduler time each host is therefore picked exactly `weight` times, smoothly interleaved.
//!   The scheduler is created with a random number of pre-picks (`createWithPicks(seed)`) so
//!   that workers do not all start on the same host.
//!
//! This port:
//! - Unweighted: the same `cursor % n`, with the cursor in one `AtomicU64` shared by all
//!   threads and starting at a random value.
//! - Weighted: the EDF scheduler is run once at build time with exact rational deadlines
//!   (`k / weight`, compared by cross-multiplication, so no floating-point drift) for one full
//!   cycle of `sum(weight / gcd)` picks; a pick is `schedule[cursor++ % len]`. Each cycle gives
//!   every host exactly `weight / gcd` picks in Envoy's EDF order from a fresh scheduler.
//!
//! Deviations (all by design):
//! - Envoy keeps one scheduler per worker thread; here all threads share one cursor, so the
//!   cluster-wide sequence is a single smooth WRR rather than one per worker. The long-run
//!   shares are the same.
//! - Ties between equal deadlines in *later* cycles: Envoy breaks them by insertion order,
//!   which can differ from the first cycle's; this port repeats the first cycle. Per-cycle
//!   counts are identical.
//! - Schedules are capped at `max(65536, 16 * hosts)` entries. When `sum(weight / gcd)` is
//!   larger (e.g. weights 1 and 1 000 000) the weights are scaled down proportionally (each
//!   kept >= 1) before the cycle is built, so shares can be off by the rounding of the scaled
//!   weights (< 0.001 for two hosts at the cap). Envoy's EDF has no such cap.
//! - Slow start (`slow_start_config`) is not implemented.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{weight_of, weights_are_equal, LbContext, LbHost, LoadBalancer};

/// Minimum cap on the length of a precomputed weighted schedule.
const MIN_SCHEDULE_CAP: u64 = 1 << 16;
/// Per-host allowance on the length of a precomputed weighted schedule.
const SCHEDULE_ENTRIES_PER_HOST: u64 = 16;

/// Weighted round robin balancer (see the module docs).
#[derive(Debug)]
pub struct RoundRobinLb {
    hosts: usize,
    /// One EDF cycle of host indices; empty when weights are equal (plain rotation).
    schedule: Vec<u32>,
    cursor: AtomicU64,
}

impl RoundRobinLb {
    /// Builds the balancer; the rotation starts at a random point, as Envoy's does.
    pub fn new(hosts: &[LbHost]) -> Self {
        let schedule = if hosts.len() <= 1 || weights_are_equal(hosts) { Vec::new() } else { edf_cycle(hosts) };
        RoundRobinLb { hosts: hosts.len(), schedule, cursor: AtomicU64::new(rand::random()) }
    }

    /// Length of the precomputed weighted cycle (0 when unweighted).
    pub fn schedule_len(&self) -> usize {
        self.schedule.len()
    }
}

impl LoadBalancer for RoundRobinLb {
    fn pick(&self, _ctx: &LbContext, _active: &dyn Fn(usize) -> u64) -> Option<usize> {
        if self.hosts == 0 {
            return None;
        }
        let c = self.cursor.fetch_add(1, Ordering::Relaxed);
        if self.schedule.is_empty() {
            return Some((c % self.hosts as u64) as usize);
        }
        let slot = (c % self.schedule.len() as u64) as usize;
        self.schedule.get(slot).map(|&i| i as usize)
    }
}

/// One EDF entry: deadline `num / weight`, ties broken by insertion `order`.
#[derive(Debug, PartialEq, Eq)]
struct EdfEntry {
    num: u64,
    weight: u64,
    order: u64,
    host: u32,
}

impl Ord for EdfEntry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // BinaryHeap pops the greatest, so the earliest deadline (then the oldest insertion)
        // must compare greatest: compare the other way round.
        let mine = u128::from(self.num) * u128::from(other.weight);
        let theirs = u128::from(other.num) * u128::from(self.weight);
        theirs.cmp(&mine).then_with(|| other.order.cmp(&self.order))
    }
}

impl PartialOrd for EdfEntry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Weights divided by their gcd and, if their sum exceeds the schedule cap, scaled down.
fn cycle_weights(hosts: &[LbHost]) -> Vec<u64> {
    let weights: Vec<u64> = hosts.iter().map(weight_of).collect();
    let g = weights.iter().fold(0, |a, &b| gcd(a, b)).max(1);
    let mut weights: Vec<u64> = weights.iter().map(|w| w / g).collect();
    let total: u64 = weights.iter().sum();
    let cap = MIN_SCHEDULE_CAP.max(SCHEDULE_ENTRIES_PER_HOST.saturating_mul(hosts.len() as u64));
    if total > cap {
        let (total, cap) = (u128::from(total), u128::from(cap));
        for w in &mut weights {
            let scaled = (u128::from(*w) * cap + total / 2) / total;
            *w = u64::try_from(scaled).unwrap_or(u64::MAX).max(1);
        }
        let g = weights.iter().fold(0, |a, &b| gcd(a, b)).max(1);
        for w in &mut weights {
            *w /= g;
        }
    }
    weights
}

/// One full cycle of Envoy's EDF scheduler from a fresh start, with exact deadlines.
///
/// Also the proposal sequence of the weighted least-request balancer.
pub(super) fn edf_cycle(hosts: &[LbHost]) -> Vec<u32> {
    let weights = cycle_weights(hosts);
    let len: u64 = weights.iter().sum();
    let mut heap: BinaryHeap<EdfEntry> = BinaryHeap::with_capacity(weights.len());
    let mut order = 0u64;
    for (host, &weight) in weights.iter().enumerate() {
        heap.push(EdfEntry { num: 1, weight, order, host: host as u32 });
        order += 1;
    }
    let mut schedule = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for _ in 0..len {
        let Some(top) = heap.pop() else { break };
        schedule.push(top.host);
        heap.push(EdfEntry { num: top.num + 1, order, ..top });
        order += 1;
    }
    schedule
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_shares, counts, hosts};
    use super::*;

    /// Envoy's floating-point `EdfScheduler` (fresh, no pre-picks), for comparison.
    fn envoy_float_edf(weights: &[u32], picks: usize) -> Vec<usize> {
        let mut clock = 0.0f64;
        let mut order = 0u64;
        // (deadline, order, host)
        let mut q: Vec<(f64, u64, usize)> = Vec::new();
        for (i, &w) in weights.iter().enumerate() {
            q.push((clock + 1.0 / f64::from(w), order, i));
            order += 1;
        }
        let mut out = Vec::new();
        for _ in 0..picks {
            let (pos, _) = q
                .iter()
                .enumerate()
                .min_by(|a, b| a.1 .0.partial_cmp(&b.1 .0).expect("finite").then(a.1 .1.cmp(&b.1 .1)))
                .expect("non-empty");
            let (deadline, _, host) = q.swap_remove(pos);
            clock = deadline;
            out.push(host);
            q.push((clock + 1.0 / f64::from(weights[host]), order, host));
            order += 1;
        }
        out
    }

    #[test]
    fn round_robin_honours_weights_exactly_over_a_cycle() {
        let hs = hosts(&[1, 2, 3]);
        let lb = RoundRobinLb::new(&hs);
        assert_eq!(lb.schedule_len(), 6);
        // Any 6 consecutive picks, wherever the random start is, are exactly 1:2:3.
        for _ in 0..1000 {
            let c = counts(&lb, 3, 6, |_| None);
            assert_eq!(c, [1, 2, 3]);
        }
        let c = counts(&lb, 3, 60_000, |_| None);
        assert_eq!(c, [10_000, 20_000, 30_000]);
    }

    #[test]
    fn round_robin_cycle_is_envoy_edf_order() {
        // Hand-computed: deadlines h2 1/3, h1 1/2, h2 2/3, then three ties at 1 broken by
        // insertion order (h0 at t=0, h1 at t=1/2, h2 at t=2/3).
        assert_eq!(edf_cycle(&hosts(&[1, 2, 3])), [2, 1, 2, 0, 1, 2]);
        // Where Envoy's float deadlines are exact (dyadic steps, or ties that do not drift)
        // the order is identical; elsewhere float drift may swap near-ties (e.g. weight 7's
        // seventh deadline sums to 0.9999999999999998 < 1), but each cycle's counts agree.
        let cases: [(&[u32], bool); 6] = [
            (&[1, 2, 3], true),
            (&[1, 1, 4], true),
            (&[2, 3], true),
            (&[1, 2, 4, 8], true),
            (&[5, 3, 2, 7], false),
            (&[3, 9, 27], false),
        ];
        for (weights, same_order) in cases {
            let cycle = edf_cycle(&hosts(weights));
            let g = weights.iter().fold(0u64, |a, &b| gcd(a, u64::from(b)));
            let reduced: Vec<u32> = weights.iter().map(|&w| (u64::from(w) / g) as u32).collect();
            let len: usize = reduced.iter().map(|&w| w as usize).sum();
            let want = envoy_float_edf(&reduced, len);
            let got: Vec<usize> = cycle.iter().map(|&i| i as usize).collect();
            if same_order {
                assert_eq!(got, want, "weights {weights:?}");
            }
            for (h, &w) in reduced.iter().enumerate() {
                assert_eq!(got.iter().filter(|&&x| x == h).count(), w as usize);
                assert_eq!(want.iter().filter(|&&x| x == h).count(), w as usize);
            }
        }
    }

    #[test]
    fn round_robin_interleaves_rather_than_bursts() {
        // EDF spreads the heavy host: with 1:4 the light host never waits more than 4 picks,
        // and the cycle never has two light picks in a row.
        let cycle = edf_cycle(&hosts(&[1, 4]));
        assert_eq!(cycle.len(), 5);
        assert_eq!(cycle.iter().filter(|&&h| h == 0).count(), 1);
        let cycle = edf_cycle(&hosts(&[2, 3]));
        assert_eq!(cycle, [1, 0, 1, 0, 1]);
    }

    #[test]
    fn round_robin_unweighted_rotates_in_host_order() {
        let lb = RoundRobinLb::new(&hosts(&[7, 7, 7, 7]));
        assert_eq!(lb.schedule_len(), 0);
        let ctx = LbContext::default();
        let first = lb.pick(&ctx, &|_| 0).expect("host");
        for k in 1..20 {
            assert_eq!(lb.pick(&ctx, &|_| 0), Some((first + k) % 4));
        }
    }

    #[test]
    fn round_robin_reduces_weights_by_their_gcd() {
        let lb = RoundRobinLb::new(&hosts(&[100, 200, 300]));
        assert_eq!(lb.schedule_len(), 6);
        assert_eq!(counts(&lb, 3, 600, |_| None), [100, 200, 300]);
    }

    #[test]
    fn round_robin_caps_huge_weight_ratios() {
        let hs = hosts(&[1_000_000, 1, 999_999]);
        let lb = RoundRobinLb::new(&hs);
        assert!(lb.schedule_len() as u64 <= MIN_SCHEDULE_CAP + 3);
        let c = counts(&lb, 3, lb.schedule_len() * 3, |_| None);
        assert!(c[1] >= 3, "the light host keeps at least one slot per cycle");
        assert_shares(&c, &[1_000_000.0, 1.0, 999_999.0], 0.001);
    }
}
