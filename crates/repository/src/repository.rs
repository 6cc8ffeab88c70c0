//! [`Repository`]: one target's backups, read and written through one place.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::ports::store::{
    ByteStream, Created, ObjectDigest, ObjectMetadata, PutReceipt, Store, meta,
};
use repovault_core::{
    ArchiveDigest, BackupFormat, BundleRef, GoneMarker, LatestPointer, LfsObject, Manifest,
    Outcome, ResultRecord, RunId, check_login, check_repo_name,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RepoError;
use crate::layout::{BackupKey, Layout};
use crate::seal::Keys;
use crate::validate;

/// A manifest's part in the clear (all of it, unless sealed): its run, its chain and
/// LFS objects.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Outline {
    #[serde(default)]
    pub run_id: Option<RunId>,
    #[serde(default)]
    pub format: BackupFormat,
    #[serde(default)]
    pub archive: Option<ArchiveDigest>,
    #[serde(default)]
    pub bundles: Vec<BundleRef>,
    #[serde(default)]
    pub wiki_bundles: Vec<BundleRef>,
    #[serde(default)]
    pub lfs: Option<Vec<LfsObject>>,
    #[serde(default)]
    pub lfs_missing: Vec<String>,
    #[serde(default)]
    pub lfs_sealed: std::collections::BTreeMap<String, ArchiveDigest>,
}

/// What [`Repository::clean_up_attempt`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Unfinished uploads aborted.
    pub uploads: usize,
    /// Backups never recorded, removed.
    pub backups: usize,
}

/// The size and SHA-256 of an object as stored, tallied while it is read
/// ([`Repository::read_object`]).
#[derive(Debug, Clone, Default)]
pub struct Tally(Arc<Mutex<ObjectDigest>>);

impl Tally {
    /// What streamed past so far.
    pub fn finish(&self) -> PutReceipt {
        self.0.lock().expect("not poisoned").clone().finish()
    }
}

/// The backups under one target: a store and a key prefix in it (the role restic's
/// repository plays). Every key is built by its [`Layout`]; everything read back is
/// validated before it is returned (see the crate's docs) and follows one error
/// policy ([`RepoError`]): absent is `None`, unreadable is [`RepoError::Invalid`],
/// a store fault is [`RepoError::Store`].
#[derive(Clone)]
pub struct Repository<'a> {
    store: &'a dyn Store,
    layout: Layout,
    keys: Keys,
}

impl std::fmt::Debug for Repository<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("prefix", &self.layout.prefix())
            .finish()
    }
}

/// Which repositories a listing covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'n> {
    All,
    Repo(&'n str, &'n str),
}

impl<'a> Repository<'a> {
    pub fn new(store: &'a dyn Store, prefix: &str) -> Self {
        Repository {
            store,
            layout: Layout::new(prefix),
            keys: Keys::default(),
        }
    }

