//! A [`Queue`] on SQS.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use repovault_core::ports::queue::{Lease, Queue, QueueDepth, QueueError};
use repovault_core::retry::RetryPolicy;
use repovault_core::{Classify, ErrorClass};

/// SQS's limit on entries per batch call.
const BATCH: usize = 10;
/// SQS's limit on a message's visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);
/// Tries of a batch whose entries SQS refused in part.
const BATCH_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(400),
    max_delay: Duration::from_millis(6400),
};

/// Why a batch was not sent.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    /// The SDK gave up on the request (after its own retries): not tried again.
    #[error(transparent)]
    Sdk(QueueError),
    /// SQS refused some entries: those are sent again.
    #[error("{0}")]
    Partial(String),
}

impl Classify for BatchError {
    fn class(&self) -> ErrorClass {
        match self {
            BatchError::Sdk(_) => ErrorClass::Permanent,
            BatchError::Partial(_) => ErrorClass::RETRY,
        }
    }
}

/// A job queue and its dead-letter queue (found through the redrive policy).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
    max_receive_count: u32,
    visibility: Duration,
}

fn backend<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    err: &SdkError<E, R>,
) -> QueueError {
    QueueError::Backend(format!("{what}: {}", crate::sdk_message(err)))
}

/// A receipt handle that no longer holds the message.
fn lease_lost<E: ProvideErrorMetadata>(err: &E) -> bool {
    matches!(
        err.code(),
        Some("ReceiptHandleIsInvalid" | "MessageNotInflight" | "InvalidParameterValue")
            | Some("AWS.SimpleQueueService.MessageNotInflight")
    )
}

