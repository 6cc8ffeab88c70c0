//! Reading archives back: downloading with a running digest, extracting safely at the
//! same time, and checking the result against the manifest beside the archive.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use repovault_core::ports::store::{ObjectDigest, PutReceipt, Store};
use repovault_core::{Layout, Manifest, RefSet};
use repovault_git::restore::{extract_archive, fsck, make_safe, unresolved_refs};
use tokio_util::io::{StreamReader, SyncIoBridge};

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
) -> Result<Checked, String> {
    let manifest_key = layout.manifest_for(key).ok_or("not an archive key")?;
    let manifest: Manifest = store
        .get_json(&manifest_key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("its manifest {manifest_key} is missing"))?;
    let expected = manifest
        .archive
        .clone()
        .ok_or("its manifest has no archive digest")?;
    let stream = store
        .get_stream(key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the archive is missing")?;
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
                chunk.map_err(|e| format!("download failed: {e}"))?;
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
            .map_err(|e| format!("extraction crashed: {e}"))?;
            Some(result)
        }
    };
    let PutReceipt { size, sha256 } =
        std::mem::take(&mut *digest.lock().unwrap_or_else(|p| p.into_inner())).finish();
    if let Some(Err(e)) = &extraction {
        return Err(format!("cannot extract: {e}"));
    }
    if size != expected.size {
        return Err(format!("{size} bytes, the manifest says {}", expected.size));
    }
    if sha256 != expected.sha256 {
        return Err(format!(
            "sha256 {sha256}, the manifest says {}",
            expected.sha256
        ));
    }
    if let Some(dir) = extract_to {
        let name = &manifest.source.name;
        check_repo(&dir.join(format!("{name}.git")), &manifest.refs)?;
        if let Some(wiki) = &manifest.wiki_refs {
            check_repo(&dir.join(format!("{name}.wiki.git")), wiki)
                .map_err(|e| format!("wiki: {e}"))?;
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
    let found = repovault_git::read_refs(path)
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

/// A scratch directory for a restore drill, removed when dropped.
pub fn scratch_dir(work_dir: Option<&PathBuf>) -> std::io::Result<tempfile::TempDir> {
    let base = work_dir.cloned().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    tempfile::Builder::new()
        .prefix("repovault-drill-")
        .tempdir_in(base)
}
