//! One module per command; each takes its parsed arguments and returns an exit code.

pub mod ls;
pub mod plan;
pub mod prune;
pub mod report;
pub mod restore;
pub mod run;
pub mod show;
pub mod verify;
pub mod work;

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
pub(crate) fn print_report(report: &Report) {
    println!("{}", report.summary_line());
    for line in report.repos.iter().filter(|r| r.error.is_some()) {
        println!(
            "  failed {}/{}: {}",
            line.owner,
            line.name,
            line.error.as_deref().unwrap_or_default()
        );
    }
}
