//! The data beyond git as stored: one zstd JSON Lines file per kind and snapshot, an
//! index per snapshot, and the pointers to the newest (`latest.json`'s `data`, and an
//! organization's `orgs/<org>/latest.json`).

use std::io::Read;

use jiff::Timestamp;
use repovault_core::ports::store::{ObjectDigest, PutReceipt};
use repovault_core::{DataFile, DataIndex};
use serde_json::Value;

use crate::error::RepoError;
use crate::repository::{Repository, Scope};
use crate::validate;

/// The most a kind's file may hold decompressed: a store cannot make a reader
/// allocate more than this (a few KiB of zstd can claim gigabytes).
pub const MAX_ITEMS_BYTES: u64 = 4 << 30;

/// `orgs/<org>/latest.json`: the organization's newest data snapshot.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct OrgLatest {
    data: String,
}

impl Repository<'_> {
    /// The data snapshot index at `key` of `owner/name`, checked: every kind a plain
    /// name, every file one of this repository's.
    pub async fn data_index(
        &self,
        owner: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<DataIndex>, RepoError> {
        if !self.layout().is_data_index_of(key, owner, name) {
            return Err(RepoError::invalid(
                key,
                format!("not a data snapshot of {owner}/{name}"),
            ));
        }
        let Some(index) = self.read::<DataIndex>(key).await? else {
            return Ok(None);
        };
        validate::data_index(self.layout(), owner, name, &index)
            .map_err(|reason| RepoError::invalid(key, reason))?;
        Ok(Some(index))
    }

    /// The data snapshot of `owner/name` to read back: the newest at or before `at`, or
    /// without `at` the one `latest.json` names. Returns its key and index.
    pub async fn data_snapshot(
        &self,
        owner: &str,
        name: &str,
        at: Option<Timestamp>,
    ) -> Result<Option<(String, DataIndex)>, RepoError> {
        let key = match at {
            None => self.latest(owner, name).await?.and_then(|l| l.data),
            Some(at) => {
                let objects = self
                    .store()
                    .list(&self.prefix_of(Scope::Repo(owner, name)))
                    .await?;
                self.layout()
                    .data_indexes_among(owner, name, objects.iter().map(|o| o.key.as_str()))
                    .into_iter()
                    .filter(|(t, _)| *t <= at)
                    .max()
                    .map(|(_, key)| key)
            }
        };
        let Some(key) = key else { return Ok(None) };
        let index = self
            .data_index(owner, name, &key)
            .await?
            .ok_or_else(|| RepoError::invalid(&key, "the data snapshot's index is missing"))?;
        Ok(Some((key, index)))
    }

    /// The items of a JSON Lines (zstd) file of a data snapshot, decompressed up to
    /// [`MAX_ITEMS_BYTES`].
    pub async fn read_items(&self, key: &str) -> Result<Vec<Value>, RepoError> {
        let bytes = self
            .store()
            .get_capped(key, MAX_ITEMS_BYTES)
            .await?
            .ok_or_else(|| RepoError::invalid(key, "missing"))?;
        decode_items(key, &self.keys().open(key, bytes)?)
    }

    /// The items of `file` as an index lists it, once the stored file is checked to be
    /// that one: its size and SHA-256.
    pub async fn read_file(&self, file: &DataFile) -> Result<Vec<Value>, RepoError> {
        let key = &file.key;
        let bytes = self
            .store()
            .get_capped(key, MAX_ITEMS_BYTES)
            .await?
            .ok_or_else(|| RepoError::invalid(key, "missing"))?;
        let mut digest = ObjectDigest::default();
        digest.update(&bytes);
        check_content(file, &digest.finish())?;
        decode_items(key, &self.keys().open(key, bytes)?)
    }
}

/// Whether what was read of `file` is what its index recorded: its size, and its
/// SHA-256 where the index has one.
pub(crate) fn check_content(file: &DataFile, read: &PutReceipt) -> Result<(), RepoError> {
    if read.size != file.size {
        return Err(RepoError::invalid(
            &file.key,
            format!("{} bytes, the index records {}", read.size, file.size),
        ));
    }
    if !file.sha256.is_empty() && read.sha256 != file.sha256 {
        return Err(RepoError::invalid(
            &file.key,
            format!("SHA-256 {}, the index records {}", read.sha256, file.sha256),
        ));
    }
    Ok(())
}

