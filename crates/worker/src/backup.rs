//! One repository's backup: mirror → archive → upload → verify → manifest.

use std::path::Path;

use jiff::Timestamp;
use repovault_core::ports::store::{ObjectMetadata, Store, meta};
use repovault_core::{
    ArchiveDigest, ArchiveRef, JobMessage, Layout, Manifest, Outcome, RECORD_SCHEMA, ResultRecord,
    WikiOutcome, tool_version,
};
use repovault_git::archive::{ArchiveOptions, Entry, stream_archive};
use repovault_git::{GitCredentials, GitError, RepoRefs, dir_size, mirror_clone, read_refs};

use crate::error::BackupError;

/// What a backup attempt needs besides the message.
pub(crate) struct BackupContext<'a> {
    pub store: &'a dyn Store,
    pub git: &'a GitCredentials,
    pub work_dir: &'a Path,
    pub archive: ArchiveOptions,
}

/// Backs up the repository `msg` names and returns its (unwritten) result record.
pub(crate) async fn back_up(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    attempt: u32,
    started_at: Timestamp,
) -> Result<ResultRecord, BackupError> {
    let repo = &msg.repo;
    let layout = Layout::new(&msg.target.prefix);
    std::fs::create_dir_all(ctx.work_dir).map_err(BackupError::WorkDir)?;
    // Removed when dropped: on success, on error, on cancellation and on panic.
    let work = tempfile::Builder::new()
        .prefix(&format!("{}-", repo.name))
        .tempdir_in(ctx.work_dir)
        .map_err(BackupError::WorkDir)?;

    let mirror_dir = work.path().join(format!("{}.git", repo.name));
    mirror_clone(&repo.clone_url, &mirror_dir, ctx.git).await?;
    let mirror = read_refs_blocking(&mirror_dir).await?;

    let wiki_dir = work.path().join(format!("{}.wiki.git", repo.name));
    let (wiki, wiki_refs) = if msg.options.wiki && repo.has_wiki {
        match mirror_clone(&repo.wiki_url(), &wiki_dir, ctx.git).await {
            Ok(()) => (
                WikiOutcome::Mirrored,
                Some(read_refs_blocking(&wiki_dir).await?.refs),
            ),
            // GitHub reports has_wiki for every repository with wikis enabled, but the
            // wiki repository exists only once a page is written.
            Err(GitError::NotFound { .. }) => (WikiOutcome::Absent, None),
            Err(e) => return Err(e.into()),
        }
    } else {
        (WikiOutcome::Skipped, None)
    };

    let created_at = Timestamp::from_second(Timestamp::now().as_second()).expect("now is valid");
    let mut mirror_bytes = dir_size(&mirror_dir).map_err(BackupError::WorkDir)?;
    if wiki == WikiOutcome::Mirrored {
        mirror_bytes += dir_size(&wiki_dir).map_err(BackupError::WorkDir)?;
    }
    let refs_digest = mirror.refs.digest();
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
        mirror_bytes,
        source: repo.clone(),
        archive: None,
    };

    let mut entries = vec![
        Entry::File {
            name: "MANIFEST.json".into(),
            bytes: to_json(&manifest),
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
            bytes: to_json(repo),
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
    let receipt = ctx
        .store
        .put_stream(
            &archive_key,
            stream_archive(entries, ctx.archive),
            &metadata,
        )
        .await?;
    verify_stored(ctx.store, &archive_key, receipt.size, &receipt.sha256).await?;

    manifest.archive = Some(ArchiveDigest {
        size: receipt.size,
        sha256: receipt.sha256.clone(),
    });
    let manifest_key = layout.manifest(&repo.owner, &repo.name, created_at);
    ctx.store.put_json(&manifest_key, &manifest).await?;
    drop(work);

    Ok(ResultRecord {
        schema: RECORD_SCHEMA,
        run_id: msg.run_id.clone(),
        job: msg.job.clone(),
        owner: repo.owner.clone(),
        name: repo.name.clone(),
        outcome: Outcome::Ok,
        attempt,
        started_at,
        finished_at: Timestamp::now(),
        archive: Some(ArchiveRef {
            key: archive_key,
            manifest_key,
            size: receipt.size,
            sha256: receipt.sha256,
        }),
        refs_count: mirror.refs.len(),
        refs_digest: Some(refs_digest),
        empty: mirror.refs.is_empty(),
        wiki,
        error: None,
    })
}

/// Checks that the store holds exactly what was streamed.
async fn verify_stored(
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

async fn read_refs_blocking(path: &Path) -> Result<RepoRefs, BackupError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || read_refs(&path))
        .await
        .map_err(|e| BackupError::Crashed(e.to_string()))?
        .map_err(BackupError::from)
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("serialisable");
    bytes.push(b'\n');
    bytes
}
