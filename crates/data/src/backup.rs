//! A snapshot's reading, writing and indexing: one uniform loop over a table of kinds.

use std::time::Duration;

use jiff::Timestamp;
use repovault_core::ports::source::RepoData;
use repovault_core::{DataHint, DataIndex, DataSummary};
use repovault_repository::{RepoError, Repository};

use crate::kinds::{Kind, ORG_KINDS, REPO_KINDS};
use crate::plan::{full_read_due, plan};
use crate::read::{Api, read};
use crate::snapshot::{Outcome, Settled, Snapshot, settle};
use crate::subject::Subject;
use crate::{DataError, attachments};

/// Backs up `owner/name`'s data beyond git on top of `previous_key` (the snapshot
/// `latest.json` names). Returns the summary for the record: its `index` is the new
/// snapshot's when anything changed, else the previous one, which stands. With a
/// `hint` (from the organization's event feed), the kinds it does not name keep what
/// the previous snapshot settled, unasked, unless a full read is due.
///
/// What GitHub answers costs the kind concerned only (see the crate's docs). An error
/// is a store that could not be read or written; no file this call wrote is then
/// left behind (unless the store fails to delete it too).
pub async fn back_up_data(
    repo: &Repository<'_>,
    source: &dyn RepoData,
    (owner, name): (&str, &str),
    previous_key: Option<&str>,
    hint: Option<&DataHint>,
    full_every: Duration,
    now: Timestamp,
) -> Result<DataSummary, DataError> {
    let previous = match previous_key {
        Some(key) => repo
            .data_index(owner, name, key)
            .await?
            .map(|index| (key.to_owned(), index)),
        None => None,
    };
    let subject = Subject::Repo { owner, name };
    let rules = Rules {
        full_every,
        now,
        hint,
    };
    let (summary, _) = back_up(repo, source, subject, REPO_KINDS, previous, rules).await?;
    Ok(summary)
}

/// An organization's own data, once per run: its settings (what the token may read of
/// them), members and teams, as zstd JSON Lines under `orgs/<org>/data/<stamp>/`,
/// read like a repository's; `orgs/<org>/latest.json` names the newest snapshot.
pub async fn back_up_org_data(
    repo: &Repository<'_>,
    source: &dyn RepoData,
    org: &str,
    full_every: Duration,
    now: Timestamp,
) -> Result<DataSummary, DataError> {
    let previous = match repo.org_latest(org).await? {
        Some(key) => repo
            .org_data_index(org, &key)
            .await?
            .map(|index| (key, index)),
        None => None,
    };
    let subject = Subject::Org(org);
    let rules = Rules {
        full_every,
        now,
        hint: None,
    };
    let (summary, written) = back_up(repo, source, subject, ORG_KINDS, previous, rules).await?;
    if let (true, Some(index)) = (written, &summary.index) {
        repo.set_org_latest(org, index).await?;
    }
    Ok(summary)
}

/// When a snapshot is taken and what it may leave unasked.
struct Rules<'a> {
    full_every: Duration,
    now: Timestamp,
    hint: Option<&'a DataHint>,
}

