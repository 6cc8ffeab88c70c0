//! # repovault-planner
//!
//! Plans a run: lists each job's repositories through its [`Source`], applies the
//! job's filters, writes `runs/<run>/plan.json` to each target (the list the reporter
//! will account for), and enqueues one versioned [`JobMessage`] per repository.
//!
//! A plan is written with `If-None-Match: *`: planning the same run id twice enqueues
//! nothing the second time.
//!
//! ```no_run
//! # async fn demo(deps: repovault_planner::PlannerDeps, jobs: Vec<repovault_core::config::JobSpec>) {
//! use repovault_core::RunId;
//!
//! let run_id = RunId::generate(jiff::Timestamp::now());
//! let plans = repovault_planner::run(repovault_planner::PlannerConfig { run_id, jobs }, &deps).await.unwrap();
//! println!("{} repositories planned", plans.iter().map(|p| p.repos.len()).sum::<usize>());
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use repovault_core::config::JobSpec;
use repovault_core::ports::queue::{Queue, QueueError};
use repovault_core::ports::source::{Source, SourceError};
use repovault_core::ports::store::{Created, StoreError, TargetStores};
use repovault_core::{JobMessage, Layout, Plan, PlannedRepo, RECORD_SCHEMA, RunId, Target};

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlannerConfig {
    pub run_id: RunId,
    pub jobs: Vec<JobSpec>,
}

/// The ports a planner runs on.
pub struct PlannerDeps {
    /// One source per job name (jobs may use different API hosts).
    pub sources: HashMap<String, Arc<dyn Source>>,
    pub targets: TargetStores,
    pub queue: Arc<dyn Queue>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error("job {job}: listing repositories failed: {source}")]
    Source { job: String, source: SourceError },
    #[error("writing the plan: {0}")]
    Store(#[from] StoreError),
    #[error("enqueueing jobs: {0}")]
    Queue(#[from] QueueError),
    #[error("job {job}: no {what} configured")]
    Wiring { job: String, what: &'static str },
}

/// Plans the run; returns one plan per target. A target whose plan already existed
/// is returned as stored and nothing is enqueued for it.
pub async fn run(cfg: PlannerConfig, deps: &PlannerDeps) -> Result<Vec<Plan>, PlannerError> {
    let mut by_target: BTreeMap<String, (Target, Vec<JobMessage>)> = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for job in &cfg.jobs {
        let source = deps
            .sources
            .get(&job.name)
            .ok_or_else(|| PlannerError::Wiring {
                job: job.name.clone(),
                what: "source",
            })?;
        let repos =
            source
                .list_repos(&job.selector)
                .await
                .map_err(|source| PlannerError::Source {
                    job: job.name.clone(),
                    source,
                })?;
        tracing::info!(job = %job.name, repos = repos.len(), store = %job.target, "selected repositories");
        let entry = by_target
            .entry(job.target.to_string())
            .or_insert_with(|| (job.target.clone(), Vec::new()));
        for repo in repos {
            if !seen.insert((job.target.to_string(), repo.full_name().to_lowercase())) {
                tracing::warn!(job = %job.name, repo = %repo.full_name(), "selected by an earlier job with the same target; planned once");
                continue;
            }
            entry.1.push(JobMessage::new(
                cfg.run_id.clone(),
                job.name.clone(),
                job.target.clone(),
                repo,
                job.options,
            ));
        }
    }

    let mut plans = Vec::new();
    for (_, (target, messages)) in by_target {
        let store = deps
            .targets
            .get(&target)
            .ok_or_else(|| PlannerError::Wiring {
                job: messages.first().map(|m| m.job.clone()).unwrap_or_default(),
                what: "store for the target",
            })?;
        let plan = Plan {
            schema: RECORD_SCHEMA,
            run_id: cfg.run_id.clone(),
            created_at: Timestamp::now(),
            target: target.clone(),
            repos: messages
                .iter()
                .map(|m| PlannedRepo {
                    job: m.job.clone(),
                    owner: m.repo.owner.clone(),
                    name: m.repo.name.clone(),
                })
                .collect(),
        };
        let key = Layout::new(&target.prefix).plan(&cfg.run_id);
        if store.put_json_if_absent(&key, &plan).await? == Created::AlreadyExists {
            tracing::warn!(run = %cfg.run_id, store = %target, "this run was already planned; nothing enqueued");
            let existing: Option<Plan> = store.get_json(&key).await?;
            plans.push(existing.unwrap_or(plan));
            continue;
        }
        let bodies: Vec<String> = messages.iter().map(JobMessage::to_body).collect();
        deps.queue.send(&bodies).await?;
        tracing::info!(run = %cfg.run_id, store = %target, enqueued = bodies.len(), "planned");
        plans.push(plan);
    }
    Ok(plans)
}
