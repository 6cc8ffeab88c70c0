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
    let push = serde_json::json!({"ref": "refs/heads/main", "commits": [], "repository": api});

    // Unsigned, wrongly signed: 401, nothing on the queue.
    assert_eq!(d.deliver("push", &guid(1), &push, None).await.0, 401);
    assert_eq!(
        d.deliver("push", &guid(2), &push, Some("wrong")).await.0,
        401
    );
    assert_eq!(d.stack.queue_depth(&d.ls).await, 0);

    // Signed: backed up; its record says ok.
    let (status, body) = d.deliver("push", &guid(3), &push, Some(SECRET)).await;
    assert_eq!(status, 202, "{body}");
    // Replayed, under its own id or a fresh one: nothing more.
    for id in [guid(3), guid(4)] {
        assert_eq!(
            d.deliver("push", &id, &push, Some(SECRET)).await,
            (200, "seen before".into())
        );
    }
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
        let payload = serde_json::json!({
            "ref": "refs/heads/main", "after": format!("{i:040}"), "commits": [], "repository": other,
        });
        let (status, body) = d
            .deliver("push", &guid(100 + i), &payload, Some(SECRET))
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
    for (n, name) in ["old-name", "doomed"].into_iter().enumerate() {
        fixtures::standard_repo(&d.gh.repo_path("acme", name), name);
        d.gh.add_repo(RepoSpec::new("acme", name));
        let payload = serde_json::json!({
            "ref": "refs/heads/main", "commits": [], "repository": d.repository(name).await,
        });
        assert_eq!(
            d.deliver("push", &guid(n as u32), &payload, Some(SECRET))
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
        d.deliver("repository", &guid(10), &renamed, Some(SECRET))
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
        d.deliver("repository", &guid(11), &deleted, Some(SECRET))
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

/// A delivery id in GitHub's form (a GUID), distinct for each `n`.
fn guid(n: u32) -> String {
    format!("{n:08x}-cc78-11e3-81ab-4c9367dc0958")
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The receiver alone (no worker), its open-file limit lowered to `nofile` with
/// `prlimit` (which execs it: the pid is the receiver's), once it answers; and its
/// address.
async fn lone_receiver(
    stack: &Stack,
    gh: &FakeGitHub,
    dir: &std::path::Path,
    nofile: u32,
) -> (Proc, String) {
    lone_receiver_with(stack, gh, dir, nofile, &[], &[]).await
}

/// [`lone_receiver`] with more arguments and environment.
async fn lone_receiver_with(
    stack: &Stack,
    gh: &FakeGitHub,
    dir: &std::path::Path,
    nofile: u32,
    extra_args: &[&str],
    extra_env: &[(&str, &str)],
) -> (Proc, String) {
    std::fs::write(
        dir.join("repovault.yml"),
        format!(
            "allow-insecure-http: true\njobs:\n  - name: acme\n    source: {{ org: acme, api-url: \"{}\" }}\n    target: {}\n",
            gh.api_url(),
            stack.target()
        ),
    )
    .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut env = stack.env();
    env.push(("REPOVAULT_WEBHOOK_SECRET".into(), SECRET.into()));
    env.push(("RUST_LOG".into(), "warn".into()));
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let receiver_bin = bin("receiver");
    let limit = format!("--nofile={nofile}:{nofile}");
    let receiver = Proc::spawn_program(
        "receiver",
        std::path::Path::new("prlimit"),
        &[
            &limit,
            "--",
            receiver_bin.to_str().unwrap(),
            "--config",
            "repovault.yml",
            "--listen",
            &listen,
        ]
        .into_iter()
        .chain(extra_args.iter().copied())
        .collect::<Vec<_>>(),
        &env,
        dir,
    );
    let url = format!("http://{listen}");
    eventually(
        "the receiver to answer",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            (http("GET", &format!("{url}/healthz"), &[], vec![]).await.0 == 200).then_some(())
        },
    )
    .await;
    (receiver, listen)
}

/// A correctly signed `ping` (a new body each time): its status and how long the
/// answer took; `None` if there was none within `within`.
async fn signed_ping(listen: &str, n: u32, within: Duration) -> Option<(u16, Duration)> {
    let body = serde_json::to_vec(&serde_json::json!({"zen": format!("Ping {n}."), "hook_id": n}))
        .unwrap();
    let signature = sign(SECRET, &body);
    let id = guid(n);
    let started = std::time::Instant::now();
    let headers = [
        ("x-github-event", "ping"),
        ("x-github-delivery", id.as_str()),
        ("x-hub-signature-256", signature.as_str()),
        ("content-type", "application/json"),
    ];
    let answer = tokio::time::timeout(
        within,
        http("POST", &format!("http://{listen}/webhook"), &headers, body),
    )
    .await
    .ok()?;
    Some((answer.0, started.elapsed()))
}

/// The status a server answers `request` with (written whole, errors ignored: the
/// server may close early), `None` if it closed the connection without one or said
/// nothing within 10 s.
async fn raw_status(listen: &str, request: Vec<u8>) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await.ok()?;
    let (mut read, mut write) = stream.split();
    let writing = async {
        let _ = write.write_all(&request).await;
    };
    let reading = async {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&head)
            .split(' ')
            .nth(1)?
            .parse()
            .ok()
    };
    let (_, status) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(writing, reading)
    })
    .await
    .ok()?;
    status
}

