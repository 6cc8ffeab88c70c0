//! # repovault-planner
//!
//! Plans a run: lists each job's repositories through its [`Source`], applies the
//! job's filters, writes `runs/<run>/plan.json` to each target (the list the reporter
//! will account for), enqueues one versioned [`JobMessage`] per repository, and marks
//! the run `enqueued.json`. On a full run it also backs up each organization's own data
//! (settings, members, teams) once, through [`PlannerDeps::data`].
//!
//! With data beyond git, each job carries a hint from the organization's event feed
//! (`activity`): which kinds of the repository's data may have changed since the
//! previous run, so that a quiet repository costs its worker no API request.
//!
//! Planning the same run id again enqueues nothing once the run is marked; a planner
//! that died between writing the plan and the mark resumes: it enqueues the planned
//! repositories that have no result record yet.
//!
//! ```no_run
//! # async fn demo(deps: repovault_planner::PlannerDeps, jobs: Vec<repovault_core::config::JobSpec>) {
//! use repovault_core::RunId;
//!
//! let run_id = RunId::generate(jiff::Timestamp::now());
//! let cfg = repovault_planner::PlannerConfig {
//!     run_id,
//!     jobs,
//!     only: vec![],
//!     metadata: Default::default(),
//! };
//! let planned = repovault_planner::run(cfg, &deps).await.unwrap();
//! println!("{} repositories enqueued", planned.iter().map(|p| p.enqueued).sum::<usize>());
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use repovault_core::config::{JobSpec, MetadataSettings};
use repovault_core::ports::queue::{Queue, QueueError};
use repovault_core::ports::source::{RepoData, Source, SourceError};
use repovault_core::ports::store::{Created, Store, StoreError, TargetStores};
use repovault_core::{
    Clock, JobMessage, LatestRun, Owner, Plan, PlannedRepo, RECORD_SCHEMA, RepoRef, RunId, Target,
};
use repovault_repository::{Keys, Layout, RepoError, Repository};
use serde::{Deserialize, Serialize};

mod activity;

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    pub run_id: RunId,
    pub jobs: Vec<JobSpec>,
    /// Plan just these `(owner, name)` repositories instead of listing (push-triggered
    /// backups); each is planned under the job for its owner.
    pub only: Vec<(String, String)>,
    /// How the data beyond git is read: how often the organizations' own data is
    /// read whole, how often each repository's is probed whatever the event feed says.
    pub metadata: MetadataSettings,
}

/// The ports a planner runs on.
pub struct PlannerDeps {
    /// One source per job name (jobs may use different API hosts).
    pub sources: HashMap<String, Arc<dyn Source>>,
    pub targets: TargetStores,
    pub queue: Arc<dyn Queue>,
    /// Per job name, the API for the organization's own data (settings, members,
    /// teams), backed up once per run; none: not backed up.
    pub data: HashMap<String, Arc<dyn RepoData>>,
    /// Where "now" comes from (the plan's time, when organizations' data is due to be
    /// read whole).
    pub clock: Arc<dyn Clock>,
}

/// The plan of one target and how many jobs this call enqueued for it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub enqueued: usize,
}

