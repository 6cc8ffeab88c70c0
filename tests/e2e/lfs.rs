//! Git LFS (`options.lfs`): objects downloaded through the batch API from GitHub's
//! media host (which never sees the token), stored once per repository, listed by
//! each backup, checked by `verify`, put back by `restore` where git-lfs finds them,
//! and released by `prune` once no kept backup lists them.

use std::path::Path;
use std::process::Command;

use repovault_core::{Manifest, ResultRecord};
use repovault_testkit::{FakeGitHub, RepoSpec, fixtures};

use crate::support::*;

/// Objects of 2 MB: a few MB per branch.
const OBJECT_BYTES: usize = 2 << 20;

fn lfs_org(gh: &FakeGitHub) -> Vec<String> {
    gh.add_org("acme");
    let (_, oids) = fixtures::lfs_repo(
        &gh.repo_path("acme", "assets"),
        &gh.lfs_path("acme", "assets"),
        OBJECT_BYTES,
    );
    gh.add_repo(RepoSpec::new("acme", "assets").private());
    fixtures::standard_repo(&gh.repo_path("acme", "plain"), "plain");
    gh.add_repo(RepoSpec::new("acme", "plain"));
    oids
}

async fn run_lfs(work: &Path, gh: &FakeGitHub, run_id: &str, extra: &[&str]) {
    let mut args = vec!["--lfs", "--no-metadata"];
    args.extend_from_slice(extra);
    let out = run_org(work, gh, run_id, &args).await;
    assert!(out.status.success(), "{}", text(&out));
}

