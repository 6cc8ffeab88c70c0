//! The fake's state: owners, repositories, injected faults and counters.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;

pub(crate) struct Shared {
    pub token: Option<String>,
    /// `""` or `/api/v3`.
    pub api_prefix: String,
    pub root: PathBuf,
    /// `http://host:port`, used in every URL the fake writes.
    pub base_url: String,
    /// Requests a token may make per window (GitHub: 5,000 an hour); anonymous: 60.
    pub rate_limit: u64,
    pub rate_window: std::time::Duration,
    /// When the first window began (UNIX seconds).
    pub started_epoch: u64,
    /// Serve git protocol version 0 only.
    pub git_protocol_v0: bool,
    /// A GitHub App installed on one owner.
    pub app: Option<FakeApp>,
    /// The LFS media host (another origin): `http://host:port`.
    pub media_url: String,
    /// The release-asset upload origin (GitHub's `uploads.github.com`), with the
    /// path prefix GitHub Enterprise puts before `/repos` (`/api/uploads`).
    pub upload_url: String,
    /// `""` or `/api/uploads`.
    pub upload_prefix: String,
    /// GitHub's secondary limit on content creation, when set.
    pub content_limit: Option<ContentLimit>,
    /// No Issue Import API (`404`), as a server without it.
    pub without_issue_import: bool,
    pub inner: Mutex<Inner>,
}

/// GitHub's secondary rate limit on content creation (about 80 content-generating
/// requests a minute, 500 an hour on github.com): at most `per_window` writes
/// (`POST`/`PATCH`/`PUT`/`DELETE` API requests and asset uploads) in any sliding
/// `window`; beyond, `403` with `retry-after` and nothing is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentLimit {
    pub per_window: u32,
    pub window: Duration,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    Org,
    User,
}

#[derive(Debug, Clone)]
pub(crate) struct OwnerEntry {
    pub login: String,
    pub id: u64,
    pub kind: OwnerKind,
}

/// A GitHub App installed on `owner`.
#[derive(Debug, Clone)]
pub struct FakeApp {
    pub app_id: u64,
    pub installation_id: u64,
    /// The organization (or user) the App is installed on.
    pub owner: String,
    /// How long an installation token lives (GitHub: one hour).
    pub token_lifetime: Duration,
}

/// A repository to register with the fake.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub fork: bool,
    pub archived: bool,
    /// GitHub's `has_wiki`: the wiki is *enabled*; it exists only if pages were written.
    pub has_wiki: bool,
    pub topics: Vec<String>,
    pub default_branch: String,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub has_issues: bool,
    pub has_projects: bool,
    /// GitHub Enterprise's `visibility: internal` (then also `private`).
    pub internal: bool,
    /// Merge settings, as `PATCH /repos/{o}/{n}` sets them (GitHub's defaults).
    pub allow_squash_merge: bool,
    pub allow_merge_commit: bool,
    pub allow_rebase_merge: bool,
    pub delete_branch_on_merge: bool,
    pub allow_auto_merge: bool,
}

impl RepoSpec {
    pub fn new(owner: &str, name: &str) -> Self {
        RepoSpec {
            owner: owner.into(),
            name: name.into(),
            private: false,
            fork: false,
            archived: false,
            has_wiki: true,
            topics: vec![],
            default_branch: "main".into(),
            description: None,
            homepage: None,
            has_issues: true,
            has_projects: true,
            internal: false,
            allow_squash_merge: true,
            allow_merge_commit: true,
            allow_rebase_merge: true,
            delete_branch_on_merge: false,
            allow_auto_merge: false,
        }
    }

