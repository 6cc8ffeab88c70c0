//! The receiver's decisions, in-process on the in-memory queue: what is enqueued for
//! which delivery, and what is refused.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use repovault_core::config::RawConfig;
use repovault_core::ports::queue::Queue;
use repovault_core::{JobMessage, RepoEvent, Secret};
use repovault_local::MemoryQueue;
use repovault_receiver::{Answer, Delivery, Receiver, ReceiverConfig};
use serde_json::json;

const SECRET: &str = "webhook-secret";

fn setup(debounce: Duration) -> (Receiver, Arc<MemoryQueue>) {
    let config = RawConfig::from_yaml(
        "allow-insecure-http: true\njobs:\n  - source: { org: acme, api-url: \"http://127.0.0.1:9\", exclude: [\"^skip-\"] }\n    target: /backups\n",
    )
    .unwrap()
    .validate(std::path::Path::new("/"))
    .unwrap();
    let queue = Arc::new(MemoryQueue::new(Duration::from_secs(60), 3));
    let receiver = Receiver::new(
        ReceiverConfig {
            secret: Secret::new(SECRET),
            jobs: config.jobs,
            debounce,
        },
        queue.clone() as Arc<dyn Queue>,
    );
    (receiver, queue)
}

fn repository(owner: &str, name: &str) -> serde_json::Value {
    json!({
        "id": 42, "name": name, "full_name": format!("{owner}/{name}"), "private": true,
        "owner": {"login": owner, "type": "Organization"},
        "clone_url": format!("http://127.0.0.1:9/{owner}/{name}.git"),
        "default_branch": "main", "pushed_at": 1764370000, "size": 10,
        "archived": false, "fork": false, "has_wiki": false, "topics": []
    })
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(
    receiver: &Receiver,
    event: &str,
    id: &str,
    payload: &serde_json::Value,
) -> Answer {
    let body = serde_json::to_vec(payload).unwrap();
    let signature = sign(&body);
    receiver
        .handle(Delivery {
            event: Some(event),
            id: Some(id),
            signature: Some(&signature),
            body: &body,
        })
        .await
}

/// Every message on the queue, delayed ones included (waiting out their delay).
async fn drain(queue: &MemoryQueue, expected: usize) -> Vec<JobMessage> {
    let mut messages = Vec::new();
    while messages.len() < expected {
        let leases = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert!(
            !leases.is_empty(),
            "only {} of {expected} messages",
            messages.len()
        );
        for lease in leases {
            messages.push(JobMessage::parse(&lease.body).unwrap());
            queue.ack(&lease).await.unwrap();
        }
    }
    messages
}

#[tokio::test]
async fn a_signed_push_enqueues_one_job_for_its_repository() {
    let (receiver, queue) = setup(Duration::from_secs(60));
    let answer = deliver(
        &receiver,
        "push",
        "d-1",
        &json!({"ref": "refs/heads/main", "repository": repository("acme", "api")}),
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let messages = drain(&queue, 1).await;
    let job = &messages[0];
    assert_eq!(job.repo.full_name(), "acme/api");
    assert_eq!(job.target.to_string(), "file:///backups");
    assert!(
        job.run_id.to_string().starts_with("event-"),
        "{}",
        job.run_id
    );
    assert_eq!(job.event, None);
}

#[tokio::test]
async fn unsigned_wrongly_signed_and_malformed_deliveries_enqueue_nothing() {
    let (receiver, queue) = setup(Duration::from_secs(60));
    let body = serde_json::to_vec(&json!({"repository": repository("acme", "api")})).unwrap();
    for signature in [None, Some("sha256=00"), Some(&*sign(b"another body"))] {
        let answer = receiver
            .handle(Delivery {
                event: Some("push"),
                id: Some("x"),
                signature,
                body: &body,
            })
            .await;
        assert_eq!(answer.status, 401, "{signature:?}");
    }
    let garbage = b"{not json";
    let answer = receiver
        .handle(Delivery {
            event: Some("push"),
            id: Some("y"),
            signature: Some(&sign(garbage)),
            body: garbage,
        })
        .await;
    assert_eq!(answer.status, 400);
    let ping = deliver(
        &receiver,
        "ping",
        "p",
        &json!({"zen": "Keep it logically awesome."}),
    )
    .await;
    assert_eq!(ping.status, 200);
    let depth = queue.depth().await.unwrap();
    assert_eq!(depth.visible + depth.in_flight, 0);
}

#[tokio::test]
async fn a_replayed_delivery_and_unconfigured_repositories_enqueue_nothing() {
    let (receiver, queue) = setup(Duration::ZERO);
    let payload = json!({"repository": repository("acme", "api")});
    assert_eq!(
        deliver(&receiver, "push", "same", &payload).await.status,
        202
    );
    let replay = deliver(&receiver, "push", "same", &payload).await;
    assert_eq!((replay.status, replay.body.as_str()), (200, "seen before"));
    for (n, payload) in [
        json!({"repository": repository("other-org", "api")}),
        json!({"repository": repository("acme", "skip-me")}),
    ]
    .iter()
    .enumerate()
    {
        let answer = deliver(&receiver, "push", &format!("o{n}"), payload).await;
        assert_eq!(answer.status, 202);
        assert!(answer.body.contains("ignored"), "{answer:?}");
    }
    assert_eq!(drain(&queue, 1).await.len(), 1);
    let depth = queue.depth().await.unwrap();
    assert_eq!(depth.visible + depth.in_flight, 0);
}

#[tokio::test]
async fn a_burst_of_twenty_pushes_makes_at_most_two_jobs() {
    let (receiver, queue) = setup(Duration::from_secs(1));
    let payload = json!({"repository": repository("acme", "api")});
    let mut enqueued = 0;
    for i in 0..20 {
        let answer = deliver(&receiver, "push", &format!("burst-{i}"), &payload).await;
        assert_eq!(answer.status, 202);
        enqueued += usize::from(answer.body.contains("enqueued"));
    }
    assert_eq!(enqueued, 2, "one at once, one at the window's end");
    // One is visible now, the other after the window.
    assert_eq!(queue.receive(10, Duration::ZERO).await.unwrap().len(), 1);
    let later = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(later.len(), 1);
}

#[tokio::test]
async fn renames_transfers_and_deletions_tell_the_worker() {
    let (receiver, queue) = setup(Duration::from_secs(60));
    let renamed = json!({
        "action": "renamed", "repository": repository("acme", "new-name"),
        "changes": {"repository": {"name": {"from": "old-name"}}}
    });
    let transferred = json!({
        "action": "transferred", "repository": repository("acme", "moved"),
        "changes": {"owner": {"from": {"organization": {"login": "elsewhere"}}}}
    });
    let deleted = json!({"action": "deleted", "repository": repository("acme", "gone")});
    for (i, payload) in [renamed, transferred, deleted].iter().enumerate() {
        assert_eq!(
            deliver(&receiver, "repository", &format!("r{i}"), payload)
                .await
                .status,
            202
        );
    }
    let mut events: Vec<(String, Option<RepoEvent>)> = drain(&queue, 3)
        .await
        .into_iter()
        .map(|m| (m.repo.full_name(), m.event))
        .collect();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        events,
        vec![
            ("acme/gone".into(), Some(RepoEvent::Deleted)),
            (
                "acme/moved".into(),
                Some(RepoEvent::Moved {
                    from: "elsewhere/moved".into()
                })
            ),
            (
                "acme/new-name".into(),
                Some(RepoEvent::Moved {
                    from: "acme/old-name".into()
                })
            ),
        ]
    );
}

/// A Lambda Function URL invocation (payload format 2.0), as AWS sends it.
fn function_url_event(body: &str, headers: serde_json::Value, base64: bool) -> String {
    use base64::Engine;
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_owned()
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1", "sourceIp": "140.82.115.1", "userAgent": "GitHub-Hookshot/abc"},
            "requestId": "id", "routeKey": "$default", "stage": "$default",
            "time": "29/Nov/2026:01:02:03 +0000", "timeEpoch": 1795914123000_u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

#[tokio::test]
async fn the_lambda_entry_point_answers_a_function_url_invocation_like_the_server() {
    let (receiver, queue) = setup(Duration::from_secs(1));
    let payload = json!({"repository": repository("acme", "api")}).to_string();
    let signed = json!({
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": "lambda-1",
        "x-hub-signature-256": sign(payload.as_bytes()),
    });
    for base64 in [false, true] {
        let mut headers = signed.clone();
        headers["x-github-delivery"] = json!(format!("lambda-{base64}"));
        let request =
            lambda_http::request::from_str(&function_url_event(&payload, headers, base64)).unwrap();
        let response = repovault_receiver::lambda::handle(&receiver, request).await;
        assert_eq!(response.status(), 202, "{:?}", response.body());
    }
    let unsigned = json!({"x-github-event": "push", "x-github-delivery": "lambda-x"});
    let request =
        lambda_http::request::from_str(&function_url_event(&payload, unsigned, false)).unwrap();
    assert_eq!(
        repovault_receiver::lambda::handle(&receiver, request)
            .await
            .status(),
        401
    );
    // The second invocation fell in the first one's window: one job now, one delayed.
    let messages = drain(&queue, 2).await;
    assert!(messages.iter().all(|m| m.repo.full_name() == "acme/api"));
}
