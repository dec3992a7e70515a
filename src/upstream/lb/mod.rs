//! Upstream load balancers that mirror Envoy's v3 `Cluster.lb_policy` choices.
//!
//! The cluster manager builds one [`LoadBalancer`] per host set with [`build`] (and rebuilds it
//! whenever the host set changes), then calls [`LoadBalancer::pick`] for every request or
//! connection. Picks are lock-free, never block and never allocate (the per-thread random number
//! generator of `rand::rng()` allocates once per thread, on that thread's first pick).
//!
//! One file per policy, each documenting what Envoy does and where this port differs:
//!
//! | `lb_policy` | file | Envoy source it mirrors |
//! |---|---|---|
//! | `ROUND_ROBIN` | [`round_robin`] | `round_robin_lb.h`, `EdfLoadBalancerBase`, `edf_scheduler.h` |
//! | `LEAST_REQUEST` | [`least_request`] | `least_request_lb.{h,cc}`, `EdfLoadBalancerBase` |
//! | `RANDOM` | [`random`] | `random_lb.cc` |
//! | `RING_HASH` | [`ring_hash`] | `ring_hash_lb.{h,cc}`, `thread_aware_lb_impl.cc` |
//! | `MAGLEV` | [`maglev`] | `maglev_lb.{h,cc}`, `thread_aware_lb_impl.cc` |
//!
//! What is deliberately *not* here (the cluster manager's job): priorities, health/panic
//! filtering, locality weighting, zone-aware routing, slow start, subsets, retry host
//! predicates (`attempt > 0`), and `hash_balance_factor` (bounded loads). The cluster manager
//! passes only the hosts that should receive traffic.
//!
//! Host keys: Envoy's hashing policies hash a host by `host->address()->asString()`, i.e.
//! `"10.0.0.1:80"` for IPv4 and `"[::1]:80"` for IPv6 (unless the endpoint's
//! `envoy.lb` metadata sets `hash_key`, or `use_hostname_for_hashing` is on, in which case that
//! string is used instead). [`LbHost::key`] must carry that same string for the ring and the
//! Maglev table to match Envoy's byte for byte.

pub mod least_request;
pub mod maglev;
pub mod random;
pub mod ring_hash;
pub mod round_robin;

pub use maglev::{is_prime, next_prime};

/// Envoy's default `least_request_lb_config.choice_count`.
pub const DEFAULT_CHOICE_COUNT: u32 = 2;
/// Envoy's default `least_request_lb_config.active_request_bias`.
pub const DEFAULT_ACTIVE_REQUEST_BIAS: f64 = 1.0;
/// Envoy's default `ring_hash_lb_config.minimum_ring_size`.
pub const DEFAULT_MIN_RING_SIZE: u64 = 1024;
/// Envoy's default `ring_hash_lb_config.maximum_ring_size` (8M); also the largest value the
/// proto validation accepts for either ring size.
pub const DEFAULT_MAX_RING_SIZE: u64 = 1024 * 1024 * 8;
/// Envoy's default `maglev_lb_config.table_size` (a prime, the paper's recommendation).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65537;
/// The largest `maglev_lb_config.table_size` Envoy's proto validation accepts (a prime).
pub const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;

/// Host indices are stored as `u32` in schedules, rings and tables; hosts beyond this many are
/// ignored (never reached in practice).
const MAX_HOSTS: usize = u32::MAX as usize - 1;

/// One upstream host as the load balancer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbHost {
    /// `load_balancing_weight`, at least 1 (Envoy rejects 0 at config time; 0 is treated as 1).
    pub weight: u32,
    /// The hash key: `"ip:port"` (`"[v6]:port"`), as Envoy's `address()->asString()`.
    pub key: String,
}

/// Per-pick request context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbContext {
    /// Hash of the request (e.g. [`hash_bytes`] of the source IP); `None` when no hash policy
    /// produced one. Only the ring hash and Maglev balancers look at it.
    pub hash: Option<u64>,
}

/// The configured `lb_policy` with its policy-specific config (defaults are the `DEFAULT_*`
/// constants of this module).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LbPolicy {
    /// `ROUND_ROBIN` (Envoy's default `lb_policy`).
    #[default]
    RoundRobin,
    /// `LEAST_REQUEST` with `least_request_lb_config`.
    LeastRequest {
        /// Number of random choices when all weights are equal (Envoy requires >= 2).
        choice_count: u32,
        /// Exponent applied to `active_requests + 1` when weights differ (Envoy: 1.0).
        active_request_bias: f64,
    },
    /// `RANDOM`.
    Random,
    /// `RING_HASH` with `ring_hash_lb_config` (xxHash only).
    RingHash {
        /// `minimum_ring_size` (Envoy: 1024).
        minimum_ring_size: u64,
        /// `maximum_ring_size` (Envoy: 8M).
        maximum_ring_size: u64,
    },
    /// `MAGLEV` with `maglev_lb_config`.
    Maglev {
        /// `table_size` (Envoy: 65537; must be prime).
        table_size: u64,
    },
}

