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
use repovault_core::config::{S3Compat, S3Credentials, S3Settings, provider_for};

/// How often one S3 or SQS request is tried: 5xx, throttling and dropped connections
/// are retried in place with jittered exponential backoff (the SDK's standard mode),
/// so a brief S3 hiccup costs no queue delivery.
const SDK_MAX_ATTEMPTS: u32 = 5;

/// Loads the AWS configuration the standard way (environment, profile, ECS task
/// role, IMDS), with five tries per request, through the environment's proxy.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS),
        )
        .http_client(http_client())
        .load()
        .await
}

/// The SDK's own HTTPS client (rustls, aws-lc), given repovault's proxy rules: the
/// environment's proxies, with the metadata services that hold the task's and the
/// instance's credentials always reached directly (the SDK's own reading of the
/// environment would send them to the proxy, which cannot reach them).
fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    let proxies = repovault_http::Proxies::current();
    let config = match (&proxies.http, &proxies.https) {
        (Some(http), Some(https)) if http == https => ProxyConfig::all(http.as_str()),
        // One proxy per scheme cannot be said to the SDK: S3, SQS and SNS are https.
        (_, Some(https)) => ProxyConfig::https(https.as_str()),
        (Some(http), None) => ProxyConfig::http(http.as_str()),
        (None, None) => Ok(ProxyConfig::disabled()),
    };
    let config = match config {
        Ok(config) => config.no_proxy(&proxies.no_proxy),
        Err(e) => {
            tracing::warn!(error = %e, "the proxy variables hold no URL the AWS SDK takes; S3 and SQS are reached directly");
            ProxyConfig::disabled()
        }
    };
    // How the SDK builds its default client (aws-smithy-runtime's
    // `default_https_client`), with a proxy configuration of ours: the public
    // `build_https` takes none.
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(config.clone()));
        connector.build()
    })
}

/// The endpoint the SDK takes from the environment for `service_var`'s service.
fn env_endpoint(service_var: &str) -> Option<String> {
    [service_var, "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|url| !url.is_empty()))
}

/// An S3 client for AWS or whatever `AWS_ENDPOINT_URL(_S3)` names, with the
/// SDK's default settings.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    s3_client_for(config, &S3Settings::default()).expect("default credentials need nothing")
}

/// What a bucket's settings come to: its client and its compatibility profile.
pub fn s3_client_for(
    config: &SdkConfig,
    settings: &S3Settings,
) -> Result<aws_sdk_s3::Client, String> {
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| env_endpoint("AWS_ENDPOINT_URL_S3"));
    let compat = s3_compat(settings);
    let mut s3 = aws_sdk_s3::config::Builder::from(config)
        // Path-style wherever a custom endpoint is set: every S3-compatible service
        // has it, and LocalStack or MinIO on an IP or a single host need it.
        .force_path_style(settings.path_style.unwrap_or(endpoint.is_some()));
    if let Some(endpoint) = &settings.endpoint {
        s3 = s3.endpoint_url(endpoint);
    }
    if let Some(region) = &settings.region {
        s3 = s3.region(aws_config::Region::new(region.clone()));
    }
    if compat != S3Compat::AWS {
        // The SDK's own checksums (CRC32 trailers on every upload) only where an
        // operation needs one: S3-compatible services reject what they lack.
        use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
        s3 = s3
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    match &settings.credentials {
        S3Credentials::Default => {}
        S3Credentials::Profile(name) => {
            s3 = s3.credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .profile_name(name)
                    .build(),
            );
        }
        S3Credentials::Env {
            access_key_id,
            secret_access_key,
            session_token,
        } => {
            let var = |name: &String| {
                std::env::var(name)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("environment variable {name} is not set"))
            };
            let token = session_token.as_ref().map(var).transpose()?;
            s3 = s3.credentials_provider(aws_sdk_s3::config::Credentials::new(
                var(access_key_id)?,
                var(secret_access_key)?,
                token,
                None,
                "repovault-credentials-env",
            ));
        }
    }
    Ok(aws_sdk_s3::Client::from_conf(s3.build()))
}

/// A bucket's compatibility profile: its own, else its endpoint's provider's.
pub fn s3_compat(settings: &S3Settings) -> S3Compat {
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| env_endpoint("AWS_ENDPOINT_URL_S3"));
    settings
        .compat
        .unwrap_or_else(|| provider_for(endpoint.as_deref()).compat)
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
