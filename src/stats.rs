//! In-memory counters per log, shared by the tailer (writer) and progress display / metrics (readers).

mod concurrency;
mod lag;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

pub use concurrency::Concurrency;
pub use lag::LagTracker;

use crate::ctlog::counters::FetchCounters;

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
    /// With a NATS stream: entries below this were published and acknowledged (set by the publisher).
    pub published_size: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Set while the log fails verification (root mismatch, bad signature, inconsistent head): since when (unix
    /// seconds) and the last error. Cleared by the next cycle that verifies.
    failing_verification: Mutex<Option<(i64, String)>>,
    /// The log's HTTP traffic (shared with its fetcher).
    pub fetch: Arc<FetchCounters>,
    /// Requests in flight allowed for this log (adapted by the tailer).
    pub concurrency: Mutex<Concurrency>,
    lag: Mutex<LagTracker>,
}

impl LogStats {
    pub fn set_head(&self, n: u64) {
        self.head_size.store(n, Relaxed);
    }
    pub fn set_verified(&self, n: u64) {
        self.verified_size.store(n, Relaxed);
        self.lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .verified(n);
    }
    /// A verified head: its size, and when the log signed it (unix ms), for the lag.
    pub fn observe_head(&self, size: u64, signed_ms: u64) {
        self.set_head(size);
        let now = unix_now_ms();
        self.lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .head(size, signed_ms, now);
    }
    /// Seconds since the oldest entry of the log we have not verified yet was published (0: caught up).
    pub fn lag_secs(&self) -> f64 {
        let now = unix_now_ms();
        self.lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lag_secs(now)
    }
    /// Requests in flight allowed now.
    pub fn concurrency_limit(&self) -> usize {
        self.concurrency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .limit()
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
    /// The log failed verification (keeps the time of the first failure in a row).
    pub fn set_failing_verification(&self, error: String) {
        let mut f = self
            .failing_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let since = f
            .as_ref()
            .map_or_else(crate::store::unix_now, |(since, _)| *since);
        *f = Some((since, error));
    }
    /// A cycle verified again.
    pub fn clear_failing_verification(&self) {
        *self
            .failing_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
    /// Since when and why the log fails verification, if it does.
    pub fn failing_verification(&self) -> Option<(i64, String)> {
        self.failing_verification
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    /// The verified live feed the tailers publish to and `/stream/...` clients read.
    pub feed: crate::feed::Feed,
    /// The watchlist file or directory (shown by the console's Watchlists page).
    pub watchlist_path: std::sync::OnceLock<std::path::PathBuf>,
    /// The NATS stream's figures (`enabled` is false without a stream).
    pub stream: Arc<crate::stream::StreamStats>,
    /// Log ownership of this instance (leases when several instances share a PostgreSQL database), set by `run`.
    pub lease: std::sync::OnceLock<Arc<crate::lease::LeaseStats>>,
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
            feed: Default::default(),
            watchlist_path: Default::default(),
            stream: Default::default(),
            lease: Default::default(),
        }
    }
}

impl Registry {
    /// A registry whose live feed lets each client be `feed`'s buffer behind.
    pub fn with_feed(feed: crate::feed::Feed) -> Registry {
        Registry {
            feed,
            ..Default::default()
        }
    }
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

fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
