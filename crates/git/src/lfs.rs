//! Git LFS: the pointers among a repository's blobs, and the objects they name,
//! downloaded through the LFS batch API as streams (a 2 GiB object never sits in
//! memory).
//!
//! The batch API (`POST <repo>.git/info/lfs/objects/batch`) answers with a download
//! `href` and the headers to send with it. GitHub serves the objects from another
//! host: the token goes only to the repository's origin (the batch request, and a
//! download there that brings no `Authorization` of its own); a download elsewhere
//! gets exactly the headers the batch answer gave. No redirect is followed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use bytes::Bytes;
use futures::TryStreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyDataStream, Full};
use repovault_core::LfsObject;
use repovault_core::ports::store::ByteStream;
use serde::{Deserialize, Serialize};

use crate::error::classify_text;
use crate::protocol::{TIMEOUT, client, error_text};
use crate::{GitCredentials, GitError};

/// Pointer files are small: the spec caps them below 1024 bytes.
const MAX_POINTER: u64 = 1024;
/// Objects per batch request (GitHub's limit is 100).
pub const BATCH: usize = 100;
const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// The object a pointer file names, if `text` is one (spec v1: `version`, then
/// `oid sha256:<64 hex>` and `size <n>`, keys sorted, one per line).
pub fn parse_pointer(text: &[u8]) -> Option<LfsObject> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    let version = lines.next()?.strip_prefix("version ")?;
    if version != "https://git-lfs.github.com/spec/v1"
        && version != "https://hawser.github.com/spec/v1"
    {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "oid" => oid = Some(value.strip_prefix("sha256:")?),
            "size" => size = Some(value.parse::<u64>().ok()?),
            _ => {}
        }
    }
    let (oid, size) = (oid?, size?);
    let valid = oid.len() == 64 && oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| LfsObject {
        oid: oid.to_owned(),
        size,
    })
}

/// Every LFS object named by a pointer among the blobs of the repository at `repo`
/// (all of its objects: for a scratch repository holding one fetched pack, the
/// objects the fetched refs reach that the previous backup's did not). Blocking: two
/// `git cat-file` processes.
pub fn pointers_in(repo: &Path) -> Result<BTreeSet<LfsObject>, GitError> {
    let git = || {
        let mut cmd = crate::child::git();
        cmd.env("GIT_DIR", repo)
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let listed = git()
        .args([
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objecttype) %(objectsize) %(objectname)",
        ])
        .output()
        .map_err(GitError::Spawn)?;
    if !listed.status.success() {
        return Err(classify_text(
            "lfs scan",
            &repo.display().to_string(),
            String::from_utf8_lossy(&listed.stderr).trim().to_owned(),
        ));
    }
    let candidates: Vec<&str> = std::str::from_utf8(&listed.stdout)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (kind, size, oid) = (parts.next()?, parts.next()?, parts.next()?);
            (kind == "blob" && size.parse::<u64>().ok()? < MAX_POINTER).then_some(oid)
        })
        .collect();
    let mut found = BTreeSet::new();
    if candidates.is_empty() {
        return Ok(found);
    }
    let mut child = git()
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(GitError::Spawn)?;
    let mut stdin = child.stdin.take().expect("piped");
    let ids = candidates.join("\n") + "\n";
    // Written from another thread: git answers as it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || stdin.write_all(ids.as_bytes()));
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut header = String::new();
    loop {
        header.clear();
        if out.read_line(&mut header).map_err(GitError::Spawn)? == 0 {
            break;
        }
        // `<oid> blob <size>`, then the content and a newline.
        let size: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                GitError::Spawn(std::io::Error::other(format!(
                    "git cat-file said {header:?}"
                )))
            })?;
        let mut content = vec![0; size + 1];
        std::io::Read::read_exact(&mut out, &mut content).map_err(GitError::Spawn)?;
        if let Some(object) = parse_pointer(&content[..size]) {
            found.insert(object);
        }
    }
    let _ = writer.join();
    let status = child.wait().map_err(GitError::Spawn)?;
    if !status.success() {
        return Err(GitError::Spawn(std::io::Error::other(format!(
            "git cat-file --batch exited with {status}"
        ))));
    }
    Ok(found)
}

