//! Rotating a target's keys ([`Repository::rekey`]): each sealed object's age header
//! rewritten for new recipients (the file key unwrapped with the old identities and
//! wrapped again; the nonce and payload kept byte for byte), then every record of what
//! is stored — manifests' chains and LFS digests, `latest.json`'s chain, data indexes —
//! rewritten with the objects' new sizes and digests, and each manifest's `sealed`
//! field re-wrapped the same way.
//!
//! Each object is replaced whole (`Store::replace_stream`), so at every moment it opens
//! with the old identity or the new one. The records are written after the objects
//! of their repository; a rekey stopped in between leaves records naming the old
//! digests (`verify` reports them) until it is run again: a rerun skips what carries
//! its stanza ([`REKEY_STANZA`](crate::REKEY_STANZA)) and finishes the records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use repovault_core::ports::store::{ObjectDigest, ObjectInfo, PutReceipt, meta};
use serde_json::{Map, Value};

use crate::error::RepoError;
use crate::layout::{is_oid, valid_names};
use crate::repository::{Repository, Scope};
use crate::seal::{Rewrap, header_len};

/// How many objects of one repository are rewritten at once.
const IN_FLIGHT: usize = 4;

/// What [`Repository::rekey`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// Objects whose header was rewritten for the new recipients.
    pub rewritten: u64,
    /// Objects an earlier rekey to the same recipients had rewritten.
    pub already: u64,
    /// Objects stored in the clear (before encryption was turned on): left as they are.
    pub plain: u64,
    /// Manifests, pointers and indexes rewritten with the new digests.
    pub records: u64,
    /// Sealed objects (or manifests' `sealed` fields, as `<key>#sealed`) that none of
    /// the identities opens and no rekey to these recipients wrote: left as they are.
    pub foreign: Vec<String>,
}

/// One object's fate.
enum Fate {
    Rewritten(PutReceipt),
    Already(PutReceipt),
    Plain,
    Foreign,
    /// Listed, then gone before it was read (a prune running beside).
    Missing,
}

/// The objects under one directory of the target (a repository's or an
/// organization's) and what their LFS oids' keys are.
struct Group {
    listed: Vec<ObjectInfo>,
    lfs: Option<(String, String)>,
}

