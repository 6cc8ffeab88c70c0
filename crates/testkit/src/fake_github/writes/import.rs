//! GitHub's Issue Import API (`application/vnd.github.golden-comet-preview`): one
//! request makes an issue with its comments, keeping their creation and closing
//! dates. Asynchronous, as on GitHub: `202` with a status URL that says `pending` for
//! a moment, then `imported` with the issue's URL.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{At, Done, Fail, Req, Result, issues};
use crate::fake_github::metadata::RepoMeta;

pub(super) const DOC: &str = "https://gist.github.com/jonmagic/5282384165e0f86ef105";

/// `POST /repos/{o}/{n}/import/issues`.
pub(super) fn start(at: &At, meta: &mut RepoMeta, req: Req) -> Result<Done> {
    let Some(Value::Object(issue)) = req.json.get("issue").cloned() else {
        return Err(Fail::invalid(DOC, "\"issue\" wasn't supplied."));
    };
    let time = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let created_at = time(issue.get("created_at"));
    let closed_at = time(issue.get("closed_at"));
    let closed = issue
        .get("closed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The issue as the Issues API would make it, then given its recorded dates.
    let mut fields: Map<String, Value> = issue.clone();
    if let Some(Value::String(login)) = issue.get("assignee") {
        fields.insert("assignees".into(), json!([login]));
    }
    let made = issues::create_issue(
        at,
        meta,
        Req {
            json: fields,
            doc: DOC,
        },
    )?;
    let number = made
        .body
        .as_ref()
        .and_then(|b| b["number"].as_u64())
        .expect("made");
    let index = meta
        .issues
        .iter()
        .position(|i| i["number"] == number)
        .expect("made");
    if let Some(created) = &created_at {
        meta.issues[index]["created_at"] = json!(created);
    }
    if closed {
        meta.issues[index]["state"] = json!("closed");
        meta.issues[index]["state_reason"] = json!("completed");
        meta.issues[index]["closed_at"] = json!(closed_at.clone().or(created_at.clone()));
    }
    for comment in req
        .json
        .get("comments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Value::Object(fields) = comment.clone() else {
            continue;
        };
        let made = issues::create_comment(
            at,
            meta,
            number,
            Req {
                json: fields,
                doc: DOC,
            },
        )?;
        let id = made.body.as_ref().and_then(|b| b["id"].as_u64());
        if let (Some(id), Some(created)) = (id, comment["created_at"].as_str())
            && let Some(stored) = meta.issue_comments.iter_mut().find(|c| c["id"] == id)
        {
            stored["created_at"] = json!(created);
        }
    }
    let id = meta.id();
    let url = format!("{}/import/issues/{id}", at.api);
    let status = json!({
        "id": id, "status": "pending", "url": url,
        "import_issues_url": format!("{}/import/issues", at.api),
        "repository_url": at.api,
        "created_at": crate::fake_github::metadata::now(), "updated_at": crate::fake_github::metadata::now(),
    });
    let ready = std::time::Instant::now() + std::time::Duration::from_millis(100);
    meta.imports.insert(id, (number, ready));
    Ok(Done {
        status: StatusCode::ACCEPTED,
        body: Some(status),
        created: Some("issue-imports"),
    })
}

/// `GET /repos/{o}/{n}/import/issues/{id}`: `pending` for a moment, then `imported`
/// with the issue's URL.
pub(crate) fn status(api: &str, meta: &RepoMeta, id: u64) -> Option<Value> {
    let (number, ready) = meta.imports.get(&id)?;
    let done = std::time::Instant::now() >= *ready;
    let mut status = json!({
        "id": id, "status": if done { "imported" } else { "pending" },
        "url": format!("{api}/import/issues/{id}"),
        "import_issues_url": format!("{api}/import/issues"),
        "repository_url": api,
    });
    if done {
        status["issue_url"] = json!(format!("{api}/issues/{number}"));
    }
    Some(status)
}
