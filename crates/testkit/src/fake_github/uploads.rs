//! The release-asset upload origin, GitHub's `uploads.github.com` (GitHub Enterprise:
//! `/api/uploads` on its host): `POST /repos/{o}/{n}/releases/{id}/assets?name=&label=`
//! with the raw bytes and their `Content-Type`. Another listener, as it is another
//! origin: a client must take it from a release's `upload_url`, not guess it.
//! Authentication, rate limits and the content-creation limit are the API's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;

use super::api::{auth_of, count_request, not_found, refusal};
use super::state::Shared;
use super::writes::{Writer, upload_asset};

/// A query string's value as its client meant it: `+` is a space (form encoding, as
/// Rails reads queries), `%XX` decoded.
fn decode_query(value: &str) -> Option<String> {
    super::metadata::decode_segment(&value.replace('+', " "))
}

pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .body(Body::empty())
                .expect("valid response");
        }
    };
    let auth = auth_of(&shared, &parts.headers);
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), decode_query(v)?)))
        .collect();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut inner = shared.lock();
    inner.stats.upload_requests += 1;
    if parts.headers.contains_key(header::AUTHORIZATION) {
        inner.stats.upload_requests_with_credentials += 1;
    }
    let (mut quota, _) = count_request(&shared, &mut inner, auth);
    let write = parts.method == Method::POST;
    if let Some(refused) = refusal(&shared, &mut inner, auth, write, &mut quota) {
        return refused;
    }
    let path = parts.uri.path();
    let Some(route) = path.strip_prefix(shared.upload_prefix.as_str()) else {
        return not_found(&quota);
    };
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let api = format!("{}{}", shared.base_url, shared.api_prefix);
    match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["repos", owner, name, "releases", id, "assets"]) => {
            let writer = Writer {
                shared: &shared,
                api: &api,
                quota: &quota,
            };
            upload_asset(
                &writer,
                &mut inner,
                owner,
                name,
                id,
                query.get("name").cloned(),
                query.get("label").cloned(),
                &content_type,
                bytes.to_vec(),
            )
        }
        _ => not_found(&quota),
    }
}
