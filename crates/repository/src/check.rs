//! Reading backups back: downloading with a running digest, restoring at the same
//! time, and checking the result against the backup's manifest. Used by `verify`
//! (with or without a restore drill) and `restore`. A first-format backup is one
//! archive, extracted safely as it streams; a bundle chain is its links, each
//! checked and, for a drill, its pack indexed into a new bare repository (links a
//! few at once: each pack stands alone), the refs then set from the manifest.
//!
//! Directories are named from the backup's key (whose names [`Layout::parse_backup`]
//! accepts only when valid), never from the manifest: stored content cannot choose
//! where a restore writes.

use std::path::Path;

use futures::StreamExt;
use repovault_core::ports::store::{ObjectDigest, PutReceipt};
use repovault_core::{ArchiveDigest, BackupFormat, BundleRef, LfsObject, Manifest, RefSet};
use repovault_git::restore::{
    ExtractError, IndexPack, extract_archive, fsck, init_bare, make_safe, set_refs, unresolved_refs,
};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::RepoError;
use crate::repository::Repository;

/// Why an archive does not check out. The text is what `verify` prints after `FAIL`.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("not a backup key")]
    NotABackup,
    #[error("its manifest {0} is missing")]
    NoManifest(String),
    /// The manifest is not JSON, or names what is not this backup's.
    #[error("its manifest is unusable: {0}")]
    Manifest(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("its manifest has no archive digest")]
    NoDigest,
    #[error("the archive is missing")]
    Missing,
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
    /// A Git LFS object the backup lists is missing or damaged.
    #[error("LFS object {key}: {reason}")]
    Lfs { key: String, reason: String },
    /// A link of a bundle chain is missing, damaged, or does not apply.
    #[error("link {position} of {of} ({key}): {reason}")]
    Link {
        key: String,
        position: usize,
        of: usize,
        reason: String,
    },
}

/// A checked backup.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    /// Bytes read: the archive, or every link of the chain.
    pub size: u64,
}

/// Checks the backup at `key` (an archive, or a bundle chain's manifest) against its
/// manifest: every byte downloaded once and hashed, size and SHA-256 compared, its Git
/// LFS objects too (their SHA-256 is their oid). With `restore_to`, the repositories
/// are restored there as the bytes arrive (`<name>.git`, `<name>.wiki.git`, LFS
/// objects in `<name>.git/lfs/objects/`, where `git lfs push --all` finds them) and
/// proven whole: exactly the manifest's refs, `git fsck --full` clean. The error says
/// what is wrong, naming a damaged link or object.
pub async fn check_backup(
    repo: &Repository<'_>,
    key: &str,
    restore_to: Option<&Path>,
) -> Result<Checked, CheckError> {
    let layout = repo.layout();
    let backup = layout.parse_backup(key).ok_or(CheckError::NotABackup)?;
    let manifest = repo
        .manifest(key)
        .await
        .map_err(unusable)?
        .ok_or_else(|| no_manifest(repo, key))?;
    let name = &backup.repo;
    let mut checked = match manifest.format {
        BackupFormat::TarZst => check_archive(repo, key, name, manifest, restore_to).await,
        BackupFormat::BundleChain => check_chain(repo, name, manifest, restore_to).await,
    }?;
    let sealed = &checked.manifest.lfs_sealed;
    let lfs = checked.manifest.stored_lfs().map(|object| {
        let key = layout.lfs(&backup.owner, name, &object.oid);
        (key, object, sealed.get(&object.oid))
    });
    checked.size += check_lfs(repo, lfs, name, restore_to).await?;
    Ok(checked)
}

