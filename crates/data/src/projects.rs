//! Projects (v2) through GitHub's GraphQL API: each board whole — its settings, its
//! fields (with their options and iterations) and every item (an issue's or pull
//! request's reference, or a draft issue's content) with every field value. Views and
//! workflows have no API. An organization's projects live with its data; a
//! repository's kind holds the projects linked to it, those an organization owns as a
//! reference to the organization's copy.
//!
//! GraphQL's cost is counted from the query, not the answer: a query for boards with
//! their items and values costs hundreds of points whether there are any or not. So a
//! probe first lists the projects (number, owner, `updatedAt`: one point), and only a
//! project that is new or updated since the previous snapshot is read whole, one at a
//! time (about fifty points a page of items: one request per item for its values, and
//! per value for its labels and users).

use repovault_core::ports::source::SourceError;
use serde_json::{Value, json};

use crate::connection::{RATE, page, whole};
use crate::read::Api;

/// Items a page of a project.
const ITEMS: u32 = 50;

/// What a probe asks of each project; a reference to an organization's project is this.
const LISTED: &str = "id number title url updatedAt owner { __typename ... on Organization { login } ... on User { login } }";

/// The field a value belongs to, by name.
const FIELD: &str = "field { ... on ProjectV2FieldCommon { name } }";

/// Whose projects: a repository's (linked to it) or an owner's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Of<'a> {
    Repo { owner: &'a str, name: &'a str },
    Owner(&'a str),
}

fn probe_query(of: Of<'_>) -> String {
    let connection = format!(
        "projectsV2(first: 100, after: $after, orderBy: {{field: NUMBER, direction: ASC}}) {{
          pageInfo {{ hasNextPage endCursor }} nodes {{ {LISTED} }} }}"
    );
    match of {
        Of::Repo { .. } => format!(
            "query($owner: String!, $name: String!, $after: String) {{ {RATE}
              repository(owner: $owner, name: $name) {{ {connection} }} }}"
        ),
        Of::Owner(_) => format!(
            "query($login: String!, $after: String) {{ {RATE}
              repositoryOwner(login: $login) {{ ... on ProjectV2Owner {{ {connection} }} }} }}"
        ),
    }
}

/// Project `number` of `login` whole, from its items after `$after`.
fn project_query() -> String {
    format!(
        "query($login: String!, $number: Int!, $after: String) {{ {RATE}
          repositoryOwner(login: $login) {{ ... on ProjectV2Owner {{ projectV2(number: $number) {{
            {LISTED} databaseId shortDescription readme public closed closedAt template createdAt
            creator {{ login }}
            fields(first: 50) {{ nodes {{ __typename
              ... on ProjectV2FieldCommon {{ id databaseId name dataType createdAt updatedAt }}
              ... on ProjectV2SingleSelectField {{ options {{ id name color description }} }}
              ... on ProjectV2IterationField {{ configuration {{ duration startDay
                iterations {{ id title startDate duration }}
                completedIterations {{ id title startDate duration }} }} }} }} }}
            items(first: {ITEMS}, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }}
              nodes {{ id databaseId type isArchived createdAt updatedAt creator {{ login }}
                content {{ __typename
                  ... on Issue {{ number title url issueState: state repository {{ nameWithOwner }} }}
                  ... on PullRequest {{ number title url pullRequestState: state repository {{ nameWithOwner }} }}
                  ... on DraftIssue {{ id title body createdAt updatedAt creator {{ login }} }} }}
                fieldValues(first: 50) {{ nodes {{ __typename
                  ... on ProjectV2ItemFieldTextValue {{ text {FIELD} }}
                  ... on ProjectV2ItemFieldNumberValue {{ number {FIELD} }}
                  ... on ProjectV2ItemFieldDateValue {{ date {FIELD} }}
                  ... on ProjectV2ItemFieldSingleSelectValue {{ name optionId {FIELD} }}
                  ... on ProjectV2ItemFieldIterationValue {{ title iterationId startDate duration {FIELD} }}
                  ... on ProjectV2ItemFieldLabelValue {{ labels(first: 10) {{ nodes {{ name }} }} {FIELD} }}
                  ... on ProjectV2ItemFieldMilestoneValue {{ milestone {{ title }} {FIELD} }}
                  ... on ProjectV2ItemFieldRepositoryValue {{ repository {{ nameWithOwner }} {FIELD} }}
                  ... on ProjectV2ItemFieldUserValue {{ users(first: 10) {{ nodes {{ login }} }} {FIELD} }}
                }} }} }} }} }} }} }} }}"
    )
}

