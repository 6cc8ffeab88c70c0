//! Contract suites for the ports: the behaviour every `Store` and every `Queue` must
//! have, run against each adapter (the folder store and S3; the in-process queue and
//! SQS), so in-process tests can trust the embedded adapters to behave like the real
//! services.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use repovault_core::ports::queue::{Lease, Queue};
use repovault_core::ports::store::{
    ByteStream, Created, ObjectDigest, ObjectMetadata, Store, StoreError, meta,
};

fn stream_of(chunks: Vec<io::Result<Bytes>>) -> ByteStream {
    futures::stream::iter(chunks).boxed()
}

/// `len` bytes that do not repeat in any short period (compression-proof).
fn body(len: usize) -> Bytes {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Every behaviour the `Store` port promises. `large` is the size of a streamed body
/// big enough to take the store's multipart path (if it has one).
pub async fn store_contract(store: &dyn Store, large: usize) {
    conditional_create(store).await;
    missing_keys(store).await;
    listing(store).await;
    streaming(store, 1000).await;
    streaming(store, large).await;
    replacing(store, 1000).await;
    replacing(store, large).await;
    aborted_streams_store_nothing(store).await;
    invalid_keys(store).await;
    capped_reads(store, large).await;
}

/// A read into memory stops at its cap: an object larger is refused, not held.
async fn capped_reads(store: &dyn Store, len: usize) {
    let key = "contract/capped/big.bin";
    store.put(key, body(len)).await.unwrap();
    let whole = store.get_capped(key, len as u64).await.unwrap().unwrap();
    assert_eq!(whole.len(), len);
    let err = store.get_capped(key, len as u64 - 1).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(
        store
            .get_capped("contract/capped/none", 1)
            .await
            .unwrap()
            .is_none()
    );
}

async fn conditional_create(store: &dyn Store) {
    let key = "contract/records/r.json";
    assert_eq!(
        store.put_if_absent(key, "1".into()).await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.put_if_absent(key, "2".into()).await.unwrap(),
        Created::AlreadyExists
    );
    assert_eq!(&store.get(key).await.unwrap().unwrap()[..], b"1");
    store.put(key, "3".into()).await.unwrap();
    assert_eq!(
        &store.get(key).await.unwrap().unwrap()[..],
        b"3",
        "put replaces"
    );
}

async fn missing_keys(store: &dyn Store) {
    let key = "contract/missing/nothing.json";
    assert!(store.get(key).await.unwrap().is_none());
    assert!(store.get_stream(key).await.unwrap().is_none());
    assert!(store.head(key).await.unwrap().is_none());
    store.delete(key).await.unwrap();
}

async fn listing(store: &dyn Store) {
    // More than one S3 page (1,000 keys), plus a neighbour the prefix must exclude.
    let keys: Vec<String> = (0..1003)
        .map(|i| format!("contract/list/k{i:05}"))
        .collect();
    futures::stream::iter(keys.clone())
        .for_each_concurrent(32, |key| async move {
            store.put(&key, Bytes::from_static(b"x")).await.unwrap();
        })
        .await;
    store.put("contract/listing", "y".into()).await.unwrap();
    let listed: Vec<String> = store
        .list("contract/list/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, keys, "every key under the prefix, in key order");
    let partial = store.list("contract/list/k0010").await.unwrap();
    assert_eq!(partial.len(), 10, "a prefix need not end at a '/'");
    assert!(store.list("contract/none/").await.unwrap().is_empty());
    let info = store.list("contract/listing").await.unwrap();
    assert_eq!((info.len(), info[0].size), (1, 1));
}

async fn streaming(store: &dyn Store, len: usize) {
    let key = format!("contract/stream/{len}.bin");
    let data = body(len);
    let chunks: Vec<io::Result<Bytes>> = data
        .chunks(256 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let metadata = ObjectMetadata::from([("repository".to_owned(), "acme/api".to_owned())]);
    let receipt = store
        .put_stream(&key, stream_of(chunks), &metadata)
        .await
        .unwrap();
    let mut expected = ObjectDigest::default();
    expected.update(&data);
    assert_eq!(receipt, expected.finish());
    let info = store.head(&key).await.unwrap().unwrap();
    assert_eq!(info.size, len as u64);
    assert_eq!(info.metadata["repository"], "acme/api");
    assert_eq!(info.metadata[meta::SIZE_BYTES], len.to_string());
    assert_eq!(info.metadata[meta::SHA256], receipt.sha256);
    let mut read = Vec::with_capacity(len);
    let mut stream = store.get_stream(&key).await.unwrap().unwrap();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    assert!(read == data[..], "read back what was streamed");

    // Create-only: a second write to the key is refused and changes nothing.
    let again = store
        .put_stream(
            &key,
            stream_of(vec![Ok(body(len.min(1 << 20)))]),
            &ObjectMetadata::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::AlreadyExists { .. }), "{again}");
    let info = store.head(&key).await.unwrap().unwrap();
    assert_eq!(info.metadata[meta::SHA256], receipt.sha256);
}

/// `replace_stream` writes a free key like `put_stream` and replaces a taken one
/// whole, body and digest; a failed replacement leaves the old object as it was.
async fn replacing(store: &dyn Store, len: usize) {
    let key = format!("contract/replace/{len}.bin");
    let (old, new) = (body(len), body(len + 7));
    let metadata = ObjectMetadata::new();
    let first = store
        .replace_stream(&key, stream_of(vec![Ok(old.clone())]), &metadata)
        .await
        .unwrap();
    let aborted = store
        .replace_stream(
            &key,
            stream_of(vec![Ok(new.clone()), Err(io::Error::other("died"))]),
            &metadata,
        )
        .await
        .unwrap_err();
    assert!(matches!(aborted, StoreError::Aborted { .. }), "{aborted}");
    assert_eq!(store.get(&key).await.unwrap().unwrap(), old);
    assert_eq!(
        store.head(&key).await.unwrap().unwrap().metadata[meta::SHA256],
        first.sha256
    );
    let chunks = new
        .chunks(256 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let second = store
        .replace_stream(&key, stream_of(chunks), &metadata)
        .await
        .unwrap();
    let mut expected = ObjectDigest::default();
    expected.update(&new);
    assert_eq!(second, expected.finish());
    assert!(store.get(&key).await.unwrap().unwrap() == new, "replaced");
    let info = store.head(&key).await.unwrap().unwrap();
    assert_eq!(info.size, new.len() as u64);
    assert_eq!(info.metadata[meta::SHA256], second.sha256);
}

async fn aborted_streams_store_nothing(store: &dyn Store) {
    for (len, key) in [
        (10, "contract/aborted/small.bin"),
        (6 << 20, "contract/aborted/large.bin"),
    ] {
        let chunks = vec![Ok(body(len)), Err(io::Error::other("archiver died"))];
        let err = store
            .put_stream(key, stream_of(chunks), &ObjectMetadata::new())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Aborted { .. }), "{err}");
        assert!(store.head(key).await.unwrap().is_none(), "{key} was stored");
    }
    // Nothing unfinished is left behind to abort later.
    assert_eq!(
        store
            .abort_stale_uploads("contract/aborted/", &|_| true)
            .await
            .unwrap(),
        0
    );
}

async fn invalid_keys(store: &dyn Store) {
    for key in ["", "/abs", "a//b", "a/../b", "a/"] {
        let err = store.put(key, "x".into()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidKey { .. }),
            "{key:?}: {err}"
        );
    }
}

