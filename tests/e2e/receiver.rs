//! The webhook receiver as a real process, with a worker, LocalStack and the fake
//! GitHub: signed deliveries become backups within a bounded time, bursts coalesce,
//! bad deliveries enqueue nothing, renamed and deleted repositories keep their backups.

use std::time::Duration;

use hmac::{Hmac, Mac};
use repovault_core::ResultRecord;
use repovault_testkit::localstack::{LocalStack, Stack, eventually};
use repovault_testkit::{FakeGitHub, RepoSpec, fixtures, org};

use crate::procs::Proc;
use crate::support::*;

const SECRET: &str = "the-webhook-secret";

struct Deployment {
    ls: LocalStack,
    stack: Stack,
    gh: FakeGitHub,
    dir: tempfile::TempDir,
    url: String,
    receiver: Proc,
    worker: Proc,
}

impl Deployment {
    async fn start(name: &str, debounce: &str) -> Deployment {
        let ls = LocalStack::connect().await;
        let stack = ls.stack(name, 3).await;
        let gh = github().await;
        let dir = deployment_dir(&gh, &stack.target(), "    options: { metadata: false }\n");
        let port = free_port();
        let mut env = stack.env();
        env.push(("REPOVAULT_WEBHOOK_SECRET".into(), SECRET.into()));
        let listen = format!("127.0.0.1:{port}");
        let receiver = Proc::spawn(
            "receiver",
            "receiver",
            &[
                "--config",
                "repovault.yml",
                "--listen",
                &listen,
                "--debounce",
                debounce,
            ],
            &env,
            dir.path(),
        );
        let worker = Proc::spawn(
            "worker",
            "worker",
            &[
                "--config",
                "repovault.yml",
                "--poll-wait",
                "1s",
                "--work-dir",
                "work",
            ],
            &stack.env(),
            dir.path(),
        );
        let url = format!("http://{listen}");
        eventually(
            "the receiver to listen",
            Duration::from_secs(30),
            || async {
                let health = format!("{url}/healthz");
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()?;
                (http("GET", &health, &[], vec![]).await.0 == 200).then_some(())
            },
        )
        .await;
        Deployment {
            ls,
            stack,
            gh,
            dir,
            url,
            receiver,
            worker,
        }
    }

