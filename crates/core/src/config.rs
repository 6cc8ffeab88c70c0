//! Configuration: the YAML file (`repovault.yml`) and the command-line quick path both
//! produce a [`RawConfig`], and [`RawConfig::validate`] turns it into a [`Config`] or
//! into errors that each name the key at fault and why.
//!
//! ```yaml
//! concurrency: 4                # repositories backed up at once
//! retry: { max-attempts: 5, base-delay: 5s, max-delay: 5m }
//! jobs:
//!   - name: acme                # defaults to the org/user login
//!     source:
//!       org: acme               # or `user: octocat`
//!       include: ["^svc-"]      # regexes on the repository name
//!       exclude: ["-archive$"]
//!       forks: false
//!     target: ./backups         # or s3://bucket/prefix
//!     options: { wiki: true, metadata: true, lfs: false }
//!     auth:                     # a GitHub App instead of the token (optional)
//!       app-id: 123456
//!       private-key-file: /run/secrets/app.pem   # or private-key-env: GITHUB_APP_PRIVATE_KEY
//!       installation-id: 7890   # optional: found from the org
//!     encryption:               # age recipients its backups are encrypted to (optional)
//!       age-recipients: [age1…, "ssh-ed25519 AAAA…"]   # and/or age-recipients-file: FILE
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::Invalid;
use crate::retry::RetryPolicy;

mod encryption;
mod job;
mod notify;
mod s3;

/// Every default lives in one module, re-exported here where configuration is read.
pub use crate::defaults;
pub use encryption::{RawEncryption, Recipients, check_recipient, recipient_lines};
use job::resolve_job;
pub use job::{AppAuth, Connection, JobSpec, RawAuth, RawJob, RawOptions, RawRetention, RawSource};
use notify::resolve_notify;
pub use notify::{NotifyConfig, NotifyWhen, RawNotify, RawSecretUrl, RawSns};
use s3::resolve_s3;
pub use s3::{
    PROVIDERS, Provider, RawCompat, RawCompatExplicit, RawCredentialsEnv, RawS3Bucket, S3Checksum,
    S3Compat, S3Credentials, S3Settings, check_endpoint, parse_compat, provider, provider_for,
};

// ---------------------------------------------------------------------------------
// Raw: exactly what the file says.

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// File holding the GitHub token; `GITHUB_TOKEN` is used when absent.
    pub token_file: Option<PathBuf>,
    pub concurrency: Option<usize>,
    /// Where jobs clone into (a subdirectory per job, removed afterwards).
    pub work_dir: Option<PathBuf>,
    #[serde(default)]
    pub retry: RawRetry,
    #[serde(default)]
    pub jobs: Vec<RawJob>,
    /// Allow plain `http://` GitHub API and clone URLs (a local test server): the token
    /// would otherwise cross the network unencrypted.
    pub allow_insecure_http: Option<bool>,
    /// How the data beyond git is read (`options.metadata`).
    #[serde(default)]
    pub metadata: RawMetadata,
    /// How git data is stored.
    #[serde(default)]
    pub git: RawGit,
    /// Who is told how a run went.
    #[serde(default)]
    pub notify: RawNotify,
    /// How each S3 bucket is reached, keyed by bucket name.
    #[serde(default)]
    pub s3: std::collections::BTreeMap<String, RawS3Bucket>,
    /// The HTTP(S) proxy every outbound connection goes through (the environment's
    /// `HTTPS_PROXY`/`NO_PROXY` otherwise).
    pub proxy: Option<RawProxy>,
}

/// `proxy:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawProxy {
    pub url: String,
    /// Hosts reached directly: domains (with their subdomains), IPs, CIDR networks.
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

/// The proxy the configuration names (`proxy:`, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `http://[user:password@]host:port`: a secret when it holds credentials.
    pub url: crate::Secret,
    pub no_proxy: Vec<String>,
}

/// `git:`: how repositories' git data is stored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawGit {
    /// How long a bundle chain grows before a new one starts in full, e.g. `30d`.
    pub full_every: Option<String>,
    /// Also check every object of each fetched pack at backup time (`git index-pack
    /// --fsck-objects` on the stream), not only at the restore drill.
    pub verify_objects: Option<bool>,
}