/// Where to download one object from, as the batch API said.
#[derive(Debug, Clone)]
pub struct Download {
    pub object: LfsObject,
    href: String,
    header: BTreeMap<String, String>,
}

/// What the batch API said of one object.
#[derive(Debug)]
pub enum Answer {
    Download(Download),
    /// The server has no content for it (a pointer committed without its object),
    /// or refuses it: the reason.
    Unavailable(LfsObject, String),
}

/// A repository's LFS endpoint.
pub struct LfsRemote {
    /// `<repo>.git/info/lfs`.
    endpoint: String,
    creds: GitCredentials,
}

#[derive(Serialize)]
struct BatchRequest<'a> {
    operation: &'static str,
    transfers: [&'static str; 1],
    objects: &'a [LfsObject],
    hash_algo: &'static str,
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    objects: Vec<BatchObject>,
}

#[derive(Deserialize)]
struct BatchObject {
    oid: String,
    size: u64,
    #[serde(default)]
    actions: Option<Actions>,
    #[serde(default)]
    error: Option<ObjectError>,
}

#[derive(Deserialize)]
struct Actions {
    download: Option<Action>,
}

#[derive(Deserialize)]
struct Action {
    href: String,
    #[serde(default)]
    header: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ObjectError {
    code: u16,
    message: String,
}

impl LfsRemote {
    /// The LFS endpoint of the repository at `repo_url` (its clone URL), with
    /// `creds` for the repository's origin.
    pub fn new(repo_url: &str, creds: &GitCredentials) -> LfsRemote {
        let base = repo_url.trim_end_matches('/');
        let base = if base.ends_with(".git") {
            base.to_owned()
        } else {
            format!("{base}.git")
        };
        LfsRemote {
            endpoint: format!("{base}/info/lfs"),
            creds: creds.clone(),
        }
    }

    /// Asks where to download `objects` (at most [`BATCH`]).
    pub async fn batch(&self, objects: &[LfsObject]) -> Result<Vec<Answer>, GitError> {
        let url = format!("{}/objects/batch", self.endpoint);
        let body = serde_json::to_vec(&BatchRequest {
            operation: "download",
            transfers: ["basic"],
            objects,
            hash_algo: "sha256",
        })
        .expect("serializable");
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(ACCEPT, MEDIA_TYPE)
            .header(CONTENT_TYPE, MEDIA_TYPE);
        if let Some(auth) = self.creds.authorization(&url) {
            request = request.header(AUTHORIZATION, auth);
        }
        let mut stream = self
            .send("lfs batch", &url, request, Bytes::from(body))
            .await?;
        let mut body = Vec::new();
        while let Some(chunk) = stream.try_next().await.transpose() {
            body.extend_from_slice(
                &chunk.map_err(|e| self.failed("lfs batch", &url, e.to_string()))?,
            );
        }
        let response: BatchResponse = serde_json::from_slice(&body)
            .map_err(|e| self.failed("lfs batch", &url, format!("unreadable answer: {e}")))?;
        let asked: BTreeSet<&str> = objects.iter().map(|o| o.oid.as_str()).collect();
        Ok(response
            .objects
            .into_iter()
            .filter(|o| asked.contains(o.oid.as_str()))
            .map(|o| {
                let object = LfsObject {
                    oid: o.oid,
                    size: o.size,
                };
                match (o.actions.and_then(|a| a.download), o.error) {
                    (Some(action), None) => Answer::Download(Download {
                        object,
                        href: action.href,
                        header: action.header,
                    }),
                    (_, Some(error)) => {
                        Answer::Unavailable(object, format!("{} {}", error.code, error.message))
                    }
                    (None, None) => Answer::Unavailable(object, "no download offered".into()),
                }
            })
            .collect())
    }

