//! Downloads from GitHub's web origin (attachments), not through octocrab: its
//! redirect following sends a request's `Authorization` again to a second hop on the
//! same foreign origin. Here redirects are followed by hand, at most
//! [`MAX_REDIRECTS`], the token sent with the first request only and only when it goes
//! to GitHub's web origin; a redirect may not leave `https` (unless the web origin is
//! plain `http` itself: a local test server).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyDataStream, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use repovault_core::ports::source::SourceError;
use repovault_core::ports::store::ByteStream;

type HttpClient = Client<repovault_http::Connector, Full<Bytes>>;

/// Redirects followed at most (GitHub's: one, to its storage).
pub(crate) const MAX_REDIRECTS: usize = 5;
/// How long a server may take to answer, and to send the next bytes.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The process's client for the web origin and where it redirects.
fn client() -> Result<HttpClient, String> {
    static CLIENT: std::sync::OnceLock<Result<HttpClient, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let connector = repovault_http::connector(false)?;
            Ok(Client::builder(TokioExecutor::new()).build(connector))
        })
        .clone()
}

/// `url`'s bytes as they arrive. `token` goes with the first request when `url` is on
/// `web` (GitHub's web origin), never with a redirected one.
pub(crate) async fn fetch(
    url: &str,
    web: &url::Url,
    token: Option<HeaderValue>,
) -> Result<ByteStream, SourceError> {
    let failed = |url: &url::Url, message: String| SourceError::Transport {
        url: url.to_string(),
        message,
    };
    let client = client().map_err(|message| SourceError::Invalid {
        url: url.to_owned(),
        message,
    })?;
    let mut current = url::Url::parse(url).map_err(|e| SourceError::Invalid {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    for hop in 0..=MAX_REDIRECTS {
        let mut request = Request::get(current.as_str())
            .header(USER_AGENT, "repovault")
            .header(ACCEPT, "*/*");
        if hop == 0
            && current.origin() == web.origin()
            && let Some(token) = &token
        {
            request = request.header(AUTHORIZATION, token.clone());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(&current, e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, client.request(request))
            .await
            .map_err(|_| failed(&current, format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| failed(&current, e.to_string()))?;
        let status = response.status();
        if status.is_redirection() {
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| current.join(l).ok())
                .ok_or_else(|| failed(&current, format!("{status} without a usable Location")))?;
            if next.scheme() != "https" && next.scheme() != web.scheme() {
                return Err(SourceError::Invalid {
                    url: current.to_string(),
                    message: format!("a redirect to {}: not https", next.scheme()),
                });
            }
            current = next;
            continue;
        }
        if !status.is_success() {
            return Err(match status {
                StatusCode::NOT_FOUND => SourceError::NotFound {
                    what: current.to_string(),
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SourceError::Forbidden {
                    message: format!("{status} from {current}"),
                },
                _ => SourceError::Http {
                    status: status.as_u16(),
                    url: current.to_string(),
                    message: status.to_string(),
                },
            });
        }
        // GitHub's own pages (a sign-in page) are not an attachment.
        let html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if html && current.origin() == web.origin() {
            return Err(SourceError::Invalid {
                url: current.to_string(),
                message: "an HTML page, not an attachment".into(),
            });
        }
        let at = current.to_string();
        let body = BodyDataStream::new(response.into_body())
            .map(|chunk| chunk.map_err(std::io::Error::other));
        return Ok(with_timeout(body, at));
    }
    Err(SourceError::Invalid {
        url: url.to_owned(),
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// `body`, failing when the next bytes take longer than [`TIMEOUT`].
fn with_timeout(
    body: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    url: String,
) -> ByteStream {
    let body = Box::pin(body);
    futures::stream::unfold(Some(body), move |body| {
        let url = url.clone();
        async move {
            let mut body = body?;
            match tokio::time::timeout(TIMEOUT, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(std::io::Error::other(format!(
                        "{url}: no bytes within {TIMEOUT:?}"
                    ))),
                    None,
                )),
            }
        }
    })
    .boxed()
}