/// Checks what is stored of the backup at `key` against what its manifest records in
/// the clear (see [`Repository::outline`]): every link's size and SHA-256, and every
/// LFS object's (against its oid, or, stored sealed, against its recorded digest),
/// opening nothing: what `verify` checks of an encrypted backup without an identity.
/// Returns the bytes read.
pub async fn check_stored(repo: &Repository<'_>, key: &str) -> Result<u64, CheckError> {
    let layout = repo.layout();
    let backup = layout.parse_backup(key).ok_or(CheckError::NotABackup)?;
    let outline = repo
        .outline(key)
        .await
        .map_err(unusable)?
        .ok_or_else(|| no_manifest(repo, key))?;
    if outline.format != BackupFormat::BundleChain {
        return check_backup(repo, key, None).await.map(|c| c.size);
    }
    let mut size = 0;
    for links in [&outline.bundles, &outline.wiki_bundles] {
        for (i, link) in links.iter().enumerate() {
            size += read_link(repo, link, None)
                .await
                .map_err(|reason| CheckError::Link {
                    key: link.key.clone(),
                    position: i + 1,
                    of: links.len(),
                    reason,
                })?;
        }
    }
    let stored = outline
        .lfs
        .iter()
        .flatten()
        .filter(|o| !outline.lfs_missing.contains(&o.oid));
    let lfs = stored.map(|object| {
        let key = layout.lfs(&backup.owner, &backup.repo, &object.oid);
        (key, object, outline.lfs_sealed.get(&object.oid))
    });
    size += check_lfs(repo, lfs, &backup.repo, None).await?;
    Ok(size)
}

/// A manifest that could not be read, as a check's error.
fn unusable(e: RepoError) -> CheckError {
    match e {
        RepoError::Invalid { reason, .. } => CheckError::Manifest(reason),
        other => CheckError::Repo(other),
    }
}

fn no_manifest(repo: &Repository<'_>, key: &str) -> CheckError {
    CheckError::NoManifest(repo.layout().manifest_for(key).expect("a backup key"))
}

/// LFS objects read (and restored) at once.
const LFS_AT_ONCE: usize = 4;

/// Reads every LFS object the backup stored, hashing it against its oid (and, stored
/// sealed, what is stored against the digest the manifest records: without a key,
/// only that), and with `restore_to` writes it where git-lfs keeps objects in the
/// restored repository. Returns the bytes read.
async fn check_lfs<'m>(
    repo: &Repository<'_>,
    objects: impl Iterator<Item = (String, &'m LfsObject, Option<&'m ArchiveDigest>)>,
    name: &str,
    restore_to: Option<&Path>,
) -> Result<u64, CheckError> {
    let objects_dir = restore_to.map(|dir| dir.join(format!("{name}.git")).join("lfs/objects"));
    let reads: Vec<_> = objects
        .map(|(key, object, sealed)| {
            // The oid was checked to be 64 hex digits when the manifest was read.
            let dest = objects_dir.as_ref().map(|dir| {
                dir.join(&object.oid[..2])
                    .join(&object.oid[2..4])
                    .join(&object.oid)
            });
            async move {
                read_lfs(repo, &key, object, sealed, dest.as_deref())
                    .await
                    .map_err(|reason| CheckError::Lfs { key, reason })
            }
        })
        .collect();
    let sizes: Vec<Result<u64, CheckError>> = futures::stream::iter(reads)
        .buffered(LFS_AT_ONCE)
        .collect()
        .await;
    sizes.into_iter().sum()
}

/// Reads one LFS object, never past its size, and checks it; with `dest`, writes it
/// there (through a temporary file, so a damaged object is never left in place).
async fn read_lfs(
    repo: &Repository<'_>,
    key: &str,
    object: &LfsObject,
    sealed: Option<&ArchiveDigest>,
    dest: Option<&Path>,
) -> Result<u64, String> {
    let Some(sealed) = sealed else {
        return read_lfs_content(repo, key, object, dest, None).await;
    };
    if dest.is_none() && !repo.keys().opens() {
        let (mut stream, tally) = repo
            .read_stored(key, sealed.size)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("missing")?;
        while let Some(chunk) = stream.next().await {
            chunk.map_err(|e| format!("download failed: {e}"))?;
        }
        return stored_as_recorded(&tally.finish(), sealed);
    }
    read_lfs_content(repo, key, object, dest, Some(sealed)).await
}