fn record(work: &Path, run_id: &str) -> ResultRecord {
    let path = work.join(format!("backups/runs/{run_id}/results/acme/assets.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn newest_manifest(work: &Path) -> Manifest {
    let manifests = backups_of(&work.join("backups"), "acme", "assets");
    serde_json::from_slice(&std::fs::read(manifests.last().unwrap()).unwrap()).unwrap()
}

/// `verify --restore-drill` of the repository: every link and LFS object read back,
/// restored and checked.
async fn assert_drill_passes(work: &Path) {
    let out = repovault(
        work,
        &["verify", "--repo", "acme/assets", "--restore-drill"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}

fn lfs_key(oid: &str) -> String {
    format!("repos/acme/assets/lfs/{oid}")
}

/// `git` with git-lfs's filters configured for this command only (nothing global).
fn git_lfs(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "filter.lfs.process=git-lfs filter-process",
            "-c",
            "filter.lfs.smudge=git-lfs smudge -- %f",
            "-c",
            "filter.lfs.clean=git-lfs clean -- %f",
            "-c",
            "filter.lfs.required=true",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lfs_objects_restore_as_real_content_on_every_branch_and_are_stored_once() {
    let gh = github().await;
    let oids = lfs_org(&gh);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");

    run_lfs(work.path(), &gh, "first", &[]).await;
    let manifest = newest_manifest(work.path());
    let mut listed: Vec<&str> = manifest.stored_lfs().map(|o| o.oid.as_str()).collect();
    listed.sort();
    let mut expected: Vec<&str> = oids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(listed, expected, "every object any branch points at, once");
    for oid in &oids {
        let stored = std::fs::read(backups.join(lfs_key(oid))).unwrap();
        assert_eq!(
            stored,
            std::fs::read(gh.lfs_path("acme", "assets").join(oid)).unwrap()
        );
    }
    let stats = gh.stats();
    assert_eq!(stats.lfs_downloads, oids.len() as u64);
    assert_eq!(
        stats.lfs_media_requests_with_token, 0,
        "the token went to the media host"
    );
    let first = record(work.path(), "first").lfs.unwrap();
    assert_eq!((first.objects, first.uploaded), (oids.len(), oids.len()));
    assert_eq!(first.uploaded_bytes, (oids.len() * OBJECT_BYTES) as u64);

    // A new chain finds every pointer again, and uploads none: each is stored.
    run_lfs(work.path(), &gh, "full", &["--full"]).await;
    let full = record(work.path(), "full").lfs.unwrap();
    assert_eq!(
        (full.objects, full.uploaded, full.uploaded_bytes),
        (oids.len(), 0, 0)
    );
    // A push without LFS changes: an incremental link, still listing every object.
    let repo = git2::Repository::open_bare(gh.repo_path("acme", "assets")).unwrap();
    fixtures::commit(&repo, "main", &[("notes.txt", b"more\n")], "notes");
    run_lfs(work.path(), &gh, "push", &[]).await;
    let push = record(work.path(), "push").lfs.unwrap();
    assert_eq!((push.objects, push.uploaded), (oids.len(), 0));
    assert_eq!(newest_manifest(work.path()).bundles.len(), 2);
    // A tag on a commit already backed up: a link with an empty pack, and still
    // every object listed (the base's list carried forward).
    let head = repo.refname_to_id("refs/heads/main").unwrap();
    repo.reference("refs/tags/v1", head, false, "tag").unwrap();
    run_lfs(work.path(), &gh, "tag", &[]).await;
    let tag = record(work.path(), "tag").lfs.unwrap();
    assert_eq!((tag.objects, tag.uploaded), (oids.len(), 0));
    let manifest = newest_manifest(work.path());
    assert_eq!(manifest.bundles.len(), 3);
    assert_eq!(manifest.stored_lfs().count(), oids.len());
    assert_eq!(
        gh.stats().lfs_downloads,
        oids.len() as u64,
        "nothing downloaded twice"
    );

    // Restored: the objects sit where git-lfs looks, and every branch checks out with
    // the real content, not pointers.
    let restored = work.path().join("restored");
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/assets",
            "--from",
            "./backups",
            "--to",
            "restored",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("lfs: {} object(s)", oids.len())),
        "{}",
        text(&out)
    );
    let checkout = work.path().join("checkout");
    let bare = restored.join("assets.git");
    git_lfs(
        work.path(),
        &[
            "clone",
            "--quiet",
            &format!("file://{}", bare.display()),
            "checkout",
        ],
    );
    let originals = gh.lfs_path("acme", "assets");
    for (branch, files) in [
        ("main", &["model.bin", "weights.bin"][..]),
        ("design", &["model.bin", "mockup.bin"][..]),
        ("data", &["model.bin", "dataset.bin"][..]),
    ] {
        git_lfs(&checkout, &["checkout", "--quiet", branch]);
        for file in files {
            let content = std::fs::read(checkout.join(file)).unwrap();
            assert_eq!(content.len(), OBJECT_BYTES, "{branch}/{file} is a pointer");
            let (_, oid) = fixtures::lfs_pointer(&content);
            assert!(
                originals.join(&oid).exists(),
                "{branch}/{file}: unknown content"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readmes_restore_by_hand_commands_restore_lfs_content_too() {
    let gh = github().await;
    lfs_org(&gh);
    let work = tempfile::tempdir().unwrap();
    run_lfs(work.path(), &gh, "first", &[]).await;
    let manifest = backups_of(&work.path().join("backups"), "acme", "assets")
        .pop()
        .unwrap();
    run_readme_restore(&manifest);
    let restored = manifest.parent().unwrap().join("api.git");
    assert_eq!(refs_of(&restored), refs_of(&gh.repo_path("acme", "assets")));
    git_lfs(
        work.path(),
        &[
            "clone",
            "--quiet",
            &format!("file://{}", restored.display()),
            "checkout",
        ],
    );
    let content = std::fs::read(work.path().join("checkout/weights.bin")).unwrap();
    assert_eq!(content.len(), OBJECT_BYTES, "a pointer, not the content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_names_a_damaged_lfs_object_and_prune_releases_only_unlisted_ones() {
    let gh = github().await;
    let oids = lfs_org(&gh);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    run_lfs(work.path(), &gh, "first", &[]).await;

    let damaged = backups.join(lfs_key(&oids[1]));
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    let out = repovault(work.path(), &["verify", "--repo", "acme/assets"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("LFS object {}: sha256", lfs_key(&oids[1]))),
        "{}",
        text(&out)
    );
    bytes[1000] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();

    // `design` is deleted upstream: a new chain no longer lists its object. Keeping
    // the newest backup only, that object goes once it is old enough; the others stay.
    let repo = git2::Repository::open_bare(gh.repo_path("acme", "assets")).unwrap();
    repo.find_reference("refs/heads/design")
        .unwrap()
        .delete()
        .unwrap();
    run_lfs(work.path(), &gh, "second", &["--full"]).await;
    let gone = &oids[1];
    assert!(
        newest_manifest(work.path())
            .stored_lfs()
            .all(|o| &o.oid != gone)
    );
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    for oid in &oids {
        std::fs::File::options()
            .write(true)
            .open(backups.join(lfs_key(oid)))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let out = repovault(
        work.path(),
        &["prune", "--from", "./backups", "--keep-last", "1"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    for oid in &oids {
        assert_eq!(
            backups.join(lfs_key(oid)).exists(),
            oid != gone,
            "{oid} (released: {})",
            oid == gone
        );
    }
    assert_drill_passes(work.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_without_protocol_v2_gets_the_same_chain_and_lfs_objects() {
    let gh = github_v0().await;
    let oids = lfs_org(&gh);
    let work = tempfile::tempdir().unwrap();
    run_lfs(work.path(), &gh, "v0", &[]).await;
    let manifest = newest_manifest(work.path());
    assert_eq!(manifest.format, repovault_core::BackupFormat::BundleChain);
    assert_eq!(manifest.stored_lfs().count(), oids.len());
    for oid in &oids {
        assert!(work.path().join("backups").join(lfs_key(oid)).exists());
    }
    assert_drill_passes(work.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn turning_lfs_on_backs_up_every_object_even_of_an_unchanged_repository() {
    let gh = github().await;
    let oids = lfs_org(&gh);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "before", &["--no-metadata"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(newest_manifest(work.path()).lfs, None);
    run_lfs(work.path(), &gh, "after", &[]).await;
    let after = record(work.path(), "after");
    assert_eq!(after.outcome, repovault_core::Outcome::Ok);
    assert_eq!(after.lfs.unwrap().uploaded, oids.len());
    assert_eq!(newest_manifest(work.path()).bundles.len(), 1, "a new chain");
    run_lfs(work.path(), &gh, "again", &[]).await;
    assert_eq!(
        record(work.path(), "again").outcome,
        repovault_core::Outcome::Unchanged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_answer_pointing_at_the_cloud_metadata_address_is_refused_without_a_request() {
    let gh = github().await;
    let oids = lfs_org(&gh);
    // A hostile (or compromised) LFS server: its links lead to the instance
    // metadata service, which hands out the machine's cloud credentials.
    gh.lfs_links_to("http://169.254.169.254/latest/meta-data");
    let work = tempfile::tempdir().unwrap();
    run_lfs(work.path(), &gh, "metadata-1", &[]).await;
    let manifest = newest_manifest(work.path());
    let mut missing = manifest.lfs_missing.clone();
    missing.sort();
    let mut expected = oids.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(
        missing, expected,
        "every object is unavailable, none fetched"
    );
    let stats = gh.stats();
    assert!(stats.lfs_batches >= 1);
    assert_eq!(stats.lfs_downloads, 0);
    for oid in &oids {
        assert!(
            !work.path().join("backups").join(lfs_key(oid)).exists(),
            "{oid} was stored"
        );
    }
}
