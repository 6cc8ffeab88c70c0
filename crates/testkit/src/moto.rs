//! moto's S3 server, started by `scripts/test` (`scripts/moto/start.sh`): a second S3
//! implementation, so the store contract is not only LocalStack's reading of S3. A
//! fresh bucket per test.
//!
//! moto is a less complete S3 than LocalStack: it accepts checksums without checking
//! them and returns no composite checksum of a multipart upload.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

/// Where `scripts/test` started moto.
pub fn endpoint() -> String {
    std::env::var("REPOVAULT_TEST_MOTO_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5000".into())
}

pub struct Moto {
    pub endpoint: String,
    /// A plain client (path-style, the SDK's defaults), for fixtures and looking inside.
    pub s3: aws_sdk_s3::Client,
}

impl Moto {
    /// Connects, failing the test (never skipping it) if moto is not running.
    pub async fn connect() -> Moto {
        match Self::try_connect(&endpoint()).await {
            Ok(moto) => moto,
            Err(e) => panic!("{e}: run the tests with scripts/test, which starts moto"),
        }
    }

    /// Connects to `endpoint`, or says why not.
    pub async fn try_connect(endpoint: &str) -> Result<Moto, String> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        if let Err(e) = s3.list_buckets().send().await {
            return Err(format!(
                "moto is not reachable at {endpoint} ({})",
                repovault_core::error_chain(&e)
            ));
        }
        Ok(Moto {
            endpoint: endpoint.to_owned(),
            s3,
        })
    }

    /// A new, empty bucket: its name.
    pub async fn bucket(&self, name: &str) -> String {
        crate::localstack::create_bucket(&self.s3, name).await
    }

    /// Every key in `bucket` under `prefix`, in key order.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        crate::localstack::list_keys(&self.s3, bucket, prefix).await
    }
}
