//! What a worker may do: for each target it writes to, the store and the GitHub hosts
//! whose repositories it may back up there. A job message is checked against it before
//! anything runs, so a forged message can neither redirect backups nor send the token
//! to another host.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use repovault_core::ports::source::RepoData;
use repovault_core::ports::store::Store;
use repovault_core::{GitHost, JobMessage, Target};

/// A GitHub a target backs up from: its git host, and its API for the data beyond
/// git (none: that data is not backed up).
type Host = (GitHost, Option<Arc<dyn RepoData>>);

#[derive(Clone, Default)]
pub struct AllowList(HashMap<Target, (Arc<dyn Store>, Vec<Host>)>);

/// What an accepted message may use.
pub(crate) struct Allowed {
    pub store: Arc<dyn Store>,
    pub git_host: GitHost,
    pub data: Option<Arc<dyn RepoData>>,
}

impl AllowList {
    pub fn new() -> Self {
        AllowList::default()
    }

    /// Allows backing up repositories of `git_host` into `target` (through `store`),
    /// and their data beyond git through `data`.
    pub fn allow(
        &mut self,
        target: Target,
        store: Arc<dyn Store>,
        git_host: GitHost,
        data: Option<Arc<dyn RepoData>>,
    ) {
        let (_, hosts) = self.0.entry(target).or_insert_with(|| (store, Vec::new()));
        if !hosts.iter().any(|(h, _)| *h == git_host) {
            hosts.push((git_host, data));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The store and git host for `msg`, or why the message is refused.
    pub(crate) fn check(&self, msg: &JobMessage) -> Result<Allowed, String> {
        let Some((store, hosts)) = self.0.get(&msg.target) else {
            return Err(format!(
                "target {} is not on this worker's allow-list",
                msg.target
            ));
        };
        let repo = &msg.repo;
        let mut reasons = Vec::new();
        for (host, data) in hosts {
            match host.check_clone_url(&repo.clone_url, &repo.owner, &repo.name) {
                Ok(()) => {
                    return Ok(Allowed {
                        store: store.clone(),
                        git_host: host.clone(),
                        data: data.clone(),
                    });
                }
                Err(reason) => reasons.push(reason),
            }
        }
        Err(reasons.join("; "))
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(t, (_, hosts))| {
                (
                    t.to_string(),
                    hosts.iter().map(|(h, _)| h.to_string()).collect::<Vec<_>>(),
                )
            }))
            .finish()
    }
}
