//! The repository itself: made (or found empty), its branches and tags pushed, its
//! default branch set, its wiki pushed.

use repovault_core::ports::source::Write;
use serde_json::json;

use repovault_git::lfs::UploadAnswer;

use crate::journal::{Entry, Journal};
use crate::target::Target;
use crate::{RecoverError, Request};

/// Creates the target repository, or checks that the existing one may be used.
pub(crate) async fn ensure(
    request: &Request<'_>,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<(), RecoverError> {
    if journal.is_done("repository") {
        return Ok(());
    }
    let source = &request.backup.manifest.source;
    if journal.repository.is_none() {
        let api = target.api();
        if target.read(&api).await?.is_some() {
            // Made by a run killed before it could say so: ours, and still empty.
            let ours = journal.creating && is_empty(target).await?;
            if !ours && !request.options.into_existing && !is_empty(target).await? {
                return Err(RecoverError::NotEmpty(target.full_name()));
            }
            journal.record(Entry::Repository { created: ours })?;
        } else {
            let path = create_path(target).await?;
            journal.record(Entry::Creating)?;
            let body = json!({
                "name": target.name,
                "private": !request.options.public,
                "has_issues": true,
                "has_wiki": source.has_wiki,
            });
            target
                .create("repository", Write::Post, &path, &body)
                .await?;
            journal.record(Entry::Repository { created: true })?;
            (request.progress)(&format!("created {}", target.full_name()));
        }
    }
    if journal.repository == Some(true) {
        if !source.topics.is_empty() {
            let api = format!("{}/topics", target.api());
            let body = json!({ "names": source.topics });
            target.create("topics", Write::Put, &api, &body).await?;
        }
        // Before the push: the restored workflows must not run (and deploy) on it.
        let api = format!("{}/actions/permissions", target.api());
        let written = target
            .send(Write::Put, &api, &json!({ "enabled": false }))
            .await?;
        if written.status >= 300 {
            notes.push(format!(
                "GitHub Actions could not be disabled before the push ({}): the restored workflows may run",
                written.refusal()
            ));
        }
    }
    journal.record(Entry::Done {
        step: "repository".into(),
    })?;
    Ok(())
}

/// Where a repository of the target's owner is created: an organization's, or the
/// token's own user's (GitHub creates a user's repositories only for that user).
async fn create_path(target: &Target<'_>) -> Result<String, RecoverError> {
    let owner = target
        .read(&format!("/users/{}", target.owner))
        .await?
        .ok_or_else(|| {
            RecoverError::Owner(format!("{}: no such user or organization", target.owner))
        })?;
    if owner["type"] == "Organization" {
        return Ok(format!("/orgs/{}/repos", target.owner));
    }
    let me = target.read("/user").await?.unwrap_or_default();
    let login = me["login"].as_str().unwrap_or("");
    if !login.eq_ignore_ascii_case(&target.owner) {
        return Err(RecoverError::Owner(format!(
            "{} is a user other than the token's ({login}): GitHub creates a user's repositories only with that user's token",
            target.owner
        )));
    }
    Ok("/user/repos".into())
}

