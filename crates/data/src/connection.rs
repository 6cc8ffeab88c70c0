//! GraphQL connections as GitHub answers them: a page of `nodes` and the cursor of
//! the next, and a connection stored whole (every node, no cursor).

use serde_json::{Value, json};

/// Every query asks what it cost and what is left of the budget.
pub(crate) const RATE: &str = "rateLimit { cost remaining resetAt }";

/// A connection's nodes and the cursor of its next page, if any.
pub(crate) fn page(connection: &Value) -> (Vec<Value>, Option<String>) {
    let nodes = connection["nodes"].as_array().cloned().unwrap_or_default();
    let next = match connection["pageInfo"]["hasNextPage"].as_bool() {
        Some(true) => connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned),
        _ => None,
    };
    (nodes, next)
}

/// `item[field]` as stored: its count and every node, no cursor.
pub(crate) fn whole(item: &mut Value, field: &str, nodes: Vec<Value>) {
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
        whole(
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
