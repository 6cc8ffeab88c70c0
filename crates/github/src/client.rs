//! A rate-limit aware GET on top of octocrab's authenticated transport.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use repovault_core::Secret;
use repovault_core::config::defaults;
use repovault_core::ports::source::{SourceError, TokenSource};
use repovault_core::retry::RetryPolicy;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::auth::{Client, GitHubAuth};
use crate::link::{next_link, path_and_query};
use crate::rate_limit;

/// Tries of one request on 5xx or transport errors (rate limits are waited out
/// without counting).
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(8),
};

/// The process's limit on requests at once to each API (every client of one API URL
/// shares it, so a process with a planner and workers stays within it). Sized by the
/// first client made for that API.
fn in_flight(api_url: &str, n: usize) -> Arc<Semaphore> {
    static LIMITS: Mutex<BTreeMap<String, Arc<Semaphore>>> = Mutex::new(BTreeMap::new());
    LIMITS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(api_url.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(n.max(1))))
        .clone()
}

/// The GitHub REST API as a repository source.
pub struct GitHubSource {
    pub(crate) client: Client,
    api_url: String,
    /// Where release assets are uploaded (GitHub's upload host); the token goes there
    /// too, and nowhere else but the API.
    pub(crate) upload_url: Option<String>,
    pub(crate) max_rate_limit_wait: Duration,
    /// Share of the rate limit left to other roles (see `rate_limit::pace`).
    reserve: f64,
    /// At most this many requests at once to this API from the process (GitHub's
    /// secondary limits punish more).
    pub(crate) in_flight: Arc<Semaphore>,
    /// The REST API's budget of requests.
    rest: Budget,
    /// The GraphQL API's budget of points, paced alike but apart.
    graphql: Budget,
}

/// One of GitHub's rate-limit budgets as this client last saw it.
struct Budget {
    /// Set from a response's rate-limit headers: the next request waits until then.
    paused_until: Mutex<Option<Instant>>,
    /// `x-ratelimit-remaining` of the last response (`u64::MAX`: none yet).
    last_remaining: std::sync::atomic::AtomicU64,
}

impl Budget {
    fn new() -> Self {
        Budget {
            paused_until: Mutex::new(None),
            last_remaining: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }
}

/// A response body as octocrab hands it over.
pub(crate) type Body = http_body_util::combinators::BoxBody<Bytes, octocrab::Error>;

/// One request to the API: which statuses are an answer (the rest are errors, rate
/// limits waited out).
pub(crate) struct Request<'a> {
    pub method: http::Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Option<&'a serde_json::Value>,
    pub accept: fn(StatusCode) -> bool,
}

