//! Releases, oldest first (so the newest is the latest again), with their notes, flags
//! and assets uploaded from the backup.

use std::collections::BTreeMap;

use repovault_core::ports::source::Write;
use serde_json::{Value, json};

use crate::issues::number_in_answer;
use crate::journal::{Entry, Journal};
use crate::target::Target;
use crate::{Data, RecoverError, Request};

/// `upload_url` without its URI template (`{?name,label}`), with `name` (and `label`).
fn upload_url(template: &str, name: &str, label: Option<&str>) -> String {
    let base = template.split('{').next().unwrap_or(template);
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.append_pair("name", name);
    if let Some(label) = label {
        url.append_pair("label", label);
    }
    format!("{base}?{}", url.finish())
}

pub(crate) async fn releases(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<bool, RecoverError> {
    if journal.is_done("releases") {
        return Ok(true);
    }
    let api = target.api();
    // Releases made before a kill, by tag (drafts included: the list shows them to
    // whoever may push).
    let existing: BTreeMap<String, Value> = target
        .read_all(&format!("{api}/releases?per_page=100"))
        .await?
        .into_iter()
        .filter_map(|r| Some((r["tag_name"].as_str()?.to_owned(), r)))
        .collect();
    let mut releases: Vec<&Value> = data.items("releases").iter().collect();
    releases.sort_by_key(|r| r["created_at"].as_str().map(str::to_owned));
    for release in releases {
        let (Some(old), Some(tag)) = (release["id"].as_u64(), release["tag_name"].as_str()) else {
            continue;
        };
        if request.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let made = match (journal.releases.get(&old), existing.get(tag)) {
            (Some(new), _) => target
                .read(&format!("{api}/releases/{new}"))
                .await?
                .ok_or_else(|| {
                    RecoverError::Refused(
                        format!("{api}/releases/{new}"),
                        "a release this restore made is gone".into(),
                    )
                })?,
            (None, Some(found)) => found.clone(),
            (None, None) => {
                let body = json!({
                    "tag_name": tag,
                    "target_commitish": release["target_commitish"],
                    "name": release["name"],
                    "body": release["body"],
                    "draft": release["draft"],
                    "prerelease": release["prerelease"],
                });
                target
                    .create("releases", Write::Post, &format!("{api}/releases"), &body)
                    .await?
            }
        };
        let new = number_in_answer(&made, "id", &format!("{api}/releases"))?;
        if !journal.releases.contains_key(&old) {
            journal.record(Entry::Release { old, new })?;
        }
        // Assets there already, by name: (id, whole — uploaded, of the size it should
        // be; an upload cut short leaves one that is not).
        let there: BTreeMap<&str, (u64, &Value)> = made["assets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some((a["name"].as_str()?, (a["id"].as_u64()?, a))))
            .collect();
        for asset in release["assets"].as_array().into_iter().flatten() {
            let (Some(id), Some(name)) = (asset["id"].as_u64(), asset["name"].as_str()) else {
                continue;
            };
            if journal.assets.contains_key(&id) {
                continue;
            }
            if let Some((new, found)) = there.get(name) {
                if found["state"] == "uploaded" && found["size"] == asset["size"] {
                    journal.record(Entry::Asset { old: id, new: *new })?;
                    continue;
                }
                let path = format!("{api}/releases/assets/{new}");
                target.send(Write::Delete, &path, &Value::Null).await?;
            }
            // The file's name is the asset's numeric id, never a stored name.
            let path = data.assets_dir.join(id.to_string());
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    notes.push(format!("release {tag}: asset {name} is not in the backup"));
                    continue;
                }
                Err(e) => return Err(RecoverError::io(&path)(e)),
            };
            let template = made["upload_url"].as_str().unwrap_or("");
            let url = upload_url(template, name, asset["label"].as_str());
            let content_type = asset["content_type"]
                .as_str()
                .unwrap_or("application/octet-stream");
            let written = target.upload(&url, content_type, bytes.into()).await?;
            if written.status != 201 {
                return Err(RecoverError::Refused(url, written.refusal()));
            }
            *target.created.entry("assets").or_default() += 1;
            let new = number_in_answer(&written.body, "id", &url)?;
            journal.record(Entry::Asset { old: id, new })?;
        }
    }
    journal.record(Entry::Done {
        step: "releases".into(),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_url_template_is_filled_and_names_are_encoded() {
        assert_eq!(
            upload_url(
                "https://uploads.github.com/repos/a/b/releases/1/assets{?name,label}",
                "app v1.tar.gz",
                Some("the app")
            ),
            "https://uploads.github.com/repos/a/b/releases/1/assets?name=app+v1.tar.gz&label=the+app"
        );
    }
}
