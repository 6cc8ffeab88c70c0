//! Every metric repovault exports, named and described in one place (OpenTelemetry
//! naming: dotted lowercase names, UCUM units, `{thing}` for counts). The metrics
//! table of `docs/OPERATING.md` lists the same.

use std::sync::OnceLock;

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter};

/// The instruments. No-ops until [`crate::init`] starts an exporter.
pub struct Metrics {
    /// Jobs finished, by `outcome` (`ok`, `unchanged`, `failed`, `skipped`). Worker.
    pub jobs: Counter<u64>,
    /// Time from a job's start to its record, by `outcome`. Worker.
    pub job_duration: Histogram<f64>,
    /// Time to fetch a repository's pack (or clone it, on the fallback). Worker.
    pub fetch_duration: Histogram<f64>,
    /// Bytes received from GitHub: packs and LFS objects. Worker.
    pub bytes_fetched: Counter<u64>,
    /// Bytes written to the store, by `kind` (`bundle`, `archive`, `lfs`). Worker.
    pub bytes_stored: Counter<u64>,
    /// Bytes per second of each upload of a link or archive. Worker.
    pub upload_throughput: Histogram<f64>,
    /// Attempts retried, by `where` (`in_place`: a git request; `queue`: the job
    /// goes back on the queue). Worker.
    pub retries: Counter<u64>,
    /// Messages moved to the dead-letter queue, by `reason` (`malformed`, `refused`,
    /// `failed`). Worker.
    pub dead_lettered: Counter<u64>,
    /// The GitHub API budget left, as the last response said. Planner, worker.
    pub rate_limit_remaining: Gauge<u64>,
    /// Messages waiting on the queue, as the reporter saw them. Reporter.
    pub queue_backlog: Gauge<u64>,
    /// A run's repositories by `status` in its report (`ok`, `unchanged`, `failed`,
    /// `missing`…). Reporter, `run`.
    pub run_repositories: Gauge<u64>,
    /// From a run's plan to its report. Reporter, `run`.
    pub run_duration: Gauge<f64>,
}

/// The process's instruments.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&opentelemetry::global::meter("repovault")))
}

impl Metrics {
    fn new(meter: &Meter) -> Metrics {
        Metrics {
            jobs: meter
                .u64_counter("repovault.jobs")
                .with_unit("{job}")
                .with_description("Backup jobs finished, by outcome")
                .build(),
            job_duration: meter
                .f64_histogram("repovault.job.duration")
                .with_unit("s")
                .with_description("Time from a job's start to its record")
                .build(),
            fetch_duration: meter
                .f64_histogram("repovault.git.fetch.duration")
                .with_unit("s")
                .with_description("Time to fetch a repository's new objects")
                .build(),
            bytes_fetched: meter
                .u64_counter("repovault.git.fetched")
                .with_unit("By")
                .with_description("Bytes received from GitHub (packs, LFS objects)")
                .build(),
            bytes_stored: meter
                .u64_counter("repovault.store.written")
                .with_unit("By")
                .with_description("Bytes written to the store, by kind")
                .build(),
            upload_throughput: meter
                .f64_histogram("repovault.store.upload.throughput")
                .with_unit("By/s")
                .with_description("Throughput of each upload of a link or archive")
                .build(),
            retries: meter
                .u64_counter("repovault.retries")
                .with_unit("{attempt}")
                .with_description("Attempts retried, in place or through the queue")
                .build(),
            dead_lettered: meter
                .u64_counter("repovault.dead_lettered")
                .with_unit("{message}")
                .with_description("Messages moved to the dead-letter queue, by reason")
                .build(),
            rate_limit_remaining: meter
                .u64_gauge("repovault.github.rate_limit.remaining")
                .with_unit("{request}")
                .with_description("GitHub API requests left in the current window")
                .build(),
            queue_backlog: meter
                .u64_gauge("repovault.queue.backlog")
                .with_unit("{message}")
                .with_description("Messages waiting on the job queue")
                .build(),
            run_repositories: meter
                .u64_gauge("repovault.run.repositories")
                .with_unit("{repository}")
                .with_description("A run's repositories by status in its report")
                .build(),
            run_duration: meter
                .f64_gauge("repovault.run.duration")
                .with_unit("s")
                .with_description("Time from a run's plan to its report")
                .build(),
        }
    }
}
