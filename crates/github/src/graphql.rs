//! GitHub's GraphQL API (`POST /graphql`) for the data REST does not serve
//! (Discussions, Projects): its budget of points is paced like REST's but apart (see
//! `client::Budget`), a spent budget waited out like REST's, and GitHub's errors in
//! the answer (`200` with `errors`) mapped to [`SourceError`] like REST's statuses.

use std::time::Duration;

use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use repovault_core::ports::source::SourceError;
use serde_json::{Value, json};

use crate::GitHubSource;
use crate::client::{Request, now_epoch};
use crate::rate_limit;

/// Where GraphQL is, under the API's base (`https://api.github.com/graphql`). GitHub
/// Enterprise Server serves it at `/api/graphql`, beside `/api/v3`: not reached yet.
pub(crate) const GRAPHQL_PATH: &str = "/graphql";

/// An answer is read up to this size.
const MAX_ANSWER_BYTES: usize = 32 << 20;

/// What an answer's `errors` mean.
#[derive(Debug)]
enum Refusal {
    /// The budget of points is spent (`RATE_LIMITED`).
    RateLimited,
    Error(SourceError),
}

/// The first of an answer's `errors`, as an error (`None`: no errors). A partial
/// answer with errors is an error: what it lacks is not known.
fn refusal(answer: &Value) -> Option<Refusal> {
    let errors = answer.get("errors")?.as_array().filter(|e| !e.is_empty())?;
    // Execution errors have a `type`; a query GitHub refuses to run, a `code`.
    let first = &errors[0];
    let kind = first["type"]
        .as_str()
        .or(first["extensions"]["code"].as_str())
        .unwrap_or_default();
    let message = errors
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some(match kind {
        "RATE_LIMITED" | "RATE_LIMIT" => Refusal::RateLimited,
        "NOT_FOUND" => Refusal::Error(SourceError::NotFound { what: message }),
        "FORBIDDEN" | "INSUFFICIENT_SCOPES" => Refusal::Error(SourceError::Forbidden { message }),
        // "Something went wrong while executing your query. This may be the result of
        // a timeout": GitHub failing, as a 502 would say.
        "" => Refusal::Error(SourceError::Http {
            status: 502,
            url: GRAPHQL_PATH.into(),
            message,
        }),
        _ => Refusal::Error(SourceError::Invalid {
            url: GRAPHQL_PATH.into(),
            message,
        }),
    })
}

impl GitHubSource {
    /// `query` with `variables`: the answer's `data`. Server errors and dropped
    /// connections are retried (a query changes nothing); a spent budget is waited out
    /// up to [`GitHubSource::max_rate_limit_wait`], else [`SourceError::RateLimited`].
    pub(crate) async fn graphql_data(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<Value, SourceError> {
        let body = json!({ "query": query, "variables": variables });
        let headers = HeaderMap::new();
        let request = Request {
            method: Method::POST,
            path: GRAPHQL_PATH,
            headers: &headers,
            body: Some(&body),
            accept: |status| status.is_success(),
        };
        loop {
            let octocrab = self.client.octocrab().await?;
            let (headers, answer) = self
                .retrying(GRAPHQL_PATH, || async {
                    let (response, _) = self.request(octocrab, &request).await?;
                    let headers = response.headers().clone();
                    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                        .collect()
                        .await
                        .map_err(|e| match e.is::<http_body_util::LengthLimitError>() {
                            // Asking again gets the same answer.
                            true => SourceError::Invalid {
                                url: self.url(GRAPHQL_PATH),
                                message: format!("an answer over {MAX_ANSWER_BYTES} bytes"),
                            },
                            false => SourceError::Transport {
                                url: self.url(GRAPHQL_PATH),
                                message: e.to_string(),
                            },
                        })?
                        .to_bytes();
                    let answer: Value =
                        serde_json::from_slice(&body).map_err(|e| SourceError::Invalid {
                            url: self.url(GRAPHQL_PATH),
                            message: format!("not JSON: {e}"),
                        })?;
                    // GitHub failing inside a 200 is retried like a 502.
                    if let Some(Refusal::Error(e @ SourceError::Http { .. })) = refusal(&answer) {
                        return Err(e);
                    }
                    Ok((headers, answer))
                })
                .await?;
            match refusal(&answer) {
                None => return Ok(answer.get("data").cloned().unwrap_or(Value::Null)),
                Some(Refusal::Error(e)) => return Err(e),
                Some(Refusal::RateLimited) => {
                    let wait = rate_limit::until_reset(&headers, now_epoch())
                        .unwrap_or(Duration::from_secs(60));
                    if wait > self.max_rate_limit_wait {
                        return Err(SourceError::RateLimited { wait });
                    }
                    tracing::warn!(
                        wait_secs = wait.as_secs(),
                        "GitHub's GraphQL budget is spent; waiting for its reset"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_errors_are_errors_like_rests() {
        assert!(refusal(&json!({"data": {"repository": null}})).is_none());
        assert!(refusal(&json!({"data": {}, "errors": []})).is_none());
        let limited =
            json!({"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]});
        assert!(matches!(refusal(&limited), Some(Refusal::RateLimited)));
        let missing = json!({"data": {"repository": null}, "errors": [{"type": "NOT_FOUND",
            "message": "Could not resolve to a Repository with the name 'acme/gone'."}]});
        assert!(matches!(refusal(&missing),
            Some(Refusal::Error(SourceError::NotFound { what })) if what.contains("acme/gone")));
        let scopes =
            json!({"errors": [{"type": "INSUFFICIENT_SCOPES", "message": "needs read:project"}]});
        assert!(matches!(
            refusal(&scopes),
            Some(Refusal::Error(SourceError::Forbidden { .. }))
        ));
        let failing = json!({"data": null, "errors": [{"message":
            "Something went wrong while executing your query. This may be the result of a timeout"}]});
        assert!(matches!(
            refusal(&failing),
            Some(Refusal::Error(SourceError::Http { status: 502, .. }))
        ));
        let bad = json!({"errors": [{"extensions": {"code": "undefinedField"},
            "message": "Field 'x' doesn't exist on type 'Discussion'"}, {"message": "and another"}]});
        assert!(matches!(refusal(&bad),
            Some(Refusal::Error(SourceError::Invalid { message, .. })) if message.contains("'x'") && message.contains("another")));
    }
}
