//! Labels, milestones, issues, issue comments and pull requests, written in the
//! generated objects' shapes (see [`super::super::metadata`]).

use serde_json::{Value, json};

use super::super::metadata::{RepoMeta, encode_segment, now, user_of};
use super::{At, Done, Fail, Req, Result, assignable, collaborator};

pub(super) const DOC_LABEL_CREATE: &str =
    "https://docs.github.com/rest/issues/labels#create-a-label";
pub(super) const DOC_LABEL_UPDATE: &str =
    "https://docs.github.com/rest/issues/labels#update-a-label";
pub(super) const DOC_MILESTONE_CREATE: &str =
    "https://docs.github.com/rest/issues/milestones#create-a-milestone";
pub(super) const DOC_MILESTONE_UPDATE: &str =
    "https://docs.github.com/rest/issues/milestones#update-a-milestone";
pub(super) const DOC_MILESTONE_DELETE: &str =
    "https://docs.github.com/rest/issues/milestones#delete-a-milestone";
pub(super) const DOC_ISSUE_CREATE: &str =
    "https://docs.github.com/rest/issues/issues#create-an-issue";
pub(super) const DOC_ISSUE_UPDATE: &str =
    "https://docs.github.com/rest/issues/issues#update-an-issue";
pub(super) const DOC_COMMENT_CREATE: &str =
    "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
pub(super) const DOC_PULL_CREATE: &str =
    "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
pub(super) const DOC_PULL_UPDATE: &str =
    "https://docs.github.com/rest/pulls/pulls#update-a-pull-request";

/// The colour GitHub gives a label created without one (as for an unknown label
/// name on an issue).
const DEFAULT_COLOR: &str = "ededed";

/// A label with GitHub's fields.
pub(crate) fn label_json(
    id: u64,
    repo_api: &str,
    name: &str,
    color: &str,
    description: Option<&str>,
    default: bool,
) -> Value {
    json!({
        "id": id, "node_id": format!("LA_{id}"),
        "url": format!("{repo_api}/labels/{}", encode_segment(name)),
        "name": name, "color": color, "default": default, "description": description,
    })
}

fn valid_color(color: &str) -> bool {
    color.len() == 6 && color.bytes().all(|b| b.is_ascii_hexdigit())
}

fn label_index(meta: &RepoMeta, name: &str) -> Option<usize> {
    meta.labels.iter().position(|l| {
        l["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// `POST /repos/{o}/{n}/labels`.
pub(super) fn create_label(at: &At, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let name = req.required("name")?;
    let color = req
        .string("color")?
        .unwrap_or_else(|| DEFAULT_COLOR.to_owned());
    if !valid_color(&color) {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Label", "code": "invalid", "field": "color" }),
        ));
    }
    if label_index(meta, &name).is_some() {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Label", "code": "already_exists", "field": "name" }),
        ));
    }
    let description = req.string("description")?;
    let id = meta.id();
    let label = label_json(id, &at.api, &name, &color, description.as_deref(), false);
    meta.labels.push(label.clone());
    Ok(Done::created("labels", label))
}

/// `PATCH /repos/{o}/{n}/labels/{name}` (`new_name`, `color`, `description`); the
/// issues carrying the label show the change.
pub(super) fn update_label(at: &At, meta: &mut RepoMeta, name: &str, req: Req) -> Result<Done> {
    let index = label_index(meta, name).ok_or_else(|| Fail::not_found(req.doc))?;
    let new_name = match req.string("new_name")? {
        Some(n) => Some(n),
        None => req.string("name")?,
    };
    if let Some(new_name) = &new_name
        && label_index(meta, new_name).is_some_and(|other| other != index)
    {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Label", "code": "already_exists", "field": "name" }),
        ));
    }
    let color = req.string("color")?;
    if color.as_deref().is_some_and(|c| !valid_color(c)) {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Label", "code": "invalid", "field": "color" }),
        ));
    }
    let label = &mut meta.labels[index];
    if let Some(new_name) = new_name {
        label["url"] = json!(format!("{}/labels/{}", at.api, encode_segment(&new_name)));
        label["name"] = json!(new_name);
    }
    if let Some(color) = color {
        label["color"] = json!(color);
    }
    if req.has("description") {
        label["description"] = json!(req.string("description")?);
    }
    let label = label.clone();
    for issue in &mut meta.issues {
        if let Some(labels) = issue["labels"].as_array_mut() {
            for l in labels.iter_mut().filter(|l| l["id"] == label["id"]) {
                *l = label.clone();
            }
        }
    }
    Ok(Done::ok(label))
}

