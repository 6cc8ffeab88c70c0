//! `verify`, `restore`, `ls` and `prune` on a local backup folder.

use std::path::{Path, PathBuf};

use repovault_core::Manifest;
use repovault_testkit::{first_format, fixtures, org};
use sha2::Digest;

use crate::support::*;

/// A backed-up org in the first format (tar.zst archives, as earlier versions wrote
/// them; nothing writes it now, and reading it must keep working): the fake GitHub, a
/// work dir with `backups/`.
async fn backed_up(n: usize) -> (repovault_testkit::FakeGitHub, tempfile::TempDir) {
    let gh = github().await;
    org::showcase_org(&gh, "acme", n);
    let work = tempfile::tempdir().unwrap();
    let store = repovault_local::FsStore::new(work.path().join("backups"));
    first_format::back_up_owner(&gh, "acme", &store, "", jiff::Timestamp::now()).await;
    (gh, work)
}

fn manifest_path(archive: &Path) -> PathBuf {
    PathBuf::from(
        archive
            .to_string_lossy()
            .replace(".tar.zst", ".manifest.json"),
    )
}

/// Rewrites the manifest beside `archive` so its digest matches the archive's bytes.
fn reseal(archive: &Path) {
    let bytes = std::fs::read(archive).unwrap();
    let path = manifest_path(archive);
    let mut manifest: Manifest = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let digest = manifest.archive.as_mut().unwrap();
    digest.size = bytes.len() as u64;
    digest.sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

fn key_of(backups: &Path, archive: &Path) -> String {
    archive
        .strip_prefix(backups)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_drill_passes_on_good_archives_and_names_each_bad_one() {
    let (_gh, work) = backed_up(4).await;
    let backups = work.path().join("backups");
    let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified 11 backup(s): 11 ok, 0 failed"),
        "{}",
        text(&out)
    );

    // Corrupted: a flipped byte in the middle.
    let corrupted = archive_of(&backups_of(&backups, "acme", "repo-000")[0]);
    let mut bytes = std::fs::read(&corrupted).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&corrupted, bytes).unwrap();
    // Truncated: the second half gone.
    let truncated = archive_of(&backups_of(&backups, "acme", "repo-001")[0]);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // Refs differ: a consistent archive (digest resealed) whose main branch moved.
    let moved = archive_of(&backups_of(&backups, "acme", "repo-002")[0]);
    let extracted = extract(&manifest_path(&moved));
    let bare = extracted.dir.path().join("repo-002.git");
    let status = std::process::Command::new("git")
        .args(["update-ref", "refs/heads/main", "refs/heads/dev"])
        .current_dir(&bare)
        .status()
        .unwrap();
    assert!(status.success());
    let status = std::process::Command::new("tar")
        .args(["--zstd", "-cf"])
        .arg(&moved)
        .arg("-C")
        .arg(extracted.dir.path())
        .args(["MANIFEST.json", "repo-002.git"])
        .status()
        .unwrap();
    assert!(status.success());
    reseal(&moved);

    let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |archive: &Path| {
        let key = key_of(&backups, archive);
        stdout
            .lines()
            .find(|l| l.contains(&key))
            .unwrap_or_else(|| panic!("no line for {key}:\n{stdout}"))
            .to_owned()
    };
    assert!(line(&corrupted).starts_with("FAIL"), "{}", line(&corrupted));
    assert!(line(&truncated).starts_with("FAIL"), "{}", line(&truncated));
    assert!(
        line(&moved).starts_with("FAIL") && line(&moved).contains("refs differ from the manifest"),
        "{}",
        line(&moved)
    );
    assert!(line(&moved).contains("refs/heads/main"), "{}", line(&moved));
    assert!(stdout.contains("8 ok, 3 failed"), "{stdout}");

    // Without the drill, only the digest is checked: the resealed archive passes.
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("9 ok, 2 failed"), "{stdout}");

    // Scoped to a run, or to one repository, or to a sample.
    let out = repovault(work.path(), &["verify", "--repo", "acme/repo-003"], &[]).await;
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("verified 1 backup(s): 1 ok"),
        "{}",
        text(&out)
    );
    let out = repovault(
        work.path(),
        &["verify", "--run", first_format::RUN, "--sample", "10%"],
        &[],
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("verified 2 backup(s)"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_gives_back_a_bare_repository_and_its_wiki_and_can_push_a_mirror() {
    let (gh, work) = backed_up(1).await;
    let to = work.path().join("restored");
    let out = repovault(
        work.path(),
        &["restore", "acme/with-wiki", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        refs_of(&to.join("with-wiki.git")),
        refs_of(&gh.repo_path("acme", "with-wiki"))
    );
    assert_eq!(
        refs_of(&to.join("with-wiki.wiki.git")),
        refs_of(&gh.wiki_path("acme", "with-wiki"))
    );
    fsck(&to.join("with-wiki.git"));

    // Into an existing non-empty directory: refused.
    let out = repovault(
        work.path(),
        &["restore", "acme/with-wiki", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        text(&out)
    );

    // Pushed as a mirror to a new, empty remote: every ref arrives.
    let remote = work.path().join("new-remote.git");
    fixtures::init_bare(&remote, "main");
    let to2 = work.path().join("restored-2");
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/unusual-refs",
            "--to",
            to2.to_str().unwrap(),
            "--push-to",
            remote.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        refs_of(&remote),
        refs_of(&gh.repo_path("acme", "unusual-refs"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_picks_by_date_and_ls_lists_newest_first() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 1);
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    // A first-format backup taken in 2025, then a newer state backed up (a chain: the
    // archive is no base to build on).
    let store = repovault_local::FsStore::new(&backups);
    let at = "2025-01-01T00:00:00Z".parse().unwrap();
    first_format::back_up_owner(&gh, "acme", &store, "", at).await;
    let old = archive_of(&backups_of(&backups, "acme", "repo-000")[0]);
    let old_refs = extract(&manifest_path(&old)).manifest.refs;
    let repo = git2::Repository::open_bare(gh.repo_path("acme", "repo-000")).unwrap();
    fixtures::commit(&repo, "main", &[("later.txt", b"later")], "later work");
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &gh.api_url(),
            "--allow-insecure-http",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let out = repovault(work.path(), &["ls", "acme/repo-000"], &[]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("20"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].ends_with("latest") && rows[1].starts_with("2025-01-01"),
        "{stdout}"
    );

    let to = work.path().join("old");
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/repo-000",
            "--at",
            "2025-06-01",
            "--to",
            to.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(refs_of(&to.join("repo-000.git")), old_refs);
    let to = work.path().join("new");
    let out = repovault(
        work.path(),
        &["restore", "acme/repo-000", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        refs_of(&to.join("repo-000.git")),
        refs_of(&gh.repo_path("acme", "repo-000"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_malicious_archive_cannot_write_outside_the_target() {
    let (_gh, work) = backed_up(0).await;
    let backups = work.path().join("backups");
    // A hostile archive where a real one would be, with a manifest that matches it.
    let dir = backups.join("repos/acme/evil");
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("evil-20260101T000000Z.tar.zst");
    let victim = work.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let mut builder = tar::Builder::new(zstd::Encoder::new(Vec::new(), 1).unwrap());
    let mut raw = |path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    };
    raw(
        "evil.git/HEAD",
        tar::EntryType::Regular,
        None,
        b"ref: refs/heads/main\n",
    );
    raw(
        "evil.git/escape",
        tar::EntryType::Symlink,
        Some(victim.to_str().unwrap()),
        b"",
    );
    raw(
        "evil.git/escape/pwned",
        tar::EntryType::Regular,
        None,
        b"owned",
    );
    raw(
        "../../pwned-parent",
        tar::EntryType::Regular,
        None,
        b"owned",
    );
    std::fs::write(&archive, builder.into_inner().unwrap().finish().unwrap()).unwrap();
    let template = archive_of(&backups_of(&backups, "acme", "empty")[0]);
    // The empty repository's manifest, made this repository's.
    let mut manifest: Manifest =
        serde_json::from_slice(&std::fs::read(manifest_path(&template)).unwrap()).unwrap();
    manifest.repository = "acme/evil".into();
    manifest.source.name = "evil".into();
    std::fs::write(
        manifest_path(&archive),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    reseal(&archive);

    let to = work.path().join("restore-here");
    let out = repovault(
        work.path(),
        &["restore", "acme/evil", "--to", to.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsafe archive entry") && stderr.contains("evil.git/escape"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(&victim).unwrap().next().is_none(),
        "wrote through the symlink"
    );
    assert!(!to.exists(), "a failed restore leaves nothing behind");
    let strays: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pwned") || n.starts_with(".repovault-restore"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    assert!(!work.path().parent().unwrap().join("pwned-parent").exists());

    let out = repovault(
        work.path(),
        &["verify", "--restore-drill", "--repo", "acme/evil"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  repos/acme/evil/evil-20260101T000000Z.tar.zst: cannot extract: unsafe archive entry"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_applies_the_policy_and_never_deletes_the_newest_good_backup() {
    let (_gh, work) = backed_up(1).await;
    let backups = work.path().join("backups");
    // Give repo-000 a history: copies of its archive dated daily over the last 10 days.
    let source = archive_of(&backups_of(&backups, "acme", "repo-000")[0]);
    let now = jiff::Timestamp::now();
    for days in 1..=10 {
        let at = now - jiff::SignedDuration::from_hours(24 * days);
        let name = format!("repo-000-{}.tar.zst", repovault_core::stamp(at));
        let copy = source.with_file_name(name);
        std::fs::copy(&source, &copy).unwrap();
        std::fs::copy(manifest_path(&source), manifest_path(&copy)).unwrap();
    }
    assert_eq!(backups_of(&backups, "acme", "repo-000").len(), 11);
    std::fs::write(
        work.path().join("repovault.yml"),
        "jobs:\n  - source: { org: acme }\n    target: ./backups\n    retention: { keep-last: 2, keep-within: 5d }\n",
    )
    .unwrap();
    let out = repovault(work.path(), &["prune", "--dry-run"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("would delete repos/acme/repo-000/"))
            .count(),
        6,
        "{stdout}"
    );
    assert_eq!(
        backups_of(&backups, "acme", "repo-000").len(),
        11,
        "a dry run deletes nothing"
    );

    let out = repovault(work.path(), &["prune"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let left = backups_of(&backups, "acme", "repo-000");
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left.iter().all(|a| manifest_path(a).exists()));
    let deleted_manifests = std::fs::read_dir(backups.join("repos/acme/repo-000"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".manifest.json")
        })
        .count();
    assert_eq!(deleted_manifests, 5, "manifests go with their archives");

    // keep-last 1 on everything: the archive latest.json names survives even when it
    // is not the newest.
    let latest_key = source.file_name().unwrap().to_owned();
    let newer = source.with_file_name(format!(
        "repo-000-{}.tar.zst",
        repovault_core::stamp(now + jiff::SignedDuration::from_hours(1))
    ));
    std::fs::copy(&source, &newer).unwrap();
    let out = repovault(
        work.path(),
        &["prune", "--from", "./backups", "--keep-last", "1"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    // The newer copy has no manifest: it counts as a recent incomplete upload.
    let left: Vec<_> = std::fs::read_dir(backups.join("repos/acme/repo-000"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tar.zst"))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&latest_key),
        "the newest good backup was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_without_a_policy_refuses() {
    let work = tempfile::tempdir().unwrap();
    let out = repovault(work.path(), &["prune", "--from", "./backups"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no retention policy"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_pushes_with_its_own_token_never_the_backup_token() {
    let (gh, work) = backed_up(1).await;
    let target = format!("{}/acme/pushed.git", gh.api_url());
    let push = |to: &'static str, env: Vec<(&'static str, String)>| {
        let target = target.clone();
        let work = work.path().to_owned();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let dir = work.join(to);
            repovault(
                &work,
                &[
                    "restore",
                    "acme/repo-000",
                    "--to",
                    dir.to_str().unwrap(),
                    "--push-to",
                    &target,
                ],
                &env,
            )
            .await
        }
    };
    // Only the backup token is set (GITHUB_TOKEN): the push goes without credentials.
    let before = gh.stats().git_requests_with_credentials;
    let out = push("r1", vec![]).await;
    assert!(
        !out.status.success(),
        "the fake accepts no push: {}",
        text(&out)
    );
    assert_eq!(
        gh.stats().git_requests_with_credentials,
        before,
        "the backup token went along with the push"
    );
    // With REPOVAULT_PUSH_TOKEN, that token (and only it) is sent.
    let out = push("r2", vec![("REPOVAULT_PUSH_TOKEN", "push-secret".into())]).await;
    assert!(
        gh.stats().git_requests_with_credentials > before,
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("push-secret"), "{}", text(&out));
}

#[tokio::test]
async fn a_dry_run_prune_decides_what_the_real_one_does_and_deletes_nothing() {
    use repovault_core::LatestPointer;
    use repovault_core::ports::store::{DryRun, Store};
    use repovault_core::retention::RetentionPolicy;
    use repovault_repository::{Layout, PruneScope, Repository};

    let dir = tempfile::tempdir().unwrap();
    let fs = repovault_local::FsStore::new(dir.path());
    let store: &dyn Store = &fs;
    let layout = Layout::new("");
    let day = |d: i64| jiff::Timestamp::from_second(1_790_000_000 + d * 86_400).unwrap();
    for d in 1..=4 {
        let key = layout.archive("acme", "api", day(d));
        store.put(&key, "a".into()).await.unwrap();
        // Written when its name says, as far as the store's clock goes.
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(&key))
            .unwrap()
            .set_modified(day(d).into())
            .unwrap();
        if d != 4 {
            store
                .put(&layout.manifest("acme", "api", day(d)), "{}".into())
                .await
                .unwrap();
        }
    }
    // latest.json names day 2 (day 3 was backed up, but its record never landed).
    let latest: LatestPointer = serde_json::from_value(serde_json::json!({
        "schema": 1,
        "archive": {"key": layout.archive("acme", "api", day(2)),
                    "manifest_key": layout.manifest("acme", "api", day(2)),
                    "size": 1, "sha256": "00"},
        "refs_digest": "x", "created_at": day(2), "run_id": "r2",
    }))
    .unwrap();
    store
        .put_json(&layout.latest("acme", "api"), &latest)
        .await
        .unwrap();
    let scopes = [PruneScope {
        selector: None,
        policy: RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        },
    }];
    let now = day(10);
    let before = store.list("").await.unwrap();
    let dry = Repository::new(&DryRun(store), "")
        .prune(&scopes, now)
        .await
        .unwrap();
    assert_eq!(
        store.list("").await.unwrap(),
        before,
        "a dry run deleted something"
    );
    let real = Repository::new(store, "")
        .prune(&scopes, now)
        .await
        .unwrap();
    assert_eq!(dry, real);
    let verdict = |d: i64| {
        real.iter()
            .find(|p| p.at == day(d))
            .map(|p| p.kept.iter().map(|k| k.as_str()).collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(verdict(1), Vec::<&str>::new());
    assert_eq!(verdict(2), vec!["newest good backup"]);
    assert_eq!(verdict(3), vec!["last"]);
    assert_eq!(
        verdict(4),
        Vec::<&str>::new(),
        "manifest-less and old: deleted"
    );
    let exists = |key: String| async move { store.head(&key).await.unwrap().is_some() };
    assert!(!exists(layout.archive("acme", "api", day(1))).await);
    assert!(!exists(layout.manifest("acme", "api", day(1))).await);
    assert!(exists(layout.archive("acme", "api", day(2))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_data_beyond_git_can_be_shown_and_restored_with_the_repository() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 1);
    gh.add_metadata(
        "acme",
        "repo-000",
        repovault_testkit::MetadataSpec {
            issues: 12,
            comments_per_issue: 1,
            pulls: 3,
            reviews_per_pull: 1,
            releases: 1,
            asset_bytes: 64 << 10,
            ..Default::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let out = repovault(work.path(), &["show", "issues", "acme/repo-000"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 15, "{stdout}");
    assert!(
        stdout.contains("#13 ") && stdout.contains("(pull request)"),
        "{stdout}"
    );

    let to = work.path().join("restored");
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/repo-000",
            "--to",
            to.to_str().unwrap(),
            "--metadata",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let lines = |kind: &str| {
        std::fs::read_to_string(to.join("data").join(format!("{kind}.jsonl")))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        (
            lines("issues"),
            lines("issue-comments"),
            lines("pulls"),
            lines("reviews"),
            lines("releases")
        ),
        (15, 15, 3, 3, 1)
    );
    let assets: Vec<_> = std::fs::read_dir(to.join("data/assets")).unwrap().collect();
    assert_eq!(assets.len(), 1);
    let asset = assets[0].as_ref().unwrap().path();
    assert_eq!(std::fs::metadata(asset).unwrap().len(), 64 << 10);
    assert!(to.join("repo-000.git").join("HEAD").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_organizations_own_data_is_backed_up_once_per_run() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let backups = work.path().join("backups");
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backups.join("orgs/acme/latest.json")).unwrap())
            .unwrap();
    let index_key = latest["data"].as_str().unwrap().to_owned();
    let index: repovault_core::DataIndex =
        serde_json::from_slice(&std::fs::read(backups.join(&index_key)).unwrap()).unwrap();
    let items = |kind: &str| index.kinds[kind].items;
    assert_eq!(
        (items("settings"), items("members"), items("teams")),
        (1, 2, 1)
    );
    let settings =
        zstd::decode_all(&std::fs::read(backups.join(&index.kinds["settings"].key)).unwrap()[..])
            .unwrap();
    assert!(String::from_utf8_lossy(&settings).contains("two_factor_requirement_enabled"));

    // Nothing changed: the next run writes nothing new for the organization.
    let files = |dir: &Path| walk(dir);
    let before = files(&backups.join("orgs"));
    let out = run_org(work.path(), &gh, "r2", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files(&backups.join("orgs")), before);
}

/// Five backups of a repository whose data changed each time, a data file a crashed
/// job left unindexed and a release asset no snapshot lists; everything old enough to
/// be pruned. `prune --keep-last 1` leaves one backup, the data snapshots it reads (the
/// newest, and the one current when it was taken) and every file and asset they list,
/// and nothing else under `data/` or `assets/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_releases_data_snapshots_and_assets_no_kept_backup_reads() {
    use repovault_core::{DataIndex, LatestPointer};

    let gh = github().await;
    let spec = repovault_testkit::RepoSpec::new("acme", "api");
    let git = acme_repo(&gh, "api", spec, some_data_and_a_release());
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let latest = || -> LatestPointer {
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/api/latest.json")).unwrap())
            .unwrap()
    };
    let mut indexes = Vec::new();
    for i in 1..=5 {
        if i > 1 {
            let file = format!("day {i}\n");
            fixtures::commit(&git, "main", &[("day.txt", file.as_bytes())], "a day");
            gh.touch("acme", "api");
            let mut comment = format!("comment {i}");
            if i == 2 {
                let url = gh.add_attachment("acme", "api", b"a screenshot of day 2");
                comment.push_str(&format!(" ![day 2]({url})"));
            }
            gh.add_issue_comment("acme", "api", 1, &comment);
        }
        let out = run_org(work.path(), &gh, &format!("r{i}"), &[]).await;
        assert!(out.status.success(), "{}", text(&out));
        indexes.push(latest().data.expect("a data snapshot"));
    }
    indexes.dedup();
    assert_eq!(indexes.len(), 5, "each run read new data: {indexes:?}");
    assert_eq!(backups_of(&backups, "acme", "api").len(), 5);
    let repo_dir = backups.join("repos/acme/api");
    let stray_file = repo_dir.join("data/20200101T000000Z/issues.jsonl.zst");
    std::fs::create_dir_all(stray_file.parent().unwrap()).unwrap();
    std::fs::write(&stray_file, b"left by a job that failed").unwrap();
    let stray_asset = repo_dir.join("assets/999999");
    std::fs::write(&stray_asset, b"of a release deleted since").unwrap();
    let stray_attachment = repo_dir.join(format!("attachments/{}", "0".repeat(64)));
    std::fs::write(&stray_attachment, b"no text names it any more").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    for file in walk(&backups) {
        let handle = std::fs::File::options().write(true).open(&file).unwrap();
        handle.set_modified(old).unwrap();
    }

    let out = repovault(
        work.path(),
        &["prune", "--from", "./backups", "--keep-last", "1"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        backups_of(&backups, "acme", "api").len(),
        1,
        "{}",
        text(&out)
    );
    let stored: Vec<String> = walk(&backups)
        .iter()
        .map(|p| {
            p.strip_prefix(&backups)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let left: Vec<&String> = stored
        .iter()
        .filter(|k| k.starts_with("repos/") && k.ends_with("/index.json"))
        .collect();
    // The newest, and the one current when the kept backup was taken.
    let stamp = |key: &str| key.split('/').nth(4).unwrap().to_owned();
    let kept = backups_of(&backups, "acme", "api")[0].clone();
    let kept_at = kept
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("api-")
        .trim_end_matches(".manifest.json")
        .to_owned();
    let current = indexes
        .iter()
        .filter(|k| stamp(k) <= kept_at)
        .max()
        .unwrap();
    let newest = latest().data.unwrap();
    let mut expected = vec![current, &newest];
    expected.dedup();
    assert_eq!(left, expected, "{}", text(&out));
    // What the kept snapshots list, and nothing else, is under data/ and assets/.
    let mut listed = std::collections::BTreeSet::new();
    for key in &left {
        let index: DataIndex =
            serde_json::from_slice(&std::fs::read(backups.join(key)).unwrap()).unwrap();
        let files = index.kinds.values().chain(index.assets.values());
        let attachments = index.attachments.values().filter_map(|a| a.file.as_ref());
        listed.extend(files.chain(attachments).map(|f| f.key.clone()));
        listed.insert((*key).clone());
    }
    assert!(listed.iter().any(|k| k.contains("/assets/")), "{listed:?}");
    assert!(
        listed.iter().any(|k| k.contains("/attachments/")),
        "{listed:?}"
    );
    let data: std::collections::BTreeSet<String> = stored
        .iter()
        .filter(|k| {
            k.starts_with("repos/")
                && ["/data/", "/assets/", "/attachments/"]
                    .iter()
                    .any(|d| k.contains(d))
        })
        .cloned()
        .collect();
    assert_eq!(data, listed, "{}", text(&out));
    assert!(!stray_file.exists() && !stray_asset.exists() && !stray_attachment.exists());
    // `ls` lists the data snapshots left, the newest as latest.
    let out = repovault(work.path(), &["ls", "acme/api", "--from", "./backups"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("DATA SNAPSHOT"))
        .skip(1)
        .take_while(|l| !l.starts_with("release assets"))
        .collect();
    assert_eq!(rows.len(), left.len(), "{stdout}");
    assert!(rows[0].ends_with("latest"), "{stdout}");

    let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let kept_at = repovault_core::parse_stamp(&kept_at).unwrap().to_string();
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/api",
            "--to",
            "out",
            "--metadata",
            "--at",
            &kept_at,
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(work.path().join("out").read_dir().unwrap().count() > 1);
}
