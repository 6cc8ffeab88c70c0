//! Discussions through GitHub's GraphQL API (REST has none): the categories, and the
//! discussions most recently updated first, each whole — its poll, its comments and
//! their replies nested in it, every page of them followed. Incrementally, reading
//! stops at the first discussion not updated since the previous snapshot.

use jiff::Timestamp;
use repovault_core::ports::source::SourceError;
use serde_json::{Value, json};

use crate::read::Api;

/// Discussions a page (each with up to [`COMMENTS`] comments of up to [`REPLIES`]
/// replies: about `25 × 50 × 25 / 100` points at most, GitHub's cost model).
const DISCUSSIONS: u32 = 25;
const COMMENTS: u32 = 50;
const REPLIES: u32 = 25;

/// A comment's fields (a reply's are the same, without replies).
const COMMENT: &str =
    "id databaseId body url createdAt publishedAt updatedAt lastEditedAt deletedAt
    author { login } authorAssociation isAnswer isMinimized minimizedReason upvoteCount";

/// Every query asks what it cost and what is left, for the record of the budget.
const RATE: &str = "rateLimit { cost remaining resetAt }";

fn discussions_query() -> String {
    format!(
        "query($owner: String!, $name: String!, $after: String) {{ {RATE}
          repository(owner: $owner, name: $name) {{ hasDiscussionsEnabled
            discussions(first: {DISCUSSIONS}, after: $after, orderBy: {{field: UPDATED_AT, direction: DESC}}) {{
              pageInfo {{ hasNextPage endCursor }}
              nodes {{
                id databaseId number title body url createdAt publishedAt updatedAt lastEditedAt
                closed closedAt stateReason locked
                isAnswered answerChosenAt answerChosenBy {{ login }} answer {{ id }}
                author {{ login }} authorAssociation upvoteCount
                category {{ id name slug emoji isAnswerable }}
                labels(first: 100) {{ nodes {{ name }} }}
                poll {{ question totalVoteCount options(first: 100) {{ nodes {{ option totalVoteCount }} }} }}
                comments(first: {COMMENTS}) {{ totalCount pageInfo {{ hasNextPage endCursor }}
                  nodes {{ {COMMENT}
                    replies(first: {REPLIES}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {COMMENT} }} }} }} }}
              }} }} }} }}"
    )
}

/// The next comments of discussion `number`.
fn comments_query() -> String {
    format!(
        "query($owner: String!, $name: String!, $number: Int!, $after: String) {{ {RATE}
          repository(owner: $owner, name: $name) {{ discussion(number: $number) {{
            comments(first: {COMMENTS}, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }}
              nodes {{ {COMMENT}
                replies(first: {REPLIES}) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {COMMENT} }} }} }} }} }} }} }}"
    )
}

/// The next replies of the comment `id`.
fn replies_query() -> String {
    format!(
        "query($id: ID!, $after: String) {{ {RATE}
          node(id: $id) {{ ... on DiscussionComment {{
            replies(first: {REPLIES}, after: $after) {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {COMMENT} }} }} }} }} }}"
    )
}

fn categories_query() -> String {
    format!(
        "query($owner: String!, $name: String!) {{ {RATE}
          repository(owner: $owner, name: $name) {{ hasDiscussionsEnabled
            discussionCategories(first: 100) {{ nodes {{ id name slug emoji description isAnswerable createdAt updatedAt }} }} }} }}"
    )
}

/// `value` at `path` (object keys).
fn at<'v>(value: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(value, |v, key| &v[*key])
}

/// A connection's nodes and the cursor of its next page, if any.
fn page(connection: &Value) -> (Vec<Value>, Option<String>) {
    let nodes = connection["nodes"].as_array().cloned().unwrap_or_default();
    let next = match connection["pageInfo"]["hasNextPage"].as_bool() {
        Some(true) => connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned),
        _ => None,
    };
    (nodes, next)
}