/// `metadata:`: how repositories' data beyond git is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawMetadata {
    /// How often every kind is read whole (deletions show then), e.g. `7d`.
    pub full_every: Option<String>,
    /// How often every kind is probed even when the organization's event feed shows
    /// the repository quiet, e.g. `1d`; `0s`: every run (the feed is not used).
    pub probe_every: Option<String>,
    /// API requests at once per process (GitHub's secondary limits punish more).
    pub requests_in_flight: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    pub base_delay: Option<String>,
    pub max_delay: Option<String>,
}

// ---------------------------------------------------------------------------------
// Resolved: validated, defaults applied.

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub jobs: Vec<JobSpec>,
    pub token_file: Option<PathBuf>,
    pub concurrency: usize,
    pub work_dir: Option<PathBuf>,
    pub retry: RetryPolicy,
    pub allow_insecure_http: bool,
    pub metadata: MetadataSettings,
    pub git: GitSettings,
    pub notify: NotifyConfig,
    /// Each configured bucket's settings, by bucket name.
    pub s3: std::collections::BTreeMap<String, S3Settings>,
    pub proxy: Option<ProxyConfig>,
}

/// How repositories' git data is stored (`git:`, validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitSettings {
    /// How long a bundle chain grows before a backup starts a new one.
    pub full_every: Duration,
    /// Check every object of each pack at backup time, not only at the restore drill.
    pub verify_objects: bool,
}

impl Default for GitSettings {
    fn default() -> Self {
        GitSettings {
            full_every: defaults::CHAIN_FULL_EVERY,
            verify_objects: false,
        }
    }
}

/// How repositories' data beyond git is read (`metadata:`, validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataSettings {
    pub full_every: Duration,
    /// How often every kind is probed whatever the event feed says (zero: every run).
    pub probe_every: Duration,
    pub requests_in_flight: usize,
}

impl Default for MetadataSettings {
    fn default() -> Self {
        MetadataSettings {
            full_every: defaults::METADATA_FULL_EVERY,
            probe_every: defaults::METADATA_PROBE_EVERY,
            requests_in_flight: defaults::REQUESTS_IN_FLIGHT,
        }
    }
}

/// Where a private key is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One configuration problem: the key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.key.is_empty() {
                write!(f, "{}", e.reason)?;
            } else {
                write!(f, "{}: {}", e.key, e.reason)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl RawConfig {
    /// Parses YAML, rejecting unknown keys.
    pub fn from_yaml(text: &str) -> Result<RawConfig, ConfigErrors> {
        yaml_serde::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                key: String::new(),
                reason: e.to_string(),
            }])
        })
    }

    /// Checks everything and applies defaults. Relative paths resolve against `cwd`.
    pub fn validate(self, cwd: &Path) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |key: String, reason: String| errors.push(ConfigError { key, reason });

        let concurrency = self.concurrency.unwrap_or(defaults::CONCURRENCY);
        if !(1..=defaults::MAX_CONCURRENCY).contains(&concurrency) {
            err(
                "concurrency".into(),
                format!(
                    "must be between 1 and {}, got {concurrency}",
                    defaults::MAX_CONCURRENCY
                ),
            );
        }
        let retry = resolve_retry(&self.retry, &mut err);
        let mut metadata = MetadataSettings::default();
        if let Some(text) = &self.metadata.full_every {
            match parse_duration(text) {
                Ok(d) => metadata.full_every = d,
                Err(Invalid(reason)) => err("metadata.full-every".into(), reason),
            }
        }
        if let Some(text) = &self.metadata.probe_every {
            match parse_duration(text) {
                Ok(d) => metadata.probe_every = d,
                Err(Invalid(reason)) => err("metadata.probe-every".into(), reason),
            }
        }
        if let Some(n) = self.metadata.requests_in_flight {
            if (1..=100).contains(&n) {
                metadata.requests_in_flight = n;
            } else {
                err(
                    "metadata.requests-in-flight".into(),
                    format!("must be between 1 and 100, got {n}"),
                );
            }
        }
        let mut git = GitSettings {
            verify_objects: self.git.verify_objects.unwrap_or(false),
            ..GitSettings::default()
        };
        if let Some(text) = &self.git.full_every {
            match parse_duration(text) {
                Ok(d) if !d.is_zero() => git.full_every = d,
                Ok(_) => err("git.full-every".into(), "must be longer than 0s".into()),
                Err(Invalid(reason)) => err("git.full-every".into(), reason),
            }
        }
        let notify = resolve_notify(self.notify, cwd, &mut err);
        let s3 = resolve_s3(self.s3, &mut err);
        let proxy = self.proxy.and_then(|raw| resolve_proxy(raw, &mut err));
        if self.jobs.is_empty() {
            err("jobs".into(), "at least one job is required".into());
        }
        let allow_insecure_http = self.allow_insecure_http.unwrap_or(false);
        let mut jobs: Vec<JobSpec> = Vec::new();
        for (i, raw) in self.jobs.into_iter().enumerate() {
            if let Some(job) = resolve_job(i, raw, cwd, allow_insecure_http, &mut err) {
                if jobs.iter().any(|j| j.name == job.name) {
                    err(
                        format!("jobs[{i}].name"),
                        format!(
                            "duplicate job name {:?}; give each job a distinct name",
                            job.name
                        ),
                    );
                }
                if let Some(other) = jobs
                    .iter()
                    .find(|j| j.target == job.target && j.encryption != job.encryption)
                {
                    err(
                        format!("jobs[{i}].encryption"),
                        format!(
                            "job {:?} writes to the same target with other recipients; a target's backups have one set",
                            other.name
                        ),
                    );
                }
                jobs.push(job);
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            jobs,
            token_file: self.token_file.map(|p| cwd.join(p)),
            concurrency,
            work_dir: self.work_dir.map(|p| cwd.join(p)),
            retry,
            allow_insecure_http,
            metadata,
            git,
            notify,
            s3,
            proxy,
        })
    }
}

