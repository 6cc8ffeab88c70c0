//! S3-compatible stores: every compatibility profile keeps the store contract, on
//! LocalStack (which has every feature, so each profile's own code path is what is
//! tested) and behind a strict proxy that rejects what each provider lacks.

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use repovault_aws::S3Store;
use repovault_core::config::{PROVIDERS, S3Checksum, S3Compat, S3Credentials, S3Settings};
use repovault_core::ports::store::Store;
use repovault_testkit::contract::store_contract;
use repovault_testkit::localstack::LocalStack;

/// Larger than S3's 5 MiB minimum part, so `S3Store` takes its multipart path.
const LARGE: usize = 12 << 20;

/// The SDK configuration the product would load, for an emulator at `endpoint`.
pub(crate) async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
        .load()
        .await
}

/// A store on `bucket` at `endpoint` opened as the product opens one: the client
/// from the bucket's settings, and their profile.
pub(crate) async fn store_with(endpoint: &str, bucket: &str, compat: S3Compat) -> Arc<dyn Store> {
    let settings = S3Settings {
        endpoint: Some(endpoint.to_owned()),
        compat: Some(compat),
        credentials: S3Credentials::Default,
        ..S3Settings::default()
    };
    let client = repovault_aws::s3_client_for(&sdk_config(endpoint).await, &settings).unwrap();
    Arc::new(
        S3Store::new(client, bucket)
            .with_compat(compat)
            .with_parts(5 << 20, 2),
    )
}

/// Every profile a provider has, and each checksum alone.
fn profiles() -> Vec<S3Compat> {
    let mut all: Vec<S3Compat> = Vec::new();
    let each_checksum = [
        S3Checksum::Crc64Nvme,
        S3Checksum::Sha256,
        S3Checksum::Crc32,
        S3Checksum::None,
    ]
    .map(|checksum| S3Compat {
        checksum,
        conditional_writes: false,
        tagging: false,
    });
    for compat in PROVIDERS.iter().map(|p| p.compat).chain(each_checksum) {
        if !all.contains(&compat) {
            all.push(compat);
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compat_profile_keeps_the_store_contract_on_localstack() {
    let ls = LocalStack::connect().await;
    let checks = profiles().into_iter().map(|compat| {
        let ls = &ls;
        async move {
            let stack = ls.stack("compat", 5).await;
            let store = store_with(&ls.endpoint, &stack.bucket, compat).await;
            let contract = tokio::spawn(async move { store_contract(store.as_ref(), LARGE).await });
            if let Err(e) = contract.await {
                panic!("{compat:?}: {e}");
            }
        }
    });
    futures::future::join_all(checks).await;
}