/// No branch, no issue or pull request, no release.
async fn is_empty(target: &Target<'_>) -> Result<bool, RecoverError> {
    let api = target.api();
    for path in ["branches", "issues?state=all", "releases"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let first = target.read(&format!("{api}/{path}{sep}per_page=1")).await?;
        if first
            .as_ref()
            .and_then(|v| v.as_array())
            .is_some_and(|items| !items.is_empty())
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Pushes branches and tags (never `refs/pull/*`, which GitHub refuses), the heads of
/// pull requests whose branch is gone as `restored/pr/<N>`, then sets the default
/// branch.
pub(crate) async fn push_git(
    request: &Request<'_>,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<(), RecoverError> {
    if journal.is_done("git") {
        return Ok(());
    }
    // In a repository that was there before, what exists is kept as it is: those refs
    // are not pushed at all (git would refuse them, and the push with them).
    let mut existing = std::collections::BTreeMap::new();
    if journal.repository != Some(true) {
        for (kind, prefix) in [("branches", "refs/heads/"), ("tags", "refs/tags/")] {
            let path = format!("{}/{kind}?per_page=100", target.api());
            for item in target.read_all(&path).await? {
                if let Some(name) = item["name"].as_str() {
                    let sha = item["commit"]["sha"].as_str().unwrap_or("").to_owned();
                    existing.insert(format!("{prefix}{name}"), sha);
                }
            }
        }
    }
    let backup = request.backup;
    let mut refspecs: Vec<String> = backup
        .manifest
        .refs
        .iter()
        .filter(|(name, _)| name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
        .map(|(name, _)| format!("{name}:{name}"))
        .collect();
    refspecs.extend(
        backup
            .detached_heads()
            .into_iter()
            .map(|n| format!("refs/pull/{n}/head:refs/heads/restored/pr/{n}")),
    );
    refspecs.retain(|spec| {
        let (from, to) = spec.split_once(':').unwrap_or((spec, spec));
        match existing.get(to) {
            None => true,
            Some(sha) => {
                if backup.manifest.refs.get(from) != Some(sha.as_str()) {
                    notes.push(format!(
                        "{to} is kept as it is in the target, not as the backup has it"
                    ));
                }
                false
            }
        }
    });
    if !refspecs.is_empty() {
        (request.progress)(&format!("pushing {} ref(s)", refspecs.len()));
        let url = format!(
            "{}/{}/{}.git",
            request.git_origin, target.owner, target.name
        );
        repovault_git::restore::push_refs(&backup.repo_dir, &url, &refspecs, request.creds).await?;
        let default = backup
            .manifest
            .head
            .as_deref()
            .and_then(|h| h.strip_prefix("refs/heads/"))
            .or(backup.manifest.default_branch.as_deref());
        if let Some(branch) = default.filter(|b| backup.has_branch(b))
            && journal.repository == Some(true)
        {
            let api = target.api();
            let body = json!({ "default_branch": branch });
            target.create("settings", Write::Patch, &api, &body).await?;
        }
    }
    journal.record(Entry::Done { step: "git".into() })?;
    Ok(())
}

/// Uploads the backup's Git LFS objects through the target's LFS batch API, before
/// the push whose pointers need them (objects the server has are skipped).
pub(crate) async fn upload_lfs(
    request: &Request<'_>,
    target: &Target<'_>,
    journal: &mut Journal,
) -> Result<usize, RecoverError> {
    if journal.is_done("lfs") {
        return Ok(0);
    }
    let objects: Vec<repovault_core::LfsObject> =
        request.backup.manifest.stored_lfs().cloned().collect();
    let mut uploaded = 0;
    if !objects.is_empty() {
        let url = format!(
            "{}/{}/{}.git",
            request.git_origin, target.owner, target.name
        );
        let remote = repovault_git::lfs::LfsRemote::new(&url, request.creds);
        (request.progress)(&format!("uploading {} Git LFS object(s)", objects.len()));
        for chunk in objects.chunks(repovault_git::lfs::BATCH) {
            let answers = remote.upload_batch(chunk).await?;
            if answers.len() != chunk.len() {
                return Err(RecoverError::Refused(
                    format!("{url} (Git LFS)"),
                    format!(
                        "the batch answer covers {} of {} objects",
                        answers.len(),
                        chunk.len()
                    ),
                ));
            }
            for answer in answers {
                match answer {
                    UploadAnswer::Present(_) => {}
                    UploadAnswer::Upload(upload) => {
                        // The file's name is the checked oid, never a stored name.
                        let oid = &upload.object.oid;
                        let path = request
                            .backup
                            .repo_dir
                            .join("lfs/objects")
                            .join(&oid[..2])
                            .join(&oid[2..4])
                            .join(oid);
                        let bytes = std::fs::read(&path).map_err(RecoverError::io(&path))?;
                        remote.upload(&upload, bytes.into()).await?;
                        uploaded += 1;
                    }
                    UploadAnswer::Unavailable(object, why) => {
                        return Err(RecoverError::Refused(
                            format!("Git LFS object {}", object.oid),
                            why,
                        ));
                    }
                }
            }
        }
    }
    journal.record(Entry::Done { step: "lfs".into() })?;
    Ok(uploaded)
}

/// Pushes the wiki's branches. GitHub makes a wiki's repository only when its first
/// page is created on the web: until then the push finds no repository, and the
/// restore says so and leaves the step for a rerun, which pushes over that page.
/// `false`: not done (any failure here is a note: the wiki never stops the rest).
pub(crate) async fn push_wiki(
    request: &Request<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<bool, RecoverError> {
    let Some(wiki) = &request.backup.wiki_dir else {
        return Ok(true);
    };
    if journal.is_done("wiki") {
        return Ok(true);
    }
    // Over the page its owner created to make the wiki exist; never over a wiki that
    // was there before.
    let force = journal.repository == Some(true) || journal.is_done("wiki-missing");
    let refspecs: Vec<String> = request
        .backup
        .manifest
        .wiki_refs
        .iter()
        .flat_map(|refs| refs.iter())
        .filter(|(name, _)| name.starts_with("refs/heads/"))
        .map(|(name, _)| format!("{}{name}:{name}", if force { "+" } else { "" }))
        .collect();
    if !refspecs.is_empty() {
        let base = format!("{}/{}/{}", request.git_origin, request.owner, request.name);
        let url = format!("{base}.wiki.git");
        match repovault_git::restore::push_refs(wiki, &url, &refspecs, request.creds).await {
            Ok(()) => {}
            Err(repovault_git::GitError::NotFound { .. }) => {
                if !journal.is_done("wiki-missing") {
                    journal.record(Entry::Done {
                        step: "wiki-missing".into(),
                    })?;
                }
                notes.push(format!(
                    "wiki: GitHub makes a wiki's repository when its first page is created: create any page at {base}/wiki, then run the same restore again (it pushes the wiki over it)"
                ));
                return Ok(false);
            }
            Err(e) => {
                notes.push(format!(
                    "wiki: not pushed ({e}); run the same restore again to retry"
                ));
                return Ok(false);
            }
        }
    }
    journal.record(Entry::Done {
        step: "wiki".into(),
    })?;
    Ok(true)
}
