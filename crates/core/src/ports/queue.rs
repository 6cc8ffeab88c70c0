//! A job queue with leases: at-least-once delivery, visibility timeouts, a receive
//! count and a dead-letter queue, as SQS has them.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Classify, ErrorClass};

/// One received message, held until acked, released or dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub message_id: String,
    /// Identifies this delivery (SQS's receipt handle); a redelivery gets a new one.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been delivered, this delivery included.
    pub receive_count: u32,
    /// When the queue first delivered the message (`None`: it does not say): no
    /// earlier attempt of it began before.
    pub first_received: Option<jiff::Timestamp>,
}

/// Messages by state, as far as the queue can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be received.
    pub visible: u64,
    /// Leased to a worker, or waiting out a retry delay.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

impl QueueDepth {
    /// Nothing left to do: no message visible or in flight.
    pub fn is_drained(&self) -> bool {
        self.visible == 0 && self.in_flight == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lease is no longer held: its visibility timed out and the message may have
    /// been delivered again.
    #[error("lease on message {message_id} was lost (visibility timed out)")]
    LeaseLost { message_id: String },
    #[error("queue error: {0}")]
    Backend(String),
}

impl Classify for QueueError {
    fn class(&self) -> ErrorClass {
        ErrorClass::RETRY
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues message bodies (the implementation batches as the backend requires).
    async fn send(&self, bodies: &[String]) -> Result<(), QueueError>;

    /// Enqueues one message that becomes visible only after `delay` (at most 15
    /// minutes, SQS's limit; longer is cut to that).
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError>;

    /// Receives up to `max` messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Lease>, QueueError>;

    /// Keeps the message invisible for `by` from now (heartbeat).
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError>;

    /// Makes the message visible again after `delay` (a retry, or `ZERO` to release it).
    async fn retry_later(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError>;

    /// Deletes the message: the job is done.
    async fn ack(&self, lease: &Lease) -> Result<(), QueueError>;

    /// Moves the message to the dead-letter queue with a reason, deleting it here.
    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<(), QueueError>;

    async fn depth(&self) -> Result<QueueDepth, QueueError>;
}
