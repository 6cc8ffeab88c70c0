//! What content read back from a store must be before anything is built from it.
//!
//! Whoever can write the store (a compromised worker, a folder copied from elsewhere)
//! can write any bytes under any key. A manifest, pointer or index is used only once
//! every name, key and oid in it belongs to the backup that holds it: the repository
//! its key names, links and LFS objects of that repository, data files of its
//! snapshots. Paths on disk are never built from stored content (see `restore`).

use std::collections::BTreeMap;

use repovault_core::{
    ArchiveDigest, BundleRef, ChainHead, DataIndex, GoneMarker, LatestPointer, LfsObject, Manifest,
    RefSet, ResultRecord, RunId, check_ref_name, is_object_id,
};

use crate::layout::valid_names;
use crate::repository::Outline;

use crate::layout::{Layout, is_oid};

/// A data kind's name as it may appear in an index (and become a file name on
/// restore): lowercase letters, digits and `-`, at most 64.
pub fn is_kind(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && !name.starts_with('-')
}

/// Checks a manifest read from `key`, the backup of `owner/name`: names the field at
/// fault.
pub(crate) fn manifest(
    layout: &Layout,
    owner: &str,
    name: &str,
    m: &Manifest,
) -> Result<(), String> {
    let full = format!("{owner}/{name}");
    if m.repository != full {
        return Err(format!(
            "repository {:?} is not this backup's repository ({full})",
            m.repository
        ));
    }
    if m.source.owner != owner {
        return Err(format!(
            "source.owner {:?} is not this backup's owner ({owner})",
            m.source.owner
        ));
    }
    if m.source.name != name {
        return Err(format!(
            "source.name {:?} is not this backup's repository ({full})",
            m.source.name
        ));
    }
    refs("refs", &m.refs)?;
    if let Some(wiki) = &m.wiki_refs {
        refs("wiki_refs", wiki)?;
    }
    if let Some(head) = &m.head
        && check_ref_name(head).is_err()
    {
        return Err(format!("head {head:?} is not a ref name"));
    }
    if let Some(base) = &m.base {
        let own = layout
            .parse_backup(base)
            .is_some_and(|b| b.owner == owner && b.repo == name);
        if !own {
            return Err(format!("base {base:?} is not a backup of {full}"));
        }
    }
    chain(layout, owner, name, &ChainParts::of_manifest(m))
}

/// What a manifest and `latest.json`'s chain both hold about a chain.
struct ChainParts<'m> {
    bundles: &'m [BundleRef],
    wiki_bundles: &'m [BundleRef],
    lfs: Option<&'m [LfsObject]>,
    lfs_missing: &'m [String],
    lfs_sealed: &'m BTreeMap<String, ArchiveDigest>,
}

impl<'m> ChainParts<'m> {
    fn of_manifest(m: &'m Manifest) -> Self {
        ChainParts {
            bundles: &m.bundles,
            wiki_bundles: &m.wiki_bundles,
            lfs: m.lfs.as_deref(),
            lfs_missing: &m.lfs_missing,
            lfs_sealed: &m.lfs_sealed,
        }
    }

    fn of_outline(o: &'m Outline) -> Self {
        ChainParts {
            bundles: &o.bundles,
            wiki_bundles: &o.wiki_bundles,
            lfs: o.lfs.as_deref(),
            lfs_missing: &o.lfs_missing,
            lfs_sealed: &o.lfs_sealed,
        }
    }

    fn of_head(h: &'m ChainHead) -> Self {
        ChainParts {
            bundles: &h.bundles,
            wiki_bundles: &h.wiki_bundles,
            lfs: h.lfs.as_deref(),
            lfs_missing: &h.lfs_missing,
            lfs_sealed: &h.lfs_sealed,
        }
    }
}

/// The content's SHA-256 an attachment's `key` names, when it is one of
/// `owner/name`'s attachments.
pub(crate) fn attachment_digest<'k>(
    layout: &Layout,
    owner: &str,
    name: &str,
    key: &'k str,
) -> Option<&'k str> {
    let digest = key.rsplit('/').next()?;
    (is_oid(digest) && key == layout.attachment(owner, name, digest)).then_some(digest)
}

/// Checks a manifest's outline (its part in the clear) like a manifest.
pub(crate) fn outline(layout: &Layout, owner: &str, name: &str, o: &Outline) -> Result<(), String> {
    chain(layout, owner, name, &ChainParts::of_outline(o))
}

/// Every link is one of `owner/name`'s, every LFS oid 64 lowercase hex digits.
fn chain(layout: &Layout, owner: &str, name: &str, c: &ChainParts<'_>) -> Result<(), String> {
    let full = format!("{owner}/{name}");
    for (field, links) in [("bundles", c.bundles), ("wiki_bundles", c.wiki_bundles)] {
        for (i, link) in links.iter().enumerate() {
            let own = layout
                .parse_bundle(&link.key)
                .is_some_and(|b| b.owner == owner && b.repo == name);
            if !own {
                return Err(format!(
                    "{field}[{i}].key {:?} is not a link of {full}'s chain",
                    link.key
                ));
            }
        }
    }
    for (i, object) in c.lfs.iter().copied().flatten().enumerate() {
        if !is_oid(&object.oid) {
            return Err(format!(
                "lfs[{i}].oid {:?} is not 64 lowercase hex digits",
                object.oid
            ));
        }
    }
    if let Some(oid) = c.lfs_missing.iter().find(|oid| !is_oid(oid)) {
        return Err(format!(
            "lfs_missing {oid:?} is not 64 lowercase hex digits"
        ));
    }
    if let Some(oid) = c.lfs_sealed.keys().find(|oid| !is_oid(oid)) {
        return Err(format!("lfs_sealed {oid:?} is not 64 lowercase hex digits"));
    }
    Ok(())
}

