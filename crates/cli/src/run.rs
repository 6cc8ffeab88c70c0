//! `repovault run`: planner, workers and reporter in one process, on an in-process
//! queue with SQS's lease semantics.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use repovault_app::{EXIT_CONFIG, load_token, open_sources, open_targets};
use repovault_core::config::Config;
use repovault_core::ports::queue::Queue;
use repovault_core::{Progress, RunId};
use repovault_git::GitCredentials;
use repovault_local::MemoryQueue;
use repovault_planner::{PlannerConfig, PlannerDeps};
use repovault_worker::{WorkerConfig, WorkerDeps};

use crate::args::{RunArgs, name_keys_for};
use crate::progress::ProgressLine;

pub async fn run(args: RunArgs, _verbose: u8) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: invalid configuration:\n{message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match run_config(args, config).await {
        Ok(code) => code,
        Err(e) => repovault_app::config_error(&e),
    }
}

fn load_config(args: &RunArgs) -> Result<Config, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let (mut raw, origin) = args
        .select
        .raw_config(&cwd)
        .map_err(|e| indent(&e.to_string()))?;
    if args.concurrency.is_some() {
        raw.concurrency = args.concurrency;
    }
    if args.work_dir.is_some() {
        raw.work_dir = args.work_dir.clone();
    }
    raw.validate(&cwd)
        .map_err(|errors| indent(&name_keys_for(origin, errors).to_string()))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run_config(args: RunArgs, config: Config) -> anyhow::Result<ExitCode> {
    let run_id: RunId = match &args.run_id {
        Some(id) => id.parse().map_err(anyhow::Error::msg).context("--run-id")?,
        None => RunId::generate(jiff::Timestamp::now()),
    };
    let token = load_token(config.token_file.as_deref())?;
    let targets = open_targets(config.jobs.iter().map(|j| &j.target))?;
    let queue = Arc::new(MemoryQueue::new(
        repovault_core::config::defaults::VISIBILITY_TIMEOUT,
        config.retry.max_attempts,
    ));
    let progress = Arc::new(Progress::default());

    let planner_deps = PlannerDeps {
        sources: open_sources(&config.jobs, token.as_ref())?,
        targets: targets.clone(),
        queue: queue.clone() as Arc<dyn Queue>,
    };
    let plans = repovault_planner::run(
        PlannerConfig {
            run_id: run_id.clone(),
            jobs: config.jobs.clone(),
        },
        &planner_deps,
    )
    .await?;
    let planned: usize = plans.iter().map(|p| p.repos.len()).sum();
    progress.add_planned(planned as u64);
    tracing::info!(run = %run_id, planned, "run planned");

    let mut worker_cfg = WorkerConfig::new(
        config
            .work_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("repovault")),
    );
    worker_cfg.concurrency = config.concurrency;
    worker_cfg.retry = config.retry;
    let mut worker_deps = WorkerDeps::new(
        queue.clone() as Arc<dyn Queue>,
        targets.clone(),
        GitCredentials::new(token),
    );
    worker_deps.progress = progress.clone();
    let display = ProgressLine::start(progress.clone());
    let drained = queue.clone();
    let summary = repovault_worker::run(worker_cfg, worker_deps, async move {
        tokio::select! {
            _ = drained.drained() => {}
            _ = shutdown_signal() => tracing::warn!("interrupted: finishing running jobs, then stopping"),
        }
    })
    .await;
    drop(display);
    tracing::info!(?summary, "workers done");

    let dead = queue.dead_letters();
    for letter in &dead {
        tracing::error!(message_id = %letter.message_id, reason = %letter.reason, "dead-lettered");
    }
    let mut code = 0;
    for plan in &plans {
        let store = targets
            .get(&plan.target)
            .context("store for a planned target")?;
        let report = repovault_reporter::build(
            store.as_ref(),
            &plan.target,
            &run_id,
            Some(dead.len() as u64),
        )
        .await?;
        repovault_reporter::write(store.as_ref(), &report).await?;
        println!("{}", report.summary_line());
        for line in report.repos.iter().filter(|r| r.error.is_some()) {
            println!(
                "  failed {}/{}: {}",
                line.owner,
                line.name,
                line.error.as_deref().unwrap_or_default()
            );
        }
        let layout = repovault_core::Layout::new(&plan.target.prefix);
        println!("report: {}/{}", plan.target, layout.report_md(&run_id));
        code = code.max(report.exit_code());
    }
    Ok(ExitCode::from(code as u8))
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
