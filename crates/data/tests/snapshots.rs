//! The data crate's I/O loop through its public entry point, against a scripted
//! GitHub (each endpoint's items or error, every request remembered) and a folder
//! store, optionally one that refuses to write indexes. The fake GitHub over HTTP, with
//! the real client, is the worker's business (`crates/worker/tests/decisions.rs`);
//! here every answer is chosen exactly, rate limits and store faults included.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jiff::Timestamp;
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::{
    ByteStream, Created, ObjectInfo, ObjectMetadata, PutReceipt, Store, StoreError,
};
use repovault_core::{DataHint, DataIndex, DataSummary};
use repovault_local::FsStore;
use repovault_repository::Repository;
use serde_json::{Value, json};

const BASE: &str = "/repos/acme/api/";

/// GitHub as a script: the items of each endpoint (its path under `/repos/acme/api/`
/// without the query) or the error it answers, and every request asked.
#[derive(Default)]
struct Script {
    items: Mutex<BTreeMap<String, Vec<Value>>>,
    errors: Mutex<BTreeMap<String, fn() -> SourceError>>,
    asked: Mutex<Vec<String>>,
}

impl Script {
    /// A repository with an item or two of every kind, and two pull requests.
    fn repository() -> Script {
        let script = Script::default();
        for endpoint in [
            "issues",
            "issues/comments",
            "issues/events",
            "pulls/comments",
            "comments",
            "labels",
            "milestones",
            "releases",
            "collaborators",
            "teams",
            "hooks",
            "keys",
            "rulesets",
        ] {
            script.set(endpoint, vec![json!({"id": 1, "endpoint": endpoint})]);
        }
        script.set(
            "pulls",
            vec![
                json!({"id": 11, "number": 1, "updated_at": "2026-11-20T00:00:00Z"}),
                json!({"id": 12, "number": 2, "updated_at": "2026-11-20T00:00:00Z"}),
            ],
        );
        for n in [1, 2] {
            script.set(
                &format!("pulls/{n}/reviews"),
                vec![json!({"id": 100 + n, "pull_request_url": format!("https://api.github.com{BASE}pulls/{n}")})],
            );
        }
        script.set("branches", vec![json!({"name": "main"})]);
        script
    }

    fn set(&self, endpoint: &str, items: Vec<Value>) {
        self.items.lock().unwrap().insert(endpoint.into(), items);
    }

    fn fail(&self, endpoint: &str, error: fn() -> SourceError) {
        self.errors.lock().unwrap().insert(endpoint.into(), error);
    }

    /// The requests asked since the last call.
    fn asked(&self) -> Vec<String> {
        std::mem::take(&mut self.asked.lock().unwrap())
    }

    /// The endpoint `path` asks for, after noting the request; its scripted error.
    fn ask(&self, path: &str) -> Result<String, SourceError> {
        self.asked.lock().unwrap().push(path.to_owned());
        let endpoint = path
            .strip_prefix(BASE)
            .unwrap_or(path)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        match self.errors.lock().unwrap().get(&endpoint) {
            Some(error) => Err(error()),
            None => Ok(endpoint),
        }
    }
}

#[async_trait]
impl RepoData for Script {
    async fn page(&self, path: &str, if_none_match: Option<&str>) -> Result<Page, SourceError> {
        let endpoint = self.ask(path)?;
        let mut items = self
            .items
            .lock()
            .unwrap()
            .get(&endpoint)
            .cloned()
            .unwrap_or_default();
        // A probe: the most recently updated item, which the script's last one is.
        if path.ends_with("per_page=1") {
            items = items.pop().into_iter().collect();
        }
        let etag = format!("\"{}\"", Value::from(items.clone()));
        if if_none_match == Some(etag.as_str()) {
            return Ok(Page::NotModified);
        }
        Ok(Page::Fetched {
            items,
            etag: Some(etag),
            next: None,
        })
    }

    async fn object(&self, path: &str) -> Result<Value, SourceError> {
        self.ask(path)?;
        Ok(json!({"enforce_admins": {"enabled": true}}))
    }

    async fn download(&self, path: &str) -> Result<ByteStream, SourceError> {
        self.ask(path)?;
        Ok(Box::pin(futures::stream::empty()))
    }

    async fn attachment(&self, url: &str) -> Result<ByteStream, SourceError> {
        self.ask(url)?;
        Err(SourceError::NotFound { what: url.into() })
    }

