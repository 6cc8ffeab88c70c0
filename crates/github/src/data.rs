//! [`RepoData`] for GitHub: conditional list pages (`If-None-Match` → `304`, which
//! costs no rate limit) with `Link` pagination, and streamed downloads.

use async_trait::async_trait;
use http::HeaderMap;
use http::header::{ACCEPT, ETAG, IF_NONE_MATCH, LINK};
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::ByteStream;

use crate::GitHubSource;
use crate::link::{next_link, path_and_query};

#[async_trait]
impl RepoData for GitHubSource {
    async fn page(&self, path: &str, if_none_match: Option<&str>) -> Result<Page, SourceError> {
        let mut headers = HeaderMap::new();
        if let Some(tag) = if_none_match.and_then(|t| t.parse().ok()) {
            headers.insert(IF_NONE_MATCH, tag);
        }
        let response = self.get_with(path, &headers).await?;
        if response.status == http::StatusCode::NOT_MODIFIED {
            return Ok(Page::NotModified);
        }
        let header = |name| {
            response
                .headers
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
        };
        let next = header(LINK)
            .and_then(next_link)
            .map(|url| path_and_query(url).to_owned());
        let etag = header(ETAG).map(str::to_owned);
        let items = serde_json::from_slice(&response.body).map_err(|e| SourceError::Invalid {
            url: path.to_owned(),
            message: format!("expected a JSON array: {e}"),
        })?;
        Ok(Page::Fetched { items, etag, next })
    }

    async fn object(&self, path: &str) -> Result<serde_json::Value, SourceError> {
        Ok(self.get_json(path).await?.0)
    }

    fn rate_remaining(&self) -> Option<u64> {
        GitHubSource::rate_remaining(self)
    }

    async fn download(&self, path: &str) -> Result<ByteStream, SourceError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/octet-stream".parse().expect("valid"));
        self.stream(path, &headers).await
    }
}
