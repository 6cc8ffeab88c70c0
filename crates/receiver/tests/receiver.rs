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
