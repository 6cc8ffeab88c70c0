//! Repositories: creation (empty, with GitHub's default labels), settings, topics.

use serde_json::{Value, json};

use super::super::api::repo_json;
use super::super::metadata::{DEFAULT_LABELS, now};
use super::super::state::{Inner, OwnerKind, RepoEntry, RepoSpec};
use super::issues::label_json;
use super::{At, Done, Fail, Req, Result, Writer};

pub(super) const DOC_CREATE_ORG: &str =
    "https://docs.github.com/rest/repos/repos#create-an-organization-repository";
pub(super) const DOC_CREATE_USER: &str =
    "https://docs.github.com/rest/repos/repos#create-a-repository-for-the-authenticated-user";
pub(super) const DOC_UPDATE: &str = "https://docs.github.com/rest/repos/repos#update-a-repository";
pub(super) const DOC_TOPICS: &str =
    "https://docs.github.com/rest/repos/repos#replace-all-repository-topics";

/// GitHub's name for a new repository: characters other than ASCII letters, digits,
/// `.`, `-` and `_` become `-`, as GitHub replaces them.
fn normalise_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `POST /orgs/{org}/repos`, `POST /user/repos`: an empty repository of `owner`.
pub(super) fn create(w: &Writer, inner: &mut Inner, owner: &str, req: Req) -> Result<Done> {
    let owner = inner
        .owner(owner)
        .cloned()
        .ok_or_else(|| Fail::not_found(req.doc))?;
    let name = normalise_name(&req.required("name")?);
    let creation_failed =
        |error: Value| Fail::failed("Repository creation failed.", req.doc, error);
    // `x.git` and `x.wiki` would be another repository's git paths here.
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 100
        || name.ends_with(".git")
        || name.ends_with(".wiki")
    {
        return Err(creation_failed(
            json!({ "resource": "Repository", "code": "invalid", "field": "name" }),
        ));
    }
    if inner.repo(&owner.login, &name).is_some() {
        return Err(creation_failed(json!({
            "resource": "Repository", "code": "custom", "field": "name",
            "message": "name already exists on this account",
        })));
    }
    let mut spec = RepoSpec::new(&owner.login, &name);
    apply_settings(&mut spec, &req, owner.kind)?;
    let auto_init = req.boolean("auto_init")?.unwrap_or(false);
    // A fresh, empty git repository (whatever a deleted one of that name left).
    let dir = w.shared.root.join(&owner.login).join(format!("{name}.git"));
    for stale in [
        dir.clone(),
        w.shared.root.join(&owner.login).join(format!("{name}.lfs")),
        w.shared
            .root
            .join(&owner.login)
            .join(format!("{name}.wiki.git")),
    ] {
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(Fail::internal)?;
        }
    }
    let git = git2::Repository::init_bare(&dir).map_err(Fail::internal)?;
    git.set_head(&format!("refs/heads/{}", spec.default_branch))
        .map_err(Fail::internal)?;
    if auto_init {
        crate::fixtures::commit(
            &git,
            &spec.default_branch,
            &[("README.md", format!("# {name}\n").as_bytes())],
            "Initial commit",
        );
    }
    let size_kb = if auto_init {
        crate::dir_size_kb(&dir)
    } else {
        0
    };
    let repo = inner.create_repo(spec, now());
    repo.size_kb = size_kb;
    let repo_api = format!("{}/repos/{}/{}", w.api, owner.login, name);
    for (label, color, description) in DEFAULT_LABELS {
        let id = repo.meta.id();
        repo.meta.labels.push(label_json(
            id,
            &repo_api,
            label,
            color,
            Some(description),
            true,
        ));
    }
    Ok(Done::created(
        "repos",
        repo_json(w.shared, w.api, repo, true),
    ))
}

