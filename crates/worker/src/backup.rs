//! One repository's backup: a link of its bundle chain (see `chain`), or, from a
//! server without git protocol v2, mirror → archive → upload → verify → manifest.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use repovault_core::config::GitSettings;
use repovault_core::ports::store::{ObjectMetadata, Store, json_bytes, meta};
use repovault_core::{
    ArchiveDigest, BackupFormat, BackupRef, Classify, JobMessage, LatestPointer, Manifest, Outcome,
    RECORD_SCHEMA, RefSet, ResultRecord, WikiOutcome, tool_version,
};
use repovault_git::archive::{ArchiveOptions, Entry, stream_archive};
use repovault_git::protocol::Remote;
use repovault_git::{
    GitCredentials, GitError, RepoRefs, dir_size, list_remote_refs, mirror_clone, read_refs,
};
use repovault_repository::{Layout, Repository};

use crate::allow::GitHubAccess;
use crate::error::BackupError;
use crate::lfs::back_up_lfs;
use repovault_telemetry::{kv, metrics};
use tracing::Instrument;

/// What a backup attempt needs besides the message.
pub(crate) struct BackupContext<'a> {
    pub repo: &'a Repository<'a>,
    /// The token as the attempt began, for its git host.
    pub git: &'a GitCredentials,
    /// Where fresh tokens come from, for work that starts later (LFS downloads).
    pub github: &'a GitHubAccess,
    pub work_dir: &'a Path,
    pub archive: ArchiveOptions,
    pub settings: GitSettings,
}

impl BackupContext<'_> {
    /// Credentials with a token that has minutes to live yet.
    pub(crate) async fn fresh_git(&self) -> Result<GitCredentials, BackupError> {
        let token = self
            .github
            .tokens
            .token()
            .await
            .map_err(BackupError::Auth)?;
        Ok(GitCredentials::new(token).scoped(self.github.host.clone()))
    }
}

/// Backs up the repository `msg` names and returns its (unwritten) result record: as
/// the next link of its bundle chain when the server speaks git protocol v2 (always
/// GitHub's), else as a `git clone --mirror` in a tar.zst archive.
pub(crate) async fn back_up(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    attempt: u32,
    started_at: Timestamp,
) -> Result<ResultRecord, BackupError> {
    let repo = &msg.repo;
    let layout = Layout::new(&msg.target.prefix);
    let latest = latest_pointer(ctx.repo, msg).await?;
    // Backed up before: one ref listing (a single request) decides whether anything
    // changed. Without a latest backup nothing is asked twice.
    let listed = match latest.clone() {
        Some(latest) if !msg.options.full => {
            let listed = list_refs(ctx, msg).await?;
            let wiki = listed.wiki.as_ref().map(|w| &w.refs);
            if let Some(record) = unchanged(
                ctx.repo,
                msg,
                latest,
                &listed.main.refs,
                wiki,
                attempt,
                started_at,
            )
            .await?
            {
                return Ok(record);
            }
            Some(listed)
        }
        _ => None,
    };
    let url = &repo.clone_url;
    if let Some(remote) =
        retry_in_place(url, || async { Ok(Remote::connect(url, ctx.git).await?) }).await?
    {
        return crate::chain::back_up(
            ctx, msg, &layout, &remote, latest, listed, attempt, started_at,
        )
        .await;
    }
    tracing::info!(%url, "the server does not speak git protocol v2: git clone --mirror into a tar.zst archive");
    back_up_archive(ctx, msg, &layout, attempt, started_at).await
}

/// A repository's refs and its wiki's (`None`: no wiki wanted, or none exists).
pub(crate) struct Listed {
    pub main: RepoRefs,
    pub wiki: Option<RepoRefs>,
}