    /// GitHub's repository object, as the API (and a webhook) describes it.
    async fn repository(&self, name: &str) -> serde_json::Value {
        let (status, body) = http(
            "GET",
            &format!("{}/repos/acme/{name}", self.gh.api_url()),
            &[("authorization", &format!("Bearer {TOKEN}"))],
            vec![],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// POSTs a delivery signed with `secret` (`None`: unsigned).
    async fn deliver(
        &self,
        event: &str,
        id: &str,
        payload: &serde_json::Value,
        secret: Option<&str>,
    ) -> (u16, String) {
        let body = serde_json::to_vec(payload).unwrap();
        let signature = secret.map(|s| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(s.as_bytes()).unwrap();
            mac.update(&body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        });
        let mut headers = vec![
            ("x-github-event", event),
            ("x-github-delivery", id),
            ("content-type", "application/json"),
        ];
        if let Some(signature) = &signature {
            headers.push(("x-hub-signature-256", signature));
        }
        http("POST", &format!("{}/webhook", self.url), &headers, body).await
    }

    /// The records of event runs for `name`, once there are at least `n`.
    async fn records(&self, name: &str, n: usize) -> Vec<ResultRecord> {
        eventually(
            &format!("{n} event record(s) of {name}"),
            Duration::from_secs(90),
            || async {
                let keys: Vec<String> = self
                    .stack
                    .keys(&self.ls, "runs/")
                    .await
                    .into_iter()
                    .filter(|k| {
                        k.contains("/runs/event-")
                            && k.ends_with(&format!("/results/acme/{name}.json"))
                    })
                    .collect();
                if keys.len() < n {
                    return None;
                }
                let mut records = Vec::new();
                for key in keys {
                    records.push(
                        serde_json::from_slice(&self.stack.get(&self.ls, &key).await).unwrap(),
                    );
                }
                Some(records)
            },
        )
        .await
    }

    async fn manifests(&self, name: &str) -> usize {
        self.stack
            .keys(&self.ls, &format!("repos/acme/{name}/"))
            .await
            .iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .count()
    }

    async fn ls(&self) -> String {
        let out = tokio::process::Command::new(bin("repovault"))
            .args(["ls", "--from", &self.stack.target()])
            .envs(self.stack.env())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn stop(mut self) {
        for p in [&self.receiver, &self.worker] {
            p.signal(nix::sys::signal::Signal::SIGTERM);
        }
        assert!(
            self.receiver.wait().await.success(),
            "{}",
            self.receiver.log()
        );
        assert!(self.worker.wait().await.success(), "{}", self.worker.log());
        drop(self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_push_is_backed_up_bad_deliveries_enqueue_nothing_and_bursts_coalesce() {
    let d = Deployment::start("receiver", "3s").await;
    let names = org::standard_org(&d.gh, "acme", 2);
    let api = d.repository(&names[0]).await;
    let push = serde_json::json!({"ref": "refs/heads/main", "repository": api});

    // Unsigned, wrongly signed: 401, nothing on the queue.
    assert_eq!(d.deliver("push", "u-1", &push, None).await.0, 401);
    assert_eq!(d.deliver("push", "u-2", &push, Some("wrong")).await.0, 401);
    assert_eq!(d.stack.queue_depth(&d.ls).await, 0);

    // Signed: backed up; its record says ok.
    let (status, body) = d.deliver("push", "p-1", &push, Some(SECRET)).await;
    assert_eq!(status, 202, "{body}");
    // Replayed: nothing more.
    assert_eq!(
        d.deliver("push", "p-1", &push, Some(SECRET)).await,
        (200, "seen before".into())
    );
    let records = d.records(&names[0], 1).await;
    assert_eq!(
        records[0].outcome,
        repovault_core::Outcome::Ok,
        "{:?}",
        records[0]
    );
    assert_eq!(d.manifests(&names[0]).await, 1);

    // A burst of 20 pushes to the other repository: at most two jobs, two backups.
    let other = d.repository(&names[1]).await;
    let repo = git2::Repository::open_bare(d.gh.repo_path("acme", &names[1])).unwrap();
    let mut enqueued = 0;
    for i in 0..20 {
        fixtures::commit(
            &repo,
            "main",
            &[("burst.txt", format!("{i}").as_bytes())],
            "burst",
        );
        let payload = serde_json::json!({"ref": "refs/heads/main", "repository": other});
        let (status, body) = d
            .deliver("push", &format!("b-{i}"), &payload, Some(SECRET))
            .await;
        assert_eq!(status, 202, "{body}");
        enqueued += usize::from(body.contains("enqueued"));
    }
    assert!((1..=2).contains(&enqueued), "{enqueued} jobs for a burst");
    let records = d.records(&names[1], enqueued).await;
    assert!(
        records
            .iter()
            .all(|r| r.outcome != repovault_core::Outcome::Failed)
    );
    let backups = d.manifests(&names[1]).await;
    assert!(
        (1..=2).contains(&backups),
        "{backups} backups for a burst of 20 pushes"
    );
    // The last push is in the newest backup: nothing was lost to coalescing.
    let head = repo.refname_to_id("refs/heads/main").unwrap().to_string();
    let latest: repovault_core::LatestPointer = serde_json::from_slice(
        &d.stack
            .get(
                &d.ls,
                &format!("{}repos/acme/{}/latest.json", d.stack.prefix, names[1]),
            )
            .await,
    )
    .unwrap();
    let manifest: repovault_core::Manifest =
        serde_json::from_slice(&d.stack.get(&d.ls, &latest.backup.manifest_key).await).unwrap();
    assert_eq!(manifest.refs.get("refs/heads/main"), Some(head.as_str()));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renamed_and_deleted_repositories_keep_their_backups_findable() {
    let d = Deployment::start("receiver-repo", "1s").await;
    d.gh.add_org("acme");
    for name in ["old-name", "doomed"] {
        fixtures::standard_repo(&d.gh.repo_path("acme", name), name);
        d.gh.add_repo(RepoSpec::new("acme", name));
        let payload = serde_json::json!({"repository": d.repository(name).await});
        assert_eq!(
            d.deliver("push", &format!("first-{name}"), &payload, Some(SECRET))
                .await
                .0,
            202
        );
        d.records(name, 1).await;
    }

    // Renamed on GitHub: the new name is backed up; the old name's backups point to it.
    fixtures::standard_repo(&d.gh.repo_path("acme", "new-name"), "new-name");
    d.gh.add_repo(RepoSpec::new("acme", "new-name"));
    d.gh.delete_repo("acme", "old-name");
    let renamed = serde_json::json!({
        "action": "renamed",
        "changes": {"repository": {"name": {"from": "old-name"}}},
        "repository": d.repository("new-name").await,
    });
    assert_eq!(
        d.deliver("repository", "renamed-1", &renamed, Some(SECRET))
            .await
            .0,
        202
    );
    d.records("new-name", 1).await;

    // Deleted on GitHub: recorded, every backup kept.
    let doomed = d.repository("doomed").await;
    d.gh.delete_repo("acme", "doomed");
    let deleted = serde_json::json!({"action": "deleted", "repository": doomed});
    assert_eq!(
        d.deliver("repository", "deleted-1", &deleted, Some(SECRET))
            .await
            .0,
        202
    );
    let records = d.records("doomed", 2).await;
    let note = records.iter().find_map(|r| r.note.clone());
    assert_eq!(
        note.as_deref(),
        Some("deleted on GitHub; its backups are kept")
    );
    assert_eq!(d.manifests("doomed").await, 1, "the backup is kept");

    let listing = eventually("ls to show both", Duration::from_secs(30), || async {
        let listing = d.ls().await;
        (listing.contains("moved to acme/new-name") && listing.contains("deleted on GitHub"))
            .then_some(listing)
    })
    .await;
    assert!(listing.contains("acme/old-name"), "{listing}");
    d.stop().await;
}