/// The settings a repository is created or updated with (all optional).
fn apply_settings(spec: &mut RepoSpec, req: &Req, owner_kind: OwnerKind) -> Result<()> {
    if req.has("description") {
        spec.description = req.string("description")?;
    }
    if req.has("homepage") {
        spec.homepage = req.string("homepage")?;
    }
    for (field, slot) in [
        ("has_issues", &mut spec.has_issues),
        ("has_projects", &mut spec.has_projects),
        ("has_wiki", &mut spec.has_wiki),
        ("allow_squash_merge", &mut spec.allow_squash_merge),
        ("allow_merge_commit", &mut spec.allow_merge_commit),
        ("allow_rebase_merge", &mut spec.allow_rebase_merge),
        ("delete_branch_on_merge", &mut spec.delete_branch_on_merge),
        ("allow_auto_merge", &mut spec.allow_auto_merge),
    ] {
        if let Some(value) = req.boolean(field)? {
            *slot = value;
        }
    }
    // `visibility` wins over `private`; `internal` is for organizations only.
    match req.string("visibility")?.as_deref() {
        Some("public") => (spec.private, spec.internal) = (false, false),
        Some("private") => (spec.private, spec.internal) = (true, false),
        Some("internal") if owner_kind == OwnerKind::Org => {
            (spec.private, spec.internal) = (true, true);
        }
        Some(other) => {
            return Err(Fail::validation(
                req.doc,
                json!({ "resource": "Repository", "code": "invalid", "field": "visibility", "value": other }),
            ));
        }
        None => {
            if let Some(private) = req.boolean("private")? {
                (spec.private, spec.internal) = (private, false);
            }
        }
    }
    Ok(())
}

/// `PATCH /repos/{owner}/{name}`.
pub(super) fn update(at: &At, repo: &mut RepoEntry, req: Req) -> Result<Done> {
    let mut spec = repo.spec.clone();
    if let Some(name) = req.string("name")?
        && name != spec.name
    {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Repository", "code": "custom", "field": "name",
                    "message": "fake GitHub: renaming a repository is not supported" }),
        ));
    }
    apply_settings(&mut spec, &req, repo.owner_kind)?;
    if let Some(archived) = req.boolean("archived")? {
        spec.archived = archived;
    }
    if let Some(branch) = req.string("default_branch")? {
        let git = at.git()?;
        let has_branches = git
            .branches(Some(git2::BranchType::Local))
            .map_err(Fail::internal)?
            .next()
            .is_some();
        if !has_branches {
            return Err(Fail::validation(
                req.doc,
                json!({ "resource": "Repository", "code": "invalid", "field": "default_branch",
                        "message": "Cannot update default branch for an empty repository. Please init the repository and push first." }),
            ));
        }
        let refname = format!("refs/heads/{branch}");
        if git.find_reference(&refname).is_err() {
            return Err(Fail::validation(
                req.doc,
                json!({ "resource": "Repository", "code": "invalid", "field": "default_branch" }),
            ));
        }
        // Clones check out the default branch: HEAD follows it.
        git.set_head(&refname).map_err(Fail::internal)?;
        spec.default_branch = branch;
    }
    repo.spec = spec;
    Ok(Done::ok(repo_json(at.w.shared, at.w.api, repo, true)))
}

/// A topic as GitHub takes it: `^[a-z0-9][a-z0-9-]{0,49}$`.
fn valid_topic(topic: &str) -> bool {
    let bytes = topic.as_bytes();
    (1..=50).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// `PUT /repos/{owner}/{name}/topics`: replaces every topic (lowercased, as GitHub
/// stores them).
pub(super) fn topics(repo: &mut RepoEntry, req: Req) -> Result<Done> {
    let Some(names) = req.names("names")? else {
        return Err(Fail::invalid(req.doc, "\"names\" wasn't supplied."));
    };
    let mut topics: Vec<String> = Vec::new();
    for name in names {
        let topic = name.trim().to_lowercase();
        if !valid_topic(&topic) {
            return Err(Fail::validation(
                req.doc,
                json!({ "resource": "Repository", "code": "invalid", "field": "topics", "value": name,
                        "message": format!("{name} is not a valid topic. Topics must start with a lowercase letter or number, consist of 50 characters or less, and can include hyphens.") }),
            ));
        }
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    if topics.len() > 20 {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Repository", "code": "invalid", "field": "topics",
                    "message": "A repository cannot have more than 20 topics." }),
        ));
    }
    repo.spec.topics = topics.clone();
    Ok(Done::ok(json!({ "names": topics })))
}
