//! A backup as the next link of the repository's bundle chain, over git protocol v2:
//! `ls-refs`, then (unless nothing changed) one `fetch` whose pack streams through a
//! check into the store as a git bundle. Nothing is cloned or indexed on disk.
//!
//! The first backup of a chain wants every ref tip and has nothing: its bundle holds
//! every object. A later one sends the previous backup's tips as `have`s: the server
//! sends only the objects they do not reach, and the bundle lists those tips as its
//! prerequisites. A chain starts anew after `full_every`, on `--full`, or when the
//! previous backup is not a chain.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::ports::store::{ObjectMetadata, meta};
use repovault_core::{
    BackupFormat, BackupRef, BundleRef, JobMessage, LatestPointer, LfsObject, Manifest, Outcome,
    RECORD_SCHEMA, ResultRecord, tool_version,
};
use repovault_git::protocol::Remote;
use repovault_git::{GitError, RepoRefs, bundle};
use repovault_repository::Layout;

use crate::backup::{
    BackupContext, Listed, pointers_blocking, retry_in_place, verify_stored, wiki_outcome,
};
use crate::error::BackupError;
use crate::lfs::back_up_lfs;
use repovault_telemetry::{kv, metrics};

/// Backs up the repository at `remote` as the next link of its chain. `listed`: its
/// refs (and its wiki's) when the caller listed them already, to decide "unchanged".
#[allow(clippy::too_many_arguments)]
pub(crate) async fn back_up(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    layout: &Layout,
    remote: &Remote,
    latest: Option<LatestPointer>,
    listed: Option<Listed>,
    attempt: u32,
    started_at: Timestamp,
) -> Result<ResultRecord, BackupError> {
    let repo = &msg.repo;
    let (main, wiki) = match listed {
        Some(Listed { main, wiki }) => {
            let wiki = match wiki {
                Some(refs) => Some((connect_wiki(ctx, &repo.wiki_url()).await?, refs)),
                None => None,
            };
            (main, wiki)
        }
        None => {
            let main =
                retry_in_place(&repo.clone_url, || async { Ok(remote.ls_refs().await?) }).await?;
            let wiki = if msg.options.wiki && repo.has_wiki {
                wiki_refs(ctx, &repo.wiki_url()).await?
            } else {
                None
            };
            (main, wiki)
        }
    };

    let base = chain_base(ctx, msg, latest.as_ref()).await?;
    // The link is written first: its key decides the second (a killed attempt may
    // have left one without a manifest).
    let created_at = ctx
        .repo
        .store()
        .free_second(|at| layout.bundle(&repo.owner, &repo.name, at, false))
        .await?;
    let previous = |wiki: bool| {
        base.as_ref()
            .map(|(_, m)| {
                if wiki {
                    (
                        m.wiki_bundles.clone(),
                        m.wiki_refs.clone().unwrap_or_default(),
                    )
                } else {
                    (m.bundles.clone(), m.refs.clone())
                }
            })
            .filter(|(links, _)| !links.is_empty())
            .unwrap_or_default()
    };
    let key = layout.bundle(&repo.owner, &repo.name, created_at, false);
    let (mut bundles, previous_refs) = previous(false);
    let (link, pointers) = put_link(
        ctx,
        msg,
        remote,
        &main,
        &previous_refs,
        key,
        created_at,
        msg.options.lfs,
    )
    .await?;
    let lfs = match pointers {
        Some(found) => {
            let (known, known_missing) = base
                .as_ref()
                .map(|(_, m)| (m.lfs.clone().unwrap_or_default(), m.lfs_missing.clone()))
                .unwrap_or_default();
            Some(back_up_lfs(ctx, msg, layout, &known, &known_missing, found).await?)
        }
        None => None,
    };
    let mut new_bytes = link.size;
    let own = link.clone();
    bundles.push(link);
    let mut wiki_bundles = Vec::new();
    if let Some((wiki_remote, wiki_refs)) = &wiki {
        let key = layout.bundle(&repo.owner, &repo.name, created_at, true);
        let (links, previous_refs) = previous(true);
        wiki_bundles = links;
        let (link, _) = put_link(
            ctx,
            msg,
            wiki_remote,
            wiki_refs,
            &previous_refs,
            key,
            created_at,
            false,
        )
        .await?;
        new_bytes += link.size;
        wiki_bundles.push(link);
    }

    let manifest = Manifest {
        schema: RECORD_SCHEMA,
        repository: repo.full_name(),
        created_at,
        run_id: msg.run_id.clone(),
        tool: tool_version(),
        default_branch: repo.default_branch.clone(),
        head: main.head.clone(),
        refs: main.refs.clone(),
        refs_digest: main.refs.digest(),
        wiki_refs: wiki.as_ref().map(|(_, w)| w.refs.clone()),
        git_bytes: bundles.iter().chain(&wiki_bundles).map(|b| b.size).sum(),
        source: repo.clone(),
        format: BackupFormat::BundleChain,
        archive: None,
        bundles,
        wiki_bundles,
        base: base.map(|(key, _)| key),
        lfs: lfs.as_ref().map(|l| l.objects.clone()),
        lfs_missing: lfs.as_ref().map(|l| l.missing.clone()).unwrap_or_default(),
    };
    let manifest_key = layout.manifest(&repo.owner, &repo.name, created_at);
    ctx.repo.store().put_json(&manifest_key, &manifest).await?;
    tracing::info!(
        links = manifest.bundles.len(),
        objects = own.objects,
        bytes = new_bytes,
        "chain link stored"
    );
    Ok(ResultRecord {
        backup: Some(BackupRef {
            key: manifest_key.clone(),
            manifest_key,
            size: new_bytes,
            sha256: own.sha256,
        }),
        refs_count: manifest.refs.len(),
        refs_digest: Some(manifest.refs_digest.clone()),
        wiki_refs_digest: manifest.wiki_refs.as_ref().map(|w| w.digest()),
        empty: manifest.refs.is_empty(),
        wiki: wiki_outcome(msg, wiki.is_some()),
        lfs: lfs.map(|l| l.summary),
        ..ResultRecord::of_job(msg, Outcome::Ok, attempt, started_at)
    })
}

