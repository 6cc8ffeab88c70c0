//! A fake GitHub: the REST subset repovault uses, with GitHub's shapes, headers and
//! errors, plus real git repositories served over git's smart HTTP protocol by
//! `git http-backend`. One port serves both, as `api.github.com` and `github.com` would.
//!
//! Faithful where repovault depends on it:
//! - repository objects with GitHub's field names; `per_page`/`page` pagination with
//!   absolute `Link` URLs (`/organizations/<id>/repos?...` as GitHub writes them);
//! - `x-ratelimit-*` headers on every API response, draining with each counted request
//!   (a `304` is free) and resetting each window; past the limit, GitHub's primary
//!   `403` until the reset; primary and secondary (`403` + `retry-after`) limits also
//!   on demand;
//! - `401 Bad credentials`, `404 Not Found` bodies; private repositories visible only
//!   with the token, over the API and over git (`401` + `WWW-Authenticate` without it);
//! - optional `/api/v3` prefix, as GitHub Enterprise serves the API;
//! - a GitHub App ([`FakeApp`]): JWT-checked installation lookup and installation
//!   tokens that expire after a set time and are refused (and counted) after it;
//! - Git LFS: the batch API beside each repository, objects served from a second
//!   origin (GitHub's media host) against the header the batch answer gave, and
//!   uploaded there the same way;
//! - Actions variables, secrets and environments, and Dependabot, code scanning and
//!   secret scanning alerts ([`MetadataSpec::settings`]), with GitHub's `403`s
//!   without admin rights and its answers when a feature is off;
//! - GitHub's GraphQL API (`POST /graphql`) for discussions
//!   ([`MetadataSpec::discussions`]) and Projects v2 ([`FakeGitHub::add_project`]):
//!   queries parsed and checked against GitHub's schema, its errors, cursors, and its
//!   own budget of points ([`FakeGitHubOptions::graphql_rate_limit`]).
//!
//! And GitHub's write side, so that a restore can recreate a repository through it
//! and a later backup reads back what was written in the generated data's shapes:
//! repositories (created empty, with GitHub's nine default labels), settings and
//! topics, `git push` over smart HTTP (not to `refs/pull/*`; to a wiki only once it
//! exists), labels, milestones, issues and comments, pull requests checked against
//! the git data, releases, release assets on a third origin (GitHub's
//! `uploads.github.com`), and GitHub's secondary limit on content creation
//! ([`FakeGitHubOptions::content_limit`]). What was written is counted by kind in
//! [`Stats::writes_by_kind`].

mod api;
mod app;
mod attachments;
mod discussions;
mod git_http;
mod graphql;
mod lfs;
mod metadata;
mod projects;
mod settings;
mod state;
mod uploads;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

pub use app::TEST_APP_PRIVATE_KEY;
pub use metadata::MetadataSpec;
pub use settings::{FAKE_LEAKED_SECRET, FAKE_LEAKED_SECRETS};
pub use state::{ContentLimit, FakeApp, FaultStatus, RepoSpec, Stats};
use state::{Inner, Shared};

/// A running fake GitHub. Stops when dropped.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
    _root: Option<tempfile::TempDir>,
}

