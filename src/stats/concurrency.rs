//! How many requests one log gets in flight: additive increase while the log answers and more work is waiting
//! (latency is the bottleneck), multiplicative decrease when it pushes back (429, 5xx, timeouts). Pure: the
//! pipeline reports outcomes, the clock is a parameter.

use std::time::{Duration, Instant};

/// The AIMD window of one log.
#[derive(Clone, Debug)]
pub struct Concurrency {
    limit: f64,
    max: f64,
    /// Below this the window grows by one per success (doubling per round of requests: slow start); above it by
    /// one per window. Set to half the window at each push-back.
    threshold: f64,
    last_decrease: Option<Instant>,
    /// Smoothed time one range takes to download.
    latency: Option<Duration>,
    /// When the last 5xx that did not shrink the window arrived.
    lone_server_error: Option<Instant>,
}

/// The window keeps this share of itself at a push-back (0.5 would be classic AIMD; a log's random 5xx or a burst
/// of 429s at the start of a poll is not a reason to lose half the throughput of a slow log).
const DECREASE: f64 = 0.7;

/// After a decrease, further push-back within this time, or within one round trip if that is longer, counts as the
/// same congestion event (requests that were already in flight answer 429 too, and on a log answering in seconds
/// they keep reporting it for a whole round trip), so one burst shrinks the window once.
const DECREASE_HOLD: Duration = Duration::from_secs(2);

impl Concurrency {
    /// Start with `initial` requests in flight, never more than `max` (both at least 1).
    pub fn new(initial: usize, max: usize) -> Concurrency {
        let max = max.max(1) as f64;
        Concurrency {
            limit: (initial.max(1) as f64).min(max),
            max,
            threshold: max,
            last_decrease: None,
            latency: None,
            lone_server_error: None,
        }
    }

