//! [`GitHubWriter`] for GitHub: JSON writes and release asset uploads, for putting a
//! backup back. Rate limits are waited out as for reads (and the wait reported); a
//! write is never retried once GitHub may have acted on it.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use repovault_core::ports::source::{GitHubWriter, SourceError, Write, Written};
use serde_json::Value;
use tokio::time::Instant;

use crate::GitHubSource;
use crate::client::Request;
use crate::rate_limit;

/// A write's answer (a success, or GitHub's `422` refusal) is read up to this size.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Where GitHub takes release asset uploads for the API at `api_url`:
/// `uploads.github.com` for github.com, `<host>/api/uploads` for GitHub Enterprise;
/// `None` for anything else (it must be configured).
pub(crate) fn default_upload_url(api_url: &str) -> Option<String> {
    let api_url = api_url.trim_end_matches('/');
    if api_url == "https://api.github.com" {
        return Some("https://uploads.github.com".into());
    }
    api_url
        .strip_suffix("/api/v3")
        .map(|host| format!("{host}/api/uploads"))
}

/// GitHub's web origin for the API at `api_url`: `https://github.com` for
/// `api.github.com`, the host of a GitHub Enterprise's `/api/v3`, else the API's own
/// origin.
pub(crate) fn web_url(api_url: &str) -> String {
    let api_url = api_url.trim_end_matches('/');
    if api_url == "https://api.github.com" {
        return "https://github.com".into();
    }
    api_url
        .strip_suffix("/api/v3")
        .unwrap_or(api_url)
        .to_owned()
}

fn method_of(method: Write) -> Method {
    match method {
        Write::Post => Method::POST,
        Write::Patch => Method::PATCH,
        Write::Put => Method::PUT,
        Write::Delete => Method::DELETE,
    }
}

fn accepted(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY
}

async fn answer(
    url: &str,
    response: http::Response<crate::client::Body>,
    waited: std::time::Duration,
) -> Result<Written, SourceError> {
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| SourceError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        })?
        .to_bytes();
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| SourceError::Invalid {
            url: url.to_owned(),
            message: format!("expected JSON: {e}"),
        })?
    };
    Ok(Written {
        status,
        body,
        waited,
    })
}

#[async_trait]
impl GitHubWriter for GitHubSource {
    async fn write(&self, method: Write, path: &str, body: &Value) -> Result<Written, SourceError> {
        let octocrab = self.client.octocrab().await?;
        let request = Request {
            method: method_of(method),
            path,
            headers: &HeaderMap::new(),
            body: Some(body),
            accept: accepted,
        };
        let (response, waited) = self.request(octocrab, &request).await?;
        answer(&self.url(path), response, waited).await
    }

    async fn preview(
        &self,
        method: Option<Write>,
        path: &str,
        body: &Value,
        media_type: &str,
    ) -> Result<Written, SourceError> {
        let octocrab = self.client.octocrab().await?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_str(media_type).map_err(|e| SourceError::Invalid {
                url: self.url(path),
                message: e.to_string(),
            })?,
        );
        let request = Request {
            method: method.map_or(Method::GET, method_of),
            path,
            headers: &headers,
            body: method.map(|_| body),
            accept: |status| accepted(status) || status == StatusCode::NOT_FOUND,
        };
        let (response, waited) = self.request(octocrab, &request).await?;
        answer(&self.url(path), response, waited).await
    }

    async fn read(&self, path: &str) -> Result<Option<Value>, SourceError> {
        match self.get(path).await {
            // `204 No Content` (say, "this user can be assigned") is an answer too.
            Ok(response) if response.body.is_empty() => Ok(Some(Value::Null)),
            Ok(response) => serde_json::from_slice(&response.body)
                .map(Some)
                .map_err(|e| SourceError::Invalid {
                    url: self.url(path),
                    message: e.to_string(),
                }),
            Err(SourceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_all(&self, path: &str) -> Result<Vec<Value>, SourceError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(path) = next {
            let (page, after): (Vec<Value>, _) = self.get_json(&path).await?;
            items.extend(page);
            next = after;
        }
        Ok(items)
    }

    async fn upload(
        &self,
        url: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Written, SourceError> {
        // The token goes to the configured upload origin only, whatever an answer said.
        let origin = self
            .upload_url
            .as_deref()
            .ok_or_else(|| SourceError::Invalid {
                url: url.to_owned(),
                message:
                    "no upload URL is configured for this GitHub (REPOVAULT_GITHUB_UPLOAD_URL)"
                        .into(),
            })?;
        if !url
            .strip_prefix(origin)
            .is_some_and(|rest| rest.starts_with('/'))
        {
            return Err(SourceError::Invalid {
                url: url.to_owned(),
                message: format!("an upload URL must be under {origin}"),
            });
        }
        let octocrab = self.client.octocrab().await?;
        let token = self.client.git_token().await?;
        let mut waited = std::time::Duration::ZERO;
        loop {
            let mut request = http::Request::builder()
                .method(Method::POST)
                .uri(url)
                .header(http::header::CONTENT_TYPE, content_type)
                .header(http::header::ACCEPT, "application/vnd.github+json")
                .header(http::header::USER_AGENT, "repovault");
            if let Some(token) = &token {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|e| SourceError::Invalid {
                        url: url.to_owned(),
                        message: e.to_string(),
                    })?;
                value.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, value);
            }
            let request = request
                .body(bytes.clone())
                .map_err(|e| SourceError::Invalid {
                    url: url.to_owned(),
                    message: e.to_string(),
                })?;
            let response = {
                let _slot = self.in_flight.acquire().await.expect("never closed");
                octocrab
                    .execute(request)
                    .await
                    .map_err(|e| SourceError::Transport {
                        url: url.to_owned(),
                        message: e.to_string(),
                    })?
            };
            let status = response.status();
            if accepted(status) {
                return answer(url, response, waited).await;
            }
            let headers = response.headers().clone();
            let text = answer(url, response, waited)
                .await
                .map(|w| w.body.to_string())
                .unwrap_or_default();
            match rate_limit::wait_for(status, &headers, &text, crate::client::now_epoch()) {
                Some(wait) if wait <= self.max_rate_limit_wait => {
                    let started = Instant::now();
                    tokio::time::sleep(wait).await;
                    waited += started.elapsed();
                }
                _ => return Err(self.error_for(url, status, &text)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_go_to_githubs_upload_host() {
        assert_eq!(
            default_upload_url("https://api.github.com/").as_deref(),
            Some("https://uploads.github.com")
        );
        assert_eq!(
            default_upload_url("https://ghe.example.com/api/v3").as_deref(),
            Some("https://ghe.example.com/api/uploads")
        );
        assert_eq!(default_upload_url("http://127.0.0.1:9000"), None);
        // Attachments live on the web host.
        assert_eq!(web_url("https://api.github.com/"), "https://github.com");
        assert_eq!(
            web_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com"
        );
        assert_eq!(web_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    }

    #[test]
    fn only_validation_refusals_are_answers() {
        assert!(accepted(StatusCode::CREATED));
        assert!(accepted(StatusCode::NO_CONTENT));
        assert!(accepted(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(!accepted(StatusCode::FORBIDDEN));
        assert!(!accepted(StatusCode::BAD_GATEWAY));
    }
}
