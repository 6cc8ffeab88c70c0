//! OpenTelemetry: every role exports spans and metrics over OTLP/HTTP to a receiver
//! that decodes them with the official protobuf definitions. One job is one trace,
//! begun by the planner and continued by the worker in another process; the metrics
//! of a known run have known values; log lines name their trace.

use repovault_testkit::localstack::LocalStack;
use repovault_testkit::{OtlpReceiver, ReceivedPoint, org};

use crate::procs::Proc;
use crate::support::*;

/// The last value received of `metric` from `service` with `attrs` (cumulative
/// temporality: the newest export is the total).
fn value(
    points: &[ReceivedPoint],
    service: &str,
    metric: &str,
    attrs: &[(&str, &str)],
) -> Option<ReceivedPoint> {
    points
        .iter()
        .rev()
        .find(|p| {
            p.service == service
                && p.metric == metric
                && attrs
                    .iter()
                    .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
        })
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_job_is_one_trace_across_planner_and_worker_with_metrics_of_the_run() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let ls = LocalStack::connect().await;
    let stack = ls.stack("otel", 2).await;
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 4);
    let dir = deployment_dir(&gh, &stack.target(), "    options: { metadata: false }\n");
    let mut env = stack.env();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), otlp.endpoint().into()));
    // Exported at exit (and not before): every value below is the run's total.
    env.push(("OTEL_METRIC_EXPORT_INTERVAL".into(), "600000".into()));
    let spawn =
        |name: &str, bin: &str, args: &[&str]| Proc::spawn(name, bin, args, &env, dir.path());

    let mut planner = spawn(
        "planner",
        "planner",
        &["--config", "repovault.yml", "--run-id", "traced"],
    );
    assert!(planner.wait().await.success(), "{}", planner.log());
    // One repository is gone by the time a worker gets to it: a permanent failure.
    let failing = &names[3];
    gh.delete_repo("acme", failing);
    let mut worker = spawn(
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
    );
    let mut reporter = spawn(
        "reporter",
        "reporter",
        &[
            "--config",
            "repovault.yml",
            "--run-id",
            "traced",
            "--wait",
            "120s",
        ],
    );
    let status = reporter.wait().await;
    assert_eq!(status.code(), Some(1), "{}", reporter.log());
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(worker.wait().await.success(), "{}", worker.log());

    // Spans: per repository, the planner's `enqueue` is the root of a trace the
    // worker's `job` continues; the job's steps are its children.
    // Each process exported before it exited.
    let spans = otlp.spans();
    for name in &names {
        let repo = format!("acme/{name}");
        let enqueue = spans
            .iter()
            .find(|s| s.name == "enqueue" && s.attributes.get("repo") == Some(&repo))
            .unwrap_or_else(|| panic!("no enqueue span for {repo}"));
        assert_eq!(enqueue.service, "repovault-planner");
        assert!(
            enqueue.parent_span_id.is_empty(),
            "each job is its own trace"
        );
        let job = spans
            .iter()
            .find(|s| s.name == "job" && s.attributes.get("repo") == Some(&repo))
            .unwrap_or_else(|| panic!("no job span for {repo}"));
        assert_eq!(job.service, "repovault-worker");
        assert_eq!(
            job.trace_id, enqueue.trace_id,
            "{repo}: the worker continues the planner's trace"
        );
        assert_eq!(job.parent_span_id, enqueue.span_id);
        let children: Vec<&str> = spans
            .iter()
            .filter(|s| s.parent_span_id == job.span_id)
            .map(|s| s.name.as_str())
            .collect();
        if name == failing {
            assert!(job.error, "{repo}: the failed job's span is an error");
            assert_eq!(
                job.attributes.get("outcome").map(String::as_str),
                Some("failed")
            );
        } else {
            assert!(!job.error);
            assert_eq!(
                job.attributes.get("outcome").map(String::as_str),
                Some("ok")
            );
            for step in ["fetch", "record"] {
                assert!(
                    children.contains(&step),
                    "{repo}: no {step} under job: {children:?}"
                );
            }
            let fetch = spans
                .iter()
                .find(|s| s.name == "fetch" && s.parent_span_id == job.span_id)
                .unwrap();
            assert!(
                spans
                    .iter()
                    .any(|s| s.name == "verify" && s.parent_span_id == fetch.span_id),
                "{repo}: the upload is verified inside the fetch"
            );
            assert!(fetch.attributes.get("bytes").is_some_and(|b| b != "0"));
        }
        // The worker's log lines about this job name its trace.
        let logged = worker
            .log()
            .lines()
            .filter(|l| {
                l.contains(&repo) && l.contains(&format!("\"trace_id\":\"{}\"", job.trace_id))
            })
            .count();
        assert!(
            logged > 0,
            "{repo}: no log line names trace {}",
            job.trace_id
        );
    }

    // Metrics of the run: 3 ok, 1 failed.
    let points = otlp.points();
    let worker_value = |metric: &str, attrs: &[(&str, &str)]| {
        value(&points, "repovault-worker", metric, attrs)
            .unwrap_or_else(|| panic!("no {metric} {attrs:?} from the worker"))
    };
    assert_eq!(
        worker_value("repovault.jobs", &[("outcome", "ok")]).value,
        3.0
    );
    assert_eq!(
        worker_value("repovault.jobs", &[("outcome", "failed")]).value,
        1.0
    );
    assert_eq!(
        worker_value("repovault.job.duration", &[("outcome", "ok")]).count,
        3
    );
    assert_eq!(worker_value("repovault.git.fetch.duration", &[]).count, 3);
    let stored = worker_value("repovault.store.written", &[("kind", "bundle")]);
    assert!(stored.value > 0.0 && stored.unit == "By", "{stored:?}");
    assert!(worker_value("repovault.git.fetched", &[]).value > 0.0);
    assert_eq!(
        worker_value("repovault.store.upload.throughput", &[]).count,
        3
    );
    assert!(
        value(
            &points,
            "repovault-planner",
            "repovault.github.rate_limit.remaining",
            &[]
        )
        .is_some()
    );
    let reporter_value = |metric: &str, attrs: &[(&str, &str)]| {
        value(&points, "repovault-reporter", metric, attrs)
            .unwrap_or_else(|| panic!("no {metric} {attrs:?} from the reporter"))
    };
    assert_eq!(
        reporter_value("repovault.run.repositories", &[("status", "ok")]).value,
        3.0
    );
    assert_eq!(
        reporter_value("repovault.run.repositories", &[("status", "failed")]).value,
        1.0
    );
    assert!(reporter_value("repovault.run.duration", &[]).value > 0.0);
    assert!(
        value(
            &points,
            "repovault-reporter",
            "repovault.queue.backlog",
            &[]
        )
        .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_an_endpoint_nothing_is_exported() {
    let otlp = OtlpReceiver::start().await.unwrap();
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    let work = tempfile::tempdir().unwrap();
    // The receiver is running, but nothing names it: a run exports nothing.
    let out = run_org(work.path(), &gh, "quiet", &["--no-metadata"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(otlp.requests(), 0);
    // Named, the same run exports, whatever the log level.
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &gh.api_url(),
            "--allow-insecure-http",
            "--no-metadata",
            "--run-id",
            "loud",
        ],
        // A quiet log does not silence the traces.
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        otlp.spans()
            .iter()
            .any(|s| s.name == "job" && s.service == "repovault")
    );
}
