//! The fake GitHub's GraphQL endpoint answers as GitHub's does where a reader of
//! discussions and Projects v2 depends on it: GitHub's schema and errors, connections
//! with cursors, `updatedAt` ordering, its own budget of points, and scopes.

use std::time::Duration;

use crate::support::{Reply, TOKEN, github, send};
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec};
use serde_json::{Value, json};

/// `POST /graphql` with the token.
async fn gql(gh: &FakeGitHub, query: &str, variables: Value) -> Reply {
    gql_as(gh, Some(TOKEN), query, variables).await
}

async fn gql_as(gh: &FakeGitHub, token: Option<&str>, query: &str, variables: Value) -> Reply {
    let url = format!("{}/graphql", gh.api_url());
    let body = json!({ "query": query, "variables": variables }).to_string();
    let headers = [("Content-Type", "application/json")];
    send("POST", &url, token, &headers, body.as_bytes()).await
}

/// `data` of a query that must succeed.
async fn data(gh: &FakeGitHub, query: &str, variables: Value) -> Value {
    let reply = gql(gh, query, variables).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

/// `acme/api` with 3 issues, 2 pull requests and 5 discussions (numbers 6 to 10).
async fn fake() -> FakeGitHub {
    let gh = github().await;
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 3,
            pulls: 2,
            discussions: 5,
            ..Default::default()
        },
    );
    gh
}

fn timestamp(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a DateTime: {v}"))
}

