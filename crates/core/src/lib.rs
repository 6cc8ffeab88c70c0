//! # repovault-core
//!
//! The domain of repovault and nothing else: job messages, result records and
//! manifests (the versioned contracts), the object key layout, configuration and its
//! validation, error classification, and the ports (`Queue`, `Store`, `Source`) that
//! adapters implement. No AWS SDK, no HTTP client, no libgit2.
//!
//! ```
//! use repovault_core::{Layout, RunId};
//!
//! let layout = Layout::new("github/");
//! let run: RunId = "nightly-1".parse().unwrap();
//! assert_eq!(layout.plan(&run), "github/runs/nightly-1/plan.json");
//! ```

mod error;
mod github_host;
mod job;
mod layout;
mod progress;
mod record;
mod refs;
mod run_id;
mod secret;
mod selector;

pub mod config;
pub mod ports;
pub mod retention;

pub use error::{Classify, ErrorClass, FailureInfo, error_chain};
pub use github_host::GitHost;
pub use job::{
    JOB_SCHEMA, JobMessage, JobOptions, MessageError, RepoEvent, RepoRef, StoreLocation, Target,
    check_login, check_repo_name,
};
pub use layout::{BackupKey, Layout, parse_stamp, stamp};
pub use progress::{Progress, ProgressSnapshot};
pub use record::{
    ArchiveDigest, ArchiveRef, BackupFormat, BundleRef, DataFile, DataIndex, DataSummary,
    GoneMarker, LatestPointer, LfsObject, LfsSummary, Manifest, Outcome, Plan, PlannedRepo,
    RECORD_SCHEMA, ResultRecord, WikiOutcome,
};
pub use refs::{RefSet, check_ref_name};
pub use run_id::RunId;
pub use secret::Secret;
pub use selector::{Owner, RepoSelector, Visibility};

/// `repovault <version>`, written into manifests.
pub fn tool_version() -> String {
    format!("repovault {}", env!("CARGO_PKG_VERSION"))
}
