//! The measured scenarios, all on one fixture, in one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use repovault_core::ports::store::{ObjectMetadata, Store};
use repovault_local::FsStore;
use repovault_testkit::localstack::{LocalStack, Stack};
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, RepoSpec};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;

use crate::Args;
use crate::fixture::{self, Fixture, ORG, TOKEN, dir_bytes};
use crate::measure::{median, peak_rss, run_sampled};

#[derive(Debug, Serialize)]
pub struct Results {
    pub at: jiff::Timestamp,
    pub commit: Option<String>,
    pub machine: Machine,
    pub fixture: FixtureInfo,
    pub concurrency: usize,
    pub runs: usize,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub git: String,
}

#[derive(Debug, Serialize)]
pub struct FixtureInfo {
    pub repos: usize,
    pub large_mb: Vec<usize>,
    pub commits_per_large_repo: usize,
    pub tiny_repos: usize,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    /// Every timed run, seconds.
    pub runs_secs: Vec<f64>,
    pub median_secs: f64,
    pub vs_floor: Option<f64>,
    pub vs_baseline: Option<f64>,
    /// Bytes of the fixture's repositories per second of the median run.
    pub mb_per_sec: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    /// Bytes written to the store by one run.
    pub stored_bytes: Option<u64>,
    pub note: String,
    /// `--scale`: what the run cost per repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<crate::scale::PerRepo>,
    /// Backs up the whole fixture, so it compares with the floor and the baseline.
    #[serde(skip)]
    whole_fixture: bool,
}

impl Scenario {
    pub(crate) fn new(name: &str, runs: Vec<Duration>, note: impl Into<String>) -> Self {
        let median_secs = median(runs.clone()).as_secs_f64();
        Scenario {
            name: name.into(),
            runs_secs: runs.iter().map(Duration::as_secs_f64).collect(),
            median_secs,
            vs_floor: None,
            vs_baseline: None,
            mb_per_sec: None,
            peak_rss_mb: None,
            stored_bytes: None,
            note: note.into(),
            scale: None,
            whole_fixture: true,
        }
    }

    /// A scenario that does not back up the whole fixture.
    pub(crate) fn partial(mut self) -> Self {
        self.whole_fixture = false;
        self
    }
}

pub(crate) fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

pub(crate) fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Where the repovault binaries are: `--bin-dir`, else beside this one.
pub(crate) fn bin_dir(args: &Args) -> anyhow::Result<PathBuf> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .expect("exe dir")
            .to_owned(),
    };
    let repovault = bin_dir.join("repovault");
    anyhow::ensure!(
        repovault.exists(),
        "{} is missing: build with `cargo build --release --bins` (scripts/bench does)",
        repovault.display()
    );
    Ok(bin_dir)
}

