//! Deleting what retention no longer keeps, repository by repository, each under the
//! policies of the jobs that select it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use repovault_core::RepoSelector;
use repovault_core::retention::{INCOMPLETE_GRACE, KeepReason, RetentionPolicy, StoredBackup};

use crate::error::RepoError;
use crate::repository::{Repository, Scope};

/// A retention policy and the repositories it is applied to.
#[derive(Debug, Clone)]
pub struct PruneScope {
    /// The job's owner and filters, matched against each repository's newest
    /// manifest (`source`: name, fork, archived, visibility, topics, size as backed
    /// up); `None`: every repository (`prune --keep-*`).
    pub selector: Option<RepoSelector>,
    /// An empty policy keeps everything: a job without `retention:` protects the
    /// repositories it selects from every other job's policy.
    pub policy: RetentionPolicy,
}

/// What `prune` did with one backup, or with one link of a chain or LFS object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub key: String,
    pub at: Timestamp,
    /// Why it was kept; empty: it was deleted (a backup with its manifest).
    pub kept: Vec<KeepReason>,
}

/// One repository's backups and data snapshots, and what they share by reference, as
/// `prune` finds them.
#[derive(Default)]
struct RepoObjects {
    backups: Vec<(String, StoredBackup)>,
    /// Data snapshots' indexes: key, time in the key, time the store wrote it.
    indexes: Vec<(String, Timestamp, Option<Timestamp>)>,
    /// Chain links, Git LFS objects, data files and release assets: key, time in the
    /// key (an LFS object's or asset's: the store's), time the store wrote it.
    shared: Vec<(String, Timestamp, Option<Timestamp>)>,
}

