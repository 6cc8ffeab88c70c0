//! Labels, milestones, and issues and pull requests in number order with their
//! comments, reviews and review comments.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use repovault_core::ports::source::Write;
use serde_json::{Value, json};

use crate::journal::{Entry, Journal};
use crate::target::Target;
use crate::text::{MAX_TITLE, origin_of, provenance, restored_body, within};
use crate::{Data, RecoverError, Request};

fn time(value: &Value) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

fn login(item: &Value) -> &str {
    item["user"]["login"].as_str().unwrap_or("ghost")
}

/// The URL an item is known by: its page, or its API URL.
fn url_of(item: &Value) -> &str {
    item["html_url"]
        .as_str()
        .or(item["url"].as_str())
        .unwrap_or("")
}

/// The number at the end of `…/issues/<N>` or `…/pulls/<N>`.
fn number_in(url: &str) -> Option<u64> {
    url.rsplit('/').next()?.parse().ok()
}

/// Reviews worth a comment: those with text, and approvals or change requests.
pub(crate) fn restorable_reviews(reviews: &[Value]) -> impl Iterator<Item = &Value> {
    reviews.iter().filter(|r| {
        r["body"].as_str().is_some_and(|b| !b.trim().is_empty())
            || matches!(r["state"].as_str(), Some("APPROVED" | "CHANGES_REQUESTED"))
    })
}

pub(crate) async fn labels(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
) -> Result<bool, RecoverError> {
    if journal.is_done("labels") {
        return Ok(true);
    }
    let path = format!("{}/labels", target.api());
    for label in data.items("labels") {
        let Some(name) = label["name"].as_str() else {
            continue;
        };
        if journal.labels.contains(name) {
            continue;
        }
        if request.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let body = json!({
            "name": name,
            "color": label["color"],
            "description": label["description"],
        });
        let written = target.send(Write::Post, &path, &body).await?;
        match written.status {
            201 => *target.created.entry("labels").or_default() += 1,
            // A new repository's default labels, or one made before a kill: kept as
            // they are.
            _ if written.refused_as("already_exists") => {}
            _ => return Err(RecoverError::Refused(path, written.refusal())),
        }
        journal.record(Entry::Label {
            name: name.to_owned(),
        })?;
    }
    journal.record(Entry::Done {
        step: "labels".into(),
    })?;
    Ok(true)
}

pub(crate) async fn milestones(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
) -> Result<bool, RecoverError> {
    if journal.is_done("milestones") {
        return Ok(true);
    }
    let path = format!("{}/milestones", target.api());
    let existing: BTreeMap<String, u64> = target
        .read_all(&format!("{path}?state=all&per_page=100"))
        .await?
        .iter()
        .filter_map(|m| Some((m["title"].as_str()?.to_owned(), m["number"].as_u64()?)))
        .collect();
    let mut milestones: Vec<&Value> = data.items("milestones").iter().collect();
    milestones.sort_by_key(|m| m["number"].as_u64());
    for milestone in milestones {
        let (Some(old), Some(title)) = (milestone["number"].as_u64(), milestone["title"].as_str())
        else {
            continue;
        };
        if journal.milestones.contains_key(&old) {
            continue;
        }
        if request.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        let new = match existing.get(title) {
            Some(new) => *new,
            None => {
                let body = json!({
                    "title": title,
                    "state": milestone["state"],
                    "description": milestone["description"],
                    "due_on": milestone["due_on"],
                });
                let made = target
                    .create("milestones", Write::Post, &path, &body)
                    .await?;
                number_in_answer(&made, "number", &path)?
            }
        };
        journal.record(Entry::Milestone { old, new })?;
    }
    journal.record(Entry::Done {
        step: "milestones".into(),
    })?;
    Ok(true)
}

/// A comment of any kind to write: its journal key (`c:`, `r:`, `rc:` and its id), its
/// provenance line and its original text.
struct Comment<'d> {
    key: String,
    at: Option<Timestamp>,
    header: String,
    text: &'d str,
}

impl Comment<'_> {
    fn body(&self, map: &dyn Fn(u64) -> Option<u64>) -> String {
        restored_body(std::slice::from_ref(&self.header), self.text, map)
    }
}

