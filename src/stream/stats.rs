//! Live figures of the NATS stream, shared by the publisher (writer) and `/metrics`, `/health` (readers).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Window over which the published messages/s gauge is measured.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Publishing failing for this long (no acknowledgement since the first failure) is a `/health` warning.
pub const FAILING_WARNING_SECS: i64 = 30;

/// What the publisher did since the process started.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Set when a stream is configured.
    pub enabled: AtomicBool,
    /// Messages acknowledged by JetStream (duplicates included).
    pub published: AtomicU64,
    /// Of those, acknowledged as duplicates (a republished entry JetStream already had).
    pub duplicates: AtomicU64,
    /// Failed publish attempts (errors, missing or negative acknowledgements); each is retried.
    pub errors: AtomicU64,
    /// Batches committed and waiting for the publisher.
    pub queued_batches: AtomicU64,
    /// Microseconds tailers waited for room in the queue (backpressure).
    pub backpressure_us: AtomicU64,
    /// While publishing fails: since when (unix seconds) and the last error. Cleared by the next acknowledgement.
    failing: Mutex<Option<(i64, String)>>,
    rate: Mutex<Rate>,
}

#[derive(Debug, Default)]
struct Rate {
    window_start: Option<Instant>,
    count_at_start: u64,
    per_sec: f64,
}

impl StreamStats {
    /// A message was acknowledged.
    pub fn record_ack(&self, duplicate: bool) {
        let n = self.published.fetch_add(1, Relaxed) + 1;
        if duplicate {
            self.duplicates.fetch_add(1, Relaxed);
        }
        *self.failing.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut r = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match r.window_start {
            Some(start) if now - start >= RATE_WINDOW => {
                r.per_sec = (n - r.count_at_start) as f64 / (now - start).as_secs_f64();
                r.window_start = Some(now);
                r.count_at_start = n;
            }
            Some(_) => {}
            None => {
                r.window_start = Some(now);
                r.count_at_start = n;
            }
        }
    }

    /// A publish attempt failed.
    pub fn record_error(&self, error: String) {
        self.errors.fetch_add(1, Relaxed);
        let mut f = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        let since = f
            .as_ref()
            .map_or_else(crate::store::unix_now, |(since, _)| *since);
        *f = Some((since, error));
    }

    /// Since when and why publishing fails, if it does.
    pub fn failing(&self) -> Option<(i64, String)> {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Messages acknowledged per second over the last complete window (0 when idle for two windows).
    pub fn per_sec(&self) -> f64 {
        let r = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        match r.window_start {
            Some(start) if start.elapsed() < 2 * RATE_WINDOW => r.per_sec,
            _ => 0.0,
        }
    }

    pub fn add_backpressure(&self, waited: Duration) {
        self.backpressure_us
            .fetch_add(waited.as_micros() as u64, Relaxed);
    }

    /// The `/health` warning while publishing has failed for more than [`FAILING_WARNING_SECS`].
    pub fn warning(&self, now: i64) -> Option<crate::health::rules::Problem> {
        let (since, error) = self.failing()?;
        (now - since > FAILING_WARNING_SECS).then(|| crate::health::rules::Problem {
            check: "stream_failing",
            subject: "nats".into(),
            message: format!(
                "publishing to NATS has failed for {} ({} failed attempts so far): {error}; tailers wait when \
                 the queue is full, nothing is dropped",
                crate::health::rules::human_secs(now - since),
                self.errors.load(Relaxed)
            ),
            since: Some(since),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_warns_after_the_threshold_and_an_ack_clears_it() {
        let s = StreamStats::default();
        assert!(s.warning(crate::store::unix_now()).is_none());
        s.record_error("timed out".into());
        let now = crate::store::unix_now();
        assert!(s.warning(now).is_none(), "not yet past the threshold");
        let w = s.warning(now + FAILING_WARNING_SECS + 1).unwrap();
        assert_eq!(w.check, "stream_failing");
        assert!(w.message.contains("timed out"), "{}", w.message);
        s.record_ack(false);
        assert!(s.warning(now + 3600).is_none());
        assert_eq!(s.errors.load(Relaxed), 1);
        assert_eq!(s.published.load(Relaxed), 1);
    }
}
