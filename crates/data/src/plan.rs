//! Which requests read a kind, decided from the previous snapshot alone: no I/O here.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use repovault_core::DataIndex;

use crate::kinds::{Kind, Read};

/// Overlap of `since=` with the previous read, for clock skew between us and GitHub.
/// (A snapshot that carried kinds over on the event feed's word keeps the `fetched_at`
/// of the read it builds on: `since=` never skips what the feed did not show yet.)
pub(crate) const SINCE_OVERLAP: SignedDuration = SignedDuration::from_secs(300);

/// How to read one kind this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// `GET path` with `If-None-Match: etag`; when changed, every page.
    List { path: String, etag: Option<String> },
    /// `GET probe` (the newest item) with `If-None-Match: etag`; when changed, `then`.
    Probe {
        probe: String,
        etag: Option<String>,
        then: Then,
    },
    /// `GET path`, compared with the items of the file `compare_with`.
    Object {
        path: String,
        compare_with: Option<String>,
    },
    /// When the kind `of` was read anew (or `retain` is `None`): the reviews of its
    /// pull requests updated at or after `since` (all when `None`), read at
    /// [`reviews_path`] under `base`, with the other pull requests' reviews kept from
    /// the file `retain`.
    PerPullRequest {
        of: &'static str,
        base: String,
        since: Option<Timestamp>,
        retain: Option<String>,
    },
    /// When the kind `of` was read anew (or `incremental` is false, its own previous
    /// file not current): the list at [`environment_path`] under `base` of each of
    /// `of`'s environments.
    PerEnvironment {
        of: &'static str,
        base: String,
        path: &'static str,
        when: Option<&'static str>,
        incremental: bool,
    },
    /// When the kind `follows` was read anew (or `compare_with` is `None`, the kind's
    /// own previous file not current): the discussion categories, compared with the
    /// items of the file `compare_with`.
    DiscussionCategories {
        follows: &'static str,
        compare_with: Option<String>,
    },
    /// The discussions updated at or after `since` (all when `None`), merged by `id`
    /// into the file `into`.
    Discussions {
        since: Option<Timestamp>,
        into: Option<String>,
    },
    /// The projects, listed, then read whole unless the file `compare_with` holds the
    /// same ones, none updated since.
    Projects { compare_with: Option<String> },
    /// `GET list` (the protected branches) with `If-None-Match: etag`; when changed,
    /// each branch's rules at [`protection_path`] under `base`.
    PerProtectedBranch {
        list: String,
        etag: Option<String>,
        base: String,
    },
}

/// What a changed probe is followed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    /// Every item at `path`.
    Whole(String),
    /// The items at `path` (with `since=`), merged by `id` into the file `into`.
    Merge { path: String, into: String },
}

/// How to read `kind` of the subject at `base` (`/repos/<o>/<r>`) after `previous`.
///
/// Conditional reads use the `ETag` of the kind's file in `previous`, unless `full`.
/// Incremental reads (`since=`, reviews of updated pull requests) need a previous
/// file that the previous snapshot read or confirmed: a kind that failed there keeps
/// an older file, which `since=` the previous snapshot would not complete, so it is
/// read whole (a `304` to its `ETag` still says the older file is current). Without
/// `readable` previous files (sealed, and a worker has no identity) nothing is merged
/// into or compared with one: changed kinds are read whole and written anew.
pub(crate) fn plan(
    kind: &Kind,
    base: &str,
    previous: Option<&DataIndex>,
    full: bool,
    readable: bool,
) -> Plan {
    let before = previous.and_then(|p| p.kinds.get(kind.name));
    let etag = before.and_then(|f| f.etag.clone()).filter(|_| !full);
    let failed_before = previous.is_some_and(|p| p.failed.contains_key(kind.name));
    // The previous file and when it was read, when what changed since will do.
    let incremental = match (before, previous) {
        (Some(file), Some(previous)) if !full && !failed_before && readable => {
            Some((file.key.clone(), previous.fetched_at - SINCE_OVERLAP))
        }
        _ => None,
    };
    match kind.read {
        Read::List(path) => Plan::List {
            path: list_path(base, path),
            etag,
        },
        Read::Probed { path, since } => Plan::Probe {
            probe: probe_path(base, path),
            etag,
            then: match incremental {
                Some((into, at)) if since => Then::Merge {
                    path: format!("{}&since={at}", list_path(base, path)),
                    into,
                },
                _ => Then::Whole(list_path(base, path)),
            },
        },
        Read::Object(path) => Plan::Object {
            path: object_path(base, path),
            compare_with: before.map(|f| f.key.clone()).filter(|_| readable),
        },
        Read::PerPullRequest { of } => {
            let (retain, since) = incremental.unzip();
            Plan::PerPullRequest {
                of,
                base: base.to_owned(),
                since,
                retain,
            }
        }
        Read::PerEnvironment { of, path, when } => Plan::PerEnvironment {
            of,
            base: base.to_owned(),
            path,
            when,
            incremental: incremental.is_some(),
        },
        Read::DiscussionCategories => Plan::DiscussionCategories {
            follows: kind
                .read
                .follows()
                .expect("categories follow the discussions"),
            compare_with: incremental.map(|(key, _)| key),
        },
        Read::Discussions => {
            let (into, since) = incremental.unzip();
            Plan::Discussions { since, into }
        }
        Read::Projects => Plan::Projects {
            compare_with: incremental.map(|(key, _)| key),
        },
        Read::PerProtectedBranch => Plan::PerProtectedBranch {
            list: list_path(base, "branches?protected=true"),
            etag,
            base: base.to_owned(),
        },
    }
}

