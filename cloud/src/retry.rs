//! Retries with exponential backoff and full jitter, for throttling and transient errors only.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently remote operations are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The (jittered) wait before attempt `attempt + 1`, where `attempt` starts at 1.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_backoff);
        let millis = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

/// Whether an HTTP status is worth retrying: throttling and server-side failures.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        };
        let b1 = p.backoff(1);
        assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
        let b3 = p.backoff(3);
        assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
        for attempt in 4..40 {
            assert!(p.backoff(attempt) <= Duration::from_millis(800));
        }
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [429, 500, 503] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 403, 404, 416] {
            assert!(!is_retryable_status(s));
        }
    }
}
