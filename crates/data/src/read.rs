//! The I/O of reading one kind: the requests its [`Plan`] names, through the
//! [`RepoData`] port, and the release assets its items list, streamed into the store.

use std::borrow::Cow;
use std::collections::BTreeMap;

use repovault_core::DataFile;
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::{ByteStream, ObjectMetadata, StoreError};
use repovault_repository::{RepoError, Repository};
use serde_json::Value;

use crate::kinds::Kind;
use crate::plan::{self, Plan, Then};
use crate::snapshot::{Due, KindError, Outcome, Snapshot, due};
use crate::subject::Subject;
use crate::{discussions, items, projects};

/// The API as one snapshot uses it: every request counted.
pub(crate) struct Api<'a> {
    pub source: &'a dyn RepoData,
    /// REST requests.
    pub requests: u64,
    /// Of those, answered `304 Not Modified`.
    pub not_modified: u64,
    /// GraphQL queries.
    pub graphql_queries: u64,
}

impl<'a> Api<'a> {
    pub fn new(source: &'a dyn RepoData) -> Self {
        Api {
            source,
            requests: 0,
            not_modified: 0,
            graphql_queries: 0,
        }
    }

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

    pub(crate) async fn graphql(
        &mut self,
        query: &str,
        variables: Value,
    ) -> Result<Value, SourceError> {
        self.graphql_queries += 1;
        self.source.graphql(query, variables).await
    }

    async fn download(&mut self, path: &str) -> Result<ByteStream, SourceError> {
        self.requests += 1;
        self.source.download(path).await
    }

