//! One received message, from lease to ack: parse, check, back up, record, and decide
//! between ack, retry and dead-letter.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use repovault_core::ports::queue::Lease;
use repovault_core::{
    Classify, DataSummary, ErrorClass, FailureInfo, GoneMarker, JOB_SCHEMA, JobMessage,
    LatestPointer, MessageError, Outcome, RECORD_SCHEMA, RepoEvent, ResultRecord,
};
use repovault_git::GitCredentials;
use repovault_repository::Repository;
use tracing::Instrument;

use crate::Shared;
use crate::allow::GitHubAccess;
use crate::backup::{BackupContext, back_up};
use crate::error::BackupError;
use crate::heartbeat::with_heartbeat;
use repovault_data::back_up_data;
use repovault_telemetry::{kv, metrics, propagation};

/// How a message left this worker's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// A record was written and the message deleted.
    Recorded(Outcome),
    /// A redelivery of a job already recorded: deleted, nothing redone.
    Skipped,
    /// Put back on the queue for a later attempt.
    Retrying,
    /// Moved to the dead-letter queue (malformed, forbidden target, or out of attempts).
    DeadLettered,
}

pub(crate) async fn handle(shared: Arc<Shared>, lease: Lease) -> Disposition {
    let msg = match JobMessage::parse(&lease.body) {
        Ok(msg) => msg,
        Err(MessageError::UnsupportedSchema { found }) if found > u64::from(JOB_SCHEMA) => {
            return newer_schema(&shared, &lease, found).await;
        }
        Err(e) => {
            tracing::error!(message_id = %lease.message_id, error = %e, "malformed job message; moving it to the dead-letter queue");
            metrics().dead_lettered.add(1, &[kv("reason", "malformed")]);
            return dead_letter(&shared, &lease, &e.to_string()).await;
        }
    };
    let allowed = match shared.allow.check(&msg) {
        Ok(allowed) => allowed,
        Err(reason) => {
            tracing::error!(message_id = %lease.message_id, repo = %msg.repo.full_name(), %reason, "refusing job");
            metrics().dead_lettered.add(1, &[kv("reason", "refused")]);
            return dead_letter(&shared, &lease, &reason).await;
        }
    };
    let span = tracing::info_span!(
        "job",
        run = %msg.run_id,
        repo = %msg.repo.full_name(),
        attempt = lease.receive_count,
        outcome = tracing::field::Empty,
        bytes = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    // The planner's span for this job is the parent: one trace per job.
    propagation::continue_from(&span, &msg.trace);
    propagation::record_ids(&span);
    let started = std::time::Instant::now();
    let disposition = Attempt {
        shared: &shared,
        repo: Repository::new(allowed.store.as_ref(), &msg.target.prefix),
        github: &allowed.github,
        lease: &lease,
        msg: &msg,
    }
    .run()
    .instrument(span.clone())
    .await;
    measure(&span, disposition, started.elapsed());
    disposition
}

/// A finished attempt in the job's span and the metrics.
fn measure(span: &tracing::Span, disposition: Disposition, took: Duration) {
    let outcome = match disposition {
        Disposition::Recorded(Outcome::Ok) => "ok",
        Disposition::Recorded(Outcome::Unchanged) => "unchanged",
        Disposition::Recorded(Outcome::Failed) | Disposition::DeadLettered => "failed",
        Disposition::Skipped => "skipped",
        Disposition::Retrying => {
            metrics().retries.add(1, &[kv("where", "queue")]);
            span.record("outcome", "retrying");
            return;
        }
    };
    if disposition == Disposition::DeadLettered {
        metrics().dead_lettered.add(1, &[kv("reason", "failed")]);
    }
    span.record("outcome", outcome);
    if outcome == "failed" {
        span.record("otel.status_code", "ERROR");
    }
    metrics().jobs.add(1, &[kv("outcome", outcome)]);
    metrics()
        .job_duration
        .record(took.as_secs_f64(), &[kv("outcome", outcome)]);
}

/// A message written by a newer release (a rolling deploy): another worker may
/// understand it, so it goes back on the queue; once its attempts are used up (no
/// newer worker took it in that many deliveries) it is dead-lettered with the reason.
async fn newer_schema(shared: &Shared, lease: &Lease, found: u64) -> Disposition {
    let attempt = lease.receive_count;
    let max = shared.cfg.retry.max_attempts;
    if attempt >= max {
        let reason = format!(
            "unsupported message schema {found} (this worker understands {JOB_SCHEMA}) and no newer worker took it in {attempt} deliveries; upgrade the workers, then redrive it"
        );
        tracing::error!(message_id = %lease.message_id, %reason, "dead-lettering");
        return dead_letter(shared, lease, &reason).await;
    }
    let delay = shared.cfg.retry.delay(attempt, None);
    tracing::warn!(message_id = %lease.message_id, schema = found, attempt, max_attempts = max, "message from a newer release; leaving it for a newer worker");
    release(shared, lease, delay).await;
    Disposition::Retrying
}

async fn dead_letter(shared: &Shared, lease: &Lease, reason: &str) -> Disposition {
    match shared.queue.dead_letter(lease, reason).await {
        Ok(()) => Disposition::DeadLettered,
        Err(e) => {
            // The queue's own redrive policy will move it after max receives.
            tracing::error!(error = %e, "could not dead-letter the message");
            Disposition::Retrying
        }
    }
}

struct Attempt<'a> {
    shared: &'a Shared,
    repo: Repository<'a>,
    /// The job's git host, its token, and its API for the data beyond git.
    github: &'a GitHubAccess,
    lease: &'a Lease,
    msg: &'a JobMessage,
}

