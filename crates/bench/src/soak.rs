//! `--soak`: the distributed deployment left running under faults, then checked as a
//! user would check it. On the fake GitHub and LocalStack:
//!
//! - the planner every `--soak-plan-every-secs`, each run after pushes to 1 % of the
//!   repositories (the commit each got is remembered), and a reporter per run started
//!   with it (it waits for the run and writes the report the next runs' hints rest on);
//! - `--soak-workers` worker processes, one SIGKILLed every `--soak-kill-every-secs`
//!   and replaced at once (in turn, but for worker 0, whose RSS thus spans the soak);
//! - S3 answering `503`/`500` to 2 % of requests and SQS throttling 1 % (testkit's
//!   proxy in front of LocalStack, which every role goes through), git answering
//!   `502` to 1 % of fetches, GitHub App installation tokens living one minute;
//! - with each run, a burst of signed webhook deliveries into the receiver (five for
//!   each of another 1 % of the repositories, each pushed to first), so that every
//!   third of the soak sees the same work.
//!
//! Then, once the queue drained: every planner run and report succeeded; every
//! planned repository is accounted for in every run and none failed; no multipart
//! upload is left open; no repository has two backups from one run; the commit pushed
//! before each run (and before each webhook) is in the backup the run's record (an
//! event run's record, for a webhook) names; no role's RSS grew (median of the last
//! third of the soak within 10 % of the first third's; a planner's or reporter's
//! figure is its peak); the queue drained and the dead-letter queue is empty; no
//! worker or receiver exited on its own. A failed check fails the command (the JSON has every figure either way).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use repovault_core::{Manifest, ResultRecord};
use repovault_testkit::localstack::{LocalStack, Stack};
use repovault_testkit::strict_s3::{FaultCounts, Faults, StrictRules, StrictS3};
use repovault_testkit::{
    FakeApp, FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec, TEST_APP_PRIVATE_KEY, fixtures,
};
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::measure::{peak_rss, rss, run_sampled};

const ORG: &str = "soak";
const SECRET: &str = "soak-webhook-secret-7f3a9c2e5b1d";
/// Faults injected: S3 and SQS per thousand requests, and one git fetch in this many.
const FAULTS: Faults = Faults {
    s3_per_mille: 20,
    sqs_per_mille: 10,
};
const GIT_FAULT_EVERY: u64 = 100;
/// How long an App installation token lives.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A killed worker's jobs come back after this; a live worker extends its lease.
const VISIBILITY: &str = "15s";
/// How much a role's RSS may grow from the first third of the soak to the last.
const RSS_GROWTH: f64 = 0.10;
/// How long the runs may take to finish after the soak, and the queue to drain.
const DRAIN: Duration = Duration::from_secs(300);

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub repos: usize,
    /// Repositories of 8 MiB besides the small ones: their uploads are multipart.
    pub large: usize,
    pub workers: usize,
    #[serde(with = "secs")]
    pub duration: Duration,
    #[serde(with = "secs")]
    pub plan_every: Duration,
    #[serde(with = "secs")]
    pub kill_every: Duration,
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Everything the soak saw.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub at: jiff::Timestamp,
    pub commit: Option<String>,
    pub settings: Settings,
    pub runs: Vec<RunOutcome>,
    /// Workers SIGKILLed (each replaced).
    pub kills: usize,
    pub store_faults: FaultCounts,
    pub git_requests: u64,
    pub git_faults: u64,
    pub app_tokens_minted: usize,
    pub webhook_deliveries: usize,
    /// Median RSS (MiB) of each role over the first and the last third of the soak.
    pub rss_mb: BTreeMap<String, [f64; 2]>,
    pub checks: Vec<Check>,
}

