//! Where repositories come from (GitHub; room for GitLab or Gitea).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Classify, ErrorClass};
use crate::{RepoRef, RepoSelector};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error(
        "GitHub refused the token ({message}): check GITHUB_TOKEN or token-file, and that the token has not expired"
    )]
    Unauthorized { message: String },
    #[error("access denied: {message}")]
    Forbidden { message: String },
    #[error("rate limited; the API asks to wait {wait:?}")]
    RateLimited { wait: Duration },
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        status: u16,
        url: String,
        message: String,
    },
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("unexpected response from {url}: {message}")]
    Invalid { url: String, message: String },
}

impl Classify for SourceError {
    fn class(&self) -> ErrorClass {
        match self {
            SourceError::NotFound { .. }
            | SourceError::Unauthorized { .. }
            | SourceError::Forbidden { .. }
            | SourceError::Invalid { .. } => ErrorClass::Permanent,
            SourceError::RateLimited { wait } => ErrorClass::Retryable { after: Some(*wait) },
            SourceError::Http { status, .. } if *status < 500 && *status != 429 => {
                ErrorClass::Permanent
            }
            SourceError::Http { .. } | SourceError::Transport { .. } => ErrorClass::RETRY,
        }
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Every repository of the selector's owner that the selector matches.
    async fn list_repos(&self, selector: &RepoSelector) -> Result<Vec<RepoRef>, SourceError>;

    /// One repository; `None` if it does not exist (or is invisible to us).
    async fn repo(&self, owner: &str, name: &str) -> Result<Option<RepoRef>, SourceError>;
}
