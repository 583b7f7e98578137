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

/// Push-back answers (429, 5xx, transport errors): totals, or the difference between two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushback {
    pub rate_limited: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
}

impl Pushback {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &Pushback) -> Pushback {
        Pushback {
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            server_errors: self.server_errors.saturating_sub(earlier.server_errors),
            transport_errors: self
                .transport_errors
                .saturating_sub(earlier.transport_errors),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Pushback::default()
    }
}

impl FetchCounters {
    /// Push-back answers so far: when they move, the log (or the path to it) may be saturated.
    pub fn pushback(&self) -> Pushback {
        Pushback {
            rate_limited: self.rate_limited.load(Relaxed),
            server_errors: self.server_errors.load(Relaxed),
            transport_errors: self.transport_errors.load(Relaxed),
        }
    }

    pub(crate) fn count_status(&self, status: u16) {
        if status == 429 {
            self.rate_limited.fetch_add(1, Relaxed);
        } else if status >= 500 {
            self.server_errors.fetch_add(1, Relaxed);
        }
    }
}