    /// Every item from `path` on, following `Link` pages; `None` if the first page is
    /// unchanged (given `etag`). Returns the first page's `ETag`.
    async fn all(
        &mut self,
        path: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<Value>, Option<String>)>, SourceError> {
        let (mut items, first_etag, mut next) = match self.page(path, etag).await? {
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

    /// Every item at `path`, unconditionally.
    async fn every(&mut self, path: &str) -> Result<Vec<Value>, SourceError> {
        Ok(self.all(path, None).await?.unwrap_or_default().0)
    }
}

/// Reads `kind` of `subject` as `plan` says, on top of `snapshot` so far: sanitised,
/// with its release assets stored. Nothing of the snapshot is written here.
pub(crate) async fn read(
    api: &mut Api<'_>,
    repo: &Repository<'_>,
    subject: &Subject<'_>,
    kind: &Kind,
    plan: Plan,
    snapshot: &Snapshot,
) -> Result<Outcome, KindError> {
    let (mut items, etag) = match plan {
        Plan::List { path, etag } => match api.all(&path, etag.as_deref()).await? {
            None => return Ok(Outcome::Unchanged),
            Some(read) => read,
        },
        Plan::Probe { probe, etag, then } => {
            let (newest, etag) = match api.page(&probe, etag.as_deref()).await? {
                Page::NotModified => return Ok(Outcome::Unchanged),
                Page::Fetched { items, etag, .. } => (items, etag),
            };
            let items = match then {
                // Nothing there at all: the probe saw it.
                _ if newest.is_empty() => Vec::new(),
                Then::Whole(path) => api.every(&path).await?,
                Then::Merge { path, into } => {
                    let fresh = api.every(&path).await?;
                    items::merge(repo.read_items(&into).await?, fresh)
                }
            };
            (items, etag)
        }
        Plan::Object { path, compare_with } => {
            let items = vec![api.object(&path).await?];
            if let Some(key) = compare_with
                && repo.read_items(&key).await? == items
            {
                return Ok(Outcome::Unchanged);
            }
            (items, None)
        }
        Plan::PerPullRequest {
            of,
            base,
            since,
            retain,
        } => {
            let pulls = match read_from(repo, snapshot, of, retain.is_some()).await? {
                Ok(pulls) => pulls,
                Err(outcome) => return Ok(outcome),
            };
            let updated = items::pull_requests_updated(&pulls, since);
            let mut items = match &retain {
                Some(key) => items::reviews_kept(repo.read_items(key).await?, &updated),
                None => Vec::new(),
            };
            for number in updated {
                items.extend(api.every(&plan::reviews_path(&base, number)).await?);
            }
            (items, None)
        }
        Plan::PerEnvironment {
            of,
            base,
            path,
            when,
            incremental,
        } => {
            let environments = match read_from(repo, snapshot, of, incremental).await? {
                Ok(environments) => environments,
                Err(outcome) => return Ok(outcome),
            };
            let mut items = Vec::new();
            for environment in environments.iter() {
                let Some(name) = environment["name"].as_str() else {
                    continue;
                };
                if when
                    .is_some_and(|pointer| environment.pointer(pointer) != Some(&Value::Bool(true)))
                {
                    continue;
                }
                let list = plan::environment_path(&base, name, path);
                let found = match api.every(&list).await {
                    Ok(found) => found,
                    // Deleted since it was listed.
                    Err(SourceError::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(e.into()),
                };
                for mut item in found {
                    if let Some(item) = item.as_object_mut() {
                        item.insert("environment".into(), Value::from(name));
                    }
                    items.push(item);
                }
            }
            (items, None)
        }
        Plan::DiscussionCategories {
            follows,
            compare_with,
        } => {
            if let Some(outcome) = not_due(snapshot, follows, compare_with.is_some()) {
                return Ok(outcome);
            }
            let (owner, name) = subject.repository()?;
            let items = discussions::categories(api, owner, name).await?;
            if let Some(key) = compare_with
                && repo.read_items(&key).await? == items
            {
                return Ok(Outcome::Unchanged);
            }
            (items, None)
        }
        Plan::Discussions { since, into } => {
            let (owner, name) = subject.repository()?;
            let fresh = discussions::discussions(api, owner, name, since).await?;
            let items = match into {
                Some(_) if fresh.is_empty() => return Ok(Outcome::Unchanged),
                Some(key) => items::merge(repo.read_items(&key).await?, fresh),
                // One that moved up while the pages were read is there twice.
                None => items::merge(Vec::new(), fresh),
            };
            (items, None)
        }
        Plan::Projects { compare_with } => {
            let of = match *subject {
                Subject::Repo { owner, name } => projects::Of::Repo { owner, name },
                Subject::Org(org) => projects::Of::Owner(org),
            };
            let listed = projects::probe(api, of).await?;
            let before = match &compare_with {
                Some(key) => repo.read_items(key).await?,
                None => Vec::new(),
            };
            if compare_with.is_some() && projects::unchanged(&listed, &before) {
                return Ok(Outcome::Unchanged);
            }
            (projects::read(api, of, listed, &before).await?, None)
        }
        Plan::PerProtectedBranch { list, etag, base } => {
            let Some((branches, etag)) = api.all(&list, etag.as_deref()).await? else {
                return Ok(Outcome::Unchanged);
            };
            let mut rules = Vec::new();
            for branch in branches.iter().filter_map(|b| b["name"].as_str()) {
                match api.object(&plan::protection_path(&base, branch)).await {
                    Ok(mut rule) => {
                        if let Some(rule) = rule.as_object_mut() {
                            rule.insert("branch".into(), Value::from(branch));
                        }
                        rules.push(rule);
                    }
                    // Reading a branch's rules needs admin rights (GitHub may hide
                    // them with a 404).
                    Err(SourceError::Forbidden { .. } | SourceError::NotFound { .. }) => {
                        return Ok(Outcome::NotPermitted);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            (rules, etag)
        }
    };
    if let Some(sanitise) = kind.sanitise {
        items.iter_mut().for_each(sanitise);
    }
    let assets = match kind.assets {
        true => Some(store_assets(api, repo, subject, &items, snapshot.assets()).await?),
        false => None,
    };
    Ok(Outcome::Read {
        items,
        etag,
        assets,
    })
}

/// The items of the kind `of` another kind is read from, when that one is due this
/// time (`incremental`: its own previous file is current as of the previous snapshot):
/// held from this snapshot, or read back from `of`'s file; else how it ends.
async fn read_from<'s>(
    repo: &Repository<'_>,
    snapshot: &'s Snapshot,
    of: &str,
    incremental: bool,
) -> Result<Result<Cow<'s, [Value]>, Outcome>, RepoError> {
    if let Some(outcome) = not_due(snapshot, of, incremental) {
        return Ok(Err(outcome));
    }
    Ok(Ok(match (snapshot.held(of), snapshot.file(of)) {
        (Some(items), _) => Cow::Borrowed(items),
        (None, Some(file)) => match repo.read_items(&file.key).await {
            Ok(items) => Cow::Owned(items),
            // Sealed, and this worker may not open it: `of` was not read this time
            // (a `304`), so what is read from it has not changed either.
            Err(RepoError::Sealed { .. }) => return Ok(Err(Outcome::Unchanged)),
            Err(e) => return Err(e),
        },
        (None, None) => Cow::Borrowed(&[]),
    }))
}

/// How a kind read from (or with) the kind `of` ends when it is not read this time
/// (`incremental`: its own previous file is current); `None`: it is due.
fn not_due(snapshot: &Snapshot, of: &str, incremental: bool) -> Option<Outcome> {
    match due(snapshot.state(of), incremental) {
        Due::Unchanged => Some(Outcome::Unchanged),
        Due::Blocked => Some(Outcome::Failed(format!(
            "not read: it is read from {of}, which could not be"
        ))),
        Due::Read => None,
    }
}

/// Every release asset `releases` list, each stored once under its id: those in
/// `stored` as they are, the others streamed from GitHub into the store.
async fn store_assets(
    api: &mut Api<'_>,
    repo: &Repository<'_>,
    subject: &Subject<'_>,
    releases: &[Value],
    stored: &BTreeMap<u64, DataFile>,
) -> Result<BTreeMap<u64, DataFile>, KindError> {
    let (mut assets, missing) = items::release_assets(releases, stored);
    for id in missing {
        let Some(key) = subject.asset(repo.layout(), id) else {
            return Err(RepoError::Name(repovault_core::Invalid(format!(
                "{} holds no release assets",
                subject.name()
            )))
            .into());
        };
        let file = match stored_asset(repo, &key).await? {
            // Stored by an earlier backup whose snapshot did not get to list it.
            Some(file) => file,
            None => {
                let path = plan::asset_path(&subject.api_base(), id);
                let body = api.download(&path).await?;
                match repo.put_object(&key, body, &ObjectMetadata::new()).await {
                    Ok(receipt) => DataFile {
                        key,
                        items: 1,
                        size: receipt.size,
                        sha256: receipt.sha256,
                        etag: None,
                    },
                    // The download broke off: GitHub's fault, not the store's.
                    Err(RepoError::Store(StoreError::Aborted { source, .. })) => {
                        return Err(SourceError::Transport {
                            url: path,
                            message: source.to_string(),
                        }
                        .into());
                    }
                    // Another backup of this repository stored it meanwhile.
                    Err(RepoError::Store(StoreError::AlreadyExists { .. })) => {
                        stored_asset(repo, &key)
                            .await?
                            .ok_or_else(|| RepoError::Invalid {
                                key: key.clone(),
                                reason: "vanished after it was stored".into(),
                            })?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        assets.insert(id, file);
    }
    Ok(assets)
}

/// A release asset already in the store, as its index lists it.
async fn stored_asset(repo: &Repository<'_>, key: &str) -> Result<Option<DataFile>, RepoError> {
    Ok(repo.stored(key).await?.map(|stored| DataFile {
        key: key.to_owned(),
        items: 1,
        size: stored.size,
        sha256: stored.sha256,
        etag: None,
    }))
}
