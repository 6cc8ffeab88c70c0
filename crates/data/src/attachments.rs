//! Attachments: the files and images dropped into issue, pull request, comment,
//! review, discussion and release text live on GitHub's hosts, not in the repository,
//! and die with it. Every URL of one found in a stored body is downloaded once, stored
//! content-addressed (`attachments/<sha256>`) and listed in the snapshot's index with
//! its original URL; one that cannot be fetched is listed with why. The token goes to
//! GitHub's own host only (see [`RepoData::attachment`]), never to the storage a
//! download redirects to.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use repovault_core::ports::source::{RepoData, SourceError};
use repovault_core::ports::store::{ObjectMetadata, StoreError};
use repovault_core::{Attachment, Classify, DataFile};
use repovault_repository::{RepoError, Repository};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The largest attachment kept: GitHub takes files up to 25 MiB and videos up to
/// 100 MiB.
pub(crate) const MAX_ATTACHMENT_BYTES: u64 = 100 << 20;

/// Hosts that serve attachments on github.com, besides its web host.
const CONTENT_HOSTS: [&str; 2] = [
    "user-images.githubusercontent.com",
    "private-user-images.githubusercontent.com",
];

/// A repository whose text is searched, and GitHub's web origin.
pub(crate) struct Scope<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    pub web: url::Url,
}

/// Whether `url` is an attachment on GitHub's hosts: `{web}/user-attachments/…`,
/// `{web}/<owner>/<repo>/assets/…` or `/files/…` of this repository (older uploads),
/// or github.com's content hosts.
pub(crate) fn is_attachment(url: &url::Url, scope: &Scope<'_>) -> bool {
    if let Some(host) = url.host_str()
        && url.scheme() == "https"
        && CONTENT_HOSTS.contains(&host)
    {
        return true;
    }
    if url.origin() != scope.web.origin() {
        return false;
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    match segments.as_slice() {
        ["user-attachments", "assets" | "files", _, ..] => true,
        [owner, name, "assets" | "files", _, _, ..] => {
            owner.eq_ignore_ascii_case(scope.owner) && name.eq_ignore_ascii_case(scope.name)
        }
        _ => false,
    }
}

/// Longest URL looked at.
const MAX_URL: usize = 2048;

/// Every attachment URL in `items`' text (any string anywhere in them), as `scope`
/// says. One pass over each text: a candidate is skipped past once looked at.
pub(crate) fn find(items: &[Value], scope: &Scope<'_>, found: &mut BTreeSet<String>) {
    fn in_text(text: &str, scope: &Scope<'_>, found: &mut BTreeSet<String>) {
        // ASCII lowercasing keeps every byte where it was.
        let lower = text.to_ascii_lowercase();
        let mut at = 0;
        while let Some(offset) = lower[at..].find("http") {
            let start = at + offset;
            let rest = &text[start..];
            let end = rest
                .char_indices()
                .find(|&(i, c)| i >= MAX_URL || c.is_whitespace() || "()<>[]\"'`".contains(c))
                .map_or(rest.len(), |(i, _)| i);
            // A sentence's punctuation is not the URL's.
            let candidate = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
            let scheme = &lower[start..start + candidate.len().min(8)];
            if (scheme.starts_with("https://") || scheme.starts_with("http://"))
                && let Ok(url) = url::Url::parse(candidate)
                && is_attachment(&url, scope)
            {
                found.insert(url.to_string());
            }
            at = start + end.max(4);
        }
    }
    fn walk(value: &Value, scope: &Scope<'_>, found: &mut BTreeSet<String>) {
        match value {
            Value::String(text) => in_text(text, scope, found),
            Value::Array(values) => values.iter().for_each(|v| walk(v, scope, found)),
            Value::Object(fields) => fields.values().for_each(|v| walk(v, scope, found)),
            _ => {}
        }
    }
    items.iter().for_each(|item| walk(item, scope, found));
}

/// New attachments downloaded in one backup at most; the rest are listed as not
/// fetched yet, and the next backup goes on.
pub(crate) const MAX_DOWNLOADS: usize = 500;

/// The attachments `urls` name, each stored once: those in `stored` as they are, the
/// others downloaded. A URL that cannot be fetched is listed with why: tried again by
/// the next backup when the error may pass, else by the next full read (`full`).
pub(crate) async fn store(
    source: &dyn RepoData,
    repo: &Repository<'_>,
    (owner, name): (&str, &str),
    urls: BTreeSet<String>,
    stored: &BTreeMap<String, Attachment>,
    full: bool,
) -> Result<BTreeMap<String, Attachment>, RepoError> {
    let mut out = BTreeMap::new();
    let mut downloads = 0;
    for url in urls {
        if let Some(known) = stored.get(&url)
            && (known.file.is_some() || !(full || known.transient))
        {
            out.insert(url, known.clone());
            continue;
        }
        if downloads == MAX_DOWNLOADS {
            let not_yet = Attachment {
                file: None,
                error: Some(format!(
                    "not fetched yet: more than {MAX_DOWNLOADS} in one backup"
                )),
                transient: true,
            };
            out.insert(url, not_yet);
            continue;
        }
        downloads += 1;
        let attachment = match download(source, repo, owner, name, &url).await {
            Ok(file) => Attachment {
                file: Some(file),
                error: None,
                transient: false,
            },
            Err(Fetch::Source(e)) => Attachment {
                file: None,
                transient: e.class().is_retryable(),
                error: Some(e.to_string()),
            },
            Err(Fetch::Repo(e)) => return Err(e),
        };
        out.insert(url, attachment);
    }
    Ok(out)
}

enum Fetch {
    /// GitHub's side: the attachment is listed with why.
    Source(SourceError),
    /// The store's: the snapshot fails.
    Repo(RepoError),
}

impl From<RepoError> for Fetch {
    fn from(e: RepoError) -> Self {
        Fetch::Repo(e)
    }
}

/// `url` downloaded into a scratch file (hashed as it arrives, at most
/// [`MAX_ATTACHMENT_BYTES`]), then stored under its SHA-256 unless already there.
async fn download(
    source: &dyn RepoData,
    repo: &Repository<'_>,
    owner: &str,
    name: &str,
    url: &str,
) -> Result<DataFile, Fetch> {
    let mut body = source.attachment(url).await.map_err(Fetch::Source)?;
    let scratch = tempfile::NamedTempFile::new().map_err(scratch_error)?;
    let mut file = tokio::fs::File::from_std(scratch.reopen().map_err(scratch_error)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            Fetch::Source(SourceError::Transport {
                url: url.to_owned(),
                message: e.to_string(),
            })
        })?;
        size += chunk.len() as u64;
        if size > MAX_ATTACHMENT_BYTES {
            return Err(Fetch::Source(SourceError::Invalid {
                url: url.to_owned(),
                message: format!("larger than {MAX_ATTACHMENT_BYTES} bytes"),
            }));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(scratch_error)?;
    }
    file.flush().await.map_err(scratch_error)?;
    let sha256 = hex(&hasher.finalize());
    let key = repo.layout().attachment(owner, name, &sha256);
    let mut stored = repo.stored(&key).await.map_err(Fetch::Repo)?;
    if stored.is_none() {
        let reader = tokio::fs::File::open(scratch.path())
            .await
            .map_err(scratch_error)?;
        let stream = tokio_util::io::ReaderStream::new(reader).boxed();
        stored = match repo.put_object(&key, stream, &ObjectMetadata::new()).await {
            Ok(receipt) => Some(receipt),
            // Another backup of this repository stored it meanwhile.
            Err(RepoError::Store(StoreError::AlreadyExists { .. })) => {
                repo.stored(&key).await.map_err(Fetch::Repo)?
            }
            Err(e) => return Err(Fetch::Repo(e)),
        };
    }
    // Sealed, the index records what is stored (its key stays the content's digest).
    let (size, sha256) = match stored.filter(|_| repo.keys().seals()) {
        Some(stored) => (stored.size, stored.sha256),
        None => (size, sha256),
    };
    Ok(DataFile {
        key,
        items: 1,
        size,
        sha256,
        etag: None,
    })
}

