//! Which backups a retention policy keeps, by restic's rules, with the clock as a
//! parameter.
//!
//! - `keep-last n`: the `n` newest.
//! - `keep-hourly|daily|weekly|monthly|yearly n`: for the last `n` hours (days, ISO
//!   weeks, months, years) that have backups, the newest backup of each (UTC).
//! - `keep-within d`: every backup newer than `now - d`.
//!
//! A backup is kept if any rule keeps it. Protected backups (the newest good one of a
//! repository) are always kept. An empty policy keeps everything: nothing is ever
//! deleted without a rule saying so.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A retention policy (`retention:` of a job, validated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<Duration>,
}

/// The calendar bucket (hour, day, week, month, year) a backup falls in, in UTC.
type BucketOf = fn(Timestamp) -> (i32, i32, i32, i32);

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeepReason {
    Protected,
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within,
    /// No rule is configured.
    NoPolicy,
    /// No manifest (or data index) lists it yet, but recent: possibly a backup still
    /// being written.
    Incomplete,
    /// A link of the chain of a kept backup, or what its restore reads (its LFS
    /// objects, its data snapshot and that snapshot's files and assets).
    Needed,
    /// A repository's newest data snapshot, or the one `latest.json` names.
    NewestData,
    /// No job whose retention was applied selects this repository (its newest
    /// manifest's `source` does not match any job's filters): its backups are not
    /// any policy's to delete.
    NotSelected,
}

impl KeepReason {
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::Protected => "newest good backup",
            KeepReason::Last => "last",
            KeepReason::Hourly => "hourly",
            KeepReason::Daily => "daily",
            KeepReason::Weekly => "weekly",
            KeepReason::Monthly => "monthly",
            KeepReason::Yearly => "yearly",
            KeepReason::Within => "within",
            KeepReason::NoPolicy => "no retention policy",
            KeepReason::Incomplete => "recent (possibly still being written)",
            KeepReason::Needed => "needed by a kept backup",
            KeepReason::NewestData => "newest data snapshot",
            KeepReason::NotSelected => "no job selects it",
        }
    }
}

impl RetentionPolicy {
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }

    /// Decides for each backup (by time, any order) whether to keep it, and why.
    /// `protected[i]` marks backups that must never go. Returns, per input, the
    /// reasons to keep it; an empty list means it may be deleted.
    pub fn apply(
        &self,
        times: &[Timestamp],
        protected: &[bool],
        now: Timestamp,
    ) -> Vec<Vec<KeepReason>> {
        let mut reasons = vec![Vec::new(); times.len()];
        let mut order: Vec<usize> = (0..times.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(times[*i]));
        for (i, is_protected) in protected.iter().enumerate() {
            if *is_protected {
                reasons[i].push(KeepReason::Protected);
            }
        }
        if self.is_empty() {
            for r in &mut reasons {
                r.push(KeepReason::NoPolicy);
            }
            return reasons;
        }
        if let Some(n) = self.keep_last {
            for &i in order.iter().take(n as usize) {
                reasons[i].push(KeepReason::Last);
            }
        }
        let buckets: [(Option<u32>, KeepReason, BucketOf); 5] = [
            (self.keep_hourly, KeepReason::Hourly, |t| {
                let d = t.to_zoned(TimeZone::UTC);
                (
                    d.year() as i32,
                    d.month() as i32,
                    d.day() as i32,
                    d.hour() as i32,
                )
            }),
            (self.keep_daily, KeepReason::Daily, |t| {
                let d = t.to_zoned(TimeZone::UTC);
                (d.year() as i32, d.month() as i32, d.day() as i32, 0)
            }),
            (self.keep_weekly, KeepReason::Weekly, |t| {
                let w = t.to_zoned(TimeZone::UTC).date().iso_week_date();
                (w.year() as i32, w.week() as i32, 0, 0)
            }),
            (self.keep_monthly, KeepReason::Monthly, |t| {
                let d = t.to_zoned(TimeZone::UTC);
                (d.year() as i32, d.month() as i32, 0, 0)
            }),
            (self.keep_yearly, KeepReason::Yearly, |t| {
                (t.to_zoned(TimeZone::UTC).year() as i32, 0, 0, 0)
            }),
        ];
        for (count, reason, bucket_of) in buckets {
            let Some(mut left) = count else { continue };
            let mut last_bucket = None;
            for &i in &order {
                if left == 0 {
                    break;
                }
                let bucket = bucket_of(times[i]);
                if last_bucket != Some(bucket) {
                    reasons[i].push(reason);
                    last_bucket = Some(bucket);
                    left -= 1;
                }
            }
        }
        if let Some(within) = self.keep_within {
            let cutoff = now.checked_sub(within).unwrap_or(Timestamp::MIN);
            for (i, t) in times.iter().enumerate() {
                if *t >= cutoff {
                    reasons[i].push(KeepReason::Within);
                }
            }
        }
        reasons
    }
}

