//! `repovault report` / `reporter`: account for every planned repository of a run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use repovault_core::config::NotifyWhen;
use repovault_core::ports::queue::Queue;
use repovault_core::ports::store::Store;
use repovault_core::{RunId, Target};
use tokio::time::Instant;

use crate::args::{S3Args, duration, load_config_file, targets_of};
use crate::exit::InvalidConfig;
use crate::wiring::{open_notifiers, open_queue, open_store};

/// `--notify-when`.
fn notify_when(text: &str) -> Result<NotifyWhen, String> {
    match text {
        "failure" => Ok(NotifyWhen::Failure),
        "always" => Ok(NotifyWhen::Always),
        "changes" => Ok(NotifyWhen::Changes),
        other => Err(format!("{other:?}: use failure, always or changes")),
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to report on, or `latest` for the newest planned run.
    #[arg(long, env = "REPOVAULT_RUN_ID")]
    pub run_id: String,
    /// A target holding the run (repeatable, or comma-separated).
    #[arg(
        long = "target",
        value_name = "URL",
        env = "REPOVAULT_TARGETS",
        value_delimiter = ','
    )]
    pub targets: Vec<String>,
    /// YAML config: report on each of its jobs' targets.
    #[arg(short, long, env = "REPOVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The SQS queue, to wait while work remains and report the dead-letter depth.
    #[arg(long, env = "REPOVAULT_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Wait up to this long for every planned repository to be recorded.
    #[arg(long, env = "REPOVAULT_REPORT_WAIT", default_value = "0s", value_parser = duration)]
    pub wait: Duration,
    /// Publish how the run went to this SNS topic (besides the config's `notify:`).
    #[arg(long, value_name = "ARN", env = "REPOVAULT_NOTIFY_SNS")]
    pub notify_sns: Option<String>,
    /// When to notify: failure, always or changes [default: the config's, else failure].
    #[arg(long, value_name = "WHEN", env = "REPOVAULT_NOTIFY_WHEN", value_parser = notify_when)]
    pub notify_when: Option<NotifyWhen>,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.as_deref().map(load_config_file).transpose()?;
    let targets = targets_of("--target", &args.targets, config.as_ref())?;
    if targets.is_empty() {
        return Err(InvalidConfig(
            "--target: name the target holding the run (or --config)".into(),
        )
        .into());
    }
    let queue = match &args.queue_url {
        Some(url) => {
            Some(open_queue(url, repovault_core::config::defaults::VISIBILITY_TIMEOUT).await?)
        }
        None => None,
    };
    let mut notify = config
        .as_ref()
        .map(|c| c.notify.clone())
        .unwrap_or_default();
    if let Some(arn) = args.notify_sns {
        notify.sns_topic_arn = Some(arn);
    }
    if let Some(when) = args.notify_when {
        notify.when = when;
    }
    let notify = open_notifiers(&notify).await?;
    let deadline = Instant::now() + args.wait;
    let mut code = 0;
    for target in &targets {
        let store = open_store(target, &args.s3, config.as_ref()).await?;
        let run = resolve_run(store.as_ref(), target, &args.run_id).await?;
        let mut report = repovault_reporter::wait_for(
            store.as_ref(),
            target,
            &run,
            queue.as_ref().map(|q| q as &dyn Queue),
            deadline,
        )
        .await?;
        repovault_reporter::notify(store.as_ref(), &mut report, &notify).await;
        repovault_reporter::write(store.as_ref(), &report).await?;
        super::print_report(&report)?;
        code = code.max(report.exit_code());
    }
    Ok(ExitCode::from(code as u8))
}

/// `latest` is the run whose plan was created last.
async fn resolve_run(store: &dyn Store, target: &Target, run: &str) -> anyhow::Result<RunId> {
    if run != "latest" {
        return run
            .parse()
            .map_err(|reason: String| InvalidConfig(format!("--run-id: {reason}")).into());
    }
    Ok(repovault_reporter::latest_run(store, target).await?)
}