const DISCUSSIONS: &str = r#"
query Discussions($owner: String!, $name: String!, $after: String) {
  repository(owner: $owner, name: $name) {
    hasDiscussionsEnabled
    categories: discussionCategories(first: 10) { nodes { ...Category } }
    discussions(first: 10, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      totalCount
      pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
      nodes {
        __typename id number title body bodyHTML url createdAt updatedAt closed closedAt locked
        isAnswered answer { id } answerChosenAt answerChosenBy { login }
        author { __typename login ... on User { id } }
        category { ...Category }
        labels(first: 10) { nodes { name } }
        upvoteCount
        poll { question totalVoteCount options(first: 10) { nodes { option totalVoteCount } } }
        comments(first: 10) {
          totalCount
          nodes {
            id body url createdAt updatedAt author { login } isAnswer upvoteCount
            replies(first: 10) { totalCount nodes { id body createdAt updatedAt author { login } url } }
          }
        }
      }
    }
  }
}
fragment Category on DiscussionCategory { id name slug emoji isAnswerable }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discussions_answer_every_field_with_githubs_types() {
    let gh = fake().await;
    let data = data(&gh, DISCUSSIONS, json!({ "owner": "acme", "name": "api" })).await;
    let repo = &data["repository"];
    assert_eq!(repo["hasDiscussionsEnabled"], true);
    let categories = repo["categories"]["nodes"].as_array().unwrap();
    let slugs: Vec<&str> = categories
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        [
            "announcements",
            "general",
            "ideas",
            "polls",
            "q-a",
            "show-and-tell"
        ]
    );
    let discussions = &repo["discussions"];
    assert_eq!(discussions["totalCount"], 5);
    assert_eq!(discussions["pageInfo"]["hasNextPage"], false);
    let nodes = discussions["nodes"].as_array().unwrap();
    let mut numbers: Vec<u64> = nodes
        .iter()
        .map(|d| d["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [10, 9, 8, 7, 6], "newest activity first");
    numbers.sort_unstable();
    assert_eq!(
        numbers[0], 6,
        "after the issues' and pull requests' numbers"
    );
    for d in nodes {
        assert_eq!(d["__typename"], "Discussion");
        assert!(d["id"].as_str().unwrap().starts_with("D_"), "{d}");
        for field in ["title", "body", "bodyHTML", "url"] {
            assert!(d[field].is_string(), "{field}: {d}");
        }
        assert!(
            d["body"]
                .as_str()
                .unwrap()
                .contains("/user-attachments/assets/")
        );
        assert!(d["bodyHTML"].as_str().unwrap().contains("<img src="));
        assert!(timestamp(&d["updatedAt"]) >= timestamp(&d["createdAt"]));
        assert!(d["closed"].is_boolean() && d["locked"].is_boolean());
        assert_eq!(d["closed"], !d["closedAt"].is_null());
        assert_eq!(d["author"]["__typename"], "User");
        assert!(d["author"]["id"].is_string());
        assert!(d["upvoteCount"].is_u64());
        assert_eq!(d["labels"]["nodes"].as_array().unwrap().len(), 1);
        let comments = &d["comments"];
        assert_eq!(comments["totalCount"], 3);
        for c in comments["nodes"].as_array().unwrap() {
            assert!(c["url"].as_str().unwrap().contains("#discussioncomment-"));
            assert!(c["isAnswer"].is_boolean());
            timestamp(&c["createdAt"]);
            for r in c["replies"]["nodes"].as_array().unwrap() {
                assert!(r["body"].as_str().unwrap().starts_with("Reply"));
                assert!(r["author"]["login"].is_string());
            }
        }
        let replies: Vec<u64> = comments["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["replies"]["totalCount"].as_u64().unwrap())
            .collect();
        assert_eq!(replies, [2, 1, 0]);
    }
    let question = nodes.iter().find(|d| d["number"] == 6).unwrap();
    assert_eq!(question["category"]["slug"], "q-a");
    assert_eq!(question["category"]["isAnswerable"], true);
    assert_eq!(question["isAnswered"], true);
    let answer = &question["comments"]["nodes"][0];
    assert_eq!(question["answer"]["id"], answer["id"]);
    assert_eq!(answer["isAnswer"], true);
    assert_eq!(question["answerChosenBy"]["login"], "octocat");
    timestamp(&question["answerChosenAt"]);
    let poll = &nodes.iter().find(|d| d["number"] == 7).unwrap()["poll"];
    assert_eq!(poll["totalVoteCount"], 8);
    assert_eq!(
        poll["options"]["nodes"][1],
        json!({ "option": "v2.0", "totalVoteCount": 5 })
    );
    assert!(
        nodes
            .iter()
            .filter(|d| d["number"] != 7)
            .all(|d| d["poll"].is_null())
    );
    let other = nodes.iter().find(|d| d["number"] == 8).unwrap();
    assert_eq!(other["isAnswered"], false);
    assert!(other["answer"].is_null() && other["answerChosenBy"].is_null());

    // One discussion by number, aliases, edges and `__typename` on a union-free path.
    let one = data_of_one(&gh).await;
    assert_eq!(one["repository"]["q"]["title"], "Question 6");
    assert_eq!(
        one["repository"]["q"]["comments"]["edges"][0]["node"]["__typename"],
        "DiscussionComment"
    );
    assert_eq!(gh.stats().graphql_requests, 2);
    assert_eq!(gh.stats().api_requests, 0, "GraphQL is counted on its own");
}

async fn data_of_one(gh: &FakeGitHub) -> Value {
    data(
        gh,
        "{ repository(owner: \"acme\", name: \"api\") { q: discussion(number: 6) { title comments(first: 1) { edges { cursor node { __typename } } } } } }",
        Value::Null,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discussions_and_comments_are_paged_with_cursors() {
    let gh = fake().await;
    let query = "query($after: String) { repository(owner: \"acme\", name: \"api\") {
        discussions(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
          edges { cursor node { number comments(first: 2) { pageInfo { hasNextPage endCursor } nodes { id } } } }
        } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = data(&gh, query, json!({ "after": after })).await;
        let page = &data["repository"]["discussions"];
        assert_eq!(page["totalCount"], 5);
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= 2);
        assert_eq!(page["pageInfo"]["hasPreviousPage"], pages > 0);
        assert_eq!(
            page["pageInfo"]["endCursor"],
            edges.last().unwrap()["cursor"]
        );
        let cursor = edges[0]["cursor"].as_str().unwrap();
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "an opaque base64 cursor: {cursor}"
        );
        seen.extend(edges.iter().map(|e| e["node"]["number"].as_u64().unwrap()));
        pages += 1;
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [10, 9, 8, 7, 6]);

    // Comments page on their own: 3 of them, 2 then 1.
    let comments = "query($after: String) { repository(owner: \"acme\", name: \"api\") {
        discussion(number: 6) { comments(first: 2, after: $after) {
          pageInfo { hasNextPage endCursor } nodes { body } } } } }";
    let first = data(&gh, comments, json!({})).await;
    let first = &first["repository"]["discussion"]["comments"];
    assert_eq!(first["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let second = data(
        &gh,
        comments,
        json!({ "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    let second = &second["repository"]["discussion"]["comments"];
    assert_eq!(second["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(second["nodes"][0]["body"], "Comment 2 on #6");
    assert_eq!(second["pageInfo"]["hasNextPage"], false);

    let bad = gql(&gh, comments, json!({ "after": "bm90IGEgY3Vyc29y" }))
        .await
        .json();
    assert_eq!(bad["errors"][0]["type"], "INVALID_CURSOR_ARGUMENTS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_reader_sees_a_touched_discussion_first_and_stops_at_its_mark() {
    let gh = fake().await;
    let query = "query($after: String) { repository(owner: \"acme\", name: \"api\") {
        discussions(first: 2, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
          pageInfo { endCursor } nodes { number updatedAt lastEditedAt body comments(last: 1) { totalCount nodes { body } } } } } }";
    let before = data(&gh, query, json!({})).await;
    let page1 = &before["repository"]["discussions"];
    let mark = timestamp(&page1["nodes"][0]["updatedAt"]);
    let cursor = page1["pageInfo"]["endCursor"].clone();

    // The oldest discussion gets a comment, another an edit.
    gh.touch_discussion("acme", "api", 6);
    gh.edit_discussion("acme", "api", 8, "Edited body");
    let after = data(&gh, query, json!({})).await;
    let nodes = after["repository"]["discussions"]["nodes"]
        .as_array()
        .unwrap();
    let changed: Vec<u64> = nodes
        .iter()
        .take_while(|d| timestamp(&d["updatedAt"]) > mark)
        .map(|d| d["number"].as_u64().unwrap())
        .collect();
    let mut sorted = changed.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [6, 8],
        "both changed ones lead, then the reader stops"
    );
    let six = nodes.iter().find(|d| d["number"] == 6).unwrap();
    assert_eq!(six["comments"]["totalCount"], 4);
    assert_eq!(six["comments"]["nodes"][0]["body"], "A new comment on #6");
    let eight = nodes.iter().find(|d| d["number"] == 8).unwrap();
    assert_eq!(eight["body"], "Edited body");
    assert_eq!(eight["lastEditedAt"], eight["updatedAt"]);

    // A cursor keeps its place: past the old first page come the unchanged ones only.
    let rest = data(&gh, query, json!({ "after": cursor })).await;
    let rest: Vec<u64> = rest["repository"]["discussions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_u64().unwrap())
        .collect();
    assert_eq!(rest, [7], "8 and 6 moved before the cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_cost_points_from_their_own_budget() {
    let gh = fake().await;
    let query = "{ rateLimit { cost remaining resetAt limit used nodeCount }
        repository(owner: \"acme\", name: \"api\") { discussions(first: 100) { nodes {
          comments(first: 100) { nodes { replies(first: 10) { nodes { id } } } } } } } }";
    let first = gql(&gh, query, Value::Null).await;
    assert_eq!(first.header("x-ratelimit-resource"), "graphql");
    assert_eq!(first.header("x-ratelimit-limit"), "5000");
    let rate = first.json()["data"]["rateLimit"].clone();
    // 1 discussions request + 100 comments requests + 100 × 100 replies requests,
    // divided by 100: GitHub's cost.
    assert_eq!(rate["cost"], 101);
    assert_eq!(rate["nodeCount"], 100 + 100 * 100 + 100 * 100 * 10);
    assert_eq!(rate["limit"], 5000);
    assert_eq!(rate["used"], 101);
    assert_eq!(rate["remaining"], 5000 - 101);
    assert_eq!(first.header("x-ratelimit-remaining"), "4899");
    assert!(timestamp(&rate["resetAt"]) > jiff::Timestamp::now());

    let small = "{ rateLimit { cost remaining used } viewer { login } }";
    let second = data(&gh, small, Value::Null).await;
    assert_eq!(
        second["rateLimit"],
        json!({ "cost": 1, "remaining": 4898, "used": 102 })
    );
    assert_eq!(second["viewer"]["login"], "repovault-bot");
    assert_eq!(gh.graphql_points_remaining(), 4898);
    let stats = gh.stats();
    assert_eq!((stats.graphql_requests, stats.graphql_points), (2, 102));

    // REST's budget is another one.
    let url = format!("{}/rate_limit", gh.api_url());
    let rest = send("GET", &url, Some(TOKEN), &[], &[]).await;
    assert_eq!(rest.header("x-ratelimit-resource"), "core");
    assert_eq!(rest.header("x-ratelimit-used"), "1");
    let resources = &rest.json()["resources"];
    assert_eq!(resources["graphql"]["used"], 102);
    assert_eq!(resources["graphql"]["remaining"], 4898);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_budget_github_answers_rate_limited() {
    let gh = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        graphql_rate_limit: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let query = "{ viewer { login } }";
    for _ in 0..2 {
        data(&gh, query, Value::Null).await;
    }
    let limited = gql(&gh, query, Value::Null).await;
    assert_eq!(limited.status, 200, "GitHub answers 200");
    let body = limited.json();
    assert_eq!(body["errors"][0]["type"], "RATE_LIMITED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded for")
    );
    assert!(body.get("data").is_none());
    assert_eq!(limited.header("x-ratelimit-remaining"), "0");
    assert_eq!(limited.header("x-ratelimit-resource"), "graphql");

    // On demand, with the reset it names.
    let gh = fake().await;
    gh.graphql_rate_limit_next(1, Duration::from_secs(120));
    let limited = gql(&gh, query, Value::Null).await;
    assert_eq!(limited.json()["errors"][0]["type"], "RATE_LIMITED");
    assert_eq!(limited.header("x-ratelimit-remaining"), "0");
    let reset: u64 = limited.header("x-ratelimit-reset").parse().unwrap();
    let now = jiff::Timestamp::now().as_second() as u64;
    assert!((now + 118..=now + 122).contains(&reset), "{reset} vs {now}");
    data(&gh, query, Value::Null).await;
    let stats = gh.stats();
    assert_eq!((stats.graphql_rate_limited, stats.graphql_points), (1, 1));

    gh.graphql_error_next(1, 502);
    assert_eq!(gql(&gh, query, Value::Null).await.status, 502);
    gh.graphql_secondary_limit_next(1, Duration::from_secs(30));
    let secondary = gql(&gh, query, Value::Null).await;
    assert_eq!(secondary.status, 403);
    assert_eq!(secondary.header("retry-after"), "30");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_githubs_errors() {
    let gh = fake().await;
    let unknown = gql(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { discussions(first: 1) { nodes { title bogus } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(unknown.status, 200);
    let body = unknown.json();
    assert!(body.get("data").is_none(), "{body}");
    let error = &body["errors"][0];
    assert_eq!(
        error["message"],
        "Field 'bogus' doesn't exist on type 'Discussion'"
    );
    assert_eq!(error["extensions"]["code"], "undefinedField");
    assert_eq!(error["locations"][0]["line"], 1);
    assert_eq!(
        error["path"],
        json!(["query", "repository", "discussions", "nodes", "bogus"])
    );

    let too_many = gql(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { name discussions(first: 101) { totalCount } } }",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(too_many["errors"][0]["type"], "EXCESSIVE_PAGINATION");
    assert_eq!(
        too_many["errors"][0]["message"],
        "Requesting 101 records on the `discussions` connection exceeds the `first` limit of 100 records."
    );
    assert_eq!(
        too_many["errors"][0]["path"],
        json!(["repository", "discussions"])
    );
    assert_eq!(
        too_many["data"],
        json!({ "repository": null }),
        "null up to the nullable repository"
    );

    let unbounded = gql(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { discussions { totalCount } } }",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(
        unbounded["errors"][0]["type"],
        "MISSING_PAGINATION_BOUNDARIES"
    );

    let missing = gql(
        &gh,
        "query($owner: String!) { repository(owner: $owner, name: \"api\") { name } }",
        json!({}),
    )
    .await
    .json();
    assert_eq!(
        missing["errors"][0]["message"],
        "Variable $owner of type String! was provided invalid value"
    );

    let unused = gql(&gh, "query($n: Int) { viewer { login } }", json!({}))
        .await
        .json();
    assert_eq!(
        unused["errors"][0]["message"],
        "Variable $n is declared by anonymous query but not used"
    );
    let typo = gql(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { discussions(first: 1, orderBy: {field: UPDATED, direction: DESC}) { totalCount } } }",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(
        typo["errors"][0]["extensions"]["code"],
        "argumentLiteralsIncompatible"
    );
    let order = gql(
        &gh,
        "query($order: DiscussionOrder) { repository(owner: \"acme\", name: \"api\") { discussions(first: 1, orderBy: $order) { totalCount } } }",
        json!({ "order": { "field": "UPDATED", "direction": "DESC" } }),
    )
    .await
    .json();
    assert_eq!(
        order["errors"][0]["extensions"]["problems"][0],
        json!({ "path": ["field"], "explanation": "Expected \"UPDATED\" to be one of: CREATED_AT, UPDATED_AT" })
    );

    let unparsed = gql(&gh, "{ repository(owner: \"acme\" ", Value::Null)
        .await
        .json();
    assert!(
        unparsed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Parse error")
    );

    let scalar = gql(&gh, "{ viewer { login { x } } }", Value::Null)
        .await
        .json();
    assert_eq!(
        scalar["errors"][0]["extensions"]["code"],
        "selectionMismatch"
    );
    let argument = gql(&gh, "{ viewer(foo: 1) { login } }", Value::Null)
        .await
        .json();
    assert_eq!(
        argument["errors"][0]["message"],
        "Field 'viewer' doesn't accept argument 'foo'"
    );

    // A repository that is not there (or not visible to the token), with the rest
    // of the query answered.
    gh.add_repo(RepoSpec::new("acme", "gone").private());
    gh.delete_repo("acme", "gone");
    let not_found = gql(
        &gh,
        "{ gone: repository(owner: \"acme\", name: \"gone\") { id } viewer { login } }",
        Value::Null,
    )
    .await
    .json();
    assert_eq!(
        not_found["data"],
        json!({ "gone": null, "viewer": { "login": "repovault-bot" } })
    );
    assert_eq!(not_found["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(not_found["errors"][0]["path"], json!(["gone"]));
    assert_eq!(
        not_found["errors"][0]["message"],
        "Could not resolve to a Repository with the name 'acme/gone'."
    );
    assert_eq!(gh.stats().graphql_points, 3, "only executed queries cost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_needs_the_token_even_for_public_data() {
    let gh = fake().await;
    let query = "{ repository(owner: \"acme\", name: \"api\") { name } }";
    let anonymous = gql_as(&gh, None, query, Value::Null).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["message"],
        "This endpoint requires you to be authenticated."
    );
    let bad = gql_as(&gh, Some("ghp_wrong"), query, Value::Null).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["message"], "Bad credentials");
    assert_eq!(gh.stats().graphql_points, 0);
}

const PROJECT: &str = r#"
query($login: String!, $after: String) {
  organization(login: $login) {
    projectsV2(first: 10) {
      totalCount
      nodes {
        id number title shortDescription readme public closed url createdAt updatedAt
        owner { __typename ... on Organization { login } }
        fields(first: 20) { nodes {
          __typename
          ... on ProjectV2FieldCommon { id name dataType }
          ... on ProjectV2SingleSelectField { options { id name color description } }
          ... on ProjectV2IterationField { configuration {
            duration startDay
            iterations { id title startDate duration }
            completedIterations { id title startDate duration } } }
        } }
        items(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage endCursor }
          nodes {
            id type isArchived createdAt updatedAt
            content {
              __typename
              ... on Issue { number title url repository { nameWithOwner } }
              ... on PullRequest { number title url repository { nameWithOwner } }
              ... on DraftIssue { title body }
            }
            fieldValues(first: 20) { nodes {
              __typename
              ... on ProjectV2ItemFieldTextValue { text field { ...FieldName } }
              ... on ProjectV2ItemFieldSingleSelectValue { name optionId field { ...FieldName } }
              ... on ProjectV2ItemFieldNumberValue { number field { ...FieldName } }
              ... on ProjectV2ItemFieldDateValue { date field { ...FieldName } }
              ... on ProjectV2ItemFieldIterationValue { title iterationId startDate duration field { ...FieldName } }
              ... on ProjectV2ItemFieldRepositoryValue { repository { nameWithOwner } }
              ... on ProjectV2ItemFieldLabelValue { labels(first: 5) { nodes { name } } }
            } }
          }
        }
      }
    }
  }
}
fragment FieldName on ProjectV2FieldConfiguration { ... on ProjectV2FieldCommon { name } }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_items_carry_their_field_values() {
    let gh = fake().await;
    let number = gh.add_project("acme", "Roadmap", &["api"]);
    assert_eq!(number, 1);
    let mut items = Vec::new();
    let mut after = Value::Null;
    let project = loop {
        let data = data(&gh, PROJECT, json!({ "login": "acme", "after": after })).await;
        let projects = &data["organization"]["projectsV2"];
        assert_eq!(projects["totalCount"], 1);
        let project = projects["nodes"][0].clone();
        let page = &project["items"];
        items.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] == false {
            break project;
        }
        after = page["pageInfo"]["endCursor"].clone();
    };
    assert_eq!(project["title"], "Roadmap");
    assert_eq!(project["number"], 1);
    assert!(project["id"].as_str().unwrap().starts_with("PVT_"));
    assert_eq!(
        project["owner"],
        json!({ "__typename": "Organization", "login": "acme" })
    );
    assert!(
        project["url"]
            .as_str()
            .unwrap()
            .ends_with("/orgs/acme/projects/1")
    );
    let fields = project["fields"]["nodes"].as_array().unwrap();
    let names: Vec<(&str, &str)> = fields
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["dataType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("Title", "TITLE"),
            ("Assignees", "ASSIGNEES"),
            ("Status", "SINGLE_SELECT"),
            ("Labels", "LABELS"),
            ("Repository", "REPOSITORY"),
            ("Notes", "TEXT"),
            ("Estimate", "NUMBER"),
            ("Due", "DATE"),
            ("Sprint", "ITERATION"),
        ]
    );
    let status = &fields[2];
    assert_eq!(status["__typename"], "ProjectV2SingleSelectField");
    let options: Vec<&str> = status["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["Todo", "In Progress", "Done"]);
    let sprint = &fields[8];
    assert_eq!(sprint["__typename"], "ProjectV2IterationField");
    assert_eq!(sprint["configuration"]["duration"], 14);
    assert_eq!(
        sprint["configuration"]["iterations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        fields[0].get("options").is_none(),
        "fragments apply by type"
    );

    let kinds: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ISSUE", "ISSUE", "PULL_REQUEST", "DRAFT_ISSUE"]);
    assert_eq!(items[0]["content"]["__typename"], "Issue");
    assert_eq!(items[0]["content"]["number"], 1);
    assert_eq!(
        items[0]["content"]["repository"]["nameWithOwner"],
        "acme/api"
    );
    assert_eq!(items[2]["content"]["__typename"], "PullRequest");
    assert_eq!(items[2]["content"]["number"], 4);
    assert_eq!(items[3]["content"]["__typename"], "DraftIssue");
    assert!(
        items[3]["content"]["body"]
            .as_str()
            .unwrap()
            .contains("user-attachments")
    );
    for item in &items {
        let values = item["fieldValues"]["nodes"].as_array().unwrap();
        let by = |typename: &str| values.iter().find(|v| v["__typename"] == typename);
        let title = by("ProjectV2ItemFieldTextValue").unwrap();
        assert_eq!(title["field"]["name"], "Title");
        assert_eq!(title["text"], item["content"]["title"]);
        let state = by("ProjectV2ItemFieldSingleSelectValue").unwrap();
        assert_eq!(state["field"]["name"], "Status");
        let option = status["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == state["optionId"])
            .expect("the value names one of the field's options");
        assert_eq!(option["name"], state["name"]);
        assert!(by("ProjectV2ItemFieldNumberValue").unwrap()["number"].is_f64());
        let iteration = by("ProjectV2ItemFieldIterationValue").unwrap();
        let configuration = &sprint["configuration"];
        let known = configuration["iterations"]
            .as_array()
            .unwrap()
            .iter()
            .chain(configuration["completedIterations"].as_array().unwrap())
            .any(|i| {
                i["id"] == iteration["iterationId"] && i["startDate"] == iteration["startDate"]
            });
        assert!(known, "{iteration}");
        let date_or_text = values.iter().any(|v| {
            v["field"]["name"] == "Due" && v["date"].as_str().is_some_and(|d| d.len() == 10)
                || v["field"]["name"] == "Notes" && v["text"].is_string()
        });
        assert!(date_or_text, "{values:?}");
        if item["type"] != "DRAFT_ISSUE" {
            let repository = by("ProjectV2ItemFieldRepositoryValue").unwrap();
            assert_eq!(repository["repository"]["nameWithOwner"], "acme/api");
        }
    }

    // The same project, from its repository and by number; and a user's.
    let linked = data(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { projectsV2(first: 5) { nodes { number title } } }
           organization(login: \"acme\") { projectV2(number: 1) { title items(first: 1) { totalCount } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        linked["repository"]["projectsV2"]["nodes"],
        json!([{ "number": 1, "title": "Roadmap" }])
    );
    assert_eq!(
        linked["organization"]["projectV2"]["items"]["totalCount"],
        4
    );
    gh.add_user("octo");
    gh.add_project("octo", "Personal", &[]);
    let mine = data(
        &gh,
        "{ user(login: \"octo\") { projectsV2(first: 5) { nodes { title url items(first: 5) { nodes { type } } } } } }",
        Value::Null,
    )
    .await;
    let personal = &mine["user"]["projectsV2"]["nodes"][0];
    assert_eq!(personal["title"], "Personal");
    assert!(
        personal["url"]
            .as_str()
            .unwrap()
            .ends_with("/users/octo/projects/1")
    );
    assert_eq!(
        personal["items"]["nodes"],
        json!([{ "type": "DRAFT_ISSUE" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_project_projects_are_null_and_the_rest_answers() {
    let gh = fake().await;
    gh.add_project("acme", "Roadmap", &["api"]);
    gh.deny_projects(true);
    let reply = gql(
        &gh,
        "{ repository(owner: \"acme\", name: \"api\") { name
             projectsV2(first: 5) { nodes { title } }
             discussions(first: 1) { totalCount } } }",
        Value::Null,
    )
    .await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    let repo = &body["data"]["repository"];
    assert_eq!(repo["name"], "api");
    assert!(repo["projectsV2"].is_null());
    assert_eq!(repo["discussions"]["totalCount"], 5);
    let error = &body["errors"][0];
    assert_eq!(error["type"], "INSUFFICIENT_SCOPES");
    assert_eq!(error["path"], json!(["repository", "projectsV2"]));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("['read:project']")
    );

    gh.deny_projects(false);
    let allowed = data(
        &gh,
        "{ organization(login: \"acme\") { projectsV2(first: 5) { totalCount } } }",
        Value::Null,
    )
    .await;
    assert_eq!(allowed["organization"]["projectsV2"]["totalCount"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_discussions_are_an_empty_connection() {
    let gh = fake().await;
    gh.add_repo(RepoSpec::new("acme", "quiet"));
    let query = "query($name: String!) { repository(owner: \"acme\", name: $name) {
        hasDiscussionsEnabled discussions(first: 10) { totalCount nodes { number } }
        discussionCategories(first: 10) { totalCount } } }";
    let quiet = data(&gh, query, json!({ "name": "quiet" })).await;
    assert_eq!(
        quiet["repository"],
        json!({
            "hasDiscussionsEnabled": false,
            "discussions": { "totalCount": 0, "nodes": [] },
            "discussionCategories": { "totalCount": 0 },
        })
    );
    gh.set_discussions_enabled("acme", "api", false);
    let off = data(&gh, query, json!({ "name": "api" })).await;
    assert_eq!(off["repository"]["hasDiscussionsEnabled"], false);
    assert_eq!(off["repository"]["discussions"]["totalCount"], 0);
    let url = format!("{}/repos/acme/api", gh.api_url());
    let rest = send("GET", &url, Some(TOKEN), &[], &[]).await.json();
    assert_eq!(rest["has_discussions"], false);

    gh.set_discussions_enabled("acme", "api", true);
    let on = data(&gh, query, json!({ "name": "api" })).await;
    assert_eq!(
        on["repository"]["discussions"]["totalCount"], 5,
        "kept while off"
    );
    assert_eq!(on["repository"]["discussionCategories"]["totalCount"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_serves_graphql_at_api_graphql() {
    let gh = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        enterprise: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = gh.api_url();
    let host = base.trim_end_matches("/api/v3");
    let body = json!({ "query": "{ viewer { login } }" }).to_string();
    for url in [format!("{host}/api/graphql"), format!("{base}/graphql")] {
        let reply = send("POST", &url, Some(TOKEN), &[], body.as_bytes()).await;
        assert_eq!(reply.status, 200, "{url}");
        assert_eq!(reply.json()["data"]["viewer"]["login"], "repovault-bot");
    }
}
