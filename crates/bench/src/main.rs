//! `repovault-bench`: measures repovault against the floor (`git clone --mirror` of
//! every repository, same concurrency) and the obvious script (clone → tar -czf →
//! upload, one repository at a time), on one generated fixture organization, in one
//! invocation, as ratios that hold on a noisy machine. Prints a table and writes JSON.
//!
//!     scripts/bench                    # release build, LocalStack for the S3 parts
//!     scripts/bench --smoke            # seconds: a tiny fixture, one run
//!     scripts/bench --scale            # 10,000 repositories, planner + 4 workers
//!     scripts/soak                     # 30 minutes of the fleet under faults, checked

mod fixture;
mod measure;
mod scale;
mod scenarios;
mod soak;
mod table;

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark repovault against the git clone floor and a sequential clone/tar/upload script"
)]
pub struct Args {
    /// Timed runs per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Concurrency for repovault and for the floor's clones.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Sizes (MiB) of the large repositories.
    #[arg(long, value_delimiter = ',', default_value = "200,100,50,25")]
    pub large_mb: Vec<usize>,
    /// Commits in each large repository.
    #[arg(long, default_value_t = 2000)]
    pub commits: usize,
    /// Tiny repositories besides the large ones.
    #[arg(long, default_value_t = 200)]
    pub tiny: usize,
    /// Repositories the planner lists and enqueues in the planner-scale scenario.
    #[arg(long, default_value_t = 10_000)]
    pub planner_repos: usize,
    /// Repositories in the data-beyond-git scenario, each with 50 issues of 5 comments.
    #[arg(long, default_value_t = 200)]
    pub data_repos: usize,
    /// Daily backups in the daily-chain scenario.
    #[arg(long, default_value_t = 30)]
    pub days: usize,
    /// LocalStack (or any S3 + SQS endpoint) for the distributed scenarios; skipped if
    /// unreachable.
    #[arg(
        long,
        env = "REPOVAULT_TEST_AWS_ENDPOINT",
        default_value = "http://127.0.0.1:4566"
    )]
    pub aws_endpoint: String,
    /// Only the scale runs: the planner listing `--planner-repos`; `--scale-repos` small
    /// repositories, the planner and `--scale-workers` worker processes on LocalStack;
    /// first, unchanged, 1 % pushed, 1 % with issue activity; requests per repository
    /// by kind and verb (the workers' warnings beside the `--json` file).
    #[arg(long)]
    pub scale: bool,
    #[arg(long, default_value_t = 10_000)]
    pub scale_repos: usize,
    #[arg(long, default_value_t = 4)]
    pub scale_workers: usize,
    /// Only the soak (see `soak.rs`): `--soak-repos` repositories (and `--soak-large`
    /// of 8 MiB) on LocalStack behind a fault-injecting proxy, the planner every
    /// `--soak-plan-every-secs`, `--soak-workers` workers, one SIGKILLed every
    /// `--soak-kill-every-secs`, for `--soak-secs`; then the end-of-run checks (a
    /// failed one fails the command). Logs beside the `--json` file.
    #[arg(long)]
    pub soak: bool,
    #[arg(long, default_value_t = 1000)]
    pub soak_repos: usize,
    #[arg(long, default_value_t = 2)]
    pub soak_large: usize,
    #[arg(long, default_value_t = 4)]
    pub soak_workers: usize,
    #[arg(long, default_value_t = 1800)]
    pub soak_secs: u64,
    #[arg(long, default_value_t = 300)]
    pub soak_plan_every_secs: u64,
    #[arg(long, default_value_t = 30)]
    pub soak_kill_every_secs: u64,
    /// A tiny fixture and one run: checks the harness, measures nothing meaningful.
    #[arg(long)]
    pub smoke: bool,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench-results.json")]
    pub json: PathBuf,
    /// Where the repovault binaries are [default: beside this one].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.runs = 1;
        args.large_mb = vec![2];
        args.commits = 50;
        args.tiny = 5;
        args.planner_repos = 300;
        args.data_repos = 10;
        args.days = 4;
    }
    if args.soak {
        return soak(&args).await;
    }
    let results = if args.scale {
        scenarios::run_scale(&args).await?
    } else {
        scenarios::run_all(&args).await?
    };
    println!("{}", table::render(&results));
    std::fs::write(&args.json, serde_json::to_vec_pretty(&results)?)?;
    println!("results written to {}", args.json.display());
    Ok(())
}

/// `--soak`: runs it, prints and writes its report; fails if a check failed.
async fn soak(args: &Args) -> anyhow::Result<()> {
    let bin_dir = scenarios::bin_dir(args)?;
    let ls = repovault_testkit::localstack::LocalStack::try_connect(&args.aws_endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("--soak needs LocalStack (scripts/soak starts it): {e}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("repovault-soak-")
        .tempdir()?;
    for (flag, value) in [
        ("--soak-repos", args.soak_repos as u64),
        ("--soak-workers", args.soak_workers as u64),
        ("--soak-secs", args.soak_secs),
        ("--soak-plan-every-secs", args.soak_plan_every_secs),
        ("--soak-kill-every-secs", args.soak_kill_every_secs),
    ] {
        anyhow::ensure!(value > 0, "{flag} must be at least 1");
    }
    let settings = soak::Settings {
        repos: args.soak_repos,
        large: args.soak_large,
        workers: args.soak_workers,
        duration: std::time::Duration::from_secs(args.soak_secs),
        plan_every: std::time::Duration::from_secs(args.soak_plan_every_secs),
        kill_every: std::time::Duration::from_secs(args.soak_kill_every_secs),
    };
    let logs = args.json.parent().unwrap_or(std::path::Path::new("."));
    let report = soak::run(&ls, &bin_dir, scratch.path(), settings, logs).await?;
    println!("{}", report.render());
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report)?)?;
    println!("results written to {}", args.json.display());
    anyhow::ensure!(report.passed(), "a soak check failed (above)");
    Ok(())
}
