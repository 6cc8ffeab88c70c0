//! Getting repositories back out of archives, safely, and checking them.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use repovault_core::RefSet;

use crate::{GitCredentials, GitError};

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry that would write outside the destination, or that is not a plain file
    /// or directory. Nothing is written for it.
    #[error("unsafe archive entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: &'static str },
    /// The bytes are not a valid tar + zstd stream (corrupt or truncated).
    #[error("corrupt archive: {0}")]
    Corrupt(io::Error),
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// More content than the manifest accounts for: a decompression bomb, or an archive
    /// that is not what its manifest describes. Extraction stopped there.
    #[error(
        "the archive holds more than the {limit} bytes its manifest accounts for; extraction stopped"
    )]
    TooLarge { limit: u64 },
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Extracts a tar + zstd archive into `dest` (created if missing), then reads the
/// rest of `reader` so a caller hashing the stream sees every byte. Stops with
/// [`ExtractError::TooLarge`] as soon as file contents exceed `max_bytes`, so a small
/// archive that decompresses to terabytes cannot fill the disk.
///
/// Only regular files and directories are accepted, at relative paths without `..`:
/// an absolute path, a `..` component, a symlink, a hard link or a device aborts the
/// extraction with [`ExtractError::Unsafe`] before anything is written for that entry.
/// Files are created new (never through an existing path), so nothing outside `dest`
/// can be reached, and never executable: a bare repository needs no executable file,
/// and a hook from an archive must never run.
pub fn extract_archive<R: Read>(
    reader: R,
    dest: &Path,
    max_bytes: u64,
) -> Result<Extracted, ExtractError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExtractError::Write { path, source }
    };
    std::fs::create_dir_all(dest).map_err(write_err(dest))?;
    let decoder = zstd::Decoder::new(reader).map_err(ExtractError::Corrupt)?;
    let mut archive = tar::Archive::new(decoder);
    let mut done = Extracted::default();
    for entry in archive.entries().map_err(ExtractError::Corrupt)? {
        let mut entry = entry.map_err(ExtractError::Corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let relative = safe_relative(&entry.path().map_err(ExtractError::Corrupt)?, &name)?;
        let target = dest.join(&relative);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(write_err(&target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(write_err(parent))?;
                }
                use std::os::unix::fs::OpenOptionsExt;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&target)
                    .map_err(write_err(&target))?;
                let room = max_bytes - done.bytes;
                let copied = io::copy(&mut (&mut entry).take(room + 1), &mut file)
                    .map_err(ExtractError::Corrupt)?;
                if copied > room {
                    return Err(ExtractError::TooLarge { limit: max_bytes });
                }
                done.bytes += copied;
                done.files += 1;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(ExtractError::Unsafe {
                    entry: name,
                    reason: "links are refused (a bare repository has none)",
                });
            }
            _ => {
                return Err(ExtractError::Unsafe {
                    entry: name,
                    reason: "only regular files and directories are extracted",
                });
            }
        }
    }
    let mut rest = archive.into_inner().finish();
    io::copy(&mut rest, &mut io::sink()).map_err(ExtractError::Corrupt)?;
    Ok(done)
}

/// `path` as a relative path of plain components, or an error naming the entry.
fn safe_relative(path: &Path, name: &str) -> Result<PathBuf, ExtractError> {
    let unsafe_entry = |reason| ExtractError::Unsafe {
        entry: name.to_owned(),
        reason,
    };
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry("`..` would leave the destination")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry("absolute paths are refused"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(unsafe_entry("empty path"));
    }
    Ok(out)
}

/// Makes an extracted bare repository safe to run git in: its `config` is replaced by
/// the minimal one a bare mirror needs (an archive's config could name programs to
/// run, URLs to rewrite or headers to send) and its `hooks/` are removed.
pub fn make_safe(repo: &Path) -> io::Result<()> {
    let hooks = repo.join("hooks");
    if hooks.exists() {
        std::fs::remove_dir_all(&hooks)?;
    }
    let config = repo.join("config");
    if config.exists() {
        std::fs::remove_file(&config)?;
    }
    std::fs::write(
        config,
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    )
}

/// `git fsck --full` on a repository: every object present and connected. `Ok(false)`
/// when git is not installed (the drill then relies on [`unresolved_refs`]); the error
/// is git's complaint.
pub fn fsck(repo: &Path) -> Result<bool, String> {
    let out = match crate::child::git()
        .args(["fsck", "--full", "--no-dangling", "--no-progress"])
        .current_dir(repo)
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("could not run git fsck: {e}")),
    };
    if out.status.success() {
        Ok(true)
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        Err(text.lines().take(5).collect::<Vec<_>>().join("; "))
    }
}

/// The refs whose object is missing from the repository at `path` (libgit2, no git
/// CLI needed).
pub fn unresolved_refs(path: &Path, refs: &RefSet) -> Result<Vec<String>, GitError> {
    let repo = git2::Repository::open_bare(path)?;
    let odb = repo.odb()?;
    Ok(refs
        .iter()
        .filter(|(_, oid)| git2::Oid::from_str(oid).map_or(true, |oid| !odb.exists(oid)))
        .map(|(name, _)| name.to_owned())
        .collect())
}

