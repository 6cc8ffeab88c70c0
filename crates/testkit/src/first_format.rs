//! Backups in the first format, written exactly as repovault wrote them (for every
//! repository until bundle chains, then for servers without git protocol v2 until the
//! fallback wrote chains too): `git clone --mirror` of the repository (and its wiki),
//! a tar of the bare mirrors with `MANIFEST.json` and `metadata/repository.json`,
//! zstd with frame checksums, the manifest beside it with the archive's digest,
//! `latest.json` naming it, and the run's result record (run [`RUN`]). Nothing writes this format any more; stores hold it, so
//! reading it stays tested with these.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use repovault_core::ports::store::{ObjectMetadata, Store, json_bytes, meta};
use repovault_core::{
    ArchiveDigest, BackupFormat, BackupRef, LatestPointer, Manifest, Outcome, RECORD_SCHEMA,
    RefSet, RepoRef, ResultRecord, RunId, WikiOutcome, normalize_prefix, stamp,
};

use crate::FakeGitHub;

/// The run first-format backups are recorded in.
pub const RUN: &str = "first-format";

/// One top-level entry of an archive.
enum Entry {
    /// A directory tree, stored under `name/`.
    Dir { name: String, path: PathBuf },
    /// A small file built in memory.
    File { name: String, bytes: Vec<u8> },
}

/// `entries` as tar + zstd (level 3, frame checksums), as the first format has them.
fn write_archive(entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut encoder = zstd::Encoder::new(Vec::new(), 3)?;
    encoder.include_checksum(true)?;
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    for entry in entries {
        match entry {
            Entry::Dir { name, path } => tar.append_dir_all(name, path)?,
            Entry::File { name, bytes } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, name, bytes.as_slice())?;
            }
        }
    }
    let mut out = tar.into_inner()?.finish()?;
    out.flush()?;
    Ok(out)
}

/// `git clone --mirror <from> <to>` of a local repository.
fn mirror(from: &Path, to: &Path) {
    let out = std::process::Command::new("git")
        .args(["clone", "--mirror", "--quiet", "--no-local"])
        .arg(from)
        .arg(to)
        .output()
        .expect("git");
    assert!(out.status.success(), "git clone --mirror: {out:?}");
}

