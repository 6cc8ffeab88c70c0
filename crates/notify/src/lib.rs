//! # repovault-notify
//!
//! Notification channels over HTTP, [`Notifier`]s:
//!
//! - [`Slack`]: an incoming webhook; the message as text.
//! - [`Webhook`]: any URL; the [`Notification`] as JSON, signed when a secret is set:
//!   `X-Repovault-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, as GitHub
//!   signs its own webhooks, so a receiver can check it the same way.
//!
//! Webhook URLs carry their credentials (Slack's does), so they are [`Secret`]s:
//! errors name the channel and the status, never the URL. No redirect is followed.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use repovault_core::Secret;
use repovault_core::ports::notify::{Notification, Notifier, NotifyError};
use sha2::Sha256;

/// How long a webhook may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The signature header of [`Webhook`].
pub const SIGNATURE_HEADER: &str = "x-repovault-signature-256";

type HttpClient = Client<repovault_http::Connector, Full<Bytes>>;

fn client() -> Result<HttpClient, NotifyError> {
    let connector = repovault_http::connector(false).map_err(NotifyError::Refused)?;
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// POSTs `body` to `url`; 2xx is success, 5xx/429/transport errors are transient,
/// anything else refused. `channel` names it in errors (the URL is a secret).
async fn post(
    channel: &str,
    url: &Secret,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), NotifyError> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(url.expose())
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            format!("repovault/{}", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| NotifyError::Refused(format!("{channel}: the URL is not valid")))?;
    let response = tokio::time::timeout(TIMEOUT, client()?.request(request))
        .await
        .map_err(|_| NotifyError::Transient(format!("{channel}: no answer within {TIMEOUT:?}")))?
        .map_err(|e| NotifyError::Transient(format!("{channel}: {}", cause(&e))))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(NotifyError::Transient(format!(
            "{channel} answered {status}"
        )))
    } else {
        Err(NotifyError::Refused(format!("{channel} answered {status}")))
    }
}

/// The innermost cause of a client error (the outer ones repeat the URL).
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// A Slack incoming webhook.
pub struct Slack {
    url: Secret,
}

impl Slack {
    pub fn new(url: Secret) -> Slack {
        Slack { url }
    }
}

#[async_trait]
impl Notifier for Slack {
    fn channel(&self) -> &str {
        "slack"
    }

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::json!({ "text": notification.text() });
        post("slack", &self.url, body.to_string().into_bytes(), &[]).await
    }
}

/// A generic JSON webhook, optionally signed.
pub struct Webhook {
    url: Secret,
    secret: Option<Secret>,
}

impl Webhook {
    pub fn new(url: Secret, secret: Option<Secret>) -> Webhook {
        Webhook { url, secret }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` with `secret`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait]
impl Notifier for Webhook {
    fn channel(&self) -> &str {
        "webhook"
    }

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(notification).expect("serializable");
        let mut headers = vec![("x-repovault-event", notification.event.clone())];
        if let Some(secret) = &self.secret {
            headers.push((SIGNATURE_HEADER, signature(secret, &body)));
        }
        post("webhook", &self.url, body, &headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs_scheme() {
        // GitHub's documented example: secret "It's a Secret to Everybody", payload
        // "Hello, World!".
        let secret = Secret::new("It's a Secret to Everybody");
        assert_eq!(
            signature(&secret, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
