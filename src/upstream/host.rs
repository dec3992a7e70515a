//! One upstream endpoint and its per-host counters (shown only by `/clusters`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-host counters, in the names `/clusters` prints.
#[derive(Default, Debug)]
pub struct HostStats {
    pub cx_total: AtomicU64,
    pub cx_active: AtomicU64,
    pub cx_connect_fail: AtomicU64,
    pub rq_total: AtomicU64,
    pub rq_active: AtomicU64,
    pub rq_error: AtomicU64,
    pub rq_success: AtomicU64,
    pub rq_timeout: AtomicU64,
}

impl HostStats {
    /// `(name, value)` pairs sorted by name, as `/clusters` lists them.
    pub fn pairs(&self) -> [(&'static str, u64); 8] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("cx_active", g(&self.cx_active)),
            ("cx_connect_fail", g(&self.cx_connect_fail)),
            ("cx_total", g(&self.cx_total)),
            ("rq_active", g(&self.rq_active)),
            ("rq_error", g(&self.rq_error)),
            ("rq_success", g(&self.rq_success)),
            ("rq_timeout", g(&self.rq_timeout)),
            ("rq_total", g(&self.rq_total)),
        ]
    }

    /// Which of the pairs are counters (the rest are gauges), for `/clusters?format=json`.
    pub fn is_gauge(name: &str) -> bool {
        name.ends_with("_active")
    }
}

/// Where a host sits in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
}

#[derive(Debug)]
pub struct Host {
    pub address: SocketAddr,
    pub hostname: String,
    pub weight: u32,
    pub priority: u32,
    pub locality: Locality,
    pub stats: HostStats,
}

impl Host {
    pub fn new(address: SocketAddr, hostname: String, weight: u32, priority: u32, locality: Locality) -> Host {
        Host { address, hostname, weight, priority, locality, stats: HostStats::default() }
    }

    pub fn active_requests(&self) -> u64 {
        self.stats.rq_active.load(Ordering::Relaxed)
    }
}
