//! # repovault-data
//!
//! A repository's data beyond git: issues (with pull requests), issue comments, pull
//! requests, their reviews and review comments, labels, milestones and releases, kept
//! as one JSON Lines file (zstd) per kind, GitHub's objects as the API wrote them.
//!
//! Cheap when nothing changed: each kind is first read conditionally (`If-None-Match`
//! with the `ETag` stored in the previous snapshot; GitHub answers `304`, which costs no
//! rate limit). Kinds with `since=` are probed with their most recently updated item
//! (`sort=updated&direction=desc&per_page=1`); when it changed, only what changed since
//! the previous snapshot is read and merged by `id`. Every [`FULL_REFRESH`] all kinds
//! are read whole, so deletions show. A kind that did not change points at the
//! previous snapshot's file; a snapshot where nothing changed is not written at all.
//! Release assets are streamed from GitHub into the store once each, under their id.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::{ByteStream, ObjectMetadata, StoreError, meta};
use repovault_core::{DataFile, DataIndex, DataSummary, RECORD_SCHEMA};
use repovault_repository::{RepoError, Repository};
use serde_json::Value;

/// How often every kind is read whole, not just what changed (deletions show then),
/// unless configured otherwise (`metadata.full-every`).
pub const FULL_REFRESH: Duration = repovault_core::config::defaults::METADATA_FULL_EVERY;

/// Overlap of `since=` with the previous read, for clock skew between us and GitHub.
const SINCE_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// One kind of data and how it is read.
struct Kind {
    name: &'static str,
    /// Under `/repos/<owner>/<name>/`, with its fixed query.
    path: &'static str,
    /// Sortable by `updated`: probed with its newest item before reading more.
    probe: bool,
    /// Takes `since=`: after a change, only what changed is read.
    since: bool,
    /// Readable only with admin rights: without them it is recorded "not permitted".
    admin: bool,
}

const fn kind(name: &'static str, path: &'static str, probe: bool, since: bool) -> Kind {
    Kind {
        name,
        path,
        probe,
        since,
        admin: false,
    }
}

const fn admin(name: &'static str, path: &'static str) -> Kind {
    Kind {
        name,
        path,
        probe: false,
        since: false,
        admin: true,
    }
}

const KINDS: &[Kind] = &[
    kind("issues", "issues?state=all", true, true),
    kind("issue-comments", "issues/comments", true, true),
    kind("issue-events", "issues/events", false, false),
    kind("pulls", "pulls?state=all", true, false),
    kind("review-comments", "pulls/comments", true, true),
    kind("commit-comments", "comments", false, false),
    kind("labels", "labels", false, false),
    kind("milestones", "milestones?state=all", false, false),
    kind("releases", "releases", false, false),
    admin("collaborators", "collaborators?affiliation=all"),
    admin("teams", "teams"),
    admin("hooks", "hooks"),
    admin("deploy-keys", "keys"),
    admin("rulesets", "rulesets"),
];

/// Reviews are read per pull request: those of pull requests updated since the
/// previous snapshot.
const REVIEWS: &str = "reviews";

/// Each protected branch's rules, read per branch.
const BRANCH_PROTECTION: &str = "branch-protection";

/// Why a repository's data could not be backed up or read back.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Counts the API requests of one snapshot.
struct Counted<'a> {
    source: &'a dyn RepoData,
    requests: u64,
    not_modified: u64,
}

