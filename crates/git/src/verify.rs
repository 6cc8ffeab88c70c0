//! Reading archives back: downloading with a running digest, extracting safely at the
//! same time, and checking the result against the manifest beside the archive. Used by
//! `verify` (with or without a restore drill) and `restore`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use repovault_core::ports::store::{ObjectDigest, PutReceipt, Store, StoreError};
use repovault_core::{Layout, Manifest, RefSet};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::restore::{ExtractError, extract_archive, fsck, make_safe, unresolved_refs};

/// Why an archive does not check out. The text is what `verify` prints after `FAIL`.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("not an archive key")]
    NotAnArchive,
    #[error("its manifest {0} is missing")]
    NoManifest(String),
    #[error("its manifest has no archive digest")]
    NoDigest,
    #[error("the archive is missing")]
    Missing,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("download failed: {0}")]
    Download(std::io::Error),
    #[error("cannot extract: {0}")]
    Extract(ExtractError),
    #[error("extraction crashed: {0}")]
    Crashed(String),
    #[error("{found} bytes, the manifest says {expected}")]
    Size { found: u64, expected: u64 },
    #[error("sha256 {found}, the manifest says {expected}")]
    Sha256 { found: String, expected: String },
    /// A repository inside is not what the manifest says, or not whole.
    #[error("{0}")]
    Repository(String),
}

/// A checked archive.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    pub size: u64,
}

/// Streams the archive at `key` once, hashing every byte and, with `extract_to`,
/// extracting it there as it arrives. Checks size and SHA-256 against the manifest
/// beside the archive and, when extracted, that every repository inside has exactly
/// the manifest's refs and passes `git fsck --full`. The error says what is wrong.
pub async fn check_archive(
    store: &dyn Store,
    layout: &Layout,
    key: &str,
    extract_to: Option<&Path>,
) -> Result<Checked, CheckError> {
    let manifest_key = layout.manifest_for(key).ok_or(CheckError::NotAnArchive)?;
    let manifest: Manifest = store
        .get_json(&manifest_key)
        .await?
        .ok_or(CheckError::NoManifest(manifest_key))?;
    let expected = manifest.archive.clone().ok_or(CheckError::NoDigest)?;
    let stream = store.get_stream(key).await?.ok_or(CheckError::Missing)?;
    let digest = Arc::new(Mutex::new(ObjectDigest::default()));
    let tally = digest.clone();
    let mut downloaded = 0u64;
    let size_limit = expected.size;
    // Never read past the size the manifest records: a swapped or growing object
    // cannot make us download (or extract) more than a backup of this size holds.
    let hashed = stream.map(move |chunk| {
        let bytes = chunk?;
        downloaded += bytes.len() as u64;
        if downloaded > size_limit {
            return Err(std::io::Error::other(format!(
                "more than the {size_limit} bytes the manifest records"
            )));
        }
        tally
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(&bytes);
        Ok(bytes)
    });
    // What the files inside may add up to: the mirrors the manifest measured, plus the
    // manifest and metadata files written beside them.
    let max_bytes = manifest.mirror_bytes.saturating_add(EXTRA_FILES_ALLOWANCE);
    let extraction = match extract_to {
        None => {
            let mut hashed = Box::pin(hashed);
            while let Some(chunk) = hashed.next().await {
                chunk.map_err(CheckError::Download)?;
            }
            None
        }
        Some(dir) => {
            let dir = dir.to_owned();
            let result = tokio::task::spawn_blocking(move || {
                extract_archive(
                    SyncIoBridge::new(StreamReader::new(Box::pin(hashed))),
                    &dir,
                    max_bytes,
                )
            })
            .await
            .map_err(|e| CheckError::Crashed(e.to_string()))?;
            Some(result)
        }
    };
    let PutReceipt { size, sha256 } =
        std::mem::take(&mut *digest.lock().unwrap_or_else(|p| p.into_inner())).finish();
    if let Some(Err(e)) = extraction {
        return Err(CheckError::Extract(e));
    }
    if size != expected.size {
        return Err(CheckError::Size {
            found: size,
            expected: expected.size,
        });
    }
    if sha256 != expected.sha256 {
        return Err(CheckError::Sha256 {
            found: sha256,
            expected: expected.sha256,
        });
    }
    if let Some(dir) = extract_to {
        let name = &manifest.source.name;
        check_repo(&dir.join(format!("{name}.git")), &manifest.refs)
            .map_err(CheckError::Repository)?;
        if let Some(wiki) = &manifest.wiki_refs {
            check_repo(&dir.join(format!("{name}.wiki.git")), wiki)
                .map_err(|e| CheckError::Repository(format!("wiki: {e}")))?;
        }
    }
    Ok(Checked { manifest, size })
}

/// Room for the files an archive holds besides the mirrors (`MANIFEST.json`,
/// `metadata/`), when limiting what an extraction may write.
const EXTRA_FILES_ALLOWANCE: u64 = 64 << 20;

/// The repository at `path` is made safe to run git in, has exactly `expected` refs
/// and is whole.
fn check_repo(path: &Path, expected: &RefSet) -> Result<(), String> {
    make_safe(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let found = crate::read_refs(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .refs;
    if &found != expected {
        return Err(format!(
            "refs differ from the manifest: {}",
            describe_difference(expected, &found)
        ));
    }
    let unresolved =
        unresolved_refs(path, expected).map_err(|e| format!("{}: {e}", path.display()))?;
    if !unresolved.is_empty() {
        return Err(format!(
            "refs point at missing objects: {}",
            unresolved.join(", ")
        ));
    }
    match fsck(path) {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(
                "git is not installed: every ref's object checked, connectivity not (no git fsck)"
            );
            Ok(())
        }
        Err(e) => Err(format!("git fsck: {e}")),
    }
}

fn describe_difference(expected: &RefSet, found: &RefSet) -> String {
    let mut parts = Vec::new();
    for (name, oid) in expected.iter() {
        match found.get(name) {
            None => parts.push(format!("{name} missing")),
            Some(other) if other != oid => {
                parts.push(format!("{name} is {other}, manifest says {oid}"))
            }
            Some(_) => {}
        }
    }
    for (name, _) in found.iter() {
        if expected.get(name).is_none() {
            parts.push(format!("{name} not in the manifest"));
        }
    }
    let shown: Vec<String> = parts.iter().take(3).cloned().collect();
    let more = parts.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join("; "))
    } else {
        shown.join("; ")
    }
}
