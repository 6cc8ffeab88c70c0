//! [`RepoData`] for GitHub: conditional list pages (`If-None-Match` → `304`, which
//! costs no rate limit) with `Link` pagination, and streamed downloads.

use async_trait::async_trait;
use http::HeaderMap;
use http::header::{ACCEPT, ETAG, IF_NONE_MATCH, LINK};
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::ByteStream;

use crate::GitHubSource;
use crate::link::{next_link, path_and_query};

/// A page's items: a JSON array, or the one array of the object some lists are
/// wrapped in (`{"total_count": 2, "variables": [...]}`: Actions variables and
/// secrets, environments, their branch policies).
fn list_items(body: serde_json::Value) -> Option<Vec<serde_json::Value>> {
    match body {
        serde_json::Value::Array(items) => Some(items),
        serde_json::Value::Object(mut fields) if fields.contains_key("total_count") => {
            let mut arrays = fields.iter().filter(|(_, v)| v.is_array()).map(|(k, _)| k);
            let (Some(name), None) = (arrays.next(), arrays.next()) else {
                return None;
            };
            let name = name.clone();
            match fields.remove(&name) {
                Some(serde_json::Value::Array(items)) => Some(items),
                _ => None,
            }
        }
        _ => None,
    }
}

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
        let body = serde_json::from_slice(&response.body).map_err(|e| SourceError::Invalid {
            url: path.to_owned(),
            message: format!("not JSON: {e}"),
        })?;
        let items = list_items(body).ok_or_else(|| SourceError::Invalid {
            url: path.to_owned(),
            message: "expected a JSON array, or an object with `total_count` and one array".into(),
        })?;
        Ok(Page::Fetched { items, etag, next })
    }

    async fn object(&self, path: &str) -> Result<serde_json::Value, SourceError> {
        Ok(self.get_json(path).await?.0)
    }

    fn rate_remaining(&self) -> Option<u64> {
        GitHubSource::rate_remaining(self)
    }

    async fn graphql(
        &self,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<serde_json::Value, SourceError> {
        self.graphql_data(query, variables).await
    }

    fn web_url(&self) -> Option<String> {
        Some(crate::write::web_url(self.api_url()))
    }

    async fn attachment(&self, url: &str) -> Result<ByteStream, SourceError> {
        let invalid = |message: String| SourceError::Invalid {
            url: url.to_owned(),
            message,
        };
        let web = url::Url::parse(&crate::write::web_url(self.api_url()))
            .map_err(|e| invalid(e.to_string()))?;
        let token = match self.client.git_token().await? {
            Some(token) => {
                let mut value: http::HeaderValue = format!("token {}", token.expose())
                    .parse()
                    .map_err(|_| invalid("a token that is not a header value".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let _slot = self.in_flight.acquire().await.expect("never closed");
        crate::web::fetch(url, &web, token).await
    }

    async fn download(&self, path: &str) -> Result<ByteStream, SourceError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/octet-stream".parse().expect("valid"));
        self.stream(path, &headers).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::list_items;

    #[test]
    fn a_list_is_an_array_or_the_one_array_of_a_counted_object() {
        assert_eq!(list_items(json!([1, 2])), Some(vec![json!(1), json!(2)]));
        let wrapped = json!({"total_count": 2, "variables": [{"name": "A"}, {"name": "B"}]});
        assert_eq!(
            list_items(wrapped),
            Some(vec![json!({"name": "A"}), json!({"name": "B"})])
        );
        assert_eq!(
            list_items(json!({"total_count": 0, "environments": []})),
            Some(vec![])
        );
        // Not a list: an object without a count, or with two arrays.
        assert_eq!(list_items(json!({"variables": []})), None);
        assert_eq!(
            list_items(json!({"total_count": 1, "a": [], "b": []})),
            None
        );
        assert_eq!(list_items(json!({"message": "Not Found"})), None);
    }
}
