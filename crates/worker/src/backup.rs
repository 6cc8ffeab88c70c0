//! One repository's git backup: its refs listed (one request), and unless they equal
//! the latest backup's, the next link of its bundle chain (and its wiki's) written
//! through the repository's chain writer, its LFS objects stored, its manifest
//! committed.
//!
//! Each link's pack comes from the server in one protocol v2 `fetch` (the previous
//! backup's tips as `have`s), streamed through a check into the store; from a server
//! that speaks only protocol v0 it comes from a mirror clone, packed by `git
//! pack-objects` with the same tips excluded: the same links either way.

use std::collections::BTreeSet;
use std::path::Path;

use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::config::GitSettings;
use repovault_core::ports::store::ByteStream;
use repovault_core::{
    ChainHead, Clock, JobMessage, LfsObject, Outcome, RefSet, ResultRecord, WikiOutcome,
};
use repovault_git::bundle::{self, PackSummary};
use repovault_git::{RepoRefs, pack_objects};
use repovault_repository::{ChainRules, Found, NewBackup, Repository, StoredLink};
use repovault_telemetry::{kv, metrics};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::error::BackupError;
use crate::lfs::back_up_lfs;
use crate::remote::{Git, Server, pointers};

/// What a backup attempt needs besides the message.
pub(crate) struct BackupContext<'a> {
    pub repo: &'a Repository<'a>,
    pub git: &'a Git<'a>,
    pub work_dir: &'a Path,
    pub settings: GitSettings,
    pub clock: &'a dyn Clock,
}

/// A part of the backup: the repository, or its wiki.
struct Part<'s> {
    wiki: bool,
    server: &'s Server,
    listed: RepoRefs,
}

/// What a backup attempt found and did.
pub(crate) struct BackedUp {
    /// Its (unwritten) result record.
    pub record: ResultRecord,
    /// The newest data snapshot as `latest.json` named it before this backup.
    pub previous_data: Option<String>,
    /// The chain of the backup this attempt wrote, for `latest.json`.
    pub chain: Option<ChainHead>,
}

