//! Getting a repository back into a directory: its bare repository (and wiki, and LFS
//! objects), checked against the backup's manifest, and optionally its data beyond
//! git as JSON Lines files.
//!
//! Every path is built from the operator's `owner/name` and `to`, never from stored
//! content: a kind name is checked before it becomes a file name, an asset's file is
//! named by its numeric id. Everything is written into a staging directory beside `to`
//! and moved into place once whole, so a failed restore leaves nothing behind.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::DataFile;
use tokio::io::AsyncWriteExt;

use crate::check::{CheckError, Checked, check_backup};
use crate::error::RepoError;
use crate::repository::Repository;

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest<'p> {
    pub owner: &'p str,
    pub name: &'p str,
    /// The backup (from [`Repository::restore_point`], or an operator's key): it must
    /// be a backup of `owner/name`.
    pub key: &'p str,
    /// A directory that does not exist or is empty.
    pub to: &'p Path,
    /// Also the data beyond git, into `<to>/data/`: the snapshot at or before this
    /// time, or without one the newest (`Some(None)`).
    pub data: Option<Option<Timestamp>>,
}

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    pub checked: Checked,
    /// `<to>/<name>.git`.
    pub repo_dir: PathBuf,
    /// `<to>/<name>.wiki.git`, when the backup has the wiki.
    pub wiki_dir: Option<PathBuf>,
    /// LFS objects written into `<repo_dir>/lfs/objects/`.
    pub lfs_objects: usize,
    /// With `data`: the items written into `<to>/data/` (`None`: no snapshot).
    pub data_items: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Where to restore cannot be used (exists and is not empty, cannot be created).
    #[error("{0}")]
    Destination(String),
    #[error("{key}: {source}")]
    Check { key: String, source: CheckError },
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Write {
        path: path.to_owned(),
        source,
    }
}

impl Repository<'_> {
    /// Restores the backup `request.key` of `request.owner/name` into `request.to`.
    pub async fn restore(&self, request: &RestoreRequest<'_>) -> Result<Restored, RestoreError> {
        let RestoreRequest {
            owner,
            name,
            key,
            to,
            ..
        } = *request;
        Repository::check_names(owner, name)?;
        let own = self
            .layout()
            .parse_backup(key)
            .is_some_and(|b| b.owner == owner && b.repo == name);
        if !own {
            return Err(RepoError::invalid(key, format!("not a backup of {owner}/{name}")).into());
        }
        if to.exists()
            && std::fs::read_dir(to)
                .map_err(write_err(to))?
                .next()
                .is_some()
        {
            return Err(RestoreError::Destination(format!(
                "{} exists and is not empty",
                to.display()
            )));
        }
        let absolute = std::path::absolute(to).map_err(write_err(to))?;
        let parent = absolute.parent().map(Path::to_owned).unwrap_or(absolute);
        std::fs::create_dir_all(&parent).map_err(|e| {
            RestoreError::Destination(format!("creating {}: {e}", parent.display()))
        })?;
        let staging = tempfile::Builder::new()
            .prefix(".repovault-restore-")
            .tempdir_in(&parent)
            .map_err(write_err(&parent))?;
        let checked = check_backup(self, key, Some(staging.path()))
            .await
            .map_err(|source| RestoreError::Check {
                key: key.to_owned(),
                source,
            })?;
        let data_items = match request.data {
            Some(at) => {
                self.restore_data(owner, name, at, &staging.path().join("data"))
                    .await?
            }
            None => None,
        };
        if to.exists() {
            std::fs::remove_dir(to).map_err(write_err(to))?;
        }
        std::fs::rename(staging.keep(), to)
            .map_err(|e| RestoreError::Destination(format!("moving into {}: {e}", to.display())))?;
        Ok(Restored {
            repo_dir: to.join(format!("{name}.git")),
            wiki_dir: checked
                .manifest
                .wiki_refs
                .is_some()
                .then(|| to.join(format!("{name}.wiki.git"))),
            lfs_objects: checked.manifest.stored_lfs().count(),
            data_items,
            checked,
        })
    }

    /// Writes the data snapshot of `owner/name` (the one `at` selects) into `to`: one
    /// JSON Lines file per kind, the index, the release assets and the attachments
    /// (`attachments/<sha256>`, `attachments.json` mapping each URL to its file).
    /// Returns the item count; `None` when there is no snapshot.
    async fn restore_data(
        &self,
        owner: &str,
        name: &str,
        at: Option<Timestamp>,
        to: &Path,
    ) -> Result<Option<u64>, RestoreError> {
        let Some((_, index)) = self.data_snapshot(owner, name, at).await? else {
            return Ok(None);
        };
        let assets = to.join("assets");
        std::fs::create_dir_all(&assets).map_err(write_err(&assets))?;
        let mut total = 0;
        for (kind, file) in &index.kinds {
            // `kind` was checked to be a plain name when the index was read.
            let mut lines = Vec::new();
            for item in self.read_file(file).await? {
                serde_json::to_writer(&mut lines, &item).expect("JSON values serialise");
                lines.push(b'\n');
                total += 1;
            }
            let path = to.join(format!("{kind}.jsonl"));
            std::fs::write(&path, lines).map_err(write_err(&path))?;
        }
        for (id, file) in &index.assets {
            self.restore_file(file, &assets.join(id.to_string()))
                .await?;
        }
        // Attachments under their SHA-256 (names in their URLs are not ours to use),
        // and a map from each URL to its file.
        if !index.attachments.is_empty() {
            let dir = to.join("attachments");
            std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
            let mut map = serde_json::Map::new();
            for (url, attachment) in &index.attachments {
                let entry = match &attachment.file {
                    Some(file) => {
                        // The index was checked: its key names 64 hex digits.
                        let digest = crate::validate::attachment_digest(
                            self.layout(),
                            owner,
                            name,
                            &file.key,
                        )
                        .expect("checked when the index was read");
                        self.restore_file(file, &dir.join(digest)).await?;
                        serde_json::json!({ "file": format!("attachments/{digest}") })
                    }
                    None => serde_json::json!({ "error": attachment.error }),
                };
                map.insert(url.clone(), entry);
            }
            let path = to.join("attachments.json");
            let map = serde_json::to_vec_pretty(&map).expect("JSON values serialise");
            std::fs::write(&path, map).map_err(write_err(&path))?;
        }
        let path = to.join("index.json");
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&index).expect("indexes serialise"),
        )
        .map_err(write_err(&path))?;
        Ok(Some(total))
    }

    /// The stored `file` written to `path`, checked against its size and SHA-256.
    async fn restore_file(&self, file: &DataFile, path: &Path) -> Result<(), RestoreError> {
        let Some((mut body, tally)) = self.read_object(&file.key, file.size).await? else {
            return Err(RepoError::invalid(&file.key, "the file is missing").into());
        };
        let mut out = tokio::fs::File::create(path)
            .await
            .map_err(write_err(path))?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| RepoError::invalid(&file.key, e.to_string()))?;
            out.write_all(&chunk).await.map_err(write_err(path))?;
        }
        out.flush().await.map_err(write_err(path))?;
        crate::data::check_content(file, &tally.finish())?;
        Ok(())
    }
}
