//! The worker's decisions, in-process: a real worker on a `MemoryQueue`, an `FsStore`
//! and the fake GitHub (real git over smart HTTP), one message at a time.

use std::sync::Arc;
use std::time::Duration;

use repovault_core::ports::queue::{Lease, Queue, QueueDepth, QueueError};
use repovault_core::ports::store::Store;
use repovault_core::retry::RetryPolicy;
use repovault_core::{
    Clock, GitHost, JobMessage, JobOptions, Manifest, Outcome, RepoRef, ResultRecord, RunId,
    Secret, Target,
};
use repovault_local::{DeadLetter, FsStore, MemoryQueue};
use repovault_repository::Layout;
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, FaultStatus, org};
use repovault_worker::{AllowList, GitHubAccess, WorkerConfig, WorkerDeps, WorkerSummary};

const TOKEN: &str = "ghp_decisions_t0k3n";

/// Another host serving a copy of `acme/repo-000` anonymously: where a forged
/// message or a redirect would take the worker. It counts requests with credentials.
async fn other_host() -> FakeGitHub {
    let other = FakeGitHub::start(FakeGitHubOptions::default())
        .await
        .unwrap();
    org::standard_org(&other, "acme", 1);
    other
}

/// The base URL of a fake under another host name (`localhost` for `127.0.0.1`): git
/// and libgit2 judge "another host" by name, not by port.
fn base(gh: &FakeGitHub) -> String {
    gh.api_url().replace("127.0.0.1", "localhost")
}

struct Env {
    gh: FakeGitHub,
    store: Arc<FsStore>,
    target: Target,
    dir: tempfile::TempDir,
    data_full_every: Duration,
    /// The longest rate-limit wait the worker's GitHub client sits out.
    data_max_wait: Duration,
    /// The worker's clock (the system's when `None`).
    clock: Option<Arc<dyn Clock>>,
    /// What the worker writes through instead of `store` (a fault injector over it).
    writes_through: Option<Arc<dyn Store>>,
    /// The first acknowledgement is lost: the message comes back, its receive count
    /// one higher, as SQS redelivers a message whose delete never arrived.
    lose_first_ack: bool,
}

/// A queue whose first acknowledgement never arrives.
struct LosesFirstAck {
    queue: Arc<MemoryQueue>,
    lost: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Queue for LosesFirstAck {
    async fn send(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.queue.send(bodies).await
    }
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        self.queue.send_delayed(body, delay).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Lease>, QueueError> {
        self.queue.receive(max, wait).await
    }
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError> {
        self.queue.extend(lease, by).await
    }
    async fn retry_later(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
        self.queue.retry_later(lease, delay).await
    }
    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        if self.lost.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // Visible again at once, as after the visibility timeout.
            return self.queue.retry_later(lease, Duration::ZERO).await;
        }
        self.queue.ack(lease).await
    }
    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<(), QueueError> {
        self.queue.dead_letter(lease, reason).await
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        self.queue.depth().await
    }
}

impl Env {
    async fn new() -> Env {
        Env::with(FakeGitHubOptions::default()).await
    }

    async fn with(options: FakeGitHubOptions) -> Env {
        let gh = FakeGitHub::start(FakeGitHubOptions {
            token: Some(TOKEN.into()),
            ..options
        })
        .await
        .unwrap();
        org::standard_org(&gh, "acme", 2);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("backups");
        let target = Target::parse(root.to_str().unwrap(), dir.path()).unwrap();
        Env {
            gh,
            store: Arc::new(FsStore::new(root)),
            target,
            dir,
            data_full_every: repovault_data::FULL_REFRESH,
            data_max_wait: Duration::from_secs(60),
            clock: None,
            writes_through: None,
            lose_first_ack: false,
        }
    }

    /// The message the planner would write for `acme/<name>`.
    fn message(&self, run: &str, name: &str) -> JobMessage {
        let repo = RepoRef {
            owner: "acme".into(),
            name: name.into(),
            id: 1,
            clone_url: self.gh.clone_url("acme", name),
            default_branch: Some("main".into()),
            pushed_at: None,
            size_kb: 1,
            private: false,
            archived: false,
            fork: false,
            has_wiki: false,
            topics: vec![],
        };
        JobMessage::new(
            run.parse().unwrap(),
            "acme".into(),
            self.target.clone(),
            repo,
            JobOptions::default(),
        )
    }

    /// Runs one worker over `bodies` until the queue is drained; `max_attempts` is both
    /// the queue's redrive limit and the worker's.
    async fn work(
        &self,
        bodies: Vec<String>,
        max_attempts: u32,
    ) -> (WorkerSummary, Vec<DeadLetter>) {
        self.work_with(bodies, max_attempts, 1).await
    }

