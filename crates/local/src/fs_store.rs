//! A [`Store`] on a local folder.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::ports::store::{
    ByteStream, Created, ObjectDigest, ObjectInfo, ObjectMetadata, PutReceipt, StaleKeys, Store,
    StoreError, check_key, meta,
};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// The store's own files (temp files, object metadata) live under this root entry,
/// which is never a key.
const INTERNAL_DIR: &str = ".repovault";

/// A folder holding objects at `<root>/<key>`, so a backup folder reads like the
/// bucket it could have been. Writes go to a temp file that is renamed into place
/// (readers never see a partial object); user metadata is kept in
/// `<root>/.repovault/meta/<key>.json`.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        if key.split('/').next() == Some(INTERNAL_DIR) {
            return Err(StoreError::InvalidKey {
                key: key.to_owned(),
                reason: "reserved for the store's own files",
            });
        }
        Ok(self.root.join(key))
    }

    fn temp_root(&self) -> PathBuf {
        self.root.join(INTERNAL_DIR).join("tmp")
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root
            .join(INTERNAL_DIR)
            .join("meta")
            .join(format!("{key}.json"))
    }

    /// A temp file on the same filesystem as the objects, removed if dropped. It lives
    /// at `.repovault/tmp/<the key>~<random>`, so a stale upload's key is known.
    fn temp_file(&self, key: &str) -> Result<NamedTempFile, StoreError> {
        let (parent, name) = key.rsplit_once('/').unwrap_or(("", key));
        let dir = self.temp_root().join(parent);
        std::fs::create_dir_all(&dir).map_err(io_err(key))?;
        tempfile::Builder::new()
            .prefix(&format!("{name}~"))
            .tempfile_in(dir)
            .map_err(io_err(key))
    }

    async fn write_temp(&self, key: &str, body: Bytes) -> Result<NamedTempFile, StoreError> {
        let store = self.clone();
        let key = key.to_owned();
        run_blocking(move || {
            use std::io::Write;
            let mut tmp = store.temp_file(&key)?;
            tmp.write_all(&body).map_err(io_err(&key))?;
            tmp.as_file().sync_all().map_err(io_err(&key))?;
            Ok(tmp)
        })
        .await
    }
}

fn io_err(key: &str) -> impl Fn(io::Error) -> StoreError + '_ {
    move |source| match source.kind() {
        // The folder is not ours to write (or not a folder, or cannot be created:
        // reads map a missing file to `None` first): retrying cannot help.
        io::ErrorKind::NotFound
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::StorageFull => StoreError::Refused {
            key: key.to_owned(),
            message: source.to_string(),
        },
        _ => StoreError::Io {
            key: key.to_owned(),
            source,
        },
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|join| {
        Err(StoreError::Backend {
            key: String::new(),
            message: format!("store task failed: {join}"),
        })
    })
}

/// Moves a finished temp file to `path`, replacing what is there.
fn persist(tmp: NamedTempFile, path: &Path, key: &str) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(key))?;
    }
    tmp.persist(path).map_err(|e| io_err(key)(e.error))?;
    Ok(())
}

/// Moves a finished temp file to `path` only if nothing is there: a hard link is
/// atomic and fails if the name exists (S3's `If-None-Match: *`).
fn persist_new(tmp: NamedTempFile, path: &Path, key: &str) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(key))?;
    }
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            Err(StoreError::AlreadyExists {
                key: key.to_owned(),
            })
        }
        Err(e) => Err(io_err(key)(e.error)),
    }
}

fn modified(meta: &std::fs::Metadata) -> Option<Timestamp> {
    meta.modified()
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
}

impl FsStore {
    /// `put_stream` (`replace` false) and `replace_stream`: the body into a temp file,
    /// then renamed into place.
    async fn write_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        metadata: &ObjectMetadata,
        replace: bool,
    ) -> Result<PutReceipt, StoreError> {
        let path = self.path(key)?;
        let tmp = {
            let store = self.clone();
            let key = key.to_owned();
            run_blocking(move || store.temp_file(&key)).await?
        };
        let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(io_err(key))?);
        let mut digest = ObjectDigest::default();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| StoreError::Aborted {
                key: key.to_owned(),
                source,
            })?;
            digest.update(&chunk);
            file.write_all(&chunk).await.map_err(io_err(key))?;
        }
        file.sync_all().await.map_err(io_err(key))?;
        drop(file);
        let receipt = digest.finish();
        let mut metadata = metadata.clone();
        metadata.insert(meta::SIZE_BYTES.into(), receipt.size.to_string());
        metadata.insert(meta::SHA256.into(), receipt.sha256.clone());
        let meta_tmp = self
            .write_temp(
                key,
                serde_json::to_vec_pretty(&metadata)
                    .expect("metadata serialises")
                    .into(),
            )
            .await?;
        // The object first, create-only (a hard link fails if the name exists), then
        // its metadata: a taken key keeps its own. A replacement drops the old
        // metadata first: never the old digest beside the new body.
        let meta_path = self.meta_path(key);
        let key_owned = key.to_owned();
        if replace {
            match tokio::fs::remove_file(&meta_path).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(key)(e)),
                _ => {}
            }
            run_blocking(move || persist(tmp, &path, &key_owned)).await?;
        } else {
            run_blocking(move || persist_new(tmp, &path, &key_owned)).await?;
        }
        let key_owned = key.to_owned();
        run_blocking(move || persist(meta_tmp, &meta_path, &key_owned)).await?;
        Ok(receipt)
    }
}

