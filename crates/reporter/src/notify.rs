//! Telling people how a run went: which runs are worth a message (`notify.when`),
//! what the message says, and delivering it to every channel with retries. A
//! notification that cannot be delivered is logged and noted in the report; it never
//! changes the run's exit code.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use repovault_core::Plan;
use repovault_core::config::NotifyWhen;
use repovault_core::ports::notify::{Notification, NotifiedFailure, Notifier};
use repovault_core::ports::store::Store;
use repovault_core::retry::RetryPolicy;
use repovault_repository::Layout;
use serde::{Deserialize, Serialize};

/// How many runs back the run before a reported one is looked for (it is usually the
/// next link: a run is reported soon after it is planned).
const PREVIOUS_WITHIN: usize = 20;

use crate::{RepoStatus, Report, ReporterError};

/// How notifications are sent (`notify:` of the configuration, resolved).
#[derive(Clone, Default)]
pub struct NotifySettings {
    pub when: NotifyWhen,
    /// Failed repositories named in a message; the rest are counted.
    pub max_listed: usize,
    pub channels: Vec<Arc<dyn Notifier>>,
    /// Tries per channel, and the waits between them.
    pub retry: RetryPolicy,
}

impl NotifySettings {
    pub fn new(when: NotifyWhen, max_listed: usize, channels: Vec<Arc<dyn Notifier>>) -> Self {
        NotifySettings {
            when,
            max_listed,
            channels,
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(4),
            },
        }
    }

    /// Whether `notification` is worth sending.
    pub fn wants(&self, notification: &Notification) -> bool {
        let failed = notification.failed + notification.missing > 0;
        !self.channels.is_empty()
            && match self.when {
                NotifyWhen::Always => true,
                NotifyWhen::Failure => failed,
                NotifyWhen::Changes => {
                    failed
                        || !notification.new_repositories.is_empty()
                        || !notification.gone_repositories.is_empty()
                }
            }
    }
}

/// One channel's delivery, as the report records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: String,
    pub delivered: bool,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The message for `report`: its counts, the first `max_listed` failures with their
/// reasons, the repositories new or gone since the run planned before it, and where
/// the report is.
pub async fn notification(
    store: &dyn Store,
    report: &Report,
    max_listed: usize,
) -> Result<Notification, ReporterError> {
    let layout = Layout::new(&report.target.prefix);
    let this: BTreeSet<String> = report
        .repos
        .iter()
        .map(|r| format!("{}/{}", r.owner, r.name))
        .collect();
    let previous: Option<Plan> = match report.planned_at {
        Some(planned_at) => crate::recent_plans(store, &report.target, PREVIOUS_WITHIN)
            .await?
            .into_iter()
            .filter(|p| p.created_at < planned_at)
            .max_by_key(|p| p.created_at),
        None => None,
    };
    let (new, gone) = match &previous {
        Some(previous) => {
            let before: BTreeSet<String> = previous.repos.iter().map(|r| r.full_name()).collect();
            (
                this.difference(&before).cloned().collect(),
                before.difference(&this).cloned().collect(),
            )
        }
        // The first run: everything is new, which is no news.
        None => (Vec::new(), Vec::new()),
    };
    let failures: Vec<NotifiedFailure> = report
        .repos
        .iter()
        .filter(|r| matches!(r.status, RepoStatus::Failed | RepoStatus::Missing))
        .map(|r| NotifiedFailure {
            repository: format!("{}/{}", r.owner, r.name),
            reason: match (&r.error, r.status) {
                (Some(error), _) => error.clone(),
                (None, RepoStatus::Missing) => {
                    "no record: still queued, lost, or in the dead-letter queue".into()
                }
                (None, _) => "failed".into(),
            },
        })
        .collect();
    let t = &report.totals;
    Ok(Notification {
        event: if t.failed + t.missing > 0 {
            "run.failed".into()
        } else {
            "run.finished".into()
        },
        run_id: report.run_id.to_string(),
        target: report.target.to_string(),
        planned: t.planned,
        ok: t.ok,
        unchanged: t.unchanged,
        failed: t.failed,
        missing: t.missing,
        bytes_stored: t.bytes_stored,
        failures_not_listed: failures.len().saturating_sub(max_listed),
        failures: failures.into_iter().take(max_listed).collect(),
        new_repositories: new,
        gone_repositories: gone,
        report: format!(
            "{}/{}",
            report.target.store.trim_end_matches('/'),
            layout.report_md(&report.run_id)
        ),
    })
}

/// Sends `notification` to every channel, each retried on transient errors by the
/// settings' policy. Never fails: what went wrong is in the returned deliveries (and
/// logged, without the channel's URL).
pub async fn deliver(settings: &NotifySettings, notification: &Notification) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for channel in &settings.channels {
        let mut attempts = 0;
        let sent = settings
            .retry
            .run(
                || {
                    attempts += 1;
                    channel.send(notification)
                },
                |e, attempt, _| {
                    tracing::warn!(channel = channel.channel(), error = %e, attempts = attempt, "notification not delivered; retrying");
                },
            )
            .await;
        let error = sent.err().map(|e| e.to_string());
        match &error {
            None => {
                tracing::info!(channel = channel.channel(), attempts, event = %notification.event, "notification delivered")
            }
            Some(e) => {
                tracing::error!(channel = channel.channel(), attempts, error = %e, "notification not delivered; the run's outcome is unchanged")
            }
        }
        deliveries.push(Delivery {
            channel: channel.channel().to_owned(),
            delivered: error.is_none(),
            attempts,
            error,
        });
    }
    deliveries
}

/// Tells `settings`' channels about `report` when it is worth it, and notes the
/// deliveries in the report (write it afterwards). A notification that cannot be
/// made or delivered is logged; the report and its exit code are unchanged by it.
pub async fn notify(store: &dyn Store, report: &mut Report, settings: &NotifySettings) {
    if settings.channels.is_empty() {
        return;
    }
    match notification(store, report, settings.max_listed).await {
        Ok(notification) if settings.wants(&notification) => {
            report.notifications = deliver(settings, &notification).await;
        }
        Ok(_) => tracing::debug!("nothing worth a notification"),
        Err(e) => tracing::error!(error = %e, "could not prepare the notification"),
    }
}