fn refs(field: &str, refs: &RefSet) -> Result<(), String> {
    if let Some(name) = refs.invalid_name() {
        return Err(format!("{field}: {name:?} is not a ref name"));
    }
    if let Some(oid) = refs.invalid_oid() {
        return Err(format!("{field}: {oid:?} is not an object id"));
    }
    Ok(())
}

/// Checks `latest.json` of `owner/name`.
pub(crate) fn latest(
    layout: &Layout,
    owner: &str,
    name: &str,
    l: &LatestPointer,
) -> Result<(), String> {
    let own = |key: &str| {
        layout
            .parse_backup(key)
            .is_some_and(|b| b.owner == owner && b.repo == name)
    };
    if !own(&l.backup.key) {
        return Err(format!(
            "backup.key {:?} is not a backup of {owner}/{name}",
            l.backup.key
        ));
    }
    if !own(&l.backup.manifest_key) {
        return Err(format!(
            "backup.manifest_key {:?} is not a backup of {owner}/{name}",
            l.backup.manifest_key
        ));
    }
    if let Some(head) = &l.chain {
        chain(layout, owner, name, &ChainParts::of_head(head)).map_err(|e| format!("chain.{e}"))?;
        let tips = head.tips.iter().chain(head.wiki_tips.iter().flatten());
        if let Some(tip) = tips.into_iter().find(|t| !is_object_id(t)) {
            return Err(format!("chain: tip {tip:?} is not an object id"));
        }
    }
    if let Some(data) = &l.data
        && !layout.is_data_index_of(data, owner, name)
    {
        return Err(format!(
            "data {data:?} is not a data snapshot of {owner}/{name}"
        ));
    }
    Ok(())
}

/// Checks a run's record of `owner/name`: it is that run's and that repository's, and
/// the backup it names is one of the repository's.
pub(crate) fn record(
    layout: &Layout,
    run: &RunId,
    owner: &str,
    name: &str,
    r: &ResultRecord,
) -> Result<(), String> {
    if r.run_id != *run {
        return Err(format!(
            "run_id {} is not this record's run ({run})",
            r.run_id
        ));
    }
    if r.owner != owner || r.name != name {
        return Err(format!(
            "{}/{} is not this record's repository ({owner}/{name})",
            r.owner, r.name
        ));
    }
    if let Some(backup) = &r.backup {
        for (field, key) in [("key", &backup.key), ("manifest_key", &backup.manifest_key)] {
            let own = layout
                .parse_backup(key)
                .is_some_and(|b| b.owner == owner && b.repo == name);
            if !own {
                return Err(format!(
                    "backup.{field} {key:?} is not a backup of {owner}/{name}"
                ));
            }
        }
    }
    Ok(())
}

/// Checks a data snapshot's index of `owner/name`.
pub(crate) fn data_index(
    layout: &Layout,
    owner: &str,
    name: &str,
    index: &DataIndex,
) -> Result<(), String> {
    if index.repository != format!("{owner}/{name}") {
        return Err(format!(
            "repository {:?} is not {owner}/{name}",
            index.repository
        ));
    }
    for (kind, file) in &index.kinds {
        if !is_kind(kind) {
            return Err(format!(
                "kinds: {kind:?} is not a kind name (lowercase letters, digits and -)"
            ));
        }
        if !layout.is_data_file_of(&file.key, owner, name, kind) {
            return Err(format!(
                "kinds.{kind}.key {:?} is not a {kind} file of {owner}/{name}",
                file.key
            ));
        }
    }
    for (id, file) in &index.assets {
        if file.key != layout.asset(owner, name, *id) {
            return Err(format!(
                "assets.{id}.key {:?} is not release asset {id} of {owner}/{name}",
                file.key
            ));
        }
    }
    for (url, attachment) in &index.attachments {
        // Its key names its content's SHA-256 (what is stored differs when sealed).
        if let Some(file) = &attachment.file
            && attachment_digest(layout, owner, name, &file.key).is_none()
        {
            return Err(format!(
                "attachments.{url:?}.file.key {:?} is not an attachment of {owner}/{name}",
                file.key
            ));
        }
    }
    Ok(())
}

/// Checks `gone.json`: where a moved repository went must be a repository's name.
pub(crate) fn gone(marker: &GoneMarker) -> Result<(), String> {
    match marker.reason.as_str() {
        "deleted" | "moved" => {}
        other => return Err(format!("reason {other:?} is neither deleted nor moved")),
    }
    if let Some(to) = &marker.to {
        let valid = to.split_once('/').is_some_and(|(o, n)| valid_names(o, n));
        if !valid {
            return Err(format!("to {to:?} is not OWNER/NAME"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_plain_words() {
        assert!(is_kind("issues") && is_kind("issue-comments") && is_kind("branch-protection"));
        for bad in ["../../x", "", "Issues", "a/b", "-x", "a.b", &"x".repeat(65)] {
            assert!(!is_kind(bad), "{bad:?}");
        }
    }
}
