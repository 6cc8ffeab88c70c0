//! `repovault`: back up whole GitHub organizations to object storage.

mod args;
mod progress;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    repovault_app::init_logging(cli.log_format, cli.default_log_level());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return repovault_app::config_error(&e.into()),
    };
    runtime.block_on(async {
        match cli.command {
            args::Command::Run(run_args) => run::run(run_args, cli.verbose).await,
        }
    })
}
