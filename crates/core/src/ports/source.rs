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
    #[error("GitHub App authentication failed: {message}")]
    App { message: String },
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
            | SourceError::App { .. }
            | SourceError::Invalid { .. } => ErrorClass::Permanent,
            SourceError::RateLimited { wait } => ErrorClass::Retryable { after: Some(*wait) },
            SourceError::Http { status, .. } if *status < 500 && *status != 429 => {
                ErrorClass::Permanent
            }
            SourceError::Http { .. } | SourceError::Transport { .. } => ErrorClass::RETRY,
        }
    }
}

/// Where the token for git on a GitHub host comes from: a fixed token, or a GitHub
/// App's installation tokens, renewed before they expire. Asked once per git session
/// (a ref listing, a fetch, a batch of LFS downloads), so a long job keeps working past
/// any one token's expiry.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token valid for several minutes yet (`None`: anonymous).
    async fn token(&self) -> Result<Option<crate::Secret>, SourceError>;
}

/// A token that never changes (a personal access token), or none.
#[derive(Debug, Clone, Default)]
pub struct FixedToken(pub Option<crate::Secret>);

#[async_trait]
impl TokenSource for FixedToken {
    async fn token(&self) -> Result<Option<crate::Secret>, SourceError> {
        Ok(self.0.clone())
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    /// Every repository of the selector's owner that the selector matches.
    async fn list_repos(&self, selector: &RepoSelector) -> Result<Vec<RepoRef>, SourceError>;

    /// One repository; `None` if it does not exist (or is invisible to us).
    async fn repo(&self, owner: &str, name: &str) -> Result<Option<RepoRef>, SourceError>;
}

/// One page of a list endpoint, read conditionally.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// `304 Not Modified`: the page is what it was when its `ETag` was taken. On
    /// GitHub this costs no rate limit.
    NotModified,
    /// The page's items as the API wrote them (every field kept), its `ETag` for the
    /// next conditional read, and the next page's path and query (`Link: rel="next"`).
    Fetched {
        items: Vec<serde_json::Value>,
        etag: Option<String>,
        next: Option<String>,
    },
}

/// A repository's data beyond git, read through the API: conditional, paginated list
/// reads and streamed downloads (release assets), with the same rate-limit handling as
/// [`Source`]. Paths are relative to the API base (`/repos/acme/api/issues?state=all`).
#[async_trait]
pub trait RepoData: Send + Sync {
    /// One page of `path`, or [`Page::NotModified`] when `if_none_match` still holds.
    async fn page(&self, path: &str, if_none_match: Option<&str>) -> Result<Page, SourceError>;

    /// The single object at `path` (say, a branch's protection).
    async fn object(&self, path: &str) -> Result<serde_json::Value, SourceError>;

    /// The rate-limit budget left, as the last response said (`x-ratelimit-remaining`).
    fn rate_remaining(&self) -> Option<u64> {
        None
    }

    /// The bytes at `path` (`Accept: application/octet-stream`), as they arrive: a
    /// 2 GiB asset never sits in memory.
    async fn download(&self, path: &str) -> Result<crate::ports::store::ByteStream, SourceError>;
}
