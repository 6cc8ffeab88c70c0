//! # repovault-git
//!
//! Everything repovault does with git:
//!
//! - [`protocol`]: git's smart HTTP protocol v2, spoken directly: `ls-refs`, then one
//!   `fetch` whose pack streams out as it arrives, checked by [`bundle::PackCheck`].
//!   A server that speaks only protocol v0 lists its refs in its first answer. The
//!   token goes in one `Authorization` header to its own origin; no redirect is
//!   followed.
//! - [`bundle`]: git bundle headers and the pack check (signature, object count,
//!   trailing SHA-1).
//! - [`mirror_clone`] and [`pack_objects`] (the fallback for servers without protocol
//!   v2): `git clone --mirror` with the `git` CLI, then the same self-contained pack a
//!   v2 fetch gives, made by `git pack-objects`. The token travels in the child's
//!   environment as an `http.<origin>.extraHeader` config entry for the token's own
//!   origin only, never in its argv or in a URL; redirects are not followed.
//! - [`read_refs`]: the refs of a local bare repository, with libgit2.
//! - [`restore`]: the pieces of reading backups back: `git index-pack` fed a pack as
//!   it streams, refs set, fsck; safe extraction of first-format archives (no path
//!   outside the destination, no links, nothing executable, bounded by the manifest);
//!   push without hooks.
//!
//! ```no_run
//! # async fn demo() -> Result<(), repovault_git::GitError> {
//! use repovault_core::{GitHost, Secret};
//! use repovault_git::{GitCredentials, mirror_clone, read_refs};
//!
//! let github = GitHost::from_api_url("https://api.github.com", false).unwrap();
//! // The token goes to github.com and nowhere else.
//! let creds = GitCredentials::new(Some(Secret::new("ghp_example"))).scoped(github);
//! let dest = std::path::Path::new("/tmp/work/api.git");
//! mirror_clone("https://github.com/acme/api.git", dest, &creds).await?;
//! let refs = read_refs(dest)?;
//! println!("{} refs, digest {}", refs.refs.len(), refs.refs.digest());
//! # Ok(()) }
//! ```

pub mod bundle;
mod child;
mod credentials;
mod error;
pub mod lfs;
mod mirror;
pub mod protocol;
mod refs;
pub mod restore;

/// Runs `git args` in `dir` with a fixed identity for unit tests; its stdout.
#[cfg(test)]
pub(crate) fn test_git(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

pub use credentials::GitCredentials;
pub use error::GitError;
pub use mirror::{dir_size, mirror_clone, pack_objects};
pub use refs::{RepoRefs, read_refs};
