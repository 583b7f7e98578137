//! What one log's HTTP exchanges looked like: requests, push-back (429, 5xx, timeouts), retries and bytes.
//! Written by the [`super::http::Fetcher`] of the log, read by the tailer (to adapt its concurrency) and by
//! `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one log's HTTP traffic since the process started (atomics: cheap from every request).
#[derive(Debug, Default)]
pub struct FetchCounters {
    pub requests: AtomicU64,
    /// 429 Too Many Requests answers.
    pub rate_limited: AtomicU64,
    /// 5xx answers.
    pub server_errors: AtomicU64,
    /// Requests that failed without an HTTP answer (timeouts, connection errors).
    pub transport_errors: AtomicU64,
    /// Attempts that were retries of a failed one.
    pub retries: AtomicU64,
    /// Response body bytes received (after content decoding).
    pub bytes: AtomicU64,
}

impl FetchCounters {
    /// Push-back events so far (429 + 5xx + transport errors): when this moves during a request, the log (or the
    /// path to it) is saturated.
    pub fn congestion(&self) -> u64 {
        self.rate_limited.load(Relaxed)
            + self.server_errors.load(Relaxed)
            + self.transport_errors.load(Relaxed)
    }

    pub(crate) fn count_status(&self, status: u16) {
        if status == 429 {
            self.rate_limited.fetch_add(1, Relaxed);
        } else if status >= 500 {
            self.server_errors.fetch_add(1, Relaxed);
        }
    }
}
