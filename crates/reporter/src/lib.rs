//! # repovault-reporter
//!
//! Joins a run's plan with its result records and accounts for every planned
//! repository: `ok`, `unchanged`, `failed`, or `missing` (planned, never recorded).
//! Writes `runs/<run>/report.json` and a Markdown `report.md` beside it.
//!
//! ```no_run
//! # async fn demo(store: &dyn repovault_core::ports::store::Store, target: &repovault_core::Target) {
//! let run: repovault_core::RunId = "nightly-1".parse().unwrap();
//! let report = repovault_reporter::build(store, target, &run, None).await.unwrap();
//! repovault_reporter::write(store, &report).await.unwrap();
//! std::process::exit(report.exit_code());
//! # }
//! ```

mod markdown;
mod notify;

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use std::time::Duration;

use repovault_core::ports::queue::{Queue, QueueError};
use repovault_core::ports::store::{ObjectInfo, Store, StoreError};
use repovault_core::{
    DataSummary, LatestRun, Outcome, Plan, RECORD_SCHEMA, ResultRecord, RunId, Target,
};
use repovault_repository::{Layout, RepoError, Repository};
use repovault_telemetry::{kv, metrics};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use markdown::markdown;
pub use notify::{Delivery, NotifySettings, deliver, notification, notify};

/// One repository's line in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoStatus {
    Ok,
    Unchanged,
    Failed,
    /// Planned but no record: still queued, lost, or in the dead-letter queue.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoReport {
    pub job: String,
    pub owner: String,
    pub name: String,
    pub status: RepoStatus,
    pub attempt: Option<u32>,
    /// The key of the backup holding its state (read from `archive` too, as earlier
    /// versions wrote it).
    #[serde(alias = "archive")]
    pub backup: Option<String>,
    pub size: Option<u64>,
    pub error: Option<String>,
    /// The data beyond git: what it cost and, if it could not be completed, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSummary>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub planned: usize,
    pub ok: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub missing: usize,
    /// Bytes of the backups written in this run.
    pub bytes_stored: u64,
    /// GitHub API requests spent on the data beyond git, and how many of them were
    /// answered `304 Not Modified` (free of rate limit).
    #[serde(default)]
    pub data_requests: u64,
    #[serde(default)]
    pub data_not_modified: u64,
    /// Repositories whose data could not be completed this run (retried next run).
    #[serde(default)]
    pub data_incomplete: usize,
    /// The lowest rate-limit budget left that the run's records saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_remaining: Option<u64>,
}

/// `runs/<run>/report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub run_id: RunId,
    pub target: Target,
    /// When the run's plan was made (reports written before this field: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_at: Option<Timestamp>,
    pub generated_at: Timestamp,
    pub totals: Totals,
    /// Messages in the dead-letter queue when the report was made, if known.
    pub dead_letters: Option<u64>,
    pub repos: Vec<RepoReport>,
    /// Who was told about the run, and whether it got through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Delivery>,
}

