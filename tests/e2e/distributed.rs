//! Distributed mode: planner → SQS → worker processes → S3 → reporter, on LocalStack
//! and the fake GitHub, with faults: killed workers, SIGTERM, GitHub errors and rate
//! limits, poison messages, deleted repositories, duplicate deliveries.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use repovault_core::{Manifest, ResultRecord};
use repovault_reporter::{RepoStatus, Report};
use repovault_testkit::{
    FakeApp, FakeGitHub, FakeGitHubOptions, FaultStatus, RepoSpec, TEST_APP_PRIVATE_KEY,
    ThrottledProxy, fixtures, org,
};

use crate::procs::Proc;
use crate::support::*;
use repovault_testkit::localstack::{LocalStack, Stack, eventually};

/// One distributed deployment for one test.
struct Deployment {
    ls: LocalStack,
    stack: Stack,
    gh: FakeGitHub,
    dir: tempfile::TempDir,
    /// Environment every role gets beside the stack's.
    env: Vec<(String, String)>,
}

impl Deployment {
    async fn new(name: &str, max_receives: u32) -> Deployment {
        Deployment::with(name, max_receives, github().await, "", vec![]).await
    }

    /// A deployment whose one job (`acme`) has `job_extra` (YAML lines of the job,
    /// indented four spaces) and whose roles get `env`.
    async fn with(
        name: &str,
        max_receives: u32,
        gh: FakeGitHub,
        job_extra: &str,
        env: Vec<(String, String)>,
    ) -> Deployment {
        let ls = LocalStack::connect().await;
        let stack = ls.stack(name, max_receives).await;
        // One config for every role, as a deployment would mount it.
        let dir = deployment_dir(&gh, &stack.target(), job_extra);
        Deployment {
            ls,
            stack,
            gh,
            dir,
            env,
        }
    }

    fn spawn(&self, name: &str, bin: &str, args: &[&str]) -> Proc {
        let mut env = self.stack.env();
        env.extend(self.env.iter().cloned());
        Proc::spawn(name, bin, args, &env, self.dir.path())
    }

    /// Runs the planner to completion and returns the run id it printed.
    async fn plan(&self, run_id: &str, extra: &[&str]) -> String {
        let mut args = vec!["--config", "repovault.yml", "--run-id", run_id];
        args.extend_from_slice(extra);
        let mut planner = self.spawn(&format!("planner-{}", fastrand::u16(..)), "planner", &args);
        let status = planner.wait().await;
        assert!(status.success(), "planner failed: {}", planner.log());
        planner.stdout().trim().to_owned()
    }

    /// A worker with a 20 s visibility timeout and a 5 s shutdown grace.
    fn worker(&self, name: &str) -> Proc {
        self.worker_with(name, "20s", "5s")
    }

    fn worker_with(&self, name: &str, visibility: &str, grace: &str) -> Proc {
        self.worker_args(name, visibility, grace, &[])
    }

