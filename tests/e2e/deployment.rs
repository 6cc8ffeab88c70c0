//! The deployment files run for real: each docker-compose service's command and
//! environment, and each ECS task definition's command, environment and secrets from
//! `infra/repovault.yaml`, executed with the same binaries (reached through symlinks,
//! as in the image) against LocalStack and the fake GitHub. Only host names and
//! resource names are mapped to the test's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use repovault_reporter::Report;
use yaml_serde::Value;

use crate::procs::Proc;
use crate::support::bin;
use repovault_testkit::localstack::{LocalStack, Stack, eventually};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `bin/` with `repovault` under each role's name and `fake-github`, as the image
/// lays them out.
fn image_bin(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    for role in ["repovault", "planner", "worker", "reporter", "receiver"] {
        std::os::unix::fs::symlink(bin("repovault"), bin_dir.join(role)).unwrap();
    }
    std::os::unix::fs::symlink(bin("fake-github"), bin_dir.join("fake-github")).unwrap();
    bin_dir
}

/// Runs `command` (the container's command: its first word is a binary in `bin_dir`)
/// with exactly `env`.
fn spawn(
    name: &str,
    bin_dir: &Path,
    command: &[String],
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> Proc {
    let program = bin_dir.join(&command[0]);
    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.push((
        "REPOVAULT_WORK_DIR".into(),
        dir.join("work").to_string_lossy().into_owned(),
    ));
    Proc::spawn_program(name, &program, &args, &env, dir)
}

/// Replaces compose-world names with the test's.
struct Mapping(Vec<(String, String)>);

impl Mapping {
    fn apply(&self, text: &str) -> String {
        self.0.iter().fold(text.to_owned(), |t, (from, to)| {
            t.replace(from.as_str(), to)
        })
    }
}

fn report_of(stack: &Stack, bytes: Vec<u8>) -> Report {
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("report of {}: {e}", stack.bucket))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_compose_services_run_as_written() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("compose", 5).await;
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = image_bin(dir.path());
    let mut compose: Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo_file("docker-compose.yml")).unwrap())
            .unwrap();
    compose.apply_merge().unwrap();
    let services = &compose["services"];
    let command = |name: &str| -> Vec<String> {
        services[name]["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let env = |name: &str, mapping: &Mapping| -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(map) = services[name]["environment"].as_mapping() {
            for (k, v) in map {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => yaml_serde::to_string(other).unwrap().trim().to_owned(),
                };
                // Compose's `${VAR:-default}` with VAR unset.
                let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
                    Some(inner) => inner
                        .split_once(":-")
                        .map(|(_, d)| d.to_owned())
                        .unwrap_or_default(),
                    None => value,
                };
                out.insert(k.as_str().unwrap().to_owned(), mapping.apply(&value));
            }
        }
        out
    };

    // fake-github, as its service runs it, on a free port.
    let mut fake_cmd = command("fake-github");
    for i in 1..fake_cmd.len() {
        match fake_cmd[i - 1].as_str() {
            "--host" | "--public-host" => fake_cmd[i] = "127.0.0.1".into(),
            "--port" => fake_cmd[i] = "0".into(),
            _ => {}
        }
    }
    let fake = spawn(
        "fake-github",
        &bin_dir,
        &fake_cmd,
        &BTreeMap::new(),
        dir.path(),
    );
    let fake_url = eventually("fake-github to serve", Duration::from_secs(60), || async {
        let out = fake.stdout();
        out.split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_owned)
    })
    .await;
    let queue_name = stack.queue_url.rsplit('/').next().unwrap().to_owned();
    let mapping = Mapping(vec![
        ("http://localstack:4566".into(), ls.endpoint.clone()),
        ("http://fake-github:8080".into(), fake_url),
        ("s3://repovault/".into(), format!("s3://{}/", stack.bucket)),
        ("/repovault-jobs".into(), format!("/{queue_name}")),
    ]);

    let mapped =
        |name: &str| -> Vec<String> { command(name).iter().map(|a| mapping.apply(a)).collect() };
    let mut planner = spawn(
        "planner",
        &bin_dir,
        &mapped("planner"),
        &env("planner", &mapping),
        dir.path(),
    );
    assert!(planner.wait().await.success(), "{}", planner.log());
    let replicas = services["worker"]["deploy"]["replicas"].as_u64().unwrap();
    assert_eq!(replicas, 3);
    let mut workers: Vec<Proc> = (0..replicas)
        .map(|i| {
            spawn(
                &format!("worker-{i}"),
                &bin_dir,
                &mapped("worker"),
                &env("worker", &mapping),
                dir.path(),
            )
        })
        .collect();
    let mut reporter = spawn(
        "reporter",
        &bin_dir,
        &mapped("reporter"),
        &env("reporter", &mapping),
        dir.path(),
    );
    let status = reporter.wait().await;
    let report = report_of(&stack, stack.get(&ls, "github/runs/demo/report.json").await);
    assert!(status.success(), "{}\n{report:#?}", reporter.log());
    assert_eq!(report.totals.planned, 27);
    assert_eq!(report.totals.ok, 27);

    // The receiver, with the status page: a signed ping, and the run on the page.
    let port = crate::support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let receiver_cmd: Vec<String> = mapped("receiver")
        .into_iter()
        .map(|a| {
            if a == "0.0.0.0:8080" {
                listen.clone()
            } else {
                a
            }
        })
        .collect();
    let receiver_env = env("receiver", &mapping);
    let mut receiver = spawn(
        "receiver",
        &bin_dir,
        &receiver_cmd,
        &receiver_env,
        dir.path(),
    );
    let page = eventually("the receiver to serve", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let (status, page) =
            crate::support::http("GET", &format!("http://{listen}/"), &[], vec![]).await;
        (status == 200).then_some(page)
    })
    .await;
    assert!(page.contains("demo"), "{page}");
    let secret = &receiver_env["REPOVAULT_WEBHOOK_SECRET"];
    let body = br#"{"zen":"Design for failure."}"#.to_vec();
    let signature = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let (status, answer) = crate::support::http(
        "POST",
        &format!("http://{listen}/webhook"),
        &[
            ("x-github-event", "ping"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await;
    assert_eq!((status, answer.as_str()), (200, "pong"));
    receiver.signal(Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());

    // The same service pointed at a real organization (GitHub over https): the demo's
    // published secrets are refused (exit 2, naming where they came from); secrets of
    // one's own are not.
    let mut real_cmd: Vec<String> = receiver_cmd
        .iter()
        .filter(|a| *a != "--allow-insecure-http")
        .cloned()
        .collect();
    let api = real_cmd.iter().position(|a| a == "--api-url").unwrap() + 1;
    real_cmd[api] = "https://api.github.com".into();
    let mut refused = spawn(
        "receiver-real-org",
        &bin_dir,
        &real_cmd,
        &receiver_env,
        dir.path(),
    );
    let status = tokio::time::timeout(Duration::from_secs(30), refused.wait())
        .await
        .expect("the receiver exits at once");
    assert_eq!(status.code(), Some(2), "{}", refused.log());
    assert!(
        refused.log().contains("REPOVAULT_WEBHOOK_SECRET") && refused.log().contains("demo"),
        "{}",
        refused.log()
    );
    let mut own_env = receiver_env.clone();
    own_env.insert(
        "REPOVAULT_WEBHOOK_SECRET".into(),
        "w".repeat(16) + "-own-webhook-secret",
    );
    own_env.insert(
        "REPOVAULT_API_TOKEN".into(),
        "t".repeat(16) + "-own-api-token",
    );
    let mut own = spawn("receiver-own", &bin_dir, &real_cmd, &own_env, dir.path());
    eventually(
        "the receiver with its own secrets to serve",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            let (status, _) =
                crate::support::http("GET", &format!("http://{listen}/healthz"), &[], vec![]).await;
            (status == 200).then_some(())
        },
    )
    .await;
    own.signal(Signal::SIGTERM);
    assert!(own.wait().await.success(), "{}", own.log());
    for w in &workers {
        w.signal(Signal::SIGTERM);
    }
    for w in &mut workers {
        let status = tokio::time::timeout(Duration::from_secs(60), w.wait())
            .await
            .expect("stopped within stop_grace_period");
        assert!(status.success(), "{}", w.log());
    }
    fake.signal(Signal::SIGTERM);
}

/// `value` with a top-level `!If [Condition, then, else]` decided by `conditions`;
/// `None` for `!Ref AWS::NoValue`.
fn choose<'a>(value: &'a Value, conditions: &BTreeMap<&str, bool>) -> Option<&'a Value> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!If" => {
            let branches = tagged.value.as_sequence().expect("!If [condition, a, b]");
            let condition = branches[0].as_str().unwrap();
            let holds = *conditions
                .get(condition)
                .unwrap_or_else(|| panic!("no value for condition {condition}"));
            choose(&branches[if holds { 1 } else { 2 }], conditions)
        }
        Value::Tagged(tagged)
            if tagged.tag == "!Ref" && tagged.value.as_str() == Some("AWS::NoValue") =>
        {
            None
        }
        other => Some(other),
    }
}

