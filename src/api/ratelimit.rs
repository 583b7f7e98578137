//! Token bucket (pure: the caller passes the time), one per API key.

use std::time::Duration;

use tokio::time::Instant;

/// Holds up to `capacity` tokens, refilled at `per_sec`; a request takes one.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket allowing `per_minute` requests per minute sustained, bursts of as many.
    pub fn per_minute(per_minute: u32, now: Instant) -> TokenBucket {
        let capacity = per_minute.max(1) as f64;
        TokenBucket {
            capacity,
            per_sec: capacity / 60.0,
            tokens: capacity,
            updated: now,
        }
    }

    /// Whether the bucket has refilled completely by `now` (an idle client that can be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.per_sec >= self.capacity
    }

    /// Take a token, or say how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_token_per_period() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(3, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        // 3/minute: one token every 20 s.
        assert_eq!(b.take(t0), Err(Duration::from_secs(20)));
        let t1 = t0 + Duration::from_secs(15);
        let wait = b.take(t1).unwrap_err();
        assert!((wait.as_secs_f64() - 5.0).abs() < 1e-6, "{wait:?}");
        assert!(b.take(t0 + Duration::from_secs(20)).is_ok());
        assert!(b.take(t0 + Duration::from_secs(20)).is_err());
    }

    #[test]
    fn refill_stops_at_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(2, t0);
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_ok());
        assert!(b.take(later).is_err());
    }
}