/// Checks `proxy:`: an http(s) URL of a host and port, nothing else; no-proxy
/// entries without spaces or commas. Errors never repeat the URL (it may hold a
/// password).
fn resolve_proxy(raw: RawProxy, err: &mut impl FnMut(String, String)) -> Option<ProxyConfig> {
    let mut ok = true;
    match url::Url::parse(&raw.url) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none() => {}
        _ => {
            ok = false;
            err(
                "proxy.url".into(),
                "must be an http:// or https:// URL of a host and port, e.g. http://proxy.internal:3128".into(),
            );
        }
    }
    for (i, entry) in raw.no_proxy.iter().enumerate() {
        if entry.trim().is_empty() || entry.contains([',', ' ']) {
            ok = false;
            err(
                format!("proxy.no-proxy[{i}]"),
                format!("{entry:?}: one domain, IP or CIDR network an entry"),
            );
        }
    }
    ok.then(|| ProxyConfig {
        url: crate::Secret::new(raw.url),
        no_proxy: raw.no_proxy,
    })
}

/// `<what>-env` or `<what>-file` of `key`: exactly one (or neither, unless `required`).
fn secret_source(
    key: &str,
    what: &str,
    (env, file): (Option<String>, Option<PathBuf>),
    required: bool,
    cwd: &Path,
    err: &mut impl FnMut(String, String),
) -> Option<SecretSource> {
    match (env, file) {
        (Some(var), None) if !var.is_empty() => Some(SecretSource::Env(var)),
        (None, Some(path)) => Some(SecretSource::File(cwd.join(path))),
        (None, None) if !required => None,
        (Some(_), Some(_)) => {
            err(
                key.to_owned(),
                format!("set either `{what}-env` or `{what}-file`, not both"),
            );
            None
        }
        _ => {
            err(
                format!("{key}.{what}-env"),
                format!(
                    "the {what} is required: `{what}-env` naming the variable that holds it, or `{what}-file`"
                ),
            );
            None
        }
    }
}

