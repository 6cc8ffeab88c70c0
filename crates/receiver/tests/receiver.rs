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

/// A delivery id in GitHub's form (a GUID), distinct for each `n`.
fn guid(n: u32) -> String {
    format!("{n:08x}-cc78-11e3-81ab-4c9367dc0958")
}

/// A `push` event's payload for `repository`.
fn push(repository: serde_json::Value) -> serde_json::Value {
    json!({"ref": "refs/heads/main", "before": "0".repeat(40), "after": "1".repeat(40), "commits": [], "repository": repository})
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
    deliver_body(receiver, event, id, &serde_json::to_vec(payload).unwrap()).await
}

/// Delivers `body` exactly as given, correctly signed.
async fn deliver_body(receiver: &Receiver, event: &str, id: &str, body: &[u8]) -> Answer {
    let signature = sign(body);
    receiver
        .handle(Delivery {
            event: Some(event),
            id: Some(id),
            signature: Some(&signature),
            body,
        })
        .await
}

/// Messages on the queue, delayed ones included.
async fn depth(queue: &MemoryQueue) -> u64 {
    let depth = queue.depth().await.unwrap();
    depth.visible + depth.in_flight
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
        &guid(1),
        &push(repository("acme", "api")),
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
    let body = serde_json::to_vec(&push(repository("acme", "api"))).unwrap();
    for signature in [None, Some("sha256=00"), Some(&*sign(b"another body"))] {
        let answer = receiver
            .handle(Delivery {
                event: Some("push"),
                id: Some(&guid(1)),
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
            id: Some(&guid(2)),
            signature: Some(&sign(garbage)),
            body: garbage,
        })
        .await;
    assert_eq!(answer.status, 400);
    let ping = deliver(
        &receiver,
        "ping",
        &guid(3),
        &json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
    )
    .await;
    assert_eq!(ping.status, 200);
    assert_eq!(depth(&queue).await, 0);
}

#[tokio::test]
async fn a_replayed_delivery_and_unconfigured_repositories_enqueue_nothing() {
    let (receiver, queue) = setup(Duration::ZERO);
    let payload = push(repository("acme", "api"));
    assert_eq!(
        deliver(&receiver, "push", &guid(1), &payload).await.status,
        202
    );
    let replay = deliver(&receiver, "push", &guid(1), &payload).await;
    assert_eq!((replay.status, replay.body.as_str()), (200, "seen before"));
    for (n, payload) in [
        push(repository("other-org", "api")),
        push(repository("acme", "skip-me")),
    ]
    .iter()
    .enumerate()
    {
        let answer = deliver(&receiver, "push", &guid(10 + n as u32), payload).await;
        assert_eq!(answer.status, 202);
        assert!(answer.body.contains("ignored"), "{answer:?}");
    }
    assert_eq!(drain(&queue, 1).await.len(), 1);
    assert_eq!(depth(&queue).await, 0);
}

#[tokio::test]
async fn a_burst_of_twenty_pushes_makes_at_most_two_jobs() {
    let (receiver, queue) = setup(Duration::from_secs(1));
    let mut enqueued = 0;
    for i in 0..20 {
        // Twenty pushes: twenty different bodies.
        let mut payload = push(repository("acme", "api"));
        payload["after"] = json!(format!("{i:040}"));
        let answer = deliver(&receiver, "push", &guid(i), &payload).await;
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
            deliver(&receiver, "repository", &guid(i as u32), payload)
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
    let payload = |n: u32| {
        let mut push = push(repository("acme", "api"));
        push["after"] = json!(format!("{n:040}"));
        push.to_string()
    };
    for base64 in [false, true] {
        // Two pushes (two bodies), one delivered base64-encoded.
        let n = u32::from(base64);
        let headers = json!({
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": guid(n),
            "x-hub-signature-256": sign(payload(n).as_bytes()),
        });
        let request =
            lambda_http::request::from_str(&function_url_event(&payload(n), headers, base64))
                .unwrap();
        let response = repovault_receiver::lambda::handle(&receiver, request).await;
        assert_eq!(response.status(), 202, "{:?}", response.body());
    }
    let payload = payload(5);
    let unsigned = json!({"x-github-event": "push", "x-github-delivery": guid(9)});
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

/// GitHub's `repository` `renamed` payload: `acme/new-name`, formerly `from`.
fn renamed(from: &str) -> serde_json::Value {
    json!({
        "action": "renamed", "repository": repository("acme", "new-name"),
        "changes": {"repository": {"name": {"from": from}}},
        "sender": {"login": "octocat"}
    })
}

#[tokio::test]
async fn a_captured_body_resent_with_fresh_delivery_ids_makes_one_job() {
    let (receiver, queue) = setup(Duration::from_secs(60));
    let body = serde_json::to_vec(&renamed("old-name")).unwrap();
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(deliver_body(&receiver, "repository", &guid(i), &body).await);
    }
    assert_eq!(answers[0].status, 202, "{:?}", answers[0]);
    for answer in &answers[1..] {
        assert_eq!((answer.status, answer.body.as_str()), (200, "seen before"));
    }
    assert_eq!(drain(&queue, 1).await.len(), 1);
    assert_eq!(depth(&queue).await, 0, "one job for twenty deliveries");
}

#[tokio::test]
async fn delivery_ids_are_accepted_only_in_githubs_guid_form() {
    let (receiver, queue) = setup(Duration::ZERO);
    let body = serde_json::to_vec(&push(repository("acme", "api"))).unwrap();
    let long = "a".repeat(389 << 10);
    for id in [
        Some("d-1"),
        Some(""),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc095"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958a"),
        Some("72d3162ezcc78-11e3-81ab-4c9367dc0958"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc095g"),
        Some(long.as_str()),
        None,
    ] {
        let answer = receiver
            .handle(Delivery {
                event: Some("push"),
                id,
                signature: Some(&sign(&body)),
                body: &body,
            })
            .await;
        assert_eq!(
            answer.status,
            400,
            "{:?}",
            id.map(|i| &i[..i.len().min(40)])
        );
        assert!(answer.body.contains("X-GitHub-Delivery"), "{answer:?}");
        assert!(answer.body.len() < 200, "the answer quotes the id");
    }
    assert_eq!(depth(&queue).await, 0);
    let answer = deliver_body(
        &receiver,
        "push",
        "72D3162E-CC78-11E3-81AB-4C9367DC0958",
        &body,
    )
    .await;
    assert_eq!(answer.status, 202, "{answer:?}");
}

#[tokio::test]
async fn six_hundred_replays_with_long_delivery_ids_are_refused() {
    let (receiver, queue) = setup(Duration::ZERO);
    let body = serde_json::to_vec(
        &json!({"zen": "Half measures are as bad as nothing at all.", "hook_id": 7}),
    )
    .unwrap();
    for i in 0..600 {
        // ~389 KiB each, distinct.
        let id = format!("{}{i:04}", "0".repeat(389 << 10));
        let answer = deliver_body(&receiver, "ping", &id, &body).await;
        assert_eq!(answer.status, 400, "replay {i}: {answer:?}");
    }
    assert_eq!(depth(&queue).await, 0);
}

#[tokio::test]
async fn a_body_relabelled_as_another_event_makes_no_job() {
    let (receiver, queue) = setup(Duration::ZERO);
    let issue = json!({"number": 1, "title": "t", "user": {"login": "octocat"}});
    let comment = json!({"id": 9, "body": "hm", "user": {"login": "octocat"}});
    let issue_comment = json!({
        "action": "deleted", "issue": issue, "comment": comment,
        "repository": repository("acme", "api"),
    });
    let issues =
        json!({"action": "opened", "issue": issue, "repository": repository("acme", "api")});
    let relabelled = [
        // A signed comment deletion, sent as a repository deletion.
        ("repository", issue_comment.clone()),
        // A rename or transfer says what changed.
        (
            "repository",
            json!({"action": "renamed", "repository": repository("acme", "api")}),
        ),
        (
            "repository",
            json!({"action": "transferred", "repository": repository("acme", "api"), "changes": {}}),
        ),
        (
            "repository",
            json!({"repository": repository("acme", "api")}),
        ),
        // A push is not a branch creation, nor a repository event.
        ("create", push(repository("acme", "api"))),
        ("repository", push(repository("acme", "api"))),
        (
            "push",
            json!({"action": "deleted", "repository": repository("acme", "api")}),
        ),
        ("issue_comment", issues.clone()),
        ("issues", issue_comment.clone()),
        ("ping", issue_comment.clone()),
    ];
    for (i, (event, payload)) in relabelled.iter().enumerate() {
        let answer = deliver(&receiver, event, &guid(i as u32), payload).await;
        assert_eq!(answer.status, 400, "{event}: {payload}: {answer:?}");
    }
    assert_eq!(depth(&queue).await, 0, "a relabelled delivery made a job");
    // Under its own name, the comment's deletion is an ordinary change: a backup.
    let answer = deliver(&receiver, "issue_comment", &guid(100), &issue_comment).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let jobs = drain(&queue, 1).await;
    assert_eq!(jobs[0].event, None);
}

#[tokio::test]
async fn names_github_would_not_allow_make_no_job_and_the_answer_names_the_field() {
    let (receiver, queue) = setup(Duration::ZERO);
    let mut bad_owner = repository("acme", "api");
    bad_owner["owner"]["login"] = json!("ac\nme");
    let mut bad_name = repository("acme", "api");
    bad_name["name"] = json!("..");
    let transferred = json!({
        "action": "transferred", "repository": repository("acme", "moved"),
        "changes": {"owner": {"from": {"user": {"login": "../../etc"}}}}
    });
    for (i, (event, payload, field)) in [
        ("repository", renamed("../../evil"), "event.from"),
        ("repository", renamed("a\u{1b}[2J"), "event.from"),
        ("repository", transferred, "event.from"),
        ("push", push(bad_owner), "repo.owner"),
        ("push", push(bad_name), "repo.name"),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = deliver(&receiver, event, &guid(i as u32), &payload).await;
        assert_eq!(answer.status, 400, "{payload}: {answer:?}");
        assert!(
            answer.body.contains(field),
            "{answer:?} should name {field}"
        );
        assert!(!answer.body.contains('\u{1b}'), "{answer:?}");
    }
    assert_eq!(depth(&queue).await, 0);
}

#[tokio::test]
async fn repository_events_coalesce_per_repository_and_action() {
    let (receiver, _queue) = setup(Duration::from_secs(60));
    let edited = |n: u32| {
        json!({
            "action": "edited", "repository": repository("acme", "api"),
            "changes": {"description": {"from": format!("description {n}")}}
        })
    };
    let mut answers = Vec::new();
    for n in 0..3 {
        answers.push(deliver(&receiver, "repository", &guid(n), &edited(n)).await);
    }
    let deleted = json!({"action": "deleted", "repository": repository("acme", "api")});
    answers.push(deliver(&receiver, "repository", &guid(10), &deleted).await);
    answers.push(
        deliver(
            &receiver,
            "push",
            &guid(11),
            &push(repository("acme", "api")),
        )
        .await,
    );
    let said: Vec<&str> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 202, "{a:?}");
            if a.body.contains("enqueued") {
                "enqueued"
            } else {
                a.body.as_str()
            }
        })
        .collect();
    // Edits: one now, one at the window's end, the third coalesced; the deletion and
    // the push each open their own window.
    assert_eq!(
        said,
        ["enqueued", "enqueued", "coalesced", "enqueued", "enqueued"]
    );
}
