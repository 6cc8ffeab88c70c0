//! The distributed roles as standalone programs: `planner`, `worker`, `reporter`,
//! `receiver`.
//!
//! Each is its own binary, and `repovault` also becomes one when invoked under that
//! name (a symlink, as in the container image: one binary, four commands).

use std::process::ExitCode;

use clap::Parser;

use crate::GlobalArgs;
use crate::commands::{plan, receive, report, work};

#[derive(Debug, Parser)]
#[command(
    name = "planner",
    version,
    about = "Lists and filters a GitHub organization's repositories, writes the run's plan and enqueues one backup job per repository on SQS"
)]
struct PlannerCli {
    #[command(flatten)]
    args: plan::PlanArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version,
    about = "Backs up repositories from the SQS queue: mirror, archive, upload, verify, record"
)]
struct WorkerCli {
    #[command(flatten)]
    args: work::WorkArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Parser)]
#[command(
    name = "reporter",
    version,
    about = "Accounts for every planned repository of a run and writes its report"
)]
struct ReporterCli {
    #[command(flatten)]
    args: report::ReportArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Parser)]
#[command(
    name = "receiver",
    version,
    about = "Receives GitHub webhooks and enqueues a backup job for the repository that changed"
)]
struct ReceiverCli {
    #[command(flatten)]
    args: receive::ReceiveArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

/// Runs the role `name` with the process's arguments; `None` if `name` is no role.
pub fn run_role(name: &str) -> Option<ExitCode> {
    Some(match name {
        "planner" => {
            let cli = PlannerCli::parse();
            crate::start(&cli.global, "repovault-planner", plan::plan(cli.args))
        }
        "worker" => {
            let cli = WorkerCli::parse();
            crate::start(&cli.global, "repovault-worker", work::work(cli.args))
        }
        "receiver" => {
            let cli = ReceiverCli::parse();
            crate::start(
                &cli.global,
                "repovault-receiver",
                receive::receive(cli.args),
            )
        }
        "reporter" => {
            let cli = ReporterCli::parse();
            crate::start(&cli.global, "repovault-reporter", report::report(cli.args))
        }
        _ => return None,
    })
}

/// The file name this process was started as.
pub fn invoked_as() -> Option<String> {
    let arg0 = std::env::args_os().next()?;
    std::path::Path::new(&arg0)
        .file_name()?
        .to_str()
        .map(str::to_owned)
}
