//! Which repositories a job backs up.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::RepoRef;

/// Whose repositories to list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Org(String),
    User(String),
}

impl Owner {
    pub fn login(&self) -> &str {
        match self {
            Owner::Org(login) | Owner::User(login) => login,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Org(o) => write!(f, "org {o}"),
            Owner::User(u) => write!(f, "user {u}"),
        }
    }
}

/// Repository visibility filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    #[default]
    All,
    Public,
    Private,
}

/// An owner plus the filters that pick repositories from its list.
#[derive(Debug, Clone)]
pub struct RepoSelector {
    pub owner: Owner,
    /// Regexes matched against the repository name; empty means all.
    pub include: Vec<Regex>,
    /// Regexes matched against the repository name; any match excludes.
    pub exclude: Vec<Regex>,
    pub forks: bool,
    pub archived: bool,
    pub visibility: Visibility,
    /// Keep only repositories with at least one of these topics; empty means all.
    pub topics: Vec<String>,
    /// Skip repositories larger than this (GitHub's `size`, KiB).
    pub max_size_kb: Option<u64>,
}

impl RepoSelector {
    /// A selector that takes every repository of `owner`.
    pub fn all(owner: Owner) -> Self {
        RepoSelector {
            owner,
            include: vec![],
            exclude: vec![],
            forks: true,
            archived: true,
            visibility: Visibility::All,
            topics: vec![],
            max_size_kb: None,
        }
    }

    pub fn matches(&self, repo: &RepoRef) -> bool {
        let name = repo.name.as_str();
        (self.include.is_empty() || self.include.iter().any(|re| re.is_match(name)))
            && !self.exclude.iter().any(|re| re.is_match(name))
            && (self.forks || !repo.fork)
            && (self.archived || !repo.archived)
            && match self.visibility {
                Visibility::All => true,
                Visibility::Public => !repo.private,
                Visibility::Private => repo.private,
            }
            && (self.topics.is_empty() || repo.topics.iter().any(|t| self.topics.contains(t)))
            && self.max_size_kb.is_none_or(|max| repo.size_kb <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::tests::repo;

    fn selector() -> RepoSelector {
        RepoSelector::all(Owner::Org("acme".into()))
    }

    #[test]
    fn takes_everything_by_default() {
        assert!(selector().matches(&repo("acme", "anything")));
    }

    #[test]
    fn include_and_exclude_match_the_name() {
        let mut s = selector();
        s.include = vec![Regex::new("^svc-").unwrap(), Regex::new("^lib-").unwrap()];
        s.exclude = vec![Regex::new("-old$").unwrap()];
        assert!(s.matches(&repo("acme", "svc-api")));
        assert!(s.matches(&repo("acme", "lib-core")));
        assert!(!s.matches(&repo("acme", "svc-api-old")));
        assert!(!s.matches(&repo("acme", "web")));
        // The owner is not part of what the patterns see.
        assert!(!s.matches(&repo("svc-owner", "web")));
    }

    #[test]
    fn forks_archived_visibility_topics_and_size() {
        let mut s = selector();
        let mut r = repo("acme", "x");
        r.fork = true;
        s.forks = false;
        assert!(!s.matches(&r));
        r.fork = false;
        r.archived = true;
        s.archived = false;
        assert!(!s.matches(&r));
        r.archived = false;
        s.visibility = Visibility::Private;
        assert!(!s.matches(&r));
        r.private = true;
        assert!(s.matches(&r));
        s.visibility = Visibility::Public;
        assert!(!s.matches(&r));
        s.visibility = Visibility::All;
        s.topics = vec!["backup".into()];
        assert!(!s.matches(&r));
        r.topics = vec!["rust".into(), "backup".into()];
        assert!(s.matches(&r));
        s.max_size_kb = Some(5);
        assert!(!s.matches(&r));
        r.size_kb = 5;
        assert!(s.matches(&r));
    }
}