fn scratch_error(e: std::io::Error) -> Fetch {
    Fetch::Repo(RepoError::Store(StoreError::Backend {
        key: "attachment scratch file".into(),
        message: e.to_string(),
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn attachments_are_found_on_githubs_hosts_only() {
        let scope = Scope {
            owner: "acme",
            name: "api",
            web: url::Url::parse("https://github.com").unwrap(),
        };
        let items = [json!({
            "body": "see ![shot](https://github.com/user-attachments/assets/0b5e-1) and\n\
                     [log](https://github.com/user-attachments/files/1234/build.log), \
                     <img src=\"https://private-user-images.githubusercontent.com/1/2.png?jwt=x\">",
            "comments": {"nodes": [{"body": "again: https://github.com/user-attachments/assets/0b5e-1."}]},
            "other": "HTTPS://github.com/acme/api/assets/5/6a7b https://github.com/acme/api/pull/3 \
                      https://github.com/other/repo/assets/5/6a7b https://github.com.evil.example/user-attachments/assets/y \
                      https://evil.example/user-attachments/assets/x http://user-images.githubusercontent.com/1.png",
        })];
        let mut found = BTreeSet::new();
        find(&items, &scope, &mut found);
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [
                "https://github.com/acme/api/assets/5/6a7b",
                "https://github.com/user-attachments/assets/0b5e-1",
                "https://github.com/user-attachments/files/1234/build.log",
                "https://private-user-images.githubusercontent.com/1/2.png?jwt=x",
            ]
        );
    }
}