/// Lists the refs of the repository and, when wanted, its wiki (`git ls-remote`:
/// one request each), retried in place.
async fn list_refs(ctx: &BackupContext<'_>, msg: &JobMessage) -> Result<Listed, BackupError> {
    let main = list_remote_blocking(&msg.repo.clone_url, ctx.git).await?;
    let wiki = if msg.options.wiki && msg.repo.has_wiki {
        match list_remote_blocking(&msg.repo.wiki_url(), ctx.git).await {
            Ok(wiki) => Some(wiki),
            // GitHub reports has_wiki for every repository with wikis enabled, but the
            // wiki repository exists only once a page is written.
            Err(BackupError::Git(GitError::NotFound { .. })) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(Listed { main, wiki })
}

/// The repository's `latest.json`, if any. An unreadable one is treated as none: the
/// backup is then made in full, which writes a good one.
async fn latest_pointer(
    repo: &Repository<'_>,
    msg: &JobMessage,
) -> Result<Option<LatestPointer>, BackupError> {
    match repo.latest(&msg.repo.owner, &msg.repo.name).await {
        Ok(latest) => Ok(latest),
        Err(e) if e.is_invalid() => {
            tracing::warn!(error = %e, "latest.json is unreadable; backing up in full");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `git clone --mirror` (and the wiki's) into one tar.zst archive.
async fn back_up_archive(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    layout: &Layout,
    attempt: u32,
    started_at: Timestamp,
) -> Result<ResultRecord, BackupError> {
    let repo = &msg.repo;
    let want_wiki = msg.options.wiki && repo.has_wiki;
    std::fs::create_dir_all(ctx.work_dir).map_err(BackupError::WorkDir)?;
    // Removed when dropped: on success, on error, on cancellation and on panic.
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", repo.name))
        .tempdir_in(ctx.work_dir)
        .map_err(BackupError::WorkDir)?;

    let mirror_dir = work.path().join(format!("{}.git", repo.name));
    let started = std::time::Instant::now();
    clone_in_place(&repo.clone_url, &mirror_dir, ctx.git)
        .instrument(tracing::info_span!("fetch", mode = "clone"))
        .await?;
    metrics()
        .fetch_duration
        .record(started.elapsed().as_secs_f64(), &[]);
    let mirror = read_refs_blocking(&mirror_dir).await?;
    let lfs = if msg.options.lfs {
        let found = pointers_blocking(&mirror_dir).await?;
        Some(back_up_lfs(ctx, msg, layout, &[], &[], found).await?)
    } else {
        None
    };

    let wiki_dir = work.path().join(format!("{}.wiki.git", repo.name));
    let (wiki, wiki_refs) = if want_wiki {
        match clone_in_place(&repo.wiki_url(), &wiki_dir, ctx.git).await {
            Ok(()) => (
                WikiOutcome::Mirrored,
                Some(read_refs_blocking(&wiki_dir).await?.refs),
            ),
            // GitHub reports has_wiki for every repository with wikis enabled, but the
            // wiki repository exists only once a page is written.
            Err(BackupError::Git(GitError::NotFound { .. })) => (WikiOutcome::Absent, None),
            Err(e) => return Err(e),
        }
    } else {
        (WikiOutcome::Skipped, None)
    };

    // Two backups of a repository within one second would share a key.
    let created_at = ctx
        .repo
        .store()
        .free_second(|at| layout.archive(&repo.owner, &repo.name, at))
        .await?;
    let mut git_bytes = dir_size(&mirror_dir).map_err(BackupError::WorkDir)?;
    if wiki == WikiOutcome::Mirrored {
        git_bytes += dir_size(&wiki_dir).map_err(BackupError::WorkDir)?;
    }
    let refs_digest = mirror.refs.digest();
    let wiki_refs_digest = wiki_refs.as_ref().map(RefSet::digest);
    let mut manifest = Manifest {
        schema: RECORD_SCHEMA,
        repository: repo.full_name(),
        created_at,
        run_id: msg.run_id.clone(),
        tool: tool_version(),
        default_branch: repo.default_branch.clone(),
        head: mirror.head.clone(),
        refs: mirror.refs.clone(),
        refs_digest: refs_digest.clone(),
        wiki_refs,
        git_bytes,
        source: repo.clone(),
        format: BackupFormat::TarZst,
        archive: None,
        bundles: Vec::new(),
        wiki_bundles: Vec::new(),
        base: None,
        lfs: lfs.as_ref().map(|l| l.objects.clone()),
        lfs_missing: lfs.as_ref().map(|l| l.missing.clone()).unwrap_or_default(),
    };

    let mut entries = vec![
        Entry::File {
            name: "MANIFEST.json".into(),
            bytes: json_bytes(&manifest).to_vec(),
        },
        Entry::Dir {
            name: format!("{}.git", repo.name),
            path: mirror_dir.clone(),
        },
    ];
    if wiki == WikiOutcome::Mirrored {
        entries.push(Entry::Dir {
            name: format!("{}.wiki.git", repo.name),
            path: wiki_dir.clone(),
        });
    }
    if msg.options.metadata {
        entries.push(Entry::File {
            name: "metadata/repository.json".into(),
            bytes: json_bytes(repo).to_vec(),
        });
    }

    let archive_key = layout.archive(&repo.owner, &repo.name, created_at);
    let metadata = ObjectMetadata::from([
        (meta::REPOSITORY.to_owned(), repo.full_name()),
        (meta::BACKUP_DATE.to_owned(), created_at.to_string()),
        (
            meta::DEFAULT_BRANCH.to_owned(),
            repo.default_branch.clone().unwrap_or_default(),
        ),
        (meta::REFS_DIGEST.to_owned(), refs_digest.clone()),
    ]);
    let started = std::time::Instant::now();
    let receipt = ctx
        .repo
        .store()
        .put_stream(
            &archive_key,
            stream_archive(entries, ctx.archive),
            &metadata,
        )
        .instrument(tracing::info_span!("archive", key = %archive_key))
        .await?;
    let m = metrics();
    m.bytes_stored.add(receipt.size, &[kv("kind", "archive")]);
    m.upload_throughput.record(
        receipt.size as f64 / started.elapsed().as_secs_f64().max(1e-3),
        &[],
    );
    verify_stored(
        ctx.repo.store(),
        &archive_key,
        receipt.size,
        &receipt.sha256,
    )
    .await?;

    manifest.archive = Some(ArchiveDigest {
        size: receipt.size,
        sha256: receipt.sha256.clone(),
    });
    let manifest_key = layout.manifest(&repo.owner, &repo.name, created_at);
    ctx.repo.store().put_json(&manifest_key, &manifest).await?;
    drop(work);

    Ok(ResultRecord {
        backup: Some(BackupRef {
            key: archive_key,
            manifest_key,
            size: receipt.size,
            sha256: receipt.sha256,
        }),
        refs_count: mirror.refs.len(),
        refs_digest: Some(refs_digest),
        wiki_refs_digest,
        empty: mirror.refs.is_empty(),
        wiki,
        lfs: lfs.map(|l| l.summary),
        ..ResultRecord::of_job(msg, Outcome::Ok, attempt, started_at)
    })
}

/// The record of an unchanged repository, if the remote's refs (and its wiki's)
/// equal those of the `latest` backup and that backup is still there.
async fn unchanged(
    repo: &Repository<'_>,
    msg: &JobMessage,
    latest: LatestPointer,
    refs: &RefSet,
    wiki_refs: Option<&RefSet>,
    attempt: u32,
    started_at: Timestamp,
) -> Result<Option<ResultRecord>, BackupError> {
    let digest = refs.digest();
    let wiki_digest = wiki_refs.map(RefSet::digest);
    if latest.refs_digest != digest || latest.wiki_refs_digest != wiki_digest {
        return Ok(None);
    }
    if repo.store().head(&latest.backup.key).await?.is_none() {
        tracing::warn!(backup = %latest.backup.key, "latest.json names a backup that is gone; backing up again");
        return Ok(None);
    }
    if msg.options.lfs {
        // Made before LFS was turned on: its objects were never looked for.
        let manifest = match repo.manifest(&latest.backup.key).await {
            Ok(manifest) => manifest,
            Err(e) if e.is_invalid() => None,
            Err(e) => return Err(e.into()),
        };
        if manifest.is_none_or(|m| m.lfs.is_none()) {
            tracing::info!("the latest backup has no LFS objects listed: backing up again");
            return Ok(None);
        }
    }
    let wiki = wiki_outcome(msg, wiki_refs.is_some());
    Ok(Some(ResultRecord {
        backup: Some(latest.backup),
        refs_count: refs.len(),
        refs_digest: Some(digest),
        wiki_refs_digest: wiki_digest,
        empty: refs.is_empty(),
        wiki,
        ..ResultRecord::of_job(msg, Outcome::Unchanged, attempt, started_at)
    }))
}

/// What happened to the wiki, given whether one was found.
pub(crate) fn wiki_outcome(msg: &JobMessage, found: bool) -> WikiOutcome {
    match (found, msg.options.wiki && msg.repo.has_wiki) {
        (true, _) => WikiOutcome::Mirrored,
        (false, true) => WikiOutcome::Absent,
        (false, false) => WikiOutcome::Skipped,
    }
}

/// Checks that the store holds exactly what was streamed.
#[tracing::instrument(name = "verify", skip_all, fields(key = %key))]
pub(crate) async fn verify_stored(
    store: &dyn Store,
    key: &str,
    size: u64,
    sha256: &str,
) -> Result<(), BackupError> {
    let fail = |reason: String| BackupError::Verify {
        key: key.to_owned(),
        reason,
    };
    let info = store
        .head(key)
        .await?
        .ok_or_else(|| fail("the object is missing after upload".into()))?;
    if info.size != size {
        return Err(fail(format!("stored {} bytes, streamed {size}", info.size)));
    }
    match info.metadata.get(meta::SHA256) {
        Some(stored) if stored == sha256 => Ok(()),
        other => Err(fail(format!("stored sha256 {other:?}, streamed {sha256}"))),
    }
}

/// Tries of one git operation before a transient fault (a 5xx, a reset connection, a
/// timeout) fails the attempt: a flaky network costs no queue delivery.
const GIT_TRIES: u32 = 3;
/// The first wait between tries; it doubles, with jitter.
const GIT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Runs `op` until it succeeds, fails for good, or has been tried [`GIT_TRIES`] times.
pub(crate) async fn retry_in_place<T, Fut>(
    url: &str,
    mut op: impl FnMut() -> Fut,
) -> Result<T, BackupError>
where
    Fut: Future<Output = Result<T, BackupError>>,
{
    let mut delay = GIT_RETRY_DELAY;
    let mut tried = 1;
    loop {
        match op().await {
            Err(e) if e.class().is_retryable() && tried < GIT_TRIES => {
                metrics().retries.add(1, &[kv("where", "in_place")]);
                let wait = delay.mul_f64(0.5 + fastrand::f64());
                tracing::warn!(%url, error = %e, tried, wait_ms = wait.as_millis() as u64, "transient git fault; retrying in place");
                tokio::time::sleep(wait).await;
                delay *= 2;
                tried += 1;
            }
            result => return result,
        }
    }
}

/// `git clone --mirror`, retried in place on transient faults (from an empty `dest`).
/// The LFS objects named by pointers among the blobs of the repository at `repo`.
pub(crate) async fn pointers_blocking(
    repo: &Path,
) -> Result<std::collections::BTreeSet<repovault_core::LfsObject>, BackupError> {
    let repo = repo.to_owned();
    tokio::task::spawn_blocking(move || repovault_git::lfs::pointers_in(&repo))
        .await
        .map_err(|e| BackupError::Crashed(e.to_string()))?
        .map_err(BackupError::from)
}

async fn clone_in_place(url: &str, dest: &Path, git: &GitCredentials) -> Result<(), BackupError> {
    retry_in_place(url, || async {
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(BackupError::WorkDir)?;
        }
        mirror_clone(url, dest, git)
            .await
            .map_err(BackupError::from)
    })
    .await
}

/// A remote's refs (`ls-remote`), retried in place on transient faults.
async fn list_remote_blocking(url: &str, git: &GitCredentials) -> Result<RepoRefs, BackupError> {
    retry_in_place(url, || {
        let (url, git) = (url.to_owned(), git.clone());
        async move {
            tokio::task::spawn_blocking(move || list_remote_refs(&url, &git))
                .await
                .map_err(|e| BackupError::Crashed(e.to_string()))?
                .map_err(BackupError::from)
        }
    })
    .await
}

async fn read_refs_blocking(path: &Path) -> Result<RepoRefs, BackupError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || read_refs(&path))
        .await
        .map_err(|e| BackupError::Crashed(e.to_string()))?
        .map_err(BackupError::from)
}
