//! Keeps a job's message invisible while the job runs.

use std::future::Future;
use std::time::Duration;

use repovault_core::ports::queue::{Lease, Queue};

/// Runs `job`, extending `lease` by `visibility` every third of it, so the message
/// reappears only if this worker dies — or stops the job: when two extensions in a
/// row failed, the lease has at most a third of `visibility` left, and the job is
/// dropped (`None`) before the message can be delivered again. So a redelivery knows
/// the earlier attempt is over, and may clean up after it.
pub(crate) async fn with_heartbeat<F: Future>(
    queue: &dyn Queue,
    lease: &Lease,
    visibility: Duration,
    job: F,
) -> Option<F::Output> {
    let beat = async {
        let mut ticks = tokio::time::interval(visibility / 3);
        ticks.tick().await;
        let mut failed = 0;
        loop {
            ticks.tick().await;
            match queue.extend(lease, visibility).await {
                Ok(()) => failed = 0,
                Err(e) if failed == 0 => {
                    failed += 1;
                    tracing::warn!(error = %e, "could not extend the job's visibility");
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not extend the job's visibility twice in a row: stopping the job before its lease ends (the message is delivered again)");
                    return;
                }
            }
        }
    };
    tokio::select! {
        out = job => Some(out),
        () = beat => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_core::ports::queue::{QueueDepth, QueueError};
    use repovault_local::MemoryQueue;

    #[tokio::test(start_paused = true)]
    async fn a_long_job_keeps_its_message_invisible() {
        let vis = Duration::from_secs(30);
        let queue = MemoryQueue::new(vis, 5);
        queue.send(&["job".into()]).await.unwrap();
        let lease = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let job = tokio::time::sleep(Duration::from_secs(300));
        assert_eq!(with_heartbeat(&queue, &lease, vis, job).await, Some(()));
        // Ten visibility timeouts later the message is still leased to us.
        assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
        queue.ack(&lease).await.unwrap();
    }

    /// A queue whose leases cannot be extended (SQS out of reach).
    struct Unextendable(MemoryQueue);

    #[async_trait::async_trait]
    impl Queue for Unextendable {
        async fn send(&self, bodies: &[String]) -> Result<(), QueueError> {
            self.0.send(bodies).await
        }
        async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
            self.0.send_delayed(body, delay).await
        }
        async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Lease>, QueueError> {
            self.0.receive(max, wait).await
        }
        async fn extend(&self, _: &Lease, _: Duration) -> Result<(), QueueError> {
            Err(QueueError::Backend("unreachable".into()))
        }
        async fn retry_later(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
            self.0.retry_later(lease, delay).await
        }
        async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
            self.0.ack(lease).await
        }
        async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<(), QueueError> {
            self.0.dead_letter(lease, reason).await
        }
        async fn depth(&self) -> Result<QueueDepth, QueueError> {
            self.0.depth().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_whose_lease_cannot_be_extended_stops_before_the_lease_ends() {
        let vis = Duration::from_secs(30);
        let queue = Unextendable(MemoryQueue::new(vis, 5));
        queue.send(&["job".into()]).await.unwrap();
        let lease = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let job = tokio::time::sleep(Duration::from_secs(300));
        assert_eq!(with_heartbeat(&queue, &lease, vis, job).await, None);
        // Stopped while the lease still held: nobody else has the message yet.
        assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
        tokio::time::advance(vis).await;
        assert_eq!(queue.receive(1, Duration::ZERO).await.unwrap().len(), 1);
    }
}
