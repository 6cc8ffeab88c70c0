//! `reporter`: the same as `repovault report`.

use std::process::ExitCode;

use clap::Parser;
use repovault_cli::GlobalArgs;
use repovault_cli::commands::report;

#[derive(Debug, Parser)]
#[command(
    name = "reporter",
    version,
    about = "Accounts for every planned repository of a run and writes its report"
)]
struct Cli {
    #[command(flatten)]
    args: report::ReportArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    repovault_cli::start(&cli.global, report::report(cli.args))
}
