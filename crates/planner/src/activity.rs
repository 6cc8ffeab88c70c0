//! What changed, from the organization's event feed: which planned repositories had
//! activity in which kinds of their data beyond git since the previous run, so that a
//! worker asks GitHub only about those (see ARCHITECTURE.md, "What changed, from the
//! event feed").
//!
//! Per (target, organization), `orgs/<org>/activity.json` says for which run the feed
//! was last read, when, its `ETag`, and the ids of the events read that GitHub may
//! still be publishing others around ([`FEED_DELAY`]). This run reads the feed
//! conditionally (a `304`: every repository quiet), back to [`FEED_DELAY`] before the
//! previous read; an event whose id was not read before is new, whatever its time, so
//! one published late is seen one run later, never lost. A repository gets a hint
//! only when all of these hold: the previous state exists and is another run's; the
//! feed was read to that point (not more than the feed's 300 events since); that run's
//! report says its data beyond git was completed (the hint names the snapshot it left:
//! the worker follows the hint only on top of it); it is public (the organization's
//! feed shows public repositories' events only); and no probe of every kind is due
//! ([`probe_due`]). Anything else gets no hint: every kind is probed, as always.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use repovault_core::config::JobSpec;
use repovault_core::ports::source::{Page, RepoData, SourceError};
use repovault_core::ports::store::Store;
use repovault_core::{DataHint, Owner, RECORD_SCHEMA, RepoRef, RunId, Target};
use repovault_repository::Layout;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{PlannerConfig, PlannerDeps};

/// How late GitHub may publish an event in the feed ("30 s to 6 h").
pub(crate) const FEED_DELAY: SignedDuration = SignedDuration::from_hours(6);
/// Pages of 100 events the feed serves at most (GitHub keeps 300).
const FEED_PAGES: usize = 3;
/// Event ids `activity.json` keeps at most.
const MAX_RECENT: usize = 1_000;

/// `orgs/<org>/activity.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Activity {
    schema: u32,
    /// The run the feed was read for: its report says whose data was completed.
    run_id: RunId,
    read_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    /// The events read that happened after `read_at` − [`FEED_DELAY`]: id → when.
    #[serde(default)]
    recent: BTreeMap<String, Timestamp>,
}

/// One event of the feed, as far as it matters here.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    repo_id: u64,
    kind: String,
    at: Timestamp,
}

/// What the feed says about one organization's repositories, for one target.
#[derive(Debug)]
struct OrgFeed {
    /// What `activity.json` will say once the run is enqueued.
    next: Activity,
    /// `None`: no hints this run (every kind of every repository is probed).
    hints: Option<Hints>,
}

#[derive(Debug)]
struct Hints {
    /// When the previous run read the feed.
    since: Timestamp,
    /// Repositories whose data the previous run completed, and the snapshot it left.
    complete: Completed,
    /// Kinds with new activity by repository id; `None`: any kind.
    active: HashMap<u64, Option<BTreeSet<&'static str>>>,
}

/// The feeds of every (target, organization) a run plans with data beyond git.
#[derive(Debug, Default)]
pub(crate) struct Feeds {
    /// By target, then organization (lowercase).
    by_org: HashMap<Target, HashMap<String, OrgFeed>>,
}

