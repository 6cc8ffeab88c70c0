//! # repovault-repository
//!
//! The backup repository: the one place that knows how backups are laid out in a
//! store and reads and writes them (the role `rustic_core::Repository` plays for
//! restic).
//!
//! - [`Layout`]: every object key, built here and nowhere else; keys read back are
//!   taken apart only when their names are valid.
//! - [`Repository`]: a store and a prefix; manifests, `latest.json`, `gone.json`,
//!   result records and data snapshots, each validated as it is read (a manifest must
//!   name the repository its key names, its links must be that repository's, its LFS
//!   oids 64 hex digits, a data index's kinds plain names) under one error policy
//!   ([`RepoError`]: absent is `None`, unreadable is `Invalid`, a store fault is
//!   `Store`).
//! - the chain writer ([`Repository::chain_base`], [`Repository::begin_backup`],
//!   [`NewBackup`]): what a new backup builds on, its links (git bundles) and the
//!   manifest that makes it a restore point; the worker fetches, this writes.
//! - the catalog ([`Repository::catalog`], [`Repository::repositories`]): what `ls` and
//!   the status page list, each figure computed once.
//! - [`check_backup`] and [`Repository::restore`]: a backup read back, hashed and, for
//!   a drill or a restore, rebuilt and proven whole; paths come from the operator's
//!   `OWNER/NAME`, never from stored content.
//! - encryption at rest ([`Keys`], [`Repository::with_keys`]): with recipients, links,
//!   LFS objects, data files, assets, attachments and each manifest's refs and source
//!   are written as age files; pointers, records, data indexes and each manifest's
//!   chain stay in the clear (workers build chains and `verify` checks what is stored
//!   without a key); identities open them for reading back.
//! - [`Repository::prune`]: retention applied per job to the repositories that job
//!   selects (the rules themselves are `repovault_core::retention`'s).
//!
//! ```no_run
//! # async fn demo(store: &dyn repovault_core::ports::store::Store) -> Result<(), repovault_repository::RepoError> {
//! use repovault_repository::{Repository, Scope};
//!
//! let repo = Repository::new(store, "github/");
//! for entry in repo.repositories(Scope::All).await? {
//!     println!("{}: {} backups", entry.full_name(), entry.backups);
//! }
//! if let Some(latest) = repo.latest("acme", "api").await? {
//!     println!("newest: {}", latest.backup.key);
//! }
//! # Ok(()) }
//! ```

mod catalog;
mod chain;
mod check;
mod data;
mod error;
mod layout;
mod prune;
mod rekey;
mod repository;
mod restore;
mod seal;
mod validate;

pub use catalog::{BackupEntry, DataEntry, RepoEntry, describe_gone};
pub use chain::{Base, ChainRules, Found, LfsFound, NewBackup, StoredLink};
pub use check::{CheckError, Checked, check_backup, check_stored};
pub use data::MAX_ITEMS_BYTES;
pub use error::RepoError;
pub use layout::{BackupKey, Layout, is_oid, valid_names};
pub use prune::{PruneScope, Pruned};
pub use rekey::Rekeyed;
pub use repository::{Leftovers, Outline, Repository, Scope, Tally};
pub use restore::{RestoreError, RestoreRequest, Restored};
pub use seal::{AGE_MAGIC, IDENTITY_FLAG, Identities, Keys, REKEY_STANZA, Recipients};
pub use validate::is_kind;