/// A built load balancer over a fixed host slice.
pub trait LoadBalancer: Send + Sync {
    /// Index into the host slice given at build time, or None when there are no hosts.
    /// `active` returns the current active-request count of host i (for least request).
    fn pick(&self, ctx: &LbContext, active: &dyn Fn(usize) -> u64) -> Option<usize>;
}

/// Builds the balancer for `policy` over `hosts`; rebuild whenever the host set changes.
///
/// Never fails: out-of-range settings that Envoy rejects at config time (non-prime Maglev
/// table size, `minimum_ring_size > maximum_ring_size`, `choice_count < 2`) are coerced to a
/// working value as each policy's docs describe; the config validator is expected to reject
/// them first, as Envoy does (see [`is_prime`]).
pub fn build(policy: &LbPolicy, hosts: &[LbHost]) -> Box<dyn LoadBalancer> {
    let hosts = &hosts[..hosts.len().min(MAX_HOSTS)];
    match *policy {
        LbPolicy::RoundRobin => Box::new(round_robin::RoundRobinLb::new(hosts)),
        LbPolicy::LeastRequest { choice_count, active_request_bias } => {
            Box::new(least_request::LeastRequestLb::new(hosts, choice_count, active_request_bias))
        }
        LbPolicy::Random => Box::new(random::RandomLb::new(hosts)),
        LbPolicy::RingHash { minimum_ring_size, maximum_ring_size } => {
            Box::new(ring_hash::RingHashLb::new(hosts, minimum_ring_size, maximum_ring_size))
        }
        LbPolicy::Maglev { table_size } => Box::new(maglev::MaglevLb::new(hosts, table_size)),
    }
}

/// xxHash64 with seed 0, Envoy's `HashUtil::xxHash64`.
///
/// Envoy's `hash_policy: source_ip` (HTTP route, TCP proxy and UDP proxy alike) hashes
/// `downstream_addr->ip()->addressAsString()`: the bare IP without port or brackets, e.g.
/// `"10.1.2.3"` or `"2001:db8::1"`; [`hash_ip`] does exactly that.
pub fn hash_bytes(b: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(b, 0)
}

/// The `source_ip` hash: xxh64 of the IP's text form, formatted on the stack (no allocation
/// per connection).
pub fn hash_ip(ip: std::net::IpAddr) -> u64 {
    use std::io::Write;
    // The longest IPv6 text form is 45 bytes.
    let mut buf = [0u8; 48];
    let left = {
        let mut w = &mut buf[..];
        let _ = write!(w, "{ip}");
        w.len()
    };
    hash_bytes(&buf[..buf.len() - left])
}

/// A host's weight as used by every policy: at least 1.
fn weight_of(host: &LbHost) -> u64 {
    u64::from(host.weight.max(1))
}

/// True when every host has the same (effective) weight; Envoy's `hostWeightsAreEqual`.
fn weights_are_equal(hosts: &[LbHost]) -> bool {
    match hosts.first() {
        Some(first) => hosts.iter().all(|h| weight_of(h) == weight_of(first)),
        None => true,
    }
}

/// Cumulative weights for exact O(log n) weighted sampling: `cum[i]` is the sum of the weights
/// of hosts `0..=i`.
#[derive(Debug)]
struct CumulativeWeights {
    cum: Vec<u64>,
}

impl CumulativeWeights {
    fn new(hosts: &[LbHost]) -> Self {
        let mut total = 0u64;
        let cum = hosts
            .iter()
            .map(|h| {
                total += weight_of(h);
                total
            })
            .collect();
        CumulativeWeights { cum }
    }

    /// Sum of all weights (0 when there are no hosts).
    fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The host owning point `r` of `[0, total)`.
    fn index_of(&self, r: u64) -> usize {
        self.cum.partition_point(|&c| c <= r)
    }

    /// A host drawn with probability proportional to its weight, or None without hosts.
    fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        Some(self.index_of(rng.random_range(0..total)))
    }
}

#[cfg(test)]
mod test_util {
    use super::LbHost;

    /// Hosts `10.0.0.<i+1>:80` with the given weights.
    pub(super) fn hosts(weights: &[u32]) -> Vec<LbHost> {
        weights.iter().enumerate().map(|(i, &weight)| LbHost { weight, key: format!("10.0.0.{}:80", i + 1) }).collect()
    }