/// How to start a [`FakeGitHub`].
#[derive(Debug, Clone, Default)]
pub struct FakeGitHubOptions {
    /// The token that authenticates; `None` accepts no token at all.
    pub token: Option<String>,
    /// Serve the API under `/api/v3` (GitHub Enterprise).
    pub enterprise: bool,
    /// Where repositories live; a temp dir when `None`.
    pub root: Option<PathBuf>,
    /// Port to bind on 127.0.0.1 (`0`: any free port).
    pub port: u16,
    /// Bind address other than loopback (the compose file binds `0.0.0.0`).
    pub host: Option<String>,
    /// Host name written into URLs (clone URLs, `Link`s) instead of the bound address.
    pub public_host: Option<String>,
    /// Requests the token may make per window (GitHub's 5,000 when `None`); past it,
    /// GitHub's primary rate-limit `403` until the window resets.
    pub rate_limit: Option<u64>,
    /// The rate-limit window (an hour when `None`).
    pub rate_window: Option<Duration>,
    /// Serve git's protocol version 0 only (ignore `Git-Protocol: version=2`), as an
    /// old server would: the worker then falls back to `git clone` and an archive.
    pub git_protocol_v0: bool,
    /// A GitHub App installed on one owner, whose installation tokens authenticate
    /// like the token until they expire.
    pub app: Option<FakeApp>,
    /// GitHub's secondary limit on content creation: writes beyond it get `403` with
    /// `retry-after` and create nothing. No limit when `None`.
    pub content_limit: Option<ContentLimit>,
    /// Answer the Issue Import API with `404`, as a GitHub without it would.
    pub without_issue_import: bool,
    /// GraphQL points the token may spend per window (GitHub's 5,000 when `None`); past
    /// them, GitHub's `RATE_LIMITED` answer until the window resets.
    pub graphql_rate_limit: Option<u64>,
}

impl FakeGitHubOptions {
    /// With GitHub's content-creation limit: at most `per_window` writes in any
    /// sliding `window` (sets [`content_limit`](Self::content_limit)).
    pub fn limit_content(mut self, per_window: u32, window: Duration) -> Self {
        self.content_limit = Some(ContentLimit { per_window, window });
        self
    }
}

/// The login the token belongs to.
pub const TOKEN_USER: &str = "repovault-bot";

impl FakeGitHub {
    pub async fn start(options: FakeGitHubOptions) -> anyhow::Result<FakeGitHub> {
        let (root_dir, temp) = match options.root {
            Some(root) => (root, None),
            None => {
                let temp = tempfile::Builder::new().prefix("fake-github-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        std::fs::create_dir_all(&root_dir)?;
        let host = options.host.unwrap_or_else(|| "127.0.0.1".into());
        let listener = tokio::net::TcpListener::bind((host.as_str(), options.port)).await?;
        let addr = listener.local_addr()?;
        // GitHub serves LFS objects from another host: so does the fake, from a
        // second listener (another origin, which must never see the token).
        let media = tokio::net::TcpListener::bind((host.as_str(), 0)).await?;
        let media_addr = media.local_addr()?;
        // Release assets are uploaded to yet another host (`uploads.github.com`).
        let uploads = tokio::net::TcpListener::bind((host.as_str(), 0)).await?;
        let uploads_addr = uploads.local_addr()?;
        let (public, media_url, uploads_origin) = match &options.public_host {
            Some(h) => (
                format!("http://{h}:{}", addr.port()),
                format!("http://{h}:{}", media_addr.port()),
                format!("http://{h}:{}", uploads_addr.port()),
            ),
            None => (
                format!("http://{addr}"),
                format!("http://{media_addr}"),
                format!("http://{uploads_addr}"),
            ),
        };
        let upload_prefix = if options.enterprise {
            "/api/uploads".to_owned()
        } else {
            String::new()
        };
        let shared = Arc::new(Shared {
            token: options.token,
            api_prefix: if options.enterprise {
                "/api/v3".into()
            } else {
                String::new()
            },
            root: root_dir,
            base_url: public,
            rate_limit: options.rate_limit.unwrap_or(5000),
            rate_window: options.rate_window.unwrap_or(Duration::from_secs(3600)),
            started_epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            git_protocol_v0: options.git_protocol_v0,
            app: options.app,
            media_url,
            upload_url: format!("{uploads_origin}{upload_prefix}"),
            upload_prefix,
            content_limit: options.content_limit,
            without_issue_import: options.without_issue_import,
            inner: std::sync::Mutex::new(Inner::default()),
        });
        shared.lock().add_owner(TOKEN_USER, state::OwnerKind::User);
        shared.lock().graphql.limit = options.graphql_rate_limit;
        let app = Router::new()
            .fallback(dispatch)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let media_app = Router::new()
            .fallback(
                |State(shared): State<Arc<Shared>>, request: Request| async move {
                    match request.uri().path().starts_with("/attachments/") {
                        true => attachments::storage(shared, request).await,
                        false => lfs::media(shared, request).await,
                    }
                },
            )
            .with_state(shared.clone());
        let uploads_app = Router::new()
            .fallback(|State(shared): State<Arc<Shared>>, request: Request| {
                uploads::handle(shared, request)
            })
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stop = async {
                let _ = stop_rx.await;
            };
            // As GitHub's servers do, every response goes out as written (no Nagle): a
            // small body segment otherwise waits ~40 ms for the client's delayed ACK.
            let nodelay = |tcp: &mut tokio::net::TcpStream| {
                let _ = tcp.set_nodelay(true);
            };
            let _ = tokio::join!(
                axum::serve(listener.tap_io(nodelay), app).with_graceful_shutdown(stop),
                axum::serve(media.tap_io(nodelay), media_app).into_future(),
                axum::serve(uploads.tap_io(nodelay), uploads_app).into_future(),
            );
        });
        Ok(FakeGitHub {
            shared,
            _stop: stop_tx,
            _root: temp,
        })
    }

    /// The API base URL to configure (`--api-url`).
    pub fn api_url(&self) -> String {
        format!("{}{}", self.shared.base_url, self.shared.api_prefix)
    }

    /// The release-asset upload origin's base URL (GitHub's `https://uploads.github.com`;
    /// with `enterprise`, `…/api/uploads`), as releases' `upload_url` start.
    pub fn upload_url(&self) -> String {
        self.shared.upload_url.clone()
    }

    /// Where repositories are stored: `<root>/<owner>/<name>.git`.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    pub fn repo_path(&self, owner: &str, name: &str) -> PathBuf {
        self.shared.root.join(owner).join(format!("{name}.git"))
    }

