//! Git errors and how they classify (see `repovault_core`'s error rules).

use std::io;

use repovault_core::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The remote says the repository does not exist (or is invisible to us).
    #[error("repository {url} not found")]
    NotFound { url: String },
    /// Credentials were missing or refused.
    #[error("access to {url} denied: {detail}")]
    AccessDenied { url: String, detail: String },
    /// Anything else git reported; most are network trouble worth a retry.
    #[error("git {op} of {url} failed: {detail}")]
    Failed {
        op: &'static str,
        url: String,
        detail: String,
    },
    /// The server answered with a redirect, which is never followed: the token goes
    /// to the configured host only.
    #[error(
        "{url} redirects to {to}; redirects are not followed (a renamed or moved repository is backed up under its new name by the next plan)"
    )]
    Redirected { url: String, to: String },
    /// The repository is one repovault cannot back up (an object format other than
    /// SHA-1).
    #[error("{url}: {detail}")]
    Unsupported { url: String, detail: String },
    #[error("could not run git: {0}")]
    Spawn(io::Error),
    #[error("libgit2: {0}")]
    Lib(#[from] git2::Error),
    /// A scratch directory could not be made (disk full, temp dir unwritable).
    #[error("scratch directory: {0}")]
    Scratch(io::Error),
}

impl Classify for GitError {
    fn class(&self) -> ErrorClass {
        match self {
            GitError::NotFound { .. }
            | GitError::AccessDenied { .. }
            | GitError::Redirected { .. }
            | GitError::Unsupported { .. }
            | GitError::Spawn(_) => ErrorClass::Permanent,
            GitError::Failed { .. } | GitError::Lib(_) | GitError::Scratch(_) => ErrorClass::RETRY,
        }
    }
}

/// [`classify_text`] of a text that may hold a secret: sorted by what it says, then
/// the secret removed. (Removed first, a short token could cut `404` out of `status
/// code: 404` and turn a missing repository into a retried fault.)
pub(crate) fn classify_secret_text(
    op: &'static str,
    url: &str,
    raw: &str,
    redact: impl Fn(&str) -> String,
) -> GitError {
    match classify_text(op, url, raw.to_owned()) {
        GitError::Failed { op, url, detail } => GitError::Failed {
            op,
            url,
            detail: redact(&detail),
        },
        GitError::AccessDenied { url, detail } => GitError::AccessDenied {
            url,
            detail: redact(&detail),
        },
        other => other,
    }
}

/// Sorts an error text from git or libgit2 into not-found, denied, or other.
pub(crate) fn classify_text(op: &'static str, url: &str, detail: String) -> GitError {
    let lower = detail.to_lowercase();
    let url = url.to_owned();
    if lower.contains("not found")
        || lower.contains("error: 404")
        || lower.contains("status code: 404")
        || lower.contains("does not appear to be a git repository")
    {
        GitError::NotFound { url }
    } else if lower.contains("authentication failed")
        || lower.contains("could not read username")
        || lower.contains("could not read password")
        || lower.contains("terminal prompts disabled")
        || lower.contains("error: 401")
        || lower.contains("status code: 401")
        || lower.contains("error: 403")
        || lower.contains("status code: 403")
        || lower.contains("authentication replays")
    {
        GitError::AccessDenied { url, detail }
    } else {
        GitError::Failed { op, url, detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_removed_after_the_text_is_sorted() {
        // A one-letter token appears inside "status": removed first, it would hide 404.
        let err = classify_secret_text("ls-remote", "u", "unexpected http status code: 404", |t| {
            t.replace('t', "***")
        });
        assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");
        let err = classify_secret_text("ls-remote", "u", "token t leaked", |t| {
            t.replace('t', "***")
        });
        assert!(!err.to_string().contains(" t "), "{err}");
    }

    #[test]
    fn sorts_git_messages() {
        let c = |t: &str| classify_text("clone", "u", t.to_owned());
        assert!(matches!(
            c("fatal: repository 'http://h/a.git/' not found"),
            GitError::NotFound { .. }
        ));
        assert!(matches!(
            c("unexpected http status code: 404"),
            GitError::NotFound { .. }
        ));
        assert!(matches!(
            c("fatal: could not read Username for 'http://h': terminal prompts disabled"),
            GitError::AccessDenied { .. }
        ));
        assert!(matches!(
            c("The requested URL returned error: 403"),
            GitError::AccessDenied { .. }
        ));
        let other =
            c("fatal: unable to access 'http://h/a.git/': The requested URL returned error: 502");
        assert!(matches!(other, GitError::Failed { .. }));
        assert!(other.class().is_retryable());
        assert!(!c("not found").class().is_retryable());
    }
}
