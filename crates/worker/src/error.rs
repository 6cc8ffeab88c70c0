//! What can end one backup attempt (see `repovault_core`'s error rules).

use repovault_core::ports::queue::QueueError;
use repovault_core::ports::source::SourceError;
use repovault_core::ports::store::StoreError;
use repovault_core::{Classify, ErrorClass};
use repovault_git::GitError;
use repovault_repository::RepoError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Auth(SourceError),
    #[error("archive verification failed for {key}: {reason}")]
    Verify { key: String, reason: String },
    #[error("work directory: {0}")]
    WorkDir(std::io::Error),
    #[error("backup task failed: {0}")]
    Crashed(String),
}

impl Classify for BackupError {
    fn class(&self) -> ErrorClass {
        match self {
            BackupError::Git(e) => e.class(),
            BackupError::Store(e) => e.class(),
            BackupError::Repo(e) => e.class(),
            BackupError::Queue(e) => e.class(),
            BackupError::Auth(e) => e.class(),
            BackupError::Verify { .. } | BackupError::WorkDir(_) | BackupError::Crashed(_) => {
                ErrorClass::RETRY
            }
        }
    }
}
