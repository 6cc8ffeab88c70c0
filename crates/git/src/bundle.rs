//! Git bundles (v2): a header naming refs and prerequisite objects, then a pack.
//! `git clone`, `git fetch` and `git bundle verify` read them; repovault writes them
//! without a repository, from a pack streamed off the server, checking the pack as
//! it passes.
//!
//! ```text
//! # v2 git bundle
//! -<oid>              a prerequisite: the receiving repository must have it
//! <oid> <refname>     a ref the bundle gives (HEAD too, for `git clone`)
//!                     an empty line, then the pack: PACK, version, object count,
//!                     objects, SHA-1 of everything before it
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use repovault_core::RefSet;
use repovault_core::ports::store::ByteStream;
use sha1::{Digest, Sha1};
use tempfile::TempDir;
use tokio::sync::mpsc;

use crate::GitError;

const SIGNATURE: &[u8] = b"# v2 git bundle\n";
const PACK_HEADER: usize = 12;
const TRAILER: usize = 20;

/// The header of a bundle giving `refs` (and `HEAD`, when it points at one of them)
/// to a repository that has every object in `prerequisites`.
pub fn header(refs: &RefSet, head: Option<&str>, prerequisites: &BTreeSet<String>) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    for oid in prerequisites {
        out.extend_from_slice(format!("-{oid}\n").as_bytes());
    }
    for (name, oid) in refs.iter() {
        out.extend_from_slice(format!("{oid} {name}\n").as_bytes());
    }
    if let Some(oid) = head.and_then(|name| refs.get(name)) {
        out.extend_from_slice(format!("{oid} HEAD\n").as_bytes());
    }
    out.push(b'\n');
    out
}

/// A pack with no objects: what a bundle carries when nothing is new.
pub fn empty_pack() -> Bytes {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
    let trailer = Sha1::digest(&pack);
    pack.extend_from_slice(&trailer);
    Bytes::from(pack)
}

/// What a checked pack held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackSummary {
    /// The object count in its header.
    pub objects: u32,
    pub bytes: u64,
}

/// Why a pack does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackError {
    #[error("not a pack (bad signature or version)")]
    NotAPack,
    #[error("the pack is cut short ({0} bytes)")]
    Truncated(u64),
    #[error("the pack's trailing SHA-1 does not match its bytes")]
    Trailer,
    #[error("the pack's header counts {0} objects but it holds none")]
    Empty(u32),
}

/// Checks a pack as its bytes pass: the header's signature, version and object
/// count, and the trailing SHA-1 over everything before it. What is cheap and
/// decisive at backup time; every object's id and connectivity are the restore
/// drill's.
#[derive(Default)]
pub struct PackCheck {
    hasher: Sha1,
    header: Vec<u8>,
    /// The last bytes seen, held back: they may be the trailer.
    tail: Vec<u8>,
    bytes: u64,
}

impl PackCheck {
    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.header.len() < PACK_HEADER {
            let take = (PACK_HEADER - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
        }
        self.tail.extend_from_slice(data);
        if self.tail.len() > TRAILER {
            let hashed = self.tail.len() - TRAILER;
            self.hasher.update(&self.tail[..hashed]);
            self.tail.drain(..hashed);
        }
    }

    pub fn finish(self) -> Result<PackSummary, PackError> {
        if self.header.len() < PACK_HEADER || self.tail.len() < TRAILER {
            return Err(PackError::Truncated(self.bytes));
        }
        let version = u32::from_be_bytes(self.header[4..8].try_into().expect("4 bytes"));
        if &self.header[..4] != b"PACK" || !(2..=3).contains(&version) {
            return Err(PackError::NotAPack);
        }
        let objects = u32::from_be_bytes(self.header[8..12].try_into().expect("4 bytes"));
        if self.hasher.finalize().as_slice() != self.tail.as_slice() {
            return Err(PackError::Trailer);
        }
        if objects > 0 && self.bytes <= (PACK_HEADER + TRAILER) as u64 {
            return Err(PackError::Empty(objects));
        }
        Ok(PackSummary {
            objects,
            bytes: self.bytes,
        })
    }
}

/// The pack indexed as it streams: its bytes are also fed to `git index-pack --stdin`
/// in a scratch repository under `work_dir`, which computes every object's id and,
/// with `fsck_objects` (`git.verify-objects`), checks every object's syntax as it
/// passes. Connectivity needs the earlier links: that stays the restore drill's. The
/// returned task ends with git's verdict and the scratch repository (for a look at
/// the pack's objects: LFS pointers) once the returned stream has been drained.
pub fn index_pack_tee(
    pack: ByteStream,
    work_dir: &Path,
    fsck_objects: bool,
) -> Result<
    (
        ByteStream,
        tokio::task::JoinHandle<Result<TempDir, GitError>>,
    ),
    GitError,