    /// `public`, `private` or `internal`, as GitHub's `visibility` says.
    pub fn visibility(&self) -> &'static str {
        match (self.private, self.internal) {
            (_, true) => "internal",
            (true, false) => "private",
            (false, false) => "public",
        }
    }

    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    pub fn fork(mut self) -> Self {
        self.fork = true;
        self
    }

    pub fn archived(mut self) -> Self {
        self.archived = true;
        self
    }

    pub fn has_wiki(mut self, has_wiki: bool) -> Self {
        self.has_wiki = has_wiki;
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RepoEntry {
    pub spec: RepoSpec,
    pub id: u64,
    pub owner_id: u64,
    pub owner_kind: OwnerKind,
    pub size_kb: u64,
    pub created_at: Timestamp,
    pub pushed_at: Timestamp,
    /// The token administers the repository (it created it through the API).
    pub token_admin: bool,
    /// Issues, pull requests, releases…: empty until [`FakeGitHub::add_metadata`].
    ///
    /// [`FakeGitHub::add_metadata`]: crate::FakeGitHub::add_metadata
    pub meta: super::metadata::RepoMeta,
}

/// How often an injected git fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStatus {
    /// The next `n` requests get the status.
    Times(u32, u16),
    /// Every request gets the status.
    Always(u16),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum ApiFault {
    Primary { reset_after: Duration },
    Secondary { retry_after: Duration },
    Status(u16),
}

/// What the fake has served.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub api_requests: u64,
    /// API requests answered with a rate-limit `403`.
    pub rate_limited: u64,
    /// Ref listings per `owner/name`: a protocol v0 `GET info/refs` (a clone or an
    /// ls-remote each do one) or a v2 `ls-refs`.
    pub ref_advertisements: BTreeMap<String, u64>,
    /// Pack fetches (`POST git-upload-pack` other than `ls-refs`) per `owner/name`,
    /// counted when they start.
    pub fetches: BTreeMap<String, u64>,
    /// Git requests answered with an injected error.
    pub git_faults_served: u64,
    /// API requests answered `304 Not Modified` (they cost no rate limit).
    pub api_not_modified: u64,
    /// Git requests that carried an `Authorization` header (valid or not): a host that
    /// must never see the token counts none.
    pub git_requests_with_credentials: u64,
    /// Every git request (any service, with or without credentials).
    pub git_requests: u64,
    /// Every installation token the App endpoints minted, in order, with when it
    /// expires (UNIX seconds).
    pub app_tokens_minted: Vec<(String, u64)>,
    /// Requests (API or git) made with an installation token after it expired, by token.
    pub expired_token_uses: BTreeMap<String, u64>,
    /// App requests refused for a bad JWT.
    pub app_jwt_rejected: u64,
    /// LFS batch API requests.
    pub lfs_batches: u64,
    /// LFS objects served by the media host, and their bytes.
    pub lfs_downloads: u64,
    pub lfs_download_bytes: u64,
    /// Requests to the media host that carried a token (`Basic`): must be none.
    pub lfs_media_requests_with_token: u64,
    /// Requests for attachments on GitHub's host (`/user-attachments/…`).
    pub attachment_requests: u64,
    /// Attachment downloads from the storage origin that carried credentials: must be
    /// none.
    pub attachment_storage_requests_with_token: u64,
    /// Writes (`POST`/`PATCH`/`PUT`/`DELETE` API requests and asset uploads) the
    /// content limit let through, whatever they then answered.
    pub content_requests: u64,
    /// Writes refused by the content limit (`403` + `retry-after`; also counted in
    /// `rate_limited`).
    pub content_limited: u64,
    /// Accepted creations by kind: `repos`, `labels`, `milestones`, `issues`,
    /// `issue-comments`, `pulls`, `releases`, `assets`, `lfs-uploads`. Only what a
    /// request asked to create: the labels GitHub adds to a new repository or
    /// creates for unknown names on an issue are not counted.
    pub writes_by_kind: BTreeMap<String, u64>,
    /// Pushes (`POST git-receive-pack`) per `owner/name` (`owner/name.wiki` for wikis),
    /// whatever git answered.
    pub pushes: BTreeMap<String, u64>,
    /// Requests to the upload origin, and those that carried an `Authorization` header.
    pub upload_requests: u64,
    pub upload_requests_with_credentials: u64,
    /// LFS objects stored by the media host (`PUT`), and their bytes.
    pub lfs_uploads: u64,
    pub lfs_upload_bytes: u64,
    /// Requests to the GraphQL endpoint, whatever they answered (not in `api_requests`).
    pub graphql_requests: u64,
    /// GraphQL points charged, and GraphQL requests answered rate-limited.
    pub graphql_points: u64,
    pub graphql_rate_limited: u64,
}

