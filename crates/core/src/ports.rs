//! The seams: the queue jobs travel on, the store backups land in, the source
//! repositories come from, and where the end of a run is told. Business logic sees only these traits; adapters
//! (`repovault-local`, `repovault-aws`, `repovault-github`) implement them.

pub mod notify;
pub mod queue;
pub mod source;
pub mod store;
