//! Writing a backup as the next link of its repository's bundle chain: choosing the
//! base, storing each link (a git bundle: header, then the pack as received), and the
//! manifest that makes it a restore point.
//!
//! The caller (the worker) fetches; this module decides what the new backup builds on
//! and writes what the format says, so the write side and the read side (`check`)
//! live together.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::ports::store::{ByteStream, ObjectMetadata, PutReceipt, meta};
use repovault_core::{
    ArchiveDigest, BackupFormat, BackupRef, BundleRef, ChainHead, LatestPointer, LfsObject,
    Manifest, RECORD_SCHEMA, RefSet, RepoRef, RunId, tool_version,
};
use repovault_git::bundle;

use crate::error::RepoError;
use crate::repository::Repository;

/// When a backup starts a new chain instead of building on the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainRules {
    /// `--full`: always.
    pub full: bool,
    /// Once the chain's first link is this old.
    pub full_every: Duration,
    /// The backup lists LFS objects: a base made without them is not built on (its
    /// pointers were never looked for).
    pub lfs: bool,
}

/// The backup a new one builds on.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its key (the manifest).
    pub key: String,
    /// Its chain, as `latest.json` (or, from earlier versions, its manifest) says.
    pub head: ChainHead,
}

impl Base {
    /// The chain of the repository (or its wiki) and the tips its links end at; none
    /// when the base has no link for it.
    fn chain(&self, wiki: bool) -> (&[BundleRef], BTreeSet<String>) {
        let h = &self.head;
        if wiki {
            (&h.wiki_bundles, h.wiki_tips.clone().unwrap_or_default())
        } else {
            (&h.bundles, h.tips.clone())
        }
    }
}

/// A backup being written: its time, its base, the links written so far.
#[derive(Debug)]
pub struct NewBackup<'r> {
    repo: &'r Repository<'r>,
    source: RepoRef,
    run_id: RunId,
    created_at: Timestamp,
    base: Option<Base>,
    bundles: Vec<BundleRef>,
    wiki_bundles: Vec<BundleRef>,
    /// Bytes of the links this backup added.
    added: u64,
}

/// What the fetch found, for the manifest.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub head: Option<String>,
    pub refs: RefSet,
    /// `None`: the wiki was not backed up (not wanted, or none exists).
    pub wiki_refs: Option<RefSet>,
    /// With LFS: every object the refs point at, of those the ones the server had no
    /// content for, and the digests of those stored sealed.
    pub lfs: Option<LfsFound>,
}

/// The LFS objects of a backup (see [`Manifest`]'s `lfs`, `lfs_missing`,
/// `lfs_sealed`).
#[derive(Debug, Clone, Default)]
pub struct LfsFound {
    pub objects: Vec<LfsObject>,
    pub missing: Vec<String>,
    pub sealed: BTreeMap<String, ArchiveDigest>,
}

/// A link stored and verified, before its object count is known.
#[derive(Debug, Clone)]
pub struct StoredLink {
    pub key: String,
    pub receipt: PutReceipt,
    /// Bytes of the bundle header before the pack.
    pub header_len: usize,
}