impl Stats {
    /// Accepted creations of `kind` (see [`Stats::writes_by_kind`]).
    pub fn writes_of(&self, kind: &str) -> u64 {
        self.writes_by_kind.get(kind).copied().unwrap_or(0)
    }

    /// Counts an accepted creation of `kind`.
    pub(crate) fn created(&mut self, kind: &str) {
        *self.writes_by_kind.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn total_fetches(&self) -> u64 {
        self.fetches.values().sum()
    }

    pub fn fetches_of(&self, full_name: &str) -> u64 {
        self.fetches.get(full_name).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    next_id: u64,
    /// Attachments by their path under `/user-attachments/`.
    pub attachments: BTreeMap<String, super::attachments::Attachment>,
    pub owners: BTreeMap<String, OwnerEntry>,
    /// By lowercase `owner/name`.
    pub repos: BTreeMap<String, RepoEntry>,
    pub api_faults: VecDeque<ApiFault>,
    pub git_faults: HashMap<String, FaultStatus>,
    /// Fetches to hold before answering, by lowercase `owner/name`: (count, delay).
    pub slow_fetches: HashMap<String, (u32, Duration)>,
    /// The next fetches of any repository to hold: (count, delay).
    pub slow_any: Option<(u32, Duration)>,
    /// Every n-th pack fetch of any repository fails with the status: (n, status).
    pub every_nth_fetch: Option<(u64, u16)>,
    /// The current rate-limit window's number, and the requests counted in it (token,
    /// anonymous); a `304` is not counted.
    pub window: u64,
    pub window_used: [u64; 2],
    /// Pack fetches seen, for `every_nth_fetch`.
    pub fetches_seen: u64,
    /// Git requests of these repositories (lowercase `owner/name`) answered with a
    /// `301` to this base URL.
    pub git_redirects: HashMap<String, String>,
    /// Installation tokens and when they expire (UNIX seconds).
    pub app_tokens: HashMap<String, u64>,
    /// `Authorization` values the LFS batch API handed out for the media host.
    pub lfs_media_auth: std::collections::HashSet<String>,
    /// Where the LFS batch API's download links point instead of the media host
    /// (a hostile or compromised server): `<base>/<owner>/<repo>/<oid>`.
    pub lfs_links_to: Option<String>,
    /// `Authorization` values the LFS batch API handed out for uploads to the media host.
    pub lfs_upload_auth: HashSet<String>,
    /// Uploads the batch API announced and the media host still expects: by
    /// `owner/repo/oid` as in the `href`, the size the client declared.
    pub lfs_pending: HashMap<String, u64>,
    /// When the writes the content limit let through were made, oldest first (only
    /// those still inside the window are kept).
    pub content_window: VecDeque<Instant>,
    /// Organizations' Actions variables and secrets, by lowercase login.
    pub org_settings: BTreeMap<String, super::settings::OrgSettings>,
    /// The GraphQL budget, its injected faults, and Projects v2.
    pub graphql: super::graphql::GraphqlState,
    pub stats: Stats,
    /// What the organizations' event feeds serve, oldest first (public repositories'
    /// activity only, as on GitHub).
    pub events: Vec<OrgEvent>,
}

/// One event of an organization's feed (`GET /orgs/{org}/events`).
#[derive(Debug, Clone)]
pub(crate) struct OrgEvent {
    /// Lowercase login of the organization.
    pub org: String,
    pub json: serde_json::Value,
}

/// How many events an organization's feed keeps, as GitHub does.
pub(crate) const FEED_EVENTS: usize = 300;

pub(crate) fn key(owner: &str, name: &str) -> String {
    format!("{}/{}", owner.to_lowercase(), name.to_lowercase())
}

impl Inner {
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        1000 + self.next_id
    }

    pub fn add_owner(&mut self, login: &str, kind: OwnerKind) {
        if !self.owners.contains_key(&login.to_lowercase()) {
            let id = self.next_id();
            self.owners.insert(
                login.to_lowercase(),
                OwnerEntry {
                    login: login.into(),
                    id,
                    kind,
                },
            );
        }
    }

    pub fn owner(&self, login: &str) -> Option<&OwnerEntry> {
        self.owners.get(&login.to_lowercase())
    }

    pub fn owner_by_id(&self, id: u64) -> Option<&OwnerEntry> {
        self.owners.values().find(|o| o.id == id)
    }

    pub fn add_repo(&mut self, spec: RepoSpec, size_kb: u64) {
        if self.owner(&spec.owner).is_none() {
            self.add_owner(&spec.owner, OwnerKind::Org);
        }
        let owner = self.owner(&spec.owner).expect("added above").clone();
        let id = self.next_id();
        // Distinct, increasing creation times, as listing order depends on them.
        let created_at = Timestamp::from_second(1_600_000_000 + id as i64).expect("valid time");
        self.repos.insert(
            key(&spec.owner, &spec.name),
            RepoEntry {
                spec,
                id,
                owner_id: owner.id,
                owner_kind: owner.kind,
                size_kb,
                created_at,
                pushed_at: created_at,
                token_admin: false,
                meta: Default::default(),
            },
        );
    }

    /// A repository created through the API now, by the token: empty, administered by
    /// the token. The owner must exist.
    pub fn create_repo(&mut self, spec: RepoSpec, now: Timestamp) -> &mut RepoEntry {
        let owner = self
            .owner(&spec.owner)
            .expect("checked by the caller")
            .clone();
        let id = self.next_id();
        let k = key(&spec.owner, &spec.name);
        self.repos.insert(
            k.clone(),
            RepoEntry {
                spec,
                id,
                owner_id: owner.id,
                owner_kind: owner.kind,
                size_kb: 0,
                created_at: now,
                pushed_at: now,
                token_admin: true,
                meta: Default::default(),
            },
        );
        self.repos.get_mut(&k).expect("inserted above")
    }

    /// Takes a slot of the content limit for a write made now, or says how long until
    /// one frees up.
    pub fn take_content_slot(&mut self, limit: ContentLimit) -> Result<(), Duration> {
        let now = Instant::now();
        while self
            .content_window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            self.content_window.pop_front();
        }
        if self.content_window.len() >= limit.per_window as usize {
            let wait = self.content_window.front().map_or(limit.window, |oldest| {
                limit.window.saturating_sub(now.duration_since(*oldest))
            });
            return Err(wait);
        }
        self.content_window.push_back(now);
        Ok(())
    }

