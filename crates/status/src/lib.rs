//! # repovault-status
//!
//! The status page and read-only API, from what the store already holds (plans,
//! reports, `latest.json`, manifests):
//!
//! - `GET /`: the last runs with their counts; every repository with its last backup,
//!   its status in the newest run and its age, failures first;
//! - `GET /repo/{owner}/{name}`: a repository's backups, newest first;
//! - `GET /api/runs/latest`: the newest run's report (JSON);
//! - `GET /api/backups?repo=OWNER/NAME`: a repository's backups (JSON).
//!
//! Plain server-rendered HTML, no script, readable on a phone. The API needs
//! `Authorization: Bearer <token>` (compared in constant time); the pages need it too
//! unless the server listens on loopback only.

mod html;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use repovault_core::ports::store::Store;
use repovault_core::{Secret, Target};
use repovault_reporter::{RepoStatus, Report, Totals};
use repovault_repository::{Layout, Repository, Scope};
use serde::Serialize;

/// What the status server reads, and who may.
pub struct Status {
    pub targets: Vec<(Target, Arc<dyn Store>)>,
    /// The API's bearer token (`None`: the API answers 401).
    pub token: Option<Secret>,
    /// Pages need the token too (the server listens beyond loopback).
    pub pages_need_token: bool,
}

/// One run, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RunLine {
    pub run_id: String,
    pub target: String,
    pub planned_at: Timestamp,
    /// `None`: no report yet (still running, or never reported).
    pub totals: Option<Totals>,
}

/// One repository, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RepoLine {
    pub repository: String,
    pub target: String,
    pub last_backup: Option<Timestamp>,
    /// In the newest run's report (`None`: not in it).
    pub status: Option<RepoStatus>,
    pub error: Option<String>,
    /// Deleted on GitHub, or moved (and where).
    pub gone: Option<String>,
}

/// One backup of a repository: the catalog's entry, exactly what `repovault ls` shows.
pub use repovault_repository::BackupEntry as BackupLine;

