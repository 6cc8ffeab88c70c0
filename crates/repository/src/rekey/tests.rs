//! Rekey on a store holding every kind of sealed object, stopped at every write it
//! makes and run again.

use std::sync::atomic::{AtomicUsize, Ordering};

use age::secrecy::ExposeSecret;
use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use repovault_core::ports::store::{
    ByteStream, Created, ObjectMetadata, StaleKeys, Store, StoreError,
};
use repovault_core::{DataIndex, LatestPointer, Manifest};
use repovault_local::FsStore;
use serde_json::json;

use super::*;
use crate::seal::{Identities, Keys, Recipients};

/// An age key pair: the recipient line and an identity file.
struct Pair {
    public: String,
    file: tempfile::NamedTempFile,
}

impl Pair {
    fn new() -> Pair {
        let identity = age::x25519::Identity::generate();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), identity.to_string().expose_secret()).unwrap();
        Pair {
            public: identity.to_public().to_string(),
            file,
        }
    }
    fn recipients(&self) -> Recipients {
        Recipients::parse(std::slice::from_ref(&self.public)).unwrap()
    }
    fn identities(&self) -> Identities {
        Identities::from_file(self.file.path()).unwrap()
    }
}

/// A store that stops taking anything after `writes` writes: a process killed there.
struct Dying<'a> {
    inner: &'a dyn Store,
    writes: AtomicUsize,
}

