//! Ref listings with libgit2: a local bare repository, or a remote in one round trip.

use std::cell::Cell;
use std::path::Path;

use git2::{Cred, Direction, RemoteCallbacks, Repository};
use repovault_core::RefSet;

use crate::credentials::TOKEN_USER;
use crate::error::classify_secret_text;
use crate::{GitCredentials, GitError};

/// The refs of a repository and where its `HEAD` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRefs {
    /// The ref `HEAD` points at (`refs/heads/main`), if it is symbolic.
    pub head: Option<String>,
    pub refs: RefSet,
}

/// Reads every ref of a local repository. Symbolic refs under `refs/` are resolved to
/// the object they point at.
pub fn read_refs(path: &Path) -> Result<RepoRefs, GitError> {
    let repo = Repository::open_bare(path)?;
    let head = repo.find_reference("HEAD").ok().and_then(|r| {
        r.symbolic_target_bytes()
            .map(|t| String::from_utf8_lossy(t).into_owned())
    });
    let mut refs = RefSet::new();
    for reference in repo.references()? {
        let reference = reference?;
        let name = String::from_utf8_lossy(reference.name_bytes()).into_owned();
        let target = match reference.target() {
            Some(oid) => Some(oid),
            None => reference.resolve().ok().and_then(|r| r.target()),
        };
        if let Some(oid) = target {
            refs.insert(name, oid.to_string());
        }
    }
    Ok(RepoRefs { head, refs })
}

/// Lists a remote's refs without fetching anything (`git ls-remote`), in-process.
/// Blocking: call it from a blocking thread.
///
/// No redirect is followed: libgit2 takes that setting only from a repository's
/// config (a detached remote follows the first redirect to any host), so the remote
/// lives in a throwaway bare repository configured with `http.followRedirects=false`.
pub fn list_remote_refs(url: &str, creds: &GitCredentials) -> Result<RepoRefs, GitError> {
    let fail =
        |e: git2::Error| classify_secret_text("ls-remote", url, e.message(), |t| creds.redact(t));
    let scratch = tempfile::tempdir().map_err(GitError::Scratch)?;
    let repo = Repository::init_bare(scratch.path())?;
    repo.config()?.set_str("http.followRedirects", "false")?;
    let mut remote = repo.remote_anonymous(url).map_err(fail)?;
    let tried = Cell::new(false);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(|asking, _user, _allowed| {
        // libgit2 asks again after every 401; answer once, then give up. The token
        // goes only to its own origin, whatever URL libgit2 ended up at.
        match creds.token_for(asking) {
            Some(token) if !tried.replace(true) => {
                Cred::userpass_plaintext(TOKEN_USER, token.expose())
            }
            _ => Err(git2::Error::from_str(
                "authentication failed: credentials refused or missing",
            )),
        }
    });
    let connection = remote
        .connect_auth(Direction::Fetch, Some(callbacks), None)
        .map_err(fail)?;
    let mut head = None;
    let mut refs = RefSet::new();
    for advertised in connection.list().map_err(fail)? {
        if advertised.name() == "HEAD" {
            // A target git would refuse is no target (refs are checked by `insert`).
            head = advertised
                .symref_target()
                .filter(|t| repovault_core::check_ref_name(t).is_ok())
                .map(str::to_owned);
        } else {
            refs.insert(advertised.name().to_owned(), advertised.oid().to_string());
        }
    }
    Ok(RepoRefs { head, refs })
}
