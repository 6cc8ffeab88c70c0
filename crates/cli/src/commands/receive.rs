//! `repovault receive`: GitHub webhooks in, single-repository backup jobs on the queue
//! out (`repovault_receiver`); with `--ui`, the status page and API on the same port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use repovault_core::Secret;
use repovault_core::config::JobSpec;
use repovault_core::ports::queue::Queue;
use repovault_receiver::{Receiver, ReceiverConfig};

use crate::args::{S3Args, SelectArgs, duration};
use crate::commands::serve::{StatusArgs, load_api_token, status_router};
use crate::commands::shutdown_signal;
use crate::exit::InvalidConfig;
use crate::wiring::{check_secret_strength, load_aws_secret, load_secret, open_queue};

/// Where the webhook secret is when no file is named.
const SECRET_ENV: &str = "REPOVAULT_WEBHOOK_SECRET";
/// Where the ARN of the webhook secret's Secrets Manager entry is.
const SECRET_ARN_ENV: &str = "REPOVAULT_WEBHOOK_SECRET_ARN";

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Which repositories are backed up, where and how: a config file or --org/--dest.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Address to listen on (GitHub posts to http://ADDRESS/webhook).
    #[arg(long, env = "REPOVAULT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The SQS queue jobs go to.
    #[arg(long, env = "REPOVAULT_QUEUE_URL")]
    pub queue_url: String,
    /// File holding the webhook's secret [default: REPOVAULT_WEBHOOK_SECRET].
    #[arg(long, value_name = "FILE", env = "REPOVAULT_WEBHOOK_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// AWS Secrets Manager secret (ARN or name) holding the webhook's secret, read
    /// once at start: the Lambda function's way, whose environment then holds no
    /// secret value.
    #[arg(
        long,
        value_name = "ARN",
        env = SECRET_ARN_ENV,
        conflicts_with = "secret_file"
    )]
    pub secret_arn: Option<String>,
    /// How long events for one repository coalesce into at most two jobs.
    #[arg(long, env = "REPOVAULT_DEBOUNCE", default_value = "60s", value_parser = duration)]
    pub debounce: Duration,
    /// Also serve the status page and read-only API (as `repovault serve`).
    #[arg(long)]
    pub ui: bool,
    #[command(flatten)]
    pub status: StatusArgs,
    #[command(flatten)]
    pub s3: S3Args,
}

/// The webhook's secret (from Secrets Manager, a file or the environment), checked
/// (see [`check_secret_strength`]).
async fn webhook_secret(args: &ReceiveArgs, real_github: bool) -> anyhow::Result<Secret> {
    if let Some(arn) = &args.secret_arn {
        let what = format!("--secret-arn (or {SECRET_ARN_ENV})");
        let secret = load_aws_secret(arn, &what).await?;
        check_secret_strength(&secret, &what, real_github)?;
        return Ok(secret);
    }
    let secret = load_secret(args.secret_file.as_deref(), SECRET_ENV, "--secret-file")?
        .ok_or_else(|| {
            InvalidConfig(format!(
                "--secret-file: the webhook secret is required (or {SECRET_ENV}, or --secret-arn); GitHub signs every delivery with it"
            ))
        })?;
    let what = match &args.secret_file {
        Some(_) => "--secret-file".to_owned(),
        None => SECRET_ENV.to_owned(),
    };
    check_secret_strength(&secret, &what, real_github)?;
    Ok(secret)
}

/// The receiver for `jobs`, ready to serve.
async fn receiver(
    args: &ReceiveArgs,
    secret: Secret,
    jobs: Vec<JobSpec>,
) -> anyhow::Result<Arc<Receiver>> {
    if args.debounce > Duration::from_secs(15 * 60) {
        return Err(InvalidConfig("--debounce: at most 15m (SQS's longest delay)".into()).into());
    }
    let queue = open_queue(
        &args.queue_url,
        repovault_core::config::defaults::VISIBILITY_TIMEOUT,
    )
    .await?;
    Ok(Arc::new(Receiver::new(
        ReceiverConfig {
            secret,
            jobs,
            debounce: args.debounce,
        },
        Arc::new(queue) as Arc<dyn Queue>,
    )))
}

pub async fn receive(args: ReceiveArgs) -> anyhow::Result<ExitCode> {
    let config = args.select.load(&[], |_| {})?;
    // Secrets are checked before anything is opened.
    let real_github = config
        .jobs
        .iter()
        .any(|j| j.api_url.starts_with("https://"));
    let secret = webhook_secret(&args, real_github).await?;
    let status = if args.ui {
        let token = load_api_token(&args.status, real_github)?;
        let targets: Vec<_> = config.jobs.iter().map(|j| j.target.clone()).collect();
        Some(status_router(&args.status, &targets, &args.s3, Some(&config), token).await?)
    } else {
        None
    };
    let receiver = receiver(&args, secret, config.jobs).await?;
    // In AWS Lambda (behind a Function URL): the runtime delivers the requests.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        tracing::info!("running as a Lambda function");
        repovault_receiver::lambda::run(receiver)
            .await
            .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let limits = repovault_receiver::server::ServerLimits::default();
    let mut app = repovault_receiver::server::router(receiver, &limits);
    if let Some(status) = status {
        app = app.merge(status);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    tracing::info!(listen = %args.listen, debounce_secs = args.debounce.as_secs(), ui = args.ui, "receiving GitHub webhooks at /webhook");
    repovault_receiver::server::serve(listener, app, &limits, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
