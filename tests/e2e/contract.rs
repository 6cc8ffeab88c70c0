//! The port contract suites against every adapter: `FsStore` and `S3Store` (on
//! LocalStack), `MemoryQueue` and `SqsQueue` (on LocalStack).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use repovault_aws::{S3Store, SqsQueue};
use repovault_core::ports::store::{ObjectMetadata, Store};
use repovault_local::{FsStore, MemoryQueue};
use repovault_testkit::contract::{queue_contract, stale_uploads_contract, store_contract};
use repovault_testkit::localstack::LocalStack;

/// Larger than S3's 5 MiB minimum part, so `S3Store` takes its multipart path.
const LARGE: usize = 12 << 20;

/// Starts an upload to `key` that sends one part-sized chunk and then stalls
/// forever, as a killed process leaves it; returns once the store has the chunk.
async fn start_upload(store: Arc<dyn Store>, key: String) {
    let (pulled, started) = tokio::sync::oneshot::channel::<()>();
    let first = Bytes::from(vec![7u8; 6 << 20]);
    let body = futures::stream::once(async move { Ok(first) })
        .chain(futures::stream::once(async move {
            let _ = pulled.send(());
            futures::future::pending::<std::io::Result<Bytes>>().await
        }))
        .boxed();
    tokio::spawn(async move {
        let _ = store.put_stream(&key, body, &ObjectMetadata::new()).await;
    });
    started.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_store_keeps_the_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FsStore::new(dir.path().join("store")));
    store_contract(store.as_ref(), LARGE).await;
    stale_uploads_contract(store.as_ref(), |key| start_upload(store.clone(), key)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_keeps_the_store_contract() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("contract", 5).await;
    let store: Arc<dyn Store> =
        Arc::new(S3Store::new(ls.s3.clone(), &stack.bucket).with_parts(5 << 20, 2));
    store_contract(store.as_ref(), LARGE).await;
    stale_uploads_contract(store.as_ref(), |key| start_upload(store.clone(), key)).await;
}

#[tokio::test]
async fn memory_queue_keeps_the_queue_contract() {
    queue_contract(&MemoryQueue::new(Duration::from_secs(120), 5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_queue_keeps_the_queue_contract() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("contract", 5).await;
    let queue = SqsQueue::connect(ls.sqs.clone(), &stack.queue_url, Duration::from_secs(120))
        .await
        .unwrap();
    queue_contract(&queue).await;
}