/// A milestone `state`, checked.
fn milestone_state(req: &Req) -> Result<Option<String>> {
    match req.string("state")? {
        Some(s) if s != "open" && s != "closed" => Err(Fail::validation(
            req.doc,
            json!({ "value": s, "resource": "Milestone", "code": "invalid", "field": "state" }),
        )),
        state => Ok(state),
    }
}

/// `due_on` as GitHub takes it (an ISO 8601 time), written back in UTC; `None` when
/// not given, `Some(None)` when cleared.
fn due_on(req: &Req) -> Result<Option<Option<String>>> {
    if !req.has("due_on") {
        return Ok(None);
    }
    match req.string("due_on")? {
        None => Ok(Some(None)),
        Some(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => Ok(Some(Some(
                jiff::Timestamp::from_second(t.as_second())
                    .expect("valid")
                    .to_string(),
            ))),
            Err(_) => Err(Fail::validation(
                req.doc,
                json!({ "value": s, "resource": "Milestone", "code": "invalid", "field": "due_on" }),
            )),
        },
    }
}

fn milestone_index(meta: &RepoMeta, number: u64) -> Option<usize> {
    meta.milestones.iter().position(|m| m["number"] == number)
}

/// Recounts every milestone's open and closed issues, and shows each milestone as it
/// is now in the issues that carry it.
fn refresh_milestones(meta: &mut RepoMeta) {
    for milestone in &mut meta.milestones {
        let number = milestone["number"].clone();
        let of_it = |state: &str| {
            meta.issues
                .iter()
                .filter(|i| i["milestone"]["number"] == number && i["state"] == state)
                .count()
        };
        let (open, closed) = (of_it("open"), of_it("closed"));
        milestone["open_issues"] = json!(open);
        milestone["closed_issues"] = json!(closed);
    }
    for issue in &mut meta.issues {
        if let Some(number) = issue["milestone"]["number"].as_u64() {
            issue["milestone"] = meta
                .milestones
                .iter()
                .find(|m| m["number"] == number)
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
}

/// `POST /repos/{o}/{n}/milestones`: the next number, never reused.
pub(super) fn create_milestone(at: &At, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let title = req.required("title")?;
    let state = milestone_state(&req)?.unwrap_or_else(|| "open".to_owned());
    let due_on = due_on(&req)?.flatten();
    if meta.milestones.iter().any(|m| m["title"] == title.as_str()) {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Milestone", "code": "already_exists", "field": "title" }),
        ));
    }
    let now = now();
    let number = meta.next_milestone();
    let id = meta.id();
    let milestone = json!({
        "id": id, "node_id": format!("MI_{id}"), "number": number, "title": title, "state": state,
        "description": req.string("description")?, "url": format!("{}/milestones/{number}", at.api),
        "html_url": format!("{}/milestone/{number}", at.web), "creator": at.me.clone(),
        "open_issues": 0, "closed_issues": 0,
        "created_at": now, "updated_at": now, "due_on": due_on,
        "closed_at": if state == "closed" { json!(now) } else { Value::Null },
    });
    meta.milestones.push(milestone.clone());
    Ok(Done::created("milestones", milestone))
}

/// `PATCH /repos/{o}/{n}/milestones/{number}`.
pub(super) fn update_milestone(meta: &mut RepoMeta, number: u64, req: Req) -> Result<Done> {
    let index = milestone_index(meta, number).ok_or_else(|| Fail::not_found(req.doc))?;
    let title = req.string("title")?;
    if let Some(title) = &title
        && meta
            .milestones
            .iter()
            .any(|m| m["title"] == title.as_str() && m["number"] != number)
    {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "Milestone", "code": "already_exists", "field": "title" }),
        ));
    }
    let state = milestone_state(&req)?;
    let due_on = due_on(&req)?;
    let now = now();
    let milestone = &mut meta.milestones[index];
    if let Some(title) = title {
        milestone["title"] = json!(title);
    }
    if req.has("description") {
        milestone["description"] = json!(req.string("description")?);
    }
    if let Some(due_on) = due_on {
        milestone["due_on"] = json!(due_on);
    }
    if let Some(state) = state
        && milestone["state"] != state.as_str()
    {
        milestone["closed_at"] = if state == "closed" {
            json!(now)
        } else {
            Value::Null
        };
        milestone["state"] = json!(state);
    }
    milestone["updated_at"] = json!(now);
    refresh_milestones(meta);
    Ok(Done::ok(meta.milestones[index].clone()))
}

