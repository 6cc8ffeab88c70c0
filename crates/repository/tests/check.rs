//! `check_backup` on first-format archives written the way earlier workers wrote
//! them.

use std::path::Path;

use repovault_core::ports::store::Store;
use repovault_core::{Manifest, RefSet, RepoRef};
use repovault_git::read_refs;
use repovault_local::FsStore;
use repovault_repository::{CheckError, Layout, Repository, check_backup};
use repovault_testkit::first_format;

/// A bare repository with one commit on `main`, made with the git CLI.
fn bare_repo(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("work");
    let run = |args: &[&str], cwd: &Path| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    std::fs::create_dir_all(&work).unwrap();
    run(&["init", "-q", "-b", "main"], &work);
    std::fs::write(work.join("README"), "hello").unwrap();
    run(&["add", "."], &work);
    run(&["commit", "-q", "-m", "one"], &work);
    let bare = dir.join("api.git");
    run(
        &[
            "clone",
            "-q",
            "--mirror",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
        dir,
    );
    bare
}

/// A first-format backup of `bare` in `store`; returns the archive key.
async fn archived(store: &dyn Store, bare: &Path) -> String {
    let at = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let source: RepoRef = serde_json::from_value(serde_json::json!({
        "owner": "acme", "name": "api", "id": 1, "clone_url": "https://github.com/acme/api.git",
        "default_branch": "main", "pushed_at": null, "size_kb": 1, "private": false,
        "archived": false, "fork": false, "has_wiki": false,
    }))
    .unwrap();
    first_format::write_backup(store, "", &source, bare, None, at).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_archive_checks_and_drills_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path());
    let fs = FsStore::new(dir.path().join("store"));
    let store: &dyn Store = &fs;
    let key = archived(store, &bare).await;
    let layout = Layout::new("");
    let repo = Repository::new(store, "");

    let checked = check_backup(&repo, &key, None).await.unwrap();
    assert_eq!(checked.manifest.refs.len(), 1);
    let drill = dir.path().join("drill");
    check_backup(&repo, &key, Some(&drill)).await.unwrap();
    assert_eq!(
        read_refs(&drill.join("api.git")).unwrap().refs,
        read_refs(&bare).unwrap().refs
    );

    // The manifest's refs moved (resealed digest is not needed: refs are checked).
    let manifest_key = layout.manifest_for(&key).unwrap();
    let mut manifest: Manifest = store.get_json(&manifest_key).await.unwrap().unwrap();
    let original = manifest.clone();
    manifest.refs = RefSet::new();
    store.put_json(&manifest_key, &manifest).await.unwrap();
    let err = check_backup(&repo, &key, Some(&dir.path().join("drill-2")))
        .await
        .unwrap_err();
    assert!(matches!(err, CheckError::Repository(_)), "{err}");
    assert!(err.to_string().contains("refs differ"), "{err}");

    // A wrong digest is named, without extracting anything.
    manifest = original;
    manifest.archive.as_mut().unwrap().sha256 = "00".repeat(32);
    store.put_json(&manifest_key, &manifest).await.unwrap();
    let err = check_backup(&repo, &key, None).await.unwrap_err();
    assert!(matches!(err, CheckError::Sha256 { .. }), "{err}");

    store.delete(&manifest_key).await.unwrap();
    let err = check_backup(&repo, &key, None).await.unwrap_err();
    assert!(matches!(err, CheckError::NoManifest(_)), "{err}");
}

/// A manifest is used only when everything in it belongs to the backup that holds it:
/// a name, link, oid or base pointing elsewhere is refused, naming the key and the
/// field, and nothing is written anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_anything_but_its_own_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path());
    let fs = FsStore::new(dir.path().join("store"));
    let store: &dyn Store = &fs;
    let key = archived(store, &bare).await;
    let layout = Layout::new("");
    let repo = Repository::new(store, "");
    let manifest_key = layout.manifest_for(&key).unwrap();
    let original: Manifest = store.get_json(&manifest_key).await.unwrap().unwrap();
    let oid = "ab".repeat(32);
    type Spoil = Box<dyn Fn(&mut Manifest)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "source.name",
            Box::new(|m| m.source.name = "../victim/repo/".into()),
        ),
        (
            "source.name",
            Box::new(|m| m.source.name = "/tmp/abs".into()),
        ),
        ("source.owner", Box::new(|m| m.source.owner = "..".into())),
        (
            "repository",
            Box::new(|m| m.repository = "acme/other".into()),
        ),
        (
            "lfs[0].oid",
            Box::new(move |m| {
                m.lfs = Some(vec![repovault_core::LfsObject {
                    oid: "../../../etc/passwd".into(),
                    size: 1,
                }])
            }),
        ),
        (
            "lfs[0].oid",
            Box::new(|m| {
                m.lfs = Some(vec![repovault_core::LfsObject {
                    oid: "AB".repeat(32),
                    size: 1,
                }])
            }),
        ),
        (
            "bundles[0].key",
            Box::new(move |m| {
                m.bundles = vec![repovault_core::BundleRef {
                    key: "repos/acme/other/packs/20260101T000000Z.bundle".into(),
                    size: 1,
                    sha256: oid.clone(),
                    objects: 1,
                    created_at: m.created_at,
                }]
            }),
        ),
        (
            "base",
            Box::new(|m| m.base = Some("repos/evil/api/api-20260101T000000Z.manifest.json".into())),
        ),
        (
            "refs",
            // As stored: a set read back never passed through `RefSet::insert`.
            Box::new(|m| {
                m.refs =
                    serde_json::from_value(serde_json::json!({ "refs/heads/a\nb": "1".repeat(40) }))
                        .unwrap()
            }),
        ),
        (
            "head",
            Box::new(|m| m.head = Some("refs/heads/../../x".into())),
        ),
    ];
    for (field, spoil) in cases {
        let mut manifest = original.clone();
        spoil(&mut manifest);
        store.put_json(&manifest_key, &manifest).await.unwrap();
        let drill = dir.path().join("drill");
        let err = check_backup(&repo, &key, Some(&drill)).await.unwrap_err();
        let CheckError::Manifest(reason) = &err else {
            panic!("{field}: {err}");
        };
        assert!(reason.starts_with(field), "{field}: {err}");
        assert!(
            !drill.exists(),
            "{field}: the drill wrote {}",
            drill.display()
        );
        assert!(
            !dir.path().join("victim").exists() && !std::path::Path::new("/tmp/abs.git").exists()
        );
    }
}