/// Whether every kind is read whole this time: no previous snapshot, or its last whole
/// read is `full_every` old.
pub(crate) fn full_read_due(
    previous: Option<&DataIndex>,
    now: Timestamp,
    full_every: Duration,
) -> bool {
    previous.is_none_or(|p| {
        SignedDuration::try_from(full_every)
            .is_ok_and(|every| now.duration_since(p.full_at) >= every)
    })
}

/// `path` under `base`, 100 items a page.
fn list_path(base: &str, path: &str) -> String {
    format!("{base}/{path}{}per_page=100", separator(path))
}

/// `path` under `base`, its most recently updated item only.
fn probe_path(base: &str, path: &str) -> String {
    format!(
        "{base}/{path}{}sort=updated&direction=desc&per_page=1",
        separator(path)
    )
}

fn object_path(base: &str, path: &str) -> String {
    match path {
        "" => base.to_owned(),
        path => format!("{base}/{path}"),
    }
}

fn separator(path: &str) -> char {
    if path.contains('?') { '&' } else { '?' }
}

/// The reviews of pull request `number`.
pub(crate) fn reviews_path(base: &str, number: u64) -> String {
    format!("{base}/pulls/{number}/reviews?per_page=100")
}

/// The protection rules of `branch`, named as one path segment (`release/x#` is
/// `release%2Fx%23`: unencoded, `/` would be two segments and `#` would end the path).
pub(crate) fn protection_path(base: &str, branch: &str) -> String {
    format!("{base}/branches/{}/protection", path_segment(branch))
}

/// The list `path` (`variables`…) of the environment `name`, named as one path segment.
pub(crate) fn environment_path(base: &str, name: &str, path: &str) -> String {
    format!(
        "{base}/environments/{}/{path}?per_page=100",
        path_segment(name)
    )
}

/// The release asset `id`'s bytes.
pub(crate) fn asset_path(base: &str, id: u64) -> String {
    format!("{base}/releases/assets/{id}")
}

