//! Discussions, which REST does not serve, through GraphQL: each discussion whole
//! (category, poll, answer, comments and their replies), read again only when updated,
//! the GraphQL budget asked for and paced apart from REST's.

use repovault_core::{DataIndex, LatestPointer};
use repovault_local::FsStore;
use repovault_repository::Repository;
use repovault_testkit::{MetadataSpec, RepoSpec, fixtures};
use serde_json::Value;

use crate::support::*;

const DISCUSSIONS: u32 = 6;

fn latest_index(backups: &std::path::Path) -> (String, DataIndex) {
    let latest: LatestPointer =
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/api/latest.json")).unwrap())
            .unwrap();
    let key = latest.data.expect("a data snapshot");
    let index = serde_json::from_slice(&std::fs::read(backups.join(&key)).unwrap()).unwrap();
    (key, index)
}

async fn discussions_of(backups: &std::path::Path, index: &DataIndex) -> Vec<Value> {
    let store = FsStore::new(backups);
    let mut items = Repository::new(&store, "")
        .read_file(&index.kinds["discussions"])
        .await
        .unwrap();
    items.sort_by_key(|d| d["number"].as_u64());
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn discussions_are_kept_whole_and_read_again_only_when_updated() {
    let gh = github().await;
    gh.add_org("acme");
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api").has_wiki(false));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 2,
            discussions: DISCUSSIONS,
            ..Default::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let (key, index) = latest_index(&backups);
    assert!(index.failed.is_empty(), "{index:?}");
    let discussions = discussions_of(&backups, &index).await;
    assert_eq!(discussions.len(), DISCUSSIONS as usize);
    for discussion in &discussions {
        let comments = discussion["comments"]["nodes"].as_array().unwrap();
        assert_eq!(
            Some(comments.len() as u64),
            discussion["comments"]["totalCount"].as_u64(),
            "every comment: {discussion}"
        );
        let replies: Vec<u64> = comments
            .iter()
            .map(|c| c["replies"]["nodes"].as_array().unwrap().len() as u64)
            .collect();
        assert_eq!(replies, [2, 1, 0], "every reply: {discussion}");
        assert!(discussion["category"]["name"].is_string(), "{discussion}");
        assert!(discussion.get("pageInfo").is_none());
        assert!(
            discussion["body"]
                .as_str()
                .unwrap()
                .contains("/user-attachments/assets/")
        );
    }
    let answered = discussions
        .iter()
        .find(|d| d["isAnswered"] == true)
        .unwrap();
    let answer = answered["answer"]["id"].clone();
    assert!(
        answered["comments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == answer && c["isAnswer"] == true),
        "{answered}"
    );
    let poll = discussions.iter().find(|d| !d["poll"].is_null()).unwrap();
    assert_eq!(
        poll["poll"]["options"]["nodes"].as_array().unwrap().len(),
        3
    );
    let store = FsStore::new(&backups);
    let categories = Repository::new(&store, "")
        .read_file(&index.kinds["discussion-categories"])
        .await
        .unwrap();
    assert!(
        categories.iter().any(|c| c["isAnswerable"] == true),
        "{categories:?}"
    );

    // Nothing changed: one query for each of the two kinds, nothing written.
    let before = gh.stats().graphql_requests;
    let out = run_org(work.path(), &gh, "r2", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(gh.stats().graphql_requests - before, 2);
    assert_eq!(latest_index(&backups).0, key);

    // One discussion commented on: read again, merged with the others.
    let number = discussions[1]["number"].as_u64().unwrap();
    gh.touch_discussion("acme", "api", number);
    let out = run_org(work.path(), &gh, "r3", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (newer, index) = latest_index(&backups);
    assert_ne!(newer, key);
    let again = discussions_of(&backups, &index).await;
    assert_eq!(again.len(), DISCUSSIONS as usize);
    for (old, new) in discussions.iter().zip(&again) {
        let comments = |d: &Value| d["comments"]["nodes"].as_array().unwrap().len();
        match new["number"].as_u64() == Some(number) {
            true => assert_eq!(comments(new), comments(old) + 1, "{new}"),
            false => assert_eq!(old, new),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_graphql_budget_costs_the_discussions_only() {
    let gh = github().await;
    gh.add_org("acme");
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api").has_wiki(false));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 2,
            discussions: 2,
            ..Default::default()
        },
    );
    // Spent for an hour: longer than a worker waits.
    gh.graphql_rate_limit_next(10, std::time::Duration::from_secs(3600));
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, index) = latest_index(&work.path().join("backups"));
    assert!(index.kinds.contains_key("issues"), "{index:?}");
    // REST's budget is another: the kinds after them are read.
    let failed: Vec<&str> = index.failed.keys().map(String::as_str).collect();
    assert_eq!(
        failed,
        ["discussion-categories", "discussions"],
        "{index:?}"
    );
    assert!(
        index
            .not_permitted
            .iter()
            .any(|k| k == "secret-scanning-alerts")
    );
    for kind in ["discussion-categories", "discussions"] {
        assert!(
            index
                .failed
                .get(kind)
                .is_some_and(|f| f.error.contains("rate limited")),
            "{kind}: {index:?}"
        );
    }
}
