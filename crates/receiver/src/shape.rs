//! Whether a payload is the event its `X-GitHub-Event` header says: GitHub signs the
//! body, not the headers, so a captured body must not pass for another event (a
//! signed comment deletion sent as a `repository` deletion).
//!
//! Each event's payload has top-level objects the others lack (a push its `commits`,
//! a comment its `issue` and `comment`…). A payload must hold every marker of its
//! event and no marker of another.

use serde_json::Value;

/// The top-level keys that tell one event's payload from another's.
const MARKERS: &[&str] = &[
    "ref",
    "ref_type",
    "commits",
    "release",
    "issue",
    "comment",
    "pull_request",
    "review",
    "zen",
    "hook",
];

/// The markers an event's payload has (all of them); `None`: an event the receiver
/// does not act on, whose shape does not matter.
fn markers(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "push" => &["ref", "commits"],
        "create" | "delete" => &["ref", "ref_type"],
        "release" => &["release"],
        "issues" => &["issue"],
        "issue_comment" => &["issue", "comment"],
        "pull_request" => &["pull_request"],
        "pull_request_review" => &["pull_request", "review"],
        "pull_request_review_comment" => &["pull_request", "comment"],
        "repository" => &[],
        "ping" => &["zen"],
        _ => return None,
    })
}

/// Events whose payload names what happened in `action`.
const WITH_ACTION: &[&str] = &[
    "release",
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "repository",
];

/// `Ok` if `payload` has the shape of `event`; else why not (short, names no value).
pub(crate) fn check(event: &str, payload: &Value) -> Result<(), String> {
    let Some(object) = payload.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    let Some(own) = markers(event) else {
        return Ok(());
    };
    // `ping` also carries `hook`, the webhook's settings.
    let allowed = |key: &str| own.contains(&key) || (event == "ping" && key == "hook");
    if let Some(missing) = own.iter().find(|m| !object.contains_key(**m)) {
        return Err(format!("not a {event} payload: no `{missing}`"));
    }
    if let Some(foreign) = MARKERS
        .iter()
        .find(|m| object.contains_key(**m) && !allowed(m))
    {
        return Err(format!("not a {event} payload: it has `{foreign}`"));
    }
    let action = payload["action"].as_str();
    if WITH_ACTION.contains(&event) && action.is_none() {
        return Err(format!("not a {event} payload: no `action`"));
    }
    if event == "push" && object.contains_key("action") {
        return Err("not a push payload: it has `action`".into());
    }
    if event == "repository" {
        let changes = &payload["changes"];
        let said = match action {
            Some("renamed") => changes["repository"]["name"]["from"].is_string(),
            Some("transferred") => {
                let from = &changes["owner"]["from"];
                from["organization"]["login"].is_string() || from["user"]["login"].is_string()
            }
            _ => true,
        };
        if !said {
            return Err(format!(
                "not a repository {} payload: `changes` does not say what changed",
                action.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_event_has_its_own_markers_and_no_other_events() {
        let repo = json!({"name": "api"});
        let ok = [
            (
                "push",
                json!({"ref": "refs/heads/main", "commits": [], "repository": repo}),
            ),
            (
                "create",
                json!({"ref": "x", "ref_type": "tag", "repository": repo}),
            ),
            (
                "delete",
                json!({"ref": "x", "ref_type": "branch", "repository": repo}),
            ),
            (
                "release",
                json!({"action": "published", "release": {}, "repository": repo}),
            ),
            (
                "issues",
                json!({"action": "opened", "issue": {}, "repository": repo}),
            ),
            (
                "issue_comment",
                json!({"action": "created", "issue": {}, "comment": {}}),
            ),
            (
                "pull_request",
                json!({"action": "opened", "number": 1, "pull_request": {}}),
            ),
            (
                "pull_request_review",
                json!({"action": "submitted", "review": {}, "pull_request": {}}),
            ),
            (
                "pull_request_review_comment",
                json!({"action": "created", "comment": {}, "pull_request": {}}),
            ),
            (
                "repository",
                json!({"action": "archived", "repository": repo}),
            ),
            ("ping", json!({"zen": "z", "hook_id": 1, "hook": {}})),
            ("star", json!({"action": "created", "comment": {}})),
        ];
        for (event, payload) in ok {
            assert_eq!(check(event, &payload), Ok(()), "{event}: {payload}");
        }
        // Every payload above but its own is refused under each event's name.
        let payloads: Vec<_> = [
            json!({"ref": "refs/heads/main", "commits": []}),
            json!({"ref": "x", "ref_type": "tag"}),
            json!({"action": "published", "release": {}}),
            json!({"action": "opened", "issue": {}}),
            json!({"action": "created", "issue": {}, "comment": {}}),
            json!({"action": "opened", "pull_request": {}}),
            json!({"action": "submitted", "review": {}, "pull_request": {}}),
            json!({"action": "created", "comment": {}, "pull_request": {}}),
            json!({"action": "deleted"}),
            json!({"zen": "z"}),
        ]
        .into_iter()
        .collect();
        let events = [
            "push",
            "create",
            "release",
            "issues",
            "issue_comment",
            "pull_request",
            "pull_request_review",
            "pull_request_review_comment",
            "repository",
            "ping",
        ];
        for (i, event) in events.iter().enumerate() {
            for (j, payload) in payloads.iter().enumerate() {
                assert_eq!(
                    check(event, payload).is_ok(),
                    i == j,
                    "{event} with {payload}"
                );
            }
        }
    }
}
