//! Token-bucket rate limiting keyed by client address or user.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::RateLimit;
use crate::error::Error;

pub struct RateLimiter<K> {
    limit: RateLimit,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

/// Buckets idle long enough to be full again are dropped past this many keys.
const MAX_KEYS: usize = 100_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or answers `M_LIMIT_EXCEEDED`.
    pub fn check(&self, key: &K) -> Result<(), Error> {
        if self.limit.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() > MAX_KEYS {
            let full_after = self.limit.burst / self.limit.per_second;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full_after);
        }
        let (tokens, at) = buckets
            .entry(key.clone())
            .or_insert((self.limit.burst, now));
        let refilled = (*tokens + now.duration_since(*at).as_secs_f64() * self.limit.per_second)
            .min(self.limit.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            let wait = ((1.0 - refilled) / self.limit.per_second * 1000.0).ceil() as u64;
            Err(Error::limit_exceeded(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 2.0,
        });
        assert!(limiter.check(&1).is_ok());
        assert!(limiter.check(&1).is_ok());
        let err = limiter.check(&1).unwrap_err();
        assert_eq!(err.errcode, "M_LIMIT_EXCEEDED");
        assert!(limiter.check(&2).is_ok(), "keys are independent");
    }

    #[test]
    fn zero_rate_disables() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.0,
            burst: 0.0,
        });
        for _ in 0..100 {
            assert!(limiter.check(&"k").is_ok());
        }
    }
}