    /// Where `owner/name`'s Git LFS objects are kept (`<oid>` files), as
    /// [`crate::fixtures::commit_lfs`] writes them.
    pub fn lfs_path(&self, owner: &str, name: &str) -> PathBuf {
        self.shared.root.join(owner).join(format!("{name}.lfs"))
    }

    pub fn wiki_path(&self, owner: &str, name: &str) -> PathBuf {
        self.shared
            .root
            .join(owner)
            .join(format!("{name}.wiki.git"))
    }

    pub fn clone_url(&self, owner: &str, name: &str) -> String {
        format!("{}/{owner}/{name}.git", self.shared.base_url)
    }

    /// `owner`'s repositories as a job message carries them.
    pub fn repo_refs(&self, owner: &str) -> Vec<repovault_core::RepoRef> {
        let inner = self.shared.lock();
        inner
            .repos
            .values()
            .filter(|r| r.spec.owner == owner)
            .map(|r| repovault_core::RepoRef {
                owner: r.spec.owner.clone(),
                name: r.spec.name.clone(),
                id: r.id,
                clone_url: self.clone_url(&r.spec.owner, &r.spec.name),
                default_branch: Some(r.spec.default_branch.clone()),
                pushed_at: Some(r.pushed_at),
                size_kb: r.size_kb,
                private: r.spec.private,
                archived: r.spec.archived,
                fork: r.spec.fork,
                has_wiki: r.spec.has_wiki,
                topics: r.spec.topics.clone(),
            })
            .collect()
    }

    pub fn add_org(&self, login: &str) {
        self.shared.lock().add_owner(login, state::OwnerKind::Org);
    }

    pub fn add_user(&self, login: &str) {
        self.shared.lock().add_owner(login, state::OwnerKind::User);
    }

    /// Registers a repository. Its git data is whatever is (or will be) at
    /// [`repo_path`](Self::repo_path); build it with [`crate::fixtures`].
    pub fn add_repo(&self, spec: RepoSpec) {
        let size_kb = crate::dir_size_kb(&self.repo_path(&spec.owner, &spec.name));
        self.shared.lock().add_repo(spec, size_kb);
    }

    /// Generates `owner/name`'s issues, comments, pull requests, reviews, labels,
    /// milestones and releases (with asset bytes), served with GitHub's shapes.
    pub fn add_metadata(&self, owner: &str, name: &str, spec: MetadataSpec) {
        let api = self.api_url();
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("add_repo first");
        let (owner, name) = (repo.spec.owner.clone(), repo.spec.name.clone());
        repo.meta = metadata::RepoMeta::generate(
            spec,
            &api,
            &self.shared.base_url,
            &self.shared.upload_url,
            &owner,
            &name,
        );
    }

