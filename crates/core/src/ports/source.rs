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

    /// GitHub's web origin (`https://github.com`), where attachments live; `None`:
    /// attachments are not read.
    fn web_url(&self) -> Option<String> {
        None
    }

    /// The attachment at `url` (a file or image dropped into a text), as it arrives:
    /// the token goes with the request to GitHub's web origin only, never to another
    /// host or to where a redirect leads.
    async fn attachment(&self, url: &str) -> Result<crate::ports::store::ByteStream, SourceError>;

    /// A GraphQL `query` with `variables`: the answer's `data`. GitHub's errors in the
    /// answer are errors as a REST status would be (`NOT_FOUND`: [`SourceError::NotFound`];
    /// `FORBIDDEN`, `INSUFFICIENT_SCOPES`: [`SourceError::Forbidden`]; a spent budget of
    /// points: [`SourceError::RateLimited`]).
    async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<serde_json::Value, SourceError>;
}

/// How a write changes GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Post,
    Patch,
    Put,
    Delete,
}

/// GitHub's answer to a write that it accepted, or refused as invalid (`422`: the
/// caller decides, say, that `already_exists` is fine).
#[derive(Debug, Clone)]
pub struct Written {
    pub status: u16,
    /// The JSON body (`Null` when empty).
    pub body: serde_json::Value,
    /// How long the request waited for GitHub's limits (a `403`/`429` with
    /// `retry-after`, or the primary limit's reset) before it went through.
    pub waited: Duration,
}

impl Written {
    /// A `422` whose `errors` say `code` (`already_exists`, `invalid`, `custom`…).
    pub fn refused_as(&self, code: &str) -> bool {
        self.status == 422
            && self.body["errors"]
                .as_array()
                .is_some_and(|errors| errors.iter().any(|e| e["code"] == code))
    }

    /// A `422`'s messages, for a report (`Validation Failed: No commits between…`).
    pub fn refusal(&self) -> String {
        let mut text = self.body["message"]
            .as_str()
            .unwrap_or("refused")
            .to_owned();
        for e in self.body["errors"].as_array().into_iter().flatten() {
            let detail = e["message"].as_str().or(e["code"].as_str()).unwrap_or("");
            let field = e["field"]
                .as_str()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            text.push_str(&format!("; {field}{detail}"));
        }
        text
    }
}

/// GitHub's write side, for putting a backup back: JSON writes to API paths, reads of
/// single objects and list pages, and release asset uploads to GitHub's upload host.
/// Rate limits (primary, and secondary `403`/`429` with `retry-after`) are waited out
/// inside and reported in [`Written::waited`]; a write is never retried after GitHub
/// may have acted on it (a `5xx` or a dropped connection is an error).
#[async_trait]
pub trait GitHubWriter: Send + Sync {
    /// `method path` with a JSON body (`path` relative to the API base).
    async fn write(
        &self,
        method: Write,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Written, SourceError>;

    /// `GET path`: the object, or `None` on `404`.
    async fn read(&self, path: &str) -> Result<Option<serde_json::Value>, SourceError>;

    /// `method path` (`None`: `GET`) under a preview media type (`Accept`), as the
    /// Issue Import API wants: its answer, a success, a `404` (no such endpoint here)
    /// or a `422`.
    async fn preview(
        &self,
        method: Option<Write>,
        path: &str,
        body: &serde_json::Value,
        media_type: &str,
    ) -> Result<Written, SourceError>;

    /// Every item of a list endpoint, across pages.
    async fn read_all(&self, path: &str) -> Result<Vec<serde_json::Value>, SourceError>;

    /// Uploads `bytes` to `url` (a release's `upload_url` with its template removed,
    /// `?name=…` added), which must be on the configured upload origin.
    async fn upload(
        &self,
        url: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<Written, SourceError>;
}
