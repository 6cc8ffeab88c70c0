//! What is done to GitHub's items between reading and storing them: merging what
//! changed into what was, choosing the reviews to read again, taking out what must
//! never be stored. No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use repovault_core::DataFile;
use serde_json::Value;

/// `old` with every item of `fresh` put in by `id` (replacing the old version).
pub(crate) fn merge(old: Vec<Value>, fresh: Vec<Value>) -> Vec<Value> {
    let mut by_id: BTreeMap<String, Value> =
        old.into_iter().map(|v| (v["id"].to_string(), v)).collect();
    for item in fresh {
        by_id.insert(item["id"].to_string(), item);
    }
    by_id.into_values().collect()
}

/// The numbers of the pull requests updated at or after `since` (all of them
/// without): those whose reviews are read again.
pub(crate) fn pull_requests_updated(pulls: &[Value], since: Option<Timestamp>) -> Vec<u64> {
    pulls
        .iter()
        .filter(|p| since.is_none_or(|since| updated_at(p).is_some_and(|t| t >= since)))
        .filter_map(|p| p["number"].as_u64())
        .collect()
}

/// Of the reviews `old`, those of pull requests not in `updated` (the rest are read
/// again). A review that names no pull request is kept.
pub(crate) fn reviews_kept(old: Vec<Value>, updated: &[u64]) -> Vec<Value> {
    let updated: BTreeSet<u64> = updated.iter().copied().collect();
    old.into_iter()
        .filter(|r| pull_number(r).is_none_or(|n| !updated.contains(&n)))
        .collect()
}

fn updated_at(item: &Value) -> Option<Timestamp> {
    item["updated_at"].as_str()?.parse().ok()
}

/// The pull request a review belongs to (from its `pull_request_url`).
fn pull_number(review: &Value) -> Option<u64> {
    review["pull_request_url"]
        .as_str()?
        .rsplit('/')
        .next()?
        .parse()
        .ok()
}

/// The release assets `releases` list: of `stored`, those still listed, and the ids
/// listed but not stored yet, in order.
pub(crate) fn release_assets(
    releases: &[Value],
    stored: &BTreeMap<u64, DataFile>,
) -> (BTreeMap<u64, DataFile>, Vec<u64>) {
    let listed: BTreeSet<u64> = releases
        .iter()
        .filter_map(|r| r["assets"].as_array())
        .flatten()
        .filter_map(|a| a["id"].as_u64())
        .collect();
    let kept = stored
        .iter()
        .filter(|(id, _)| listed.contains(id))
        .map(|(id, file)| (*id, file.clone()))
        .collect();
    let missing = listed
        .into_iter()
        .filter(|id| !stored.contains_key(id))
        .collect();
    (kept, missing)
}

/// A webhook as stored: without its secret (GitHub masks it; be sure), and its URL
/// reduced to scheme and host (and port): a Slack or Teams URL's path, `user:pass@`
/// and `?token=` are credentials. A URL that does not parse is not kept.
pub(crate) fn sanitise_webhook(hook: &mut Value) {
    let Some(config) = hook.get_mut("config").and_then(Value::as_object_mut) else {
        return;
    };
    config.remove("secret");
    if let Some(url) = config.get_mut("url") {
        *url = url
            .as_str()
            .and_then(origin)
            .map_or(Value::Null, Value::from);
    }
}