impl Dying<'_> {
    fn write(&self, key: &str) -> Result<(), StoreError> {
        let left = self.writes.load(Ordering::SeqCst);
        if left == 0 {
            return Err(StoreError::Backend {
                key: key.into(),
                message: "killed".into(),
            });
        }
        self.writes.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
    fn dead(&self, key: &str) -> Result<(), StoreError> {
        match self.writes.load(Ordering::SeqCst) {
            0 => Err(StoreError::Backend {
                key: key.into(),
                message: "killed".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Store for Dying<'_> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.write(key)?;
        self.inner.put_stream(key, body, metadata).await
    }
    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.write(key)?;
        self.inner.replace_stream(key, body, metadata).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.write(key)?;
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError> {
        self.write(key)?;
        self.inner.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.dead(key)?;
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        self.dead(key)?;
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.dead(key)?;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.dead(prefix)?;
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(key)?;
        self.inner.delete(key).await
    }
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        _stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        self.dead(prefix)?;
        Ok(0)
    }
}

fn at(day: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + day * 86_400).unwrap()
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn manifest(day: i64, bundles: Value, lfs_oid: &str, lfs: &PutReceipt) -> Manifest {
    serde_json::from_value(json!({
        "schema": 1, "repository": "acme/api", "created_at": at(day),
        "run_id": "20261122T143605Z-a1b2", "tool": "repovault test",
        "default_branch": "main", "head": "refs/heads/main",
        "refs": {"refs/heads/secret-branch": "1111111111111111111111111111111111111111"},
        "refs_digest": "d", "wiki_refs": null, "git_bytes": 1,
        "source": {"owner": "acme", "name": "api", "id": 1,
            "clone_url": "https://github.com/acme/api.git", "default_branch": "main",
            "pushed_at": null, "size_kb": 1, "private": true, "archived": false,
            "fork": false, "has_wiki": false},
        "format": "bundle-chain", "bundles": bundles,
        "lfs": [{"oid": lfs_oid, "size": 3}],
        "lfs_sealed": {lfs_oid: {"size": lfs.size, "sha256": lfs.sha256}},
    }))
    .unwrap()
}

/// What the fixture stored: each sealed object's key and its plaintext.
struct Fixture {
    plain: Vec<(String, Vec<u8>)>,
    manifests: Vec<String>,
}

/// A repository's backups sealed to `old`: two links, an LFS object, a release asset
/// and a data file, two manifests, `latest.json` and a data index.
async fn fixture(store: &dyn Store, old: &Pair) -> Fixture {
    let repo = Repository::new(store, "").with_keys(Keys::new(Some(old.recipients()), None));
    let layout = repo.layout().clone();
    let object = |bytes: Vec<u8>| futures::stream::iter([Ok(Bytes::from(bytes))]).boxed();
    let mut plain = Vec::new();
    let mut links = Vec::new();
    for (day, len) in [(1, 300_000), (2, 70_000)] {
        let key = layout.bundle("acme", "api", at(day), false);
        let bytes = noise(len, day as u64);
        let receipt = repo
            .put_object(&key, object(bytes.clone()), &ObjectMetadata::new())
            .await
            .unwrap();
        links.push(
            json!({"key": key, "size": receipt.size, "sha256": receipt.sha256,
            "objects": 1, "created_at": at(day)}),
        );
        plain.push((key, bytes));
    }
    let oid = "a".repeat(64);
    let lfs_key = layout.lfs("acme", "api", &oid);
    let lfs = repo
        .put_object(&lfs_key, object(b"lfs".to_vec()), &ObjectMetadata::new())
        .await
        .unwrap();
    plain.push((lfs_key, b"lfs".to_vec()));
    let asset_key = layout.asset("acme", "api", 7);
    let asset = repo
        .put_object(&asset_key, object(noise(5_000, 9)), &ObjectMetadata::new())
        .await
        .unwrap();
    plain.push((asset_key.clone(), noise(5_000, 9)));
    let issues_key = layout.data_file("acme", "api", at(2), "issues");
    let issues = repo
        .write_items(
            &issues_key,
            &[json!({"id": 1, "title": "secret title"})],
            None,
        )
        .await
        .unwrap();
    let mut manifests = Vec::new();
    for (day, chain) in [(1, json!([links[0]])), (2, json!(links))] {
        let key = layout.manifest("acme", "api", at(day));
        repo.write_manifest(&key, &manifest(day, chain, &oid, &lfs))
            .await
            .unwrap();
        manifests.push(key);
    }
    let head = json!({"bundles": links, "tips": ["1111111111111111111111111111111111111111"],
        "lfs": [{"oid": oid, "size": 3}], "lfs_sealed": {&oid: {"size": lfs.size, "sha256": lfs.sha256}}});
    let latest: LatestPointer = serde_json::from_value(json!({
        "schema": 1, "backup": {"key": manifests[1], "manifest_key": manifests[1], "size": 1, "sha256": ""},
        "refs_digest": "d", "created_at": at(2), "run_id": "20261122T143605Z-a1b2",
        "data": layout.data_index("acme", "api", at(2)), "chain": head,
    }))
    .unwrap();
    store
        .put_json(&layout.latest("acme", "api"), &latest)
        .await
        .unwrap();
    let index: DataIndex = serde_json::from_value(json!({
        "schema": 1, "repository": "acme/api", "fetched_at": at(2), "full_at": at(2),
        "kinds": {"issues": issues},
        "assets": {"7": {"key": asset_key, "items": 1, "size": asset.size, "sha256": asset.sha256}},
    }))
    .unwrap();
    repo.put_data_index(&layout.data_index("acme", "api", at(2)), &index)
        .await
        .unwrap();
    Fixture { plain, manifests }
}

/// Whether `keys` open the object at `key` to `plain`.
async fn opens(store: &dyn Store, keys: Keys, key: &str, plain: &[u8]) -> bool {
    let stored = store.get(key).await.unwrap().unwrap();
    let repo = Repository::new(store, "").with_keys(keys);
    let opened = repo.keys().open(key, stored);
    opened.is_ok_and(|bytes| bytes == plain)
}

/// Every record's digest of an object is what the store holds.
async fn records_match(store: &dyn Store) {
    let layout = crate::layout::Layout::new("");
    for info in store.list("repos/").await.unwrap() {
        if !info.key.ends_with(".json") {
            continue;
        }
        let mut doc: Value = store.get_json(&info.key).await.unwrap().unwrap();
        let mut named = Vec::new();
        digests(
            &mut doc,
            &|oid| Some(layout.lfs("acme", "api", oid)),
            &mut |key, digest| named.push((key.to_owned(), digest.clone())),
        );
        // `latest.json`'s backup names a manifest: a record, not an object rekeyed.
        for (key, digest) in named.into_iter().filter(|(k, _)| !k.ends_with(".json")) {
            let bytes = store.get(&key).await.unwrap().unwrap();
            let mut actual = ObjectDigest::default();
            actual.update(&bytes);
            let actual = actual.finish();
            assert_eq!(digest["size"], actual.size, "{}: size of {key}", info.key);
            assert_eq!(
                digest["sha256"], actual.sha256,
                "{}: digest of {key}",
                info.key
            );
        }
    }
}

#[tokio::test]
async fn a_rekey_stopped_at_any_write_loses_nothing_and_a_rerun_finishes_it() {
    let (old, new) = (Pair::new(), Pair::new());
    let rekeying = || Keys::new(Some(new.recipients()), Some(old.identities()));
    let mut stopped_at = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let fixture = fixture(&fs, &old).await;
        let dying = Dying {
            inner: &fs,
            writes: AtomicUsize::new(stopped_at),
        };
        let first = Repository::new(&dying, "")
            .with_keys(rekeying())
            .rekey(Scope::All)
            .await;
        // Stopped or not, every object opens with one key or the other.
        for (key, plain) in &fixture.plain {
            let by_old = opens(&fs, Keys::new(None, Some(old.identities())), key, plain).await;
            let by_new = opens(&fs, Keys::new(None, Some(new.identities())), key, plain).await;
            assert!(
                by_old ^ by_new,
                "{key} after {stopped_at} writes: old {by_old}, new {by_new}"
            );
        }
        let rerun = Repository::new(&fs, "")
            .with_keys(rekeying())
            .rekey(Scope::All)
            .await
            .unwrap();
        assert!(rerun.foreign.is_empty(), "{rerun:?}");
        for (key, plain) in &fixture.plain {
            assert!(opens(&fs, Keys::new(None, Some(new.identities())), key, plain).await);
            assert!(!opens(&fs, Keys::new(None, Some(old.identities())), key, plain).await);
        }
        records_match(&fs).await;
        let reader = Repository::new(&fs, "").with_keys(Keys::new(None, Some(new.identities())));
        for key in &fixture.manifests {
            let manifest = reader.manifest(key).await.unwrap().unwrap();
            assert!(manifest.refs.get("refs/heads/secret-branch").is_some());
        }
        let old_reader =
            Repository::new(&fs, "").with_keys(Keys::new(None, Some(old.identities())));
        assert!(old_reader.manifest(&fixture.manifests[0]).await.is_err());
        if let Ok(done) = first {
            // The whole rekey fitted in `stopped_at` writes: every stop point was tried.
            assert_eq!(
                (done.rewritten, done.already, done.plain),
                (5, 0, 0),
                "{done:?}"
            );
            assert_eq!(
                done.records, 4,
                "two manifests, latest.json, the index: {done:?}"
            );
            assert_eq!((rerun.rewritten, rerun.already, rerun.records), (0, 5, 0));
            break;
        }
        stopped_at += 1;
    }
    assert!(
        stopped_at >= 9,
        "five objects and four records: {stopped_at} writes"
    );
}

#[tokio::test]
async fn plaintext_stays_plaintext_and_a_wrong_identity_rewrites_nothing() {
    let (old, new, stranger) = (Pair::new(), Pair::new(), Pair::new());
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::new(dir.path());
    let fixture = fixture(&fs, &old).await;
    fs.put("repos/acme/api/assets/8", "in the clear".into())
        .await
        .unwrap();
    let wrong = Repository::new(&fs, "")
        .with_keys(Keys::new(
            Some(new.recipients()),
            Some(stranger.identities()),
        ))
        .rekey(Scope::Repo("acme", "api"))
        .await
        .unwrap();
    assert_eq!((wrong.rewritten, wrong.plain, wrong.records), (0, 1, 0));
    assert_eq!(
        wrong.foreign.len(),
        5 + 2,
        "objects and both manifests' fields: {wrong:?}"
    );
    for (key, plain) in &fixture.plain {
        assert!(opens(&fs, Keys::new(None, Some(old.identities())), key, plain).await);
    }
    assert_eq!(
        fs.get("repos/acme/api/assets/8").await.unwrap().unwrap(),
        "in the clear"
    );
}

#[tokio::test]
async fn an_object_that_is_not_what_its_records_say_is_left_as_it_is() {
    let (old, new) = (Pair::new(), Pair::new());
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::new(dir.path());
    let fixture = fixture(&fs, &old).await;
    let (damaged, _) = &fixture.plain[0];
    let mut bytes = fs.get(damaged).await.unwrap().unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.path().join(damaged), &bytes).unwrap();
    let err = Repository::new(&fs, "")
        .with_keys(Keys::new(Some(new.recipients()), Some(old.identities())))
        .rekey(Scope::All)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(damaged.as_str()) && err.to_string().contains("its records say"),
        "{err}"
    );
    assert_eq!(
        fs.get(damaged).await.unwrap().unwrap(),
        bytes,
        "left as it was"
    );
}