impl Status {
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/repo/{owner}/{name}", get(repo_page))
            .route("/api/runs/latest", get(latest_run_api))
            .route("/api/backups", get(backups_api))
            .layer(axum::middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self)
    }

    /// The newest runs, newest first.
    pub async fn runs(&self, limit: usize) -> Vec<RunLine> {
        let mut lines = Vec::new();
        for (target, store) in &self.targets {
            let Ok(plans) = repovault_reporter::plans(store.as_ref(), target).await else {
                continue;
            };
            let layout = Layout::new(&target.prefix);
            for plan in plans {
                let report: Option<Report> = store
                    .get_json(&layout.report_json(&plan.run_id))
                    .await
                    .unwrap_or(None);
                lines.push(RunLine {
                    run_id: plan.run_id.to_string(),
                    target: target.to_string(),
                    planned_at: plan.created_at,
                    totals: report.map(|r| r.totals),
                });
            }
        }
        lines.sort_by_key(|l| std::cmp::Reverse(l.planned_at));
        lines.truncate(limit);
        lines
    }

    /// The newest run's report, across targets.
    pub async fn latest_report(&self) -> Option<Report> {
        let mut newest: Option<Report> = None;
        for (target, store) in &self.targets {
            let Ok(run) = repovault_reporter::latest_run(store.as_ref(), target).await else {
                continue;
            };
            let report: Option<Report> = store
                .get_json(&Layout::new(&target.prefix).report_json(&run))
                .await
                .unwrap_or(None);
            if let Some(report) = report
                && newest
                    .as_ref()
                    .is_none_or(|n| n.planned_at < report.planned_at)
            {
                newest = Some(report);
            }
        }
        newest
    }

    /// Every repository with a backup or in the newest run: failures first, then by
    /// name.
    pub async fn repos(&self) -> Vec<RepoLine> {
        let newest = self.latest_report().await;
        let mut lines: BTreeMap<(String, String), RepoLine> = BTreeMap::new();
        for (target, store) in &self.targets {
            let repo = Repository::new(store.as_ref(), &target.prefix);
            let entries = match repo.repositories(Scope::All).await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!(%target, error = %e, "could not list the backups");
                    continue;
                }
            };
            for entry in entries {
                lines.insert(
                    (target.to_string(), entry.full_name()),
                    RepoLine {
                        repository: entry.full_name(),
                        target: target.to_string(),
                        last_backup: entry.newest,
                        status: None,
                        error: None,
                        gone: entry.gone.map(|gone| match gone.to {
                            Some(to) => format!("moved to {to}"),
                            None => "deleted on GitHub".into(),
                        }),
                    },
                );
            }
        }
        if let Some(report) = &newest {
            for r in &report.repos {
                let line = lines
                    .entry((report.target.to_string(), format!("{}/{}", r.owner, r.name)))
                    .or_insert_with(|| RepoLine {
                        repository: format!("{}/{}", r.owner, r.name),
                        target: report.target.to_string(),
                        last_backup: None,
                        status: None,
                        error: None,
                        gone: None,
                    });
                line.status = Some(r.status);
                line.error.clone_from(&r.error);
            }
        }
        let mut lines: Vec<RepoLine> = lines.into_values().collect();
        let bad = |l: &RepoLine| {
            matches!(
                l.status,
                Some(RepoStatus::Failed) | Some(RepoStatus::Missing)
            )
        };
        lines.sort_by(|a, b| (!bad(a), &a.repository).cmp(&(!bad(b), &b.repository)));
        lines
    }

    /// A repository's backups, newest first, in the first target that has any.
    pub async fn backups(&self, owner: &str, name: &str) -> Option<(String, Vec<BackupLine>)> {
        Repository::check_names(owner, name).ok()?;
        for (target, store) in &self.targets {
            match Repository::new(store.as_ref(), &target.prefix)
                .catalog(owner, name)
                .await
            {
                Ok(lines) if !lines.is_empty() => return Some((target.to_string(), lines)),
                Ok(_) => {}
                Err(e) => tracing::warn!(%target, error = %e, "could not list the backups"),
            }
        }
        None
    }
}

/// Constant-time equality (the token's length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API always needs the bearer token; the pages when they are reachable beyond
/// loopback.
async fn guard(State(status): State<Arc<Status>>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    if api || status.pages_need_token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = match (&status.token, presented) {
            (Some(token), Some(presented)) => {
                same(token.expose().as_bytes(), presented.trim().as_bytes())
            }
            _ => false,
        };
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required",
            )
                .into_response();
        }
    }
    next.run(request).await
}

async fn index(State(status): State<Arc<Status>>) -> Html<String> {
    let runs = status.runs(10).await;
    let repos = status.repos().await;
    Html(html::index(&runs, &repos, Timestamp::now()))
}

async fn repo_page(
    State(status): State<Arc<Status>>,
    Path((owner, name)): Path<(String, String)>,
) -> Response {
    match status.backups(&owner, &name).await {
        Some((target, backups)) => {
            Html(html::repo(&format!("{owner}/{name}"), &target, &backups)).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no backups of that repository").into_response(),
    }
}

async fn latest_run_api(State(status): State<Arc<Status>>) -> Response {
    match status.latest_report().await {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::NOT_FOUND, "no run has been reported").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct RepoQuery {
    repo: String,
}

async fn backups_api(
    State(status): State<Arc<Status>>,
    Query(query): Query<RepoQuery>,
) -> Response {
    let Some((owner, name)) = query.repo.split_once('/') else {
        return (StatusCode::BAD_REQUEST, "repo=OWNER/NAME").into_response();
    };
    match status.backups(owner, name).await {
        Some((target, backups)) => axum::Json(serde_json::json!({
            "repository": query.repo,
            "target": target,
            "backups": backups,
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, "no backups of that repository").into_response(),
    }
}