    /// Requests allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit.floor() as usize
    }

    pub fn max(&self) -> usize {
        self.max as usize
    }

    /// Change the bound (configuration or an advertised limit); the window shrinks with it if needed.
    pub fn set_max(&mut self, max: usize) {
        self.max = max.max(1) as f64;
        self.limit = self.limit.min(self.max);
    }

    /// A request succeeded without push-back. `waiting`: more requests were ready to go but held back by the
    /// window, so a bigger window would have helped. Until the first push-back the window doubles per round of
    /// requests (slow start: a slow log needs many requests in flight at once); after it, it grows by about one
    /// request per window of successes.
    pub fn on_success(&mut self, waiting: bool) {
        if waiting {
            let step = if self.limit < self.threshold {
                1.0
            } else {
                1.0 / self.limit
            };
            self.limit = (self.limit + step).min(self.max);
        }
    }

    /// The log pushed back (429, 5xx, timeout) during a request: shrink the window, once per congestion event.
    pub fn on_congestion(&mut self, now: Instant) {
        let hold = self.hold();
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < hold)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.limit = (self.limit * DECREASE).max(1.0);
        self.threshold = self.limit;
    }

    /// Push-back answered since the last call (see [`crate::ctlog::Pushback::since`]); returns whether it shrank
    /// the window. 429s and transport errors (timeouts, resets) are congestion. A 5xx is only when another one came
    /// within the same round trip: a lone 5xx, which the retry fixed, is noise that logs answer at any load (1 % of
    /// requests of a log answering in seconds would otherwise keep its window too small to keep up).
    pub fn on_pushback(&mut self, now: Instant, p: &crate::ctlog::Pushback) -> bool {
        if p.is_empty() {
            return false;
        }
        let burst = p.rate_limited > 0
            || p.transport_errors > 0
            || p.server_errors > 1
            || self
                .lone_server_error
                .is_some_and(|t| now.saturating_duration_since(t) < self.hold());
        if burst {
            self.on_congestion(now);
        } else {
            self.lone_server_error = Some(now);
        }
        burst
    }

    /// Push-back within this time of a decrease belongs to the same congestion event.
    fn hold(&self) -> Duration {
        self.latency.map_or(DECREASE_HOLD, |l| l.max(DECREASE_HOLD))
    }

    /// A range took `took` to download.
    pub fn on_latency(&mut self, took: Duration) {
        self.latency = Some(match self.latency {
            None => took,
            Some(avg) => avg.mul_f64(0.8) + took.mul_f64(0.2),
        });
    }

    /// Time between two launches: the window spread over half a round trip, so that a poll does not start with a
    /// burst of the whole window (which per-second rate limits answer with 429s).
    pub fn pace(&self) -> Duration {
        self.latency
            .map_or(Duration::ZERO, |l| l.div_f64(2.0 * self.limit.max(1.0)))
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency::new(4, 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_while_work_waits_and_only_then() {
        let mut c = Concurrency::new(4, 64);
        for _ in 0..100 {
            c.on_success(false);
        }
        assert_eq!(
            c.limit(),
            4,
            "no growth when the window was not the bottleneck"
        );
        for _ in 0..12 {
            c.on_success(true);
        }
        assert_eq!(
            c.limit(),
            16,
            "slow start: one more per success until the first push-back"
        );
        c.on_congestion(Instant::now());
        assert_eq!(c.limit(), 11, "16 * 0.7");
        for _ in 0..200 {
            c.on_success(true);
        }
        assert!(
            c.limit() >= 22 && c.limit() <= 24,
            "then about sqrt(2*200) more: {}",
            c.limit()
        );
        for _ in 0..10_000 {
            c.on_success(true);
        }
        assert_eq!(c.limit(), 64, "bounded by the maximum");
    }

    #[test]
    fn shrinks_once_per_congestion_event() {
        let mut c = Concurrency::new(32, 64);
        let t0 = Instant::now();
        c.on_congestion(t0);
        c.on_congestion(t0 + Duration::from_millis(100));
        c.on_congestion(t0 + Duration::from_millis(1900));
        assert_eq!(c.limit(), 22, "one burst of 429s shrinks once (32 * 0.7)");
        c.on_congestion(t0 + Duration::from_secs(3));
        assert_eq!(c.limit(), 15);
        for k in 0..20 {
            c.on_congestion(t0 + Duration::from_secs(10 + 3 * k));
        }
        assert_eq!(c.limit(), 1, "never below one request");
        c.set_max(1);
        c.on_success(true);
        assert_eq!(c.limit(), 1);
    }

    #[test]
    fn a_lone_5xx_is_noise_a_burst_is_congestion() {
        use crate::ctlog::Pushback;
        let mut c = Concurrency::new(20, 64);
        c.on_latency(Duration::from_secs(3));
        let t0 = Instant::now();
        let one_5xx = Pushback {
            server_errors: 1,
            ..Pushback::default()
        };
        assert!(!c.on_pushback(t0, &Pushback::default()));
        assert!(!c.on_pushback(t0, &one_5xx), "a lone 5xx");
        assert!(!c.on_pushback(t0 + Duration::from_secs(10), &one_5xx));
        assert_eq!(c.limit(), 20);
        assert!(
            c.on_pushback(t0 + Duration::from_secs(12), &one_5xx),
            "a second 5xx within a round trip"
        );
        assert_eq!(c.limit(), 14);
        let mut c = Concurrency::new(20, 64);
        let two = Pushback {
            server_errors: 2,
            ..Pushback::default()
        };
        assert!(c.on_pushback(t0, &two), "two 5xx at once");
        let mut c = Concurrency::new(20, 64);
        let one_429 = Pushback {
            rate_limited: 1,
            ..Pushback::default()
        };
        assert!(c.on_pushback(t0, &one_429), "a 429 always");
        let mut c = Concurrency::new(20, 64);
        let timeout = Pushback {
            transport_errors: 1,
            ..Pushback::default()
        };
        assert!(c.on_pushback(t0, &timeout), "a timeout always");
    }

    #[test]
    fn a_slow_log_shrinks_once_per_round_trip() {
        let mut c = Concurrency::new(30, 64);
        c.on_latency(Duration::from_secs(5));
        let t0 = Instant::now();
        // The requests in flight when the log answered one 5xx finish over the next round trip, each flagged.
        for ms in [0, 1500, 3000, 4500] {
            c.on_congestion(t0 + Duration::from_millis(ms));
        }
        assert_eq!(c.limit(), 21, "one decrease (30 * 0.7), not one per 2 s");
        c.on_congestion(t0 + Duration::from_millis(5200));
        assert_eq!(c.limit(), 14, "a new round trip, a new event");
    }

    #[test]
    fn launches_are_paced_over_half_a_round_trip() {
        let mut c = Concurrency::new(10, 64);
        assert_eq!(c.pace(), Duration::ZERO, "unknown latency: no pacing");
        c.on_latency(Duration::from_secs(4));
        assert_eq!(c.pace(), Duration::from_millis(200));
        c.on_latency(Duration::from_secs(2));
        let pace = c.pace().as_secs_f64();
        assert!(
            (pace - 0.18).abs() < 1e-6,
            "smoothed: 3.6 s / 20, got {pace}"
        );
    }
}