    /// Counts picks per host over `n` picks with all hosts idle.
    pub(super) fn counts(
        lb: &dyn super::LoadBalancer,
        hosts: usize,
        n: usize,
        hash: impl Fn(usize) -> Option<u64>,
    ) -> Vec<usize> {
        let mut c = vec![0usize; hosts];
        for i in 0..n {
            let ctx = super::LbContext { hash: hash(i) };
            let idx = lb.pick(&ctx, &|_| 0).expect("a host");
            c[idx] += 1;
        }
        c
    }

    /// Asserts that `counts` are proportional to `weights` within `tol` (absolute share).
    pub(super) fn assert_shares(counts: &[usize], weights: &[f64], tol: f64) {
        let total: usize = counts.iter().sum();
        let wsum: f64 = weights.iter().sum();
        for (i, (&c, &w)) in counts.iter().zip(weights).enumerate() {
            let share = c as f64 / total as f64;
            let want = w / wsum;
            assert!(
                (share - want).abs() <= tol,
                "host {i}: share {share:.4}, want {want:.4} +- {tol} (counts {counts:?})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_bytes_is_xxh64_seed_zero() {
        // Reference values of XXH64 with seed 0.
        assert_eq!(hash_bytes(b""), 0xef46_db37_51d8_e999);
        assert_eq!(hash_bytes(b"a"), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(hash_bytes(b"abc"), 0x44bc_2cf5_ad77_0999);
    }

    #[test]
    fn every_policy_returns_none_without_hosts() {
        let policies = [
            LbPolicy::RoundRobin,
            LbPolicy::LeastRequest {
                choice_count: DEFAULT_CHOICE_COUNT,
                active_request_bias: DEFAULT_ACTIVE_REQUEST_BIAS,
            },
            LbPolicy::Random,
            LbPolicy::RingHash { minimum_ring_size: DEFAULT_MIN_RING_SIZE, maximum_ring_size: DEFAULT_MAX_RING_SIZE },
            LbPolicy::Maglev { table_size: DEFAULT_MAGLEV_TABLE_SIZE },
        ];
        for p in &policies {
            let lb = build(p, &[]);
            assert_eq!(lb.pick(&LbContext::default(), &|_| 0), None, "{p:?}");
            assert_eq!(lb.pick(&LbContext { hash: Some(7) }, &|_| 0), None, "{p:?}");
        }
    }

    #[test]
    fn every_policy_picks_the_only_host() {
        let hosts = test_util::hosts(&[5]);
        let policies = [
            LbPolicy::RoundRobin,
            LbPolicy::LeastRequest { choice_count: 2, active_request_bias: 1.0 },
            LbPolicy::Random,
            LbPolicy::RingHash { minimum_ring_size: 1024, maximum_ring_size: DEFAULT_MAX_RING_SIZE },
            LbPolicy::Maglev { table_size: 65537 },
        ];
        for p in &policies {
            let lb = build(p, &hosts);
            for h in [None, Some(0), Some(u64::MAX), Some(12345)] {
                assert_eq!(lb.pick(&LbContext { hash: h }, &|_| 3), Some(0), "{p:?}");
            }
        }
    }

    #[test]
    fn load_balancers_are_shareable_across_threads() {
        let hosts = test_util::hosts(&[1, 2, 3]);
        let lb: std::sync::Arc<dyn LoadBalancer> = build(&LbPolicy::RoundRobin, &hosts).into();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let lb = lb.clone();
                std::thread::spawn(move || {
                    let mut c = [0usize; 3];
                    for _ in 0..600 {
                        if let Some(i) = lb.pick(&LbContext::default(), &|_| 0) {
                            c[i] += 1;
                        }
                    }
                    c
                })
            })
            .collect();
        let mut total = [0usize; 3];
        for h in handles {
            let c = h.join().expect("thread");
            for (t, x) in total.iter_mut().zip(c) {
                *t += x;
            }
        }
        // 2400 picks = 400 full cycles of 6, shared by the threads through one atomic cursor.
        assert_eq!(total, [400, 800, 1200]);
    }

    #[test]
    fn cumulative_weights_map_points_to_owners() {
        let cw = CumulativeWeights::new(&test_util::hosts(&[1, 2, 3]));
        assert_eq!(cw.total(), 6);
        let owners: Vec<usize> = (0..6).map(|r| cw.index_of(r)).collect();
        assert_eq!(owners, [0, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn zero_weight_counts_as_one() {
        let hosts = test_util::hosts(&[0, 1]);
        assert!(weights_are_equal(&hosts));
        assert_eq!(CumulativeWeights::new(&hosts).total(), 2);
    }
}

#[cfg(test)]
mod hash_ip_tests {
    use super::*;

    #[test]
    fn hash_ip_hashes_the_text_form_like_envoy() {
        for ip in ["10.1.2.3", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"] {
            let ip: std::net::IpAddr = ip.parse().expect("ip");
            assert_eq!(hash_ip(ip), hash_bytes(ip.to_string().as_bytes()), "{ip}");
        }
    }
}
