//! Which kinds an event of the organization's feed (`GET /orgs/{org}/events`) may
//! have changed: what lets a run leave a quiet repository's data unasked.
//!
//! The feed publishes activity on issues, pull requests, reviews, comments, releases,
//! collaborators and pushes; it never shows labels, milestones, settings (webhooks,
//! deploy keys, rulesets, branch protection, Actions, environments), discussions,
//! projects or security alerts: those are probed every `metadata.probe-every`
//! instead.

/// The kinds of a repository's data an event of type `event_type` may have changed;
/// `None`: any kind (a type this table does not know; a repository made public, whose
/// earlier activity the feed never showed; a repository created, which may reuse a
/// deleted one's name: the planner passes `CreateEvent:repository` for those). Kinds another kind is read from
/// come with it (`pulls` with `reviews`).
pub fn kinds_of_event(event_type: &str) -> Option<&'static [&'static str]> {
    const CONVERSATION: &[&str] = &["issues", "issue-events", "pulls", "reviews"];
    Some(match event_type {
        "IssuesEvent" => &["issues", "issue-events"],
        "IssueCommentEvent" => &["issues", "issue-comments", "pulls"],
        // A push moves pull requests' heads and may close issues ("fixes #1").
        "PullRequestEvent" | "PushEvent" => CONVERSATION,
        "PullRequestReviewEvent" => &["pulls", "reviews"],
        "PullRequestReviewCommentEvent" | "PullRequestReviewThreadEvent" => {
            &["pulls", "reviews", "review-comments"]
        }
        "CommitCommentEvent" => &["commit-comments"],
        "ReleaseEvent" => &["releases"],
        "MemberEvent" => &["collaborators"],
        // A deleted branch loses its protection and closes pull requests into it.
        "CreateEvent" | "DeleteEvent" => &[
            "branch-protection",
            "issues",
            "issue-events",
            "pulls",
            "reviews",
        ],
        // Wiki pages are git (backed up every run); stars, forks and sponsorships are
        // not kept.
        "GollumEvent" | "WatchEvent" | "ForkEvent" | "SponsorshipEvent" => &[],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::REPO_KINDS;

    const TYPES: &[&str] = &[
        "IssuesEvent",
        "IssueCommentEvent",
        "PullRequestEvent",
        "PushEvent",
        "PullRequestReviewEvent",
        "PullRequestReviewCommentEvent",
        "PullRequestReviewThreadEvent",
        "CommitCommentEvent",
        "ReleaseEvent",
        "MemberEvent",
        "CreateEvent",
        "DeleteEvent",
        "GollumEvent",
        "WatchEvent",
    ];

    #[test]
    fn every_kind_an_event_names_exists_and_comes_with_what_it_is_read_from() {
        for event in TYPES {
            let kinds = kinds_of_event(event).unwrap();
            for name in kinds {
                let kind = REPO_KINDS.iter().find(|k| k.name == *name);
                let kind = kind.unwrap_or_else(|| panic!("{event}: no kind {name}"));
                if let Some(of) = kind.read.follows() {
                    assert!(kinds.contains(&of), "{event}: {name} without {of}");
                }
            }
        }
    }

    #[test]
    fn an_unknown_event_or_a_repository_made_public_may_have_changed_anything() {
        assert_eq!(kinds_of_event("PublicEvent"), None);
        assert_eq!(kinds_of_event("CreateEvent:repository"), None);
        assert_eq!(kinds_of_event("SomeFutureEvent"), None);
        assert_eq!(
            kinds_of_event("IssuesEvent"),
            Some(&["issues", "issue-events"][..])
        );
    }
}
