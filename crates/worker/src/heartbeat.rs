//! Keeps a job's message invisible while the job runs.

use std::future::Future;
use std::time::Duration;

use repovault_core::ports::queue::{Lease, Queue};

/// Runs `job`, extending `lease` by `visibility` every third of it, so the message
/// reappears only if this worker dies.
pub(crate) async fn with_heartbeat<F: Future>(
    queue: &dyn Queue,
    lease: &Lease,
    visibility: Duration,
    job: F,
) -> F::Output {
    let beat = async {
        let mut ticks = tokio::time::interval(visibility / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(e) = queue.extend(lease, visibility).await {
                tracing::warn!(error = %e, "could not extend the job's visibility");
            }
        }
    };
    tokio::select! {
        out = job => out,
        never = beat => never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_local::MemoryQueue;

    #[tokio::test(start_paused = true)]
    async fn a_long_job_keeps_its_message_invisible() {
        let vis = Duration::from_secs(30);
        let queue = MemoryQueue::new(vis, 5);
        queue.send(&["job".into()]).await.unwrap();
        let lease = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let job = tokio::time::sleep(Duration::from_secs(300));
        with_heartbeat(&queue, &lease, vis, job).await;
        // Ten visibility timeouts later the message is still leased to us.
        assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
        queue.ack(&lease).await.unwrap();
    }
}
