//! `RING_HASH`: Envoy's ketama-style consistent hash ring, built byte-for-byte the same way.
//!
//! What Envoy does (`ring_hash_lb.cc`, `RingHashLoadBalancer::Ring::Ring` and `chooseHost`;
//! weights normalised in `thread_aware_lb_impl.cc`):
//! - Weights are normalised to sum to 1 (`weight / sum`, in `double`); `min_w` is the smallest.
//! - `scale = min(ceil(min_w * minimum_ring_size) / min_w, maximum_ring_size)` so the lightest
//!   host gets a whole number of entries; the ring has `ceil(scale)` entries (the `size` gauge).
//! - Hosts are walked in host-set order with running sums `target += scale * w` and
//!   `current` (+1 per entry): while `current < target`, host entry `i` (0, 1, 2, ...) is
//!   hashed as the bytes `"<key>_<i>"` (key = `address()->asString()`, e.g. `10.0.0.1:80_0`)
//!   with `HashUtil::xxHash64`, i.e. XXH64 seed 0 (the default `hash_function: XX_HASH`).
//! - The ring is sorted by hash. Lookup (ported ketama binary search) returns the first entry
//!   whose hash is `>=` the request hash, wrapping to entry 0 past the end.
//! - Without a request hash (`computeHashKey()` empty) the "hash" is `random()`, so the ring
//!   degenerates to weighted random.
//! - Config validation: `minimum_ring_size > maximum_ring_size` throws; both are `<= 8M`.
//!
//! This port does all of the above with the same floating-point steps, so for the same host
//! keys, weights and order the ring (and every lookup) matches Envoy's. The lookup uses
//! `partition_point` (lower bound), which returns the same entry as Envoy's ketama search
//! (checked in the tests against a port of it).
//!
//! Consequence worth knowing (Envoy's, not this port's): the number of entries per host depends
//! on the host count (3 equal hosts get 342 each with the default 1024 minimum, 4 get 256), so
//! adding a host also drops some entries of the existing hosts and a few keys move between old
//! hosts. The tests pin how much.
//!
//! Deviations:
//! - `hash_function: MURMUR_HASH_2`, `use_hostname_for_hashing`, `hash_balance_factor` and
//!   retry attempts are not implemented (the caller can put a hostname or `hash_key` in
//!   [`LbHost::key`]).
//! - Out-of-range sizes that Envoy rejects at config time are coerced instead of failing:
//!   both sizes are clamped to `1..=8M`, and `minimum > maximum` uses `maximum` for both.

use std::fmt::Write as _;

use super::{hash_bytes, weight_of, LbContext, LbHost, LoadBalancer, DEFAULT_MAX_RING_SIZE};

/// Ring statistics, Envoy's `ring_hash_lb.{size,min_hashes_per_host,max_hashes_per_host}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingHashStats {
    /// `ceil(scale)`, the ring size Envoy reports.
    pub size: u64,
    /// Fewest entries any host got.
    pub min_hashes_per_host: u64,
    /// Most entries any host got.
    pub max_hashes_per_host: u64,
}

/// Ring hash balancer (see the module docs).
#[derive(Debug)]
pub struct RingHashLb {
    /// Sorted entry hashes.
    hashes: Vec<u64>,
    /// Host index of each entry, parallel to `hashes`.
    owners: Vec<u32>,
    stats: RingHashStats,
}