    /// An attachment of `owner/name` holding `bytes`, as GitHub makes one when a file
    /// is dropped into a text: its URL on GitHub's host
    /// (`{web}/user-attachments/assets/<uuid>`), to be put in a body. One of a private
    /// repository needs the token.
    pub fn add_attachment(&self, owner: &str, name: &str, bytes: &[u8]) -> String {
        let mut inner = self.shared.lock();
        let private = inner
            .repo(owner, name)
            .expect("known repository")
            .spec
            .private;
        let n = inner.attachments.len() as u64 + 1;
        let path = format!("assets/0b5e8c1a-{n:04x}-4f1e-9d2a-{:012x}", 0xa77ac4u64 + n);
        let attachment = attachments::Attachment {
            bytes: bytes.to_vec(),
            private,
        };
        inner.attachments.insert(path.clone(), attachment);
        format!("{}{}{path}", self.shared.base_url, attachments::PREFIX)
    }

    /// A new comment on issue `number` of `owner/name`, written now.
    pub fn add_issue_comment(&self, owner: &str, name: &str, number: u64, body: &str) {
        let api = self.api_url();
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        let (o, n) = (repo.spec.owner.clone(), repo.spec.name.clone());
        repo.meta.comment(&api, &o, &n, number, body);
        inner.publish(&o, &n, "IssueCommentEvent");
    }

    /// Whether the token has admin rights on `owner/name` (collaborators, teams,
    /// webhooks, deploy keys, rulesets): without, those answer `403`.
    pub fn set_admin(&self, owner: &str, name: &str, admin: bool) {
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        repo.meta.admin_denied = !admin;
    }

    /// Sets the Actions variable `variable` of `owner/name` to `value` now (created if
    /// new): its `updated_at` moves.
    pub fn set_variable(&self, owner: &str, name: &str, variable: &str, value: &str) {
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        settings::set_variable(&mut repo.meta.settings.variables, variable, value);
    }

    /// Writes the Actions secret `secret` of `owner/name` now (created if new): its
    /// `updated_at` moves; its value is never served.
    pub fn set_secret(&self, owner: &str, name: &str, secret: &str) {
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        settings::set_secret(&mut repo.meta.settings.secrets, secret);
    }

    /// Gives organization `login` Actions variables and secrets (two of each, one of
    /// each visible to selected repositories). Without, it has none.
    pub fn add_org_settings(&self, login: &str) {
        let api = self.api_url();
        let mut inner = self.shared.lock();
        let org = inner.owner(login).expect("add_org first").login.clone();
        let admin_denied = inner
            .org_settings
            .get(&login.to_lowercase())
            .is_some_and(|s| s.admin_denied);
        let settings = settings::OrgSettings {
            admin_denied,
            ..settings::OrgSettings::generate(&api, &org)
        };
        inner.org_settings.insert(login.to_lowercase(), settings);
    }

    /// Whether the token administers organization `login`: without, its Actions
    /// variables and secrets answer `403`.
    pub fn set_org_admin(&self, login: &str, admin: bool) {
        let mut inner = self.shared.lock();
        let settings = inner.org_settings.entry(login.to_lowercase()).or_default();
        settings.admin_denied = !admin;
    }

    /// Sets organization `login`'s Actions variable `variable` to `value` now (created
    /// if new, visible to all repositories): its `updated_at` moves.
    pub fn set_org_variable(&self, login: &str, variable: &str, value: &str) {
        let mut inner = self.shared.lock();
        let settings = inner.org_settings.entry(login.to_lowercase()).or_default();
        settings::set_variable(&mut settings.variables, variable, value);
        for v in &mut settings.variables {
            if v.get("visibility").is_none() {
                v["visibility"] = serde_json::json!("all");
            }
        }
    }

