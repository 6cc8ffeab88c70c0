//! Notifications: a run tells a Slack webhook, a generic webhook (signed) and an SNS
//! topic how it went; retried on 5xx; a channel that is down is logged and reported,
//! and never changes the run's exit code; webhook URLs are never logged.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use repovault_testkit::localstack::LocalStack;
use repovault_testkit::{FaultStatus, org};

use crate::support::*;

/// A webhook receiver that answers with `statuses` in turn (then 200) and keeps what
/// it was sent.
#[derive(Clone, Default)]
struct Hook {
    statuses: Arc<Mutex<Vec<u16>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>,
}

impl Hook {
    async fn start(statuses: &[u16]) -> (Hook, String) {
        let hook = Hook {
            statuses: Arc::new(Mutex::new(statuses.iter().rev().copied().collect())),
            ..Hook::default()
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, url)
    }

    fn received(&self) -> Vec<(HeaderMap, Bytes, u16)> {
        self.received.lock().unwrap().clone()
    }
}

async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = hook.statuses.lock().unwrap().pop().unwrap_or(200);
    hook.received.lock().unwrap().push((headers, body, status));
    StatusCode::from_u16(status).unwrap()
}

/// `repovault run` with `notify` in the config (YAML, one line), the env given.
async fn run_notifying(
    work: &std::path::Path,
    gh: &repovault_testkit::FakeGitHub,
    run_id: &str,
    notify: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    std::fs::write(
        work.join("repovault.yml"),
        format!(
            "allow-insecure-http: true\nretry: {{ max-attempts: 1 }}\njobs:\n  - source: {{ org: acme, api-url: \"{}\" }}\n    target: ./backups\n    options: {{ metadata: false }}\nnotify: {notify}\n",
            gh.api_url()
        ),
    )
    .unwrap();
    repovault(
        work,
        &["run", "--config", "repovault.yml", "--run-id", run_id],
        env,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_run_tells_slack_and_a_signed_webhook_which_repository_failed_and_why() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 3);
    gh.fail_fetch("acme", &names[1], FaultStatus::Always(403));
    // The webhook fails twice, then takes it: one notification, three attempts.
    let (hook, hook_base) = Hook::start(&[500, 500]).await;
    let (slack, slack_base) = Hook::start(&[]).await;
    let hook_url = format!("{hook_base}/hooks/secret-path-0123456789");
    let slack_url = format!("{slack_base}/services/T000/B000/slacksecret");
    let work = tempfile::tempdir().unwrap();
    let out = run_notifying(
        work.path(),
        &gh,
        "told",
        "{ slack: { url-env: SLACK_URL }, webhook: { url-env: HOOK_URL, secret-env: HOOK_SECRET } }",
        &[
            ("SLACK_URL", &slack_url),
            ("HOOK_URL", &hook_url),
            ("HOOK_SECRET", "s3cr3t"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let received = hook.received();
    assert_eq!(
        received.iter().map(|(_, _, s)| *s).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let (headers, body, _) = received.last().unwrap();
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent["event"], "run.failed");
    assert_eq!(
        (sent["ok"].as_u64(), sent["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let failure = &sent["failures"][0];
    assert_eq!(failure["repository"], format!("acme/{}", names[1]));
    assert!(
        failure["reason"].as_str().unwrap().contains("403"),
        "{failure}"
    );
    assert!(
        sent["report"]
            .as_str()
            .unwrap()
            .ends_with("runs/told/report.md")
    );
    // The signature verifies: HMAC-SHA256 of the body with the secret.
    let signature = headers["x-repovault-signature-256"].to_str().unwrap();
    assert_eq!(
        signature,
        repovault_notify_signature("s3cr3t", body),
        "the signature does not verify"
    );

    let slack_sent = slack.received();
    assert_eq!(slack_sent.len(), 1);
    let text_sent: serde_json::Value = serde_json::from_slice(&slack_sent[0].1).unwrap();
    let message = text_sent["text"].as_str().unwrap();
    assert!(message.contains(&format!("acme/{}", names[1])), "{message}");
    assert!(message.contains("1 of 3 repositories failed"), "{message}");

    // Reported, and no URL in any log line.
    let report = report(&work.path().join("backups"), "told");
    let deliveries: Vec<(String, bool, u32)> = report
        .notifications
        .iter()
        .map(|d| (d.channel.clone(), d.delivered, d.attempts))
        .collect();
    assert_eq!(
        deliveries,
        vec![("slack".into(), true, 1), ("webhook".into(), true, 3)]
    );
    let logs = text(&out);
    assert!(
        !logs.contains("secret-path") && !logs.contains("slacksecret"),
        "a webhook URL was logged"
    );
}

/// The signature as a receiver computes it (independently of repovault's code).
fn repovault_notify_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_that_is_down_changes_nothing_but_the_report_says_so() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let work = tempfile::tempdir().unwrap();
    let out = run_notifying(
        work.path(),
        &gh,
        "down",
        "{ when: always, webhook: { url-env: HOOK_URL } }",
        &[("HOOK_URL", &url)],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notification not delivered"), "{stderr}");
    let report = report(&work.path().join("backups"), "down");
    let delivery = &report.notifications[0];
    assert_eq!((delivery.delivered, delivery.attempts), (false, 3));
    assert!(
        delivery
            .error
            .as_deref()
            .is_some_and(|e| e.contains("webhook"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_tells_of_new_and_gone_repositories_and_failure_only_of_failures() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    let (hook, base) = Hook::start(&[]).await;
    let url = format!("{base}/hook");
    let work = tempfile::tempdir().unwrap();
    let env = [("HOOK_URL", url.as_str())];
    // The default (failure): a good run tells nobody.
    let out = run_notifying(
        work.path(),
        &gh,
        "quiet",
        "{ webhook: { url-env: HOOK_URL } }",
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(hook.received().is_empty());
    // changes: a new repository is news.
    org::standard_org(&gh, "acme", 3);
    let out = run_notifying(
        work.path(),
        &gh,
        "grown",
        "{ when: changes, webhook: { url-env: HOOK_URL } }",
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let received = hook.received();
    assert_eq!(received.len(), 1);
    let sent: serde_json::Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(sent["event"], "run.finished");
    assert_eq!(
        sent["new_repositories"],
        serde_json::json!(["acme/repo-002"])
    );
    assert_eq!(sent["gone_repositories"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reporter_publishes_to_an_sns_topic() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("sns", 2).await;
    let (topic, inbox) = ls.topic_into_queue("run-notices").await;
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 2);
    gh.fail_fetch("acme", &names[0], FaultStatus::Always(403));
    let work = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = stack.env();
    let api = gh.api_url();
    let target = stack.target();
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--run-id",
            "sns",
            "--no-metadata",
            "--dest",
            &target,
        ],
        &env.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // The reporter, as CloudFormation runs it: the topic from the environment.
    env.push(("REPOVAULT_NOTIFY_SNS".into(), topic.clone()));
    let out = tokio::process::Command::new(bin("reporter"))
        .args(["--run-id", "sns", "--target", &stack.target()])
        .envs(env)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let received = ls
        .sqs
        .receive_message()
        .queue_url(&inbox)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let envelope: serde_json::Value =
        serde_json::from_str(received.messages()[0].body().unwrap()).unwrap();
    let message = envelope["Message"].as_str().unwrap();
    assert!(message.contains(&format!("acme/{}", names[0])), "{message}");
    assert_eq!(
        envelope["Subject"],
        "repovault run sns: 1 of 2 repositories failed"
    );
}
