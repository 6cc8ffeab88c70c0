//! `worker`: the same as `repovault work`.

use std::process::ExitCode;

use clap::Parser;
use repovault_cli::GlobalArgs;
use repovault_cli::commands::work;

#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version,
    about = "Backs up repositories from the SQS queue: mirror, archive, upload, verify, record"
)]
struct Cli {
    #[command(flatten)]
    args: work::WorkArgs,
    #[command(flatten)]
    global: GlobalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    repovault_cli::start(&cli.global, work::work(cli.args))
}