impl Repository<'_> {
    /// Re-wraps every sealed object in `scope` (and, for [`Scope::All`], every
    /// organization's data) for this repository's recipients, opening the old headers
    /// with its identities; then rewrites the records that name them. Resumable: run
    /// again after any interruption. Objects in the clear are left in the clear.
    pub async fn rekey(&self, scope: Scope<'_>) -> Result<Rekeyed, RepoError> {
        let mut rekeyed = Rekeyed::default();
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let root = self.layout().repos_root();
        for info in self.store().list(&self.prefix_of(scope)).await? {
            let Some((owner, name)) = info
                .key
                .strip_prefix(&root)
                .and_then(|rest| rest.split('/').next().zip(rest.split('/').nth(1)))
                .filter(|(owner, name)| valid_names(owner, name))
            else {
                tracing::warn!(key = %info.key, "not under a repository's directory; left as it is");
                continue;
            };
            let dir = self.layout().repo_dir(owner, name);
            let lfs = Some((owner.to_owned(), name.to_owned()));
            groups
                .entry(dir)
                .or_insert_with(|| Group {
                    listed: Vec::new(),
                    lfs,
                })
                .listed
                .push(info);
        }
        if matches!(scope, Scope::All) {
            let orgs = format!("{}orgs/", self.layout().prefix());
            for info in self.store().list(&orgs).await? {
                let Some(org) = info
                    .key
                    .strip_prefix(&orgs)
                    .and_then(|r| r.split('/').next())
                else {
                    continue;
                };
                groups
                    .entry(format!("{orgs}{org}/"))
                    .or_insert_with(|| Group {
                        listed: Vec::new(),
                        lfs: None,
                    })
                    .listed
                    .push(info);
            }
        }
        for (dir, group) in groups {
            tracing::info!(%dir, objects = group.listed.len(), "rekeying");
            self.rekey_group(group, &mut rekeyed).await?;
        }
        Ok(rekeyed)
    }

    /// One directory: its records read, its objects re-wrapped (checked against what
    /// the records say of them), then the records rewritten.
    async fn rekey_group(&self, group: Group, rekeyed: &mut Rekeyed) -> Result<(), RepoError> {
        let lfs_key = |oid: &str| {
            let (owner, name) = group.lfs.as_ref()?;
            is_oid(oid).then(|| self.layout().lfs(owner, name, oid))
        };
        let (records, objects): (Vec<&ObjectInfo>, Vec<&ObjectInfo>) =
            group.listed.iter().partition(|o| o.key.ends_with(".json"));
        // The records are read twice (for what they say is stored, then to rewrite
        // them), never held all at once: a repository may have thousands of backups.
        let mut recorded: HashMap<String, PutReceipt> = HashMap::new();
        for info in &records {
            let Some(mut doc) = self.read::<Value>(&info.key).await? else {
                continue;
            };
            digests(&mut doc, &lfs_key, &mut |key, digest| {
                let size = digest.get("size").and_then(Value::as_u64);
                let sha256 = digest.get("sha256").and_then(Value::as_str);
                if let (Some(size), Some(sha256)) = (size, sha256) {
                    recorded.entry(key.to_owned()).or_insert(PutReceipt {
                        size,
                        sha256: sha256.to_owned(),
                    });
                }
            });
        }
        let fates: Vec<(String, Fate)> = futures::stream::iter(objects)
            .map(|info| {
                let expected = recorded.get(&info.key);
                async move {
                    let fate = self.rekey_object(&info.key, expected).await?;
                    Ok::<_, RepoError>((info.key.clone(), fate))
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let mut now: HashMap<String, PutReceipt> = HashMap::new();
        for (key, fate) in fates {
            match fate {
                Fate::Rewritten(receipt) => {
                    rekeyed.rewritten += 1;
                    now.insert(key, receipt);
                }
                Fate::Already(receipt) => {
                    rekeyed.already += 1;
                    now.insert(key, receipt);
                }
                Fate::Plain => rekeyed.plain += 1,
                Fate::Foreign => rekeyed.foreign.push(key),
                Fate::Missing => {}
            }
        }
        for info in records {
            let key = &info.key;
            let Some(mut doc) = self.read::<Value>(key).await? else {
                continue;
            };
            let mut changed = false;
            digests(&mut doc, &lfs_key, &mut |object, digest| {
                if let Some(receipt) = now.get(object) {
                    let size = Value::from(receipt.size);
                    let sha256 = Value::from(receipt.sha256.clone());
                    changed |=
                        digest.get("size") != Some(&size) || digest.get("sha256") != Some(&sha256);
                    digest.insert("size".into(), size);
                    digest.insert("sha256".into(), sha256);
                }
            });
            match self.rewrap_sealed_field(key, &mut doc)? {
                Some(Rewrap::Header { .. }) => changed = true,
                Some(Rewrap::Foreign) => rekeyed.foreign.push(format!("{key}#sealed")),
                _ => {}
            }
            if changed {
                self.store().put_json(key, &doc).await?;
                rekeyed.records += 1;
            }
        }
        Ok(())
    }

    /// A manifest's `sealed` field (an age file in base64) re-wrapped in place.
    fn rewrap_sealed_field(&self, key: &str, doc: &mut Value) -> Result<Option<Rewrap>, RepoError> {
        use base64::Engine;
        use base64::prelude::BASE64_STANDARD;
        let Some(field) = doc.get_mut("sealed") else {
            return Ok(None);
        };
        let sealed = field
            .as_str()
            .and_then(|s| BASE64_STANDARD.decode(s).ok())
            .ok_or_else(|| RepoError::invalid(key, "sealed is not base64"))?;
        let rewrap = self.keys().rewrap(key, &sealed)?;
        if let Rewrap::Header { header, kept } = &rewrap {
            let mut bytes = header.clone();
            bytes.extend_from_slice(&sealed[*kept..]);
            *field = Value::String(BASE64_STANDARD.encode(bytes));
        }
        Ok(Some(rewrap))
    }

    /// One object re-wrapped: its header read (only as much of it as needed), a new
    /// one streamed in its place followed by the rest as stored. What streams past is
    /// checked against `expected` (what the records say is stored); a mismatch fails
    /// the replacement, so the object stays as it was and the rekey stops naming it.
    async fn rekey_object(
        &self,
        key: &str,
        expected: Option<&PutReceipt>,
    ) -> Result<Fate, RepoError> {
        let Some(mut stream) = self.store().get_stream(key).await? else {
            return Ok(Fate::Missing);
        };
        let mut head = BytesMut::new();
        loop {
            let enough = head.len() >= crate::seal::AGE_MAGIC.len()
                && (!head.starts_with(crate::seal::AGE_MAGIC)
                    || header_len(key, &head)?.is_some_and(|len| head.len() >= len + 16));
            if enough {
                break;
            }
            match stream.try_next().await.map_err(read_error(key))? {
                Some(chunk) => head.extend_from_slice(&chunk),
                None => break,
            }
        }
        let head = head.freeze();
        let (header, kept) = match self.keys().rewrap(key, &head)? {
            Rewrap::Plain => return Ok(Fate::Plain),
            Rewrap::Foreign => return Ok(Fate::Foreign),
            Rewrap::Done => {
                drop(stream);
                return Ok(Fate::Already(self.receipt_of(key).await?));
            }
            Rewrap::Header { header, kept } => (header, kept),
        };
        let mut metadata = self
            .store()
            .head(key)
            .await?
            .map(|info| info.metadata)
            .unwrap_or_default();
        metadata.remove(meta::SIZE_BYTES);
        metadata.remove(meta::SHA256);
        let old = Arc::new(Mutex::new(ObjectDigest::default()));
        old.lock().expect("not poisoned").update(&head);
        let tapped = {
            let old = old.clone();
            stream.map_ok(move |chunk| {
                old.lock().expect("not poisoned").update(&chunk);
                chunk
            })
        };
        let expected = expected.cloned();
        let check = futures::stream::once(async move {
            let read = old.lock().expect("not poisoned").clone().finish();
            match expected {
                Some(e) if e.size != read.size || (!e.sha256.is_empty() && e.sha256 != read.sha256) => {
                    Some(Err(std::io::Error::other(format!(
                        "stored {} bytes with SHA-256 {}, its records say {} bytes with {}; left as it is",
                        read.size, read.sha256, e.size, e.sha256
                    ))))
                }
                _ => None,
            }
        })
        .filter_map(futures::future::ready);
        let body = futures::stream::iter([Ok(Bytes::from(header)), Ok(head.slice(kept..))])
            .chain(tapped)
            .chain(check)
            .boxed();
        let receipt = self.store().replace_stream(key, body, &metadata).await?;
        tracing::debug!(key, "rewrapped");
        Ok(Fate::Rewritten(receipt))
    }

    /// The size and SHA-256 of the object at `key` as stored: as the store recorded
    /// them, or (where it has not yet) read and hashed.
    async fn receipt_of(&self, key: &str) -> Result<PutReceipt, RepoError> {
        if let Some(receipt) = self.stored(key).await?
            && !receipt.sha256.is_empty()
        {
            return Ok(receipt);
        }
        let (mut stream, tally) = self
            .read_stored(key, u64::MAX)
            .await?
            .ok_or_else(|| RepoError::invalid(key, "missing"))?;
        while let Some(chunk) = stream.next().await {
            chunk.map_err(read_error(key))?;
        }
        Ok(tally.finish())
    }
}

/// A failed read of the object at `key` as it streams.
fn read_error(key: &str) -> impl Fn(std::io::Error) -> RepoError + '_ {
    move |source| {
        RepoError::Store(repovault_core::ports::store::StoreError::Io {
            key: key.to_owned(),
            source,
        })
    }
}

/// Calls `f` with every record of a stored object in `doc`: each JSON object with a
/// `key`, a `size` and a `sha256` (links, data files, assets, attachments) and each
/// entry of an `lfs_sealed` map (by the key `lfs_key` gives its oid). Keys read here
/// are only looked up among the objects listed, never used to reach anything.
fn digests(
    doc: &mut Value,
    lfs_key: &dyn Fn(&str) -> Option<String>,
    f: &mut dyn FnMut(&str, &mut Map<String, Value>),
) {
    match doc {
        Value::Object(map) => {
            if let Some(key) = map.get("key").and_then(Value::as_str).map(str::to_owned)
                && map.contains_key("size")
                && map.contains_key("sha256")
            {
                f(&key, map);
            }
            for (field, value) in map.iter_mut() {
                match (field.as_str(), value) {
                    ("lfs_sealed", Value::Object(sealed)) => {
                        for (oid, digest) in sealed.iter_mut() {
                            if let (Some(key), Value::Object(digest)) = (lfs_key(oid), digest) {
                                f(&key, digest);
                            }
                        }
                    }
                    (_, value) => digests(value, lfs_key, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| digests(v, lfs_key, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
