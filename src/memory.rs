//! Allocator statistics for `server.memory_*` and `/memory`, from jemalloc (Legate's global
//! allocator) — the counterparts of the tcmalloc figures Envoy reports.

/// A snapshot of the allocator's counters, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Bytes the application has allocated and not freed (`stats.allocated`).
    pub allocated: u64,
    /// Bytes the allocator has mapped from the OS (`stats.mapped`).
    pub heap_size: u64,
    /// Bytes in physically resident pages (`stats.resident`).
    pub physical_size: u64,
    /// Bytes in active pages (`stats.active`).
    pub active: u64,
}

/// Reads the allocator's current statistics (refreshing jemalloc's epoch first).
pub fn read() -> Memory {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    Memory {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        heap_size: stats::mapped::read().unwrap_or(0) as u64,
        physical_size: stats::resident::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
    }
}
