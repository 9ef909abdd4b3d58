//! Throttling is not failure. When the service answers "too many requests" (Lambda's 429
//! `TooManyRequestsException`), nothing ran: the invocation waits (exponential backoff with
//! jitter, up to a minute between tries, bounded by a total wait) and goes again without
//! using one of the task's attempts, and the number of invocations in flight is lowered.
//!
//! [`InFlightLimit`] is an AIMD window, as TCP's congestion window: each throttle halves it
//! (once per round: throttles of invocations sent before the last cut do not cut again),
//! each answered invocation raises it by 1/window (about one per window of answers), never
//! above the configured concurrency (itself capped by the account's limit) nor below 1.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How throttled invocations wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottlePolicy {
    /// Wait after the first throttle; doubles with each throttle of the task.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
    /// Total time a task may spend waiting on throttles before it fails (`Throttled`).
    pub max_wait: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_wait: Duration::from_secs(30 * 60),
        }
    }
}

impl ThrottlePolicy {
    /// The jittered wait after the `n`-th throttle of a task (1-based): uniform in
    /// [½·b, b] with b = min(initial · 2ⁿ⁻¹, max).
    pub fn backoff(&self, n: u32) -> Duration {
        cloud::RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
        }
        .backoff(n)
    }
}

/// How the in-flight limit of a step went (for the report).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InFlightSummary {
    /// `--concurrency` as asked.
    pub requested: usize,
    /// The account's unreserved concurrency (Lambda `GetAccountSettings`), when known.
    pub account_limit: Option<usize>,
    /// The ceiling used: `requested`, capped by the account's limit.
    pub ceiling: usize,
    /// The lowest the limit went after throttles.
    pub lowest: usize,
    /// Throttled invocations of the step (they did not count as failed attempts).
    pub throttles: u64,
}

#[derive(Debug)]
struct State {
    /// Window, ≥ 1 and ≤ ceiling.
    limit: f64,
    in_flight: usize,
    lowest: f64,
    /// Incremented at each cut; permits taken before it do not cut again.
    round: u64,
    throttles: u64,
}

/// An adaptive bound on invocations in flight (AIMD).
#[derive(Debug)]
pub struct InFlightLimit {
    ceiling: usize,
    state: Mutex<State>,
    freed: tokio::sync::Notify,
}

/// One invocation in flight; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    limit: Arc<InFlightLimit>,
    round: u64,
}

impl InFlightLimit {
    /// A window starting at (and never above) `ceiling` ≥ 1.
    pub fn new(ceiling: usize) -> Arc<InFlightLimit> {
        let ceiling = ceiling.max(1);
        Arc::new(InFlightLimit {
            ceiling,
            state: Mutex::new(State {
                limit: ceiling as f64,
                in_flight: 0,
                lowest: ceiling as f64,
                round: 0,
                throttles: 0,
            }),
            freed: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a place under the current limit.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            // Created before the check: a place freed in between still wakes it.
            let freed = self.freed.notified();
            {
                let mut s = self.lock();
                if (s.in_flight as f64) < s.limit.floor() {
                    s.in_flight += 1;
                    return Permit {
                        limit: self.clone(),
                        round: s.round,
                    };
                }
            }
            freed.await;
        }
    }

    /// The current window (whole invocations).
    pub fn current(&self) -> usize {
        self.lock().limit.floor() as usize
    }

    /// The step's figures so far.
    pub fn summary(&self, requested: usize, account_limit: Option<usize>) -> InFlightSummary {
        let s = self.lock();
        InFlightSummary {
            requested,
            account_limit,
            ceiling: self.ceiling,
            lowest: s.lowest.floor() as usize,
            throttles: s.throttles,
        }
    }
}

impl Permit {
    /// The invocation was answered (whatever the task's outcome): raise the window.
    pub fn answered(self) {
        let mut s = self.limit.lock();
        s.limit = (s.limit + 1.0 / s.limit).min(self.limit.ceiling as f64);
    }

    /// The invocation was throttled: halve the window, once per round.
    pub fn throttled(self) {
        let mut s = self.limit.lock();
        s.throttles += 1;
        if self.round == s.round {
            s.limit = (s.limit / 2.0).max(1.0);
            s.lowest = s.lowest.min(s.limit);
            s.round += 1;
            tracing::info!(
                in_flight = s.limit.floor() as usize,
                "throttled: fewer invocations in flight"
            );
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limit.lock().in_flight -= 1;
        self.limit.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn throttles_halve_once_per_round_and_answers_raise_it_again() {
        let l = InFlightLimit::new(16);
        let permits: Vec<Permit> = block_on(async {
            let mut v = Vec::new();
            for _ in 0..16 {
                v.push(l.acquire().await);
            }
            v
        });
        // Sixteen throttles of invocations sent in the same round: one cut.
        for p in permits {
            p.throttled();
        }
        assert_eq!(l.current(), 8);
        // A throttle of the next round cuts again; down to 1 at most.
        for want in [4, 2, 1, 1] {
            block_on(l.acquire()).throttled();
            assert_eq!(l.current(), want);
        }
        let s = l.summary(32, Some(16));
        assert_eq!((s.ceiling, s.lowest, s.throttles), (16, 1, 20));
        // Additive increase: about one more per window of answers, up to the ceiling.
        let mut answers = 0;
        while l.current() < 16 {
            block_on(l.acquire()).answered();
            answers += 1;
        }
        // 1 → 16 takes Σ_{w=1}^{15} w ≈ 120 answers.
        assert!((110..=130).contains(&answers), "{answers}");
        for _ in 0..100 {
            block_on(l.acquire()).answered();
        }
        assert_eq!(l.current(), 16, "never above the ceiling");
    }

    #[test]
    fn acquire_waits_for_a_free_place() {
        let l = InFlightLimit::new(2);
        let (a, b) = block_on(async { (l.acquire().await, l.acquire().await) });
        let waiting = {
            let l = l.clone();
            std::thread::spawn(move || block_on(async { l.acquire().await.answered() }))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiting.is_finished(), "a third invocation waited");
        a.answered();
        waiting.join().unwrap();
        b.answered();
    }

    #[test]
    fn backoff_grows_to_a_minute() {
        let p = ThrottlePolicy::default();
        assert!(p.backoff(1) <= Duration::from_secs(1));
        assert!(p.backoff(3) >= Duration::from_secs(2));
        assert!(p.backoff(30) >= Duration::from_secs(30));
        assert!(p.backoff(30) <= Duration::from_secs(60));
    }
}