impl Repository<'_> {
    /// Applies `scopes` to every repository in the store. A repository's backups are
    /// decided by every scope that selects it, and one is kept when any of them keeps
    /// it (so a job without retention keeps everything of the repositories it selects,
    /// whatever another job on the same owner says); a repository no scope selects
    /// keeps everything ([`KeepReason::NotSelected`]). Each decision is
    /// [`RetentionPolicy::decide`]'s, with the backup `latest.json` names protected;
    /// what no rule keeps is deleted with its manifest. Data snapshots follow the
    /// backups (see `data_kept`) and are restore points of their own, decided by the
    /// same policies: a snapshot neither keeps is deleted (its index) once it is older
    /// than [`INCOMPLETE_GRACE`]; the newest and the one `latest.json` names never. Then what backups and
    /// snapshots share by reference, the links of the chains (`packs/`), the Git LFS
    /// objects (`lfs/`), the data files (`data/<stamp>/<kind>.jsonl.zst`) and release
    /// assets (`assets/`): one any kept manifest or index lists stays, one none lists
    /// goes once it is older than [`INCOMPLETE_GRACE`] (younger, a backup may be
    /// writing it; older, a backup that failed left it). No kept backup is ever left
    /// with a missing link, LFS object, data file or asset. On a
    /// [`DryRun`](repovault_core::ports::store::DryRun) store nothing is deleted.
    pub async fn prune(
        &self,
        scopes: &[PruneScope],
        now: Timestamp,
    ) -> Result<Vec<Pruned>, RepoError> {
        let layout = self.layout();
        let objects = self.store().list(&self.prefix_of(Scope::All)).await?;
        let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let stored_at: BTreeMap<&str, Option<Timestamp>> = objects
            .iter()
            .map(|o| (o.key.as_str(), o.last_modified))
            .collect();
        let mut by_repo: BTreeMap<(String, String), RepoObjects> = BTreeMap::new();
        for key in layout.backups_among(keys.iter().copied()) {
            let backup = layout.parse_backup(&key).expect("a backup key");
            let has_manifest = layout
                .manifest_for(&key)
                .is_some_and(|m| keys.contains(m.as_str()));
            let stored = StoredBackup {
                at: backup.at,
                stored_at: stored_at[key.as_str()],
                has_manifest,
            };
            let repo = by_repo.entry((backup.owner, backup.repo)).or_default();
            repo.backups.push((key, stored));
        }
        for object in &objects {
            let key = object.key.clone();
            let stored = object.last_modified;
            if let Some(link) = layout.parse_bundle(&key) {
                let repo = by_repo.entry((link.owner, link.repo)).or_default();
                repo.shared.push((key, link.at, stored));
            } else if let Some((of, index)) = layout.parse_data(&key) {
                let repo = by_repo.entry((of.owner, of.repo)).or_default();
                match index {
                    true => repo.indexes.push((key, of.at, stored)),
                    false => repo.shared.push((key, of.at, stored)),
                }
            } else if let Some((owner, repo)) =
                layout.parse_lfs(&key).or_else(|| layout.parse_asset(&key))
            {
                // Its key has no time: its age is the store's (unknown: as new).
                let repo = by_repo.entry((owner, repo)).or_default();
                repo.shared.push((key, stored.unwrap_or(now), stored));
            }
        }
        let mut out = Vec::new();
        for ((owner, name), repo) in by_repo {
            let policies = self.policies_for(scopes, &owner, &repo).await?;
            out.extend(self.prune_repo(&owner, &name, repo, &policies, now).await?);
        }
        Ok(out)
    }

    /// The policies of the scopes that select `owner`'s repository: matched against
    /// its newest readable manifest's `source` (none readable: only scopes without a
    /// selector apply).
    async fn policies_for(
        &self,
        scopes: &[PruneScope],
        owner: &str,
        repo: &RepoObjects,
    ) -> Result<Vec<RetentionPolicy>, RepoError> {
        let mut source = None;
        if scopes.iter().any(|s| s.selector.is_some()) {
            for (key, backup) in repo.backups.iter().rev() {
                if !backup.has_manifest {
                    continue;
                }
                match self.manifest(key).await {
                    Ok(Some(manifest)) => {
                        source = Some(manifest.source);
                        break;
                    }
                    Ok(None) => {}
                    Err(e @ (RepoError::Invalid { .. } | RepoError::Sealed { .. })) => {
                        tracing::warn!(error = %e, "a manifest is unreadable; trying an older one to tell which job selects its repository");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(scopes
            .iter()
            .filter(|scope| match (&scope.selector, &source) {
                (None, _) => true,
                (Some(selector), Some(source)) => {
                    selector.owner.login().eq_ignore_ascii_case(owner) && selector.matches(source)
                }
                (Some(_), None) => false,
            })
            .map(|scope| scope.policy)
            .collect())
    }

    async fn prune_repo(
        &self,
        owner: &str,
        name: &str,
        mut repo: RepoObjects,
        policies: &[RetentionPolicy],
        now: Timestamp,
    ) -> Result<Vec<Pruned>, RepoError> {
        let layout = self.layout();
        let store = self.store();
        let mut out = Vec::new();
        if policies.is_empty() {
            for (key, backup) in repo.backups {
                out.push(Pruned {
                    key,
                    at: backup.at,
                    kept: vec![KeepReason::NotSelected],
                });
            }
            let indexes = repo.indexes.into_iter();
            for (key, at, _) in indexes.chain(repo.shared) {
                out.push(Pruned {
                    key,
                    at,
                    kept: vec![KeepReason::NotSelected],
                });
            }
            return Ok(out);
        }
        let latest = match self.latest(owner, name).await {
            Ok(latest) => latest,
            Err(e @ RepoError::Invalid { .. }) => {
                // The newest complete backup is protected instead (see `decide`), and
                // the newest data snapshot.
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return Err(e),
        };
        let protected_at = latest
            .as_ref()
            .and_then(|l| crate::Layout::backup_time(&l.backup.key));
        let latest_data = latest.and_then(|l| l.data);
        let backups: Vec<StoredBackup> = repo.backups.iter().map(|(_, b)| b.clone()).collect();
        let mut decisions = vec![Vec::new(); backups.len()];
        for policy in policies {
            add_reasons(&mut decisions, policy.decide(&backups, protected_at, now));
        }
        let keeps_everything = policies.iter().any(RetentionPolicy::is_empty);
        let backup_times: Vec<(Timestamp, bool)> = repo
            .backups
            .iter()
            .zip(&decisions)
            .map(|((_, backup), kept)| (backup.at, !kept.is_empty()))
            .collect();
        repo.indexes.sort_by_key(|(_, at, _)| *at);
        let index_times: Vec<Timestamp> = repo.indexes.iter().map(|(_, at, _)| *at).collect();
        let mut index_decisions = match keeps_everything {
            true => vec![vec![KeepReason::NoPolicy]; index_times.len()],
            false => data_kept(&index_times, &backup_times),
        };
        // Snapshots are restore points of the data in their own right (an issue
        // deleted on GitHub is in the older ones only): each policy keeps its own.
        let snapshots: Vec<StoredBackup> = repo
            .indexes
            .iter()
            .map(|(_, at, stored)| StoredBackup {
                at: *at,
                stored_at: *stored,
                has_manifest: true,
            })
            .collect();
        let latest_data_at = latest_data
            .as_deref()
            .and_then(|key| layout.parse_data(key))
            .map(|(of, _)| of.at);
        for policy in policies {
            add_reasons(
                &mut index_decisions,
                policy.decide(&snapshots, latest_data_at, now),
            );
        }
        let recent = |at: Timestamp, stored: Option<Timestamp>| {
            now.checked_sub(INCOMPLETE_GRACE)
                .is_ok_and(|cutoff| stored.unwrap_or(at) > cutoff)
        };
        let mut needed = BTreeSet::new();
        let mut unreadable = false;
        for ((key, at, stored), mut kept) in repo.indexes.into_iter().zip(index_decisions) {
            if latest_data.as_deref() == Some(key.as_str())
                && !kept.contains(&KeepReason::NewestData)
            {
                kept.push(KeepReason::NewestData);
            }
            // A job may be about to name it in latest.json.
            if kept.is_empty() && recent(at, stored) {
                kept.push(KeepReason::Incomplete);
            }
            if kept.is_empty() {
                store.delete(&key).await?;
            } else if !repo.shared.is_empty() {
                match self.data_index(owner, name, &key).await {
                    Ok(Some(index)) => {
                        let attachments = index.attachments.values();
                        let files = index.kinds.values().chain(index.assets.values());
                        let files = files.chain(attachments.filter_map(|a| a.file.as_ref()));
                        needed.extend(files.map(|f| f.key.clone()));
                    }
                    Ok(None) => {}
                    Err(e @ RepoError::Invalid { .. }) => {
                        tracing::warn!(error = %e, "a kept data snapshot's index is unreadable; keeping every data file and asset of its repository");
                        unreadable = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            out.push(Pruned { key, at, kept });
        }
        for ((key, backup), kept) in repo.backups.into_iter().zip(decisions) {
            let manifest = layout.manifest_for(&key);
            if kept.is_empty() {
                store.delete(&key).await?;
                if let Some(manifest) = manifest.filter(|m| *m != key) {
                    store.delete(&manifest).await?;
                }
            } else if !repo.shared.is_empty() && backup.has_manifest {
                match self.manifest(&key).await {
                    Ok(Some(m)) => {
                        needed.extend(m.all_bundles().map(|b| b.key.clone()));
                        needed.extend(m.stored_lfs().map(|o| layout.lfs(owner, name, &o.oid)));
                    }
                    Ok(None) => {}
                    Err(e @ (RepoError::Invalid { .. } | RepoError::Sealed { .. })) => {
                        tracing::warn!(error = %e, "a kept backup's manifest is unreadable; keeping every link and LFS object of its repository");
                        unreadable = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            out.push(Pruned {
                key,
                at: backup.at,
                kept,
            });
        }
        for (key, at, stored) in repo.shared {
            let kept = if needed.contains(&key) || unreadable {
                vec![KeepReason::Needed]
            } else if recent(at, stored) {
                vec![KeepReason::Incomplete]
            } else if keeps_everything {
                vec![KeepReason::NoPolicy]
            } else {
                store.delete(&key).await?;
                Vec::new()
            };
            out.push(Pruned { key, at, kept });
        }
        Ok(out)
    }
}

/// `more` reasons added to each of `kept`, once each.
fn add_reasons(kept: &mut [Vec<KeepReason>], more: Vec<Vec<KeepReason>>) {
    for (kept, more) in kept.iter_mut().zip(more) {
        for reason in more {
            if !kept.contains(&reason) {
                kept.push(reason);
            }
        }
    }
}

/// Which data snapshots (their times, oldest first) `backups` (time, kept) keep, and
/// why: the newest always, and for each kept backup the snapshot current when it was
/// taken (the newest at or before it: what `restore --at` its time reads) and the last
/// before the next backup (a job reads the data after git, so its own snapshot is a
/// moment younger than its backup, and later jobs that found git unchanged may have
/// read newer data until the next backup). Empty: released.
fn data_kept(indexes: &[Timestamp], backups: &[(Timestamp, bool)]) -> Vec<Vec<KeepReason>> {
    let mut kept = vec![Vec::new(); indexes.len()];
    if let Some(newest) = kept.last_mut() {
        newest.push(KeepReason::NewestData);
    }
    let mut backups = backups.to_vec();
    backups.sort();
    for (i, &(at, is_kept)) in backups.iter().enumerate() {
        if !is_kept {
            continue;
        }
        let current = indexes.iter().rposition(|t| *t <= at);
        let last = match backups.get(i + 1) {
            Some(&(next, _)) => indexes.iter().rposition(|t| *t < next),
            None => indexes.len().checked_sub(1),
        };
        for found in [current, last].into_iter().flatten() {
            if !kept[found].contains(&KeepReason::Needed) {
                kept[found].push(KeepReason::Needed);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + d * 86_400).unwrap()
    }

    /// Which of `indexes` are kept, as day numbers.
    fn kept_days(indexes: &[i64], backups: &[(i64, bool)]) -> Vec<i64> {
        let times: Vec<Timestamp> = indexes.iter().map(|d| day(*d)).collect();
        let backups: Vec<(Timestamp, bool)> = backups.iter().map(|(d, k)| (day(*d), *k)).collect();
        data_kept(&times, &backups)
            .iter()
            .zip(indexes)
            .filter(|(why, _)| !why.is_empty())
            .map(|(_, d)| *d)
            .collect()
    }

    #[test]
    fn a_kept_backup_keeps_the_snapshot_it_was_taken_with_and_the_last_before_the_next() {
        // Backups on days 10, 20, 30, 40; each job's snapshot after it (day 11…), and
        // jobs on days 15, 22 and 25 found git unchanged but read new data.
        let indexes = [5, 11, 15, 21, 22, 25, 31, 41];
        let backups = [(10, false), (20, true), (30, false), (40, false)];
        // Backup 20: current at 20 is 15, the last before 30 is 25; 41 is the newest.
        assert_eq!(kept_days(&indexes, &backups), [15, 25, 41]);
        let backups = [(10, false), (20, false), (30, false), (40, true)];
        assert_eq!(kept_days(&indexes, &backups), [31, 41]);
        let backups = [(10, true), (20, true), (30, true), (40, true)];
        assert_eq!(kept_days(&indexes, &backups), [5, 15, 25, 31, 41]);
    }

    #[test]
    fn the_newest_snapshot_is_kept_whatever_the_backups() {
        assert_eq!(kept_days(&[1, 2, 3], &[]), [3]);
        assert_eq!(kept_days(&[1, 2, 3], &[(2, false)]), [3]);
        assert_eq!(kept_days(&[], &[(2, true)]), Vec::<i64>::new());
        // A snapshot at the very time of a backup is the one it was taken with.
        let why = data_kept(&[day(2), day(3)], &[(day(2), true), (day(9), false)]);
        assert_eq!(
            why,
            [
                vec![KeepReason::Needed],
                vec![KeepReason::NewestData, KeepReason::Needed]
            ]
        );
    }
}
