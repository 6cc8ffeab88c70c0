//! `jobs[]`: what each job backs up (its source selection, target, options and
//! retention) and who it calls GitHub as.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use super::encryption::{RawEncryption, Recipients, resolve_encryption};
use super::{ConfigError, ConfigErrors, SecretSource, defaults, parse_duration, secret_source};
use crate::retention::RetentionPolicy;
use crate::{GitHost, Invalid, JobOptions, Owner, RepoSelector, Target, Visibility};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawJob {
    pub name: Option<String>,
    pub source: RawSource,
    pub target: Option<String>,
    #[serde(default)]
    pub options: RawOptions,
    #[serde(default)]
    pub retention: RawRetention,
    /// A GitHub App to authenticate as, instead of the token.
    pub auth: Option<RawAuth>,
    /// The age recipients the target's backups are encrypted to.
    pub encryption: Option<RawEncryption>,
}

/// `auth:` of a job: a GitHub App installation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawAuth {
    pub app_id: Option<u64>,
    /// The App's private key (PEM, as GitHub hands it out).
    pub private_key_file: Option<PathBuf>,
    /// The environment variable holding the private key (on ECS: injected from
    /// Secrets Manager, as the token is).
    pub private_key_env: Option<String>,
    /// The installation; found from the job's owner when absent.
    pub installation_id: Option<u64>,
}

/// `retention:` of a job, and `prune`'s `--keep-*` flags (with the `clap` feature): one
/// list of rules for both; see [`crate::retention`] for what each keeps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct RawRetention {
    /// Keep the N newest backups of each repository.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours with backups.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days with backups.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks with backups.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months with backups.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years with backups.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub keep_yearly: Option<u32>,
    /// Keep every backup younger than this: `30d`, `12w`, `48h`.
    #[cfg_attr(feature = "clap", arg(long, value_name = "DURATION"))]
    pub keep_within: Option<String>,
}

impl RawRetention {
    /// The policy, or every problem, each named by `key_of(rule)` (`keep-last` →
    /// `jobs[0].retention.keep-last`, or `--keep-last` for flags).
    pub fn resolve(
        &self,
        key_of: impl Fn(&str) -> String,
    ) -> Result<RetentionPolicy, ConfigErrors> {
        let mut errors = Vec::new();
        let policy = resolve_retention(self, &key_of, &mut |key, reason| {
            errors.push(ConfigError { key, reason })
        });
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSource {
    pub org: Option<String>,
    pub user: Option<String>,
    /// GitHub Enterprise: `https://github.example.com/api/v3`.
    pub api_url: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub forks: Option<bool>,
    pub archived: Option<bool>,
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub topics: Vec<String>,
    pub max_size_mb: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawOptions {
    pub wiki: Option<bool>,
    pub metadata: Option<bool>,
    pub lfs: Option<bool>,
}

/// One job: a source selection and where its backups go.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    pub api_url: String,
    /// Where git is served for `api_url`: the only host that gets the token.
    pub git_host: GitHost,
    pub selector: RepoSelector,
    pub target: Target,
    pub options: JobOptions,
    pub retention: RetentionPolicy,
    /// A GitHub App to authenticate as; `None`: the token.
    pub auth: Option<AppAuth>,
    /// Who can read the target's backups (empty: anyone who can read the store).
    pub encryption: Recipients,
}

impl JobSpec {
    /// The GitHub connection this job's requests go through: jobs with equal
    /// connections share one client (one rate-limit budget, one token cache).
    pub fn connection(&self) -> Connection {
        Connection {
            api_url: self.api_url.clone(),
            app: self.auth.clone(),
            owner: self.auth.as_ref().map(|_| self.selector.owner.clone()),
        }
    }
}

/// A GitHub API and who is calling it: the token, or a GitHub App installation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    pub api_url: String,
    /// A GitHub App's installation instead of the token.
    pub app: Option<AppAuth>,
    /// With `app`: the owner the installation is on (looked up from it unless
    /// `installation_id` is given); its repositories' jobs use this connection.
    /// `None`: any owner's.
    pub owner: Option<Owner>,
}

impl Connection {
    /// The API with the token (or anonymous), for any owner.
    pub fn token(api_url: &str) -> Connection {
        Connection {
            api_url: api_url.to_owned(),
            app: None,
            owner: None,
        }
    }
}

/// A GitHub App installation to authenticate as (`auth:`, validated).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppAuth {
    pub app_id: u64,
    pub private_key: SecretSource,
    /// `None`: the installation on the job's owner, looked up with the App's JWT.
    pub installation_id: Option<u64>,
}

