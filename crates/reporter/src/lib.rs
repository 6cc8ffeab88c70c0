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

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use repovault_core::ports::store::{Store, StoreError};
use repovault_core::{Layout, Outcome, Plan, RECORD_SCHEMA, ResultRecord, RunId, Target};
use serde::{Deserialize, Serialize};

pub use markdown::markdown;

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
    pub archive: Option<String>,
    pub size: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub planned: usize,
    pub ok: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub missing: usize,
    /// Bytes of the archives written in this run.
    pub bytes_stored: u64,
}

/// `runs/<run>/report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub run_id: RunId,
    pub target: Target,
    pub generated_at: Timestamp,
    pub totals: Totals,
    /// Messages in the dead-letter queue when the report was made, if known.
    pub dead_letters: Option<u64>,
    pub repos: Vec<RepoReport>,
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the plan and every record of `run` and accounts for each planned repository.
pub async fn build(
    store: &dyn Store,
    target: &Target,
    run: &RunId,
    dead_letters: Option<u64>,
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
    let keys: Vec<String> = store
        .list(&layout.results_dir(run))
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".json"))
        .collect();
    let records: Vec<ResultRecord> = futures::stream::iter(keys)
        .map(|key| async move { store.get_json::<ResultRecord>(&key).await })
        .buffer_unordered(32)
        .try_filter_map(|r| async move { Ok(r) })
        .try_collect()
        .await?;
    let mut by_repo: BTreeMap<String, ResultRecord> = records
        .into_iter()
        .map(|r| (format!("{}/{}", r.owner, r.name).to_lowercase(), r))
        .collect();

    let mut totals = Totals {
        planned: plan.repos.len(),
        ..Totals::default()
    };
    let mut repos = Vec::with_capacity(plan.repos.len());
    for planned in &plan.repos {
        let line = match by_repo.remove(&planned.full_name().to_lowercase()) {
            Some(record) => line_for(&record),
            None => RepoReport {
                job: planned.job.clone(),
                owner: planned.owner.clone(),
                name: planned.name.clone(),
                status: RepoStatus::Missing,
                attempt: None,
                archive: None,
                size: None,
                error: None,
            },
        };
        count(&mut totals, &line);
        repos.push(line);
    }
    // Records of repositories enqueued outside the plan (single-repo runs) are
    // reported too, without counting as planned.
    for record in by_repo.values() {
        let line = line_for(record);
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
        generated_at: Timestamp::now(),
        totals,
        dead_letters,
        repos,
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
        archive: record.archive.as_ref().map(|a| a.key.clone()),
        size: record.archive.as_ref().map(|a| a.size),
        error: record.error.as_ref().map(|e| e.message.clone()),
    }
}

fn count(totals: &mut Totals, line: &RepoReport) {
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

/// Writes `report.json` and `report.md` for the report's run.
pub async fn write(store: &dyn Store, report: &Report) -> Result<(), ReporterError> {
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
