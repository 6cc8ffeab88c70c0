//! # repovault-recover
//!
//! Putting a backup back into GitHub: a repository created with the backed-up
//! settings (or an empty one used), its branches and tags pushed (hidden refs such as
//! `refs/pull/*` are not: GitHub refuses them; a pull request's head whose branch is
//! gone is pushed as `restored/pr/<N>`) after their Git LFS objects, the wiki, then labels, milestones, issues and
//! pull requests in number order with their comments and reviews, and releases with
//! their assets.
//!
//! Every creating request goes through a [`pace::Governor`] that keeps below GitHub's
//! content-creation limits; GitHub's own `403`/`429` answers are waited out on top.
//! Every object created is written to a [`journal::Journal`] before the next one, so a
//! restore stopped at any point (killed, Ctrl-C) continues where it stopped when run
//! again. The one object a kill can leave created but not journaled is recognised in
//! the target by its key: a label's name, a milestone's title, a release's tag, and
//! for issues, pull requests and comments the original URL on the first line of their
//! body ([`text::provenance`]). Nothing is created twice.
//!
//! The backup is read from a directory `restore` wrote (bare repository, wiki, data as
//! JSON Lines, assets by id: [`Backup`]); GitHub is reached through the
//! [`GitHubWriter`] port and git's smart HTTP with credentials scoped to the target's
//! git host.

mod access;
mod backup;
mod issues;
pub mod journal;
pub mod pace;
mod releases;
mod repository;
mod target;
pub mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use repovault_core::ports::source::{GitHubWriter, SourceError};
use repovault_git::{GitCredentials, GitError};

pub use backup::{Backup, Data};
use journal::{Journal, JournalError};
pub use pace::Pace;
use target::Target;

/// How to restore.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Restore into a repository that already has content: nothing in it is
    /// overwritten or deleted (a branch with other history is refused by git).
    pub into_existing: bool,
    /// Create the repository public (otherwise private, whatever it was).
    pub public: bool,
    /// Also branch protection, as the backup recorded it.
    pub protection: bool,
    /// Also collaborators and team permissions.
    pub access: bool,
    pub pace: Pace,
}

