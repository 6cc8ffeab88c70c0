//! Turning configuration into concrete adapters.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_config_cache::aws;
use repovault_aws::{S3Store, SqsQueue};
use repovault_core::config::{JobSpec, MetadataSettings, defaults};
use repovault_core::ports::source::{RepoData, Source};
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

/// A worker's allow-list: each `(target, git host, API URL)`, with the target's store
/// from `stores` (which holds every target named) and the API from `github`.
pub fn allow_list<'a>(
    stores: &TargetStores,
    github: &GitHubs,
    entries: impl IntoIterator<Item = (&'a Target, &'a GitHost, &'a str)>,
) -> AllowList {
    let mut allow = AllowList::new();
    for (target, host, api_url) in entries {
        let store = stores.get(target).expect("every target is opened").clone();
        let data = github.get(api_url).map(|g| g.clone() as Arc<dyn RepoData>);
        allow.allow(target.clone(), store, host.clone(), data);
    }
    allow
}

/// One GitHub client per API URL, shared by every job on it.
pub type GitHubs = HashMap<String, Arc<GitHubSource>>;

/// Opens a client for each distinct API URL, set up by `role` ([`for_planner`] or
/// [`for_workers`]).
pub fn open_githubs<'a>(
    api_urls: impl IntoIterator<Item = &'a str>,
    token: Option<&Secret>,
    settings: &MetadataSettings,
    role: fn(GitHubSource) -> GitHubSource,
) -> anyhow::Result<GitHubs> {
    let mut githubs = GitHubs::new();
    for api_url in api_urls {
        if !githubs.contains_key(api_url) {
            let github =
                GitHubSource::new(api_url, token).with_context(|| format!("api-url {api_url}"))?;
            let github = role(github.max_in_flight(settings.requests_in_flight));
            githubs.insert(api_url.to_owned(), Arc::new(github));
        }
    }
    Ok(githubs)
}

/// The planner sits out any rate-limit wait (up to an hour): the listing must finish.
pub fn for_planner(github: GitHubSource) -> GitHubSource {
    github
}

/// A worker reads a repository's data beyond git: it never holds a job for a long
/// rate-limit wait (the data part is recorded incomplete and the next run continues)
/// and leaves 5% of the budget to the planner.
pub fn for_workers(github: GitHubSource) -> GitHubSource {
    github
        .max_rate_limit_wait(Duration::from_secs(300))
        .reserve(0.05)
}

/// Connects to the SQS queue and its dead-letter queue.
pub async fn open_queue(url: &str, visibility: Duration) -> anyhow::Result<SqsQueue> {
    SqsQueue::connect(repovault_aws::sqs_client(aws().await), url, visibility)
        .await
        .with_context(|| format!("--queue-url {url}"))
}

/// Each job's API for data beyond git: the client of its API URL in `githubs`.
pub fn data_of(jobs: &[JobSpec], githubs: &GitHubs) -> HashMap<String, Arc<dyn RepoData>> {
    jobs.iter()
        .map(|job| {
            let github = githubs[&job.api_url].clone() as Arc<dyn RepoData>;
            (job.name.clone(), github)
        })
        .collect()
}

/// Each job's source: the client of its API URL in `githubs`.
pub fn sources_of(jobs: &[JobSpec], githubs: &GitHubs) -> HashMap<String, Arc<dyn Source>> {
    jobs.iter()
        .map(|job| {
            let github = githubs[&job.api_url].clone() as Arc<dyn Source>;
            (job.name.clone(), github)
        })
        .collect()
}