/// Writes a first-format backup of `source` (its bare repository at `repo`, its wiki's
/// at `wiki`) taken at `at` into `store` under `prefix`, and points `latest.json` at
/// it. Returns the archive's key.
pub async fn write_backup(
    store: &dyn Store,
    prefix: &str,
    source: &RepoRef,
    repo: &Path,
    wiki: Option<&Path>,
    at: Timestamp,
) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let (owner, name) = (&source.owner, &source.name);
    let mirror_dir = scratch.path().join(format!("{name}.git"));
    mirror(repo, &mirror_dir);
    let refs = repovault_git::read_refs(&mirror_dir).unwrap();
    let mut git_bytes = repovault_git::dir_size(&mirror_dir).unwrap();
    let wiki_refs = wiki.map(|wiki| {
        let dir = scratch.path().join(format!("{name}.wiki.git"));
        mirror(wiki, &dir);
        git_bytes += repovault_git::dir_size(&dir).unwrap();
        repovault_git::read_refs(&dir).unwrap().refs
    });
    let mut manifest = Manifest {
        schema: RECORD_SCHEMA,
        repository: source.full_name(),
        created_at: at,
        run_id: RUN.parse::<RunId>().unwrap(),
        tool: "repovault 0.1.0".into(),
        default_branch: source.default_branch.clone(),
        head: refs.head.clone(),
        refs_digest: refs.refs.digest(),
        refs: refs.refs.clone(),
        wiki_refs: wiki_refs.clone(),
        git_bytes,
        source: source.clone(),
        format: BackupFormat::TarZst,
        archive: None,
        bundles: Vec::new(),
        wiki_bundles: Vec::new(),
        base: None,
        lfs: None,
        lfs_missing: Vec::new(),
        lfs_sealed: Default::default(),
    };
    let mut entries = vec![
        Entry::File {
            name: "MANIFEST.json".into(),
            bytes: json_bytes(&manifest).to_vec(),
        },
        Entry::Dir {
            name: format!("{name}.git"),
            path: mirror_dir,
        },
    ];
    if wiki.is_some() {
        entries.push(Entry::Dir {
            name: format!("{name}.wiki.git"),
            path: scratch.path().join(format!("{name}.wiki.git")),
        });
    }
    entries.push(Entry::File {
        name: "metadata/repository.json".into(),
        bytes: json_bytes(source).to_vec(),
    });
    let bytes = write_archive(&entries).unwrap();
    let dir = format!("{}repos/{owner}/{name}/", normalize_prefix(prefix));
    let key = format!("{dir}{name}-{}.tar.zst", stamp(at));
    let manifest_key = format!("{dir}{name}-{}.manifest.json", stamp(at));
    let metadata = ObjectMetadata::from([
        (meta::REPOSITORY.to_owned(), source.full_name()),
        (meta::BACKUP_DATE.to_owned(), at.to_string()),
        (meta::REFS_DIGEST.to_owned(), manifest.refs_digest.clone()),
    ]);
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(bytes)) });
    let receipt = store
        .put_stream(&key, Box::pin(body), &metadata)
        .await
        .unwrap();
    manifest.archive = Some(ArchiveDigest {
        size: receipt.size,
        sha256: receipt.sha256.clone(),
    });
    store.put_json(&manifest_key, &manifest).await.unwrap();
    let backup = BackupRef {
        key: key.clone(),
        manifest_key,
        size: receipt.size,
        sha256: receipt.sha256,
    };
    let record = ResultRecord {
        schema: RECORD_SCHEMA,
        run_id: manifest.run_id.clone(),
        job: owner.clone(),
        owner: owner.clone(),
        name: name.clone(),
        outcome: Outcome::Ok,
        attempt: 1,
        started_at: at,
        finished_at: at,
        backup: Some(backup.clone()),
        refs_count: manifest.refs.len(),
        refs_digest: Some(manifest.refs_digest.clone()),
        wiki_refs_digest: wiki_refs.as_ref().map(RefSet::digest),
        empty: manifest.refs.is_empty(),
        wiki: if wiki.is_some() {
            WikiOutcome::Mirrored
        } else {
            WikiOutcome::Skipped
        },
        error: None,
        data: None,
        lfs: None,
        note: None,
    };
    let record_key = format!(
        "{}runs/{RUN}/results/{owner}/{name}.json",
        normalize_prefix(prefix)
    );
    store.put_json(&record_key, &record).await.unwrap();
    let latest = LatestPointer {
        schema: RECORD_SCHEMA,
        backup,
        refs_digest: manifest.refs_digest.clone(),
        wiki_refs_digest: wiki_refs.as_ref().map(RefSet::digest),
        created_at: at,
        run_id: manifest.run_id.clone(),
        data: None,
        chain: None,
    };
    store
        .put_json(&format!("{dir}latest.json"), &latest)
        .await
        .unwrap();
    key
}

/// A first-format backup, taken at `at`, of every repository of `owner` on the fake
/// (with its wiki where one was written). Returns the archives' keys.
pub async fn back_up_owner(
    github: &FakeGitHub,
    owner: &str,
    store: &dyn Store,
    prefix: &str,
    at: Timestamp,
) -> Vec<String> {
    let mut keys = Vec::new();
    for source in github.repo_refs(owner) {
        let repo = github.repo_path(owner, &source.name);
        let wiki = github.wiki_path(owner, &source.name);
        let wiki = (source.has_wiki && wiki.exists()).then_some(wiki);
        keys.push(write_backup(store, prefix, &source, &repo, wiki.as_deref(), at).await);
    }
    keys
}
