//! What repovault writes to the store besides git data: result records, manifests,
//! plans and `latest.json` pointers. Each is versioned JSON (`schema: 1`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{FailureInfo, JobMessage, RefSet, RepoRef, RunId, Target};

pub const RECORD_SCHEMA: u32 = 1;

/// How one repository's backup ended in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new backup was written and verified.
    Ok,
    /// The refs equal the latest backup's; the existing backup still stands.
    Unchanged,
    /// The backup failed; the record says why.
    Failed,
}

/// What happened to the wiki.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WikiOutcome {
    /// Backed up with the repository.
    Mirrored,
    /// The repository claims a wiki but none exists (GitHub answers 404 until the
    /// first page is written). Not an error.
    Absent,
    /// Not requested, or the repository has no wiki.
    Skipped,
}

/// A backup in the store: its key (a chain's manifest, or a first-format archive),
/// its manifest, and the size and SHA-256 of what it added (its own link, or the
/// archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    pub key: String,
    pub manifest_key: String,
    pub size: u64,
    pub sha256: String,
}

/// The completion record of one repository in one run:
/// `runs/<run>/results/<owner>/<repo>.json`, written once (`If-None-Match: *`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub schema: u32,
    pub run_id: RunId,
    pub job: String,
    pub owner: String,
    pub name: String,
    pub outcome: Outcome,
    /// Which delivery of the job message produced this record (1 = first try).
    pub attempt: u32,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The backup holding this repository's state: the new one (`ok`) or the
    /// existing one (`unchanged`). Read from `archive` too, as earlier versions wrote it.
    #[serde(alias = "archive")]
    pub backup: Option<BackupRef>,
    pub refs_count: usize,
    pub refs_digest: Option<String>,
    /// Digest of the wiki's refs when the wiki was mirrored.
    #[serde(default)]
    pub wiki_refs_digest: Option<String>,
    /// The repository has no refs at all (nothing pushed yet). Not an error.
    pub empty: bool,
    pub wiki: WikiOutcome,
    pub error: Option<FailureInfo>,
    /// The repository's data beyond git in this backup (issues, pull requests…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSummary>,
    /// The Git LFS objects of this backup (`options.lfs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<LfsSummary>,
    /// What else there is to say (a repository deleted on GitHub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `repos/<owner>/<repo>/gone.json`: the repository is no longer on GitHub under this
/// name. Its backups stay; this says why and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneMarker {
    pub schema: u32,
    /// `deleted` or `moved`.
    pub reason: String,
    /// Where it went (`owner/name`), when moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub at: Timestamp,
}

/// What a backup did with its repository's Git LFS objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfsSummary {
    /// Objects the backup lists (the refs point at them).
    pub objects: usize,
    /// Of those, downloaded and stored by this backup (the rest were stored already).
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Objects the server has no content for (nothing stored; named in the manifest).
    pub missing: usize,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a backup holds of a repository's data beyond git, for the record and report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The snapshot's index (`repos/<o>/<r>/data/<stamp>/index.json`); `None` when
    /// no snapshot exists yet (the first one failed).
    pub index: Option<String>,
    /// Items across every kind.
    pub items: u64,
    /// Kinds read anew in this backup (the rest are carried over unchanged).
    pub changed: Vec<String>,
    /// REST API requests made, and how many were answered `304 Not Modified`.
    pub requests: u64,
    pub not_modified: u64,
    /// GraphQL queries made (discussions, projects), from another budget.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub graphql_queries: u64,
    /// Kinds the token may not read (collaborators, webhooks… need admin rights).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_permitted: Vec<String>,
    /// The token's rate-limit budget left afterwards, as GitHub said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_remaining: Option<u64>,
    /// Set when the data could not be completed, and why: some kinds could not be read
    /// (`failed` names them; the index is written without their new data), or none at
    /// all (the index is the previous one). The next backup tries again; the git
    /// backup is not affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Kinds that could not be read this time (a 404, a 500, a timeout…), with the
    /// error: each kept the previous snapshot's file, if there was one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub failed: std::collections::BTreeMap<String, String>,
    /// Nothing was asked of GitHub: the organization's event feed showed no activity
    /// since a complete snapshot (the job's [`crate::DataHint`] named no kind), so
    /// `index` stands as it was and `items` is 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

