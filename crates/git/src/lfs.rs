//! Git LFS: the pointers among a repository's blobs, and the objects they name,
//! downloaded through the LFS batch API as streams (a 2 GiB object never sits in
//! memory).
//!
//! The batch API (`POST <repo>.git/info/lfs/objects/batch`) answers with a download
//! `href` and the headers to send with it. GitHub serves the objects from another
//! host: the token goes only to the repository's origin (the batch request, and a
//! download there that brings no `Authorization` of its own); a download elsewhere
//! gets the headers the batch answer gave, except hop-by-hop ones and `Host`. No
//! redirect is followed.
//!
//! A batch answer is not trusted further than that (a compromised or impersonated
//! server could point anywhere):
//!
//! - a link must be `https`, or on the repository's own origin; plain `http` only
//!   when the configuration allows it (`allow-insecure-http`, which is what
//!   credentials scoped to a plain-http origin mean);
//! - a link to an IP address in a private, link-local (cloud metadata), shared,
//!   unspecified or non-unicast range is refused, however it is written
//!   (`2852039166`, `[::ffff:169.254.169.254]`); a loopback address too, unless plain
//!   http is allowed (a test server on this machine). Host names are not resolved
//!   here: a name that resolves to such an address is the residual risk;
//! - a refused link makes the object unavailable, with the reason: no request is made;
//! - a download is the pointer's size (the answer's is ignored): a longer or shorter
//!   body fails, and no more than the pointer's size is passed on;
//! - the answer itself is read up to 2 MiB, within the timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use bytes::Bytes;
use futures::TryStreamExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyDataStream, Full};
use repovault_core::ports::store::ByteStream;
use repovault_core::{GitHost, LfsObject};
use serde::{Deserialize, Serialize};

use crate::error::classify_text;
use crate::protocol::{TIMEOUT, client, error_text};
use crate::{GitCredentials, GitError};

/// Pointer files are small: the spec caps them below 1024 bytes.
const MAX_POINTER: u64 = 1024;
/// Objects per batch request (GitHub's limit is 100).
pub const BATCH: usize = 100;
/// The largest batch answer read: 100 objects' links and headers take a few
/// kilobytes each.
pub(crate) const MAX_BATCH_ANSWER: usize = 2 << 20;
/// Headers of a batch answer never sent on: hop-by-hop ones, and those the HTTP
/// client sets itself.
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];
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
    /// The repository's origin: a link there is as trusted as the batch API.
    origin: Option<GitHost>,
}

/// What the batch API said of one object to upload.
#[derive(Debug)]
pub enum UploadAnswer {
    /// The server has it already.
    Present(LfsObject),
    Upload(Upload),
    /// Refused, with the reason.
    Unavailable(LfsObject, String),
}

/// Where to upload one object to, as the batch API said.
#[derive(Debug, Clone)]
pub struct Upload {
    pub object: LfsObject,
    href: String,
    header: BTreeMap<String, String>,
    /// Where to confirm the upload, when the server asks for it.
    verify: Option<(String, BTreeMap<String, String>)>,
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
    #[serde(default)]
    actions: Option<Actions>,
    #[serde(default)]
    error: Option<ObjectError>,
}

