//! `--scale`: the planner alone listing and enqueueing 10,000 repositories, and an
//! organization of many small repositories (10,000 by default) on the
//! fake GitHub and LocalStack, backed up by the planner and worker processes, in four
//! runs: the first, one where nothing changed, one after pushes to 1 % of the
//! repositories, and one after issue activity only on another 1 %. Each run reports
//! its wall time and what it cost per repository: GitHub API requests (and how many
//! were free `304`s), git requests, store and queue requests by verb (counted by a
//! proxy in front of LocalStack), and each role's peak RSS.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use repovault_testkit::localstack::LocalStack;
use repovault_testkit::strict_s3::{StrictRules, StrictS3};
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec, fixtures};
use serde::Serialize;

use crate::fixture::TOKEN;
use crate::measure::{peak_rss, run_sampled};
use crate::scenarios::Scenario;

const ORG: &str = "scale";

/// What one run cost, per repository (totals divided by the repositories planned).
#[derive(Debug, Clone, Serialize)]
pub struct PerRepo {
    pub repos: usize,
    pub api_requests: f64,
    /// Of `api_requests`, answered `304 Not Modified` (free of the hourly budget).
    pub api_not_modified: f64,
    pub graphql_requests: f64,
    /// GraphQL's budget is of points (5,000 an hour for a token).
    pub graphql_points: f64,
    pub git_requests: f64,
    pub store_requests: f64,
    pub queue_requests: f64,
    /// The reporter's store requests, run after the workers (not in `store_requests`):
    /// its report is what the next run's hints rest on.
    pub reporter_store_requests: f64,
    /// Every S3 and SQS request by verb, per repository.
    pub by_verb: BTreeMap<String, f64>,
    /// Peak RSS (MiB) of each role so far: the planner's in this run, the workers'
    /// since they started.
    pub peak_rss_mb: BTreeMap<String, f64>,
}