impl RingHashLb {
    /// Builds the ring (see the module docs for how out-of-range sizes are coerced).
    pub fn new(hosts: &[LbHost], minimum_ring_size: u64, maximum_ring_size: u64) -> Self {
        let max_ring = maximum_ring_size.clamp(1, DEFAULT_MAX_RING_SIZE);
        let min_ring = minimum_ring_size.clamp(1, DEFAULT_MAX_RING_SIZE).min(max_ring);
        if hosts.is_empty() {
            return RingHashLb { hashes: Vec::new(), owners: Vec::new(), stats: RingHashStats::default() };
        }

        let sum: u64 = hosts.iter().map(weight_of).sum();
        let normalized: Vec<f64> = hosts.iter().map(|h| weight_of(h) as f64 * 1.0 / sum as f64).collect();
        let min_w = normalized.iter().copied().fold(1.0f64, f64::min);
        let scale = f64::min((min_w * min_ring as f64).ceil() / min_w, max_ring as f64);
        let ring_size = scale.ceil() as u64;

        let mut ring: Vec<(u64, u32)> = Vec::with_capacity(usize::try_from(ring_size).unwrap_or(0));
        let mut key_buf = String::new();
        let mut current = 0.0f64;
        let mut target = 0.0f64;
        let mut min_per_host = ring_size;
        let mut max_per_host = 0u64;
        for (idx, (host, w)) in hosts.iter().zip(&normalized).enumerate() {
            key_buf.clear();
            key_buf.push_str(&host.key);
            key_buf.push('_');
            let prefix = key_buf.len();
            target += scale * w;
            let mut i = 0u64;
            while current < target {
                key_buf.truncate(prefix);
                // Writing to a String cannot fail.
                let _ = write!(key_buf, "{i}");
                ring.push((hash_bytes(key_buf.as_bytes()), idx as u32));
                i += 1;
                current += 1.0;
            }
            min_per_host = min_per_host.min(i);
            max_per_host = max_per_host.max(i);
        }
        ring.sort_unstable();

        let (hashes, owners) = ring.into_iter().unzip();
        RingHashLb {
            hashes,
            owners,
            stats: RingHashStats {
                size: ring_size,
                min_hashes_per_host: min_per_host,
                max_hashes_per_host: max_per_host,
            },
        }
    }

    /// The ring's gauges.
    pub fn stats(&self) -> RingHashStats {
        self.stats
    }

    /// Number of entries actually on the ring.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when the ring has no entries (no hosts).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The host owning request hash `h`: first entry with hash `>= h`, wrapping.
    fn lookup(&self, h: u64) -> Option<usize> {
        if self.hashes.is_empty() {
            return None;
        }
        let mut pos = self.hashes.partition_point(|&x| x < h);
        if pos == self.hashes.len() {
            pos = 0;
        }
        self.owners.get(pos).map(|&o| o as usize)
    }
}

