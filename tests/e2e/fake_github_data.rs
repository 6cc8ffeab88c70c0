//! The fake GitHub's repository data beyond git is faithful where a backup of it will
//! depend on it: GitHub's shapes, `Link` pagination, `ETag` / `If-None-Match` → `304`
//! (which costs no rate limit), `since=`, release assets as bytes, privacy.

use crate::support::{Reply, TOKEN, github, send};
use repovault_testkit::{FakeGitHub, MetadataSpec, RepoSpec, fixtures};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on the fake's API with the token.
async fn get(gh: &FakeGitHub, path: &str, headers: &[(&str, &str)]) -> Reply {
    let url = format!("{}{path}", gh.api_url());
    send("GET", &url, Some(TOKEN), headers, &[]).await
}

/// Every item of a list endpoint, following `Link` pages.
async fn all(gh: &FakeGitHub, first: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let reply = get(gh, &path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        items.extend(reply.json().as_array().unwrap().iter().cloned());
        next = reply.next();
    }
    items
}

async fn fake_with_data() -> FakeGitHub {
    let gh = github().await;
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 45,
            comments_per_issue: 2,
            pulls: 5,
            reviews_per_pull: 2,
            releases: 2,
            asset_bytes: 3 << 20,
        },
    );
    gh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_data_is_paginated_with_githubs_shapes() {
    let gh = fake_with_data().await;
    let issues = all(&gh, "/repos/acme/api/issues?state=all&per_page=20").await;
    assert_eq!(
        issues.len(),
        50,
        "issues and pull requests, as GitHub lists them"
    );
    let pulls: Vec<&Value> = issues
        .iter()
        .filter(|i| i.get("pull_request").is_some())
        .collect();
    assert_eq!(pulls.len(), 5);
    for field in [
        "id",
        "node_id",
        "number",
        "title",
        "body",
        "user",
        "labels",
        "state",
        "created_at",
        "updated_at",
        "comments",
    ] {
        assert!(
            issues[0].get(field).is_some(),
            "issue without {field}: {}",
            issues[0]
        );
    }
    let open = all(&gh, "/repos/acme/api/issues?per_page=100").await;
    assert!(
        open.len() < 50 && open.iter().all(|i| i["state"] == "open"),
        "state=open is the default"
    );
    assert_eq!(
        all(&gh, "/repos/acme/api/issues/comments?per_page=100")
            .await
            .len(),
        100
    );
    assert_eq!(all(&gh, "/repos/acme/api/pulls?state=all").await.len(), 5);
    let number = pulls[0]["number"].as_u64().unwrap();
    assert_eq!(
        all(&gh, &format!("/repos/acme/api/pulls/{number}/reviews"))
            .await
            .len(),
        2
    );
    assert_eq!(all(&gh, "/repos/acme/api/pulls/comments").await.len(), 10);
    assert_eq!(all(&gh, "/repos/acme/api/labels").await.len(), 2);
    assert_eq!(
        all(&gh, "/repos/acme/api/milestones?state=all").await.len(),
        1
    );

    let releases = all(&gh, "/repos/acme/api/releases").await;
    let asset = &releases[0]["assets"][0];
    let bytes = get(
        &gh,
        &format!("/repos/acme/api/releases/assets/{}", asset["id"]),
        &[("Accept", "application/octet-stream")],
    )
    .await;
    assert_eq!(bytes.status, 200);
    assert_eq!(bytes.body.len() as u64, asset["size"].as_u64().unwrap());
    assert_eq!(bytes.body.len(), 3 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_pages_answer_304_which_costs_no_rate_limit() {
    let gh = fake_with_data().await;
    let path = "/repos/acme/api/issues?state=all&per_page=100";
    let first = get(&gh, path, &[]).await;
    let etag = first.header("etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let remaining = first.header("x-ratelimit-remaining").to_owned();
    let again = get(&gh, path, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(
        again.header("x-ratelimit-remaining"),
        remaining,
        "a 304 was counted"
    );
    assert_eq!(gh.stats().api_not_modified, 1);

    // A new comment changes the page: the old ETag no longer matches.
    gh.add_issue_comment("acme", "api", 1, "new");
    let changed = get(&gh, path, &[("If-None-Match", &etag)]).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), etag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_returns_only_what_changed_and_deletions_leave_no_trace() {
    let gh = fake_with_data().await;
    let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let since = format!("since={before}");
    assert!(
        all(&gh, &format!("/repos/acme/api/issues/comments?{since}"))
            .await
            .is_empty()
    );
    gh.add_issue_comment("acme", "api", 7, "a new comment");
    let changed = all(&gh, &format!("/repos/acme/api/issues/comments?{since}")).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["body"], "a new comment");
    let issues = all(&gh, &format!("/repos/acme/api/issues?state=all&{since}")).await;
    assert_eq!(issues.len(), 1, "the commented issue moved");
    assert_eq!(issues[0]["number"], 7);

    gh.delete_issue("acme", "api", 7);
    let all_issues = all(&gh, "/repos/acme/api/issues?state=all&per_page=100").await;
    assert_eq!(all_issues.len(), 49);
    assert!(
        all(&gh, &format!("/repos/acme/api/issues?state=all&{since}"))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repositorys_data_needs_the_token() {
    let gh: FakeGitHub = github().await;
    fixtures::standard_repo(&gh.repo_path("acme", "secret"), "secret");
    gh.add_repo(RepoSpec::new("acme", "secret").private());
    gh.add_metadata(
        "acme",
        "secret",
        MetadataSpec {
            issues: 1,
            ..Default::default()
        },
    );
    assert_eq!(get(&gh, "/repos/acme/secret/issues", &[]).await.status, 200);
    let authority = gh.api_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let request = format!(
        "GET /repos/acme/secret/issues HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_branch_is_served_by_its_percent_encoded_name() {
    let gh = fake_with_data().await;
    gh.protect_branch("acme", "api", "release/x#");
    let branches = all(&gh, "/repos/acme/api/branches?protected=true").await;
    let names: Vec<&str> = branches
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["main", "release/x#"]);
    let rules = get(
        &gh,
        "/repos/acme/api/branches/release%2Fx%23/protection",
        &[],
    )
    .await;
    assert_eq!(rules.status, 200);
    assert!(rules.json()["required_status_checks"].is_object());
    // Unencoded, the name is two segments: another (unprotected) branch.
    let split = get(&gh, "/repos/acme/api/branches/release/x%23/protection", &[]).await;
    assert_eq!(split.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_endpoint_answers_its_status_whatever_the_query() {
    let gh = fake_with_data().await;
    gh.withhold("acme", "api", "branches", Some(404));
    let withheld = get(
        &gh,
        "/repos/acme/api/branches?protected=true&per_page=100",
        &[],
    )
    .await;
    assert_eq!(withheld.status, 404);
    assert_eq!(withheld.json()["message"], "Not Found");
    // Only that endpoint: a branch's rules and the other kinds are served.
    let rules = get(&gh, "/repos/acme/api/branches/main/protection", &[]).await;
    assert_eq!(rules.status, 200);
    assert_eq!(get(&gh, "/repos/acme/api/labels", &[]).await.status, 200);

    gh.withhold("acme", "api", "pulls/comments", Some(500));
    assert_eq!(
        get(&gh, "/repos/acme/api/pulls/comments", &[]).await.status,
        500
    );
    assert_eq!(
        get(&gh, "/repos/acme/api/pulls?state=all", &[])
            .await
            .status,
        200
    );

    gh.withhold("acme", "api", "branches", None);
    assert_eq!(
        get(&gh, "/repos/acme/api/branches?protected=true", &[])
            .await
            .status,
        200
    );
}
