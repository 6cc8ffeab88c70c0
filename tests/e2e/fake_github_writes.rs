//! The fake GitHub's write side is faithful where a restore into GitHub will depend on
//! it: GitHub's statuses and error bodies, objects written in the shapes the read side
//! serves (so a later backup reads them back as it reads generated data), one number
//! sequence for issues and pull requests, `git push` over smart HTTP (not to
//! `refs/pull/*`; to a wiki only once it exists), release assets on their own origin,
//! Git LFS uploads to the media host, and GitHub's limit on content creation.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{Reply, TOKEN, github, send};
use base64::Engine;
use repovault_testkit::{
    FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec, TOKEN_USER, fixtures,
};
use serde_json::{Value, json};

/// `method <api><path>` with the token and a JSON body (none for `Value::Null`).
async fn api(gh: &FakeGitHub, method: &str, path: &str, body: Value) -> Reply {
    let bytes = if body.is_null() {
        vec![]
    } else {
        body.to_string().into_bytes()
    };
    let url = format!("{}{path}", gh.api_url());
    send(method, &url, Some(TOKEN), &[], &bytes).await
}

async fn get(gh: &FakeGitHub, path: &str) -> Value {
    let reply = api(gh, "GET", path, Value::Null).await;
    assert_eq!(
        reply.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `git push <url> <refspecs>` from the repository at `from`, with the token as a
/// Basic password in `http.extraHeader` when given.
async fn push(from: &Path, url: &str, token: Option<&str>, refspecs: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new("git");
    if let Some(token) = token {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        cmd.arg("-c")
            .arg(format!("http.extraHeader=Authorization: Basic {basic}"));
    }
    cmd.arg("--git-dir")
        .arg(from)
        .arg("push")
        .arg(url)
        .args(refspecs)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env_remove("GIT_DIR");
    cmd.output().await.expect("run git push")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fixture repository `acme/api` (`main`, orphan `dev`, tags, `refs/pull/1/head`)
/// with generated data.
async fn fixture(gh: &FakeGitHub, spec: MetadataSpec) {
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata("acme", "api", spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repositories_are_created_empty_with_githubs_default_labels() {
    let gh = github().await;
    gh.add_org("acme");
    let created = api(
        &gh,
        "POST",
        "/orgs/acme/repos",
        json!({ "name": "api", "description": "The API", "homepage": "https://example.com",
                "private": true, "has_issues": false, "has_wiki": true, "allow_rebase_merge": false,
                "delete_branch_on_merge": true }),
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let repo = created.json();
    assert_eq!(repo, get(&gh, "/repos/acme/api").await, "as GET serves it");
    assert_eq!(repo["full_name"], "acme/api");
    assert_eq!(repo["owner"]["type"], "Organization");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["visibility"], "private");
    assert_eq!(repo["description"], "The API");
    assert_eq!(repo["homepage"], "https://example.com");
    assert_eq!(repo["has_issues"], false);
    assert_eq!(repo["allow_rebase_merge"], false);
    assert_eq!(repo["delete_branch_on_merge"], true);
    assert_eq!(repo["allow_squash_merge"], true, "GitHub's default");
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["size"], 0);
    assert_eq!(
        repo["permissions"]["admin"], true,
        "its creator administers it"
    );
    // Empty: a bare repository without a single ref.
    let git = git2::Repository::open_bare(gh.repo_path("acme", "api")).unwrap();
    assert_eq!(git.references().unwrap().count(), 0);
    let listed = get(&gh, "/orgs/acme/repos").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "api")
    );

    let labels = get(&gh, "/repos/acme/api/labels?per_page=100").await;
    let names: Vec<&str> = labels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bug",
            "documentation",
            "duplicate",
            "enhancement",
            "good first issue",
            "help wanted",
            "invalid",
            "question",
            "wontfix"
        ]
    );
    assert_eq!(labels[0]["color"], "d73a4a");
    assert_eq!(labels[0]["description"], "Something isn't working");
    assert_eq!(labels[0]["default"], true);

    let again = api(&gh, "POST", "/orgs/acme/repos", json!({ "name": "API" })).await;
    assert_eq!(again.status, 422);
    let body = again.json();
    assert_eq!(body["message"], "Repository creation failed.");
    assert_eq!(
        body["errors"],
        json!([{ "resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account" }])
    );
    assert!(
        body["documentation_url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/")
    );

    assert_eq!(
        api(&gh, "POST", "/orgs/nobody/repos", json!({ "name": "x" }))
            .await
            .status,
        404
    );
    assert_eq!(
        api(&gh, "POST", "/orgs/acme/repos", json!({ "name": ".." }))
            .await
            .status,
        422
    );
    let missing = api(&gh, "POST", "/orgs/acme/repos", json!({})).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.json()["message"],
        "Invalid request.\n\n\"name\" wasn't supplied."
    );
    let unparsable = send(
        "POST",
        &format!("{}/orgs/acme/repos", gh.api_url()),
        Some(TOKEN),
        &[],
        b"{nope",
    )
    .await;
    assert_eq!(unparsable.status, 400);
    assert_eq!(unparsable.json()["message"], "Problems parsing JSON");
    let anonymous = send(
        "POST",
        &format!("{}/orgs/acme/repos", gh.api_url()),
        None,
        &[],
        b"{\"name\":\"y\"}",
    )
    .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["message"], "Requires authentication");
    assert!(!anonymous.header("x-ratelimit-remaining").is_empty());
    assert!(!gh.has_repo("acme", "y"));

    let mine = api(
        &gh,
        "POST",
        "/user/repos",
        json!({ "name": "notes", "visibility": "public" }),
    )
    .await;
    assert_eq!(mine.status, 201);
    assert_eq!(mine.json()["owner"]["login"], TOKEN_USER);
    assert_eq!(mine.json()["owner"]["type"], "User");
    assert!(!mine.header("x-ratelimit-remaining").is_empty());

    let org = get(&gh, "/users/acme").await;
    assert_eq!(
        (org["login"].as_str(), org["type"].as_str()),
        (Some("acme"), Some("Organization"))
    );
    assert_eq!(
        get(&gh, &format!("/users/{TOKEN_USER}")).await["type"],
        "User"
    );
    assert_eq!(
        api(&gh, "GET", "/users/nobody", Value::Null).await.status,
        404
    );

    let topics = api(
        &gh,
        "PUT",
        "/repos/acme/api/topics",
        json!({ "names": ["Rust", "backup-tool", "rust"] }),
    )
    .await;
    assert_eq!(topics.status, 200);
    assert_eq!(topics.json(), json!({ "names": ["rust", "backup-tool"] }));
    assert_eq!(
        get(&gh, "/repos/acme/api").await["topics"],
        json!(["rust", "backup-tool"])
    );
    let bad = api(
        &gh,
        "PUT",
        "/repos/acme/api/topics",
        json!({ "names": ["-nope"] }),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        get(&gh, "/repos/acme/api").await["topics"],
        json!(["rust", "backup-tool"])
    );

    let empty = api(
        &gh,
        "PATCH",
        "/repos/acme/api",
        json!({ "default_branch": "main" }),
    )
    .await;
    assert_eq!(
        empty.status, 422,
        "an empty repository has no branch to make default"
    );
    let patched = api(
        &gh,
        "PATCH",
        "/repos/acme/api",
        json!({ "description": "Renewed", "has_projects": false }),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["description"], "Renewed");
    assert_eq!(get(&gh, "/repos/acme/api").await["has_projects"], false);

    let stats = gh.stats();
    assert_eq!(stats.writes_of("repos"), 2);
    assert_eq!(
        stats.writes_of("labels"),
        0,
        "default labels are GitHub's, not the client's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_take_branches_and_tags_but_not_pull_request_refs() {
    let gh = github().await;
    gh.add_org("acme");
    for name in ["api", "solo"] {
        assert_eq!(
            api(&gh, "POST", "/orgs/acme/repos", json!({ "name": name }))
                .await
                .status,
            201
        );
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src.git");
    let source = fixtures::standard_repo(&src, "api");
    let url = gh.clone_url("acme", "api");

    let anonymous = push(&src, &url, None, &["refs/heads/main:refs/heads/main"]).await;
    assert!(!anonymous.status.success(), "pushing takes credentials");

    let out = push(
        &src,
        &url,
        Some(TOKEN),
        &["refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = git2::Repository::open_bare(gh.repo_path("acme", "api")).unwrap();
    for refname in [
        "refs/heads/main",
        "refs/heads/dev",
        "refs/tags/v1.0",
        "refs/tags/v1.1",
    ] {
        assert_eq!(
            pushed.refname_to_id(refname).unwrap(),
            source.refname_to_id(refname).unwrap(),
            "{refname}"
        );
    }
    let repo = get(&gh, "/repos/acme/api").await;
    assert!(
        repo["size"].as_u64().unwrap() > 0,
        "size moves with a push: {repo}"
    );
    assert!(repo["pushed_at"].as_str().unwrap() >= repo["created_at"].as_str().unwrap());
    assert_eq!(gh.stats().pushes.get("acme/api"), Some(&1));

    // GitHub's pull request refs are read-only.
    let pull = push(
        &src,
        &url,
        Some(TOKEN),
        &["refs/pull/1/head:refs/pull/1/head"],
    )
    .await;
    assert!(!pull.status.success());
    assert!(
        stderr(&pull).contains("deny updating a hidden ref"),
        "{}",
        stderr(&pull)
    );
    assert!(pushed.find_reference("refs/pull/1/head").is_err());

    let unknown = api(
        &gh,
        "PATCH",
        "/repos/acme/api",
        json!({ "default_branch": "nope" }),
    )
    .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(
        unknown.json()["errors"],
        json!([{ "resource": "Repository", "code": "invalid", "field": "default_branch" }])
    );
    let switched = api(
        &gh,
        "PATCH",
        "/repos/acme/api",
        json!({ "default_branch": "dev" }),
    )
    .await;
    assert_eq!(switched.status, 200);
    assert_eq!(switched.json()["default_branch"], "dev");
    assert_eq!(
        pushed.head().unwrap().name().ok(),
        Some("refs/heads/dev"),
        "clones check out the default branch"
    );

    // An empty repository's first pushed branch becomes its default.
    let solo = push(
        &src,
        &gh.clone_url("acme", "solo"),
        Some(TOKEN),
        &["refs/heads/dev:refs/heads/dev"],
    )
    .await;
    assert!(solo.status.success(), "{}", stderr(&solo));
    assert_eq!(get(&gh, "/repos/acme/solo").await["default_branch"], "dev");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiki_takes_pushes_only_once_it_exists() {
    let gh = github().await;
    gh.add_org("acme");
    assert_eq!(
        api(&gh, "POST", "/orgs/acme/repos", json!({ "name": "api" }))
            .await
            .status,
        201
    );
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("wiki.git");
    let wiki = fixtures::wiki_repo(&src);
    let url = gh
        .clone_url("acme", "api")
        .replace("/api.git", "/api.wiki.git");

    let before = push(
        &src,
        &url,
        Some(TOKEN),
        &["refs/heads/master:refs/heads/master"],
    )
    .await;
    assert!(!before.status.success(), "no wiki before its first page");
    assert!(stderr(&before).contains("not found"), "{}", stderr(&before));

    gh.init_wiki("acme", "api");
    let after = push(
        &src,
        &url,
        Some(TOKEN),
        &["refs/heads/master:refs/heads/master"],
    )
    .await;
    assert!(after.status.success(), "{}", stderr(&after));
    let pushed = git2::Repository::open_bare(gh.wiki_path("acme", "api")).unwrap();
    assert_eq!(
        pushed.refname_to_id("refs/heads/master").unwrap(),
        wiki.refname_to_id("refs/heads/master").unwrap()
    );
    assert_eq!(
        gh.stats().pushes.get("acme/api.wiki"),
        Some(&1),
        "the first never got past the ref listing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_milestones_issues_and_comments_are_written_in_githubs_shapes() {
    let gh = github().await;
    let spec = MetadataSpec {
        issues: 3,
        comments_per_issue: 1,
        pulls: 1,
        ..Default::default()
    };
    fixture(&gh, spec).await;
    let generated_issue = get(&gh, "/repos/acme/api/issues/1").await;
    let generated_comment = get(&gh, "/repos/acme/api/issues/comments").await[0].clone();
    let generated_label = get(&gh, "/repos/acme/api/labels").await[0].clone();
    let generated_milestone = get(&gh, "/repos/acme/api/milestones/1").await;

    // Labels.
    let label = api(
        &gh,
        "POST",
        "/repos/acme/api/labels",
        json!({ "name": "needs triage", "color": "fbca04", "description": "New" }),
    )
    .await;
    assert_eq!(label.status, 201);
    assert_eq!(keys(&label.json()), keys(&generated_label));
    assert_eq!(label.json()["color"], "fbca04");
    let dup = api(
        &gh,
        "POST",
        "/repos/acme/api/labels",
        json!({ "name": "Needs Triage", "color": "000000" }),
    )
    .await;
    assert_eq!(dup.status, 422);
    assert_eq!(dup.json()["message"], "Validation Failed");
    assert_eq!(
        dup.json()["errors"],
        json!([{ "resource": "Label", "code": "already_exists", "field": "name" }])
    );
    let renamed = api(
        &gh,
        "PATCH",
        "/repos/acme/api/labels/needs%20triage",
        json!({ "new_name": "triage", "color": "ffffff" }),
    )
    .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(
        (
            renamed.json()["name"].as_str(),
            renamed.json()["color"].as_str()
        ),
        (Some("triage"), Some("ffffff"))
    );
    assert_eq!(
        get(&gh, "/repos/acme/api/labels/triage").await["id"],
        label.json()["id"]
    );

    // Milestones: numbers go on from the generated one and are never reused.
    let m2 = api(
        &gh,
        "POST",
        "/repos/acme/api/milestones",
        json!({ "title": "v2.0", "description": "next", "due_on": "2030-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(m2.status, 201);
    assert_eq!(keys(&m2.json()), keys(&generated_milestone));
    assert_eq!(m2.json()["number"], 2);
    assert_eq!(m2.json()["due_on"], "2030-01-01T00:00:00Z");
    let dup = api(
        &gh,
        "POST",
        "/repos/acme/api/milestones",
        json!({ "title": "v2.0" }),
    )
    .await;
    assert_eq!(dup.status, 422);
    assert_eq!(dup.json()["errors"][0]["code"], "already_exists");
    assert_eq!(
        api(&gh, "DELETE", "/repos/acme/api/milestones/2", Value::Null)
            .await
            .status,
        204
    );
    assert_eq!(
        api(&gh, "GET", "/repos/acme/api/milestones/2", Value::Null)
            .await
            .status,
        404
    );
    let m3 = api(
        &gh,
        "POST",
        "/repos/acme/api/milestones",
        json!({ "title": "v3.0", "state": "open" }),
    )
    .await;
    assert_eq!(m3.json()["number"], 3);
    let closed = api(
        &gh,
        "PATCH",
        "/repos/acme/api/milestones/3",
        json!({ "state": "closed" }),
    )
    .await;
    assert_eq!(closed.status, 200);
    assert!(closed.json()["closed_at"].is_string());
    let all = get(&gh, "/repos/acme/api/milestones?state=all").await;
    let numbers: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 3]);

    // Issues: the next number of the sequence pull requests share.
    let issue = api(
        &gh,
        "POST",
        "/repos/acme/api/issues",
        json!({ "title": "Restored", "body": "From the backup", "labels": ["bug", "brand-new"],
                "milestone": 1, "assignees": [TOKEN_USER, "stranger"] }),
    )
    .await;
    assert_eq!(
        issue.status,
        201,
        "{}",
        String::from_utf8_lossy(&issue.body)
    );
    let issue = issue.json();
    assert_eq!(keys(&issue), keys(&generated_issue), "{issue}");
    assert_eq!(issue["number"], 5, "after 3 issues and 1 pull request");
    assert_eq!(issue["user"]["login"], TOKEN_USER);
    assert_eq!(issue["state"], "open");
    assert_eq!(issue["milestone"]["number"], 1);
    assert_eq!(
        keys(&issue["labels"][0]),
        keys(&generated_label),
        "full label objects"
    );
    let names: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bug", "brand-new"]);
    let created_label = get(&gh, "/repos/acme/api/labels/brand-new").await;
    assert_eq!(
        created_label["color"], "ededed",
        "unknown label names are created"
    );
    let assignees: Vec<&str> = issue["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["login"].as_str().unwrap())
        .collect();
    assert_eq!(assignees, [TOKEN_USER], "who cannot be assigned is dropped");
    assert_eq!(
        api(
            &gh,
            "GET",
            &format!("/repos/acme/api/assignees/{TOKEN_USER}"),
            Value::Null
        )
        .await
        .status,
        204
    );
    assert_eq!(
        api(
            &gh,
            "GET",
            "/repos/acme/api/assignees/stranger",
            Value::Null
        )
        .await
        .status,
        404
    );
    let listed = get(&gh, "/repos/acme/api/issues?state=all&per_page=100").await;
    assert_eq!(
        listed.as_array().unwrap().iter().find(|i| i["number"] == 5),
        Some(&issue)
    );
    assert_eq!(gh.issue_count("acme", "api"), 4);

    let unknown = api(
        &gh,
        "POST",
        "/repos/acme/api/issues",
        json!({ "title": "x", "milestone": 99 }),
    )
    .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(
        unknown.json()["errors"],
        json!([{ "value": 99, "resource": "Issue", "field": "milestone", "code": "invalid" }])
    );
    let untitled = api(
        &gh,
        "POST",
        "/repos/acme/api/issues",
        json!({ "body": "x" }),
    )
    .await;
    assert_eq!(untitled.status, 422);
    assert_eq!(
        gh.issue_count("acme", "api"),
        4,
        "refused writes create nothing"
    );

    // Comments.
    let comment = api(
        &gh,
        "POST",
        "/repos/acme/api/issues/5/comments",
        json!({ "body": "Restored comment" }),
    )
    .await;
    assert_eq!(comment.status, 201);
    let comment = comment.json();
    assert_eq!(keys(&comment), keys(&generated_comment));
    assert!(
        comment["issue_url"]
            .as_str()
            .unwrap()
            .ends_with("/repos/acme/api/issues/5")
    );
    let on_issue = get(&gh, "/repos/acme/api/issues/5/comments").await;
    assert_eq!(on_issue, json!([comment.clone()]));
    let since = comment["created_at"].as_str().unwrap();
    let recent = get(
        &gh,
        &format!("/repos/acme/api/issues/comments?since={since}"),
    )
    .await;
    assert_eq!(recent, json!([comment]), "since= sees what was written now");
    assert_eq!(get(&gh, "/repos/acme/api/issues/5").await["comments"], 1);
    assert_eq!(
        api(
            &gh,
            "POST",
            "/repos/acme/api/issues/999/comments",
            json!({ "body": "x" })
        )
        .await
        .status,
        404
    );

    // Closing.
    let closed = api(
        &gh,
        "PATCH",
        "/repos/acme/api/issues/5",
        json!({ "state": "closed", "state_reason": "not_planned" }),
    )
    .await;
    assert_eq!(closed.status, 200);
    let closed = closed.json();
    assert_eq!(
        (closed["state"].as_str(), closed["state_reason"].as_str()),
        (Some("closed"), Some("not_planned"))
    );
    assert!(closed["closed_at"].is_string());
    assert_eq!(get(&gh, "/repos/acme/api/issues/5").await, closed);
    let events = get(&gh, "/repos/acme/api/issues/events?per_page=100").await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "closed" && e["issue"]["number"] == 5)
    );

    let anonymous = send(
        "POST",
        &format!("{}/repos/acme/api/labels", gh.api_url()),
        None,
        &[],
        b"{\"name\":\"x\"}",
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let stats = gh.stats();
    assert_eq!(stats.writes_of("labels"), 1);
    assert_eq!(stats.writes_of("milestones"), 2);
    assert_eq!(stats.writes_of("issues"), 1);
    assert_eq!(stats.writes_of("issue-comments"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_are_checked_against_the_git_data() {
    let gh = github().await;
    let spec = MetadataSpec {
        issues: 2,
        pulls: 1,
        ..Default::default()
    };
    fixture(&gh, spec).await;
    let git = git2::Repository::open_bare(gh.repo_path("acme", "api")).unwrap();
    let main = git.refname_to_id("refs/heads/main").unwrap();
    fixtures::set_ref(&git, "refs/heads/feature", main);
    let feature = fixtures::commit(&git, "feature", &[("f.txt", b"feature\n")], "feature work");
    let generated_pull = get(&gh, "/repos/acme/api/pulls/3").await;

    let created = api(&gh, "POST", "/repos/acme/api/pulls", json!({ "title": "Feature", "body": "Adds it", "head": "feature", "base": "main", "draft": true })).await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let pull = created.json();
    assert_eq!(keys(&pull), keys(&generated_pull));
    assert_eq!(pull["number"], 4, "next of the sequence issues share");
    assert_eq!(pull["head"]["sha"], feature.to_string());
    assert_eq!(pull["head"]["label"], "acme:feature");
    assert_eq!(pull["base"]["sha"], main.to_string());
    assert_eq!(
        (pull["state"].as_str(), pull["draft"].as_bool()),
        (Some("open"), Some(true))
    );
    assert!(pull["merged_at"].is_null());
    assert_eq!(get(&gh, "/repos/acme/api/pulls/4").await, pull);
    let issue = get(&gh, "/repos/acme/api/issues/4").await;
    assert_eq!(issue["title"], "Feature");
    assert!(
        issue["pull_request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/pulls/4")
    );

    let refused = |body: Value| api(&gh, "POST", "/repos/acme/api/pulls", body);
    let custom = |message: &str| json!([{ "resource": "PullRequest", "code": "custom", "message": message }]);
    let dup = refused(json!({ "title": "Again", "head": "acme:feature", "base": "main" })).await;
    assert_eq!(dup.status, 422);
    assert_eq!(
        dup.json()["errors"],
        custom("A pull request already exists for acme:feature.")
    );
    let same = refused(json!({ "title": "x", "head": "main", "base": "main" })).await;
    assert_eq!(
        same.json()["errors"],
        custom("No commits between main and main")
    );
    let behind = refused(json!({ "title": "x", "head": "main", "base": "feature" })).await;
    assert_eq!(
        behind.json()["errors"],
        custom("No commits between feature and main")
    );
    let unrelated = refused(json!({ "title": "x", "head": "dev", "base": "main" })).await;
    assert_eq!(
        unrelated.json()["errors"],
        custom("The dev branch has no history in common with main")
    );
    let no_head = refused(json!({ "title": "x", "head": "nope", "base": "main" })).await;
    assert_eq!(no_head.status, 422);
    assert_eq!(no_head.json()["message"], "Validation Failed");
    assert_eq!(
        no_head.json()["errors"],
        json!([{ "resource": "PullRequest", "field": "head", "code": "invalid" }])
    );
    let no_base = refused(json!({ "title": "x", "head": "feature", "base": "nope" })).await;
    assert_eq!(
        no_base.json()["errors"],
        json!([{ "resource": "PullRequest", "field": "base", "code": "invalid" }])
    );

    let issue = api(
        &gh,
        "POST",
        "/repos/acme/api/issues",
        json!({ "title": "After" }),
    )
    .await;
    assert_eq!(issue.json()["number"], 5);

    let closed = api(
        &gh,
        "PATCH",
        "/repos/acme/api/pulls/4",
        json!({ "state": "closed", "title": "Feature (closed)" }),
    )
    .await;
    assert_eq!(closed.status, 200);
    assert!(closed.json()["closed_at"].is_string());
    let issue = get(&gh, "/repos/acme/api/issues/4").await;
    assert_eq!(
        (issue["state"].as_str(), issue["title"].as_str()),
        (Some("closed"), Some("Feature (closed)"))
    );
    let pulls = get(&gh, "/repos/acme/api/pulls?state=closed").await;
    assert!(pulls.as_array().unwrap().iter().any(|p| p["number"] == 4));
    let reopened =
        refused(json!({ "title": "Feature again", "head": "feature", "base": "main" })).await;
    assert_eq!(reopened.status, 201, "the other one is closed");
    assert_eq!(reopened.json()["number"], 6);
    assert_eq!(gh.stats().writes_of("pulls"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_and_their_assets_are_uploaded_on_their_own_origin() {
    let gh = github().await;
    let spec = MetadataSpec {
        releases: 1,
        asset_bytes: 16,
        ..Default::default()
    };
    fixture(&gh, spec).await;
    let generated = get(&gh, "/repos/acme/api/releases").await[0].clone();
    let git = git2::Repository::open_bare(gh.repo_path("acme", "api")).unwrap();

    let created = api(
        &gh,
        "POST",
        "/repos/acme/api/releases",
        json!({ "tag_name": "v2.0", "target_commitish": "main", "name": "Two", "body": "Notes" }),
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let release = created.json();
    assert_eq!(keys(&release), keys(&generated));
    assert_eq!(release["assets"], json!([]));
    let id = release["id"].as_u64().unwrap();
    assert_eq!(
        release["upload_url"],
        format!(
            "{}/repos/acme/api/releases/{id}/assets{{?name,label}}",
            gh.upload_url()
        )
    );
    assert_ne!(gh.upload_url(), gh.api_url(), "another origin");
    assert_eq!(
        git.refname_to_id("refs/tags/v2.0").unwrap(),
        git.refname_to_id("refs/heads/main").unwrap(),
        "GitHub tags target_commitish on publishing"
    );
    assert_eq!(
        get(&gh, "/repos/acme/api/releases/tags/v2.0").await,
        release
    );
    assert_eq!(
        get(&gh, &format!("/repos/acme/api/releases/{id}")).await,
        release
    );

    let dup = api(
        &gh,
        "POST",
        "/repos/acme/api/releases",
        json!({ "tag_name": "v2.0" }),
    )
    .await;
    assert_eq!(dup.status, 422);
    assert_eq!(
        dup.json()["errors"],
        json!([{ "resource": "Release", "code": "already_exists", "field": "tag_name" }])
    );

    let draft = api(
        &gh,
        "POST",
        "/repos/acme/api/releases",
        json!({ "tag_name": "v3.0", "draft": true }),
    )
    .await;
    assert_eq!(draft.status, 201);
    let draft_id = draft.json()["id"].as_u64().unwrap();
    assert!(draft.json()["published_at"].is_null());
    assert_eq!(
        api(
            &gh,
            "GET",
            "/repos/acme/api/releases/tags/v3.0",
            Value::Null
        )
        .await
        .status,
        404,
        "drafts have no tag yet"
    );
    assert!(git.find_reference("refs/tags/v3.0").is_err());

    // Assets, on the upload origin.
    let upload_base = release["upload_url"]
        .as_str()
        .unwrap()
        .trim_end_matches("{?name,label}")
        .to_owned();
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
    let gzip = [("Content-Type", "application/gzip")];
    let uploaded = send(
        "POST",
        &format!("{upload_base}?name=app-linux.tar.gz&label=Linux%20build"),
        Some(TOKEN),
        &gzip,
        &bytes,
    )
    .await;
    assert_eq!(
        uploaded.status,
        201,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
    let asset = uploaded.json();
    assert_eq!(keys(&asset), keys(&generated["assets"][0]));
    assert_eq!(asset["name"], "app-linux.tar.gz");
    assert_eq!(asset["label"], "Linux build");
    assert_eq!(asset["content_type"], "application/gzip");
    assert_eq!(
        (asset["state"].as_str(), asset["size"].as_u64()),
        (Some("uploaded"), Some(70_000))
    );
    assert!(!uploaded.header("x-ratelimit-remaining").is_empty());
    let asset_id = asset["id"].as_u64().unwrap();
    let download = send(
        "GET",
        &format!("{}/repos/acme/api/releases/assets/{asset_id}", gh.api_url()),
        Some(TOKEN),
        &[("Accept", "application/octet-stream")],
        b"",
    )
    .await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, bytes);
    let listed = get(&gh, "/repos/acme/api/releases").await;
    let listed = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(listed["assets"], json!([asset]));

    let again = send(
        "POST",
        &format!("{upload_base}?name=app-linux.tar.gz"),
        Some(TOKEN),
        &gzip,
        b"x",
    )
    .await;
    assert_eq!(again.status, 422);
    assert_eq!(again.json()["errors"][0]["code"], "already_exists");
    let nameless = send("POST", &upload_base, Some(TOKEN), &gzip, b"x").await;
    assert_eq!(nameless.status, 422);
    let anonymous = send(
        "POST",
        &format!("{upload_base}?name=other.zip"),
        None,
        &gzip,
        b"x",
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let unknown = upload_base.replace(&format!("/releases/{id}/"), "/releases/1/");
    assert_eq!(
        send(
            "POST",
            &format!("{unknown}?name=x.zip"),
            Some(TOKEN),
            &gzip,
            b"x"
        )
        .await
        .status,
        404
    );

    // Publishing the draft tags it.
    let published = api(
        &gh,
        "PATCH",
        &format!("/repos/acme/api/releases/{draft_id}"),
        json!({ "draft": false }),
    )
    .await;
    assert_eq!(published.status, 200);
    assert!(published.json()["published_at"].is_string());
    assert!(git.find_reference("refs/tags/v3.0").is_ok());
    assert_eq!(
        get(&gh, "/repos/acme/api/releases/tags/v3.0").await["id"],
        draft_id
    );

    let stats = gh.stats();
    assert_eq!(stats.writes_of("releases"), 2);
    assert_eq!(stats.writes_of("assets"), 1);
    assert_eq!(stats.upload_requests, 5);
    assert_eq!(stats.upload_requests_with_credentials, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_creation_beyond_the_limit_waits_for_retry_after() {
    let gh = FakeGitHub::start(
        FakeGitHubOptions {
            token: Some(TOKEN.into()),
            ..Default::default()
        }
        .limit_content(3, Duration::from_secs(2)),
    )
    .await
    .unwrap();
    fixture(&gh, MetadataSpec::default()).await;
    let label = |name: &str| json!({ "name": name, "color": "00ff00" });
    for name in ["one", "two", "three"] {
        assert_eq!(
            api(&gh, "POST", "/repos/acme/api/labels", label(name))
                .await
                .status,
            201
        );
    }
    let limited = api(&gh, "POST", "/repos/acme/api/labels", label("four")).await;
    assert_eq!(limited.status, 403);
    assert_eq!(
        limited.json(),
        json!({
            "message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        })
    );
    let retry_after: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(
        api(&gh, "GET", "/repos/acme/api/labels/four", Value::Null)
            .await
            .status,
        404,
        "nothing created"
    );
    assert_eq!(
        api(&gh, "GET", "/repos/acme/api/labels", Value::Null)
            .await
            .status,
        200,
        "reads are not limited"
    );

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let retried = api(&gh, "POST", "/repos/acme/api/labels", label("four")).await;
    assert_eq!(
        retried.status,
        201,
        "{}",
        String::from_utf8_lossy(&retried.body)
    );
    let stats = gh.stats();
    assert_eq!(stats.content_limited, 1);
    assert_eq!(stats.content_requests, 4);
    assert_eq!(stats.writes_of("labels"), 4);
}

/// A Git LFS batch request for `objects`.
async fn lfs_batch(url: String, operation: &str, objects: Value, auth: Option<String>) -> Reply {
    let body = json!({ "operation": operation, "transfers": ["basic"], "objects": objects });
    let mut headers = vec![
        ("Accept", "application/vnd.git-lfs+json"),
        ("Content-Type", "application/vnd.git-lfs+json"),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    send("POST", &url, None, &headers, body.to_string().as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lfs_objects_are_uploaded_to_the_media_host() {
    let gh = github().await;
    let git = fixtures::standard_repo(&gh.repo_path("acme", "assets"), "assets");
    let have = fixtures::commit_lfs(
        &git,
        &gh.lfs_path("acme", "assets"),
        "main",
        "a.bin",
        b"already there",
    );
    gh.add_repo(RepoSpec::new("acme", "assets").private());
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (_, oid) = fixtures::lfs_pointer(&content);
    let batch_url = format!("{}/info/lfs/objects/batch", gh.clone_url("acme", "assets"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let basic = format!("Basic {basic}");
    let objects = json!([{ "oid": have, "size": 13 }, { "oid": oid, "size": content.len() }]);
    let batch = |operation: &'static str, auth: Option<String>| {
        lfs_batch(batch_url.clone(), operation, objects.clone(), auth)
    };
    let basic = Some(basic);

    assert_eq!(
        batch("upload", None).await.status,
        401,
        "uploads take the token"
    );
    let answer = batch("upload", basic.clone()).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let objects = answer.json()["objects"].clone();
    assert!(
        objects[0].get("actions").is_none(),
        "the server has it: {}",
        objects[0]
    );
    let upload = &objects[1]["actions"]["upload"];
    let href = upload["href"].as_str().unwrap();
    let header = upload["header"]["Authorization"].as_str().unwrap();
    assert!(header.starts_with("RemoteAuth "));
    assert!(
        !href.starts_with(&gh.api_url()),
        "the media host is another origin: {href}"
    );

    let wrong = send(
        "PUT",
        href,
        None,
        &[("Authorization", header)],
        &content[1..],
    )
    .await;
    assert_eq!(wrong.status, 400, "size mismatch");
    let mut tampered = content.clone();
    tampered[0] ^= 1;
    let wrong = send("PUT", href, None, &[("Authorization", header)], &tampered).await;
    assert_eq!(wrong.status, 422, "oid mismatch");
    assert!(!gh.lfs_path("acme", "assets").join(&oid).exists());
    let put = send("PUT", href, None, &[("Authorization", header)], &content).await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(
        std::fs::read(gh.lfs_path("acme", "assets").join(&oid)).unwrap(),
        content
    );

    let again = batch("upload", basic.clone()).await.json();
    assert!(
        again["objects"][1].get("actions").is_none(),
        "uploaded once"
    );
    let download = batch("download", basic.clone()).await.json();
    let link = &download["objects"][1]["actions"]["download"];
    let got = send(
        "GET",
        link["href"].as_str().unwrap(),
        None,
        &[(
            "Authorization",
            link["header"]["Authorization"].as_str().unwrap(),
        )],
        b"",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, content);
    let stats = gh.stats();
    assert_eq!(
        (stats.lfs_uploads, stats.lfs_upload_bytes),
        (1, content.len() as u64)
    );
    assert_eq!(stats.writes_of("lfs-uploads"), 1);
    assert_eq!(stats.lfs_media_requests_with_token, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_takes_writes_under_its_prefixes() {
    let gh = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        enterprise: true,
        ..Default::default()
    })
    .await
    .unwrap();
    gh.add_org("acme");
    assert!(gh.api_url().ends_with("/api/v3"));
    let created = api(
        &gh,
        "POST",
        "/orgs/acme/repos",
        json!({ "name": "api", "visibility": "internal", "auto_init": true }),
    )
    .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(
        (
            created.json()["visibility"].as_str(),
            created.json()["private"].as_bool()
        ),
        (Some("internal"), Some(true))
    );
    let release = api(
        &gh,
        "POST",
        "/repos/acme/api/releases",
        json!({ "tag_name": "v1" }),
    )
    .await;
    assert_eq!(
        release.status,
        201,
        "{}",
        String::from_utf8_lossy(&release.body)
    );
    let upload_url = release.json()["upload_url"].as_str().unwrap().to_owned();
    assert!(
        upload_url.starts_with(&gh.upload_url()) && gh.upload_url().ends_with("/api/uploads"),
        "{upload_url}"
    );
    let upload = upload_url.trim_end_matches("{?name,label}");
    let uploaded = send(
        "POST",
        &format!("{upload}?name=notes.txt"),
        Some(TOKEN),
        &[("Content-Type", "text/plain")],
        b"hi",
    )
    .await;
    assert_eq!(
        uploaded.status,
        201,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
}
