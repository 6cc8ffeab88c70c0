//! What is backed up, as `ls` and the status page show it: one computation of each
//! figure, so both always agree.

use std::collections::BTreeMap;

use jiff::Timestamp;
use repovault_core::GoneMarker;
use serde::Serialize;

use crate::error::RepoError;
use crate::layout::Layout;
use crate::repository::{Repository, Scope};

/// One backup of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupEntry {
    pub key: String,
    pub created_at: Timestamp,
    /// Bytes this backup added to the store: its own links (the repository's and the
    /// wiki's), or its archive.
    pub bytes_added: u64,
    /// Refs it holds (`None`: no readable manifest).
    pub refs: Option<usize>,
    /// Its place in its chain (1: it starts one); `None` for a first-format archive.
    pub link: Option<usize>,
    /// `latest.json` names it.
    pub latest: bool,
    /// It has a readable manifest (else: incomplete, or unreadable, with why).
    pub problem: Option<String>,
}

/// One repository, as a listing of everything shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoEntry {
    pub owner: String,
    pub name: String,
    pub backups: usize,
    pub newest: Option<Timestamp>,
    /// Bytes its backups added, together.
    pub stored: u64,
    /// Bytes of its data beyond git: every data snapshot's files and release assets.
    pub data: u64,
    /// Deleted on GitHub, or moved (and where).
    pub gone: Option<GoneMarker>,
}

impl RepoEntry {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// How a gone marker reads to people.
pub fn describe_gone(marker: &GoneMarker) -> String {
    let at = marker.at.strftime("%Y-%m-%d");
    match &marker.to {
        Some(to) => format!("moved to {to} ({at})"),
        None => format!("deleted on GitHub ({at}); backups kept"),
    }
}

/// One snapshot of a repository's data beyond git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataEntry {
    /// Its index.
    pub key: String,
    pub fetched_at: Timestamp,
    /// Files it wrote (the kinds that changed) and their bytes; the others it lists are
    /// earlier snapshots' files.
    pub files: usize,
    pub bytes_added: u64,
    /// `latest.json` names it.
    pub latest: bool,
}

/// Bytes of the data beyond git among `sizes` (one repository's listing): data
/// snapshots' files and indexes, and release assets.
fn data_bytes(layout: &Layout, sizes: &BTreeMap<&str, u64>) -> u64 {
    sizes
        .iter()
        .filter(|(key, _)| layout.parse_data(key).is_some() || layout.parse_asset(key).is_some())
        .map(|(_, size)| size)
        .sum()
}

/// Each backup key among `sizes` (one repository's listing) with the bytes it added.
fn bytes_added(layout: &Layout, sizes: &BTreeMap<&str, u64>) -> Vec<(String, Timestamp, u64)> {
    layout
        .backups_among(sizes.keys().copied())
        .into_iter()
        .filter_map(|key| {
            let backup = layout.parse_backup(&key)?;
            let size = if backup.archive {
                sizes[key.as_str()]
            } else {
                [false, true]
                    .iter()
                    .filter_map(|wiki| {
                        sizes.get(
                            layout
                                .bundle(&backup.owner, &backup.repo, backup.at, *wiki)
                                .as_str(),
                        )
                    })
                    .sum()
            };
            Some((key, backup.at, size))
        })
        .collect()
}

