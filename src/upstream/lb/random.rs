//! `RANDOM`: a uniformly random host, ignoring endpoint weights, exactly as Envoy.
//!
//! What Envoy does (`random_lb.cc`, `RandomLoadBalancer::peekOrChoose`): draw one 64-bit
//! random number and return `hosts_to_use[random % hosts_to_use.size()]`. Endpoint
//! `load_balancing_weight`s are **not** consulted (only locality weights can matter, through
//! `hostSourceToUse` with `locality_weighted_lb_config`, which is the cluster manager's job).
//!
//! This port: [`RandomLb::new`] (what [`super::build`] uses for `LbPolicy::Random`) draws
//! uniformly with `random_range`, which also removes Envoy's negligible modulo bias.
//!
//! Not Envoy: [`RandomLb::weighted`] draws with probability proportional to weight (exact
//! integer sampling over cumulative weights, O(log n)). It is offered for callers that want
//! weighted random on purpose; `build` never uses it.

use super::{CumulativeWeights, LbContext, LbHost, LoadBalancer};

/// Random balancer (see the module docs).
#[derive(Debug)]
pub struct RandomLb {
    hosts: usize,
    /// Present only for the (non-Envoy) weighted variant.
    weights: Option<CumulativeWeights>,
}

impl RandomLb {
    /// Envoy's `RANDOM`: uniform over hosts, weights ignored.
    pub fn new(hosts: &[LbHost]) -> Self {
        RandomLb { hosts: hosts.len(), weights: None }
    }

    /// Weighted random (probability proportional to weight). Not an Envoy policy.
    pub fn weighted(hosts: &[LbHost]) -> Self {
        RandomLb { hosts: hosts.len(), weights: Some(CumulativeWeights::new(hosts)) }
    }
}

impl LoadBalancer for RandomLb {
    fn pick(&self, _ctx: &LbContext, _active: &dyn Fn(usize) -> u64) -> Option<usize> {
        if self.hosts == 0 {
            return None;
        }
        let mut rng = rand::rng();
        match &self.weights {
            Some(w) => w.sample(&mut rng),
            None => Some(rand::Rng::random_range(&mut rng, 0..self.hosts)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_shares, counts, hosts};
    use super::super::{build, LbPolicy};
    use super::*;

    #[test]
    fn random_ignores_weights_like_envoy() {
        let lb = build(&LbPolicy::Random, &hosts(&[1, 2, 3]));
        let c = counts(lb.as_ref(), 3, 100_000, |_| None);
        assert_shares(&c, &[1.0, 1.0, 1.0], 0.01);
    }

    #[test]
    fn weighted_random_honours_weights() {
        let lb = RandomLb::weighted(&hosts(&[1, 2, 3]));
        let c = counts(&lb, 3, 100_000, |_| None);
        assert_shares(&c, &[1.0, 2.0, 3.0], 0.01);
    }

    #[test]
    fn random_ignores_the_request_hash() {
        // Same hash every time, still spread over all hosts.
        let lb = RandomLb::new(&hosts(&[1, 1, 1, 1]));
        let c = counts(&lb, 4, 40_000, |_| Some(42));
        assert_shares(&c, &[1.0; 4], 0.02);
    }
}