/// Aborting stale uploads touches only uploads under the prefix to the keys picked.
/// `start_upload` begins an upload to a key and leaves it unfinished (as a killed
/// process would).
pub async fn stale_uploads_contract<F, Fut>(store: &dyn Store, start_upload: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    start_upload("contract/stale/a/a-1.bin".into()).await;
    start_upload("contract/stale/a/a-2.bin".into()).await;
    start_upload("contract/stale/b/a-2.bin".into()).await;
    let second = |key: &str| key.ends_with("/a-2.bin");
    assert_eq!(
        store
            .abort_stale_uploads("contract/stale/a/", &second)
            .await
            .unwrap(),
        1,
        "only the key picked, only under the prefix"
    );
    assert_eq!(
        store
            .abort_stale_uploads("contract/stale/a/", &second)
            .await
            .unwrap(),
        0,
        "aborted once"
    );
    assert_eq!(
        store
            .abort_stale_uploads("contract/stale/a/", &|_| true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .abort_stale_uploads("contract/stale/b/", &|_| true)
            .await
            .unwrap(),
        1,
        "another prefix's upload was touched"
    );
}

/// Every behaviour the `Queue` port promises. The queue must be empty, lease messages
/// for longer than the test takes, and allow at least 3 deliveries.
pub async fn queue_contract(queue: &dyn Queue) {
    let bodies: Vec<String> = (0..25).map(|i| format!("job-{i}")).collect();
    queue.send(&bodies).await.unwrap();
    let mut leases = receive_all(queue, 25).await;
    leases.sort_by(|a, b| a.body.cmp(&b.body));
    let mut received: Vec<String> = leases.iter().map(|l| l.body.clone()).collect();
    received.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(received, sent, "a batch of 25 arrives whole, each once");
    assert!(leases.iter().all(|l| l.receive_count == 1));
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "leased messages are invisible"
    );

    let (released, rest) = leases.split_first().unwrap();
    let (delayed, rest) = rest.split_first().unwrap();
    let (dead, rest) = rest.split_first().unwrap();
    for lease in rest {
        queue.extend(lease, Duration::from_secs(120)).await.unwrap();
        queue.ack(lease).await.unwrap();
    }

    // Released at once: delivered again, counted.
    queue.retry_later(released, Duration::ZERO).await.unwrap();
    let again = receive_all(queue, 1).await;
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        (released.body.as_str(), 2)
    );
    assert_ne!(
        again[0].receipt, released.receipt,
        "a new delivery, a new receipt"
    );
    queue.ack(&again[0]).await.unwrap();

    // Released after a delay: not before it.
    queue
        .retry_later(delayed, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "a delayed message came back at once"
    );
    let later = receive_all(queue, 1).await;
    assert_eq!(
        (later[0].body.as_str(), later[0].receive_count),
        (delayed.body.as_str(), 2)
    );
    queue.ack(&later[0]).await.unwrap();

    // Sent with a delay: invisible until it passes, then delivered once.
    queue
        .send_delayed("job-delayed", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "a message sent with a delay was visible at once"
    );
    let delayed_send = receive_all(queue, 1).await;
    assert_eq!(
        (delayed_send[0].body.as_str(), delayed_send[0].receive_count),
        ("job-delayed", 1)
    );
    queue.ack(&delayed_send[0]).await.unwrap();

    queue.dead_letter(dead, "contract: poison").await.unwrap();
    let depth = queue.depth().await.unwrap();
    assert!(depth.is_drained(), "{depth:?}");
    assert_eq!(depth.dead, 1, "{depth:?}");
}

/// Receives until `n` messages arrived (each poll waits up to 2 s; 30 s in all).
async fn receive_all(queue: &dyn Queue, n: usize) -> Vec<Lease> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            got.len()
        );
        got.extend(
            queue
                .receive(n - got.len(), Duration::from_secs(2))
                .await
                .unwrap(),
        );
    }
    got
}
