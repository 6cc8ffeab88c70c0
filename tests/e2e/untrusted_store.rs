//! What a store holds decides nothing it does not own: `prune` applies each job's
//! policy to the repositories that job selects only, and `restore`, `verify
//! --restore-drill` and `restore --metadata` write nowhere but `--to` (or the drill's
//! scratch directory), whatever a manifest or data index says.

use std::path::Path;

use repovault_core::LatestPointer;
use repovault_testkit::{RepoSpec, fixtures};
use serde_json::Value;

use crate::support::*;

/// Two jobs back up one org into one folder: `a` with `keep-last: 1`, `b` without
/// retention ("keep everything"). `prune --config` thins `a`'s repository only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prune_applies_each_jobs_policy_to_the_repositories_it_selects_only() {
    let gh = github().await;
    gh.add_org("acme");
    for name in ["lecture-jax", "lecture-python-intro"] {
        fixtures::standard_repo(&gh.repo_path("acme", name), name);
        gh.add_repo(RepoSpec::new("acme", name).has_wiki(false));
    }
    let work = tempfile::tempdir().unwrap();
    let api = gh.api_url();
    std::fs::write(
        work.path().join("c.yml"),
        format!(
            "allow-insecure-http: true
jobs:
  - name: a
    source: {{ org: acme, api-url: \"{api}\", include: [\"^lecture-jax$\"] }}
    target: ./backups
    options: {{ wiki: false, metadata: false }}
    retention: {{ keep-last: 1 }}
  - name: b
    source: {{ org: acme, api-url: \"{api}\", include: [\"^lecture-python-intro$\"] }}
    target: ./backups
    options: {{ wiki: false, metadata: false }}
"
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let out = repovault(work.path(), &["run", "--config", "c.yml", "--full"], &[]).await;
        assert!(out.status.success(), "{}", text(&out));
    }
    let backups = work.path().join("backups");
    assert_eq!(backups_of(&backups, "acme", "lecture-jax").len(), 3);
    assert_eq!(
        backups_of(&backups, "acme", "lecture-python-intro").len(),
        3
    );

    let out = repovault(work.path(), &["prune", "--config", "c.yml"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        backups_of(&backups, "acme", "lecture-jax").len(),
        1,
        "{}",
        text(&out)
    );
    assert_eq!(
        backups_of(&backups, "acme", "lecture-python-intro").len(),
        3,
        "a job without retention keeps everything it selects: {}",
        text(&out)
    );
    // Every backup left still restores.
    let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// A working repository beside `out/`, and how it looks: HEAD, config, hooks.
struct Victim {
    dir: std::path::PathBuf,
    state: String,
}

impl Victim {
    fn beside(work: &Path) -> Victim {
        let dir = work.join("victim/repo");
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(&dir)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "my work"]);
        std::fs::write(dir.join(".git/hooks/pre-commit"), "#!/bin/sh\n").unwrap();
        let state = Victim::state_of(&dir);
        Victim { dir, state }
    }

    fn state_of(dir: &Path) -> String {
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_default();
        let mut hooks: Vec<String> = std::fs::read_dir(dir.join(".git/hooks"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        hooks.sort();
        format!(
            "HEAD={} main={} config={} hooks={hooks:?} bare={}",
            read(".git/HEAD"),
            read(".git/refs/heads/main"),
            read(".git/config"),
            dir.join("HEAD").exists()
        )
    }

    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            Victim::state_of(&self.dir),
            self.state,
            "{what} touched the victim"
        );
    }
}

/// The one backup of acme/api in `work/backups`: its manifest's path and key.
fn the_backup(work: &Path) -> (std::path::PathBuf, String) {
    let backups = work.join("backups");
    let manifest = backups_of(&backups, "acme", "api").pop().unwrap();
    let key = manifest
        .strip_prefix(&backups)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (manifest, key)
}

fn rewrite(path: &Path, change: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    change(&mut value);
    std::fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

/// A manifest naming `../victim/repo/` (or an absolute path, or an oid that is not
/// one) steers neither `restore` nor a restore drill: each is refused with the key and
/// the field named, exit 1, and nothing outside `--to` is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manifest_cannot_steer_restore_or_a_drill_outside_where_they_write() {
    let gh = github().await;
    gh.add_org("acme");
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api").has_wiki(false));
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (manifest, key) = the_backup(work.path());
    let good = std::fs::read(&manifest).unwrap();
    let victim = Victim::beside(work.path());
    let absolute = work.path().join("abs");

    // Only the named field changes (the JSON is edited as it is stored).
    type Spoil = Box<dyn Fn(&mut Value)>;
    let spoils: Vec<(&str, Spoil)> = vec![
        (
            "source.name",
            Box::new(|m| m["source"]["name"] = "../victim/repo/".into()),
        ),
        ("source.name", {
            let absolute = absolute.to_string_lossy().into_owned();
            Box::new(move |m| m["source"]["name"] = absolute.clone().into())
        }),
        (
            "lfs[0].oid",
            Box::new(|m| {
                m["lfs"] = serde_json::json!([
                    {"oid": "../../victim/repo/.git/config", "size": 3}
                ])
            }),
        ),
    ];
    for (field, spoil) in spoils {
        std::fs::write(&manifest, &good).unwrap();
        rewrite(&manifest, |m: &mut Value| spoil(m));

        let out = repovault(work.path(), &["restore", "acme/api", "--to", "out"], &[]).await;
        assert_eq!(out.status.code(), Some(1), "{field}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&key) && stderr.contains(field),
            "{field}: {}",
            text(&out)
        );
        assert!(!work.path().join("out").exists(), "{field}: {}", text(&out));
        victim.assert_untouched(field);
        assert!(!absolute.exists() && !work.path().join("abs.git").exists());

        let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
        assert_eq!(out.status.code(), Some(1), "{field}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&key) && stdout.contains(field),
            "{field}: {}",
            text(&out)
        );
        victim.assert_untouched(field);
    }
    // With the manifest back as it was, both work again.
    std::fs::write(&manifest, &good).unwrap();
    let out = repovault(work.path(), &["restore", "acme/api", "--to", "out"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(work.path().join("out/api.git/HEAD").exists());
    victim.assert_untouched("a good restore");
}

/// `acme`'s backup (run `r1`) in a new work directory: it, its `backups/` and the key
/// of `acme/api`'s data index as `latest.json` names it.
async fn backed_up_with_data(
    gh: &repovault_testkit::FakeGitHub,
) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let backups = work.path().join("backups");
    let latest: LatestPointer =
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/api/latest.json")).unwrap())
            .unwrap();
    let index_key = latest.data.expect("a data snapshot");
    (work, backups, index_key)
}

/// A data index whose kind is named `../../x` cannot make `restore --metadata` write
/// `x.jsonl` outside `--to`: refused naming the index and the kind, exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_index_cannot_steer_restore_metadata_outside_to() {
    let gh = github().await;
    gh.add_org("acme");
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api").has_wiki(false));
    let (work, backups, index_key) = backed_up_with_data(&gh).await;
    rewrite(&backups.join(&index_key), |index: &mut Value| {
        let kinds = index["kinds"].as_object_mut().unwrap();
        let labels = kinds.remove("labels").unwrap();
        kinds.insert("../../x".into(), labels);
    });

    let out = repovault(
        work.path(),
        &["restore", "acme/api", "--to", "out", "--metadata"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&index_key) && stderr.contains("\"../../x\""),
        "{}",
        text(&out)
    );
    assert!(!work.path().join("out").exists(), "{}", text(&out));
    assert!(!work.path().join("x.jsonl").exists() && !backups.join("x.jsonl").exists());
    let strays: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".repovault-restore-"))
        .collect();
    assert!(strays.is_empty(), "a failed restore left {strays:?}");
}

/// A data file whose bytes are not the ones its index records (a kind's file swapped
/// for another kind's, still valid zstd JSON Lines; a truncated release asset) is not
/// restored as if it were: `restore --metadata` (exit 1) and `show` (exit 2) name the
/// file, and nothing lands in `--to`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_file_that_is_not_the_one_indexed_is_refused() {
    let gh = github().await;
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api"),
        some_data_and_a_release(),
    );
    let (work, backups, index_key) = backed_up_with_data(&gh).await;
    let index: Value =
        serde_json::from_slice(&std::fs::read(backups.join(&index_key)).unwrap()).unwrap();
    let restore = || {
        repovault(
            work.path(),
            &["restore", "acme/api", "--to", "out", "--metadata"],
            &[],
        )
    };
    let refused = |out: &std::process::Output, code: i32, key: &str| {
        assert_eq!(out.status.code(), Some(code), "{}", text(out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{key}: {}",
            text(out)
        );
        assert!(!work.path().join("out").exists(), "{}", text(out));
    };

    let key_of = |kind: &str| index["kinds"][kind]["key"].as_str().unwrap().to_owned();
    let (labels, issues) = (
        backups.join(key_of("labels")),
        backups.join(key_of("issues")),
    );
    let original = std::fs::read(&labels).unwrap();
    assert_ne!(original, std::fs::read(&issues).unwrap());
    std::fs::copy(&issues, &labels).unwrap();
    refused(&restore().await, 1, &key_of("labels"));
    let out = repovault(work.path(), &["show", "labels", "acme/api"], &[]).await;
    refused(&out, 2, &key_of("labels"));
    std::fs::write(&labels, original).unwrap();

    let (_, asset) = index["assets"].as_object().unwrap().iter().next().unwrap();
    let asset_key = asset["key"].as_str().unwrap();
    let bytes = std::fs::read(backups.join(asset_key)).unwrap();
    std::fs::write(backups.join(asset_key), &bytes[..bytes.len() - 1]).unwrap();
    refused(&restore().await, 1, asset_key);
}
