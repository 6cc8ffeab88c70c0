//! The kinds of data a snapshot holds, one entry each: the name of its file, how it is
//! read, who may read it and what is taken out before it is stored. Adding a kind is
//! adding an entry; the loop that reads them (`backup`) knows no kind by name.

use serde_json::Value;

use crate::items;

/// One kind of data and how it is read.
#[derive(Debug)]
pub(crate) struct Kind {
    /// The file's name in the snapshot (`<name>.jsonl.zst`) and the index's key.
    pub name: &'static str,
    pub read: Read,
    pub access: Access,
    /// Applied to every item before it is stored: what must never reach the store.
    pub sanitise: Option<fn(&mut Value)>,
    /// Its items list release assets (`assets[].id`), each stored once under its id.
    pub assets: bool,
}

/// How a kind is read. Paths are under the subject's API path (`/repos/<o>/<r>`,
/// `/orgs/<org>`), with their fixed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// One list, conditionally (`If-None-Match` with the previous file's `ETag`): a
    /// `304` keeps the previous file, anything else is read whole.
    List(&'static str),
    /// A list sortable by `updated`: probed conditionally with its most recently
    /// updated item; when that changed, read whole or, with `since` and a previous
    /// file, only what changed since the previous snapshot, merged into it by `id`.
    Probed { path: &'static str, since: bool },
    /// One object without a validator, kept when its content did not change.
    Object(&'static str),
    /// Per pull request of the kind `of`: those updated since the previous snapshot
    /// (all of them when read whole); unchanged while `of` is.
    PerPullRequest { of: &'static str },
    /// Per environment of the kind `of` (its items' `name`; with `when`, only those
    /// where that JSON pointer is `true`): every item at `environments/<name>/<path>`,
    /// with `environment` set to the name (an environment gone meanwhile has none);
    /// read when `of` was read anew (or at a full read), unchanged while `of` is.
    PerEnvironment {
        of: &'static str,
        path: &'static str,
        when: Option<&'static str>,
    },
    /// Through GraphQL: the repository's discussion categories, read when the
    /// discussions were read anew (or at a full read), kept when their content did not
    /// change.
    DiscussionCategories,
    /// Through GraphQL: the discussions most recently updated first, each with its
    /// poll, comments and replies; with a previous file current as of the previous
    /// snapshot, only those updated since, merged into it by `id`.
    Discussions,
    /// Through GraphQL: Projects (v2), a repository's (those linked to it) or an
    /// organization's, listed first; when any is new or updated since the previous
    /// file (or at a full read), each read whole.
    Projects,
    /// The protected branches (a conditional list), then each branch's rules, which
    /// need admin rights: a `403`/`404` there makes the kind not permitted.
    PerProtectedBranch,
}

impl Read {
    /// Whether it is read through GraphQL (another budget than REST's).
    pub fn is_graphql(self) -> bool {
        matches!(
            self,
            Read::DiscussionCategories | Read::Discussions | Read::Projects
        )
    }

    /// The kind whose items this one is read from, which must come before it in the
    /// table (its items are held for it).
    pub fn reads_from(self) -> Option<&'static str> {
        match self {
            Read::PerPullRequest { of } | Read::PerEnvironment { of, .. } => Some(of),
            _ => None,
        }
    }

    /// The kind this one is read again with, which must come before it in the table.
    pub fn follows(self) -> Option<&'static str> {
        match self {
            Read::DiscussionCategories => Some("discussions"),
            read => read.reads_from(),
        }
    }
}

/// Who may read a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Whoever may read the subject: any error is the kind's failure.
    Reader,
    /// Admin rights: a `403` (or the `404` GitHub answers to hide it) is recorded
    /// "not permitted", not an error.
    Admin,
}

const fn reader(name: &'static str, read: Read) -> Kind {
    Kind {
        name,
        read,
        access: Access::Reader,
        sanitise: None,
        assets: false,
    }
}

const fn admin(name: &'static str, path: &'static str) -> Kind {
    admin_read(name, Read::List(path))
}

const fn admin_read(name: &'static str, read: Read) -> Kind {
    Kind {
        access: Access::Admin,
        ..reader(name, read)
    }
}

/// A security alert list, probed by its most recently updated alert.
const fn alerts(name: &'static str, path: &'static str) -> Kind {
    admin_read(name, Read::Probed { path, since: false })
}

