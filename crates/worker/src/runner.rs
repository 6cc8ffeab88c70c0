//! An at-least-once job runner over a [`Queue`], knowing nothing of what the jobs do:
//! receive as many messages as there are free slots, run each as a task with a
//! heartbeat that keeps its message invisible, and settle it (ack, back on the queue
//! after a backoff, or dead-letter) as the job decides through its [`Delivery`].
//!
//! - A job whose task panics is handed back to the job ([`Handler::panicked`]) with
//!   the panic's message: on its last delivery the job records the failure, so a
//!   panic never leaves a repository "missing".
//! - On shutdown it stops receiving, lets running jobs finish within the grace
//!   period, and releases the rest (visibility 0) for another worker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use repovault_core::ports::queue::{Lease, Queue};
use repovault_core::retry::RetryPolicy;
use repovault_core::{ErrorClass, Outcome};
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::heartbeat::with_heartbeat;
use crate::{BusyObserver, WorkerSummary};

/// How a message left this worker's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// A record was written and the message deleted.
    Recorded(Outcome),
    /// A redelivery of a job already recorded: deleted, nothing redone.
    Skipped,
    /// Put back on the queue for a later attempt.
    Retrying,
    /// Moved to the dead-letter queue (malformed, forbidden, or out of attempts).
    DeadLettered,
}

/// What the runner runs.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Runs one delivery to its end and settles its message through `delivery`.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Disposition> + Send;

    /// The task running `delivery` panicked with `message`.
    fn panicked(
        &self,
        delivery: &Delivery,
        message: String,
    ) -> impl Future<Output = Disposition> + Send;
}

/// How the runner behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunnerSettings {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub visibility_timeout: Duration,
    pub poll_wait: Duration,
    pub shutdown_grace: Duration,
}

/// One received message and the ways to settle it.
#[derive(Clone)]
pub(crate) struct Delivery {
    pub lease: Lease,
    queue: Arc<dyn Queue>,
    retry: RetryPolicy,
    visibility: Duration,
}

impl Delivery {
    /// Which delivery of the message this is (1 = the first).
    pub fn attempt(&self) -> u32 {
        self.lease.receive_count
    }

    /// No delivery will follow a failed one.
    pub fn is_last(&self) -> bool {
        self.attempt() >= self.retry.max_attempts
    }

    pub fn max_attempts(&self) -> u32 {
        self.retry.max_attempts
    }

    /// Runs `work`, extending the message's visibility every third of it; if the
    /// visibility cannot be extended, stops it before the lease ends: the message is
    /// delivered again (`Retrying`).
    pub async fn heartbeat(&self, work: impl Future<Output = Disposition>) -> Disposition {
        with_heartbeat(self.queue.as_ref(), &self.lease, self.visibility, work)
            .await
            .unwrap_or(Disposition::Retrying)
    }

    /// Deletes the message: the work is done (or recorded as failed for good).
    pub async fn ack(&self, done: Disposition) -> Disposition {
        if let Err(e) = self.queue.ack(&self.lease).await {
            // The work is recorded; a redelivery will see the record and skip.
            tracing::warn!(error = %e, "could not delete the message");
        }
        done
    }

    /// Puts the message back for a later attempt, after the backoff of this attempt
    /// (never sooner than `class` asks).
    pub async fn retry(&self, class: ErrorClass) -> Disposition {
        let asked = match class {
            ErrorClass::Retryable { after } => after,
            ErrorClass::Permanent => None,
        };
        let delay = self.retry.delay(self.attempt(), asked);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "job goes back on the queue"
        );
        self.release(delay).await;
        Disposition::Retrying
    }

    /// Puts the message back after `delay` (zero: at once).
    pub async fn release(&self, delay: Duration) {
        if let Err(e) = self.queue.retry_later(&self.lease, delay).await {
            tracing::warn!(message_id = %self.lease.message_id, error = %e, "could not put the message back; it reappears after its visibility timeout");
        }
    }

    /// Moves the message to the dead-letter queue with `reason`.
    pub async fn dead_letter(&self, reason: &str) -> Disposition {
        match self.queue.dead_letter(&self.lease, reason).await {
            Ok(()) => Disposition::DeadLettered,
            Err(e) => {
                // The queue's own redrive policy moves it after max receives.
                tracing::error!(error = %e, "could not dead-letter the message");
                Disposition::Retrying
            }
        }
    }
}

