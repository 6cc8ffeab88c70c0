//! `verify::check_backup` on archives written the way the worker writes them.

use std::path::Path;

use repovault_core::ports::store::{ObjectMetadata, Store};
use repovault_core::{ArchiveDigest, Layout, Manifest, RefSet, RepoRef};
use repovault_git::archive::{ArchiveOptions, Entry, stream_archive};
use repovault_git::verify::{CheckError, check_backup};
use repovault_git::{dir_size, read_refs};
use repovault_local::FsStore;

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

/// Archives `bare` into `store` with its manifest; returns the archive key.
async fn archived(store: &dyn Store, bare: &Path) -> String {
    let layout = Layout::new("");
    let at = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    let refs = read_refs(bare).unwrap();
    let source: RepoRef = serde_json::from_value(serde_json::json!({
        "owner": "acme", "name": "api", "id": 1, "clone_url": "https://github.com/acme/api.git",
        "default_branch": "main", "pushed_at": null, "size_kb": 1, "private": false,
        "archived": false, "fork": false, "has_wiki": false,
    }))
    .unwrap();
    let mut manifest = Manifest {
        schema: 1,
        repository: "acme/api".into(),
        created_at: at,
        run_id: "r1".parse().unwrap(),
        tool: "test".into(),
        default_branch: Some("main".into()),
        head: refs.head.clone(),
        refs_digest: refs.refs.digest(),
        refs: refs.refs,
        wiki_refs: None,
        git_bytes: dir_size(bare).unwrap(),
        source,
        format: repovault_core::BackupFormat::TarZst,
        archive: None,
        bundles: Vec::new(),
        wiki_bundles: Vec::new(),
        base: None,
        lfs: None,
        lfs_missing: vec![],
    };
    let key = layout.archive("acme", "api", at);
    let entries = vec![Entry::Dir {
        name: "api.git".into(),
        path: bare.to_owned(),
    }];
    let receipt = store
        .put_stream(
            &key,
            stream_archive(entries, ArchiveOptions::default()),
            &ObjectMetadata::new(),
        )
        .await
        .unwrap();
    manifest.archive = Some(ArchiveDigest {
        size: receipt.size,
        sha256: receipt.sha256,
    });
    store
        .put_json(&layout.manifest("acme", "api", at), &manifest)
        .await
        .unwrap();
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_archive_checks_and_drills_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path());
    let fs = FsStore::new(dir.path().join("store"));
    let store: &dyn Store = &fs;
    let key = archived(store, &bare).await;
    let layout = Layout::new("");

    let checked = check_backup(store, &layout, &key, None).await.unwrap();
    assert_eq!(checked.manifest.refs.len(), 1);
    let drill = dir.path().join("drill");
    check_backup(store, &layout, &key, Some(&drill))
        .await
        .unwrap();
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
    let err = check_backup(store, &layout, &key, Some(&dir.path().join("drill-2")))
        .await
        .unwrap_err();
    assert!(matches!(err, CheckError::Repository(_)), "{err}");
    assert!(err.to_string().contains("refs differ"), "{err}");

    // A wrong digest is named, without extracting anything.
    manifest = original;
    manifest.archive.as_mut().unwrap().sha256 = "00".repeat(32);
    store.put_json(&manifest_key, &manifest).await.unwrap();
    let err = check_backup(store, &layout, &key, None).await.unwrap_err();
    assert!(matches!(err, CheckError::Sha256 { .. }), "{err}");

    store.delete(&manifest_key).await.unwrap();
    let err = check_backup(store, &layout, &key, None).await.unwrap_err();
    assert!(matches!(err, CheckError::NoManifest(_)), "{err}");
}