> {
    std::fs::create_dir_all(work_dir).map_err(GitError::Scratch)?;
    let scratch = tempfile::Builder::new()
        .prefix("index-pack-")
        .tempdir_in(work_dir)
        .map_err(GitError::Scratch)?;
    git2::Repository::init_bare(scratch.path())?;
    let mut index = crate::restore::IndexPack::start(scratch.path(), fsck_objects)?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let verdict = tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            index.feed(&chunk).await;
        }
        index.finish().await.map(|()| scratch)
    });
    let teed = pack
        .then(move |chunk| {
            let tx = tx.clone();
            async move {
                if let Ok(bytes) = &chunk {
                    // A child that died early is reported by the verdict.
                    let _ = tx.send(bytes.clone()).await;
                }
                chunk
            }
        })
        .boxed();
    Ok((teed, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(pack: &[u8], chunk: usize) -> Result<PackSummary, PackError> {
        let mut check = PackCheck::default();
        for part in pack.chunks(chunk.max(1)) {
            check.update(part);
        }
        check.finish()
    }

    /// A real pack of a small repository, made by git.
    fn real_pack() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| crate::test_git(dir.path(), args);
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("a.txt"), "hello\n").unwrap();
        git(&["add", "a.txt"]);
        git(&["commit", "-q", "-m", "one"]);
        let mut child = std::process::Command::new("git")
            .args(["pack-objects", "--stdout", "--revs"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"HEAD\n").unwrap();
        child.wait_with_output().unwrap().stdout
    }

    #[test]
    fn a_real_pack_checks_out_in_any_chunking() {
        let pack = real_pack();
        for chunk in [1, 7, 20, 21, 4096] {
            let summary = checked(&pack, chunk).unwrap();
            assert_eq!(summary.objects, 3, "commit, tree, blob");
            assert_eq!(summary.bytes, pack.len() as u64);
        }
        assert_eq!(checked(&empty_pack(), 5).unwrap().objects, 0);
    }

    #[test]
    fn a_flipped_byte_a_cut_or_a_foreign_stream_fails() {
        let pack = real_pack();
        let mut flipped = pack.clone();
        flipped[PACK_HEADER + 3] ^= 1;
        assert_eq!(checked(&flipped, 64), Err(PackError::Trailer));
        assert_eq!(
            checked(&pack[..pack.len() - 1], 64),
            Err(PackError::Trailer)
        );
        assert_eq!(checked(&pack[..10], 64), Err(PackError::Truncated(10)));
        let mut foreign = b"JUNK".to_vec();
        foreign.extend_from_slice(&pack[4..]);
        assert_eq!(checked(&foreign, 64), Err(PackError::NotAPack));
    }

    #[tokio::test]
    async fn index_pack_passes_a_real_pack_and_fails_a_damaged_one() {
        let work = tempfile::tempdir().unwrap();
        let pack = real_pack();
        let mut damaged = pack.clone();
        damaged[PACK_HEADER + 3] ^= 1;
        for (bytes, ok) in [(pack, true), (damaged, false)] {
            let stream = futures::stream::iter(
                bytes
                    .chunks(7)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            )
            .boxed();
            let (teed, verdict) = index_pack_tee(stream, work.path(), true).unwrap();
            let passed: Vec<_> = teed.collect().await;
            assert_eq!(
                passed
                    .iter()
                    .map(|c| c.as_ref().unwrap().len())
                    .sum::<usize>(),
                bytes.len()
            );
            assert_eq!(verdict.await.unwrap().is_ok(), ok);
        }
        assert_eq!(
            std::fs::read_dir(work.path()).unwrap().count(),
            0,
            "scratch left behind"
        );
    }

    #[test]
    fn the_header_lists_prerequisites_refs_and_head() {
        let mut refs = RefSet::new();
        refs.insert("refs/heads/main", "a".repeat(40));
        refs.insert("refs/tags/v1", "b".repeat(40));
        let prerequisites = BTreeSet::from(["c".repeat(40)]);
        let text =
            String::from_utf8(header(&refs, Some("refs/heads/main"), &prerequisites)).unwrap();
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        assert_eq!(
            text,
            format!("# v2 git bundle\n-{c}\n{a} refs/heads/main\n{b} refs/tags/v1\n{a} HEAD\n\n")
        );
        let unborn =
            String::from_utf8(header(&refs, Some("refs/heads/gone"), &BTreeSet::new())).unwrap();
        assert!(!unborn.contains("HEAD"), "{unborn}");
    }
}
