//! Token-bucket rate limiting keyed by client address or user, and the
//! extractors that spend a token before a handler reads anything else.

use std::hash::Hash;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use http::request::Parts;
use parking_lot::Mutex;

use super::extract::ClientIp;
use crate::bounded_map::BoundedMap;
use crate::config::RateLimit;
use crate::error::Error;
use crate::services::Services;

pub struct RateLimiter<K> {
    limit: RateLimit,
    /// Each key's tokens and when they were counted, least recently used
    /// first, so idle buckets are dropped from the front.
    buckets: Mutex<BoundedMap<K, (f64, Instant)>>,
}

/// Buckets kept at most: one per client address (or user) seen recently.
/// Past it the least recently used bucket is forgotten, which only gives
/// that key a full bucket again.
const MAX_KEYS: usize = 100_000;

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(limit: RateLimit) -> Self {
        Self::with_capacity(limit, MAX_KEYS)
    }

    fn with_capacity(limit: RateLimit, keys: usize) -> Self {
        Self {
            limit,
            buckets: Mutex::new(BoundedMap::new(keys)),
        }
    }

    /// Takes one token for `key`, or answers `M_LIMIT_EXCEEDED`.
    pub fn check(&self, key: &K) -> Result<(), Error> {
        self.take(key, true)
    }

    /// Answers `M_LIMIT_EXCEEDED` when `key` has less than one token left,
    /// taking none (the cost is known only later: see [`Self::charge`]).
    pub fn has_credit(&self, key: &K) -> Result<(), Error> {
        self.take(key, false)
    }

    /// Takes `amount` tokens from `key` whatever it has left: the bucket
    /// may go into debt (at most one burst deep), paid off as it refills.
    pub fn charge(&self, key: &K, amount: f64) {
        if self.limit.per_second <= 0.0 {
            return;
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let tokens = self.refilled(&mut buckets, key, now);
        let left = (tokens - amount).max(-self.limit.burst);
        buckets.insert(key.clone(), (left, now), now);
    }

    /// `key`'s tokens now, buckets idle long enough to be full dropped.
    fn refilled(&self, buckets: &mut BoundedMap<K, (f64, Instant)>, key: &K, now: Instant) -> f64 {
        // A bucket idle this long is full again: the same as no bucket.
        let full_after =
            Duration::try_from_secs_f64((self.limit.burst * 2.0) / self.limit.per_second)
                .unwrap_or(Duration::MAX);
        buckets.expire(now, full_after);
        let (tokens, at) = buckets.get(key).copied().unwrap_or((self.limit.burst, now));
        (tokens + now.saturating_duration_since(at).as_secs_f64() * self.limit.per_second)
            .min(self.limit.burst)
    }

    /// Takes a token if there is one (`spend`; else only checks there is),
    /// or answers `M_LIMIT_EXCEEDED` with the wait.
    fn take(&self, key: &K, spend: bool) -> Result<(), Error> {
        if self.limit.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let refilled = self.refilled(&mut buckets, key, now);
        let (left, result) = if refilled >= 1.0 {
            let left = if spend { refilled - 1.0 } else { refilled };
            (left, Ok(()))
        } else {
            let wait = ((1.0 - refilled) / self.limit.per_second * 1000.0).ceil() as u64;
            (refilled, Err(Error::limit_exceeded(wait)))
        };
        buckets.insert(key.clone(), (left, now), now);
        result
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.lock().len()
    }
}

/// Which of the per-address limiters a [`Quota`] spends from.
pub trait AddressLimit {
    fn limiter(services: &Services) -> &RateLimiter<IpAddr>;
}

/// `POST /login`.
pub enum Login {}
/// `POST /register`.
pub enum Register {}
/// `GET /register/m.login.registration_token/validity`.
pub enum TokenValidity {}

impl AddressLimit for Login {
    fn limiter(services: &Services) -> &RateLimiter<IpAddr> {
        &services.login_limiter
    }
}

impl AddressLimit for Register {
    fn limiter(services: &Services) -> &RateLimiter<IpAddr> {
        &services.register_limiter
    }
}

impl AddressLimit for TokenValidity {
    fn limiter(services: &Services) -> &RateLimiter<IpAddr> {
        &services.token_validity_limiter
    }
}

/// One token spent from the client address's bucket of limiter `L`. As an
/// extractor it runs before the body is read, so a client over its limit
/// costs no buffering or parsing.
pub struct Quota<L> {
    pub ip: IpAddr,
    limit: PhantomData<L>,
}

impl<L: AddressLimit> FromRequestParts<Arc<Services>> for Quota<L> {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Error> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, services).await?;
        L::limiter(services).check(&ip)?;
        Ok(Quota {
            ip,
            limit: PhantomData,
        })
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

    #[test]
    fn keys_are_capped_without_sweeping() {
        let limiter = RateLimiter::with_capacity(
            RateLimit {
                per_second: 0.001,
                burst: 5.0,
            },
            1_000,
        );
        for key in 0..50_000u32 {
            assert!(limiter.check(&key).is_ok());
        }
        assert_eq!(limiter.keys(), 1_000);
        // The most recent keys are still counted.
        for _ in 0..4 {
            assert!(limiter.check(&49_999).is_ok());
        }
        assert!(limiter.check(&49_999).is_err());
    }
}