/// One stored archive of a repository, as `prune` finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// The time in its key.
    pub at: Timestamp,
    /// When the store says it was written (its own clock), if it says.
    pub stored_at: Option<Timestamp>,
    /// A manifest sits beside it: the upload finished and was verified.
    pub has_manifest: bool,
}

/// An archive without a manifest younger than this may still be being written.
pub const INCOMPLETE_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How far ahead of the clock a key's time may be before the store's time is used.
const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

impl RetentionPolicy {
    /// Decides for each of a repository's archives whether to keep it, and why (an
    /// empty list: delete). Only archives with a manifest are restore points: they
    /// alone count toward `keep-*`. One without a manifest (left by a crash between
    /// upload and manifest) is kept while it may still be in progress, then deleted.
    /// The backup at `protected_at` (the newest verified one, by its identity, not its
    /// key) is always kept; without one, or when it is not among `backups` (it
    /// completed after they were listed), the newest complete archive is. A time in a
    /// key later than `now` (a skewed clock) is replaced by the store's own time, so a
    /// future-stamped archive does not hold the newest slot forever.
    pub fn decide(
        &self,
        backups: &[StoredBackup],
        protected_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Vec<Vec<KeepReason>> {
        let effective = |b: &StoredBackup| {
            let skewed = now.checked_add(CLOCK_SKEW).is_ok_and(|limit| b.at > limit);
            match (skewed, b.stored_at) {
                (true, Some(stored)) => stored.min(now),
                (true, None) => now,
                (false, _) => b.at,
            }
        };
        let complete: Vec<usize> = (0..backups.len())
            .filter(|&i| backups[i].has_manifest)
            .collect();
        // `latest.json` may name a backup that completed after the listing was taken:
        // then the newest listed one, its chain's base, is protected too.
        let protected_at = protected_at
            .filter(|at| complete.iter().any(|&i| backups[i].at == *at))
            .or_else(|| complete.iter().map(|&i| backups[i].at).max());
        let times: Vec<Timestamp> = complete.iter().map(|&i| effective(&backups[i])).collect();
        let protected: Vec<bool> = complete
            .iter()
            .map(|&i| Some(backups[i].at) == protected_at)
            .collect();
        let mut reasons = vec![Vec::new(); backups.len()];
        for (&i, kept) in complete.iter().zip(self.apply(&times, &protected, now)) {
            reasons[i] = kept;
        }
        for (i, b) in backups.iter().enumerate() {
            let age_from = b.stored_at.unwrap_or(b.at);
            let recent = now
                .checked_sub(INCOMPLETE_GRACE)
                .is_ok_and(|cutoff| age_from > cutoff);
            if !b.has_manifest && (recent || self.is_empty()) {
                reasons[i].push(if self.is_empty() {
                    KeepReason::NoPolicy
                } else {
                    KeepReason::Incomplete
                });
            }
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Which of `times` survive, as indices, given nothing is protected.
    fn kept(policy: RetentionPolicy, times: &[&str], now: &str) -> Vec<usize> {
        let times: Vec<Timestamp> = times.iter().map(|s| t(s)).collect();
        let protected = vec![false; times.len()];
        policy
            .apply(&times, &protected, t(now))
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    const NOW: &str = "2026-11-22T12:00:00Z";

    /// Two backups a day from 2026-10-01 to 2026-11-22, oldest first.
    fn twice_daily() -> Vec<String> {
        let mut out = Vec::new();
        let mut day = t("2026-10-01T06:00:00Z");
        while day <= t(NOW) {
            for at in [day, day + jiff::SignedDuration::from_hours(12)] {
                if at <= t(NOW) {
                    out.push(at.to_string());
                }
            }
            day += jiff::SignedDuration::from_hours(24);
        }
        out
    }

    #[test]
    fn an_empty_policy_keeps_everything() {
        let times = ["2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z"];
        assert_eq!(kept(RetentionPolicy::default(), &times, NOW), vec![0, 1]);
    }

    #[test]
    fn keep_last() {
        let times = [
            "2026-11-20T00:00:00Z",
            "2026-11-22T00:00:00Z",
            "2026-11-21T00:00:00Z",
            "2026-11-19T00:00:00Z",
        ];
        let policy = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![1, 2]);
        let policy = RetentionPolicy {
            keep_last: Some(10),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW).len(), 4);
    }

    #[test]
    fn keep_daily_takes_the_newest_of_each_of_the_last_n_days_with_backups() {
        let all = twice_daily();
        let times: Vec<&str> = all.iter().map(String::as_str).collect();
        let policy = RetentionPolicy {
            keep_daily: Some(3),
            ..Default::default()
        };
        let kept: Vec<&str> = kept(policy, &times, NOW)
            .into_iter()
            .map(|i| times[i])
            .collect();
        assert_eq!(
            kept,
            [
                "2026-11-20T18:00:00Z",
                "2026-11-21T18:00:00Z",
                "2026-11-22T06:00:00Z"
            ]
        );
    }

    #[test]
    fn days_without_backups_do_not_count() {
        let times = [
            "2026-11-01T10:00:00Z",
            "2026-11-10T10:00:00Z",
            "2026-11-10T11:00:00Z",
            "2026-11-22T10:00:00Z",
        ];
        let policy = RetentionPolicy {
            keep_daily: Some(3),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![0, 2, 3]);
    }

    #[test]
    fn keep_hourly() {
        let times = [
            "2026-11-22T10:05:00Z",
            "2026-11-22T10:55:00Z",
            "2026-11-22T11:10:00Z",
            "2026-11-22T09:00:00Z",
        ];
        let policy = RetentionPolicy {
            keep_hourly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![1, 2]);
    }

    #[test]
    fn keep_weekly_uses_iso_weeks() {
        // 2026-11-16 is a Monday: the 15th (Sunday) is in the previous ISO week.
        let times = [
            "2026-11-15T23:00:00Z",
            "2026-11-16T01:00:00Z",
            "2026-11-20T01:00:00Z",
            "2026-11-08T01:00:00Z",
        ];
        let policy = RetentionPolicy {
            keep_weekly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![0, 2]);
    }

    #[test]
    fn keep_monthly_and_yearly() {
        let all = twice_daily();
        let times: Vec<&str> = all.iter().map(String::as_str).collect();
        let monthly = RetentionPolicy {
            keep_monthly: Some(2),
            ..Default::default()
        };
        let kept_monthly: Vec<&str> = kept(monthly, &times, NOW)
            .into_iter()
            .map(|i| times[i])
            .collect();
        assert_eq!(
            kept_monthly,
            ["2026-10-31T18:00:00Z", "2026-11-22T06:00:00Z"]
        );
        let years = [
            "2024-06-01T00:00:00Z",
            "2025-03-01T00:00:00Z",
            "2025-12-31T23:59:59Z",
            "2026-01-01T00:00:00Z",
        ];
        let yearly = RetentionPolicy {
            keep_yearly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(yearly, &years, NOW), vec![2, 3]);
    }

    #[test]
    fn keep_within_counts_back_from_now() {
        let times = [
            "2026-11-01T00:00:00Z",
            "2026-11-15T12:00:00Z",
            "2026-11-15T11:59:59Z",
        ];
        let policy = RetentionPolicy {
            keep_within: Some(Duration::from_secs(7 * 86400)),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![1]);
    }

    #[test]
    fn rules_combine_as_a_union() {
        let times = [
            "2026-01-15T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "2026-11-21T00:00:00Z",
            "2026-11-22T00:00:00Z",
        ];
        // keep-monthly counts months that have backups: November, then January.
        let policy = RetentionPolicy {
            keep_last: Some(2),
            keep_monthly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(policy, &times, NOW), vec![0, 2, 3]);
    }

    #[test]
    fn the_protected_backup_is_never_deleted() {
        let times: Vec<Timestamp> = ["2026-01-01T00:00:00Z", "2026-11-22T00:00:00Z"]
            .iter()
            .map(|s| t(s))
            .collect();
        // Only the old one is good (the newer one's record failed, say); keep-last 1
        // alone would delete it.
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        let reasons = policy.apply(&times, &[true, false], t(NOW));
        assert_eq!(reasons[0], vec![KeepReason::Protected]);
        assert_eq!(reasons[1], vec![KeepReason::Last]);
        let within = RetentionPolicy {
            keep_within: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        let reasons = within.apply(&times, &[true, false], t(NOW));
        assert!(!reasons[0].is_empty(), "the protected backup went");
        assert!(reasons[1].is_empty());
    }

    fn b(at: &str, has_manifest: bool) -> StoredBackup {
        StoredBackup {
            at: t(at),
            stored_at: Some(t(at)),
            has_manifest,
        }
    }

    /// Name, policy, backups, the protected backup's time, the expected verdicts.
    type Case<'a> = (
        &'a str,
        RetentionPolicy,
        Vec<StoredBackup>,
        Option<&'a str>,
        Vec<&'a str>,
    );

    /// `decide` as a string per backup: "keep(reasons)" or "delete".
    fn verdicts(
        policy: RetentionPolicy,
        backups: &[StoredBackup],
        protected: Option<&str>,
        now: &str,
    ) -> Vec<String> {
        policy
            .decide(backups, protected.map(t), t(now))
            .into_iter()
            .map(|r| {
                if r.is_empty() {
                    "delete".to_owned()
                } else {
                    r.iter().map(|k| k.as_str()).collect::<Vec<_>>().join("+")
                }
            })
            .collect()
    }

    #[test]
    fn prune_decisions_table() {
        let last2 = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        let cases: Vec<Case> = vec![
            (
                "archives without a manifest do not count toward keep-last",
                last2,
                vec![
                    b("2026-11-18T00:00:00Z", true),
                    b("2026-11-19T00:00:00Z", true),
                    b("2026-11-20T00:00:00Z", false),
                    b("2026-11-21T00:00:00Z", false),
                ],
                Some("2026-11-19T00:00:00Z"),
                vec!["last", "newest good backup+last", "delete", "delete"],
            ),
            (
                "a recent archive without a manifest may still be written: kept, not counted",
                last2,
                vec![
                    b("2026-11-20T00:00:00Z", true),
                    b("2026-11-21T00:00:00Z", true),
                    b("2026-11-22T11:00:00Z", false),
                ],
                Some("2026-11-21T00:00:00Z"),
                vec![
                    "last",
                    "newest good backup+last",
                    "recent (possibly still being written)",
                ],
            ),
            (
                "the protected backup is kept by its time even when the policy drops it",
                RetentionPolicy {
                    keep_last: Some(1),
                    ..Default::default()
                },
                vec![
                    b("2026-11-20T00:00:00Z", true),
                    b("2026-11-21T00:00:00Z", true),
                ],
                Some("2026-11-20T00:00:00Z"),
                vec!["newest good backup", "last"],
            ),
            (
                "without latest.json the newest complete archive is protected",
                RetentionPolicy {
                    keep_within: Some(std::time::Duration::from_secs(3600)),
                    ..Default::default()
                },
                vec![
                    b("2026-11-01T00:00:00Z", true),
                    b("2026-11-02T00:00:00Z", true),
                    b("2026-11-03T00:00:00Z", false),
                ],
                None,
                vec!["delete", "newest good backup", "delete"],
            ),
            (
                "latest.json naming a backup newer than the listing protects the newest listed",
                RetentionPolicy {
                    keep_within: Some(std::time::Duration::from_secs(3600)),
                    ..Default::default()
                },
                vec![
                    b("2026-11-01T00:00:00Z", true),
                    b("2026-11-02T00:00:00Z", true),
                ],
                Some("2026-11-22T11:59:00Z"),
                vec!["delete", "newest good backup"],
            ),
            (
                "a future-stamped archive is judged by the store's time and loses its slot",
                last2,
                vec![
                    StoredBackup {
                        at: t("2099-01-01T00:00:00Z"),
                        stored_at: Some(t("2026-10-01T00:00:00Z")),
                        has_manifest: true,
                    },
                    b("2026-11-20T00:00:00Z", true),
                    b("2026-11-21T00:00:00Z", true),
                ],
                Some("2026-11-21T00:00:00Z"),
                vec!["delete", "last", "newest good backup+last"],
            ),
            (
                "no policy deletes nothing, complete or not",
                RetentionPolicy::default(),
                vec![
                    b("2020-01-01T00:00:00Z", false),
                    b("2026-11-21T00:00:00Z", true),
                ],
                None,
                vec![
                    "no retention policy",
                    "newest good backup+no retention policy",
                ],
            ),
        ];
        for (name, policy, backups, protected, expected) in cases {
            assert_eq!(
                verdicts(policy, &backups, protected, NOW),
                expected,
                "{name}"
            );
        }
    }
}
