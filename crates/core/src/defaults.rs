//! Every default lives here: the configuration's, the command line's, the roles'.

use std::time::Duration;

pub const API_URL: &str = "https://api.github.com";
pub const CONCURRENCY: usize = 4;
pub const MAX_CONCURRENCY: usize = 256;
/// How often a repository's data beyond git is read whole.
pub const METADATA_FULL_EVERY: Duration = Duration::from_secs(7 * 86_400);
/// How often every kind of a repository's data beyond git is probed even when the
/// organization's event feed shows it quiet.
pub const METADATA_PROBE_EVERY: Duration = Duration::from_secs(86_400);
/// GitHub API requests at once per process.
pub const REQUESTS_IN_FLIGHT: usize = 4;
/// How long a bundle chain grows before a backup starts a new one in full.
pub const CHAIN_FULL_EVERY: Duration = Duration::from_secs(30 * 86_400);
pub const MAX_ATTEMPTS: u32 = 5;
pub const RETRY_BASE_DELAY: Duration = Duration::from_secs(5);
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(300);
/// How long a received job stays invisible before the heartbeat must extend it
/// (renewed every third of it).
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(300);
/// The shortest visibility timeout: a renewal must have time to reach the queue.
pub const MIN_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(6);
/// SQS's longest visibility timeout.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// How long a worker's receive call waits for messages.
pub const POLL_WAIT: Duration = Duration::from_secs(20);
/// SQS's longest long poll.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(20);
/// How long running jobs may take to finish once a worker is told to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// The longest GitHub rate-limit wait a worker sits out before it records the data
/// beyond git incomplete (the planner waits up to an hour).
pub const WORKER_MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(300);
/// Where `run`'s quick path writes backups.
pub const DEST: &str = "./backups";
/// Where the receiver and status page listen.
pub const LISTEN: &str = "127.0.0.1:8080";
/// The receiver's per-repository window: one job at once, one at its end.
pub const DEBOUNCE: Duration = Duration::from_secs(60);
/// The longest debounce window (SQS delays messages by at most 15 minutes).
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(15 * 60);
/// S3 multipart part size, MiB, and parts uploaded at once per upload.
pub const PART_SIZE_MB: usize = 8;
pub const PARTS_IN_FLIGHT: usize = 3;
pub const CONFIG_FILE: &str = "repovault.yml";
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";
/// Failed repositories named in a notification.
pub const NOTIFY_MAX_LISTED: usize = 20;