    /// A worker with the deployment's config and `extra` flags.
    fn worker_args(&self, name: &str, visibility: &str, grace: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "--config",
            "repovault.yml",
            "--visibility-timeout",
            visibility,
            "--shutdown-grace",
            grace,
            "--poll-wait",
            "2s",
            "--work-dir",
            "work",
        ];
        args.extend_from_slice(extra);
        self.spawn(name, "worker", &args)
    }

    /// Runs the reporter, waiting for the run to finish; returns its exit status and
    /// the report it wrote.
    async fn report(&self, run_id: &str) -> (ExitStatus, Report) {
        let mut reporter = self.spawn(
            "reporter",
            "reporter",
            &[
                "--config",
                "repovault.yml",
                "--run-id",
                run_id,
                "--wait",
                "300s",
            ],
        );
        let status = reporter.wait().await;
        let key = format!("{}runs/{run_id}/report.json", self.stack.prefix);
        let report = serde_json::from_slice(&self.stack.get(&self.ls, &key).await)
            .unwrap_or_else(|e| panic!("report.json: {e}\n{}", reporter.log()));
        (status, report)
    }

    async fn record(&self, run_id: &str, name: &str) -> ResultRecord {
        let key = format!(
            "{}runs/{run_id}/results/acme/{name}.json",
            self.stack.prefix
        );
        serde_json::from_slice(&self.stack.get(&self.ls, &key).await).unwrap()
    }

    /// The backups of `name`: their manifests' keys.
    async fn backups_of(&self, name: &str) -> Vec<String> {
        let mut keys = self
            .stack
            .keys(&self.ls, &format!("repos/acme/{name}/"))
            .await;
        keys.retain(|k| k.ends_with(".manifest.json"));
        keys
    }

    /// Downloads the single backup of `name` (its manifest and links, laid out as in
    /// the store), restores it by hand and checks it against the source.
    async fn verify(&self, name: &str) {
        let keys = self.backups_of(name).await;
        assert_eq!(keys.len(), 1, "{name}: {keys:?}");
        let tmp = tempfile::tempdir().unwrap();
        let manifest_path = self.stack.download(&self.ls, &keys[0], tmp.path()).await;
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
        std::fs::create_dir_all(tmp.path().join("packs")).unwrap();
        for link in manifest.all_bundles() {
            self.stack
                .download(&self.ls, &link.key, &tmp.path().join("packs"))
                .await;
        }
        let extracted = extract(&manifest_path);
        let bare = extracted.dir.path().join(format!("{name}.git"));
        assert_eq!(
            refs_of(&bare),
            refs_of(&self.gh.repo_path("acme", name)),
            "{name}: refs differ"
        );
        fsck(&bare);
    }

    /// SIGTERMs the workers; each must exit 0.
    async fn stop(&self, workers: &mut [Proc]) {
        for w in workers.iter() {
            w.signal(Signal::SIGTERM);
        }
        for w in workers.iter_mut() {
            let status = w.wait().await;
            assert!(status.success(), "{} exited {status}: {}", w.name, w.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_authenticated_as_a_github_app_back_up_lfs_objects_into_s3() {
    // No personal token anywhere: the App's installation tokens (10 s each) are all
    // the planner, the workers and the reporter have.
    let gh = FakeGitHub::start(FakeGitHubOptions {
        app: Some(FakeApp {
            app_id: 99,
            installation_id: 5,
            owner: "acme".into(),
            token_lifetime: Duration::from_secs(10),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    gh.add_org("acme");
    let (_, oids) = fixtures::lfs_repo(
        &gh.repo_path("acme", "assets"),
        &gh.lfs_path("acme", "assets"),
        1 << 20,
    );
    gh.add_repo(RepoSpec::new("acme", "assets").private());
    let names = org::standard_org(&gh, "acme", 3);
    let d = Deployment::with(
        "app-lfs",
        3,
        gh,
        "    options: { lfs: true }\n    auth: { app-id: 99, private-key-env: APP_KEY }\n",
        vec![
            ("GITHUB_TOKEN".into(), String::new()),
            ("APP_KEY".into(), TEST_APP_PRIVATE_KEY.into()),
        ],
    )
    .await;
    d.plan("app-1", &[]).await;
    // The planner reads the job's `auth:` from the config; the worker is started as
    // CloudFormation starts it: flags and environment only (`GITHUB_APP_ID`,
    // `GITHUB_APP_INSTALLATION_ID`, the key in `GITHUB_APP_PRIVATE_KEY`).
    let api = d.gh.api_url();
    let target = d.stack.target();
    let flags_worker = Proc::spawn(
        "worker-flags",
        "worker",
        &[
            "--allow-target",
            &target,
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--visibility-timeout",
            "20s",
            "--poll-wait",
            "2s",
            "--work-dir",
            "work",
        ],
        &[
            d.stack.env(),
            vec![
                ("GITHUB_TOKEN".into(), String::new()),
                ("GITHUB_APP_ID".into(), "99".into()),
                ("GITHUB_APP_INSTALLATION_ID".into(), "5".into()),
                ("GITHUB_APP_PRIVATE_KEY".into(), TEST_APP_PRIVATE_KEY.into()),
            ],
        ]
        .concat(),
        d.dir.path(),
    );
    let mut workers = vec![flags_worker];
    let (status, report) = d.report("app-1").await;
    assert!(status.success(), "{report:#?}\n{}", workers[0].log());
    assert_eq!(report.totals.ok, names.len() + 1, "{:#?}", report.totals);
    d.stop(&mut workers).await;
    let lfs = d.stack.keys(&d.ls, "repos/acme/assets/lfs/").await;
    assert_eq!(lfs.len(), oids.len(), "{lfs:?}");
    assert_eq!(
        d.record("app-1", "assets").await.lfs.unwrap().uploaded,
        oids.len()
    );
    let stats = d.gh.stats();
    assert!(!stats.app_tokens_minted.is_empty());
    assert_eq!(stats.lfs_media_requests_with_token, 0);
    for name in &names {
        d.verify(name).await;
    }
    // verify (with a restore drill) reads every LFS object back from S3 and checks it.
    let out = tokio::process::Command::new(bin("repovault"))
        .args([
            "verify",
            "--config",
            "repovault.yml",
            "--repo",
            "acme/assets",
            "--restore-drill",
        ])
        .current_dir(d.dir.path())
        .envs(d.stack.env())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for w in &workers {
        assert!(
            w.log().contains("backed up"),
            "{} did no work: {}",
            w.name,
            w.log()
        );
        for (token, _) in &stats.app_tokens_minted {
            assert!(
                !w.log().contains(token.as_str()),
                "{} logged a token",
                w.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_back_up_a_large_org_and_the_report_accounts_for_all() {
    // A first run reads some 25 kinds of each repository's data: more than a token's
    // 5,000 requests an hour for 257 repositories. An App's installation gets 12,500.
    let gh = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        rate_limit: Some(12_500),
        ..Default::default()
    })
    .await
    .unwrap();
    let d = Deployment::with("big", 5, gh, "", vec![]).await;
    let names = org::showcase_org(&d.gh, "acme", 250);
    let run = d.plan("nightly-1", &[]).await;
    assert_eq!(run, "nightly-1");
    // Planning the same run again enqueues nothing twice.
    d.plan("nightly-1", &[]).await;
    assert_eq!(d.stack.queue_depth(&d.ls).await, names.len() as u64);

    let mut workers: Vec<Proc> = (0..3).map(|i| d.worker(&format!("worker-{i}"))).collect();
    let (status, report) = d.report("nightly-1").await;
    assert!(status.success(), "{report:#?}");
    assert_eq!(
        (report.totals.planned, report.totals.ok),
        (names.len(), names.len())
    );
    for w in &workers {
        println!("{}: peak RSS {} MiB", w.name, w.peak_rss_kib() / 1024);
        assert!(
            w.log().contains("backed up"),
            "{} did no work: {}",
            w.name,
            w.log()
        );
    }
    d.stop(&mut workers).await;
    for name in &names {
        d.verify(name).await;
    }
    assert!(d.stack.dead_letters(&d.ls).await.is_empty());
    assert!(d.stack.multipart_uploads(&d.ls).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_upload_loses_nothing_and_leaves_no_orphan_upload() {
    let d = Deployment::new("kill", 5).await;
    d.gh.add_org("acme");
    fixtures::large_repo(&d.gh.repo_path("acme", "big"), "big", 24 << 20);
    d.gh.add_repo(RepoSpec::new("acme", "big").has_wiki(false));
    d.plan("r1", &[]).await;

    // Worker A reaches S3 through a 3 MB/s link, so its upload takes seconds.
    let upstream = d.ls.endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = ThrottledProxy::start(upstream, 3 << 20).await.unwrap();
    let args = [
        "--config",
        "repovault.yml",
        "--visibility-timeout",
        "6s",
        "--poll-wait",
        "2s",
        "--work-dir",
        "work",
        "--part-size-mb",
        "5",
        "--parts-in-flight",
        "1",
    ];
    let mut a = Proc::spawn(
        "worker-a",
        "worker",
        &args,
        &d.stack.env_via(&proxy.url()),
        d.dir.path(),
    );
    eventually(
        "worker A to start its multipart upload",
        Duration::from_secs(60),
        || async { (!d.stack.multipart_uploads(&d.ls).await.is_empty()).then_some(()) },
    )
    .await;
    a.signal(Signal::SIGKILL);
    a.wait().await;
    assert!(
        d.backups_of("big").await.is_empty(),
        "A must not have finished"
    );

    // B takes the job once A's lease runs out, and cleans up what A left.
    let mut b = vec![d.worker("worker-b")];
    let (status, report) = d.report("r1").await;
    assert!(status.success(), "{report:#?}\n{}", b[0].log());
    // At least the second delivery: A's long poll, still open on the server when A
    // died, may swallow one more delivery until its visibility times out, as SQS may.
    assert!(d.record("r1", "big").await.attempt >= 2);
    d.stop(&mut b).await;
    d.verify("big").await;
    assert!(
        d.stack.multipart_uploads(&d.ls).await.is_empty(),
        "orphan multipart upload left behind"
    );
    assert!(
        b[0].log().contains("cleaned up unfinished uploads"),
        "{}",
        b[0].log()
    );
}

/// A push's job and the nightly job of one repository overlap on S3. The push's job
/// is a redelivery (its first delivery was taken and dropped, as by a worker that died
/// before uploading), so it cleans up unfinished uploads: only those begun since its
/// first delivery. The nightly job's upload, begun before and held open meanwhile, is
/// untouched, and both jobs complete at their first try of an upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_jobs_of_one_repository_on_s3_both_complete() {
    let d = Deployment::new("overlap", 5).await;
    d.gh.add_org("acme");
    fixtures::large_repo(&d.gh.repo_path("acme", "big"), "big", 24 << 20);
    d.gh.add_repo(RepoSpec::new("acme", "big").has_wiki(false));
    d.plan("nightly", &[]).await;

    // Worker A takes the nightly job through a slow link it can be held on.
    let upstream = d.ls.endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = ThrottledProxy::start(upstream, 3 << 20).await.unwrap();
    let args = [
        "--config",
        "repovault.yml",
        "--concurrency",
        "1",
        "--visibility-timeout",
        "120s",
        "--poll-wait",
        "2s",
        "--work-dir",
        "work-a",
        "--part-size-mb",
        "5",
        "--parts-in-flight",
        "1",
    ];
    let mut a = vec![Proc::spawn(
        "worker-a",
        "worker",
        &args,
        &d.stack.env_via(&proxy.url()),
        d.dir.path(),
    )];
    eventually(
        "worker A to start its multipart upload",
        Duration::from_secs(60),
        || async { (!d.stack.multipart_uploads(&d.ls).await.is_empty()).then_some(()) },
    )
    .await;
    proxy.pause();

    // The push's job: its first delivery is dropped, so B gets the second.
    d.plan("push", &["--repo", "acme/big"]).await;
    let first =
        d.ls.sqs
            .receive_message()
            .queue_url(&d.stack.queue_url)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
    assert_eq!(first.messages().len(), 1, "{first:?}");
    assert!(first.messages()[0].body().unwrap().contains("\"push\""));
    let mut b = vec![d.worker("worker-b")];
    let (status, report) = d.report("push").await;
    assert!(status.success(), "{report:#?}\n{}", b[0].log());
    assert!(
        !d.stack.multipart_uploads(&d.ls).await.is_empty(),
        "A's upload is held open while B works\n{}\n{}",
        a[0].log(),
        b[0].log()
    );
    proxy.resume();
    let (status, report) = d.report("nightly").await;
    assert!(status.success(), "{report:#?}\n{}", a[0].log());
    d.stop(&mut a).await;
    d.stop(&mut b).await;

    let (nightly, push) = (
        d.record("nightly", "big").await,
        d.record("push", "big").await,
    );
    assert_eq!(push.attempt, 2, "{push:?}");
    assert_eq!(nightly.attempt, 1, "{nightly:?}\n{}", a[0].log());
    assert!(
        !b[0].log().contains("cleaned up unfinished uploads"),
        "B aborted an upload it did not begin: {}",
        b[0].log()
    );
    assert_eq!(d.backups_of("big").await.len(), 2);
    assert!(d.stack.multipart_uploads(&d.ls).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_a_stopped_worker_and_flaky_git_lose_nothing_with_three_deliveries() {
    // Three deliveries per job, as a cautious production queue would allow.
    let d = Deployment::new("chaos", 3).await;
    org::standard_org(&d.gh, "acme", 12);
    // The first two fetches hang: whichever jobs workers A and B take, they are
    // mid-job when A is killed and B is stopped.
    d.gh.slow_next_fetches(2, Duration::from_secs(120));
    d.gh.fail_every_nth_fetch(9, 502);
    d.plan("r1", &[]).await;
    let one_at_a_time =
        |name: &str, grace: &str| d.worker_args(name, "20s", grace, &["--concurrency", "1"]);
    let fetches = || async { d.gh.stats().total_fetches() };
    let mut a = one_at_a_time("worker-a", "5s");
    eventually("worker A mid-job", Duration::from_secs(60), || async {
        (fetches().await == 1).then_some(())
    })
    .await;
    a.signal(Signal::SIGKILL);
    a.wait().await;
    let mut b = one_at_a_time("worker-b", "1s");
    eventually("worker B mid-job", Duration::from_secs(60), || async {
        (fetches().await == 2).then_some(())
    })
    .await;
    b.signal(Signal::SIGTERM);
    let status = b.wait().await;
    assert!(status.success(), "worker B exited {status}: {}", b.log());

    let mut workers = vec![d.worker("worker-c"), d.worker("worker-d")];
    let (status, report) = d.report("r1").await;
    assert!(status.success(), "{report:#?}");
    assert_eq!((report.totals.planned, report.totals.ok), (12, 12));
    assert!(d.gh.stats().git_faults_served >= 1, "no 502 was served");
    // A 502 never costs a delivery: only the jobs of A and B needed more than one.
    let redelivered: Vec<_> = report
        .repos
        .iter()
        .filter(|r| r.attempt.is_some_and(|a| a > 1))
        .map(|r| (&r.name, r.attempt))
        .collect();
    assert!(redelivered.len() <= 2, "{redelivered:?}");
    assert!(d.stack.dead_letters(&d.ls).await.is_empty());
    assert!(d.stack.multipart_uploads(&d.ls).await.is_empty());
    d.stop(&mut workers).await;
    for i in [0, 5, 11] {
        d.verify(&format!("repo-{i:03}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_releases_the_running_job_at_once_and_exits_0() {
    let d = Deployment::new("term", 5).await;
    org::standard_org(&d.gh, "acme", 1);
    d.gh.slow_fetch("acme", "repo-000", 1, Duration::from_secs(120));
    d.plan("r1", &[]).await;
    let mut a = d.worker_with("worker-a", "120s", "1s");
    eventually(
        "worker A to start fetching",
        Duration::from_secs(60),
        || async { (d.gh.stats().fetches_of("acme/repo-000") == 1).then_some(()) },
    )
    .await;
    let terminated_at = jiff::Timestamp::now();
    a.signal(Signal::SIGTERM);
    let status = a.wait().await;
    assert!(status.success(), "worker A exited {status}: {}", a.log());
    assert!(a.log().contains("releasing unfinished jobs"), "{}", a.log());
    let leftovers: Vec<_> = std::fs::read_dir(d.dir.path().join("work"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "worker A left its work dir: {leftovers:?}"
    );

    let mut b = vec![d.worker_with("worker-b", "120s", "5s")];
    let (status, _) = d.report("r1").await;
    assert!(status.success());
    let record = d.record("r1", "repo-000").await;
    assert_eq!(record.attempt, 2);
    // Released, not left to time out: B finished long before the 120 s visibility.
    let waited = record.finished_at.duration_since(terminated_at);
    assert!(
        waited < jiff::SignedDuration::from_secs(100),
        "picked up after {waited:?}"
    );
    d.stop(&mut b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_502s_and_rate_limits_are_waited_out_and_retried() {
    let d = Deployment::new("faults", 5).await;
    org::standard_org(&d.gh, "acme", 20);
    d.gh.rate_limit_next(1, Duration::from_secs(1));
    d.gh.secondary_limit_next(1, Duration::from_secs(1));
    d.gh.fail_fetch("acme", "repo-003", FaultStatus::Times(2, 502));
    d.gh.fail_fetch("acme", "repo-007", FaultStatus::Times(1, 503));
    d.plan("r1", &[]).await;
    assert_eq!(d.gh.stats().rate_limited, 2);
    let mut workers = vec![d.worker("w1"), d.worker("w2")];
    let (status, report) = d.report("r1").await;
    assert!(status.success(), "{report:#?}");
    assert_eq!(report.totals.ok, 20);
    // Retried in place: the first delivery succeeds.
    assert_eq!(d.record("r1", "repo-003").await.attempt, 1);
    assert_eq!(d.record("r1", "repo-007").await.attempt, 1);
    assert_eq!(d.gh.stats().git_faults_served, 3);
    d.stop(&mut workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_go_to_the_dead_letter_queue_and_workers_keep_going() {
    let d = Deployment::new("poison", 5).await;
    org::standard_org(&d.gh, "acme", 3);
    d.stack.send_raw(&d.ls, "{this is not json").await;
    d.stack
        .send_raw(&d.ls, r#"{"schema": 99, "run_id": "r1", "repo": {}}"#)
        .await;
    d.plan("r1", &[]).await;
    // A well-formed message naming a target the workers may not write to: forged.
    let forged = repovault_core::JobMessage::new(
        "r1".parse().unwrap(),
        "acme".into(),
        repovault_core::Target {
            store: "s3://attacker-bucket".into(),
            prefix: "github/".into(),
        },
        repovault_core::RepoRef {
            owner: "acme".into(),
            name: "repo-000".into(),
            id: 1,
            clone_url: d.gh.clone_url("acme", "repo-000"),
            default_branch: Some("main".into()),
            pushed_at: None,
            size_kb: 1,
            private: false,
            archived: false,
            fork: false,
            has_wiki: false,
            topics: vec![],
        },
        repovault_core::JobOptions::default(),
    );
    d.stack.send_raw(&d.ls, &forged.to_body()).await;

    let mut workers = vec![d.worker("w1")];
    let (status, report) = d.report("r1").await;
    assert!(status.success());
    assert_eq!(report.totals.ok, 3);
    // The schema-99 message goes back for a newer worker until its 5 deliveries are
    // used up (backoff 1 s, 2 s, 2 s, 2 s), then to the DLQ.
    eventually(
        "the three poison messages in the DLQ",
        Duration::from_secs(90),
        || async { (d.stack.dlq_depth(&d.ls).await == 3).then_some(()) },
    )
    .await;
    let dead = d.stack.dead_letters(&d.ls).await;
    let reasons: Vec<&str> = dead.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("not JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unsupported message schema 99")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("s3://attacker-bucket")
                && r.contains("not on this worker's allow-list")),
        "{reasons:?}"
    );
    assert!(workers[0].log().contains("malformed job message"));
    d.stop(&mut workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repository_deleted_after_planning_fails_once_permanently() {
    let d = Deployment::new("deleted", 5).await;
    org::standard_org(&d.gh, "acme", 3);
    d.plan("r1", &[]).await;
    d.gh.delete_repo("acme", "repo-001");
    let mut workers = vec![d.worker("w1")];
    let (status, report) = d.report("r1").await;
    assert_eq!(status.code(), Some(1));
    assert_eq!((report.totals.ok, report.totals.failed), (2, 1));
    let record = d.record("r1", "repo-001").await;
    assert_eq!(record.attempt, 1, "a permanent failure is not retried");
    let error = record.error.unwrap();
    assert!(
        !error.retryable && error.message.contains("not found"),
        "{error:?}"
    );
    assert!(
        report
            .repos
            .iter()
            .any(|r| r.name == "repo-001" && r.status == RepoStatus::Failed)
    );
    assert!(d.stack.dead_letters(&d.ls).await.is_empty());
    d.stop(&mut workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_delivered_twice_yields_one_archive_and_one_record() {
    let d = Deployment::new("dup", 5).await;
    org::standard_org(&d.gh, "acme", 1);
    d.plan("r1", &[]).await;
    // Copy the planned message and enqueue it again: a duplicate delivery.
    let got =
        d.ls.sqs
            .receive_message()
            .queue_url(&d.stack.queue_url)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    let body = got.messages()[0].body().unwrap().to_owned();
    d.stack.send_raw(&d.ls, &body).await;
    assert_eq!(d.stack.queue_depth(&d.ls).await, 2);
    let mut workers = vec![d.worker("w1"), d.worker("w2")];
    let (status, _) = d.report("r1").await;
    assert!(status.success());
    eventually(
        "both deliveries handled",
        Duration::from_secs(60),
        || async { (d.stack.queue_depth(&d.ls).await == 0).then_some(()) },
    )
    .await;
    d.stop(&mut workers).await;
    assert_eq!(d.backups_of("repo-000").await.len(), 1);
    let results = d.stack.keys(&d.ls, "runs/r1/results/").await;
    assert_eq!(results.len(), 1, "{results:?}");
    d.verify("repo-000").await;
    let log = workers.iter().map(Proc::log).collect::<String>();
    assert!(
        log.contains("skipping the redelivery") || log.contains("discarded this copy"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_planner_can_enqueue_a_single_repository() {
    let d = Deployment::new("single", 5).await;
    org::standard_org(&d.gh, "acme", 5);
    d.plan("push-1", &["--repo", "acme/repo-002"]).await;
    assert_eq!(d.stack.queue_depth(&d.ls).await, 1);
    let mut workers = vec![d.worker("w1")];
    let (status, report) = d.report("push-1").await;
    assert!(status.success());
    assert_eq!((report.totals.planned, report.totals.ok), (1, 1));
    d.stop(&mut workers).await;
    d.verify("repo-002").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_distributed_run_over_an_unchanged_org_fetches_and_uploads_nothing() {
    let d = Deployment::new("incr", 5).await;
    let names = org::standard_org(&d.gh, "acme", 30);
    let mut workers = vec![d.worker("w1"), d.worker("w2")];
    let started = std::time::Instant::now();
    d.plan("r1", &[]).await;
    let (status, first) = d.report("r1").await;
    let full = started.elapsed();
    assert!(status.success() && first.totals.ok == 30, "{first:#?}");
    let after_first = d.gh.stats();
    let archives_after_first = d.stack.keys(&d.ls, "repos/").await;

    let started = std::time::Instant::now();
    d.plan("r2", &[]).await;
    let (status, second) = d.report("r2").await;
    let unchanged = started.elapsed();
    println!(
        "distributed full run {:.0} ms, unchanged run {:.0} ms ({:.1}%)",
        full.as_secs_f64() * 1e3,
        unchanged.as_secs_f64() * 1e3,
        100.0 * unchanged.as_secs_f64() / full.as_secs_f64()
    );
    assert!(status.success());
    assert_eq!((second.totals.unchanged, second.totals.ok), (30, 0));
    let after_second = d.gh.stats();
    assert_eq!(
        after_second.total_fetches(),
        after_first.total_fetches(),
        "no fetch"
    );
    for name in &names {
        let full_name = format!("acme/{name}");
        assert_eq!(
            after_second.ref_advertisements[&full_name]
                - after_first.ref_advertisements[&full_name],
            1,
            "{full_name}"
        );
    }
    assert_eq!(
        d.stack.keys(&d.ls, "repos/").await,
        archives_after_first,
        "no object under repos/ was written"
    );
    d.stop(&mut workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_ecs_the_task_is_protected_while_it_holds_jobs() {
    let d = Deployment::new("protect", 5).await;
    let agent = repovault_testkit::FakeEcsAgent::start().await.unwrap();
    org::standard_org(&d.gh, "acme", 2);
    d.gh.slow_fetch("acme", "repo-000", 1, Duration::from_secs(2));
    let mut env = d.stack.env();
    env.push(("ECS_AGENT_URI".into(), agent.uri()));
    let args = [
        "--config",
        "repovault.yml",
        "--poll-wait",
        "1s",
        "--work-dir",
        "work",
    ];
    let mut worker = vec![Proc::spawn("worker", "worker", &args, &env, d.dir.path())];
    assert!(agent.states().is_empty(), "an idle worker asks for nothing");
    d.plan("r1", &[]).await;
    eventually(
        "protection while the slow job runs",
        Duration::from_secs(30),
        || async { (agent.states().first() == Some(&true)).then_some(()) },
    )
    .await;
    let (status, _) = d.report("r1").await;
    assert!(status.success());
    eventually(
        "protection removed once idle",
        Duration::from_secs(30),
        || async { (agent.states().last() == Some(&false)).then_some(()) },
    )
    .await;
    // Busy and idle alternate (one busy period, or one per batch of jobs received).
    let states = agent.states();
    assert!(
        states.windows(2).all(|w| w[0] != w[1]) && states.len() % 2 == 0,
        "{states:?}"
    );
    assert_eq!(agent.requests()[0]["ExpiresInMinutes"], 60);
    d.stop(&mut worker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repovault_run_backs_up_to_s3_with_one_setting() {
    let d = Deployment::new("run-s3", 5).await;
    org::standard_org(&d.gh, "acme", 5);
    let api = d.gh.api_url();
    let target = d.stack.target();
    let owned = d.stack.env();
    let env: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = repovault(
        d.dir.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--dest",
            &target,
            "--run-id",
            "r1",
        ],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let report: Report =
        serde_json::from_slice(&d.stack.get(&d.ls, "github/runs/r1/report.json").await).unwrap();
    assert_eq!(report.totals.ok, 5);
    for name in ["repo-000", "repo-004"] {
        d.verify(name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_holding_only_recipients_seal_what_they_write_and_stay_incremental() {
    let keys = crate::encryption::Keys::new();
    let job = format!(
        "    encryption: {{ age-recipients: [\"{}\"] }}\n",
        keys.age_public
    );
    let d = Deployment::with("sealed", 5, github().await, &job, vec![]).await;
    let names = org::standard_org(&d.gh, "acme", 3);
    // No identity anywhere a worker can see: its environment and its files.
    let config = std::fs::read_to_string(d.dir.path().join("repovault.yml")).unwrap();
    assert!(config.contains("encryption") && !config.contains("AGE-SECRET-KEY"));
    assert!(
        d.env
            .iter()
            .chain(&d.stack.env())
            .all(|(k, v)| !k.contains("IDENTITY") && !v.contains("AGE-SECRET-KEY"))
    );
    let mut workers = vec![d.worker("w1")];
    d.plan("r1", &[]).await;
    let (status, first) = d.report("r1").await;
    assert!(status.success() && first.totals.ok == 3, "{first:#?}");
    for key in d.stack.keys(&d.ls, "repos/").await {
        let bytes = d.stack.get(&d.ls, &key).await;
        if key.ends_with("/latest.json") || key.ends_with("/index.json") {
            continue; // in the clear by design (docs/ARCHITECTURE.md)
        }
        if key.ends_with(".manifest.json") {
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(
                manifest["sealed"].is_string() && manifest.get("refs").is_none(),
                "{key}"
            );
        } else {
            assert!(
                bytes.starts_with(b"age-encryption.org/v1\n"),
                "{key} is not sealed"
            );
        }
    }

    // A push to one repository: one new, smaller link; the others unchanged.
    let git = git2::Repository::open(d.gh.repo_path("acme", &names[0])).unwrap();
    fixtures::commit(&git, "main", &[("new.txt", b"new")], "after the first run");
    let fetches = d.gh.stats().total_fetches();
    d.plan("r2", &[]).await;
    let (status, second) = d.report("r2").await;
    assert!(status.success(), "{second:#?}");
    assert_eq!((second.totals.ok, second.totals.unchanged), (1, 2));
    assert_eq!(d.gh.stats().total_fetches(), fetches + 1);
    let latest: repovault_core::LatestPointer = serde_json::from_slice(
        &d.stack
            .get(
                &d.ls,
                &format!("{}repos/acme/{}/latest.json", d.stack.prefix, names[0]),
            )
            .await,
    )
    .unwrap();
    let chain = latest.chain.expect("the chain in latest.json");
    assert_eq!(chain.bundles.len(), 2);
    assert!(chain.bundles[1].size < chain.bundles[0].size);
    d.stop(&mut workers).await;

    // Restored from S3 with the identity: exactly the source.
    let to = d.dir.path().join("restored");
    let identity = keys.path("key.txt");
    let mut restore = d.spawn(
        "restore",
        "repovault",
        &[
            "restore",
            &format!("acme/{}", names[0]),
            "--from",
            &d.stack.target(),
            "--identity",
            identity.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert!(restore.wait().await.success(), "{}", restore.log());
    let bare = to.join(format!("{}.git", names[0]));
    assert_eq!(refs_of(&bare), refs_of(&d.gh.repo_path("acme", &names[0])));
}