/// Each issue's and pull request's comments of every kind, by number, in the order
/// they were written.
fn threads(data: &Data) -> BTreeMap<u64, Vec<Comment<'_>>> {
    let mut by_number: BTreeMap<u64, Vec<(Option<Timestamp>, Comment<'_>)>> = BTreeMap::new();
    for comment in data.items("issue-comments") {
        let (Some(id), Some(number)) = (
            comment["id"].as_u64(),
            comment["issue_url"].as_str().and_then(number_in),
        ) else {
            continue;
        };
        let at = time(&comment["created_at"]);
        let header = provenance("Originally written", login(comment), at, url_of(comment));
        let text = comment["body"].as_str().unwrap_or("");
        by_number.entry(number).or_default().push((
            at,
            Comment {
                key: format!("c:{id}"),
                at,
                header,
                text,
            },
        ));
    }
    for review in restorable_reviews(data.items("reviews")) {
        let (Some(id), Some(number)) = (
            review["id"].as_u64(),
            review["pull_request_url"].as_str().and_then(number_in),
        ) else {
            continue;
        };
        let at = time(&review["submitted_at"]);
        let state = review["state"]
            .as_str()
            .unwrap_or("COMMENTED")
            .to_lowercase();
        let header = provenance(
            &format!("Review ({})", state.replace('_', " ")),
            login(review),
            at,
            url_of(review),
        );
        let text = review["body"].as_str().unwrap_or("");
        by_number.entry(number).or_default().push((
            at,
            Comment {
                key: format!("r:{id}"),
                at,
                header,
                text,
            },
        ));
    }
    for comment in data.items("review-comments") {
        let (Some(id), Some(number)) = (
            comment["id"].as_u64(),
            comment["pull_request_url"].as_str().and_then(number_in),
        ) else {
            continue;
        };
        let at = time(&comment["created_at"]);
        let place = match (comment["path"].as_str(), comment["line"].as_u64()) {
            (Some(path), Some(line)) => format!(" on `{path}` line {line}"),
            (Some(path), None) => format!(" on `{path}`"),
            _ => String::new(),
        };
        let header = provenance(
            &format!("Review comment{place}"),
            login(comment),
            at,
            url_of(comment),
        );
        let text = comment["body"].as_str().unwrap_or("");
        by_number.entry(number).or_default().push((
            at,
            Comment {
                key: format!("rc:{id}"),
                at,
                header,
                text,
            },
        ));
    }
    by_number
        .into_iter()
        .map(|(number, mut comments)| {
            // Stable: comments of one time keep the order kinds were listed in.
            comments.sort_by_key(|(at, _)| *at);
            (number, comments.into_iter().map(|(_, c)| c).collect())
        })
        .collect()
}

/// The Issue Import API's media type.
const IMPORT: &str = "application/vnd.github.golden-comet-preview+json";

/// The most an import request may hold (GitHub takes 1 MB).
const MAX_IMPORT: usize = 1_000_000;