    /// The repository sealing what it writes to `keys`' recipients and opening what
    /// is sealed with its identities (see the crate's docs for which objects).
    pub fn with_keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn store(&self) -> &'a dyn Store {
        self.store
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Checks names given from outside (an operator's `OWNER/NAME`) before any key or
    /// path is built from them.
    pub fn check_names(owner: &str, name: &str) -> Result<(), RepoError> {
        check_login("owner", owner)
            .and_then(|()| check_repo_name("name", name))
            .map_err(RepoError::Name)
    }

    /// Reads JSON at `key`: `None` if absent, [`RepoError::Invalid`] if not what `T`
    /// is.
    pub(crate) async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, RepoError> {
        Ok(self.store.get_json(key).await?)
    }

    pub(crate) async fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RepoError> {
        Ok(self.store.put_json(key, value).await?)
    }

    /// Writes `manifest` at `key`: its refs and source sealed inside it when the
    /// repository seals (see [`Keys::seal_manifest`]).
    pub(crate) async fn write_manifest(
        &self,
        key: &str,
        manifest: &Manifest,
    ) -> Result<(), RepoError> {
        let stored = self.keys.seal_manifest(key, manifest)?;
        Ok(self.store.put_json(key, &stored).await?)
    }

    /// Streams an object of a backup (an LFS object, a release asset, an attachment)
    /// into the store at `key`, create-only, sealed when the repository seals. The
    /// receipt is of what is stored.
    pub async fn put_object(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, RepoError> {
        let body = self.keys.seal_stream(key, body)?;
        Ok(self.store.put_stream(key, body, metadata).await?)
    }

    /// The size and SHA-256 of the object at `key` as the store recorded them when it
    /// was written (`None`: absent; an empty digest where the store kept none).
    pub async fn stored(&self, key: &str) -> Result<Option<PutReceipt>, RepoError> {
        let info = self.store.head(key).await?;
        Ok(info.map(|info| PutReceipt {
            sha256: info.metadata.get(meta::SHA256).cloned().unwrap_or_default(),
            size: info.size,
        }))
    }

    /// Streams the object at `key` as it was written (opened when sealed), never past
    /// `limit` stored bytes (the stream ends in an error beyond), and tallies what is
    /// stored as it passes: the [`Tally`] holds its size and SHA-256 once the stream
    /// has ended. `None`: absent.
    pub async fn read_object(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<Option<(ByteStream, Tally)>, RepoError> {
        match self.read_stored(key, limit).await? {
            Some((stored, tally)) => Ok(Some((self.keys.open_stream(key, stored).await?, tally))),
            None => Ok(None),
        }
    }

    /// [`Repository::read_object`] without opening it: the bytes as stored (what
    /// `verify` hashes without a key).
    pub async fn read_stored(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<Option<(ByteStream, Tally)>, RepoError> {
        let Some(stored) = self.store.get_stream(key).await? else {
            return Ok(None);
        };
        let tally = Tally::default();
        let counted = tally.clone();
        let mut read = 0u64;
        let tapped = stored
            .map(move |chunk| {
                let chunk = chunk?;
                read += chunk.len() as u64;
                if read > limit {
                    return Err(std::io::Error::other(format!(
                        "more than the {limit} bytes recorded for it"
                    )));
                }
                counted.0.lock().expect("not poisoned").update(&chunk);
                Ok(chunk)
            })
            .boxed();
        Ok(Some((tapped, tally)))
    }

    /// The key prefix of `scope`.
    pub fn prefix_of(&self, scope: Scope<'_>) -> String {
        match scope {
            Scope::All => self.layout.repos_root(),
            Scope::Repo(owner, name) => self.layout.repo_dir(owner, name),
        }
    }

    /// Every backup key in `scope`, sorted (oldest first per repository).
    pub async fn backup_keys(&self, scope: Scope<'_>) -> Result<Vec<String>, RepoError> {
        let keys: Vec<String> = self
            .store
            .list(&self.prefix_of(scope))
            .await?
            .into_iter()
            .map(|o| o.key)
            .collect();
        Ok(self.layout.backups_among(keys.iter().map(String::as_str)))
    }

    /// The backup to restore of `owner/name`: the newest at or before `at`, or without
    /// `at` the one `latest.json` names (else the newest). `None` if there is none.
    pub async fn restore_point(
        &self,
        owner: &str,
        name: &str,
        at: Option<Timestamp>,
    ) -> Result<Option<String>, RepoError> {
        let mut candidates: Vec<(Timestamp, String)> = self
            .backup_keys(Scope::Repo(owner, name))
            .await?
            .into_iter()
            .filter_map(|key| self.layout.parse_backup(&key).map(|b| (b.at, key)))
            .collect();
        candidates.sort();
        if let Some(at) = at {
            return Ok(candidates
                .into_iter()
                .rev()
                .find(|(t, _)| *t <= at)
                .map(|(_, k)| k));
        }
        if let Some(latest) = self.latest(owner, name).await? {
            return Ok(Some(latest.backup.key));
        }
        Ok(candidates.pop().map(|(_, k)| k))
    }

    /// The backup `backup_key` names, and its manifest's key.
    fn manifest_key(&self, backup_key: &str) -> Result<(BackupKey, String), RepoError> {
        let backup = self
            .layout
            .parse_backup(backup_key)
            .ok_or_else(|| RepoError::invalid(backup_key, "not a backup key"))?;
        let key = self
            .layout
            .manifest_for(backup_key)
            .expect("a backup key has a manifest key");
        Ok((backup, key))
    }

    /// The manifest of the backup at `backup_key` (a chain's manifest, or an archive),
    /// checked against the repository the key names. `None`: no manifest there.
    pub async fn manifest(&self, backup_key: &str) -> Result<Option<Manifest>, RepoError> {
        let (backup, key) = self.manifest_key(backup_key)?;
        let Some(stored) = self.read::<serde_json::Value>(&key).await? else {
            return Ok(None);
        };
        let manifest = self.keys.open_manifest(&key, stored)?;
        validate::manifest(&self.layout, &backup.owner, &backup.repo, &manifest)
            .map_err(|reason| RepoError::invalid(&key, reason))?;
        Ok(Some(manifest))
    }

    /// What the manifest of the backup at `backup_key` says in the clear, sealed or
    /// not: its links and LFS objects with what is stored of each (what `verify`
    /// checks without a key), checked like a manifest's.
    pub async fn outline(&self, backup_key: &str) -> Result<Option<Outline>, RepoError> {
        let (backup, key) = self.manifest_key(backup_key)?;
        let Some(outline) = self.read::<Outline>(&key).await? else {
            return Ok(None);
        };
        validate::outline(&self.layout, &backup.owner, &backup.repo, &outline)
            .map_err(|reason| RepoError::invalid(&key, reason))?;
        Ok(Some(outline))
    }

    /// Removes what earlier attempts of `run`'s job of `owner/name`, first delivered
    /// at `first_delivery`, left. The caller knows they are over (a worker stops a
    /// job whose lease it cannot extend before the lease ends) and that no record of
    /// `run` names a backup of theirs.
    ///
    /// - Unfinished uploads of chain links whose key's time (the second their backup
    ///   began) is not before the first delivery. Keys, not the store's upload times
    ///   (some stores keep them to the second only), decide; so a link of another job
    ///   of the repository begun earlier is untouched, but one begun since (a webhook's
    ///   job) is aborted too, and that job's upload fails and is retried. LFS objects
    ///   and assets, whose keys every job shares, are left to the bucket's lifecycle
    ///   rule.
    /// - Backups of `run` begun since (an attempt that died after its manifest and
    ///   before its record, the commit point), so that the redelivery's backup is the
    ///   run's only one: the manifest first, then the backup's own links (those of its
    ///   second); the links of the chain it extended stay, whatever run wrote them.
    ///   Never the backup `latest.json` names, nor another run's.
    pub async fn clean_up_attempt(
        &self,
        owner: &str,
        name: &str,
        run: &RunId,
        first_delivery: Timestamp,
    ) -> Result<Leftovers, RepoError> {
        // Keys carry whole seconds.
        let since =
            Timestamp::from_second(first_delivery.as_second()).expect("a second of a timestamp");
        let ours = |key: &str| {
            self.layout
                .parse_bundle(key)
                .is_some_and(|link| link.at >= since)
        };
        let uploads = self
            .store
            .abort_stale_uploads(&self.layout.packs_dir(owner, name), &ours)
            .await?;
        let latest = self.latest(owner, name).await?.map(|l| l.backup.key);
        let mut backups = 0;
        for key in self.backup_keys(Scope::Repo(owner, name)).await? {
            let (backup, manifest_key) = self.manifest_key(&key)?;
            if backup.at < since || latest.as_deref() == Some(key.as_str()) {
                continue;
            }
            let Some(outline) = self.outline(&key).await? else {
                continue;
            };
            if outline.run_id.as_ref() != Some(run) {
                continue;
            }
            // The manifest first: a link left alone is no backup (`prune` removes it
            // once it is a day old), a manifest without its links is a broken one.
            let mut objects = vec![manifest_key.as_str()];
            if key != manifest_key {
                objects.push(&key);
            }
            objects.extend(
                outline
                    .bundles
                    .iter()
                    .chain(&outline.wiki_bundles)
                    .map(|link| link.key.as_str())
                    .filter(|link| {
                        self.layout
                            .parse_bundle(link)
                            .is_some_and(|b| b.at == backup.at)
                    }),
            );
            for object in objects {
                self.store.delete(object).await?;
            }
            backups += 1;
        }
        Ok(Leftovers { uploads, backups })
    }

    /// `latest.json` of `owner/name`: the newest good backup (and data snapshot).
    pub async fn latest(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<LatestPointer>, RepoError> {
        let key = self.layout.latest(owner, name);
        let Some(latest) = self.read::<LatestPointer>(&key).await? else {
            return Ok(None);
        };
        validate::latest(&self.layout, owner, name, &latest)
            .map_err(|reason| RepoError::invalid(&key, reason))?;
        Ok(Some(latest))
    }

    /// Moves `latest.json` of `owner/name`.
    pub async fn set_latest(
        &self,
        owner: &str,
        name: &str,
        latest: &LatestPointer,
    ) -> Result<(), RepoError> {
        self.write(&self.layout.latest(owner, name), latest).await
    }

    /// Points `latest.json` at a new data snapshot (git unchanged). Without a
    /// `latest.json` there is nothing to point from: the next backup writes one.
    pub async fn set_latest_data(
        &self,
        owner: &str,
        name: &str,
        index: &str,
    ) -> Result<(), RepoError> {
        match self.latest(owner, name).await? {
            Some(mut latest) if latest.data.as_deref() != Some(index) => {
                latest.data = Some(index.to_owned());
                self.set_latest(owner, name, &latest).await
            }
            _ => Ok(()),
        }
    }

    /// `gone.json` of `owner/name`: deleted on GitHub, or moved (and where).
    pub async fn gone(&self, owner: &str, name: &str) -> Result<Option<GoneMarker>, RepoError> {
        let key = self.layout.gone(owner, name);
        let Some(marker) = self.read::<GoneMarker>(&key).await? else {
            return Ok(None);
        };
        validate::gone(&marker).map_err(|reason| RepoError::invalid(&key, reason))?;
        Ok(Some(marker))
    }

    pub async fn mark_gone(
        &self,
        owner: &str,
        name: &str,
        marker: &GoneMarker,
    ) -> Result<(), RepoError> {
        self.write(&self.layout.gone(owner, name), marker).await
    }

    /// Removes `gone.json` of `owner/name` (it is on GitHub again); none is fine.
    pub async fn clear_gone(&self, owner: &str, name: &str) -> Result<(), RepoError> {
        Ok(self.store.delete(&self.layout.gone(owner, name)).await?)
    }

    /// The record of `owner/name` in `run`.
    pub async fn record(
        &self,
        run: &RunId,
        owner: &str,
        name: &str,
    ) -> Result<Option<ResultRecord>, RepoError> {
        let key = self.layout.result(run, owner, name);
        let Some(record) = self.read::<ResultRecord>(&key).await? else {
            return Ok(None);
        };
        validate::record(&self.layout, run, owner, name, &record)
            .map_err(|reason| RepoError::invalid(&key, reason))?;
        Ok(Some(record))
    }

    /// The backups a run wrote or confirmed (its records' `backup`); `None` when there
    /// is no such run (no plan and no record).
    pub async fn run_backups(&self, run: &RunId) -> Result<Option<Vec<String>>, RepoError> {
        let records = self.store.list(&self.layout.results_dir(run)).await?;
        if records.is_empty() && self.store.head(&self.layout.plan(run)).await?.is_none() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for object in records {
            if let Some(record) = self.read::<ResultRecord>(&object.key).await?
                && let Some(backup) = record.backup
            {
                keys.push(backup.key);
            }
        }
        Ok(Some(keys))
    }

    /// Writes `record` once (`If-None-Match: *`): the commit point of a job. Returns the
    /// record that stands instead when another delivery wrote one first. A `failed`
    /// record is the exception: a later attempt's record replaces it (a job redriven
    /// from the dead-letter queue that succeeds, or fails again with today's error); so
    /// is one that cannot be read.
    pub async fn commit_record(
        &self,
        record: &ResultRecord,
    ) -> Result<Option<ResultRecord>, RepoError> {
        let key = self
            .layout
            .result(&record.run_id, &record.owner, &record.name);
        if self.store.put_json_if_absent(&key, record).await? == Created::Created {
            return Ok(None);
        }
        match self
            .record(&record.run_id, &record.owner, &record.name)
            .await
        {
            Ok(Some(standing)) if standing.outcome != Outcome::Failed => Ok(Some(standing)),
            Err(e) if !e.is_invalid() => Err(e),
            // Failed, or unreadable: replaced.
            _ => {
                self.write(&key, record).await?;
                Ok(None)
            }
        }
    }
}
