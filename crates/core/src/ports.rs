//! The seams: the queue jobs travel on, the store backups land in, and the source
//! repositories come from. Business logic sees only these traits; adapters
//! (`repovault-local`, `repovault-aws`, `repovault-github`) implement them.

pub mod queue;
pub mod source;
pub mod store;
