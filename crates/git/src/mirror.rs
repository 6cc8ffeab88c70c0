//! Mirror clones with the `git` CLI.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use crate::error::classify_secret_text;
use crate::{GitCredentials, GitError};

/// `git clone --mirror <url> <dest>`: every ref, bare, `HEAD` as on the remote.
///
/// An empty repository clones successfully (with no refs). The child is killed if the
/// returned future is dropped, so a cancelled job leaves no git process behind.
pub async fn mirror_clone(url: &str, dest: &Path, creds: &GitCredentials) -> Result<(), GitError> {
    let args = ["clone", "--mirror", "--quiet", "--no-local", "--", url].map(OsStr::new);
    let args: Vec<&OsStr> = args.into_iter().chain([dest.as_os_str()]).collect();
    run_git("clone", url, &args, None, creds).await
}

/// Runs `git <args>` talking to `url` with `creds`, killed if the future is dropped;
/// a failure is classified from git's stderr, with the token redacted.
pub(crate) async fn run_git(
    op: &'static str,
    url: &str,
    args: &[&OsStr],
    cwd: Option<&Path>,
    creds: &GitCredentials,
) -> Result<(), GitError> {
    let mut command = crate::child::git_async();
    command
        .args(args)
        .envs(creds.git_env(url))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    let output = command.output().await.map_err(GitError::Spawn)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let detail = match stderr.trim() {
        "" => format!("git exited with {}", output.status),
        text => text.to_owned(),
    };
    Err(classify_secret_text(op, url, &detail, |t| creds.redact(t)))
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
