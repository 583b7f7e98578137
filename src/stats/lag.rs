//! How far behind a log we are, in seconds: the age of the oldest entry the log has published (in a head we saw)
//! that we have not verified yet. Pure: times are parameters (unix milliseconds).

use std::collections::VecDeque;

/// Heads seen but not yet fully verified: (tree size, unix ms it existed since).
#[derive(Debug, Default)]
pub struct LagTracker {
    pending: VecDeque<(u64, u64)>,
    verified: u64,
}

/// At most this many distinct heads are remembered (the oldest one is kept: it decides the lag).
const MAX_HEADS: usize = 64;

impl LagTracker {
    /// A verified head of `size` entries, signed at `signed_ms` and first seen at `now_ms`: its new entries have
    /// existed at least since the earlier of the two (a log's clock may run ahead; a restarted monitor sees a
    /// backlog that is older than the moment it looked).
    pub fn head(&mut self, size: u64, signed_ms: u64, now_ms: u64) {
        if size <= self.verified || self.pending.back().is_some_and(|&(s, _)| s >= size) {
            return;
        }
        if self.pending.len() >= MAX_HEADS {
            // Forget the second-oldest: the oldest keeps the lag honest, the newest keep it precise later.
            self.pending.remove(1);
        }
        self.pending.push_back((size, signed_ms.min(now_ms)));
    }

    /// Entries below `size` are verified.
    pub fn verified(&mut self, size: u64) {
        self.verified = self.verified.max(size);
        while self
            .pending
            .front()
            .is_some_and(|&(s, _)| s <= self.verified)
        {
            self.pending.pop_front();
        }
    }

    /// Seconds since the oldest unverified entry we know of was published (0 when caught up).
    pub fn lag_secs(&self, now_ms: u64) -> f64 {
        self.pending.front().map_or(0.0, |&(_, since)| {
            now_ms.saturating_sub(since) as f64 / 1000.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_unverified_head() {
        let mut t = LagTracker::default();
        assert_eq!(t.lag_secs(5_000), 0.0);
        t.head(100, 1_000, 1_500);
        t.head(200, 3_000, 3_100);
        assert_eq!(t.lag_secs(11_000), 10.0);
        t.verified(150);
        assert_eq!(
            t.lag_secs(11_000),
            8.0,
            "entry 150 came with the head seen at 3 s"
        );
        t.verified(100);
        t.verified(200);
        assert_eq!(t.lag_secs(11_000), 0.0, "caught up");
        t.head(150, 20_000, 20_000);
        assert_eq!(
            t.lag_secs(30_000),
            0.0,
            "an older head than verified changes nothing"
        );
    }

    #[test]
    fn partial_progress_moves_to_the_next_head() {
        let mut t = LagTracker::default();
        t.head(100, 1_000, 1_000);
        t.head(200, 2_000, 2_000);
        t.verified(100);
        assert_eq!(t.lag_secs(12_000), 10.0);
    }

    #[test]
    fn a_log_clock_ahead_of_ours_does_not_hide_lag() {
        let mut t = LagTracker::default();
        t.head(100, 99_000_000, 1_000);
        assert_eq!(t.lag_secs(31_000), 30.0);
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_head_kept() {
        let mut t = LagTracker::default();
        for i in 1..1000 {
            t.head(i, i * 1000, i * 1000);
        }
        assert!(t.pending.len() <= MAX_HEADS);
        assert_eq!(t.lag_secs(1_001_000), 1000.0);
    }
}
