//! GitHub App authentication: installation tokens minted from the App's JWT, renewed
//! before they expire, used for the API and git alike, and never logged.

use std::path::Path;
use std::time::Duration;

use repovault_testkit::{
    FakeApp, FakeGitHub, FakeGitHubOptions, MetadataSpec, TEST_APP_PRIVATE_KEY, org,
};

use crate::support::*;

const APP_ID: u64 = 4242;
const KEY_ENV: &str = "REPOVAULT_TEST_APP_KEY";

/// A fake GitHub that knows no personal token at all: only the App's installation
/// tokens (installed on `acme`) authenticate.
async fn app_github(token_lifetime: Duration) -> FakeGitHub {
    FakeGitHub::start(FakeGitHubOptions {
        token: None,
        rate_limit: Some(50_000),
        app: Some(FakeApp {
            app_id: APP_ID,
            installation_id: 77,
            owner: "acme".into(),
            token_lifetime,
        }),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `repovault run --config` in `dir` with one job for `org` authenticated as the App,
/// the key in the environment and no token anywhere.
async fn run_as_app(dir: &Path, gh: &FakeGitHub, org: &str, run_id: &str) -> std::process::Output {
    let config = format!(
        "allow-insecure-http: true\nconcurrency: 4\nretry: {{ base-delay: 1s, max-delay: 2s }}\njobs:\n  - source: {{ org: {org}, api-url: \"{}\" }}\n    target: ./backups\n    auth: {{ app-id: {APP_ID}, private-key-env: {KEY_ENV} }}\n",
        gh.api_url()
    );
    std::fs::write(dir.join("repovault.yml"), config).unwrap();
    repovault(
        dir,
        &["run", "--config", "repovault.yml", "--run-id", run_id],
        &[
            ("GITHUB_TOKEN", ""),
            (KEY_ENV, TEST_APP_PRIVATE_KEY),
            ("RUST_LOG", "debug"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_as_a_github_app_outlives_its_tokens_and_never_logs_a_token_or_the_key() {
    // Tokens that live 3 s, against a run that lasts longer (two fetches are held
    // for 4 s): the run keeps working only if tokens are renewed for the API and for
    // each git session.
    let gh = app_github(Duration::from_secs(3)).await;
    let names = org::standard_org(&gh, "acme", 12);
    gh.slow_next_fetches(2, Duration::from_secs(4));
    for name in &names[..4] {
        let spec = MetadataSpec {
            issues: 30,
            comments_per_issue: 2,
            pulls: 5,
            reviews_per_pull: 1,
            releases: 2,
            asset_bytes: 1000,
            ..Default::default()
        };
        gh.add_metadata("acme", name, spec);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_as_app(dir.path(), &gh, "acme", "app").await;
    assert!(out.status.success(), "{}", text(&out));

    let backups = dir.path().join("backups");
    let report = report(&backups, "app");
    assert_eq!(report.totals.ok, names.len(), "{:#?}", report.totals);
    for name in &names {
        assert_archive_matches(&backups, &gh, "acme", name);
    }
    let stats = gh.stats();
    let expiries: Vec<u64> = stats.app_tokens_minted.iter().map(|(_, e)| *e).collect();
    assert!(
        expiries.last().unwrap() - expiries[0] >= 3,
        "the run went on past the first token's expiry with new tokens: {expiries:?}"
    );
    assert_eq!(stats.app_jwt_rejected, 0);
    assert!(
        stats.expired_token_uses.values().all(|&n| n <= 1),
        "an expired token was used more than once: {:?}",
        stats.expired_token_uses
    );

    // Neither a token nor any part of the key is in any log line (debug level).
    let logs = text(&out);
    for (token, _) in &stats.app_tokens_minted {
        assert!(!logs.contains(token.as_str()), "a token was logged");
    }
    for line in TEST_APP_PRIVATE_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
    {
        assert!(!logs.contains(line), "the private key was logged");
    }
    // Nor in anything written to the store.
    for entry in walk(&backups) {
        let bytes = std::fs::read(&entry).unwrap();
        for (token, _) in &stats.app_tokens_minted {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{} holds a token",
                entry.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_not_installed_on_the_org_is_named_with_what_to_do() {
    let gh = app_github(Duration::from_secs(3600)).await;
    org::standard_org(&gh, "other", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = run_as_app(dir.path(), &gh, "other", "missing").await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the App is not installed on org other")
            && stderr.contains("auth.installation-id"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_that_is_not_a_pem_key_exits_2_naming_the_key() {
    let gh = app_github(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repovault.yml"),
        format!(
            "allow-insecure-http: true\njobs:\n  - source: {{ org: acme, api-url: \"{}\" }}\n    target: ./backups\n    auth: {{ app-id: {APP_ID}, private-key-file: app.pem }}\n",
            gh.api_url()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("app.pem"), "not a key").unwrap();
    let out = repovault(
        dir.path(),
        &["run", "--config", "repovault.yml"],
        &[("GITHUB_TOKEN", "")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auth") && stderr.contains("not an RSA key in PEM form"),
        "{}",
        text(&out)
    );
}
