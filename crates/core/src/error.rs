//! How errors are classified.
//!
//! Rules for every error type in repovault's libraries:
//! 1. Libraries define `thiserror` enums; only binaries use `anyhow`.
//! 2. Every error that can end a backup job says whether retrying can help, through
//!    [`Classify`]. A missing repository, bad credentials or an invalid message are
//!    [`ErrorClass::Permanent`]: the job is recorded as failed at once. A 5xx, a timeout,
//!    a dropped connection or a rate limit are [`ErrorClass::Retryable`], carrying the
//!    delay the server asked for (rate-limit reset, `Retry-After`) when there is one.
//! 3. Unknown failures are retryable: the queue's attempt limit bounds them, and a
//!    transient fault is never turned into a lost backup.
//! 4. Messages never contain secrets; text quoted from a child process is redacted.
//! 5. Add context where it is known (the key, the repository, the URL); don't re-wrap an
//!    error in a second one that says the same thing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether an error is worth retrying, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying may succeed; `after` is the delay the server asked for, if any.
    Retryable { after: Option<Duration> },
    /// Retrying cannot help.
    Permanent,
}

impl ErrorClass {
    pub const RETRY: ErrorClass = ErrorClass::Retryable { after: None };

    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Retryable { .. })
    }
}

/// A value from outside that repovault refuses: a configuration key, a flag, a queue
/// message's field, a URL in an API answer. The text names the value and why (and the
/// field, when the check knows it; otherwise the caller names the key). Retrying
/// cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Classify for Invalid {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// Implemented by every error that can end a job.
pub trait Classify: std::error::Error {
    fn class(&self) -> ErrorClass;
}

/// How a failure is written into a result record: serialisable, secret-free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    /// `true` when the last attempt failed with an error that retrying could fix.
    pub retryable: bool,
    pub message: String,
}

impl FailureInfo {
    pub fn from_error<E: Classify>(err: &E) -> Self {
        FailureInfo {
            retryable: err.class().is_retryable(),
            message: error_chain(err),
        }
    }
}

/// `err` followed by its sources, `: `-separated.
pub fn error_chain(err: &(dyn std::error::Error + '_)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
