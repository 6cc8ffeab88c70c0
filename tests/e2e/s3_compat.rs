//! S3-compatible stores: every compatibility profile keeps the store contract, on
//! LocalStack (which has every feature, so each profile's own code path is what is
//! tested), behind a strict proxy that rejects what each provider lacks, and on moto,
//! a second S3 implementation.

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use repovault_aws::S3Store;
use repovault_core::config::{PROVIDERS, S3Checksum, S3Compat, S3Credentials, S3Settings};
use repovault_core::ports::store::Store;
use repovault_testkit::contract::store_contract;
use repovault_testkit::localstack::LocalStack;
use repovault_testkit::moto::Moto;
use repovault_testkit::org;

use crate::support::*;

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

/// The checksums no provider's profile uses (those are tested through their strict
/// proxies, `contract::each_provider_s_profile_…`), alone: a user may pick them.
fn profiles() -> Vec<S3Compat> {
    let mut all = Vec::new();
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
    for compat in each_checksum {
        if !PROVIDERS
            .iter()
            .any(|p| p.compat.checksum == compat.checksum)
        {
            all.push(compat);
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checksums_no_provider_uses_keep_the_store_contract_on_localstack() {
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

/// moto, a second S3 implementation: a whole run into it restores every repository
/// exactly and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_into_moto_restores_exactly_and_verifies() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 3);
    let moto = Moto::connect().await;
    let bucket = moto.bucket("run").await;
    let work = tempfile::tempdir().unwrap();
    let dest = format!("s3://{bucket}/github");
    let aws = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("REPOVAULT_S3_ENDPOINT", moto.endpoint.as_str()),
    ];
    let api = gh.api_url();
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--dest",
            &dest,
        ],
        &aws,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        moto.keys(&bucket, "github/").await.len() > names.len(),
        "the backups are in moto"
    );

    for name in &names {
        let to = work.path().join(format!("restored-{name}"));
        let out = repovault(
            work.path(),
            &[
                "restore",
                &format!("acme/{name}"),
                "--from",
                &dest,
                "--to",
                to.to_str().unwrap(),
            ],
            &aws,
        )
        .await;
        assert!(out.status.success(), "{name}: {}", text(&out));
        let bare = to.join(format!("{name}.git"));
        assert_eq!(
            refs_of(&bare),
            refs_of(&gh.repo_path("acme", name)),
            "{name}"
        );
        fsck(&bare);
    }
    let out = repovault(work.path(), &["verify", "--from", &dest], &aws).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// The multi-tenant shape: two owners into two buckets, each bucket with its own
/// endpoint settings and keys (`credentials-env`). The process has no AWS keys of
/// its own, so each upload used its bucket's; a bucket whose variable is missing
/// fails naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_s_bucket_is_written_with_its_own_keys() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    org::standard_org(&gh, "beta", 1);
    let ls = LocalStack::connect().await;
    let (a, b) = (ls.stack("tenant-a", 5).await, ls.stack("tenant-b", 5).await);
    let work = tempfile::tempdir().unwrap();
    let config = format!(
        r#"allow-insecure-http: true
jobs:
  - name: tenant-a
    source: {{ org: acme, api-url: "{api}" }}
    target: s3://{a}/github
  - name: tenant-b
    source: {{ org: beta, api-url: "{api}" }}
    target: s3://{b}/github
s3:
  {a}:
    endpoint: {endpoint}
    region: us-east-1
    credentials-env: {{ access-key-id: TENANT_A_KEY_ID, secret-access-key: TENANT_A_SECRET }}
  {b}:
    endpoint: {endpoint}
    region: us-east-1
    credentials-env: {{ access-key-id: TENANT_B_KEY_ID, secret-access-key: TENANT_B_SECRET }}
"#,
        api = gh.api_url(),
        a = a.bucket,
        b = b.bucket,
        endpoint = ls.endpoint,
    );
    std::fs::write(work.path().join("repovault.yml"), config).unwrap();
    let no_default_keys = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_PROFILE", "repovault-none"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_REGION", "us-east-1"),
    ];
    let keys = [
        ("TENANT_A_KEY_ID", "tenant-a"),
        ("TENANT_A_SECRET", "tenant-a-secret"),
        ("TENANT_B_KEY_ID", "tenant-b"),
    ];
    let env: Vec<(&str, &str)> = no_default_keys.iter().chain(&keys).copied().collect();
    let out = repovault(work.path(), &["run", "--run-id", "r1"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "s3.{}: environment variable TENANT_B_SECRET is not set",
            b.bucket
        )),
        "{}",
        text(&out)
    );

    let mut env = env;
    env.push(("TENANT_B_SECRET", "tenant-b-secret"));
    let out = repovault(work.path(), &["run", "--run-id", "r2"], &env).await;
    assert!(out.status.success(), "{}", text(&out));
    for (stack, repo) in [(&a, "acme/repo-001"), (&b, "beta/repo-000")] {
        let listed = ls
            .s3
            .list_objects_v2()
            .bucket(&stack.bucket)
            .prefix(format!("github/repos/{repo}/"))
            .send()
            .await
            .unwrap();
        assert!(
            listed.key_count().unwrap_or(0) > 0,
            "{repo} in {}",
            stack.bucket
        );
    }
}

/// Every part but the last has exactly the part size, whatever sizes the stream's
/// chunks have (R2 refuses parts of unequal sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_cut_at_the_part_size_whatever_the_chunks() {
    use futures::StreamExt;
    let ls = LocalStack::connect().await;
    let stack = ls.stack("parts", 5).await;
    let store = store_with(&ls.endpoint, &stack.bucket, S3Compat::AWS).await;
    let len = LARGE;
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<std::io::Result<bytes::Bytes>> = body
        .chunks(777_777)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    store
        .put_stream(
            "parts/odd-chunks.bin",
            futures::stream::iter(chunks).boxed(),
            &Default::default(),
        )
        .await
        .unwrap();
    let part = |n: i32| {
        ls.s3
            .head_object()
            .bucket(&stack.bucket)
            .key("parts/odd-chunks.bin")
            .part_number(n)
            .send()
    };
    let first = part(1).await.unwrap();
    assert_eq!(first.parts_count(), Some(3));
    assert_eq!(first.content_length(), Some(5 << 20));
    assert_eq!(part(2).await.unwrap().content_length(), Some(5 << 20));
    assert_eq!(
        part(3).await.unwrap().content_length(),
        Some((len - (10 << 20)) as i64)
    );
    let stored = store.get("parts/odd-chunks.bin").await.unwrap().unwrap();
    assert!(stored == body, "the object is the bytes streamed");
}
