//! Statement latency: from the Query or Execute that started a statement to its
//! CommandComplete, matched in order (the server answers in order, also when the client
//! pipelines). Sync (and a Query's end) are markers, so what an error skipped is dropped at the
//! ReadyForQuery that ends that batch and never shifts the next batch's pairing.

use std::collections::VecDeque;
use std::time::Instant;

/// Most outstanding entries kept; past that timing is given up until the queue drains.
const MAX_OUTSTANDING: usize = 1024;

#[derive(Debug, Clone, Copy)]
enum Entry {
    Exec(Instant),
    Sync,
}

#[derive(Debug, Default)]
pub struct LatencyTracker {
    queue: VecDeque<Entry>,
    /// When the previous statement of the current batch completed (multi-statement Query).
    last: Option<Instant>,
    lost: bool,
}

impl LatencyTracker {
    /// A simple Query: one execution, then the batch ends.
    pub fn on_query(&mut self, now: Instant) {
        self.push(Entry::Exec(now));
        self.push(Entry::Sync);
    }

    pub fn on_execute(&mut self, now: Instant) {
        self.push(Entry::Exec(now));
    }

    pub fn on_sync(&mut self) {
        self.push(Entry::Sync);
    }

    fn push(&mut self, e: Entry) {
        if self.lost {
            return;
        }
        if self.queue.len() >= MAX_OUTSTANDING {
            self.queue.clear();
            self.lost = true;
            return;
        }
        self.queue.push_back(e);
    }

    /// A statement completed: its latency, when known.
    pub fn on_complete(&mut self, now: Instant) -> Option<std::time::Duration> {
        let start = match self.queue.front() {
            Some(Entry::Exec(t)) => {
                let t = *t;
                self.queue.pop_front();
                Some(t)
            }
            // More statements of the same Query: timed from the previous one's completion.
            _ => self.last,
        };
        self.last = Some(now);
        start.map(|s| now.saturating_duration_since(s))
    }

    /// An execution ended without a CommandComplete (EmptyQueryResponse, PortalSuspended).
    pub fn on_other_end(&mut self, now: Instant) {
        if let Some(Entry::Exec(_)) = self.queue.front() {
            self.queue.pop_front();
        }
        self.last = Some(now);
    }

    /// ReadyForQuery: the batch up to the first Sync marker is over.
    pub fn on_ready(&mut self) {
        while let Some(e) = self.queue.pop_front() {
            if matches!(e, Entry::Sync) {
                break;
            }
        }
        self.last = None;
        if self.lost && self.queue.is_empty() {
            self.lost = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pipelined_batches_pair_in_order_and_errors_do_not_shift_them() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut l = LatencyTracker::default();
        // Batch 1: Execute, Execute (the first fails, the second is skipped), Sync.
        l.on_execute(at(0));
        l.on_execute(at(1));
        l.on_sync();
        // Batch 2: Execute, Sync.
        l.on_execute(at(2));
        l.on_sync();
        // Error then ReadyForQuery for batch 1.
        l.on_ready();
        assert_eq!(l.on_complete(at(10)), Some(Duration::from_millis(8)));
        l.on_ready();
        // A multi-statement Query: the second statement is timed from the first's end.
        l.on_query(at(20));
        assert_eq!(l.on_complete(at(21)), Some(Duration::from_millis(1)));
        assert_eq!(l.on_complete(at(24)), Some(Duration::from_millis(3)));
        l.on_ready();
        assert!(l.queue.is_empty());
    }
}
