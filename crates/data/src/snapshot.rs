//! One snapshot as it is read: how each kind ended, and from that its index, its
//! summary and whether anything changed at all. No I/O here.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use repovault_core::ports::source::SourceError;
use repovault_core::{
    Attachment, Classify, DataFile, DataIndex, DataSummary, KindFailure, RECORD_SCHEMA,
};
use repovault_repository::RepoError;
use serde_json::Value;

use crate::DataError;
use crate::kinds::Access;

/// How reading one kind ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Nothing changed since its previous file (a `304`, the same content, or the kind
    /// it is read from did not change).
    Unchanged,
    /// Read anew: its items (sanitised), the validator for the next conditional read
    /// and, for a kind that holds release assets, every asset its items list.
    Read {
        items: Vec<Value>,
        etag: Option<String>,
        assets: Option<BTreeMap<u64, DataFile>>,
    },
    /// The token may not read it.
    NotPermitted,
    /// It could not be read (the request and the error).
    Failed(String),
}

/// What reading a kind ran into.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KindError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Kinds in a row that fail with a server error or a timeout (after the client's
/// retries) before reading stops: GitHub is failing, and every further kind would
/// cost its retries too.
pub(crate) const FAILING_IN_ROW: u32 = 3;

/// What a kind's read means for the snapshot.
#[derive(Debug, PartialEq)]
pub(crate) enum Settled {
    Outcome(Outcome),
    /// The kind failed with what may be GitHub failing as a whole (a `5xx` or a
    /// timeout the client's retries did not get past).
    Failing(String),
    /// Reading must stop here: this kind and every later one are not read, for this
    /// reason (the rate limit would make us wait too long; the token was refused).
    Stop(String),
}

/// GitHub's answer to a GraphQL request without a token.
const ANONYMOUS: &str = "requires you to be authenticated";

/// What `read` of a kind with `access` means: GitHub's answers cost that kind only
/// (or, for a rate limit or a refused token, stop the reading); a store that fails
/// fails the snapshot. A kind read through GraphQL (`graphql`) spends another budget:
/// its rate limit costs it alone (a later GraphQL kind meets it at once, without a
/// request).
pub(crate) fn settle(
    access: Access,
    graphql: bool,
    read: Result<Outcome, KindError>,
) -> Result<Settled, DataError> {
    let error = match read {
        Ok(outcome) => return Ok(Settled::Outcome(outcome)),
        Err(KindError::Repo(e)) if e.is_invalid() => {
            return Ok(Settled::Outcome(Outcome::Failed(e.to_string())));
        }
        Err(KindError::Repo(e)) => return Err(e.into()),
        Err(KindError::Source(e)) => e,
    };
    Ok(match error {
        SourceError::RateLimited { .. } if graphql => {
            Settled::Outcome(Outcome::Failed(error.to_string()))
        }
        // GraphQL wants a token (GitHub's answer without one), and a permission older
        // tokens may lack. A token refused is refused everywhere: that stops below.
        SourceError::Unauthorized { ref message } if graphql && message.contains(ANONYMOUS) => {
            Settled::Outcome(Outcome::NotPermitted)
        }
        SourceError::Forbidden { .. } if graphql => Settled::Outcome(Outcome::NotPermitted),
        SourceError::RateLimited { .. }
        | SourceError::Unauthorized { .. }
        | SourceError::App { .. } => Settled::Stop(error.to_string()),
        SourceError::Forbidden { .. } | SourceError::NotFound { .. } if access == Access::Admin => {
            Settled::Outcome(Outcome::NotPermitted)
        }
        error if error.class().is_retryable() => Settled::Failing(error.to_string()),
        error => Settled::Outcome(Outcome::Failed(error.to_string())),
    })
}

/// Where a kind stands in the snapshot so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Read,
    Unchanged,
    NotPermitted,
    Failed,
    /// Not read (yet).
    Absent,
}

/// Whether a kind read from another (reviews, from pull requests) is read this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Its previous file stands: what it is read from did not change.
    Unchanged,
    Read,
    /// What it is read from could not be read: neither can it.
    Blocked,
}

/// Whether a kind read from one in state `of` is read; `incremental`: its previous
/// file is current as of the previous snapshot (see [`crate::plan::plan`]).
pub(crate) fn due(of: State, incremental: bool) -> Due {
    match of {
        State::Read => Due::Read,
        State::Unchanged if incremental => Due::Unchanged,
        State::Unchanged => Due::Read,
        State::NotPermitted | State::Failed | State::Absent => Due::Blocked,
    }
}

