//! `repovault run` on the embedded default (local folder, in-process queue), as a
//! real process against the fake GitHub.

use std::time::Duration;

use repovault_reporter::RepoStatus;
use repovault_testkit::{FaultStatus, fixtures, org};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backs_up_every_repository_of_a_large_org_verifiably() {
    // 257 repositories' data beyond git take ~4,000 API requests: past a quarter of a
    // token's 5,000 an hour the client paces itself (tested elsewhere); this test is
    // about the git backups, so its GitHub allows more.
    let gh = repovault_testkit::FakeGitHub::start(repovault_testkit::FakeGitHubOptions {
        token: Some(crate::support::TOKEN.into()),
        rate_limit: Some(50_000),
        ..Default::default()
    })
    .await
    .unwrap();
    let names = org::showcase_org(&gh, "acme", 250);
    assert!(names.len() >= 257);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "big", &["--concurrency", "8"]).await;
    assert!(out.status.success(), "{}", text(&out));

    let backups = work.path().join("backups");
    let report = report(&backups, "big");
    assert_eq!(report.totals.planned, names.len());
    assert_eq!(report.totals.ok, names.len(), "{:#?}", report.totals);
    assert!(gh.stats().api_requests >= 3, "listing spans three pages");
    for name in &names {
        let extracted = assert_archive_matches(&backups, &gh, "acme", name);
        let restored = extracted.dir.path().join("restored");
        let clone = std::process::Command::new("git")
            .args(["clone", "--quiet"])
            .arg(extracted.dir.path().join(format!("{name}.git")))
            .arg(&restored)
            .output()
            .unwrap();
        assert!(
            clone.status.success(),
            "git clone of {name}: {}",
            String::from_utf8_lossy(&clone.stderr)
        );
        assert!(
            backups
                .join(format!("repos/acme/{name}/latest.json"))
                .exists()
        );
    }
    // The wiki travels in the same archive, and restores as its own repository.
    let extracted = extract(&backups_of(&backups, "acme", "with-wiki")[0]);
    let wiki = extracted.dir.path().join("with-wiki.wiki.git");
    assert_eq!(refs_of(&wiki), refs_of(&gh.wiki_path("acme", "with-wiki")));
    fsck(&wiki);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_repositories_and_missing_wikis_are_successes() {
    let gh = github().await;
    org::showcase_org(&gh, "acme", 0);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(
        work.path(),
        &gh,
        "r1",
        &["--pattern", "^(empty|wiki-never-written)$"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let backups = work.path().join("backups");
    let report = report(&backups, "r1");
    assert_eq!((report.totals.planned, report.totals.ok), (2, 2));
    let record = |name: &str| -> repovault_core::ResultRecord {
        serde_json::from_slice(
            &std::fs::read(backups.join(format!("runs/r1/results/acme/{name}.json"))).unwrap(),
        )
        .unwrap()
    };
    let empty = record("empty");
    assert!(empty.empty && empty.refs_count == 0);
    let extracted = extract(&backups_of(&backups, "acme", "empty")[0]);
    fsck(&extracted.dir.path().join("empty.git"));
    assert_eq!(
        record("wiki-never-written").wiki,
        repovault_core::WikiOutcome::Absent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_matching_repositories_are_left_untouched() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 30);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(
        work.path(),
        &gh,
        "r1",
        &[
            "--pattern",
            "^repo-01",
            "--pattern",
            "^repo-02",
            "--exclude",
            "5$",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let backups = work.path().join("backups");
    let selected: Vec<&String> = names
        .iter()
        .filter(|n| (n.starts_with("repo-01") || n.starts_with("repo-02")) && !n.ends_with('5'))
        .collect();
    assert_eq!(report(&backups, "r1").totals.ok, selected.len());
    let stats = gh.stats();
    for name in &names {
        let chosen = selected.contains(&name);
        assert_eq!(
            backups.join(format!("repos/acme/{name}")).exists(),
            chosen,
            "{name}"
        );
        assert_eq!(
            stats
                .ref_advertisements
                .contains_key(&format!("acme/{name}")),
            chosen,
            "{name} contacted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repository_that_cannot_be_fetched_fails_alone_with_exit_code_1() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 6);
    gh.fail_fetch("acme", "repo-003", FaultStatus::Always(502));
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("repovault.yml"),
        format!(
            "allow-insecure-http: true\nretry: {{ max-attempts: 3, base-delay: 100ms, max-delay: 200ms }}\njobs:\n  - source: {{ org: acme, api-url: \"{}\" }}\n    target: ./backups\n",
            gh.api_url()
        ),
    )
    .unwrap();
    let out = repovault(work.path(), &["run", "--run-id", "r1"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = report(&work.path().join("backups"), "r1");
    assert_eq!(
        (report.totals.ok, report.totals.failed),
        (5, 1),
        "{:#?}",
        report.totals
    );
    let failed = report
        .repos
        .iter()
        .find(|r| r.status == RepoStatus::Failed)
        .unwrap();
    assert_eq!(failed.name, "repo-003");
    assert_eq!(failed.attempt, Some(3));
    assert!(
        failed.error.as_deref().unwrap().contains("502"),
        "{failed:?}"
    );
    assert_eq!(
        gh.stats().git_faults_served,
        9,
        "three tries in place in each of the three attempts"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 failed") && stdout.contains("acme/repo-003"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_repository_fails_permanently_without_retries() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 3);
    // Listed by the API, gone from git: as when a repository is deleted mid-run.
    std::fs::remove_dir_all(gh.repo_path("acme", "repo-001")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = report(&work.path().join("backups"), "r1");
    let failed = report
        .repos
        .iter()
        .find(|r| r.status == RepoStatus::Failed)
        .unwrap();
    assert_eq!(
        (failed.name.as_str(), failed.attempt),
        ("repo-001", Some(1))
    );
    assert!(
        failed.error.as_deref().unwrap().contains("not found"),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_listing_waits_and_completes() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 120);
    gh.rate_limit_next(1, Duration::from_secs(1));
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(gh.stats().rate_limited, 1);
    assert_eq!(report(&work.path().join("backups"), "r1").totals.ok, 120);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rate limit hit; waiting as asked"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_appears_in_no_log_record_archive_or_child_argv() {
    // Protocol v0: the fallback path runs git children, whose argv is checked too (the
    // v2 path runs none; its token goes in one HTTP header, see the redirect tests).
    let gh = github_v0().await;
    org::showcase_org(&gh, "acme", 3);
    let work = tempfile::tempdir().unwrap();
    // A `git` first on PATH that logs its argv, then runs the real git.
    let shim = work.path().join("shim");
    std::fs::create_dir(&shim).unwrap();
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let argv_log = work.path().join("argv.log");
    std::fs::write(
        shim.join("git"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec {} \"$@\"\n",
            argv_log.display(),
            real_git.trim()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(shim.join("git"))
        .status()
        .unwrap();
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &gh.api_url(),
            "--allow-insecure-http",
            "--run-id",
            "r1",
            "-vv",
        ],
        &[("PATH", &path)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    // The private repository was fetched, so the token was used.
    assert_eq!(gh.stats().fetches_of("acme/private-repo"), 1);
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.contains("clone --mirror"),
        "the shim saw the clones: {argv}"
    );

    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let forbidden = [TOKEN, encoded.as_str()];
    let mut haystacks: Vec<(String, String)> =
        vec![("argv".into(), argv), ("stdout+stderr".into(), text(&out))];
    let backups = work.path().join("backups");
    for entry in walk(&backups) {
        let bytes = std::fs::read(&entry).unwrap();
        haystacks.push((
            entry.to_str().unwrap().to_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        if entry.to_string_lossy().ends_with(".manifest.json") {
            let extracted = extract(&entry);
            for file in walk(extracted.dir.path()) {
                let bytes = std::fs::read(&file).unwrap();
                haystacks.push((
                    file.to_str().unwrap().to_owned(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    for (what, hay) in &haystacks {
        for secret in forbidden {
            assert!(!hay.contains(secret), "the token leaked into {what}");
        }
    }
    assert!(
        haystacks.len() > 50,
        "checked {} files and streams",
        haystacks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_configuration_exits_2_naming_the_key() {
    let work = tempfile::tempdir().unwrap();
    let out = repovault(
        work.path(),
        &["run", "--org", "acme", "--pattern", "(unclosed"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--pattern") && stderr.contains("unclosed group"),
        "{stderr}"
    );

    std::fs::write(
        work.path().join("repovault.yml"),
        "jobs:\n  - source: { org: acme }\n    target: ./b\n    optoins: {}\n",
    )
    .unwrap();
    let out = repovault(work.path(), &["run"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("jobs[0]") && stderr.contains("unknown field `optoins`"),
        "{stderr}"
    );

    let out = repovault(work.path(), &["run", "--config", "missing.yml"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_org_is_an_infrastructure_error() {
    let gh = github().await;
    let work = tempfile::tempdir().unwrap();
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "ghost",
            "--api-url",
            &gh.api_url(),
            "--allow-insecure-http",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("org ghost not found"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusual_ref_names_survive_the_round_trip() {
    let gh = github().await;
    gh.add_org("acme");
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "odd"), "odd");
    fixtures::add_unusual_refs(&repo);
    gh.add_repo(repovault_testkit::RepoSpec::new("acme", "odd"));
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let extracted = assert_archive_matches(&work.path().join("backups"), &gh, "acme", "odd");
    assert!(
        extracted
            .manifest
            .refs
            .iter()
            .any(|(name, _)| name.contains("名前"))
    );
    assert!(
        extracted
            .manifest
            .refs
            .iter()
            .any(|(name, _)| name.len() > 400)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dry_run_lists_what_would_be_backed_up_and_touches_nothing() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 3);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "dry", &["--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for name in &names {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("new") && l.contains(&format!("acme/{name}"))),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("dry run: 3 to back up, 0 unchanged"),
        "{stdout}"
    );
    assert!(!backups.exists(), "a dry run wrote to the store");
    assert_eq!(gh.stats().total_fetches(), 0);

    let out = run_org(work.path(), &gh, "real", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    // A push to one repository: it alone would be backed up.
    let repo = git2::Repository::open_bare(gh.repo_path("acme", &names[1])).unwrap();
    fixtures::commit(&repo, "main", &[("f.txt", b"new")], "push");
    gh.touch("acme", &names[1]);
    let files_before = walk_count(&backups);
    let fetches_before = gh.stats().total_fetches();
    // `plan --dry-run` needs no queue.
    let api = gh.api_url();
    let out = repovault(
        work.path(),
        &[
            "plan",
            "--org",
            "acme",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--dry-run",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("dry run: 1 to back up, 2 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("back up") && l.contains(&format!("acme/{}", names[1]))),
        "{stdout}"
    );
    assert_eq!(
        walk_count(&backups),
        files_before,
        "a dry run wrote to the store"
    );
    assert_eq!(gh.stats().total_fetches(), fetches_before);
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() { walk_count(&path) } else { 1 }
        })
        .sum()
}
