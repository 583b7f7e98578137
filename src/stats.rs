//! In-memory counters per log, shared by the tailer (writer) and progress display / metrics (readers).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live figures of one log. Cheap to update from the hot path (atomics).
#[derive(Debug, Default)]
pub struct LogStats {
    pub head_size: AtomicU64,
    pub verified_size: AtomicU64,
    pub downloaded: AtomicU64,
    pub processed: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl LogStats {
    pub fn set_head(&self, n: u64) {
        self.head_size.store(n, Relaxed);
    }
    pub fn set_verified(&self, n: u64) {
        self.verified_size.store(n, Relaxed);
    }
    pub fn add_downloaded(&self, n: u64) {
        self.downloaded.fetch_add(n, Relaxed);
    }
    pub fn add_processed(&self, n: u64) {
        self.processed.fetch_add(n, Relaxed);
    }
    pub fn record_error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
    /// Errors so far, by kind.
    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Entries between the verified position and the head.
    pub fn backlog(&self) -> u64 {
        self.head_size
            .load(Relaxed)
            .saturating_sub(self.verified_size.load(Relaxed))
    }
}
