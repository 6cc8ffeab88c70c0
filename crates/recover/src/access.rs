//! With flags: branch protection (`--restore-protection`) and who may do what
//! (`--restore-access`: collaborators and teams), as the backup recorded them. Both
//! are settings, not content: writing them again changes nothing, so a rerun simply
//! writes them again and the journal only records that the step finished.

use repovault_core::ports::source::Write;
use serde_json::{Value, json};

use crate::journal::{Entry, Journal};
use crate::target::Target;
use crate::{Data, RecoverError, Request};

/// The body of `PUT …/branches/{branch}/protection` from the rules as `GET` returns
/// them (objects with `enabled`, restrictions as full user and team objects).
pub(crate) fn protection_body(rules: &Value) -> Value {
    let enabled = |key: &str| rules[key]["enabled"].as_bool().unwrap_or(false);
    let checks = &rules["required_status_checks"];
    let reviews = &rules["required_pull_request_reviews"];
    let restrictions = &rules["restrictions"];
    let logins = |list: &Value, field: &str| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[field].as_str().map(Value::from))
            .collect()
    };
    json!({
        "required_status_checks": if checks.is_object() {
            json!({ "strict": checks["strict"].as_bool().unwrap_or(false), "contexts": checks["contexts"].clone() })
        } else {
            Value::Null
        },
        "enforce_admins": enabled("enforce_admins"),
        "required_pull_request_reviews": if reviews.is_object() {
            json!({
                "dismiss_stale_reviews": reviews["dismiss_stale_reviews"].as_bool().unwrap_or(false),
                "require_code_owner_reviews": reviews["require_code_owner_reviews"].as_bool().unwrap_or(false),
                "required_approving_review_count": reviews["required_approving_review_count"].as_u64().unwrap_or(1),
            })
        } else {
            Value::Null
        },
        "restrictions": if restrictions.is_object() {
            json!({
                "users": logins(&restrictions["users"], "login"),
                "teams": logins(&restrictions["teams"], "slug"),
                "apps": logins(&restrictions["apps"], "slug"),
            })
        } else {
            Value::Null
        },
        "required_linear_history": enabled("required_linear_history"),
        "allow_force_pushes": enabled("allow_force_pushes"),
        "allow_deletions": enabled("allow_deletions"),
        "required_conversation_resolution": enabled("required_conversation_resolution"),
    })
}

/// A segment of a URL path: every byte but unreserved characters percent-encoded
/// (a branch named `release/x#` is `release%2Fx%23`).
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub(crate) async fn protection(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<(), RecoverError> {
    if journal.is_done("protection") {
        return Ok(());
    }
    for rules in data.items("branch-protection") {
        let Some(branch) = rules["branch"].as_str() else {
            continue;
        };
        if !request.backup.has_branch(branch) {
            notes.push(format!(
                "protection of {branch}: the branch is not in the backup"
            ));
            continue;
        }
        let path = format!("{}/branches/{}/protection", target.api(), segment(branch));
        let written = target
            .send(Write::Put, &path, &protection_body(rules))
            .await?;
        if written.status == 422 {
            notes.push(format!("protection of {branch}: {}", written.refusal()));
        }
    }
    journal.record(Entry::Done {
        step: "protection".into(),
    })?;
    Ok(())
}

pub(crate) async fn access(
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<(), RecoverError> {
    if journal.is_done("access") {
        return Ok(());
    }
    let role = |item: &Value| -> String {
        item["role_name"]
            .as_str()
            .or(item["permission"].as_str())
            .map(|r| match r {
                // `GET` says `read`/`write`; `PUT` takes `pull`/`push`.
                "read" => "pull",
                "write" => "push",
                other => other,
            })
            .unwrap_or("pull")
            .to_owned()
    };
    for person in data.items("collaborators") {
        let Some(login) = person["login"].as_str() else {
            continue;
        };
        if login.eq_ignore_ascii_case(&target.owner) {
            continue;
        }
        let path = format!("{}/collaborators/{}", target.api(), segment(login));
        let written = target
            .send(Write::Put, &path, &json!({ "permission": role(person) }))
            .await?;
        if written.status == 422 {
            notes.push(format!("collaborator {login}: {}", written.refusal()));
        }
    }
    for team in data.items("teams") {
        let Some(slug) = team["slug"].as_str() else {
            continue;
        };
        let path = format!(
            "/orgs/{}/teams/{}/repos/{}/{}",
            target.owner,
            segment(slug),
            target.owner,
            target.name
        );
        let written = target
            .send(Write::Put, &path, &json!({ "permission": role(team) }))
            .await?;
        if written.status == 422 {
            notes.push(format!("team {slug}: {}", written.refusal()));
        }
    }
    journal.record(Entry::Done {
        step: "access".into(),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_as_read_becomes_protection_to_write() {
        let read = json!({
            "url": "https://api.github.com/repos/a/b/branches/main/protection",
            "required_status_checks": { "strict": true, "contexts": ["ci"], "checks": [] },
            "enforce_admins": { "enabled": true, "url": "…" },
            "required_pull_request_reviews": { "required_approving_review_count": 2, "dismiss_stale_reviews": true },
            "restrictions": { "users": [{ "login": "octocat" }], "teams": [{ "slug": "core" }], "apps": [] },
            "allow_force_pushes": { "enabled": false },
            "branch": "main",
        });
        assert_eq!(
            protection_body(&read),
            json!({
                "required_status_checks": { "strict": true, "contexts": ["ci"] },
                "enforce_admins": true,
                "required_pull_request_reviews": {
                    "dismiss_stale_reviews": true,
                    "require_code_owner_reviews": false,
                    "required_approving_review_count": 2,
                },
                "restrictions": { "users": ["octocat"], "teams": ["core"], "apps": [] },
                "required_linear_history": false,
                "allow_force_pushes": false,
                "allow_deletions": false,
                "required_conversation_resolution": false,
            })
        );
        let bare = protection_body(&json!({ "restrictions": null }));
        assert_eq!(bare["restrictions"], Value::Null);
        assert_eq!(bare["required_status_checks"], Value::Null);
    }

    #[test]
    fn branch_names_are_one_path_segment() {
        assert_eq!(segment("release/x#"), "release%2Fx%23");
        assert_eq!(segment("a b"), "a%20b");
    }
}