/// Reads `kinds` of `subject` on top of `previous` (its index key and index) and
/// writes the snapshot, unless nothing changed. Returns its summary and whether a new
/// index was written.
async fn back_up(
    repo: &Repository<'_>,
    source: &dyn RepoData,
    subject: Subject<'_>,
    kinds: &[Kind],
    previous: Option<(String, DataIndex)>,
    Rules {
        full_every,
        now,
        hint,
    }: Rules<'_>,
) -> Result<(DataSummary, bool), DataError> {
    let layout = repo.layout();
    // Two snapshots never share, and overwrite, a directory.
    let now = repo
        .store()
        .free_second(now, |at| subject.index(layout, at))
        .await
        .map_err(RepoError::from)?;
    let (previous_key, previous) = previous.unzip();
    let full = full_read_due(previous.as_ref(), now, full_every);
    let mut api = Api::new(source);
    let mut snapshot = Snapshot::new(previous, now, full);
    if let Some(hint) = hint {
        snapshot.hint(&hint.kinds);
    }
    // Attachments are a repository's, on GitHub's web origin.
    let scope = match subject {
        Subject::Repo { owner, name } => source
            .web_url()
            .and_then(|u| url::Url::parse(&u).ok())
            .map(|web| attachments::Scope { owner, name, web }),
        Subject::Org(_) => None,
    };
    let indexed = async {
        read_kinds(
            repo,
            &mut api,
            subject,
            kinds,
            &mut snapshot,
            scope.as_ref(),
        )
        .await?;
        if let Some(attachments::Scope { owner, name, .. }) = scope {
            let listed = attachments::store(
                source,
                repo,
                (owner, name),
                snapshot.named_attachments(),
                snapshot.attachments(),
                snapshot.full,
            )
            .await?;
            snapshot.set_attachments(listed);
        }
        if snapshot.is_unchanged() {
            return Ok(None);
        }
        let key = subject.index(layout, now);
        repo.put_data_index(&key, &snapshot.index(&subject.name()))
            .await?;
        Ok::<_, DataError>(Some(key))
    }
    .await;
    let indexed = match indexed {
        Ok(indexed) => indexed,
        Err(e) => {
            discard(repo, snapshot.written()).await;
            return Err(e);
        }
    };
    let written = indexed.is_some();
    let index = indexed.or(previous_key);
    let counts = (api.requests, api.not_modified, api.graphql_queries);
    let summary = snapshot.summary(index, counts, source.rate_remaining());
    Ok((summary, written))
}

/// Reads every kind of `kinds` into `snapshot`, writing the files of those read anew
/// and noting the attachments their text names (with a `scope` to look in).
async fn read_kinds(
    repo: &Repository<'_>,
    api: &mut Api<'_>,
    subject: Subject<'_>,
    kinds: &[Kind],
    snapshot: &mut Snapshot,
    scope: Option<&attachments::Scope<'_>>,
) -> Result<(), DataError> {
    let base = subject.api_base();
    // Previous files this process may open (sealed ones need an identity).
    let readable = !repo.keys().seals() || repo.keys().opens();
    for kind in kinds {
        let quiet = match snapshot.stopped() {
            None => snapshot.quiet(kind.name),
            Some(_) => None,
        };
        let outcome = match (snapshot.stopped(), quiet) {
            (Some(why), _) => Outcome::Failed(format!("not read: {why}")),
            (None, Some(quiet)) => quiet,
            (None, None) => {
                let plan = plan(
                    kind,
                    &base,
                    snapshot.previous.as_ref(),
                    snapshot.full,
                    readable,
                );
                let read = read(api, repo, &subject, kind, plan, snapshot).await;
                match settle(kind.access, kind.read.is_graphql(), read)? {
                    Settled::Outcome(outcome) => {
                        snapshot.answered(false);
                        outcome
                    }
                    Settled::Failing(error) => {
                        snapshot.answered(true);
                        Outcome::Failed(error)
                    }
                    Settled::Stop(why) => {
                        snapshot.stop(why.clone());
                        Outcome::Failed(why)
                    }
                }
            }
        };
        match outcome {
            Outcome::Read {
                items,
                etag,
                assets,
            } => {
                if let Some(scope) = scope {
                    attachments::find(&items, scope, snapshot.found());
                }
                let key = subject.file(repo.layout(), snapshot.now, kind.name);
                snapshot.wrote(&key);
                let file = repo.write_items(&key, &items, etag).await?;
                let held = kinds.iter().any(|k| k.read.reads_from() == Some(kind.name));
                snapshot.read(kind.name, file, assets, held.then_some(items));
            }
            Outcome::Unchanged => snapshot.unchanged(kind.name),
            Outcome::NotPermitted => snapshot.not_permitted(kind.name),
            Outcome::Failed(error) => snapshot.failed(kind.name, error),
        }
    }
    Ok(())
}

/// Removes the files of a snapshot that cannot be indexed: no index would name them.
/// What cannot be removed (the store is failing) is logged; nothing ever reads it.
async fn discard(repo: &Repository<'_>, keys: &[String]) {
    for key in keys {
        if let Err(e) = repo.store().delete(key).await {
            tracing::warn!(key, error = %e, "could not remove a data file no index names");
        }
    }
}