#[derive(Deserialize)]
struct Actions {
    download: Option<Action>,
    upload: Option<Action>,
    verify: Option<Action>,
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
            origin: GitHost::of_url(&base).ok(),
        }
    }

    /// The link a batch answer gave, if it may be followed (see the module docs);
    /// else why not.
    fn check_href(&self, href: &str) -> Result<url::Url, String> {
        let shown: String = href.chars().take(100).collect();
        let url = url::Url::parse(href).map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{shown:?} carries credentials"));
        }
        if self
            .origin
            .as_ref()
            .is_some_and(|origin| origin.serves(url.as_str()))
        {
            return Ok(url);
        }
        let plain_http = self.creds.allows_plain_http();
        match url.scheme() {
            "https" => {}
            "http" if plain_http => {}
            "http" => return Err(format!("{shown:?} is plain http")),
            other => return Err(format!("{shown:?}: the scheme {other:?} is not https")),
        }
        let why = match url.host() {
            None => Some("it has no host"),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (!plain_http && (name == "localhost" || name.ends_with(".localhost")))
                    .then_some("a loopback address")
            }
            Some(url::Host::Ipv4(ip)) => internal_v4(ip, plain_http),
            Some(url::Host::Ipv6(ip)) => internal_v6(ip, plain_http),
        };
        match why {
            Some(why) => Err(format!("{shown:?}: {why}")),
            None => Ok(url),
        }
    }

    /// One batch request for `objects` (at most [`BATCH`]): the answers by object asked
    /// about (an answer's size is the pointer's, whatever the answer says).
    async fn ask(
        &self,
        operation: &'static str,
        objects: &[LfsObject],
    ) -> Result<Vec<(LfsObject, BatchObject)>, GitError> {
        let url = format!("{}/objects/batch", self.endpoint);
        let body = serde_json::to_vec(&BatchRequest {
            operation,
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
        let stream = self
            .send("lfs batch", &url, request, Bytes::from(body), None)
            .await?;
        let body = self.read_answer(&url, stream).await?;
        let response: BatchResponse = serde_json::from_slice(&body)
            .map_err(|e| self.failed("lfs batch", &url, format!("unreadable answer: {e}")))?;
        let asked: BTreeMap<&str, &LfsObject> =
            objects.iter().map(|o| (o.oid.as_str(), o)).collect();
        Ok(response
            .objects
            .into_iter()
            .filter_map(|o| Some(((*asked.get(o.oid.as_str())?).clone(), o)))
            .collect())
    }

    /// An action's link, if it may be followed, and its headers but those never
    /// passed on.
    fn follow(&self, action: Action) -> Result<(String, BTreeMap<String, String>), String> {
        let href = self.check_href(&action.href)?;
        let header = action
            .header
            .into_iter()
            .filter(|(name, _)| !DROPPED_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
            .collect();
        Ok((href.into(), header))
    }

    /// Asks where to upload `objects` (at most [`BATCH`]).
    pub async fn upload_batch(&self, objects: &[LfsObject]) -> Result<Vec<UploadAnswer>, GitError> {
        Ok(self
            .ask("upload", objects)
            .await?
            .into_iter()
            .map(|(object, o)| {
                let (upload, verify) = o.actions.map_or((None, None), |a| (a.upload, a.verify));
                match (upload, o.error) {
                    (_, Some(error)) => UploadAnswer::Unavailable(
                        object,
                        format!("{} {}", error.code, error.message),
                    ),
                    (None, None) => UploadAnswer::Present(object),
                    (Some(action), None) => {
                        let links = self
                            .follow(action)
                            .and_then(|up| Ok((up, verify.map(|v| self.follow(v)).transpose()?)));
                        match links {
                            Ok(((href, header), verify)) => UploadAnswer::Upload(Upload {
                                object,
                                href,
                                header,
                                verify,
                            }),
                            Err(why) => UploadAnswer::Unavailable(
                                object,
                                format!("upload link refused: {why}"),
                            ),
                        }
                    }
                }
            })
            .collect())
    }

    /// Uploads `bytes` (the object's content, whole) where `upload` says, then
    /// confirms it when the server asked for that. The upload may take as long as
    /// sending its bytes at 1 MiB/s, beyond the usual timeout.
    pub async fn upload(&self, upload: &Upload, bytes: Bytes) -> Result<(), GitError> {
        let url = &upload.href;
        let request = Request::builder()
            .method(Method::PUT)
            .uri(url)
            .header(CONTENT_TYPE, "application/octet-stream");
        let request = self.with_headers(request, url, &upload.header)?;
        let within = TIMEOUT + std::time::Duration::from_secs(bytes.len() as u64 >> 20);
        let body = self
            .send_within("lfs upload", url, request, bytes, None, within)
            .await?;
        self.drain("lfs upload", url, body).await?;
        if let Some((href, header)) = &upload.verify {
            let request = Request::builder()
                .method(Method::POST)
                .uri(href)
                .header(ACCEPT, MEDIA_TYPE)
                .header(CONTENT_TYPE, MEDIA_TYPE);
            let request = self.with_headers(request, href, header)?;
            let object = serde_json::to_vec(&upload.object).expect("serializable");
            let body = self
                .send("lfs verify", href, request, Bytes::from(object), None)
                .await?;
            self.drain("lfs verify", href, body).await?;
        }
        Ok(())
    }

    /// Reads an answer's body to its end (at most [`MAX_BATCH_ANSWER`] bytes).
    async fn drain(
        &self,
        op: &'static str,
        url: &str,
        mut body: ByteStream,
    ) -> Result<(), GitError> {
        let mut read = 0;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| self.failed(op, url, e.to_string()))?
        {
            read += chunk.len();
            if read > MAX_BATCH_ANSWER {
                return Err(self.failed(op, url, "the answer is too large".into()));
            }
        }
        Ok(())
    }

    /// `header` from a batch answer (values marked sensitive), else the token when
    /// `url` is on its origin.
    fn with_headers(
        &self,
        mut request: http::request::Builder,
        url: &str,
        header: &BTreeMap<String, String>,
    ) -> Result<http::request::Builder, GitError> {
        for (name, value) in header {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| self.failed("lfs transfer", url, e.to_string()))?;
            let mut value = HeaderValue::try_from(value.as_str())
                .map_err(|e| self.failed("lfs transfer", url, e.to_string()))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        let has_auth = header
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        if !has_auth && let Some(auth) = self.creds.authorization(url) {
            request = request.header(AUTHORIZATION, auth);
        }
        Ok(request)
    }

    /// Asks where to download `objects` (at most [`BATCH`]).
    pub async fn batch(&self, objects: &[LfsObject]) -> Result<Vec<Answer>, GitError> {
        Ok(self
            .ask("download", objects)
            .await?
            .into_iter()
            .map(|(object, o)| {
                match (o.actions.and_then(|a| a.download), o.error) {
                    (Some(action), None) => match self.follow(action) {
                        Ok((href, header)) => Answer::Download(Download {
                            object,
                            href,
                            header,
                        }),
                        Err(why) => {
                            tracing::warn!(oid = %object.oid, %why, "an LFS download link was refused; nothing is asked of it");
                            Answer::Unavailable(object, format!("download link refused: {why}"))
                        }
                    },
                    (_, Some(error)) => {
                        Answer::Unavailable(object, format!("{} {}", error.code, error.message))
                    }
                    (None, None) => Answer::Unavailable(object, "no download offered".into()),
                }
            })
            .collect())
    }

    /// A batch answer, whole: at most [`MAX_BATCH_ANSWER`] bytes, within the timeout.
    async fn read_answer(&self, url: &str, mut stream: ByteStream) -> Result<Vec<u8>, GitError> {
        let mut body = Vec::new();
        let read = tokio::time::timeout(TIMEOUT, async {
            while let Some(chunk) = stream.try_next().await.transpose() {
                let chunk = chunk.map_err(|e| self.failed("lfs batch", url, e.to_string()))?;
                if body.len() + chunk.len() > MAX_BATCH_ANSWER {
                    return Err(self.failed(
                        "lfs batch",
                        url,
                        format!("the answer is larger than {MAX_BATCH_ANSWER} bytes"),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(())
        })
        .await
        .map_err(|_| {
            self.failed(
                "lfs batch",
                url,
                format!("no whole answer within {TIMEOUT:?}"),
            )
        })?;
        read.map(|()| body)
    }

    /// The object's bytes as they arrive.
    pub async fn download(&self, download: &Download) -> Result<ByteStream, GitError> {
        let url = &download.href;
        let request = Request::builder().method(Method::GET).uri(url);
        let request = self.with_headers(request, url, &download.header)?;
        let size = download.object.size;
        let body = self
            .send("lfs download", url, request, Bytes::new(), Some(size))
            .await?;
        Ok(exactly(body, size, download.object.oid.clone()))
    }

    /// Sends one request; the body of a `200`. With `size`, a `Content-Length`
    /// other than it is refused before a byte is read.
    async fn send(
        &self,
        op: &'static str,
        url: &str,
        request: http::request::Builder,
        body: Bytes,
        size: Option<u64>,
    ) -> Result<ByteStream, GitError> {
        self.send_within(op, url, request, body, size, TIMEOUT)
            .await
    }

    /// [`send`](Self::send), the answer's head awaited for at most `within`.
    async fn send_within(
        &self,
        op: &'static str,
        url: &str,
        request: http::request::Builder,
        body: Bytes,
        size: Option<u64>,
        within: std::time::Duration,
    ) -> Result<ByteStream, GitError> {
        let request = request
            .header(
                USER_AGENT,
                format!("git-lfs/3 (repovault/{})", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|e| self.failed(op, url, e.to_string()))?;
        let client = client().map_err(|e| self.failed(op, url, e))?;
        let response = tokio::time::timeout(within, client.request(request))
            .await
            .map_err(|_| self.failed(op, url, format!("no answer within {within:?}")))?
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
                let announced = response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if let (Some(size), Some(announced)) = (size, announced)
                    && announced != size
                {
                    return Err(self.failed(
                        op,
                        url,
                        format!("the server announced {announced} bytes; the pointer says {size}"),
                    ));
                }
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

/// Why an IPv4 address is no place for a download link, if it is not.
fn internal_v4(ip: Ipv4Addr, loopback_allowed: bool) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        return (!loopback_allowed).then_some("a loopback address");
    }
    if ip.is_link_local() {
        Some("a link-local address (cloud metadata lives there)")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if a == 0 {
        Some("an unspecified address")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not a unicast address")
    } else {
        None
    }
}

/// Why an IPv6 address is no place for a download link, if it is not (an
/// IPv4-mapped or NAT64 address is judged by its IPv4 address).
fn internal_v6(ip: Ipv6Addr, loopback_allowed: bool) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4, loopback_allowed);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return internal_v4(Ipv4Addr::new(a, b, c, d), loopback_allowed);
    }
    if ip.is_loopback() {
        (!loopback_allowed).then_some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a unique local (private) address")
    } else if ip.is_multicast() {
        Some("not a unicast address")
    } else {
        None
    }
}

/// `body`, which must be exactly the object: `size` bytes whose SHA-256 is `oid`. An
/// error item as soon as more arrives (nothing past `size` is passed on), or in place
/// of the end if fewer did or the content is not the object's, so a store that the
/// stream is written into keeps nothing of it.
fn exactly(body: ByteStream, size: u64, oid: String) -> ByteStream {
    use sha2::Digest;
    let state = (body, 0u64, sha2::Sha256::new(), false);
    Box::pin(futures::stream::unfold(
        state,
        move |(mut body, seen, mut hasher, done)| {
            let oid = oid.clone();
            async move {
                if done {
                    return None;
                }
                match body.try_next().await {
                    Ok(Some(chunk)) => {
                        let seen = seen + chunk.len() as u64;
                        if seen > size {
                            let e = std::io::Error::other(format!(
                                "the LFS server sent more than the pointer's {size} bytes"
                            ));
                            return Some((Err(e), (body, seen, hasher, true)));
                        }
                        hasher.update(&chunk);
                        Some((Ok(chunk), (body, seen, hasher, false)))
                    }
                    Ok(None) if seen < size => {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the LFS server sent {seen} of the pointer's {size} bytes"),
                        );
                        Some((Err(e), (body, seen, hasher, true)))
                    }
                    Ok(None) => {
                        let sha256 = hex::encode(hasher.finalize_reset());
                        if sha256 == oid {
                            return None;
                        }
                        let e = std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "the LFS server sent content with SHA-256 {sha256}, not the pointer's {oid}"
                            ),
                        );
                        Some((Err(e), (body, seen, hasher, true)))
                    }
                    Err(e) => Some((Err(e), (body, seen, hasher, true))),
                }
            }
        },
    ))
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

#[cfg(test)]
mod hostile_tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::{get, post};
    use repovault_core::GitHost;

    use super::*;

    /// SHA-256 of `hello`, the media host's usual content.
    const OID: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// What the media host saw: each request's headers.
    type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

    /// A media host serving `body` for any path; and what it saw.
    async fn media(body: Vec<u8>) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let app = Router::new().fallback(get(move |request: Request| {
            log.lock().unwrap().push(request.headers().clone());
            let body = body.clone();
            async move { Body::from(body) }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    /// A repository whose batch API answers every object with `answer(oid, size)`
    /// as its `actions.download` (or the whole body, when `raw`); its clone URL.
    async fn repository(answer: serde_json::Value, raw: Option<Vec<u8>>) -> String {
        let app = Router::new().route(
            "/o/r.git/info/lfs/objects/batch",
            post(move || {
                let body = raw
                    .clone()
                    .unwrap_or_else(|| answer.to_string().into_bytes());
                async move { Body::from(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/o/r.git", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn pointer() -> LfsObject {
        LfsObject {
            oid: OID.into(),
            size: 5,
        }
    }

    fn answer_with(href: &str, size: u64, header: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"objects": [{
            "oid": OID, "size": size,
            "actions": {"download": {"href": href, "header": header}},
        }]})
    }

    /// Credentials scoped to the repository's own origin: plain http is allowed only
    /// because that origin is plain http (the configuration opted in).
    fn scoped(url: &str) -> GitCredentials {
        GitCredentials::new(None).scoped(GitHost::of_url(url).unwrap())
    }

    async fn batch(url: &str, creds: &GitCredentials) -> Answer {
        let mut answers = LfsRemote::new(url, creds)
            .batch(&[pointer()])
            .await
            .unwrap();
        assert_eq!(answers.len(), 1);
        answers.remove(0)
    }

    #[tokio::test]
    async fn hrefs_to_internal_addresses_other_schemes_or_with_credentials_are_refused() {
        for href in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://2852039166/latest/meta-data/",
            "http://0xa9fea9fe/latest/",
            "http://[::ffff:169.254.169.254]/latest/",
            "http://[fe80::1]/x",
            "https://10.0.0.5/x",
            "https://172.16.3.4/x",
            "https://192.168.1.1/x",
            "https://100.64.0.1/x",
            "https://[fd00::1]/x",
            "https://0.0.0.0/x",
            "file:///etc/passwd",
            "ftp://media.example/x",
            "https://user:pass@media.example/x",
            "not a url",
        ] {
            let url = repository(answer_with(href, 5, serde_json::json!({})), None).await;
            match batch(&url, &scoped(&url)).await {
                Answer::Unavailable(object, reason) => {
                    assert_eq!(object, pointer());
                    assert!(reason.contains("refused"), "{href}: {reason}");
                }
                Answer::Download(d) => panic!("{href} was accepted: {d:?}"),
            }
        }
    }

    #[tokio::test]
    async fn loopback_and_plain_http_only_when_the_configuration_allows_plain_http() {
        let (media_url, seen) = media(b"hello".to_vec()).await;
        let href = format!("{media_url}/o/r/{OID}");
        let url = repository(answer_with(&href, 5, serde_json::json!({})), None).await;
        // Unscoped credentials (as for an https GitHub): refused, and nothing is
        // asked of the media host.
        match batch(&url, &GitCredentials::new(None)).await {
            Answer::Unavailable(_, reason) => assert!(reason.contains("refused"), "{reason}"),
            Answer::Download(d) => panic!("accepted: {d:?}"),
        }
        assert!(seen.lock().unwrap().is_empty(), "a request was made");
        // Scoped to the plain-http origin (`allow-insecure-http`): a test server.
        let Answer::Download(download) = batch(&url, &scoped(&url)).await else {
            panic!("refused")
        };
        let remote = LfsRemote::new(&url, &scoped(&url));
        let bytes = collect(remote.download(&download).await.unwrap())
            .await
            .unwrap();
        assert_eq!(bytes, b"hello");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    async fn collect(mut stream: ByteStream) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn hop_by_hop_and_host_headers_from_the_answer_are_dropped() {
        let (media_url, seen) = media(b"hello".to_vec()).await;
        let href = format!("{media_url}/o/r/{OID}");
        let header = serde_json::json!({
            "Authorization": "RemoteAuth abc",
            "X-Media-Token": "t",
            "Host": "metadata.google.internal",
            "Connection": "close, x-media-token",
            "Keep-Alive": "timeout=5",
            "Transfer-Encoding": "chunked",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic eA==",
            "Content-Length": "0",
        });
        let url = repository(answer_with(&href, 5, header), None).await;
        let Answer::Download(download) = batch(&url, &scoped(&url)).await else {
            panic!("refused")
        };
        let remote = LfsRemote::new(&url, &scoped(&url));
        assert_eq!(
            collect(remote.download(&download).await.unwrap())
                .await
                .unwrap(),
            b"hello"
        );
        let seen = seen.lock().unwrap();
        let headers = &seen[0];
        assert_eq!(headers["authorization"], "RemoteAuth abc");
        assert_eq!(headers["x-media-token"], "t");
        assert_eq!(
            headers["host"].to_str().unwrap(),
            media_url.trim_start_matches("http://")
        );
        for dropped in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "te",
            "upgrade",
            "proxy-authorization",
        ] {
            assert!(!headers.contains_key(dropped), "{dropped}: {headers:?}");
        }
    }

    #[tokio::test]
    async fn a_download_stops_at_the_pointers_size_whatever_the_answer_says() {
        // The answer claims 1 GiB; the pointer says 5 bytes; the host sends 10 MiB.
        let (media_url, _) = media(vec![b'x'; 10 << 20]).await;
        let href = format!("{media_url}/o/r/{OID}");
        let url = repository(answer_with(&href, 1 << 30, serde_json::json!({})), None).await;
        let Answer::Download(download) = batch(&url, &scoped(&url)).await else {
            panic!("refused")
        };
        assert_eq!(
            download.object,
            pointer(),
            "the pointer's size, not the answer's"
        );
        let remote = LfsRemote::new(&url, &scoped(&url));
        let mut taken = 0;
        let err = match remote.download(&download).await {
            Err(e) => e.to_string(),
            Ok(mut stream) => loop {
                match stream.try_next().await {
                    Ok(Some(chunk)) => taken += chunk.len(),
                    Ok(None) => panic!("the whole body was passed on"),
                    Err(e) => break e.to_string(),
                }
            },
        };
        assert!(taken <= 5, "{taken} bytes passed on");
        assert!(err.contains('5'), "{err}");
        // Fewer bytes than the pointer says: an error too, at the end.
        let (media_url, _) = media(b"hel".to_vec()).await;
        let href = format!("{media_url}/o/r/{OID}");
        let url = repository(answer_with(&href, 5, serde_json::json!({})), None).await;
        let Answer::Download(download) = batch(&url, &scoped(&url)).await else {
            panic!("refused")
        };
        let remote = LfsRemote::new(&url, &scoped(&url));
        let short = match remote.download(&download).await {
            Err(e) => Err(std::io::Error::other(e.to_string())),
            Ok(stream) => collect(stream).await,
        };
        assert!(short.is_err(), "{short:?}");
        // The pointer's size but not its content: an error in place of the end, so a
        // store keeps nothing.
        let (media_url, _) = media(b"wrong".to_vec()).await;
        let href = format!("{media_url}/o/r/{OID}");
        let url = repository(answer_with(&href, 5, serde_json::json!({})), None).await;
        let Answer::Download(download) = batch(&url, &scoped(&url)).await else {
            panic!("refused")
        };
        let remote = LfsRemote::new(&url, &scoped(&url));
        let forged = match remote.download(&download).await {
            Err(e) => Err(std::io::Error::other(e.to_string())),
            Ok(stream) => collect(stream).await,
        };
        let err = forged.unwrap_err().to_string();
        assert!(err.contains("SHA-256"), "{err}");
    }

    #[tokio::test]
    async fn a_batch_answer_over_the_cap_is_refused() {
        let huge = format!(
            "{{\"objects\": [], \"padding\": \"{}\"}}",
            "p".repeat(MAX_BATCH_ANSWER + 1)
        );
        let url = repository(serde_json::json!({}), Some(huge.into_bytes())).await;
        let err = LfsRemote::new(&url, &scoped(&url))
            .batch(&[pointer()])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