/// A secret-scanning alert as stored: its metadata (type, state, resolution, who and
/// when), never the secret it found.
pub(crate) fn sanitise_secret_alert(alert: &mut Value) {
    if let Some(alert) = alert.as_object_mut() {
        alert.remove("secret");
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_alert_is_kept_without_its_secret() {
        let mut alert = json!({"number": 1, "secret_type": "github_personal_access_token",
            "secret": "ghp_leaked", "state": "resolved", "resolution": "revoked"});
        sanitise_secret_alert(&mut alert);
        assert_eq!(
            alert,
            json!({"number": 1, "secret_type": "github_personal_access_token",
                "state": "resolved", "resolution": "revoked"})
        );
    }

    #[test]
    fn merge_replaces_by_id_and_keeps_the_rest() {
        let old = vec![
            json!({"id": 1, "body": "one"}),
            json!({"id": 2, "body": "two"}),
        ];
        let fresh = vec![
            json!({"id": 2, "body": "two, edited"}),
            json!({"id": 3, "body": "three"}),
        ];
        let merged = merge(old, fresh);
        let bodies: Vec<&str> = merged.iter().map(|v| v["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["one", "two, edited", "three"]);
    }

    #[test]
    fn the_reviews_of_pull_requests_not_updated_are_kept() {
        let pulls = vec![
            json!({"number": 1, "updated_at": "2026-11-20T00:00:00Z"}),
            json!({"number": 2, "updated_at": "2026-11-22T12:00:00Z"}),
            json!({"number": 3, "updated_at": "2026-11-23T00:00:00Z"}),
        ];
        let since = "2026-11-22T12:00:00Z".parse().unwrap();
        let updated = pull_requests_updated(&pulls, Some(since));
        assert_eq!(updated, [2, 3], "at or after `since`");
        assert_eq!(pull_requests_updated(&pulls, None), [1, 2, 3]);

        let review = |id: u64, pull: u64| json!({"id": id, "pull_request_url": format!("https://api.github.com/repos/acme/api/pulls/{pull}")});
        let old = vec![
            review(10, 1),
            review(20, 2),
            review(30, 3),
            json!({"id": 40}),
        ];
        let kept: Vec<u64> = reviews_kept(old, &updated)
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(kept, [10, 40]);
    }

    #[test]
    fn release_assets_are_stored_once_and_dropped_when_no_release_lists_them() {
        let file = |id: u64| DataFile {
            key: format!("repos/acme/api/assets/{id}"),
            items: 1,
            size: 1,
            sha256: String::new(),
            etag: None,
        };
        let stored = BTreeMap::from([(1, file(1)), (2, file(2))]);
        let releases = vec![
            json!({"id": 100, "assets": [{"id": 2}, {"id": 3}]}),
            json!({"id": 101, "assets": []}),
            json!({"id": 102}),
        ];
        let (kept, missing) = release_assets(&releases, &stored);
        assert_eq!(kept, BTreeMap::from([(2, file(2))]));
        assert_eq!(missing, [3]);
    }

    #[test]
    fn a_webhook_keeps_neither_its_secret_nor_its_urls_credentials() {
        for (url, kept) in [
            (
                "https://hooks.slack.com/services/T0001/B0002/XXXXsecret",
                json!("https://hooks.slack.com"),
            ),
            (
                "https://ci:hunter2@ci.example.com:8443/hook?token=s3cr3t#x",
                json!("https://ci.example.com:8443"),
            ),
            (
                "https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
                json!("https://acme.webhook.office.com"),
            ),
            ("http://10.0.0.1:80/x", json!("http://10.0.0.1")),
            ("not a url ?token=s3cr3t", Value::Null),
        ] {
            let mut hook = json!({
                "id": 1, "name": "web", "url": "https://api.github.com/repos/acme/api/hooks/1",
                "config": {"url": url, "content_type": "json", "insecure_ssl": "0", "secret": "********"},
            });
            sanitise_webhook(&mut hook);
            assert_eq!(hook["config"]["url"], kept, "{url}");
            assert!(hook["config"].get("secret").is_none());
            assert_eq!(hook["config"]["content_type"], "json");
            assert_eq!(
                hook["url"], "https://api.github.com/repos/acme/api/hooks/1",
                "the hook's own API URL is no secret"
            );
        }
        // Not a webhook object at all: left as it is.
        let mut odd = json!(["config"]);
        sanitise_webhook(&mut odd);
        assert_eq!(odd, json!(["config"]));
    }
}
