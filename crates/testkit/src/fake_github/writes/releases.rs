//! Releases and their assets. A published release's tag is created in the git
//! repository when it does not exist yet, on `target_commitish`, as GitHub does.

use serde_json::{Value, json};

use super::super::metadata::{RepoMeta, now};
use super::{At, Done, Fail, Req, Result};

pub(super) const DOC_CREATE: &str =
    "https://docs.github.com/rest/releases/releases#create-a-release";
pub(super) const DOC_UPDATE: &str =
    "https://docs.github.com/rest/releases/releases#update-a-release";
pub(super) const DOC_UPLOAD: &str =
    "https://docs.github.com/rest/releases/assets#upload-a-release-asset";

fn release_index(meta: &RepoMeta, id: u64) -> Option<usize> {
    meta.releases.iter().position(|r| r["id"] == id)
}

fn tag_exists(meta: &RepoMeta, tag: &str, except: Option<u64>) -> bool {
    meta.releases
        .iter()
        .any(|r| r["tag_name"] == tag && except.is_none_or(|id| r["id"] != id))
}

/// Creates `refs/tags/<tag>` on `target` (a branch, tag or commit) unless the tag
/// exists. `Err` when neither does.
fn ensure_tag(at: &At, tag: &str, target: &str) -> std::result::Result<(), ()> {
    let git = at.git().map_err(|_| ())?;
    let refname = format!("refs/tags/{tag}");
    if git.find_reference(&refname).is_ok() {
        return Ok(());
    }
    let commit = git
        .revparse_single(target)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| ())?;
    git.reference(&refname, commit.id(), false, "release")
        .map(|_| ())
        .map_err(|_| ())
}

fn bad_target(doc: &str) -> Fail {
    Fail::validation(
        doc,
        json!({ "resource": "Release", "code": "invalid", "field": "target_commitish" }),
    )
}

/// `POST /repos/{o}/{n}/releases`.
pub(super) fn create(at: &At, default_branch: &str, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let tag = req.required("tag_name")?;
    let target = req
        .string("target_commitish")?
        .unwrap_or_else(|| default_branch.to_owned());
    let draft = req.boolean("draft")?.unwrap_or(false);
    let prerelease = req.boolean("prerelease")?.unwrap_or(false);
    if tag.is_empty() || !git2::Reference::is_valid_name(&format!("refs/tags/{tag}")) {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Release", "code": "invalid", "field": "tag_name" }),
        ));
    }
    if tag_exists(meta, &tag, None) {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Release", "code": "already_exists", "field": "tag_name" }),
        ));
    }
    if !draft && ensure_tag(at, &tag, &target).is_err() {
        return Err(bad_target(req.doc));
    }
    let now = now();
    let id = meta.id();
    let release = json!({
        "id": id, "node_id": format!("RE_{id}"), "tag_name": tag, "name": req.string("name")?,
        "body": req.string("body")?, "draft": draft, "prerelease": prerelease, "target_commitish": target,
        "created_at": now, "published_at": if draft { Value::Null } else { json!(now) },
        "author": at.me.clone(),
        "url": format!("{}/releases/{id}", at.api), "html_url": format!("{}/releases/tag/{tag}", at.web),
        "assets_url": format!("{}/releases/{id}/assets", at.api),
        // GitHub's URI template, literally.
        "upload_url": format!("{}/repos/{}/{}/releases/{id}/assets{{?name,label}}", at.w.shared.upload_url, at.owner, at.name),
        "assets": [],
    });
    meta.releases.push(release.clone());
    Ok(Done::created("releases", release))
}

/// `PATCH /repos/{o}/{n}/releases/{id}`: publishing a draft creates its tag.
pub(super) fn update(at: &At, meta: &mut RepoMeta, id: u64, req: Req) -> Result<Done> {
    let index = release_index(meta, id).ok_or_else(|| Fail::not_found(req.doc))?;
    let mut release = meta.releases[index].clone();
    if let Some(tag) = req.string("tag_name")? {
        if tag_exists(meta, &tag, Some(id)) {
            return Err(Fail::validation(
                req.doc,
                json!({ "resource": "Release", "code": "already_exists", "field": "tag_name" }),
            ));
        }
        release["html_url"] = json!(format!("{}/releases/tag/{tag}", at.web));
        release["tag_name"] = json!(tag);
    }
    if let Some(target) = req.string("target_commitish")? {
        release["target_commitish"] = json!(target);
    }
    for field in ["name", "body"] {
        if req.has(field) {
            release[field] = json!(req.string(field)?);
        }
    }
    if let Some(prerelease) = req.boolean("prerelease")? {
        release["prerelease"] = json!(prerelease);
    }
    let was_draft = release["draft"] == true;
    if let Some(draft) = req.boolean("draft")? {
        release["draft"] = json!(draft);
    }
    if release["draft"] != true {
        let tag = release["tag_name"].as_str().unwrap_or_default().to_owned();
        let target = release["target_commitish"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ensure_tag(at, &tag, &target).is_err() {
            return Err(bad_target(req.doc));
        }
        if was_draft {
            release["published_at"] = json!(now());
        }
    }
    meta.releases[index] = release.clone();
    Ok(Done::ok(release))
}

/// An asset's name as GitHub keeps it: characters other than ASCII letters, digits,
/// `.`, `-`, `_` and `+` become `.`, and leading or trailing periods go.
fn asset_name(raw: &str) -> String {
    let replaced: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '.'
            }
        })
        .collect();
    replaced.trim_matches('.').to_owned()
}

/// A new asset of release `id`, its bytes served by `GET releases/assets/{id}`.
pub(super) fn add_asset(
    at: &At,
    meta: &mut RepoMeta,
    id: u64,
    name: Option<String>,
    label: Option<String>,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<Value> {
    let index = release_index(meta, id).ok_or_else(|| Fail::not_found(DOC_UPLOAD))?;
    let Some(raw) = name else {
        return Err(Fail::validation(
            DOC_UPLOAD,
            json!({ "resource": "ReleaseAsset", "code": "missing_field", "field": "name" }),
        ));
    };
    let name = asset_name(&raw);
    if name.is_empty() {
        return Err(Fail::validation(
            DOC_UPLOAD,
            json!({ "resource": "ReleaseAsset", "code": "invalid", "field": "name" }),
        ));
    }
    let taken = meta.releases[index]["assets"]
        .as_array()
        .is_some_and(|assets| assets.iter().any(|a| a["name"] == name.as_str()));
    if taken {
        return Err(Fail::validation(
            DOC_UPLOAD,
            json!({ "resource": "ReleaseAsset", "code": "already_exists", "field": "name" }),
        ));
    }
    let now = now();
    let asset_id = meta.id();
    let release = &mut meta.releases[index];
    let tag = release["tag_name"].as_str().unwrap_or_default().to_owned();
    let asset = json!({
        "id": asset_id, "node_id": format!("RA_{asset_id}"), "name": name,
        "label": label, "content_type": content_type, "state": "uploaded",
        "size": bytes.len(), "download_count": 0, "created_at": now, "updated_at": now,
        "url": format!("{}/releases/assets/{asset_id}", at.api),
        "browser_download_url": format!("{}/releases/download/{tag}/{name}", at.web),
        "uploader": at.me.clone(),
    });
    match release["assets"].as_array_mut() {
        Some(assets) => assets.push(asset.clone()),
        None => release["assets"] = json!([asset.clone()]),
    }
    meta.assets.insert(asset_id, bytes);
    Ok(asset)
}
