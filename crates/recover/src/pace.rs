//! Pacing content creation below GitHub's secondary limits: at most so many creating
//! requests a minute and an hour (GitHub documents about 80 and 500)
//! (a window's share goes out at once, then each request waits for the oldest to
//! leave the window). GitHub's own `403`/`429` answers are waited out by the
//! writer on top of this; both waits are added up for the report.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How fast content may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Pace {
    /// Below GitHub's documented 80 a minute and 500 an hour, with room for a person
    /// using the same account.
    pub const GITHUB: Pace = Pace {
        per_minute: 60,
        per_hour: 450,
    };

    /// How long `requests` creating requests take at this pace, at best.
    pub fn estimate(&self, requests: u64) -> Duration {
        let per_hour = u64::from(self.per_hour.max(1));
        let per_minute = u64::from(self.per_minute.max(1));
        let by_hour = Duration::from_secs(3600 * (requests.saturating_sub(1) / per_hour));
        let by_minute = Duration::from_secs(60 * (requests.saturating_sub(1) / per_minute));
        by_hour.max(by_minute)
    }
}

/// Holds each creating request until both windows have room.
#[derive(Debug)]
pub struct Governor {
    pace: Pace,
    /// When each request of the last hour went out, oldest first.
    sent: VecDeque<Instant>,
    /// How long requests were held, in total.
    pub waited: Duration,
}

impl Governor {
    pub fn new(pace: Pace) -> Governor {
        Governor {
            pace,
            sent: VecDeque::new(),
            waited: Duration::ZERO,
        }
    }

    /// How long the next request must wait from `now`.
    fn hold(&self, now: Instant) -> Duration {
        let window = |span: Duration, limit: u32| -> Duration {
            let within: Vec<&Instant> = self
                .sent
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < span)
                .collect();
            if within.len() < limit.max(1) as usize {
                return Duration::ZERO;
            }
            // The oldest request that keeps the window full must leave it.
            let oldest = within[within.len() - limit.max(1) as usize];
            (*oldest + span).saturating_duration_since(now)
        };
        window(Duration::from_secs(60), self.pace.per_minute)
            .max(window(Duration::from_secs(3600), self.pace.per_hour))
    }

    /// Waits until a creating request may go out, and counts it; how long it waited.
    pub async fn admit(&mut self) -> Duration {
        let now = Instant::now();
        let hold = self.hold(now);
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
            self.waited += hold;
        }
        let now = Instant::now();
        self.sent.push_back(now);
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(3600))
        {
            self.sent.pop_front();
        }
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_a_minutes_share_wait_for_the_window() {
        let mut governor = Governor::new(Pace {
            per_minute: 3,
            per_hour: 100,
        });
        let start = Instant::now();
        for _ in 0..3 {
            governor.admit().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        governor.admit().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        assert_eq!(governor.waited, Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_hourly_limit_holds_when_the_minute_allows() {
        let mut governor = Governor::new(Pace {
            per_minute: 10,
            per_hour: 12,
        });
        let start = Instant::now();
        for _ in 0..13 {
            governor.admit().await;
        }
        // 10 at once, 2 after a minute, the 13th an hour after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
    }

    #[test]
    fn the_estimate_is_set_by_the_tighter_window() {
        assert_eq!(Pace::GITHUB.estimate(1), Duration::ZERO);
        assert_eq!(Pace::GITHUB.estimate(61), Duration::from_secs(60));
        // 10,000 requests: the hourly limit decides (22 full hours).
        assert_eq!(
            Pace::GITHUB.estimate(10_000),
            Duration::from_secs(22 * 3600)
        );
    }
}
