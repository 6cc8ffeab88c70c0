//! git's smart HTTP protocol, version 2, spoken directly: `ls-refs`, then `fetch` with
//! the pack streamed as it arrives, never written to disk or indexed.
//!
//! Framing (pkt-lines, side bands) is `gix-packetline`'s; the HTTP client is hyper's.
//! Three requests: `GET info/refs` (the capability advertisement, which tells whether
//! the server speaks version 2 at all), `POST git-upload-pack` with `command=ls-refs`,
//! and `POST git-upload-pack` with `command=fetch`, our `want`s and `have`s and
//! `done` in one round. No redirect is followed, and the token is sent only when the
//! URL is on the origin the credentials are scoped to.
//!
//! A server that answers `info/refs` in protocol version 0 has listed every ref in
//! that answer ([`Connected::V0`]): one request tells whether anything changed, and
//! the caller fetches with the git CLI only then.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gix_packetline::PacketLineRef;
use gix_packetline::blocking_io::StreamingPeekableIter;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyDataStream, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use repovault_core::RefSet;
use repovault_core::ports::store::ByteStream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::bundle::{PackCheck, PackSummary};
use crate::error::classify_text;
use crate::{GitCredentials, GitError, RepoRefs};

type HttpClient = Client<repovault_http::Connector, Full<Bytes>>;

/// How long a server may take to answer a request, and to send the next bytes of a
/// pack; a stalled connection fails (and is retried) rather than hanging a job.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of pack handed on at once.
const CHUNK: usize = 1 << 20;
/// The largest version 2 capability advertisement (`GET info/refs`): a real one is a
/// few hundred bytes. (A version 0 answer lists every ref: it may be as large as a
/// ref listing.)
const MAX_ADVERTISEMENT: usize = 1 << 20;
/// The largest ref listing read (`ls-refs`): about 700,000 refs, GitHub's pull
/// request refs included.
pub(crate) const MAX_REF_LISTING: usize = 64 << 20;
/// How long an advertisement or a ref listing may take to arrive, whole.
pub(crate) const LISTING_DEADLINE: Duration = Duration::from_secs(300);

/// A repository on a server that speaks protocol version 2.
pub struct Remote {
    client: HttpClient,
    /// The repository URL without a trailing `/` (`https://github.com/o/r.git`).
    url: String,
    /// `Basic x-access-token:<token>` when `url` is on the credentials' origin.
    auth: Option<HeaderValue>,
    creds: GitCredentials,
    /// The server advertised `object-format`: requests must name it.
    object_format: bool,
    /// How long a ref listing may take to arrive, whole.
    listing_deadline: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// The process's HTTP client: connections are pooled per host, and the system's root
/// certificates are loaded once.
pub(crate) fn client() -> Result<HttpClient, String> {
    static CLIENT: std::sync::OnceLock<Result<HttpClient, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // Requests are small and answered at once: without TCP_NODELAY, Nagle's
            // algorithm and delayed ACKs add tens of milliseconds to each.
            let connector = repovault_http::connector(true)?;
            Ok(Client::builder(TokioExecutor::new()).build(connector))
        })
        .clone()
}

/// Origins known to speak protocol v2 (and whether they advertise `object-format`):
/// looks `origin` up, first recording `learned` when given.
fn known_v2(origin: &str, learned: Option<bool>) -> Option<bool> {
    static KNOWN: std::sync::Mutex<BTreeMap<String, bool>> = std::sync::Mutex::new(BTreeMap::new());
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(object_format) = learned {
        known.insert(origin.to_owned(), object_format);
    }
    known.get(origin).copied()
}

fn agent() -> String {
    format!("repovault/{}", env!("CARGO_PKG_VERSION"))
}

/// What a server said to `GET info/refs`.
#[derive(Debug)]
pub enum Connected {
    /// It speaks protocol version 2: a session for `ls-refs` and `fetch`.
    V2(Box<Remote>),
    /// It speaks only version 0, whose answer lists every ref (and `HEAD`'s target):
    /// fetching needs the git CLI.
    V0(RepoRefs),
}