/// A snapshot of a repository's data beyond git: every kind's JSON Lines file (zstd),
/// GitHub's own objects one per line. A kind unchanged since the previous snapshot
/// points at that snapshot's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataIndex {
    pub schema: u32,
    /// `owner/name`.
    pub repository: String,
    /// When every kind was last known current: the read's time, or, when kinds were
    /// carried over on the event feed's word, that of the snapshot it built on.
    pub fetched_at: Timestamp,
    /// When every kind was last read whole (not `since=`): deletions show then.
    pub full_at: Timestamp,
    pub kinds: std::collections::BTreeMap<String, DataFile>,
    /// Release asset files by GitHub's asset id (`repos/<o>/<r>/assets/<id>`), each
    /// stored once and shared by every snapshot that lists it.
    #[serde(default)]
    pub assets: std::collections::BTreeMap<u64, DataFile>,
    /// Kinds the token may not read: recorded, not an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_permitted: Vec<String>,
    /// Kinds that could not be read for this snapshot, and why. Each keeps, in
    /// `kinds`, the file of the last snapshot that read it (none if none did); the
    /// next backup reads it again.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub failed: std::collections::BTreeMap<String, KindFailure>,
    /// The attachments the snapshot's text names (files and images on GitHub's hosts),
    /// by their URL as written: each stored once (`repos/<o>/<r>/attachments/<sha256>`)
    /// and shared by every snapshot that lists it, or why it could not be.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attachments: std::collections::BTreeMap<String, Attachment>,
}

/// An attachment of a [`DataIndex`]: its stored file, or why there is none (deleted
/// on GitHub, a token that may not read it, too large).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<DataFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error may pass (a server error, a timeout, a limit): the next backup tries
    /// again; else the next full read does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transient: bool,
}

/// Why a kind of a [`DataIndex`] could not be read, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindFailure {
    /// The request and what went wrong (`… not found`, `HTTP 500 from …`).
    pub error: String,
    /// The first snapshot of the failures in a row: how long the kind's file is stale.
    pub since: Timestamp,
}

/// One kind's file in a [`DataIndex`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub key: String,
    pub items: u64,
    pub size: u64,
    pub sha256: String,
    /// The validator of the read that decides "changed?" next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ResultRecord {
    /// A record of `msg`'s repository with `outcome`, finished at `finished_at`; what
    /// it backed up and found is filled in by the caller (`..ResultRecord::of_job(…)`).
    pub fn of_job(
        msg: &JobMessage,
        outcome: Outcome,
        attempt: u32,
        started_at: Timestamp,
        finished_at: Timestamp,
    ) -> ResultRecord {
        ResultRecord {
            schema: RECORD_SCHEMA,
            run_id: msg.run_id.clone(),
            job: msg.job.clone(),
            owner: msg.repo.owner.clone(),
            name: msg.repo.name.clone(),
            outcome,
            attempt,
            started_at,
            finished_at,
            backup: None,
            refs_count: 0,
            refs_digest: None,
            wiki_refs_digest: None,
            empty: false,
            wiki: WikiOutcome::Skipped,
            error: None,
            data: None,
            lfs: None,
            note: None,
        }
    }
}

