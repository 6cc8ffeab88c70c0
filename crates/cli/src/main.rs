//! `repovault`: back up whole GitHub organizations to object storage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use repovault_cli::GlobalArgs;
use repovault_cli::commands::{
    action, ls, plan, prune, receive, rekey, report, restore, run, serve, show, verify, work,
};

#[derive(Debug, Parser)]
#[command(
    name = "repovault",
    version,
    about = "Back up whole GitHub organizations to object storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan, back up and report in one process: the embedded default (a local folder
    /// or S3, an in-process queue; no AWS account needed for a folder).
    Run(run::RunArgs),
    /// List and filter repositories, write the plan, enqueue one job per repository
    /// on SQS (the `planner` binary).
    Plan(plan::PlanArgs),
    /// Back up repositories from the SQS queue until stopped (the `worker` binary).
    Work(work::WorkArgs),
    /// Account for every planned repository of a run (the `reporter` binary).
    Report(report::ReportArgs),
    /// Check archives against their manifests (size, SHA-256); with --restore-drill,
    /// prove they restore.
    Verify(verify::VerifyArgs),
    /// Restore a repository as a bare repository (and its wiki), optionally pushing it
    /// as a mirror to a new remote; or back into GitHub (--to-github, --to-github-org)
    /// with its issues, pull requests and releases.
    Restore(restore::RestoreArgs),
    /// Delete backups a retention policy no longer keeps.
    Prune(prune::PruneArgs),
    /// Re-encrypt stored backups to new age recipients (--identity opens them now,
    /// --to-recipients is what opens them after): headers rewritten, payloads untouched;
    /// resumable.
    Rekey(rekey::RekeyArgs),
    /// List backups, newest first.
    Ls(ls::LsArgs),
    /// Print a repository's backed-up issues, pull requests, comments, reviews, labels,
    /// milestones or releases.
    Show(show::ShowArgs),
    /// Receive GitHub webhooks and enqueue a backup of the repository that changed
    /// (the `receiver` role; --ui adds the status page).
    Receive(receive::ReceiveArgs),
    /// Serve the status page and the read-only API.
    Serve(serve::ServeArgs),
    /// Run as a GitHub Action: the step's INPUT_* variables become `run`'s flags; the
    /// report goes to the job summary, the counts to the step's outputs.
    Action,
}

fn main() -> ExitCode {
    // Invoked as `planner`, `worker` or `reporter` (a symlink): be that role.
    if let Some(code) =
        repovault_cli::roles::invoked_as().and_then(|name| repovault_cli::roles::run_role(&name))
    {
        return code;
    }
    let cli = Cli::parse();
    // Each role reports as itself; `run` and the rest as `repovault`.
    let service = match cli.command {
        Command::Plan(_) => "repovault-planner",
        Command::Work(_) => "repovault-worker",
        Command::Report(_) => "repovault-reporter",
        Command::Receive(_) => "repovault-receiver",
        _ => "repovault",
    };
    repovault_cli::start(&cli.global, service, async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Plan(args) => plan::plan(args).await,
            Command::Work(args) => work::work(args).await,
            Command::Report(args) => report::report(args).await,
            Command::Verify(args) => verify::verify(args).await,
            Command::Restore(args) => restore::restore(args).await,
            Command::Prune(args) => prune::prune(args).await,
            Command::Rekey(args) => rekey::rekey(args).await,
            Command::Ls(args) => ls::ls(args).await,
            Command::Show(args) => show::show(args).await,
            Command::Receive(args) => receive::receive(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Action => action::action().await,
        }
    })
}