impl Remote {
    /// Opens a session: `GET info/refs` with `Git-Protocol: version=2` (once per server
    /// and process: the capabilities are the server's). A server that answers with
    /// protocol version 0 gives its refs instead ([`Connected::V0`]). A repository
    /// whose object format is not SHA-1 is refused (a v2 bundle cannot hold it).
    pub async fn connect(url: &str, creds: &GitCredentials) -> Result<Connected, GitError> {
        let auth = creds.authorization(url);
        let mut remote = Remote {
            client: client().map_err(|e| failed("connect", url, e))?,
            url: url.trim_end_matches('/').to_owned(),
            auth,
            creds: creds.clone(),
            object_format: false,
            listing_deadline: LISTING_DEADLINE,
        };
        // Capabilities belong to the server: once one repository's advertisement said
        // version 2, the next repositories there skip the round trip.
        let origin = repovault_core::GitHost::of_url(url)
            .map(|h| h.to_string())
            .ok();
        if let Some(object_format) = origin.as_ref().and_then(|o| known_v2(o, None)) {
            remote.object_format = object_format;
            return Ok(Connected::V2(Box::new(remote)));
        }
        let body = remote
            .request(Method::GET, "info/refs?service=git-upload-pack", None)
            .await?;
        let (body, whole) = read_capped(&remote, "connect", body, MAX_REF_LISTING).await?;
        // An old server lists every ref here (as large as a ref listing may be); a
        // version 2 advertisement this large is not a real one.
        let v2 = body[..body.len().min(128)]
            .windows(9)
            .any(|w| w == b"version 2");
        let limit = if v2 {
            MAX_ADVERTISEMENT
        } else {
            MAX_REF_LISTING
        };
        if !whole || body.len() > limit {
            return Err(remote.failed(
                "connect",
                format!("the answer to info/refs is larger than {limit} bytes"),
            ));
        }
        let lines = data_lines(&body, true).map_err(|e| remote.failed("connect", e))?;
        let mut lines = lines.into_iter().peekable();
        if lines.peek().is_some_and(|l| l.starts_with("# service=")) {
            lines.next();
        }
        if lines.peek().map(String::as_str) != Some("version 2") {
            let refs = v0_refs(lines).map_err(|e| remote.failed("connect", e))?;
            return Ok(Connected::V0(refs));
        }
        lines.next();
        let capabilities: Vec<String> = lines.collect();
        let has = |name: &str| {
            capabilities
                .iter()
                .any(|c| c == name || c.starts_with(&format!("{name}=")))
        };
        if !has("ls-refs") || !has("fetch") {
            return Err(remote.failed(
                "connect",
                "the server speaks protocol version 2 without ls-refs and fetch",
            ));
        }
        if let Some(format) = capabilities
            .iter()
            .find_map(|c| c.strip_prefix("object-format="))
        {
            if format != "sha1" {
                return Err(unsupported_format(url, format));
            }
            remote.object_format = true;
        }
        if let Some(origin) = &origin {
            known_v2(origin, Some(remote.object_format));
        }
        Ok(Connected::V2(Box::new(remote)))
    }

    /// The repository's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every ref of the repository and where `HEAD` points (`ls-refs` with `symrefs`).
    pub async fn ls_refs(&self) -> Result<RepoRefs, GitError> {
        let request = self.command("ls-refs", &["symrefs".to_owned()]);
        let body = self
            .request(Method::POST, "git-upload-pack", Some(request))
            .await?;
        let (body, whole) = read_capped(self, "ls-refs", body, MAX_REF_LISTING).await?;
        if !whole {
            return Err(self.failed(
                "ls-refs",
                format!("the ref listing is larger than {MAX_REF_LISTING} bytes"),
            ));
        }
        let lines = data_lines(&body, false).map_err(|e| self.failed("ls-refs", e))?;
        let mut head = None;
        let mut refs = RefSet::new();
        // A name becomes a line of a bundle's header and a path in a repository:
        // one git would refuse fails the listing.
        let check = |name: &str| {
            repovault_core::check_ref_name(name).map_err(|why| {
                let shown: String = name.chars().take(100).collect();
                self.failed("ls-refs", format!("invalid ref name {shown:?}: {why}"))
            })
        };
        for line in lines {
            let mut parts = line.split(' ');
            let (Some(oid), Some(name)) = (parts.next(), parts.next()) else {
                let shown: String = line.chars().take(100).collect();
                return Err(self.failed("ls-refs", format!("unexpected line {shown:?}")));
            };
            // `<oid> <name>( <attribute>)*`: anything else after the name is a
            // name with a space in it.
            if !parts
                .clone()
                .all(|a| a.starts_with("symref-target:") || a.starts_with("peeled:"))
            {
                let shown: String = line.chars().take(100).collect();
                return Err(self.failed(
                    "ls-refs",
                    format!("invalid ref name in {shown:?}: a space, or an unknown attribute"),
                ));
            }
            if name == "HEAD" {
                head = parts
                    .find_map(|a| a.strip_prefix("symref-target:"))
                    .map(str::to_owned);
                if let Some(target) = &head {
                    check(target)?;
                }
                continue;
            }
            check(name)?;
            if oid.len() == 40 && oid.bytes().all(|b| b.is_ascii_hexdigit()) {
                refs.insert(name, oid);
            } else if oid != "unborn" {
                // A SHA-256 repository on a SHA-1 server's origin: never a silently
                // empty backup.
                return Err(self.failed("ls-refs", format!("unexpected object id in {line:?}")));
            }
        }
        Ok(RepoRefs { head, refs })
    }

