//! The soak's short variant (`scripts/soak` runs the long one): 90 seconds of the
//! planner, three workers SIGKILLed in turn, S3 and SQS faults, git faults, one-minute
//! App tokens and webhook bursts, then every end-of-run check.

use crate::bench::bench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_under_faults_passes_every_end_of_run_check() {
    let (report, _) = bench(&[
        "--soak",
        "--soak-repos",
        "20",
        "--soak-large",
        "1",
        "--soak-workers",
        "3",
        "--soak-secs",
        "90",
        "--soak-plan-every-secs",
        "30",
        "--soak-kill-every-secs",
        "10",
    ])
    .await;
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 10, "{report:#}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{report:#}");
    // The faults happened: a soak without them proves nothing.
    let figure = |path: &[&str]| path.iter().fold(&report, |v, k| &v[*k]).as_u64().unwrap();
    assert!(figure(&["store_faults", "s3_faults"]) > 0, "{report:#}");
    assert!(figure(&["store_faults", "sqs_faults"]) > 0, "{report:#}");
    assert!(figure(&["kills"]) >= 8, "{report:#}");
    // Tokens renewed, not one a process.
    let processes = figure(&["kills"]) + 3 + 2 * report["runs"].as_array().unwrap().len() as u64;
    assert!(figure(&["app_tokens_minted"]) > processes, "{report:#}");
    assert!(figure(&["webhook_deliveries"]) >= 30, "{report:#}");
    let runs = report["runs"].as_array().unwrap();
    assert!(runs.len() >= 3, "{report:#}");
    assert!(
        runs.iter().skip(1).all(|r| r["pushed"].as_u64() > Some(0)),
        "{report:#}"
    );
}