/// The wiki's session and refs; `None` when it does not exist (GitHub reports
/// `has_wiki` for every repository with wikis enabled, but the wiki repository exists
/// only once a page is written).
async fn wiki_refs(
    ctx: &BackupContext<'_>,
    url: &str,
) -> Result<Option<(Remote, RepoRefs)>, BackupError> {
    let found = async {
        let remote = connect_wiki(ctx, url).await?;
        let refs = retry_in_place(url, || async { Ok(remote.ls_refs().await?) }).await?;
        Ok((remote, refs))
    };
    match found.await {
        Ok(found) => Ok(Some(found)),
        Err(BackupError::Git(GitError::NotFound { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A protocol v2 session with the wiki (the repository's server speaks it).
async fn connect_wiki(ctx: &BackupContext<'_>, url: &str) -> Result<Remote, BackupError> {
    retry_in_place(url, || async { Ok(Remote::connect(url, ctx.git).await?) })
        .await?
        .ok_or_else(|| {
            GitError::Failed {
                op: "connect",
                url: url.to_owned(),
                detail:
                    "the wiki's server does not speak git protocol v2 but the repository's does"
                        .into(),
            }
            .into()
        })
}

/// The backup this one builds on (its manifest key and manifest), or `None` to start
/// a chain: on `--full`, without a previous chain, when the chain began `full_every`
/// ago or longer, or when one of its links is missing.
async fn chain_base(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    latest: Option<&LatestPointer>,
) -> Result<Option<(String, Manifest)>, BackupError> {
    let Some(latest) = latest.filter(|_| !msg.options.full) else {
        return Ok(None);
    };
    let key = &latest.backup.manifest_key;
    let manifest = match ctx.repo.manifest(&latest.backup.key).await {
        Ok(Some(manifest)) => manifest,
        Ok(None) => return Ok(None),
        Err(e) if e.is_invalid() => {
            tracing::warn!(error = %e, "the latest manifest is unreadable; starting a new chain");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(first) = manifest.bundles.first() else {
        return Ok(None);
    };
    let age = Timestamp::now().duration_since(first.created_at);
    let young = age
        < jiff::SignedDuration::try_from(ctx.settings.full_every)
            .unwrap_or(jiff::SignedDuration::MAX);
    if manifest.format != BackupFormat::BundleChain || !young {
        return Ok(None);
    }
    if msg.options.lfs && manifest.lfs.is_none() {
        tracing::info!(
            "LFS objects are backed up from now on: a new chain, so that every pointer is found"
        );
        return Ok(None);
    }
    // Never build on a chain with a missing link: the new backup would not restore.
    for link in manifest.all_bundles() {
        if ctx.repo.store().head(&link.key).await?.is_none() {
            tracing::warn!(link = %link.key, "a link of the latest backup's chain is missing; starting a new chain");
            return Ok(None);
        }
    }
    Ok(Some((key.clone(), manifest)))
}

/// Streams one link into the store at `key`: a bundle of `refs` whose pack holds the
/// objects not reachable from `previous` refs (all of them without previous refs).
/// Retried in place on transient faults; verified once stored. With `scan_lfs`, the
/// pack is also indexed on the way and the LFS pointers among its blobs returned.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "fetch", skip_all, fields(key = %key, bytes = tracing::field::Empty, objects = tracing::field::Empty))]
async fn put_link(
    ctx: &BackupContext<'_>,
    msg: &JobMessage,
    remote: &Remote,
    refs: &RepoRefs,
    previous: &repovault_core::RefSet,
    key: String,
    created_at: Timestamp,
    scan_lfs: bool,
) -> Result<(BundleRef, Option<BTreeSet<LfsObject>>), BackupError> {
    let wants: BTreeSet<String> = refs.refs.iter().map(|(_, oid)| oid.to_owned()).collect();
    let haves: BTreeSet<String> = previous.iter().map(|(_, oid)| oid.to_owned()).collect();
    let header = Bytes::from(bundle::header(&refs.refs, refs.head.as_deref(), &haves));
    let metadata = ObjectMetadata::from([
        (meta::REPOSITORY.to_owned(), msg.repo.full_name()),
        (meta::BACKUP_DATE.to_owned(), created_at.to_string()),
        (meta::REFS_DIGEST.to_owned(), refs.refs.digest()),
    ]);
    let started = std::time::Instant::now();
    let (receipt, objects, pointers) = retry_in_place(&msg.repo.clone_url, || async {
        // Every tip already in the chain: nothing to ask the server for.
        let (pack, summary, indexed) = if wants.is_subset(&haves) {
            let pack = bundle::empty_pack();
            (
                futures::stream::once(async move { Ok(pack) }).boxed(),
                None,
                None,
            )
        } else {
            let (pack, summary) = remote.fetch(&wants, &haves).await?;
            if ctx.settings.verify_objects || scan_lfs {
                let (pack, verdict) =
                    bundle::index_pack_tee(pack, ctx.work_dir, ctx.settings.verify_objects)?;
                (pack, Some(summary), Some(verdict))
            } else {
                (pack, Some(summary), None)
            }
        };
        let body = futures::stream::once({
            let header = header.clone();
            async move { Ok(header) }
        })
        .chain(pack)
        .boxed();
        let receipt = ctx.repo.store().put_stream(&key, body, &metadata).await?;
        let mut pointers = scan_lfs.then(BTreeSet::new);
        if let Some(verdict) = indexed {
            let scratch = verdict
                .await
                .map_err(|e| BackupError::Crashed(e.to_string()))?
                .map_err(|e| BackupError::Verify {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            if scan_lfs {
                pointers = Some(pointers_blocking(scratch.path()).await?);
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
        Ok((receipt, objects, pointers))
    })
    .await?;
    // The pack streamed from GitHub into the store: one time for both.
    let took = started.elapsed().as_secs_f64();
    let m = metrics();
    m.fetch_duration.record(took, &[]);
    m.bytes_fetched
        .add(receipt.size.saturating_sub(header.len() as u64), &[]);
    m.bytes_stored.add(receipt.size, &[kv("kind", "bundle")]);
    m.upload_throughput
        .record(receipt.size as f64 / took.max(1e-3), &[]);
    let span = tracing::Span::current();
    span.record("bytes", receipt.size);
    span.record("objects", objects);
    verify_stored(ctx.repo.store(), &key, receipt.size, &receipt.sha256).await?;
    let link = BundleRef {
        key,
        size: receipt.size,
        sha256: receipt.sha256,
        objects,
        created_at,
    };
    Ok((link, pointers))
}
