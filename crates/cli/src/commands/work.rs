//! `repovault work` / `worker`: back up repositories from the SQS queue until SIGTERM.
//!
//! Each setting is resolved in one order: a flag (or its environment variable), then
//! the `--config` file, then the queue (its redrive policy's `maxReceiveCount` is the
//! number of attempts unless `retry.max-attempts` is configured, which may not exceed
//! it), then the default in `core::config::defaults`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use repovault_core::config::{Connection, defaults};
use repovault_core::ports::queue::Queue;
use repovault_core::retry::RetryPolicy;
use repovault_core::{GitHost, Target};
use repovault_worker::{WorkerConfig, WorkerDeps};

use crate::args::{
    AppArgs, DurationArg, InsecureHttpArg, RecipientArg, S3Args, check_concurrency, check_range,
    load_config_file_with, targets_of,
};
use crate::commands::shutdown_signal;
use crate::exit::InvalidConfig;
use crate::wiring::{
    allow_list, for_workers, load_token, open_githubs, open_queue, open_targets, seal_targets,
};

#[derive(Debug, Args)]
pub struct WorkArgs {
    /// The SQS queue to take jobs from (it must have a dead-letter queue).
    #[arg(long, env = "REPOVAULT_QUEUE_URL")]
    pub queue_url: String,
    /// A target this worker may write to (repeatable, or comma-separated). Messages
    /// naming any other target are dead-lettered.
    #[arg(
        long = "allow-target",
        value_name = "URL",
        env = "REPOVAULT_ALLOW_TARGETS",
        value_delimiter = ','
    )]
    pub allow_targets: Vec<String>,
    /// YAML config: its jobs' targets are allowed; its concurrency, retry, work-dir and
    /// token-file settings apply.
    #[arg(short, long, env = "REPOVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Jobs at once [default: the config's `concurrency`, else 4].
    #[arg(long, env = "REPOVAULT_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// How long a received job stays invisible to other workers; a heartbeat renews it
    /// every third of it.
    #[arg(long, env = "REPOVAULT_VISIBILITY_TIMEOUT", default_value_t = DurationArg(defaults::VISIBILITY_TIMEOUT))]
    pub visibility_timeout: DurationArg,
    /// On SIGTERM, how long running jobs may take before they are released.
    #[arg(long, env = "REPOVAULT_SHUTDOWN_GRACE", default_value_t = DurationArg(defaults::SHUTDOWN_GRACE))]
    pub shutdown_grace: DurationArg,
    /// Long-poll wait of one receive (at most 20 s, SQS's longest). On SIGTERM the poll
    /// in progress is allowed to finish, so shutdown takes at least this long.
    #[arg(long, env = "REPOVAULT_POLL_WAIT", default_value_t = DurationArg(defaults::POLL_WAIT))]
    pub poll_wait: DurationArg,
    /// Scratch space (LFS and verify-objects indexing, the fallback's clones)
    /// [default: the config's `work-dir`, else the system temp dir].
    #[arg(long, env = "REPOVAULT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// File holding the GitHub token [default: GITHUB_TOKEN].
    #[arg(long, value_name = "FILE", env = "REPOVAULT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The GitHub API of the --allow-target targets (GitHub Enterprise:
    /// https://HOST/api/v3). Jobs may back up repositories of its git host only, and
    /// the token goes there and nowhere else. Config jobs use their own `api-url`.
    #[arg(long, env = "GITHUB_API_URL", default_value = defaults::API_URL)]
    pub api_url: String,
    /// A GitHub App for the --allow-target targets (config jobs use their `auth:`);
    /// a worker serves any owner's jobs, so it needs --app-installation-id.
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub recipients: RecipientArg,
    #[command(flatten)]
    pub insecure: InsecureHttpArg,
    #[command(flatten)]
    pub s3: S3Args,
}

/// ECS task protection as the worker's busy observer.
struct Protection(repovault_aws::EcsTaskProtection);

impl repovault_worker::BusyObserver for Protection {
    fn set_busy(&self, busy: bool) {
        self.0.set(busy);
    }
}