/// The projects of `of` as listed (number, owner, `updatedAt`…), every page.
pub(crate) async fn probe(api: &mut Api<'_>, of: Of<'_>) -> Result<Vec<Value>, SourceError> {
    let query = probe_query(of);
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (variables, root) = match of {
            Of::Repo { owner, name } => (
                json!({ "owner": owner, "name": name, "after": after }),
                "repository",
            ),
            Of::Owner(login) => (json!({ "login": login, "after": after }), "repositoryOwner"),
        };
        let data = api.graphql(&query, variables).await?;
        if data[root].is_null() {
            let what = match of {
                Of::Repo { owner, name } => format!("{owner}/{name}"),
                Of::Owner(login) => login.to_owned(),
            };
            return Err(SourceError::NotFound {
                what: format!("{what} (GraphQL)"),
            });
        }
        let (nodes, next) = page(&data[root]["projectsV2"]);
        listed.extend(nodes);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return Ok(listed),
        }
    }
}

/// What tells a project's version apart: its number, owner and `updatedAt`.
fn version(project: &Value) -> (Option<u64>, Option<&str>, Option<&str>) {
    (
        project["number"].as_u64(),
        project["owner"]["login"].as_str(),
        project["updatedAt"].as_str(),
    )
}

/// Whether the projects `listed` now are those `before` (a previous file) holds, none
/// updated since.
pub(crate) fn unchanged(listed: &[Value], before: &[Value]) -> bool {
    let mut now: Vec<_> = listed.iter().map(version).collect();
    let mut then: Vec<_> = before.iter().map(version).collect();
    now.sort();
    then.sort();
    now == then
}

/// The projects `listed` for `of`: each one `before` holds in the same version as it
/// was, the others read whole; of a repository's, those an organization owns stay as
/// listed (the organization's data holds them whole).
pub(crate) async fn read(
    api: &mut Api<'_>,
    of: Of<'_>,
    listed: Vec<Value>,
    before: &[Value],
) -> Result<Vec<Value>, SourceError> {
    let mut out = Vec::new();
    for project in listed {
        let owned_by_org = project["owner"]["__typename"] == "Organization";
        if matches!(of, Of::Repo { .. }) && owned_by_org {
            out.push(project);
            continue;
        }
        let kept = before
            .iter()
            .find(|b| version(b) == version(&project) && b.get("items").is_some());
        match kept {
            Some(kept) => out.push(kept.clone()),
            None => out.push(whole_project(api, &project).await?),
        }
    }
    Ok(out)
}

/// The project `listed` names, with every page of its items.
async fn whole_project(api: &mut Api<'_>, listed: &Value) -> Result<Value, SourceError> {
    let login = &listed["owner"]["login"];
    let number = &listed["number"];
    let mut project = Value::Null;
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let variables = json!({ "login": login, "number": number, "after": after });
        let data = api.graphql(&project_query(), variables).await?;
        let found = &data["repositoryOwner"]["projectV2"];
        if found.is_null() {
            return Err(SourceError::NotFound {
                what: format!("project {number} of {login} (GraphQL)"),
            });
        }
        let (more, next) = page(&found["items"]);
        items.extend(more);
        if project.is_null() {
            project = found.clone();
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    whole(&mut project, "items", items);
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_unchanged_while_each_ones_number_owner_and_update_are() {
        let project = |n: u64, at: &str| json!({"number": n, "owner": {"login": "acme"}, "updatedAt": at, "title": "t"});
        let before = [
            project(1, "2026-01-01T00:00:00Z"),
            project(2, "2026-01-02T00:00:00Z"),
        ];
        let mut now = vec![before[1].clone(), before[0].clone()];
        // Read whole, the previous file holds more than the probe lists: still the same.
        now[0]["items"] = json!({"totalCount": 3});
        assert!(unchanged(&now, &before));
        assert!(!unchanged(&[project(1, "2026-01-01T00:00:00Z")], &before));
        assert!(!unchanged(
            &[
                project(1, "2026-01-01T00:00:00Z"),
                project(2, "2026-01-03T00:00:00Z")
            ],
            &before
        ));
        assert!(unchanged(&[], &[]));
    }
}