    /// Fetches a pack of every object reachable from `wants` and not from `haves`, in
    /// one round (`done`), without thin deltas: the pack is self-contained. Its bytes
    /// arrive as a stream whose last item is an error if the pack is cut short, its
    /// trailer does not match its bytes, or the server reports an error; the summary
    /// comes once the stream is drained.
    pub async fn fetch(
        &self,
        wants: &BTreeSet<String>,
        haves: &BTreeSet<String>,
    ) -> Result<(ByteStream, oneshot::Receiver<PackSummary>), GitError> {
        let mut args = vec!["ofs-delta".to_owned(), "no-progress".to_owned()];
        args.extend(wants.iter().map(|oid| format!("want {oid}")));
        args.extend(haves.iter().map(|oid| format!("have {oid}")));
        args.push("done".to_owned());
        let request = self.command("fetch", &args);
        let body = self
            .request(Method::POST, "git-upload-pack", Some(request))
            .await?;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let (summary_tx, summary_rx) = oneshot::channel();
        let url = self.url.clone();
        let body = SyncIoBridge::new(body);
        tokio::task::spawn_blocking(move || {
            let result = read_pack(body, &tx);
            match result {
                Ok(summary) => {
                    let _ = summary_tx.send(summary);
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::other(format!("{url}: {e}"))));
                }
            }
        });
        Ok((ReceiverStream::new(rx).boxed(), summary_rx))
    }

    /// A v2 command request: `command=`, capabilities, delimiter, arguments, flush.
    fn command(&self, command: &str, args: &[String]) -> Bytes {
        let mut out = Vec::new();
        let mut line = |text: &str| {
            gix_packetline::blocking_io::encode::data_to_write(
                format!("{text}\n").as_bytes(),
                &mut out,
            )
            .expect("writing to a Vec");
        };
        line(&format!("command={command}"));
        line(&format!("agent={}", agent()));
        if self.object_format {
            line("object-format=sha1");
        }
        gix_packetline::blocking_io::encode::delim_to_write(&mut out).expect("writing to a Vec");
        for arg in args {
            gix_packetline::blocking_io::encode::data_to_write(
                format!("{arg}\n").as_bytes(),
                &mut out,
            )
            .expect("writing to a Vec");
        }
        gix_packetline::blocking_io::encode::flush_to_write(&mut out).expect("writing to a Vec");
        Bytes::from(out)
    }

    /// Sends one request; a response other than 200 is an error: 401/403 denied, 404
    /// not found, a redirect refused (never followed), anything else retryable.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<BodyReader, GitError> {
        let op = if method == Method::GET {
            "connect"
        } else {
            "fetch"
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}/{path}", self.url))
            .header(USER_AGENT, format!("git/2.0 ({})", agent()))
            .header("Git-Protocol", "version=2");
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if body.is_some() {
            request = request
                .header(CONTENT_TYPE, "application/x-git-upload-pack-request")
                .header(ACCEPT, "application/x-git-upload-pack-result");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| self.failed(op, e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| self.failed(op, format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| self.failed(op, error_text(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            return Err(GitError::Redirected {
                url: self.url.clone(),
                to,
            });
        }
        if status != StatusCode::OK {
            let detail = format!("the server answered {status}");
            return Err(match status {
                StatusCode::NOT_FOUND => GitError::NotFound {
                    url: self.url.clone(),
                },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => GitError::AccessDenied {
                    url: self.url.clone(),
                    detail,
                },
                _ => classify_text(op, &self.url, detail),
            });
        }
        let stream =
            BodyDataStream::new(response.into_body()).map_err(|e| io::Error::other(error_text(&e)));
        let idle = tokio_stream::StreamExt::timeout(stream, TIMEOUT).map(|item| match item {
            Ok(chunk) => chunk,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no bytes within {TIMEOUT:?}"),
            )),
        });
        Ok(StreamReader::new(Box::pin(idle) as ByteStream))
    }

    fn failed(&self, op: &'static str, detail: impl Into<String>) -> GitError {
        failed(op, &self.url, self.creds.redact(&detail.into()))
    }
}