/// `DELETE /repos/{o}/{n}/milestones/{number}`: its issues keep no milestone.
pub(super) fn delete_milestone(meta: &mut RepoMeta, number: u64) -> Result<Done> {
    let index =
        milestone_index(meta, number).ok_or_else(|| Fail::not_found(DOC_MILESTONE_DELETE))?;
    meta.milestones.remove(index);
    for issue in &mut meta.issues {
        if issue["milestone"]["number"] == number {
            issue["milestone"] = Value::Null;
        }
    }
    Ok(Done::no_content())
}

/// The labels named on an issue, created (GitHub's default colour, no description)
/// when the repository has none of that name.
fn labels_named(at: &At, meta: &mut RepoMeta, names: &[String]) -> Vec<Value> {
    let mut labels: Vec<Value> = Vec::new();
    for name in names {
        let label = match label_index(meta, name) {
            Some(i) => meta.labels[i].clone(),
            None => {
                let id = meta.id();
                let label = label_json(id, &at.api, name, DEFAULT_COLOR, None, false);
                meta.labels.push(label.clone());
                label
            }
        };
        if !labels.iter().any(|l| l["id"] == label["id"]) {
            labels.push(label);
        }
    }
    labels
}

/// The `milestone` of an issue: `None` when not given, `Some(Null)` when cleared,
/// `422` for a number the repository does not have.
fn milestone_of(meta: &RepoMeta, req: &Req, resource: &str) -> Result<Option<Value>> {
    let Some(value) = req.json.get("milestone") else {
        return Ok(None);
    };
    let number = match value {
        Value::Null => return Ok(Some(Value::Null)),
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        other => return Err(req.type_error("milestone", other, "an integer")),
    };
    match number.and_then(|n| milestone_index(meta, n)) {
        Some(i) => Ok(Some(meta.milestones[i].clone())),
        None => Err(Fail::validation(
            req.doc,
            json!({ "value": value, "resource": resource, "field": "milestone", "code": "invalid" }),
        )),
    }
}

/// The assignees asked for (`assignees`, or the older `assignee`), keeping only those
/// who may be assigned: GitHub drops the others without a word.
fn assignees_of(at: &At, meta: &RepoMeta, req: &Req) -> Result<Option<Vec<Value>>> {
    let logins = match (req.names("assignees")?, req.string("assignee")?) {
        (Some(logins), _) => logins,
        (None, Some(login)) => vec![login],
        (None, None) if req.has("assignees") || req.has("assignee") => vec![],
        (None, None) => return Ok(None),
    };
    let mut users: Vec<Value> = Vec::new();
    for login in logins.iter().filter(|l| assignable(meta, l)) {
        let user = match collaborator(meta, login) {
            Some(c) => user_of(
                c["login"].as_str().unwrap_or(login),
                c["id"].as_u64().unwrap_or(0),
            ),
            None => at.me.clone(),
        };
        if !users.iter().any(|u| u["login"] == user["login"]) {
            users.push(user);
        }
    }
    Ok(Some(users))
}

fn issue_index(meta: &RepoMeta, number: u64) -> Option<usize> {
    meta.issues.iter().position(|i| i["number"] == number)
}

/// An event on issue `issue`, as the generated ones (`labeled`, `closed`…).
fn event(at: &At, meta: &mut RepoMeta, kind: &str, issue: &Value, extra: Value) {
    let id = meta.id();
    let prefix = match kind {
        "labeled" => "LE",
        "unlabeled" => "UNLE",
        "closed" => "CE",
        "reopened" => "REE",
        _ => "E",
    };
    let mut event = json!({
        "id": id, "node_id": format!("{prefix}_{id}"), "event": kind,
        "actor": at.me.clone(), "created_at": now(),
        "issue": { "number": issue["number"].clone(), "title": issue["title"].clone() },
        "url": format!("{}/issues/events/{id}", at.api),
    });
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    meta.issue_events.push(event);
}