impl Report {
    /// 0 when every planned repository is ok or unchanged, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.totals.failed + self.totals.missing > 0 {
            1
        } else {
            0
        }
    }

    /// Whether every planned repository has a record.
    pub fn is_complete(&self) -> bool {
        self.totals.missing == 0
    }

    pub fn summary_line(&self) -> String {
        let t = &self.totals;
        format!(
            "run {}: {} planned, {} ok, {} unchanged, {} failed, {} missing ({} stored)",
            self.run_id,
            t.planned,
            t.ok,
            t.unchanged,
            t.failed,
            t.missing,
            human_bytes(t.bytes_stored)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error("no plan for run {run} in {target}")]
    NoPlan { run: RunId, target: Target },
    #[error("no run has been planned in {target}")]
    NoRuns { target: Target },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// How often an unfinished run is looked at again while waiting: soon at first, then
/// every 5 s (each look lists the run's records).
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(5);

/// Builds the report, rebuilding it until every planned repository is recorded, the
/// `deadline` passes, or the queue has nothing left that could complete it. Time is
/// tokio's clock, so tests can pause and advance it.
pub async fn wait_for(
    store: &dyn Store,
    target: &Target,
    run: &RunId,
    queue: Option<&dyn Queue>,
    deadline: Instant,
) -> Result<Report, ReporterError> {
    let mut drained_before = false;
    let mut poll = FIRST_POLL;
    // Records already read, kept between looks: each is read once, again only if it
    // changed (a failed attempt's record replaced by a later one).
    let mut read = ReadRecords::default();
    loop {
        let depth = match queue {
            Some(q) => Some(q.depth().await?),
            None => None,
        };
        if let Some(depth) = depth {
            metrics()
                .queue_backlog
                .record(depth.visible + depth.in_flight, &[]);
        }
        let report = build_reading(store, target, run, depth.map(|d| d.dead), &mut read).await?;
        // Approximate counts lag: believe "drained" when seen twice in a row, and only
        // once the planner has finished enqueueing (before, an empty queue means
        // nothing).
        let drained = depth.is_some_and(|d| d.is_drained())
            && store
                .head(&Layout::new(&target.prefix).enqueued(run))
                .await?
                .is_some();
        if report.is_complete() || Instant::now() >= deadline || (drained && drained_before) {
            return Ok(report);
        }
        drained_before = drained;
        tracing::info!(
            missing = report.totals.missing,
            "waiting for the run to finish"
        );
        tokio::time::sleep_until((Instant::now() + poll).min(deadline)).await;
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// The run planned last into `target` (`latest-run.json`).
pub async fn latest_run(store: &dyn Store, target: &Target) -> Result<RunId, ReporterError> {
    recent_plans(store, target, 1)
        .await?
        .pop()
        .map(|plan| plan.run_id)
        .ok_or_else(|| ReporterError::NoRuns {
            target: target.clone(),
        })
}

/// The `n` plans of `target` planned last, newest first: `latest-run.json`'s, then
/// each plan's `previous` (n reads, whatever the number of runs). A store without the
/// pointer (written before it) is listed instead, every plan read: run ids do not
/// sort by time (`push-<sha>` after `nightly-…`), plans' `created_at` does.
pub async fn recent_plans(
    store: &dyn Store,
    target: &Target,
    n: usize,
) -> Result<Vec<Plan>, ReporterError> {
    let layout = Layout::new(&target.prefix);
    let Some(latest) = store.get_json::<LatestRun>(&layout.latest_run()).await? else {
        let mut plans = every_plan(store, target).await?;
        plans.sort_by_key(|plan| std::cmp::Reverse(plan.created_at));
        plans.truncate(n);
        return Ok(plans);
    };
    let mut plans: Vec<Plan> = Vec::new();
    let mut next = Some(latest.run_id);
    while let Some(run) = next.take().filter(|_| plans.len() < n) {
        let Some(plan) = store.get_json::<Plan>(&layout.plan(&run)).await? else {
            break;
        };
        // A link back to a run already read would loop: the chain ends there.
        next = plan
            .previous
            .clone()
            .filter(|previous| plans.iter().all(|p| p.run_id != *previous) && *previous != run);
        plans.push(plan);
    }
    Ok(plans)
}

/// Every run's plan in `target`, read after listing `runs/`.
async fn every_plan(store: &dyn Store, target: &Target) -> Result<Vec<Plan>, ReporterError> {
    let layout = Layout::new(&target.prefix);
    let keys: Vec<String> = store
        .list(&layout.runs_root())
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with("/plan.json"))
        .collect();
    let plans: Vec<Option<Plan>> = futures::stream::iter(keys)
        .map(|key| async move { store.get_json::<Plan>(&key).await })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    Ok(plans.into_iter().flatten().collect())
}

/// Reads the plan and every record of `run` and accounts for each planned repository.
pub async fn build(
    store: &dyn Store,
    target: &Target,
    run: &RunId,
    dead_letters: Option<u64>,
) -> Result<Report, ReporterError> {
    build_reading(
        store,
        target,
        run,
        dead_letters,
        &mut ReadRecords::default(),
    )
    .await
}

/// Records read by an earlier [`build_reading`] of the same run, by key, with the size
/// and time the listing gave them then.
#[derive(Default)]
struct ReadRecords(std::collections::HashMap<String, (u64, Option<Timestamp>, ResultRecord)>);

/// [`build`], reading only the records that are not in `read` as listed now.
async fn build_reading(
    store: &dyn Store,
    target: &Target,
    run: &RunId,
    dead_letters: Option<u64>,
    read: &mut ReadRecords,
) -> Result<Report, ReporterError> {
    let layout = Layout::new(&target.prefix);
    let plan: Plan =
        store
            .get_json(&layout.plan(run))
            .await?
            .ok_or_else(|| ReporterError::NoPlan {
                run: run.clone(),
                target: target.clone(),
            })?;
    // Each record is named by its key and read through the repository crate, so it is
    // checked to be that repository's and that run's.
    let results_dir = layout.results_dir(run);
    let listed: Vec<(String, String, ObjectInfo)> = store
        .list(&results_dir)
        .await?
        .into_iter()
        .filter_map(|o| {
            let (owner, name) = o
                .key
                .strip_prefix(&results_dir)?
                .strip_suffix(".json")?
                .split_once('/')?;
            Some((owner.to_owned(), name.to_owned(), o))
        })
        .collect();
    let repository = Repository::new(store, &target.prefix);
    let known = &read.0;
    let fetched: Vec<_> = futures::stream::iter(listed)
        .map(|(owner, name, info)| {
            let repository = &repository;
            async move {
                let record = match known.get(&info.key) {
                    Some((size, at, record)) if *size == info.size && *at == info.last_modified => {
                        Ok(Some(record.clone()))
                    }
                    _ => repository.record(run, &owner, &name).await,
                };
                (owner, name, info, record)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut records = Vec::with_capacity(fetched.len());
    for (owner, name, info, record) in fetched {
        if let Ok(Some(r)) = &record {
            read.0
                .insert(info.key, (info.size, info.last_modified, r.clone()));
        }
        records.push((owner, name, record));
    }
    let read = records;
    // A record that cannot be read is that repository's problem, not the report's:
    // it is reported failed with the reason, and every other repository is accounted.
    let mut by_repo: BTreeMap<String, RepoReport> = BTreeMap::new();
    for (owner, name, record) in read {
        let line = match record {
            Ok(Some(r)) => line_for(&r),
            Ok(None) => continue,
            Err(RepoError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!(error = %e, "unreadable result record");
                let job = plan
                    .repos
                    .iter()
                    .find(|p| {
                        p.owner.eq_ignore_ascii_case(&owner) && p.name.eq_ignore_ascii_case(&name)
                    })
                    .map_or_else(String::new, |p| p.job.clone());
                RepoReport {
                    job,
                    status: RepoStatus::Failed,
                    attempt: None,
                    backup: None,
                    size: None,
                    error: Some(format!(
                        "its result record is unreadable ({e}); back it up again (planner --repo {owner}/{name})"
                    )),
                    data: None,
                    owner,
                    name,
                }
            }
        };
        by_repo.insert(format!("{}/{}", line.owner, line.name).to_lowercase(), line);
    }

    let mut totals = Totals {
        planned: plan.repos.len(),
        ..Totals::default()
    };
    let mut repos = Vec::with_capacity(plan.repos.len());
    for planned in &plan.repos {
        let line = match by_repo.remove(&planned.full_name().to_lowercase()) {
            Some(line) => line,
            None => RepoReport {
                job: planned.job.clone(),
                owner: planned.owner.clone(),
                name: planned.name.clone(),
                status: RepoStatus::Missing,
                attempt: None,
                backup: None,
                size: None,
                error: None,
                data: None,
            },
        };
        count(&mut totals, &line);
        repos.push(line);
    }
    // Records of repositories enqueued outside the plan (single-repo runs) are
    // reported too, without counting as planned.
    for line in by_repo.into_values() {
        count(&mut totals, &line);
        repos.push(line);
    }
    // Problems first, then by name.
    repos.sort_by(|a, b| {
        (std::cmp::Reverse(a.status), &a.owner, &a.name).cmp(&(
            std::cmp::Reverse(b.status),
            &b.owner,
            &b.name,
        ))
    });
    Ok(Report {
        schema: RECORD_SCHEMA,
        run_id: run.clone(),
        target: target.clone(),
        planned_at: Some(plan.created_at),
        generated_at: Timestamp::now(),
        totals,
        dead_letters,
        repos,
        notifications: Vec::new(),
    })
}

fn line_for(record: &ResultRecord) -> RepoReport {
    let status = match record.outcome {
        Outcome::Ok => RepoStatus::Ok,
        Outcome::Unchanged => RepoStatus::Unchanged,
        Outcome::Failed => RepoStatus::Failed,
    };
    RepoReport {
        job: record.job.clone(),
        owner: record.owner.clone(),
        name: record.name.clone(),
        status,
        attempt: Some(record.attempt),
        backup: record.backup.as_ref().map(|a| a.key.clone()),
        size: record.backup.as_ref().map(|a| a.size),
        error: record.error.as_ref().map(|e| e.message.clone()),
        data: record.data.clone(),
    }
}

fn count(totals: &mut Totals, line: &RepoReport) {
    if let Some(data) = &line.data {
        totals.data_requests += data.requests;
        totals.data_not_modified += data.not_modified;
        totals.data_incomplete += usize::from(data.error.is_some());
        if let Some(left) = data.rate_remaining {
            totals.rate_remaining = Some(totals.rate_remaining.map_or(left, |t| t.min(left)));
        }
    }
    match line.status {
        RepoStatus::Ok => {
            totals.ok += 1;
            totals.bytes_stored += line.size.unwrap_or(0);
        }
        RepoStatus::Unchanged => totals.unchanged += 1,
        RepoStatus::Failed => totals.failed += 1,
        RepoStatus::Missing => totals.missing += 1,
    }
}

/// Writes `report.json` and `report.md` for the report's run, and publishes its totals
/// as metrics (`repovault.run.repositories`, `repovault.run.duration`).
pub async fn write(store: &dyn Store, report: &Report) -> Result<(), ReporterError> {
    let m = metrics();
    let t = &report.totals;
    for (status, n) in [
        ("ok", t.ok),
        ("unchanged", t.unchanged),
        ("failed", t.failed),
        ("missing", t.missing),
    ] {
        m.run_repositories.record(n as u64, &[kv("status", status)]);
    }
    if let Some(planned_at) = report.planned_at {
        let took = report.generated_at.duration_since(planned_at).as_secs_f64();
        m.run_duration.record(took.max(0.0), &[]);
    }
    let layout = Layout::new(&report.target.prefix);
    store
        .put_json(&layout.report_json(&report.run_id), report)
        .await?;
    store
        .put(&layout.report_md(&report.run_id), markdown(report).into())
        .await?;
    Ok(())
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_local::FsStore;

    fn target(dir: &std::path::Path) -> Target {
        Target::parse(dir.to_str().unwrap(), dir).unwrap()
    }

    async fn plan(store: &dyn Store, run: &str, created_at: &str, repos: &[&str]) {
        let layout = Layout::new("");
        let run: RunId = run.parse().unwrap();
        let plan = serde_json::json!({
            "schema": RECORD_SCHEMA,
            "run_id": run,
            "created_at": created_at,
            "target": {"store": "file:///x", "prefix": ""},
            "repos": repos.iter().map(|name| serde_json::json!({
                "job": "acme", "owner": "acme", "name": name, "id": 1, "size_kb": 1
            })).collect::<Vec<_>>(),
        });
        store.put_json(&layout.plan(&run), &plan).await.unwrap();
    }

    async fn record(store: &dyn Store, run: &RunId, name: &str) {
        let repo = serde_json::json!({
            "owner": "acme", "name": name, "id": 1, "clone_url": "https://github.com/acme/x.git",
            "default_branch": "main", "pushed_at": null, "size_kb": 1, "private": false,
            "archived": false, "fork": false, "has_wiki": false,
        });
        let msg: repovault_core::JobMessage = serde_json::from_value(serde_json::json!({
            "schema": 1, "run_id": run, "job": "acme",
            "target": {"store": "file:///x", "prefix": ""}, "repo": repo,
            "options": {"wiki": false, "metadata": false, "lfs": false},
        }))
        .unwrap();
        let record = ResultRecord::of_job(&msg, Outcome::Ok, 1, Timestamp::now(), Timestamp::now());
        store
            .put_json(&Layout::new("").result(run, "acme", name), &record)
            .await
            .unwrap();
    }

    /// Links `run`'s plan to `previous` and points `latest-run.json` at it, as the
    /// planner does.
    async fn link(store: &dyn Store, run: &str, previous: &str) {
        let layout = Layout::new("");
        let run: RunId = run.parse().unwrap();
        let mut plan: Plan = store.get_json(&layout.plan(&run)).await.unwrap().unwrap();
        plan.previous = Some(previous.parse().unwrap());
        store.put_json(&layout.plan(&run), &plan).await.unwrap();
        let latest = LatestRun {
            schema: RECORD_SCHEMA,
            run_id: run,
            created_at: plan.created_at,
        };
        store.put_json(&layout.latest_run(), &latest).await.unwrap();
    }

    #[tokio::test]
    async fn recent_runs_follow_the_pointer_and_read_only_the_plans_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let store: &dyn Store = &fs;
        let target = target(dir.path());
        for (i, run) in ["r1", "r2", "r3", "r4", "r5"].iter().enumerate() {
            plan(store, run, &format!("2026-11-2{i}T02:00:00Z"), &["api"]).await;
            if i > 0 {
                link(store, run, &format!("r{i}")).await;
            }
        }
        // The oldest plan is not JSON: reading it (or listing every plan) would fail.
        store
            .put(&Layout::new("").plan(&"r1".parse().unwrap()), "{".into())
            .await
            .unwrap();
        let runs = |plans: Vec<Plan>| {
            plans
                .into_iter()
                .map(|p| p.run_id.to_string())
                .collect::<Vec<_>>()
        };
        let recent = recent_plans(store, &target, 3).await.unwrap();
        assert_eq!(runs(recent), ["r5", "r4", "r3"]);
        assert_eq!(latest_run(store, &target).await.unwrap().as_str(), "r5");
        // A link back to a newer run ends the walk instead of looping.
        link(store, "r4", "r5").await;
        link(store, "r5", "r4").await;
        assert_eq!(
            runs(recent_plans(store, &target, 10).await.unwrap()),
            ["r5", "r4"]
        );
    }

    #[tokio::test]
    async fn without_the_pointer_the_newest_plan_by_time_is_the_latest_run() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let store: &dyn Store = &fs;
        plan(store, "push-9f", "2026-11-22T03:00:00Z", &["api"]).await;
        plan(store, "nightly-1", "2026-11-22T02:00:00Z", &["api"]).await;
        let target = target(dir.path());
        assert_eq!(
            latest_run(store, &target).await.unwrap().as_str(),
            "push-9f"
        );
        let recent = recent_plans(store, &target, 5).await.unwrap();
        assert_eq!(recent.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_when_every_repository_is_recorded_and_reads_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let counted = repovault_testkit::CountingStore::new(FsStore::new(dir.path()));
        let store: &dyn Store = &counted;
        plan(store, "r1", "2026-11-22T02:00:00Z", &["api", "web"]).await;
        let run: RunId = "r1".parse().unwrap();
        record(store, &run, "api").await;
        let target = target(dir.path());
        let waiting = wait_for(
            store,
            &target,
            &run,
            None,
            Instant::now() + Duration::from_secs(3600),
        );
        let late_record = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            record(store, &run, "web").await;
        };
        let (report, ()) = tokio::join!(waiting, late_record);
        let report = report.unwrap();
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.totals.ok, 2);
        // It looked several times; each record was read once.
        let layout = Layout::new("");
        let looks = counted.reads_of(&layout.results_dir(&run));
        assert!(looks >= 5, "looked {looks} times");
        assert_eq!(counted.reads_of(&layout.result(&run, "acme", "api")), 1);
        assert_eq!(counted.reads_of(&layout.result(&run, "acme", "web")), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_gives_up_at_the_deadline_and_when_the_queue_is_drained() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let store: &dyn Store = &fs;
        plan(store, "r1", "2026-11-22T02:00:00Z", &["api"]).await;
        let run: RunId = "r1".parse().unwrap();
        let target = target(dir.path());
        let start = Instant::now();
        let report = wait_for(store, &target, &run, None, start + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(report.totals.missing, 1);
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(60),
            "waited to the deadline"
        );

        // An empty queue ends the wait early, once the planner marked the run enqueued.
        let queue = repovault_local::MemoryQueue::new(Duration::from_secs(30), 3);
        store
            .put_json(&Layout::new("").enqueued(&run), &serde_json::json!({}))
            .await
            .unwrap();
        let start = Instant::now();
        let report = wait_for(
            store,
            &target,
            &run,
            Some(&queue),
            start + Duration::from_secs(3600),
        )
        .await
        .unwrap();
        assert_eq!(report.totals.missing, 1);
        assert!(
            Instant::now() - start < Duration::from_secs(10),
            "{:?}",
            Instant::now() - start
        );
    }

    #[tokio::test]
    async fn the_report_counts_data_requests_and_names_incomplete_data() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let store: &dyn Store = &fs;
        plan(store, "r1", "2026-11-22T02:00:00Z", &["api", "web"]).await;
        let run: RunId = "r1".parse().unwrap();
        for (name, requests, not_modified, error) in [
            ("api", 7, 7, None),
            ("web", 3, 0, Some("HTTP 502 from /repos/acme/web/issues")),
        ] {
            record(store, &run, name).await;
            let key = Layout::new("").result(&run, "acme", name);
            let mut r: ResultRecord = store.get_json(&key).await.unwrap().unwrap();
            r.data = Some(DataSummary {
                index: None,
                items: 0,
                changed: vec![],
                requests,
                not_modified,
                graphql_queries: 0,
                not_permitted: vec![],
                rate_remaining: Some(requests * 100),
                error: error.map(str::to_owned),
                ..Default::default()
            });
            store.put_json(&key, &r).await.unwrap();
        }
        let report = build(store, &target(dir.path()), &run, None).await.unwrap();
        let t = report.totals;
        assert_eq!(
            (t.data_requests, t.data_not_modified, t.data_incomplete),
            (10, 7, 1)
        );
        assert_eq!(
            report.exit_code(),
            0,
            "incomplete data does not fail the run"
        );
        let md = markdown(&report);
        assert!(md.contains("10 API request(s), 7 answered 304"), "{md}");
        assert!(md.contains("rate-limit budget left: 300"), "{md}");
        assert!(
            md.contains("| acme/web | HTTP 502 from /repos/acme/web/issues |"),
            "{md}"
        );
    }

    #[tokio::test]
    async fn latest_is_the_newest_plan_not_the_largest_run_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        let store: &dyn Store = &store;
        plan(store, "push-ffff", "2026-11-21T10:00:00Z", &[]).await;
        plan(store, "nightly-2026-11-22", "2026-11-22T02:00:00Z", &[]).await;
        let latest = latest_run(store, &target(dir.path())).await.unwrap();
        assert_eq!(latest.as_str(), "nightly-2026-11-22");
        plan(store, "event-aaaa", "2026-11-22T09:00:00Z", &[]).await;
        let latest = latest_run(store, &target(dir.path())).await.unwrap();
        assert_eq!(latest.as_str(), "event-aaaa");
    }

    #[tokio::test]
    async fn an_unreadable_record_is_that_repositorys_failure_and_the_rest_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStore::new(dir.path());
        let store: &dyn Store = &fs;
        plan(store, "r1", "2026-11-22T02:00:00Z", &["api", "web"]).await;
        let run: RunId = "r1".parse().unwrap();
        let layout = Layout::new("");
        store
            .put(&layout.result(&run, "acme", "api"), "{ truncated".into())
            .await
            .unwrap();
        let report = build(store, &target(dir.path()), &run, None).await.unwrap();
        assert_eq!(report.totals.planned, 2);
        assert_eq!((report.totals.failed, report.totals.missing), (1, 1));
        let api = report.repos.iter().find(|r| r.name == "api").unwrap();
        assert_eq!(api.status, RepoStatus::Failed);
        let error = api.error.as_deref().unwrap();
        assert!(
            error.contains("unreadable") && error.contains("acme/api"),
            "{error}"
        );
    }
}
