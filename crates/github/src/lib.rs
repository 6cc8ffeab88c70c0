//! # repovault-github
//!
//! The GitHub [`Source`](repovault_core::ports::source::Source): lists an
//! organization's or a user's repositories through the REST API (octocrab as the
//! authenticated transport; GitHub Enterprise through the API base URL), following
//! `Link` pagination, and never hammering the API:
//!
//! - a `403`/`429` with `retry-after` (secondary rate limit) waits that long;
//! - a `403`/`429` with `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset`;
//! - a successful response with `x-ratelimit-remaining: 0` pauses the next request
//!   until the reset;
//! - 5xx and transport errors are retried a few times with backoff.
//!
//! It also implements [`RepoData`](repovault_core::ports::source::RepoData): a
//! repository's issues, pull requests, releases… read page by page, conditionally
//! (`If-None-Match`; a `304` costs no rate limit), and release assets streamed.
//!
//! It authenticates with a personal access token or as a GitHub App installation
//! ([`GitHubAuth`]): octocrab mints installation tokens from the App's JWT and renews
//! them before they expire, and [`TokenSource`](repovault_core::ports::source::TokenSource)
//! hands git a token with at least [`GIT_TOKEN_MARGIN`] to live.
//!
//! A wait longer than [`GitHubSource::max_rate_limit_wait`] becomes a retryable
//! [`SourceError::RateLimited`](repovault_core::ports::source::SourceError) instead.
//!
//! ```no_run
//! # async fn demo() -> Result<(), repovault_core::ports::source::SourceError> {
//! use repovault_core::{Owner, RepoSelector, ports::source::Source};
//! use repovault_github::GitHubSource;
//!
//! let github = GitHubSource::with_token("https://api.github.com", None)?;
//! let repos = github.list_repos(&RepoSelector::all(Owner::Org("rust-lang".into()))).await?;
//! println!("{} repositories", repos.len());
//! # Ok(()) }
//! ```

mod auth;
mod client;
mod data;
mod graphql;
mod link;
mod model;
mod rate_limit;
mod source;
mod web;
mod write;

pub use auth::{AppCredentials, GIT_TOKEN_MARGIN, GitHubAuth, Installation};
pub use client::GitHubSource;
