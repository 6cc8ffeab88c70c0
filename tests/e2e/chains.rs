//! Bundle chains end to end: backups as links over git protocol v2, restored with
//! repovault and by hand with git, pruned by reference, and a damaged link named.

use std::path::Path;

use git2::Repository;
use repovault_core::{BackupFormat, Manifest};
use repovault_testkit::{RepoSpec, fixtures};

use crate::support::*;

/// One backup run; returns the new (or unchanged) backup's manifest.
async fn back_up(work: &Path, gh: &repovault_testkit::FakeGitHub, run: &str) -> Manifest {
    let out = run_org(work, gh, run, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&std::fs::read(latest(work)).unwrap()).unwrap()
}

/// The manifest `latest.json` names. (Not the newest key: backups in one second push
/// their stamps ahead, and a later backup can reuse a second whose link was deleted.)
fn latest(work: &Path) -> std::path::PathBuf {
    let repo = work.join("backups/repos/acme/app");
    let pointer: repovault_core::LatestPointer =
        serde_json::from_slice(&std::fs::read(repo.join("latest.json")).unwrap()).unwrap();
    work.join("backups").join(pointer.backup.manifest_key)
}

/// The latest backup restores with repovault and by hand to exactly the source's
/// refs, and both pass `git fsck --full`.
async fn assert_restores(work: &Path, gh: &repovault_testkit::FakeGitHub, label: &str) {
    let source = refs_of(&gh.repo_path("acme", "app"));
    let by_hand = extract(&latest(work));
    let bare = by_hand.dir.path().join("app.git");
    assert_eq!(refs_of(&bare), source, "{label}: restored by hand");
    fsck(&bare);
    let to = work.join(format!("restored-{label}"));
    let out = repovault(
        work,
        &["restore", "acme/app", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(out.status.success(), "{label}: {}", text(&out));
    assert_eq!(refs_of(&to.join("app.git")), source, "{label}: restored");
    fsck(&to.join("app.git"));
}

fn ref_names(repo: &Repository, prefix: &str) -> Vec<String> {
    refs_of(repo.path())
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Day `n`'s change to the repository: each kind of history edit a chain must carry.
fn change(repo: &Repository, n: usize) {
    let file = format!("day-{n}.txt");
    let main = fixtures::commit(
        repo,
        "main",
        &[(&file, format!("day {n}").as_bytes())],
        "daily work",
    );
    match n % 6 {
        0 => {
            // A branch deleted.
            if let Ok(mut r) = repo.find_reference("refs/heads/topic") {
                r.delete().unwrap();
            }
        }
        1 => {
            // A branch (re-)created.
            fixtures::set_ref(repo, "refs/heads/topic", main);
        }
        2 => {
            // A force-push: the branch rewritten onto a commit its old tip does not reach.
            let parent = repo.find_commit(main).unwrap().parent_id(0).unwrap();
            fixtures::set_ref(repo, "refs/heads/topic", parent);
            fixtures::commit(
                repo,
                "topic",
                &[("rewritten.txt", format!("{n}").as_bytes())],
                "rewritten",
            );
        }
        3 => {
            fixtures::annotated_tag(repo, &format!("v{n}"), main);
        }
        4 => {
            // A tag removed.
            let tags = ref_names(repo, "refs/tags/");
            if let Some(tag) = tags.first() {
                repo.find_reference(tag).unwrap().delete().unwrap();
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_restores_exactly_after_1_2_and_30_links_through_every_kind_of_history_edit() {
    let gh = github().await;
    gh.add_org("acme");
    gh.add_repo(RepoSpec::new("acme", "app"));
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "app"), "app");
    let work = tempfile::tempdir().unwrap();

    let first = back_up(work.path(), &gh, "day-01").await;
    assert_eq!(first.format, BackupFormat::BundleChain);
    assert_eq!((first.bundles.len(), first.base.as_deref()), (1, None));
    assert_restores(work.path(), &gh, "1 link").await;

    fixtures::commit(
        &repo,
        "main",
        &[("small.txt", b"one more line")],
        "small change",
    );
    let second = back_up(work.path(), &gh, "day-02").await;
    assert_eq!(second.bundles.len(), 2);
    assert_eq!(
        second.bundles[0], first.bundles[0],
        "the chain builds on the first link"
    );
    // Only the new objects travel: the commit, its tree and the new blob.
    assert_eq!(second.bundles[1].objects, 3, "{:?}", second.bundles[1]);
    assert_restores(work.path(), &gh, "2 links").await;

    for day in 3..=30 {
        change(&repo, day);
        let manifest = back_up(work.path(), &gh, &format!("day-{day:02}")).await;
        assert_eq!(manifest.bundles.len(), day, "day {day}");
    }
    assert_restores(work.path(), &gh, "30 links").await;

    // Emptied: every ref deleted. The next link holds no refs, and restores to none.
    for name in ref_names(&repo, "refs/") {
        repo.find_reference(&name).unwrap().delete().unwrap();
    }
    let emptied = back_up(work.path(), &gh, "day-31").await;
    assert!(emptied.refs.is_empty() && emptied.bundles.len() == 31);
    assert_restores(work.path(), &gh, "emptied").await;

    // The drill restores every kept backup: 31 chains of up to 31 links.
    let out = repovault(
        work.path(),
        &["verify", "--repo", "acme/app", "--restore-drill"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified 31 backup(s): 31 ok, 0 failed"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_names_the_damaged_link_and_prune_keeps_every_link_a_kept_backup_needs() {
    let gh = github().await;
    gh.add_org("acme");
    gh.add_repo(RepoSpec::new("acme", "app"));
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "app"), "app");
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    for day in 1..=3 {
        fixtures::commit(
            &repo,
            "main",
            &[("f.txt", format!("{day}").as_bytes())],
            "work",
        );
        back_up(work.path(), &gh, &format!("a{day}")).await;
    }
    // A second chain: --full starts one anew.
    fixtures::commit(&repo, "main", &[("f.txt", b"4")], "work");
    let out = run_org(work.path(), &gh, "full", &["--full"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let manifests = backups_of(&backups, "acme", "app");
    let read =
        |p: &Path| -> Manifest { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let full = read(&manifests[3]);
    assert_eq!((full.bundles.len(), full.base.as_deref()), (1, None));
    let third = read(&manifests[2]);
    assert_eq!(third.bundles.len(), 3);

    // Damage the middle link of the first chain: verify names it, and only the
    // backups that need it fail.
    let link = backups.join(&third.bundles[1].key);
    let mut bytes = std::fs::read(&link).unwrap();
    let at = bytes.len() - 30;
    bytes[at] ^= 0xff;
    std::fs::write(&link, &bytes).unwrap();
    let out = repovault(work.path(), &["verify", "--repo", "acme/app"], &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout.contains(&format!("link 2 of 3 ({}): sha256", third.bundles[1].key)),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified 4 backup(s): 2 ok, 2 failed"),
        "{stdout}"
    );
    std::fs::write(&link, {
        bytes[at] ^= 0xff;
        &bytes
    })
    .unwrap();

    // Keep the newest backup only. The first chain's backups go; its links stay while
    // they are young (a backup may be writing them), then go, because no kept backup
    // lists them; the kept backup's link stays.
    let keep_last_one = || async {
        let out = repovault(
            work.path(),
            &["prune", "--from", "./backups", "--keep-last", "1"],
            &[],
        )
        .await;
        assert!(out.status.success(), "{}", text(&out));
    };
    keep_last_one().await;
    assert_eq!(backups_of(&backups, "acme", "app").len(), 1);
    for link in &third.bundles {
        assert!(backups.join(&link.key).exists(), "a young link was deleted");
    }
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    for link in &third.bundles {
        std::fs::File::options()
            .write(true)
            .open(backups.join(&link.key))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    keep_last_one().await;
    for link in &third.bundles {
        assert!(
            !backups.join(&link.key).exists(),
            "{} was not released",
            link.key
        );
    }
    assert!(backups.join(&full.bundles[0].key).exists());
    assert_restores(work.path(), &gh, "after prune").await;

    // A link lost outside repovault: the next backup does not build on that chain.
    std::fs::remove_file(backups.join(&full.bundles[0].key)).unwrap();
    fixtures::commit(&repo, "main", &[("f.txt", b"5")], "work");
    let next = back_up(work.path(), &gh, "after-loss").await;
    assert_eq!((next.bundles.len(), next.base.as_deref()), (1, None));
    assert_restores(work.path(), &gh, "after a lost link").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readmes_restore_by_hand_commands_restore_a_chain_exactly() {
    let gh = github().await;
    gh.add_org("acme");
    gh.add_repo(RepoSpec::new("acme", "api"));
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    let work = tempfile::tempdir().unwrap();
    for day in 1..=3 {
        change(&repo, day);
        let out = run_org(work.path(), &gh, &format!("d{day}"), &[]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let manifest = backups_of(&work.path().join("backups"), "acme", "api")
        .pop()
        .unwrap();
    run_readme_restore(&manifest);
    let restored = manifest.parent().unwrap().join("api.git");
    assert_eq!(refs_of(&restored), refs_of(&gh.repo_path("acme", "api")));
    fsck(&restored);
    let head = std::fs::read_to_string(restored.join("HEAD")).unwrap();
    assert_eq!(head.trim(), "ref: refs/heads/main");
}

/// An empty repository advertises no `HEAD`: its backup names its default branch, and
/// a restore (by repovault, and by hand with the documented commands) points `HEAD`
/// there, as GitHub had it, not at git's own default.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_repository_restores_with_head_on_its_default_branch() {
    let gh = github().await;
    gh.add_org("acme");
    fixtures::init_bare(&gh.repo_path("acme", "app"), "trunk");
    let mut spec = RepoSpec::new("acme", "app").has_wiki(false);
    spec.default_branch = "trunk".into();
    gh.add_repo(spec);
    let work = tempfile::tempdir().unwrap();
    let manifest = back_up(work.path(), &gh, "r1").await;
    assert!(manifest.refs.is_empty());
    assert_eq!(manifest.head.as_deref(), Some("refs/heads/trunk"));

    let to = work.path().join("restored");
    let out = repovault(
        work.path(),
        &["restore", "acme/app", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let head = std::process::Command::new("git")
        .args(["symbolic-ref", "HEAD"])
        .current_dir(to.join("app.git"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "refs/heads/trunk"
    );
    run_readme_restore(&latest(work.path()));
}

/// A server that speaks only git protocol v0 gets the same chain: its first answer
/// lists the refs (one request tells "unchanged"), and a change adds a link holding
/// only the new objects, packed from a mirror clone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_without_protocol_v2_gets_the_same_chain() {
    let gh = github_v0().await;
    gh.add_org("acme");
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "app"), "app");
    gh.add_repo(RepoSpec::new("acme", "app").has_wiki(false));
    let work = tempfile::tempdir().unwrap();
    let first = back_up(work.path(), &gh, "r1").await;
    assert_eq!(first.format, BackupFormat::BundleChain);
    assert_eq!(first.bundles.len(), 1);

    let before = gh.stats();
    let again = back_up(work.path(), &gh, "r2").await;
    assert_eq!(again.created_at, first.created_at, "unchanged");
    let after = gh.stats();
    assert_eq!(
        after.git_requests - before.git_requests,
        1,
        "one request decides unchanged"
    );

    fixtures::commit(&repo, "main", &[("new.txt", b"new")], "more");
    let second = back_up(work.path(), &gh, "r3").await;
    assert_eq!(second.bundles.len(), 2);
    assert_eq!(second.bundles[1].objects, 3, "commit, tree, blob");
    assert_restores(work.path(), &gh, "v0").await;
}
