//! Turning configuration into concrete adapters.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use repovault_core::config::{JobSpec, defaults};
use repovault_core::ports::source::Source;
use repovault_core::ports::store::{Store, TargetStores};
use repovault_core::{Secret, StoreLocation, Target};
use repovault_github::GitHubSource;
use repovault_local::FsStore;

/// The GitHub token: from `token_file` if given, else `GITHUB_TOKEN`. `None` means
/// anonymous (public repositories only, 60 API requests an hour).
pub fn load_token(token_file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("token-file: cannot read {}", path.display()))?;
        let token = Secret::new(text);
        if token.expose().is_empty() {
            bail!("token-file: {} is empty", path.display());
        }
        return Ok(Some(token));
    }
    match std::env::var(defaults::TOKEN_ENV) {
        Ok(value) if !value.trim().is_empty() => Ok(Some(Secret::new(value))),
        _ => {
            tracing::warn!(
                "no GitHub token (set GITHUB_TOKEN or --token-file): public repositories only, 60 API requests an hour"
            );
            Ok(None)
        }
    }
}

/// Opens the store a target names.
pub fn open_store(target: &Target) -> anyhow::Result<Arc<dyn Store>> {
    match target.location() {
        StoreLocation::Local(path) => Ok(Arc::new(FsStore::new(path))),
        StoreLocation::S3 { bucket } => {
            bail!("target s3://{bucket}: S3 targets are not available in this build")
        }
    }
}

/// Opens every distinct target once.
pub fn open_targets<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
) -> anyhow::Result<TargetStores> {
    let mut stores = TargetStores::new();
    for target in targets {
        if stores.get(target).is_none() {
            stores.insert(target.clone(), open_store(target)?);
        }
    }
    Ok(stores)
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