/// `repository` of an answer: an error naming the repository when GitHub has none.
fn repository<'v>(data: &'v Value, owner: &str, name: &str) -> Result<&'v Value, SourceError> {
    match &data["repository"] {
        Value::Null => Err(SourceError::NotFound {
            what: format!("{owner}/{name} (GraphQL)"),
        }),
        repository => Ok(repository),
    }
}

/// The repository's discussion categories (none when Discussions are off).
pub(crate) async fn categories(
    api: &mut Api<'_>,
    owner: &str,
    name: &str,
) -> Result<Vec<Value>, SourceError> {
    let data = api
        .graphql(&categories_query(), json!({ "owner": owner, "name": name }))
        .await?;
    let repository = repository(&data, owner, name)?;
    Ok(page(&repository["discussionCategories"]).0)
}

/// The discussions updated at or after `since` (all without), most recently updated
/// first, each whole: its connections' `nodes` complete (every page followed) and
/// their `pageInfo` removed.
pub(crate) async fn discussions(
    api: &mut Api<'_>,
    owner: &str,
    name: &str,
    since: Option<Timestamp>,
) -> Result<Vec<Value>, SourceError> {
    let query = discussions_query();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let variables = json!({ "owner": owner, "name": name, "after": after });
        let data = api.graphql(&query, variables).await?;
        let (nodes, next) = page(&repository(&data, owner, name)?["discussions"]);
        for mut discussion in nodes {
            let updated: Option<Timestamp> = discussion["updatedAt"]
                .as_str()
                .and_then(|t| t.parse().ok());
            if since.is_some_and(|since| updated.is_some_and(|u| u < since)) {
                return Ok(out);
            }
            complete(api, owner, name, &mut discussion).await?;
            out.push(discussion);
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => return Ok(out),
        }
    }
}

/// Follows `discussion`'s further pages of comments and of each comment's replies.
async fn complete(
    api: &mut Api<'_>,
    owner: &str,
    name: &str,
    discussion: &mut Value,
) -> Result<(), SourceError> {
    let (mut comments, mut next) = page(&discussion["comments"]);
    let number = discussion["number"].clone();
    while let Some(cursor) = next {
        let variables = json!({ "owner": owner, "name": name, "number": number, "after": cursor });
        let data = api.graphql(&comments_query(), variables).await?;
        let connection = at(repository(&data, owner, name)?, &["discussion", "comments"]);
        let (more, following) = page(connection);
        comments.extend(more);
        next = following;
    }
    for comment in &mut comments {
        let (mut replies, mut next) = page(&comment["replies"]);
        while let Some(cursor) = next {
            let variables = json!({ "id": comment["id"], "after": cursor });
            let data = api.graphql(&replies_query(), variables).await?;
            let (more, following) = page(at(&data, &["node", "replies"]));
            replies.extend(more);
            next = following;
        }
        settle(comment, "replies", replies);
    }
    settle(discussion, "comments", comments);
    Ok(())
}

/// `item[field]` as stored: its count and every node, no cursor.
fn settle(item: &mut Value, field: &str, nodes: Vec<Value>) {
    let total = item[field]["totalCount"].clone();
    item[field] = json!({ "totalCount": total, "nodes": nodes });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_its_nodes_and_the_next_cursor() {
        let more =
            json!({"nodes": [{"id": "a"}], "pageInfo": {"hasNextPage": true, "endCursor": "Y3Vy"}});
        assert_eq!(page(&more), (vec![json!({"id": "a"})], Some("Y3Vy".into())));
        let last = json!({"nodes": [], "pageInfo": {"hasNextPage": false, "endCursor": null}});
        assert_eq!(page(&last), (vec![], None));
        assert_eq!(page(&Value::Null), (vec![], None));
        let mut discussion = json!({"comments": {"totalCount": 3, "pageInfo": {}, "nodes": []}});
        settle(
            &mut discussion,
            "comments",
            vec![json!(1), json!(2), json!(3)],
        );
        assert_eq!(
            discussion,
            json!({"comments": {"totalCount": 3, "nodes": [1, 2, 3]}})
        );
    }
}