    /// A repository with Discussions off.
    async fn graphql(&self, _query: &str, _variables: Value) -> Result<Value, SourceError> {
        self.ask("graphql")?;
        let none = json!({"nodes": [], "pageInfo": {"hasNextPage": false}});
        Ok(json!({"repository": {"hasDiscussionsEnabled": false,
            "discussions": none, "discussionCategories": none}}))
    }
}

/// A folder store that refuses to write data indexes: a store failing mid-snapshot.
struct RefusesIndexes(FsStore);

#[async_trait]
impl Store for RefusesIndexes {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.0.put_stream(key, body, metadata).await
    }
    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.0.replace_stream(key, body, metadata).await
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        if key.ends_with("/index.json") {
            return Err(StoreError::Backend {
                key: key.into(),
                message: "503 Slow Down".into(),
            });
        }
        self.0.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError> {
        self.0.put_if_absent(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.0.get(key).await
    }
    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        self.0.get_stream(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.0.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).await
    }
    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &repovault_core::ports::store::StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        self.0.abort_stale_uploads(prefix, stale).await
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// One backup of `acme/api`'s data at `now` on top of `previous`.
async fn back_up(
    store: &dyn Store,
    github: &Script,
    previous: Option<&str>,
    now: &str,
) -> DataSummary {
    hinted(store, github, previous, now, None).await
}

/// [`back_up`] with the job's hint.
async fn hinted(
    store: &dyn Store,
    github: &Script,
    previous: Option<&str>,
    now: &str,
    hint: Option<&DataHint>,
) -> DataSummary {
    let repo = Repository::new(store, "");
    let week = Duration::from_secs(7 * 86_400);
    repovault_data::back_up_data(
        &repo,
        github,
        ("acme", "api"),
        previous,
        hint,
        week,
        at(now),
    )
    .await
    .unwrap()
}

async fn index(store: &dyn Store, key: &str) -> DataIndex {
    store.get_json(key).await.unwrap().unwrap()
}

/// The files under `data/` that no index there names.
async fn unindexed(store: &dyn Store) -> Vec<String> {
    let files: Vec<String> = store
        .list("repos/acme/api/data/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut named = Vec::new();
    for key in files.iter().filter(|k| k.ends_with("/index.json")) {
        named.push(key.clone());
        named.extend(index(store, key).await.kinds.into_values().map(|f| f.key));
    }
    files.into_iter().filter(|k| !named.contains(k)).collect()
}

fn rate_limited() -> SourceError {
    SourceError::RateLimited {
        wait: Duration::from_secs(1800),
    }
}

#[tokio::test]
async fn a_rate_limit_stops_the_reading_and_what_was_read_is_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    let github = Script::repository();
    github.fail("pulls/comments", rate_limited);
    let summary = back_up(&store, &github, None, "2026-11-22T12:00:00Z").await;

    let asked = github.asked();
    let last = asked.last().unwrap();
    assert!(
        last.starts_with("/repos/acme/api/pulls/comments?"),
        "{last}"
    );
    assert_eq!(
        summary.changed,
        [
            "issues",
            "issue-comments",
            "issue-events",
            "pulls",
            "reviews"
        ]
    );
    let not_read: Vec<&str> = summary.failed.keys().map(String::as_str).collect();
    assert_eq!(
        not_read,
        [
            "actions-secrets",
            "actions-variables",
            "branch-protection",
            "code-scanning-alerts",
            "collaborators",
            "commit-comments",
            "dependabot-alerts",
            "deploy-keys",
            "discussion-categories",
            "discussions",
            "environment-branch-policies",
            "environment-secrets",
            "environment-variables",
            "environments",
            "hooks",
            "labels",
            "milestones",
            "projects",
            "releases",
            "review-comments",
            "rulesets",
            "secret-scanning-alerts",
            "teams",
        ]
    );
    assert!(summary.failed.values().all(|e| e.contains("rate limited")));
    let index = index(&store, summary.index.as_deref().unwrap()).await;
    assert_eq!(index.kinds.len(), 5);
    assert_eq!(index.failed.len(), 23);
    assert!(unindexed(&store).await.is_empty());

    // The budget is back: the kinds read are asked for conditionally (all unchanged),
    // the others read.
    github.errors.lock().unwrap().clear();
    let previous = summary.index.unwrap();
    let summary = back_up(&store, &github, Some(&previous), "2026-11-22T13:00:00Z").await;
    assert!(
        summary.failed.is_empty() && summary.error.is_none(),
        "{summary:?}"
    );
    assert_eq!(summary.changed.len(), 23, "{summary:?}");
    assert_eq!(summary.not_modified, 4, "issues, comments, events, pulls");
    assert!(unindexed(&store).await.is_empty());
}