impl Attempt<'_> {
    async fn run(self) -> Disposition {
        match self.existing_record().await {
            Ok(Some(outcome)) if outcome != Outcome::Failed => {
                tracing::info!(
                    ?outcome,
                    "already recorded for this run; skipping the redelivery"
                );
                return self.ack(Disposition::Skipped).await;
            }
            Ok(_) => {}
            Err(e) => return self.retry(&e).await,
        }
        let started_at = Timestamp::now();
        if self.msg.event == Some(RepoEvent::Deleted) {
            return self.record_deletion(started_at).await;
        }
        if self.lease.receive_count > 1 {
            // An earlier delivery may have died mid-upload: its lease has expired, so
            // what it left under this repository's prefix is abandoned. Other
            // repositories' uploads are never touched.
            let dir = self
                .repo
                .layout()
                .repo_dir(&self.msg.repo.owner, &self.msg.repo.name);
            match self
                .repo
                .store()
                .abort_stale_uploads(&dir, started_at)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    aborted = n,
                    "cleaned up unfinished uploads of an earlier attempt"
                ),
                Err(e) => tracing::warn!(error = %e, "could not look for unfinished uploads"),
            }
        }
        let git = match self.github.tokens.token().await {
            Ok(token) => GitCredentials::new(token).scoped(self.github.host.clone()),
            Err(e) => return self.fail(BackupError::Auth(e), started_at).await,
        };
        let ctx = BackupContext {
            repo: &self.repo,
            git: &git,
            github: self.github,
            work_dir: &self.shared.cfg.work_dir,
            archive: self.shared.cfg.archive,
            settings: self.shared.cfg.git,
        };
        let backup = async {
            let record = back_up(&ctx, self.msg, self.lease.receive_count, started_at).await?;
            Ok::<_, BackupError>(self.with_data(record).await)
        };
        let result = with_heartbeat(
            self.shared.queue.as_ref(),
            self.lease,
            self.shared.cfg.visibility_timeout,
            backup,
        )
        .await;
        match result {
            Ok(record) => {
                if let Some(RepoEvent::Moved { from }) = &self.msg.event {
                    self.mark_moved(from).await;
                }
                self.succeed(record).await
            }
            Err(e) => self.fail(e, started_at).await,
        }
    }

    /// `record` with the repository's data beyond git backed up on top of the latest
    /// snapshot. A failure there is the record's note, never the backup's failure: the
    /// previous snapshot stands and the next backup tries again.
    #[tracing::instrument(name = "data", skip_all)]
    async fn with_data(&self, mut record: ResultRecord) -> ResultRecord {
        let Some(source) = self
            .github
            .data
            .as_deref()
            .filter(|_| self.msg.options.metadata)
        else {
            return record;
        };
        let (owner, name) = (&self.msg.repo.owner, &self.msg.repo.name);
        let previous = match self.repo.latest(owner, name).await {
            Ok(latest) => latest.and_then(|l| l.data),
            Err(e) => {
                tracing::warn!(error = %e, "latest.json unreadable: data read in full");
                None
            }
        };
        let summary = back_up_data(
            &self.repo,
            source,
            owner,
            name,
            previous.as_deref(),
            self.shared.cfg.data_full_every,
        )
        .await;
        record.data = Some(match summary {
            Ok(summary) => {
                tracing::info!(items = summary.items, changed = ?summary.changed, requests = summary.requests, not_modified = summary.not_modified, "data beyond git backed up");
                summary
            }
            Err(e) => {
                tracing::warn!(error = %e, "data beyond git not backed up this time");
                DataSummary {
                    index: previous,
                    items: 0,
                    changed: vec![],
                    requests: 0,
                    not_modified: 0,
                    not_permitted: vec![],
                    rate_remaining: None,
                    error: Some(e.to_string()),
                }
            }
        });
        record
    }

    async fn existing_record(&self) -> Result<Option<Outcome>, BackupError> {
        let record = self
            .repo
            .record(&self.msg.run_id, &self.msg.repo.owner, &self.msg.repo.name)
            .await?;
        Ok(record.map(|r| r.outcome))
    }

    async fn succeed(&self, record: ResultRecord) -> Disposition {
        let outcome = record.outcome;
        match self.write_record(&record).await {
            Err(e) => return self.retry(&e).await,
            Ok(Some(standing)) => {
                // A duplicate delivery finished first: its archive stands, ours goes.
                if let Some(ours) = record.backup.as_ref().filter(|ours| {
                    standing
                        .backup
                        .as_ref()
                        .is_none_or(|theirs| theirs.key != ours.key)
                }) {
                    for key in [&ours.key, &ours.manifest_key] {
                        if let Err(e) = self.repo.store().delete(key).await {
                            tracing::warn!(key, error = %e, "could not remove a duplicate archive");
                        }
                    }
                }
                tracing::info!(
                    "a duplicate delivery recorded this repository first; discarded this copy"
                );
                return self.ack(Disposition::Skipped).await;
            }
            Ok(None) => {}
        }
        if let (Outcome::Ok, Some(archive), Some(digest)) =
            (outcome, &record.backup, &record.refs_digest)
        {
            let latest = LatestPointer {
                schema: RECORD_SCHEMA,
                backup: archive.clone(),
                refs_digest: digest.clone(),
                wiki_refs_digest: record.wiki_refs_digest.clone(),
                created_at: record.finished_at,
                run_id: record.run_id.clone(),
                data: record.data.as_ref().and_then(|d| d.index.clone()),
            };
            if let Err(e) = self
                .repo
                .set_latest(&self.msg.repo.owner, &self.msg.repo.name, &latest)
                .await
            {
                // The record stands; the next run simply does not skip this repository.
                tracing::warn!(error = %e, "could not move latest.json");
            }
        } else if let Some(index) = record.data.as_ref().and_then(|d| d.index.clone()) {
            self.move_latest_data(index).await;
        }
        let bytes = record.backup.as_ref().map_or(0, |a| a.size);
        tracing::Span::current().record("bytes", bytes);
        tracing::info!(?outcome, bytes, refs = record.refs_count, wiki = ?record.wiki, "backed up");
        self.shared.progress.finished(false, bytes);
        self.ack(Disposition::Recorded(outcome)).await
    }

    /// A repository deleted on GitHub: nothing to fetch. Its backups stay; `gone.json`
    /// and the record say when it went, and the record points at its last backup.
    async fn record_deletion(&self, started_at: Timestamp) -> Disposition {
        let (owner, name) = (&self.msg.repo.owner, &self.msg.repo.name);
        let marker = GoneMarker {
            schema: RECORD_SCHEMA,
            reason: "deleted".into(),
            to: None,
            at: started_at,
        };
        if let Err(e) = self.repo.mark_gone(owner, name, &marker).await {
            return self.retry(&e.into()).await;
        }
        let latest = match self.repo.latest(owner, name).await {
            Ok(latest) => latest,
            Err(e) if e.is_invalid() => {
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return self.retry(&e.into()).await,
        };
        tracing::info!(
            last_backup = latest.as_ref().map(|l| l.backup.key.as_str()),
            "deleted on GitHub; its backups are kept"
        );
        let record = ResultRecord {
            backup: latest.map(|l| l.backup),
            note: Some("deleted on GitHub; its backups are kept".into()),
            ..ResultRecord::of_job(
                self.msg,
                Outcome::Unchanged,
                self.lease.receive_count,
                started_at,
            )
        };
        self.succeed(record).await
    }

    /// A moved repository's old name says where it went (its backups stay there).
    async fn mark_moved(&self, from: &str) {
        let Some((owner, name)) = from.split_once('/') else {
            return;
        };
        let marker = GoneMarker {
            schema: RECORD_SCHEMA,
            reason: "moved".into(),
            to: Some(self.msg.repo.full_name()),
            at: Timestamp::now(),
        };
        if let Err(e) = self.repo.mark_gone(owner, name, &marker).await {
            tracing::warn!(from, error = %e, "could not mark the old name as moved");
        }
    }

    /// Points `latest.json` at a new data snapshot when git was unchanged.
    async fn move_latest_data(&self, index: String) {
        if let Err(e) = self
            .repo
            .set_latest_data(&self.msg.repo.owner, &self.msg.repo.name, &index)
            .await
        {
            tracing::warn!(error = %e, "could not move latest.json to the new data");
        }
    }

    #[tracing::instrument(name = "record", skip_all)]
    async fn write_record(
        &self,
        record: &ResultRecord,
    ) -> Result<Option<ResultRecord>, BackupError> {
        Ok(self.repo.commit_record(record).await?)
    }

    async fn fail(&self, error: BackupError, started_at: Timestamp) -> Disposition {
        let class = error.class();
        let attempt = self.lease.receive_count;
        let max = self.shared.cfg.retry.max_attempts;
        if class.is_retryable() && attempt < max {
            tracing::warn!(error = %error, attempt, max_attempts = max, "attempt failed; will retry");
            return self.retry(&error).await;
        }
        tracing::error!(error = %error, attempt, permanent = !class.is_retryable(), "backup failed");
        tracing::Span::current().record("otel.status_message", error.to_string());
        let record = ResultRecord {
            error: Some(FailureInfo::from_error(&error)),
            ..ResultRecord::of_job(self.msg, Outcome::Failed, attempt, started_at)
        };
        match self.write_record(&record).await {
            // Without a durable record the message must not leave the queue.
            Err(e) => return self.retry(&e).await,
            Ok(Some(_)) => {
                tracing::info!("another delivery already recorded this repository");
                return self.ack(Disposition::Skipped).await;
            }
            Ok(None) => {}
        }
        self.shared.progress.finished(true, 0);
        if class.is_retryable() {
            // Out of attempts: keep the message for an operator to redrive.
            dead_letter(
                self.shared,
                self.lease,
                &format!("failed after {attempt} attempts: {error}"),
            )
            .await
        } else {
            self.ack(Disposition::Recorded(Outcome::Failed)).await
        }
    }

    async fn retry(&self, error: &BackupError) -> Disposition {
        let asked = match error.class() {
            ErrorClass::Retryable { after } => after,
            ErrorClass::Permanent => None,
        };
        let delay = self.shared.cfg.retry.delay(self.lease.receive_count, asked);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "job goes back on the queue"
        );
        if let Err(e) = self.shared.queue.retry_later(self.lease, delay).await {
            tracing::warn!(error = %e, "could not delay the message; it reappears after its visibility timeout");
        }
        Disposition::Retrying
    }

    async fn ack(&self, done: Disposition) -> Disposition {
        match self.shared.queue.ack(self.lease).await {
            Ok(()) => done,
            Err(e) => {
                // The work is recorded; a redelivery will see the record and skip.
                tracing::warn!(error = %e, "could not delete the message");
                done
            }
        }
    }
}

/// Puts a message back after `delay` (zero for a job cancelled at shutdown).
pub(crate) async fn release(shared: &Shared, lease: &Lease, delay: Duration) {
    if let Err(e) = shared.queue.retry_later(lease, delay).await {
        tracing::warn!(message_id = %lease.message_id, error = %e, "could not release the message");
    }
}
