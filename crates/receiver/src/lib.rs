//! # repovault-receiver
//!
//! GitHub webhooks in, single-repository backup jobs out. [`Receiver::handle`] takes
//! one delivery (headers and raw body) and answers as GitHub expects, quickly:
//!
//! 1. the `X-Hub-Signature-256` HMAC-SHA256 of the raw body is checked (constant-time)
//!    before anything is parsed: missing or wrong → `401`, nothing enqueued;
//! 2. a body over 25 MiB (GitHub's cap) → `413`; not JSON → `400`;
//! 3. a delivery id (`X-GitHub-Delivery`) seen before → `200`, nothing enqueued;
//! 4. `ping` → `200`;
//! 5. an event for a repository no configured job covers (its owner, its filters,
//!    its git host) → `202`, ignored and logged;
//! 6. otherwise one job message, the planner's schema and allow-list, run id
//!    `event-<time>-<delivery>`, goes on the queue → `202`.
//!
//! **Bursts coalesce** per repository with a window (`debounce`; `repovault receive` defaults to 60 s): the
//! first event of a window is enqueued at once; the first one after it is enqueued
//! *delayed* to the window's end (an SQS message delay, so no timer has to survive);
//! the rest of the window is dropped: their changes are in what that delayed job
//! fetches. Fifty pushes in a minute make at most two jobs, and a job that finds
//! nothing new records `unchanged` and stores nothing. The state is per process: a
//! second receiver (or a cold Lambda) may add a job, never lose one.
//!
//! `repository` events: `created` (and `archived`, `unarchived`, `publicized`,
//! `privatized`, `edited`) back the repository up; `renamed` and `transferred` back it
//! up under its new name, and the job tells the worker the old name
//! ([`RepoEvent::Moved`]), whose backups then say where it went; `deleted` asks the
//! worker to record the deletion ([`RepoEvent::Deleted`]) and keep every backup.

pub mod lambda;
pub mod server;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use repovault_core::config::JobSpec;
use repovault_core::ports::queue::Queue;
use repovault_core::{JobMessage, RepoEvent, RepoRef, RunId, Secret};
use serde_json::Value;
use sha2::Sha256;
use tokio::time::Instant;

/// GitHub's largest webhook payload.
pub const MAX_BODY: usize = 25 << 20;
/// Delivery ids remembered, to ignore redeliveries and replays.
const SEEN: usize = 10_000;

/// Events that mean a repository's data changed.
const BACKUP_EVENTS: &[&str] = &[
    "push",
    "create",
    "delete",
    "release",
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "repository",
];

/// One webhook delivery as it arrived.
pub struct Delivery<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub id: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer to GitHub: a status and a short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    fn new(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            body: body.into(),
        }
    }
}

/// What the receiver needs.
pub struct ReceiverConfig {
    /// The webhook's secret, as configured on GitHub.
    pub secret: Secret,
    /// The configured jobs: which owners' repositories are backed up, where, and how.
    pub jobs: Vec<JobSpec>,
    pub debounce: Duration,
}

/// A running receiver: configuration, the queue, and what it remembers.
pub struct Receiver {
    cfg: ReceiverConfig,
    queue: Arc<dyn Queue>,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    /// Per repository (lowercase `owner/name`): the window's end, and whether its
    /// delayed job is already on the queue.
    windows: Mutex<HashMap<String, (Instant, bool)>>,
}

