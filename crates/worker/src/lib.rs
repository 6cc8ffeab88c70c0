//! # repovault-worker
//!
//! Takes job messages off a [`Queue`], several at once, and backs up each repository:
//! ls-refs → one fetch whose pack streams into the store as the next git bundle of the
//! repository's chain → verify → manifest → result record → `latest.json` → ack (a
//! server without git protocol v2: a mirror clone packed into the same bundle).
//! Delivery is at-least-once; the effect is once:
//!
//! - a heartbeat keeps a message invisible while its job runs, so it reappears only if
//!   the worker dies;
//! - a redelivered job whose record exists is acked and skipped;
//! - a retryable failure goes back on the queue after a backoff (or the delay the
//!   server asked for); the last attempt writes a `failed` record and dead-letters the
//!   message; a permanent failure writes the record and acks at once;
//! - a malformed message, one naming a target outside the allow-list, or one whose
//!   clone URL is not its own repository on the target's configured GitHub host, goes
//!   to the dead-letter queue with the reason (the token goes to that host only);
//! - a message of a newer schema is released for a newer worker (rolling deploys) and
//!   dead-lettered only when its attempts run out;
//! - a transient git fault (5xx, reset, timeout) is retried in place before the
//!   message goes back to the queue: redelivery is for crashes;
//! - a job that panics is retried, and on its last delivery recorded `failed` with
//!   the panic's message;
//! - on shutdown the worker stops receiving, lets running jobs finish within the
//!   grace period, and releases the rest (visibility 0).
//!
//! Two halves: `runner` is a generic at-least-once job runner (lease, heartbeat,
//! concurrency, shutdown, backoff, dead-letter); `job` is the backup job's commit
//! protocol, with `backup` (the git side, through `remote` and `lfs`) and the
//! repository crate's chain writer under it.
//!
//! ```no_run
//! # async fn demo(queue: std::sync::Arc<dyn repovault_core::ports::queue::Queue>,
//! #               store: std::sync::Arc<dyn repovault_core::ports::store::Store>) {
//! use repovault_core::ports::source::FixedToken;
//! use repovault_core::{GitHost, Secret, Target};
//! use repovault_worker::{AllowList, GitHubAccess, WorkerConfig, WorkerDeps};
//!
//! let mut allow = AllowList::new();
//! let github = GitHubAccess {
//!     host: GitHost::from_api_url("https://api.github.com", false).unwrap(),
//!     owner: None,
//!     tokens: std::sync::Arc::new(FixedToken(Some(Secret::new("ghp_example")))),
//!     data: None,
//! };
//! let target = Target::parse("s3://backups/github", std::path::Path::new("/")).unwrap();
//! allow.allow(target, store, github);
//! let cfg = WorkerConfig::new(std::env::temp_dir().join("repovault"));
//! let deps = WorkerDeps::new(queue, allow);
//! let summary = repovault_worker::run(cfg, deps, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! println!("{summary:?}");
//! # }
//! ```

mod allow;
mod backup;
mod error;
mod heartbeat;
mod job;
mod lfs;
mod remote;
mod runner;
mod work_dir;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use repovault_core::config::{GitSettings, defaults};
use repovault_core::ports::queue::Queue;
use repovault_core::retry::RetryPolicy;
use repovault_core::{Clock, Progress, SystemClock};

pub use allow::{AllowList, GitHubAccess};
pub use work_dir::claim_work_dir;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// How long a received message stays invisible; the heartbeat renews it every
    /// third of this.
    pub visibility_timeout: Duration,
    /// Long-poll wait for one receive call.
    pub poll_wait: Duration,
    /// On shutdown, how long running jobs may take before they are released.
    pub shutdown_grace: Duration,
    /// Parent of the per-job scratch dirs.
    pub work_dir: PathBuf,
    /// How often a repository's data beyond git is read whole (deletions show then);
    /// in between only what changed is read.
    pub data_full_every: Duration,
    /// How git data is stored: when a chain starts anew, whether objects are checked
    /// at backup time.
    pub git: GitSettings,
    /// Where "now" comes from for every decision (chain restarts, data refreshes,
    /// record times).
    pub clock: Arc<dyn Clock>,
}

impl WorkerConfig {
    pub fn new(work_dir: PathBuf) -> Self {
        WorkerConfig {
            concurrency: defaults::CONCURRENCY,
            retry: RetryPolicy::default(),
            visibility_timeout: defaults::VISIBILITY_TIMEOUT,
            poll_wait: defaults::POLL_WAIT,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            work_dir,
            data_full_every: defaults::METADATA_FULL_EVERY,
            git: GitSettings::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Told whenever the worker starts holding jobs and whenever it goes idle: on ECS,
/// task scale-in protection, so autoscaling never stops a task mid-backup.
pub trait BusyObserver: Send + Sync {
    fn set_busy(&self, busy: bool);
}

/// The ports a worker runs on.
pub struct WorkerDeps {
    pub queue: Arc<dyn Queue>,
    /// The only targets this worker writes to, and the GitHub hosts it backs up from.
    pub allow: AllowList,
    pub progress: Arc<Progress>,
    pub busy: Option<Arc<dyn BusyObserver>>,
}

impl WorkerDeps {
    pub fn new(queue: Arc<dyn Queue>, allow: AllowList) -> Self {
        WorkerDeps {
            queue,
            allow,
            progress: Arc::new(Progress::default()),
            busy: None,
        }
    }
}

/// What a worker did, by disposition (`Display`: `3 ok, 1 unchanged, …`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub ok: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub skipped: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Released unfinished at shutdown.
    pub released: u64,
}

impl std::fmt::Display for WorkerSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ok, {} unchanged, {} failed, {} skipped, {} retried, {} dead-lettered, {} released",
            self.ok,
            self.unchanged,
            self.failed,
            self.skipped,
            self.retried,
            self.dead_lettered,
            self.released
        )
    }
}

/// Runs until `shutdown` resolves, then drains as described in the crate docs.
pub async fn run(
    cfg: WorkerConfig,
    deps: WorkerDeps,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    let settings = runner::RunnerSettings {
        concurrency: cfg.concurrency,
        retry: cfg.retry,
        visibility_timeout: cfg.visibility_timeout,
        poll_wait: cfg.poll_wait,
        shutdown_grace: cfg.shutdown_grace,
    };
    let job = Arc::new(job::BackupJob {
        allow: deps.allow,
        progress: deps.progress,
        work_dir: cfg.work_dir,
        git: cfg.git,
        data_full_every: cfg.data_full_every,
        clock: cfg.clock,
    });
    runner::run(settings, deps.queue, job, deps.busy, shutdown).await
}
