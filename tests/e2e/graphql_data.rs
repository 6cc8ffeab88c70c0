//! What REST does not serve, through GraphQL: discussions, each whole (category,
//! poll, answer, comments and their replies), read again only when updated; Projects
//! (v2) with their fields, items and values, an organization's with its data and a
//! repository's linked ones; the GraphQL budget paced apart from REST's.

use repovault_core::DataIndex;
use repovault_local::FsStore;
use repovault_repository::Repository;
use repovault_testkit::{MetadataSpec, RepoSpec};
use serde_json::Value;

use crate::support::*;

/// More than a page of them (25).
const DISCUSSIONS: u32 = 30;

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
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api"),
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

    // Nothing changed: a probe of the discussions and one of the projects, and one of
    // the organization's projects; nothing written.
    let before = gh.stats().graphql_requests;
    let out = run_org(work.path(), &gh, "r2", PROBE_EVERY_KIND).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(gh.stats().graphql_requests - before, 3);
    assert_eq!(latest_index(&backups).0, key);

    // One discussion commented on, past a page of comments (50): read again whole,
    // merged with the others.
    let number = discussions[1]["number"].as_u64().unwrap();
    for _ in 0..50 {
        gh.touch_discussion("acme", "api", number);
    }
    let out = run_org(work.path(), &gh, "r3", PROBE_EVERY_KIND).await;
    assert!(out.status.success(), "{}", text(&out));
    let (newer, index) = latest_index(&backups);
    assert_ne!(newer, key);
    let again = discussions_of(&backups, &index).await;
    assert_eq!(again.len(), DISCUSSIONS as usize);
    for (old, new) in discussions.iter().zip(&again) {
        let comments = |d: &Value| d["comments"]["nodes"].as_array().unwrap().len();
        match new["number"].as_u64() == Some(number) {
            true => assert_eq!(comments(new), comments(old) + 50, "{new}"),
            false => assert_eq!(old, new),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_graphql_budget_costs_the_graphql_kinds_only() {
    let gh = github().await;
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api"),
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
        ["discussion-categories", "discussions", "projects"],
        "{index:?}"
    );
    assert!(
        index
            .not_permitted
            .iter()
            .any(|k| k == "secret-scanning-alerts")
    );
    for kind in ["discussions", "projects"] {
        assert!(
            index
                .failed
                .get(kind)
                .is_some_and(|f| f.error.contains("rate limited")),
            "{kind}: {index:?}"
        );
    }
}

/// An organization's board linked to two repositories, and a user's board linked to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projects_are_kept_with_their_fields_items_and_values() {
    let gh = github().await;
    gh.add_user("octocat");
    for name in ["api", "web"] {
        let data = MetadataSpec {
            issues: 2,
            pulls: 1,
            ..Default::default()
        };
        acme_repo(&gh, name, RepoSpec::new("acme", name), data);
    }
    gh.add_project("acme", "Roadmap", &["api", "web"]);
    gh.add_project("octocat", "Personal", &["acme/api"]);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let store = FsStore::new(&backups);
    let repo = Repository::new(&store, "");
    let org = acme_org_index(&backups).await;
    let boards = repo.read_file(&org.kinds["projects"]).await.unwrap();
    assert_eq!(boards.len(), 1, "{boards:?}");
    let board = &boards[0];
    assert_eq!(board["title"], "Roadmap");
    let fields: Vec<&str> = board["fields"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        fields.contains(&"Status") && fields.contains(&"Sprint"),
        "{fields:?}"
    );
    let status = board["fields"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Status")
        .unwrap();
    assert_eq!(status["options"].as_array().unwrap().len(), 3, "{status}");
    let items = board["items"]["nodes"].as_array().unwrap();
    assert_eq!(
        Some(items.len() as u64),
        board["items"]["totalCount"].as_u64()
    );
    // Two issues and a pull request of each repository, and a draft issue.
    assert_eq!(items.len(), 7, "{board}");
    assert!(
        items
            .iter()
            .any(|i| i["content"]["__typename"] == "DraftIssue")
    );
    for item in items {
        let values = item["fieldValues"]["nodes"].as_array().unwrap();
        assert!(
            values
                .iter()
                .any(|v| v["field"]["name"] == "Status" && v["name"].is_string()),
            "{item}"
        );
    }

    let (key, index) = latest_index(&backups);
    let linked = repo.read_file(&index.kinds["projects"]).await.unwrap();
    let titles: Vec<&str> = linked.iter().filter_map(|p| p["title"].as_str()).collect();
    assert_eq!(titles.len(), 2, "{linked:?}");
    for project in &linked {
        match project["owner"]["__typename"].as_str() {
            // The organization's board is with the organization's data.
            Some("Organization") => assert!(project.get("items").is_none(), "{project}"),
            _ => assert!(project["items"]["nodes"].is_array(), "{project}"),
        }
    }

    // Nothing changed: one probe per repository and organization, nothing written.
    let out = run_org(work.path(), &gh, "r2", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(latest_index(&backups).0, key);
    assert_eq!(acme_org_index(&backups).await, org);

    // A token that may not read projects: the rest is backed up, projects not permitted.
    gh.deny_projects(true);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, index) = latest_index(&work.path().join("backups"));
    assert!(
        index.not_permitted.iter().any(|k| k == "projects"),
        "{index:?}"
    );
    assert!(
        index.kinds.contains_key("issues") && index.failed.is_empty(),
        "{index:?}"
    );
}
