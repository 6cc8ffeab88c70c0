//! What a worker may do: for each target it writes to, the store and the GitHub hosts
//! whose repositories it may back up there. A job message is checked against it before
//! anything runs, so a forged message can neither redirect backups nor send the token
//! to another host.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use repovault_core::ports::source::{RepoData, TokenSource};
use repovault_core::ports::store::Store;
use repovault_core::{GitHost, JobMessage, Target};
use repovault_repository::Keys;

/// A GitHub a target backs up from, and how.
#[derive(Clone)]
pub struct GitHubAccess {
    /// Where git is served: the only host the token goes to.
    pub host: GitHost,
    /// Only this owner's repositories (a GitHub App installation is per owner);
    /// `None`: any owner's.
    pub owner: Option<String>,
    /// The token for git on `host`.
    pub tokens: Arc<dyn TokenSource>,
    /// The API for the data beyond git (`None`: that data is not backed up).
    pub data: Option<Arc<dyn RepoData>>,
}

#[derive(Clone, Default)]
pub struct AllowList(HashMap<Target, Destination>);

/// A target as a worker writes to it.
#[derive(Clone)]
struct Destination {
    store: Arc<dyn Store>,
    /// The recipients its backups are sealed to (none: not sealed). A worker never
    /// has identities.
    keys: Keys,
    accesses: Vec<GitHubAccess>,
}

/// What an accepted message may use.
pub(crate) struct Allowed {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub github: GitHubAccess,
}

impl AllowList {
    pub fn new() -> Self {
        AllowList::default()
    }

    /// Allows backing up repositories from `github` into `target` (through `store`).
    /// The first access given for a host and owner is the one used.
    pub fn allow(&mut self, target: Target, store: Arc<dyn Store>, github: GitHubAccess) {
        let accesses = &mut self
            .0
            .entry(target)
            .or_insert_with(|| Destination {
                store,
                keys: Keys::default(),
                accesses: Vec::new(),
            })
            .accesses;
        if !accesses
            .iter()
            .any(|a| a.host == github.host && a.owner == github.owner)
        {
            accesses.push(github);
        }
    }

    /// Seals what is written to `target` (allowed already) to `keys`' recipients.
    pub fn seal(&mut self, target: &Target, keys: Keys) {
        if let Some(destination) = self.0.get_mut(target) {
            destination.keys = keys;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The store and GitHub access for `msg`, or why the message is refused. Of the
    /// accesses for the message's host, the one for its owner wins, then one for any
    /// owner, then the first (whose credentials may simply not reach the repository:
    /// the token still goes to that host only).
    pub(crate) fn check(&self, msg: &JobMessage) -> Result<Allowed, String> {
        let Some(destination) = self.0.get(&msg.target) else {
            return Err(format!(
                "target {} is not on this worker's allow-list",
                msg.target
            ));
        };
        let repo = &msg.repo;
        let mut reasons = Vec::new();
        let mut matching = Vec::new();
        for access in &destination.accesses {
            match access
                .host
                .check_clone_url(&repo.clone_url, &repo.owner, &repo.name)
            {
                Ok(()) => matching.push(access),
                Err(reason) => reasons.push(reason.0),
            }
        }
        let for_owner = |a: &&&GitHubAccess| {
            a.owner
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(&repo.owner))
        };
        let chosen = matching
            .iter()
            .find(for_owner)
            .or_else(|| matching.iter().find(|a| a.owner.is_none()))
            .or(matching.first());
        match chosen {
            Some(access) => Ok(Allowed {
                store: destination.store.clone(),
                keys: destination.keys.clone(),
                github: (*access).clone(),
            }),
            None => Err(reasons.join("; ")),
        }
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(t, destination)| {
                (
                    t.to_string(),
                    destination
                        .accesses
                        .iter()
                        .map(|a| match &a.owner {
                            Some(owner) => format!("{} ({owner})", a.host),
                            None => a.host.to_string(),
                        })
                        .collect::<Vec<_>>(),
                )
            }))
            .finish()
    }
}
