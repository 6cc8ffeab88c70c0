//! Trying again: one policy type and one loop for every retry in repovault, driven by
//! the error's [`ErrorClass`] (permanent errors are never retried; a retryable one may
//! carry the delay the server asked for, which is always honoured).
//!
//! The same [`RetryPolicy`] spaces a job's deliveries through the queue
//! (`retry:` in the configuration) and each retry in place: git requests, GitHub API
//! requests and downloads, notification deliveries, SQS batch resends.

use std::future::Future;
use std::time::Duration;

use crate::defaults;
use crate::error::{Classify, ErrorClass};

/// How often to try, and how long to wait in between: exponential backoff from
/// `base_delay`, capped at `max_delay`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (for the queue: deliveries of one job before
    /// it is recorded failed and dead-lettered).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: defaults::MAX_ATTEMPTS,
            base_delay: defaults::RETRY_BASE_DELAY,
            max_delay: defaults::RETRY_MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// Three tries a second or so apart: for a request in the middle of a job, where
    /// a flaky network should not cost a queue delivery.
    pub const IN_PLACE: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
    };

    /// The delay after failed try `attempt` (1 = the first): `base × 2^(attempt-1)`,
    /// capped, less up to 20% jitter, and never shorter than what the server asked for.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let backoff = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        let jitter = backoff.mul_f64(fastrand::f64() * 0.2);
        let delay = backoff.saturating_sub(jitter);
        asked.map_or(delay, |asked| asked.max(delay))
    }

    /// Runs `op` until it succeeds, fails with an error retrying cannot help, or has
    /// been tried `max_attempts` times; before each retry `on_retry` is told the error,
    /// the failed attempt's number and the wait (for logs and metrics). An error whose
    /// server asks for a longer wait than `max_delay` is returned at once: waiting that
    /// long in place holds everything up (the queue can wait instead).
    pub async fn run<T, E, Fut>(
        &self,
        mut op: impl FnMut() -> Fut,
        mut on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, E>
    where
        E: Classify,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if attempt < self.max_attempts => {
                    let ErrorClass::Retryable { after } = e.class() else {
                        return Err(e);
                    };
                    if after.is_some_and(|asked| asked > self.max_delay) {
                        return Err(e);
                    }
                    let wait = self.delay(attempt, after);
                    on_retry(&e, attempt, wait);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0:?}")]
    struct Fault(ErrorClass);

    impl Classify for Fault {
        fn class(&self) -> ErrorClass {
            self.0
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_honour_what_was_asked() {
        let p = RetryPolicy {
            max_attempts: 9,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)] {
            let d = p.delay(attempt, None);
            let full = Duration::from_secs(full);
            assert!(d <= full && d >= full.mul_f64(0.8), "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_what_may_succeed_and_stops_at_what_cannot() {
        let p = RetryPolicy::IN_PLACE;
        let calls = AtomicU32::new(0);
        let mut retried = Vec::new();
        let out: Result<u32, Fault> = p
            .run(
                || async {
                    match calls.fetch_add(1, Ordering::SeqCst) {
                        0 | 1 => Err(Fault(ErrorClass::RETRY)),
                        n => Ok(n),
                    }
                },
                |_, attempt, _| retried.push(attempt),
            )
            .await;
        assert_eq!(out.unwrap(), 2);
        assert_eq!(retried, [1, 2]);

        let calls = AtomicU32::new(0);
        let out: Result<(), Fault> = p
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fault(ErrorClass::Permanent))
                },
                |_, _, _| {},
            )
            .await;
        assert!(out.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a permanent error is not retried"
        );

        let calls = AtomicU32::new(0);
        let out: Result<(), Fault> = p
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(Fault(ErrorClass::RETRY))
                },
                |_, _, _| {},
            )
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "tried max_attempts times");
    }
}
