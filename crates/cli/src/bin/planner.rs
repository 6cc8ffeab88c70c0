//! `planner`: the same as `repovault plan`.

use std::process::ExitCode;

use clap::Parser;
use repovault_cli::GlobalArgs;
use repovault_cli::commands::plan;

#[derive(Debug, Parser)]
#[command(
    name = "planner",
    version,
    about = "Lists and filters a GitHub organization's repositories, writes the run's plan and enqueues one backup job per repository on SQS"
)]
struct Cli {
    #[command(flatten)]
    args: plan::PlanArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    repovault_cli::start(&cli.global, plan::plan(cli.args))
}
