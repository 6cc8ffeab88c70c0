//! `notify:`: who is told how a run went, and where their secrets are read from.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{SecretSource, defaults, secret_source};

/// `notify:`: where the end of a run is told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawNotify {
    /// `failure` (default), `always`, or `changes`.
    pub when: Option<String>,
    /// Failed repositories named in a message (the rest are counted).
    pub max_listed: Option<usize>,
    /// A Slack incoming webhook.
    pub slack: Option<RawSecretUrl>,
    /// A generic JSON webhook, signed with `secret-*` when given.
    pub webhook: Option<RawSecretUrl>,
    /// An SNS topic.
    pub sns: Option<RawSns>,
}

/// A URL that is a secret (it carries credentials), and an optional signing secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSecretUrl {
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawSns {
    pub topic_arn: Option<String>,
}

/// When a run is worth a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NotifyWhen {
    /// A repository failed or is missing.
    #[default]
    Failure,
    /// Every run.
    Always,
    /// A repository failed, or repositories appeared or went since the run before.
    Changes,
}

/// Where the end of a run is told (`notify:`, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub when: NotifyWhen,
    pub max_listed: usize,
    pub slack: Option<SecretSource>,
    /// The URL, and the secret that signs each body.
    pub webhook: Option<(SecretSource, Option<SecretSource>)>,
    pub sns_topic_arn: Option<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            when: NotifyWhen::Failure,
            max_listed: defaults::NOTIFY_MAX_LISTED,
            slack: None,
            webhook: None,
            sns_topic_arn: None,
        }
    }
}

pub(super) fn resolve_notify(
    raw: RawNotify,
    cwd: &Path,
    err: &mut impl FnMut(String, String),
) -> NotifyConfig {
    let when = match raw.when.as_deref() {
        None | Some("failure") => NotifyWhen::Failure,
        Some("always") => NotifyWhen::Always,
        Some("changes") => NotifyWhen::Changes,
        Some(other) => {
            err(
                "notify.when".into(),
                format!("{other:?}: use failure, always or changes"),
            );
            NotifyWhen::Failure
        }
    };
    let max_listed = raw.max_listed.unwrap_or(defaults::NOTIFY_MAX_LISTED);
    if !(1..=1000).contains(&max_listed) {
        err(
            "notify.max-listed".into(),
            format!("must be between 1 and 1000, got {max_listed}"),
        );
    }
    let slack = raw.slack.and_then(|s| {
        if s.secret_env.is_some() || s.secret_file.is_some() {
            err(
                "notify.slack".into(),
                "Slack webhooks are not signed: remove `secret-*`".into(),
            );
        }
        secret_source(
            "notify.slack",
            "url",
            (s.url_env, s.url_file),
            true,
            cwd,
            err,
        )
    });
    let webhook = raw.webhook.and_then(|w| {
        let url = secret_source(
            "notify.webhook",
            "url",
            (w.url_env, w.url_file),
            true,
            cwd,
            err,
        );
        let secret = secret_source(
            "notify.webhook",
            "secret",
            (w.secret_env, w.secret_file),
            false,
            cwd,
            err,
        );
        Some((url?, secret))
    });
    let sns_topic_arn = raw.sns.and_then(|sns| match sns.topic_arn {
        Some(arn) if arn.starts_with("arn:") && arn.contains(":sns:") => Some(arn),
        other => {
            err(
                "notify.sns.topic-arn".into(),
                format!("{other:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            );
            None
        }
    });
    NotifyConfig {
        when,
        max_listed,
        slack,
        webhook,
        sns_topic_arn,
    }
}