/// The items of a zstd JSON Lines file, decompressed up to [`MAX_ITEMS_BYTES`].
fn decode_items(key: &str, bytes: &[u8]) -> Result<Vec<Value>, RepoError> {
    let mut text = Vec::new();
    zstd::Decoder::new(bytes)
        .and_then(|d| d.take(MAX_ITEMS_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| RepoError::invalid(key, format!("not zstd: {e}")))?;
    if text.len() as u64 > MAX_ITEMS_BYTES {
        return Err(RepoError::invalid(
            key,
            format!("decompresses to more than {MAX_ITEMS_BYTES} bytes"),
        ));
    }
    text.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line)
                .map_err(|e| RepoError::invalid(key, format!("a line is not JSON: {e}")))
        })
        .collect()
}

impl Repository<'_> {
    /// Writes `items` at `key` as zstd-compressed JSON Lines, sorted by `id`, sealed
    /// when the repository seals (the index records what is stored).
    pub async fn write_items(
        &self,
        key: &str,
        items: &[Value],
        etag: Option<String>,
    ) -> Result<DataFile, RepoError> {
        let mut sorted: Vec<&Value> = items.iter().collect();
        sorted.sort_by_key(|v| v["id"].as_u64().unwrap_or(0));
        let mut lines = Vec::new();
        for item in sorted {
            serde_json::to_writer(&mut lines, item).expect("JSON values serialise");
            lines.push(b'\n');
        }
        let compressed = zstd::encode_all(lines.as_slice(), 3)
            .map_err(|e| RepoError::invalid(key, format!("compressing: {e}")))?;
        let compressed = self.keys().seal(key, compressed)?;
        let mut digest = ObjectDigest::default();
        digest.update(&compressed);
        let receipt = digest.finish();
        self.store().put(key, compressed.into()).await?;
        Ok(DataFile {
            key: key.to_owned(),
            items: items.len() as u64,
            size: receipt.size,
            sha256: receipt.sha256,
            etag,
        })
    }

    /// Writes a data snapshot's index.
    pub async fn put_data_index(&self, key: &str, index: &DataIndex) -> Result<(), RepoError> {
        self.write(key, index).await
    }

    /// The index key of `org`'s newest data snapshot.
    pub async fn org_latest(&self, org: &str) -> Result<Option<String>, RepoError> {
        let key = self.layout().org_latest(org);
        let Some(latest) = self.read::<OrgLatest>(&key).await? else {
            return Ok(None);
        };
        let dir = format!("{}orgs/{org}/data/", self.layout().prefix());
        if !latest.data.starts_with(&dir) || !latest.data.ends_with("/index.json") {
            return Err(RepoError::invalid(
                &key,
                format!("data {:?} is not a data snapshot of {org}", latest.data),
            ));
        }
        Ok(Some(latest.data))
    }

    /// `org`'s data snapshot index at `key`, checked like a repository's.
    pub async fn org_data_index(
        &self,
        org: &str,
        key: &str,
    ) -> Result<Option<DataIndex>, RepoError> {
        let Some(index) = self.read::<DataIndex>(key).await? else {
            return Ok(None);
        };
        let dir = format!("{}orgs/{org}/data/", self.layout().prefix());
        let problem = if index.repository != org {
            Some(format!("repository {:?} is not {org}", index.repository))
        } else {
            index.kinds.iter().find_map(|(kind, file)| {
                let own = validate::is_kind(kind)
                    && file.key.starts_with(&dir)
                    && file.key.ends_with(&format!("/{kind}.jsonl.zst"));
                (!own).then(|| {
                    format!(
                        "kinds.{kind:?}.key {:?} is not a file of {org}'s data",
                        file.key
                    )
                })
            })
        };
        match problem {
            Some(reason) => Err(RepoError::invalid(key, reason)),
            None => Ok(Some(index)),
        }
    }

    /// Points `orgs/<org>/latest.json` at the index `data`.
    pub async fn set_org_latest(&self, org: &str, data: &str) -> Result<(), RepoError> {
        let latest = OrgLatest {
            data: data.to_owned(),
        };
        self.write(&self.layout().org_latest(org), &latest).await
    }
}