/// A new, empty bare repository at `path` without hooks or templates.
pub async fn init_bare(path: &Path) -> Result<(), GitError> {
    let args = ["init", "--bare", "--quiet", "--template="].map(OsStr::new);
    let args: Vec<&OsStr> = args.into_iter().chain([path.as_os_str()]).collect();
    local_git("init", path, &args, None).await
}

/// `git index-pack --stdin` into the bare repository at `repo`, fed a pack as it
/// arrives: every object's id is computed and the pack's checksum checked; the pack
/// and its index land in `objects/pack/`.
pub struct IndexPack {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    /// git stopped reading before every byte was fed.
    cut_short: bool,
}

impl IndexPack {
    /// Starts git; with `fsck_objects`, every object's syntax is checked too.
    pub fn start(repo: &Path, fsck_objects: bool) -> Result<IndexPack, GitError> {
        let mut child = crate::child::git_async()
            .args(["index-pack", "--stdin"])
            .args(fsck_objects.then_some("--fsck-objects"))
            .env("GIT_DIR", repo)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(GitError::Spawn)?;
        let stdin = child.stdin.take();
        Ok(IndexPack {
            child,
            stdin,
            cut_short: false,
        })
    }

    /// Passes bytes on. If git stopped reading (a bad pack), the rest is dropped and
    /// [`IndexPack::finish`] says why.
    pub async fn feed(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        if let Some(stdin) = &mut self.stdin
            && stdin.write_all(bytes).await.is_err()
        {
            self.stdin = None;
            self.cut_short = true;
        }
    }