impl Feeds {
    /// Reads each organization's state and feed. A failure costs that organization's
    /// hints only (logged): its repositories are probed as always.
    pub(crate) async fn read(cfg: &PlannerConfig, deps: &PlannerDeps) -> Feeds {
        let mut feeds = Feeds::default();
        let now = deps.clock.now();
        let mut reports: HashMap<(Target, RunId), Option<Completed>> = HashMap::new();
        for job in &cfg.jobs {
            let Owner::Org(org) = &job.selector.owner else {
                continue;
            };
            let org_key = org.to_lowercase();
            let seen = feeds
                .by_org
                .get(&job.target)
                .is_some_and(|orgs| orgs.contains_key(&org_key));
            if !job.options.metadata || seen {
                continue;
            }
            let (Some(source), Some(store)) =
                (deps.data.get(&job.name), deps.targets.get(&job.target))
            else {
                continue;
            };
            let layout = Layout::new(&job.target.prefix);
            let state = match store
                .get_json::<Activity>(&layout.org_activity(&org_key))
                .await
            {
                Ok(state) => state.filter(|s| s.run_id != cfg.run_id && valid(s, now)),
                Err(e) => {
                    tracing::warn!(org, error = %e, "activity.json unreadable: every repository's data is probed this run");
                    None
                }
            };
            // The first read needs the ids GitHub may still publish others around only.
            let cutoff = state.as_ref().map_or(now, |s| s.read_at) - FEED_DELAY;
            let etag = state.as_ref().and_then(|s| s.etag.as_deref());
            let read = match read_feed(source.as_ref(), org, etag, cutoff).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(org, error = %e, "the organization's event feed could not be read: every repository's data is probed this run");
                    continue;
                }
            };
            let complete = match &state {
                Some(state) => {
                    let key = (job.target.clone(), state.run_id.clone());
                    if !reports.contains_key(&key) {
                        let complete = completed(store.as_ref(), &layout, &state.run_id).await;
                        reports.insert(key.clone(), complete);
                    }
                    reports[&key].clone()
                }
                None => None,
            };
            feeds.by_org.entry(job.target.clone()).or_default().insert(
                org_key,
                OrgFeed::new(cfg.run_id.clone(), now, state, read, complete),
            );
        }
        feeds
    }

    /// The hint for `repo`, planned by `job` now (see the module's docs).
    pub(crate) fn hint(
        &self,
        job: &JobSpec,
        repo: &RepoRef,
        now: Timestamp,
        probe_every: Duration,
    ) -> Option<DataHint> {
        let feed = self
            .by_org
            .get(&job.target)?
            .get(&repo.owner.to_lowercase())?;
        let hints = feed.hints.as_ref()?;
        let snapshot = hints.complete.get(&repo.full_name().to_lowercase())?;
        if repo.private || probe_due(repo.id, hints.since, now, probe_every) {
            return None;
        }
        let kinds = match hints.active.get(&repo.id) {
            None => Vec::new(),
            Some(None) => return None,
            Some(Some(kinds)) => kinds.iter().map(|k| (*k).to_owned()).collect(),
        };
        Some(DataHint {
            kinds,
            snapshot: snapshot.clone(),
        })
    }

    /// Records how far the feeds of `target`'s organizations were read: called once
    /// the run's jobs for `target` are enqueued. A failure is logged: the next run
    /// reads from the previous state again (more hints than needed, none missed).
    pub(crate) async fn commit(&self, target: &Target, store: &dyn Store) {
        let layout = Layout::new(&target.prefix);
        for (org, feed) in self.by_org.get(target).into_iter().flatten() {
            if let Err(e) = store.put_json(&layout.org_activity(org), &feed.next).await {
                tracing::warn!(org, error = %e, "could not write activity.json");
            }
        }
    }
}

impl OrgFeed {
    fn new(
        run_id: RunId,
        now: Timestamp,
        state: Option<Activity>,
        read: Option<Feed>,
        complete: Option<Completed>,
    ) -> OrgFeed {
        let (mut recent, etag) = match &state {
            Some(state) => (state.recent.clone(), state.etag.clone()),
            None => (BTreeMap::new(), None),
        };
        let mut hints = state.zip(complete).map(|(state, complete)| Hints {
            since: state.read_at,
            complete,
            active: HashMap::new(),
        });
        let etag = match read {
            // `304`: nothing since the previous read.
            None => etag,
            Some(feed) => {
                if !feed.whole && hints.is_some() {
                    tracing::warn!(
                        "more events since the previous run than the organization's feed keeps: every repository's data is probed this run"
                    );
                    hints = None;
                }
                for event in feed.events {
                    if recent.contains_key(&event.id) {
                        continue;
                    }
                    if let Some(hints) = &mut hints {
                        let entry = hints
                            .active
                            .entry(event.repo_id)
                            .or_insert(Some(BTreeSet::new()));
                        match (repovault_data::kinds_of_event(&event.kind), entry.as_mut()) {
                            (Some(kinds), Some(set)) => set.extend(kinds.iter().copied()),
                            (None, _) => *entry = None,
                            (Some(_), None) => {}
                        }
                    }
                    recent.insert(event.id, event.at);
                }
                feed.etag
            }
        };
        let keep_from = now - FEED_DELAY;
        recent.retain(|_, at| *at >= keep_from);
        if recent.len() > MAX_RECENT {
            // The newest MAX_RECENT stay.
            let mut times: Vec<Timestamp> = recent.values().copied().collect();
            times.sort_unstable();
            let over = recent.len() - MAX_RECENT;
            let cut = times[over - 1];
            // Every event older than `cut`, and as many at `cut` as make `over`.
            let mut at_cut = over - times.partition_point(|t| *t < cut);
            recent.retain(|_, at| {
                if *at == cut && at_cut > 0 {
                    at_cut -= 1;
                    return false;
                }
                *at >= cut
            });
        }
        OrgFeed {
            next: Activity {
                schema: RECORD_SCHEMA,
                run_id,
                read_at: now,
                etag,
                recent,
            },
            hints,
        }
    }
}

