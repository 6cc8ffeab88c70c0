//! A store that counts the reads asked of it, by key: tests that a reader is bounded
//! (reads each record once, never lists what it need not).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use repovault_core::ports::store::{
    ByteStream, Created, ObjectInfo, ObjectMetadata, PutReceipt, StaleKeys, Store, StoreError,
};

/// `inner`, counting every `get`, `get_stream`, `head` (by key) and `list` (by prefix).
pub struct CountingStore<S> {
    inner: S,
    reads: Mutex<BTreeMap<String, usize>>,
}

impl<S: Store> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            reads: Mutex::default(),
        }
    }

    /// Every read so far.
    pub fn reads(&self) -> usize {
        self.reads.lock().unwrap().values().sum()
    }

    /// The reads of `key` (for a listing, of its prefix) so far.
    pub fn reads_of(&self, key: &str) -> usize {
        self.reads.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn count(&self, key: &str) {
        *self
            .reads
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
    }
}

#[async_trait]
impl<S: Store> Store for CountingStore<S> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.inner.put_stream(key, body, metadata).await
    }
    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.inner.replace_stream(key, body, metadata).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError> {
        self.inner.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.count(key);
        self.inner.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        self.count(key);
        self.inner.get_stream(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.count(key);
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.count(prefix);
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        self.inner.abort_stale_uploads(prefix, stale).await
    }
}
