//! Git LFS as GitHub serves it: the batch API beside the repository
//! (`POST /<owner>/<repo>.git/info/lfs/objects/batch`, same auth as git), answering
//! with download links on *another origin* (GitHub's media host; here a second
//! listener) that need the `Authorization: RemoteAuth …` header the batch answer gave,
//! and never the token. Objects live in `<root>/<owner>/<repo>.lfs/<oid>`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio_util::io::ReaderStream;

use super::api::{Auth, auth_of};
use super::state::Shared;

const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// `(owner, repo)` of a batch request path.
pub(crate) fn batch_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (owner, rest) = rest.split_once('/')?;
    let repo = rest.strip_suffix(".git/info/lfs/objects/batch")?;
    (!repo.contains('/')).then_some((owner, repo))
}

fn reply(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, MEDIA_TYPE)
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

pub(crate) async fn batch(shared: Arc<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let (owner, repo) = batch_path(&path).expect("checked by the caller");
    let auth = auth_of(&shared, request.headers());
    if request.method() != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"message": "Not Found"}),
        );
    }
    let body = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"message": e.to_string()})),
    };
    let Ok(asked) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Unable to parse request"}),
        );
    };
    let mut inner = shared.lock();
    inner.stats.lfs_batches += 1;
    if auth == Auth::Bad {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        );
    }
    let visible = inner
        .repo(owner, repo)
        .is_some_and(|r| !r.spec.private || auth == Auth::Token);
    if !visible {
        return reply(
            StatusCode::NOT_FOUND,
            json!({"message": "Repository or object not found"}),
        );
    }
    if asked["operation"] != "download" {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"message": "read-only in this fake"}),
        );
    }
    let store = shared.root.join(owner).join(format!("{repo}.lfs"));
    let links_to = inner
        .lfs_links_to
        .clone()
        .unwrap_or_else(|| shared.media_url.clone());
    let remote_auth = format!("RemoteAuth {}", random_chars(32));
    inner.lfs_media_auth.insert(remote_auth.clone());
    let objects: Vec<Value> = asked["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|object| {
            let oid = object["oid"].as_str().unwrap_or_default();
            let size = object["size"].as_u64().unwrap_or_default();
            let exists = oid.len() == 64
                && oid.bytes().all(|b| b.is_ascii_hexdigit())
                && store.join(oid).is_file();
            if exists {
                json!({
                    "oid": oid, "size": size, "authenticated": true,
                    "actions": {"download": {
                        "href": format!("{links_to}/{owner}/{repo}/{oid}"),
                        "header": {"Authorization": remote_auth},
                        "expires_in": 3600,
                    }},
                })
            } else {
                json!({"oid": oid, "size": size, "error": {"code": 404, "message": "Object does not exist"}})
            }
        })
        .collect();
    reply(
        StatusCode::OK,
        json!({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
    )
}

/// The media host: `GET /<owner>/<repo>/<oid>` with the batch answer's header.
pub(crate) async fn media(shared: Arc<Shared>, request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let file = {
        let mut inner = shared.lock();
        if presented
            .as_deref()
            .is_some_and(|v| v.starts_with("Basic "))
        {
            inner.stats.lfs_media_requests_with_token += 1;
        }
        if !presented.is_some_and(|v| inner.lfs_media_auth.contains(&v)) {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Bad credentials"}),
            );
        }
        let mut parts = path.splitn(3, '/');
        let (Some(owner), Some(repo), Some(oid)) = (parts.next(), parts.next(), parts.next())
        else {
            return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
        };
        if oid.contains('/') || oid.contains("..") {
            return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
        }
        inner.stats.lfs_downloads += 1;
        shared
            .root
            .join(owner)
            .join(format!("{repo}.lfs"))
            .join(oid)
    };
    match tokio::fs::File::open(&file).await {
        Ok(f) => {
            let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            shared.lock().stats.lfs_download_bytes += size;
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(header::CONTENT_LENGTH, size)
                .body(Body::from_stream(ReaderStream::new(f)))
                .expect("valid response")
        }
        Err(_) => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

fn random_chars(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}
