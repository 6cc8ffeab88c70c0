//! A backup's Git LFS objects (`options.lfs`): each stored once per repository under
//! `lfs/<oid>`, downloaded only when the store does not have it yet, streamed from
//! GitHub into the store, and checked against its oid (the SHA-256 of its content)
//! before the backup lists it.

use std::collections::BTreeSet;

use futures::StreamExt;
use repovault_core::ports::store::{ObjectMetadata, PutReceipt, StoreError, meta};
use repovault_core::{ArchiveDigest, JobMessage, LfsObject, LfsSummary};
use repovault_git::lfs::{Answer, BATCH, Download, LfsRemote};
use repovault_telemetry::{kv, metrics};

use repovault_repository::{LfsFound, RepoError, Repository};

use crate::error::BackupError;
use crate::remote::Git;

/// Objects downloaded at once per job.
const DOWNLOADS_AT_ONCE: usize = 4;

/// The LFS objects a backup lists, and what it did to store them.
pub(crate) struct LfsBackup {
    /// Every object the backup needs (sorted by oid), those the server has no content
    /// for, and the digests of those stored sealed.
    pub found: LfsFound,
    pub summary: LfsSummary,
}

/// Stores the LFS objects named by `found` (pointers in the objects this backup
/// fetched) that the store does not have, on top of `known` (what the backup it builds
/// on lists; its missing objects are tried again). Returns the list for the manifest.
#[tracing::instrument(name = "lfs", skip_all, fields(found = found.len()))]
pub(crate) async fn back_up_lfs(
    repo: &Repository<'_>,
    git: &Git<'_>,
    msg: &JobMessage,
    known: LfsFound,
    found: BTreeSet<LfsObject>,
) -> Result<LfsBackup, BackupError> {
    let (source, layout) = (&msg.repo, repo.layout());
    let LfsFound {
        objects: known,
        missing: known_missing,
        mut sealed,
    } = known;
    let seals = repo.keys().seals();
    let known_set: BTreeSet<&LfsObject> = known.iter().collect();
    let mut to_check: Vec<LfsObject> = found
        .iter()
        .filter(|o| !known_set.contains(o))
        .cloned()
        .collect();
    to_check.extend(
        known
            .iter()
            .filter(|o| known_missing.contains(&o.oid))
            .cloned(),
    );
    let mut needed = Vec::new();
    for object in to_check {
        let key = layout.lfs(&source.owner, &source.name, &object.oid);
        match repo.store().head(&key).await? {
            Some(info) if seals => match info.metadata.get(meta::SHA256) {
                // Stored sealed by an earlier backup of another chain: its digest as
                // the store recorded it at write time.
                Some(sha256) if info.size > object.size => {
                    sealed.insert(
                        object.oid.clone(),
                        ArchiveDigest {
                            size: info.size,
                            sha256: sha256.clone(),
                        },
                    );
                }
                _ => {
                    tracing::warn!(%key, "a stored LFS object is not sealed as expected; storing it again");
                    repo.store().delete(&key).await?;
                    needed.push(object);
                }
            },
            Some(info) if info.size == object.size => {}
            Some(info) => {
                // Damaged: stored again from the server (keys are create-only).
                tracing::warn!(%key, size = info.size, expected = object.size, "a stored LFS object has the wrong size; storing it again");
                repo.store().delete(&key).await?;
                needed.push(object);
            }
            None => needed.push(object),
        }
    }
    let mut summary = LfsSummary::default();
    let mut missing = Vec::new();
    for batch in needed.chunks(BATCH) {
        // A fresh token per batch: downloading gigabytes can outlast one.
        let remote = LfsRemote::new(&source.clone_url, &git.fresh().await?);
        let answers = git
            .in_place(&source.clone_url, || async {
                Ok(remote.batch(batch).await?)
            })
            .await?;
        let mut downloads = Vec::new();
        for answer in answers {
            match answer {
                Answer::Download(download) => downloads.push(download),
                Answer::Unavailable(object, reason) => {
                    tracing::warn!(oid = %object.oid, %reason, "the LFS server has no content for a pointer; nothing stored for it");
                    missing.push(object.oid);
                }
            }
        }
        // Collected first: a lazy `map` in the stream trips the compiler's `Send` check.
        let stores: Vec<_> = downloads
            .iter()
            .map(|download| store_object(repo, git, msg, &remote, download))
            .collect();
        // In the order they finish: each result names its object.
        let stored: Vec<Result<Stored, BackupError>> = futures::stream::iter(stores)
            .buffer_unordered(DOWNLOADS_AT_ONCE)
            .collect()
            .await;
        for result in stored {
            let Stored {
                oid,
                receipt,
                uploaded,
            } = result?;
            if uploaded {
                summary.uploaded_bytes += receipt.size;
                summary.uploaded += 1;
            }
            if seals {
                sealed.insert(
                    oid,
                    ArchiveDigest {
                        size: receipt.size,
                        sha256: receipt.sha256,
                    },
                );
            }
        }
    }
    let mut objects: BTreeSet<LfsObject> = found;
    objects.extend(known.iter().cloned());
    missing.sort();
    summary.objects = objects.len();
    summary.missing = missing.len();
    if summary.uploaded > 0 || !missing.is_empty() {
        tracing::info!(
            objects = summary.objects,
            uploaded = summary.uploaded,
            bytes = summary.uploaded_bytes,
            missing = summary.missing,
            "LFS objects stored"
        );
    }
    sealed.retain(|oid, _| objects.iter().any(|o| &o.oid == oid));
    Ok(LfsBackup {
        found: LfsFound {
            objects: objects.into_iter().collect(),
            missing,
            sealed,
        },
        summary,
    })
}

/// An LFS object in the store: what is stored of it, and whether this backup
/// uploaded it (or another stored it meanwhile).
struct Stored {
    oid: String,
    receipt: PutReceipt,
    uploaded: bool,
}

/// Streams one object from the LFS server into the store (sealed when the repository
/// seals). The download ends in an error unless it is exactly the object (the
/// pointer's size, SHA-256 the oid), so nothing else is ever stored under its key.
async fn store_object(
    repo: &Repository<'_>,
    git: &Git<'_>,
    msg: &JobMessage,
    remote: &LfsRemote,
    download: &Download,
) -> Result<Stored, BackupError> {
    let object = &download.object;
    let key = repo
        .layout()
        .lfs(&msg.repo.owner, &msg.repo.name, &object.oid);
    let metadata = ObjectMetadata::from([(meta::REPOSITORY.to_owned(), msg.repo.full_name())]);
    let receipt = git
        .in_place(&msg.repo.clone_url, || async {
            let body = remote.download(download).await?;
            match repo.put_object(&key, body, &metadata).await {
                // Another backup of the repository stored it meanwhile.
                Err(RepoError::Store(StoreError::AlreadyExists { .. })) => Ok(None),
                other => Ok(Some(other?)),
            }
        })
        .await?;
    let (receipt, uploaded) = match receipt {
        Some(receipt) => {
            metrics().bytes_fetched.add(object.size, &[]);
            metrics()
                .bytes_stored
                .add(receipt.size, &[kv("kind", "lfs")]);
            (receipt, true)
        }
        None => {
            let stored = repo
                .stored(&key)
                .await?
                .ok_or_else(|| RepoError::Mismatch {
                    key: key.clone(),
                    reason: "vanished after another backup stored it".into(),
                })?;
            (stored, false)
        }
    };
    Ok(Stored {
        oid: object.oid.clone(),
        receipt,
        uploaded,
    })
}