/// `runs/<run>/enqueued.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnqueuedMark {
    schema: u32,
    enqueued: usize,
    at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error("job {job}: listing repositories failed: {source}")]
    Source { job: String, source: SourceError },
    #[error("repository {repo} not found")]
    RepoNotFound { repo: String },
    #[error("repository {repo}: no configured job backs up its owner")]
    NoJobFor { repo: String },
    #[error("writing the plan: {0}")]
    Store(#[from] StoreError),
    #[error("enqueueing jobs: {0}")]
    Queue(#[from] QueueError),
    #[error("job {job}: no {what} configured")]
    Wiring { job: String, what: &'static str },
    #[error("{repo}: reading its latest backup: {source}")]
    Latest { repo: String, source: RepoError },
}

/// Plans the run; returns one plan per target.
pub async fn run(cfg: PlannerConfig, deps: &PlannerDeps) -> Result<Vec<Planned>, PlannerError> {
    let selected = select(&cfg, &deps.sources).await?;
    let now = deps.clock.now();
    // A due full read comes with a probe of every kind; zero: every run, the feed unused.
    let probe_every = cfg.metadata.probe_every.min(cfg.metadata.full_every);
    let feeds = if cfg.only.is_empty() && !probe_every.is_zero() {
        activity::Feeds::read(&cfg, deps).await
    } else {
        activity::Feeds::default()
    };
    let mut by_target: BTreeMap<String, (Target, Vec<JobMessage>)> = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (job, repo) in selected {
        if !seen.insert((job.target.to_string(), repo.full_name().to_lowercase())) {
            tracing::warn!(job = %job.name, repo = %repo.full_name(), "selected by an earlier job with the same target; planned once");
            continue;
        }
        // Each job is its own trace, begun here and continued by the worker.
        let span = tracing::info_span!(parent: None, "enqueue", repo = %repo.full_name(), run = %cfg.run_id, job = %job.name);
        let mut message = JobMessage::new(
            cfg.run_id.clone(),
            job.name.clone(),
            job.target.clone(),
            repo,
            job.options,
        );
        message.trace = repovault_telemetry::propagation::context_of(&span);
        if job.options.metadata {
            message.data_hint = feeds.hint(job, &message.repo, now, probe_every);
        }
        by_target
            .entry(job.target.to_string())
            .or_insert_with(|| (job.target.clone(), Vec::new()))
            .1
            .push(message);
    }
    let mut planned = Vec::new();
    for (_, (target, messages)) in by_target {
        let store = deps
            .targets
            .get(&target)
            .ok_or_else(|| PlannerError::Wiring {
                job: messages.first().map(|m| m.job.clone()).unwrap_or_default(),
                what: "store for the target",
            })?;
        let (target_planned, fresh) = plan_target(
            &cfg.run_id,
            &target,
            messages,
            store.as_ref(),
            deps.queue.as_ref(),
            deps.clock.as_ref(),
        )
        .await?;
        // A resumed run's earlier jobs were hinted from the state before: the next
        // run reads the feed from there again.
        if fresh {
            feeds.commit(&target, store.as_ref()).await;
        }
        planned.push(target_planned);
    }
    if cfg.only.is_empty() {
        back_up_orgs(&cfg, deps).await;
    }
    Ok(planned)
}

/// The organizations' own data, once per run per (target, organization). A failure is
/// logged and never fails the plan: the next run tries again.
async fn back_up_orgs(cfg: &PlannerConfig, deps: &PlannerDeps) {
    let mut done = HashSet::new();
    for job in &cfg.jobs {
        let Owner::Org(org) = &job.selector.owner else {
            continue;
        };
        let (Some(source), Some(store)) = (deps.data.get(&job.name), deps.targets.get(&job.target))
        else {
            continue;
        };
        if !job.options.metadata || !done.insert((job.target.to_string(), org.to_lowercase())) {
            continue;
        }
        let keys = match Keys::sealing(&job.encryption) {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(org, error = %e, "organization data not backed up: its recipients are unusable");
                continue;
            }
        };
        let repo = Repository::new(store.as_ref(), &job.target.prefix).with_keys(keys);
        match repovault_data::back_up_org_data(
            &repo,
            source.as_ref(),
            org,
            cfg.metadata.full_every,
            deps.clock.now(),
        )
        .await
        {
            Ok(summary) => {
                tracing::info!(org, items = summary.items, changed = ?summary.changed, not_permitted = ?summary.not_permitted, requests = summary.requests, not_modified = summary.not_modified, "organization data backed up")
            }
            Err(e) => tracing::warn!(org, error = %e, "organization data not backed up this run"),
        }
    }
}

/// What a run would do with one repository (`--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub job: String,
    pub repo: RepoRef,
    pub target: Target,
    /// The newest backup's time, if there is one.
    pub last_backup: Option<Timestamp>,
    /// Whether it would be backed up (pushed to since its last backup, never backed
    /// up, or `full`), rather than found unchanged.
    pub would_back_up: bool,
}

/// The repositories a run would plan, filters applied, and which of them changed
/// since their last backup (GitHub's `pushed_at` against `latest.json`). Lists through
/// the sources and reads `latest.json` from the targets; writes nothing and enqueues
/// nothing. With `full`, every repository would be backed up.
pub async fn preview(
    cfg: &PlannerConfig,
    sources: &HashMap<String, Arc<dyn Source>>,
    targets: &TargetStores,
    full: bool,
) -> Result<Vec<Preview>, PlannerError> {
    let mut previews = Vec::new();
    for (job, repo) in select(cfg, sources).await? {
        let store = targets
            .get(&job.target)
            .ok_or_else(|| PlannerError::Wiring {
                job: job.name.clone(),
                what: "store for the target",
            })?;
        let latest = match Repository::new(store.as_ref(), &job.target.prefix)
            .latest(&repo.owner, &repo.name)
            .await
        {
            Ok(latest) => latest,
            // The worker backs such a repository up in full, as one never backed up.
            Err(e) if e.is_invalid() => {
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(source) => {
                return Err(PlannerError::Latest {
                    repo: repo.full_name(),
                    source,
                });
            }
        };
        let last_backup = latest.map(|l| l.created_at);
        let would_back_up = full
            || match (last_backup, repo.pushed_at) {
                // `pushed_at` has whole seconds: a push in the backup's second counts.
                (Some(last), Some(pushed)) => pushed.as_second() >= last.as_second(),
                (Some(_), None) => false,
                (None, _) => true,
            };
        previews.push(Preview {
            job: job.name.clone(),
            target: job.target.clone(),
            repo,
            last_backup,
            would_back_up,
        });
    }
    Ok(previews)
}

/// Every (job, repository) pair to plan, filters applied.
async fn select<'a>(
    cfg: &'a PlannerConfig,
    sources: &HashMap<String, Arc<dyn Source>>,
) -> Result<Vec<(&'a JobSpec, RepoRef)>, PlannerError> {
    let source_of = |job: &JobSpec| {
        sources
            .get(&job.name)
            .cloned()
            .ok_or_else(|| PlannerError::Wiring {
                job: job.name.clone(),
                what: "source",
            })
    };
    let mut selected = Vec::new();
    if !cfg.only.is_empty() {
        for (owner, name) in &cfg.only {
            let repo_name = format!("{owner}/{name}");
            let job = cfg
                .jobs
                .iter()
                .find(|j| j.selector.owner.login().eq_ignore_ascii_case(owner))
                .ok_or_else(|| PlannerError::NoJobFor {
                    repo: repo_name.clone(),
                })?;
            let repo = source_of(job)?
                .repo(owner, name)
                .await
                .map_err(|source| PlannerError::Source {
                    job: job.name.clone(),
                    source,
                })?
                .ok_or(PlannerError::RepoNotFound { repo: repo_name })?;
            selected.push((job, repo));
        }
        return Ok(selected);
    }
    for job in &cfg.jobs {
        let repos = source_of(job)?
            .list_repos(&job.selector)
            .await
            .map_err(|source| PlannerError::Source {
                job: job.name.clone(),
                source,
            })?;
        tracing::info!(job = %job.name, repos = repos.len(), store = %job.target, "selected repositories");
        selected.extend(repos.into_iter().map(|r| (job, r)));
    }
    Ok(selected)
}