    /// Organization `login`'s Actions `variables` or `secrets` as served.
    pub fn org_items(&self, login: &str, kind: &str) -> Vec<serde_json::Value> {
        let inner = self.shared.lock();
        let settings = inner.org_settings.get(&login.to_lowercase());
        match kind {
            "variables" => settings.map(|s| s.variables.clone()),
            "secrets" => settings.map(|s| s.secrets.clone()),
            other => panic!("no organization items of kind {other}"),
        }
        .unwrap_or_default()
    }

    /// Protects the branch `branch` of `owner/name` (any name: `release/x#`, `ünï`):
    /// it is listed by `branches?protected=true`, its rules served at
    /// `branches/{branch}/protection` with the name percent-encoded.
    pub fn protect_branch(&self, owner: &str, name: &str, branch: &str) {
        let api = self.api_url();
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        let repo_api = format!("{api}/repos/{}/{}", repo.spec.owner, repo.spec.name);
        repo.meta.protect(branch, &repo_api);
    }

    /// `GET /repos/{owner}/{name}/{endpoint}` (any query; `endpoint` as `branches` or
    /// `pulls/comments`) answers `status` from now on, as a repository with that
    /// feature disabled or a server without the endpoint would; `None` serves it again.
    pub fn withhold(&self, owner: &str, name: &str, endpoint: &str, status: Option<u16>) {
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        match status {
            Some(status) => repo.meta.withheld.insert(endpoint.to_owned(), status),
            None => repo.meta.withheld.remove(endpoint),
        };
    }

    /// Deletes issue `number` of `owner/name` and its comments.
    pub fn delete_issue(&self, owner: &str, name: &str, number: u64) {
        let mut inner = self.shared.lock();
        let repo = inner.repo_mut(owner, name).expect("known repository");
        repo.meta.delete_issue(number);
    }

    /// Creates `owner/name`'s wiki as a person writing its first page in the web UI
    /// does (GitHub has no API for it): an empty git repository that takes pushes.
    /// Before, the wiki is "Repository not found" to git. A wiki already there is kept.
    pub fn init_wiki(&self, owner: &str, name: &str) {
        let path = self.wiki_path(owner, name);
        if !path.join("HEAD").exists() {
            crate::fixtures::init_bare(&path, "master");
        }
    }

    /// How many issues (pull requests not counted) `owner/name` has.
    pub fn issue_count(&self, owner: &str, name: &str) -> usize {
        let inner = self.shared.lock();
        let repo = inner.repo(owner, name).expect("known repository");
        repo.meta
            .issues
            .iter()
            .filter(|i| i.get("pull_request").is_none())
            .count()
    }

    /// `owner/name`'s objects of `kind` as the read side holds them: `issues` (pull
    /// requests' issues included), `issue-comments`, `issue-events`, `pulls`,
    /// `labels`, `milestones`, `releases`; and settings by their path below
    /// `/repos/{o}/{r}/`, an environment's name unencoded: `actions/variables`,
    /// `actions/secrets`, `environments`, `environments/qa/eu/variables` (`secrets`,
    /// `deployment-branch-policies`), `dependabot/alerts`, `code-scanning/alerts`,
    /// `secret-scanning/alerts` (empty when the feature is off).
    pub fn items(&self, owner: &str, name: &str, kind: &str) -> Vec<serde_json::Value> {
        let inner = self.shared.lock();
        let meta = &inner.repo(owner, name).expect("known repository").meta;
        match kind {
            "issues" => meta.issues.clone(),
            "issue-comments" => meta.issue_comments.clone(),
            "issue-events" => meta.issue_events.clone(),
            "pulls" => meta.pulls.clone(),
            "labels" => meta.labels.clone(),
            "milestones" => meta.milestones.clone(),
            "releases" => meta.releases.clone(),
            other => meta
                .settings
                .items(other)
                .unwrap_or_else(|| panic!("no items of kind {other}")),
        }
    }

    /// Whether `owner/name` exists (registered, or created through the API).
    pub fn has_repo(&self, owner: &str, name: &str) -> bool {
        self.shared.lock().repo(owner, name).is_some()
    }