/// A new open issue (a pull request's issue when `pull`) with GitHub's fields.
#[allow(clippy::too_many_arguments)]
fn issue_json(
    at: &At,
    id: u64,
    number: u64,
    title: &str,
    body: Option<String>,
    labels: Vec<Value>,
    milestone: Value,
    assignees: Vec<Value>,
    pull: bool,
) -> Value {
    let now = now();
    let mut issue = json!({
        "id": id, "node_id": format!("I_{id}"), "number": number,
        "url": format!("{}/issues/{number}", at.api),
        "html_url": format!("{}/{}/{number}", at.web, if pull { "pull" } else { "issues" }),
        "title": title, "body": body, "user": at.me.clone(), "labels": labels,
        "state": "open", "state_reason": null, "locked": false,
        "assignee": assignees.first().cloned(), "assignees": assignees, "milestone": milestone,
        "comments": 0, "created_at": now, "updated_at": now, "closed_at": null,
        "author_association": at.association, "reactions": { "total_count": 0 },
    });
    if pull {
        issue["pull_request"] = json!({
            "url": format!("{}/pulls/{number}", at.api),
            "html_url": format!("{}/pull/{number}", at.web),
        });
    }
    issue
}

/// `POST /repos/{o}/{n}/issues`.
pub(super) fn create_issue(at: &At, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let title = req.required("title")?;
    let body = req.string("body")?;
    let milestone = milestone_of(meta, &req, "Issue")?.unwrap_or(Value::Null);
    let assignees = assignees_of(at, meta, &req)?.unwrap_or_default();
    let names = req.names("labels")?.unwrap_or_default();
    let labels = labels_named(at, meta, &names);
    let number = meta.next_number();
    let id = meta.id();
    let issue = issue_json(
        at, id, number, &title, body, labels, milestone, assignees, false,
    );
    for label in issue["labels"].as_array().into_iter().flatten() {
        let extra = json!({ "label": { "name": label["name"].clone() } });
        event(at, meta, "labeled", &issue, extra);
    }
    meta.issues.push(issue);
    // The milestone it carries counts it already.
    refresh_milestones(meta);
    let issue = meta.issues.last().cloned().expect("pushed above");
    Ok(Done::created("issues", issue))
}

/// An issue or pull request `state`, checked.
fn state_of(req: &Req, resource: &str) -> Result<Option<String>> {
    match req.string("state")? {
        Some(s) if s != "open" && s != "closed" => Err(Fail::validation(
            req.doc,
            json!({ "value": s, "resource": resource, "field": "state", "code": "invalid" }),
        )),
        state => Ok(state),
    }
}