/// Backs up the repository `msg` names.
pub(crate) async fn back_up(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    attempt: u32,
    started_at: Timestamp,
) -> Result<BackedUp, BackupError> {
    let (repo, source) = (ctx.repo, &msg.repo);
    let latest = match repo.latest(&source.owner, &source.name).await {
        Ok(latest) => latest,
        Err(e) if e.is_invalid() => {
            tracing::warn!(error = %e, "latest.json is unreadable; backing up in full");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let previous_data = latest.as_ref().and_then(|l| l.data.clone());
    let server = ctx.git.connect(&source.clone_url).await?;
    let main = server.refs(ctx.git).await?;
    let wiki = if msg.options.wiki && source.has_wiki {
        ctx.git.wiki(&source.wiki_url()).await?
    } else {
        None
    };
    let wiki_outcome = wiki_outcome(msg, wiki.is_some());
    let wiki_listed = wiki.as_ref().map(|(_, refs)| &refs.refs);
    if let Some(latest) = latest.as_ref().filter(|_| !msg.options.full)
        && repo
            .still_current(latest, &main.refs, wiki_listed, msg.options.lfs)
            .await?
    {
        let record = ResultRecord {
            backup: Some(latest.backup.clone()),
            refs_count: main.refs.len(),
            refs_digest: Some(main.refs.digest()),
            wiki_refs_digest: wiki_listed.map(RefSet::digest),
            empty: main.refs.is_empty(),
            wiki: wiki_outcome,
            ..ResultRecord::of_job(
                msg,
                Outcome::Unchanged,
                attempt,
                started_at,
                ctx.clock.now(),
            )
        };
        return Ok(BackedUp {
            record,
            previous_data,
            chain: None,
        });
    }

    let rules = ChainRules {
        full: msg.options.full,
        full_every: ctx.settings.full_every,
        lfs: msg.options.lfs,
    };
    let now = ctx.clock.now();
    let base = repo.chain_base(latest.as_ref(), &rules, now).await?;
    let mut new = repo.begin_backup(source, &msg.run_id, base, now).await?;
    // Removed when dropped: on success, on error, on cancellation and on panic.
    std::fs::create_dir_all(ctx.work_dir).map_err(BackupError::WorkDir)?;
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{}-", source.name))
        .tempdir_in(ctx.work_dir)
        .map_err(BackupError::WorkDir)?;
    let part = Part {
        wiki: false,
        server: &server,
        listed: main,
    };
    let (refs, found) = put_part(ctx, &mut new, part, msg.options.lfs, scratch.path()).await?;
    let wiki_refs = match wiki {
        Some((server, listed)) => {
            let part = Part {
                wiki: true,
                server: &server,
                listed,
            };
            Some(
                put_part(ctx, &mut new, part, false, scratch.path())
                    .await?
                    .0,
            )
        }
        None => None,
    };
    let lfs = match found {
        Some(found) => Some(back_up_lfs(ctx.repo, ctx.git, msg, new.base_lfs(), found).await?),
        None => None,
    };
    // An empty repository advertises no `HEAD`: its default branch is where it points.
    let head = refs.head.or_else(|| {
        source
            .default_branch
            .as_ref()
            .map(|branch| format!("refs/heads/{branch}"))
    });
    let found = Found {
        head,
        refs: refs.refs,
        wiki_refs: wiki_refs.map(|w| w.refs),
        lfs: lfs.as_ref().map(|l| l.found.clone()),
    };
    let (backup, manifest) = new.commit(found).await?;
    tracing::info!(
        links = manifest.bundles.len(),
        bytes = backup.size,
        "chain link stored"
    );
    let record = ResultRecord {
        backup: Some(backup),
        refs_count: manifest.refs.len(),
        refs_digest: Some(manifest.refs_digest.clone()),
        wiki_refs_digest: manifest.wiki_refs.as_ref().map(RefSet::digest),
        empty: manifest.refs.is_empty(),
        wiki: wiki_outcome,
        lfs: lfs.map(|l| l.summary),
        ..ResultRecord::of_job(msg, Outcome::Ok, attempt, started_at, ctx.clock.now())
    };
    Ok(BackedUp {
        record,
        previous_data,
        chain: ChainHead::of(&manifest),
    })
}

/// What happened to the wiki, given whether one was found.
pub(crate) fn wiki_outcome(msg: &JobMessage, found: bool) -> WikiOutcome {
    match (found, msg.options.wiki && msg.repo.has_wiki) {
        (true, _) => WikiOutcome::Mirrored,
        (false, true) => WikiOutcome::Absent,
        (false, false) => WikiOutcome::Skipped,
    }
}

/// A pack on its way, its summary once drained, and with a scratch repository being
/// built from it, the task that ends with that repository.
type Pack = (
    ByteStream,
    Option<oneshot::Receiver<PackSummary>>,
    Option<tokio::task::JoinHandle<Result<tempfile::TempDir, repovault_git::GitError>>>,
);

/// Writes one part's link: the refs it stored, and with `scan_lfs` the LFS pointers
/// among the objects it added. Retried in place on transient faults.
#[tracing::instrument(name = "fetch", skip_all, fields(wiki = part.wiki, bytes = tracing::field::Empty, objects = tracing::field::Empty))]
async fn put_part(
    ctx: &BackupContext<'_>,
    new: &mut NewBackup<'_>,
    part: Part<'_>,
    scan_lfs: bool,
    scratch: &Path,
) -> Result<(RepoRefs, Option<BTreeSet<LfsObject>>), BackupError> {
    let Part {
        wiki,
        server,
        listed,
    } = part;
    let haves = new.haves(wiki);
    let started = std::time::Instant::now();
    let (refs, stored, objects, pointers) = match server {
        Server::V2(remote) => {
            let refs = listed;
            let wants = tips(&refs.refs);
            let (stored, objects, pointers) = ctx
                .git
                .in_place(remote.url(), || async {
                    let pack = if wants.is_subset(&haves) {
                        empty()
                    } else {
                        let (pack, summary) = remote.fetch(&wants, &haves).await?;
                        tee(ctx, pack, summary, scan_lfs)?
                    };
                    store(new, wiki, &refs, pack, scan_lfs).await
                })
                .await?;
            (refs, stored, objects, pointers)
        }
        Server::V0 { url, .. } => {
            let dir = scratch.join(if wiki { "wiki.git" } else { "repo.git" });
            let refs = ctx
                .git
                .mirror(url, &dir)
                .instrument(tracing::info_span!("clone"))
                .await?;
            let wants = tips(&refs.refs);
            let pack = if wants.is_subset(&haves) {
                empty()
            } else {
                let (pack, summary) = pack_objects(&dir, &wants, &haves).await?;
                (pack, Some(summary), None)
            };
            let (stored, objects, _) = store(new, wiki, &refs, pack, false).await?;
            let pointers = match scan_lfs {
                true => Some(pointers(&dir).await?),
                false => None,
            };
            (refs, stored, objects, pointers)
        }
    };
    // The pack streamed from GitHub into the store: one time for both.
    let took = started.elapsed().as_secs_f64();
    let size = stored.receipt.size;
    let m = metrics();
    m.fetch_duration.record(took, &[]);
    m.bytes_fetched
        .add(size.saturating_sub(stored.header_len as u64), &[]);
    m.bytes_stored.add(size, &[kv("kind", "bundle")]);
    m.upload_throughput
        .record(size as f64 / took.max(1e-3), &[]);
    let span = tracing::Span::current();
    span.record("bytes", size);
    span.record("objects", objects);
    new.add_link(wiki, stored, objects);
    Ok((refs, pointers))
}

/// Every distinct object the refs point at: what a link's pack must reach.
fn tips(refs: &RefSet) -> BTreeSet<String> {
    refs.iter().map(|(_, oid)| oid.to_owned()).collect()
}

/// Every tip already in the chain: nothing to ask the server for.
fn empty() -> Pack {
    let pack = bundle::empty_pack();
    (
        futures::stream::once(async move { Ok(pack) }).boxed(),
        None,
        None,
    )
}

/// With `git.verify-objects` or LFS, the pack is also indexed into a scratch
/// repository as it streams (every object's id computed; with verify-objects, checked).
fn tee(
    ctx: &BackupContext<'_>,
    pack: ByteStream,
    summary: oneshot::Receiver<PackSummary>,
    scan_lfs: bool,
) -> Result<Pack, BackupError> {
    if !(ctx.settings.verify_objects || scan_lfs) {
        return Ok((pack, Some(summary), None));
    }
    let (pack, verdict) = bundle::index_pack_tee(pack, ctx.work_dir, ctx.settings.verify_objects)?;
    Ok((pack, Some(summary), Some(verdict)))
}

/// Stores one link and waits for what the pack's reader and indexer found: its object
/// count and, with `scan_lfs`, the LFS pointers among its blobs.
async fn store(
    new: &NewBackup<'_>,
    wiki: bool,
    refs: &RepoRefs,
    (pack, summary, indexed): Pack,
    scan_lfs: bool,
) -> Result<(StoredLink, u32, Option<BTreeSet<LfsObject>>), BackupError> {
    let stored = new
        .put_link(wiki, &refs.refs, refs.head.as_deref(), pack)
        .await?;
    let checked = async {
        // An empty pack (every tip already in the chain) holds no new pointers: the
        // base's list is carried forward by the LFS step.
        let mut found = scan_lfs.then(BTreeSet::new);
        if let Some(verdict) = indexed {
            let scratch = verdict
                .await
                .map_err(|e| BackupError::Crashed(e.to_string()))?
                .map_err(|e| BackupError::Verify {
                    key: stored.key.clone(),
                    reason: e.to_string(),
                })?;
            if scan_lfs {
                found = Some(pointers(scratch.path()).await?);
            }
        }
        let objects = match summary {
            Some(summary) => {
                summary
                    .await
                    .map_err(|_| BackupError::Crashed("the pack reader stopped".into()))?
                    .objects
            }
            None => 0,
        };
        Ok((objects, found))
    }
    .await;
    match checked {
        Ok((objects, found)) => Ok((stored, objects, found)),
        Err(e) => {
            // The link is stored but its pack failed a check: nothing of this attempt
            // stays, and a try in place can store it again.
            new.discard_link(stored).await;
            Err(e)
        }
    }
}
