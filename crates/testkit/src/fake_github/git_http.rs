//! git's smart HTTP protocol, served by `git http-backend` (CGI) over the real
//! repositories under the fake's root.

use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::io::ReaderStream;

use super::api::{Auth, auth_of};
use super::state::Shared;

/// `/<owner>/<repo>.git/info/refs` or `/<owner>/<repo>.git/git-upload-pack`.
pub(crate) fn is_git_path(path: &str) -> bool {
    parse(path).is_some()
}

struct GitPath<'a> {
    owner: &'a str,
    /// The repository the path belongs to (`x` for both `x.git` and `x.wiki.git`).
    repo: &'a str,
    wiki: bool,
    service: &'a str,
}

fn parse(path: &str) -> Option<GitPath<'_>> {
    let rest = path.strip_prefix('/')?;
    let (owner, rest) = rest.split_once('/')?;
    let (dir, service) = rest.split_once(".git/")?;
    if !matches!(service, "info/refs" | "git-upload-pack") || dir.contains('/') {
        return None;
    }
    let (repo, wiki) = match dir.strip_suffix(".wiki") {
        Some(repo) => (repo, true),
        None => (dir, false),
    };
    Some(GitPath {
        owner,
        repo,
        wiki,
        service,
    })
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if status == StatusCode::UNAUTHORIZED {
        response = response.header(header::WWW_AUTHENTICATE, "Basic realm=\"GitHub\"");
    }
    response
        .body(Body::from(text.to_owned()))
        .expect("valid response")
}

pub(crate) async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let git = parse(&path).expect("checked by is_git_path");
    let auth = auth_of(&shared, request.headers());
    let is_fetch = request.method() == Method::POST;
    let (method, query, headers) = (
        request.method().clone(),
        request.uri().query().unwrap_or("").to_owned(),
        request.headers().clone(),
    );
    let body = match axum::body::to_bytes(request.into_body(), usize::MAX).await {
        Ok(body) => body,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    const LS_REFS: &[u8] = b"command=ls-refs";
    let is_ls_refs = is_fetch && body.windows(LS_REFS.len()).any(|w| w == LS_REFS);
    let full = format!("{}/{}", git.owner, git.repo);
    let mut hold = None;
    {
        let mut inner = shared.lock();
        inner.stats.git_requests += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            inner.stats.git_requests_with_credentials += 1;
        }
        if let Some(to) = inner
            .git_redirects
            .get(&super::state::key(git.owner, git.repo))
        {
            let location = match query.as_str() {
                "" => format!("{to}{path}"),
                q => format!("{to}{path}?{q}"),
            };
            return Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .expect("valid response");
        }
        if auth == Auth::Bad {
            return plain(
                StatusCode::UNAUTHORIZED,
                "Invalid username or token. Password authentication is not supported for Git operations.\n",
            );
        }
        let visible = match inner.repo(git.owner, git.repo) {
            Some(repo) => !repo.spec.private || auth == Auth::Token,
            None => false,
        };
        if !visible {
            // GitHub asks anonymous callers to authenticate rather than reveal whether
            // a private repository exists.
            let public_parent = inner
                .repo(git.owner, git.repo)
                .is_some_and(|r| !r.spec.private);
            return if auth == Auth::Anonymous && !public_parent {
                plain(StatusCode::UNAUTHORIZED, "")
            } else {
                plain(StatusCode::NOT_FOUND, "Repository not found.\n")
            };
        }
        // A ref listing: a protocol v0 advertisement, or a v2 `ls-refs` (a v2
        // `info/refs` only lists capabilities).
        let v2 = !shared.git_protocol_v0
            && headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("version=2"));
        if (git.service == "info/refs" && !v2) || is_ls_refs {
            *inner
                .stats
                .ref_advertisements
                .entry(full.clone())
                .or_default() += 1;
        }
        if git.service != "info/refs" && !is_ls_refs && !git.wiki {
            if let Some(status) = inner.take_git_fault(git.owner, git.repo) {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                return plain(status, "injected fault\n");
            }
            *inner.stats.fetches.entry(full.clone()).or_default() += 1;
            hold = inner.take_slow_fetch(git.owner, git.repo);
        }
    }
    if let Some(delay) = hold {
        tokio::time::sleep(delay).await;
    }
    let dir = if git.wiki {
        format!("{}.wiki.git", git.repo)
    } else {
        format!("{}.git", git.repo)
    };
    let on_disk = shared.root.join(git.owner).join(&dir);
    if !on_disk.join("HEAD").exists() {
        return plain(StatusCode::NOT_FOUND, "Repository not found.\n");
    }
    let path_info = format!("/{}/{dir}/{}", git.owner, git.service);
    match run_backend(&shared, &method, &path_info, &query, &headers, body).await {
        Ok(response) => response,
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("http-backend: {e}\n"),
        ),
    }
}

/// Runs `git http-backend` as a CGI script and streams its output back.
async fn run_backend(
    shared: &Shared,
    method: &Method,
    path_info: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: bytes::Bytes,
) -> std::io::Result<Response> {
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING))
        .env(
            "GIT_PROTOCOL",
            headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .filter(|_| !shared.git_protocol_v0)
                .unwrap_or(""),
        )
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let mut stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
    let mut builder = Response::builder().status(StatusCode::OK);
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).await? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code = value
                    .split_whitespace()
                    .next()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(500);
                builder = builder.status(code);
            } else if let Ok(v) = HeaderValue::from_str(value) {
                builder = builder.header(name, v);
            }
        }
    }
    // Reap the child once it is done writing; dropping the stream (client gone)
    // closes the pipe and ends it.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(builder
        .body(Body::from_stream(ReaderStream::with_capacity(
            stdout,
            1 << 16,
        )))
        .expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_git_paths() {
        let p = parse("/acme/api.git/info/refs").unwrap();
        assert_eq!(
            (p.owner, p.repo, p.wiki, p.service),
            ("acme", "api", false, "info/refs")
        );
        let p = parse("/acme/api.wiki.git/git-upload-pack").unwrap();
        assert_eq!((p.repo, p.wiki), ("api", true));
        assert!(parse("/orgs/acme/repos").is_none());
        assert!(parse("/acme/api.git/git-receive-pack").is_none());
        assert!(parse("/a/b/c.git/info/refs").is_none());
    }
}