/// `PATCH /repos/{o}/{n}/issues/{number}`: a pull request's issue too (its pull
/// request follows).
pub(super) fn update_issue(at: &At, meta: &mut RepoMeta, number: u64, req: Req) -> Result<Done> {
    let index = issue_index(meta, number).ok_or_else(|| Fail::not_found(req.doc))?;
    let state = state_of(&req, "Issue")?;
    let reason = req.string("state_reason")?;
    if let Some(r) = &reason
        && !matches!(r.as_str(), "completed" | "not_planned" | "reopened")
    {
        return Err(Fail::validation(
            req.doc,
            json!({ "value": r, "resource": "Issue", "field": "state_reason", "code": "invalid" }),
        ));
    }
    let title = req.string("title")?;
    let milestone = milestone_of(meta, &req, "Issue")?;
    let assignees = assignees_of(at, meta, &req)?;
    let labels = match req.names("labels")? {
        Some(names) => Some(labels_named(at, meta, &names)),
        None if req.has("labels") => Some(vec![]),
        None => None,
    };
    let now = now();
    let mut issue = meta.issues[index].clone();
    let pull = issue.get("pull_request").is_some();
    if let Some(title) = title {
        issue["title"] = json!(title);
    }
    if req.has("body") {
        issue["body"] = json!(req.string("body")?);
    }
    if let Some(milestone) = milestone {
        issue["milestone"] = milestone;
    }
    if let Some(assignees) = assignees {
        issue["assignee"] = assignees.first().cloned().unwrap_or(Value::Null);
        issue["assignees"] = json!(assignees);
    }
    if let Some(labels) = labels {
        let had: Vec<Value> = issue["labels"].as_array().cloned().unwrap_or_default();
        for label in labels
            .iter()
            .filter(|l| !had.iter().any(|h| h["id"] == l["id"]))
        {
            let extra = json!({ "label": { "name": label["name"].clone() } });
            event(at, meta, "labeled", &issue, extra);
        }
        for label in had
            .iter()
            .filter(|h| !labels.iter().any(|l| l["id"] == h["id"]))
        {
            let extra = json!({ "label": { "name": label["name"].clone() } });
            event(at, meta, "unlabeled", &issue, extra);
        }
        issue["labels"] = json!(labels);
    }
    let was = issue["state"].as_str().unwrap_or("open").to_owned();
    match state.as_deref() {
        Some("closed") if was != "closed" => {
            issue["state"] = json!("closed");
            issue["closed_at"] = json!(now);
            // Pull requests have no reason to be closed.
            issue["state_reason"] = if pull {
                Value::Null
            } else {
                json!(reason.as_deref().unwrap_or("completed"))
            };
            event(at, meta, "closed", &issue, json!({ "commit_id": null }));
        }
        Some("open") if was != "open" => {
            issue["state"] = json!("open");
            issue["closed_at"] = Value::Null;
            issue["state_reason"] = if pull { Value::Null } else { json!("reopened") };
            event(at, meta, "reopened", &issue, json!({}));
        }
        _ => {
            if let Some(reason) = reason
                && !pull
                && issue["state"] == "closed"
            {
                issue["state_reason"] = json!(reason);
            }
        }
    }
    issue["updated_at"] = json!(now);
    if pull && let Some(p) = meta.pulls.iter_mut().find(|p| p["number"] == number) {
        for field in ["state", "title", "body", "closed_at", "updated_at"] {
            p[field] = issue[field].clone();
        }
    }
    meta.issues[index] = issue;
    refresh_milestones(meta);
    Ok(Done::ok(meta.issues[index].clone()))
}

/// `POST /repos/{o}/{n}/issues/{number}/comments` (pull requests' too).
pub(super) fn create_comment(at: &At, meta: &mut RepoMeta, number: u64, req: Req) -> Result<Done> {
    if issue_index(meta, number).is_none() {
        return Err(Fail::not_found(req.doc));
    }
    let body = req.required("body")?;
    let comment = meta.comment_as(
        at.w.api,
        &at.owner,
        &at.name,
        number,
        &body,
        at.me.clone(),
        at.association,
    );
    Ok(Done::created("issue-comments", comment))
}

