//! Discussions through GitHub's GraphQL API (REST has none): the categories, and the
//! discussions most recently updated first, each whole — its poll, its comments and
//! their replies nested in it, every page of them followed. Incrementally, reading
//! stops at the first discussion not updated since the previous snapshot.

use jiff::Timestamp;
use repovault_core::ports::source::SourceError;
use serde_json::{Value, json};

use crate::connection::{RATE, page, whole};
use crate::read::Api;

/// Discussions a page, each with up to [`COMMENTS`] comments of up to [`REPLIES`]
/// replies. GitHub counts a query's cost from these bounds, whatever the answer holds:
/// one request per connection and parent node (`1 + 25 + 25 × 50`), a hundred a point,
/// so about 13 points a page. An unchanged repository costs one point: the probe.
const DISCUSSIONS: u32 = 25;
const COMMENTS: u32 = 50;
const REPLIES: u32 = 25;

/// A comment's fields (a reply's are the same, without replies).
const COMMENT: &str =
    "id databaseId body url createdAt publishedAt updatedAt lastEditedAt deletedAt
    author { login } authorAssociation isAnswer isMinimized minimizedReason upvoteCount";

/// The most recently updated discussion's time.
fn probe_query() -> String {
    format!(
        "query($owner: String!, $name: String!) {{ {RATE}
          repository(owner: $owner, name: $name) {{
            discussions(first: 1, orderBy: {{field: UPDATED_AT, direction: DESC}}) {{ nodes {{ updatedAt }} }} }} }}"
    )
}

fn updated_at(discussion: &Value) -> Option<Timestamp> {
    discussion["updatedAt"].as_str()?.parse().ok()
}

fn discussions_query() -> String {
    format!(
        "query($owner: String!, $name: String!, $after: String) {{ {RATE}
          repository(owner: $owner, name: $name) {{
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
          repository(owner: $owner, name: $name) {{
            discussionCategories(first: 100) {{ nodes {{ id name slug emoji description isAnswerable createdAt updatedAt }} }} }} }}"
    )
}

/// `value` at `path` (object keys).
fn at<'v>(value: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(value, |v, key| &v[*key])
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
/// their `pageInfo` removed. With `since`, a probe of the newest first: nothing newer,
/// nothing more is asked. Pages are read until one holds a discussion older than
/// `since` (that page is read to its end: GitHub's order is trusted no further).
pub(crate) async fn discussions(
    api: &mut Api<'_>,
    owner: &str,
    name: &str,
    since: Option<Timestamp>,
) -> Result<Vec<Value>, SourceError> {
    let newer = |d: &Value| since.is_none_or(|since| updated_at(d).is_none_or(|u| u >= since));
    if since.is_some() {
        let data = api
            .graphql(&probe_query(), json!({ "owner": owner, "name": name }))
            .await?;
        let (newest, _) = page(&repository(&data, owner, name)?["discussions"]);
        if !newest.iter().any(newer) {
            return Ok(Vec::new());
        }
    }
    let query = discussions_query();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let variables = json!({ "owner": owner, "name": name, "after": after });
        let data = api.graphql(&query, variables).await?;
        let (nodes, next) = page(&repository(&data, owner, name)?["discussions"]);
        let older = nodes.iter().any(|d| !newer(d));
        for mut discussion in nodes.into_iter().filter(newer) {
            complete(api, owner, name, &mut discussion).await?;
            out.push(discussion);
        }
        match next {
            Some(cursor) if !older => after = Some(cursor),
            _ => return Ok(out),
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
        whole(comment, "replies", replies);
    }
    whole(discussion, "comments", comments);
    Ok(())
}