/// The feed read back to a time.
struct Feed {
    events: Vec<Event>,
    etag: Option<String>,
    /// Read back to `cutoff`, or to the feed's end: no event since is missing.
    whole: bool,
}

/// `GET /orgs/{org}/events`, conditionally on its first page, back to `cutoff`;
/// `None`: `304`.
async fn read_feed(
    source: &dyn RepoData,
    org: &str,
    etag: Option<&str>,
    cutoff: Timestamp,
) -> Result<Option<Feed>, SourceError> {
    let mut path = format!("/orgs/{org}/events?per_page=100");
    let mut feed = Feed {
        events: Vec::new(),
        etag: None,
        whole: false,
    };
    for page in 0..FEED_PAGES {
        let if_none_match = if page == 0 { etag } else { None };
        let (items, etag, next) = match source.page(&path, if_none_match).await? {
            Page::NotModified if page == 0 => return Ok(None),
            // A later page cannot be asked conditionally; treat it as ended.
            Page::NotModified => break,
            Page::Fetched { items, etag, next } => (items, etag, next),
        };
        if page == 0 {
            feed.etag = etag;
        }
        for item in &items {
            let event = parse_event(item).ok_or_else(|| SourceError::Invalid {
                url: path.clone(),
                message: "an event without a numeric id, a type, a repository id and a time".into(),
            })?;
            if event.at < cutoff {
                feed.whole = true;
                return Ok(Some(feed));
            }
            feed.events.push(event);
        }
        match next {
            Some(next) => path = next,
            None => {
                feed.whole = true;
                return Ok(Some(feed));
            }
        }
    }
    // Three full pages and still newer than the cutoff: the feed may have dropped
    // events since (it keeps 300).
    Ok(Some(feed))
}

fn parse_event(item: &Value) -> Option<Event> {
    let id = match &item["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.as_u64()?.to_string(),
        _ => return None,
    };
    let kind = match item["type"].as_str()? {
        // A new repository may have a deleted one's name, and its backups.
        "CreateEvent" if item["payload"]["ref_type"] == "repository" => "CreateEvent:repository",
        kind => kind,
    };
    let ok = (1..=32).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && (1..=64).contains(&kind.len());
    ok.then_some(Event {
        id,
        repo_id: item["repo"]["id"].as_u64()?,
        kind: kind.to_owned(),
        at: item["created_at"].as_str()?.parse().ok()?,
    })
}

