//! What changed, from the organization's event feed: `repovault run` against the fake
//! GitHub, whose organization feed shows public repositories' activity as GitHub's
//! does (pushes, comments, issues, releases… written through it; labels and settings
//! never).

use std::path::Path;

use repovault_reporter::{RepoReport, Report};
use repovault_testkit::{FakeGitHub, RepoSpec};

use crate::support::{acme_repo, github, report, repovault, some_data_and_a_release};

/// `repovault run --config` in `dir`: the organization `acme` into `./backups`, with
/// `metadata` settings.
async fn run(dir: &Path, gh: &FakeGitHub, run_id: &str, metadata: &str) -> Report {
    run_org(dir, gh, "acme", run_id, metadata).await
}

/// [`run`], naming the organization `org` in the config.
async fn run_org(dir: &Path, gh: &FakeGitHub, org: &str, run_id: &str, metadata: &str) -> Report {
    let config = format!(
        "allow-insecure-http: true\nmetadata: {{ {metadata} }}\njobs:\n  - source: {{ org: {org}, api-url: \"{}\" }}\n    target: ./backups\n",
        gh.api_url()
    );
    std::fs::write(dir.join("repovault.yml"), config).unwrap();
    let output = repovault(
        dir,
        &["run", "--config", "repovault.yml", "--run-id", run_id],
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", crate::support::text(&output));
    report(&dir.join("backups"), run_id)
}

fn of<'a>(report: &'a Report, name: &str) -> &'a RepoReport {
    report.repos.iter().find(|r| r.name == name).unwrap()
}

/// (quiet, REST requests, kinds read anew) of `name`'s data in `report`.
fn data(report: &Report, name: &str) -> (bool, u64, Vec<String>) {
    let data = of(report, name).data.as_ref().expect("data backed up");
    assert_eq!(data.error, None, "{name}: {data:?}");
    (data.quiet, data.requests, data.changed.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organization_named_with_capitals_finds_the_feed_state_it_wrote() {
    let gh = github().await;
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api"),
        some_data_and_a_release(),
    );
    let dir = tempfile::tempdir().unwrap();
    let no_probe_due = "probe-every: 3650d, full-every: 3650d";
    run_org(dir.path(), &gh, "Acme", "r1", no_probe_due).await;
    let second = run_org(dir.path(), &gh, "Acme", "r2", no_probe_due).await;
    let (quiet, requests, _) = data(&second, "api");
    assert!(quiet && requests == 0, "{:?}", of(&second, "api"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quiet_repository_costs_no_api_request_and_an_active_one_only_its_kinds() {
    let gh = github().await;
    for (name, private) in [("api", false), ("web", false), ("secret", true)] {
        let spec = RepoSpec::new("acme", name);
        let spec = if private { spec.private() } else { spec };
        acme_repo(&gh, name, spec, some_data_and_a_release());
    }
    let dir = tempfile::tempdir().unwrap();
    // No probe of every kind comes due between these runs, seconds apart.
    let no_probe_due = "probe-every: 3650d, full-every: 3650d";
    let first = run(dir.path(), &gh, "r1", no_probe_due).await;
    for name in ["api", "web", "secret"] {
        let (quiet, requests, _) = data(&first, name);
        assert!(!quiet && requests > 10, "{name}: first run reads all");
    }

    // Nothing happened: the public repositories' data is not asked for at all; the
    // private one's is (the organization's feed does not show its activity).
    let before = gh.stats().api_requests;
    let second = run(dir.path(), &gh, "r2", no_probe_due).await;
    assert_eq!(data(&second, "api"), (true, 0, vec![]));
    assert_eq!(data(&second, "web"), (true, 0, vec![]));
    let (quiet, requests, _) = data(&second, "secret");
    assert!(!quiet && requests > 10, "secret: {requests} requests");
    let spent = gh.stats().api_requests - before;
    assert!(
        spent < requests + 21,
        "{spent} API requests: less than one more repository's probes beside the private one's {requests}"
    );
    // The record still names the snapshot, and restore finds it.
    let index = of(&second, "api").data.as_ref().unwrap().index.clone();
    assert_eq!(index, of(&first, "api").data.as_ref().unwrap().index);
    assert!(dir.path().join("backups").join(index.unwrap()).is_file());

    // A comment on `api` is in the feed: only the kinds it may change are asked.
    // A variable set on `web` is not (a blind spot, left to `probe-every`).
    gh.add_issue_comment("acme", "api", 1, "seen in the feed");
    gh.set_variable("acme", "web", "REGION", "eu-west-1");
    let third = run(dir.path(), &gh, "r3", no_probe_due).await;
    let (quiet, requests, changed) = data(&third, "api");
    assert!(!quiet, "api was active");
    assert!(
        changed.contains(&"issue-comments".to_owned()),
        "{changed:?}"
    );
    assert!(
        (1..=8).contains(&requests),
        "{requests} requests for issues, comments and pull requests"
    );
    assert_eq!(data(&third, "web"), (true, 0, vec![]));

    // Probing every kind every run (`probe-every: 0s`) finds the variable.
    let fourth = run(dir.path(), &gh, "r4", "probe-every: 0s").await;
    let (quiet, _, changed) = data(&fourth, "web");
    assert!(
        !quiet && changed.contains(&"actions-variables".to_owned()),
        "{changed:?}"
    );
    assert!(!data(&fourth, "api").0, "api probed too");

    // A run that failed a kind leaves a snapshot the feed's word does not hold on: the
    // next run probes every kind (as it does `web`, whose snapshot runs without the
    // feed moved); once a run completes them, they are quiet again.
    gh.withhold("acme", "api", "labels", Some(502));
    let fifth = run(dir.path(), &gh, "r5", "probe-every: 0s").await;
    let failed = of(&fifth, "api").data.as_ref().unwrap();
    assert!(failed.failed.contains_key("labels"), "{failed:?}");
    gh.withhold("acme", "api", "labels", None);
    let sixth = run(dir.path(), &gh, "r6", no_probe_due).await;
    let (quiet, requests, _) = data(&sixth, "api");
    assert!(
        !quiet && requests > 10,
        "api probed after an incomplete run"
    );
    let (quiet, requests, _) = data(&sixth, "web");
    assert!(!quiet && requests > 10, "web probed: its snapshot moved");
    let seventh = run(dir.path(), &gh, "r7", no_probe_due).await;
    assert_eq!(data(&seventh, "api"), (true, 0, vec![]));
    assert_eq!(data(&seventh, "web"), (true, 0, vec![]));
}