/// Runs `handler` on `queue`'s messages until `shutdown` resolves, then drains.
pub(crate) async fn run<H: Handler>(
    settings: RunnerSettings,
    queue: Arc<dyn Queue>,
    handler: Arc<H>,
    busy: Option<Arc<dyn BusyObserver>>,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut pool = Pool {
        settings,
        handler,
        jobs: JoinSet::new(),
        deliveries: HashMap::new(),
        summary: WorkerSummary::default(),
        busy,
    };
    tokio::pin!(shutdown);
    // When shutdown was requested: the grace period counts from then.
    let stopping_at = loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break Instant::now(),
            Some(joined) = pool.jobs.join_next_with_id(), if !pool.jobs.is_empty() => {
                pool.joined(joined).await;
                continue;
            }
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let want = (slots.available_permits() + 1).min(10);
        let receive = queue.receive(want, settings.poll_wait);
        tokio::pin!(receive);
        let received = tokio::select! {
            _ = &mut shutdown => {
                let stopping_at = Instant::now();
                // Let the poll finish (at most `poll_wait`) and hand back what it got:
                // abandoned, it stays open on the server, which may give it a message
                // nobody will ever process until its visibility times out.
                if let Ok(leases) = receive.await {
                    for lease in leases {
                        pool.delivery(&queue, lease).release(Duration::ZERO).await;
                    }
                }
                break stopping_at;
            }
            received = &mut receive => received,
        };
        let leases = match received {
            Ok(leases) => leases,
            Err(e) => {
                tracing::warn!(error = %e, "receive failed; backing off");
                tokio::select! {
                    _ = &mut shutdown => break Instant::now(),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        };
        let mut permit = Some(permit);
        if pool.jobs.is_empty() && !leases.is_empty() {
            pool.set_busy(true);
        }
        for lease in leases {
            let permit = match permit.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .try_acquire_owned()
                    .expect("received no more than the free slots"),
            };
            let delivery = pool.delivery(&queue, lease);
            let task = delivery.clone();
            let handler = pool.handler.clone();
            let handle = pool.jobs.spawn(async move {
                let _slot = permit;
                task.heartbeat(handler.handle(&task)).await
            });
            pool.deliveries.insert(handle.id(), delivery);
        }
    };
    pool.shut_down(stopping_at + settings.shutdown_grace).await;
    pool.summary
}

/// The running jobs and the deliveries they hold.
struct Pool<H> {
    settings: RunnerSettings,
    handler: Arc<H>,
    jobs: JoinSet<Disposition>,
    deliveries: HashMap<tokio::task::Id, Delivery>,
    summary: WorkerSummary,
    busy: Option<Arc<dyn BusyObserver>>,
}

impl<H: Handler> Pool<H> {
    fn delivery(&self, queue: &Arc<dyn Queue>, lease: Lease) -> Delivery {
        Delivery {
            lease,
            queue: queue.clone(),
            retry: self.settings.retry,
            visibility: self.settings.visibility_timeout,
        }
    }

    fn set_busy(&self, busy: bool) {
        if let Some(observer) = &self.busy {
            observer.set_busy(busy);
        }
    }

    async fn joined(&mut self, joined: Result<(tokio::task::Id, Disposition), JoinError>) {
        let disposition = match joined {
            Ok((id, disposition)) => {
                self.deliveries.remove(&id);
                Some(disposition)
            }
            Err(e) => match self.deliveries.remove(&e.id()) {
                None => None,
                Some(delivery) if e.is_panic() => {
                    let message = panic_message(e.into_panic());
                    tracing::error!(message_id = %delivery.lease.message_id, panic = %message, "job panicked");
                    Some(
                        delivery
                            .heartbeat(self.handler.panicked(&delivery, message))
                            .await,
                    )
                }
                Some(delivery) => {
                    // Cancelled at shutdown: another worker takes it at once.
                    self.summary.released += 1;
                    delivery.release(Duration::ZERO).await;
                    None
                }
            },
        };
        if let Some(disposition) = disposition {
            let s = &mut self.summary;
            match disposition {
                Disposition::Recorded(Outcome::Ok) => s.ok += 1,
                Disposition::Recorded(Outcome::Unchanged) => s.unchanged += 1,
                Disposition::Recorded(Outcome::Failed) => s.failed += 1,
                Disposition::Skipped => s.skipped += 1,
                Disposition::Retrying => s.retried += 1,
                Disposition::DeadLettered => s.dead_lettered += 1,
            }
        }
        if self.jobs.is_empty() {
            self.set_busy(false);
        }
    }

    /// Lets running jobs finish until `deadline`, then cancels and releases the rest.
    async fn shut_down(&mut self, deadline: Instant) {
        while let Some(joined) = self.jobs.try_join_next_with_id() {
            self.joined(joined).await;
        }
        if !self.jobs.is_empty() {
            tracing::info!(
                running = self.jobs.len(),
                grace_secs = self.settings.shutdown_grace.as_secs(),
                "shutting down: finishing running jobs"
            );
        }
        loop {
            tokio::select! {
                joined = self.jobs.join_next_with_id() => match joined {
                    Some(joined) => self.joined(joined).await,
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        tracing::warn!(
            releasing = self.jobs.len(),
            "grace period over: releasing unfinished jobs"
        );
        self.jobs.abort_all();
        while let Some(joined) = self.jobs.join_next_with_id().await {
            self.joined(joined).await;
        }
    }
}

/// The text a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}
