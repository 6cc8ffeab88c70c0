//! Turning configuration into concrete adapters.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_config_cache::aws;
use repovault_aws::{S3Store, SqsQueue};
use repovault_core::config::{JobSpec, defaults};
use repovault_core::ports::source::Source;
use repovault_core::ports::store::{Store, TargetStores};
use repovault_core::{GitHost, Secret, StoreLocation, Target};
use repovault_github::GitHubSource;
use repovault_local::FsStore;
use repovault_worker::AllowList;

use crate::args::S3Args;

/// The AWS configuration, loaded once per process and only if something needs it.
mod aws_config_cache {
    use aws_config::SdkConfig;
    use tokio::sync::OnceCell;

    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

    pub async fn aws() -> &'static SdkConfig {
        CONFIG.get_or_init(repovault_aws::load_config).await
    }
}

/// The GitHub token: from `token_file` if given, else `GITHUB_TOKEN`. `None` means
/// anonymous (public repositories only, 60 API requests an hour).
pub fn load_token(token_file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    let token = load_secret(token_file, defaults::TOKEN_ENV, "token-file")?;
    if token.is_none() {
        tracing::warn!(
            "no GitHub token (set GITHUB_TOKEN or --token-file): public repositories only, 60 API requests an hour"
        );
    }
    Ok(token)
}

/// A secret from `file` if given (`key` names it in errors), else from `env`.
pub fn load_secret(file: Option<&Path>, env: &str, key: &str) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{key}: cannot read {}", path.display()))?;
        let secret = Secret::new(text);
        if secret.expose().is_empty() {
            bail!("{key}: {} is empty", path.display());
        }
        return Ok(Some(secret));
    }
    Ok(std::env::var(env)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(Secret::new))
}

/// Opens the store a target names.
pub async fn open_store(target: &Target, s3: &S3Args) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match target.location() {
        StoreLocation::Local(path) => Arc::new(FsStore::new(path)),
        StoreLocation::S3 { bucket } => Arc::new(
            S3Store::new(repovault_aws::s3_client(aws().await), bucket)
                .with_parts(s3.part_size_mb << 20, s3.parts_in_flight),
        ),
    })
}

/// Opens every distinct target once.
pub async fn open_targets<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
    s3: &S3Args,
) -> anyhow::Result<TargetStores> {
    let mut stores = TargetStores::new();
    for target in targets {
        if stores.get(target).is_none() {
            stores.insert(target.clone(), open_store(target, s3).await?);
        }
    }
    Ok(stores)
}

/// A worker's allow-list: each `(target, git host)` pair, with the target's store
/// from `stores` (which holds every target named).
pub fn allow_list<'a>(
    stores: &TargetStores,
    pairs: impl IntoIterator<Item = (&'a Target, &'a GitHost)>,
) -> AllowList {
    let mut allow = AllowList::new();
    for (target, host) in pairs {
        let store = stores.get(target).expect("every target is opened").clone();
        allow.allow(target.clone(), store, host.clone());
    }
    allow
}

/// Connects to the SQS queue and its dead-letter queue.
pub async fn open_queue(url: &str, visibility: Duration) -> anyhow::Result<SqsQueue> {
    SqsQueue::connect(repovault_aws::sqs_client(aws().await), url, visibility)
        .await
        .with_context(|| format!("--queue-url {url}"))
}

/// One GitHub source per job, shared between jobs on the same API host.
pub fn open_sources(
    jobs: &[JobSpec],
    token: Option<&Secret>,
) -> anyhow::Result<HashMap<String, Arc<dyn Source>>> {
    let mut by_api: HashMap<String, Arc<dyn Source>> = HashMap::new();
    let mut sources = HashMap::new();
    for job in jobs {
        let source = match by_api.get(&job.api_url) {
            Some(source) => source.clone(),
            None => {
                let source: Arc<dyn Source> = Arc::new(
                    GitHubSource::new(&job.api_url, token)
                        .with_context(|| format!("job {}: api-url {}", job.name, job.api_url))?,
                );
                by_api.insert(job.api_url.clone(), source.clone());
                source
            }
        };
        sources.insert(job.name.clone(), source);
    }
    Ok(sources)
}
