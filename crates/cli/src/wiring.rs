//! Turning configuration into concrete adapters.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_config_cache::aws;
use repovault_aws::{S3Store, SqsQueue};
use repovault_core::config::{
    Config, Connection, JobSpec, MetadataSettings, NotifyConfig, SecretSource, defaults,
};
use repovault_core::ports::notify::Notifier;
use repovault_core::ports::source::{RepoData, Source, TokenSource};
use repovault_core::ports::store::{Store, TargetStores};
use repovault_core::{GitHost, Secret, StoreLocation, Target};
use repovault_github::{AppCredentials, GitHubAuth, GitHubSource, Installation};
use repovault_local::FsStore;
use repovault_notify::{Slack, Webhook};
use repovault_reporter::NotifySettings;
use repovault_repository::Keys;
use repovault_worker::{AllowList, GitHubAccess};

use crate::args::{FromArgs, S3Args};
use crate::exit::InvalidConfig;

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
    load_secret(token_file, defaults::TOKEN_ENV, "token-file")
}

/// A secret from where the configuration says; `key` names it in errors (`auth.private-key`
/// → `auth.private-key-file: cannot read …`, `auth.private-key-env: X is not set`).
fn load_secret_from(source: &SecretSource, key: &str) -> anyhow::Result<Secret> {
    match source {
        SecretSource::File(path) => Ok(load_secret(Some(path), "", &format!("{key}-file"))?
            .expect("a file gives a secret or an error")),
        SecretSource::Env(var) => load_secret(None, var, "")?
            .ok_or_else(|| InvalidConfig(format!("{key}-env: {var} is not set")).into()),
    }
}

/// The channels `notify:` names, ready to send.
pub async fn open_notifiers(config: &NotifyConfig) -> anyhow::Result<NotifySettings> {
    let mut channels: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(url) = &config.slack {
        channels.push(Arc::new(Slack::new(load_secret_from(
            url,
            "notify.slack.url",
        )?)));
    }
    if let Some((url, secret)) = &config.webhook {
        let secret = secret
            .as_ref()
            .map(|s| load_secret_from(s, "notify.webhook.secret"))
            .transpose()?;
        channels.push(Arc::new(Webhook::new(
            load_secret_from(url, "notify.webhook.url")?,
            secret,
        )));
    }
    if let Some(arn) = &config.sns_topic_arn {
        channels.push(Arc::new(repovault_aws::SnsTopic::new(
            repovault_aws::sns_client(aws().await),
            arn,
        )));
    }
    Ok(NotifySettings::new(
        config.when,
        config.max_listed,
        channels,
    ))
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

/// A secret's value from AWS Secrets Manager; `key` names where its id came from.
pub async fn load_aws_secret(id: &str, key: &str) -> anyhow::Result<Secret> {
    repovault_aws::read_secret(&repovault_aws::secrets_client(aws().await), id)
        .await
        .with_context(|| key.to_owned())
}

/// The shortest webhook secret or API token accepted: a short one can be guessed
/// (an HMAC is only as strong as its key).
pub const MIN_SECRET_CHARS: usize = 16;

/// Secrets published with the docker-compose demo: fine against its fake GitHub,
/// never for a real one.
const DEMO_SECRETS: &[&str] = &[
    "demo-webhook-secret",
    "demo-api-token",
    "demo-status-api-token",
];

/// Refuses a webhook secret or API token shorter than [`MIN_SECRET_CHARS`], or one of
/// the demo's published values when `real_github` (a job reaches GitHub over https:
/// github.com, GHE.com or a GitHub Enterprise Server; the demo's fake GitHub is plain
/// http). `what` names the flag and the variable it came from.
pub fn check_secret_strength(
    secret: &Secret,
    what: &str,
    real_github: bool,
) -> Result<(), InvalidConfig> {
    let chars = secret.expose().chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(InvalidConfig(format!(
            "{what}: {chars} characters; at least {MIN_SECRET_CHARS} are needed (e.g. `openssl rand -hex 32`)"
        )));
    }
    if real_github && DEMO_SECRETS.contains(&secret.expose()) {
        return Err(InvalidConfig(format!(
            "{what}: the docker-compose demo's published value, refused against a real GitHub (an https API URL); set your own (e.g. `openssl rand -hex 32`)"
        )));
    }
    Ok(())
}

/// Opens the store a target names: an S3 bucket with its settings in `config`'s
/// `s3:`, else the command line's.
pub async fn open_store(
    target: &Target,
    s3: &S3Args,
    config: Option<&Config>,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match target.location() {
        StoreLocation::Local(path) => Arc::new(FsStore::new(path)),
        StoreLocation::S3 { bucket } => {
            let own = config.and_then(|c| c.s3.get(&bucket)).cloned();
            let settings = own.unwrap_or_default().or(&s3.settings()?);
            let client = repovault_aws::s3_client_for(aws().await, &settings)
                .map_err(|reason| InvalidConfig(format!("s3.{bucket}: {reason}")))?;
            Arc::new(
                S3Store::new(client, bucket)
                    .with_compat(repovault_aws::s3_compat(&settings))
                    .with_parts(s3.part_size_mb << 20, s3.parts_in_flight),
            )
        }
    })
}

/// Opens a target read by a command with `--from`/`--config`.
pub async fn open_from(from: &FromArgs, target: &Target) -> anyhow::Result<Arc<dyn Store>> {
    open_store(target, &from.s3, from.config()?.as_ref()).await
}

