//! Where the end of a run is told: a Slack channel, a generic webhook, an SNS topic.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Classify, ErrorClass};

/// What a person needs to know about a finished run. Serialized, it is the generic
/// webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `run.failed` or `run.finished`.
    pub event: String,
    pub run_id: String,
    /// The target the run backed up into.
    pub target: String,
    pub planned: usize,
    pub ok: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub missing: usize,
    pub bytes_stored: u64,
    /// The first failed (and missing) repositories, with why.
    pub failures: Vec<NotifiedFailure>,
    /// Failures not listed above: the report has them.
    pub failures_not_listed: usize,
    /// Repositories planned for the first time, and ones no longer planned.
    pub new_repositories: Vec<String>,
    pub gone_repositories: Vec<String>,
    /// Where the run's report is (`<target>/runs/<run>/report.md`).
    pub report: String,
}

/// One failed repository in a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifiedFailure {
    pub repository: String,
    pub reason: String,
}

impl Notification {
    /// One line for a subject or a log.
    pub fn headline(&self) -> String {
        let bad = self.failed + self.missing;
        if bad > 0 {
            format!(
                "repovault run {}: {bad} of {} repositories failed",
                self.run_id, self.planned
            )
        } else {
            format!(
                "repovault run {}: all {} repositories backed up",
                self.run_id, self.planned
            )
        }
    }

    /// The message as text (Slack, SNS, e-mail subscribers).
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{} ok, {} unchanged, {} failed, {} missing; {} bytes stored",
            self.headline(),
            self.ok,
            self.unchanged,
            self.failed,
            self.missing,
            self.bytes_stored
        );
        if !self.failures.is_empty() {
            text.push_str("\nFailed:");
            for f in &self.failures {
                text.push_str(&format!("\n- {}: {}", f.repository, f.reason));
            }
            if self.failures_not_listed > 0 {
                text.push_str(&format!(
                    "\n- … and {} more (see the report)",
                    self.failures_not_listed
                ));
            }
        }
        for (label, names) in [
            ("New", &self.new_repositories),
            ("Gone", &self.gone_repositories),
        ] {
            if !names.is_empty() {
                text.push_str(&format!("\n{label}: {}", names.join(", ")));
            }
        }
        text.push_str(&format!("\nReport: {}", self.report));
        text
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth trying again: a 5xx, a 429, a timeout, a refused connection.
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help: a 4xx, a bad URL.
    #[error("{0}")]
    Refused(String),
}

impl Classify for NotifyError {
    fn class(&self) -> ErrorClass {
        match self {
            NotifyError::Transient(_) => ErrorClass::RETRY,
            NotifyError::Refused(_) => ErrorClass::Permanent,
        }
    }
}

/// A channel a notification goes to.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// `slack`, `webhook`, `sns`: names the channel in logs and the report (never its
    /// URL, which is a secret).
    fn channel(&self) -> &str;

    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
}
