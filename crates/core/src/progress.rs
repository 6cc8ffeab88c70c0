//! Live counters of a run, shared by the worker and whatever displays them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated as jobs finish; cheap to clone behind an `Arc`.
#[derive(Debug, Default)]
pub struct Progress {
    planned: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    bytes_stored: AtomicU64,
}

/// A consistent-enough copy of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub planned: u64,
    pub done: u64,
    pub failed: u64,
    pub bytes_stored: u64,
}

impl Progress {
    pub fn add_planned(&self, n: u64) {
        self.planned.fetch_add(n, Ordering::Relaxed);
    }

    pub fn finished(&self, failed: bool, bytes_stored: u64) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.bytes_stored.fetch_add(bytes_stored, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            planned: self.planned.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes_stored: self.bytes_stored.load(Ordering::Relaxed),
        }
    }
}