/// Describes one backup: its refs, how its git data is stored, where it came from.
///
/// Stored as `<repo>-<stamp>.manifest.json`. A first-format backup also holds a copy
/// as `MANIFEST.json` inside its archive; only the copy beside it has `archive` (an
/// archive cannot contain its own digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    /// `owner/name`.
    pub repository: String,
    pub created_at: Timestamp,
    pub run_id: RunId,
    /// `repovault <version>`.
    pub tool: String,
    pub default_branch: Option<String>,
    /// What `HEAD` points at in the mirror, e.g. `refs/heads/main`.
    pub head: Option<String>,
    pub refs: RefSet,
    pub refs_digest: String,
    /// The wiki's refs, when the wiki was mirrored.
    pub wiki_refs: Option<RefSet>,
    /// Bytes of the repository's (and wiki's) git data: for a chain, the sizes of every
    /// link it lists; for a first-format archive, the bare mirrors on disk before
    /// compression (what extracting it may write). Read from `mirror_bytes` too, as
    /// earlier versions wrote it.
    #[serde(alias = "mirror_bytes")]
    pub git_bytes: u64,
    /// The repository as the source described it.
    pub source: RepoRef,
    /// How the backup is stored; manifests written before bundle chains have none.
    #[serde(default)]
    pub format: BackupFormat,
    /// `tar-zst` only: the archive's size and digest (absent from the copy inside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveDigest>,
    /// `bundle-chain` only: the repository's chain, oldest link first; this backup's
    /// own link is the last. Applied in order, they give exactly `refs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleRef>,
    /// `bundle-chain` only: the wiki's chain, when the wiki was mirrored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wiki_bundles: Vec<BundleRef>,
    /// `bundle-chain` only: the manifest of the backup this one builds on (`None`: it
    /// starts a chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// With `options.lfs`: every Git LFS object this backup's refs point at (stored
    /// once per repository, under `lfs/<oid>`), sorted by oid. `None`: the backup was
    /// made without `options.lfs` (its pointers were not looked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<Vec<LfsObject>>,
    /// Of `lfs`, the objects the server did not have (a pointer committed without its
    /// content): nothing is stored for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lfs_missing: Vec<String>,
    /// Of `lfs`, those stored encrypted, by oid: the size and SHA-256 of what is
    /// stored (the oid is the content's), so that `verify` checks them without a key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lfs_sealed: std::collections::BTreeMap<String, ArchiveDigest>,
}

/// A Git LFS object, as a pointer file names it: the SHA-256 of its content (the oid,
/// 64 lowercase hex digits) and its size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LfsObject {
    pub oid: String,
    pub size: u64,
}

/// How a backup's git data is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupFormat {
    /// One tar + zstd archive of the bare mirrors (the first format; still read).
    #[default]
    TarZst,
    /// A chain of git bundles: the first holds every object, each later one only the
    /// objects new since the backup before it.
    BundleChain,
}

/// One link of a chain: a standard git bundle (refs, prerequisites, pack) in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    pub key: String,
    pub size: u64,
    pub sha256: String,
    /// Objects in its pack (from the pack's header, checked against its trailer).
    pub objects: u32,
    pub created_at: Timestamp,
}

impl Manifest {
    /// Every bundle this backup needs, the repository's and the wiki's.
    pub fn all_bundles(&self) -> impl Iterator<Item = &BundleRef> {
        self.bundles.iter().chain(&self.wiki_bundles)
    }

    /// The LFS objects this backup stored (listed and not missing on the server).
    pub fn stored_lfs(&self) -> impl Iterator<Item = &LfsObject> {
        self.lfs
            .iter()
            .flatten()
            .filter(|o| !self.lfs_missing.contains(&o.oid))
    }
}

/// Size and SHA-256 of a stored archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveDigest {
    pub size: u64,
    pub sha256: String,
}

/// `repos/<owner>/<repo>/latest.json`: the newest good backup, moved only after a new
/// backup is verified and its record written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestPointer {
    pub schema: u32,
    /// Read from `archive` too, as earlier versions wrote it.
    #[serde(alias = "archive")]
    pub backup: BackupRef,
    pub refs_digest: String,
    /// Digest of the wiki's refs when the wiki was mirrored.
    #[serde(default)]
    pub wiki_refs_digest: Option<String>,
    pub created_at: Timestamp,
    pub run_id: RunId,
    /// The newest snapshot of the repository's data beyond git (its index key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// What the next backup builds on, so that a worker never opens the manifest
    /// (which it cannot when backups are encrypted). Absent in what earlier versions
    /// wrote: the manifest is read instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainHead>,
}

/// The part of a chain's newest manifest a worker needs to add the next link, kept in
/// `latest.json` in the clear: the links (keys, sizes, digests), the object ids its
/// refs point at (no ref names), and the LFS objects it lists (their oids are in their
/// keys already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub bundles: Vec<BundleRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wiki_bundles: Vec<BundleRef>,
    /// The distinct tips of the backup's refs: the next link's prerequisites.
    pub tips: std::collections::BTreeSet<String>,
    /// The wiki's tips, when the wiki was mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wiki_tips: Option<std::collections::BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs: Option<Vec<LfsObject>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lfs_missing: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub lfs_sealed: std::collections::BTreeMap<String, ArchiveDigest>,
}