#[async_trait]
impl Store for FsStore {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.write_stream(key, body, metadata, false).await
    }

    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.write_stream(key, body, metadata, true).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(key, body).await?;
        let key = key.to_owned();
        run_blocking(move || persist(tmp, &path, &key)).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError> {
        let path = self.path(key)?;
        let tmp = self.write_temp(key, body).await?;
        let key = key.to_owned();
        run_blocking(move || match persist_new(tmp, &path, &key) {
            Ok(()) => Ok(Created::Created),
            Err(StoreError::AlreadyExists { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(e),
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Some(ReaderStream::with_capacity(file, 1 << 20).boxed())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(key)(e)),
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(key)(e)),
        };
        let metadata = match tokio::fs::read(self.meta_path(key)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                key: key.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => ObjectMetadata::new(),
            Err(e) => return Err(io_err(key)(e)),
        };
        Ok(Some(ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            last_modified: modified(&meta),
            metadata,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        run_blocking(move || {
            // Start at the deepest directory the prefix names, then filter by prefix.
            let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
            if dir_part.split('/').any(|s| s == ".." || s == ".") {
                return Ok(vec![]);
            }
            let mut out = Vec::new();
            walk(&root, &root.join(dir_part), &prefix, &mut out).map_err(io_err(&prefix))?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        for p in [path, self.meta_path(key)] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(key)(e)),
            }
        }
        Ok(())
    }

    /// Removes the temp files of uploads to keys under `prefix` (a directory prefix,
    /// ending in `/`) that `stale` picks: a temp file's name begins with its key's.
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        if dir_part.split('/').any(|s| s == ".." || s == ".") {
            return Ok(0);
        }
        // Small and local: the walk runs in place, with the caller's predicate.
        remove_stale_temp_files(&self.temp_root(), dir_part, prefix, stale).map_err(io_err(prefix))
    }
}

