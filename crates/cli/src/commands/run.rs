//! `repovault run`: planner, workers and reporter in one process, on an in-process
//! queue with SQS's lease semantics.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use repovault_core::config::defaults;
use repovault_core::ports::queue::Queue;
use repovault_core::{Progress, RunId};
use repovault_local::MemoryQueue;
use repovault_planner::{PlannerConfig, PlannerDeps};
use repovault_repository::Layout;
use repovault_worker::{WorkerConfig, WorkerDeps};

use crate::args::{S3Args, SelectArgs};
use crate::commands::shutdown_signal;
use crate::out::outln;
use crate::progress::ProgressLine;
use crate::wiring::{
    allow_list, data_of, for_planner, for_workers, load_token, open_githubs, open_notifiers,
    open_targets, seal_targets, sources_of,
};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Repositories backed up at once.
    #[arg(long, env = "REPOVAULT_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Run id (default: the UTC start time plus a random suffix).
    #[arg(long, env = "REPOVAULT_RUN_ID")]
    pub run_id: Option<RunId>,
    /// Where clones are made while archiving (default: the system temp dir).
    #[arg(long, env = "REPOVAULT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// List what would be backed up and what is unchanged; write and fetch nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = args.select.load(&[], |raw| {
        if args.concurrency.is_some() {
            raw.concurrency = args.concurrency;
        }
        if args.work_dir.is_some() {
            raw.work_dir = args.work_dir.clone();
        }
    })?;
    let run_id = args
        .run_id
        .unwrap_or_else(|| RunId::generate(jiff::Timestamp::now()));
    let token = load_token(config.token_file.as_deref())?;
    let targets = open_targets(
        config.jobs.iter().map(|j| &j.target),
        &args.s3,
        Some(&config),
    )
    .await?;
    if args.dry_run {
        return super::dry_run(&config, token.as_ref(), &targets, args.select.full).await;
    }
    // Opened first: a missing webhook URL is a configuration error, not a late surprise.
    let notify = open_notifiers(&config.notify).await?;
    let queue = Arc::new(MemoryQueue::new(
        defaults::VISIBILITY_TIMEOUT,
        config.retry.max_attempts,
    ));
    let progress = Arc::new(Progress::default());

    let connections = || config.jobs.iter().map(|j| j.connection());
    let planner_githubs =
        open_githubs(connections(), token.as_ref(), &config.metadata, for_planner)?;
    let planner_deps = PlannerDeps {
        sources: sources_of(&config.jobs, &planner_githubs),
        data: data_of(&config.jobs, &planner_githubs),
        targets: targets.clone(),
        queue: queue.clone() as Arc<dyn Queue>,
        clock: std::sync::Arc::new(repovault_core::SystemClock),
    };
    let planner_cfg = PlannerConfig {
        run_id: run_id.clone(),
        jobs: config.jobs.clone(),
        only: vec![],
        metadata: config.metadata,
    };
    let plans = repovault_planner::run(planner_cfg, &planner_deps).await?;
    progress.add_planned(plans.iter().map(|p| p.enqueued as u64).sum());

    let base = config.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let mut worker_cfg = WorkerConfig::new(
        repovault_worker::claim_work_dir(&base)
            .with_context(|| format!("work dir {}", base.display()))?,
    );
    worker_cfg.concurrency = config.concurrency;
    worker_cfg.retry = config.retry;
    worker_cfg.data_full_every = config.metadata.full_every;
    worker_cfg.git = config.git;
    let job_connections: Vec<_> = connections().collect();
    let mut allow = allow_list(
        &targets,
        &open_githubs(connections(), token.as_ref(), &config.metadata, for_workers)?,
        config
            .jobs
            .iter()
            .zip(&job_connections)
            .map(|(j, c)| (&j.target, &j.git_host, c)),
    );
    seal_targets(&mut allow, &config.jobs)?;
    let mut worker_deps = WorkerDeps::new(queue.clone() as Arc<dyn Queue>, allow);
    worker_deps.progress = progress.clone();
    let display = ProgressLine::start(progress.clone());
    let in_process = queue.clone();
    let summary = repovault_worker::run(worker_cfg, worker_deps, async move {
        tokio::select! {
            _ = in_process.drained() => {}
            _ = shutdown_signal() => tracing::warn!("interrupted: finishing running jobs, then stopping"),
        }
        in_process.close();
    })
    .await;
    drop(display);
    tracing::info!(%summary, "workers done");

    let dead = queue.dead_letters();
    for letter in &dead {
        tracing::error!(message_id = %letter.message_id, reason = %letter.reason, "dead-lettered");
    }
    let mut code = 0;
    for planned in &plans {
        let target = &planned.plan.target;
        let store = targets.get(target).context("store for a planned target")?;
        let mut report =
            repovault_reporter::build(store.as_ref(), target, &run_id, Some(dead.len() as u64))
                .await?;
        repovault_reporter::notify(store.as_ref(), &mut report, &notify).await;
        repovault_reporter::write(store.as_ref(), &report).await?;
        super::print_report(&report)?;
        outln!(
            "report: {}/{}",
            target,
            Layout::new(&target.prefix).report_md(&run_id)
        );
        code = code.max(report.exit_code());
    }
    Ok(ExitCode::from(code as u8))
}
