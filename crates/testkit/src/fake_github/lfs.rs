//! Git LFS as GitHub serves it: the batch API beside the repository
//! (`POST /<owner>/<repo>.git/info/lfs/objects/batch`, same auth as git), answering
//! with download links on *another origin* (GitHub's media host; here a second
//! listener) that need the `Authorization: RemoteAuth …` header the batch answer gave,
//! and never the token. Objects live in `<root>/<owner>/<repo>.lfs/<oid>`.
//!
//! Uploads (`operation: "upload"`, the token required): objects the server has get no
//! `actions`; the others an `upload` action, a `PUT` of the bytes to the media host
//! with its own header, checked against the announced size and the oid (SHA-256).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::Digest;
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
    let upload = asked["operation"] == "upload";
    if upload && auth == Auth::Anonymous {
        // git-lfs asks for credentials on this header and tries again.
        let mut response = reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Credentials needed"}),
        );
        response.headers_mut().insert(
            "lfs-authenticate",
            header::HeaderValue::from_static("Basic realm=\"GitHub\""),
        );
        return response;
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
    if !upload && asked["operation"] != "download" {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Invalid operation"}),
        );
    }
    let store = shared.root.join(owner).join(format!("{repo}.lfs"));
    if upload {
        let objects = upload_actions(&shared, &mut inner, owner, repo, &store, &asked);
        return reply(
            StatusCode::OK,
            json!({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
        );
    }
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

fn valid_oid(oid: &str) -> bool {
    oid.len() == 64
        && oid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The batch answer to an upload: no `actions` for objects the server has, an
/// `upload` action on the media host for the others (announced there as pending).
fn upload_actions(
    shared: &Shared,
    inner: &mut super::state::Inner,
    owner: &str,
    repo: &str,
    store: &std::path::Path,
    asked: &Value,
) -> Vec<Value> {
    let remote_auth = format!("RemoteAuth {}", random_chars(32));
    inner.lfs_upload_auth.insert(remote_auth.clone());
    asked["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|object| {
            let oid = object["oid"].as_str().unwrap_or_default();
            let Some(size) = object["size"].as_u64().filter(|_| valid_oid(oid)) else {
                return json!({"oid": oid, "size": object["size"].clone(),
                              "error": {"code": 422, "message": "Invalid object"}});
            };
            if store.join(oid).is_file() {
                return json!({"oid": oid, "size": size, "authenticated": true});
            }
            inner
                .lfs_pending
                .insert(format!("{owner}/{repo}/{oid}"), size);
            json!({
                "oid": oid, "size": size, "authenticated": true,
                "actions": {"upload": {
                    "href": format!("{}/{owner}/{repo}/{oid}", shared.media_url),
                    "header": {"Authorization": remote_auth},
                    "expires_in": 3600,
                }},
            })
        })
        .collect()
}

/// The media host: `GET /<owner>/<repo>/<oid>` with the batch answer's header, and
/// `PUT` of an object a batch upload announced.
pub(crate) async fn media(shared: Arc<Shared>, request: Request) -> Response {
    if request.method() == Method::PUT {
        return media_upload(shared, request).await;
    }
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let file = {
        let mut inner = shared.lock();
        if let Some(refused) = refused(&mut inner, request.headers(), false) {
            return refused;
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

/// The media host's check of a request's `Authorization`: it must be a header a batch
/// answer handed out (for downloads, or for uploads); else the refusal. A token
/// (`Basic`) is counted: the media host must never see one.
fn refused(
    inner: &mut super::state::Inner,
    headers: &http::HeaderMap,
    upload: bool,
) -> Option<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented.is_some_and(|v| v.starts_with("Basic ")) {
        inner.stats.lfs_media_requests_with_token += 1;
    }
    let handed_out = if upload {
        &inner.lfs_upload_auth
    } else {
        &inner.lfs_media_auth
    };
    (!presented.is_some_and(|v| handed_out.contains(v))).then(|| {
        reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        )
    })
}

/// `PUT /<owner>/<repo>/<oid>` on the media host: stores the object if its bytes are
/// what the batch request announced (size) and its oid names (SHA-256).
async fn media_upload(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().trim_start_matches('/').to_owned();
    let expected = {
        let mut inner = shared.lock();
        if let Some(refused) = refused(&mut inner, &parts.headers, true) {
            return refused;
        }
        inner.lfs_pending.get(&path).copied()
    };
    let Some(expected) = expected else {
        return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    };
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"message": e.to_string()})),
    };
    let (owner, repo, oid) = {
        let mut parts = path.splitn(3, '/');
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    };
    if bytes.len() as u64 != expected {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Size mismatch: expected {expected} bytes, got {}", bytes.len())}),
        );
    }
    if hex::encode(sha2::Sha256::digest(&bytes)) != oid {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Object's content does not match its oid"}),
        );
    }
    let store = shared.root.join(owner).join(format!("{repo}.lfs"));
    let partial = store.join(format!(".{oid}.{}", random_chars(8)));
    let written = async {
        tokio::fs::create_dir_all(&store).await?;
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, store.join(oid)).await
    }
    .await;
    if let Err(e) = written {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": e.to_string()}),
        );
    }
    let mut inner = shared.lock();
    inner.lfs_pending.remove(&path);
    inner.stats.lfs_uploads += 1;
    inner.stats.lfs_upload_bytes += bytes.len() as u64;
    inner.stats.created("lfs-uploads");
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .expect("valid response")
}

fn random_chars(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}
