//! # repovault-core
//!
//! The domain of repovault and nothing else: job messages, result records and
//! manifests (the versioned contracts; where and how they are stored is
//! `repovault-repository`'s), configuration and its validation, retention rules,
//! error classification, and the ports (`Queue`, `Store`, `Source`) that adapters
//! implement. No AWS SDK, no HTTP client, no libgit2.
//!
//! ```
//! use repovault_core::{RunId, stamp};
//!
//! let at = "2026-11-22T14:36:00Z".parse().unwrap();
//! let run = RunId::generate(at);
//! assert!(run.to_string().starts_with(&stamp(at)));
//! ```

mod clock;
mod error;
mod github_host;
mod job;
mod progress;
mod record;
mod refs;
mod run_id;
mod secret;
mod selector;
mod stamp;

pub mod config;
pub mod defaults;
pub mod ports;
pub mod retention;
pub mod retry;

pub use clock::{Clock, SystemClock};
pub use error::{Classify, ErrorClass, FailureInfo, Invalid, error_chain};
pub use github_host::GitHost;
pub use job::{
    DataHint, JOB_SCHEMA, JobMessage, JobOptions, MessageError, RepoEvent, RepoRef, StoreLocation,
    Target, check_login, check_repo_name, normalize_prefix,
};
pub use progress::{Progress, ProgressSnapshot};
pub use record::{
    ArchiveDigest, Attachment, BackupFormat, BackupRef, BundleRef, ChainHead, DataFile, DataIndex,
    DataSummary, GoneMarker, KindFailure, LatestPointer, LatestRun, LfsObject, LfsSummary,
    Manifest, Outcome, Plan, PlannedRepo, RECORD_SCHEMA, ResultRecord, WikiOutcome,
};
pub use refs::{RefSet, check_ref_name, is_object_id};
pub use run_id::RunId;
pub use secret::Secret;
pub use selector::{Owner, RepoSelector, Visibility};
pub use stamp::{parse_stamp, stamp};

/// `repovault <version>`, written into manifests.
pub fn tool_version() -> String {
    format!("repovault {}", env!("CARGO_PKG_VERSION"))
}
