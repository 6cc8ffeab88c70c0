//! # repovault-receiver
//!
//! GitHub webhooks in, single-repository backup jobs out. [`Receiver::handle`] takes
//! one delivery (headers and raw body) and answers as GitHub expects, quickly:
//!
//! 1. a body over [`MAX_BODY`] (6 MiB: what a Lambda Function URL accepts) → `413`;
//! 2. the `X-Hub-Signature-256` HMAC-SHA256 of the raw body is checked (constant-time)
//!    before anything is parsed: missing or wrong → `401`, nothing enqueued;
//! 3. a delivery id (`X-GitHub-Delivery`) not in GitHub's GUID form → `400`; a body
//!    that is not JSON → `400`;
//! 4. a body whose shape is not the event's (`X-GitHub-Event` is not signed: a
//!    `repository` event has no `issue` or `comment`, a `renamed` one says what
//!    changed…) → `400`; a name GitHub would not allow (owner, repository, a moved
//!    repository's old name) → `400`, naming the field;
//! 5. a body seen before (its HMAC, 32 bytes, remembered: a replay under a fresh
//!    delivery id is still a replay) → `200`, nothing enqueued;
//! 6. `ping` → `200`;
//! 7. an event for a repository no configured job covers (its owner, its filters,
//!    its git host) → `202`, ignored and logged;
//! 8. otherwise one job message, the planner's schema and allow-list, run id
//!    `event-<time>-<delivery>`, goes on the queue → `202`.
//!
//! **Bursts coalesce** per repository (and, for `repository` events, per action) with a window (`debounce`; `repovault receive` defaults to 60 s): the
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
mod shape;

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

/// The largest body accepted: what a Lambda Function URL takes (6 MB). GitHub caps
/// payloads at 25 MB, but pushes that large are rare and the nightly run backs the
/// repository up anyway.
pub const MAX_BODY: usize = 6 << 20;
/// Bodies remembered (by their HMAC, 32 bytes each: at most 320 KiB of keys), to
/// ignore redeliveries and replays.
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
    seen: Mutex<ReplayCache>,
    /// Per repository (lowercase `owner/name`, and the action of a `repository`
    /// event): the window's end, and whether its delayed job is already on the queue.
    windows: Mutex<HashMap<String, (Instant, bool)>>,
}

/// A body's HMAC-SHA256 with the webhook's secret: what GitHub signs, and what
/// identifies a delivery (the delivery id is not signed).
type BodyMac = [u8; 32];

/// The last [`SEEN`] bodies' HMACs, oldest first out: a fixed 32 bytes per entry,
/// whatever the delivery's headers held.
#[derive(Default)]
struct ReplayCache {
    known: HashSet<BodyMac>,
    order: VecDeque<BodyMac>,
}

impl ReplayCache {
    /// Remembers `mac`; false if it was already known.
    fn insert(&mut self, mac: BodyMac) -> bool {
        if !self.known.insert(mac) {
            return false;
        }
        self.order.push_back(mac);
        if self.order.len() > SEEN
            && let Some(old) = self.order.pop_front()
        {
            self.known.remove(&old);
        }
        true
    }

    fn remove(&mut self, mac: &BodyMac) {
        if self.known.remove(mac) {
            self.order.retain(|m| m != mac);
        }
    }
}

/// `X-Hub-Signature-256` is `sha256=<hex HMAC-SHA256 of the body>` with `secret`;
/// compared in constant time.
pub fn signature_ok(secret: &Secret, body: &[u8], header: Option<&str>) -> bool {
    verified_mac(secret, body, header).is_some()
}

/// The body's HMAC, if `header` carries it (compared in constant time).
fn verified_mac(secret: &Secret, body: &[u8], header: Option<&str>) -> Option<BodyMac> {
    let hex_sig = header?.strip_prefix("sha256=")?;
    // 64 hex digits; anything longer is not decoded.
    if hex_sig.len() != 64 {
        return None;
    }
    let presented = hex::decode(hex_sig).ok()?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
    mac.update(body);
    mac.clone().verify_slice(&presented).ok()?;
    Some(mac.finalize().into_bytes().into())
}