/// Opens every distinct target once.
pub async fn open_targets<'a>(
    targets: impl IntoIterator<Item = &'a Target>,
    s3: &S3Args,
    config: Option<&Config>,
) -> anyhow::Result<TargetStores> {
    let mut stores = TargetStores::new();
    for target in targets {
        if stores.get(target).is_none() {
            stores.insert(target.clone(), open_store(target, s3, config).await?);
        }
    }
    Ok(stores)
}

/// A worker's allow-list: each `(target, git host, connection)`, with the target's
/// store from `stores` (which holds every target named) and the connection's client
/// from `githubs` (which holds every connection named).
pub fn allow_list<'a>(
    stores: &TargetStores,
    githubs: &GitHubs,
    entries: impl IntoIterator<Item = (&'a Target, &'a GitHost, &'a Connection)>,
) -> AllowList {
    let mut allow = AllowList::new();
    for (target, host, connection) in entries {
        let store = stores.get(target).expect("every target is opened").clone();
        let github = githubs[connection].clone();
        let access = GitHubAccess {
            host: host.clone(),
            owner: connection.owner.as_ref().map(|o| o.login().to_owned()),
            tokens: github.clone() as Arc<dyn TokenSource>,
            data: Some(github as Arc<dyn RepoData>),
        };
        allow.allow(target.clone(), store, access);
    }
    allow
}

/// Seals what each job's workers write to its target to the job's recipients.
pub fn seal_targets(allow: &mut AllowList, jobs: &[JobSpec]) -> Result<(), InvalidConfig> {
    for (i, job) in jobs.iter().enumerate() {
        if !job.encryption.is_empty() {
            let keys = Keys::sealing(&job.encryption)
                .map_err(|e| InvalidConfig(format!("jobs[{i}].encryption: {e}")))?;
            allow.seal(&job.target, keys);
        }
    }
    Ok(())
}

/// One GitHub client per connection (API URL and who calls it), shared by every job
/// on it.
pub type GitHubs = HashMap<Connection, Arc<GitHubSource>>;

/// Opens a client for each distinct connection, set up by `role` ([`for_planner`] or
/// [`for_workers`]): the token's (anonymous without one) or a GitHub App's.
pub fn open_githubs(
    connections: impl IntoIterator<Item = Connection>,
    token: Option<&Secret>,
    settings: &MetadataSettings,
    role: fn(GitHubSource) -> GitHubSource,
) -> anyhow::Result<GitHubs> {
    let mut githubs = GitHubs::new();
    for connection in connections {
        if githubs.contains_key(&connection) {
            continue;
        }
        let auth = match &connection.app {
            None => {
                if token.is_none() {
                    tracing::warn!(api = %connection.api_url, "no GitHub token (set GITHUB_TOKEN or --token-file): public repositories only, 60 API requests an hour");
                }
                GitHubAuth::Token(token.cloned())
            }
            Some(app) => GitHubAuth::App(AppCredentials {
                app_id: app.app_id,
                private_key: load_secret_from(&app.private_key, "auth.private-key")?,
                installation: match (app.installation_id, &connection.owner) {
                    (Some(id), _) => Installation::Id(id),
                    (None, Some(owner)) => Installation::On(owner.clone()),
                    (None, None) => unreachable!("an App for any owner names its installation"),
                },
            }),
        };
        let github = GitHubSource::new(&connection.api_url, auth).map_err(|e| {
            let key = if connection.app.is_some() {
                "auth"
            } else {
                "api-url"
            };
            InvalidConfig(format!("{key}: {e}"))
        })?;
        let github = role(github.max_in_flight(settings.requests_in_flight));
        githubs.insert(connection, Arc::new(github));
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
        .max_rate_limit_wait(defaults::WORKER_MAX_RATE_LIMIT_WAIT)
        .reserve(0.05)
}

/// Connects to the SQS queue and its dead-letter queue.
pub async fn open_queue(url: &str, visibility: Duration) -> anyhow::Result<SqsQueue> {
    SqsQueue::connect(repovault_aws::sqs_client(aws().await), url, visibility)
        .await
        .with_context(|| format!("--queue-url {url}"))
}

/// Each job's API for data beyond git: the client of its connection in `githubs`.
pub fn data_of(jobs: &[JobSpec], githubs: &GitHubs) -> HashMap<String, Arc<dyn RepoData>> {
    jobs.iter()
        .map(|job| {
            let github = githubs[&job.connection()].clone() as Arc<dyn RepoData>;
            (job.name.clone(), github)
        })
        .collect()
}

/// Each job's source: the client of its connection in `githubs`.
pub fn sources_of(jobs: &[JobSpec], githubs: &GitHubs) -> HashMap<String, Arc<dyn Source>> {
    jobs.iter()
        .map(|job| {
            let github = githubs[&job.connection()].clone() as Arc<dyn Source>;
            (job.name.clone(), github)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_and_demo_ones_only_against_a_real_github() {
        let what = "--secret-file (or REPOVAULT_WEBHOOK_SECRET)";
        let err = check_secret_strength(&Secret::new("fifteen-chars-x"), what, false).unwrap_err();
        assert!(err.0.contains(what) && err.0.contains("16"), "{err}");
        assert!(check_secret_strength(&Secret::new("sixteen-chars-xx"), what, true).is_ok());
        for demo in ["demo-webhook-secret", "demo-status-api-token"] {
            assert!(check_secret_strength(&Secret::new(demo), what, false).is_ok());
            let err = check_secret_strength(&Secret::new(demo), what, true).unwrap_err();
            assert!(err.0.contains(what) && err.0.contains("demo"), "{err}");
        }
    }
}