/// What was read of a sealed object is what the manifest recorded of it.
fn stored_as_recorded(read: &PutReceipt, recorded: &ArchiveDigest) -> Result<u64, String> {
    if read.size != recorded.size {
        return Err(format!(
            "stored {} bytes, the manifest records {}",
            read.size, recorded.size
        ));
    }
    if read.sha256 != recorded.sha256 {
        return Err(format!(
            "stored sha256 {}, the manifest records {}",
            read.sha256, recorded.sha256
        ));
    }
    Ok(read.size)
}

/// Reads one LFS object's content (opened, when `sealed`), never past its size, and
/// checks it against its oid; with `dest`, writes it there.
async fn read_lfs_content(
    repo: &Repository<'_>,
    key: &str,
    object: &LfsObject,
    dest: Option<&Path>,
    sealed: Option<&ArchiveDigest>,
) -> Result<u64, String> {
    use tokio::io::AsyncWriteExt;
    let limit = sealed.map_or(object.size, |s| s.size);
    let (mut stream, tally) = repo
        .read_object(key, limit)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("missing")?;
    let mut file = match dest {
        Some(dest) => {
            let dir = dest.parent().expect("objects/aa/bb/oid");
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            let temp = dest.with_extension("part");
            let file = tokio::fs::File::create(&temp)
                .await
                .map_err(|e| format!("{}: {e}", temp.display()))?;
            Some((file, temp))
        }
        None => None,
    };
    let mut digest = ObjectDigest::default();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download failed: {e}"))?;
        read += chunk.len() as u64;
        if read > object.size {
            return Err(format!(
                "more than the {} bytes its pointer says",
                object.size
            ));
        }
        digest.update(&chunk);
        if let Some((file, temp)) = &mut file {
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("{}: {e}", temp.display()))?;
        }
    }
    let PutReceipt { size, sha256 } = digest.finish();
    if size != object.size {
        return Err(CheckError::Size {
            found: size,
            expected: object.size,
        }
        .to_string());
    }
    if sha256 != object.oid {
        return Err(format!("sha256 {sha256}, its oid is {}", object.oid));
    }
    if let Some(sealed) = sealed {
        stored_as_recorded(&tally.finish(), sealed)?;
    }
    if let (Some((mut file, temp)), Some(dest)) = (file, dest) {
        file.flush().await.map_err(|e| e.to_string())?;
        drop(file);
        tokio::fs::rename(&temp, dest)
            .await
            .map_err(|e| format!("{}: {e}", dest.display()))?;
    }
    Ok(tally.finish().size)
}

/// Streams the archive at `key` once, hashing every byte and, with `extract_to`,
/// extracting it there as it arrives.
async fn check_archive(
    repo: &Repository<'_>,
    key: &str,
    name: &str,
    manifest: Manifest,
    extract_to: Option<&Path>,
) -> Result<Checked, CheckError> {
    let expected = manifest.archive.clone().ok_or(CheckError::NoDigest)?;
    // Never read past the size the manifest records: a swapped or growing object
    // cannot make us download (or extract) more than a backup of this size holds.
    let (hashed, tally) = repo
        .read_stored(key, expected.size)
        .await?
        .ok_or(CheckError::Missing)?;
    // What the files inside may add up to: the mirrors the manifest measured, plus the
    // manifest and metadata files written beside them.
    let max_bytes = manifest.git_bytes.saturating_add(EXTRA_FILES_ALLOWANCE);
    let extraction = match extract_to {
        None => {
            let mut hashed = hashed;
            while let Some(chunk) = hashed.next().await {
                chunk.map_err(CheckError::Download)?;
            }
            None
        }
        Some(dir) => {
            let dir = dir.to_owned();
            let result = tokio::task::spawn_blocking(move || {
                extract_archive(
                    SyncIoBridge::new(StreamReader::new(hashed)),
                    &dir,
                    max_bytes,
                )
            })
            .await
            .map_err(|e| CheckError::Crashed(e.to_string()))?;
            Some(result)
        }
    };
    let PutReceipt { size, sha256 } = tally.finish();
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
        check_repo(&dir.join(format!("{name}.git")), &manifest.refs)
            .map_err(CheckError::Repository)?;
        if let Some(wiki) = &manifest.wiki_refs {
            check_repo(&dir.join(format!("{name}.wiki.git")), wiki)
                .map_err(|e| CheckError::Repository(format!("wiki: {e}")))?;
        }
    }
    Ok(Checked { manifest, size })
}