/// Resolves the intrinsic functions a task definition uses, with the test's values.
fn resolve(value: &Value, refs: &BTreeMap<&str, String>) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Tagged(tagged) => {
            let inner = tagged
                .value
                .as_str()
                .unwrap_or_else(|| panic!("unsupported intrinsic {tagged:?}"));
            match tagged.tag.to_string().as_str() {
                "!Ref" => refs
                    .get(inner)
                    .cloned()
                    .unwrap_or_else(|| panic!("no value for !Ref {inner}")),
                "!Sub" => {
                    let mut out = inner.to_owned();
                    for (name, value) in refs {
                        out = out.replace(&format!("${{{name}}}"), value);
                    }
                    assert!(!out.contains("${"), "unresolved !Sub {inner}");
                    out
                }
                other => panic!("unsupported intrinsic {other}"),
            }
        }
        other => panic!("unexpected value {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ecs_task_definitions_run_as_written() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("ecs", 5).await;
    let gh = crate::support::github().await;
    repovault_testkit::org::standard_org(&gh, "acme", 12);
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = image_bin(dir.path());
    let template: Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo_file("infra/repovault.yaml")).unwrap())
            .unwrap();
    let (topic, _) = ls.topic_into_queue("ecs-notices").await;
    let otlp = repovault_testkit::OtlpReceiver::start().await.unwrap();
    // The defaults: a token, no LFS, an ADOT collector beside each task (the OTLP
    // receiver stands in for it).
    let conditions: BTreeMap<&str, bool> =
        BTreeMap::from([("UseApp", false), ("UseLfs", false), ("UseTelemetry", true)]);
    let refs: BTreeMap<&str, String> = BTreeMap::from([
        ("NotificationTopic", topic),
        ("JobQueue", stack.queue_url.clone()),
        ("BackupBucket", stack.bucket.clone()),
        ("GitHubOrg", "acme".to_owned()),
        ("GitHubApiUrl", gh.api_url()),
        ("WorkerConcurrency", "2".to_owned()),
        ("ReporterWaitMinutes", "2".to_owned()),
        ("GitHubTokenSecret", crate::support::TOKEN.to_owned()),
    ]);
    // What ECS gives every task: the AWS endpoint stands in for the task role.
    let aws = || -> BTreeMap<String, String> {
        stack
            .env()
            .into_iter()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect()
    };
    let task = |name: &str| -> (Vec<String>, BTreeMap<String, String>) {
        let container = &template["Resources"][name]["Properties"]["ContainerDefinitions"][0];
        let mut command: Vec<String> = choose(&container["Command"], &conditions)
            .and_then(Value::as_sequence)
            .unwrap()
            .iter()
            .map(|v| resolve(v, &refs))
            .collect();
        // The template talks to GitHub over https only; the fake serves plain http,
        // which the roles that talk to it must be told to accept.
        if matches!(command[0].as_str(), "planner" | "worker") {
            command.push("--allow-insecure-http".to_owned());
        }
        let mut env = aws();
        for var in container["Environment"].as_sequence().unwrap() {
            let Some(var) = choose(var, &conditions) else {
                continue;
            };
            env.insert(
                var["Name"].as_str().unwrap().to_owned(),
                resolve(&var["Value"], &refs),
            );
        }
        // Secrets Manager injects the secret's value.
        for secret in container["Secrets"].as_sequence().into_iter().flatten() {
            let Some(secret) = choose(secret, &conditions) else {
                continue;
            };
            env.insert(
                secret["Name"].as_str().unwrap().to_owned(),
                resolve(&secret["ValueFrom"], &refs),
            );
        }
        // The collector sidecar listens on the task's localhost:4318.
        assert_eq!(
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(String::as_str),
            Some("http://localhost:4318")
        );
        env.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            otlp.endpoint().to_owned(),
        );
        assert!(
            !env.contains_key("GITHUB_TOKEN") || name != "ReporterTaskDefinition",
            "the reporter needs no token"
        );
        (command, env)
    };
    let worker_stop = template["Resources"]["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["StopTimeout"].as_u64().unwrap();
    assert_eq!(worker_stop, 120);

    let (cmd, env) = task("PlannerTaskDefinition");
    let mut planner = spawn("planner", &bin_dir, &cmd, &env, dir.path());
    assert!(planner.wait().await.success(), "{}", planner.log());
    let (cmd, env) = task("WorkerTaskDefinition");
    let mut workers: Vec<Proc> = (0..2)
        .map(|i| spawn(&format!("worker-{i}"), &bin_dir, &cmd, &env, dir.path()))
        .collect();
    let (cmd, env) = task("ReporterTaskDefinition");
    let mut reporter = spawn("reporter", &bin_dir, &cmd, &env, dir.path());
    let status = reporter.wait().await;
    assert!(status.success(), "{}", reporter.log());
    let runs = stack.keys(&ls, "runs/").await;
    let report_key = runs
        .iter()
        .find(|k| k.ends_with("/report.json"))
        .expect("a report was written");
    let report = report_of(&stack, stack.get(&ls, report_key).await);
    assert_eq!((report.totals.planned, report.totals.ok), (12, 12));
    // The reporter's JSON line the CloudWatch metric filters match.
    assert!(
        reporter
            .log()
            .lines()
            .any(|l| l.contains("\"message\":\"run reported\"")
                && l.contains("\"failed\":0")
                && l.contains("\"missing\":0")),
        "{}",
        reporter.log()
    );
    for w in &workers {
        w.signal(Signal::SIGTERM);
    }
    for w in &mut workers {
        let status = tokio::time::timeout(Duration::from_secs(worker_stop), w.wait())
            .await
            .expect("stopped within StopTimeout");
        assert!(status.success(), "{}", w.log());
    }
    // Every role exported to "the collector".
    let services: std::collections::BTreeSet<String> =
        otlp.spans().into_iter().map(|s| s.service).collect();
    assert!(
        ["repovault-planner", "repovault-worker"]
            .iter()
            .all(|s| services.contains(*s)),
        "{services:?}"
    );
    assert!(
        otlp.points()
            .iter()
            .any(|p| p.service == "repovault-reporter")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_receiver_function_runs_as_written_with_its_secret_read_at_start() {
    let ls = LocalStack::connect().await;
    let stack = ls.stack("lambda", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = image_bin(dir.path());
    let template: Value =
        yaml_serde::from_str(&std::fs::read_to_string(repo_file("infra/repovault.yaml")).unwrap())
            .unwrap();
    let function = &template["Resources"]["ReceiverFunction"]["Properties"];
    let secret = "a-webhook-secret-from-secrets-manager";
    let arn = ls.create_secret("webhook", secret).await;
    let refs: BTreeMap<&str, String> = BTreeMap::from([
        ("JobQueue", stack.queue_url.clone()),
        ("BackupBucket", stack.bucket.clone()),
        ("GitHubOrg", "acme".to_owned()),
        // The receiver calls no GitHub API: the template's https default stands.
        ("GitHubApiUrl", "https://api.github.com".to_owned()),
        ("WebhookDebounce", "60s".to_owned()),
        ("WebhookSecret", arn),
    ]);
    let command: Vec<String> = function["ImageConfig"]["Command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| resolve(v, &refs))
        .collect();
    // What Lambda gives the function: its role (the endpoint stands in for it) and
    // the template's environment, which holds the secret's ARN and no secret.
    let mut env: BTreeMap<String, String> = stack
        .env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .collect();
    for (name, value) in function["Environment"]["Variables"].as_mapping().unwrap() {
        let value = resolve(value, &refs);
        assert!(!value.contains(secret), "{name:?} holds the secret");
        env.insert(name.as_str().unwrap().to_owned(), value);
    }
    // Outside Lambda (no AWS_LAMBDA_RUNTIME_API) the same binary serves HTTP.
    let port = crate::support::free_port();
    let listen = format!("127.0.0.1:{port}");
    env.insert("REPOVAULT_LISTEN".into(), listen.clone());
    let mut receiver = spawn("receiver", &bin_dir, &command, &env, dir.path());
    eventually("the receiver to serve", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let (status, _) =
            crate::support::http("GET", &format!("http://{listen}/healthz"), &[], vec![]).await;
        (status == 200).then_some(())
    })
    .await;
    let body = br#"{"zen":"Non-blocking is better than blocking.","hook_id":9}"#.to_vec();
    let signature = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let (status, answer) = crate::support::http(
        "POST",
        &format!("http://{listen}/webhook"),
        &[
            ("x-github-event", "ping"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
    .await;
    assert_eq!(
        (status, answer.as_str()),
        (200, "pong"),
        "{}",
        receiver.log()
    );
    receiver.signal(Signal::SIGTERM);
    assert!(receiver.wait().await.success(), "{}", receiver.log());
}
