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
    /// Unix seconds of the last successful exchange with the log (0: never).
    pub last_success_unix: AtomicU64,
    /// Entries stored as malformed since the process started, and when the last ones were (Unix seconds, 0: never).
    pub malformed: AtomicU64,
    pub last_malformed_unix: AtomicU64,
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
    pub fn add_malformed(&self, n: u64) {
        if n > 0 {
            self.malformed.fetch_add(n, Relaxed);
            self.last_malformed_unix
                .store(crate::store::unix_now().max(0) as u64, Relaxed);
        }
    }
    pub fn record_success(&self) {
        self.last_success_unix
            .store(crate::store::unix_now().max(0) as u64, Relaxed);
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

/// What the running process knows about itself, shared with the HTTP API and health checks.
#[derive(Debug)]
pub struct Registry {
    pub started_at: std::time::SystemTime,
    logs: std::sync::RwLock<BTreeMap<String, LogEntryStats>>,
    /// Where the HTTP API listens, once it does (`--listen 127.0.0.1:0` picks the port).
    pub api_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

/// One followed log in the registry.
#[derive(Clone, Debug)]
pub struct LogEntryStats {
    pub url: String,
    pub kind: &'static str,
    pub operator: String,
    pub description: String,
    pub stats: std::sync::Arc<LogStats>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            started_at: std::time::SystemTime::now(),
            logs: Default::default(),
            api_addr: Default::default(),
        }
    }
}

impl Registry {
    pub fn add_log(&self, entry: LogEntryStats) {
        self.logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.url.clone(), entry);
    }
    pub fn remove_log(&self, url: &str) {
        self.logs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(url);
    }
    /// The logs followed now, by URL.
    pub fn logs(&self) -> Vec<LogEntryStats> {
        self.logs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
