//! `clean_up_attempt`: what a job's attempt left between its manifest and its record
//! goes; other runs' backups and the chain it extended stay.

use bytes::Bytes;
use jiff::Timestamp;
use repovault_core::Manifest;
use repovault_core::ports::store::Store;
use repovault_local::FsStore;
use repovault_repository::{Layout, Leftovers, Repository, Scope};
use serde_json::json;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + second).unwrap()
}

/// Stores a backup of acme/api begun at `second` by `run`, whose chain is `links`
/// (seconds of their links, each stored too).
async fn backup(store: &dyn Store, second: i64, run: &str, links: &[i64]) -> String {
    let layout = Layout::new("");
    let mut bundles = Vec::new();
    for link in links {
        let key = layout.bundle("acme", "api", at(*link), false);
        store
            .put(&key, Bytes::from_static(b"a bundle"))
            .await
            .unwrap();
        bundles.push(
            json!({"key": key, "size": 8, "sha256": "00", "objects": 1, "created_at": at(*link)}),
        );
    }
    let manifest: Manifest = serde_json::from_value(json!({
        "schema": 1, "repository": "acme/api", "created_at": at(second), "run_id": run,
        "tool": "repovault test", "default_branch": "main", "head": "refs/heads/main",
        "refs": {"refs/heads/main": "1111111111111111111111111111111111111111"},
        "refs_digest": "d", "wiki_refs": null, "git_bytes": 1,
        "source": {"owner": "acme", "name": "api", "id": 1,
            "clone_url": "https://github.com/acme/api.git", "default_branch": "main",
            "pushed_at": null, "size_kb": 1, "private": false, "archived": false,
            "fork": false, "has_wiki": false},
        "format": "bundle-chain", "bundles": bundles,
    }))
    .unwrap();
    let key = layout.manifest("acme", "api", at(second));
    store
        .put(&key, Bytes::from(serde_json::to_vec(&manifest).unwrap()))
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn a_dead_attempts_backup_goes_and_other_runs_and_the_chain_stay() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::new(dir.path());
    let store: &dyn Store = &fs;
    let repo = Repository::new(store, "");
    let layout = Layout::new("");
    let run = "20261203T100000Z-a1b2".parse().unwrap();

    // The chain's first link, from the previous run; after the job's first delivery
    // (second 100.7), another run's backup (a webhook's job, recorded) on it, and the
    // dead attempt's backup on top of that one.
    let base = backup(store, 0, "20261202T100000Z-c3d4", &[0]).await;
    let other = backup(store, 102, "event-20261203T100001Z-e5f6", &[0, 102]).await;
    let dead = backup(store, 103, "20261203T100000Z-a1b2", &[0, 102, 103]).await;
    // A backup of this run begun before the first delivery is not this job's.
    let before = backup(store, 99, "20261203T100000Z-a1b2", &[0, 99]).await;
    // Nor is one `latest.json` names (however it came to).
    let named = backup(store, 104, "20261203T100000Z-a1b2", &[0, 104]).await;
    let latest = serde_json::json!({
        "schema": 1,
        "backup": {"key": named, "manifest_key": named, "size": 1, "sha256": "00"},
        "refs_digest": "d", "created_at": at(104), "run_id": "20261203T100000Z-a1b2",
    });
    store
        .put(
            &layout.latest("acme", "api"),
            Bytes::from(serde_json::to_vec(&latest).unwrap()),
        )
        .await
        .unwrap();

    let since =
        Timestamp::from_second(1_790_000_100).unwrap() + jiff::SignedDuration::from_millis(700);
    let left = repo
        .clean_up_attempt("acme", "api", &run, since)
        .await
        .unwrap();
    assert_eq!(
        left,
        Leftovers {
            uploads: 0,
            backups: 1
        }
    );

    let left = repo.backup_keys(Scope::Repo("acme", "api")).await.unwrap();
    assert_eq!(
        left,
        [base, before, other, named],
        "only the dead attempt's backup goes"
    );
    assert!(
        store.head(&dead).await.unwrap().is_none(),
        "its manifest is gone"
    );
    // Only the dead backup's own link goes: the other run's link it built on stays.
    for (link, kept) in [
        (0, true),
        (99, true),
        (102, true),
        (103, false),
        (104, true),
    ] {
        let key = layout.bundle("acme", "api", at(link), false);
        assert_eq!(store.head(&key).await.unwrap().is_some(), kept, "{key}");
    }
    // Nothing more to remove.
    let left = repo
        .clean_up_attempt("acme", "api", &run, since)
        .await
        .unwrap();
    assert_eq!(left, Leftovers::default());
}
