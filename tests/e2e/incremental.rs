//! Incremental runs: a second run over an unchanged org fetches and uploads nothing;
//! one new commit means exactly one new archive.

use std::collections::BTreeMap;
use std::time::Instant;

use repovault_testkit::{fixtures, org};

use crate::support::*;

fn archive_counts(backups: &std::path::Path, names: &[String]) -> BTreeMap<String, usize> {
    names
        .iter()
        .map(|n| (n.clone(), backups_of(backups, "acme", n).len()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unchanged_org_is_listed_once_per_repo_and_nothing_is_uploaded() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 40);
    let work = tempfile::tempdir().unwrap();
    let timed_run = |id: &'static str| {
        let (gh, dir) = (&gh, work.path());
        async move {
            let start = Instant::now();
            let out = run_org(dir, gh, id, &[]).await;
            assert!(out.status.success(), "{}", text(&out));
            start.elapsed()
        }
    };
    let first = timed_run("first").await;
    let after_first = gh.stats();
    let backups = work.path().join("backups");
    let before = archive_counts(&backups, &names);
    assert!(before.values().all(|n| *n == 1));

    let second = timed_run("second").await;
    let after_second = gh.stats();
    println!(
        "full run {:.0} ms, unchanged run {:.0} ms ({:.1}% of the full run)",
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3,
        100.0 * second.as_secs_f64() / first.as_secs_f64()
    );
    let second_report = report(&backups, "second");
    assert_eq!(
        (second_report.totals.unchanged, second_report.totals.ok),
        (40, 0)
    );
    assert_eq!(archive_counts(&backups, &names), before, "no new archive");
    assert_eq!(
        after_second.total_fetches(),
        after_first.total_fetches(),
        "no fetch"
    );
    for name in &names {
        let full = format!("acme/{name}");
        let listings =
            after_second.ref_advertisements[&full] - after_first.ref_advertisements[&full];
        assert_eq!(listings, 1, "{full}: one ref listing");
    }
    // Unchanged records point at the archive that still holds the state.
    let record: repovault_core::ResultRecord = serde_json::from_slice(
        &std::fs::read(backups.join("runs/second/results/acme/repo-000.json")).unwrap(),
    )
    .unwrap();
    let archive = record.backup.unwrap();
    assert!(backups.join(&archive.key).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_new_commit_means_exactly_one_new_archive() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 12);
    let work = tempfile::tempdir().unwrap();
    let run = |id: &'static str, extra: &'static [&'static str]| {
        let (gh, dir) = (&gh, work.path());
        async move {
            let out = run_org(dir, gh, id, extra).await;
            assert!(out.status.success(), "{}", text(&out));
        }
    };
    run("r1", &[]).await;
    let backups = work.path().join("backups");
    let repo = git2::Repository::open_bare(gh.repo_path("acme", "repo-007")).unwrap();
    fixtures::commit(
        &repo,
        "main",
        &[("new.txt", b"a change")],
        "one more commit",
    );
    gh.touch("acme", "repo-007");
    run("r2", &[]).await;
    let second = report(&backups, "r2");
    assert_eq!((second.totals.ok, second.totals.unchanged), (1, 11));
    for name in &names {
        let expected = if name == "repo-007" { 2 } else { 1 };
        assert_eq!(backups_of(&backups, "acme", name).len(), expected, "{name}");
    }
    let newest = backups_of(&backups, "acme", "repo-007").pop().unwrap();
    assert_eq!(
        extract(&newest).manifest.refs,
        refs_of(&gh.repo_path("acme", "repo-007"))
    );
    let latest: repovault_core::LatestPointer = serde_json::from_slice(
        &std::fs::read(backups.join("repos/acme/repo-007/latest.json")).unwrap(),
    )
    .unwrap();
    assert!(
        newest.ends_with(&latest.backup.key),
        "latest.json moved to the new archive"
    );

    // --full archives everything again.
    run("r3", &["--full"]).await;
    assert_eq!(report(&backups, "r3").totals.ok, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_latest_json_means_a_full_backup_not_a_failure() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 3);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let backups = work.path().join("backups");
    std::fs::write(
        backups.join("repos/acme/repo-001/latest.json"),
        "{ not json",
    )
    .unwrap();
    let out = run_org(work.path(), &gh, "r2", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let second = report(&backups, "r2");
    assert_eq!((second.totals.ok, second.totals.unchanged), (1, 2));
    assert_eq!(backups_of(&backups, "acme", "repo-001").len(), 2);
    let latest: repovault_core::LatestPointer = serde_json::from_slice(
        &std::fs::read(backups.join("repos/acme/repo-001/latest.json")).unwrap(),
    )
    .unwrap();
    assert!(
        backups.join(latest.backup.key).exists(),
        "latest.json was rewritten"
    );
}