/// One planned run, as its report has it.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub planned: usize,
    pub ok: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub missing: usize,
    /// Repositories pushed to just before the run.
    pub pushed: usize,
    /// GitHub API requests the run's jobs spent on the data beyond git.
    pub data_requests: u64,
    /// Repositories whose record is of a second or later delivery (a killed
    /// worker's job, or a fault's retry through the queue).
    pub redelivered: usize,
    /// From planning to the run's last record (as the store dates it).
    pub secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl SoakReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The report as lines for a terminal.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "soak: {} repositories ({} large), {} workers, {:.0} s; planner every {:.0} s, a worker killed every {:.0} s\n",
            s.repos,
            s.large,
            s.workers,
            s.duration.as_secs_f64(),
            s.plan_every.as_secs_f64(),
            s.kill_every.as_secs_f64()
        );
        out.push_str(&format!(
            "faults: {} of {} S3 requests, {} of {} SQS requests, {} of {} git requests; {} workers killed; {} App tokens; {} webhook deliveries\n",
            self.store_faults.s3_faults,
            self.store_faults.s3_requests,
            self.store_faults.sqs_faults,
            self.store_faults.sqs_requests,
            self.git_faults,
            self.git_requests,
            self.kills,
            self.app_tokens_minted,
            self.webhook_deliveries
        ));
        for run in &self.runs {
            out.push_str(&format!(
                "run {}: {} planned, {} ok, {} unchanged, {} failed, {} missing; {} pushed before; {} redelivered; {} API requests for data; done in {:.0} s\n",
                run.run_id,
                run.planned,
                run.ok,
                run.unchanged,
                run.failed,
                run.missing,
                run.pushed,
                run.redelivered,
                run.data_requests,
                run.secs
            ));
        }
        for (role, [first, last]) in &self.rss_mb {
            out.push_str(&format!(
                "RSS {role}: {first:.1} MiB (first third) → {last:.1} MiB (last third)\n"
            ));
        }
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!("{mark} {}: {}\n", check.name, check.detail));
        }
        out
    }
}

