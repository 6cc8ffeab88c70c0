//! The job message: what the planner asks a worker to back up (contract, `schema: 1`).

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Invalid, RunId};

/// The job message schema this build writes and understands.
pub const JOB_SCHEMA: u32 = 1;

/// A repository as the source describes it; carried in the job message so a worker
/// needs no API call to back it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
    pub id: u64,
    pub clone_url: String,
    /// `None` when the source does not report one.
    pub default_branch: Option<String>,
    pub pushed_at: Option<Timestamp>,
    /// Size as reported by the source, in KiB (GitHub's `size`).
    pub size_kb: u64,
    pub private: bool,
    pub archived: bool,
    pub fork: bool,
    pub has_wiki: bool,
    #[serde(default)]
    pub topics: Vec<String>,
}

impl RepoRef {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The wiki's clone URL: GitHub serves it beside the repository as `<name>.wiki.git`.
    pub fn wiki_url(&self) -> String {
        let base = self
            .clone_url
            .strip_suffix(".git")
            .unwrap_or(&self.clone_url);
        format!("{base}.wiki.git")
    }

    /// Checks the fields that end up in object keys and paths; the error names the
    /// field (`repo.owner`, `repo.name`).
    pub fn validate(&self) -> Result<(), Invalid> {
        check_login("repo.owner", &self.owner)?;
        check_repo_name("repo.name", &self.name)?;
        if let Some(branch) = &self.default_branch
            && crate::check_ref_name(&format!("refs/heads/{branch}")).is_err()
        {
            return Err(Invalid(format!(
                "repo.default_branch: {} is not a branch name",
                quoted(branch)
            )));
        }
        if !(self.clone_url.starts_with("https://") || self.clone_url.starts_with("http://")) {
            return Err(Invalid(format!(
                "repo.clone_url: {} is not an http(s) URL",
                quoted(&self.clone_url)
            )));
        }
        Ok(())
    }
}

/// At most 64 characters of `value`, escaped (no control character reaches a log
/// or a terminal), in quotes.
fn quoted(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().nth(64).is_some() {
        out.push_str("...");
    }
    format!("\"{out}\"")
}

/// Whether `value` is a GitHub login; see [`check_login`].
pub(crate) fn is_login(value: &str) -> bool {
    let (login, shortcode) = match value.split_once('_') {
        Some((login, code)) => (login, Some(code)),
        None => (value, None),
    };
    (1..=39).contains(&login.len())
        && !login.starts_with('-')
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && shortcode.is_none_or(|c| {
            (1..=32).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// A GitHub login (a user or an organization): 1 to 39 ASCII letters, digits and
/// hyphens, not starting with a hyphen; an Enterprise Managed User's login adds
/// `_<shortcode>` (letters and digits). Owner names become object keys and
/// directories, so nothing else is accepted.
pub fn check_login(field: &str, value: &str) -> Result<(), Invalid> {
    if is_login(value) {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{field}: {} is not a GitHub login (1 to 39 letters, digits or hyphens, not starting with a hyphen)",
            quoted(value)
        )))
    }
}

/// A GitHub repository name: 1 to 100 ASCII letters, digits, `.`, `_` and `-`, and
/// never `.` or `..` (names become object keys and directories).
pub fn check_repo_name(field: &str, value: &str) -> Result<(), Invalid> {
    let ok = (1..=100).contains(&value.len())
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{field}: {} is not a GitHub repository name (1 to 100 letters, digits, '.', '_' or '-'; not '.' or '..')",
            quoted(value)
        )))
    }
}

impl RepoEvent {
    /// Checks the names the event carries (`event.from` is `owner/name`).
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            RepoEvent::Deleted => Ok(()),
            RepoEvent::Moved { from } => {
                let Some((owner, name)) = from.split_once('/') else {
                    return Err(Invalid(format!(
                        "event.from: {} is not OWNER/NAME",
                        quoted(from)
                    )));
                };
                check_login("event.from", owner)?;
                check_repo_name("event.from", name)
            }
        }
    }
}

/// What to include besides the repository's refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// Mirror the wiki when the repository has one.
    pub wiki: bool,
    /// Export the repository's metadata (`metadata/*.json`) into the archive.
    pub metadata: bool,
    /// Fetch Git LFS objects too.
    pub lfs: bool,
    /// Archive even if the refs equal the latest backup's (`--full`).
    #[serde(default)]
    pub full: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            wiki: true,
            metadata: true,
            lfs: false,
            full: false,
        }
    }
}