/// Temp files of uploads to keys under `dir` (recursively) that start with `prefix`
/// and that `stale` picks; `root` is the temp root, `dir` relative to it.
fn remove_stale_temp_files(
    root: &Path,
    dir: &str,
    prefix: &str,
    stale: &StaleKeys<'_>,
) -> io::Result<usize> {
    let entries = match std::fs::read_dir(root.join(dir)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let meta = entry.metadata()?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let joined = |name: &str| {
            if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            }
        };
        if meta.is_dir() {
            removed += remove_stale_temp_files(root, &joined(&file_name), prefix, stale)?;
            continue;
        }
        let Some((name, _)) = file_name.rsplit_once('~') else {
            continue;
        };
        let key = joined(name);
        if meta.is_file() && key.starts_with(prefix) && stale(&key) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Finished (renamed into place) since we listed it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(key) = rel.to_str().map(str::to_owned) else {
            continue;
        };
        if key == INTERNAL_DIR {
            continue;
        }
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            let meta = entry.metadata()?;
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                last_modified: modified(&meta),
                metadata: ObjectMetadata::new(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn store() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("bk"));
        (dir, store)
    }

    fn chunks(parts: Vec<io::Result<&'static [u8]>>) -> ByteStream {
        stream::iter(parts.into_iter().map(|p| p.map(Bytes::from_static))).boxed()
    }

    #[tokio::test]
    async fn streams_in_with_digest_and_metadata() {
        let (_dir, store) = store();
        let meta = ObjectMetadata::from([("repository".to_owned(), "a/b".to_owned())]);
        let receipt = store
            .put_stream(
                "repos/a/b/x.tar.zst",
                chunks(vec![Ok(b"hello "), Ok(b"world")]),
                &meta,
            )
            .await
            .unwrap();
        assert_eq!(receipt.size, 11);
        assert_eq!(
            receipt.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"hello world"))
        );
        let info = store.head("repos/a/b/x.tar.zst").await.unwrap().unwrap();
        assert_eq!(info.size, 11);
        assert_eq!(info.metadata["repository"], "a/b");
        assert_eq!(info.metadata[meta::SIZE_BYTES], "11");
        assert_eq!(info.metadata[meta::SHA256], receipt.sha256);
        assert_eq!(
            &store.get("repos/a/b/x.tar.zst").await.unwrap().unwrap()[..],
            b"hello world"
        );
    }

    #[tokio::test]
    async fn an_error_in_the_stream_stores_nothing() {
        let (_dir, store) = store();
        let body = chunks(vec![Ok(b"partial"), Err(io::Error::other("archiver died"))]);
        let err = store
            .put_stream("k", body, &ObjectMetadata::new())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Aborted { .. }), "{err}");
        assert!(store.head("k").await.unwrap().is_none());
        let left = remove_stale_temp_files(&store.temp_root(), "", "", &|_| true).unwrap();
        assert_eq!(left, 0, "temp file left behind");
    }

    #[tokio::test]
    async fn aborting_stale_uploads_takes_only_the_keys_picked_under_the_prefix() {
        let (_dir, store) = store();
        // Uploads in flight: two of repository a/x, one of a/y.
        let x1 = store.temp_file("repos/a/x/x-1.bundle").unwrap();
        let x2 = store.temp_file("repos/a/x/x-2.bundle").unwrap();
        let y = store.temp_file("repos/a/y/x-2.bundle").unwrap();
        let picked = |key: &str| key.ends_with("x-2.bundle");
        assert_eq!(
            store
                .abort_stale_uploads("repos/a/x/", &picked)
                .await
                .unwrap(),
            1
        );
        assert!(x1.path().exists() && !x2.path().exists());
        assert_eq!(
            store
                .abort_stale_uploads("repos/a/x/", &|_| true)
                .await
                .unwrap(),
            1
        );
        assert!(!x1.path().exists());
        assert!(y.path().exists(), "another repository's upload was removed");
    }

    #[tokio::test]
    async fn streamed_objects_are_create_only() {
        let (_dir, store) = store();
        let meta = ObjectMetadata::from([("n".to_owned(), "1".to_owned())]);
        store
            .put_stream("k/a", chunks(vec![Ok(b"first")]), &meta)
            .await
            .unwrap();
        let other = ObjectMetadata::from([("n".to_owned(), "2".to_owned())]);
        let err = store
            .put_stream("k/a", chunks(vec![Ok(b"second")]), &other)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(&store.get("k/a").await.unwrap().unwrap()[..], b"first");
        assert_eq!(store.head("k/a").await.unwrap().unwrap().metadata["n"], "1");
    }

    #[tokio::test]
    async fn a_folder_that_cannot_be_written_is_a_permanent_refusal() {
        let (dir, _) = store();
        std::fs::write(dir.path().join("file"), "not a folder").unwrap();
        let store = FsStore::new(dir.path().join("file"));
        let err = store.put("runs/x.json", "{}".into()).await.unwrap_err();
        assert!(matches!(err, StoreError::Refused { .. }), "{err:?}");
        assert!(!repovault_core::Classify::class(&err).is_retryable());
    }

    #[tokio::test]
    async fn put_if_absent_never_overwrites() {
        let (_dir, store) = store();
        assert_eq!(
            store.put_if_absent("r/x.json", "1".into()).await.unwrap(),
            Created::Created
        );
        assert_eq!(
            store.put_if_absent("r/x.json", "2".into()).await.unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(&store.get("r/x.json").await.unwrap().unwrap()[..], b"1");
        store.put("r/x.json", "3".into()).await.unwrap();
        assert_eq!(&store.get("r/x.json").await.unwrap().unwrap()[..], b"3");
    }

    #[tokio::test]
    async fn lists_by_prefix_in_key_order_without_internal_files() {
        let (_dir, store) = store();
        for key in [
            "runs/r1/results/a/x.json",
            "runs/r1/plan.json",
            "runs/r10/plan.json",
            "repos/a/x/latest.json",
        ] {
            store.put(key, "{}".into()).await.unwrap();
        }
        store
            .put_stream(
                "repos/a/x/x.tar.zst",
                chunks(vec![Ok(b"z")]),
                &ObjectMetadata::from([("k".into(), "v".into())]),
            )
            .await
            .unwrap();
        let keys = |v: Vec<ObjectInfo>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
        assert_eq!(
            keys(store.list("runs/r1/").await.unwrap()),
            ["runs/r1/plan.json", "runs/r1/results/a/x.json"]
        );
        assert_eq!(keys(store.list("runs/r1").await.unwrap()).len(), 3);
        assert_eq!(keys(store.list("").await.unwrap()).len(), 5);
        assert!(store.list("nothing/").await.unwrap().is_empty());
        store.delete("repos/a/x/x.tar.zst").await.unwrap();
        store.delete("repos/a/x/x.tar.zst").await.unwrap();
        assert!(store.head("repos/a/x/x.tar.zst").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn refuses_keys_outside_the_root() {
        let (_dir, store) = store();
        for key in ["../escape", "/etc/passwd", "a/../../b", ".repovault/tmp/x"] {
            assert!(
                matches!(
                    store.put(key, "x".into()).await,
                    Err(StoreError::InvalidKey { .. })
                ),
                "{key}"
            );
        }
    }
}