/// Where to, and with what.
pub struct Request<'a> {
    pub backup: &'a Backup,
    /// The target repository's owner (an organization, or the token's own user) and
    /// name.
    pub owner: &'a str,
    pub name: &'a str,
    pub writer: &'a dyn GitHubWriter,
    /// The target's git origin (`https://github.com`).
    pub git_origin: &'a str,
    /// Credentials for pushes, scoped to `git_origin`.
    pub creds: &'a GitCredentials,
    pub journal: &'a Path,
    pub options: Options,
    /// Paces creating requests; shared by every repository of one invocation, so an
    /// organization's restore stays within one budget.
    pub governor: &'a tokio::sync::Mutex<pace::Governor>,
    /// Set (by Ctrl-C) to stop after the object being created.
    pub stop: &'a AtomicBool,
    /// Told each step and every tenth object.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Report {
    /// Objects created by this run, by kind.
    pub created: BTreeMap<&'static str, u64>,
    /// Objects the journal (or the target) already had.
    pub resumed: usize,
    /// Time held back by pacing: ours and GitHub's limits.
    pub paced: Duration,
    /// Time GitHub's own limits (`403`/`429` with `retry-after`) held requests.
    pub limited: Duration,
    /// What could not be restored as it was, and why.
    pub notes: Vec<String>,
    /// Every step finished (not stopped, nothing left for a rerun).
    pub complete: bool,
    /// The backup had data beyond git.
    pub had_data: bool,
    pub journal: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{0}: {1}")]
    GitHub(String, SourceError),
    #[error("{0}: GitHub refused it: {1}")]
    Refused(String, String),
    #[error(
        "{0} is not empty: restore into a new or empty repository, or pass --into-existing (nothing in it is overwritten)"
    )]
    NotEmpty(String),
    #[error("{0}")]
    Owner(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("git: {0}")]
    Git(#[from] GitError),
    #[error("the backup: {0}")]
    Backup(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RecoverError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecoverError + '_ {
        move |source| RecoverError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What a restore would create: counts, creating requests and the time they take at
/// `pace` (`--dry-run`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub branches: usize,
    pub tags: usize,
    /// Pull request heads pushed as `restored/pr/<N>`.
    pub pr_heads: usize,
    pub wiki: bool,
    pub lfs_objects: usize,
    pub labels: usize,
    pub milestones: usize,
    pub issues: usize,
    pub pulls: usize,
    /// Issue comments, reviews and review comments.
    pub comments: usize,
    pub releases: usize,
    pub assets: usize,
    pub has_data: bool,
    /// Creating requests: one for each object, closing and labelling (placeholders
    /// for numbers the backup lacks come on top).
    pub requests: u64,
}

impl Plan {
    pub fn of(backup: &Backup) -> Plan {
        let refs = &backup.manifest.refs;
        let mut plan = Plan {
            branches: refs
                .iter()
                .filter(|(r, _)| r.starts_with("refs/heads/"))
                .count(),
            tags: refs
                .iter()
                .filter(|(r, _)| r.starts_with("refs/tags/"))
                .count(),
            pr_heads: backup.detached_heads().len(),
            wiki: backup.wiki_dir.is_some(),
            lfs_objects: backup.manifest.stored_lfs().count(),
            // The repository, its topics.
            requests: 2,
            ..Plan::default()
        };
        if let Some(data) = &backup.data {
            plan.has_data = true;
            plan.labels = data.items("labels").len();
            plan.milestones = data.items("milestones").len();
            let items = data.items("issues");
            plan.pulls = items
                .iter()
                .filter(|i| i.get("pull_request").is_some())
                .count();
            plan.issues = items.len() - plan.pulls;
            let closed = items.iter().filter(|i| i["state"] == "closed").count();
            plan.comments = data.items("issue-comments").len()
                + issues::restorable_reviews(data.items("reviews")).count()
                + data.items("review-comments").len();
            let releases = data.items("releases");
            plan.releases = releases.len();
            plan.assets = releases
                .iter()
                .map(|r| r["assets"].as_array().map_or(0, Vec::len))
                .sum();
            plan.requests += (plan.labels
                + plan.milestones
                + items.len()
                + closed
                + plan.pulls
                + plan.comments
                + plan.releases
                + plan.assets) as u64;
        }
        plan
    }
}

/// With their flags: branch protection, collaborators and teams (settings: written
/// again on a rerun, harmlessly).
async fn settings(
    request: &Request<'_>,
    data: &Data,
    target: &mut Target<'_>,
    journal: &mut Journal,
    notes: &mut Vec<String>,
) -> Result<bool, RecoverError> {
    if request.options.protection {
        access::protection(request, data, target, journal, notes).await?;
    }
    if request.options.access {
        access::access(data, target, journal, notes).await?;
    }
    Ok(true)
}

/// Restores `request.backup` into `request.owner/name`, continuing whatever an earlier
/// run with the same journal began.
pub async fn restore_into_github(request: &Request<'_>) -> Result<Report, RecoverError> {
    let mut journal = Journal::open(request.journal)?;
    let resumed = journal.entries;
    journal.belongs_to(
        &request.backup.full_name(),
        &request.backup.key,
        &format!("{}/{}", request.owner, request.name),
    )?;
    let mut target = Target::new(
        request.owner,
        request.name,
        request.writer,
        request.governor,
    );
    let mut report = Report {
        had_data: request.backup.data.is_some(),
        journal: request.journal.to_owned(),
        resumed,
        ..Report::default()
    };
    let stopped = |r: &Request<'_>| r.stop.load(Ordering::SeqCst);
    let mut complete = true;

    repository::ensure(request, &mut target, &mut journal, &mut report.notes).await?;
    let lfs = repository::upload_lfs(request, &target, &mut journal).await?;
    if lfs > 0 {
        report.created.insert("lfs objects", lfs as u64);
    }
    repository::push_git(request, &mut target, &mut journal, &mut report.notes).await?;
    if !repository::push_wiki(request, &mut journal, &mut report.notes).await? {
        complete = false;
    }
    match &request.backup.data {
        None => report
            .notes
            .push("the backup has no data beyond git: git alone was restored".into()),
        Some(data) => {
            let steps = [
                issues::labels(request, data, &mut target, &mut journal).await?,
                !stopped(request)
                    && issues::milestones(request, data, &mut target, &mut journal).await?,
                !stopped(request)
                    && issues::issues(request, data, &mut target, &mut journal, &mut report.notes)
                        .await?,
                !stopped(request)
                    && settings(request, data, &mut target, &mut journal, &mut report.notes)
                        .await?,
                !stopped(request)
                    && releases::releases(
                        request,
                        data,
                        &mut target,
                        &mut journal,
                        &mut report.notes,
                    )
                    .await?,
            ];
            complete &= steps.iter().all(|done| *done);
        }
    }
    report.complete = complete && !stopped(request);
    report.created.append(&mut target.created);
    report.paced = target.paced();
    report.limited = target.limited;
    Ok(report)
}
