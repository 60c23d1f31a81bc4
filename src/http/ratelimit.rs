//! Per-key request rates, in this process's memory (two processes each allow the rate):
//! a generic cell rate limiter per API key, with a burst. Only authenticated callers are
//! counted, so the state holds at most one entry per API key.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

pub struct KeyRates {
    limiter: Option<DefaultKeyedRateLimiter<i64>>,
    per_second: u32,
}

impl KeyRates {
    /// `per_second: None` limits nothing.
    pub fn new(per_second: Option<u32>, burst: u32) -> Self {
        let limiter = per_second.and_then(NonZeroU32::new).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter, per_second: per_second.unwrap_or(0) }
    }

    /// Counts one request of API key `key_id`; refused with the seconds to wait.
    pub fn check(&self, key_id: i64) -> Result<(), AppError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&key_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::debug!(key_id, per_second = self.per_second, "rate limited");
            AppError::RateLimited(wait.as_secs().max(1))
        })
    }
}