/// Writes the plan and enqueues `messages`; `true` when this call planned the run
/// from the start (not resumed, nor found enqueued).
async fn plan_target(
    run_id: &RunId,
    target: &Target,
    messages: Vec<JobMessage>,
    store: &dyn Store,
    queue: &dyn Queue,
    clock: &dyn Clock,
) -> Result<(Planned, bool), PlannerError> {
    let layout = Layout::new(&target.prefix);
    let plan_key = layout.plan(run_id);
    let latest = store
        .get_json::<LatestRun>(&layout.latest_run())
        .await?
        .filter(|latest| latest.run_id != *run_id);
    let fresh = Plan {
        schema: RECORD_SCHEMA,
        run_id: run_id.clone(),
        created_at: clock.now(),
        target: target.clone(),
        repos: messages
            .iter()
            .map(|m| PlannedRepo {
                job: m.job.clone(),
                owner: m.repo.owner.clone(),
                name: m.repo.name.clone(),
            })
            .collect(),
        previous: latest.map(|latest| latest.run_id),
    };
    let (plan, resuming) = match store.get_json::<Plan>(&plan_key).await? {
        Some(plan) => (plan, true),
        None => match store.put_json_if_absent(&plan_key, &fresh).await? {
            Created::Created => {
                let latest = LatestRun {
                    schema: RECORD_SCHEMA,
                    run_id: run_id.clone(),
                    created_at: fresh.created_at,
                };
                store.put_json(&layout.latest_run(), &latest).await?;
                (fresh, false)
            }
            Created::AlreadyExists => (store.get_json(&plan_key).await?.unwrap_or(fresh), true),
        },
    };
    if store.head(&layout.enqueued(run_id)).await?.is_some() {
        tracing::warn!(run = %run_id, store = %target, "this run was already planned and enqueued; nothing to do");
        return Ok((Planned { plan, enqueued: 0 }, false));
    }
    let mut to_send = messages;
    if resuming {
        // Enqueue what the stored plan names and nobody has finished yet.
        let planned: HashSet<String> = plan
            .repos
            .iter()
            .map(|r| r.full_name().to_lowercase())
            .collect();
        to_send.retain(|m| planned.contains(&m.repo.full_name().to_lowercase()));
        let mut unfinished = Vec::with_capacity(to_send.len());
        for m in to_send {
            if store
                .head(&layout.result(run_id, &m.repo.owner, &m.repo.name))
                .await?
                .is_none()
            {
                unfinished.push(m);
            }
        }
        tracing::warn!(run = %run_id, store = %target, unfinished = unfinished.len(), "resuming a run whose enqueueing was interrupted");
        to_send = unfinished;
    }
    let bodies: Vec<String> = to_send.iter().map(JobMessage::to_body).collect();
    queue.send(&bodies).await?;
    let mark = EnqueuedMark {
        schema: RECORD_SCHEMA,
        enqueued: bodies.len(),
        at: clock.now(),
    };
    store.put_json(&layout.enqueued(run_id), &mark).await?;
    tracing::info!(run = %run_id, store = %target, planned = plan.repos.len(), enqueued = bodies.len(), "planned");
    Ok((
        Planned {
            plan,
            enqueued: bodies.len(),
        },
        !resuming,
    ))
}
