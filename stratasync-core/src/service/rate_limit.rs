//! The per-user mutation rate limit ([`MutationRateLimit`]).

use crate::error::ServiceError;
use crate::request::MAX_TRANSACTIONS;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

/// A per-user limit on mutations (off unless configured).
///
/// Each user may apply `per_second` client transactions per second on
/// average and up to `burst` at once (a token bucket: GCRA, from the
/// `governor` crate). A request needs as many as it has transactions; one
/// that does not fit now is refused whole with
/// [`ServiceError::RateLimited`], which says how long until it would fit
/// (the actix adapter answers `429 Too Many Requests` with `Retry-After`),
/// before anything of it reaches the database.
///
/// The limit counts per server process: with several nodes a user may
/// reach it on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutationRateLimit {
    /// Client transactions per second a user may sustain.
    pub per_second: NonZeroU32,
    /// How many a user may send at once. At least the transactions of one
    /// request ([`MAX_TRANSACTIONS`], 100) are always allowed, so any valid
    /// request eventually fits.
    pub burst: NonZeroU32,
}

impl MutationRateLimit {
    /// `per_second` transactions per second, bursts of the same size (at
    /// least 100).
    pub fn per_second(per_second: NonZeroU32) -> Self {
        MutationRateLimit { per_second, burst: per_second }
    }
}

/// How often (in checks) users idle for a whole bucket are forgotten.
const SWEEP_EVERY: u64 = 4096;

/// The limiter of one engine.
pub(crate) struct MutationLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl std::fmt::Debug for MutationLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MutationLimiter").field("users", &self.limiter.len()).finish()
    }
}

impl MutationLimiter {
    pub(crate) fn new(limit: MutationRateLimit) -> Self {
        let floor = NonZeroU32::new(MAX_TRANSACTIONS as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst.max(floor));
        MutationLimiter { limiter: RateLimiter::keyed(quota), checks: AtomicU64::new(0) }
    }

    /// Takes `transactions` from `user`'s bucket, or says how long to wait.
    pub(crate) fn check(&self, user: &str, transactions: usize) -> Result<(), ServiceError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        let Some(n) = u32::try_from(transactions).ok().and_then(NonZeroU32::new) else { return Ok(()) };
        match self.limiter.check_key_n(&user.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                Err(ServiceError::RateLimited { retry_after: not_until.wait_time_from(self.limiter.clock().now()) })
            }
            // More than the burst: never fits (validation bounds a request
            // below the burst's floor, so this is not reached).
            Err(_) => Err(ServiceError::RateLimited { retry_after: std::time::Duration::from_secs(1) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> MutationRateLimit {
        MutationRateLimit { per_second: NonZeroU32::new(per_second).unwrap(), burst: NonZeroU32::new(burst).unwrap() }
    }

    #[test]
    fn users_have_buckets_of_their_own() {
        let limiter = MutationLimiter::new(limit(1, 100));
        assert!(limiter.check("alice", 60).is_ok());
        assert!(limiter.check("alice", 40).is_ok());
        let Err(ServiceError::RateLimited { retry_after }) = limiter.check("alice", 1) else {
            panic!("alice's bucket is empty")
        };
        assert!(retry_after > std::time::Duration::ZERO && retry_after <= std::time::Duration::from_secs(1));
        assert!(limiter.check("bob", 100).is_ok(), "bob is not limited by alice");
    }

    #[test]
    fn a_whole_request_always_fits_an_empty_bucket() {
        let limiter = MutationLimiter::new(limit(1, 1));
        assert!(limiter.check("alice", MAX_TRANSACTIONS).is_ok(), "the burst is at least one request");
        assert!(matches!(limiter.check("alice", 1), Err(ServiceError::RateLimited { .. })));
    }
}