impl Repository<'_> {
    /// The backup the next one of `latest`'s repository builds on, or `None` to start a
    /// chain: on `full`, without a previous chain, when the chain began `full_every`
    /// ago or longer, when LFS objects are wanted and the base has none listed, or when
    /// one of its links is missing or not the size recorded (never build on a chain that
    /// would not restore). The links are checked with one listing of the repository's
    /// links, not a request each.
    pub async fn chain_base(
        &self,
        latest: Option<&LatestPointer>,
        rules: &ChainRules,
        now: Timestamp,
    ) -> Result<Option<Base>, RepoError> {
        let Some(latest) = latest.filter(|_| !rules.full) else {
            return Ok(None);
        };
        let Some(head) = self.chain_head(latest).await? else {
            return Ok(None);
        };
        let Some(first) = head.bundles.first() else {
            return Ok(None);
        };
        let age = now.duration_since(first.created_at);
        let young = age
            < jiff::SignedDuration::try_from(rules.full_every).unwrap_or(jiff::SignedDuration::MAX);
        if !young {
            return Ok(None);
        }
        if rules.lfs && head.lfs.is_none() {
            tracing::info!(
                "LFS objects are backed up from now on: a new chain, so that every pointer is found"
            );
            return Ok(None);
        }
        let Some(backup) = self.layout().parse_backup(&latest.backup.key) else {
            return Ok(None);
        };
        let packs = self.layout().packs_dir(&backup.owner, &backup.repo);
        let stored: std::collections::HashMap<String, u64> = self
            .store()
            .list(&packs)
            .await?
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect();
        for link in head.all_bundles() {
            if stored.get(&link.key) != Some(&link.size) {
                tracing::warn!(link = %link.key, "a link of the latest backup's chain is missing or not the size recorded; starting a new chain");
                return Ok(None);
            }
        }
        Ok(Some(Base {
            key: latest.backup.key.clone(),
            head,
        }))
    }

    /// The chain `latest` names: from `latest.json` itself, or, as earlier versions
    /// wrote it without, from the manifest (`None` when that is unreadable, sealed or
    /// not a chain: the next backup starts one).
    async fn chain_head(&self, latest: &LatestPointer) -> Result<Option<ChainHead>, RepoError> {
        if let Some(head) = &latest.chain {
            return Ok(Some(head.clone()));
        }
        match self.manifest(&latest.backup.key).await {
            Ok(manifest) => Ok(manifest.as_ref().and_then(ChainHead::of)),
            Err(e @ (RepoError::Invalid { .. } | RepoError::Sealed { .. })) => {
                tracing::warn!(error = %e, "the latest manifest is unreadable; starting a new chain");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the `latest` backup still stands for a repository whose refs are now
    /// `refs` (and its wiki's `wiki_refs`): same digests and, when LFS objects are
    /// wanted, made with them. Nothing is read: prune never deletes the backup
    /// `latest.json` names, and `verify` is what finds one removed from outside.
    pub async fn still_current(
        &self,
        latest: &LatestPointer,
        refs: &RefSet,
        wiki_refs: Option<&RefSet>,
        lfs: bool,
    ) -> Result<bool, RepoError> {
        if latest.refs_digest != refs.digest()
            || latest.wiki_refs_digest != wiki_refs.map(RefSet::digest)
        {
            return Ok(false);
        }
        if lfs {
            let head = self.chain_head(latest).await?;
            if head.is_none_or(|h| h.lfs.is_none()) {
                tracing::info!("the latest backup has no LFS objects listed: backing up again");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Begins a backup of `source` at `now` (moved past any second a link of this
    /// repository already has: a killed attempt may have left one) on `base`.
    pub async fn begin_backup(
        &self,
        source: &RepoRef,
        run_id: &RunId,
        base: Option<Base>,
        now: Timestamp,
    ) -> Result<NewBackup<'_>, RepoError> {
        let layout = self.layout();
        let created_at = self
            .store()
            .free_second(now, |at| {
                layout.bundle(&source.owner, &source.name, at, false)
            })
            .await?;
        let (bundles, wiki_bundles) = match &base {
            Some(base) => (base.chain(false).0.to_vec(), base.chain(true).0.to_vec()),
            None => (Vec::new(), Vec::new()),
        };
        Ok(NewBackup {
            repo: self,
            source: source.clone(),
            run_id: run_id.clone(),
            created_at,
            base,
            bundles,
            wiki_bundles,
            added: 0,
        })
    }
}

impl NewBackup<'_> {
    /// The tips the new link's pack need not hold (the base's, when it has a chain for
    /// the repository or wiki): the fetch's `have`s and the bundle's prerequisites.
    pub fn haves(&self, wiki: bool) -> BTreeSet<String> {
        match &self.base {
            Some(base) => {
                let (links, refs) = base.chain(wiki);
                if links.is_empty() {
                    BTreeSet::new()
                } else {
                    refs
                }
            }
            None => BTreeSet::new(),
        }
    }

    /// The LFS objects the base lists, those it could not store, and the digests of
    /// those stored sealed.
    pub fn base_lfs(&self) -> LfsFound {
        self.base
            .as_ref()
            .map(|b| LfsFound {
                objects: b.head.lfs.clone().unwrap_or_default(),
                missing: b.head.lfs_missing.clone(),
                sealed: b.head.lfs_sealed.clone(),
            })
            .unwrap_or_default()
    }

    /// Where the new link of the repository (or wiki) goes.
    fn link_key(&self, wiki: bool) -> String {
        self.repo
            .layout()
            .bundle(&self.source.owner, &self.source.name, self.created_at, wiki)
    }

    /// Streams one link into the store: the bundle header (`refs`, `HEAD` when it is
    /// one of them, the base's tips as prerequisites), then `pack`. Create-only; the
    /// stored object's size and SHA-256 are then checked against what streamed. A
    /// failed attempt stores nothing, so it can be tried again.
    pub async fn put_link(
        &self,
        wiki: bool,
        refs: &RefSet,
        head: Option<&str>,
        pack: ByteStream,
    ) -> Result<StoredLink, RepoError> {
        let key = self.link_key(wiki);
        let header = Bytes::from(bundle::header(refs, head, &self.haves(wiki)));
        let header_len = header.len();
        let metadata = ObjectMetadata::from([
            (meta::REPOSITORY.to_owned(), self.source.full_name()),
            (meta::BACKUP_DATE.to_owned(), self.created_at.to_string()),
            (meta::REFS_DIGEST.to_owned(), refs.digest()),
        ]);
        let body = futures::stream::once(async move { Ok(header) })
            .chain(pack)
            .boxed();
        let receipt = self.repo.put_verified(&key, body, &metadata).await?;
        Ok(StoredLink {
            key,
            receipt,
            header_len,
        })
    }

    /// Removes a stored link whose pack then failed its checks: the attempt leaves
    /// nothing behind and can be tried again under the same key (keys are create-only).
    pub async fn discard_link(&self, link: StoredLink) {
        if let Err(e) = self.repo.store().delete(&link.key).await {
            tracing::warn!(key = %link.key, error = %e, "could not remove a link that failed its checks");
        }
    }

    /// Adds a stored link (holding `objects` objects) to the backup's chain.
    pub fn add_link(&mut self, wiki: bool, link: StoredLink, objects: u32) {
        self.added += link.receipt.size;
        let link = BundleRef {
            key: link.key,
            size: link.receipt.size,
            sha256: link.receipt.sha256,
            objects,
            created_at: self.created_at,
        };
        if wiki {
            self.wiki_bundles.push(link);
        } else {
            self.bundles.push(link);
        }
    }

    /// Writes the manifest: the backup exists from now on (its record, written next,
    /// makes it the run's). Returns what the record and `latest.json` point at.
    pub async fn commit(self, found: Found) -> Result<(BackupRef, Manifest), RepoError> {
        let layout = self.repo.layout();
        let (owner, name) = (&self.source.owner, &self.source.name);
        let own = self
            .bundles
            .last()
            .filter(|b| b.created_at == self.created_at)
            .map(|b| b.sha256.clone())
            .unwrap_or_default();
        let (lfs, lfs_missing, lfs_sealed) = match found.lfs {
            Some(f) => (Some(f.objects), f.missing, f.sealed),
            None => (None, Vec::new(), BTreeMap::new()),
        };
        let manifest = Manifest {
            schema: RECORD_SCHEMA,
            repository: self.source.full_name(),
            created_at: self.created_at,
            run_id: self.run_id,
            tool: tool_version(),
            default_branch: self.source.default_branch.clone(),
            head: found.head,
            refs_digest: found.refs.digest(),
            refs: found.refs,
            wiki_refs: found.wiki_refs,
            git_bytes: self
                .bundles
                .iter()
                .chain(&self.wiki_bundles)
                .map(|b| b.size)
                .sum(),
            source: self.source.clone(),
            format: BackupFormat::BundleChain,
            archive: None,
            bundles: self.bundles,
            wiki_bundles: self.wiki_bundles,
            base: self.base.map(|b| b.key),
            lfs,
            lfs_missing,
            lfs_sealed,
        };
        let key = layout.manifest(owner, name, self.created_at);
        self.repo.write_manifest(&key, &manifest).await?;
        Ok((
            BackupRef {
                key: key.clone(),
                manifest_key: key,
                size: self.added,
                sha256: own,
            },
            manifest,
        ))
    }
}

impl Repository<'_> {
    /// Streams `body` into the store at `key` (create-only) and checks that the store
    /// holds exactly what streamed: size and SHA-256.
    pub(crate) async fn put_verified(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, RepoError> {
        let body = self.keys().seal_stream(key, body)?;
        let receipt = self.store().put_stream(key, body, metadata).await?;
        if let Err(e) = self.verify_stored(key, &receipt).await {
            // Not what streamed: nothing of this attempt stays.
            if let Err(delete) = self.store().delete(key).await {
                tracing::warn!(key, error = %delete, "could not remove an object that failed its check");
            }
            return Err(e);
        }
        Ok(receipt)
    }

    #[tracing::instrument(name = "verify", skip_all, fields(key = %key))]
    async fn verify_stored(&self, key: &str, receipt: &PutReceipt) -> Result<(), RepoError> {
        let info = self
            .store()
            .head(key)
            .await?
            .ok_or_else(|| mismatch(key, "missing after its upload".into()))?;
        if info.size != receipt.size {
            return Err(mismatch(
                key,
                format!("stored {} bytes, streamed {}", info.size, receipt.size),
            ));
        }
        match info.metadata.get(meta::SHA256) {
            Some(stored) if *stored == receipt.sha256 => Ok(()),
            other => Err(mismatch(
                key,
                format!("stored sha256 {other:?}, streamed {}", receipt.sha256),
            )),
        }
    }
}

fn mismatch(key: &str, reason: String) -> RepoError {
    RepoError::Mismatch {
        key: key.to_owned(),
        reason,
    }
}