/// The commit branch `name` points at.
fn branch_tip(git: &git2::Repository, name: &str) -> Option<git2::Oid> {
    git.find_reference(&format!("refs/heads/{name}"))
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

/// `POST /repos/{o}/{n}/pulls`: `head` and `base` are branches of the real git
/// repository (`head` may be `owner:branch`); the pull request's issue joins the
/// issues, numbered from the same sequence.
pub(super) fn create_pull(at: &At, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let title = req.required("title")?;
    let head = req.required("head")?;
    let base = req.required("base")?;
    let body = req.string("body")?;
    let draft = req.boolean("draft")?.unwrap_or(false);
    let invalid =
        |field: &str| json!({ "resource": "PullRequest", "field": field, "code": "invalid" });
    // Another owner's `owner:branch` would be a fork's: there are none here.
    let head_branch = match head.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&at.owner) => branch.to_owned(),
        Some(_) => return Err(Fail::validation(req.doc, json!([invalid("head")]))),
        None => head.clone(),
    };
    let git = at.git()?;
    let head_sha = branch_tip(&git, &head_branch);
    let base_sha = branch_tip(&git, &base);
    let mut errors = Vec::new();
    if base_sha.is_none() {
        errors.push(invalid("base"));
    }
    if head_sha.is_none() {
        errors.push(invalid("head"));
    }
    let (Some(head_sha), Some(base_sha)) = (head_sha, base_sha) else {
        return Err(Fail::validation(req.doc, json!(errors)));
    };
    let ahead = git
        .graph_ahead_behind(head_sha, base_sha)
        .map_err(Fail::internal)?
        .0;
    if head_branch != base && git.merge_base(head_sha, base_sha).is_err() {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "PullRequest", "code": "custom",
                    "message": format!("The {head_branch} branch has no history in common with {base}") }),
        ));
    }
    if head_branch == base || ahead == 0 {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "PullRequest", "code": "custom",
                    "message": format!("No commits between {base} and {head}") }),
        ));
    }
    let exists = meta.pulls.iter().any(|p| {
        p["state"] == "open"
            && p["head"]["ref"] == head_branch.as_str()
            && p["base"]["ref"] == base.as_str()
    });
    if exists {
        return Err(Fail::validation(
            req.doc,
            json!({ "resource": "PullRequest", "code": "custom",
                    "message": format!("A pull request already exists for {}:{head_branch}.", at.owner) }),
        ));
    }
    let number = meta.next_number();
    let issue_id = meta.id();
    let issue = issue_json(
        at,
        issue_id,
        number,
        &title,
        body.clone(),
        vec![],
        Value::Null,
        vec![],
        true,
    );
    let id = meta.id();
    let pull = json!({
        "id": id, "node_id": format!("PR_{id}"), "number": number,
        "url": format!("{}/pulls/{number}", at.api), "html_url": format!("{}/pull/{number}", at.web),
        "state": "open", "title": title, "body": body, "user": at.me.clone(),
        "created_at": issue["created_at"].clone(), "updated_at": issue["updated_at"].clone(),
        "closed_at": null, "merged_at": null, "draft": draft,
        "head": { "label": format!("{}:{head_branch}", at.owner), "ref": head_branch, "sha": head_sha.to_string() },
        "base": { "label": format!("{}:{base}", at.owner), "ref": base, "sha": base_sha.to_string() },
    });
    meta.issues.push(issue);
    meta.pulls.push(pull.clone());
    Ok(Done::created("pulls", pull))
}

/// `PATCH /repos/{o}/{n}/pulls/{number}` (`state`, `title`, `body`, `base`); its
/// issue follows.
pub(super) fn update_pull(at: &At, meta: &mut RepoMeta, number: u64, req: Req) -> Result<Done> {
    let index = meta
        .pulls
        .iter()
        .position(|p| p["number"] == number)
        .ok_or_else(|| Fail::not_found(req.doc))?;
    let state = state_of(&req, "PullRequest")?;
    let title = req.string("title")?;
    let base = match req.string("base")? {
        Some(base) => {
            let git = at.git()?;
            let sha = branch_tip(&git, &base).ok_or_else(|| {
                Fail::validation(
                    req.doc,
                    json!({ "resource": "PullRequest", "field": "base", "code": "invalid" }),
                )
            })?;
            Some((base, sha))
        }
        None => None,
    };
    let now = now();
    let mut pull = meta.pulls[index].clone();
    if let Some(title) = title {
        pull["title"] = json!(title);
    }
    if req.has("body") {
        pull["body"] = json!(req.string("body")?);
    }
    if let Some((base, sha)) = base {
        pull["base"] =
            json!({ "label": format!("{}:{base}", at.owner), "ref": base, "sha": sha.to_string() });
    }
    let transition = match state.as_deref() {
        Some("closed") if pull["state"] != "closed" => Some("closed"),
        Some("open") if pull["state"] != "open" => Some("reopened"),
        _ => None,
    };
    if let Some(transition) = transition {
        let closed = transition == "closed";
        pull["state"] = json!(if closed { "closed" } else { "open" });
        pull["closed_at"] = if closed { json!(now) } else { Value::Null };
    }
    pull["updated_at"] = json!(now);
    if let Some(i) = issue_index(meta, number) {
        let issue = &mut meta.issues[i];
        for field in ["state", "title", "body", "closed_at", "updated_at"] {
            issue[field] = pull[field].clone();
        }
        let issue = issue.clone();
        if let Some(transition) = transition {
            let extra = if transition == "closed" {
                json!({ "commit_id": null })
            } else {
                json!({})
            };
            event(at, meta, transition, &issue, extra);
        }
    }
    meta.pulls[index] = pull.clone();
    refresh_milestones(meta);
    Ok(Done::ok(pull))
}