type BodyReader = StreamReader<ByteStream, Bytes>;

/// A repository in an object format other than SHA-1: refused, never backed up wrong.
fn unsupported_format(url: &str, format: &str) -> GitError {
    GitError::Unsupported {
        url: url.to_owned(),
        detail: format!("object format {format}: only SHA-1 repositories can be backed up"),
    }
}

/// The refs of a protocol version 0 advertisement: `<oid> <name>` lines, the first
/// with the capabilities after a NUL (`symref=HEAD:<target>`, `object-format=`); an
/// empty repository advertises only `capabilities^{}`.
fn v0_refs(lines: impl Iterator<Item = String>) -> Result<RepoRefs, String> {
    let mut head = None;
    let mut refs = RefSet::new();
    for (i, line) in lines.enumerate() {
        let (line, capabilities) = match line.split_once('\0') {
            Some((line, caps)) if i == 0 => (line.to_owned(), caps.to_owned()),
            _ => (line, String::new()),
        };
        for capability in capabilities.split(' ') {
            if let Some(target) = capability.strip_prefix("symref=HEAD:") {
                head = Some(target.to_owned());
            }
            if let Some(format) = capability.strip_prefix("object-format=")
                && format != "sha1"
            {
                return Err(format!(
                    "object format {format}: only SHA-1 repositories can be backed up"
                ));
            }
        }
        let Some((oid, name)) = line.split_once(' ') else {
            return Err(format!("unexpected line {line:?}"));
        };
        if name == "capabilities^{}" || name == "HEAD" {
            continue;
        }
        if !repovault_core::is_object_id(oid) || oid.len() != 40 {
            return Err(format!("unexpected object id in {line:?}"));
        }
        refs.insert(name, oid);
    }
    Ok(RepoRefs { head, refs })
}

fn failed(op: &'static str, url: &str, detail: String) -> GitError {
    GitError::Failed {
        op,
        url: url.to_owned(),
        detail,
    }
}

/// An error and its causes in one line (hyper's own text is only the outermost).
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A response body (an advertisement, a ref listing), at most `cap` bytes of it,
/// whole within the remote's listing deadline: the bytes, and whether that was all.
async fn read_capped(
    remote: &Remote,
    op: &'static str,
    body: BodyReader,
    cap: usize,
) -> Result<(Vec<u8>, bool), GitError> {
    use tokio::io::AsyncReadExt;
    let deadline = remote.listing_deadline;
    let mut out = Vec::new();
    let read = tokio::time::timeout(deadline, async {
        // One byte past the cap tells a body of exactly `cap` bytes from a longer one.
        let mut limited = body.take(cap as u64 + 1);
        limited.read_to_end(&mut out).await
    })
    .await
    .map_err(|_| remote.failed(op, format!("the answer was not whole within {deadline:?}")))?;
    read.map_err(|e| remote.failed(op, e.to_string()))?;
    let whole = out.len() <= cap;
    out.truncate(cap);
    Ok((out, whole))
}