/// Checks every link of a chain (the repository's, then the wiki's) and, with
/// `restore_to`, restores them into new bare repositories there.
async fn check_chain(
    repo: &Repository<'_>,
    name: &str,
    manifest: Manifest,
    restore_to: Option<&Path>,
) -> Result<Checked, CheckError> {
    let mut size = 0;
    let mut parts = vec![(
        &manifest.bundles,
        format!("{name}.git"),
        &manifest.refs,
        manifest.head.as_deref(),
    )];
    if let Some(wiki_refs) = &manifest.wiki_refs {
        parts.push((
            &manifest.wiki_bundles,
            format!("{name}.wiki.git"),
            wiki_refs,
            None,
        ));
    }
    for (links, dir, refs, head) in parts {
        if links.is_empty() {
            return Err(CheckError::Repository(format!(
                "{dir}: the manifest lists no bundle"
            )));
        }
        let into = restore_to.map(|to| to.join(&dir));
        if let Some(into) = &into {
            init_bare(into)
                .await
                .map_err(|e| CheckError::Repository(format!("{dir}: {e}")))?;
        }
        // Each link's pack stands alone (never thin), so links are read, and for a
        // drill indexed, a few at once; refs are set once all objects are in.
        let checked: Vec<Result<u64, String>> = futures::stream::iter(
            links
                .iter()
                .map(|link| read_link(repo, link, into.as_deref())),
        )
        .buffered(LINKS_AT_ONCE)
        .collect()
        .await;
        for (i, result) in checked.into_iter().enumerate() {
            size += result.map_err(|reason| CheckError::Link {
                key: links[i].key.clone(),
                position: i + 1,
                of: links.len(),
                reason,
            })?;
        }
        if let Some(into) = &into {
            set_refs(into, refs, head)
                .await
                .map_err(|e| CheckError::Repository(format!("{dir}: {e}")))?;
            check_repo(into, refs).map_err(|e| CheckError::Repository(format!("{dir}: {e}")))?;
        }
    }
    Ok(Checked { manifest, size })
}

/// Links read (and indexed) at once.
const LINKS_AT_ONCE: usize = 3;

/// Reads one link, hashing what is stored, and with `into` feeds its pack (the bytes
/// after the bundle header, opened when sealed) to `git index-pack --stdin` there;
/// returns its size. Never reads more than the manifest records; a link whose size or
/// SHA-256 differs fails even if its pack indexed.
async fn read_link(
    repo: &Repository<'_>,
    link: &BundleRef,
    into: Option<&Path>,
) -> Result<u64, String> {
    let read = match into {
        Some(_) => repo.read_object(&link.key, link.size).await,
        None => repo.read_stored(&link.key, link.size).await,
    };
    let (mut stream, tally) = read
        .map_err(|e| e.to_string())?
        .ok_or("the bundle is missing")?;
    let mut index = match into {
        Some(into) => Some(IndexPack::start(into, false).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut header = Some(Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download failed: {e}"))?;
        let Some(index) = &mut index else { continue };
        // The pack starts after the header's empty line.
        let pack = match header.as_mut() {
            Some(seen) => {
                seen.extend_from_slice(&chunk);
                match seen.windows(2).position(|w| w == b"\n\n") {
                    Some(end) => {
                        let pack = seen.split_off(end + 2);
                        header = None;
                        pack
                    }
                    None => continue,
                }
            }
            None => chunk.to_vec(),
        };
        index.feed(&pack).await;
    }
    let PutReceipt { size, sha256 } = tally.finish();
    if size != link.size {
        return Err(CheckError::Size {
            found: size,
            expected: link.size,
        }
        .to_string());
    }
    if sha256 != link.sha256 {
        return Err(CheckError::Sha256 {
            found: sha256,
            expected: link.sha256.clone(),
        }
        .to_string());
    }
    if let Some(index) = index {
        if header.is_some() {
            return Err("no pack after the bundle header".into());
        }
        index.finish().await.map_err(|e| e.to_string())?;
    }
    Ok(size)
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