pub async fn work(args: WorkArgs) -> anyhow::Result<ExitCode> {
    let insecure = args.insecure.allow_insecure_http;
    if let Some(n) = args.concurrency {
        check_concurrency(n)?;
    }
    // Flags first: they override the file's settings before it is validated.
    let mut configured_attempts = None;
    let config = args
        .config
        .as_deref()
        .map(|path| {
            load_config_file_with(path, |raw| {
                if insecure {
                    raw.allow_insecure_http = Some(true);
                }
                if args.concurrency.is_some() {
                    raw.concurrency = args.concurrency;
                }
                if args.work_dir.is_some() {
                    raw.work_dir = args.work_dir.clone();
                }
                if args.token_file.is_some() {
                    raw.token_file = args.token_file.clone();
                }
                configured_attempts = raw.retry.max_attempts;
            })
        })
        .transpose()?;
    check_range(
        "--visibility-timeout",
        args.visibility_timeout.0,
        defaults::MIN_VISIBILITY_TIMEOUT,
        defaults::MAX_VISIBILITY_TIMEOUT,
    )?;
    check_range(
        "--poll-wait",
        args.poll_wait.0,
        Duration::ZERO,
        defaults::MAX_POLL_WAIT,
    )?;
    let flag_host = GitHost::from_api_url(&args.api_url, insecure)
        .map_err(|reason| InvalidConfig(format!("--api-url: {reason}")))?;
    let flag_targets = targets_of("--allow-target", &args.allow_targets, None)?;
    let mut flag_connection = Connection::token(args.api_url.trim_end_matches('/'));
    if let Some(raw) = args.app.raw() {
        if raw.installation_id.is_none() {
            return Err(InvalidConfig(
                "--app-installation-id: a worker's --allow-target jobs may be any owner's: name the App's installation".into(),
            )
            .into());
        }
        let cwd = std::env::current_dir()?;
        let app = raw
            .resolve(&cwd, |field| {
                match field {
                    "auth.app-id" => "--app-id",
                    "auth.installation-id" => "--app-installation-id",
                    _ => "--app-key-file",
                }
                .to_owned()
            })
            .map_err(|e| InvalidConfig(e.to_string()))?;
        flag_connection.app = Some(app);
    }
    let flag_keys = args.recipients.keys()?;
    let flag_count = flag_targets.len();
    let mut entries: Vec<(Target, GitHost, Connection)> = flag_targets
        .into_iter()
        .map(|t| (t, flag_host.clone(), flag_connection.clone()))
        .collect();
    for job in config.iter().flat_map(|c| &c.jobs) {
        entries.push((job.target.clone(), job.git_host.clone(), job.connection()));
    }
    let targets: Vec<Target> = entries.iter().map(|(t, _, _)| t.clone()).collect();
    let mut retry = config
        .as_ref()
        .map_or_else(RetryPolicy::default, |c| c.retry);
    let concurrency = config
        .as_ref()
        .map_or(args.concurrency.unwrap_or(defaults::CONCURRENCY), |c| {
            c.concurrency
        });
    let metadata = config.as_ref().map(|c| c.metadata).unwrap_or_default();
    let git = config.as_ref().map(|c| c.git).unwrap_or_default();
    let (work_dir, token_file) = match &config {
        Some(c) => (c.work_dir.clone(), c.token_file.clone()),
        None => (args.work_dir, args.token_file),
    };
    if targets.is_empty() {
        return Err(InvalidConfig(
            "--allow-target: the worker needs at least one target it may write to (or --config)"
                .into(),
        )
        .into());
    }
    let token = load_token(token_file.as_deref())?;
    let queue = open_queue(&args.queue_url, args.visibility_timeout.0).await?;
    // The queue's redrive policy decides when SQS gives up: the worker's last attempt
    // (the one that records the failure) must come no later.
    let queue_attempts = queue.max_receive_count();
    retry.max_attempts = match configured_attempts {
        Some(n) if n > queue_attempts => {
            return Err(InvalidConfig(format!(
                "retry.max-attempts: {n} is more than the queue's maxReceiveCount ({queue_attempts}): SQS would dead-letter a job before its failure is recorded"
            ))
            .into());
        }
        Some(n) => n,
        None => queue_attempts,
    };
    let base = work_dir.unwrap_or_else(std::env::temp_dir);
    let mut cfg = WorkerConfig::new(
        repovault_worker::claim_work_dir(&base)
            .with_context(|| format!("work dir {}", base.display()))?,
    );
    cfg.concurrency = concurrency;
    cfg.retry = retry;
    cfg.data_full_every = metadata.full_every;
    cfg.git = git;
    cfg.visibility_timeout = args.visibility_timeout.0;
    cfg.shutdown_grace = args.shutdown_grace.0;
    cfg.poll_wait = args.poll_wait.0;
    let stores = open_targets(targets.iter(), &args.s3, config.as_ref()).await?;
    let githubs = open_githubs(
        entries.iter().map(|(_, _, c)| c.clone()),
        token.as_ref(),
        &metadata,
        for_workers,
    )?;
    let mut allow = allow_list(&stores, &githubs, entries.iter().map(|(t, h, c)| (t, h, c)));
    if flag_keys.seals() {
        for target in &targets[..flag_count] {
            allow.seal(target, flag_keys.clone());
        }
    }
    if let Some(config) = &config {
        seal_targets(&mut allow, &config.jobs)?;
    }
    let mut deps = WorkerDeps::new(Arc::new(queue) as Arc<dyn Queue>, allow);
    if let Some(protection) = repovault_aws::EcsTaskProtection::from_env() {
        tracing::info!("on ECS: the task is protected from scale-in while it holds jobs");
        deps.busy = Some(Arc::new(Protection(protection)));
    }
    tracing::info!(queue = %args.queue_url, allow = ?deps.allow, concurrency = cfg.concurrency, max_attempts = cfg.retry.max_attempts, "worker started");
    let work_dir = cfg.work_dir.clone();
    let summary = repovault_worker::run(cfg, deps, async {
        shutdown_signal().await;
        tracing::info!("shutdown requested: no new jobs");
    })
    .await;
    let _ = std::fs::remove_dir_all(&work_dir);
    tracing::info!(%summary, "worker stopped");
    Ok(ExitCode::SUCCESS)
}