/// Where a job's backups go: a store and a key prefix inside it.
///
/// `store` is `file:///absolute/path` or `s3://bucket`; `prefix` is empty or ends in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub store: String,
    pub prefix: String,
}

/// The kind of store a [`Target`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Local(PathBuf),
    S3 { bucket: String },
}

impl Target {
    /// Parses a user-facing target: `s3://bucket[/prefix]`, `file:///path` or a path.
    /// Relative paths are made absolute against `cwd`.
    pub fn parse(url: &str, cwd: &Path) -> Result<Target, Invalid> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Invalid("target is empty".into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let bucket_ok = (3..=63).contains(&bucket.len())
                && bucket.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-')
                });
            if !bucket_ok {
                return Err(Invalid(format!("invalid S3 bucket name {bucket:?}")));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == ".." || part == ".") {
                return Err(Invalid(format!("invalid prefix {prefix:?}")));
            }
            return Ok(Target {
                store: format!("s3://{bucket}"),
                prefix: normalize_prefix(prefix),
            });
        }
        if let Some((scheme, _)) = url.split_once("://")
            && scheme != "file"
        {
            return Err(Invalid(format!(
                "unsupported target scheme {scheme:?}: use a path, file:///path or s3://bucket/prefix"
            )));
        }
        let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
        let absolute = normalize(&cwd.join(path));
        Ok(Target {
            store: format!("file://{}", absolute.display()),
            prefix: String::new(),
        })
    }

    pub fn location(&self) -> StoreLocation {
        match self.store.strip_prefix("s3://") {
            Some(bucket) => StoreLocation::S3 {
                bucket: bucket.to_owned(),
            },
            None => StoreLocation::Local(PathBuf::from(
                self.store.strip_prefix("file://").unwrap_or(&self.store),
            )),
        }
    }
}

/// A key prefix in its one form: empty, or without a leading `/` and ending in one.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// Lexically resolves `.` and `..` (the directory may not exist yet).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.store)
        } else {
            write!(f, "{}/{}", self.store, self.prefix)
        }
    }
}

/// One job message: back up `repo` for `run_id` into `target`.
///
/// Fields added within one `schema` are optional: a worker ignores fields it does not
/// know, so a message from the next release is understood by this one during a
/// rolling deploy. Only a change a worker must not ignore raises `schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub schema: u32,
    pub run_id: RunId,
    /// The name of the configured job that planned this repository.
    pub job: String,
    pub target: Target,
    pub repo: RepoRef,
    pub options: JobOptions,
    /// The W3C trace context (`traceparent`, `tracestate`) of the planner's span for
    /// this job: the worker continues the trace. Empty without tracing.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub trace: std::collections::BTreeMap<String, String>,
    /// What happened to the repository on GitHub, when a webhook says (`None`: back it
    /// up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<RepoEvent>,
    /// Which kinds of the data beyond git may have changed, when the organization's
    /// event feed says (`None`: probe every kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hint: Option<DataHint>,
}

/// What the organization's event feed showed of a repository since the run the
/// planner read it for before, whose backup of the repository completed its data:
/// activity in `kinds` only (none: nothing to ask GitHub). Kinds the feed never shows
/// (labels, settings, alerts…) are probed every `metadata.probe-every` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataHint {
    /// Kind names (`issues`, `pulls`, `releases`…), sorted.
    pub kinds: Vec<String>,
    /// The data snapshot (its index key) that run completed: the hint holds on top of
    /// it only (a later run, a webhook's, may have left another, failed kinds and all).
    pub snapshot: String,
}

impl DataHint {
    /// At most this many kinds (more than any table has).
    const MAX_KINDS: usize = 64;

    /// Checks the kind names' shape (lowercase letters and hyphens); the worker
    /// ignores names it does not know.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.kinds.len() > Self::MAX_KINDS {
            return Err(Invalid(format!(
                "data_hint.kinds: {} kinds, at most {} expected",
                self.kinds.len(),
                Self::MAX_KINDS
            )));
        }
        match self.kinds.iter().find(|k| {
            !(1..=64).contains(&k.len()) || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        }) {
            Some(bad) => Err(Invalid(format!(
                "data_hint.kinds: {} is not a kind name",
                quoted(bad)
            ))),
            None if self.snapshot.len() > 1024 || self.snapshot.chars().any(char::is_control) => {
                Err(Invalid("data_hint.snapshot: not an index key".into()))
            }
            None => Ok(()),
        }
    }
}