impl Counted<'_> {
    async fn page(&mut self, path: &str, etag: Option<&str>) -> Result<Page, SourceError> {
        self.requests += 1;
        let page = self.source.page(path, etag).await?;
        if page == Page::NotModified {
            self.not_modified += 1;
        }
        Ok(page)
    }

    async fn object(&mut self, path: &str) -> Result<Value, SourceError> {
        self.requests += 1;
        self.source.object(path).await
    }

    async fn download(&mut self, path: &str) -> Result<ByteStream, SourceError> {
        self.requests += 1;
        self.source.download(path).await
    }

    /// Every item from `path` on, following `Link` pages; `None` if the first page is
    /// unchanged (given `etag`). Returns the first page's `ETag`.
    async fn all(
        &mut self,
        path: String,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<Value>, Option<String>)>, SourceError> {
        let (mut items, first_etag, mut next) = match self.page(&path, etag).await? {
            Page::NotModified => return Ok(None),
            Page::Fetched { items, etag, next } => (items, etag, next),
        };
        while let Some(path) = next {
            match self.page(&path, None).await? {
                Page::Fetched {
                    items: more,
                    next: following,
                    ..
                } => {
                    items.extend(more);
                    next = following;
                }
                Page::NotModified => break,
            }
        }
        Ok(Some((items, first_etag)))
    }
}

