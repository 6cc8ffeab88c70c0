//! The backup job: one delivery of a job message, from parse to commit. The commit
//! point is the result record (written once); `latest.json` moves after it; the
//! message is acked last. How a failure settles the message (retry, dead-letter,
//! failed record) is decided here and carried out by the runner's [`Delivery`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use repovault_core::config::GitSettings;
use repovault_core::{
    ChainHead, Classify, Clock, DataSummary, ErrorClass, FailureInfo, GoneMarker, JOB_SCHEMA,
    JobMessage, LatestPointer, MessageError, Outcome, Progress, RECORD_SCHEMA, RepoEvent,
    ResultRecord,
};
use repovault_data::back_up_data;
use repovault_git::GitError;
use repovault_repository::Repository;
use repovault_telemetry::{kv, metrics, propagation};
use tracing::Instrument;

use crate::allow::{AllowList, GitHubAccess};
use crate::backup::{BackupContext, back_up};
use crate::error::BackupError;
use crate::remote::Git;
use crate::runner::{Delivery, Disposition, Handler};

/// What every backup job of a worker shares.
pub(crate) struct BackupJob {
    pub allow: AllowList,
    pub progress: Arc<Progress>,
    pub work_dir: PathBuf,
    pub git: GitSettings,
    pub data_full_every: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Handler for BackupJob {
    async fn handle(&self, delivery: &Delivery) -> Disposition {
        let lease = &delivery.lease;
        let msg = match JobMessage::parse(&lease.body) {
            Ok(msg) => msg,
            Err(MessageError::UnsupportedSchema { found }) if found > u64::from(JOB_SCHEMA) => {
                return newer_schema(delivery, found).await;
            }
            Err(e) => {
                tracing::error!(message_id = %lease.message_id, error = %e, "malformed job message; moving it to the dead-letter queue");
                metrics().dead_lettered.add(1, &[kv("reason", "malformed")]);
                return delivery.dead_letter(&e.to_string()).await;
            }
        };
        let allowed = match self.allow.check(&msg) {
            Ok(allowed) => allowed,
            Err(reason) => {
                tracing::error!(message_id = %lease.message_id, repo = %msg.repo.full_name(), %reason, "refusing job");
                metrics().dead_lettered.add(1, &[kv("reason", "refused")]);
                return delivery.dead_letter(&reason).await;
            }
        };
        let span = job_span(&msg, delivery);
        let started = std::time::Instant::now();
        let disposition = Attempt {
            job: self,
            repo: Repository::new(allowed.store.as_ref(), &msg.target.prefix)
                .with_keys(allowed.keys.clone()),
            github: &allowed.github,
            delivery,
            msg: &msg,
        }
        .run()
        .instrument(span.clone())
        .await;
        measure(&span, disposition, started.elapsed());
        disposition
    }

    /// A job that panicked is retried like any transient fault; on its last delivery
    /// its repository gets a `failed` record saying so (never "missing").
    async fn panicked(&self, delivery: &Delivery, message: String) -> Disposition {
        let reason = format!("the backup panicked: {message}");
        let recorded = match JobMessage::parse(&delivery.lease.body) {
            Ok(msg) => match self.allow.check(&msg) {
                Ok(allowed) => {
                    let span = job_span(&msg, delivery);
                    let attempt = Attempt {
                        job: self,
                        repo: Repository::new(allowed.store.as_ref(), &msg.target.prefix)
                            .with_keys(allowed.keys.clone()),
                        github: &allowed.github,
                        delivery,
                        msg: &msg,
                    };
                    let disposition = attempt
                        .fail(BackupError::Crashed(reason.clone()), self.clock.now())
                        .instrument(span.clone())
                        .await;
                    measure(&span, disposition, Duration::ZERO);
                    return disposition;
                }
                Err(refused) => refused,
            },
            Err(e) => e.to_string(),
        };
        tracing::error!(%recorded, "a panicked job's message cannot be recorded");
        delivery.dead_letter(&reason).await
    }
}

/// The job's span: the planner's span for this job is its parent (one trace per job).
fn job_span(msg: &JobMessage, delivery: &Delivery) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        run = %msg.run_id,
        repo = %msg.repo.full_name(),
        attempt = delivery.attempt(),
        outcome = tracing::field::Empty,
        bytes = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    propagation::continue_from(&span, &msg.trace);
    propagation::record_ids(&span);
    span
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
async fn newer_schema(delivery: &Delivery, found: u64) -> Disposition {
    let attempt = delivery.attempt();
    if delivery.is_last() {
        let reason = format!(
            "unsupported message schema {found} (this worker understands {JOB_SCHEMA}) and no newer worker took it in {attempt} deliveries; upgrade the workers, then redrive it"
        );
        tracing::error!(message_id = %delivery.lease.message_id, %reason, "dead-lettering");
        return delivery.dead_letter(&reason).await;
    }
    tracing::warn!(message_id = %delivery.lease.message_id, schema = found, attempt, max_attempts = delivery.max_attempts(), "message from a newer release; leaving it for a newer worker");
    delivery.retry(ErrorClass::RETRY).await
}

struct Attempt<'a> {
    job: &'a BackupJob,
    repo: Repository<'a>,
    /// The job's git host, its token, and its API for the data beyond git.
    github: &'a GitHubAccess,
    delivery: &'a Delivery,
    msg: &'a JobMessage,
}