/// `--scale` alone: the scale runs (LocalStack required), nothing else.
pub async fn run_scale(args: &Args) -> anyhow::Result<Results> {
    let bin_dir = bin_dir(args)?;
    let ls = LocalStack::try_connect(&args.aws_endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("--scale needs LocalStack (scripts/bench starts it): {e}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("repovault-bench-")
        .tempdir()?;
    let mut scenarios = vec![
        crate::scale::planner(&ls, &bin_dir, scratch.path(), args.planner_repos, args.runs).await?,
    ];
    scenarios.extend(
        crate::scale::run(
            &ls,
            &bin_dir,
            scratch.path(),
            args.scale_repos,
            args.scale_workers,
            args.json.parent().unwrap_or(Path::new(".")),
        )
        .await?,
    );
    Ok(Results {
        at: jiff::Timestamp::now(),
        commit: Some(command_output("git", &["rev-parse", "--short", "HEAD"]))
            .filter(|c| !c.is_empty()),
        machine: machine(),
        fixture: FixtureInfo {
            repos: args.scale_repos,
            large_mb: Vec::new(),
            commits_per_large_repo: 0,
            tiny_repos: args.scale_repos,
            bytes: 0,
        },
        concurrency: 4,
        runs: args.runs,
        scenarios,
    })
}

fn machine() -> Machine {
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: command_output("uname", &["-r"]),
        git: command_output("git", &["--version"]),
    }
}

pub async fn run_all(args: &Args) -> anyhow::Result<Results> {
    let bin_dir = bin_dir(args)?;
    let repovault = bin_dir.join("repovault");
    eprintln!(
        "building the fixture: large {:?} MiB × {} commits, {} tiny repositories",
        args.large_mb, args.commits, args.tiny
    );
    let fixture = fixture::build(&args.large_mb, args.commits, args.tiny).await?;
    eprintln!(
        "fixture: {} repositories, {:.0} MiB",
        fixture.repos.len(),
        mb(fixture.bytes)
    );
    let scratch = tempfile::Builder::new()
        .prefix("repovault-bench-")
        .tempdir()?;
    let ctx = Ctx {
        args,
        fixture: &fixture,
        repovault: &repovault,
        bin_dir: &bin_dir,
        scratch: scratch.path(),
    };

    let mut scenarios = Vec::new();
    let floor = ctx.floor().await?;
    let baseline = ctx.baseline().await?;
    let (full, unchanged) = ctx.repovault_local().await?;
    scenarios.extend([floor, baseline, full, unchanged]);
    scenarios.push(ctx.verify_objects_local().await?);
    scenarios.push(ctx.telemetry_local().await?);
    scenarios.extend(ctx.encryption_local().await?);
    scenarios.extend(ctx.rss_local().await?);
    scenarios.extend(ctx.data_beyond_git().await?);
    scenarios.extend(ctx.daily_chain().await?);
    match LocalStack::try_connect(&args.aws_endpoint).await {
        Ok(ls) => {
            scenarios.extend(ctx.distributed(&ls).await?);
            scenarios.push(ctx.push_latency(&ls).await?);
            scenarios.push(
                crate::scale::planner(&ls, &bin_dir, ctx.scratch, args.planner_repos, args.runs)
                    .await?,
            );
        }
        Err(e) => eprintln!("skipping the S3/SQS scenarios: {e} (scripts/bench starts LocalStack)"),
    }
    let floor_secs = scenarios[0].median_secs;
    let baseline_secs = scenarios[1].median_secs;
    for s in scenarios.iter_mut().filter(|s| s.whole_fixture) {
        s.vs_floor = Some(s.median_secs / floor_secs);
        s.vs_baseline = Some(s.median_secs / baseline_secs);
        s.mb_per_sec = Some(mb(fixture.bytes) / s.median_secs);
    }
    Ok(Results {
        at: jiff::Timestamp::now(),
        commit: Some(command_output("git", &["rev-parse", "--short", "HEAD"]))
            .filter(|c| !c.is_empty()),
        machine: machine(),
        fixture: FixtureInfo {
            repos: fixture.repos.len(),
            large_mb: args.large_mb.clone(),
            commits_per_large_repo: args.commits,
            tiny_repos: args.tiny,
            bytes: fixture.bytes,
        },
        concurrency: args.concurrency,
        runs: args.runs,
        scenarios,
    })
}

struct Ctx<'a> {
    args: &'a Args,
    fixture: &'a Fixture,
    repovault: &'a Path,
    bin_dir: &'a Path,
    scratch: &'a Path,
}

async fn git_mirror(url: &str, dest: &Path) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("git")
        .args(["clone", "--mirror", "--quiet", url])
        .arg(dest)
        .status()
        .await?;
    anyhow::ensure!(status.success(), "git clone --mirror {url} failed");
    Ok(())
}