/// Something that happened to a repository on GitHub, from a `repository` webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RepoEvent {
    /// Deleted: nothing to fetch; its backups are kept and the deletion is recorded.
    Deleted,
    /// Renamed or transferred from `from` (`owner/name`): backed up under the new
    /// name; the old name's backups say where it went.
    Moved { from: String },
}

/// Why a queue message could not be turned into a job. Always permanent: the message
/// goes to the dead-letter queue with this text.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("message body is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("message has no numeric `schema` field")]
    NoSchema,
    #[error("unsupported message schema {found}; this worker understands schema {JOB_SCHEMA}")]
    UnsupportedSchema { found: u64 },
    #[error("invalid job message: {0}")]
    Invalid(String),
}

impl JobMessage {
    pub fn new(
        run_id: RunId,
        job: String,
        target: Target,
        repo: RepoRef,
        options: JobOptions,
    ) -> Self {
        JobMessage {
            schema: JOB_SCHEMA,
            run_id,
            job,
            target,
            repo,
            options,
            trace: Default::default(),
            event: None,
            data_hint: None,
        }
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job messages always serialise")
    }

    /// Parses and validates a message body, checking the schema before the shape so an
    /// unknown version is reported as such.
    pub fn parse(body: &str) -> Result<JobMessage, MessageError> {
        let value: serde_json::Value = serde_json::from_str(body).map_err(MessageError::NotJson)?;
        let schema = value
            .get("schema")
            .and_then(serde_json::Value::as_u64)
            .ok_or(MessageError::NoSchema)?;
        if schema != u64::from(JOB_SCHEMA) {
            return Err(MessageError::UnsupportedSchema { found: schema });
        }
        let message: JobMessage =
            serde_json::from_value(value).map_err(|e| MessageError::Invalid(e.to_string()))?;
        message.validate()?;
        Ok(message)
    }