/// One successful response, body read.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl GitHubSource {
    /// A client for `api_url` (`https://api.github.com`, or
    /// `https://ghe.example.com/api/v3`), authenticated as `auth`.
    pub fn new(api_url: &str, auth: GitHubAuth) -> Result<Self, SourceError> {
        let client = Client::new(api_url, auth).map_err(|message| SourceError::Invalid {
            url: api_url.to_owned(),
            message,
        })?;
        let api_url = api_url.trim_end_matches('/').to_owned();
        Ok(GitHubSource {
            client,
            upload_url: crate::write::default_upload_url(&api_url),
            in_flight: in_flight(&api_url, defaults::REQUESTS_IN_FLIGHT),
            api_url,
            max_rate_limit_wait: Duration::from_secs(3600),
            reserve: 0.0,
            rest: Budget::new(),
            graphql: Budget::new(),
        })
    }

    /// A client authenticated with `token` (a personal access token), or anonymous.
    pub fn with_token(api_url: &str, token: Option<&Secret>) -> Result<Self, SourceError> {
        GitHubSource::new(api_url, GitHubAuth::Token(token.cloned()))
    }

    /// The longest rate-limit wait to sit out; a longer one is a retryable
    /// [`SourceError::RateLimited`] (a worker gives up on the data part and the next run
    /// continues, rather than holding a job for an hour).
    pub fn max_rate_limit_wait(mut self, max: Duration) -> Self {
        self.max_rate_limit_wait = max;
        self
    }

    /// Leaves `share` (0..1) of the rate limit to other roles: at that level this
    /// client waits for the reset (workers keep a reserve for the planner).
    pub fn reserve(mut self, share: f64) -> Self {
        self.reserve = share.clamp(0.0, 0.9);
        self
    }

    /// At most `n` API requests at once to this client's API from this process (the
    /// first client of an API sets it; later ones share it).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.in_flight = in_flight(&self.api_url, n);
        self
    }

    /// Where release assets are uploaded, for a GitHub whose upload host cannot be
    /// told from its API URL (github.com's and GitHub Enterprise's can).
    pub fn upload_url(mut self, url: &str) -> Self {
        self.upload_url = Some(url.trim_end_matches('/').to_owned());
        self
    }

    /// The rate-limit budget left, as the last response said.
    pub fn rate_remaining(&self) -> Option<u64> {
        let remaining = self
            .rest
            .last_remaining
            .load(std::sync::atomic::Ordering::Relaxed);
        (remaining != u64::MAX).then_some(remaining)
    }

    /// Whether requests carry a person's token (`/user` answers with its login).
    pub(crate) fn is_personal(&self) -> bool {
        self.client.is_personal()
    }

    /// The API's base URL (no trailing `/`).
    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url, path)
    }

    /// GETs `path` (path and query, relative to the API base) as JSON, and returns the
    /// path of the next page if there is one.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, Option<String>), SourceError> {
        let response = self.get(path).await?;
        let next = response
            .headers
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link)
            .map(|url| path_and_query(url).to_owned());
        let value = serde_json::from_slice(&response.body).map_err(|e| SourceError::Invalid {
            url: self.url(path),
            message: e.to_string(),
        })?;
        Ok((value, next))
    }

    /// GETs `path`, waiting out rate limits and retrying 5xx and transport errors.
    pub(crate) async fn get(&self, path: &str) -> Result<Response, SourceError> {
        self.get_with(path, &HeaderMap::new()).await
    }

    /// `GET path` with extra request headers; a `304 Not Modified` is a response, not
    /// an error.
    pub(crate) async fn get_with(
        &self,
        path: &str,
        request_headers: &HeaderMap,
    ) -> Result<Response, SourceError> {
        let octocrab = self.client.octocrab().await?;
        let response = self
            .retrying(path, || self.get_once(octocrab, path, request_headers))
            .await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| SourceError::Transport {
                url: self.url(path),
                message: e.to_string(),
            })?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path` whose body is returned as it streams in. Transport faults and 5xx
    /// before the body starts are retried; rate limits are waited out as for `get`.
    pub(crate) async fn stream(
        &self,
        path: &str,
        request_headers: &HeaderMap,
    ) -> Result<repovault_core::ports::store::ByteStream, SourceError> {
        use futures::StreamExt;
        let octocrab = self.client.octocrab().await?;
        let response = self
            .retrying(path, || self.get_once(octocrab, path, request_headers))
            .await?;
        let body = http_body_util::BodyDataStream::new(response.into_body());
        Ok(body
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed())
    }

    /// `op` retried on 5xx and transport errors by [`RETRY`]; a rate limit longer
    /// than this client waits is returned at once (waits within it were sat out by
    /// [`Self::request`]).
    pub(crate) async fn retrying<T, Fut>(
        &self,
        path: &str,
        op: impl FnMut() -> Fut,
    ) -> Result<T, SourceError>
    where
        Fut: std::future::Future<Output = Result<T, SourceError>>,
    {
        let policy = RetryPolicy {
            max_delay: RETRY.max_delay.min(self.max_rate_limit_wait),
            ..RETRY
        };
        policy
            .run(op, |e, attempt, wait| {
                repovault_telemetry::metrics()
                    .retries
                    .add(1, &[repovault_telemetry::kv("where", "in_place")]);
                tracing::warn!(url = %self.url(path), error = %e, attempt, wait_ms = wait.as_millis() as u64, "GitHub request failed; retrying");
            })
            .await
    }

    /// One try of `GET path` within the in-flight limit: the response once its head
    /// is in (a success, or a `304 Not Modified`), rate limits waited out (not a try),
    /// anything else an error that says whether another try may help.
    async fn get_once(
        &self,
        octocrab: &octocrab::Octocrab,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<http::Response<Body>, SourceError> {
        let request = Request {
            method: http::Method::GET,
            path,
            headers,
            body: None,
            accept: |status| status.is_success() || status == StatusCode::NOT_MODIFIED,
        };
        Ok(self.request(octocrab, &request).await?.0)
    }

    /// `request` within the in-flight limit, rate limits waited out (the wait is
    /// returned): the response once its head is in when `request.accept` takes its
    /// status, else an error that says whether another try may help.
    pub(crate) async fn request(
        &self,
        octocrab: &octocrab::Octocrab,
        request: &Request<'_>,
    ) -> Result<(http::Response<Body>, Duration), SourceError> {
        let path = request.path;
        let budget = match path == crate::graphql::GRAPHQL_PATH {
            true => &self.graphql,
            false => &self.rest,
        };
        let mut waited = Duration::ZERO;
        loop {
            let paused = Instant::now();
            self.wait_if_paused(budget, path).await?;
            waited += paused.elapsed();
            let response = {
                let _slot = self.in_flight.acquire().await.expect("never closed");
                let mut builder = http::Request::builder()
                    .method(request.method.clone())
                    .uri(path);
                for (name, value) in request.headers {
                    builder = builder.header(name, value);
                }
                let sent = octocrab.build_request(builder, request.body).map_err(|e| {
                    SourceError::Invalid {
                        url: self.url(path),
                        message: e.to_string(),
                    }
                })?;
                octocrab
                    .execute(sent)
                    .await
                    .map_err(|e| SourceError::Transport {
                        url: self.url(path),
                        message: e.to_string(),
                    })?
            };
            let status = response.status();
            let headers = response.headers();
            if let Some(remaining) = rate_limit::remaining(headers) {
                budget
                    .last_remaining
                    .store(remaining, std::sync::atomic::Ordering::Relaxed);
                // The metric is REST's budget of requests (GraphQL's is of points).
                if std::ptr::eq(budget, &self.rest) {
                    repovault_telemetry::metrics()
                        .rate_limit_remaining
                        .record(remaining, &[]);
                }
            }
            if (request.accept)(status) {
                if let Some(pause) = rate_limit::pace(headers, now_epoch(), self.reserve) {
                    tracing::debug!(
                        pause_ms = pause.as_millis() as u64,
                        remaining = ?rate_limit::remaining(headers),
                        "pacing GitHub requests to the rate limit"
                    );
                    *budget
                        .paused_until
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + pause);
                }
                return Ok((response, waited));
            }
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body);
            if let Some(wait) = rate_limit::wait_for(status, &parts.headers, &text, now_epoch()) {
                if wait > self.max_rate_limit_wait {
                    return Err(SourceError::RateLimited { wait });
                }
                tracing::warn!(url = %self.url(path), wait_secs = wait.as_secs(), status = status.as_u16(), "GitHub rate limit hit; waiting as asked");
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            return Err(self.error_for(path, status, &text));
        }
    }

    /// Sits out a pause the rate limit asked for, unless it is longer than this
    /// client waits: then the pause stays for the next caller and this one gets
    /// [`SourceError::RateLimited`].
    async fn wait_if_paused(&self, budget: &Budget, path: &str) -> Result<(), SourceError> {
        let until = *budget
            .paused_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            let wait = until.saturating_duration_since(Instant::now());
            if wait > self.max_rate_limit_wait {
                tracing::warn!(url = %self.url(path), wait_secs = wait.as_secs(), "rate limit: not waiting that long");
                return Err(SourceError::RateLimited { wait });
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }

    pub(crate) fn error_for(&self, path: &str, status: StatusCode, body: &str) -> SourceError {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        match status {
            StatusCode::UNAUTHORIZED => SourceError::Unauthorized { message },
            StatusCode::FORBIDDEN => SourceError::Forbidden { message },
            StatusCode::NOT_FOUND => SourceError::NotFound {
                what: self.url(path),
            },
            _ => SourceError::Http {
                status: status.as_u16(),
                url: self.url(path),
                message,
            },
        }
    }
}

impl std::fmt::Debug for GitHubSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSource")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenSource for GitHubSource {
    async fn token(&self) -> Result<Option<Secret>, SourceError> {
        self.client.git_token().await
    }
}

pub(crate) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
