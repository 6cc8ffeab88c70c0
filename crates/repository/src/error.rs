//! What reading or writing the repository can fail with.
//!
//! One policy for everything read back (see `repovault_core`'s error rules too):
//! - **absent** is not an error: the reader gets `None` and decides what that means;
//! - **unreadable** ([`RepoError::Invalid`]) is stored content that is not what it must
//!   be: not JSON, or naming a repository, key, kind or oid that does not belong where
//!   it is stored. It is permanent (reading again gives the same bytes) and never used;
//! - **transient** ([`RepoError::Store`] with a retryable [`StoreError`]) is retried by
//!   the caller's retry policy, never mistaken for "absent".

use repovault_core::ports::store::StoreError;
use repovault_core::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(StoreError),
    /// Stored content that cannot be used as it is: the key, and what is wrong with it
    /// (naming the field).
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    /// The store does not hold what was just written to it (size or SHA-256 differ, or
    /// the object is missing after its upload): worth another try.
    #[error("{key}: {reason}")]
    Mismatch { key: String, reason: String },
    /// An encrypted object that cannot be opened: no identity was given, none of those
    /// given is one of its recipients, or it is damaged.
    #[error("{key}: {reason}")]
    Sealed { key: String, reason: String },
    /// A name given to the repository (an operator's argument) that no key may be built
    /// from.
    #[error(transparent)]
    Name(#[from] repovault_core::Invalid),
}

impl From<StoreError> for RepoError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { key, source } => RepoError::Invalid {
                key,
                reason: format!("not valid JSON for what is stored there: {source}"),
            },
            StoreError::TooLarge { key, limit } => RepoError::Invalid {
                key,
                reason: format!("larger than {limit} bytes, the most read of it"),
            },
            other => RepoError::Store(other),
        }
    }
}

impl RepoError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> RepoError {
        RepoError::Invalid {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// Stored content that cannot be used (as opposed to a store that could not be
    /// reached).
    pub fn is_invalid(&self) -> bool {
        matches!(self, RepoError::Invalid { .. })
    }
}

impl Classify for RepoError {
    fn class(&self) -> ErrorClass {
        match self {
            RepoError::Store(e) => e.class(),
            RepoError::Mismatch { .. } => ErrorClass::RETRY,
            RepoError::Invalid { .. } | RepoError::Sealed { .. } | RepoError::Name(_) => {
                ErrorClass::Permanent
            }
        }
    }
}