impl Attempt<'_> {
    fn now(&self) -> Timestamp {
        self.job.clock.now()
    }

    async fn run(self) -> Disposition {
        let (owner, name) = (&self.msg.repo.owner, &self.msg.repo.name);
        // A redelivery may follow a recorded job whose acknowledgement was lost. A
        // first delivery does not look (a store request a repository a run): a
        // duplicate of a recorded job finds the record at its commit, which keeps
        // the standing record and discards the copy.
        let recorded = match self.delivery.attempt() {
            1 => Ok(None),
            _ => self.repo.record(&self.msg.run_id, owner, name).await,
        };
        match recorded {
            Ok(Some(record)) if record.outcome != Outcome::Failed => {
                tracing::info!(
                    outcome = ?record.outcome,
                    "already recorded for this run; skipping the redelivery"
                );
                return self.delivery.ack(Disposition::Skipped).await;
            }
            Ok(_) => {}
            Err(e) if e.is_invalid() => tracing::warn!(
                error = %e,
                "this run's record of the repository is unreadable: backing it up again and replacing the record"
            ),
            Err(e) => return self.delivery.retry(e.class()).await,
        }
        let started_at = self.now();
        if self.msg.event == Some(RepoEvent::Deleted) {
            // A webhook's word is not enough to mark a repository gone: GitHub is asked.
            match self.absent(&self.msg.repo.clone_url).await {
                Ok(true) => return self.record_deletion(started_at).await,
                Ok(false) => tracing::warn!(
                    "a deletion event for a repository GitHub still serves: backing it up instead"
                ),
                Err(e) => return self.fail(e, started_at).await,
            }
        }
        if let Some(first) = self
            .delivery
            .lease
            .first_received
            .filter(|_| self.delivery.attempt() > 1)
        {
            // An earlier delivery died (its lease expired): what it left goes.
            match self
                .repo
                .clean_up_attempt(owner, name, &self.msg.run_id, first)
                .await
            {
                Ok(left) => {
                    if left.uploads > 0 {
                        tracing::info!(
                            aborted = left.uploads,
                            "cleaned up unfinished uploads of an earlier attempt"
                        );
                    }
                    if left.backups > 0 {
                        tracing::info!(
                            removed = left.backups,
                            "removed a backup an earlier attempt wrote but never recorded"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not clean up after an earlier attempt"),
            }
        }
        let result = async {
            let git = Git::start(self.github).await?;
            let ctx = BackupContext {
                repo: &self.repo,
                git: &git,
                work_dir: &self.job.work_dir,
                settings: self.job.git,
                clock: self.job.clock.as_ref(),
            };
            let done = back_up(&ctx, self.msg, self.delivery.attempt(), started_at).await?;
            let previous = done.previous_data.clone();
            let record = self.with_data(done.record, done.previous_data).await;
            Ok::<_, BackupError>((record, done.chain, previous))
        }
        .await;
        match result {
            Ok((record, chain, previous_data)) => {
                if let Some(RepoEvent::Moved { from }) = &self.msg.event {
                    self.mark_moved(from).await;
                }
                self.succeed(record, chain, previous_data).await
            }
            Err(e) => self.fail(e, started_at).await,
        }
    }

    /// `record` with the repository's data beyond git backed up on top of the
    /// `previous` snapshot. A failure there is the record's note, never the backup's
    /// failure: the previous snapshot stands and the next backup tries again.
    #[tracing::instrument(name = "data", skip_all)]
    async fn with_data(&self, mut record: ResultRecord, previous: Option<String>) -> ResultRecord {
        let Some(source) = self
            .github
            .data
            .as_deref()
            .filter(|_| self.msg.options.metadata)
        else {
            return record;
        };
        let (owner, name) = (&self.msg.repo.owner, &self.msg.repo.name);
        // The feed's word counts on top of the snapshot the hint was given for only.
        let hint = self
            .msg
            .data_hint
            .as_ref()
            .filter(|hint| previous.as_deref() == Some(hint.snapshot.as_str()))
            .filter(|_| !self.msg.options.full);
        if hint.is_some_and(|hint| hint.kinds.is_empty()) {
            tracing::info!(
                "data beyond git: no activity in the organization's event feed since a complete snapshot; nothing asked"
            );
            record.data = Some(DataSummary {
                index: previous,
                quiet: true,
                ..Default::default()
            });
            return record;
        }
        let summary = back_up_data(
            &self.repo,
            source,
            (owner, name),
            previous.as_deref(),
            hint,
            self.job.data_full_every,
            self.now(),
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
                    error: Some(e.to_string()),
                    ..Default::default()
                }
            }
        });
        record
    }

    /// Commits `record` (and `chain`, the chain of the backup it names, for
    /// `latest.json`; `previous_data`, the data snapshot `latest.json` named when the
    /// job began: when the record names it too, `latest.json` is left as it is).
    async fn succeed(
        &self,
        record: ResultRecord,
        chain: Option<ChainHead>,
        previous_data: Option<String>,
    ) -> Disposition {
        let outcome = record.outcome;
        let (owner, name) = (&self.msg.repo.owner, &self.msg.repo.name);
        match self.write_record(&record).await {
            Err(e) => return self.delivery.retry(e.class()).await,
            Ok(Some(standing)) => {
                // A duplicate delivery finished first: its backup stands, ours goes. Only
                // a backup this attempt wrote is ours: an unchanged record names the
                // repository's existing backup.
                if let Some(ours) = record
                    .backup
                    .as_ref()
                    .filter(|_| outcome == Outcome::Ok)
                    .filter(|ours| {
                        standing
                            .backup
                            .as_ref()
                            .is_none_or(|theirs| theirs.key != ours.key)
                    })
                {
                    for key in [&ours.key, &ours.manifest_key] {
                        if let Err(e) = self.repo.store().delete(key).await {
                            tracing::warn!(key, error = %e, "could not remove a duplicate backup");
                        }
                    }
                }
                tracing::info!(
                    "a duplicate delivery recorded this repository first; discarded this copy"
                );
                return self.delivery.ack(Disposition::Skipped).await;
            }
            Ok(None) => {}
        }
        if let (Outcome::Ok, Some(backup), Some(digest)) =
            (outcome, &record.backup, &record.refs_digest)
        {
            // Backed up under this name: whatever an earlier event said, it is on GitHub.
            if let Err(e) = self.repo.clear_gone(owner, name).await {
                tracing::warn!(error = %e, "could not remove gone.json");
            }
            let latest = LatestPointer {
                schema: RECORD_SCHEMA,
                backup: backup.clone(),
                refs_digest: digest.clone(),
                wiki_refs_digest: record.wiki_refs_digest.clone(),
                created_at: record.finished_at,
                run_id: record.run_id.clone(),
                data: record.data.as_ref().and_then(|d| d.index.clone()),
                chain,
            };
            if let Err(e) = self.repo.set_latest(owner, name, &latest).await {
                // The record stands; the next run simply does not skip this repository.
                tracing::warn!(error = %e, "could not move latest.json");
            }
        } else if let Some(index) = record.data.as_ref().and_then(|d| d.index.as_deref())
            && previous_data.as_deref() != Some(index)
            && let Err(e) = self.repo.set_latest_data(owner, name, index).await
        {
            tracing::warn!(error = %e, "could not move latest.json to the new data");
        }
        let bytes = record.backup.as_ref().map_or(0, |a| a.size);
        tracing::Span::current().record("bytes", bytes);
        tracing::info!(?outcome, bytes, refs = record.refs_count, wiki = ?record.wiki, "backed up");
        self.job.progress.finished(false, bytes);
        self.delivery.ack(Disposition::Recorded(outcome)).await
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
            return self.delivery.retry(e.class()).await;
        }
        let latest = match self.repo.latest(owner, name).await {
            Ok(latest) => latest,
            Err(e) if e.is_invalid() => {
                tracing::warn!(error = %e, "latest.json is unreadable");
                None
            }
            Err(e) => return self.delivery.retry(e.class()).await,
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
                self.delivery.attempt(),
                started_at,
                self.now(),
            )
        };
        self.succeed(record, None, None).await
    }

    /// Whether GitHub no longer serves the repository at `url` (not found, or
    /// redirected elsewhere: a renamed repository's old name).
    async fn absent(&self, url: &str) -> Result<bool, BackupError> {
        let git = Git::start(self.github).await?;
        // Listing the refs asks the server even when its capabilities are cached.
        let listed = async { git.connect(url).await?.refs(&git).await };
        match listed.await {
            Ok(_) => Ok(false),
            Err(BackupError::Git(GitError::NotFound { .. } | GitError::Redirected { .. })) => {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// A moved repository's old name says where it went (its backups stay there), once
    /// GitHub no longer serves the old name.
    async fn mark_moved(&self, from: &str) {
        let Some((owner, name)) = from.split_once('/') else {
            return;
        };
        let source = &self.msg.repo;
        let Some(base) = source
            .clone_url
            .strip_suffix(".git")
            .unwrap_or(&source.clone_url)
            .strip_suffix(&source.full_name())
        else {
            return;
        };
        match self.absent(&format!("{base}{from}.git")).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    from,
                    "a move event whose old name GitHub still serves: not marked moved"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(from, error = %e, "could not tell whether the old name is gone: not marked moved");
                return;
            }
        }
        let marker = GoneMarker {
            schema: RECORD_SCHEMA,
            reason: "moved".into(),
            to: Some(self.msg.repo.full_name()),
            at: self.now(),
        };
        if let Err(e) = self.repo.mark_gone(owner, name, &marker).await {
            tracing::warn!(from, error = %e, "could not mark the old name as moved");
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
        let attempt = self.delivery.attempt();
        let max = self.delivery.max_attempts();
        if class.is_retryable() && !self.delivery.is_last() {
            tracing::warn!(error = %error, attempt, max_attempts = max, "attempt failed; will retry");
            return self.delivery.retry(class).await;
        }
        tracing::error!(error = %error, attempt, permanent = !class.is_retryable(), "backup failed");
        tracing::Span::current().record("otel.status_message", error.to_string());
        let record = ResultRecord {
            error: Some(FailureInfo::from_error(&error)),
            ..ResultRecord::of_job(self.msg, Outcome::Failed, attempt, started_at, self.now())
        };
        match self.write_record(&record).await {
            // Without a durable record the message must not leave the queue.
            Err(e) => return self.delivery.retry(e.class()).await,
            Ok(Some(_)) => {
                tracing::info!("another delivery already recorded this repository");
                return self.delivery.ack(Disposition::Skipped).await;
            }
            Ok(None) => {}
        }
        self.job.progress.finished(true, 0);
        if class.is_retryable() {
            // Out of attempts: keep the message for an operator to redrive.
            self.delivery
                .dead_letter(&format!("failed after {attempt} attempts: {error}"))
                .await
        } else {
            self.delivery
                .ack(Disposition::Recorded(Outcome::Failed))
                .await
        }
    }
}
