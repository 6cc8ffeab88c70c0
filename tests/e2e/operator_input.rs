//! What an operator types: out-of-range values, plain http, bad tokens and unwritable
//! destinations each end with exit code 2 and one message naming the key or flag,
//! every cause once.

use crate::support::{github, repovault, text};

/// Runs `repovault args` in a temp dir and returns (exit code, stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = repovault(dir.path(), args, env).await;
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn out_of_range_values_are_refused_with_the_flag_named() {
    let q = "http://127.0.0.1:9/queue/x";
    for (args, named) in [
        (
            vec![
                "work",
                "--queue-url",
                q,
                "--allow-target",
                "./b",
                "--visibility-timeout",
                "0s",
            ],
            "--visibility-timeout",
        ),
        (
            vec![
                "work",
                "--queue-url",
                q,
                "--allow-target",
                "./b",
                "--concurrency",
                "100000",
            ],
            "--concurrency",
        ),
        (
            vec!["run", "--org", "acme", "--concurrency", "100000"],
            "--concurrency",
        ),
        (
            vec!["prune", "--keep-within", "213503982334602d"],
            "--keep-within",
        ),
        // A worker serves any owner's jobs: an App needs its installation named.
        (
            vec![
                "work",
                "--queue-url",
                q,
                "--allow-target",
                "./b",
                "--app-id",
                "7",
            ],
            "--app-installation-id",
        ),
        // The App's key is not where the flags say.
        (
            vec!["run", "--org", "acme", "--app-id", "7"],
            "auth.private-key-env: GITHUB_APP_PRIVATE_KEY is not set",
        ),
        // Encryption: a recipient that is not one, a private key given by mistake,
        // recipients beside a config (whose jobs set `encryption:`), an identity file
        // that is not there.
        (
            vec!["run", "--org", "acme", "--age-recipient", "age1nope"],
            "--age-recipient",
        ),
        (
            vec![
                "run",
                "--org",
                "acme",
                "--age-recipient",
                "AGE-SECRET-KEY-1QQQQ",
            ],
            "this is a private key",
        ),
        (
            vec!["run", "--config", "r.yml", "--age-recipient", "age1nope"],
            "--age-recipient: applies to --org/--user",
        ),
        (
            vec!["verify", "--identity", "missing.txt"],
            "--identity: missing.txt",
        ),
    ] {
        let (code, stderr) = run(&args, &[]).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn plain_http_github_is_refused_without_the_opt_in_on_every_role() {
    let q = "http://127.0.0.1:9/queue/x";
    let api = "http://127.0.0.1:9";
    for args in [
        vec!["run", "--org", "acme", "--api-url", api],
        vec!["plan", "--queue-url", q, "--org", "acme", "--api-url", api],
        vec![
            "work",
            "--queue-url",
            q,
            "--allow-target",
            "./b",
            "--api-url",
            api,
        ],
    ] {
        let (code, stderr) = run(&args, &[]).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--api-url") && stderr.contains("--allow-insecure-http"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_each_cause_once_and_say_what_to_do() {
    let gh = github().await;
    repovault_testkit::org::standard_org(&gh, "acme", 1);
    let api = gh.api_url();
    let common = [
        "run",
        "--org",
        "acme",
        "--api-url",
        &api,
        "--allow-insecure-http",
    ];

    let (code, stderr) = run(&common, &[("GITHUB_TOKEN", "wrong")]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.matches("Bad credentials").count(), 1, "{stderr}");
    assert!(stderr.contains("check GITHUB_TOKEN"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the token was printed: {stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let dest = file.join("backups");
    let mut args = common.to_vec();
    args.extend(["--dest", dest.to_str().unwrap()]);
    let (code, stderr) = run(&args, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    let error_line = stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert_eq!(error_line.matches("Not a directory").count(), 1, "{stderr}");
    assert!(
        error_line.contains("check that the destination exists"),
        "{stderr}"
    );
}

/// A worker's settings come from its flags, then its config file, then the queue, then
/// the defaults: `retry.max-attempts` may say fewer attempts than the queue's
/// `maxReceiveCount`, never more (SQS would dead-letter a job before its failure is
/// recorded), and saying more is refused naming the key.
#[tokio::test]
async fn a_workers_attempts_may_not_exceed_the_queues_redrive_count() {
    let ls = repovault_testkit::localstack::LocalStack::connect().await;
    let stack = ls.stack("attempts", 3).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yml"),
        format!(
            "retry: {{ max-attempts: 5 }}\njobs:\n  - source: {{ org: acme }}\n    target: {}\n",
            stack.target()
        ),
    )
    .unwrap();
    let env: Vec<(String, String)> = stack.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = repovault(dir.path(), &["work", "--config", "c.yml"], &env).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retry.max-attempts") && stderr.contains("maxReceiveCount (3)"),
        "{stderr}"
    );
}
