//! The subset of GitHub's repository object we read.

use jiff::Timestamp;
use repovault_core::RepoRef;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct GhOwner {
    pub login: String,
}

/// `GET /orgs/{org}/repos` items (the "minimal repository" shape).
#[derive(Debug, Deserialize)]
pub(crate) struct GhRepository {
    pub id: u64,
    pub name: String,
    pub owner: GhOwner,
    pub clone_url: String,
    pub default_branch: Option<String>,
    pub pushed_at: Option<Timestamp>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub fork: bool,
    #[serde(default)]
    pub has_wiki: bool,
    #[serde(default)]
    pub topics: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GhUser {
    pub login: String,
}

impl From<GhRepository> for RepoRef {
    fn from(r: GhRepository) -> Self {
        RepoRef {
            owner: r.owner.login,
            name: r.name,
            id: r.id,
            clone_url: r.clone_url,
            default_branch: r.default_branch,
            pushed_at: r.pushed_at,
            size_kb: r.size,
            private: r.private,
            archived: r.archived,
            fork: r.fork,
            has_wiki: r.has_wiki,
            topics: r.topics,
        }
    }
}
