//! An object store with S3's semantics: whole-object writes, conditional create,
//! prefix listing, user metadata.

use std::collections::BTreeMap;
use std::io;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Classify, ErrorClass};

/// An object body in chunks. An `Err` item aborts the upload: nothing is stored.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// User metadata on an object (S3's `x-amz-meta-*`).
pub type ObjectMetadata = BTreeMap<String, String>;

/// Metadata keys on archives, as operators' tools expect them.
pub mod meta {
    /// `owner/name`.
    pub const REPOSITORY: &str = "repository";
    /// ISO 8601 time of the backup.
    pub const BACKUP_DATE: &str = "backup-date";
    pub const DEFAULT_BRANCH: &str = "default-branch";
    /// Digest of the refs the archive holds (see `RefSet::digest`).
    pub const REFS_DIGEST: &str = "refs-digest";
    /// Added by the store to every `put_stream` object once the body is known.
    pub const SIZE_BYTES: &str = "size-bytes";
    /// Added by the store to every `put_stream` object once the body is known.
    pub const SHA256: &str = "sha256";
}

/// What a streaming upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    pub size: u64,
    /// Hex SHA-256 of the whole object, computed while streaming.
    pub sha256: String,
}

/// The size and SHA-256 of an object, tallied chunk by chunk as it streams past.
#[derive(Debug, Clone, Default)]
pub struct ObjectDigest {
    hasher: sha2::Sha256,
    size: u64,
}

impl ObjectDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        sha2::Digest::update(&mut self.hasher, chunk);
        self.size += chunk.len() as u64;
    }

    pub fn finish(self) -> PutReceipt {
        PutReceipt {
            size: self.size,
            sha256: hex::encode(sha2::Digest::finalize(self.hasher)),
        }
    }
}

/// An object as listed or headed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<Timestamp>,
    /// Filled by `head`; `list` leaves it empty.
    pub metadata: ObjectMetadata,
}

/// Result of a conditional create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("object {key} is not valid JSON: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("upload of {key} aborted: {source}")]
    Aborted { key: String, source: io::Error },
    #[error("store I/O on {key}: {source}")]
    Io { key: String, source: io::Error },
    #[error("store request for {key} failed: {message}")]
    Backend { key: String, message: String },
    /// The store refuses the request and will go on refusing it (access denied, no
    /// such bucket, not a directory): retrying cannot help; an operator must.
    #[error(
        "the store refused {key}: {message}; check that the destination exists and that this process may write to it"
    )]
    Refused { key: String, message: String },
    /// A create-only write found the key taken (another delivery of the same job).
    #[error("{key} already exists")]
    AlreadyExists { key: String },
    /// An object larger than what it may be read into memory as.
    #[error("object {key} is larger than {limit} bytes, the most read of it")]
    TooLarge { key: String, limit: u64 },
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            StoreError::InvalidKey { .. }
            | StoreError::Corrupt { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Refused { .. } => ErrorClass::Permanent,
            StoreError::Aborted { .. }
            | StoreError::Io { .. }
            | StoreError::Backend { .. }
            | StoreError::AlreadyExists { .. } => ErrorClass::RETRY,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Streams an object in (multipart where the backend has it). Returns its size and
    /// SHA-256, which the store also attaches to the object as [`meta::SIZE_BYTES`] and
    /// [`meta::SHA256`], visible through `head` (on S3 as object tags: metadata there
    /// is fixed before the body is known). Create-only: a key that exists is never
    /// replaced ([`StoreError::AlreadyExists`]). The store checks the body end to end
    /// where it can (S3: a whole-object CRC64NVME). On any error, including an `Err`
    /// item in `body`, nothing is stored.
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError>;

    /// [`Store::put_stream`] that replaces the object at `key` if there is one (a
    /// rekey rewrites objects in place): a reader sees the old object or the new one
    /// whole, never neither and never a part. Until the new digest is attached, `head`
    /// may show the object without [`meta::SHA256`], never with the old one.
    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError>;

    /// Writes a small object, replacing any existing one.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;

    /// Writes a small object only if the key is free (`If-None-Match: *`).
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError>;

    /// Reads a small object whole; `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Reads an object as a stream; `None` if absent.
    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError>;

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;

    /// Deletes an object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Aborts the unfinished uploads under `prefix` whose key `stale` picks (a process
    /// killed mid-upload leaves them; another process's uploads in progress under the
    /// same prefix, to keys `stale` does not pick, are left alone). Returns how many
    /// were aborted.
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError>;
}

/// Which keys' unfinished uploads [`Store::abort_stale_uploads`] aborts.
pub type StaleKeys<'a> = dyn Fn(&str) -> bool + Send + Sync + 'a;