pub(super) fn resolve_job(
    i: usize,
    raw: RawJob,
    cwd: &Path,
    allow_insecure_http: bool,
    err: &mut impl FnMut(String, String),
) -> Option<JobSpec> {
    let key = |k: &str| format!("jobs[{i}].{k}");
    let src = raw.source;
    let owner = match (src.org, src.user) {
        (Some(org), None) => Some(Owner::Org(org)),
        (None, Some(user)) => Some(Owner::User(user)),
        (Some(_), Some(_)) => {
            err(key("source"), "set either `org` or `user`, not both".into());
            None
        }
        (None, None) => {
            err(key("source"), "set `org` or `user`".into());
            None
        }
    };
    if let Some(owner) = &owner
        && !crate::job::is_login(owner.login())
    {
        let field = if matches!(owner, Owner::Org(_)) {
            "org"
        } else {
            "user"
        };
        err(
            key(&format!("source.{field}")),
            format!("{:?} is not a valid GitHub login", owner.login()),
        );
    }
    let name = raw
        .name
        .or_else(|| owner.as_ref().map(|o| o.login().to_owned()))
        .unwrap_or_default();
    if !name.is_empty() && !valid_job_name(&name) {
        err(
            key("name"),
            format!("{name:?}: use letters, digits, '.', '_' and '-'"),
        );
    }
    let api_url = src.api_url.unwrap_or_else(|| defaults::API_URL.to_owned());
    let api_url = api_url.trim_end_matches('/').to_owned();
    let git_host = GitHost::from_api_url(&api_url, allow_insecure_http)
        .map_err(|Invalid(reason)| err(key("source.api-url"), reason))
        .ok();
    let include = compile_all(&src.include, &key("source.include"), err);
    let exclude = compile_all(&src.exclude, &key("source.exclude"), err);
    let target = match raw.target {
        None => {
            err(
                key("target"),
                "a target is required (a path or s3://bucket/prefix)".into(),
            );
            None
        }
        Some(url) => Target::parse(&url, cwd)
            .map_err(|Invalid(reason)| err(key("target"), reason))
            .ok(),
    };
    let defaults = JobOptions::default();
    let options = JobOptions {
        wiki: raw.options.wiki.unwrap_or(defaults.wiki),
        metadata: raw.options.metadata.unwrap_or(defaults.metadata),
        lfs: raw.options.lfs.unwrap_or(defaults.lfs),
        full: false,
    };
    let retention = resolve_retention(
        &raw.retention,
        &|rule: &str| key(&format!("retention.{rule}")),
        err,
    );
    let auth = raw.auth.and_then(|raw| resolve_auth(raw, cwd, &key, err));
    let encryption = raw
        .encryption
        .map(|raw| resolve_encryption(raw, cwd, &key, err))
        .unwrap_or_default();
    Some(JobSpec {
        auth,
        encryption,
        name,
        api_url,
        git_host: git_host?,
        selector: RepoSelector {
            owner: owner?,
            include: include?,
            exclude: exclude?,
            forks: src.forks.unwrap_or(true),
            archived: src.archived.unwrap_or(true),
            visibility: src.visibility.unwrap_or_default(),
            topics: src.topics,
            max_size_kb: src.max_size_mb.map(|mb| mb.saturating_mul(1024)),
        },
        target: target?,
        options,
        retention,
    })
}

impl RawAuth {
    /// The App this names, or every problem, each named by `key_of(field)`.
    pub fn resolve(
        self,
        cwd: &Path,
        key_of: impl Fn(&str) -> String,
    ) -> Result<AppAuth, ConfigErrors> {
        let mut errors = Vec::new();
        let auth = resolve_auth(self, cwd, &key_of, &mut |key, reason| {
            errors.push(ConfigError { key, reason })
        });
        match auth {
            Some(auth) if errors.is_empty() => Ok(auth),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

fn resolve_auth(
    raw: RawAuth,
    cwd: &Path,
    key: &dyn Fn(&str) -> String,
    err: &mut impl FnMut(String, String),
) -> Option<AppAuth> {
    let app_id = match raw.app_id {
        Some(0) | None => {
            err(
                key("auth.app-id"),
                "the App's numeric id is required (the App's settings page shows it)".into(),
            );
            None
        }
        id => id,
    };
    let private_key = secret_source(
        &key("auth"),
        "private-key",
        (raw.private_key_env, raw.private_key_file),
        true,
        cwd,
        err,
    );
    if raw.installation_id == Some(0) {
        err(
            key("auth.installation-id"),
            "must be the installation's numeric id (leave it out to find it from the owner)".into(),
        );
        return None;
    }
    Some(AppAuth {
        app_id: app_id?,
        private_key: private_key?,
        installation_id: raw.installation_id,
    })
}

fn resolve_retention(
    raw: &RawRetention,
    key_of: &dyn Fn(&str) -> String,
    err: &mut impl FnMut(String, String),
) -> RetentionPolicy {
    for (name, value) in [
        ("keep-last", raw.keep_last),
        ("keep-hourly", raw.keep_hourly),
        ("keep-daily", raw.keep_daily),
        ("keep-weekly", raw.keep_weekly),
        ("keep-monthly", raw.keep_monthly),
        ("keep-yearly", raw.keep_yearly),
    ] {
        if value == Some(0) {
            err(
                key_of(name),
                "must be at least 1 (leave it out to not use the rule)".into(),
            );
        }
    }
    let keep_within = raw.keep_within.as_deref().and_then(|text| {
        parse_duration(text)
            .map_err(|Invalid(reason)| err(key_of("keep-within"), reason))
            .ok()
    });
    RetentionPolicy {
        keep_last: raw.keep_last,
        keep_hourly: raw.keep_hourly,
        keep_daily: raw.keep_daily,
        keep_weekly: raw.keep_weekly,
        keep_monthly: raw.keep_monthly,
        keep_yearly: raw.keep_yearly,
        keep_within,
    }
}

fn compile_all(
    patterns: &[String],
    key: &str,
    err: &mut impl FnMut(String, String),
) -> Option<Vec<Regex>> {
    let mut ok = true;
    let compiled = patterns
        .iter()
        .enumerate()
        .filter_map(|(j, p)| match Regex::new(p) {
            Ok(re) => Some(re),
            Err(e) => {
                ok = false;
                let reason = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                err(
                    format!("{key}[{j}]"),
                    format!("invalid regex {p:?}: {reason}"),
                );
                None
            }
        })
        .collect();
    ok.then_some(compiled)
}

fn valid_job_name(name: &str) -> bool {
    name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