impl SqsQueue {
    /// Connects to the queue at `url` and finds its dead-letter queue. Fails when the
    /// queue has no redrive policy: without one, a poison message would loop forever.
    pub async fn connect(
        client: Client,
        url: &str,
        visibility: Duration,
    ) -> Result<Self, QueueError> {
        let attrs = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| backend(&format!("queue {url}"), &e))?;
        let policy = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .ok_or_else(|| {
                QueueError::Backend(format!(
                    "queue {url} has no redrive policy: give it a dead-letter queue"
                ))
            })?;
        let unreadable =
            || QueueError::Backend(format!("queue {url}: unreadable redrive policy {policy}"));
        let policy_json: serde_json::Value =
            serde_json::from_str(policy).map_err(|_| unreadable())?;
        let arn = policy_json
            .get("deadLetterTargetArn")
            .and_then(|v| v.as_str())
            .ok_or_else(unreadable)?
            .to_owned();
        // A number, or a string holding one, depending on who wrote the policy.
        let max_receive_count = match policy_json.get("maxReceiveCount") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(unreadable)? as u32;
        // arn:aws:sqs:<region>:<account>:<name>
        let parts: Vec<&str> = arn.split(':').collect();
        let (account, name) = match parts.as_slice() {
            [.., account, name] => (*account, *name),
            _ => {
                return Err(QueueError::Backend(format!(
                    "bad dead-letter queue ARN {arn}"
                )));
            }
        };
        let dead_letter_url = client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| backend(&format!("dead-letter queue {arn}"), &e))?
            .queue_url()
            .unwrap_or_default()
            .to_owned();
        Ok(SqsQueue {
            client,
            url: url.to_owned(),
            dead_letter_url,
            max_receive_count,
            visibility: visibility.min(MAX_VISIBILITY),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The redrive policy's `maxReceiveCount`: deliveries before SQS dead-letters a
    /// message.
    pub fn max_receive_count(&self) -> u32 {
        self.max_receive_count
    }

    /// Sends up to 10 bodies, retrying (by [`BATCH_RETRY`]) the entries SQS reports
    /// as failed; a request the SDK gave up on (after its own retries) is not tried
    /// again.
    async fn send_batch(&self, bodies: &[String]) -> Result<(), QueueError> {
        let pending = std::sync::Mutex::new(bodies.iter().enumerate().collect::<Vec<_>>());
        let sent = BATCH_RETRY
            .run(
                || async {
                    let batch = pending.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let entries = batch
                        .iter()
                        .map(|(i, body)| {
                            SendMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .message_body(body.as_str())
                                .build()
                                .expect("id and body set")
                        })
                        .collect();
                    let out = self
                        .client
                        .send_message_batch()
                        .queue_url(&self.url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .map_err(|e| BatchError::Sdk(backend("send", &e)))?;
                    if out.failed().is_empty() {
                        return Ok(());
                    }
                    let failed: HashMap<&str, &str> = out
                        .failed()
                        .iter()
                        .map(|f| (f.id(), f.message().unwrap_or(f.code())))
                        .collect();
                    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
                    pending.retain(|(i, _)| failed.contains_key(i.to_string().as_str()));
                    let reasons: Vec<&str> = failed.values().copied().collect();
                    Err(BatchError::Partial(format!(
                        "{} messages could not be sent: {}",
                        pending.len(),
                        reasons.join("; ")
                    )))
                },
                |e, attempt, _| {
                    tracing::warn!(attempt, error = %e, "some messages of a batch were not sent; retrying them");
                },
            )
            .await;
        sent.map_err(|e| match e {
            BatchError::Sdk(e) => e,
            BatchError::Partial(reason) => QueueError::Backend(reason),
        })
    }

    async fn change_visibility(&self, lease: &Lease, to: Duration) -> Result<(), QueueError> {
        let secs = to.min(MAX_VISIBILITY).as_secs() as i32;
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&lease.receipt)
            .visibility_timeout(secs)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(lease_lost) => Err(QueueError::LeaseLost {
                message_id: lease.message_id.clone(),
            }),
            Err(e) => Err(backend("change visibility", &e)),
        }
    }

    async fn approximate(&self, url: &str) -> Result<(u64, u64), QueueError> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| backend("queue attributes", &e))?;
        let get = |name: QueueAttributeName| -> u64 {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                + get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    /// Batches of 10, 16 batches in flight.
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        // SQS takes whole seconds, at most 15 minutes.
        let seconds = delay.as_secs_f64().ceil().min(900.0) as i32;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| backend("send", &e))
    }

    async fn send(&self, bodies: &[String]) -> Result<(), QueueError> {
        let mut batches = bodies.chunks(BATCH).map(<[String]>::to_vec);
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < 16 {
                let Some(batch) = batches.next() else { break };
                let queue = self.clone();
                in_flight.spawn(async move { queue.send_batch(&batch).await });
            }
            match in_flight.join_next().await {
                None => return Ok(()),
                Some(Ok(result)) => result?,
                Some(Err(e)) => return Err(QueueError::Backend(format!("send task failed: {e}"))),
            }
        }
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Lease>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(self.visibility.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
            )
            .send()
            .await
            .map_err(|e| backend("receive", &e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let attribute = |name| m.attributes().and_then(|a| a.get(&name));
                Some(Lease {
                    message_id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1),
                    // Epoch milliseconds.
                    first_received: attribute(
                        MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                    )
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
                })
            })
            .collect())
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<(), QueueError> {
        self.change_visibility(lease, by).await
    }

    async fn retry_later(&self, lease: &Lease, delay: Duration) -> Result<(), QueueError> {
        self.change_visibility(lease, delay).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&lease.receipt)
            .send()
            .await
            .map_err(|e| backend("delete", &e))?;
        Ok(())
    }

    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<(), QueueError> {
        let attr = |value: String| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type set")
        };
        // SQS caps attribute values at 256 KiB; reasons are short, but be safe.
        let reason: String = reason.chars().take(4096).collect();
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(&lease.body)
            .message_attributes("reason", attr(reason))
            .message_attributes("source-message-id", attr(lease.message_id.clone()))
            .message_attributes("receive-count", attr(lease.receive_count.to_string()))
            .send()
            .await
            .map_err(|e| backend("send to the dead-letter queue", &e))?;
        self.ack(lease).await
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let (visible, in_flight) = self.approximate(&self.url).await?;
        let (dead_visible, dead_hidden) = self.approximate(&self.dead_letter_url).await?;
        Ok(QueueDepth {
            visible,
            in_flight,
            dead: dead_visible + dead_hidden,
        })
    }
}
