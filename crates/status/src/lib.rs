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
//! Plain server-rendered HTML, no script, readable on a phone.
//!
//! Who may read:
//!
//! - the API always needs `Authorization: Bearer <token>` (compared in constant
//!   time);
//! - the pages need it too, unless [`Status::public_pages`] says otherwise
//!   (`--public-pages`, given explicitly);
//! - without a token configured, only requests whose `Host` is a loopback name
//!   (`localhost`, `127.0.0.1`, `[::1]`, any port) are answered; any other gets
//!   `421 Misdirected Request`. A tunnel, a reverse proxy or a DNS-rebinding page
//!   forwards another name, so none of them publishes the page by accident.
//!
//! The front page's model (every `latest.json` and `gone.json`, the newest report)
//! is read at most once per [`PAGE_TTL`], however many requests ask for it: a flood
//! of requests does not become a flood of store reads.

mod html;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

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

/// How long the front page's model and the latest report are reused.
pub const PAGE_TTL: Duration = Duration::from_secs(5);

/// What the status server reads, and who may.
pub struct Status {
    pub targets: Vec<(Target, Arc<dyn Store>)>,
    /// The bearer token (`None`: the API answers 401, and only loopback `Host`
    /// names are answered at all).
    pub token: Option<Secret>,
    /// Pages without the token (the API still needs it).
    pub public_pages: bool,
    /// The front page's model, and when it was read.
    index: Cached<Arc<IndexModel>>,
    /// The newest run's report, and when it was read.
    latest: Cached<Option<Arc<Report>>>,
}

/// What the front page shows.
struct IndexModel {
    runs: Vec<RunLine>,
    repos: Vec<RepoLine>,
}

/// One value, read again once it is older than [`PAGE_TTL`]. Requests that find it
/// stale while it is being read wait for that read instead of starting their own.
struct Cached<T>(tokio::sync::Mutex<Option<(tokio::time::Instant, T)>>);

impl<T: Clone> Cached<T> {
    fn new() -> Self {
        Cached(tokio::sync::Mutex::new(None))
    }

    async fn get_or_read<F: Future<Output = T>>(&self, read: impl FnOnce() -> F) -> T {
        let mut slot = self.0.lock().await;
        if let Some((at, value)) = &*slot
            && at.elapsed() < PAGE_TTL
        {
            return value.clone();
        }
        let value = read().await;
        *slot = Some((tokio::time::Instant::now(), value.clone()));
        value
    }
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
    pub fn new(
        targets: Vec<(Target, Arc<dyn Store>)>,
        token: Option<Secret>,
        public_pages: bool,
    ) -> Status {
        Status {
            targets,
            token,
            public_pages,
            index: Cached::new(),
            latest: Cached::new(),
        }
    }

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
            let Ok(plans) = repovault_reporter::recent_plans(store.as_ref(), target, limit).await
            else {
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

/// Whether a `Host` value names this machine's loopback interface: `localhost`,
/// an address in 127.0.0.0/8, `[::1]`, each with or without a port.
fn loopback_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((inner, port)) = rest.split_once(']') else {
                return false;
            };
            if !inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()) {
                return false;
            }
            ("localhost", port)
        }
        None => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    port_ok && name_ok
}

