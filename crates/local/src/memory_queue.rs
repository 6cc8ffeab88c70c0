//! An in-process [`Queue`] with SQS's lease semantics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use repovault_core::ports::queue::{Lease, Queue, QueueDepth, QueueError};
use tokio::sync::Notify;
use tokio::time::Instant;

/// SQS's longest message delay.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// A message that left the queue for the dead-letter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
    pub reason: String,
}

/// An in-process queue behaving like SQS with a redrive policy: a received message is
/// invisible for the visibility timeout, reappears if not acked, and moves to the
/// dead-letter list when a receive would exceed `max_receives`. Time is tokio's, so
/// tests can pause it.
#[derive(Debug)]
pub struct MemoryQueue {
    state: Mutex<State>,
    changed: Notify,
    visibility: Duration,
    max_receives: u32,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    next_receipt: u64,
    /// By message id, so iteration is enqueue order.
    messages: BTreeMap<u64, Message>,
    dead: Vec<DeadLetter>,
    /// No more receiving: polls return at once, empty.
    closed: bool,
}

#[derive(Debug)]
struct Message {
    body: String,
    receive_count: u32,
    /// When it was first delivered.
    first_received: Option<jiff::Timestamp>,
    visible_at: Instant,
    receipt: Option<String>,
}

impl MemoryQueue {
    /// Adds `bodies`, visible after `delay`.
    fn enqueue(&self, bodies: &[String], delay: Duration) {
        let mut state = self.lock();
        let visible_at = Instant::now() + delay;
        for body in bodies {
            let id = state.next_id;
            state.next_id += 1;
            state.messages.insert(
                id,
                Message {
                    body: body.clone(),
                    receive_count: 0,
                    first_received: None,
                    visible_at,
                    receipt: None,
                },
            );
        }
        drop(state);
        self.changed.notify_waiters();
    }

    pub fn new(visibility: Duration, max_receives: u32) -> Self {
        MemoryQueue {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            visibility,
            max_receives: max_receives.max(1),
        }
    }

