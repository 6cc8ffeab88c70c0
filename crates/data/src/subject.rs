//! Whose data a snapshot holds: a repository, or an organization.

use jiff::Timestamp;
use repovault_repository::{Layout, RepoError};

/// Whose data a snapshot holds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Repo { owner: &'a str, name: &'a str },
    Org(&'a str),
}

impl Subject<'_> {
    /// As the index names it: `owner/name`, or the organization.
    pub fn name(&self) -> String {
        match self {
            Subject::Repo { owner, name } => format!("{owner}/{name}"),
            Subject::Org(org) => (*org).to_owned(),
        }
    }

    /// Its API path, which every kind's path is under.
    pub fn api_base(&self) -> String {
        match self {
            Subject::Repo { owner, name } => format!("/repos/{owner}/{name}"),
            Subject::Org(org) => format!("/orgs/{org}"),
        }
    }

    pub fn file(&self, layout: &Layout, at: Timestamp, kind: &str) -> String {
        match self {
            Subject::Repo { owner, name } => layout.data_file(owner, name, at, kind),
            Subject::Org(org) => layout.org_data_file(org, at, kind),
        }
    }

    pub fn index(&self, layout: &Layout, at: Timestamp) -> String {
        match self {
            Subject::Repo { owner, name } => layout.data_index(owner, name, at),
            Subject::Org(org) => layout.org_data_index(org, at),
        }
    }

    /// The repository's owner and name (a kind only repositories have).
    pub fn repository(&self) -> Result<(&str, &str), RepoError> {
        match self {
            Subject::Repo { owner, name } => Ok((owner, name)),
            Subject::Org(org) => Err(RepoError::Name(repovault_core::Invalid(format!(
                "{org} is an organization, not a repository"
            )))),
        }
    }

    /// Where release asset `id` is stored (repositories only).
    pub fn asset(&self, layout: &Layout, id: u64) -> Option<String> {
        match self {
            Subject::Repo { owner, name } => Some(layout.asset(owner, name, id)),
            Subject::Org(_) => None,
        }
    }
}
