//! # repovault-data
//!
//! A repository's data beyond git: issues (with pull requests), issue comments and
//! events, pull requests, their reviews and review comments, commit comments, labels,
//! milestones, releases (with their assets), what admin rights read (collaborators,
//! teams, webhooks, deploy keys, rulesets, branch protection), Actions variables and
//! secrets' names, environments (with their branch policies, variables and secrets'
//! names), security alerts (Dependabot, code scanning, secret scanning: never the
//! secret), and through GraphQL discussions and Projects (v2), kept as one JSON Lines
//! file (zstd) per kind, GitHub's objects as the API wrote them. An organization's own
//! settings, members, teams, Actions variables and secrets' names and projects likewise
//! ([`back_up_org_data`]).
//!
//! ```no_run
//! # async fn example(
//! #     repo: &repovault_repository::Repository<'_>,
//! #     github: &dyn repovault_core::ports::source::RepoData,
//! # ) -> Result<(), repovault_data::DataError> {
//! let previous = Some("repos/acme/api/data/20261121T020000Z/index.json");
//! let now = jiff::Timestamp::now();
//! let summary = repovault_data::back_up_data(
//!     repo, github, ("acme", "api"), previous, None, repovault_data::FULL_REFRESH, now,
//! )
//! .await?;
//! // `summary.index` is the snapshot to name in `latest.json`; `summary.failed` the
//! // kinds that could not be read this time.
//! # Ok(()) }
//! ```
//!
//! ## A table of kinds
//!
//! Each kind is one entry of a table (`kinds`): its name, its read strategy, who may
//! read it and what is taken out before it is stored. The strategies:
//! - a **list** read conditionally (`If-None-Match` with the `ETag` stored in the
//!   previous snapshot; GitHub answers `304`, which costs no rate limit);
//! - a **probed list** (issues, comments, pull requests): asked for its most recently
//!   updated item (`sort=updated&direction=desc&per_page=1`), conditionally; when that
//!   changed, only what changed since the previous snapshot is read (`since=`) and
//!   merged by `id`, or the whole list for kinds without `since=`;
//! - **per pull request** (reviews): those of the pull requests updated since the
//!   previous snapshot, the others' kept; nothing while the pull requests are unchanged;
//! - **through GraphQL** (its own budget of points, counted from what a query could
//!   return): discussions, probed by the most recently updated one (one point) and
//!   read back to the previous snapshot, merged by `id`; their categories read with
//!   them; projects listed (one point), each new or updated one read whole;
//! - **per environment** (branch policies, variables, secrets' names): each
//!   environment's list, read when the environments were read anew (or at a full read),
//!   else unchanged with them;
//! - **per protected branch**: the protected branches (conditionally), then each one's
//!   rules, the branch's name percent-encoded as one path segment (`release/x#`);
//! - **one object** compared by content (an organization's settings).
//!
//! Kinds that need admin rights are recorded `not_permitted` when GitHub answers `403`
//! (or the `404` that hides them). Webhooks are stored without their secret and with
//! their URL reduced to scheme and host: a Slack or Teams URL, `user:pass@` and
//! `?token=` are credentials. Every [`FULL_REFRESH`] all kinds are read whole, so
//! deletions show. Release assets are streamed from GitHub into the store once each,
//! under their id. Deciding what to ask for (`plan`), merging and choosing reviews
//! (`items`) and how a snapshot ends (`snapshot`) are pure functions; `read` and
//! `backup` do the I/O.
//!
//! ## One kind failing costs that kind only
//!
//! A `404`, a `5xx` (after the client's retries), a timeout or an unreadable earlier
//! file costs the kind concerned: it keeps the previous snapshot's file (none, if no
//! snapshot ever read it), the index records it under `failed` with the error and
//! since when, and the next backup reads it again (whole, as `since=` the previous
//! snapshot would miss what changed before it). The other kinds are written and the
//! index is written, so the next run has their `ETag`s. A kind read from one that
//! failed (reviews, from pull requests) fails with it.
//!
//! A rate limit the client will not wait out, or a refused token, stops the reading,
//! as do three kinds in a row failing with server errors or timeouts (GitHub is
//! failing, and each further kind would cost its retries too): that kind and every
//! later one are recorded failed ("not read: …") and keep their previous files, and
//! what was read so far is indexed as above. GraphQL's budget is another: its limit
//! costs the GraphQL kinds only, and a refusal there (no token: GraphQL needs one; a
//! token without the permission) makes them not permitted. So nothing
//! half-written is left unindexed: every file a snapshot writes is named by its index.
//! Only a store failure ([`DataError`]) ends a snapshot without an index; its files
//! are then deleted again (what the failing store will not delete is logged).
//!
//! A snapshot where nothing was read anew, and the same kinds are not permitted and
//! failed as before, is not written at all: the previous index stands.
//!
//! ## What the organization's event feed says
//!
//! A job may carry a hint from the planner ([`repovault_core::DataHint`]): the kinds
//! the organization's event feed showed activity in since a complete snapshot
//! ([`kinds_of_event`] maps events to kinds). The kinds it leaves out keep what the
//! previous snapshot settled (its file, or "not permitted") without a request; kinds
//! that failed there, kinds it never held, and every kind at a full read are asked as
//! usual. The worker asks nothing at all for a hint naming no kind.

mod attachments;
mod backup;
mod connection;
mod discussions;
mod events;
mod items;
mod kinds;
mod plan;
mod projects;
mod read;
mod snapshot;
mod subject;

use std::time::Duration;

use repovault_repository::RepoError;

pub use backup::{back_up_data, back_up_org_data};
pub use events::kinds_of_event;

/// The kinds of a repository's data snapshot, in the order they are read.
pub fn repo_kinds() -> impl Iterator<Item = &'static str> {
    kinds::REPO_KINDS.iter().map(|kind| kind.name)
}

/// How often every kind is read whole, not just what changed (deletions show then),
/// unless configured otherwise (`metadata.full-every`).
pub const FULL_REFRESH: Duration = repovault_core::config::defaults::METADATA_FULL_EVERY;

/// Why a snapshot could not be written: the store, reading the previous snapshot or
/// writing this one (it names the key). What GitHub answers never ends a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Repo(#[from] RepoError),
}