/// The API always needs the bearer token; the pages too unless they are public.
/// Without a token configured, only loopback `Host` names are answered.
async fn guard(State(status): State<Arc<Status>>, request: Request, next: Next) -> Response {
    if status.token.is_none() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if !host.is_some_and(loopback_host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "without an API token this server answers only to localhost, 127.0.0.1 and [::1]",
            )
                .into_response();
        }
    }
    let api = request.uri().path().starts_with("/api/");
    if api || (status.token.is_some() && !status.public_pages) {
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
    let model = status
        .index
        .get_or_read(|| async {
            Arc::new(IndexModel {
                runs: status.runs(10).await,
                repos: status.repos().await,
            })
        })
        .await;
    Html(html::index(&model.runs, &model.repos, Timestamp::now()))
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
    let latest = status
        .latest
        .get_or_read(|| async { status.latest_report().await.map(Arc::new) })
        .await;
    match latest {
        Some(report) => axum::Json(report.as_ref()).into_response(),
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use bytes::Bytes;
    use repovault_local::FsStore;
    use repovault_testkit::CountingStore;
    use tower::ServiceExt;

    use super::*;

    const TOKEN: &str = "a-token-of-thirty-two-characters";

    /// A status server over a folder holding one deleted repository,
    /// `acme/private-plans`; and the store, to count its reads.
    async fn status(
        token: Option<&str>,
        public_pages: bool,
    ) -> (Router, Arc<CountingStore<FsStore>>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CountingStore::new(FsStore::new(dir.path())));
        let gone = br#"{"schema":1,"reason":"deleted","at":"2026-11-29T01:02:03Z"}"#;
        store
            .put(
                "repos/acme/private-plans/gone.json",
                Bytes::from_static(gone),
            )
            .await
            .unwrap();
        let target =
            Target::parse(dir.path().to_str().unwrap(), std::path::Path::new("/")).unwrap();
        let status = Status::new(
            vec![(target, store.clone() as Arc<dyn Store>)],
            token.map(Secret::new),
            public_pages,
        );
        (Arc::new(status).router(), store, dir)
    }

    /// `GET path` with `headers`: the status and the body.
    async fn get(router: &Router, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = axum::http::Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[test]
    fn loopback_host_names_with_or_without_a_port() {
        for host in [
            "localhost",
            "LocalHost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "localhost:",
            "localhost:80:80",
            "localhost:123456",
            "10.0.0.1",
            "[::2]:80",
            "[::1",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }

    #[tokio::test]
    async fn without_a_token_only_loopback_host_names_are_answered_and_never_the_api() {
        let (router, _, _dir) = status(None, false).await;
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "127.0.0.1.nip.io",
        ] {
            for path in ["/", "/repo/acme/private-plans", "/api/runs/latest"] {
                let (code, body) = get(&router, path, &[("host", host)]).await;
                assert_eq!(code, 421, "{host}{path}");
                assert!(!body.contains("private-plans"), "{body}");
            }
        }
        for host in ["localhost:8080", "127.0.0.1", "[::1]:80"] {
            let (code, body) = get(&router, "/", &[("host", host)]).await;
            assert_eq!(code, 200, "{host}");
            assert!(body.contains("acme/private-plans"), "{body}");
        }
        let (code, _) = get(&router, "/api/runs/latest", &[("host", "localhost")]).await;
        assert_eq!(code, 401);
    }

    #[tokio::test]
    async fn with_a_token_the_pages_need_it_too_unless_they_are_public() {
        let bearer = format!("Bearer {TOKEN}");
        let (router, _, _dir) = status(Some(TOKEN), false).await;
        for host in ["localhost", "status.example.com"] {
            for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
                let mut headers = vec![("host", host)];
                headers.extend(auth.map(|a| ("authorization", a)));
                let (code, body) = get(&router, "/", &headers).await;
                assert_eq!(code, 401, "{host} {auth:?}");
                assert!(!body.contains("private-plans"), "{body}");
            }
            let (code, _) = get(&router, "/", &[("host", host), ("authorization", &bearer)]).await;
            assert_eq!(code, 200, "{host}");
        }
        let (router, _, _dir) = status(Some(TOKEN), true).await;
        let (code, body) = get(&router, "/", &[("host", "status.example.com")]).await;
        assert_eq!(code, 200);
        assert!(body.contains("acme/private-plans"), "{body}");
        let (code, _) = get(
            &router,
            "/api/runs/latest",
            &[("host", "status.example.com")],
        )
        .await;
        assert_eq!(code, 401, "the API still needs the token");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_page_requests_reads_the_store_once_per_ttl() {
        let (router, store, _dir) = status(None, false).await;
        let host = [("host", "localhost")];
        assert_eq!(get(&router, "/", &host).await.0, 200);
        let once = store.reads();
        assert!(once > 0);
        let flood: Vec<_> = (0..50).map(|_| get(&router, "/", &host)).collect();
        for (code, _) in futures::future::join_all(flood).await {
            assert_eq!(code, 200);
        }
        assert_eq!(store.reads(), once, "read again within the TTL");
        tokio::time::advance(PAGE_TTL + Duration::from_secs(1)).await;
        assert_eq!(get(&router, "/", &host).await.0, 200);
        assert_eq!(store.reads(), 2 * once, "read again after the TTL");
    }
}