fn resolve_retry(raw: &RawRetry, err: &mut impl FnMut(String, String)) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(n) = raw.max_attempts {
        if n == 0 || n > 100 {
            err(
                "retry.max-attempts".into(),
                format!("must be between 1 and 100, got {n}"),
            );
        }
        policy.max_attempts = n;
    }
    for (key, value, slot) in [
        ("retry.base-delay", &raw.base_delay, &mut policy.base_delay),
        ("retry.max-delay", &raw.max_delay, &mut policy.max_delay),
    ] {
        if let Some(text) = value {
            match parse_duration(text) {
                Ok(d) => *slot = d,
                Err(Invalid(reason)) => err(key.into(), reason),
            }
        }
    }
    if policy.base_delay > policy.max_delay {
        err(
            "retry.base-delay".into(),
            "must not be longer than retry.max-delay".into(),
        );
    }
    policy
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `7d`, `4w`.
pub fn parse_duration(text: &str) -> Result<Duration, Invalid> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let not_a_duration = || {
        Invalid(format!(
            "{text:?} is not a duration like 500ms, 30s, 5m, 2h or 7d"
        ))
    };
    let n: u64 = digits.parse().map_err(|_| not_a_duration())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(not_a_duration()),
    };
    match n.checked_mul(millis_per_unit) {
        Some(ms) if ms <= MAX_DURATION.as_millis() as u64 => Ok(Duration::from_millis(ms)),
        _ => Err(Invalid(format!(
            "{text:?} is too long: at most 100 years (36500d)"
        ))),
    }
}