/// The stores a process writes to, by target, each opened once (a worker's allow-list,
/// `worker::AllowList`, is built from them).
#[derive(Clone, Default)]
pub struct TargetStores(std::collections::HashMap<crate::Target, std::sync::Arc<dyn Store>>);

impl TargetStores {
    pub fn new() -> Self {
        TargetStores::default()
    }

    pub fn insert(&mut self, target: crate::Target, store: std::sync::Arc<dyn Store>) {
        self.0.insert(target, store);
    }

    pub fn get(&self, target: &crate::Target) -> Option<&std::sync::Arc<dyn Store>> {
        self.0.get(target)
    }
}

impl std::fmt::Debug for TargetStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// A store that reads through to another and writes nothing: every write and delete
/// succeeds without effect. `prune --dry-run` runs the real prune on it.
pub struct DryRun<'a>(pub &'a dyn Store);

#[async_trait]
impl Store for DryRun<'_> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        _metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        drain(key, body).await
    }

    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        _metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        drain(key, body).await
    }

    async fn put(&self, _key: &str, _body: Bytes) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, _body: Bytes) -> Result<Created, StoreError> {
        Ok(match self.0.head(key).await? {
            Some(_) => Created::AlreadyExists,
            None => Created::Created,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.0.get(key).await
    }

    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        self.0.get_stream(key).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.0.head(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.0.list(prefix).await
    }

    async fn delete(&self, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn abort_stale_uploads(
        &self,
        _prefix: &str,
        _stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// What `body` would store, read to its end and stored nowhere.
async fn drain(key: &str, mut body: ByteStream) -> Result<PutReceipt, StoreError> {
    let mut digest = ObjectDigest::default();
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|source| StoreError::Aborted {
            key: key.to_owned(),
            source,
        })?;
        digest.update(&chunk);
    }
    Ok(digest.finish())
}

/// The most of a JSON object (a manifest, record, plan, index) read into memory: a
/// store's content cannot make a reader allocate more.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// Typed JSON access on any store.
impl dyn Store + '_ {
    /// The object at `key` whole, if it is at most `limit` bytes: read as it streams, so
    /// a larger one is refused without being held.
    pub async fn get_capped(&self, key: &str, limit: u64) -> Result<Option<Bytes>, StoreError> {
        use futures::TryStreamExt;
        let Some(mut body) = self.get_stream(key).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|source| StoreError::Io {
            key: key.to_owned(),
            source,
        })? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(StoreError::TooLarge {
                    key: key.to_owned(),
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes.into()))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        match self.get_capped(key, MAX_JSON_BYTES).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Corrupt {
                        key: key.to_owned(),
                        source,
                    })
            }
        }
    }

    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.put(key, json_bytes(value)).await
    }

    /// `now`, to the second, moved forward past every second whose key
    /// (`key_at(second)`) is already taken: stamps for keys that must not collide
    /// (a chain link, a data snapshot) within one second.
    pub async fn free_second(
        &self,
        now: Timestamp,
        key_at: impl Fn(Timestamp) -> String,
    ) -> Result<Timestamp, StoreError> {
        let mut at = Timestamp::from_second(now.as_second()).expect("a valid time");
        while self.head(&key_at(at)).await?.is_some() {
            at += jiff::SignedDuration::from_secs(1);
        }
        Ok(at)
    }

    pub async fn put_json_if_absent<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Created, StoreError> {
        self.put_if_absent(key, json_bytes(value)).await
    }
}

/// The one form of every JSON object repovault writes: pretty, ending in a newline.
pub fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    let mut text = serde_json::to_vec_pretty(value).expect("records always serialise");
    text.push(b'\n');
    Bytes::from(text)
}

/// Validates a key the way every store must: relative, `/`-separated, no empty, `.`
/// or `..` segments, no NUL. Keeps a forged key from escaping a local store's root.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("empty")
    } else if key.len() > 1024 {
        Some("longer than 1024 bytes")
    } else if key.starts_with('/') || key.ends_with('/') {
        Some("starts or ends with '/'")
    } else if key.contains('\0') || key.contains('\\') {
        Some("contains NUL or backslash")
    } else if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("has an empty, '.' or '..' segment")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_tallies_chunks() {
        let mut d = ObjectDigest::default();
        d.update(b"hello ");
        d.update(b"world");
        let receipt = d.finish();
        assert_eq!(receipt.size, 11);
        assert_eq!(
            receipt.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn keys_that_could_escape_are_invalid() {
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b", "a\0b"] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_key("repos/acme/api/api-20261122T143605Z.tar.zst").is_ok());
    }
}