/// `text` as one URL path segment: every byte but the unreserved ones (letters,
/// digits, `-._~`) percent-encoded, so no name can add a segment, a query or a
/// fragment, or be taken for anything but itself.
pub(crate) fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use repovault_core::{DataFile, KindFailure, RECORD_SCHEMA};

    use super::*;
    use crate::kinds::{Kind, REPO_KINDS};

    const BASE: &str = "/repos/acme/api";

    fn kind(name: &str) -> &'static Kind {
        REPO_KINDS.iter().find(|k| k.name == name).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// A previous snapshot at 12:00 with a file (and an `ETag`) for every kind.
    fn previous() -> DataIndex {
        DataIndex {
            schema: RECORD_SCHEMA,
            repository: "acme/api".into(),
            fetched_at: at("2026-11-22T12:00:00Z"),
            full_at: at("2026-11-20T12:00:00Z"),
            kinds: REPO_KINDS
                .iter()
                .map(|k| {
                    let file = DataFile {
                        key: format!("old/{}.jsonl.zst", k.name),
                        items: 1,
                        size: 1,
                        sha256: String::new(),
                        etag: Some(format!("W/\"{}\"", k.name)),
                    };
                    (k.name.to_owned(), file)
                })
                .collect(),
            assets: BTreeMap::new(),
            not_permitted: vec![],
            failed: BTreeMap::new(),
            attachments: BTreeMap::new(),
        }
    }

    #[test]
    fn without_a_previous_snapshot_every_kind_is_read_whole_unconditionally() {
        assert_eq!(
            plan(kind("labels"), BASE, None, true, true),
            Plan::List {
                path: "/repos/acme/api/labels?per_page=100".into(),
                etag: None
            }
        );
        assert_eq!(
            plan(kind("issues"), BASE, None, true, true),
            Plan::Probe {
                probe: "/repos/acme/api/issues?state=all&sort=updated&direction=desc&per_page=1"
                    .into(),
                etag: None,
                then: Then::Whole("/repos/acme/api/issues?state=all&per_page=100".into()),
            }
        );
        assert_eq!(
            plan(kind("reviews"), BASE, None, true, true),
            Plan::PerPullRequest {
                of: "pulls",
                base: BASE.into(),
                since: None,
                retain: None
            }
        );
    }

    #[test]
    fn after_a_snapshot_a_list_is_asked_for_with_its_etag() {
        let previous = previous();
        assert_eq!(
            plan(kind("milestones"), BASE, Some(&previous), false, true),
            Plan::List {
                path: "/repos/acme/api/milestones?state=all&per_page=100".into(),
                etag: Some("W/\"milestones\"".into())
            }
        );
        assert_eq!(
            plan(
                kind("branch-protection"),
                BASE,
                Some(&previous),
                false,
                true
            ),
            Plan::PerProtectedBranch {
                list: "/repos/acme/api/branches?protected=true&per_page=100".into(),
                etag: Some("W/\"branch-protection\"".into()),
                base: BASE.into(),
            }
        );
    }

    #[test]
    fn a_changed_kind_with_since_reads_what_changed_since_the_previous_snapshot() {
        let previous = previous();
        let Plan::Probe { etag, then, .. } =
            plan(kind("issue-comments"), BASE, Some(&previous), false, true)
        else {
            panic!("issue comments are probed")
        };
        assert_eq!(etag.as_deref(), Some("W/\"issue-comments\""));
        assert_eq!(
            then,
            Then::Merge {
                // Five minutes before the previous snapshot, for clock skew.
                path: "/repos/acme/api/issues/comments?per_page=100&since=2026-11-22T11:55:00Z"
                    .into(),
                into: "old/issue-comments.jsonl.zst".into(),
            }
        );
        // Pull requests have no `since=`: probed, then read whole.
        let Plan::Probe { then, .. } = plan(kind("pulls"), BASE, Some(&previous), false, true)
        else {
            panic!("pull requests are probed")
        };
        assert_eq!(
            then,
            Then::Whole("/repos/acme/api/pulls?state=all&per_page=100".into())
        );
        assert_eq!(
            plan(kind("reviews"), BASE, Some(&previous), false, true),
            Plan::PerPullRequest {
                of: "pulls",
                base: BASE.into(),
                since: Some(at("2026-11-22T11:55:00Z")),
                retain: Some("old/reviews.jsonl.zst".into()),
            }
        );
    }

    #[test]
    fn a_full_read_asks_without_etag_and_reads_whole() {
        let previous = previous();
        assert_eq!(
            plan(kind("issues"), BASE, Some(&previous), true, true),
            plan(kind("issues"), BASE, None, true, true)
        );
        assert_eq!(
            plan(kind("reviews"), BASE, Some(&previous), true, true),
            plan(kind("reviews"), BASE, None, true, true)
        );
    }

    #[test]
    fn a_kind_that_failed_last_time_keeps_its_etag_but_is_read_whole() {
        let mut previous = previous();
        for kind in ["issues", "reviews"] {
            previous.failed.insert(
                kind.into(),
                KindFailure {
                    error: "HTTP 500".into(),
                    since: at("2026-11-21T12:00:00Z"),
                },
            );
        }
        assert_eq!(
            plan(kind("issues"), BASE, Some(&previous), false, true),
            Plan::Probe {
                probe: "/repos/acme/api/issues?state=all&sort=updated&direction=desc&per_page=1"
                    .into(),
                etag: Some("W/\"issues\"".into()),
                then: Then::Whole("/repos/acme/api/issues?state=all&per_page=100".into()),
            }
        );
        assert_eq!(
            plan(kind("reviews"), BASE, Some(&previous), false, true),
            plan(kind("reviews"), BASE, None, true, true)
        );
    }

    #[test]
    fn the_full_read_is_due_after_full_every() {
        let previous = previous();
        let week = Duration::from_secs(7 * 86_400);
        assert!(full_read_due(None, at("2026-11-22T12:00:00Z"), week));
        assert!(!full_read_due(
            Some(&previous),
            at("2026-11-27T11:59:59Z"),
            week
        ));
        assert!(full_read_due(
            Some(&previous),
            at("2026-11-27T12:00:00Z"),
            week
        ));
        assert!(full_read_due(
            Some(&previous),
            at("2026-11-22T12:00:00Z"),
            Duration::ZERO
        ));
    }

    #[test]
    fn an_environments_lists_follow_it_and_name_it_as_one_segment() {
        let previous = previous();
        assert_eq!(
            plan(
                kind("environment-variables"),
                BASE,
                Some(&previous),
                false,
                true
            ),
            Plan::PerEnvironment {
                of: "environments",
                base: BASE.into(),
                path: "variables",
                when: None,
                incremental: true,
            }
        );
        assert_eq!(
            plan(
                kind("environment-secrets"),
                BASE,
                Some(&previous),
                true,
                true
            ),
            Plan::PerEnvironment {
                of: "environments",
                base: BASE.into(),
                path: "secrets",
                when: None,
                incremental: false,
            }
        );
        assert_eq!(
            environment_path(BASE, "qa/eu 1", "deployment-branch-policies"),
            "/repos/acme/api/environments/qa%2Feu%201/deployment-branch-policies?per_page=100"
        );
    }

    #[test]
    fn a_branch_name_is_one_path_segment() {
        assert_eq!(
            protection_path(BASE, "release/x#"),
            "/repos/acme/api/branches/release%2Fx%23/protection"
        );
        assert_eq!(
            protection_path(BASE, "ünï"),
            "/repos/acme/api/branches/%C3%BCn%C3%AF/protection"
        );
        assert_eq!(path_segment("a b?c=d&e%f+g"), "a%20b%3Fc%3Dd%26e%25f%2Bg");
        assert_eq!(path_segment("v1.2_rc-3~x"), "v1.2_rc-3~x");
    }

    #[test]
    fn an_object_kind_is_compared_with_its_previous_file() {
        let settings = &crate::kinds::ORG_KINDS[0];
        let mut previous = previous();
        previous.kinds.insert(
            "settings".into(),
            DataFile {
                key: "old/settings.jsonl.zst".into(),
                items: 1,
                size: 1,
                sha256: String::new(),
                etag: None,
            },
        );
        assert_eq!(
            plan(settings, "/orgs/acme", Some(&previous), false, true),
            Plan::Object {
                path: "/orgs/acme".into(),
                compare_with: Some("old/settings.jsonl.zst".into())
            }
        );
        assert_eq!(
            plan(settings, "/orgs/acme", Some(&previous), false, false),
            Plan::Object {
                path: "/orgs/acme".into(),
                compare_with: None
            }
        );
    }

    #[test]
    fn previous_files_a_worker_cannot_open_are_neither_merged_into_nor_compared() {
        let previous = previous();
        // Still conditional: a 304 keeps the sealed file without opening it.
        let Plan::Probe { etag, then, .. } =
            plan(kind("issue-comments"), BASE, Some(&previous), false, false)
        else {
            panic!("issue comments are probed")
        };
        assert_eq!(etag.as_deref(), Some("W/\"issue-comments\""));
        assert!(matches!(then, Then::Whole(_)), "{then:?}");
        assert_eq!(
            plan(kind("reviews"), BASE, Some(&previous), false, false),
            Plan::PerPullRequest {
                of: "pulls",
                base: BASE.into(),
                since: None,
                retain: None
            }
        );
    }
}
