//! # repovault-aws
//!
//! The AWS adapters behind the core ports:
//!
//! - [`S3Store`]: streaming multipart uploads with bounded memory (parts of a
//!   configurable size, a few in flight, growing after every 1,000 parts so huge
//!   archives stay under S3's 10,000-part limit), SHA-256 of the whole object computed
//!   while streaming and stored as object tags, create-only writes (`If-None-Match:
//!   *`) with a checksum S3 verifies (CRC64NVME of the whole object for multipart,
//!   SHA-256 for single puts), and the multipart upload aborted on every error path
//!   (and on cancellation). Access denied and missing buckets are permanent errors.
//! - [`SqsQueue`]: long polling, batched sends of 10 with partial failures retried,
//!   `ApproximateReceiveCount`, visibility changes for heartbeats and retries, and an
//!   explicit move to the dead-letter queue found through the queue's redrive policy.
//!
//! - [`EcsTaskProtection`]: ECS task scale-in protection while a worker holds jobs.
//! - [`read_secret`]: a secret's value from Secrets Manager, read at start.
//!
//! The store and queue work against AWS, LocalStack, MinIO or R2: `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_S3` / `_SQS`) selects the endpoint, and S3 path-style addressing
//! is used whenever a custom endpoint is set.
//!
//! ```no_run
//! # async fn demo() -> Result<(), repovault_core::ports::queue::QueueError> {
//! let aws = repovault_aws::load_config().await;
//! let store = repovault_aws::S3Store::new(repovault_aws::s3_client(&aws), "my-backups");
//! let queue = repovault_aws::SqsQueue::connect(
//!     repovault_aws::sqs_client(&aws),
//!     "https://sqs.eu-west-1.amazonaws.com/123456789012/repovault",
//!     std::time::Duration::from_secs(120),
//! ).await?;
//! # Ok(()) }
//! ```

mod s3_store;
mod secrets;
mod sns_topic;
mod sqs_queue;
mod task_protection;

pub use s3_store::S3Store;
pub use secrets::{SecretError, read_secret, secrets_client};
pub use sns_topic::SnsTopic;
pub use sqs_queue::SqsQueue;
pub use task_protection::EcsTaskProtection;

use aws_config::{BehaviorVersion, SdkConfig};

/// How often one S3 or SQS request is tried: 5xx, throttling and dropped connections
/// are retried in place with jittered exponential backoff (the SDK's standard mode),
/// so a brief S3 hiccup costs no queue delivery.
const SDK_MAX_ATTEMPTS: u32 = 5;

/// Loads the AWS configuration the standard way (environment, profile, ECS task
/// role, IMDS), with five tries per request.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS),
        )
        .load()
        .await
}

fn custom_endpoint(service_var: &str) -> bool {
    [service_var, "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|url| !url.is_empty()))
}

/// An S3 client; path-style addressing when a custom endpoint is configured
/// (LocalStack and MinIO on an IP or single host need it), unless
/// `REPOVAULT_S3_PATH_STYLE=false`.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = match std::env::var("REPOVAULT_S3_PATH_STYLE") {
        Ok(v) => v == "true" || v == "1",
        Err(_) => custom_endpoint("AWS_ENDPOINT_URL_S3"),
    };
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(config)
}

/// Renders an SDK error (S3's or SQS's: the SDKs share the type) with its service code
/// and message, not just "service error".
pub(crate) fn sdk_message<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => e.to_string(),
            }
        }
        other => repovault_core::error_chain(other),
    }
}