/// The roles' common ground: binaries, environment, where they run and log.
struct Fleet {
    bin_dir: PathBuf,
    scratch: PathBuf,
    logs: PathBuf,
    env: Vec<(&'static str, String)>,
    target: String,
    api: String,
}

impl Fleet {
    fn envs(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// `bin` with `args`, the fleet's environment and `env`, its stderr in
    /// `soak-<log>.log`, spawned (killed if dropped).
    fn spawn(
        &self,
        bin: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &str,
    ) -> std::io::Result<Child> {
        let stderr = std::fs::File::create(self.logs.join(format!("soak-{log}.log")))?;
        Command::new(self.bin_dir.join(bin))
            .args(args)
            .envs(self.envs())
            .envs(env.iter().copied())
            .current_dir(&self.scratch)
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
    }

    /// Worker number `n` (its log is `soak-worker-<n>.log`).
    fn worker(&self, n: usize) -> std::io::Result<Child> {
        let work = format!("work-{n}");
        self.spawn(
            "worker",
            &[
                "--allow-target",
                &self.target,
                "--api-url",
                &self.api,
                "--allow-insecure-http",
                "--concurrency",
                "2",
                "--poll-wait",
                "1s",
                "--visibility-timeout",
                VISIBILITY,
                "--part-size-mb",
                "5",
                "--work-dir",
                &work,
            ],
            &[],
            &format!("worker-{n}"),
        )
    }

    fn receiver(&self, listen: &str) -> std::io::Result<Child> {
        self.spawn(
            "receiver",
            &[
                "--org",
                ORG,
                "--dest",
                &self.target,
                "--api-url",
                &self.api,
                "--allow-insecure-http",
                "--listen",
                listen,
                "--debounce",
                "2s",
            ],
            &[("REPOVAULT_WEBHOOK_SECRET", SECRET)],
            "receiver",
        )
    }

    /// Plans `run_id`; its peak RSS.
    async fn plan(&self, run_id: &str) -> anyhow::Result<u64> {
        let args = [
            "--org",
            ORG,
            "--api-url",
            &self.api,
            "--allow-insecure-http",
            "--dest",
            &self.target,
            "--run-id",
            run_id,
        ];
        let (_, peak) = run_sampled(
            &self.bin_dir.join("planner"),
            &args,
            &self.envs(),
            &self.scratch,
        )
        .await?;
        Ok(peak)
    }

    /// The reporter of `run_id`, started as a deployment's scheduled reporter is: it
    /// waits (up to `limit`) for the run to finish and writes its report, which the
    /// next runs' hints rest on.
    fn reporter(&self, run_id: &str, limit: Duration) -> std::io::Result<Child> {
        let wait = format!("{}s", limit.as_secs());
        self.spawn(
            "reporter",
            &[
                "--run-id",
                run_id,
                "--target",
                &self.target,
                "--wait",
                &wait,
            ],
            &[],
            &format!("reporter-{run_id}"),
        )
    }
}

/// A run the soak planned, and its reporter.
struct Planned {
    id: String,
    /// When it was planned, and how far into the soak (seconds).
    at: jiff::Timestamp,
    offset: f64,
    /// Repositories pushed to just before.
    pushed: usize,
    reporter: Child,
    /// The reporter's peak RSS so far (it lives for its run).
    reporter_peak: u64,
}

/// Memory samples: (seconds since the start, role, bytes).
#[derive(Default)]
struct Samples(Vec<(f64, &'static str, u64)>);

impl Samples {
    /// The RSS of `pid` now, if it is running.
    fn add(&mut self, at: f64, role: &'static str, pid: u32) {
        let bytes = rss(pid);
        if bytes > 0 {
            self.0.push((at, role, bytes));
        }
    }

    /// Median MiB of each role over the first and the last third of `total` seconds.
    fn thirds(&self, total: f64) -> BTreeMap<String, [f64; 2]> {
        let mut windows: BTreeMap<&str, [Vec<f64>; 2]> = BTreeMap::new();
        for &(at, role, bytes) in &self.0 {
            let window = if at < total / 3.0 {
                0
            } else if at >= total * 2.0 / 3.0 {
                1
            } else {
                continue;
            };
            windows.entry(role).or_default()[window].push(crate::scenarios::mb(bytes));
        }
        windows
            .into_iter()
            .map(|(role, [first, last])| (role.to_owned(), [median(first), median(last)]))
            .collect()
    }
}

/// The median of `values` (0 for none): a process's first seconds, before it has
/// done any work, do not pull a window's figure down.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the soak (LocalStack at `ls`, binaries in `bin_dir`, logs into `logs`).
pub async fn run(
    ls: &LocalStack,
    bin_dir: &Path,
    scratch: &Path,
    settings: Settings,
    logs: &Path,
) -> anyhow::Result<SoakReport> {
    let github = FakeGitHub::start(FakeGitHubOptions {
        app: Some(FakeApp {
            app_id: 99,
            installation_id: 5,
            owner: ORG.into(),
            token_lifetime: TOKEN_LIFETIME,
        }),
        rate_limit: Some(u64::MAX / 2),
        graphql_rate_limit: Some(u64::MAX / 2),
        ..Default::default()
    })
    .await?;
    github.add_org(ORG);
    let mut names: Vec<String> = (0..settings.repos).map(|i| format!("svc-{i:05}")).collect();
    for name in &names {
        fixtures::standard_repo(&github.repo_path(ORG, name), name);
        github.add_repo(RepoSpec::new(ORG, name).has_wiki(false));
    }
    // 2 % with issue activity for the data beyond git.
    for name in names.iter().step_by(50) {
        let spec = MetadataSpec {
            issues: 2,
            comments_per_issue: 1,
            ..Default::default()
        };
        github.add_metadata(ORG, name, spec);
    }
    for i in 0..settings.large {
        let name = format!("large-{i}");
        fixtures::large_repo(&github.repo_path(ORG, &name), &name, 8 << 20);
        github.add_repo(RepoSpec::new(ORG, &name).has_wiki(false));
        names.push(name);
    }
    github.fail_every_nth_fetch(GIT_FAULT_EVERY, 502);

    let stack = ls.stack("soak", 5).await;
    let proxy = StrictS3::with_faults(&stack.endpoint, StrictRules::every_feature(), FAULTS).await;
    let mut env = crate::scenarios::aws_env(&stack);
    env.retain(|(name, _)| *name != "GITHUB_TOKEN");
    for (name, value) in &mut env {
        if *name == "AWS_ENDPOINT_URL" {
            *value = proxy.endpoint.clone();
        }
    }
    env.extend([
        ("GITHUB_APP_ID", "99".to_owned()),
        ("GITHUB_APP_INSTALLATION_ID", "5".to_owned()),
        ("GITHUB_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY.to_owned()),
    ]);
    let fleet = Fleet {
        bin_dir: bin_dir.to_owned(),
        scratch: scratch.to_owned(),
        logs: logs.to_owned(),
        env,
        target: stack.target(),
        api: github.api_url(),
    };

    let listen = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
        socket.local_addr()?.to_string()
    };
    let mut receiver = fleet.receiver(&listen)?;
    let mut workers: Vec<Child> = (0..settings.workers)
        .map(|n| fleet.worker(n))
        .collect::<Result<_, _>>()?;
    let mut spawned = settings.workers;

    let started = Instant::now();
    let mut samples = Samples::default();
    let mut runs: Vec<Planned> = Vec::new();
    // (run id or `event`, repository, the commit pushed).
    let mut pushes: Vec<(String, String, git2::Oid)> = Vec::new();
    let mut planner_failures = Vec::new();
    let mut exited = Vec::new();
    let mut kills = 0;
    let mut webhook_deliveries = 0;
    let one_percent = (settings.repos / 100).max(2);
    let mut next_plan = started;
    let mut next_kill = started + settings.kill_every;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < settings.duration {
        tick.tick().await;
        let now = Instant::now();
        let at = started.elapsed().as_secs_f64();
        if now >= next_plan {
            next_plan += settings.plan_every;
            let run_id = format!("soak-{:03}", runs.len() + 1);
            // Pushes before each run but the first, to a different 1 % each time.
            let pushed = if runs.is_empty() {
                Vec::new()
            } else {
                let from = (runs.len() * one_percent) % settings.repos;
                push(
                    &github,
                    &names[from..(from + one_percent).min(settings.repos)],
                    &run_id,
                )?
            };
            let count = pushed.len();
            pushes.extend(
                pushed
                    .into_iter()
                    .map(|(name, oid)| (run_id.clone(), name, oid)),
            );
            eprintln!("soak {at:.0}s: planning {run_id} ({count} pushed)");
            let planned_at = jiff::Timestamp::now();
            match fleet.plan(&run_id).await {
                Ok(peak) => samples.0.push((at, "planner", peak)),
                Err(e) => planner_failures.push(format!("{run_id}: {e:#}")),
            }
            runs.push(Planned {
                reporter: fleet.reporter(&run_id, settings.duration + DRAIN)?,
                id: run_id.clone(),
                at: planned_at,
                offset: at,
                pushed: count,
                reporter_peak: 0,
            });
            let from = (settings.repos / 2 + runs.len() * one_percent) % settings.repos;
            let burst = &names[from..(from + one_percent).min(settings.repos)];
            let pushed = push(&github, burst, "webhook")?;
            webhook_deliveries += deliver_burst(&github, &listen, &pushed).await?;
            pushes.extend(
                pushed
                    .into_iter()
                    .map(|(name, oid)| ("event".to_owned(), name, oid)),
            );
        }
        if now >= next_kill {
            next_kill += settings.kill_every;
            // Worker 0 is never killed: its RSS over the whole soak is a leak's
            // measure (the others live `workers - 1` kill intervals at most).
            let n = match workers.len() {
                1 => 0,
                len => 1 + kills % (len - 1),
            };
            workers[n].start_kill()?;
            workers[n].wait().await?;
            kills += 1;
            workers[n] = fleet.worker(spawned)?;
            spawned += 1;
        }
        for (n, worker) in workers.iter_mut().enumerate() {
            if let Some(status) = worker.try_wait()? {
                exited.push(format!("worker {n}: {status}"));
                *worker = fleet.worker(spawned)?;
                spawned += 1;
            } else if let Some(pid) = worker.id() {
                let role = if n == 0 && settings.workers > 1 {
                    "worker, never killed"
                } else {
                    "worker"
                };
                samples.add(at, role, pid);
            }
        }
        if let Some(status) = receiver.try_wait()? {
            exited.push(format!("receiver: {status}"));
            receiver = fleet.receiver(&listen)?;
        } else if let Some(pid) = receiver.id() {
            samples.add(at, "receiver", pid);
        }
        for run in &mut runs {
            if let Some(pid) = run.reporter.id() {
                run.reporter_peak = run.reporter_peak.max(peak_rss(pid));
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    eprintln!("soak {total:.0}s: waiting for the runs to finish");
    // A reporter's figure is its peak, at its run's start.
    samples.0.extend(
        runs.iter()
            .filter(|run| run.reporter_peak > 0)
            .map(|run| (run.offset, "reporter", run.reporter_peak)),
    );

    // Every run finished, as the reporter sees it (the workers still running).
    let mut outcomes = Vec::new();
    let mut reporter_failures = Vec::new();
    for Planned {
        id: run_id,
        at: planned_at,
        pushed,
        reporter,
        ..
    } in &mut runs
    {
        match reporter.wait().await?.code() {
            Some(0 | 1) => {}
            other => reporter_failures.push(format!("{run_id}: exit {other:?}")),
        }
        let key = format!("{}runs/{run_id}/report.json", stack.prefix);
        let Some(report) = read_json::<repovault_reporter::Report>(ls, &stack, &key).await else {
            reporter_failures.push(format!("{run_id}: no readable report.json"));
            continue;
        };
        let t = report.totals;
        let last = last_record_at(ls, &stack, run_id).await?;
        outcomes.push(RunOutcome {
            run_id: run_id.clone(),
            planned: t.planned,
            ok: t.ok,
            unchanged: t.unchanged,
            failed: t.failed,
            missing: t.missing,
            pushed: *pushed,
            data_requests: t.data_requests,
            redelivered: report
                .repos
                .iter()
                .filter(|r| r.attempt.is_some_and(|n| n > 1))
                .count(),
            secs: last.map_or(0.0, |last| last.duration_since(*planned_at).as_secs_f64()),
        });
    }
    // The webhooks' jobs: each pushed repository has an event run's record naming a
    // backup that holds the push.
    let event_pushes: Vec<&(String, String, git2::Oid)> =
        pushes.iter().filter(|(run, _, _)| run == "event").collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut manifests = all_manifests(ls, &stack).await?;
    let mut event_records = all_event_records(ls, &stack).await?;
    while Instant::now() < deadline
        && event_pushes
            .iter()
            .any(|(_, name, oid)| !in_event_backup(&github, &manifests, &event_records, name, *oid))
    {
        tokio::time::sleep(Duration::from_secs(2)).await;
        manifests = all_manifests(ls, &stack).await?;
        event_records = all_event_records(ls, &stack).await?;
    }
    // Nothing in flight when the workers go (a redelivery or a second event job
    // could still be writing): the queue drained, visible and leased.
    let deadline = Instant::now() + DRAIN;
    while stack.queue_depth(ls).await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let undrained = stack.queue_depth(ls).await;
    for worker in &mut workers {
        worker.start_kill()?;
        worker.wait().await?;
    }
    receiver.start_kill()?;

    let mut checks = Vec::new();
    let mut check = |name: &str, failures: Vec<String>, passed_detail: String| {
        checks.push(Check {
            name: name.into(),
            passed: failures.is_empty(),
            detail: if failures.is_empty() {
                passed_detail
            } else {
                failures.join("; ")
            },
        });
    };
    check(
        "every planner run and report succeeded",
        planner_failures
            .into_iter()
            .chain(reporter_failures)
            .collect(),
        format!("{} runs planned and reported", runs.len()),
    );
    check(
        "every planned repository accounted for in every run",
        outcomes
            .iter()
            .filter(|r| r.missing > 0 || r.planned != names.len())
            .map(|r| format!("{}: {} planned, {} missing", r.run_id, r.planned, r.missing))
            .collect(),
        format!("{} runs × {} repositories", outcomes.len(), names.len()),
    );
    check(
        "no repository failed",
        outcomes
            .iter()
            .filter(|r| r.failed > 0)
            .map(|r| format!("{}: {} failed", r.run_id, r.failed))
            .collect(),
        "0 failed".into(),
    );
    let open = stack.multipart_uploads(ls).await;
    check(
        "no orphan multipart upload",
        open.iter()
            .map(|key| format!("open upload of {key}"))
            .collect(),
        "0 open".into(),
    );
    let mut per_run: BTreeMap<(String, String), usize> = BTreeMap::new();
    for manifest in manifests.values() {
        *per_run
            .entry((manifest.repository.clone(), manifest.run_id.to_string()))
            .or_default() += 1;
    }
    check(
        "no duplicate backup (two manifests of one repository from one run)",
        per_run
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|((repo, run), n)| format!("{repo} has {n} backups from {run}"))
            .collect(),
        format!("{} manifests, one per repository and run", manifests.len()),
    );
    let mut lost = Vec::new();
    for (run_id, name, oid) in &pushes {
        let held = if run_id == "event" {
            in_event_backup(&github, &manifests, &event_records, name, *oid)
        } else {
            in_run_backup(ls, &stack, &github, &manifests, run_id, name, *oid).await
        };
        if !held {
            lost.push(format!("{name}: {oid} not in {run_id}'s backup"));
        }
    }
    check(
        "no lost commit (each run's backup holds the commit pushed before it)",
        lost,
        format!("{} pushes, each in its run's backup", pushes.len()),
    );
    let rss_mb = samples.thirds(total);
    check(
        "RSS of each role flat (last third within 10 % of the first)",
        rss_mb
            .iter()
            // A role seen in one third only has nothing to compare.
            .filter(|(_, [first, last])| *first > 0.0 && *last > first * (1.0 + RSS_GROWTH))
            .map(|(role, [first, last])| format!("{role}: {first:.1} → {last:.1} MiB"))
            .collect(),
        rss_mb
            .iter()
            .map(|(role, [first, last])| format!("{role} {first:.1} → {last:.1} MiB"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let none = |n: u64| match n {
        0 => Vec::new(),
        n => vec![format!("{n} messages")],
    };
    check("the queue drained", none(undrained), "0 messages".into());
    let dead = stack.dlq_depth(ls).await;
    check("dead-letter queue empty", none(dead), "0 messages".into());
    check(
        "no worker or receiver exited on its own",
        exited,
        format!("{spawned} workers started, {kills} of them killed"),
    );

    let stats = github.stats();
    Ok(SoakReport {
        at: jiff::Timestamp::now(),
        commit: Some(crate::scenarios::command_output(
            "git",
            &["rev-parse", "--short", "HEAD"],
        ))
        .filter(|c| !c.is_empty()),
        settings,
        runs: outcomes,
        kills,
        store_faults: proxy.fault_counts(),
        git_requests: stats.git_requests,
        git_faults: stats.git_faults_served,
        app_tokens_minted: stats.app_tokens_minted.len(),
        webhook_deliveries,
        rss_mb,
        checks,
    })
}

/// Commits to `main` of each of `names` (and tells the fake GitHub, which publishes
/// the push); the commits.
fn push(
    github: &FakeGitHub,
    names: &[String],
    tag: &str,
) -> anyhow::Result<Vec<(String, git2::Oid)>> {
    names
        .iter()
        .map(|name| {
            let repo = git2::Repository::open(github.repo_path(ORG, name))?;
            let content = format!("{tag} {}", jiff::Timestamp::now());
            let oid = fixtures::commit(&repo, "main", &[("soak.txt", content.as_bytes())], tag);
            github.touch(ORG, name);
            Ok((name.clone(), oid))
        })
        .collect()
}

/// Five signed `push` deliveries for each of `pushed`, all at once, into the receiver
/// at `listen`; how many it accepted.
async fn deliver_burst(
    github: &FakeGitHub,
    listen: &str,
    pushed: &[(String, git2::Oid)],
) -> anyhow::Result<usize> {
    let url = format!("http://{listen}/webhook");
    let repos = github.repo_refs(ORG);
    let mut deliveries = Vec::new();
    for (name, oid) in pushed {
        let repo = repos
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| anyhow::anyhow!("{name} is not listed"))?;
        for n in 0..5 {
            let payload = serde_json::json!({
                "ref": "refs/heads/main",
                "before": "0000000000000000000000000000000000000000",
                "after": oid.to_string(),
                "commits": [{"id": oid.to_string(), "message": format!("webhook {n}")}],
                "repository": {
                    "id": repo.id, "name": repo.name, "full_name": format!("{ORG}/{}", repo.name),
                    "owner": {"login": ORG}, "clone_url": repo.clone_url, "private": repo.private,
                    "default_branch": "main", "pushed_at": jiff::Timestamp::now().as_second(),
                    "size": repo.size_kb, "has_wiki": false, "archived": false, "fork": false,
                },
            });
            let body = serde_json::to_vec(&payload)?;
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes())?;
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let id = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                fastrand::u32(..),
                fastrand::u16(..),
                fastrand::u16(..),
                fastrand::u16(..),
                fastrand::u64(..1 << 48)
            );
            let url = url.clone();
            deliveries.push(async move {
                repovault_testkit::http::request(
                    "POST",
                    &url,
                    &[
                        ("x-github-event", "push"),
                        ("x-github-delivery", &id),
                        ("x-hub-signature-256", &signature),
                        ("content-type", "application/json"),
                    ],
                    body,
                )
                .await
            });
        }
    }
    let answers = futures::future::join_all(deliveries).await;
    let accepted = answers.iter().filter(|(status, _)| *status < 300).count();
    anyhow::ensure!(
        accepted == answers.len(),
        "the receiver refused deliveries: {:?}",
        answers
            .iter()
            .filter(|(status, _)| *status >= 300)
            .collect::<Vec<_>>()
    );
    Ok(accepted)
}

/// When the newest record of `run_id` was written, as the store dates it.
async fn last_record_at(
    ls: &LocalStack,
    stack: &Stack,
    run_id: &str,
) -> anyhow::Result<Option<jiff::Timestamp>> {
    let mut pages = ls
        .s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .prefix(format!("{}runs/{run_id}/results/", stack.prefix))
        .into_paginator()
        .send();
    let mut last = None;
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            if let Some(modified) = object.last_modified() {
                let at = jiff::Timestamp::from_second(modified.secs())?;
                last = last.max(Some(at));
            }
        }
    }
    Ok(last)
}

/// Every manifest in the store (read from LocalStack, not through the proxy), by key.
async fn all_manifests(
    ls: &LocalStack,
    stack: &Stack,
) -> anyhow::Result<BTreeMap<String, Manifest>> {
    let mut out = BTreeMap::new();
    for key in stack.keys(ls, "repos/").await {
        if key.ends_with(".manifest.json") {
            let manifest = serde_json::from_slice(&stack.get(ls, &key).await)
                .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
            out.insert(key, manifest);
        }
    }
    Ok(out)
}

/// Whether `main` in `manifest` is `oid` or a descendant of it.
fn holds(github: &FakeGitHub, name: &str, manifest: &Manifest, oid: git2::Oid) -> bool {
    let Some(tip) = manifest
        .refs
        .get("refs/heads/main")
        .and_then(|t| git2::Oid::from_str(t).ok())
    else {
        return false;
    };
    tip == oid
        || git2::Repository::open(github.repo_path(ORG, name))
            .and_then(|repo| repo.graph_descendant_of(tip, oid))
            .unwrap_or(false)
}

/// Whether the backup `record` names holds `oid`.
fn names_holding(
    github: &FakeGitHub,
    manifests: &BTreeMap<String, Manifest>,
    record: &ResultRecord,
    oid: git2::Oid,
) -> bool {
    record
        .backup
        .as_ref()
        .and_then(|b| manifests.get(&b.manifest_key))
        .is_some_and(|m| holds(github, &record.name, m, oid))
}

/// Whether an event run's record of `name` names a backup holding `oid`.
fn in_event_backup(
    github: &FakeGitHub,
    manifests: &BTreeMap<String, Manifest>,
    event_records: &[ResultRecord],
    name: &str,
    oid: git2::Oid,
) -> bool {
    event_records
        .iter()
        .any(|r| r.name == name && names_holding(github, manifests, r, oid))
}

/// Every record of the event runs (the webhooks' jobs).
async fn all_event_records(ls: &LocalStack, stack: &Stack) -> anyhow::Result<Vec<ResultRecord>> {
    let mut out = Vec::new();
    for key in stack.keys(ls, "runs/event-").await {
        if key.contains("/results/") {
            out.push(
                serde_json::from_slice(&stack.get(ls, &key).await)
                    .map_err(|e| anyhow::anyhow!("{key}: {e}"))?,
            );
        }
    }
    Ok(out)
}

/// Whether the backup `run_id`'s record of `name` names holds `oid`.
async fn in_run_backup(
    ls: &LocalStack,
    stack: &Stack,
    github: &FakeGitHub,
    manifests: &BTreeMap<String, Manifest>,
    run_id: &str,
    name: &str,
    oid: git2::Oid,
) -> bool {
    let key = format!("{}runs/{run_id}/results/{ORG}/{name}.json", stack.prefix);
    read_json::<ResultRecord>(ls, stack, &key)
        .await
        .is_some_and(|record| names_holding(github, manifests, &record, oid))
}

/// The JSON object at `key` (read from LocalStack directly); `None` if it is absent
/// or not a `T`.
async fn read_json<T: serde::de::DeserializeOwned>(
    ls: &LocalStack,
    stack: &Stack,
    key: &str,
) -> Option<T> {
    let body = stack.try_get(ls, key).await.ok()?;
    serde_json::from_slice(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_compared_between_the_first_and_the_last_third() {
        let mib = 1 << 20;
        let samples = Samples(vec![
            (0.0, "worker", 10 * mib),
            (1.0, "worker", 20 * mib),
            (5.0, "worker", 99 * mib),
            (7.0, "worker", 30 * mib),
            (8.9, "worker", 40 * mib),
            (2.0, "receiver", 5 * mib),
        ]);
        let thirds = samples.thirds(9.0);
        // Medians: of 10 and 20 (the upper one), and of 30 and 40.
        assert_eq!(thirds["worker"], [20.0, 40.0]);
        assert_eq!(thirds["receiver"], [5.0, 0.0]);
    }
}
