//! The benchmark harness itself still works (a smoke run: tiny fixture, one run; a
//! scale run of 20 repositories). It measures nothing here; `scripts/bench` does, on
//! release builds.

use crate::support::bin;

/// Runs `repovault-bench args` to success; returns its JSON and what it printed. A
/// failure shows what it printed and the end of each log it left beside its JSON.
pub(crate) async fn bench(args: &[&str]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let bench = bin("repovault-bench");
    let out = tokio::process::Command::new(&bench)
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--bin-dir")
        .arg(bench.parent().unwrap())
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".log") {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail = &log[log.floor_char_boundary(log.len().saturating_sub(2000))..];
                text.push_str(&format!("\n--- {}\n{tail}", entry.path().display()));
            }
        }
        panic!("repovault-bench {args:?} failed ({}):\n{text}", out.status);
    }
    let results = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (results, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_smoke_run_produces_every_scenario() {
    let (results, table) = bench(&["--smoke"]).await;
    let names: Vec<&str> = results["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for expected in [
        "floor",
        "baseline",
        "repovault run (local folder), full",
        "repovault run (local folder), unchanged",
        "full, git.verify-objects",
        "full, encrypted (age)",
        "unchanged, encrypted (age)",
        "peak RSS",
        "LocalStack S3/SQS, full",
        "planner: list + enqueue",
        "data beyond git: repovault run, full",
        "data beyond git: repovault run, unchanged",
        "daily chain: 4 backups of an active repository",
        "daily chain: restore of the 4-link chain",
    ] {
        assert!(
            names.iter().any(|n| n.contains(expected)),
            "no {expected:?} in {names:?}"
        );
    }
    for s in results["scenarios"].as_array().unwrap() {
        assert!(s["median_secs"].as_f64().unwrap() > 0.0, "{s}");
    }
    assert!(
        table.contains("| scenario | wall (s) | × floor | × baseline |"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_scale_run_counts_what_each_run_costs_per_repository() {
    let args = ["--scale", "--scale-repos", "20", "--scale-workers", "2"];
    let (results, _) =
        bench(&[&args[..], &["--planner-repos", "150", "--runs", "1"]].concat()).await;
    let scenarios = results["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names[0].contains("planner: list + enqueue 150"),
        "{names:?}"
    );
    let runs: Vec<&serde_json::Value> = scenarios
        .iter()
        .filter(|s| s.get("scale").is_some())
        .collect();
    assert_eq!(runs.len(), 4, "{names:?}");
    let figure = |run: usize, what: &str| runs[run]["scale"][what].as_f64().unwrap();
    // The first run fetched every repository and asked GitHub about each; the
    // unchanged run listed refs only; pushes added fetches for the pushed 1 %.
    assert!(figure(0, "git_requests") >= 2.0, "{}", runs[0]);
    assert!(figure(0, "api_requests") >= 1.0, "{}", runs[0]);
    assert!(
        figure(1, "git_requests") < figure(0, "git_requests"),
        "{}",
        runs[1]
    );
    assert!(
        figure(2, "git_requests") > figure(1, "git_requests"),
        "{}",
        runs[2]
    );
    // Nothing changed: the organization's event feed says so, and no repository's data
    // is asked for (the listing, the feed and the organization's own data remain:
    // ~0.35 a repository; a repository coming due its daily probe of every kind in
    // these seconds, once in some 400 runs, adds ~1.05; every kind probed, 21).
    assert!(figure(1, "api_requests") < 2.0, "{}", runs[1]);
    assert!(figure(1, "reporter_store_requests") > 0.0, "{}", runs[1]);
    for run in &runs {
        assert!(
            run["scale"]["store_requests"].as_f64().unwrap() > 0.0,
            "{run}"
        );
        assert!(
            run["scale"]["by_verb"]["S3 PUT"].as_f64().unwrap() > 0.0,
            "{run}"
        );
        assert!(
            run["scale"]["peak_rss_mb"]["worker"].as_f64().unwrap() > 0.0,
            "{run}"
        );
    }
}
