//! Branch protection, collaborators and team permissions: `PUT`s that set a
//! repository's settings, served back by the read side in `GET`'s shapes.

use serde_json::{Value, json};

use super::{At, Done, Fail, Req, Result};
use crate::fake_github::metadata::RepoMeta;

pub(super) const DOC_PROTECTION: &str =
    "https://docs.github.com/rest/branches/branch-protection#update-branch-protection";
pub(super) const DOC_COLLABORATOR: &str =
    "https://docs.github.com/rest/collaborators/collaborators#add-a-repository-collaborator";
pub(super) const DOC_ACTIONS: &str = "https://docs.github.com/rest/actions/permissions#set-github-actions-permissions-for-a-repository";
pub(super) const DOC_TEAM: &str =
    "https://docs.github.com/rest/teams/teams#add-or-update-team-repository-permissions";

/// `PUT /repos/{o}/{n}/branches/{branch}/protection`: the rules, as `GET` shows them.
/// `404 Branch not found` for a branch git does not have.
pub(super) fn protect(at: &At, meta: &mut RepoMeta, branch: &str, req: Req) -> Result<Done> {
    let git = at.git()?;
    if git.find_reference(&format!("refs/heads/{branch}")).is_err() {
        return Err(Fail::new(
            axum::http::StatusCode::NOT_FOUND,
            "Branch not found",
            DOC_PROTECTION,
        ));
    }
    for field in [
        "required_status_checks",
        "enforce_admins",
        "required_pull_request_reviews",
        "restrictions",
    ] {
        if !req.has(field) {
            return Err(Fail::invalid(
                DOC_PROTECTION,
                &format!("\"{field}\" wasn't supplied."),
            ));
        }
    }
    let body = Value::Object(req.json.clone());
    let url = format!(
        "{}/branches/{}/protection",
        at.api,
        crate::fake_github::metadata::encode_segment(branch)
    );
    let enabled = |field: &str| json!({ "enabled": body[field].as_bool().unwrap_or(false) });
    let restrictions = match &body["restrictions"] {
        Value::Object(r) => json!({
            "users": r.get("users").and_then(Value::as_array).into_iter().flatten()
                .map(|login| json!({ "login": login, "type": "User" })).collect::<Vec<_>>(),
            "teams": r.get("teams").and_then(Value::as_array).into_iter().flatten()
                .map(|slug| json!({ "slug": slug, "name": slug })).collect::<Vec<_>>(),
            "apps": r.get("apps").and_then(Value::as_array).into_iter().flatten()
                .map(|slug| json!({ "slug": slug })).collect::<Vec<_>>(),
        }),
        _ => Value::Null,
    };
    let rules = json!({
        "url": url,
        "required_status_checks": body["required_status_checks"],
        "enforce_admins": enabled("enforce_admins"),
        "required_pull_request_reviews": body["required_pull_request_reviews"],
        "restrictions": restrictions,
        "required_linear_history": enabled("required_linear_history"),
        "allow_force_pushes": enabled("allow_force_pushes"),
        "allow_deletions": enabled("allow_deletions"),
        "required_conversation_resolution": enabled("required_conversation_resolution"),
    });
    meta.protected_branches
        .insert(branch.to_owned(), rules.clone());
    Ok(Done {
        created: Some("protection"),
        ..Done::ok(rules)
    })
}

/// GitHub's role names as `GET …/collaborators` shows them, from `PUT`'s permission.
fn role_name(permission: &str) -> Option<&'static str> {
    Some(match permission {
        "pull" => "read",
        "triage" => "triage",
        "push" => "write",
        "maintain" => "maintain",
        "admin" => "admin",
        _ => return None,
    })
}

fn permission_of(req: &Req, doc: &'static str) -> Result<String> {
    let permission = req.string("permission")?.unwrap_or_else(|| "push".into());
    if role_name(&permission).is_none() {
        return Err(Fail::validation(
            doc,
            json!({ "resource": "Repository", "code": "invalid", "field": "permission" }),
        ));
    }
    Ok(permission)
}

/// `PUT /repos/{o}/{n}/collaborators/{login}`: added at once, as an organization
/// member is (`204`); listed by `GET …/collaborators` with its role.
pub(super) fn add_collaborator(meta: &mut RepoMeta, login: &str, req: Req) -> Result<Done> {
    let permission = permission_of(&req, DOC_COLLABORATOR)?;
    let role = role_name(&permission).expect("checked");
    let list = meta.admin.entry("collaborators").or_default();
    list.retain(|c| {
        !c["login"]
            .as_str()
            .is_some_and(|l| l.eq_ignore_ascii_case(login))
    });
    list.push(json!({
        "login": login, "type": "User", "role_name": role,
        "permissions": {
            "admin": role == "admin",
            "maintain": matches!(role, "admin" | "maintain"),
            "push": matches!(role, "admin" | "maintain" | "write"),
            "triage": role != "read",
            "pull": true,
        },
    }));
    Ok(Done {
        created: Some("collaborators"),
        ..Done::no_content()
    })
}

/// `PUT /orgs/{org}/teams/{slug}/repos/{o}/{n}`: the team gets `permission` on the
/// repository (`204`); listed by `GET …/teams`.
pub(super) fn add_team(meta: &mut RepoMeta, slug: &str, req: Req) -> Result<Done> {
    let permission = permission_of(&req, DOC_TEAM)?;
    let list = meta.admin.entry("teams").or_default();
    list.retain(|t| t["slug"] != slug);
    list.push(json!({ "slug": slug, "name": slug, "permission": permission, "privacy": "closed" }));
    Ok(Done {
        created: Some("teams"),
        ..Done::no_content()
    })
}