#[tokio::test]
async fn a_store_that_cannot_take_the_index_keeps_no_file_of_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = RefusesIndexes(FsStore::new(dir.path()));
    let github = Script::repository();
    let repo = Repository::new(&store, "");
    let error = repovault_data::back_up_data(
        &repo,
        &github,
        ("acme", "api"),
        None,
        None,
        Duration::from_secs(86_400),
        at("2026-11-22T12:00:00Z"),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("repos/acme/api/data/20261122T120000Z/index.json"),
        "{text}"
    );
    assert!(text.contains("503 Slow Down"), "{text}");
    let left = store.list("repos/acme/api/data/").await.unwrap();
    assert!(
        left.is_empty(),
        "every kind's file was written, then removed: {left:?}"
    );
}

#[tokio::test]
async fn with_a_hint_only_the_kinds_it_names_and_those_that_failed_before_are_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    let github = Script::repository();
    github.fail("labels", || SourceError::Http {
        status: 502,
        url: "/repos/acme/api/labels".into(),
        message: "Bad Gateway".into(),
    });
    github.fail("hooks", || SourceError::Forbidden {
        message: "Must have admin rights".into(),
    });
    let first = back_up(&store, &github, None, "2026-11-22T12:00:00Z").await;
    assert!(first.failed.contains_key("labels"), "{first:?}");
    assert_eq!(first.not_permitted, ["hooks"]);
    let first_index = index(&store, first.index.as_deref().unwrap()).await;
    github.errors.lock().unwrap().remove("labels");
    github.set(
        "issues/comments",
        vec![
            json!({"id": 1}),
            json!({"id": 2, "updated_at": "2026-11-23T00:00:00Z"}),
        ],
    );
    github.set("releases", vec![json!({"id": 9, "assets": []})]);
    github.asked();

    let hint = DataHint {
        kinds: vec!["issue-comments".into(), "issues".into(), "pulls".into()],
        snapshot: first.index.clone().unwrap(),
    };
    let second = hinted(
        &store,
        &github,
        first.index.as_deref(),
        "2026-11-23T12:00:00Z",
        Some(&hint),
    )
    .await;
    let endpoints: std::collections::BTreeSet<String> = github
        .asked()
        .iter()
        .map(|p| {
            p.strip_prefix(BASE)
                .unwrap_or(p)
                .split('?')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The hinted kinds, and labels, which failed before; not the releases, which
    // changed unseen (the feed would have shown a release).
    assert_eq!(
        endpoints.into_iter().collect::<Vec<_>>(),
        ["issues", "issues/comments", "labels", "pulls"]
    );
    assert_eq!(second.changed, ["issue-comments", "labels"], "{second:?}");
    assert_eq!(second.not_permitted, ["hooks"]);
    assert!(
        second.failed.is_empty() && second.error.is_none(),
        "{second:?}"
    );
    let index = index_of(&store, &second).await;
    assert_eq!(index.kinds["issue-comments"].items, 2);
    // The kinds carried over are current as of the first read only: the next
    // `since=` goes on from there, whatever the feed shows later.
    assert_eq!(index.fetched_at, first_index.fetched_at);
    for kept in ["releases", "reviews", "hooks", "issue-events"] {
        assert_eq!(index.kinds.get(kept), first_index.kinds.get(kept), "{kept}");
    }

    // At a full read the hint counts for nothing.
    let full = hinted(
        &store,
        &github,
        second.index.as_deref(),
        "2026-12-01T12:00:00Z",
        Some(&DataHint {
            kinds: vec![],
            snapshot: second.index.clone().unwrap(),
        }),
    )
    .await;
    assert!(full.changed.contains(&"releases".to_owned()), "{full:?}");
}

#[tokio::test]
async fn reviews_are_not_read_when_their_pull_requests_could_not_be() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    let github = Script::repository();
    let first = back_up(&store, &github, None, "2026-11-22T12:00:00Z").await;
    let first_index = index(&store, first.index.as_deref().unwrap()).await;
    github.asked();

    github.fail("pulls", || SourceError::Http {
        status: 502,
        url: "/repos/acme/api/pulls".into(),
        message: "Bad Gateway".into(),
    });
    let second = back_up(
        &store,
        &github,
        first.index.as_deref(),
        "2026-11-23T12:00:00Z",
    )
    .await;
    assert!(second.failed["pulls"].contains("502"), "{second:?}");
    assert!(second.failed["reviews"].contains("pulls"), "{second:?}");
    assert!(
        !github.asked().iter().any(|p| p.contains("/reviews")),
        "no review read"
    );
    let index = index(&store, second.index.as_deref().unwrap()).await;
    assert_eq!(index.kinds["reviews"], first_index.kinds["reviews"]);
    assert_eq!(index.kinds["pulls"], first_index.kinds["pulls"]);

    // Pull requests readable again and unchanged: the reviews, which failed, are read
    // again, for every pull request.
    github.errors.lock().unwrap().clear();
    let third = back_up(
        &store,
        &github,
        second.index.as_deref(),
        "2026-11-24T12:00:00Z",
    )
    .await;
    assert!(third.failed.is_empty(), "{third:?}");
    let reviews: Vec<String> = github
        .asked()
        .into_iter()
        .filter(|p| p.contains("/reviews"))
        .collect();
    assert_eq!(reviews.len(), 2, "{reviews:?}");
    assert_eq!(index_of(&store, &third).await.kinds["reviews"].items, 2);
}