/// Backs up `owner/name`'s data beyond git on top of `previous` (the snapshot
/// `latest.json` names). Returns the summary for the record and, when anything
/// changed, the new snapshot's index key (else the previous one stands).
pub async fn back_up_data(
    repo: &Repository<'_>,
    source: &dyn RepoData,
    owner: &str,
    name: &str,
    previous_key: Option<&str>,
    full_every: Duration,
    now: Timestamp,
) -> Result<DataSummary, DataError> {
    let (store, layout) = (repo.store(), repo.layout());
    let previous: Option<DataIndex> = match previous_key {
        Some(key) => repo.data_index(owner, name, key).await?,
        None => None,
    };
    // Two snapshots never share, and overwrite, a directory.
    let now = store
        .free_second(now, |at| layout.data_index(owner, name, at))
        .await
        .map_err(RepoError::from)?;
    let full = full_read_due(previous.as_ref(), now, full_every);
    let mut api = Counted {
        source,
        requests: 0,
        not_modified: 0,
    };
    let base = format!("/repos/{owner}/{name}");
    let mut kinds = BTreeMap::new();
    let mut changed = Vec::new();
    let mut pulls_changed: Option<Vec<Value>> = None;
    let mut not_permitted = Vec::new();
    for kind in KINDS {
        let before = previous.as_ref().and_then(|p| p.kinds.get(kind.name));
        let etag = before.and_then(|f| f.etag.as_deref()).filter(|_| !full);
        let sep = if kind.path.contains('?') { '&' } else { '?' };
        let list = format!("{base}/{}{sep}per_page=100", kind.path);
        let read = if kind.probe {
            let probe = format!(
                "{base}/{}{sep}sort=updated&direction=desc&per_page=1",
                kind.path
            );
            match api.page(&probe, etag).await? {
                Page::NotModified => None,
                Page::Fetched {
                    items: newest,
                    etag: probe_etag,
                    ..
                } => {
                    let items = match (kind.since, before, &previous) {
                        // Nothing there at all: the probe saw it.
                        _ if newest.is_empty() => Vec::new(),
                        (true, Some(file), Some(prev)) if !full => {
                            let since = prev.fetched_at - SINCE_OVERLAP;
                            let (fresh, _) = api
                                .all(format!("{list}&since={since}"), None)
                                .await?
                                .unwrap_or_default();
                            merge(repo.read_items(&file.key).await?, fresh)
                        }
                        _ => api.all(list, None).await?.unwrap_or_default().0,
                    };
                    Some((items, probe_etag))
                }
            }
        } else {
            match api.all(list, etag).await {
                Ok(read) => read,
                // The token may not read it (GitHub answers 403, or 404 to hide it).
                Err(SourceError::Forbidden { .. } | SourceError::NotFound { .. }) if kind.admin => {
                    not_permitted.push(kind.name.to_owned());
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let file = match (read, before) {
            (None, Some(before)) => before.clone(),
            (None, None) => {
                return Err(DataError::Source(SourceError::Invalid {
                    url: base.clone(),
                    message: format!("{}: 304 to a request without an ETag", kind.name),
                }));
            }
            (Some((mut items, etag)), _) => {
                if kind.name == "pulls" {
                    pulls_changed = Some(items.clone());
                }
                if kind.name == "hooks" {
                    // A webhook's secret is never stored (GitHub masks it; be sure).
                    for hook in &mut items {
                        if let Some(config) = hook["config"].as_object_mut() {
                            config.remove("secret");
                        }
                    }
                }
                changed.push(kind.name.to_owned());
                repo.write_items(&layout.data_file(owner, name, now, kind.name), &items, etag)
                    .await?
            }
        };
        kinds.insert(kind.name.to_owned(), file);
    }

    // Reviews of the pull requests updated since the previous snapshot.
    let before = previous.as_ref().and_then(|p| p.kinds.get(REVIEWS));
    let reviews = match (pulls_changed, before) {
        (None, Some(before)) => before.clone(),
        (pulls, before) => {
            let pulls = match pulls {
                Some(pulls) => pulls,
                None => repo.read_items(&kinds["pulls"].key).await?,
            };
            let since = previous.as_ref().filter(|_| !full).map(|p| p.fetched_at);
            let updated: Vec<u64> = pulls
                .iter()
                .filter(|p| since.is_none_or(|since| updated_at(p).is_some_and(|t| t >= since)))
                .filter_map(|p| p["number"].as_u64())
                .collect();
            let mut items = match (before, since) {
                (Some(file), Some(_)) => repo.read_items(&file.key).await?,
                _ => Vec::new(),
            };
            items.retain(|r| pull_number(r).is_none_or(|n| !updated.contains(&n)));
            for number in &updated {
                let path = format!("{base}/pulls/{number}/reviews?per_page=100");
                items.extend(api.all(path, None).await?.unwrap_or_default().0);
            }
            changed.push(REVIEWS.to_owned());
            repo.write_items(&layout.data_file(owner, name, now, REVIEWS), &items, None)
                .await?
        }
    };
    kinds.insert(REVIEWS.to_owned(), reviews);

    // Branch protection: the rules of each protected branch (admin rights to read).
    let before = previous
        .as_ref()
        .and_then(|p| p.kinds.get(BRANCH_PROTECTION));
    let etag = before.and_then(|f| f.etag.as_deref()).filter(|_| !full);
    let branches = format!("{base}/branches?protected=true&per_page=100");
    match api.all(branches, etag).await? {
        None => {
            if let Some(before) = before {
                kinds.insert(BRANCH_PROTECTION.to_owned(), before.clone());
            }
        }
        Some((branches, etag)) => {
            let mut rules = Vec::new();
            let mut permitted = true;
            for branch in branches.iter().filter_map(|b| b["name"].as_str()) {
                match api
                    .object(&format!("{base}/branches/{branch}/protection"))
                    .await
                {
                    Ok(mut rule) => {
                        rule["branch"] = Value::from(branch);
                        rules.push(rule);
                    }
                    Err(SourceError::Forbidden { .. } | SourceError::NotFound { .. }) => {
                        permitted = false;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if permitted {
                changed.push(BRANCH_PROTECTION.to_owned());
                let key = layout.data_file(owner, name, now, BRANCH_PROTECTION);
                let file = repo.write_items(&key, &rules, etag).await?;
                kinds.insert(BRANCH_PROTECTION.to_owned(), file);
            } else {
                not_permitted.push(BRANCH_PROTECTION.to_owned());
            }
        }
    }

    // Release assets: each stored once under its id, streamed from GitHub to the store.
    let mut assets = previous
        .as_ref()
        .map(|p| p.assets.clone())
        .unwrap_or_default();
    if changed.iter().any(|k| k == "releases") {
        let releases = repo.read_items(&kinds["releases"].key).await?;
        let listed: Vec<u64> = releases
            .iter()
            .flat_map(|r| r["assets"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["id"].as_u64())
            .collect();
        assets.retain(|id, _| listed.contains(id));
        for id in listed {
            if assets.contains_key(&id) {
                continue;
            }
            let key = layout.asset(owner, name, id);
            let file = match stored_asset(repo, &key).await? {
                Some(file) => file,
                None => {
                    let body = api
                        .download(&format!("{base}/releases/assets/{id}"))
                        .await?;
                    match store.put_stream(&key, body, &ObjectMetadata::new()).await {
                        Ok(receipt) => DataFile {
                            key,
                            items: 1,
                            size: receipt.size,
                            sha256: receipt.sha256,
                            etag: None,
                        },
                        // Another backup of this repository stored it meanwhile.
                        Err(StoreError::AlreadyExists { .. }) => stored_asset(repo, &key)
                            .await?
                            .ok_or_else(|| RepoError::Invalid {
                                key: key.clone(),
                                reason: "vanished after it was stored".into(),
                            })?,
                        Err(e) => return Err(RepoError::from(e).into()),
                    }
                }
            };
            assets.insert(id, file);
        }
    }

    let (summary, _) = Ending {
        subject: format!("{owner}/{name}"),
        previous_key: previous_key.map(str::to_owned),
        previous,
        now,
        full,
        kinds,
        assets,
        changed,
        not_permitted,
    }
    .write(repo, &api, layout.data_index(owner, name, now))
    .await?;
    Ok(summary)
}

/// What a snapshot read, ready to be written.
struct Ending {
    /// `owner/name`, or the organization.
    subject: String,
    previous_key: Option<String>,
    previous: Option<DataIndex>,
    now: Timestamp,
    full: bool,
    kinds: BTreeMap<String, DataFile>,
    assets: BTreeMap<u64, DataFile>,
    changed: Vec<String>,
    not_permitted: Vec<String>,
}

impl Ending {
    /// Writes the snapshot's index at `index_key`, unless nothing changed since the
    /// previous snapshot (whose index then stands), and sums it up. Returns whether a
    /// new index was written.
    async fn write(
        self,
        repo: &Repository<'_>,
        api: &Counted<'_>,
        index_key: String,
    ) -> Result<(DataSummary, bool), DataError> {
        let items = self.kinds.values().map(|f| f.items).sum();
        let unchanged = self.changed.is_empty()
            && self
                .previous
                .as_ref()
                .is_some_and(|p| p.not_permitted == self.not_permitted);
        let (index, written) = match self.previous_key {
            Some(previous) if unchanged => (previous, false),
            _ => {
                let index = DataIndex {
                    schema: RECORD_SCHEMA,
                    repository: self.subject,
                    fetched_at: self.now,
                    full_at: match (&self.previous, self.full) {
                        (Some(p), false) => p.full_at,
                        _ => self.now,
                    },
                    kinds: self.kinds,
                    assets: self.assets,
                    not_permitted: self.not_permitted.clone(),
                    failed: BTreeMap::new(),
                };
                repo.put_data_index(&index_key, &index).await?;
                (index_key, true)
            }
        };
        let summary = DataSummary {
            index: Some(index),
            items,
            changed: self.changed,
            requests: api.requests,
            not_modified: api.not_modified,
            not_permitted: self.not_permitted,
            rate_remaining: api.source.rate_remaining(),
            error: None,
            failed: BTreeMap::new(),
        };
        Ok((summary, written))
    }
}

/// Whether every kind is read whole this time: no previous snapshot, or its last whole
/// read is `full_every` old.
fn full_read_due(previous: Option<&DataIndex>, now: Timestamp, full_every: Duration) -> bool {
    previous.is_none_or(|p| {
        jiff::SignedDuration::try_from(full_every)
            .is_ok_and(|every| now.duration_since(p.full_at) >= every)
    })
}

/// A release asset already in the store, as its index lists it.
async fn stored_asset(repo: &Repository<'_>, key: &str) -> Result<Option<DataFile>, DataError> {
    let info = repo.store().head(key).await.map_err(RepoError::from)?;
    Ok(info.map(|info| DataFile {
        key: key.to_owned(),
        items: 1,
        size: info.size,
        sha256: info.metadata.get(meta::SHA256).cloned().unwrap_or_default(),
        etag: None,
    }))
}

fn updated_at(item: &Value) -> Option<Timestamp> {
    item["updated_at"].as_str()?.parse().ok()
}

/// The pull request a review belongs to (from its `pull_request_url`).
fn pull_number(review: &Value) -> Option<u64> {
    review["pull_request_url"]
        .as_str()?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

/// `old` with every item of `fresh` put in by `id` (replacing the old version).
fn merge(old: Vec<Value>, fresh: Vec<Value>) -> Vec<Value> {
    let mut by_id: BTreeMap<String, Value> =
        old.into_iter().map(|v| (v["id"].to_string(), v)).collect();
    for item in fresh {
        by_id.insert(item["id"].to_string(), item);
    }
    by_id.into_values().collect()
}

/// An organization's own data, once per run: its settings (what the token may read of
/// them), members and teams, as zstd JSON Lines under `orgs/<org>/data/<stamp>/`.
/// Read conditionally like a repository's; what the token may not read is recorded
/// not permitted; nothing is written when nothing changed.
pub async fn back_up_org_data(
    repo: &Repository<'_>,
    source: &dyn RepoData,
    org: &str,
    full_every: Duration,
    now: Timestamp,
) -> Result<DataSummary, DataError> {
    let (store, layout) = (repo.store(), repo.layout());
    let previous_key = repo.org_latest(org).await?;
    let previous: Option<DataIndex> = match &previous_key {
        Some(key) => repo.org_data_index(org, key).await?,
        None => None,
    };
    let now = store
        .free_second(now, |at| layout.org_data_index(org, at))
        .await
        .map_err(RepoError::from)?;
    let full = full_read_due(previous.as_ref(), now, full_every);
    let mut api = Counted {
        source,
        requests: 0,
        not_modified: 0,
    };
    let (mut kinds, mut changed, mut not_permitted) = (BTreeMap::new(), Vec::new(), Vec::new());
    let before = |kind: &str| previous.as_ref().and_then(|p| p.kinds.get(kind));

    // Settings: one object, kept when its content did not change.
    let settings = match api.object(&format!("/orgs/{org}")).await {
        Ok(settings) => Some(vec![settings]),
        Err(SourceError::Forbidden { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    match settings {
        None => not_permitted.push("settings".to_owned()),
        Some(items) => {
            let key = layout.org_data_file(org, now, "settings");
            let same = match before("settings") {
                Some(file) => repo.read_items(&file.key).await? == items,
                None => false,
            };
            let file = match before("settings") {
                Some(file) if same => file.clone(),
                _ => {
                    changed.push("settings".to_owned());
                    repo.write_items(&key, &items, None).await?
                }
            };
            kinds.insert("settings".to_owned(), file);
        }
    }
    for (kind, path) in [("members", "members"), ("teams", "teams")] {
        let etag = before(kind)
            .and_then(|f| f.etag.as_deref())
            .filter(|_| !full);
        let read = match api
            .all(format!("/orgs/{org}/{path}?per_page=100"), etag)
            .await
        {
            Ok(read) => read,
            Err(SourceError::Forbidden { .. } | SourceError::NotFound { .. }) => {
                not_permitted.push(kind.to_owned());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let file = match (read, before(kind)) {
            (None, Some(before)) => before.clone(),
            (None, None) => continue,
            (Some((items, etag)), _) => {
                changed.push(kind.to_owned());
                repo.write_items(&layout.org_data_file(org, now, kind), &items, etag)
                    .await?
            }
        };
        kinds.insert(kind.to_owned(), file);
    }
    let (summary, written) = Ending {
        subject: org.to_owned(),
        previous_key,
        previous,
        now,
        full,
        kinds,
        assets: BTreeMap::new(),
        changed,
        not_permitted,
    }
    .write(repo, &api, layout.org_data_index(org, now))
    .await?;
    if let (true, Some(index)) = (written, &summary.index) {
        repo.set_org_latest(org, index).await?;
    }
    Ok(summary)
}
