//! Files and images dropped into issue, comment, discussion and release text, as
//! GitHub serves them: `{web}/user-attachments/assets/<uuid>` (or `files/<id>/<name>`)
//! on GitHub's own host answers with a redirect to a signed URL on a storage origin
//! (here the media host). A private repository's attachment needs the token on
//! GitHub's host; the storage origin refuses any request that carries one (as S3
//! refuses a signed URL with a second authorization) and counts it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;

use super::api::{Auth, auth_of};
use super::state::Shared;

/// Where attachments are served on GitHub's host.
pub(crate) const PREFIX: &str = "/user-attachments/";

/// One attachment: its bytes, and whether its repository is private.
#[derive(Debug, Clone)]
pub(crate) struct Attachment {
    pub bytes: Vec<u8>,
    pub private: bool,
}

fn text(status: StatusCode, body: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.to_owned()))
        .expect("valid response")
}

/// `GET /user-attachments/<path>` on GitHub's host: a redirect to the storage origin,
/// or `404` (unknown, or private and no valid token).
pub(crate) async fn web(shared: Arc<Shared>, request: Request) -> Response {
    let path = request.uri().path().trim_start_matches(PREFIX).to_owned();
    let authed = auth_of(&shared, request.headers()) == Auth::Token;
    let mut inner = shared.lock();
    inner.stats.attachment_requests += 1;
    match inner.attachments.get(&path) {
        Some(a) if !a.private || authed => Response::builder()
            .status(StatusCode::FOUND)
            .header(
                header::LOCATION,
                format!(
                    "{}/attachments/{path}?X-Amz-Signature=fake&X-Amz-Expires=300",
                    shared.media_url
                ),
            )
            .body(Body::empty())
            .expect("valid response"),
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// `GET /attachments/<path>?<signature>` on the storage origin: first a redirect to
/// itself (a second hop on the same foreign origin, where a client that re-sends the
/// first request's headers would give the token away), then the bytes; refused with
/// credentials.
pub(crate) async fn storage(shared: Arc<Shared>, request: Request) -> Response {
    let path = request
        .uri()
        .path()
        .trim_start_matches("/attachments/")
        .to_owned();
    let second_hop = request.uri().query().is_some_and(|q| q.contains("hop=2"));
    let mut inner = shared.lock();
    if request.headers().contains_key(header::AUTHORIZATION) {
        inner.stats.attachment_storage_requests_with_token += 1;
        return text(
            StatusCode::BAD_REQUEST,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        );
    }
    match inner.attachments.get(&path) {
        Some(_) if !second_hop => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(
                header::LOCATION,
                format!("/attachments/{path}?X-Amz-Signature=fake&hop=2"),
            )
            .body(Body::empty())
            .expect("valid response"),
        Some(a) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(a.bytes.clone()))
            .expect("valid response"),
        None => text(StatusCode::NOT_FOUND, "NoSuchKey"),
    }
}
