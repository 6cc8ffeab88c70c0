//! `git` as a child process, started with only the environment it needs.
//!
//! A child inherits its parent's environment, and repovault's holds secrets: the
//! GitHub token, the GitHub App's private key, AWS credentials, the webhook secret
//! and the API token. git needs none of them (the token reaches it scoped to its
//! origin, as a config entry: `GitCredentials::git_env`), and whatever git starts in
//! turn (a hook, a credential helper, git-lfs, ssh) would see them too. So the
//! environment is cleared and only [`KEPT`] (and `LC_*`) is passed on; callers add
//! what one command needs (`GIT_DIR`, config entries).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Stdio;

use crate::error::classify_secret_text;
use crate::{GitCredentials, GitError};

/// What a `git` child keeps from repovault's environment.
const KEPT: &[&str] = &[
    // Finding programs, the user's configuration and a scratch directory.
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "XDG_CONFIG_HOME",
    "TMPDIR",
    // Messages and dates.
    "LANG",
    "LANGUAGE",
    "TZ",
    // The network: proxies, and certificate authorities (a GitHub Enterprise Server
    // behind a private CA).
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    // Where git's own programs are, and which configuration files it reads.
    "GIT_EXEC_PATH",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
];

fn kept(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| KEPT.contains(&n) || n.starts_with("LC_"))
}

/// `git`, with only the kept part of this process's environment.
pub(crate) fn git() -> std::process::Command {
    git_from(std::env::vars_os())
}

/// [`git`] for async callers.
pub(crate) fn git_async() -> tokio::process::Command {
    git().into()
}

/// `git`, with only the kept part of `environment`.
fn git_from(environment: impl IntoIterator<Item = (OsString, OsString)>) -> std::process::Command {
    let mut command = std::process::Command::new("git");
    command
        .env_clear()
        .envs(environment.into_iter().filter(|(name, _)| kept(name)))
        // curl reads `http_proxy` in lower case only.
        .envs(repovault_http::git_env());
    command
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
    let mut command = git_async();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_child_sees_no_token_no_key_and_no_secret() {
        let secrets = [
            ("GITHUB_TOKEN", "ghp_leakedToken0123456789"),
            ("GH_TOKEN", "ghp_leakedGhToken0123456789"),
            (
                "GITHUB_APP_PRIVATE_KEY",
                "-----BEGIN RSA PRIVATE KEY-----leaked",
            ),
            ("REPOVAULT_WEBHOOK_SECRET", "leaked-webhook-secret"),
            ("REPOVAULT_API_TOKEN", "leaked-api-token"),
            ("AWS_SECRET_ACCESS_KEY", "leakedAwsSecretAccessKey"),
            ("AWS_SESSION_TOKEN", "leakedAwsSessionToken"),
            (
                "GIT_CONFIG_PARAMETERS",
                "'http.extraheader'='Authorization: leaked'",
            ),
        ];
        let mut environment: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        environment.extend(secrets.iter().map(|(k, v)| (k.into(), v.into())));
        environment.push(("LC_ALL".into(), "C".into()));
        // git runs a `!` alias with its own environment: what a hook would see.
        let out = git_from(environment)
            .args(["-c", "alias.dumpenv=!env", "dumpenv"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let seen = String::from_utf8(out.stdout).unwrap();
        for (name, value) in secrets {
            assert!(!seen.contains(value), "git saw {name}:\n{seen}");
        }
        assert!(seen.lines().any(|l| l.starts_with("PATH=")), "{seen}");
        assert!(seen.lines().any(|l| l == "LC_ALL=C"), "{seen}");
    }
}