    pub fn touch(&mut self, owner: &str, name: &str, size_kb: u64) {
        if let Some(repo) = self.repos.get_mut(&key(owner, name)) {
            repo.pushed_at =
                Timestamp::from_second(Timestamp::now().as_second()).expect("valid time");
            repo.size_kb = size_kb;
        }
        self.publish(owner, name, "PushEvent");
    }

    /// An event of `event_type` in `owner/name`, now, in its organization's feed: only
    /// a public repository's, as GitHub's organization feed shows.
    pub fn publish(&mut self, owner: &str, name: &str, event_type: &str) {
        let Some(repo) = self.repos.get(&key(owner, name)) else {
            return;
        };
        if repo.owner_kind != OwnerKind::Org || repo.spec.private {
            return;
        }
        let (org, org_id, repo_id) = (repo.spec.owner.clone(), repo.owner_id, repo.id);
        let full_name = format!("{}/{}", repo.spec.owner, repo.spec.name);
        // GitHub's event ids are large numbers, sent as strings.
        let id = 40_000_000_000 + self.next_id();
        let json = serde_json::json!({
            "id": id.to_string(),
            "type": event_type,
            "actor": { "id": 583231, "login": "octocat", "display_login": "octocat", "gravatar_id": "", "url": "https://api.github.com/users/octocat", "avatar_url": "https://avatars.githubusercontent.com/u/583231?" },
            "repo": { "id": repo_id, "name": full_name, "url": format!("https://api.github.com/repos/{full_name}") },
            "payload": {},
            "public": true,
            "created_at": super::metadata::now(),
            "org": { "id": org_id, "login": org, "gravatar_id": "", "url": format!("https://api.github.com/orgs/{org}"), "avatar_url": format!("https://avatars.githubusercontent.com/u/{org_id}?") },
        });
        self.events.push(OrgEvent {
            org: org.to_lowercase(),
            json,
        });
    }

