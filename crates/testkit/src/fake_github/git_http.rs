//! git's smart HTTP protocol, served by `git http-backend` (CGI) over the real
//! repositories under the fake's root: fetches, and pushes (`git-receive-pack`) with
//! the token, as GitHub takes them. Like GitHub, a push may not update `refs/pull/*`
//! (git's own "deny updating a hidden ref"), a wiki accepts pushes only once it
//! exists (its first page is written in the web UI: [`FakeGitHub::init_wiki`]), and an
//! archived repository none.
//!
//! [`FakeGitHub::init_wiki`]: super::FakeGitHub::init_wiki

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

/// `/<owner>/<repo>.git/info/refs`, `/<owner>/<repo>.git/git-upload-pack` or
/// `/<owner>/<repo>.git/git-receive-pack`.
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
    if !matches!(
        service,
        "info/refs" | "git-upload-pack" | "git-receive-pack"
    ) || dir.contains('/')
    {
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
    let (method, query, headers) = (
        request.method().clone(),
        request.uri().query().unwrap_or("").to_owned(),
        request.headers().clone(),
    );
    // A push: its ref listing (`info/refs?service=git-receive-pack`) or its pack.
    let push = git.service == "git-receive-pack"
        || (git.service == "info/refs"
            && query.split('&').any(|kv| kv == "service=git-receive-pack"));
    let is_fetch = method == Method::POST && !push;
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
        // Pushing takes credentials, whoever may read the repository.
        if push && auth == Auth::Anonymous {
            return plain(StatusCode::UNAUTHORIZED, "");
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
        if push
            && inner
                .repo(git.owner, git.repo)
                .is_some_and(|r| r.spec.archived)
        {
            return plain(
                StatusCode::FORBIDDEN,
                "ERROR: This repository was archived so it is read-only.\n",
            );
        }
        if push && method == Method::POST {
            let pushed = if git.wiki {
                format!("{full}.wiki")
            } else {
                full.clone()
            };
            *inner.stats.pushes.entry(pushed).or_default() += 1;
        }
        // A ref listing: a protocol v0 advertisement, or a v2 `ls-refs` (a v2
        // `info/refs` only lists capabilities).
        let v2 = !shared.git_protocol_v0
            && headers
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("version=2"));
        if (git.service == "info/refs" && !v2 && !push) || is_ls_refs {
            *inner
                .stats
                .ref_advertisements
                .entry(full.clone())
                .or_default() += 1;
        }
        if git.service != "info/refs" && !is_ls_refs && !git.wiki && !push {
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
    let receiving = push && method == Method::POST;
    let before = receiving.then(|| refs_of(&on_disk));
    let result = run_backend(&shared, &method, &path_info, &query, &headers, body, push).await;
    let (builder, mut stdout, mut child) = match result {
        Ok(running) => running,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("http-backend: {e}\n"),
            );
        }
    };
    if !receiving {
        // Reap the child once it is done writing; dropping the stream (client gone)
        // closes the pipe and ends it.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        return builder
            .body(Body::from_stream(ReaderStream::with_capacity(
                stdout,
                1 << 16,
            )))
            .expect("valid response");
    }
    // A push's answer is small: read it whole, so the refs have moved when the
    // repository is touched.
    let mut report = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut report).await;
    let _ = child.wait().await;
    if let Err(e) = read {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("http-backend: {e}\n"),
        );
    }
    if !git.wiki && before.as_ref() != Some(&refs_of(&on_disk)) {
        pushed(&shared, git.owner, git.repo, &on_disk);
    }
    builder.body(Body::from(report)).expect("valid response")
}

/// Every ref of the repository at `dir` and what it points at.
fn refs_of(dir: &std::path::Path) -> Vec<(String, Option<git2::Oid>)> {
    let Ok(git) = git2::Repository::open_bare(dir) else {
        return vec![];
    };
    let Ok(refs) = git.references() else {
        return vec![];
    };
    let mut refs: Vec<_> = refs
        .flatten()
        .filter_map(|r| Some((r.name().ok()?.to_owned(), r.target())))
        .collect();
    refs.sort();
    refs
}

/// After a push that moved refs: `pushed_at` and `size` move, and a repository whose
/// default branch does not exist (an empty one's first push) takes a pushed branch
/// as its default, as GitHub does.
fn pushed(shared: &Shared, owner: &str, name: &str, dir: &std::path::Path) {
    let size_kb = crate::dir_size_kb(dir);
    let mut inner = shared.lock();
    inner.touch(owner, name, size_kb);
    let Some(repo) = inner.repo_mut(owner, name) else {
        return;
    };
    let Ok(git) = git2::Repository::open_bare(dir) else {
        return;
    };
    let default = format!("refs/heads/{}", repo.spec.default_branch);
    if git.find_reference(&default).is_ok() {
        return;
    }
    let mut branches: Vec<String> = git
        .branches(Some(git2::BranchType::Local))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_owned))
        .collect();
    branches.sort();
    if let Some(first) = branches.first()
        && git.set_head(&format!("refs/heads/{first}")).is_ok()
    {
        repo.spec.default_branch = first.clone();
    }
}

type Running = (
    axum::http::response::Builder,
    BufReader<tokio::process::ChildStdout>,
    tokio::process::Child,
);

/// Runs `git http-backend` as a CGI script: the response's status and headers, the
/// rest of its output, and the child. Pushes (`push`) are enabled, as the user the
/// token belongs to, with `refs/pull/*` hidden from them.
async fn run_backend(
    shared: &Shared,
    method: &Method,
    path_info: &str,
    query: &str,
    headers: &axum::http::HeaderMap,
    body: bytes::Bytes,
    push: bool,
) -> std::io::Result<Running> {
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
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if push {
        cmd.env("GIT_CONFIG_COUNT", "3")
            .env("GIT_CONFIG_KEY_1", "http.receivepack")
            .env("GIT_CONFIG_VALUE_1", "true")
            // GitHub's pull request refs are read-only to pushes.
            .env("GIT_CONFIG_KEY_2", "receive.hideRefs")
            .env("GIT_CONFIG_VALUE_2", "refs/pull")
            .env("REMOTE_USER", super::TOKEN_USER);
    } else {
        cmd.env("GIT_CONFIG_COUNT", "1");
    }
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
    Ok((builder, stdout, child))
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
        let p = parse("/acme/api.wiki.git/git-receive-pack").unwrap();
        assert_eq!(
            (p.repo, p.wiki, p.service),
            ("api", true, "git-receive-pack")
        );
        assert!(parse("/acme/api.git/git-upload-archive").is_none());
        assert!(parse("/a/b/c.git/info/refs").is_none());
    }
}