/// Imports an issue with its comments through the Issue Import API, which keeps when
/// each was written and closed and notifies nobody; waits until GitHub has processed
/// it (one at a time, so numbers are handed out in order). `None`: not imported (the
/// server has no such API, or refused this one): create it through the REST API.
async fn import(
    target: &mut Target<'_>,
    journal: &mut Journal,
    item: &Value,
    comments: &[Comment<'_>],
    assignable: &Assignable,
    notes: &mut Vec<String>,
) -> Result<Option<u64>, RecoverError> {
    let old = item["number"].as_u64().unwrap_or(0);
    let api = target.api();
    let id = match journal.importing.get(&old) {
        // Sent by a run that was stopped before it knew how it went.
        Some(id) => *id,
        None => {
            if journal.is_done("import-unavailable") {
                return Ok(None);
            }
            let assignee = assignable.filter(target, item).await?.into_iter().next();
            let body = {
                let map = renumbering(journal);
                let at = time(&item["created_at"]);
                let header = provenance("Originally opened", login(item), at, url_of(item));
                let (labels, milestone) = fields(item, journal);
                let closed = item["state"] == "closed";
                json!({
                "issue": {
                    "title": within(item["title"].as_str().unwrap_or(""), MAX_TITLE, "…"),
                    "body": restored_body(&[header], item["body"].as_str().unwrap_or(""), &map),
                    "created_at": item["created_at"],
                    "updated_at": item["updated_at"],
                    "closed_at": if closed { item["closed_at"].clone() } else { Value::Null },
                    "closed": closed,
                    "labels": labels,
                    "milestone": milestone,
                    "assignee": assignee,
                },
                "comments": comments.iter().map(|c| json!({
                    "created_at": c.at,
                    "body": c.body(&map),
                })).collect::<Vec<_>>(),
                })
            };
            if body.to_string().len() > MAX_IMPORT {
                return Ok(None);
            }
            let path = format!("{api}/import/issues");
            let written = target
                .preview(Some(Write::Post), &path, &body, IMPORT)
                .await?;
            match written.status {
                202 => {}
                404 => {
                    notes.push("this GitHub has no Issue Import API: issues are created through the REST API (their dates are not kept, and people they mention are notified)".into());
                    journal.record(Entry::Done {
                        step: "import-unavailable".into(),
                    })?;
                    return Ok(None);
                }
                _ => {
                    notes.push(format!(
                        "issue #{old}: the Issue Import API refused it ({}); created through the REST API",
                        written.refusal()
                    ));
                    return Ok(None);
                }
            }
            let id = number_in_answer(&written.body, "id", &path)?;
            journal.record(Entry::Importing { old, id })?;
            *target.created.entry("issues").or_default() += 1;
            id
        }
    };
    // GitHub processes imports in the background: ask until it says.
    let path = format!("{api}/import/issues/{id}");
    let mut wait = std::time::Duration::from_millis(100);
    for _ in 0..60 {
        let status = target.preview(None, &path, &Value::Null, IMPORT).await?;
        match status.body["status"].as_str() {
            Some("imported") => {
                let url = status.body["issue_url"].as_str().unwrap_or("");
                return number_in(url).map(Some).ok_or_else(|| {
                    RecoverError::Refused(path.clone(), format!("no issue number in {url:?}"))
                });
            }
            Some("failed") => {
                notes.push(format!(
                    "issue #{old}: its import failed ({}); created through the REST API",
                    status.body["errors"]
                ));
                return Ok(None);
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
    Err(RecoverError::Refused(
        path,
        "the import is still pending after minutes; run the same restore again".into(),
    ))
}

/// Old → new issue numbers as the journal has them (for `#N` in restored text).
fn renumbering(journal: &Journal) -> impl Fn(u64) -> Option<u64> + '_ {
    |old| journal.issues.get(&old).map(|(new, _)| *new)
}

/// Issues and pull requests, by number: each created (a pull request as one when its
/// head and base can be, else as an issue saying why), closed as it was, then its
/// comments.
pub(crate) async fn issues(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<bool, RecoverError> {
    if journal.is_done("issues") {
        return Ok(true);
    }
    let mut items: Vec<&Value> = data.items("issues").iter().collect();
    items.sort_by_key(|i| i["number"].as_u64());
    let pulls: BTreeMap<u64, &Value> = data
        .items("pulls")
        .iter()
        .filter_map(|p| Some((p["number"].as_u64()?, p)))
        .collect();
    let mut threads = threads(data);
    adopt(data, &threads, target, journal).await?;
    let detached: BTreeSet<u64> = request.backup.detached_heads().into_iter().collect();
    let numbers: BTreeSet<u64> = items.iter().filter_map(|i| i["number"].as_u64()).collect();
    let assignable = Assignable::default();
    let total = items.len();
    // Creating requests each item takes at most (itself, closing, its comments), for
    // an honest time left.
    let costs: Vec<u64> = items
        .iter()
        .map(|i| {
            let comments = i["number"]
                .as_u64()
                .and_then(|n| threads.get(&n))
                .map_or(0, Vec::len);
            2 + comments as u64
        })
        .collect();
    for (done, item) in items.into_iter().enumerate() {
        let Some(old) = item["number"].as_u64() else {
            continue;
        };
        if request.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(false);
        }
        if done % 10 == 0 {
            let left = request.options.pace.estimate(costs[done..].iter().sum());
            (request.progress)(&format!(
                "issues and pull requests: {done}/{total}, at least {} min left at this pace",
                left.as_secs().div_ceil(60)
            ));
        }
        if !journal.issues.contains_key(&old) {
            keep_numbers(target, journal, old, &|n| !numbers.contains(&n)).await?;
            let pull = item.get("pull_request").and(pulls.get(&old).copied());
            if pull.is_none() && item.get("pull_request").is_none() {
                let comments = threads.get(&old).map_or(&[][..], Vec::as_slice);
                if let Some(new) =
                    import(target, journal, item, comments, &assignable, notes).await?
                {
                    journal.record(Entry::Issue {
                        old,
                        new,
                        pull: false,
                    })?;
                    journal.record(Entry::Done {
                        step: format!("imported:{old}"),
                    })?;
                }
            }
        }
        if !journal.issues.contains_key(&old) {
            let pull = item.get("pull_request").and(pulls.get(&old).copied());
            let (new, as_pull) = create(
                request,
                target,
                journal,
                item,
                pull,
                &detached,
                &assignable,
                &renumbering(journal),
                notes,
            )
            .await?;
            journal.record(Entry::Issue {
                old,
                new,
                pull: as_pull,
            })?;
        }
        let (new, as_pull) = journal.issues[&old];
        // A pull request gets its labels, milestone and assignees once it exists (the
        // pulls API takes none of them).
        let labelled = format!("labelled:{old}");
        if as_pull && !journal.is_done(&labelled) {
            let (labels, milestone) = fields(item, journal);
            let assignees = assignable.filter(target, item).await?;
            if !labels.is_empty() || milestone.is_some() || !assignees.is_empty() {
                let path = format!("{}/issues/{new}", target.api());
                let body =
                    json!({ "labels": labels, "milestone": milestone, "assignees": assignees });
                target
                    .create("labelled", Write::Patch, &path, &body)
                    .await?;
            }
            journal.record(Entry::Done { step: labelled })?;
        }
        // An import brought its closing and its comments along.
        let imported = journal.is_done(&format!("imported:{old}"));
        if item["state"] == "closed" && !journal.closed.contains(&old) && !imported {
            let (path, body) = if as_pull {
                (
                    format!("{}/pulls/{new}", target.api()),
                    json!({ "state": "closed" }),
                )
            } else {
                (
                    format!("{}/issues/{new}", target.api()),
                    json!({ "state": "closed", "state_reason": item["state_reason"].as_str().unwrap_or("completed") }),
                )
            };
            target.create("closed", Write::Patch, &path, &body).await?;
            journal.record(Entry::Closed { old })?;
        }
        for comment in threads.remove(&old).unwrap_or_default() {
            if imported || journal.comments.contains_key(&comment.key) {
                continue;
            }
            let body = comment.body(&renumbering(journal));
            if request.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(false);
            }
            let path = format!("{}/issues/{new}/comments", target.api());
            let made = target
                .create("comments", Write::Post, &path, &json!({ "body": body }))
                .await?;
            let id = number_in_answer(&made, "id", &path)?;
            journal.record(Entry::Comment {
                old: comment.key,
                new: id,
            })?;
        }
    }
    journal.record(Entry::Done {
        step: "issues".into(),
    })?;
    Ok(true)
}

/// In a repository this restore made, numbers missing from the backup (issues deleted
/// before it was taken) are filled with closed placeholders, so every later issue keeps
/// its number and every `#N` stays true.
async fn keep_numbers(
    target: &mut Target<'_>,
    journal: &mut Journal,
    old: u64,
    placeholder: &dyn Fn(u64) -> bool,
) -> Result<(), RecoverError> {
    if journal.repository != Some(true) {
        return Ok(());
    }
    let api = target.api();
    // A placeholder journaled by a run killed before it closed it.
    let open: Vec<u64> = journal
        .issues
        .iter()
        .filter(|(o, (_, pull))| !pull && **o < old && !journal.closed.contains(o))
        .map(|(o, (n, _))| (*o, *n))
        .filter(|(o, n)| o == n && placeholder(*o))
        .map(|(o, _)| o)
        .collect();
    for number in open {
        let body = json!({ "state": "closed", "state_reason": "not_planned" });
        target
            .create(
                "closed",
                Write::Patch,
                &format!("{api}/issues/{number}"),
                &body,
            )
            .await?;
        journal.record(Entry::Closed { old: number })?;
    }
    loop {
        let next = journal.issues.values().map(|(n, _)| *n).max().unwrap_or(0) + 1;
        if next >= old {
            return Ok(());
        }
        // A placeholder made before a kill and not journaled: the repository is ours,
        // so whatever holds that number is it.
        if target
            .read(&format!("{api}/issues/{next}"))
            .await?
            .is_none()
        {
            let body = json!({
                "title": format!("(#{next} was not in the backup)"),
                "body": format!("> #{next} was deleted before the backup was taken. This placeholder keeps the numbers of the issues after it."),
            });
            let path = format!("{api}/issues");
            target
                .create("placeholders", Write::Post, &path, &body)
                .await?;
        }
        journal.record(Entry::Issue {
            old: next,
            new: next,
            pull: false,
        })?;
        let body = json!({ "state": "closed", "state_reason": "not_planned" });
        target
            .create(
                "closed",
                Write::Patch,
                &format!("{api}/issues/{next}"),
                &body,
            )
            .await?;
        journal.record(Entry::Closed { old: next })?;
    }
}

/// Logins that can be assigned in the target, asked once each.
#[derive(Default)]
struct Assignable(std::sync::Mutex<BTreeMap<String, bool>>);

impl Assignable {
    async fn filter(&self, target: &Target<'_>, item: &Value) -> Result<Vec<String>, RecoverError> {
        let mut out = Vec::new();
        for login in item["assignees"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["login"].as_str())
        {
            let known = self.0.lock().expect("not poisoned").get(login).copied();
            let ok = match known {
                Some(ok) => ok,
                // A login from the backup becomes part of a path only when it is one.
                None if repovault_core::check_login("assignee", login).is_err() => false,
                None => {
                    let path = format!("{}/assignees/{login}", target.api());
                    let ok = target.read(&path).await?.is_some();
                    self.0
                        .lock()
                        .expect("not poisoned")
                        .insert(login.to_owned(), ok);
                    ok
                }
            };
            if ok {
                out.push(login.to_owned());
            }
        }
        Ok(out)
    }
}

#[allow(clippy::too_many_arguments)]
async fn create(
    request: &Request<'_>,
    target: &mut Target<'_>,
    journal: &Journal,
    item: &Value,
    pull: Option<&Value>,
    detached: &BTreeSet<u64>,
    assignable: &Assignable,
    map: &dyn Fn(u64) -> Option<u64>,
    notes: &mut Vec<String>,
) -> Result<(u64, bool), RecoverError> {
    let old = item["number"].as_u64().unwrap_or(0);
    let at = time(&item["created_at"]);
    let what = if pull.is_some() {
        "Pull request originally opened"
    } else {
        "Originally opened"
    };
    let mut header = vec![provenance(what, login(item), at, url_of(item))];
    if let Some(merged_at) = pull.and_then(|p| p["merged_at"].as_str()) {
        let by = pull
            .and_then(|p| p["merged_by"]["login"].as_str())
            .map(|l| format!(" by `@{l}`"))
            .unwrap_or_default();
        header.push(format!("> Merged{by} at {merged_at}."));
    }
    let text = item["body"].as_str().unwrap_or("");
    let title = within(item["title"].as_str().unwrap_or(""), MAX_TITLE, "…");
    let (labels, milestone) = fields(item, journal);
    let assignees = assignable.filter(target, item).await?;
    let api = target.api();
    if let Some(pull) = pull {
        let base = pull["base"]["ref"].as_str().unwrap_or("");
        let head = if detached.contains(&old) {
            format!("restored/pr/{old}")
        } else {
            pull["head"]["ref"].as_str().unwrap_or("").to_owned()
        };
        let why = if !request.backup.has_branch(base) {
            Some(format!("its base branch {base:?} is not in the backup"))
        } else if !detached.contains(&old) && !request.backup.has_branch(&head) {
            Some("its head commit is not in the backup".to_owned())
        } else {
            let draft = pull["draft"].as_bool().unwrap_or(false);
            let mut body = json!({
                "title": title,
                "body": restored_body(&header, text, map),
                "head": head,
                "base": base,
                "draft": draft,
            });
            let path = format!("{api}/pulls");
            let mut written = target.send(Write::Post, &path, &body).await?;
            if written.status == 422 && draft {
                // Drafts are refused in private repositories of some plans.
                body["draft"] = json!(false);
                written = target.send(Write::Post, &path, &body).await?;
            }
            if written.status == 201 {
                *target.created.entry("pulls").or_default() += 1;
                return Ok((number_in_answer(&written.body, "number", &path)?, true));
            }
            Some(written.refusal())
        };
        let why = why.unwrap_or_default();
        notes.push(format!(
            "pull request #{old} restored as an issue: GitHub would not recreate it ({why})"
        ));
        header.push(format!(
            "> This was a pull request ({head} into {base}); it could not be recreated as one: {why}."
        ));
    }
    let body = json!({
        "title": title,
        "body": restored_body(&header, text, map),
        "labels": labels,
        "milestone": milestone,
        "assignees": assignees,
    });
    let path = format!("{api}/issues");
    let made = target.create("issues", Write::Post, &path, &body).await?;
    Ok((number_in_answer(&made, "number", &path)?, false))
}

/// An item's label names and its milestone's number in the target.
fn fields<'i>(item: &'i Value, journal: &Journal) -> (Vec<&'i str>, Option<u64>) {
    let labels = item["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["name"].as_str())
        .collect();
    let milestone = item["milestone"]["number"]
        .as_u64()
        .and_then(|m| journal.milestones.get(&m).copied());
    (labels, milestone)
}

/// `field` of GitHub's answer to `path`, which must be there.
pub(crate) fn number_in_answer(
    answer: &Value,
    field: &str,
    path: &str,
) -> Result<u64, RecoverError> {
    answer[field].as_u64().ok_or_else(|| {
        RecoverError::GitHub(
            path.to_owned(),
            repovault_core::ports::source::SourceError::Invalid {
                url: path.to_owned(),
                message: format!("the answer has no {field}"),
            },
        )
    })
}

/// Objects an earlier, killed run created but did not journal, found by the original
/// URL their first line names.
async fn adopt(
    data: &Data,
    threads: &BTreeMap<u64, Vec<Comment<'_>>>,
    target: &Target<'_>,
    journal: &mut Journal,
) -> Result<(), RecoverError> {
    let by_url: BTreeMap<&str, u64> = data
        .items("issues")
        .iter()
        .filter_map(|i| Some((url_of(i), i["number"].as_u64()?)))
        .collect();
    let api = target.api();
    for found in target
        .read_all(&format!("{api}/issues?state=all&per_page=100"))
        .await?
    {
        let (Some(origin), Some(new)) = (
            found["body"].as_str().and_then(origin_of),
            found["number"].as_u64(),
        ) else {
            continue;
        };
        if let Some(old) = by_url.get(origin)
            && !journal.issues.contains_key(old)
        {
            let pull = found.get("pull_request").is_some();
            journal.record(Entry::Issue {
                old: *old,
                new,
                pull,
            })?;
        }
    }
    let keys: BTreeMap<String, &str> = threads
        .values()
        .flatten()
        .filter_map(|c| Some((origin_of(&c.header)?.to_owned(), c.key.as_str())))
        .collect();
    for found in target
        .read_all(&format!("{api}/issues/comments?per_page=100"))
        .await?
    {
        let (Some(origin), Some(id)) = (
            found["body"].as_str().and_then(origin_of),
            found["id"].as_u64(),
        ) else {
            continue;
        };
        if let Some(key) = keys.get(origin)
            && !journal.comments.contains_key(*key)
        {
            journal.record(Entry::Comment {
                old: (*key).to_owned(),
                new: id,
            })?;
        }
    }
    Ok(())
}
