//! `repovault plan` / `planner`: list, filter, write the plan, enqueue on SQS.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Args;
use repovault_core::RunId;
use repovault_core::ports::queue::Queue;
use repovault_planner::{PlannerConfig, PlannerDeps};

use crate::args::{S3Args, SelectArgs};
use crate::out::outln;
use crate::wiring::{
    data_of, for_planner, load_token, open_githubs, open_queue, open_targets, sources_of,
};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The SQS queue jobs go to (required unless --dry-run).
    #[arg(long, env = "REPOVAULT_QUEUE_URL", required_unless_present = "dry_run")]
    pub queue_url: Option<String>,
    /// Run id (default: the UTC start time plus a random suffix). Planning an existing
    /// run id again enqueues nothing twice.
    #[arg(long, env = "REPOVAULT_RUN_ID")]
    pub run_id: Option<RunId>,
    /// Plan only this repository (repeatable), e.g. from a push webhook.
    #[arg(long = "repo", value_name = "OWNER/NAME")]
    pub repos: Vec<String>,
    /// List what would be enqueued and what is unchanged; write and enqueue nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Prints the run id on stdout (alone, for scripts); everything else goes to the log.
pub async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let mut only = Vec::new();
    for repo in &args.repos {
        match repo.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                only.push((owner.to_owned(), name.to_owned()));
            }
            _ => bail!("--repo {repo:?}: expected OWNER/NAME"),
        }
    }
    let owners: Vec<String> = only.iter().map(|(o, _)| o.clone()).collect();
    let config = args.select.load(&owners, |_| {})?;
    let run_id = args
        .run_id
        .unwrap_or_else(|| RunId::generate(jiff::Timestamp::now()));
    let token = load_token(config.token_file.as_deref())?;
    if args.dry_run {
        let targets = open_targets(
            config.jobs.iter().map(|j| &j.target),
            &args.s3,
            Some(&config),
        )
        .await?;
        return super::dry_run(&config, token.as_ref(), &targets, args.select.full).await;
    }
    let queue_url = args.queue_url.expect("clap requires it without --dry-run");
    let queue = open_queue(
        &queue_url,
        repovault_core::config::defaults::VISIBILITY_TIMEOUT,
    )
    .await?;
    let githubs = open_githubs(
        config.jobs.iter().map(|j| j.connection()),
        token.as_ref(),
        &config.metadata,
        for_planner,
    )?;
    let deps = PlannerDeps {
        sources: sources_of(&config.jobs, &githubs),
        data: data_of(&config.jobs, &githubs),
        targets: open_targets(
            config.jobs.iter().map(|j| &j.target),
            &args.s3,
            Some(&config),
        )
        .await?,
        queue: Arc::new(queue) as Arc<dyn Queue>,
        clock: std::sync::Arc::new(repovault_core::SystemClock),
    };
    let planned = repovault_planner::run(
        PlannerConfig {
            run_id: run_id.clone(),
            jobs: config.jobs,
            only,
            metadata: config.metadata,
        },
        &deps,
    )
    .await?;
    let total: usize = planned.iter().map(|p| p.plan.repos.len()).sum();
    let enqueued: usize = planned.iter().map(|p| p.enqueued).sum();
    tracing::info!(run = %run_id, planned = total, enqueued, "plan complete");
    outln!("{run_id}");
    Ok(ExitCode::SUCCESS)
}