impl Ctx<'_> {
    fn fresh(&self, name: &str) -> PathBuf {
        let dir = self
            .scratch
            .join(format!("{name}-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn api(&self) -> String {
        self.fixture.github.api_url()
    }

    /// `git clone --mirror` of every repository, `concurrency` at a time.
    async fn floor(&self) -> anyhow::Result<Scenario> {
        let mut runs = Vec::new();
        for run in 0..self.args.runs {
            let dir = self.fresh("floor");
            let slots = Arc::new(Semaphore::new(self.args.concurrency));
            let start = Instant::now();
            let mut clones = tokio::task::JoinSet::new();
            for name in &self.fixture.repos {
                let url = self.fixture.github.clone_url(ORG, name);
                let dest = dir.join(format!("{name}.git"));
                let slots = slots.clone();
                clones.spawn(async move {
                    let _slot = slots.acquire_owned().await?;
                    git_mirror(&url, &dest).await
                });
            }
            while let Some(done) = clones.join_next().await {
                done??;
            }
            runs.push(start.elapsed());
            eprintln!("floor run {}: {:.1}s", run + 1, runs[run].as_secs_f64());
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(Scenario::new(
            "floor: git clone --mirror",
            runs,
            format!("every repository, {} at a time", self.args.concurrency),
        ))
    }

    /// The obvious script: per repository, clone, `tar -czf`, upload; one at a time.
    async fn baseline(&self) -> anyhow::Result<Scenario> {
        let mut runs = Vec::new();
        let mut stored = 0;
        for run in 0..self.args.runs {
            let work = self.fresh("baseline-work");
            let store = FsStore::new(self.fresh("baseline-store"));
            let start = Instant::now();
            for name in &self.fixture.repos {
                let mirror = work.join(format!("{name}.git"));
                git_mirror(&self.fixture.github.clone_url(ORG, name), &mirror).await?;
                let archive = work.join(format!("{name}.tar.gz"));
                let status = tokio::process::Command::new("tar")
                    .arg("-czf")
                    .arg(&archive)
                    .arg("-C")
                    .arg(&work)
                    .arg(format!("{name}.git"))
                    .status()
                    .await?;
                anyhow::ensure!(status.success(), "tar failed");
                let file = tokio::fs::File::open(&archive).await?;
                let body = ReaderStream::with_capacity(file, 1 << 20).boxed();
                store
                    .put_stream(
                        &format!("repos/{ORG}/{name}.tar.gz"),
                        body,
                        &ObjectMetadata::new(),
                    )
                    .await?;
                std::fs::remove_dir_all(&mirror)?;
                std::fs::remove_file(&archive)?;
            }
            runs.push(start.elapsed());
            stored = dir_bytes(store.root());
            eprintln!("baseline run {}: {:.1}s", run + 1, runs[run].as_secs_f64());
            std::fs::remove_dir_all(store.root())?;
        }
        let mut s = Scenario::new(
            "baseline: clone → tar -czf → upload, sequential",
            runs,
            "one repository at a time, as a simple script does",
        );
        s.stored_bytes = Some(stored);
        Ok(s)
    }

    fn run_args<'b>(
        &'b self,
        dest: &'b str,
        run_id: &'b str,
        api: &'b str,
        concurrency: &'b str,
    ) -> Vec<&'b str> {
        vec![
            "run",
            "--org",
            ORG,
            "--api-url",
            api,
            "--allow-insecure-http",
            "--no-metadata",
            "--dest",
            dest,
            "--run-id",
            run_id,
            "--concurrency",
            concurrency,
        ]
    }

    /// `repovault run` to a local folder: a full run into a fresh folder, then the same
    /// again with nothing changed.
    async fn repovault_local(&self) -> anyhow::Result<(Scenario, Scenario)> {
        let api = self.api();
        let concurrency = self.args.concurrency.to_string();
        let env = [("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
        let (mut full, mut unchanged, mut rss) = (Vec::new(), Vec::new(), 0);
        let mut stored = 0;
        for run in 0..self.args.runs {
            let dest = self.fresh("local");
            let dest_text = dest.to_string_lossy().into_owned();
            let (took, peak) = run_sampled(
                self.repovault,
                &self.run_args(&dest_text, "full", &api, &concurrency),
                &env,
                self.scratch,
            )
            .await?;
            full.push(took);
            rss = rss.max(peak);
            stored = dir_bytes(&dest.join("repos"));
            let (took, _) = run_sampled(
                self.repovault,
                &self.run_args(&dest_text, "again", &api, &concurrency),
                &env,
                self.scratch,
            )
            .await?;
            unchanged.push(took);
            eprintln!(
                "repovault run {}: full {:.1}s, unchanged {:.2}s",
                run + 1,
                full[run].as_secs_f64(),
                unchanged[run].as_secs_f64()
            );
            std::fs::remove_dir_all(&dest)?;
        }
        let mut f = Scenario::new(
            "repovault run (local folder), full",
            full,
            "git only (--no-metadata): plan + ls-refs + one fetch per repository (protocol v2), pack streamed into a bundle + verify + records + report",
        );
        f.peak_rss_mb = Some(mb(rss));
        f.stored_bytes = Some(stored);
        let u = Scenario::new(
            "repovault run (local folder), unchanged",
            unchanged,
            "one ref listing per repository, nothing fetched or stored",
        );
        Ok((f, u))
    }

    /// What exporting traces and metrics costs: full runs with
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` set (an OTLP receiver in this process decodes
    /// everything) alternating with runs without, in the same loop.
    async fn telemetry_local(&self) -> anyhow::Result<Scenario> {
        let otlp = repovault_testkit::OtlpReceiver::start().await?;
        let api = self.api();
        let concurrency = self.args.concurrency.to_string();
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for run in 0..self.args.runs {
            for export in [false, true] {
                let dest = self.fresh("telemetry");
                let dest_text = dest.to_string_lossy().into_owned();
                let mut env = vec![("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
                if export {
                    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()));
                }
                let (took, _) = run_sampled(
                    self.repovault,
                    &self.run_args(&dest_text, "telemetry", &api, &concurrency),
                    &env,
                    self.scratch,
                )
                .await?;
                if export { &mut on } else { &mut off }.push(took);
                std::fs::remove_dir_all(&dest)?;
            }
            eprintln!(
                "telemetry run {}: off {:.1}s, on {:.1}s",
                run + 1,
                off[run].as_secs_f64(),
                on[run].as_secs_f64()
            );
        }
        anyhow::ensure!(!otlp.spans().is_empty(), "nothing was exported");
        let off_secs = median(off).as_secs_f64();
        let on_scenario =
            Scenario::new("repovault run (local folder), full, OTLP export on", on, "");
        let overhead = on_scenario.median_secs / off_secs - 1.0;
        Ok(Scenario {
            note: format!(
                "traces and metrics exported over OTLP/HTTP to a local receiver; export off in the same loop: {off_secs:.2}s, overhead {:+.1}%",
                overhead * 100.0
            ),
            ..on_scenario
        })
    }

    /// What encryption at rest costs: full and unchanged runs with `--age-recipient`
    /// alternating with runs without, in the same loop; the overheads are the ratios
    /// of the medians.
    async fn encryption_local(&self) -> anyhow::Result<Vec<Scenario>> {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        let api = self.api();
        let concurrency = self.args.concurrency.to_string();
        let env = [("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
        let (mut on, mut off) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        for run in 0..self.args.runs {
            for sealed in [false, true] {
                let dest = self.fresh("encryption");
                let dest_text = dest.to_string_lossy().into_owned();
                for (i, run_id) in ["full", "again"].into_iter().enumerate() {
                    let mut args = self.run_args(&dest_text, run_id, &api, &concurrency);
                    if sealed {
                        args.extend(["--age-recipient", recipient.as_str()]);
                    }
                    let (took, _) = run_sampled(self.repovault, &args, &env, self.scratch).await?;
                    let into = if sealed { &mut on } else { &mut off };
                    into[i].push(took);
                }
                std::fs::remove_dir_all(&dest)?;
            }
            eprintln!(
                "encryption run {}: full off {:.1}s on {:.1}s, unchanged off {:.2}s on {:.2}s",
                run + 1,
                off[0][run].as_secs_f64(),
                on[0][run].as_secs_f64(),
                off[1][run].as_secs_f64(),
                on[1][run].as_secs_f64()
            );
        }
        let [full_on, unchanged_on] = on;
        let [full_off, unchanged_off] = off;
        let mut out = Vec::new();
        for (name, on, off) in [
            ("full", full_on, full_off),
            ("unchanged", unchanged_on, unchanged_off),
        ] {
            let off_secs = median(off).as_secs_f64();
            let scenario = Scenario::new(
                &format!("repovault run (local folder), {name}, encrypted (age)"),
                on,
                "",
            );
            let overhead = scenario.median_secs / off_secs - 1.0;
            out.push(Scenario {
                note: format!(
                    "links, LFS objects, data files and manifests' refs sealed to one age X25519 recipient; unencrypted in the same loop: {off_secs:.2}s, overhead {:+.1}%",
                    overhead * 100.0
                ),
                ..scenario
            });
        }
        Ok(out)
    }

    /// A full run with `git.verify-objects: true`: every pack also fed to `git
    /// index-pack --fsck-objects` as it streams. What the object-level checks cost.
    async fn verify_objects_local(&self) -> anyhow::Result<Scenario> {
        let env = [("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
        let mut runs = Vec::new();
        for run in 0..self.args.runs {
            let dest = self.fresh("verify-objects");
            let config = dest.join("repovault.yml");
            std::fs::write(
                &config,
                format!(
                    "allow-insecure-http: true\nconcurrency: {}\ngit: {{ verify-objects: true }}\njobs:\n  - source: {{ org: {ORG}, api-url: '{}' }}\n    target: '{}'\n    options: {{ metadata: false }}\n",
                    self.args.concurrency,
                    self.api(),
                    dest.join("backups").display()
                ),
            )?;
            let config = config.to_string_lossy().into_owned();
            let args = ["run", "--config", &config, "--run-id", "verify-objects"];
            let (took, _) = run_sampled(self.repovault, &args, &env, self.scratch).await?;
            runs.push(took);
            eprintln!("verify-objects run {}: {:.1}s", run + 1, took.as_secs_f64());
            std::fs::remove_dir_all(&dest)?;
        }
        Ok(Scenario::new(
            "repovault run (local folder), full, git.verify-objects",
            runs,
            "as the full run, every pack also checked object by object (git index-pack --fsck-objects on the stream)",
        ))
    }

    /// Peak RSS archiving one repository alone (the largest, then a smaller one): the
    /// memory a worker needs should not grow with the repository.
    async fn rss_local(&self) -> anyhow::Result<Vec<Scenario>> {
        let api = self.api();
        let env = [("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
        let mut out = Vec::new();
        let picks: Vec<&String> = self
            .fixture
            .repos
            .iter()
            .filter(|n| n.starts_with("large-"))
            .take(2)
            .collect();
        for name in picks {
            let dest = self.fresh("rss");
            let dest_text = dest.to_string_lossy().into_owned();
            let pattern = format!("^{name}$");
            let mut a = self.run_args(&dest_text, "rss", &api, "1");
            a.extend(["--pattern", &pattern]);
            let (took, peak) = run_sampled(self.repovault, &a, &env, self.scratch).await?;
            let size = dir_bytes(&self.fixture.github.repo_path(ORG, name));
            let mut s = Scenario::new(
                &format!("peak RSS: repovault run, {name} alone"),
                vec![took],
                format!("repository {:.0} MiB", mb(size)),
            )
            .partial();
            s.peak_rss_mb = Some(mb(peak));
            out.push(s);
            std::fs::remove_dir_all(&dest)?;
        }
        Ok(out)
    }

    /// Push to backup: a warm worker and the receiver on LocalStack; for each of the
    /// smallest repositories, a commit, then its signed `push` webhook; timed from the
    /// delivery until the event's result record exists. Reports p50 (and the max).
    async fn push_latency(&self, ls: &LocalStack) -> anyhow::Result<Scenario> {
        const SECRET: &str = "bench-webhook-secret";
        let stack = ls.stack("push", 5).await;
        let env = self.aws_env(&stack);
        let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        envs.push(("REPOVAULT_WEBHOOK_SECRET", SECRET));
        let (api, target) = (self.api(), stack.target());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let spawn = |role: &str, args: &[&str]| {
            tokio::process::Command::new(self.role(role))
                .args(args)
                .envs(envs.iter().copied())
                .current_dir(self.scratch)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
        };
        let common = ["--api-url", &api, "--allow-insecure-http"];
        let _receiver = spawn(
            "receiver",
            &[
                &[
                    "--org",
                    ORG,
                    "--dest",
                    &target,
                    "--no-metadata",
                    "--listen",
                    &listen,
                ][..],
                &common[..],
            ]
            .concat(),
        )?;
        let _worker = spawn(
            "worker",
            &[
                &["--allow-target", &target, "--poll-wait", "20s"][..],
                &common[..],
            ]
            .concat(),
        )?;
        // The receiver is up when it answers; the worker is warm once it has backed up
        // one repository (below, not timed).
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(&listen).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the receiver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let small: Vec<&String> = self.fixture.repos.iter().rev().take(6).collect();
        let mut latencies = Vec::new();
        for (i, name) in small.iter().enumerate() {
            let path = self.fixture.github.repo_path(ORG, name);
            let repo = git2::Repository::open_bare(&path)?;
            repovault_testkit::fixtures::commit(
                &repo,
                "main",
                &[("push.txt", format!("{i}").as_bytes())],
                "push",
            );
            self.fixture.github.touch(ORG, name);
            let repository: serde_json::Value = serde_json::from_str(
                &http_get(&format!("{api}/repos/{ORG}/{name}"), TOKEN).await?,
            )?;
            let body = serde_json::to_vec(&serde_json::json!({
                "ref": "refs/heads/main", "after": repo.refname_to_id("refs/heads/main")?.to_string(),
                "commits": [], "repository": repository,
            }))?;
            let signature =
                repovault_notify::signature(&repovault_core::Secret::new(SECRET), &body);
            // GitHub's delivery ids are GUIDs; the receiver takes no other, and names
            // the event's run after its first 8 characters.
            let delivery = format!("beec{i:04x}-0000-4000-8000-000000000000");
            let start = Instant::now();
            http_post(
                &format!("http://{listen}/webhook"),
                &[
                    ("x-github-event", "push"),
                    ("x-github-delivery", &delivery),
                    ("x-hub-signature-256", &signature),
                ],
                body,
            )
            .await?;
            loop {
                let done = stack.keys(ls, "runs/").await.iter().any(|k| {
                    k.contains(&format!("-{}/", &delivery[..8]))
                        && k.ends_with(&format!("/results/{ORG}/{name}.json"))
                });
                if done {
                    break;
                }
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(300),
                    "push {i} was not backed up"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The first one warms the worker (connections, capabilities): not counted.
            if i > 0 {
                latencies.push(start.elapsed());
            }
            eprintln!(
                "push {}: backed up {:.2}s after its webhook",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
        let max = latencies.iter().max().copied().unwrap_or_default();
        Ok(Scenario::new(
            "push to backup (receiver + one warm worker, LocalStack)",
            latencies,
            format!(
                "a signed push webhook until its event run's record exists; median of {} pushes to different repositories, max {:.2}s (target p50 ≤ 30 s)",
                small.len() - 1,
                max.as_secs_f64()
            ),
        )
        .partial())
    }

    fn role(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// Planner + 2 workers + records on LocalStack: full, then unchanged; and one
    /// worker's peak RSS on the largest repository.
    async fn distributed(&self, ls: &LocalStack) -> anyhow::Result<Vec<Scenario>> {
        let api = self.api();
        let per_worker = (self.args.concurrency / 2).max(1).to_string();
        let (mut full, mut unchanged) = (Vec::new(), Vec::new());
        let mut worker_rss = 0;
        for run in 0..self.args.runs {
            let stack = ls.stack("bench", 5).await;
            let env = self.aws_env(&stack);
            let target = stack.target();
            let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let mut workers: Vec<tokio::process::Child> = (0..2)
                .map(|_| {
                    tokio::process::Command::new(self.role("worker"))
                        .args([
                            "--allow-target",
                            &target,
                            "--api-url",
                            &api,
                            "--allow-insecure-http",
                            "--concurrency",
                            &per_worker,
                            "--poll-wait",
                            "1s",
                        ])
                        .envs(envs.iter().copied())
                        .current_dir(self.scratch)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .spawn()
                })
                .collect::<Result<_, _>>()?;
            for (run_id, into) in [("full", &mut full), ("again", &mut unchanged)] {
                let start = Instant::now();
                let planner_args = [
                    "--org",
                    ORG,
                    "--api-url",
                    &api,
                    "--allow-insecure-http",
                    "--no-metadata",
                    "--dest",
                    &target,
                    "--run-id",
                    run_id,
                ];
                run_sampled(&self.role("planner"), &planner_args, &envs, self.scratch).await?;
                let pids: Vec<u32> = workers.iter().filter_map(|w| w.id()).collect();
                loop {
                    for pid in &pids {
                        worker_rss = worker_rss.max(peak_rss(*pid));
                    }
                    for worker in &mut workers {
                        if let Some(status) = worker.try_wait()? {
                            anyhow::bail!(
                                "a worker exited ({status}) before run {run_id} was done"
                            );
                        }
                    }
                    if stack
                        .keys(ls, &format!("runs/{run_id}/results/"))
                        .await
                        .len()
                        == self.fixture.repos.len()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                into.push(start.elapsed());
            }
            eprintln!(
                "distributed run {}: full {:.1}s, unchanged {:.2}s",
                run + 1,
                full[run].as_secs_f64(),
                unchanged[run].as_secs_f64()
            );
            for w in &mut workers {
                let _ = w.kill().await;
            }
        }
        let mut f = Scenario::new(
            "planner + 2 workers on LocalStack S3/SQS, full",
            full,
            "until every record is written",
        );
        f.peak_rss_mb = Some(mb(worker_rss));
        let u = Scenario::new(
            "planner + 2 workers on LocalStack S3/SQS, unchanged",
            unchanged,
            "until every record is written",
        );
        Ok(vec![f, u])
    }

    fn aws_env(&self, stack: &Stack) -> Vec<(&'static str, String)> {
        aws_env(stack)
    }

    /// A full and an unchanged `repovault run` over an organization whose repositories
    /// have issues and comments, Actions settings, environments, alerts and
    /// discussions (tiny git repositories): what the data beyond git costs in time, API
    /// requests and GraphQL queries per repository, and the unchanged run's share of
    /// free `304`s.
    async fn data_beyond_git(&self) -> anyhow::Result<Vec<Scenario>> {
        const ISSUES: u32 = 50;
        const COMMENTS: u32 = 5;
        const DISCUSSIONS: u32 = 3;
        let github = FakeGitHub::start(FakeGitHubOptions {
            token: Some(TOKEN.into()),
            // The fake's budgets are not what is measured here: the requests are
            // counted. (With GraphQL's 5,000 points an hour, shared by the runs, the
            // second full run was paced for 14 minutes.)
            rate_limit: Some(u64::MAX / 2),
            graphql_rate_limit: Some(u64::MAX / 2),
            ..Default::default()
        })
        .await?;
        github.add_org("data");
        for i in 0..self.args.data_repos {
            let name = format!("project-{i:04}");
            repovault_testkit::fixtures::standard_repo(&github.repo_path("data", &name), &name);
            github.add_repo(RepoSpec::new("data", &name).has_wiki(false));
            github.add_metadata(
                "data",
                &name,
                repovault_testkit::MetadataSpec {
                    issues: ISSUES,
                    comments_per_issue: COMMENTS,
                    settings: true,
                    discussions: DISCUSSIONS,
                    ..Default::default()
                },
            );
        }
        let api = github.api_url();
        let concurrency = self.args.concurrency.to_string();
        let (mut full, mut unchanged) = (Vec::new(), Vec::new());
        let mut requests = [(0u64, 0u64, 0u64); 2];
        for run in 0..self.args.runs {
            let dest = self.fresh(&format!("data-{run}"));
            for (i, (run_id, into)) in [("full", &mut full), ("again", &mut unchanged)]
                .into_iter()
                .enumerate()
            {
                let before = github.stats();
                let args = [
                    "run",
                    "--org",
                    "data",
                    "--api-url",
                    &api,
                    "--allow-insecure-http",
                    "--dest",
                    dest.to_str().expect("utf-8 path"),
                    "--run-id",
                    run_id,
                    "--concurrency",
                    &concurrency,
                    "--log-format",
                    "json",
                ];
                let env = [("GITHUB_TOKEN", TOKEN)];
                let (took, _) = run_sampled(self.repovault, &args, &env, self.scratch).await?;
                let after = github.stats();
                requests[i] = (
                    after.api_requests - before.api_requests,
                    after.api_not_modified - before.api_not_modified,
                    after.graphql_requests - before.graphql_requests,
                );
                into.push(took);
            }
            eprintln!(
                "data beyond git run {}: full {:.2}s, unchanged {:.2}s",
                run + 1,
                full[run].as_secs_f64(),
                unchanged[run].as_secs_f64()
            );
        }
        let repos = self.args.data_repos;
        let note = |(requests, not_modified, graphql): (u64, u64, u64)| {
            let per = |n: u64| n as f64 / repos.max(1) as f64;
            format!(
                "{repos} repositories × {ISSUES} issues × {COMMENTS} comments, settings, alerts, {DISCUSSIONS} discussions: {requests} API requests ({:.1}/repository), {not_modified} answered 304 ({:.0}%), {graphql} GraphQL queries ({:.1}/repository)",
                per(requests),
                100.0 * not_modified as f64 / requests.max(1) as f64,
                per(graphql),
            )
        };
        Ok(vec![
            Scenario::new(
                "data beyond git: repovault run, full",
                full,
                note(requests[0]),
            )
            .partial(),
            Scenario::new(
                "data beyond git: repovault run, unchanged",
                unchanged,
                note(requests[1]),
            )
            .partial(),
        ])
    }

    /// An active repository with a long history backed up once a day for `days` days,
    /// a few commits touching a few files each day: what the chain stores against one
    /// full backup plus the new objects' own size (a pack of exactly them, made by
    /// git), and what restoring the last, longest chain costs against restoring a full
    /// backup of the same state.
    async fn daily_chain(&self) -> anyhow::Result<Vec<Scenario>> {
        const COMMITS_A_DAY: usize = 5;
        let github = FakeGitHub::start(FakeGitHubOptions {
            token: Some(TOKEN.into()),
            ..Default::default()
        })
        .await?;
        github.add_org("daily");
        let path = github.repo_path("daily", "active");
        let size_mb = *self.args.large_mb.last().unwrap_or(&25);
        let spec = repovault_testkit::history::HistorySpec::sized(size_mb, self.args.commits, 99);
        let generated = path.clone();
        tokio::task::spawn_blocking(move || repovault_testkit::history::generate(&generated, spec))
            .await??;
        github.add_repo(RepoSpec::new("daily", "active").has_wiki(false));
        let tips_before = refs_of(&path)?;
        let api = github.api_url();
        let dest = self.fresh("daily");
        let dest_text = dest.to_string_lossy().into_owned();
        let env = [("GITHUB_TOKEN", TOKEN), ("RUST_LOG", "warn")];
        let run = |run_id: String, full: bool| {
            let mut args: Vec<String> = [
                "run",
                "--org",
                "daily",
                "--api-url",
                &api,
                "--allow-insecure-http",
                "--no-metadata",
                "--dest",
                &dest_text,
                "--run-id",
                &run_id,
            ]
            .map(str::to_owned)
            .to_vec();
            if full {
                args.push("--full".into());
            }
            args
        };
        let mut daily = Vec::new();
        let mut first_link = 0;
        for day in 1..=self.args.days {
            if day > 1 {
                let repo = git2::Repository::open_bare(&path)?;
                for c in 0..COMMITS_A_DAY {
                    let file = format!("notes-{}.txt", (day * 7 + c) % 8);
                    let text = format!("day {day} change {c}\n").repeat(20);
                    repovault_testkit::fixtures::commit(
                        &repo,
                        "main",
                        &[(&file, text.as_bytes())],
                        "daily work",
                    );
                }
            }
            let args = run(format!("day-{day:02}"), false);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (took, _) = run_sampled(self.repovault, &args, &env, self.scratch).await?;
            daily.push(took);
            if day == 1 {
                first_link = dir_bytes(&dest.join("repos/daily/active/packs"));
            }
        }
        let stored = dir_bytes(&dest.join("repos/daily/active/packs"));
        let new_objects = new_objects_pack_bytes(&path, &tips_before)?;
        let ratio = stored as f64 / (first_link + new_objects) as f64;
        let latest: repovault_core::LatestPointer =
            serde_json::from_slice(&std::fs::read(dest.join("repos/daily/active/latest.json"))?)?;
        let chain_key = latest.backup.key;

        // Restore the longest chain, then a full backup of the same state.
        let args = run("full".into(), true);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_sampled(self.repovault, &args, &env, self.scratch).await?;
        let latest: repovault_core::LatestPointer =
            serde_json::from_slice(&std::fs::read(dest.join("repos/daily/active/latest.json"))?)?;
        let mut restores = Vec::new();
        for key in [&chain_key, &latest.backup.key] {
            let to = self.fresh("daily-restore").join("r");
            let args = [
                "restore",
                "daily/active",
                "--from",
                &dest_text,
                "--backup",
                key,
                "--to",
                to.to_str().expect("utf-8 path"),
            ];
            let (took, _) = run_sampled(self.repovault, &args, &env, self.scratch).await?;
            restores.push(took);
        }
        let days = self.args.days;
        let mut stored_scenario = Scenario::new(
            &format!("daily chain: {days} backups of an active repository"),
            vec![daily.iter().skip(1).sum::<Duration>() / (days.max(2) - 1) as u32],
            format!(
                "{COMMITS_A_DAY} commits a day; wall = a daily backup's mean; stored {:.1} MiB = {ratio:.2}× (one full backup {:.1} MiB + the new objects' own {:.2} MiB; target ≤ 1.2×)",
                mb(stored),
                mb(first_link),
                mb(new_objects)
            ),
        )
        .partial();
        stored_scenario.stored_bytes = Some(stored);
        let (chain, full) = (restores[0], restores[1]);
        let restore = Scenario::new(
            &format!("daily chain: restore of the {days}-link chain"),
            vec![chain],
            format!(
                "{:.2}× restoring a full backup of the same state ({:.2}s; target ≤ 2×)",
                chain.as_secs_f64() / full.as_secs_f64(),
                full.as_secs_f64()
            ),
        )
        .partial();
        Ok(vec![stored_scenario, restore])
    }
}

/// The environment of a planner or worker process on `stack`.
pub(crate) fn aws_env(stack: &Stack) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", stack.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("REPOVAULT_QUEUE_URL", stack.queue_url.clone()),
        ("GITHUB_TOKEN", TOKEN.into()),
        ("RUST_LOG", "warn".into()),
    ]
}

/// Every ref tip of a bare repository.
fn refs_of(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(repovault_git::read_refs(path)?
        .refs
        .iter()
        .map(|(_, oid)| oid.to_owned())
        .collect())
}

/// Bytes of a pack (made by git, deltas and all) of the objects the repository's refs
/// reach now that `before` did not: what new objects cost stored on their own.
fn new_objects_pack_bytes(path: &Path, before: &[String]) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut child = std::process::Command::new("git")
        .args(["pack-objects", "--revs", "--stdout", "--all"])
        .current_dir(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    for oid in before {
        writeln!(stdin, "^{oid}")?;
    }
    drop(stdin);
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "git pack-objects failed");
    Ok(out.stdout.len() as u64)
}

/// A GET with the token: the body.
async fn http_get(url: &str, token: &str) -> anyhow::Result<String> {
    let auth = format!("Bearer {token}");
    let (status, body) =
        repovault_testkit::http::request("GET", url, &[("authorization", &auth)], Vec::new()).await;
    anyhow::ensure!((200..300).contains(&status), "{url}: {status} {body}");
    Ok(body)
}

/// A POST: the body of a 2xx answer.
async fn http_post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> anyhow::Result<String> {
    let (status, text) = repovault_testkit::http::request("POST", url, headers, body).await;
    anyhow::ensure!((200..300).contains(&status), "{url}: {status} {text}");
    Ok(text)
}