impl ChainHead {
    /// The head of `manifest`'s chain; `None` for a first-format archive.
    pub fn of(manifest: &Manifest) -> Option<ChainHead> {
        let tips = |refs: &RefSet| refs.iter().map(|(_, oid)| oid.to_owned()).collect();
        (manifest.format == BackupFormat::BundleChain).then(|| ChainHead {
            bundles: manifest.bundles.clone(),
            wiki_bundles: manifest.wiki_bundles.clone(),
            tips: tips(&manifest.refs),
            wiki_tips: manifest.wiki_refs.as_ref().map(tips),
            lfs: manifest.lfs.clone(),
            lfs_missing: manifest.lfs_missing.clone(),
            lfs_sealed: manifest.lfs_sealed.clone(),
        })
    }

    /// Every link, the repository's and the wiki's.
    pub fn all_bundles(&self) -> impl Iterator<Item = &BundleRef> {
        self.bundles.iter().chain(&self.wiki_bundles)
    }
}

/// `runs/<run>/plan.json`: what the planner enqueued for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: u32,
    pub run_id: RunId,
    pub created_at: Timestamp,
    pub target: Target,
    pub repos: Vec<PlannedRepo>,
    /// The run planned into the target before this one (what `latest-run.json` named
    /// then): runs are read newest first along these links, never by listing `runs/`,
    /// which holds every run's records. Absent in plans written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<RunId>,
}

/// `latest-run.json`: the run planned last into a target (see [`Plan::previous`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestRun {
    pub schema: u32,
    pub run_id: RunId,
    pub created_at: Timestamp,
}

/// One planned repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRepo {
    pub job: String,
    pub owner: String,
    pub name: String,
}

impl PlannedRepo {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record, a `latest.json` and a manifest exactly as the version before the
    /// rename wrote them (`archive`, `mirror_bytes`) are still read.
    #[test]
    fn reads_what_earlier_versions_wrote() {
        let backup = r#"{"key": "repos/acme/api/api-20261122T143605Z.manifest.json",
            "manifest_key": "repos/acme/api/api-20261122T143605Z.manifest.json",
            "size": 1234, "sha256": "ab"}"#;
        let record = format!(
            r#"{{"schema": 1, "run_id": "r1", "job": "acme", "owner": "acme", "name": "api",
            "outcome": "ok", "attempt": 1, "started_at": "2026-11-22T14:36:00Z",
            "finished_at": "2026-11-22T14:36:05Z", "archive": {backup}, "refs_count": 3,
            "refs_digest": "d", "wiki_refs_digest": null, "empty": false,
            "wiki": "skipped", "error": null}}"#
        );
        let record: ResultRecord = serde_json::from_str(&record).unwrap();
        assert_eq!(record.backup.as_ref().unwrap().size, 1234);
        let latest = format!(
            r#"{{"schema": 1, "archive": {backup}, "refs_digest": "d",
            "created_at": "2026-11-22T14:36:05Z", "run_id": "r1"}}"#
        );
        let latest: LatestPointer = serde_json::from_str(&latest).unwrap();
        assert_eq!(latest.backup, record.backup.unwrap());
        let manifest = r#"{"schema": 1, "repository": "acme/api",
            "created_at": "2026-11-22T14:36:05Z", "run_id": "r1", "tool": "repovault 0.1.0",
            "default_branch": "main", "head": "refs/heads/main", "refs": {},
            "refs_digest": "d", "wiki_refs": null, "mirror_bytes": 99,
            "source": {"owner": "acme", "name": "api", "id": 1,
              "clone_url": "https://github.com/acme/api.git", "default_branch": "main",
              "pushed_at": null, "size_kb": 1, "private": false, "archived": false,
              "fork": false, "has_wiki": false}}"#;
        let manifest: Manifest = serde_json::from_str(manifest).unwrap();
        assert_eq!(manifest.git_bytes, 99);
        assert_eq!(manifest.format, BackupFormat::TarZst);
        // What this version writes says `backup` and `git_bytes`.
        let written = serde_json::to_value(&latest).unwrap();
        assert!(written.get("backup").is_some() && written.get("archive").is_none());
        assert!(serde_json::to_value(&manifest).unwrap()["git_bytes"] == 99);
    }
}
