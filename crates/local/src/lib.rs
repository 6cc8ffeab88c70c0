//! # repovault-local
//!
//! The embedded default backends, used by `repovault run` when no AWS account is
//! involved:
//!
//! - [`FsStore`]: a local folder with the exact key layout an S3 bucket would have,
//!   atomic writes (temp file + rename) and conditional creates (hard link).
//! - [`MemoryQueue`]: an in-process queue with SQS's lease semantics: visibility
//!   timeouts, receive counts, delayed retries and a dead-letter list.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use repovault_core::ports::queue::Queue;
//! use repovault_local::MemoryQueue;
//!
//! let queue = MemoryQueue::new(Duration::from_secs(30), 5);
//! queue.send(&["hello".to_owned()]).await.unwrap();
//! let leases = queue.receive(10, Duration::ZERO).await.unwrap();
//! assert_eq!(leases[0].body, "hello");
//! queue.ack(&leases[0]).await.unwrap();
//! assert!(queue.depth().await.unwrap().is_drained());
//! # }
//! ```

mod fs_store;
mod memory_queue;

pub use fs_store::FsStore;
pub use memory_queue::{DeadLetter, MemoryQueue};
