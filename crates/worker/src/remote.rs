//! Talking to a repository's git server for one backup attempt: the credentials (a
//! token for the job's git host only, renewed for work that starts later), the
//! protocol v2 session or, from a server that speaks only version 0, a mirror clone
//! with the git CLI, and transient faults retried in place.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;

use repovault_core::LfsObject;
use repovault_core::retry::RetryPolicy;
use repovault_git::protocol::{Connected, Remote};
use repovault_git::{GitCredentials, GitError, RepoRefs, mirror_clone, read_refs};
use repovault_telemetry::{kv, metrics};

use crate::allow::GitHubAccess;
use crate::error::BackupError;

/// A repository's server, as it answered.
pub(crate) enum Server {
    /// Protocol v2: `ls-refs` and `fetch` stream the pack.
    V2(Box<Remote>),
    /// Protocol v0: its refs came with the answer; fetching needs a mirror clone.
    V0 { url: String, refs: RepoRefs },
}

impl Server {
    /// The refs it has.
    pub async fn refs(&self, git: &Git<'_>) -> Result<RepoRefs, BackupError> {
        match self {
            Server::V2(remote) => {
                git.in_place(remote.url(), || async { Ok(remote.ls_refs().await?) })
                    .await
            }
            Server::V0 { refs, .. } => Ok(refs.clone()),
        }
    }
}

/// The git side of one backup attempt.
pub(crate) struct Git<'a> {
    access: &'a GitHubAccess,
    /// The token as the attempt began.
    creds: GitCredentials,
}

impl<'a> Git<'a> {
    /// Credentials for `access`'s git host, with a token that has minutes to live.
    pub async fn start(access: &'a GitHubAccess) -> Result<Git<'a>, BackupError> {
        let creds = fresh(access).await?;
        Ok(Git { access, creds })
    }

    /// Credentials with a fresh token, for work that starts later (LFS batches).
    pub async fn fresh(&self) -> Result<GitCredentials, BackupError> {
        fresh(self.access).await
    }

    /// Runs `op` until it succeeds, fails for good, or has been tried
    /// [`RetryPolicy::IN_PLACE`] times: a flaky network costs no queue delivery.
    pub async fn in_place<T, Fut>(
        &self,
        url: &str,
        op: impl FnMut() -> Fut,
    ) -> Result<T, BackupError>
    where
        Fut: Future<Output = Result<T, BackupError>>,
    {
        RetryPolicy::IN_PLACE
            .run(op, |e, tried, wait| {
                metrics().retries.add(1, &[kv("where", "in_place")]);
                tracing::warn!(%url, error = %e, tried, wait_ms = wait.as_millis() as u64, "transient git fault; retrying in place");
            })
            .await
    }

    /// Opens the repository at `url`.
    pub async fn connect(&self, url: &str) -> Result<Server, BackupError> {
        let connected = self
            .in_place(url, || async {
                Ok(Remote::connect(url, &self.creds).await?)
            })
            .await?;
        Ok(match connected {
            Connected::V2(remote) => Server::V2(remote),
            Connected::V0(refs) => Server::V0 {
                url: url.to_owned(),
                refs,
            },
        })
    }

    /// The wiki beside the repository and its refs; `None` when it does not exist
    /// (GitHub reports `has_wiki` for every repository with wikis enabled, but the
    /// wiki repository exists only once a page is written).
    pub async fn wiki(&self, url: &str) -> Result<Option<(Server, RepoRefs)>, BackupError> {
        let found = async {
            let server = self.connect(url).await?;
            let refs = server.refs(self).await?;
            Ok((server, refs))
        };
        match found.await {
            Ok(found) => Ok(Some(found)),
            Err(BackupError::Git(GitError::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `git clone --mirror` of `url` into `dest` (emptied before each try) and its
    /// refs.
    pub async fn mirror(&self, url: &str, dest: &Path) -> Result<RepoRefs, BackupError> {
        self.in_place(url, || async {
            if dest.exists() {
                std::fs::remove_dir_all(dest).map_err(BackupError::WorkDir)?;
            }
            Ok(mirror_clone(url, dest, &self.creds).await?)
        })
        .await?;
        let path = dest.to_owned();
        blocking(move || read_refs(&path)).await
    }
}

async fn fresh(access: &GitHubAccess) -> Result<GitCredentials, BackupError> {
    let token = access.tokens.token().await.map_err(BackupError::Auth)?;
    Ok(GitCredentials::new(token).scoped(access.host.clone()))
}

/// The LFS objects named by pointers among the blobs of the repository at `repo`.
pub(crate) async fn pointers(repo: &Path) -> Result<BTreeSet<LfsObject>, BackupError> {
    let repo = repo.to_owned();
    blocking(move || repovault_git::lfs::pointers_in(&repo)).await
}

/// Runs blocking git work (libgit2, the git CLI's output parsed) off the runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BackupError::Crashed(e.to_string()))?
        .map_err(BackupError::from)
}