/// `X-Hub-Signature-256` is `sha256=<hex HMAC-SHA256 of the body>` with `secret`;
/// compared in constant time.
pub fn signature_ok(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

impl Receiver {
    pub fn new(cfg: ReceiverConfig, queue: Arc<dyn Queue>) -> Receiver {
        Receiver {
            cfg,
            queue,
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one delivery (see the crate docs for every answer).
    pub async fn handle(&self, delivery: Delivery<'_>) -> Answer {
        if delivery.body.len() > MAX_BODY {
            return Answer::new(413, "payload too large");
        }
        if !signature_ok(&self.cfg.secret, delivery.body, delivery.signature) {
            tracing::warn!(
                delivery = delivery.id,
                "webhook signature missing or wrong; ignored"
            );
            return Answer::new(401, "signature missing or wrong");
        }
        let Ok(payload) = serde_json::from_slice::<Value>(delivery.body) else {
            return Answer::new(400, "the body is not JSON");
        };
        let event = delivery.event.unwrap_or_default();
        if let Some(id) = delivery.id
            && !self.first_time(id)
        {
            tracing::info!(delivery = id, event, "delivery seen before; ignored");
            return Answer::new(200, "seen before");
        }
        if event == "ping" {
            return Answer::new(200, "pong");
        }
        if !BACKUP_EVENTS.contains(&event) {
            return Answer::new(
                202,
                format!("{event}: not an event that changes a repository"),
            );
        }
        let Some(repo) = repo_of(&payload["repository"]) else {
            return Answer::new(400, "no repository in the payload");
        };
        let Some(job) = self.job_for(&repo) else {
            tracing::info!(repo = %repo.full_name(), event, "no configured job backs this repository up; ignored");
            return Answer::new(202, "not a configured repository; ignored");
        };
        let action = payload["action"].as_str().unwrap_or_default();
        let repo_event = match (event, action) {
            ("repository", "deleted") => Some(RepoEvent::Deleted),
            ("repository", "renamed") => payload["changes"]["repository"]["name"]["from"]
                .as_str()
                .map(|old| RepoEvent::Moved {
                    from: format!("{}/{old}", repo.owner),
                }),
            ("repository", "transferred") => {
                let from = &payload["changes"]["owner"]["from"];
                from["organization"]["login"]
                    .as_str()
                    .or(from["user"]["login"].as_str())
                    .map(|old_owner| RepoEvent::Moved {
                        from: format!("{old_owner}/{}", repo.name),
                    })
            }
            _ => None,
        };
        let mut message = JobMessage::new(
            run_id(delivery.id),
            job.name.clone(),
            job.target.clone(),
            repo,
            job.options,
        );
        let key = message.repo.full_name().to_lowercase();
        // Renames, transfers and deletions are not coalesced: each says something.
        let delay = if repo_event.is_some() {
            Some(Duration::ZERO)
        } else {
            self.slot(&key)
        };
        message.event = repo_event;
        let Some(delay) = delay else {
            tracing::info!(repo = %key, event, "coalesced into the job already waiting");
            return Answer::new(202, "coalesced");
        };
        let body = message.to_body();
        let sent = if delay.is_zero() {
            self.queue.send(std::slice::from_ref(&body)).await
        } else {
            self.queue.send_delayed(&body, delay).await
        };
        match sent {
            Ok(()) => {
                tracing::info!(repo = %key, event, action, run = %message.run_id, delay_secs = delay.as_secs(), "backup job enqueued");
                Answer::new(202, format!("backup of {key} enqueued"))
            }
            Err(e) => {
                // GitHub shows the failure and the delivery can be redelivered; the
                // window is forgotten too, so the next event is not coalesced into a
                // job that never reached the queue.
                tracing::error!(repo = %key, error = %e, "could not enqueue");
                self.forget(delivery.id);
                self.windows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                Answer::new(503, "could not enqueue; redeliver later")
            }
        }
    }

    /// Remembers `id`; false if it was already known.
    fn first_time(&self, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.0.insert(id.to_owned()) {
            return false;
        }
        seen.1.push_back(id.to_owned());
        if seen.1.len() > SEEN
            && let Some(old) = seen.1.pop_front()
        {
            seen.0.remove(&old);
        }
        true
    }

    /// Lets a delivery that could not be enqueued be redelivered.
    fn forget(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .remove(id);
        }
    }

    /// When to run a job for `key` now: `Some(ZERO)` at once (a new window),
    /// `Some(rest)` delayed to the window's end (once per window), `None`: coalesced.
    fn slot(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.retain(|_, (end, _)| *end > now);
        match windows.get_mut(key) {
            None => {
                windows.insert(key.to_owned(), (now + self.cfg.debounce, false));
                Some(Duration::ZERO)
            }
            Some((end, delayed @ false)) => {
                *delayed = true;
                Some(end.saturating_duration_since(now))
            }
            Some((_, true)) => None,
        }
    }

    /// The configured job that backs `repo` up: its owner's, if its filters select
    /// the repository and its clone URL is on the job's git host.
    fn job_for(&self, repo: &RepoRef) -> Option<&JobSpec> {
        self.cfg.jobs.iter().find(|job| {
            job.selector.owner.login().eq_ignore_ascii_case(&repo.owner)
                && job.selector.matches(repo)
                && job
                    .git_host
                    .check_clone_url(&repo.clone_url, &repo.owner, &repo.name)
                    .is_ok()
        })
    }
}

/// `event-<UTC time>-<delivery id's first 8 characters>`: one run per event, so a
/// later event for the same repository is never taken for a redelivery.
fn run_id(delivery: Option<&str>) -> RunId {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let tag: String = delivery
        .unwrap_or("nodelivery")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    format!("event-{stamp}-{tag}")
        .parse()
        .expect("a valid run id")
}

/// The repository of a webhook payload: GitHub's repository object, with the same
/// field names as the REST API (`pushed_at` is a number in `push` events).
fn repo_of(v: &Value) -> Option<RepoRef> {
    let pushed_at = match &v["pushed_at"] {
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    Some(RepoRef {
        owner: v["owner"]["login"].as_str()?.to_owned(),
        name: v["name"].as_str()?.to_owned(),
        id: v["id"].as_u64()?,
        clone_url: v["clone_url"].as_str()?.to_owned(),
        default_branch: v["default_branch"].as_str().map(str::to_owned),
        pushed_at,
        size_kb: v["size"].as_u64().unwrap_or(0),
        private: v["private"].as_bool().unwrap_or(true),
        archived: v["archived"].as_bool().unwrap_or(false),
        fork: v["fork"].as_bool().unwrap_or(false),
        has_wiki: v["has_wiki"].as_bool().unwrap_or(false),
        topics: v["topics"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_documented_signature_verifies_and_anything_else_does_not() {
        let secret = Secret::new("It's a Secret to Everybody");
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_ok(&secret, b"Hello, World!", Some(good)));
        assert!(!signature_ok(&secret, b"Hello, World?", Some(good)));
        assert!(!signature_ok(
            &Secret::new("other"),
            b"Hello, World!",
            Some(good)
        ));
        assert!(!signature_ok(&secret, b"Hello, World!", None));
        assert!(!signature_ok(&secret, b"Hello, World!", Some(&good[7..])));
        assert!(!signature_ok(&secret, b"Hello, World!", Some("sha256=zz")));
    }
}