impl Repository<'_> {
    /// Every repository in `scope` that has a backup or a gone marker, by name.
    pub async fn repositories(&self, scope: Scope<'_>) -> Result<Vec<RepoEntry>, RepoError> {
        let layout = self.layout();
        let objects = self.store().list(&self.prefix_of(scope)).await?;
        let root = layout.repos_root();
        // owner/name → its objects' sizes.
        let mut by_repo: BTreeMap<(String, String), BTreeMap<&str, u64>> = BTreeMap::new();
        for object in &objects {
            let Some((owner, rest)) = object
                .key
                .strip_prefix(&root)
                .and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            let Some((name, _)) = rest.split_once('/') else {
                continue;
            };
            if !crate::layout::valid_names(owner, name) {
                continue;
            }
            by_repo
                .entry((owner.to_owned(), name.to_owned()))
                .or_default()
                .insert(object.key.as_str(), object.size);
        }
        let mut out = Vec::new();
        for ((owner, name), sizes) in by_repo {
            let gone = if sizes.contains_key(layout.gone(&owner, &name).as_str()) {
                match self.gone(&owner, &name).await {
                    Ok(gone) => gone,
                    Err(e @ RepoError::Invalid { .. }) => {
                        tracing::warn!(error = %e, "gone.json is unreadable");
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            let backups = bytes_added(layout, &sizes);
            if backups.is_empty() && gone.is_none() {
                continue;
            }
            out.push(RepoEntry {
                newest: backups.iter().map(|(_, at, _)| *at).max(),
                stored: backups.iter().map(|(_, _, size)| size).sum(),
                data: data_bytes(layout, &sizes),
                backups: backups.len(),
                owner,
                name,
                gone,
            });
        }
        Ok(out)
    }

    /// The backups of `owner/name`, newest first.
    pub async fn catalog(&self, owner: &str, name: &str) -> Result<Vec<BackupEntry>, RepoError> {
        let objects = self
            .store()
            .list(&self.prefix_of(Scope::Repo(owner, name)))
            .await?;
        let sizes: BTreeMap<&str, u64> = objects.iter().map(|o| (o.key.as_str(), o.size)).collect();
        let latest = match self.latest(owner, name).await {
            Ok(latest) => latest,
            Err(e @ RepoError::Invalid { .. }) => {
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for (key, created_at, bytes_added) in bytes_added(self.layout(), &sizes) {
            let links = |bundles: &[_]| (!bundles.is_empty()).then_some(bundles.len());
            let (refs, link, problem) = match self.manifest(&key).await {
                Ok(Some(m)) => (Some(m.refs.len()), links(&m.bundles), None),
                Ok(None) => (None, None, Some("no manifest (incomplete)".to_owned())),
                Err(e @ RepoError::Invalid { .. }) => (None, None, Some(e.to_string())),
                // Encrypted, and no identity: what its outline says (no refs).
                Err(RepoError::Sealed { .. }) => match self.outline(&key).await {
                    Ok(Some(o)) => (None, links(&o.bundles), None),
                    Ok(None) => (None, None, Some("no manifest (incomplete)".to_owned())),
                    Err(e @ RepoError::Invalid { .. }) => (None, None, Some(e.to_string())),
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            };
            entries.push(BackupEntry {
                latest: latest.as_ref().is_some_and(|l| l.backup.key == key),
                refs,
                link,
                created_at,
                bytes_added,
                problem,
                key,
            });
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        Ok(entries)
    }

    /// The data snapshots of `owner/name` (those with an index), newest first, and the
    /// bytes of its release assets.
    pub async fn data_catalog(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(Vec<DataEntry>, u64), RepoError> {
        let layout = self.layout();
        let objects = self
            .store()
            .list(&self.prefix_of(Scope::Repo(owner, name)))
            .await?;
        let latest = match self.latest(owner, name).await {
            Ok(latest) => latest.and_then(|l| l.data),
            Err(e @ RepoError::Invalid { .. }) => {
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return Err(e),
        };
        // Snapshot time → (index key, files, bytes).
        let mut snapshots: BTreeMap<Timestamp, (Option<String>, usize, u64)> = BTreeMap::new();
        let mut assets = 0;
        for object in &objects {
            if let Some((of, index)) = layout.parse_data(&object.key) {
                let snapshot = snapshots.entry(of.at).or_default();
                match index {
                    true => snapshot.0 = Some(object.key.clone()),
                    false => snapshot.1 += 1,
                }
                snapshot.2 += object.size;
            } else if layout.parse_asset(&object.key).is_some() {
                assets += object.size;
            }
        }
        let entries = snapshots
            .into_iter()
            .rev()
            .filter_map(|(fetched_at, (key, files, bytes_added))| {
                let key = key?;
                Some(DataEntry {
                    latest: latest.as_deref() == Some(key.as_str()),
                    key,
                    fetched_at,
                    files,
                    bytes_added,
                })
            })
            .collect();
        Ok((entries, assets))
    }
}
