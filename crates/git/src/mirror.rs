//! Mirror clones with the `git` CLI.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use crate::{GitCredentials, GitError};

/// `git clone --mirror <url> <dest>`: every ref, bare, `HEAD` as on the remote.
///
/// An empty repository clones successfully (with no refs). The child is killed if the
/// returned future is dropped, so a cancelled job leaves no git process behind.
pub async fn mirror_clone(url: &str, dest: &Path, creds: &GitCredentials) -> Result<(), GitError> {
    let args = ["clone", "--mirror", "--quiet", "--no-local", "--", url].map(OsStr::new);
    let args: Vec<&OsStr> = args.into_iter().chain([dest.as_os_str()]).collect();
    crate::child::run_git("clone", url, &args, None, creds).await
}

/// Total bytes of the files under `path` (symlinks not followed).
pub fn dir_size(path: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += dir_size(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// `git pack-objects --revs --stdout` in the local repository `repo`: every object
/// reachable from `wants` and not from those of `haves` the repository has, as a
/// self-contained pack (offset deltas, never thin), streamed and checked as it passes
/// like a fetched pack (a protocol v2 fetch's). The fallback's way to
/// the same chain links as protocol v2 gives.
pub async fn pack_objects(
    repo: &Path,
    wants: &std::collections::BTreeSet<String>,
    haves: &std::collections::BTreeSet<String>,
) -> Result<
    (
        repovault_core::ports::store::ByteStream,
        tokio::sync::oneshot::Receiver<crate::bundle::PackSummary>,
    ),
    GitError,
> {
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let present: Vec<String> = {
        let local = git2::Repository::open_bare(repo)?;
        let odb = local.odb()?;
        haves
            .iter()
            .filter(|oid| git2::Oid::from_str(oid).is_ok_and(|oid| odb.exists(oid)))
            .cloned()
            .collect()
    };
    let mut revs = String::new();
    for oid in wants {
        revs.push_str(&format!("{oid}\n"));
    }
    for oid in &present {
        revs.push_str(&format!("^{oid}\n"));
    }
    let mut child = crate::child::git_async()
        .args([
            "pack-objects",
            "--revs",
            "--stdout",
            "--delta-base-offset",
            "-q",
        ])
        .env("GIT_DIR", repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(GitError::Spawn)?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let (summary_tx, summary_rx) = tokio::sync::oneshot::channel();
    let name = repo.display().to_string();
    tokio::spawn(async move {
        let fed = async {
            stdin.write_all(revs.as_bytes()).await?;
            drop(stdin);
            Ok::<_, std::io::Error>(())
        };
        let mut check = crate::bundle::PackCheck::default();
        let read = async {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                check.update(&buf[..n]);
                if tx
                    .send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    return Err(std::io::Error::other("the consumer went away"));
                }
            }
        };
        let (fed, read) = tokio::join!(fed, read);
        let output = child.wait_with_output().await;
        let verdict = match (fed.and(read), output) {
            (Ok(()), Ok(out)) if out.status.success() => check.finish().map_err(|e| e.to_string()),
            (_, Ok(out)) => Err(format!(
                "git pack-objects: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            (Err(e), _) | (_, Err(e)) => Err(format!("git pack-objects: {e}")),
        };
        match verdict {
            Ok(summary) => {
                let _ = summary_tx.send(summary);
            }
            Err(e) => {
                let _ = tx
                    .send(Err(std::io::Error::other(format!("{name}: {e}"))))
                    .await;
            }
        }
    });
    Ok((
        tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
        summary_rx,
    ))
}