    /// Checks every name the message carries (the repository's owner and name, a
    /// moved repository's old name) with GitHub's rules: they become object keys,
    /// directories and API paths. The error names the field.
    pub fn validate(&self) -> Result<(), MessageError> {
        self.repo
            .validate()
            .map_err(|e| MessageError::Invalid(e.0))?;
        if let Some(event) = &self.event {
            event.validate().map_err(|e| MessageError::Invalid(e.0))?;
        }
        if let Some(hint) = &self.data_hint {
            hint.validate().map_err(|e| MessageError::Invalid(e.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn repo(owner: &str, name: &str) -> RepoRef {
        RepoRef {
            owner: owner.into(),
            name: name.into(),
            id: 7,
            clone_url: format!("https://github.com/{owner}/{name}.git"),
            default_branch: Some("main".into()),
            pushed_at: None,
            size_kb: 10,
            private: false,
            archived: false,
            fork: false,
            has_wiki: true,
            topics: vec![],
        }
    }

    fn message() -> JobMessage {
        JobMessage::new(
            "run-1".parse().unwrap(),
            "acme".into(),
            Target::parse("s3://bucket/gh", Path::new("/")).unwrap(),
            repo("acme", "api"),
            JobOptions::default(),
        )
    }

    #[test]
    fn round_trips() {
        let m = message();
        assert_eq!(JobMessage::parse(&m.to_body()).unwrap(), m);
    }

    #[test]
    fn rejects_garbage_unknown_schema_and_bad_names() {
        assert!(matches!(
            JobMessage::parse("{not json"),
            Err(MessageError::NotJson(_))
        ));
        assert!(matches!(
            JobMessage::parse("{}"),
            Err(MessageError::NoSchema)
        ));
        let mut v: serde_json::Value = serde_json::from_str(&message().to_body()).unwrap();
        v["schema"] = 99.into();
        let err = JobMessage::parse(&v.to_string()).unwrap_err();
        assert!(
            matches!(err, MessageError::UnsupportedSchema { found: 99 }),
            "{err}"
        );
        let mut m = message();
        m.repo.name = "..".into();
        assert!(matches!(
            JobMessage::parse(&m.to_body()),
            Err(MessageError::Invalid(_))
        ));
    }

    /// The error of parsing `m`, which must be refused as invalid.
    fn invalid(m: &JobMessage) -> String {
        match JobMessage::parse(&m.to_body()) {
            Err(MessageError::Invalid(why)) => why,
            other => panic!("{m:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn every_name_in_a_message_is_checked_and_the_error_names_its_field() {
        for owner in [
            "../x",
            "acme/evil",
            "acme\n",
            "-acme",
            "a.b",
            "",
            &"a".repeat(40),
        ] {
            let mut m = message();
            m.repo.owner = owner.into();
            let why = invalid(&m);
            assert!(why.contains("repo.owner"), "{owner:?}: {why}");
        }
        for name in [
            "../x",
            "a/b",
            "..",
            ".",
            "a\u{7}b",
            "a b",
            "x\n",
            &"n".repeat(101),
        ] {
            let mut m = message();
            m.repo.name = name.into();
            let why = invalid(&m);
            assert!(why.contains("repo.name"), "{name:?}: {why}");
        }
        for branch in ["a..b", "x\n", "a b", "main.lock", "../x"] {
            let mut m = message();
            m.repo.default_branch = Some(branch.into());
            let why = invalid(&m);
            assert!(why.contains("repo.default_branch"), "{branch:?}: {why}");
        }
        for from in [
            "../x", "acme", "acme/a/b", "acme/..", "ac me/x", "acme/x\n", "/x",
        ] {
            let mut m = message();
            m.event = Some(RepoEvent::Moved { from: from.into() });
            let why = invalid(&m);
            assert!(why.contains("event.from"), "{from:?}: {why}");
        }
        for kinds in [
            vec!["../x".to_owned()],
            vec!["Issues".to_owned()],
            vec![String::new()],
            vec!["issues".to_owned(); 65],
        ] {
            let mut m = message();
            m.data_hint = Some(DataHint {
                kinds,
                snapshot: "repos/acme/api/data/20261201T100000Z/index.json".into(),
            });
            let why = invalid(&m);
            assert!(why.contains("data_hint.kinds"), "{why}");
        }
        let mut m = message();
        m.data_hint = Some(DataHint {
            kinds: vec!["issue-comments".into(), "issues".into()],
            snapshot: "repos/acme/api/data/20261201T100000Z/index.json".into(),
        });
        assert_eq!(JobMessage::parse(&m.to_body()).unwrap(), m);
        // GitHub's own names pass, Enterprise Managed Users' logins included.
        for (owner, name, from) in [
            ("acme", "api", "acme/old-name"),
            ("a-b-1", "x.y_z-1", "octocat_shortcode/.github"),
            (&"a".repeat(39), &"n".repeat(100), "o/n"),
        ] {
            let mut m = message();
            m.repo.owner = owner.into();
            m.repo.name = name.into();
            m.repo.clone_url = format!("https://github.com/{owner}/{name}.git");
            m.event = Some(RepoEvent::Moved { from: from.into() });
            assert_eq!(JobMessage::parse(&m.to_body()).unwrap(), m);
        }
    }

    #[test]
    fn a_refused_name_is_quoted_escaped_and_short() {
        let mut m = message();
        m.repo.name = format!("\u{1b}[31m{}", "x".repeat(400_000));
        let why = invalid(&m);
        assert!(!why.contains('\u{1b}'), "{why:?}");
        assert!(why.len() < 300, "{} bytes", why.len());
    }

    #[test]
    fn unknown_fields_within_the_schema_are_ignored() {
        let mut v: serde_json::Value = serde_json::from_str(&message().to_body()).unwrap();
        v["trace_context"] = "00-abc-def-01".into();
        v["repo"]["visibility"] = "internal".into();
        v["options"]["lfs_include"] = serde_json::json!(["*.psd"]);
        assert_eq!(JobMessage::parse(&v.to_string()).unwrap(), message());
    }

    #[test]
    fn wiki_url_sits_beside_the_repository() {
        assert_eq!(repo("a", "b").wiki_url(), "https://github.com/a/b.wiki.git");
    }

    #[test]
    fn parses_targets() {
        let cwd = Path::new("/home/me");
        let t = Target::parse("s3://my-bucket/github/acme/", cwd).unwrap();
        assert_eq!(
            (t.store.as_str(), t.prefix.as_str()),
            ("s3://my-bucket", "github/acme/")
        );
        assert_eq!(
            t.location(),
            StoreLocation::S3 {
                bucket: "my-bucket".into()
            }
        );
        let t = Target::parse("./backups/../bk", cwd).unwrap();
        assert_eq!(t.store, "file:///home/me/bk");
        assert_eq!(t.location(), StoreLocation::Local("/home/me/bk".into()));
        assert_eq!(
            Target::parse("file:///srv/bk", cwd).unwrap().store,
            "file:///srv/bk"
        );
        assert!(Target::parse("gs://x", cwd).is_err());
        assert!(Target::parse("s3://B", cwd).is_err());
        assert!(Target::parse("s3://bucket/../x", cwd).is_err());
    }
}