/// A snapshot being read: each kind's file (new or carried over), and what happened.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub previous: Option<DataIndex>,
    pub now: Timestamp,
    /// Every kind is read whole this time (deletions show).
    pub full: bool,
    kinds: BTreeMap<String, DataFile>,
    assets: BTreeMap<u64, DataFile>,
    attachments: BTreeMap<String, Attachment>,
    /// Attachment URLs found in what was read anew.
    found: BTreeSet<String>,
    changed: Vec<String>,
    not_permitted: Vec<String>,
    failed: BTreeMap<String, String>,
    /// Items read this time of kinds another kind is read from.
    held: BTreeMap<String, Vec<Value>>,
    /// Why reading stopped, once it has.
    stopped: Option<String>,
    /// Kinds in a row GitHub answered with a server error or a timeout.
    failing_in_row: u32,
    /// Files this snapshot wrote: removed when it cannot be indexed.
    written: Vec<String>,
    /// The only kinds that may have changed, when the organization's event feed says
    /// (`None`: every kind may have).
    hinted: Option<BTreeSet<String>>,
    /// A kind was carried over on the feed's word, not asked.
    carried: bool,
}

impl Snapshot {
    pub fn new(previous: Option<DataIndex>, now: Timestamp, full: bool) -> Snapshot {
        Snapshot {
            assets: previous
                .as_ref()
                .map(|p| p.assets.clone())
                .unwrap_or_default(),
            attachments: previous
                .as_ref()
                .map(|p| p.attachments.clone())
                .unwrap_or_default(),
            found: BTreeSet::new(),
            previous,
            now,
            full,
            kinds: BTreeMap::new(),
            changed: Vec::new(),
            not_permitted: Vec::new(),
            failed: BTreeMap::new(),
            held: BTreeMap::new(),
            stopped: None,
            failing_in_row: 0,
            written: Vec::new(),
            hinted: None,
            carried: false,
        }
    }

    /// Only `kinds` may have changed since the previous snapshot (the job's hint);
    /// ignored at a full read.
    pub fn hint(&mut self, kinds: &[String]) {
        if !self.full {
            self.hinted = Some(kinds.iter().cloned().collect());
        }
    }

    /// What `kind` is, without asking GitHub, when the hint leaves it out and the
    /// previous snapshot settled it (read it, or was refused it); `None`: ask.
    pub fn quiet(&mut self, kind: &str) -> Option<Outcome> {
        let hinted = self.hinted.as_ref()?;
        let previous = self.previous.as_ref()?;
        let quiet = if hinted.contains(kind) || previous.failed.contains_key(kind) {
            None
        } else if previous.kinds.contains_key(kind) {
            Some(Outcome::Unchanged)
        } else if previous.not_permitted.iter().any(|k| k == kind) {
            Some(Outcome::NotPermitted)
        } else {
            None
        };
        self.carried |= quiet.is_some();
        quiet
    }