impl LoadBalancer for RingHashLb {
    fn pick(&self, ctx: &LbContext, _active: &dyn Fn(usize) -> u64) -> Option<usize> {
        let h = ctx.hash.unwrap_or_else(rand::random);
        self.lookup(h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_shares, counts, hosts};
    use super::super::DEFAULT_MIN_RING_SIZE;
    use super::*;

    fn ring(weights: &[u32]) -> RingHashLb {
        RingHashLb::new(&hosts(weights), DEFAULT_MIN_RING_SIZE, DEFAULT_MAX_RING_SIZE)
    }

    /// Envoy's ketama binary search, ported literally (signed indices included).
    fn ketama(ring: &[u64], h: u64) -> usize {
        let mut lowp: i64 = 0;
        let mut highp: i64 = ring.len() as i64;
        loop {
            let midp = (lowp + highp) / 2;
            if midp == ring.len() as i64 {
                return 0;
            }
            let midval = ring[midp as usize];
            let midval1 = if midp == 0 { 0 } else { ring[midp as usize - 1] };
            if h <= midval && h > midval1 {
                return midp as usize;
            }
            if midval < h {
                lowp = midp + 1;
            } else {
                highp = midp - 1;
            }
            if lowp > highp {
                return 0;
            }
        }
    }

    fn keys(n: usize) -> Vec<u64> {
        (0..n).map(|i| hash_bytes(format!("198.51.{}.{}", i / 256, i % 256).as_bytes())).collect()
    }

    #[test]
    fn ring_entries_are_xxhash_of_key_underscore_index() {
        let lb = RingHashLb::new(&hosts(&[1]), 4, 4);
        let mut want: Vec<u64> =
            (0..4).map(|i| xxhash_rust::xxh64::xxh64(format!("10.0.0.1:80_{i}").as_bytes(), 0)).collect();
        want.sort_unstable();
        assert_eq!(lb.hashes, want);
    }

    #[test]
    fn ring_hash_is_deterministic_for_a_given_hash() {
        let a = ring(&[1, 1, 1]);
        let b = ring(&[1, 1, 1]);
        for h in keys(2000) {
            let ctx = LbContext { hash: Some(h) };
            let first = a.pick(&ctx, &|_| 0);
            assert!(first.is_some());
            assert_eq!(first, a.pick(&ctx, &|_| 0));
            assert_eq!(first, b.pick(&ctx, &|_| 0));
        }
    }

    #[test]
    fn ring_lookup_matches_envoy_ketama_search() {
        let lb = ring(&[1, 2, 3, 1]);
        let mut probes = keys(5000);
        probes.extend([0, 1, u64::MAX, lb.hashes[0], lb.hashes[lb.hashes.len() - 1]]);
        probes.extend(lb.hashes.iter().take(50).map(|h| h + 1));
        for h in probes {
            let want = lb.owners[ketama(&lb.hashes, h)] as usize;
            assert_eq!(lb.lookup(h), Some(want), "hash {h}");
        }
    }

    #[test]
    fn ring_lookup_wraps_past_the_last_entry() {
        let lb = ring(&[1, 1]);
        let last = *lb.hashes.last().expect("entries");
        assert!(last < u64::MAX);
        assert_eq!(lb.lookup(last + 1), Some(lb.owners[0] as usize));
        assert_eq!(lb.lookup(u64::MAX), Some(lb.owners[0] as usize));
        assert_eq!(lb.lookup(0), Some(lb.owners[0] as usize));
        assert_eq!(lb.lookup(last), Some(lb.owners[lb.len() - 1] as usize));
    }

    #[test]
    fn ring_sizes_respect_minimum_and_maximum() {
        // Equal weights: each host gets ceil(min / n).
        let lb = ring(&[1, 1, 1]);
        assert_eq!(lb.stats().size, 1026);
        assert_eq!(lb.len(), 1026);
        assert_eq!((lb.stats().min_hashes_per_host, lb.stats().max_hashes_per_host), (342, 342));
        let lb = ring(&[1, 1, 1, 1]);
        assert_eq!((lb.len(), lb.stats().min_hashes_per_host), (1024, 256));
        // Never below the minimum.
        for n in 1..=20 {
            let lb = ring(&vec![1; n]);
            assert!(lb.len() as u64 >= DEFAULT_MIN_RING_SIZE, "{n} hosts");
        }
        // The lightest host gets a whole number of entries, the ring grows past the minimum.
        let lb = ring(&[1, 1000]);
        assert_eq!(lb.stats().min_hashes_per_host, 2);
        assert_eq!(lb.len(), 2002);
        // ... but is capped by the maximum.
        // (Envoy's running float sums can add one entry past `size`: 1500/1001 + 1500*1000/1001
        // rounds above 1500, and Envoy reports `size` 1500 with 1501 entries too.)
        let lb = RingHashLb::new(&hosts(&[1, 1000]), 1024, 1500);
        assert_eq!(lb.stats().size, 1500);
        assert!((1500..=1501).contains(&lb.len()), "{}", lb.len());
        let lb = RingHashLb::new(&hosts(&[1, 1, 1]), 64, 32);
        assert_eq!(lb.stats().size, 32, "min > max uses max");
        assert!((32..=33).contains(&lb.len()), "{}", lb.len());
        // Out-of-range values are clamped to Envoy's 8M limit and to at least 1.
        let lb = RingHashLb::new(&hosts(&[1]), 0, 0);
        assert_eq!(lb.len(), 1);
        let lb = RingHashLb::new(&hosts(&[1, 1]), 16, u64::MAX);
        assert_eq!(lb.len(), 16);
    }

    #[test]
    fn ring_hash_scales_entries_by_weight() {
        let lb = ring(&[1, 2, 3]);
        // min weight 1/6: ceil(1024/6) = 171 entries for the lightest host.
        assert_eq!(lb.stats().min_hashes_per_host, 171);
        assert_eq!(lb.stats().max_hashes_per_host, 513);
        let mut per_host = [0usize; 3];
        for &o in &lb.owners {
            per_host[o as usize] += 1;
        }
        assert_eq!(per_host, [171, 342, 513]);
    }

    #[test]
    fn ring_hash_distribution_follows_weights() {
        // Hashed keys spread by arc length, which follows the entry counts; the ring is only
        // ~1k entries, so allow a few points of arc-length noise.
        let lb = ring(&[1, 2, 3]);
        let ks = keys(100_000);
        let c = counts(&lb, 3, ks.len(), |i| Some(ks[i]));
        assert_shares(&c, &[1.0, 2.0, 3.0], 0.03);
        // No hash: random points on the ring, same shares.
        let c = counts(&lb, 3, 100_000, |_| None);
        assert_shares(&c, &[1.0, 2.0, 3.0], 0.03);
    }

    #[test]
    fn ring_hash_adding_a_host_with_default_sizes_moves_a_bounded_share() {
        let ks = keys(10_000);
        let three = ring(&[1, 1, 1]);
        let four = ring(&[1, 1, 1, 1]);
        let ctx = |h| LbContext { hash: Some(h) };
        let mut moved = 0;
        let mut moved_to_new = 0;
        for &h in &ks {
            let before = three.pick(&ctx(h), &|_| 0);
            let after = four.pick(&ctx(h), &|_| 0);
            if before != after {
                moved += 1;
                if after == Some(3) {
                    moved_to_new += 1;
                }
            }
        }
        let share = moved as f64 / ks.len() as f64;
        // The new host takes its quarter, but Envoy also shrinks the old hosts from 342 to 256
        // entries each, so keys on dropped entries can move between old hosts too: about a
        // third of all keys move (35.8% here, 33-38% for other address sets), ~70% of them to
        // the new host. Bounded, but more than the ideal 1/4.
        assert!((0.20..=0.45).contains(&share), "moved {share}");
        assert!(moved_to_new as f64 >= 0.60 * moved as f64, "{moved_to_new}/{moved}");
        let new_share = moved_to_new as f64 / ks.len() as f64;
        assert!((0.20..=0.30).contains(&new_share), "new host got {new_share}");
    }

    #[test]
    fn ring_hash_with_fixed_entries_per_host_moves_keys_only_to_the_new_host() {
        // With the ring pinned to one entry per weight unit (min = max = total weight) every
        // old host keeps exactly its entries, so a key can only move to the new host.
        let ks = keys(10_000);
        let three = RingHashLb::new(&hosts(&[300, 300, 300]), 900, 900);
        let four = RingHashLb::new(&hosts(&[300, 300, 300, 300]), 1200, 1200);
        assert_eq!(three.stats().max_hashes_per_host, 300);
        assert_eq!(four.stats().max_hashes_per_host, 300);
        let mut moved = 0;
        for &h in &ks {
            let before = three.lookup(h);
            let after = four.lookup(h);
            if before != after {
                moved += 1;
                assert_eq!(after, Some(3), "a moved key must land on the new host");
            }
        }
        let share = moved as f64 / ks.len() as f64;
        assert!((0.15..=0.35).contains(&share), "moved {share}");
    }

    #[test]
    fn ring_hash_without_a_hash_picks_randomly() {
        let lb = ring(&[1, 1, 1, 1]);
        let c = counts(&lb, 4, 40_000, |_| None);
        assert!(c.iter().all(|&x| x > 5000), "{c:?}");
    }
}