/// The lists of each environment of the kind `environments` (`when`: see
/// [`Read::PerEnvironment`]). Reading environments needs a permission tokens made
/// before repovault read them may lack: a refusal is "not permitted".
const fn per_environment(
    name: &'static str,
    path: &'static str,
    when: Option<&'static str>,
) -> Kind {
    admin_read(
        name,
        Read::PerEnvironment {
            of: "environments",
            path,
            when,
        },
    )
}

/// A repository's kinds, in the order they are read.
pub(crate) const REPO_KINDS: &[Kind] = &[
    reader(
        "issues",
        Read::Probed {
            path: "issues?state=all",
            since: true,
        },
    ),
    reader(
        "issue-comments",
        Read::Probed {
            path: "issues/comments",
            since: true,
        },
    ),
    reader("issue-events", Read::List("issues/events")),
    reader(
        "pulls",
        Read::Probed {
            path: "pulls?state=all",
            since: false,
        },
    ),
    reader("reviews", Read::PerPullRequest { of: "pulls" }),
    reader(
        "review-comments",
        Read::Probed {
            path: "pulls/comments",
            since: true,
        },
    ),
    reader("commit-comments", Read::List("comments")),
    reader("labels", Read::List("labels")),
    reader("milestones", Read::List("milestones?state=all")),
    Kind {
        assets: true,
        ..reader("releases", Read::List("releases"))
    },
    admin("collaborators", "collaborators?affiliation=all"),
    admin("teams", "teams"),
    Kind {
        sanitise: Some(items::sanitise_webhook),
        ..admin("hooks", "hooks")
    },
    admin("deploy-keys", "keys"),
    admin("rulesets", "rulesets"),
    reader("branch-protection", Read::PerProtectedBranch),
    admin("actions-variables", "actions/variables"),
    admin("actions-secrets", "actions/secrets"),
    admin("environments", "environments"),
    // GitHub answers 404 for an environment without custom branch policies.
    per_environment(
        "environment-branch-policies",
        "deployment-branch-policies",
        Some("/deployment_branch_policy/custom_branch_policies"),
    ),
    per_environment("environment-variables", "variables", None),
    per_environment("environment-secrets", "secrets", None),
    reader("discussions", Read::Discussions),
    reader("discussion-categories", Read::DiscussionCategories),
    admin_read("projects", Read::Projects),
    alerts("dependabot-alerts", "dependabot/alerts"),
    alerts("code-scanning-alerts", "code-scanning/alerts"),
    Kind {
        sanitise: Some(items::sanitise_secret_alert),
        ..alerts(
            "secret-scanning-alerts",
            "secret-scanning/alerts?hide_secret=true",
        )
    },
];

/// An organization's own kinds (`/orgs/<org>`): its settings (what the token may read
/// of them), members, teams, and its Actions variables and secrets' names.
pub(crate) const ORG_KINDS: &[Kind] = &[
    admin_read("settings", Read::Object("")),
    reader("members", Read::List("members")),
    admin("teams", "teams"),
    admin("actions-variables", "actions/variables"),
    admin("actions-secrets", "actions/secrets"),
    admin_read("projects", Read::Projects),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_read_after_the_kind_it_reads_from() {
        for table in [REPO_KINDS, ORG_KINDS] {
            for (i, kind) in table.iter().enumerate() {
                if let Some(of) = kind.read.follows() {
                    let at = table.iter().position(|k| k.name == of);
                    assert!(at.is_some_and(|at| at < i), "{} reads {of}", kind.name);
                }
            }
        }
    }

    #[test]
    fn kind_names_are_unique_file_names() {
        for table in [REPO_KINDS, ORG_KINDS] {
            let mut names: Vec<&str> = table.iter().map(|k| k.name).collect();
            assert!(names.iter().all(|n| repovault_repository::is_kind(n)));
            names.sort();
            names.dedup();
            assert_eq!(names.len(), table.len());
        }
    }

    #[test]
    fn only_webhooks_and_secret_alerts_are_sanitised_and_only_releases_hold_assets() {
        let sanitised: Vec<&str> = REPO_KINDS
            .iter()
            .filter(|k| k.sanitise.is_some())
            .map(|k| k.name)
            .collect();
        assert_eq!(sanitised, ["hooks", "secret-scanning-alerts"]);
        let assets: Vec<&str> = REPO_KINDS
            .iter()
            .filter(|k| k.assets)
            .map(|k| k.name)
            .collect();
        assert_eq!(assets, ["releases"]);
        // An organization has no place for release assets.
        assert!(ORG_KINDS.iter().all(|k| !k.assets));
    }
}