fn rss_kib(proc: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_connections_and_stalled_bodies_neither_starve_a_signed_ping_nor_grow_memory() {
    use tokio::io::AsyncWriteExt;
    let ls = LocalStack::connect().await;
    let stack = ls.stack("receiver-slow", 3).await;
    let gh = github().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut receiver, listen) = lone_receiver(&stack, &gh, dir.path(), 256).await;
    let (status, _) = signed_ping(&listen, 1, Duration::from_secs(2))
        .await
        .expect("a first ping");
    assert_eq!(status, 200, "{}", receiver.log());

    // 300 connections that never finish their headers (more than the file limit).
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(&listen).await.unwrap();
        let _ = stream
            .write_all(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: ping\r\n")
            .await;
        half_open.push(stream);
    }
    // 16 unsigned bodies over the cap and 16 under it, each stalled before its end.
    let mut writers = Vec::new();
    for (declared, sent) in [(24 << 20, 20 << 20), (5 << 20, (5 << 20) - 1)] {
        for _ in 0..16 {
            let listen = listen.clone();
            writers.push(tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(&listen).await.ok()?;
                let head = format!(
                    "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: {}\r\nContent-Length: {declared}\r\n\r\n",
                    guid(7)
                );
                stream.write_all(head.as_bytes()).await.ok()?;
                let chunk = vec![b'x'; 1 << 20];
                let mut left: usize = sent;
                while left > 0 {
                    let n = left.min(chunk.len());
                    stream.write_all(&chunk[..n]).await.ok()?;
                    left -= n;
                }
                Some(stream)
            }));
        }
    }
    // While all that is open: a signed ping answers at once, again and again.
    let mut slowest = Duration::ZERO;
    for n in 2..12 {
        let answer = signed_ping(&listen, n, Duration::from_secs(2)).await;
        let (status, took) =
            answer.unwrap_or_else(|| panic!("ping {n}: no answer within 2 s\n{}", receiver.log()));
        assert_eq!(status, 200, "ping {n}");
        assert!(took < Duration::from_secs(2), "ping {n} took {took:?}");
        slowest = slowest.max(took);
    }
    let stalled: Vec<_> =
        tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(writers))
            .await
            .expect("every writer finished or was cut off");
    let (status, _) = signed_ping(&listen, 20, Duration::from_secs(2))
        .await
        .expect("a ping after the bodies");
    assert_eq!(status, 200);
    // A body over the cap is refused from its Content-Length, before it is sent.
    let over = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Delivery: {}\r\nContent-Length: {}\r\n\r\n",
        guid(8),
        24 << 20
    );
    assert_eq!(raw_status(&listen, over.into_bytes()).await, Some(413));
    let peak = receiver.peak_rss_kib();
    assert!(peak < 100 << 10, "peak RSS {peak} KiB");
    eprintln!(
        "slowest ping under attack: {slowest:?}; peak RSS {peak} KiB; now {} KiB",
        rss_kib(&receiver)
    );
    // Connections that never finish their headers are closed (header timeout, or
    // evicted for newer ones).
    let mut first = half_open.swap_remove(0);
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(
        Duration::from_secs(15),
        tokio::io::AsyncReadExt::read(&mut first, &mut buf),
    )
    .await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a half-open connection is still open: {closed:?}"
    );
    drop((half_open, stalled));
    receiver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_hundred_replays_with_long_delivery_ids_are_refused_and_memory_stays_flat() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("receiver-ids", 3).await;
    let gh = github().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut receiver, listen) = lone_receiver(&stack, &gh, dir.path(), 1024).await;
    let body = br#"{"zen":"Approachable is better than simple.","hook_id":1}"#;
    let signature = sign(SECRET, body);
    let before = rss_kib(&receiver);
    for i in 0..600 {
        // ~389 KiB, distinct each time.
        let id = format!("{}{i:04}", "7".repeat(389 << 10));
        let request = format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        let status = raw_status(&listen, request).await;
        assert!(
            status.is_none_or(|s| s >= 400),
            "replay {i} was answered {status:?}"
        );
    }
    let after = rss_kib(&receiver);
    eprintln!(
        "RSS before {before} KiB, after 600 long-id replays {after} KiB, peak {} KiB",
        receiver.peak_rss_kib()
    );
    assert!(
        after < before + (20 << 10),
        "RSS grew from {before} to {after} KiB"
    );
    // The body itself, under a proper id, is still a first delivery.
    let (status, answer) = http(
        "POST",
        &format!("http://{listen}/webhook"),
        &[
            ("x-github-event", "ping"),
            ("x-github-delivery", &guid(1)),
            ("x-hub-signature-256", &signature),
        ],
        body.to_vec(),
    )
    .await;
    assert_eq!((status, answer.as_str()), (200, "pong"));
    assert_eq!(stack.queue_depth(&ls).await, 0);
    receiver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_token_the_status_page_beside_the_receiver_answers_only_loopback_host_names() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("receiver-ui", 3).await;
    let gh = github().await;
    let dir = tempfile::tempdir().unwrap();
    // A private repository's name, in the store the page reads.
    let gone = serde_json::json!({"schema": 1, "reason": "deleted", "at": "2026-11-29T01:02:03Z"});
    stack
        .put(
            &ls,
            &format!("{}repos/acme/private-plans/gone.json", stack.prefix),
            serde_json::to_vec(&gone).unwrap(),
        )
        .await;
    let (mut receiver, listen) =
        lone_receiver_with(&stack, &gh, dir.path(), 1024, &["--ui"], &[]).await;
    let port = listen.rsplit(':').next().unwrap();
    let page = format!("http://{listen}/");
    // What a tunnel, a reverse proxy or a DNS-rebinding page forwards: another host
    // name.
    for (host, path) in [
        ("attacker.example", "/"),
        ("attacker.example:8080", "/repo/acme/private-plans"),
        ("127.0.0.1.attacker.example", "/"),
        ("localhost.attacker.example", "/api/runs/latest"),
    ] {
        let (status, body) = http(
            "GET",
            &format!("http://{listen}{path}"),
            &[("host", host)],
            vec![],
        )
        .await;
        assert!(
            status == 421 || status == 401,
            "Host {host}: {status} {body}"
        );
        assert!(!body.contains("private-plans"), "Host {host}: {body}");
    }
    // Loopback names, with or without the port: the page.
    for host in [
        listen.clone(),
        format!("localhost:{port}"),
        "localhost".into(),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = http("GET", &page, &[("host", &host)], vec![]).await;
        assert_eq!(status, 200, "Host {host}: {body}");
        assert!(body.contains("acme/private-plans"), "{body}");
    }
    // The webhook is not the page's: GitHub's Host is the public name.
    let body = br#"{"zen":"Speak like a human.","hook_id":3}"#.to_vec();
    let signature = sign(SECRET, &body);
    let (status, _) = http(
        "POST",
        &format!("http://{listen}/webhook"),
        &[
            ("host", "hooks.example.com"),
            ("x-github-event", "ping"),
            ("x-github-delivery", &guid(3)),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await;
    assert_eq!(status, 200);
    receiver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_secret_is_read_from_secrets_manager_at_start() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("receiver-sm", 3).await;
    let gh = github().await;
    let dir = tempfile::tempdir().unwrap();
    let stored = "a-webhook-secret-kept-in-secrets-manager";
    let arn = ls.create_secret("webhook", stored).await;
    // The ARN in the environment, as CloudFormation sets it; no secret value.
    let (mut receiver, listen) = lone_receiver_with(
        &stack,
        &gh,
        dir.path(),
        1024,
        &[],
        &[
            ("REPOVAULT_WEBHOOK_SECRET", ""),
            ("REPOVAULT_WEBHOOK_SECRET_ARN", &arn),
        ],
    )
    .await;
    let body = br#"{"zen":"Mind your words, they are important.","hook_id":5}"#.to_vec();
    let deliver = |secret: &str| {
        let signature = sign(secret, &body);
        let body = body.clone();
        let url = format!("http://{listen}/webhook");
        async move {
            http(
                "POST",
                &url,
                &[
                    ("x-github-event", "ping"),
                    ("x-github-delivery", &guid(5)),
                    ("x-hub-signature-256", &signature),
                ],
                body,
            )
            .await
        }
    };
    assert_eq!(deliver(SECRET).await.0, 401, "signed with another secret");
    assert_eq!(deliver(stored).await, (200, "pong".into()));
    receiver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());

    // A secret that cannot be read: the receiver does not start, and says which.
    let mut env = stack.env();
    env.push(("REPOVAULT_WEBHOOK_SECRET_ARN".into(), format!("{arn}-gone")));
    let mut missing = Proc::spawn(
        "receiver-missing",
        "receiver",
        &[
            "--config",
            "repovault.yml",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ],
        &env,
        dir.path(),
    );
    let status = tokio::time::timeout(Duration::from_secs(60), missing.wait())
        .await
        .expect("the receiver exits");
    assert_eq!(status.code(), Some(2), "{}", missing.log());
    assert!(missing.log().contains("-gone"), "{}", missing.log());
}