    /// The object's bytes as they arrive.
    pub async fn download(&self, download: &Download) -> Result<ByteStream, GitError> {
        let url = &download.href;
        let mut request = Request::builder().method(Method::GET).uri(url);
        for (name, value) in &download.header {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| self.failed("lfs download", url, e.to_string()))?;
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|e| self.failed("lfs download", url, e.to_string()))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        let has_auth = download
            .header
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        if !has_auth && let Some(auth) = self.creds.authorization(url) {
            request = request.header(AUTHORIZATION, auth);
        }
        self.send("lfs download", url, request, Bytes::new()).await
    }

    async fn send(
        &self,
        op: &'static str,
        url: &str,
        request: http::request::Builder,
        body: Bytes,
    ) -> Result<ByteStream, GitError> {
        let request = request
            .header(
                USER_AGENT,
                format!("git-lfs/3 (repovault/{})", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| self.failed(op, url, e.to_string()))?;
        let client = client().map_err(|e| self.failed(op, url, e))?;
        let response = tokio::time::timeout(TIMEOUT, client.request(request))
            .await
            .map_err(|_| self.failed(op, url, format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| self.failed(op, url, error_text(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            return Err(GitError::Redirected {
                url: url.to_owned(),
                to,
            });
        }
        match status {
            StatusCode::OK => {
                let body = BodyDataStream::new(response.into_body())
                    .map_err(|e| std::io::Error::other(error_text(&e)));
                let idle = tokio_stream::StreamExt::timeout(body, TIMEOUT);
                Ok(Box::pin(futures::StreamExt::map(idle, |item| match item {
                    Ok(chunk) => chunk,
                    Err(_) => Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no bytes within {TIMEOUT:?}"),
                    )),
                })))
            }
            StatusCode::NOT_FOUND => Err(GitError::NotFound {
                url: url.to_owned(),
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(GitError::AccessDenied {
                url: url.to_owned(),
                detail: format!("the LFS server answered {status}"),
            }),
            _ => Err(classify_text(
                op,
                url,
                format!("the LFS server answered {status}"),
            )),
        }
    }

    fn failed(&self, op: &'static str, url: &str, detail: String) -> GitError {
        GitError::Failed {
            op,
            url: url.to_owned(),
            detail: self.creds.redact(&detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn a_pointer_file_names_its_object_and_anything_else_is_not_a_pointer() {
        let pointer =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        assert_eq!(
            parse_pointer(pointer.as_bytes()),
            Some(LfsObject {
                oid: OID.into(),
                size: 12345
            })
        );
        for not in [
            "hello world\n".to_owned(),
            pointer.replace("spec/v1", "spec/v9"),
            pointer.replace("sha256:", "sha1:"),
            pointer.replace(OID, &OID[..63]),
            pointer.replace(OID, &OID.to_uppercase()),
            pointer.replace("12345", "-1"),
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\n"),
        ] {
            assert_eq!(parse_pointer(not.as_bytes()), None, "{not:?}");
        }
    }

    #[test]
    fn pointers_are_found_among_blobs_of_every_branch_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            crate::test_git(dir.path(), args);
        };
        let pointer = |oid: &str, size: u64| {
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
        };
        let other = "a".repeat(64);
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("model.bin"), pointer(OID, 5)).unwrap();
        std::fs::write(dir.path().join("README"), "version 1 of nothing\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-qm", "one"]);
        git(&["checkout", "-qb", "other"]);
        std::fs::write(dir.path().join("data.bin"), pointer(&other, 7)).unwrap();
        git(&["add", "."]);
        git(&["commit", "-qm", "two"]);
        let found = pointers_in(&dir.path().join(".git")).unwrap();
        let oids: Vec<_> = found.iter().map(|o| (o.oid.as_str(), o.size)).collect();
        assert_eq!(oids, vec![(OID, 5), (other.as_str(), 7)]);
    }

    #[test]
    fn the_endpoint_is_beside_the_repository_with_or_without_dot_git() {
        let creds = GitCredentials::new(None);
        for url in [
            "https://github.com/a/b.git",
            "https://github.com/a/b",
            "https://github.com/a/b/",
        ] {
            assert_eq!(
                LfsRemote::new(url, &creds).endpoint,
                "https://github.com/a/b.git/info/lfs"
            );
        }
    }
}
