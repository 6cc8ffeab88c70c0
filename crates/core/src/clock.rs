//! The time, injected: every decision that reads the clock (when a chain starts anew,
//! when the data beyond git is read whole, record times, grace periods) takes it from
//! a [`Clock`], so tests can move time instead of waiting for it.

use jiff::Timestamp;

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
