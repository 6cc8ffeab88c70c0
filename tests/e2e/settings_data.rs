//! What GitHub keeps beyond issues and code: Actions variables and secrets' names,
//! environments with their protection rules, branch policies, variables and secrets'
//! names, and Dependabot, code-scanning and secret-scanning alerts; an organization's
//! Actions variables and secrets' names. Backed up as data kinds, never a secret's
//! value, conditionally read again, and `not_permitted` where the token may not.

use std::path::Path;

use repovault_core::ResultRecord;
use repovault_local::FsStore;
use repovault_repository::Repository;
use repovault_testkit::{FAKE_LEAKED_SECRETS, FakeGitHub, MetadataSpec, RepoSpec};
use serde_json::Value;

use crate::support::*;

/// The kinds these settings are kept in, and the fake's list each one holds (every
/// environment's, for the per-environment kinds).
const KINDS: [(&str, &str); 9] = [
    ("actions-variables", "actions/variables"),
    ("actions-secrets", "actions/secrets"),
    ("environments", "environments"),
    (
        "environment-branch-policies",
        "environments/{}/deployment-branch-policies",
    ),
    ("environment-variables", "environments/{}/variables"),
    ("environment-secrets", "environments/{}/secrets"),
    ("dependabot-alerts", "dependabot/alerts"),
    ("code-scanning-alerts", "code-scanning/alerts"),
    ("secret-scanning-alerts", "secret-scanning/alerts"),
];

async fn acme_with_settings() -> FakeGitHub {
    let gh = github().await;
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api"),
        MetadataSpec {
            issues: 1,
            settings: true,
            ..Default::default()
        },
    );
    gh.add_org_settings("acme");
    gh
}

/// What the fake serves for `list` (`{}`: each environment's), as the backup should hold
/// it: per environment with its name, and without a secret-scanning alert's secret.
fn served(gh: &FakeGitHub, list: &str) -> Vec<Value> {
    let Some((before, after)) = list.split_once("{}") else {
        let mut items = gh.items("acme", "api", list);
        if list == "secret-scanning/alerts" {
            for item in &mut items {
                item.as_object_mut().unwrap().remove("secret");
            }
        }
        return items;
    };
    let mut items = Vec::new();
    for environment in gh.items("acme", "api", "environments") {
        let name = environment["name"].as_str().unwrap();
        for mut item in gh.items("acme", "api", &format!("{before}{name}{after}")) {
            item["environment"] = Value::from(name);
            items.push(item);
        }
    }
    items
}

/// `items` in one order (GitHub serves alerts newest first).
fn in_order(mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by_key(Value::to_string);
    items
}

/// Every byte of every stored object, zstd files decompressed.
fn stored_text(backups: &Path) -> String {
    let mut text = String::new();
    for file in walk(backups) {
        let bytes = std::fs::read(&file).unwrap();
        let bytes = match file.to_string_lossy().ends_with(".zst") {
            true => zstd::decode_all(bytes.as_slice()).unwrap(),
            false => bytes,
        };
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_settings_environments_and_alerts_are_kept_without_any_secret() {
    let gh = acme_with_settings().await;
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let (key, index) = latest_index(&backups);
    let store = FsStore::new(&backups);
    let repo = Repository::new(&store, "");
    for (kind, list) in KINDS {
        let file = index
            .kinds
            .get(kind)
            .unwrap_or_else(|| panic!("{kind}: {index:?}"));
        let stored = repo.read_file(file).await.unwrap();
        let served = served(&gh, list);
        assert!(!served.is_empty(), "{kind}: the fake serves nothing");
        assert_eq!(in_order(stored), in_order(served), "{kind}");
    }
    assert!(
        index.not_permitted.is_empty() && index.failed.is_empty(),
        "{index:?}"
    );
    let org = acme_org_index(&backups).await;
    for (kind, list) in [
        ("actions-variables", "variables"),
        ("actions-secrets", "secrets"),
    ] {
        let stored = repo.read_file(&org.kinds[kind]).await.unwrap();
        assert_eq!(
            stored,
            gh.org_items("acme", list),
            "the organization's {kind}"
        );
    }
    let everything = stored_text(&backups);
    for secret in FAKE_LEAKED_SECRETS.iter().chain([&TOKEN]) {
        assert!(!everything.contains(secret), "{secret} is in the store");
    }
    assert!(everything.contains("tolerable_risk") && everything.contains("DEPLOY_REGION"));

    // Nothing changed: every kind asked conditionally (or not at all), nothing written.
    let out = run_org(work.path(), &gh, "r2", PROBE_EVERY_KIND).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        latest_index(&backups).0,
        key,
        "a new snapshot of nothing new"
    );
    let record: ResultRecord = serde_json::from_slice(
        &std::fs::read(backups.join("runs/r2/results/acme/api.json")).unwrap(),
    )
    .unwrap();
    let data = record.data.unwrap();
    assert_eq!(data.requests, data.not_modified, "{data:?}");
    // GraphQL: a probe of the discussions and of the projects.
    assert_eq!(data.graphql_queries, 2, "{data:?}");

    // A variable changed: read anew.
    gh.set_variable("acme", "api", "LOG_LEVEL", "debug");
    let out = run_org(work.path(), &gh, "r3", PROBE_EVERY_KIND).await;
    assert!(out.status.success(), "{}", text(&out));
    let (newer, index) = latest_index(&backups);
    assert_ne!(newer, key);
    let variables = repo
        .read_file(&index.kinds["actions-variables"])
        .await
        .unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "LOG_LEVEL" && v["value"] == "debug"),
        "{variables:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_admin_rights_the_backup_succeeds_and_says_what_it_may_not_read() {
    let gh = acme_with_settings().await;
    gh.set_admin("acme", "api", false);
    gh.set_org_admin("acme", false);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, index) = latest_index(&backups);
    for kind in [
        "actions-variables",
        "actions-secrets",
        "environment-variables",
        "environment-secrets",
        "dependabot-alerts",
        "code-scanning-alerts",
        "secret-scanning-alerts",
    ] {
        assert!(
            index.not_permitted.iter().any(|k| k == kind),
            "{kind}: {index:?}"
        );
        assert!(!index.kinds.contains_key(kind), "{kind}");
    }
    for kind in ["environments", "environment-branch-policies", "issues"] {
        assert!(index.kinds.contains_key(kind), "{kind}: {index:?}");
    }
    assert!(index.failed.is_empty(), "{index:?}");
    let org = acme_org_index(&backups).await;
    for kind in ["actions-variables", "actions-secrets"] {
        assert!(
            org.not_permitted.iter().any(|k| k == kind),
            "{kind}: {org:?}"
        );
    }
}
