//! An SNS topic as a notification channel (e-mail, chat or Lambda subscribers).

use async_trait::async_trait;
use aws_sdk_sns::error::SdkError;
use repovault_core::ports::notify::{Notification, Notifier, NotifyError};

pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> SnsTopic {
        SnsTopic {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// SNS subjects: ASCII, at most 100 characters.
fn subject(text: &str) -> String {
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    ascii.chars().take(100).collect()
}

#[async_trait]
impl Notifier for SnsTopic {
    fn channel(&self) -> &str {
        "sns"
    }

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(&notification.headline()))
            .message(notification.text())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let message = format!("sns: {}", crate::sdk_message(&e));
                match e {
                    SdkError::ServiceError(s) if !s.raw().status().is_server_error() => {
                        NotifyError::Refused(message)
                    }
                    _ => NotifyError::Transient(message),
                }
            })
    }
}