/// The longest duration accepted anywhere: keeps date arithmetic in range.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobOptions, Owner};

    fn validate(yaml: &str) -> Result<Config, ConfigErrors> {
        RawConfig::from_yaml(yaml)?.validate(Path::new("/work"))
    }

    fn keys(result: Result<Config, ConfigErrors>) -> Vec<String> {
        result.unwrap_err().0.into_iter().map(|e| e.key).collect()
    }

    /// The configuration reference's example (`docs/CONFIGURATION.md`, the README's
    /// link for it), as a user would copy it, loads with every key applied.
    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let reference = include_str!("../../../docs/CONFIGURATION.md");
        let example = reference
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/CONFIGURATION.md has a ```yaml example");
        let c = validate(example).unwrap_or_else(|e| panic!("docs/CONFIGURATION.md example: {e}"));
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.retry.max_attempts, 5);
        let job = &c.jobs[0];
        assert_eq!(job.name, "acme");
        assert_eq!(job.git_host.to_string(), "https://github.com");
        assert!(!job.selector.forks);
        assert_eq!(job.selector.max_size_kb, Some(2048 * 1024));
        assert_eq!(job.retention.keep_daily, Some(7));
        assert_eq!(
            job.retention.keep_within,
            Some(Duration::from_secs(14 * 86_400))
        );
    }

    #[test]
    fn a_proxy_is_a_host_and_port_and_errors_never_show_its_password() {
        let job = "jobs:\n  - source: { org: acme }\n    target: ./bk\n";
        let c = validate(&format!(
            "{job}proxy: {{ url: \"http://u:pw@proxy.internal:3128\", no-proxy: [.internal, 10.0.0.0/8] }}\n"
        ))
        .unwrap();
        let proxy = c.proxy.unwrap();
        assert_eq!(proxy.url.expose(), "http://u:pw@proxy.internal:3128");
        assert_eq!(proxy.no_proxy, [".internal", "10.0.0.0/8"]);
        let bad = validate(&format!(
            "{job}proxy: {{ url: \"socks5://u:secret-pw@proxy:1080/x\", no-proxy: [\"a, b\"] }}\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = bad.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["proxy.url", "proxy.no-proxy[0]"]);
        assert!(!bad.to_string().contains("secret-pw"), "{bad}");
    }

    #[test]
    fn minimal_job_gets_defaults() {
        let c = validate("jobs:\n  - source: { org: acme }\n    target: ./bk\n").unwrap();
        assert_eq!(c.concurrency, defaults::CONCURRENCY);
        assert_eq!(c.retry, RetryPolicy::default());
        let job = &c.jobs[0];
        assert_eq!(job.name, "acme");
        assert_eq!(job.api_url, defaults::API_URL);
        assert_eq!(job.target.store, "file:///work/bk");
        assert_eq!(job.options, JobOptions::default());
        assert!(job.selector.forks && job.selector.archived);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let err = validate("jobs:\n  - source: { orgg: acme }\n    target: x\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("orgg"), "{text}");
        assert!(text.contains("jobs[0].source"), "{text}");
        let err = validate("token: abc\njobs: []\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `token`"), "{err}");
    }

    #[test]
    fn each_error_names_its_key() {
        let yaml = r#"
concurrency: 0
retry: { max-attempts: 0, base-delay: soon }
jobs:
  - source: { org: acme, include: ["ok", "(unclosed"], exclude: ["["] }
    target: gs://nope
  - name: "bad name"
    source: { org: acme, user: bob }
  - source: { user: "-x", api-url: "ftp://x" }
    target: ./a
"#;
        assert_eq!(
            keys(validate(yaml)),
            vec![
                "concurrency",
                "retry.max-attempts",
                "retry.base-delay",
                "jobs[0].source.include[1]",
                "jobs[0].source.exclude[0]",
                "jobs[0].target",
                "jobs[1].source",
                "jobs[1].name",
                "jobs[1].target",
                "jobs[2].source.user",
                "jobs[2].source.api-url",
            ]
        );
    }

    #[test]
    fn regex_errors_say_why() {
        let err = validate("jobs:\n  - source: { org: a, include: ['('] }\n    target: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("jobs[0].source.include[0]: invalid regex \"(\""),
            "{err}"
        );
        assert!(err.contains("unclosed group"), "{err}");
    }

    #[test]
    fn no_jobs_and_duplicate_names_are_errors() {
        assert_eq!(keys(validate("concurrency: 2\n")), vec!["jobs"]);
        let yaml =
            "jobs:\n  - source: { org: a }\n    target: x\n  - source: { org: a }\n    target: y\n";
        assert_eq!(keys(validate(yaml)), vec!["jobs[1].name"]);
    }

    #[test]
    fn retention_is_validated_per_key() {
        let yaml = "jobs:\n  - source: { org: a }\n    target: x\n    retention: { keep-daily: 7, keep-last: 0, keep-within: soon }\n";
        assert_eq!(
            keys(validate(yaml)),
            vec![
                "jobs[0].retention.keep-last",
                "jobs[0].retention.keep-within"
            ]
        );
        let yaml = "jobs:\n  - source: { org: a }\n    target: x\n    retention: { keep-daily: 7, keep-within: 30d }\n";
        let policy = validate(yaml).unwrap().jobs[0].retention;
        assert_eq!(policy.keep_daily, Some(7));
        assert_eq!(policy.keep_within, Some(Duration::from_secs(30 * 86_400)));
        let err = validate(
            "jobs:\n  - source: { org: a }\n    target: x\n    retention: { keep-dayly: 7 }\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("keep-dayly"), "{err}");
    }

    #[test]
    fn notify_channels_need_their_secrets_named_once() {
        let with = |notify: &str| {
            format!("jobs:\n  - source: {{ org: a }}\n    target: x\nnotify: {notify}\n")
        };
        let config = validate(&with(
            "{ when: always, slack: { url-env: SLACK }, webhook: { url-file: hook, secret-env: S }, sns: { topic-arn: \"arn:aws:sns:eu-west-1:1:t\" } }",
        ))
        .unwrap();
        assert_eq!(config.notify.when, NotifyWhen::Always);
        assert_eq!(config.notify.slack, Some(SecretSource::Env("SLACK".into())));
        assert_eq!(
            config.notify.webhook,
            Some((
                SecretSource::File(Path::new("/work/hook").to_owned()),
                Some(SecretSource::Env("S".into()))
            ))
        );
        assert_eq!(
            keys(validate(&with(
                "{ when: sometimes, slack: {}, webhook: { url-env: A, url-file: b }, sns: { topic-arn: x } }"
            ))),
            vec![
                "notify.when",
                "notify.slack.url-env",
                "notify.webhook",
                "notify.sns.topic-arn"
            ]
        );
    }

    #[test]
    fn app_auth_needs_an_id_and_exactly_one_key_source() {
        let job = |auth: &str| {
            format!("jobs:\n  - source: {{ org: a }}\n    target: x\n    auth: {auth}\n")
        };
        let config = validate(&job("{ app-id: 7, private-key-file: k.pem }")).unwrap();
        let auth = config.jobs[0].auth.clone().unwrap();
        assert_eq!(auth.app_id, 7);
        assert_eq!(
            auth.private_key,
            SecretSource::File(Path::new("/work/k.pem").to_owned())
        );
        assert_eq!(auth.installation_id, None);
        assert_eq!(
            config.jobs[0].connection().owner,
            Some(Owner::Org("a".into()))
        );
        assert_eq!(
            keys(validate(&job("{ private-key-env: KEY }"))),
            vec!["jobs[0].auth.app-id"]
        );
        assert_eq!(
            keys(validate(&job("{ app-id: 7 }"))),
            vec!["jobs[0].auth.private-key-env"]
        );
        assert_eq!(
            keys(validate(&job(
                "{ app-id: 7, private-key-env: K, private-key-file: k, installation-id: 0 }"
            ))),
            vec!["jobs[0].auth", "jobs[0].auth.installation-id"]
        );
        let err = validate(&job("{ app-id: 7, private-key: x }"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `private-key`"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["", "5", "m", "1.5s", "-1s", "5 days"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn huge_durations_are_errors_not_overflows() {
        for huge in [
            "213503982334602d",
            "18446744073709551615ms",
            "36501d",
            "99999999999w",
        ] {
            let err = parse_duration(huge).unwrap_err().0;
            assert!(err.contains("too long"), "{huge}: {err}");
        }
        assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
        let yaml = "jobs:\n  - source: { org: a }\n    target: x\n    retention: { keep-within: 213503982334602d }\n";
        assert_eq!(keys(validate(yaml)), vec!["jobs[0].retention.keep-within"]);
    }

    #[test]
    fn metadata_settings_are_validated_per_key() {
        let job = "jobs:\n  - source: { org: a }\n    target: x\n";
        let c = validate(&format!(
            "metadata: {{ full-every: 1d, probe-every: 0s, requests-in-flight: 2 }}\n{job}"
        ))
        .unwrap();
        assert_eq!(c.metadata.full_every, Duration::from_secs(86_400));
        assert_eq!(c.metadata.probe_every, Duration::ZERO);
        assert_eq!(c.metadata.requests_in_flight, 2);
        assert_eq!(validate(job).unwrap().metadata, MetadataSettings::default());
        assert_eq!(
            keys(validate(&format!(
                "metadata: {{ full-every: soon, probe-every: x, requests-in-flight: 0 }}\n{job}"
            ))),
            vec![
                "metadata.full-every",
                "metadata.probe-every",
                "metadata.requests-in-flight"
            ]
        );
    }

    #[test]
    fn git_settings_are_validated_per_key() {
        let job = "jobs:\n  - source: { org: a }\n    target: x\n";
        let c = validate(&format!(
            "git: {{ full-every: 14d, verify-objects: true }}\n{job}"
        ))
        .unwrap();
        assert_eq!(
            c.git,
            GitSettings {
                full_every: Duration::from_secs(14 * 86_400),
                verify_objects: true
            }
        );
        assert_eq!(validate(job).unwrap().git, GitSettings::default());
        assert_eq!(
            GitSettings::default().full_every,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            keys(validate(&format!("git: {{ full-every: 0s }}\n{job}"))),
            vec!["git.full-every"]
        );
        assert_eq!(
            keys(validate(&format!("git: {{ full-every: often }}\n{job}"))),
            vec!["git.full-every"]
        );
    }

    #[test]
    fn plain_http_api_urls_need_the_opt_in() {
        let job =
            "jobs:\n  - source: { org: a, api-url: 'http://127.0.0.1:9/api/v3' }\n    target: x\n";
        let err = validate(job).unwrap_err();
        assert_eq!(err.0[0].key, "jobs[0].source.api-url");
        assert!(err.0[0].reason.contains("--allow-insecure-http"), "{err}");
        let c = validate(&format!("allow-insecure-http: true\n{job}")).unwrap();
        assert_eq!(c.jobs[0].git_host.to_string(), "http://127.0.0.1:9");
    }

    #[test]
    fn backoff_grows_caps_and_honours_the_server() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
        };
        let within = |d: Duration, nominal: u64| {
            d <= Duration::from_secs(nominal) && d >= Duration::from_secs(nominal).mul_f64(0.8)
        };
        assert!(within(p.delay(1, None), 10));
        assert!(within(p.delay(2, None), 20));
        assert!(within(p.delay(3, None), 40));
        assert!(within(p.delay(4, None), 60));
        assert!(within(p.delay(30, None), 60));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(3600)
        );
    }
}