    /// Why reading stopped, if it did: the kinds not read yet are not read at all.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    pub fn stop(&mut self, why: String) {
        self.stopped = Some(why);
    }

    /// GitHub answered a kind; `failing`: with a server error or a timeout. After
    /// [`FAILING_IN_ROW`] such kinds in a row, reading stops.
    pub fn answered(&mut self, failing: bool) {
        self.failing_in_row = if failing { self.failing_in_row + 1 } else { 0 };
        if self.failing_in_row >= FAILING_IN_ROW && self.stopped.is_none() {
            self.stopped = Some(format!(
                "GitHub is failing ({FAILING_IN_ROW} kinds in a row answered with server errors or timeouts)"
            ));
        }
    }

    pub fn state(&self, kind: &str) -> State {
        if self.changed.iter().any(|k| k == kind) {
            State::Read
        } else if self.failed.contains_key(kind) {
            State::Failed
        } else if self.not_permitted.iter().any(|k| k == kind) {
            State::NotPermitted
        } else if self.kinds.contains_key(kind) {
            State::Unchanged
        } else {
            State::Absent
        }
    }

    /// `kind`'s file in this snapshot.
    pub fn file(&self, kind: &str) -> Option<&DataFile> {
        self.kinds.get(kind)
    }

    /// The items of `kind` read this time, if they were held.
    pub fn held(&self, kind: &str) -> Option<&[Value]> {
        self.held.get(kind).map(Vec::as_slice)
    }

    /// The release assets stored so far.
    pub fn assets(&self) -> &BTreeMap<u64, DataFile> {
        &self.assets
    }

    /// The attachments listed so far (the previous snapshot's, until replaced).
    pub fn attachments(&self) -> &BTreeMap<String, Attachment> {
        &self.attachments
    }

    /// Attachment URLs found in what was read anew.
    pub fn found(&mut self) -> &mut BTreeSet<String> {
        &mut self.found
    }

    /// The attachment URLs the snapshot names: those found in what was read anew, and
    /// unless every kind with a file was read whole this time, those the previous
    /// snapshot listed (a kind not read again, failed or unchanged, still names them).
    pub fn named_attachments(&self) -> BTreeSet<String> {
        let mut urls = self.found.clone();
        let read_whole = self.full && self.kinds.keys().all(|k| self.changed.contains(k));
        if !read_whole {
            urls.extend(self.attachments.keys().cloned());
        }
        urls
    }

    /// The attachments this snapshot lists, replacing the previous snapshot's.
    pub fn set_attachments(&mut self, attachments: BTreeMap<String, Attachment>) {
        self.attachments = attachments;
    }

    /// A file written for this snapshot (a kind's, before it is recorded).
    pub fn wrote(&mut self, key: &str) {
        self.written.push(key.to_owned());
    }

    /// The files written for this snapshot so far.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// `kind` was read anew into `file`; `assets` are every asset it lists; `items`
    /// are held when another kind is read from them.
    pub fn read(
        &mut self,
        kind: &str,
        file: DataFile,
        assets: Option<BTreeMap<u64, DataFile>>,
        held: Option<Vec<Value>>,
    ) {
        self.kinds.insert(kind.to_owned(), file);
        if let Some(assets) = assets {
            self.assets = assets;
        }
        if let Some(items) = held {
            self.held.insert(kind.to_owned(), items);
        }
        self.changed.push(kind.to_owned());
    }

    /// `kind` did not change: its previous file stands (a kind without one cannot be
    /// unchanged: a `304` to a request without an `ETag` is the kind's failure).
    pub fn unchanged(&mut self, kind: &str) {
        match self.previous_file(kind) {
            Some(file) => {
                self.kinds.insert(kind.to_owned(), file);
            }
            None => self.failed(kind, "unchanged, but no earlier snapshot holds it".into()),
        }
    }

    /// The token may not read `kind`: no file.
    pub fn not_permitted(&mut self, kind: &str) {
        self.not_permitted.push(kind.to_owned());
    }

    /// `kind` could not be read: it keeps its previous file, if there is one.
    pub fn failed(&mut self, kind: &str, error: String) {
        if let Some(file) = self.previous_file(kind) {
            self.kinds.insert(kind.to_owned(), file);
        }
        self.failed.insert(kind.to_owned(), error);
    }

    fn previous_file(&self, kind: &str) -> Option<DataFile> {
        self.previous.as_ref()?.kinds.get(kind).cloned()
    }

    /// Whether the previous snapshot still says it all: nothing read anew, and the
    /// same kinds not permitted and failed. Its index then stands; nothing is written.
    pub fn is_unchanged(&self) -> bool {
        self.previous.as_ref().is_some_and(|p| {
            self.changed.is_empty()
                && p.attachments == self.attachments
                && p.not_permitted == self.not_permitted
                && p.failed.keys().eq(self.failed.keys())
        })
    }

    /// This snapshot's index, of `subject` (`owner/name`, or the organization).
    pub fn index(&self, subject: &str) -> DataIndex {
        let previous = self.previous.as_ref();
        DataIndex {
            schema: RECORD_SCHEMA,
            repository: subject.to_owned(),
            // Carried over unasked, a kind is current as of the read this snapshot
            // builds on only (the feed may show its activity later, GitHub publishing
            // events up to 6 h late): `since=` reads go on from there.
            fetched_at: match previous {
                Some(p) if self.carried => p.fetched_at,
                _ => self.now,
            },
            full_at: match previous {
                Some(p) if !self.full => p.full_at,
                _ => self.now,
            },
            kinds: self.kinds.clone(),
            assets: self.assets.clone(),
            attachments: self.attachments.clone(),
            not_permitted: self.not_permitted.clone(),
            failed: self
                .failed
                .iter()
                .map(|(kind, error)| {
                    let since = previous
                        .and_then(|p| p.failed.get(kind))
                        .map_or(self.now, |f| f.since);
                    let failure = KindFailure {
                        error: error.clone(),
                        since,
                    };
                    (kind.clone(), failure)
                })
                .collect(),
        }
    }

    /// The summary for the record: `index` is the snapshot's (this one's, or the
    /// previous one that stands), `requests` and `not_modified` what reading it took.
    pub fn summary(
        self,
        index: Option<String>,
        (requests, not_modified, graphql_queries): (u64, u64, u64),
        rate_remaining: Option<u64>,
    ) -> DataSummary {
        let error = (!self.failed.is_empty()).then(|| {
            let kinds: Vec<String> = self
                .failed
                .iter()
                .map(|(kind, error)| format!("{kind}: {error}"))
                .collect();
            format!(
                "not read this time, each kept as the previous snapshot had it: {}",
                kinds.join("; ")
            )
        });
        DataSummary {
            index,
            items: self.kinds.values().map(|f| f.items).sum(),
            changed: self.changed,
            requests,
            not_modified,
            graphql_queries,
            not_permitted: self.not_permitted,
            rate_remaining,
            error,
            failed: self.failed,
            quiet: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn file(key: &str, items: u64) -> DataFile {
        DataFile {
            key: key.into(),
            items,
            size: 10,
            sha256: "00".into(),
            etag: Some(format!("W/\"{key}\"")),
        }
    }

    /// The previous snapshot: issues, pulls and hooks (hooks failed since the 20th).
    fn previous() -> DataIndex {
        DataIndex {
            schema: RECORD_SCHEMA,
            repository: "acme/api".into(),
            fetched_at: at("2026-11-22T12:00:00Z"),
            full_at: at("2026-11-20T12:00:00Z"),
            kinds: BTreeMap::from([
                ("issues".into(), file("old/issues", 30)),
                ("pulls".into(), file("old/pulls", 4)),
                ("hooks".into(), file("older/hooks", 1)),
            ]),
            assets: BTreeMap::new(),
            not_permitted: vec!["teams".into()],
            failed: BTreeMap::from([(
                "hooks".into(),
                KindFailure {
                    error: "HTTP 502".into(),
                    since: at("2026-11-20T12:00:00Z"),
                },
            )]),
            attachments: BTreeMap::new(),
        }
    }

    const NOW: &str = "2026-11-23T12:00:00Z";

    #[test]
    fn what_github_answers_costs_one_kind_and_a_store_fault_the_snapshot() {
        let source = |e: SourceError| Err(KindError::Source(e));
        let not_found = || SourceError::NotFound {
            what: "/repos/acme/api/branches".into(),
        };
        let failed = |read, access| match settle(access, false, read).unwrap() {
            Settled::Outcome(Outcome::Failed(e)) | Settled::Failing(e) => e,
            other => panic!("{other:?}"),
        };
        assert!(failed(source(not_found()), Access::Reader).contains("/repos/acme/api/branches"));
        let http = SourceError::Http {
            status: 500,
            url: "/repos/acme/api/hooks".into(),
            message: "boom".into(),
        };
        assert!(failed(source(http), Access::Admin).contains("500"));
        let timeout = SourceError::Transport {
            url: "/repos/acme/api/labels".into(),
            message: "timed out".into(),
        };
        assert!(failed(source(timeout), Access::Reader).contains("timed out"));
        let unreadable = RepoError::Invalid {
            key: "old/issues".into(),
            reason: "not zstd".into(),
        };
        assert!(failed(Err(unreadable.into()), Access::Reader).contains("old/issues"));
        // A server error or a timeout may be GitHub failing as a whole; a 404 is not.
        let bad_gateway = SourceError::Http {
            status: 502,
            url: "/repos/acme/api/labels".into(),
            message: "Bad Gateway".into(),
        };
        assert!(matches!(
            settle(Access::Reader, false, source(bad_gateway)).unwrap(),
            Settled::Failing(e) if e.contains("502")
        ));
        assert!(matches!(
            settle(Access::Reader, false, source(not_found())).unwrap(),
            Settled::Outcome(Outcome::Failed(_))
        ));

        assert_eq!(
            settle(Access::Admin, false, source(not_found())).unwrap(),
            Settled::Outcome(Outcome::NotPermitted)
        );
        let forbidden = SourceError::Forbidden {
            message: "Must have admin rights".into(),
        };
        assert_eq!(
            settle(Access::Admin, false, source(forbidden)).unwrap(),
            Settled::Outcome(Outcome::NotPermitted)
        );
        let limited = SourceError::RateLimited {
            wait: Duration::from_secs(600),
        };
        assert!(matches!(
            settle(Access::Reader, false, source(limited)).unwrap(),
            Settled::Stop(why) if why.contains("rate limited")
        ));
        let limited = SourceError::RateLimited {
            wait: Duration::from_secs(600),
        };
        assert!(matches!(
            settle(Access::Reader, true, source(limited)).unwrap(),
            Settled::Outcome(Outcome::Failed(why)) if why.contains("rate limited")
        ));
        let anonymous = SourceError::Unauthorized {
            message: "This endpoint requires you to be authenticated.".into(),
        };
        assert_eq!(
            settle(Access::Reader, true, source(anonymous)).unwrap(),
            Settled::Outcome(Outcome::NotPermitted)
        );
        // A token GraphQL refuses is refused by REST too: the reading stops.
        let revoked = SourceError::Unauthorized {
            message: "Bad credentials".into(),
        };
        assert!(matches!(
            settle(Access::Reader, true, source(revoked)).unwrap(),
            Settled::Stop(_)
        ));
        let store = RepoError::Store(repovault_core::ports::store::StoreError::Backend {
            key: "old/issues".into(),
            message: "S3 is down".into(),
        });
        assert!(settle(Access::Reader, false, Err(store.into())).is_err());
        assert_eq!(
            settle(Access::Reader, false, Ok(Outcome::Unchanged)).unwrap(),
            Settled::Outcome(Outcome::Unchanged)
        );
    }

    #[test]
    fn reading_stops_when_github_fails_kind_after_kind() {
        let mut snapshot = Snapshot::new(None, at(NOW), true);
        snapshot.answered(true);
        snapshot.answered(true);
        snapshot.answered(false);
        snapshot.answered(true);
        snapshot.answered(true);
        assert_eq!(snapshot.stopped(), None, "never three in a row");
        snapshot.answered(true);
        assert!(
            snapshot
                .stopped()
                .is_some_and(|why| why.contains("GitHub is failing"))
        );
    }

    #[test]
    fn reviews_follow_their_pull_requests() {
        assert_eq!(due(State::Read, true), Due::Read);
        assert_eq!(due(State::Unchanged, true), Due::Unchanged);
        // Their own previous file is not current (they failed, or there is none).
        assert_eq!(due(State::Unchanged, false), Due::Read);
        for state in [State::Failed, State::NotPermitted, State::Absent] {
            assert_eq!(due(state, true), Due::Blocked, "{state:?}");
        }
    }

    #[test]
    fn a_failed_kind_keeps_its_previous_file_and_the_rest_is_indexed() {
        let mut snapshot = Snapshot::new(Some(previous()), at(NOW), false);
        snapshot.read("issues", file("new/issues", 31), None, None);
        snapshot.failed("pulls", "HTTP 500 from /pulls".into());
        snapshot.failed("labels", "/labels not found".into());
        snapshot.unchanged("hooks");
        snapshot.not_permitted("teams");
        assert_eq!(snapshot.state("issues"), State::Read);
        assert_eq!(snapshot.state("pulls"), State::Failed);
        assert_eq!(snapshot.state("hooks"), State::Unchanged);
        assert_eq!(snapshot.state("teams"), State::NotPermitted);
        assert_eq!(snapshot.state("reviews"), State::Absent);
        assert!(!snapshot.is_unchanged());

        let index = snapshot.index("acme/api");
        assert_eq!(index.fetched_at, at(NOW));
        assert_eq!(index.full_at, at("2026-11-20T12:00:00Z"), "not a full read");
        assert_eq!(index.kinds["issues"], file("new/issues", 31));
        assert_eq!(
            index.kinds["pulls"],
            file("old/pulls", 4),
            "kept, with its ETag"
        );
        assert!(!index.kinds.contains_key("labels"), "never read: no file");
        assert_eq!(index.kinds["hooks"], file("older/hooks", 1));
        assert_eq!(
            index.failed.keys().collect::<Vec<_>>(),
            ["labels", "pulls"],
            "hooks read again: no longer failed"
        );
        assert_eq!(index.failed["pulls"].since, at(NOW));
        assert_eq!(index.not_permitted, ["teams"]);

        let summary = snapshot.summary(Some("new/index.json".into()), (5, 2, 0), Some(4000));
        assert_eq!(summary.items, 31 + 4 + 1);
        assert_eq!(summary.changed, ["issues"]);
        assert_eq!(summary.failed.len(), 2);
        let error = summary.error.unwrap();
        assert!(
            error.contains("pulls: HTTP 500") && error.contains("labels: /labels not found"),
            "{error}"
        );
    }

    #[test]
    fn a_kind_failing_again_keeps_when_it_first_failed() {
        let mut snapshot = Snapshot::new(Some(previous()), at(NOW), false);
        snapshot.unchanged("issues");
        snapshot.unchanged("pulls");
        snapshot.failed("hooks", "HTTP 503".into());
        snapshot.not_permitted("teams");
        // Nothing read and the same kinds failed and not permitted: the previous
        // index stands.
        assert!(snapshot.is_unchanged());
        let index = snapshot.index("acme/api");
        assert_eq!(index.failed["hooks"].since, at("2026-11-20T12:00:00Z"));
        assert_eq!(index.failed["hooks"].error, "HTTP 503");
        assert_eq!(index.kinds["hooks"], file("older/hooks", 1));
    }

    #[test]
    fn a_snapshot_is_new_when_anything_changed() {
        let unchanged = |edit: &dyn Fn(&mut Snapshot)| {
            let mut snapshot = Snapshot::new(Some(previous()), at(NOW), false);
            snapshot.unchanged("issues");
            snapshot.unchanged("pulls");
            edit(&mut snapshot);
            snapshot.is_unchanged()
        };
        assert!(unchanged(&|s| {
            s.failed("hooks", "x".into());
            s.not_permitted("teams");
        }));
        // Hooks read again, no longer failing.
        assert!(!unchanged(&|s| {
            s.unchanged("hooks");
            s.not_permitted("teams");
        }));
        // Teams now readable.
        assert!(!unchanged(&|s| {
            s.failed("hooks", "x".into());
            s.unchanged("teams");
        }));
        // Another kind failing.
        assert!(!unchanged(&|s| {
            s.failed("hooks", "x".into());
            s.not_permitted("teams");
            s.failed("labels", "y".into());
        }));
        // Something read anew.
        assert!(!unchanged(&|s| {
            s.failed("hooks", "x".into());
            s.not_permitted("teams");
            s.read("labels", file("new/labels", 2), None, None);
        }));
        // No previous snapshot: always new.
        assert!(!Snapshot::new(None, at(NOW), true).is_unchanged());
    }

    #[test]
    fn indexes_and_summaries_without_failures_read_and_write_as_before() {
        let earlier = r#"{"schema": 1, "repository": "acme/api",
            "fetched_at": "2026-11-22T12:00:00Z", "full_at": "2026-11-20T12:00:00Z",
            "kinds": {}, "not_permitted": ["teams"]}"#;
        let index: DataIndex = serde_json::from_str(earlier).unwrap();
        assert!(index.failed.is_empty());
        let written = serde_json::to_value(&index).unwrap();
        assert!(written.get("failed").is_none(), "{written}");

        let summary = Snapshot::new(Some(index), at(NOW), false).summary(None, (1, 1, 0), None);
        let written = serde_json::to_value(&summary).unwrap();
        assert!(written.get("failed").is_none() && written.get("error").is_none());
        let earlier = r#"{"index": null, "items": 0, "changed": [], "requests": 0,
            "not_modified": 0, "error": "HTTP 502"}"#;
        let summary: DataSummary = serde_json::from_str(earlier).unwrap();
        assert!(summary.failed.is_empty());
    }

    #[test]
    fn unchanged_without_a_previous_file_is_a_failure() {
        let mut snapshot = Snapshot::new(None, at(NOW), true);
        snapshot.unchanged("labels");
        assert_eq!(snapshot.state("labels"), State::Failed);
        let index = snapshot.index("acme/api");
        assert!(index.kinds.is_empty());
        assert_eq!(index.full_at, at(NOW));
    }

    #[test]
    fn release_assets_are_replaced_only_by_a_read_of_their_kind() {
        let mut previous = previous();
        previous.assets.insert(7, file("assets/7", 1));
        let mut snapshot = Snapshot::new(Some(previous.clone()), at(NOW), false);
        snapshot.failed("releases", "HTTP 500".into());
        assert_eq!(
            snapshot.index("acme/api").assets.keys().collect::<Vec<_>>(),
            [&7]
        );
        let mut snapshot = Snapshot::new(Some(previous), at(NOW), false);
        snapshot.read(
            "releases",
            file("new/releases", 1),
            Some(BTreeMap::from([(8, file("assets/8", 1))])),
            None,
        );
        assert_eq!(
            snapshot.index("acme/api").assets.keys().collect::<Vec<_>>(),
            [&8]
        );
    }
}