/// The data lines of a pkt-line response, without their newline, up to its flush
/// (or, with `through_service_flush`, past the flush after a `# service=` line).
fn data_lines(body: &[u8], through_service_flush: bool) -> Result<Vec<String>, String> {
    let mut lines = StreamingPeekableIter::new(body, &[PacketLineRef::Flush], false);
    lines.fail_on_err_lines(true);
    let mut out = Vec::new();
    loop {
        while let Some(line) = lines.read_line() {
            let line = line
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if let Some(data) = line.as_slice() {
                out.push(
                    String::from_utf8_lossy(data)
                        .trim_end_matches('\n')
                        .to_owned(),
                );
            }
        }
        if through_service_flush
            && out.len() == 1
            && out[0].starts_with("# service=")
            && lines.stopped_at().is_some()
        {
            lines.reset();
            continue;
        }
        return Ok(out);
    }
}

/// Reads a `fetch` response up to its `packfile` section, then the pack from side
/// band 1, checking it as it passes and sending it on in chunks.
fn read_pack(body: impl Read, tx: &mpsc::Sender<io::Result<Bytes>>) -> Result<PackSummary, String> {
    let mut lines = StreamingPeekableIter::new(body, &[PacketLineRef::Flush], false);
    lines.fail_on_err_lines(true);
    loop {
        match lines.read_line() {
            Some(line) => {
                let line = line
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                if line.as_slice() == Some(b"packfile\n".as_slice()) {
                    break;
                }
            }
            None => return Err("the server sent no pack".into()),
        }
    }
    let mut server_error = None;
    let mut pack = lines.as_read_with_sidebands(|is_error, text| {
        if is_error {
            server_error = Some(String::from_utf8_lossy(text).trim().to_owned());
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    });
    let mut check = PackCheck::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match pack.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                drop(pack);
                return Err(match server_error {
                    Some(text) => format!("the server reported: {text}"),
                    None => format!("reading the pack: {e}"),
                });
            }
        };
        check.update(&buf[..n]);
        if tx
            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
            .is_err()
        {
            return Err("the consumer went away".into());
        }
    }
    check.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};

    use super::*;

    /// pkt-lines: each of `lines` as a data line, then a flush.
    pub(crate) fn pkt(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            gix_packetline::blocking_io::encode::data_to_write(line.as_bytes(), &mut out).unwrap();
        }
        gix_packetline::blocking_io::encode::flush_to_write(&mut out).unwrap();
        out
    }

    /// A version 2 capability advertisement.
    fn advertisement() -> Vec<u8> {
        let mut out = pkt(&["# service=git-upload-pack\n"]);
        out.extend(pkt(&["version 2\n", "ls-refs\n", "fetch=shallow\n"]));
        out
    }

    /// A server at `http://127.0.0.1:<port>/o/r.git` answering `info/refs` and
    /// `git-upload-pack` with the bodies given; returns its URL and how many requests
    /// it got.
    /// The session of a server that speaks version 2.
    fn v2(connected: Connected) -> Box<Remote> {
        match connected {
            Connected::V2(remote) => remote,
            Connected::V0(_) => panic!("the server answered in protocol version 0"),
        }
    }

    pub(crate) async fn server(
        info_refs: impl Fn() -> Body + Send + Sync + 'static,
        upload_pack: impl Fn() -> Body + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let (a, b) = (hits.clone(), hits.clone());
        let info_refs = Arc::new(info_refs);
        let upload_pack = Arc::new(upload_pack);
        let app = Router::new()
            .route(
                "/o/r.git/info/refs",
                get(move || {
                    a.fetch_add(1, Ordering::SeqCst);
                    let body = info_refs();
                    async move { body }
                }),
            )
            .route(
                "/o/r.git/git-upload-pack",
                post(move || {
                    b.fetch_add(1, Ordering::SeqCst);
                    let body = upload_pack();
                    async move { body }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/o/r.git", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    fn creds() -> GitCredentials {
        GitCredentials::new(None)
    }

    #[tokio::test]
    async fn a_ref_name_git_would_refuse_fails_the_listing() {
        let oid = "a".repeat(40);
        for name in [
            "refs/heads/a\nb",
            "refs/heads/x..y",
            "refs/heads/@{1}",
            "refs/heads/a b",
            "main",
        ] {
            let line = format!("{oid} {name}\n");
            let (url, _) = server(
                || Body::from(advertisement()),
                move || Body::from(pkt(&[line.as_str()])),
            )
            .await;
            let remote = v2(Remote::connect(&url, &creds()).await.unwrap());
            let err = remote.ls_refs().await.unwrap_err().to_string();
            assert!(err.contains("invalid ref name"), "{name:?}: {err}");
            assert!(!err.contains('\n'), "{err:?}");
        }
        // HEAD's target is a ref name too.
        let head = format!("{oid} HEAD symref-target:refs/heads/a..b\n");
        let (url, _) = server(
            || Body::from(advertisement()),
            move || Body::from(pkt(&[head.as_str()])),
        )
        .await;
        let remote = v2(Remote::connect(&url, &creds()).await.unwrap());
        let err = remote.ls_refs().await.unwrap_err().to_string();
        assert!(err.contains("invalid ref name"), "{err}");
    }

    #[tokio::test]
    async fn a_ref_listing_over_the_cap_is_refused_without_reading_it_all() {
        // 65 MiB of well-formed ref lines, made as they are sent.
        let line = pkt(&[&format!(
            "{} refs/heads/{}\n",
            "b".repeat(40),
            "x".repeat(900)
        )]);
        let line = Bytes::from(line[..line.len() - 4].to_vec());
        let lines = (MAX_REF_LISTING / line.len()) + 1_000;
        let (url, _) = server(
            || Body::from(advertisement()),
            move || {
                let line = line.clone();
                Body::from_stream(futures::stream::iter(
                    (0..lines).map(move |_| Ok::<_, std::io::Error>(line.clone())),
                ))
            },
        )
        .await;
        let remote = v2(Remote::connect(&url, &creds()).await.unwrap());
        let err = remote.ls_refs().await.unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }

    #[tokio::test]
    async fn an_advertisement_over_the_cap_is_refused_and_an_old_servers_falls_back() {
        let capability = format!("x-{}\n", "y".repeat(60_000));
        let (url, _) = server(
            move || {
                let mut body = pkt(&["# service=git-upload-pack\n"]);
                let many: Vec<&str> = std::iter::once("version 2\n")
                    .chain(std::iter::repeat_n(capability.as_str(), 40))
                    .collect();
                body.extend(pkt(&many));
                Body::from(body)
            },
            Body::empty,
        )
        .await;
        let err = Remote::connect(&url, &creds())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
        // Protocol v0 advertises every ref in `info/refs`: as many as a listing may
        // hold, they are the repository's refs.
        let oid = "c".repeat(40);
        let (url, _) = server(
            move || {
                let mut body = pkt(&["# service=git-upload-pack\n"]);
                let first = format!("{oid} HEAD\0multi_ack side-band-64k\n");
                let refs: Vec<String> = (0..40_000)
                    .map(|i| format!("{oid} refs/heads/branch-{i:06}\n"))
                    .collect();
                let lines: Vec<&str> = std::iter::once(first.as_str())
                    .chain(refs.iter().map(String::as_str))
                    .collect();
                body.extend(pkt(&lines));
                Body::from(body)
            },
            Body::empty,
        )
        .await;
        match Remote::connect(&url, &creds()).await.unwrap() {
            Connected::V0(refs) => assert_eq!(refs.refs.len(), 40_000),
            Connected::V2(_) => panic!("a version 0 answer taken for version 2"),
        }
    }

    #[tokio::test]
    async fn a_listing_that_trickles_in_fails_within_the_deadline() {
        let oid = "d".repeat(40);
        let (url, _) = server(
            || Body::from(advertisement()),
            move || {
                let line = Bytes::from(pkt(&[&format!("{oid} refs/heads/main\n")])[..50].to_vec());
                // A byte every 50 ms: never idle for the per-read timeout, never done.
                Body::from_stream(futures::stream::unfold(0usize, move |i| {
                    let line = line.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((
                            Ok::<_, std::io::Error>(line.slice(i % 50..i % 50 + 1)),
                            i + 1,
                        ))
                    }
                }))
            },
        )
        .await;
        let mut remote = v2(Remote::connect(&url, &creds()).await.unwrap());
        remote.listing_deadline = Duration::from_secs(2);
        let started = std::time::Instant::now();
        let err = remote.ls_refs().await.unwrap_err().to_string();
        assert!(err.contains("not whole within 2s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