/// GitHub's delivery ids are GUIDs: `72d3162e-cc78-11e3-81ab-4c9367dc0958`.
fn is_guid(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

impl Receiver {
    pub fn new(cfg: ReceiverConfig, queue: Arc<dyn Queue>) -> Receiver {
        Receiver {
            cfg,
            queue,
            seen: Mutex::new(ReplayCache::default()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one delivery (see the crate docs for every answer).
    pub async fn handle(&self, delivery: Delivery<'_>) -> Answer {
        if delivery.body.len() > MAX_BODY {
            return Answer::new(413, "payload too large");
        }
        let Some(mac) = verified_mac(&self.cfg.secret, delivery.body, delivery.signature) else {
            tracing::warn!("webhook signature missing or wrong; ignored");
            return Answer::new(401, "signature missing or wrong");
        };
        let Some(id) = delivery.id.filter(|id| is_guid(id)) else {
            return Answer::new(400, "X-GitHub-Delivery is missing or not a GUID");
        };
        let Ok(payload) = serde_json::from_slice::<Value>(delivery.body) else {
            return Answer::new(400, "the body is not JSON");
        };
        let event = delivery.event.unwrap_or_default();
        if let Err(why) = shape::check(event, &payload) {
            tracing::warn!(delivery = id, event, %why, "the body is not the event's; ignored");
            return Answer::new(400, why);
        }
        let job = match self.job_of(event, &payload, id) {
            Ok(job) => job,
            Err(answer) => return answer,
        };
        if !self.first_time(mac) {
            tracing::info!(delivery = id, event, "delivery seen before; ignored");
            return Answer::new(200, "seen before");
        }
        let Some((message, key)) = job else {
            return if event == "ping" {
                Answer::new(200, "pong")
            } else {
                Answer::new(
                    202,
                    format!("{event}: not an event that changes a repository"),
                )
            };
        };
        let Some(delay) = self.slot(&key) else {
            tracing::info!(repo = %message.repo.full_name(), event, "coalesced into the job already waiting");
            return Answer::new(202, "coalesced");
        };
        let body = message.to_body();
        let sent = if delay.is_zero() {
            self.queue.send(std::slice::from_ref(&body)).await
        } else {
            self.queue.send_delayed(&body, delay).await
        };
        let repo = message.repo.full_name();
        match sent {
            Ok(()) => {
                tracing::info!(%repo, event, run = %message.run_id, delay_secs = delay.as_secs(), "backup job enqueued");
                Answer::new(202, format!("backup of {repo} enqueued"))
            }
            Err(e) => {
                // GitHub shows the failure and the delivery can be redelivered; the
                // window is forgotten too, so the next event is not coalesced into a
                // job that never reached the queue.
                tracing::error!(%repo, error = %e, "could not enqueue");
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&mac);
                self.windows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                Answer::new(503, "could not enqueue; redeliver later")
            }
        }
    }

    /// The job a (signed, well-shaped) delivery asks for, and its debounce key:
    /// `Ok(None)` for an event that changes no repository (or `ping`), `Err` with the
    /// answer when it is refused or ignored.
    fn job_of(
        &self,
        event: &str,
        payload: &Value,
        id: &str,
    ) -> Result<Option<(JobMessage, String)>, Answer> {
        if !BACKUP_EVENTS.contains(&event) {
            return Ok(None);
        }
        let Some(repo) = repo_of(&payload["repository"]) else {
            return Err(Answer::new(400, "no repository in the payload"));
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
        // Names become object keys, directories and API paths: checked before
        // anything else looks at them.
        if let Err(e) = repo
            .validate()
            .and_then(|()| repo_event.as_ref().map_or(Ok(()), RepoEvent::validate))
        {
            tracing::warn!(delivery = id, event, error = %e, "a name GitHub would not allow; ignored");
            return Err(Answer::new(400, e.0));
        }
        let Some(job) = self.job_for(&repo) else {
            tracing::info!(repo = %repo.full_name(), event, "no configured job backs this repository up; ignored");
            return Err(Answer::new(202, "not a configured repository; ignored"));
        };
        // Each `repository` action has its own window (a rename is not coalesced
        // into an edit; two renames are two windows); other events share the
        // repository's.
        let mut key = repo.full_name().to_lowercase();
        if event == "repository" {
            key.push_str(" repository.");
            key.push_str(action);
            if let Some(RepoEvent::Moved { from }) = &repo_event {
                key.push_str(" from ");
                key.push_str(&from.to_lowercase());
            }
        }
        let mut message = JobMessage::new(
            run_id(id),
            job.name.clone(),
            job.target.clone(),
            repo,
            job.options,
        );
        message.event = repo_event;
        Ok(Some((message, key)))
    }

    /// Remembers a body's HMAC; false if it was already known.
    fn first_time(&self, mac: BodyMac) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mac)
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
fn run_id(delivery: &str) -> RunId {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let tag: String = delivery
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
    fn the_replay_cache_forgets_the_oldest_beyond_its_bound() {
        let mut cache = ReplayCache::default();
        let mac = |n: u32| {
            let mut m = [0u8; 32];
            m[..4].copy_from_slice(&n.to_be_bytes());
            m
        };
        for n in 0..(SEEN as u32 + 500) {
            assert!(cache.insert(mac(n)));
        }
        assert_eq!((cache.known.len(), cache.order.len()), (SEEN, SEEN));
        assert!(cache.insert(mac(0)), "the oldest was forgotten");
        assert!(!cache.insert(mac(SEEN as u32 + 499)), "the newest is known");
        cache.remove(&mac(SEEN as u32 + 499));
        assert!(cache.insert(mac(SEEN as u32 + 499)), "forgotten on request");
    }

    #[test]
    fn delivery_ids_are_guids() {
        assert!(is_guid("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
        assert!(is_guid("72D3162E-CC78-11E3-81AB-4C9367DC0958"));
        for not in [
            "",
            "72d3162e-cc78-11e3-81ab-4c9367dc095",
            "72d3162e-cc78-11e3-81ab-4c9367dc09580",
            "72d3162e_cc78-11e3-81ab-4c9367dc0958",
            "72d3162e-cc78-11e3-81ab-4c9367dc095\n",
            "x2d3162e-cc78-11e3-81ab-4c9367dc0958",
        ] {
            assert!(!is_guid(not), "{not:?}");
        }
    }

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