    /// Organization `org`'s feed, newest first, as many as GitHub keeps.
    pub fn feed(&self, org: &str) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .rev()
            .filter(|e| e.org == org.to_lowercase())
            .take(FEED_EVENTS)
            .map(|e| e.json.clone())
            .collect()
    }

    pub fn delete(&mut self, owner: &str, name: &str) {
        self.repos.remove(&key(owner, name));
    }

    pub fn repo(&self, owner: &str, name: &str) -> Option<&RepoEntry> {
        self.repos.get(&key(owner, name))
    }

    pub fn repo_mut(&mut self, owner: &str, name: &str) -> Option<&mut RepoEntry> {
        self.repos.get_mut(&key(owner, name))
    }

    pub fn push_api_faults(&mut self, n: u32, fault: ApiFault) {
        for _ in 0..n {
            self.api_faults.push_back(fault);
        }
    }

    pub fn set_git_fault(&mut self, owner: &str, name: &str, status: FaultStatus) {
        self.git_faults.insert(key(owner, name), status);
    }

    pub fn set_slow_fetch(&mut self, owner: &str, name: &str, times: u32, delay: Duration) {
        self.slow_fetches.insert(key(owner, name), (times, delay));
    }

    /// How long to hold this fetch of `owner/name`, consuming one occurrence.
    pub fn take_slow_fetch(&mut self, owner: &str, name: &str) -> Option<Duration> {
        if let Some((times, delay)) = &mut self.slow_any {
            let delay = *delay;
            *times -= 1;
            if *times == 0 {
                self.slow_any = None;
            }
            return Some(delay);
        }
        let k = key(owner, name);
        let (times, delay) = self.slow_fetches.get_mut(&k)?;
        let delay = *delay;
        *times -= 1;
        if *times == 0 {
            self.slow_fetches.remove(&k);
        }
        Some(delay)
    }

    /// The status to fail a fetch of `owner/name` with, consuming one occurrence.
    pub fn take_git_fault(&mut self, owner: &str, name: &str) -> Option<u16> {
        self.fetches_seen += 1;
        if let Some((n, status)) = self.every_nth_fetch
            && self.fetches_seen.is_multiple_of(n)
        {
            self.stats.git_faults_served += 1;
            return Some(status);
        }
        let k = key(owner, name);
        let status = match self.git_faults.get_mut(&k)? {
            FaultStatus::Always(status) => *status,
            FaultStatus::Times(n, status) => {
                let status = *status;
                *n -= 1;
                if *n == 0 {
                    self.git_faults.remove(&k);
                }
                status
            }
        };
        self.stats.git_faults_served += 1;
        Some(status)
    }
}
