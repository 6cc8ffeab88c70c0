//! # repovault-worker
//!
//! Takes job messages off a [`Queue`], several at once, and backs up each repository:
//! ls-refs → one fetch whose pack streams into the store as the next git bundle of the
//! repository's chain → verify → manifest → result record → `latest.json` → ack (a
//! server without git protocol v2: mirror clone → tar + zstd archive instead). Delivery is at-least-once; the effect is once:
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
//! - on shutdown the worker stops receiving, lets running jobs finish within the
//!   grace period, and releases the rest (visibility 0).
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
mod chain;
mod error;
mod heartbeat;
mod job;
mod lfs;
mod work_dir;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use repovault_core::config::{GitSettings, RetryPolicy, defaults};
use repovault_core::ports::queue::{Lease, Queue};
use repovault_core::{Outcome, Progress};
use repovault_git::archive::ArchiveOptions;
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

pub use allow::{AllowList, GitHubAccess};
use job::Disposition;
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
    /// Parent of the per-job temp dirs.
    pub work_dir: PathBuf,
    pub archive: ArchiveOptions,
    /// How often a repository's data beyond git is read whole (deletions show then);
    /// in between only what changed is read.
    pub data_full_every: Duration,
    /// How git data is stored: when a chain starts anew, whether objects are checked
    /// at backup time.
    pub git: GitSettings,
}

impl WorkerConfig {
    pub fn new(work_dir: PathBuf) -> Self {
        WorkerConfig {
            concurrency: defaults::CONCURRENCY,
            retry: RetryPolicy::default(),
            visibility_timeout: defaults::VISIBILITY_TIMEOUT,
            poll_wait: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(25),
            work_dir,
            archive: ArchiveOptions::default(),
            data_full_every: repovault_data::FULL_REFRESH,
            git: GitSettings::default(),
        }
    }
}

/// Told whenever the worker starts holding jobs and whenever it goes idle: on ECS,
/// task scale-in protection, so autoscaling never stops a task mid-archive.
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

pub(crate) struct Shared {
    pub queue: Arc<dyn Queue>,
    pub allow: AllowList,
    pub progress: Arc<Progress>,
    pub cfg: WorkerConfig,
}

/// Runs until `shutdown` resolves, then drains as described in the crate docs.
pub async fn run(
    cfg: WorkerConfig,
    deps: WorkerDeps,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let shared = Arc::new(Shared {
        queue: deps.queue,
        allow: deps.allow,
        progress: deps.progress,
        cfg,
    });
    let mut pool = Pool {
        shared: shared.clone(),
        jobs: JoinSet::new(),
        leases: HashMap::new(),
        summary: WorkerSummary::default(),
        busy: deps.busy,
    };
    tokio::pin!(shutdown);
    // When shutdown was requested: the grace period counts from then.
    let stopping_at = loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break Instant::now(),
            Some(joined) = pool.jobs.join_next_with_id(), if !pool.jobs.is_empty() => {
                pool.joined(joined).await;
                continue;
            }
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let want = (slots.available_permits() + 1).min(10);
        let receive = shared.queue.receive(want, shared.cfg.poll_wait);
        tokio::pin!(receive);
        let received = tokio::select! {
            _ = &mut shutdown => {
                let stopping_at = Instant::now();
                // Let the poll finish (at most `poll_wait`) and hand back what it got:
                // abandoned, it stays open on the server, which may give it a message
                // nobody will ever process until its visibility times out.
                if let Ok(leases) = receive.await {
                    for lease in leases {
                        job::release(&shared, &lease, Duration::ZERO).await;
                    }
                }
                break stopping_at;
            }
            received = &mut receive => received,
        };
        let leases = match received {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!(error = %e, "receive failed; backing off");
                tokio::select! {
                    _ = &mut shutdown => break Instant::now(),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        let mut permit = Some(permit);
        if pool.jobs.is_empty() && !leases.is_empty() {
            pool.set_busy(true);
        }
        for lease in leases {
            let permit = match permit.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .try_acquire_owned()
                    .expect("received no more than the free slots"),
            };
            let task_lease = lease.clone();
            let task_shared = shared.clone();
            let handle = pool.jobs.spawn(async move {
                let _slot = permit;
                job::handle(task_shared, task_lease).await
            });
            pool.leases.insert(handle.id(), lease);
        }
    };
    pool.shut_down(stopping_at + shared.cfg.shutdown_grace)
        .await;
    pool.summary
}

/// The running jobs and the leases they hold.
struct Pool {
    shared: Arc<Shared>,
    jobs: JoinSet<Disposition>,
    leases: HashMap<tokio::task::Id, Lease>,
    summary: WorkerSummary,
    busy: Option<Arc<dyn BusyObserver>>,
}

impl Pool {
    fn set_busy(&self, busy: bool) {
        if let Some(observer) = &self.busy {
            observer.set_busy(busy);
        }
    }

    async fn joined(&mut self, joined: Result<(tokio::task::Id, Disposition), JoinError>) {
        self.count(joined).await;
        if self.jobs.is_empty() {
            self.set_busy(false);
        }
    }

    async fn count(&mut self, joined: Result<(tokio::task::Id, Disposition), JoinError>) {
        let s = &mut self.summary;
        match joined {
            Ok((id, disposition)) => {
                self.leases.remove(&id);
                match disposition {
                    Disposition::Recorded(Outcome::Ok) => s.ok += 1,
                    Disposition::Recorded(Outcome::Unchanged) => s.unchanged += 1,
                    Disposition::Recorded(Outcome::Failed) => s.failed += 1,
                    Disposition::Skipped => s.skipped += 1,
                    Disposition::Retrying => s.retried += 1,
                    Disposition::DeadLettered => s.dead_lettered += 1,
                }
            }
            Err(e) => {
                let Some(lease) = self.leases.remove(&e.id()) else {
                    return;
                };
                if e.is_panic() {
                    tracing::error!(message_id = %lease.message_id, "job panicked; its message will be retried");
                    s.retried += 1;
                    let delay = self.shared.cfg.retry.delay(lease.receive_count, None);
                    job::release(&self.shared, &lease, delay).await;
                } else {
                    s.released += 1;
                    job::release(&self.shared, &lease, Duration::ZERO).await;
                }
            }
        }
    }

    /// Lets running jobs finish until `deadline`, then cancels and releases the rest.
    async fn shut_down(&mut self, deadline: Instant) {
        while let Some(joined) = self.jobs.try_join_next_with_id() {
            self.joined(joined).await;
        }
        if !self.jobs.is_empty() {
            tracing::info!(
                running = self.jobs.len(),
                grace_secs = self.shared.cfg.shutdown_grace.as_secs(),
                "shutting down: finishing running jobs"
            );
        }
        loop {
            tokio::select! {
                joined = self.jobs.join_next_with_id() => match joined {
                    Some(joined) => self.joined(joined).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        tracing::warn!(
            releasing = self.jobs.len(),
            "grace period over: releasing unfinished jobs"
        );
        self.jobs.abort_all();
        while let Some(joined) = self.jobs.join_next_with_id().await {
            self.joined(joined).await;
        }
    }
}