    async fn work_with(
        &self,
        bodies: Vec<String>,
        max_attempts: u32,
        concurrency: usize,
    ) -> (WorkerSummary, Vec<DeadLetter>) {
        let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30), max_attempts));
        queue.send(&bodies).await.unwrap();
        let mut allow = AllowList::new();
        let api = repovault_github::GitHubSource::with_token(
            &self.gh.api_url(),
            Some(&Secret::new(TOKEN)),
        )
        .unwrap()
        .max_rate_limit_wait(self.data_max_wait);
        let api = Arc::new(api);
        let store = self
            .writes_through
            .clone()
            .unwrap_or_else(|| self.store.clone() as Arc<dyn Store>);
        allow.allow(
            self.target.clone(),
            store,
            GitHubAccess {
                host: GitHost::from_api_url(&self.gh.api_url(), true).unwrap(),
                owner: None,
                tokens: api.clone(),
                data: Some(api),
            },
        );
        let mut cfg = WorkerConfig::new(self.dir.path().join("work"));
        cfg.concurrency = concurrency;
        cfg.retry = RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        };
        cfg.poll_wait = Duration::from_millis(50);
        cfg.data_full_every = self.data_full_every;
        if let Some(clock) = &self.clock {
            cfg.clock = clock.clone();
        }
        let port: Arc<dyn Queue> = if self.lose_first_ack {
            Arc::new(LosesFirstAck {
                queue: queue.clone(),
                lost: true.into(),
            })
        } else {
            queue.clone()
        };
        let deps = WorkerDeps::new(port, allow);
        let drained = queue.clone();
        let summary = repovault_worker::run(cfg, deps, async move {
            drained.drained().await;
            drained.close();
        })
        .await;
        (summary, queue.dead_letters())
    }

    async fn record(&self, run: &str, name: &str) -> Option<ResultRecord> {
        let run: RunId = run.parse().unwrap();
        let key = Layout::new("").result(&run, "acme", name);
        (self.store.as_ref() as &dyn Store)
            .get_json(&key)
            .await
            .unwrap()
    }

    /// Backups stored: their manifests.
    async fn backups(&self) -> usize {
        let all = self.store.list("repos/").await.unwrap();
        all.iter()
            .filter(|o| o.key.ends_with(".manifest.json"))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_clone_url_is_dead_lettered_and_the_token_goes_nowhere() {
    let env = Env::new().await;
    let evil = other_host().await;
    let forge = |clone_url: String| {
        let mut msg = env.message("r1", "repo-000");
        msg.repo.clone_url = clone_url;
        msg.to_body()
    };
    let bodies = vec![
        // Another host altogether.
        forge(format!("{}/steal.git", base(&evil))),
        // Another host, with the message's own path.
        forge(evil.clone_url("acme", "repo-000")),
        // The right host, another repository (it would be archived as acme/repo-000).
        forge(env.gh.clone_url("acme", "repo-001")),
        // The right host with credentials in the URL.
        forge(
            env.gh
                .clone_url("acme", "repo-000")
                .replace("http://", "http://x:y@"),
        ),
    ];
    let (summary, dead) = env.work(bodies, 3).await;
    assert_eq!(summary.dead_lettered, 4, "{summary:?}");
    let mut reasons: Vec<String> = dead.iter().map(|d| d.reason.clone()).collect();
    reasons.sort();
    let on_host = reasons
        .iter()
        .filter(|r| r.contains("not on the configured GitHub host"))
        .count();
    let own_repo = reasons
        .iter()
        .filter(|r| r.contains("not the message's own repository"))
        .count();
    assert_eq!((on_host, own_repo), (3, 1), "{reasons:#?}");
    let seen = evil.stats();
    assert_eq!(seen.git_requests, 0, "{seen:?}");
    assert_eq!(env.backups().await, 0);
    assert!(env.record("r1", "repo-000").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_never_carries_the_token() {
    let env = Env::new().await;
    let evil = other_host().await;
    // A first backup, so the next one lists refs first (libgit2) before cloning.
    let (summary, _) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    env.gh.redirect_git("acme", "repo-000", &base(&evil));
    let (summary, _) = env
        .work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok + summary.unchanged, 0, "{summary:?}");
    assert_eq!(
        env.record("r2", "repo-000").await.unwrap().outcome,
        Outcome::Failed
    );
    // The listing did not come from the other host (it would match: same content).
    assert_eq!(evil.stats().git_requests, 0, "{:?}", evil.stats());
    // A full backup goes straight to protocol v2 (ls-refs, then fetch).
    let mut full = env.message("r3", "repo-000");
    full.options.full = true;
    let (summary, _) = env.work(vec![full.to_body()], 1).await;
    assert_eq!(summary.ok, 0, "{summary:?}");
    let seen = evil.stats();
    assert_eq!(seen.git_requests, 0, "{seen:?}");
    let error = env.record("r3", "repo-000").await.unwrap().error.unwrap();
    assert!(!error.message.contains(TOKEN), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_git_faults_are_retried_in_place_without_a_redelivery() {
    let env = Env::new().await;
    env.gh
        .fail_fetch("acme", "repo-000", FaultStatus::Times(2, 502));
    // One delivery only: a retry through the queue would use it up.
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?} {dead:?}");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!((record.outcome, record.attempt), (Outcome::Ok, 1));
    assert_eq!(env.gh.stats().git_faults_served, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_git_fault_fails_after_the_tries_in_place() {
    let env = Env::new().await;
    env.gh
        .fail_fetch("acme", "repo-000", FaultStatus::Always(503));
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    // Out of attempts: recorded failed, the message kept for a redrive.
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(dead.len(), 1);
    assert_eq!(env.gh.stats().git_faults_served, 3, "three tries in place");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!(record.outcome, Outcome::Failed);
    assert!(record.error.unwrap().retryable);
}

/// A job redriven from the dead-letter queue that fails again goes back there, and
/// its record says the new attempt's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_job_that_fails_again_is_dead_lettered_again() {
    let env = Env::new().await;
    env.gh
        .fail_fetch("acme", "repo-000", FaultStatus::Always(503));
    let body = env.message("r1", "repo-000").to_body();
    let (_, dead) = env.work(vec![body.clone()], 1).await;
    assert_eq!(dead.len(), 1);
    let first = env.record("r1", "repo-000").await.unwrap();
    // The redrive: the same message, delivered afresh.
    let (summary, dead) = env.work(vec![body], 1).await;
    assert_eq!(
        (summary.dead_lettered, summary.skipped),
        (1, 0),
        "{summary:?}"
    );
    assert_eq!(dead.len(), 1);
    let second = env.record("r1", "repo-000").await.unwrap();
    assert_eq!(second.outcome, Outcome::Failed);
    assert!(second.finished_at > first.finished_at, "{second:?}");
}

/// A run's record that cannot be read (damaged, or naming another repository's
/// backup) is replaced by the job's own, not retried until the queue gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_replaced_not_retried_forever() {
    let env = Env::new().await;
    let key = Layout::new("").result(&"r1".parse().unwrap(), "acme", "repo-000");
    env.store.put(&key, "{ not json".into()).await.unwrap();
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 2)
        .await;
    assert_eq!(
        (summary.ok, summary.retried),
        (1, 0),
        "{summary:?} {dead:?}"
    );
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!((record.outcome, record.attempt), (Outcome::Ok, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_a_newer_release_is_left_for_a_newer_worker() {
    let env = Env::new().await;
    let mut newer: serde_json::Value =
        serde_json::from_str(&env.message("r1", "repo-000").to_body()).unwrap();
    newer["schema"] = 2.into();
    let (summary, dead) = env.work(vec![newer.to_string()], 3).await;
    assert_eq!(summary.retried, 2, "released twice first: {summary:?}");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(dead[0].receive_count, 3);
    assert!(
        dead[0].reason.contains("no newer worker took it"),
        "{}",
        dead[0].reason
    );
    assert!(env.record("r1", "repo-000").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_within_the_schema_are_ignored() {
    let env = Env::new().await;
    let mut body: serde_json::Value =
        serde_json::from_str(&env.message("r1", "repo-000").to_body()).unwrap();
    body["added_by_next_release"] = serde_json::json!({"x": 1});
    body["repo"]["visibility"] = "public".into();
    let (summary, dead) = env.work(vec![body.to_string()], 3).await;
    assert_eq!(summary.ok, 1, "{summary:?} {dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_refuses_is_recorded_once_not_retried() {
    let env = Env::new().await;
    // The repository's folder is a file: every write under it is refused for good.
    std::fs::create_dir_all(env.store.root().join("repos/acme")).unwrap();
    std::fs::write(env.store.root().join("repos/acme/repo-000"), "in the way").unwrap();
    let mut full = env.message("r1", "repo-000");
    full.options.full = true;
    let (summary, dead) = env.work(vec![full.to_body()], 5).await;
    assert_eq!(summary.failed, 1, "{summary:?}");
    assert!(dead.is_empty(), "{dead:?}");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!((record.outcome, record.attempt), (Outcome::Failed, 1));
    let error = record.error.unwrap();
    assert!(!error.retryable, "{error:?}");
    assert!(error.message.contains("refused"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_of_a_recorded_job_is_acked_and_not_redone() {
    let mut env = Env::new().await;
    env.lose_first_ack = true;
    let body = env.message("r1", "repo-000").to_body();
    let (summary, dead) = env.work(vec![body], 3).await;
    assert_eq!(
        (summary.ok, summary.skipped),
        (1, 1),
        "{summary:?} {dead:?}"
    );
    assert_eq!(env.gh.stats().total_fetches(), 1, "fetched again");
    assert_eq!(env.backups().await, 1);
    assert_eq!(env.record("r1", "repo-000").await.unwrap().attempt, 1);
}

/// A first delivery does not look for its record (one store request a repository a
/// run): were it a duplicate of a recorded job, the record's commit finds the standing
/// record, and the copy is discarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_first_delivery_is_found_at_the_commit_and_its_copy_discarded() {
    let env = Env::new().await;
    let body = env.message("r1", "repo-000").to_body();
    let (first, _) = env.work(vec![body.clone()], 3).await;
    assert_eq!(first.ok, 1, "{first:?}");
    // New work, so the duplicate writes a backup of its own before it commits.
    let repo = git2::Repository::open_bare(env.gh.repo_path("acme", "repo-000")).unwrap();
    repovault_testkit::fixtures::commit(&repo, "main", &[("x.txt", b"x")], "more");
    let fetches = env.gh.stats().total_fetches();
    let (again, dead) = env.work(vec![body], 3).await;
    assert_eq!(again.skipped, 1, "{again:?} {dead:?}");
    assert!(
        env.gh.stats().total_fetches() > fetches,
        "the first delivery looked for its record"
    );
    assert_eq!(env.backups().await, 1, "the duplicate's copy is left");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!(record.outcome, Outcome::Ok);
}

/// A `deleted` webhook is not taken on its word: while GitHub still serves the
/// repository it is backed up as usual and nothing says it is gone; once GitHub answers
/// 404 it is marked gone, and a later backup under that name clears the mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_is_confirmed_with_github_and_undone_by_a_later_backup() {
    let env = Env::new().await;
    let gone = Layout::new("").gone("acme", "repo-000");
    let deleted = |run: &str| {
        let mut msg = env.message(run, "repo-000");
        msg.event = Some(repovault_core::RepoEvent::Deleted);
        msg.to_body()
    };
    let store = env.store.as_ref() as &dyn Store;
    let (summary, _) = env.work(vec![deleted("r1")], 1).await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    assert!(
        store.head(&gone).await.unwrap().is_none(),
        "marked gone on a webhook's word"
    );

    env.gh.delete_repo("acme", "repo-000");
    let (summary, _) = env.work(vec![deleted("r2")], 1).await;
    assert_eq!(summary.unchanged, 1, "{summary:?}");
    assert!(store.head(&gone).await.unwrap().is_some());

    // Back on GitHub (re-created, with new work): backed up, no longer gone.
    env.gh
        .add_repo(repovault_testkit::RepoSpec::new("acme", "repo-000").has_wiki(false));
    let repo = git2::Repository::open_bare(env.gh.repo_path("acme", "repo-000")).unwrap();
    repovault_testkit::fixtures::commit(&repo, "main", &[("back.txt", b"back")], "back");
    let (summary, _) = env
        .work(vec![env.message("r3", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    assert!(
        store.head(&gone).await.unwrap().is_none(),
        "still marked gone"
    );
}

/// A chain grows by one link a day; the first backup once its first link is
/// `git.full-every` (30 days) old starts a new chain, without `--full`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_31st_daily_backup_starts_a_new_chain() {
    let mut env = Env::new().await;
    let clock = Arc::new(repovault_testkit::ManualClock::new(
        "2026-01-01T03:00:00Z".parse().unwrap(),
    ));
    env.clock = Some(clock.clone());
    let repo = git2::Repository::open_bare(env.gh.repo_path("acme", "repo-000")).unwrap();
    for day in 1..=31 {
        let file = format!("day-{day}.txt");
        repovault_testkit::fixtures::commit(&repo, "main", &[(&file, b"more")], "a day's work");
        let run = format!("day-{day}");
        let (summary, _) = env
            .work(vec![env.message(&run, "repo-000").to_body()], 1)
            .await;
        assert_eq!(summary.ok, 1, "day {day}: {summary:?}");
        let record = env.record(&run, "repo-000").await.unwrap();
        let backup = record.backup.unwrap();
        let manifest: Manifest = (env.store.as_ref() as &dyn Store)
            .get_json(&backup.manifest_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            manifest.created_at,
            clock.now(),
            "day {day}: keys follow the clock"
        );
        let expected = if day <= 30 { day } else { 1 };
        assert_eq!(manifest.bundles.len(), expected, "day {day}");
        assert_eq!(manifest.base.is_some(), expected > 1, "day {day}");
        clock.advance(jiff::SignedDuration::from_hours(24));
    }
}

/// A chain whose link went missing, or was cut short, is never built on: the next
/// backup starts a new chain (the links are checked against their recorded sizes with
/// one listing of the repository's links).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_with_a_missing_or_short_link_is_not_built_on() {
    let env = Env::new().await;
    let repo = git2::Repository::open_bare(env.gh.repo_path("acme", "repo-000")).unwrap();
    let store = env.store.as_ref() as &dyn Store;
    let manifest_of = |run: &'static str| {
        let env = &env;
        async move {
            let backup = env.record(run, "repo-000").await.unwrap().backup.unwrap();
            store
                .get_json::<Manifest>(&backup.manifest_key)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let (summary, _) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    let first = manifest_of("r1").await;
    repovault_testkit::fixtures::commit(&repo, "main", &[("two.txt", b"two")], "two");
    let (summary, _) = env
        .work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    assert_eq!(
        manifest_of("r2").await.bundles.len(),
        2,
        "built on the first"
    );

    // The first link cut short: the next backup starts over.
    let link = env.store.root().join(&first.bundles[0].key);
    let bytes = std::fs::read(&link).unwrap();
    std::fs::write(&link, &bytes[..bytes.len() - 1]).unwrap();
    repovault_testkit::fixtures::commit(&repo, "main", &[("three.txt", b"3")], "three");
    let (summary, _) = env
        .work(vec![env.message("r3", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    let third = manifest_of("r3").await;
    assert_eq!((third.bundles.len(), third.base.is_none()), (1, true));

    // Its only link gone: the same.
    std::fs::remove_file(env.store.root().join(&third.bundles[0].key)).unwrap();
    repovault_testkit::fixtures::commit(&repo, "main", &[("four.txt", b"4")], "four");
    let (summary, _) = env
        .work(vec![env.message("r4", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    let fourth = manifest_of("r4").await;
    assert_eq!((fourth.bundles.len(), fourth.base.is_none()), (1, true));
}

/// A job whose task panics is retried like any transient fault, and on its last
/// delivery its repository is recorded `failed` with the panic's message: never
/// "missing" from the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_panics_is_recorded_failed_on_its_last_delivery() {
    let mut env = Env::new().await;
    env.writes_through = Some(Arc::new(Faulty(env.store.clone(), Fault::PanicOnLinks)));
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 2)
        .await;
    assert_eq!(
        (summary.retried, summary.dead_lettered),
        (1, 1),
        "{summary:?}"
    );
    let record = env.record("r1", "repo-000").await.expect("a record");
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(record.attempt, 2);
    let error = record.error.unwrap();
    assert!(
        error.message.contains("panicked") && error.message.contains("link upload blew up"),
        "{error:?}"
    );
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("panicked"), "{:?}", dead[0].reason);
}

/// A store that is the one it wraps but for one fault.
struct Faulty(Arc<FsStore>, Fault);

enum Fault {
    /// Panics when a chain link is uploaded.
    PanicOnLinks,
    /// Another delivery of the same job commits first: just before a result record is
    /// written, one stands already, `ok`, naming a backup of its own.
    RecordedFirst,
    /// The first link uploaded is reported back one byte longer than it streamed (as a
    /// store that damaged it would): its key until then, `None` after.
    DamagesFirstLink(std::sync::Mutex<Option<Option<String>>>),
}

#[async_trait::async_trait]
impl Store for Faulty {
    async fn put_stream(
        &self,
        key: &str,
        body: repovault_core::ports::store::ByteStream,
        metadata: &repovault_core::ports::store::ObjectMetadata,
    ) -> Result<repovault_core::ports::store::PutReceipt, repovault_core::ports::store::StoreError>
    {
        if matches!(self.1, Fault::PanicOnLinks) && key.contains("/packs/") {
            panic!("link upload blew up");
        }
        if let Fault::DamagesFirstLink(first) = &self.1
            && key.contains("/packs/")
        {
            first.lock().unwrap().get_or_insert(Some(key.to_owned()));
        }
        self.0.put_stream(key, body, metadata).await
    }
    async fn replace_stream(
        &self,
        key: &str,
        body: repovault_core::ports::store::ByteStream,
        metadata: &repovault_core::ports::store::ObjectMetadata,
    ) -> Result<repovault_core::ports::store::PutReceipt, repovault_core::ports::store::StoreError>
    {
        self.0.replace_stream(key, body, metadata).await
    }
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
    ) -> Result<(), repovault_core::ports::store::StoreError> {
        self.0.put(key, body).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        body: bytes::Bytes,
    ) -> Result<repovault_core::ports::store::Created, repovault_core::ports::store::StoreError>
    {
        if matches!(self.1, Fault::RecordedFirst) && key.contains("/results/") {
            let mut theirs: serde_json::Value = serde_json::from_slice(&body).unwrap();
            theirs["outcome"] = "ok".into();
            let (owner, name) = (theirs["owner"].as_str(), theirs["name"].as_str());
            let other = Layout::new("").manifest(
                owner.unwrap(),
                name.unwrap(),
                "2020-01-01T00:00:00Z".parse().unwrap(),
            );
            for field in ["key", "manifest_key"] {
                theirs["backup"][field] = other.clone().into();
            }
            self.0
                .put(key, serde_json::to_vec(&theirs).unwrap().into())
                .await?;
        }
        self.0.put_if_absent(key, body).await
    }
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<bytes::Bytes>, repovault_core::ports::store::StoreError> {
        self.0.get(key).await
    }
    async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        Option<repovault_core::ports::store::ByteStream>,
        repovault_core::ports::store::StoreError,
    > {
        self.0.get_stream(key).await
    }
    async fn head(
        &self,
        key: &str,
    ) -> Result<
        Option<repovault_core::ports::store::ObjectInfo>,
        repovault_core::ports::store::StoreError,
    > {
        let info = self.0.head(key).await?;
        if let Fault::DamagesFirstLink(first) = &self.1 {
            let mut first = first.lock().unwrap();
            if first.as_ref().and_then(Option::as_deref) == Some(key) {
                *first = Some(None);
                return Ok(info.map(|mut info| {
                    info.size += 1;
                    info
                }));
            }
        }
        Ok(info)
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<
        Vec<repovault_core::ports::store::ObjectInfo>,
        repovault_core::ports::store::StoreError,
    > {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), repovault_core::ports::store::StoreError> {
        self.0.delete(key).await
    }
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &repovault_core::ports::store::StaleKeys<'_>,
    ) -> Result<usize, repovault_core::ports::store::StoreError> {
        self.0.abort_stale_uploads(prefix, stale).await
    }
}

/// When a duplicate delivery recorded a new backup first, an attempt that found the
/// repository unchanged deletes nothing: the backup its record names is the
/// repository's existing one, not one it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_that_found_nothing_new_deletes_no_backup() {
    let mut env = Env::new().await;
    let (summary, _) = env
        .work(vec![env.message("r0", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    let existing = env.record("r0", "repo-000").await.unwrap().backup.unwrap();
    env.writes_through = Some(Arc::new(Faulty(env.store.clone(), Fault::RecordedFirst)));
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.skipped, 1, "{summary:?} {dead:?}");
    for key in [&existing.key, &existing.manifest_key] {
        assert!(
            env.store.head(key).await.unwrap().is_some(),
            "{key} was deleted"
        );
    }
}

/// A link that fails its check after the upload is removed, and the try in place that
/// follows stores it again under the same key: one delivery, no debris.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_fails_its_check_is_removed_and_stored_again_in_place() {
    let mut env = Env::new().await;
    env.writes_through = Some(Arc::new(Faulty(
        env.store.clone(),
        Fault::DamagesFirstLink(Default::default()),
    )));
    let (summary, dead) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?} {dead:?}");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!((record.outcome, record.attempt), (Outcome::Ok, 1));
    let links: Vec<String> = env
        .store
        .list("repos/acme/repo-000/packs/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_at_once_leave_one_archive_and_one_record() {
    let env = Env::new().await;
    let body = env.message("r1", "repo-000").to_body();
    let (summary, dead) = env.work_with(vec![body.clone(), body], 3, 2).await;
    assert_eq!(
        (summary.ok, summary.skipped),
        (1, 1),
        "{summary:?} {dead:?}"
    );
    assert_eq!(env.backups().await, 1);
    let record = env.record("r1", "repo-000").await.unwrap();
    let archive = record.backup.unwrap();
    assert!(env.store.head(&archive.key).await.unwrap().is_some());
}

/// The items of one kind in the data snapshot `summary` names, read by hand: zstd
/// JSON Lines, as documented.
async fn data_items(env: &Env, index: &str, kind: &str) -> Vec<serde_json::Value> {
    let store = env.store.as_ref() as &dyn Store;
    let index: repovault_core::DataIndex = store.get_json(index).await.unwrap().unwrap();
    let bytes = store.get(&index.kinds[kind].key).await.unwrap().unwrap();
    let text = zstd::decode_all(&bytes[..]).unwrap();
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// Every item [`with_data`] makes: issues and pull requests, their comments, their
/// events (34 labeled, 11 closed), pulls,
/// reviews, review comments, a commit comment, labels, a milestone, a release, two
/// collaborators, a team, a webhook, a deploy key and the main branch's protection.
const ALL_ITEMS: u64 = 34 + 68 + 45 + 4 + 8 + 8 + 1 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 1;

fn with_data(env: &Env) {
    env.gh.add_metadata(
        "acme",
        "repo-000",
        repovault_testkit::MetadataSpec {
            issues: 30,
            comments_per_issue: 2,
            pulls: 4,
            reviews_per_pull: 2,
            releases: 1,
            asset_bytes: 0,
            ..Default::default()
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_beyond_git_is_read_whole_once_then_only_conditionally() {
    let env = Env::new().await;
    with_data(&env);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    assert!(data.error.is_none(), "{data:?}");
    let index = data.index.clone().unwrap();
    let issues = data_items(&env, &index, "issues").await;
    assert_eq!(issues.len(), 34, "issues and pull requests");
    for field in [
        "id",
        "number",
        "title",
        "body",
        "user",
        "labels",
        "state",
        "created_at",
        "updated_at",
        "comments",
        "milestone",
    ] {
        assert!(
            issues.iter().all(|i| i.get(field).is_some()),
            "an issue lacks {field}"
        );
    }
    for (kind, n) in [
        ("issue-comments", 68),
        ("issue-events", 45),
        ("pulls", 4),
        ("reviews", 8),
        ("review-comments", 8),
        ("commit-comments", 1),
        ("labels", 2),
        ("milestones", 1),
        ("releases", 1),
        ("collaborators", 2),
        ("teams", 1),
        ("hooks", 1),
        ("deploy-keys", 1),
        ("rulesets", 0),
        ("branch-protection", 1),
    ] {
        assert_eq!(data_items(&env, &index, kind).await.len(), n, "{kind}");
    }
    assert_eq!(data.items, ALL_ITEMS);
    // Every kind but the three security alert lists, which this repository has not
    // turned on (GitHub answers as to a token that may not read them).
    assert_eq!(data.changed.len(), 25, "{data:?}");
    assert_eq!(
        data.not_permitted,
        [
            "dependabot-alerts",
            "code-scanning-alerts",
            "secret-scanning-alerts"
        ]
    );
    let hooks = data_items(&env, &index, "hooks").await;
    assert!(
        hooks[0]["config"].get("secret").is_none(),
        "a webhook secret was kept"
    );

    // Nothing changed: one conditional request per REST kind, every one a 304 but
    // the alert lists' refusals (asked again: a feature may be turned on), a GraphQL
    // probe of the discussions and of the projects; nothing written.
    let before = env.store.list("repos/").await.unwrap().len();
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let again = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert_eq!(
        (again.requests, again.not_modified, again.graphql_queries),
        (21, 18, 2),
        "{again:?}"
    );
    assert!(again.changed.is_empty());
    assert_eq!(again.index.as_deref(), Some(index.as_str()));
    assert_eq!(env.store.list("repos/").await.unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_comment_costs_a_few_requests_and_lands_in_the_next_snapshot() {
    let env = Env::new().await;
    with_data(&env);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let first = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    env.gh
        .add_issue_comment("acme", "repo-000", 5, "a comment added later");
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let second = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert_eq!(second.changed, ["issues", "issue-comments"], "{second:?}");
    // Unchanged costs 21 (see above): the two changed kinds' lists on top.
    assert!(second.requests <= 23, "{second:?}");
    let index = second.index.unwrap();
    assert_ne!(Some(index.as_str()), first.index.as_deref());
    let comments = data_items(&env, &index, "issue-comments").await;
    assert_eq!(comments.len(), 69);
    assert!(
        comments
            .iter()
            .any(|c| c["body"] == "a comment added later")
    );
    // The snapshot is complete: unchanged kinds carry over.
    assert_eq!(data_items(&env, &index, "pulls").await.len(), 4);
    // latest.json points at it, though git did not change.
    let latest: repovault_core::LatestPointer = (env.store.as_ref() as &dyn Store)
        .get_json("repos/acme/repo-000/latest.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.data.as_deref(), Some(index.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_issue_disappears_at_the_full_refresh() {
    let mut env = Env::new().await;
    with_data(&env);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    env.gh.delete_issue("acme", "repo-000", 7);
    // Every backup a full refresh.
    env.data_full_every = Duration::ZERO;
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    let issues = data_items(&env, data.index.as_deref().unwrap(), "issues").await;
    assert_eq!(issues.len(), 33);
    assert!(issues.iter().all(|i| i["number"] != 7));
    let comments = data_items(&env, data.index.as_deref().unwrap(), "issue-comments").await;
    assert_eq!(comments.len(), 66);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_data_cannot_be_read_the_git_backup_still_succeeds() {
    let mut env = Env::new().await;
    with_data(&env);
    // 5xx are retried in place: keep the waits short.
    env.data_max_wait = Duration::from_millis(100);
    // The API fails every try of the first data requests (git is unaffected).
    env.gh.api_error_next(10, 500);
    let (summary, _) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "{summary:?}");
    let record = env.record("r1", "repo-000").await.unwrap();
    assert_eq!(record.outcome, Outcome::Ok);
    let data = record.data.unwrap();
    assert!(
        data.error.as_deref().is_some_and(|e| e.contains("500")),
        "{data:?}"
    );
    // The kinds that could not be read are named; what could be read is indexed.
    assert!(data.failed.contains_key("issues"), "{data:?}");
    assert!(data.failed.values().all(|e| e.contains("500")), "{data:?}");
    assert!(data.failed.len() < 16, "{data:?}");
    let index = data.index.expect("the other kinds are indexed");
    assert!(!data_items(&env, &index, "labels").await.is_empty());
    assert!(data_files(&env).await.1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_assets_are_stored_once_and_shared_by_later_snapshots() {
    let mut env = Env::new().await;
    env.gh.add_metadata(
        "acme",
        "repo-000",
        repovault_testkit::MetadataSpec {
            releases: 2,
            asset_bytes: 1 << 20,
            ..Default::default()
        },
    );
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    let store = env.store.as_ref() as &dyn Store;
    let index: repovault_core::DataIndex = store
        .get_json(data.index.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.assets.len(), 2);
    for file in index.assets.values() {
        let bytes = store.get(&file.key).await.unwrap().unwrap();
        assert_eq!((bytes.len() as u64, file.size), (1 << 20, 1 << 20));
        let mut digest = repovault_core::ports::store::ObjectDigest::default();
        digest.update(&bytes);
        assert_eq!(digest.finish().sha256, file.sha256, "{}", file.key);
    }
    // A full read lists the releases again: their assets are not downloaded again.
    let stored = store.list("repos/acme/repo-000/assets/").await.unwrap();
    env.data_full_every = Duration::ZERO;
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let again = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert!(again.changed.iter().any(|k| k == "releases"), "{again:?}");
    let store = env.store.as_ref() as &dyn Store;
    assert_eq!(
        store.list("repos/acme/repo-000/assets/").await.unwrap(),
        stored
    );
    let index: repovault_core::DataIndex = store
        .get_json(again.index.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(index.assets.len(), 2);
    assert_eq!(
        again.requests, 22,
        "one request per REST kind and per protected branch, no download"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_that_runs_out_leaves_the_data_incomplete_and_the_next_run_completes() {
    // Eight requests every three seconds: less than one full read takes.
    let mut env = Env::with(FakeGitHubOptions {
        rate_limit: Some(8),
        rate_window: Some(Duration::from_secs(3)),
        ..Default::default()
    })
    .await;
    with_data(&env);
    env.data_max_wait = Duration::from_millis(100);
    let (summary, _) = env
        .work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    assert_eq!(summary.ok, 1, "the git backup does not wait for the data");
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    let error = data.error.as_deref().unwrap_or_default();
    assert!(error.contains("rate limited"), "{data:?}");
    assert!(
        env.gh.stats().rate_limited <= 1,
        "hammered a 403: {:?}",
        env.gh.stats()
    );
    // Reading stopped at the limit: the kinds not read are named, and what was
    // read is indexed, so nothing is left that no index names.
    assert!(
        data.failed.values().any(|e| e.contains("rate limited")),
        "{data:?}"
    );
    assert!(data.index.is_some(), "{data:?}");
    assert!(data_files(&env).await.1.is_empty());

    // Allowed to wait for the window to reset, the next backup completes.
    env.data_max_wait = Duration::from_secs(10);
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert!(data.error.is_none(), "{data:?}");
    assert!(data.failed.is_empty(), "{data:?}");
    assert_eq!(data.items, ALL_ITEMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_token_may_not_read_is_recorded_not_permitted() {
    let env = Env::new().await;
    with_data(&env);
    env.gh.set_admin("acme", "repo-000", false);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    assert!(data.error.is_none(), "{data:?}");
    assert_eq!(
        data.not_permitted,
        [
            "collaborators",
            "teams",
            "hooks",
            "deploy-keys",
            "rulesets",
            "branch-protection",
            "actions-variables",
            "actions-secrets",
            "dependabot-alerts",
            "code-scanning-alerts",
            "secret-scanning-alerts"
        ]
    );
    let index: repovault_core::DataIndex = (env.store.as_ref() as &dyn Store)
        .get_json(data.index.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!index.kinds.contains_key("hooks"));
    assert_eq!(index.not_permitted, data.not_permitted);
    assert_eq!(
        data_items(&env, data.index.as_deref().unwrap(), "issues")
            .await
            .len(),
        34
    );
}

/// Every file under `repos/acme/repo-000/data/`, and of those the ones no index there
/// names (debris: nothing would ever read or delete them).
async fn data_files(env: &Env) -> (Vec<String>, Vec<String>) {
    let store = env.store.as_ref() as &dyn Store;
    let files: Vec<String> = store
        .list("repos/acme/repo-000/data/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut named = std::collections::BTreeSet::new();
    for key in files.iter().filter(|k| k.ends_with("/index.json")) {
        let index: repovault_core::DataIndex = store.get_json(key).await.unwrap().unwrap();
        named.insert(key.clone());
        named.extend(index.kinds.into_values().map(|f| f.key));
    }
    let unindexed = files
        .iter()
        .filter(|k| !named.contains(*k))
        .cloned()
        .collect();
    (files, unindexed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_api_does_not_serve_costs_that_kind_only() {
    let env = Env::new().await;
    with_data(&env);
    // A server without the endpoint (or a repository with the feature disabled).
    env.gh.withhold("acme", "repo-000", "branches", Some(404));
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    let index_key = data.index.clone().expect("the other kinds are indexed");
    assert_eq!(
        data.failed.keys().collect::<Vec<_>>(),
        ["branch-protection"],
        "{data:?}"
    );
    assert!(
        data.failed["branch-protection"].contains("not found"),
        "{data:?}"
    );
    assert!(
        data.error
            .as_deref()
            .is_some_and(|e| e.contains("branch-protection")),
        "the report lists it: {data:?}"
    );
    let index: repovault_core::DataIndex = (env.store.as_ref() as &dyn Store)
        .get_json(&index_key)
        .await
        .unwrap()
        .unwrap();
    assert!(!index.kinds.contains_key("branch-protection"));
    assert!(
        index.failed["branch-protection"]
            .error
            .contains("not found"),
        "{index:?}"
    );
    // Every other kind but the three alert lists this repository has not turned on.
    assert_eq!(index.kinds.len(), 24, "every other kind: {index:?}");
    assert_eq!(data.items, ALL_ITEMS - 1);
    assert_eq!(data_items(&env, &index_key, "issues").await.len(), 34);
    let (files, unindexed) = data_files(&env).await;
    assert!(unindexed.is_empty(), "{unindexed:?}");

    // Nothing changed: every kind but the missing one and the refused alert lists is
    // a 304, nothing is written.
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let again = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert_eq!((again.requests, again.not_modified), (21, 17), "{again:?}");
    assert!(again.changed.is_empty(), "{again:?}");
    assert_eq!(again.index, data.index);
    assert_eq!(data_files(&env).await, (files, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_that_fails_keeps_its_previous_file_and_is_read_again_next_time() {
    let mut env = Env::new().await;
    with_data(&env);
    // 5xx are retried in place: keep the waits short.
    env.data_max_wait = Duration::from_millis(100);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let first = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    let first_index: repovault_core::DataIndex = (env.store.as_ref() as &dyn Store)
        .get_json(first.index.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();

    // A new comment, and the comments endpoint failing: the issue lands, the comment
    // waits for the next backup.
    env.gh
        .add_issue_comment("acme", "repo-000", 5, "a comment added later");
    env.gh
        .withhold("acme", "repo-000", "issues/comments", Some(500));
    env.work(vec![env.message("r2", "repo-000").to_body()], 1)
        .await;
    let second = env.record("r2", "repo-000").await.unwrap().data.unwrap();
    assert_eq!(second.changed, ["issues"], "{second:?}");
    assert_eq!(
        second.failed.keys().collect::<Vec<_>>(),
        ["issue-comments"],
        "{second:?}"
    );
    assert!(
        second.failed["issue-comments"].contains("500"),
        "{second:?}"
    );
    let index_key = second.index.clone().unwrap();
    assert_ne!(Some(index_key.as_str()), first.index.as_deref());
    let index: repovault_core::DataIndex = (env.store.as_ref() as &dyn Store)
        .get_json(&index_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        index.kinds["issue-comments"], first_index.kinds["issue-comments"],
        "the previous file, with its ETag"
    );
    assert!(index.failed.contains_key("issue-comments"));
    assert_eq!(
        data_items(&env, &index_key, "issue-comments").await.len(),
        68
    );
    assert!(data_files(&env).await.1.is_empty());

    // Served again: the next backup reads it and the snapshot is whole again.
    env.gh.withhold("acme", "repo-000", "issues/comments", None);
    env.work(vec![env.message("r3", "repo-000").to_body()], 1)
        .await;
    let third = env.record("r3", "repo-000").await.unwrap().data.unwrap();
    assert!(
        third.error.is_none() && third.failed.is_empty(),
        "{third:?}"
    );
    let index_key = third.index.unwrap();
    let comments = data_items(&env, &index_key, "issue-comments").await;
    assert_eq!(comments.len(), 69);
    assert!(
        comments
            .iter()
            .any(|c| c["body"] == "a comment added later")
    );
    let index: repovault_core::DataIndex = (env.store.as_ref() as &dyn Store)
        .get_json(&index_key)
        .await
        .unwrap()
        .unwrap();
    assert!(index.failed.is_empty(), "{index:?}");
    assert!(data_files(&env).await.1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_branches_are_backed_up_whatever_their_names() {
    let env = Env::new().await;
    with_data(&env);
    let names = ["main", "release/x#", "ünïcödé", "a b?c=d&e%f+g"];
    for branch in &names[1..] {
        env.gh.protect_branch("acme", "repo-000", branch);
    }
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    assert!(data.error.is_none(), "{data:?}");
    assert!(
        !data.not_permitted.iter().any(|k| k == "branch-protection"),
        "{data:?}"
    );
    let rules = data_items(&env, data.index.as_deref().unwrap(), "branch-protection").await;
    let mut backed_up: Vec<&str> = rules
        .iter()
        .map(|r| r["branch"].as_str().unwrap())
        .collect();
    backed_up.sort();
    let mut expected = names.to_vec();
    expected.sort();
    assert_eq!(backed_up, expected);
    assert!(rules.iter().all(|r| r["enforce_admins"]["enabled"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_are_kept_as_scheme_and_host_only() {
    let env = Env::new().await;
    with_data(&env);
    env.work(vec![env.message("r1", "repo-000").to_body()], 1)
        .await;
    let data = env.record("r1", "repo-000").await.unwrap().data.unwrap();
    let hooks = data_items(&env, data.index.as_deref().unwrap(), "hooks").await;
    assert_eq!(hooks[0]["config"]["url"], "https://hooks.slack.com");
    assert_eq!(hooks[0]["config"]["content_type"], "json");
    // The fake's webhook URL carries a password, a secret path and a token: none of it
    // is anywhere in the store.
    let store = env.store.as_ref() as &dyn Store;
    for object in store.list("").await.unwrap() {
        let bytes = store.get(&object.key).await.unwrap().unwrap();
        let text = match object.key.ends_with(".zst") {
            true => zstd::decode_all(&bytes[..]).unwrap(),
            false => bytes.to_vec(),
        };
        let text = String::from_utf8_lossy(&text);
        for secret in ["hunter2", "s3cr3t", "XXXXsecretpath", "T0001"] {
            assert!(!text.contains(secret), "{secret} in {}", object.key);
        }
    }
}