    /// Records a push: `pushed_at` and `size` move as on GitHub.
    pub fn touch(&self, owner: &str, name: &str) {
        let size_kb = crate::dir_size_kb(&self.repo_path(owner, name));
        self.shared.lock().touch(owner, name, size_kb);
    }

    /// An event of `event_type` (`PublicEvent`, `IssuesEvent`…) in `owner/name`'s
    /// organization feed, now (a private repository's is not shown, as on GitHub).
    /// Pushes ([`touch`](Self::touch)), comments, and issues, pull requests, releases
    /// and collaborators written through the API publish theirs already.
    pub fn publish_event(&self, owner: &str, name: &str, event_type: &str) {
        self.shared.lock().publish(owner, name, event_type);
    }

    /// Deletes a repository: the API and git answer 404 from now on.
    pub fn delete_repo(&self, owner: &str, name: &str) {
        self.shared.lock().delete(owner, name);
    }

    /// The next `n` API requests get a primary rate-limit `403` whose
    /// `x-ratelimit-reset` is `reset_after` from then.
    pub fn rate_limit_next(&self, n: u32, reset_after: Duration) {
        self.shared
            .lock()
            .push_api_faults(n, state::ApiFault::Primary { reset_after });
    }

    /// The next `n` API requests get a secondary rate-limit `403` with `retry-after`.
    pub fn secondary_limit_next(&self, n: u32, retry_after: Duration) {
        self.shared
            .lock()
            .push_api_faults(n, state::ApiFault::Secondary { retry_after });
    }

    /// The next `n` API requests get `status` (e.g. 502).
    pub fn api_error_next(&self, n: u32, status: u16) {
        self.shared
            .lock()
            .push_api_faults(n, state::ApiFault::Status(status));
    }

    /// The next `n` fetches (`POST git-upload-pack`) of `owner/name` get `status`;
    /// `FaultStatus::Always` fails every fetch.
    pub fn fail_fetch(&self, owner: &str, name: &str, times: FaultStatus) {
        self.shared.lock().set_git_fault(owner, name, times);
    }

    /// The next `times` fetches, of whichever repositories, are held for `delay`: a
    /// worker that takes any job is reliably mid-job.
    pub fn slow_next_fetches(&self, times: u32, delay: Duration) {
        self.shared.lock().slow_any = Some((times, delay));
    }

    /// Every `n`-th pack fetch, of any repository, gets `status` (e.g. 502): a flaky
    /// network that no single repository can avoid.
    pub fn fail_every_nth_fetch(&self, n: u64, status: u16) {
        self.shared.lock().every_nth_fetch = Some((n, status));
    }

    /// Git requests for `owner/name` (ref listings and fetches, the wiki's too) are
    /// answered with a `301` to the same path under `to` (another server's base URL).
    pub fn redirect_git(&self, owner: &str, name: &str, to: &str) {
        self.shared
            .lock()
            .git_redirects
            .insert(state::key(owner, name), to.trim_end_matches('/').to_owned());
    }

    /// The next `times` fetches of `owner/name` are held for `delay` before the pack
    /// is sent: a job that is reliably still running.
    pub fn slow_fetch(&self, owner: &str, name: &str, times: u32, delay: Duration) {
        self.shared.lock().set_slow_fetch(owner, name, times, delay);
    }

    /// The LFS batch API's download links point at `base` (`<base>/<owner>/<repo>/<oid>`)
    /// instead of the media host: a hostile or compromised server.
    pub fn lfs_links_to(&self, base: &str) {
        self.shared.lock().lfs_links_to = Some(base.trim_end_matches('/').to_owned());
    }

    /// Counters of what was served.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if lfs::batch_path(&path).is_some() {
        lfs::batch(shared, request).await
    } else if path.starts_with(attachments::PREFIX) {
        attachments::web(shared, request).await
    } else if graphql::is_graphql_path(&shared, request.method(), &path) {
        graphql::handle(&shared, request).await
    } else if git_http::is_git_path(&path) {
        git_http::handle(shared, request).await
    } else {
        api::handle(&shared, request).await
    }
}
