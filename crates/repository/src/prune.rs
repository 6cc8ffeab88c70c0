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

/// One repository's backups, and the chain links and LFS objects they share, as
/// `prune` finds them.
#[derive(Default)]
struct RepoObjects {
    backups: Vec<(String, StoredBackup)>,
    /// Key, time in the key (an LFS object's: the store's), time the store wrote it.
    shared: Vec<(String, Timestamp, Option<Timestamp>)>,
}

impl Repository<'_> {
    /// Applies `scopes` to every repository in the store. A repository's backups are
    /// decided by every scope that selects it, and one is kept when any of them keeps
    /// it (so a job without retention keeps everything of the repositories it selects,
    /// whatever another job on the same owner says); a repository no scope selects
    /// keeps everything ([`KeepReason::NotSelected`]). Each decision is
    /// [`RetentionPolicy::decide`]'s, with the backup `latest.json` names protected;
    /// what no rule keeps is deleted with its manifest. Then what backups share by
    /// reference, the links of the chains (`packs/`) and the Git LFS objects (`lfs/`):
    /// one any kept backup's manifest lists stays, one no manifest lists goes once it
    /// is older than [`INCOMPLETE_GRACE`] (younger, a backup may be writing it). No
    /// kept backup is ever left with a missing link or LFS object. On a
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
            if let Some(link) = layout.parse_bundle(&object.key) {
                let repo = by_repo.entry((link.owner, link.repo)).or_default();
                repo.shared
                    .push((object.key.clone(), link.at, object.last_modified));
            } else if let Some((owner, repo)) = layout.parse_lfs(&object.key) {
                // Its key has no time: its age is the store's (unknown: as new).
                let at = object.last_modified.unwrap_or(now);
                let repo = by_repo.entry((owner, repo)).or_default();
                repo.shared
                    .push((object.key.clone(), at, object.last_modified));
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
                    Err(e @ RepoError::Invalid { .. }) => {
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
        repo: RepoObjects,
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
            for (key, at, _) in repo.shared {
                out.push(Pruned {
                    key,
                    at,
                    kept: vec![KeepReason::NotSelected],
                });
            }
            return Ok(out);
        }
        let protected_at = match self.latest(owner, name).await {
            Ok(latest) => latest.and_then(|l| crate::Layout::backup_time(&l.backup.key)),
            Err(e @ RepoError::Invalid { .. }) => {
                // The newest complete backup is protected instead (see `decide`).
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return Err(e),
        };
        let backups: Vec<StoredBackup> = repo.backups.iter().map(|(_, b)| b.clone()).collect();
        let mut decisions = vec![Vec::new(); backups.len()];
        for policy in policies {
            for (kept, more) in decisions
                .iter_mut()
                .zip(policy.decide(&backups, protected_at, now))
            {
                for reason in more {
                    if !kept.contains(&reason) {
                        kept.push(reason);
                    }
                }
            }
        }
        let keeps_everything = policies.iter().any(RetentionPolicy::is_empty);
        let mut needed = BTreeSet::new();
        let mut unreadable = false;
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
                    Err(e @ RepoError::Invalid { .. }) => {
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
            let recent = now
                .checked_sub(INCOMPLETE_GRACE)
                .is_ok_and(|cutoff| stored.unwrap_or(at) > cutoff);
            let kept = if needed.contains(&key) || unreadable {
                vec![KeepReason::Needed]
            } else if recent {
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
