//! One module per command; each takes its parsed arguments and returns an exit code.

pub mod action;
pub mod ls;
pub mod plan;
pub mod prune;
pub mod receive;
pub mod rekey;
pub mod report;
pub mod restore;
pub mod restore_github;
pub mod run;
pub mod serve;
pub mod show;
pub mod verify;
pub mod work;

use crate::out::outln;
use repovault_reporter::Report;

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The summary line and every failed repository, on stdout.
pub(crate) fn print_report(report: &Report) -> anyhow::Result<()> {
    let t = &report.totals;
    // One JSON line per run: CloudWatch metric filters turn it into the run alarms.
    tracing::info!(run = %report.run_id, target = %report.target, planned = t.planned, ok = t.ok, unchanged = t.unchanged, failed = t.failed, missing = t.missing, "run reported");
    outln!("{}", report.summary_line());
    for line in report.repos.iter().filter(|r| r.error.is_some()) {
        outln!(
            "  failed {}/{}: {}",
            line.owner,
            line.name,
            line.error.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

/// `--dry-run` of `run` and `plan`: what a run would back up and what it would find
/// unchanged, from the listing and each repository's `latest.json`. Nothing is written,
/// fetched or enqueued.
pub(crate) async fn dry_run(
    config: &repovault_core::config::Config,
    token: Option<&repovault_core::Secret>,
    targets: &repovault_core::ports::store::TargetStores,
    full: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use crate::wiring::{for_planner, open_githubs, sources_of};
    let githubs = open_githubs(
        config.jobs.iter().map(|j| j.connection()),
        token,
        &config.metadata,
        for_planner,
    )?;
    let cfg = repovault_planner::PlannerConfig {
        run_id: repovault_core::RunId::generate(jiff::Timestamp::now()),
        jobs: config.jobs.clone(),
        only: vec![],
        metadata: config.metadata,
    };
    let previews =
        repovault_planner::preview(&cfg, &sources_of(&config.jobs, &githubs), targets, full)
            .await?;
    outln!(
        "{:<10} {:<50} {:<22} TARGET",
        "ACTION",
        "REPOSITORY",
        "LAST BACKUP"
    );
    for p in &previews {
        let action = match (p.would_back_up, p.last_backup) {
            (true, None) => "new",
            (true, Some(_)) => "back up",
            (false, _) => "unchanged",
        };
        let last = p.last_backup.map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
        );
        outln!(
            "{action:<10} {:<50} {last:<22} {}",
            p.repo.full_name(),
            p.target
        );
    }
    let changed = previews.iter().filter(|p| p.would_back_up).count();
    outln!(
        "dry run: {changed} to back up, {} unchanged; nothing was written",
        previews.len() - changed
    );
    Ok(std::process::ExitCode::SUCCESS)
}
