//! How many requests one log gets in flight: additive increase while the log answers and more work is waiting
//! (latency is the bottleneck), multiplicative decrease when it pushes back (429, 5xx, timeouts). Pure: the
//! pipeline reports outcomes, the clock is a parameter.

use std::time::{Duration, Instant};

/// The AIMD window of one log.
#[derive(Clone, Debug)]
pub struct Concurrency {
    limit: f64,
    max: f64,
    last_decrease: Option<Instant>,
}

/// After a decrease, further push-back within this time counts as the same congestion event (requests that were
/// already in flight answer 429 too), so one burst halves the window once.
const DECREASE_HOLD: Duration = Duration::from_secs(2);

impl Concurrency {
    /// Start with `initial` requests in flight, never more than `max` (both at least 1).
    pub fn new(initial: usize, max: usize) -> Concurrency {
        let max = max.max(1) as f64;
        Concurrency {
            limit: (initial.max(1) as f64).min(max),
            max,
            last_decrease: None,
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
    /// window, so a bigger window would have helped. Grows by about one request per window of successes.
    pub fn on_success(&mut self, waiting: bool) {
        if waiting {
            self.limit = (self.limit + 1.0 / self.limit).min(self.max);
        }
    }

    /// The log pushed back (429, 5xx, timeout) during a request: halve the window, once per congestion event.
    pub fn on_congestion(&mut self, now: Instant) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_HOLD)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.limit = (self.limit / 2.0).max(1.0);
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
        for _ in 0..200 {
            c.on_success(true);
        }
        assert!(
            c.limit() >= 19 && c.limit() <= 21,
            "about sqrt(2*200): {}",
            c.limit()
        );
        for _ in 0..10_000 {
            c.on_success(true);
        }
        assert_eq!(c.limit(), 64, "bounded by the maximum");
    }

    #[test]
    fn halves_once_per_congestion_event() {
        let mut c = Concurrency::new(32, 64);
        let t0 = Instant::now();
        c.on_congestion(t0);
        c.on_congestion(t0 + Duration::from_millis(100));
        c.on_congestion(t0 + Duration::from_millis(1900));
        assert_eq!(c.limit(), 16, "one burst of 429s halves once");
        c.on_congestion(t0 + Duration::from_secs(3));
        assert_eq!(c.limit(), 8);
        for k in 0..10 {
            c.on_congestion(t0 + Duration::from_secs(10 + 3 * k));
        }
        assert_eq!(c.limit(), 1, "never below one request");
        c.set_max(1);
        c.on_success(true);
        assert_eq!(c.limit(), 1);
    }
}