    /// git's verdict once every byte was fed.
    pub async fn finish(mut self) -> Result<(), GitError> {
        drop(self.stdin.take());
        let out = self
            .child
            .wait_with_output()
            .await
            .map_err(GitError::Spawn)?;
        if out.status.success() && !self.cut_short {
            return Ok(());
        }
        Err(GitError::Failed {
            op: "index-pack",
            url: "the pack".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Gives the bare repository at `repo` exactly `refs` and points `HEAD` at `head`
/// (a branch that need not exist: an empty repository's `HEAD` names its default
/// branch) (libgit2, on a blocking thread).
pub async fn set_refs(repo: &Path, refs: &RefSet, head: Option<&str>) -> Result<(), GitError> {
    let (repo, refs, head) = (repo.to_owned(), refs.clone(), head.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let repo = git2::Repository::open_bare(&repo)?;
        for (name, oid) in refs.iter() {
            repo.reference(name, git2::Oid::from_str(oid)?, true, "restore")?;
        }
        if let Some(head) = head {
            repo.set_head(&head)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| GitError::Scratch(std::io::Error::other(e)))?
}

/// Runs git on local files only: no credentials.
async fn local_git(
    op: &'static str,
    path: &Path,
    args: &[&OsStr],
    cwd: Option<&Path>,
) -> Result<(), GitError> {
    let name = path.display().to_string();
    crate::child::run_git(op, &name, args, cwd, &GitCredentials::new(None)).await
}

/// `git push <url> <refspecs…>` from a bare repository: a ref that exists with other
/// history is refused, not overwritten, unless its refspec says `+`. No hook runs.
pub async fn push_refs(
    repo: &Path,
    url: &str,
    refspecs: &[String],
    creds: &GitCredentials,
) -> Result<(), GitError> {
    let no_hooks = tempfile::tempdir().map_err(GitError::Scratch)?;
    let hooks_path = format!("core.hooksPath={}", no_hooks.path().display());
    let mut args: Vec<&OsStr> = [
        "-c",
        hooks_path.as_str(),
        "push",
        "--no-verify",
        "--quiet",
        "--",
        url,
    ]
    .map(OsStr::new)
    .to_vec();
    args.extend(refspecs.iter().map(OsStr::new));
    crate::child::run_git("push", url, &args, Some(repo), creds).await
}

/// `git push --mirror <url>` from a bare repository: every ref, to a new remote. No
/// hook runs (`--no-verify`, and `core.hooksPath` is an empty directory).
pub async fn push_mirror(repo: &Path, url: &str, creds: &GitCredentials) -> Result<(), GitError> {
    let no_hooks = tempfile::tempdir().map_err(GitError::Scratch)?;
    let hooks_path = format!("core.hooksPath={}", no_hooks.path().display());
    let args = [
        "-c",
        hooks_path.as_str(),
        "push",
        "--mirror",
        "--no-verify",
        "--quiet",
        "--",
        url,
    ]
    .map(OsStr::new);
    crate::child::run_git("push", url, &args, Some(repo), creds).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Path, type, content (or link target).
    type RawEntry = (&'static str, tar::EntryType, &'static str);

    /// An archive whose entries are written raw, bypassing the tar crate's own path
    /// checks, as an attacker would.
    fn hostile(entries: &[RawEntry]) -> Vec<u8> {
        let mut builder = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
        for (path, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_gnu_mut().unwrap().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name(content).unwrap();
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, io::empty()).unwrap();
            } else {
                header.set_size(content.len() as u64);
                header.set_cksum();
                builder.append(&header, content.as_bytes()).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn outside_files(root: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            if entry.file_name() != "dest" {
                found.push(entry.path());
            }
        }
        found
    }

    #[test]
    fn refuses_parent_absolute_and_link_entries_and_writes_nothing_outside() {
        let cases: Vec<(Vec<RawEntry>, &str)> = vec![
            (
                vec![
                    ("ok.txt", tar::EntryType::Regular, "fine"),
                    ("../evil", tar::EntryType::Regular, "x"),
                ],
                "`..`",
            ),
            (vec![("a/../../evil", tar::EntryType::Regular, "x")], "`..`"),
            (
                vec![("/tmp/repovault-evil-abs", tar::EntryType::Regular, "x")],
                "absolute",
            ),
            (
                vec![
                    ("link", tar::EntryType::Symlink, ".."),
                    ("link/evil", tar::EntryType::Regular, "x"),
                ],
                "links",
            ),
            (vec![("dev", tar::EntryType::Char, "")], "only regular"),
        ];
        for (entries, expected) in cases {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            let err = extract_archive(hostile(&entries).as_slice(), &dest, 1 << 20).unwrap_err();
            assert!(matches!(err, ExtractError::Unsafe { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
            assert!(
                outside_files(root.path()).is_empty(),
                "wrote outside: {:?}",
                outside_files(root.path())
            );
        }
        assert!(!Path::new("/tmp/repovault-evil-abs").exists());
    }

    #[test]
    fn extracts_files_and_directories_and_drains_the_stream() {
        let root = tempfile::tempdir().unwrap();
        let mut bytes = hostile(&[
            ("r.git", tar::EntryType::Directory, ""),
            (
                "r.git/HEAD",
                tar::EntryType::Regular,
                "ref: refs/heads/main\n",
            ),
        ]);
        bytes.extend_from_slice(b"trailing bytes after the zstd frame");
        let mut reader = io::Cursor::new(bytes.clone());
        let done = extract_archive(&mut reader, &root.path().join("dest"), 1 << 20).unwrap();
        assert_eq!(
            done,
            Extracted {
                files: 1,
                bytes: 21
            }
        );
        assert_eq!(
            reader.position() as usize,
            bytes.len(),
            "the stream was not read to its end"
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("dest/r.git/HEAD")).unwrap(),
            "ref: refs/heads/main\n"
        );
    }

    #[test]
    fn a_truncated_archive_is_corrupt() {
        let big: &'static str = "x".repeat(100_000).leak();
        let bytes = hostile(&[("f", tar::EntryType::Regular, big)]);
        let root = tempfile::tempdir().unwrap();
        let err = extract_archive(
            &bytes[..bytes.len() / 2],
            &root.path().join("dest"),
            1 << 20,
        )
        .unwrap_err();
        assert!(matches!(err, ExtractError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compress to a few KiB.
        let mut builder = tar::Builder::new(zstd::Encoder::new(Vec::new(), 3).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_path("r.git/objects/bomb").unwrap();
        header.set_size(64 << 20);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append(&header, io::repeat(0).take(64 << 20))
            .unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("dest");
        let err = extract_archive(bytes.as_slice(), &dest, 1 << 20).unwrap_err();
        assert!(
            matches!(err, ExtractError::TooLarge { limit } if limit == 1 << 20),
            "{err}"
        );
        let written = std::fs::metadata(dest.join("r.git/objects/bomb"))
            .unwrap()
            .len();
        assert!(written <= (1 << 20) + 1, "wrote {written} bytes");
    }

    #[test]
    fn extracted_files_are_never_executable() {
        use std::os::unix::fs::PermissionsExt;
        let mut builder = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_path("r.git/hooks/post-checkout").unwrap();
        header.set_size(10);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, &b"#!/bin/sh\n"[..]).unwrap();
        let bytes = builder.into_inner().unwrap().finish().unwrap();
        let root = tempfile::tempdir().unwrap();
        extract_archive(bytes.as_slice(), root.path(), 1 << 20).unwrap();
        let hook = root.path().join("r.git/hooks/post-checkout");
        let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0, "mode {mode:o}");
    }

    #[test]
    fn make_safe_drops_hooks_and_the_archives_config() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("r.git");
        std::fs::create_dir_all(repo.join("hooks")).unwrap();
        std::fs::write(repo.join("hooks/pre-push"), "#!/bin/sh\ntouch /tmp/pwned\n").unwrap();
        std::fs::write(
            repo.join("config"),
            "[core]\n\tbare = true\n\tsshCommand = touch /tmp/pwned\n[url \"https://evil/\"]\n\tinsteadOf = https://github.com/\n",
        )
        .unwrap();
        make_safe(&repo).unwrap();
        assert!(!repo.join("hooks").exists());
        let config = std::fs::read_to_string(repo.join("config")).unwrap();
        assert!(
            !config.contains("sshCommand") && !config.contains("insteadOf"),
            "{config}"
        );
        assert!(config.contains("bare = true"));
    }
}
