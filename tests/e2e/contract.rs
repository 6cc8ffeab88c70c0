//! The port contract suites against every adapter: `FsStore` and `S3Store` (on
//! LocalStack, on moto, and through a strict proxy that rejects what a provider
//! lacks), `MemoryQueue` and `SqsQueue` (on LocalStack).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use repovault_aws::{S3Store, SqsQueue};
use repovault_core::config::{PROVIDERS, S3Checksum, S3Compat};
use repovault_core::ports::store::{ObjectMetadata, Store, StoreError};
use repovault_local::{FsStore, MemoryQueue};
use repovault_testkit::contract::{queue_contract, stale_uploads_contract, store_contract};
use repovault_testkit::localstack::{LocalStack, create_bucket};
use repovault_testkit::moto::Moto;
use repovault_testkit::{StrictRules, StrictS3};

use crate::s3_compat::store_with;

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

/// What moto 5.2.5 is given: CRC32 checksums, conditional writes, tagging (it has
/// both: a second create-only write gets 412, on `PutObject` and on
/// `CompleteMultipartUpload`).
///
/// Not `S3Compat::AWS` (nor `auto` for an endpoint on 127.0.0.1, MinIO's, the same):
/// after a full-object CRC64NVME multipart upload moto answers a read with
/// `x-amz-checksum-crc64nvme` holding the object's CRC32 (4 bytes), and the SDK,
/// which checks response checksums under the AWS profile only, fails the read with
/// `ChecksumMismatch`. Every other profile passes, as the SDK then checks none. moto
/// checks no checksum it is sent either (and gives a multipart upload's composite
/// checksum without its `-N`), so on moto the contract tests repovault's S3 calls,
/// not the integrity checks: LocalStack does those.
const MOTO: S3Compat = S3Compat {
    checksum: S3Checksum::Crc32,
    conditional_writes: true,
    tagging: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_s3_store_keeps_the_store_contract() {
    let moto = Moto::connect().await;
    let bucket = moto.bucket("contract").await;
    let store = store_with(&moto.endpoint, &bucket, MOTO).await;
    store_contract(store.as_ref(), LARGE).await;
    stale_uploads_contract(store.as_ref(), |key| start_upload(store.clone(), key)).await;
}

/// The store contract with the store opened as the product opens one with `compat`,
/// its requests going through a [`StrictS3`] with `rules` in front of LocalStack:
/// passes only if the profile asks for nothing the provider lacks.
pub(crate) async fn strict_contract(compat: S3Compat, rules: StrictRules) {
    let ls = LocalStack::connect().await;
    let bucket = create_bucket(&ls.s3, "strict").await;
    let proxy = StrictS3::start(&ls.endpoint, rules.clone()).await;
    let store = store_with(&proxy.endpoint, &bucket, compat).await;
    let contract = tokio::spawn(async move {
        store_contract(store.as_ref(), LARGE).await;
        stale_uploads_contract(store.as_ref(), |key| start_upload(store.clone(), key)).await;
    })
    .await;
    let rejected = proxy.rejected();
    if let Err(e) = contract {
        panic!("{compat:?} through a strict S3 with {rules:?}: {e}\nrejected: {rejected:#?}");
    }
    assert!(
        rejected.is_empty(),
        "{compat:?} asked for what {rules:?} lacks: {rejected:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_proxy_with_every_feature_passes_the_aws_profile() {
    strict_contract(S3Compat::AWS, StrictRules::every_feature()).await;
}

/// Each provider's profile (what `--s3-compat` or its endpoint's host picks) keeps
/// the store contract through a proxy that refuses, as the provider does, what it
/// lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_s_profile_keeps_the_contract_through_its_strict_proxy() {
    let checks = PROVIDERS
        .iter()
        .filter(|p| !matches!(p.name, "aws" | "minio"))
        .map(|p| strict_contract(p.compat, StrictRules::provider(p.name)));
    futures::future::join_all(checks).await;
}

/// The proxy is strict: a provider without conditional writes and tagging answers
/// the AWS profile's requests with its own errors, and the store says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_profile_fails_on_a_store_without_conditional_writes_and_tagging() {
    let ls = LocalStack::connect().await;
    let bucket = create_bucket(&ls.s3, "strict").await;
    let rules = StrictRules {
        conditional_writes: false,
        tagging: false,
        ..StrictRules::every_feature()
    };
    let proxy = StrictS3::start(&ls.endpoint, rules.clone()).await;
    let store = store_with(&proxy.endpoint, &bucket, S3Compat::AWS).await;
    // The provider's error, as permanent (retrying cannot fix it), with what to do.
    let not_implemented = |err: StoreError| {
        match err {
        StoreError::Refused { message, .. } => assert!(
            message.contains("NotImplemented: A header you provided implies functionality that is not implemented")
                && message.contains("set its s3-compat"),
            "{message}"
        ),
        other => panic!("not the provider's error: {other:?}"),
    }
    };

    // A small object (one PutObject) and a large one (multipart: the completion).
    for (len, key) in [(1000, "strict/small.bin"), (LARGE, "strict/large.bin")] {
        let body = futures::stream::iter(
            vec![7u8; len]
                .chunks(256 << 10)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        not_implemented(
            store
                .put_stream(key, body, &ObjectMetadata::new())
                .await
                .unwrap_err(),
        );
        assert!(store.head(key).await.unwrap().is_none(), "{key} was stored");
    }
    not_implemented(
        store
            .put_if_absent("strict/record.json", "{}".into())
            .await
            .unwrap_err(),
    );
    // Reading an object's tags is tagging too.
    store.put("strict/plain.json", "{}".into()).await.unwrap();
    not_implemented(store.head("strict/plain.json").await.unwrap_err());

    let path = format!("/{bucket}/strict");
    assert_eq!(
        proxy.rejected(),
        [
            format!("PUT {path}/small.bin conditional_writes (if-none-match)"),
            format!("POST {path}/large.bin conditional_writes (if-none-match)"),
            format!("PUT {path}/record.json conditional_writes (if-none-match)"),
            format!("GET {path}/plain.json tagging (?tagging)"),
        ]
    );

    // The contract fails at its first conditional write, with that error.
    let failed = tokio::spawn(async move { store_contract(store.as_ref(), LARGE).await })
        .await
        .unwrap_err();
    assert!(failed.to_string().contains("NotImplemented"), "{failed}");
}