    /// Messages moved to the dead-letter list so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    /// Ends every poll, now and later, with nothing: the process is shutting down.
    /// Acks and releases still work.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_waiters();
    }

    /// Resolves once every message has been acked or dead-lettered.
    pub async fn drained(&self) {
        loop {
            let notified = self.changed.notified();
            if self.lock().messages.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `f` to the message `lease` holds, if the lease is still current.
    fn with_leased<T>(
        &self,
        lease: &Lease,
        f: impl FnOnce(&mut State, u64) -> T,
    ) -> Result<T, QueueError> {
        let mut state = self.lock();
        let id: u64 = lease.message_id.parse().map_err(|_| lost(lease))?;
        match state.messages.get(&id) {
            Some(m) if m.receipt.as_deref() == Some(lease.receipt.as_str()) => {}
            _ => return Err(lost(lease)),
        }
        let out = f(&mut state, id);
        drop(state);
        self.changed.notify_waiters();
        Ok(out)
    }
}

fn lost(lease: &Lease) -> QueueError {
    QueueError::LeaseLost {
        message_id: lease.message_id.clone(),
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, bodies: &[String]) -> Result<(), QueueError> {
        self.enqueue(bodies, Duration::ZERO);
        Ok(())
    }

    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        self.enqueue(&[body.to_owned()], delay.min(MAX_DELAY));
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Lease>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            let next_wake = {
                let mut state = self.lock();
                if state.closed {
                    return Ok(Vec::new());
                }
                let now = Instant::now();
                let ready: Vec<u64> = state
                    .messages
                    .iter()
                    .filter(|(_, m)| m.visible_at <= now)
                    .map(|(id, _)| *id)
                    .collect();
                let mut leases = Vec::new();
                for id in ready {
                    if leases.len() >= max {
                        break;
                    }
                    let receipt = format!("{id}-{}", state.next_receipt);
                    state.next_receipt += 1;
                    let m = state.messages.get_mut(&id).expect("listed above");
                    if m.receive_count >= self.max_receives {
                        let m = state.messages.remove(&id).expect("listed above");
                        state.dead.push(DeadLetter {
                            message_id: id.to_string(),
                            body: m.body,
                            receive_count: m.receive_count,
                            reason: format!(
                                "received {} times without being deleted",
                                m.receive_count
                            ),
                        });
                        continue;
                    }
                    m.receive_count += 1;
                    m.visible_at = now + self.visibility;
                    m.receipt = Some(receipt.clone());
                    let first_received = *m.first_received.get_or_insert_with(jiff::Timestamp::now);
                    leases.push(Lease {
                        message_id: id.to_string(),
                        receipt,
                        body: m.body.clone(),
                        receive_count: m.receive_count,
                        first_received: Some(first_received),
                    });
                }
                if !leases.is_empty() || now >= deadline {
                    return Ok(leases);
                }
                state
                    .messages
                    .values()
                    .map(|m| m.visible_at)
                    .filter(|at| *at > now)
                    .min()
                    .map_or(deadline, |at| at.min(deadline))
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(next_wake) => {}
            }
        }
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError> {
        self.with_leased(lease, |state, id| {
            if let Some(m) = state.messages.get_mut(&id) {
                m.visible_at = Instant::now() + by;
            }
        })
    }

    async fn retry_later(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
        self.with_leased(lease, |state, id| {
            if let Some(m) = state.messages.get_mut(&id) {
                m.visible_at = Instant::now() + delay;
                m.receipt = None;
            }
        })
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        self.with_leased(lease, |state, id| {
            state.messages.remove(&id);
        })
    }

    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<(), QueueError> {
        self.with_leased(lease, |state, id| {
            if let Some(m) = state.messages.remove(&id) {
                state.dead.push(DeadLetter {
                    message_id: id.to_string(),
                    body: m.body,
                    receive_count: m.receive_count,
                    reason: reason.to_owned(),
                });
            }
        })
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let state = self.lock();
        let now = Instant::now();
        let visible = state
            .messages
            .values()
            .filter(|m| m.visible_at <= now)
            .count() as u64;
        Ok(QueueDepth {
            visible,
            in_flight: state.messages.len() as u64 - visible,
            dead: state.dead.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIS: Duration = Duration::from_secs(30);

    async fn one(q: &MemoryQueue) -> Lease {
        let mut got = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1, "expected one message");
        got.remove(0)
    }

    #[tokio::test(start_paused = true)]
    async fn unacked_messages_reappear_after_the_visibility_timeout() {
        let q = MemoryQueue::new(VIS, 5);
        q.send(&["a".into()]).await.unwrap();
        let first = one(&q).await;
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        tokio::time::advance(VIS + Duration::from_millis(1)).await;
        let second = one(&q).await;
        assert_eq!((second.body.as_str(), second.receive_count), ("a", 2));
        // The first delivery's lease is gone.
        assert!(matches!(
            q.ack(&first).await,
            Err(QueueError::LeaseLost { .. })
        ));
        q.ack(&second).await.unwrap();
        assert!(q.depth().await.unwrap().is_drained());
    }

    #[tokio::test(start_paused = true)]
    async fn extend_keeps_a_message_invisible() {
        let q = MemoryQueue::new(VIS, 5);
        q.send(&["a".into()]).await.unwrap();
        let lease = one(&q).await;
        tokio::time::advance(Duration::from_secs(20)).await;
        q.extend(&lease, VIS).await.unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(
            q.depth().await.unwrap(),
            QueueDepth {
                visible: 0,
                in_flight: 1,
                dead: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_later_delays_and_long_poll_wakes_for_it() {
        let q = MemoryQueue::new(VIS, 5);
        q.send(&["a".into()]).await.unwrap();
        let lease = one(&q).await;
        q.retry_later(&lease, Duration::from_secs(5)).await.unwrap();
        let start = Instant::now();
        let got = q.receive(1, Duration::from_secs(20)).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_wakes_on_send() {
        let q = std::sync::Arc::new(MemoryQueue::new(VIS, 5));
        let receiver = tokio::spawn({
            let q = q.clone();
            async move { q.receive(10, Duration::from_secs(20)).await.unwrap() }
        });
        tokio::task::yield_now().await;
        q.send(&["a".into(), "b".into()]).await.unwrap();
        let got = receiver.await.unwrap();
        assert!(!got.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn close_ends_polls_at_once() {
        let q = std::sync::Arc::new(MemoryQueue::new(VIS, 5));
        let poll = tokio::spawn({
            let q = q.clone();
            async move { q.receive(10, Duration::from_secs(20)).await.unwrap() }
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        q.close();
        assert!(poll.await.unwrap().is_empty());
        assert_eq!(start.elapsed(), Duration::ZERO);
        q.send(&["late".into()]).await.unwrap();
        assert!(
            q.receive(1, Duration::from_secs(5))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exceeding_max_receives_dead_letters() {
        let q = MemoryQueue::new(VIS, 2);
        q.send(&["a".into()]).await.unwrap();
        for _ in 0..2 {
            let lease = one(&q).await;
            q.retry_later(&lease, Duration::ZERO).await.unwrap();
        }
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        let dead = q.dead_letters();
        assert_eq!((dead.len(), dead[0].receive_count), (1, 2));
        assert_eq!(
            q.depth().await.unwrap(),
            QueueDepth {
                visible: 0,
                in_flight: 0,
                dead: 1
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dead_letter_keeps_the_reason_and_drains() {
        let q = MemoryQueue::new(VIS, 5);
        q.send(&["junk".into(), "ok".into()]).await.unwrap();
        let leases = q.receive(10, Duration::ZERO).await.unwrap();
        q.dead_letter(&leases[0], "not JSON").await.unwrap();
        assert_eq!(q.dead_letters()[0].reason, "not JSON");
        let drained = tokio::time::timeout(Duration::from_millis(10), q.drained()).await;
        assert!(drained.is_err(), "drained with a message in flight");
        q.ack(&leases[1]).await.unwrap();
        q.drained().await;
    }
}