/// Whether a stored state is one this build could have written by `now`: ids it read,
/// an `ETag` GitHub could send, a time not ahead of ours (which would move the cutoff
/// past events not read yet).
fn valid(state: &Activity, now: Timestamp) -> bool {
    state.schema == RECORD_SCHEMA
        && state.read_at <= now + SignedDuration::from_mins(5)
        && state
            .etag
            .as_ref()
            .is_none_or(|e| (1..=256).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_graphic()))
        && state.recent.len() <= MAX_RECENT
        && state
            .recent
            .keys()
            .all(|id| (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Lowercase `owner/name` → the data snapshot (index key) a run completed.
type Completed = HashMap<String, String>;

/// The repositories whose data beyond git run `run_id` completed, and the snapshot
/// each was left with, from its report; `None` without one (no hints then).
async fn completed(store: &dyn Store, layout: &Layout, run_id: &RunId) -> Option<Completed> {
    match store
        .get_json::<repovault_reporter::Report>(&layout.report_json(run_id))
        .await
    {
        Ok(Some(report)) => Some(
            report
                .repos
                .into_iter()
                .filter_map(|r| {
                    let data = r.data.filter(|d| d.error.is_none())?;
                    Some((
                        format!("{}/{}", r.owner, r.name).to_lowercase(),
                        data.index?,
                    ))
                })
                .collect(),
        ),
        Ok(None) => {
            tracing::info!(run = %run_id, "no report of the previous run: every repository's data is probed this run");
            None
        }
        Err(e) => {
            tracing::warn!(run = %run_id, error = %e, "the previous run's report is unreadable: every repository's data is probed this run");
            None
        }
    }
}

/// Whether every kind of repository `id` is due a probe between the previous read
/// (`since`) and `now`: once every `every`, at a moment spread by the id so that the
/// organization's repositories do not all come due in one run. Zero: always.
pub(crate) fn probe_due(id: u64, since: Timestamp, now: Timestamp, every: Duration) -> bool {
    let every = every.as_secs() as i64;
    if every == 0 {
        return true;
    }
    let offset = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % every as u64) as i64;
    let slot = |at: Timestamp| (at.as_second() + offset).div_euclid(every);
    now.as_second() - since.as_second() >= every || slot(now) != slot(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn every_repository_is_probed_once_an_interval_at_its_own_moment() {
        let day = Duration::from_secs(86_400);
        let start = at("2026-12-01T00:00:00Z");
        for id in [1u64, 7, 1234, u64::MAX] {
            // Hourly runs over three days: due exactly once a day.
            let due: Vec<i64> = (1..=72)
                .filter(|h| {
                    let since = start + SignedDuration::from_hours(h - 1);
                    probe_due(id, since, start + SignedDuration::from_hours(*h), day)
                })
                .collect();
            assert_eq!(due.len(), 3, "id {id}: due at hours {due:?}");
            assert!(due.windows(2).all(|w| w[1] - w[0] == 24), "{due:?}");
        }
        // Spread: not every repository in the same hour.
        let hours: std::collections::HashSet<i64> = (0..100u64)
            .map(|id| {
                (1..=24)
                    .find(|h| {
                        let since = start + SignedDuration::from_hours(h - 1);
                        probe_due(id, since, start + SignedDuration::from_hours(*h), day)
                    })
                    .unwrap()
            })
            .collect();
        assert!(hours.len() > 10, "{hours:?}");
        // A gap as long as the interval, or a zero interval: due.
        assert!(probe_due(
            1,
            start,
            start + SignedDuration::from_hours(24),
            day
        ));
        assert!(probe_due(1, start, start, Duration::ZERO));
    }

    fn event(id: &str, repo: u64, kind: &str, time: &str) -> Event {
        Event {
            id: id.into(),
            repo_id: repo,
            kind: kind.into(),
            at: at(time),
        }
    }

    fn state(recent: &[(&str, &str)]) -> Activity {
        Activity {
            schema: RECORD_SCHEMA,
            run_id: "r1".parse().unwrap(),
            read_at: at("2026-12-01T10:00:00Z"),
            etag: Some("\"a\"".into()),
            recent: recent
                .iter()
                .map(|(id, time)| ((*id).to_owned(), at(time)))
                .collect(),
        }
    }

    fn feed(events: Vec<Event>, whole: bool) -> Option<Feed> {
        Some(Feed {
            events,
            etag: Some("\"b\"".into()),
            whole,
        })
    }

    fn complete() -> Option<Completed> {
        Some(HashMap::from([(
            "acme/api".to_owned(),
            "repos/acme/api/data/20261201T100000Z/index.json".to_owned(),
        )]))
    }

    const NOW: &str = "2026-12-01T11:00:00Z";

    #[test]
    fn the_recent_ids_kept_are_the_newest_thousand() {
        // 1,000 kept from before, three of them at the oldest second, and 10 new ones.
        let base = at("2026-12-01T10:00:00Z");
        let mut old = state(&[]);
        for i in 0..MAX_RECENT {
            let time = base + SignedDuration::from_secs(i.saturating_sub(2) as i64);
            old.recent.insert(format!("old-{i:04}"), time);
        }
        let new = (0..10)
            .map(|i| Event {
                id: format!("new-{i}"),
                repo_id: 1,
                kind: "WatchEvent".into(),
                at: at("2026-12-01T10:50:00Z"),
            })
            .collect();
        let org = OrgFeed::new(
            "r2".parse().unwrap(),
            at(NOW),
            Some(old),
            feed(new, true),
            complete(),
        );
        let recent = org.next.recent;
        assert_eq!(recent.len(), MAX_RECENT);
        assert!((0..10).all(|i| recent.contains_key(&format!("new-{i}"))));
        // The 10 dropped: the three at the oldest second and the next seven.
        let dropped: Vec<usize> = (0..MAX_RECENT)
            .filter(|i| !recent.contains_key(&format!("old-{i:04}")))
            .collect();
        assert_eq!(dropped, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn only_events_not_read_before_make_hints_and_a_late_one_is_seen_next_time() {
        let events = vec![
            event("5", 1, "IssueCommentEvent", "2026-12-01T10:30:00Z"),
            // Read by the previous run already.
            event("4", 2, "ReleaseEvent", "2026-12-01T09:50:00Z"),
            // Happened before the previous read, published after it.
            event("3", 3, "ReleaseEvent", "2026-12-01T09:00:00Z"),
            event("2", 4, "PublicEvent", "2026-12-01T10:40:00Z"),
        ];
        let org = OrgFeed::new(
            "r2".parse().unwrap(),
            at(NOW),
            Some(state(&[("4", "2026-12-01T09:50:00Z")])),
            feed(events, true),
            complete(),
        );
        let hints = org.hints.unwrap();
        assert_eq!(hints.since, at("2026-12-01T10:00:00Z"));
        assert_eq!(
            hints.active[&1]
                .as_ref()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [&"issue-comments", &"issues", &"pulls"]
        );
        assert!(!hints.active.contains_key(&2));
        assert_eq!(
            hints.active[&3]
                .as_ref()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [&"releases"]
        );
        assert_eq!(hints.active[&4], None);
        assert_eq!(org.next.etag.as_deref(), Some("\"b\""));
        assert_eq!(
            org.next.recent.keys().collect::<Vec<_>>(),
            ["2", "3", "4", "5"]
        );
    }

    #[test]
    fn no_hints_without_a_state_a_report_or_a_whole_feed() {
        let events = || vec![event("5", 1, "IssuesEvent", "2026-12-01T10:30:00Z")];
        let run: RunId = "r2".parse().unwrap();
        let first = OrgFeed::new(run.clone(), at(NOW), None, feed(events(), true), complete());
        assert!(first.hints.is_none());
        assert_eq!(first.next.recent.len(), 1);
        let unreported = OrgFeed::new(
            run.clone(),
            at(NOW),
            Some(state(&[])),
            feed(events(), true),
            None,
        );
        assert!(unreported.hints.is_none());
        let overflowed = OrgFeed::new(
            run.clone(),
            at(NOW),
            Some(state(&[])),
            feed(events(), false),
            complete(),
        );
        assert!(overflowed.hints.is_none());
        // A `304`: every repository quiet, the state's ETag kept.
        let quiet = OrgFeed::new(run, at(NOW), Some(state(&[])), None, complete());
        assert!(quiet.hints.unwrap().active.is_empty());
        assert_eq!(quiet.next.etag.as_deref(), Some("\"a\""));
    }

    #[test]
    fn ids_older_than_the_feed_delay_are_forgotten() {
        let org = OrgFeed::new(
            "r2".parse().unwrap(),
            at("2026-12-01T20:00:00Z"),
            Some(state(&[
                ("4", "2026-12-01T09:50:00Z"),
                ("9", "2026-12-01T19:00:00Z"),
            ])),
            None,
            complete(),
        );
        assert_eq!(org.next.recent.keys().collect::<Vec<_>>(), ["9"]);
    }

    /// The feed as pages of events, one a minute back from `newest`, 100 a page.
    struct Pages {
        events: usize,
        asked: std::sync::Mutex<Vec<String>>,
    }

    const NEWEST: &str = "2026-12-01T12:00:00Z";

    #[async_trait::async_trait]
    impl RepoData for Pages {
        async fn page(&self, path: &str, etag: Option<&str>) -> Result<Page, SourceError> {
            self.asked.lock().unwrap().push(path.to_owned());
            if etag == Some("\"same\"") {
                return Ok(Page::NotModified);
            }
            let page: usize = path.split("page=").nth(2).map_or(1, |p| p.parse().unwrap());
            let items = (100 * (page - 1)..(100 * page).min(self.events))
                .map(|i| {
                    let at = at(NEWEST) - SignedDuration::from_mins(i as i64);
                    serde_json::json!({"id": format!("{}", 1000 - i), "type": "PushEvent", "repo": {"id": 1}, "created_at": at.to_string()})
                })
                .collect();
            let next = (100 * page < self.events)
                .then(|| format!("/orgs/acme/events?per_page=100&page={}", page + 1));
            Ok(Page::Fetched {
                items,
                etag: Some("\"new\"".into()),
                next,
            })
        }
        async fn object(&self, _: &str) -> Result<Value, SourceError> {
            unreachable!()
        }
        async fn download(
            &self,
            _: &str,
        ) -> Result<repovault_core::ports::store::ByteStream, SourceError> {
            unreachable!()
        }
        async fn attachment(
            &self,
            _: &str,
        ) -> Result<repovault_core::ports::store::ByteStream, SourceError> {
            unreachable!()
        }
        async fn graphql(&self, _: &str, _: Value) -> Result<Value, SourceError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn the_feed_is_read_back_to_the_cutoff_and_knows_when_it_kept_too_little() {
        let feed = |events| Pages {
            events,
            asked: Default::default(),
        };
        // Two hours back: 120 events, two pages, the second cut at the cutoff.
        let pages = feed(250);
        let cutoff = at(NEWEST) - SignedDuration::from_mins(120);
        let read = read_feed(&pages, "acme", None, cutoff)
            .await
            .unwrap()
            .unwrap();
        assert!(read.whole);
        assert_eq!(read.events.len(), 121);
        assert_eq!(pages.asked.lock().unwrap().len(), 2);
        // The feed ends before the cutoff: whole.
        let read = read_feed(&feed(50), "acme", None, cutoff)
            .await
            .unwrap()
            .unwrap();
        assert!(read.whole && read.events.len() == 50);
        // 300 events all newer than the cutoff: some may be gone.
        let pages = feed(400);
        let long_ago = at(NEWEST) - SignedDuration::from_hours(24);
        let read = read_feed(&pages, "acme", None, long_ago)
            .await
            .unwrap()
            .unwrap();
        assert!(!read.whole);
        assert_eq!(read.events.len(), 300);
        assert_eq!(pages.asked.lock().unwrap().len(), 3);
        // Unchanged: one conditional request.
        let pages = feed(400);
        let read = read_feed(&pages, "acme", Some("\"same\""), cutoff)
            .await
            .unwrap();
        assert!(read.is_none());
        assert_eq!(
            *pages.asked.lock().unwrap(),
            ["/orgs/acme/events?per_page=100"]
        );
    }

    #[test]
    fn events_are_read_with_github_s_shapes_and_anything_else_is_refused() {
        let created = serde_json::json!({
            "id": "2", "type": "CreateEvent", "repo": { "id": 42 },
            "created_at": "2026-12-01T10:30:00Z", "payload": { "ref_type": "repository" }
        });
        assert_eq!(
            parse_event(&created).unwrap().kind,
            "CreateEvent:repository"
        );
        let item = serde_json::json!({
            "id": "22249084947", "type": "IssuesEvent",
            "repo": { "id": 42, "name": "acme/api", "url": "https://api.github.com/repos/acme/api" },
            "created_at": "2026-12-01T10:30:00Z", "public": true, "payload": {}
        });
        let event = parse_event(&item).unwrap();
        assert_eq!(
            (event.id.as_str(), event.repo_id, event.kind.as_str()),
            ("22249084947", 42, "IssuesEvent")
        );
        for (field, value) in [
            ("id", serde_json::json!("../x")),
            ("id", serde_json::json!(null)),
            ("type", serde_json::json!("")),
            ("created_at", serde_json::json!("yesterday")),
        ] {
            let mut bad = item.clone();
            bad[field] = value;
            assert!(parse_event(&bad).is_none(), "{field}");
        }
    }
}
