//! The GitHub Action, run as GitHub's runner runs a container Action: the binary's
//! `action` entry point with the step's inputs as `INPUT_*` variables and the
//! runner's files (`GITHUB_STEP_SUMMARY`, `GITHUB_OUTPUT`) in a temporary workspace,
//! against the fake GitHub and LocalStack.

use repovault_testkit::localstack::LocalStack;
use repovault_testkit::org;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_backs_up_to_s3_and_reports_to_the_summary_outputs_and_annotations() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 3);
    // Listed by the API, gone from git: this one fails, permanently.
    std::fs::remove_dir_all(gh.repo_path("acme", "repo-001")).unwrap();
    let ls = LocalStack::connect().await;
    let stack = ls.stack("action", 5).await;
    let workspace = tempfile::tempdir().unwrap();
    let summary = workspace.path().join("step_summary.md");
    let outputs = workspace.path().join("output.txt");
    let dest = format!("s3://{}/github", stack.bucket);

    let out = tokio::process::Command::new(bin("repovault"))
        .arg("action")
        .current_dir(workspace.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", workspace.path())
        // What the step's `with:` gives, as the runner names it.
        .env("INPUT_ORG", "acme")
        .env("INPUT_DEST", &dest)
        .env("INPUT_TOKEN", TOKEN)
        .env("INPUT_PATTERN", "^repo-\n")
        .env("INPUT_LFS", "false")
        .env("INPUT_METADATA", "true")
        .env("INPUT_FULL", "false")
        .env("INPUT_CONCURRENCY", "")
        .env("INPUT_S3-ENDPOINT", &ls.endpoint)
        .env("INPUT_S3-REGION", "us-east-1")
        .env("INPUT_S3-COMPAT", "auto")
        // What the runner and the job's environment give.
        .env("GITHUB_API_URL", gh.api_url())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_WORKSPACE", workspace.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("REPOVAULT_ALLOW_INSECURE_HTTP", "true")
        .output()
        .await
        .unwrap();
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("::error title=backup of acme/repo-001 failed::"),
        "{printed}"
    );
    assert_eq!(
        printed.matches("::error").count(),
        1,
        "one annotation, for the one failure: {printed}"
    );

    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("acme/repo-001"), "{summary}");
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    for line in ["ok=2", "failed=1", "unchanged=0", "exit-code=1"] {
        assert!(outputs.lines().any(|l| l == line), "{line} in {outputs}");
    }
    let report_key = outputs
        .lines()
        .find(|l| l.starts_with(&format!("s3://{}/", stack.bucket)))
        .unwrap_or_else(|| panic!("the report's key in {outputs}"));
    let key = report_key
        .strip_prefix(&format!("s3://{}/", stack.bucket))
        .unwrap();
    let stored = ls
        .s3
        .get_object()
        .bucket(&stack.bucket)
        .key(key)
        .send()
        .await
        .expect("the report the output names is in the bucket");
    let body = stored.body.collect().await.unwrap().into_bytes();
    let report: repovault_reporter::Report = serde_json::from_slice(&body).unwrap();
    assert_eq!((report.totals.ok, report.totals.failed), (2, 1));
}

#[tokio::test]
async fn a_wrong_input_fails_the_step_naming_it() {
    let workspace = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(bin("repovault"))
        .arg("action")
        .current_dir(workspace.path())
        .env("INPUT_ORG", "acme")
        .env("INPUT_LFS", "yes")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let printed = text(&out);
    assert!(printed.contains("input `lfs`"), "{printed}");
}
