//! The fake GitHub's repository data beyond git is faithful where a backup of it will
//! depend on it: GitHub's shapes, `Link` pagination, `ETag` / `If-None-Match` → `304`
//! (which costs no rate limit), `since=`, release assets as bytes, privacy, the
//! organization's event feed.

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
            ..Default::default()
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

/// `acme/api` with Actions settings and security alerts.
async fn fake_with_settings() -> FakeGitHub {
    let gh = github().await;
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 1,
            settings: true,
            ..Default::default()
        },
    );
    gh
}

/// Every item of a wrapped list (`{"total_count", field: [...]}`), following `Link`
/// pages; each page's `total_count` counts all of them.
async fn all_wrapped(gh: &FakeGitHub, first: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(first.to_owned());
    let mut total = None;
    while let Some(path) = next {
        let reply = get(gh, &path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        let body = reply.json();
        let count = body["total_count"].as_u64().expect("total_count");
        assert_eq!(*total.get_or_insert(count), count, "{path}");
        items.extend(body[field].as_array().expect(field).iter().cloned());
        next = reply.next();
    }
    assert_eq!(total, Some(items.len() as u64), "{first}");
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_settings_are_wrapped_lists_paged_with_a_total_count() {
    let gh = fake_with_settings().await;
    let first = get(&gh, "/repos/acme/api/actions/variables?per_page=1", &[]).await;
    assert_eq!(first.status, 200);
    let body = first.json();
    assert_eq!(
        body["total_count"], 2,
        "all of them, not the page's: {body}"
    );
    assert_eq!(body["variables"].as_array().unwrap().len(), 1);
    assert!(first.header("link").contains("rel=\"next\""));
    let variables = all_wrapped(
        &gh,
        "/repos/acme/api/actions/variables?per_page=1",
        "variables",
    )
    .await;
    for field in ["name", "value", "created_at", "updated_at"] {
        assert!(variables.iter().all(|v| v.get(field).is_some()), "{field}");
    }
    assert_eq!(variables, gh.items("acme", "api", "actions/variables"));

    let secrets = all_wrapped(&gh, "/repos/acme/api/actions/secrets", "secrets").await;
    assert_eq!(secrets.len(), 2);
    assert!(
        secrets
            .iter()
            .all(|s| s["name"].is_string() && s.get("value").is_none()),
        "a secret's value is never served: {secrets:?}"
    );

    let environments = all_wrapped(
        &gh,
        "/repos/acme/api/environments?per_page=2",
        "environments",
    )
    .await;
    let names: Vec<&str> = environments
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["production", "staging", "qa/eu"]);
    let production = &environments[0];
    let rules: Vec<&str> = production["protection_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["required_reviewers", "wait_timer", "branch_policy"]);
    assert_eq!(
        production["protection_rules"][0]["reviewers"][0]["type"],
        "User"
    );
    assert_eq!(
        production["protection_rules"][0]["reviewers"][0]["reviewer"]["login"],
        "octocat"
    );
    assert_eq!(production["protection_rules"][1]["wait_timer"], 30);
    assert_eq!(
        production["deployment_branch_policy"]["custom_branch_policies"],
        true
    );
    assert!(environments[2]["deployment_branch_policy"].is_null());

    // An unchanged page answers 304; a changed variable changes it.
    let path = "/repos/acme/api/actions/variables";
    let etag = get(&gh, path, &[]).await.header("etag").to_owned();
    assert_eq!(
        get(&gh, path, &[("If-None-Match", &etag)]).await.status,
        304
    );
    gh.set_variable("acme", "api", "LOG_LEVEL", "debug");
    let changed = get(&gh, path, &[("If-None-Match", &etag)]).await;
    assert_eq!(changed.status, 200);
    let level = changed.json()["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "LOG_LEVEL")
        .cloned()
        .unwrap();
    assert_eq!(level["value"], "debug");
    assert_ne!(level["updated_at"], level["created_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_is_served_by_its_percent_encoded_name() {
    let gh = fake_with_settings().await;
    let qa = get(&gh, "/repos/acme/api/environments/qa%2Feu", &[]).await;
    assert_eq!(qa.status, 200);
    assert_eq!(qa.json()["name"], "qa/eu");
    assert!(
        qa.json()["url"]
            .as_str()
            .unwrap()
            .ends_with("/environments/qa%2Feu")
    );
    let variables = all_wrapped(
        &gh,
        "/repos/acme/api/environments/qa%2Feu/variables",
        "variables",
    )
    .await;
    assert_eq!(variables.len(), 1);
    assert_eq!(variables[0]["value"], "https://qa.example.eu");
    assert_eq!(
        variables,
        gh.items("acme", "api", "environments/qa/eu/variables")
    );
    let secrets = all_wrapped(
        &gh,
        "/repos/acme/api/environments/qa%2Feu/secrets",
        "secrets",
    )
    .await;
    assert_eq!(secrets[0]["name"], "API_KEY");
    // Unencoded, the name is two segments: no such endpoint.
    assert_eq!(
        get(&gh, "/repos/acme/api/environments/qa/eu/variables", &[])
            .await
            .status,
        404
    );
    assert_eq!(
        get(&gh, "/repos/acme/api/environments/nowhere/variables", &[])
            .await
            .status,
        404
    );

    let policies = all_wrapped(
        &gh,
        "/repos/acme/api/environments/production/deployment-branch-policies?per_page=2",
        "branch_policies",
    )
    .await;
    let policies: Vec<(&str, &str)> = policies
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        policies,
        [("main", "branch"), ("release/*", "branch"), ("v*", "tag")]
    );
    // As GitHub: an environment without custom branch policies has no such list.
    let staging = get(
        &gh,
        "/repos/acme/api/environments/staging/deployment-branch-policies",
        &[],
    )
    .await;
    assert_eq!(staging.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_alerts_have_githubs_shapes_and_the_leaked_secret() {
    let gh = fake_with_settings().await;
    let dependabot = all(&gh, "/repos/acme/api/dependabot/alerts?per_page=1").await;
    assert_eq!(dependabot.len(), 2);
    let dismissed = dependabot
        .iter()
        .find(|a| a["state"] == "dismissed")
        .unwrap();
    assert_eq!(dismissed["dismissed_reason"], "tolerable_risk");
    assert!(dismissed["dismissed_comment"].is_string());
    assert_eq!(dismissed["dismissed_by"]["login"], "reviewer");
    for field in [
        "number",
        "dependency",
        "security_advisory",
        "security_vulnerability",
        "url",
        "html_url",
        "created_at",
        "updated_at",
        "fixed_at",
        "auto_dismissed_at",
    ] {
        assert!(dismissed.get(field).is_some(), "alert without {field}");
    }
    assert_eq!(dismissed["dependency"]["package"]["ecosystem"], "pip");
    assert!(dismissed["security_vulnerability"]["first_patched_version"]["identifier"].is_string());
    let open = all(&gh, "/repos/acme/api/dependabot/alerts?state=open").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["state"], "open");

    let code = all(&gh, "/repos/acme/api/code-scanning/alerts").await;
    assert_eq!(code.len(), 2);
    let dismissed = code.iter().find(|a| a["state"] == "dismissed").unwrap();
    assert_eq!(dismissed["dismissed_reason"], "false positive");
    assert!(dismissed["most_recent_instance"]["location"]["path"].is_string());
    assert_eq!(dismissed["tool"]["name"], "CodeQL");

    let secret = get(&gh, "/repos/acme/api/secret-scanning/alerts", &[]).await;
    assert_eq!(secret.status, 200);
    let text = String::from_utf8(secret.body.clone()).unwrap();
    for leaked in repovault_testkit::FAKE_LEAKED_SECRETS {
        assert!(text.contains(leaked), "{leaked} not served");
    }
    assert_eq!(
        secret.json()[1]["secret"],
        repovault_testkit::FAKE_LEAKED_SECRET,
        "newest first"
    );
    assert_eq!(
        secret.json(),
        Value::Array(
            gh.items("acme", "api", "secret-scanning/alerts")
                .into_iter()
                .rev()
                .collect()
        )
    );
    let hidden = get(
        &gh,
        "/repos/acme/api/secret-scanning/alerts?hide_secret=true",
        &[],
    )
    .await;
    let hidden_text = String::from_utf8(hidden.body.clone()).unwrap();
    assert!(!hidden_text.contains(repovault_testkit::FAKE_LEAKED_SECRET));
    assert_eq!(hidden.json()[0]["secret_type"], "aws_access_key_id");

    // An unchanged page answers 304, as the other lists do.
    let etag = secret.header("etag");
    let again = get(
        &gh,
        "/repos/acme/api/secret-scanning/alerts",
        &[("If-None-Match", etag)],
    )
    .await;
    assert_eq!(again.status, 304);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_admin_rights_secrets_variables_and_alerts_answer_403() {
    let gh = fake_with_settings().await;
    gh.set_admin("acme", "api", false);
    for (path, message) in [
        ("actions/variables", "Must have admin rights to Repository."),
        ("actions/secrets", "Must have admin rights to Repository."),
        (
            "environments/production/variables",
            "Must have admin rights to Repository.",
        ),
        (
            "environments/production/secrets",
            "Must have admin rights to Repository.",
        ),
        (
            "dependabot/alerts",
            "Resource not accessible by integration",
        ),
        (
            "code-scanning/alerts",
            "Resource not accessible by integration",
        ),
        (
            "secret-scanning/alerts",
            "Resource not accessible by integration",
        ),
    ] {
        let reply = get(&gh, &format!("/repos/acme/api/{path}"), &[]).await;
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(reply.json()["message"], message, "{path}");
    }
    for path in [
        "environments",
        "environments/production",
        "environments/production/deployment-branch-policies",
    ] {
        let reply = get(&gh, &format!("/repos/acme/api/{path}"), &[]).await;
        assert_eq!(reply.status, 200, "{path}");
    }

    // Without a token, a public repository's environments are readable, its secrets not.
    gh.set_admin("acme", "api", true);
    let anonymous = |path: &str| {
        let url = format!("{}/repos/acme/api/{path}", gh.api_url());
        async move { send("GET", &url, None, &[], &[]).await.status }
    };
    assert_eq!(anonymous("environments").await, 200);
    assert_eq!(anonymous("actions/secrets").await, 403);
    assert_eq!(anonymous("secret-scanning/alerts").await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_settings_the_features_answer_as_when_they_are_off() {
    let gh = fake_with_data().await;
    let dependabot = get(&gh, "/repos/acme/api/dependabot/alerts", &[]).await;
    assert_eq!(dependabot.status, 403);
    assert_eq!(
        dependabot.json()["message"],
        "Dependabot alerts are disabled for this repository."
    );
    let code = get(&gh, "/repos/acme/api/code-scanning/alerts", &[]).await;
    assert_eq!(code.status, 404);
    assert_eq!(code.json()["message"], "no analysis found");
    let secret = get(&gh, "/repos/acme/api/secret-scanning/alerts", &[]).await;
    assert_eq!(secret.status, 404);
    for (path, field) in [
        ("actions/variables", "variables"),
        ("actions/secrets", "secrets"),
        ("environments", "environments"),
    ] {
        let reply = get(&gh, &format!("/repos/acme/api/{path}"), &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.json()["total_count"], 0, "{path}");
        assert_eq!(reply.json()[field], Value::Array(vec![]), "{path}");
    }
    assert_eq!(
        get(
            &gh,
            "/repos/acme/api/environments/production/deployment-branch-policies",
            &[]
        )
        .await
        .status,
        404
    );

    // A withheld endpoint answers its status, as the others do.
    let gh = fake_with_settings().await;
    gh.withhold("acme", "api", "dependabot/alerts", Some(500));
    assert_eq!(
        get(&gh, "/repos/acme/api/dependabot/alerts", &[])
            .await
            .status,
        500
    );
    assert_eq!(
        get(&gh, "/repos/acme/api/code-scanning/alerts", &[])
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizations_actions_variables_and_secrets_are_opt_in() {
    let gh = fake_with_data().await;
    let none = get(&gh, "/orgs/acme/actions/variables", &[]).await;
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["total_count"], 0);

    gh.add_org_settings("acme");
    let variables = all_wrapped(&gh, "/orgs/acme/actions/variables?per_page=1", "variables").await;
    assert_eq!(variables.len(), 2);
    assert!(
        variables
            .iter()
            .all(|v| v["value"].is_string() && v["visibility"].is_string())
    );
    let secrets = all_wrapped(&gh, "/orgs/acme/actions/secrets", "secrets").await;
    assert_eq!(secrets.len(), 2);
    let selected = secrets
        .iter()
        .find(|s| s["visibility"] == "selected")
        .unwrap();
    assert!(
        selected["selected_repositories_url"]
            .as_str()
            .unwrap()
            .ends_with("/orgs/acme/actions/secrets/SIGNING_KEY/repositories")
    );
    assert!(secrets.iter().all(|s| s.get("value").is_none()));
    assert_eq!(secrets, gh.org_items("acme", "secrets"));

    let path = "/orgs/acme/actions/variables";
    let etag = get(&gh, path, &[]).await.header("etag").to_owned();
    assert_eq!(
        get(&gh, path, &[("If-None-Match", &etag)]).await.status,
        304
    );
    gh.set_org_variable("acme", "ORG_REGION", "us");
    assert_eq!(
        get(&gh, path, &[("If-None-Match", &etag)]).await.status,
        200
    );

    gh.set_org_admin("acme", false);
    let refused = get(&gh, "/orgs/acme/actions/secrets", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["message"],
        "Must have admin rights to Repository."
    );
    assert_eq!(get(&gh, "/orgs/acme/members", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_org_feed_shows_public_activity_newest_first_300_at_most_with_etags() {
    let gh = fake_with_data().await;
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
    gh.touch("acme", "api");
    gh.add_issue_comment("acme", "secret", 1, "private activity is not in the feed");
    gh.add_issue_comment("acme", "api", 1, "public activity is");
    let first = get(&gh, "/orgs/acme/events?per_page=100", &[]).await;
    assert_eq!(first.status, 200);
    let events = first.json().as_array().unwrap().clone();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["IssueCommentEvent", "PushEvent"]);
    for event in &events {
        let id = event["id"].as_str().expect("ids are strings");
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        assert_eq!(event["repo"]["name"], "acme/api");
        assert!(
            event["repo"]["id"].is_u64() && event["public"] == true,
            "{event}"
        );
        assert!(
            event["created_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        assert_eq!(event["org"]["login"], "acme");
    }
    let etag = first.header("etag").to_owned();
    let again = get(
        &gh,
        "/orgs/acme/events?per_page=100",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    // GitHub keeps the newest 300.
    for _ in 0..320 {
        gh.publish_event("acme", "api", "WatchEvent");
    }
    let changed = get(
        &gh,
        "/orgs/acme/events?per_page=100",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_eq!(all(&gh, "/orgs/acme/events?per_page=100").await.len(), 300);
}