#[tokio::test]
async fn a_kind_that_failed_is_read_whole_not_since_the_snapshot_that_missed_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    let github = Script::repository();
    let first = back_up(&store, &github, None, "2026-11-22T12:00:00Z").await;
    github.set(
        "issues/comments",
        vec![json!({"id": 1}), json!({"id": 2, "body": "new"})],
    );
    github.fail("issues/comments", || SourceError::Transport {
        url: "/repos/acme/api/issues/comments".into(),
        message: "operation timed out".into(),
    });
    let second = back_up(
        &store,
        &github,
        first.index.as_deref(),
        "2026-11-23T12:00:00Z",
    )
    .await;
    assert!(second.failed["issue-comments"].contains("timed out"));
    github.errors.lock().unwrap().clear();
    github.asked();

    let third = back_up(
        &store,
        &github,
        second.index.as_deref(),
        "2026-11-24T12:00:00Z",
    )
    .await;
    let comments: Vec<String> = github
        .asked()
        .into_iter()
        .filter(|p| p.starts_with("/repos/acme/api/issues/comments"))
        .collect();
    assert_eq!(
        comments,
        [
            "/repos/acme/api/issues/comments?sort=updated&direction=desc&per_page=1",
            "/repos/acme/api/issues/comments?per_page=100",
        ],
        "probed, then read whole: no since="
    );
    assert_eq!(
        index_of(&store, &third).await.kinds["issue-comments"].items,
        2
    );
    // Issues, read since the second snapshot as usual, are merged.
    github.set("issues", vec![json!({"id": 1}), json!({"id": 3})]);
    github.asked();
    let fourth = back_up(
        &store,
        &github,
        third.index.as_deref(),
        "2026-11-25T12:00:00Z",
    )
    .await;
    assert!(github.asked().contains(
        &"/repos/acme/api/issues?state=all&per_page=100&since=2026-11-24T11:55:00Z".to_owned()
    ));
    assert_eq!(index_of(&store, &fourth).await.kinds["issues"].items, 2);
}

async fn index_of(store: &dyn Store, summary: &DataSummary) -> DataIndex {
    index(store, summary.index.as_deref().unwrap()).await
}

#[tokio::test]
async fn when_github_fails_kind_after_kind_the_rest_is_not_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path());
    let github = Script::repository();
    let server_error = || SourceError::Http {
        status: 503,
        url: "/repos/acme/api/…".into(),
        message: "Service Unavailable".into(),
    };
    for endpoint in ["issues", "issues/comments", "issues/events"] {
        github.fail(endpoint, server_error);
    }
    let summary = back_up(&store, &github, None, "2026-11-22T12:00:00Z").await;
    assert_eq!(
        github.asked().len(),
        3,
        "one request for each of three kinds"
    );
    assert_eq!(summary.failed.len(), 28, "{summary:?}");
    assert!(summary.failed["labels"].contains("GitHub is failing"));
    assert!(summary.failed["issues"].contains("503"));
    assert!(unindexed(&store).await.is_empty());
}