/// Where the time and the requests of the four runs go.
pub async fn run(
    ls: &LocalStack,
    bin_dir: &Path,
    scratch: &Path,
    repos: usize,
    workers: usize,
    logs: &Path,
) -> anyhow::Result<Vec<Scenario>> {
    // What a run costs, not a token's hourly budgets: neither runs out here (at 200
    // repositories, four runs spend GraphQL's 5,000 points and pacing stretched the
    // last run from seconds to minutes; `graphql_points` says what a run needs).
    let github = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        rate_limit: Some(u64::MAX / 2),
        graphql_rate_limit: Some(u64::MAX / 2),
        ..Default::default()
    })
    .await?;
    github.add_org(ORG);
    let started = Instant::now();
    let names: Vec<String> = (0..repos).map(|i| format!("svc-{i:05}")).collect();
    for name in &names {
        fixtures::standard_repo(&github.repo_path(ORG, name), name);
        github.add_repo(RepoSpec::new(ORG, name).has_wiki(false));
    }
    // 1 % pushed to in the third run, another 1 % (with issues) commented on in the
    // fourth.
    let one_percent = (repos / 100).max(1);
    let pushed = &names[..one_percent];
    let commented = &names[one_percent..(2 * one_percent).min(repos)];
    for name in commented {
        let spec = MetadataSpec {
            issues: 3,
            comments_per_issue: 1,
            ..Default::default()
        };
        github.add_metadata(ORG, name, spec);
    }
    eprintln!(
        "scale: {repos} repositories generated in {:.0}s",
        started.elapsed().as_secs_f64()
    );

    let stack = ls.stack("scale", 5).await;
    let proxy = StrictS3::start(&stack.endpoint, StrictRules::every_feature()).await;
    let target = stack.target();
    let api = github.api_url();
    // Every S3 and SQS request through the counting proxy.
    let mut env = crate::scenarios::aws_env(&stack);
    for (name, value) in &mut env {
        if *name == "AWS_ENDPOINT_URL" {
            *value = proxy.endpoint.clone();
        }
    }
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The workers' warnings (rate-limit waits, retries) are kept in `logs`: what slowed
    // a run down is then in `scale-worker-<n>.log`.
    let mut fleet: Vec<tokio::process::Child> = (0..workers)
        .map(|n| {
            let log = std::fs::File::create(logs.join(format!("scale-worker-{n}.log")))?;
            tokio::process::Command::new(bin_dir.join("worker"))
                .args([
                    "--allow-target",
                    &target,
                    "--api-url",
                    &api,
                    "--allow-insecure-http",
                    "--concurrency",
                    "4",
                    "--poll-wait",
                    "1s",
                ])
                .envs(envs.iter().copied())
                .env(
                    "RUST_LOG",
                    std::env::var("REPOVAULT_BENCH_WORKER_LOG").unwrap_or("warn".into()),
                )
                .current_dir(scratch)
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
        })
        .collect::<Result<_, std::io::Error>>()?;

    let mut scenarios = Vec::new();
    for (run_id, what) in [
        ("first", "first run"),
        ("unchanged", "nothing changed"),
        ("pushed", "1 % pushed to"),
        ("commented", "1 % with issue activity only"),
    ] {
        match run_id {
            "pushed" => {
                for name in pushed {
                    let repo = git2::Repository::open(github.repo_path(ORG, name))?;
                    fixtures::commit(&repo, "main", &[("new.txt", b"pushed")], "a push");
                    github.touch(ORG, name);
                }
            }
            "commented" => {
                for name in commented {
                    github.add_issue_comment(ORG, name, 1, "new activity");
                }
            }
            _ => {}
        }
        let (github_before, store_before) = (github.stats(), proxy.served());
        let start = Instant::now();
        let planner_args = [
            "--org",
            ORG,
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--dest",
            &target,
            "--run-id",
            run_id,
        ];
        let (_, planner_rss) =
            run_sampled(&bin_dir.join("planner"), &planner_args, &envs, scratch).await?;
        let mut worker_rss = 0;
        loop {
            for worker in &mut fleet {
                if let Some(status) = worker.try_wait()? {
                    anyhow::bail!("a worker exited ({status}) during the {what} run");
                }
                worker_rss = worker_rss.max(worker.id().map_or(0, peak_rss));
            }
            let done = stack
                .keys(ls, &format!("runs/{run_id}/results/"))
                .await
                .len();
            if done >= repos {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let took = start.elapsed();
        let (github_after, store_after) = (github.stats(), proxy.served());
        // The report, which says whose data each run completed: the next run's
        // hints rest on it.
        let status = tokio::process::Command::new(bin_dir.join("reporter"))
            .args(["--run-id", run_id, "--target", &target])
            .envs(envs.iter().copied())
            .current_dir(scratch)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(
            status.code().is_some_and(|c| c <= 1),
            "the reporter failed ({status}) after the {what} run"
        );
        let reported = proxy.served();
        let reporter_requests: u64 = reported
            .iter()
            .filter(|(verb, _)| !verb.starts_with("SQS"))
            .map(|(verb, n)| n - store_after.get(verb).copied().unwrap_or(0))
            .sum();
        let per = |n: u64| n as f64 / repos as f64;
        let mut by_verb: BTreeMap<String, f64> = BTreeMap::new();
        for (verb, n) in &store_after {
            let n = n - store_before.get(verb).copied().unwrap_or(0);
            if n > 0 {
                by_verb.insert(verb.clone(), per(n));
            }
        }
        let sum = |sqs: bool| {
            by_verb
                .iter()
                .filter(|(v, _)| v.starts_with("SQS") == sqs)
                .map(|(_, n)| n)
                .sum::<f64>()
        };
        let figures = PerRepo {
            repos,
            api_requests: per(github_after.api_requests - github_before.api_requests),
            api_not_modified: per(github_after.api_not_modified - github_before.api_not_modified),
            graphql_requests: per(github_after.graphql_requests - github_before.graphql_requests),
            graphql_points: per(github_after.graphql_points - github_before.graphql_points),
            git_requests: per(github_after.git_requests - github_before.git_requests),
            store_requests: sum(false),
            queue_requests: sum(true),
            reporter_store_requests: per(reporter_requests),
            by_verb,
            peak_rss_mb: BTreeMap::from([
                ("planner".to_owned(), crate::scenarios::mb(planner_rss)),
                ("worker".to_owned(), crate::scenarios::mb(worker_rss)),
            ]),
        };
        eprintln!(
            "scale {what}: {:.1}s; per repository {:.2} API ({:.2} 304), {:.2} git, {:.2} store, {:.2} queue requests",
            took.as_secs_f64(),
            figures.api_requests,
            figures.api_not_modified,
            figures.git_requests,
            figures.store_requests,
            figures.queue_requests
        );
        let note = format!(
            "per repository: {:.2} API requests ({:.2} of them 304; {:.2} GraphQL, {:.1} points), {:.2} git, {:.2} store, {:.2} queue",
            figures.api_requests,
            figures.api_not_modified,
            figures.graphql_requests,
            figures.graphql_points,
            figures.git_requests,
            figures.store_requests,
            figures.queue_requests
        );
        let mut scenario = Scenario::new(
            &format!("scale: {repos} repositories, planner + {workers} workers, {what}"),
            vec![took],
            note,
        )
        .partial();
        scenario.scale = Some(figures);
        scenarios.push(scenario);
    }
    for worker in &mut fleet {
        let _ = worker.kill().await;
    }
    Ok(scenarios)
}

/// The planner listing `repos` repositories of one organization and enqueueing a job
/// for each, `runs` times.
pub async fn planner(
    ls: &LocalStack,
    bin_dir: &Path,
    scratch: &Path,
    repos: usize,
    runs: usize,
) -> anyhow::Result<Scenario> {
    let github = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await?;
    github.add_org("huge");
    for i in 0..repos {
        github.add_repo(RepoSpec::new("huge", &format!("service-{i:05}")).has_wiki(false));
    }
    let api = github.api_url();
    let mut took = Vec::new();
    for run in 0..runs {
        let stack = ls.stack("scale", 5).await;
        let env = crate::scenarios::aws_env(&stack);
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let target = stack.target();
        let args = [
            "--org",
            "huge",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--no-metadata",
            "--dest",
            &target,
            "--run-id",
            "scale",
        ];
        let (elapsed, _) = run_sampled(&bin_dir.join("planner"), &args, &envs, scratch).await?;
        took.push(elapsed);
        eprintln!(
            "planner scale run {}: {:.2}s",
            run + 1,
            elapsed.as_secs_f64()
        );
    }
    Ok(Scenario::new(
        &format!("planner: list + enqueue {repos} repositories"),
        took,
        format!(
            "{} API pages, {} SQS batches",
            repos.div_ceil(100),
            repos.div_ceil(10)
        ),
    )
    .partial())
}
