//! Argument groups shared by the commands.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use repovault_core::Invalid;
use repovault_core::config::{
    Config, ConfigError, ConfigErrors, RawAuth, RawCompat, RawConfig, RawEncryption, RawJob,
    RawOptions, RawSource, Recipients, S3Credentials, S3Settings, check_endpoint, defaults,
    parse_compat, parse_duration,
};

use repovault_repository::{Identities, Keys};

use crate::exit::InvalidConfig;
use crate::logging::LogFormat;

/// Flags every binary has.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Log format on stderr: auto (JSON unless a terminal), json, text.
    #[arg(
        long,
        global = true,
        default_value = "auto",
        env = "REPOVAULT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// More logging (-v: info on a terminal, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// A terminal gets a progress line and only warnings; pipes get info-level JSON.
    pub fn default_log_level(&self) -> &'static str {
        match self.verbose {
            0 if std::io::stderr().is_terminal() => "warn",
            0 | 1 => "info",
            _ => "debug",
        }
    }
}

/// Refuses a duration flag outside `min..=max`, naming the flag.
pub fn check_range(
    flag: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), InvalidConfig> {
    if value < min || value > max {
        return Err(InvalidConfig(format!(
            "{flag}: {value:?} is out of range: between {min:?} and {max:?}"
        )));
    }
    Ok(())
}

/// Refuses a `--concurrency` the configuration would refuse, naming the flag.
pub fn check_concurrency(n: usize) -> Result<(), InvalidConfig> {
    if !(1..=defaults::MAX_CONCURRENCY).contains(&n) {
        return Err(InvalidConfig(format!(
            "--concurrency: must be between 1 and {}, got {n}",
            defaults::MAX_CONCURRENCY
        )));
    }
    Ok(())
}

/// `500ms`, `30s`, `5m`, `2h` for clap.
pub fn duration(text: &str) -> Result<Duration, Invalid> {
    parse_duration(text)
}

/// A duration flag whose default lives in `core::config::defaults`: parsed as `500ms`,
/// `30s`, `5m`, `2h`, and shown the same way in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl std::str::FromStr for DurationArg {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Self, Invalid> {
        parse_duration(text).map(DurationArg)
    }
}

impl std::fmt::Display for DurationArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        if d.subsec_millis() != 0 {
            write!(f, "{}ms", d.as_millis())
        } else if d.as_secs() != 0 && d.as_secs().is_multiple_of(3600) {
            write!(f, "{}h", d.as_secs() / 3600)
        } else if d.as_secs() != 0 && d.as_secs().is_multiple_of(60) {
            write!(f, "{}m", d.as_secs() / 60)
        } else {
            write!(f, "{}s", d.as_secs())
        }
    }
}

/// What to back up: a YAML config file, or the quick path with flags.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// YAML config file [default: ./repovault.yml when present and no --org/--user].
    #[arg(short, long, env = "REPOVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub recipients: RecipientArg,
    /// Back up an organization's repositories (repeatable).
    #[arg(long, value_name = "LOGIN")]
    pub org: Vec<String>,
    /// Back up a user's repositories (repeatable).
    #[arg(long, value_name = "LOGIN")]
    pub user: Vec<String>,
    /// Only repositories whose name matches this regex (repeatable: any may match).
    #[arg(short, long, value_name = "REGEX")]
    pub pattern: Vec<String>,
    /// Skip repositories whose name matches this regex (repeatable).
    #[arg(short = 'x', long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Skip forks.
    #[arg(long)]
    pub no_forks: bool,
    /// Skip archived repositories.
    #[arg(long)]
    pub no_archived: bool,
    /// Don't mirror wikis.
    #[arg(long)]
    pub no_wiki: bool,
    /// Don't back up the data beyond git (issues, pull requests, releases…).
    #[arg(long)]
    pub no_metadata: bool,
    /// Also back up the Git LFS objects the repositories' refs point at.
    #[arg(long)]
    pub lfs: bool,
    /// Back up every repository in full (a new chain), even those whose refs equal the
    /// latest backup's.
    #[arg(long)]
    pub full: bool,
    /// Probe every kind of each repository's data beyond git this often, even when the
    /// organization's event feed shows it quiet (`metadata.probe-every`; `0s`: every
    /// run, the feed unused).
    #[arg(long, value_name = "DURATION", env = "REPOVAULT_PROBE_EVERY")]
    pub probe_every: Option<String>,
    /// Where backups go: a folder or s3://bucket/prefix.
    #[arg(
        long,
        value_name = "DIR|URL",
        env = "REPOVAULT_DEST",
        default_value = defaults::DEST
    )]
    pub dest: String,
    /// GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = defaults::API_URL)]
    pub api_url: String,
    /// File holding the GitHub token [default: the GITHUB_TOKEN environment variable].
    #[arg(long, value_name = "FILE", env = "REPOVAULT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub app: AppArgs,
    #[command(flatten)]
    pub insecure: InsecureHttpArg,
}

/// A GitHub App instead of the token, on the command line (`auth:` in a config file).
#[derive(Debug, Clone, Args)]
pub struct AppArgs {
    /// Authenticate as this GitHub App (its numeric id) instead of with the token.
    #[arg(long, value_name = "ID", env = "GITHUB_APP_ID")]
    pub app_id: Option<u64>,
    /// File holding the App's private key (PEM) [default: the GITHUB_APP_PRIVATE_KEY
    /// environment variable].
    #[arg(long, value_name = "FILE", env = "GITHUB_APP_PRIVATE_KEY_FILE")]
    pub app_key_file: Option<PathBuf>,
    /// The App's installation [default: the one on each --org/--user].
    #[arg(long, value_name = "ID", env = "GITHUB_APP_INSTALLATION_ID")]
    pub app_installation_id: Option<u64>,
}

/// Where the App's private key is when no file is named.
pub const APP_KEY_ENV: &str = "GITHUB_APP_PRIVATE_KEY";

impl AppArgs {
    /// The `auth:` these flags make, if `--app-id` is given.
    pub fn raw(&self) -> Option<RawAuth> {
        self.app_id.map(|id| RawAuth {
            app_id: Some(id),
            private_key_file: self.app_key_file.clone(),
            private_key_env: self.app_key_file.is_none().then(|| APP_KEY_ENV.to_owned()),
            installation_id: self.app_installation_id,
        })
    }
}

/// `--age-recipient`, where targets come from flags (the quick path, a worker's
/// `--allow-target`s): config jobs set `encryption:`.
#[derive(Debug, Clone, Args)]
pub struct RecipientArg {
    /// Encrypt the backups to this age recipient (`age1…` or `ssh-ed25519 AAAA…`;
    /// repeatable, or comma-separated): with --org/--user, or a worker's
    /// --allow-target targets. Only public keys: backing up never needs an identity.
    #[arg(
        long,
        value_name = "KEY",
        env = "REPOVAULT_AGE_RECIPIENTS",
        value_delimiter = ','
    )]
    pub age_recipient: Vec<String>,
}

impl RecipientArg {
    /// The keys that seal to these recipients (none: nothing is sealed).
    pub fn keys(&self) -> Result<Keys, InvalidConfig> {
        let recipients = self.age_recipient.iter().map(|r| r.trim().to_owned());
        Keys::sealing(&Recipients(recipients.collect()))
            .map_err(|e| InvalidConfig(format!("--age-recipient: {e}")))
    }
}

/// `--identity`, on every command that reads backups back: what opens encrypted ones.
#[derive(Debug, Clone, Args)]
pub struct IdentityArg {
    /// An age identity file (`age-keygen`'s output) or an OpenSSH ed25519 private key
    /// without passphrase, to read backups encrypted to its public key. Without it,
    /// encrypted objects are checked by size and SHA-256 only.
    #[arg(long, value_name = "FILE", env = "REPOVAULT_AGE_IDENTITY_FILE")]
    pub identity: Option<PathBuf>,
}

impl IdentityArg {
    /// The keys readers open sealed objects with (none without `--identity`).
    pub fn keys(&self) -> Result<Keys, InvalidConfig> {
        Ok(Keys::new(None, self.identities()?))
    }

    /// The identities in `--identity`'s file, if one was given.
    pub fn identities(&self) -> Result<Option<Identities>, InvalidConfig> {
        self.identity
            .as_deref()
            .map(Identities::from_file)
            .transpose()
            .map_err(|e| InvalidConfig(format!("--identity: {e}")))
    }
}

/// `--allow-insecure-http`, on every role that talks to GitHub.
#[derive(Debug, Clone, Copy, Args)]
pub struct InsecureHttpArg {
    /// Allow plain http:// GitHub API and clone URLs (a local test server). Without it
    /// they are refused: the token would cross the network unencrypted.
    #[arg(long, env = "REPOVAULT_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
}

/// Where a configuration came from, so errors name what the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigOrigin {
    File,
    Flags,
}

impl SelectArgs {
    /// Loads and validates the configuration, letting `adjust` apply command-line
    /// overrides first. `implied_orgs` are owners to add a quick-path job for (the
    /// planner's `--repo`).
    pub fn load(
        &self,
        implied_orgs: &[String],
        adjust: impl FnOnce(&mut RawConfig),
    ) -> Result<Config, InvalidConfig> {
        let cwd = std::env::current_dir()
            .map_err(|e| InvalidConfig(format!("current directory: {e}")))?;
        let (mut raw, origin) = self
            .raw_config(&cwd, implied_orgs)
            .map_err(|e| InvalidConfig(e.to_string()))?;
        if self.insecure.allow_insecure_http {
            raw.allow_insecure_http = Some(true);
        }
        adjust(&mut raw);
        let mut config = raw
            .validate(&cwd)
            .map_err(|errors| InvalidConfig(name_keys_for(origin, errors).to_string()))?;
        for job in &mut config.jobs {
            job.options.full = self.full;
        }
        use_proxy(&config)?;
        Ok(config)
    }

    fn raw_config(
        &self,
        cwd: &Path,
        implied_orgs: &[String],
    ) -> Result<(RawConfig, ConfigOrigin), ConfigErrors> {
        let mut orgs = self.org.clone();
        if self.org.is_empty() && self.user.is_empty() && self.config.is_none() {
            for owner in implied_orgs {
                if !orgs.contains(owner) {
                    orgs.push(owner.clone());
                }
            }
        }
        let quick = !orgs.is_empty() || !self.user.is_empty();
        if quick && self.config.is_some() {
            return Err(single(
                "--config",
                "use either a config file or --org/--user, not both",
            ));
        }
        if !quick && !self.recipients.age_recipient.is_empty() {
            return Err(single(
                "--age-recipient",
                "applies to --org/--user; a config's jobs set `encryption:`",
            ));
        }
        if quick {
            let source = |org: Option<&String>, user: Option<&String>| RawSource {
                org: org.cloned(),
                user: user.cloned(),
                api_url: Some(self.api_url.clone()),
                include: self.pattern.clone(),
                exclude: self.exclude.clone(),
                forks: Some(!self.no_forks),
                archived: Some(!self.no_archived),
                ..RawSource::default()
            };
            let jobs = orgs
                .iter()
                .map(|o| source(Some(o), None))
                .chain(self.user.iter().map(|u| source(None, Some(u))))
                .map(|source| RawJob {
                    name: None,
                    source,
                    target: Some(self.dest.clone()),
                    options: RawOptions {
                        wiki: Some(!self.no_wiki),
                        metadata: Some(!self.no_metadata),
                        lfs: Some(self.lfs),
                    },
                    auth: self.app.raw(),
                    encryption: (!self.recipients.age_recipient.is_empty()).then(|| {
                        RawEncryption {
                            age_recipients: self.recipients.age_recipient.clone(),
                            age_recipients_file: None,
                        }
                    }),
                    ..RawJob::default()
                })
                .collect();
            let mut raw = RawConfig {
                token_file: self.token_file.clone(),
                jobs,
                ..RawConfig::default()
            };
            if self.probe_every.is_some() {
                raw.metadata.probe_every = self.probe_every.clone();
            }
            return Ok((raw, ConfigOrigin::Flags));
        }
        let path = match &self.config {
            Some(path) => cwd.join(path),
            None => {
                let default = cwd.join(defaults::CONFIG_FILE);
                if !default.exists() {
                    return Err(single(
                        "--org",
                        "nothing to back up: pass --org/--user, or --config FILE (or create ./repovault.yml)",
                    ));
                }
                default
            }
        };
        let mut raw = read_config_file(&path)?;
        if self.token_file.is_some() {
            raw.token_file = self.token_file.clone();
        }
        if self.probe_every.is_some() {
            raw.metadata.probe_every = self.probe_every.clone();
        }
        if self.app.app_id.is_some() {
            return Err(single(
                "--app-id",
                "with a config file, give each job an `auth:` instead",
            ));
        }
        Ok((raw, ConfigOrigin::File))
    }
}

/// Reads and validates a YAML config file named on the command line.
pub fn load_config_file(path: &Path) -> Result<Config, InvalidConfig> {
    load_config_file_with(path, |_| {})
}

/// Like [`load_config_file`], letting `adjust` apply command-line overrides first.
pub fn load_config_file_with(
    path: &Path,
    adjust: impl FnOnce(&mut RawConfig),
) -> Result<Config, InvalidConfig> {
    let cwd =
        std::env::current_dir().map_err(|e| InvalidConfig(format!("current directory: {e}")))?;
    let config = read_config_file(&cwd.join(path))
        .and_then(|mut raw| {
            adjust(&mut raw);
            raw.validate(&cwd)
        })
        .map_err(|e| InvalidConfig(e.to_string()))?;
    use_proxy(&config)?;
    Ok(config)
}

/// Makes a configuration's `proxy:` the process's (before any client is made).
fn use_proxy(config: &Config) -> Result<(), InvalidConfig> {
    match &config.proxy {
        Some(proxy) => repovault_http::configure(repovault_http::Proxies::fixed(
            proxy.url.expose(),
            &proxy.no_proxy,
        ))
        .map_err(|reason| InvalidConfig(format!("proxy: {reason}"))),
        None => Ok(()),
    }
}

/// The targets a flag names (`urls`) followed by those of `config`'s jobs, each once.
pub fn targets_of(
    flag: &str,
    urls: &[String],
    config: Option<&Config>,
) -> Result<Vec<repovault_core::Target>, InvalidConfig> {
    let cwd =
        std::env::current_dir().map_err(|e| InvalidConfig(format!("current directory: {e}")))?;
    let mut targets = Vec::new();
    for url in urls {
        let target = repovault_core::Target::parse(url, &cwd)
            .map_err(|reason| InvalidConfig(format!("{flag}: {reason}")))?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    for job in config.into_iter().flat_map(|c| &c.jobs) {
        if !targets.contains(&job.target) {
            targets.push(job.target.clone());
        }
    }
    Ok(targets)
}

/// Reads and parses a YAML config file; errors name the file.
pub fn read_config_file(path: &Path) -> Result<RawConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| single("--config", &format!("cannot read {}: {e}", path.display())))?;
    RawConfig::from_yaml(&text).map_err(|mut errors| {
        for e in &mut errors.0 {
            e.reason = format!("{}: {}", path.display(), e.reason);
        }
        errors
    })
}

pub fn single(key: &str, reason: &str) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        key: key.into(),
        reason: reason.into(),
    }])
}

/// Renames configuration keys to the flags that set them, for the quick path.
fn name_keys_for(origin: ConfigOrigin, mut errors: ConfigErrors) -> ConfigErrors {
    if origin == ConfigOrigin::Flags {
        for e in &mut errors.0 {
            e.key = flag_for(&e.key).unwrap_or(&e.key).to_owned();
        }
    }
    errors
}

fn flag_for(key: &str) -> Option<&'static str> {
    let field = key.split_once("].").map_or(key, |(_, rest)| rest);
    let field = field.split('[').next().unwrap_or(field);
    Some(match field {
        "source.include" => "--pattern",
        "source.exclude" => "--exclude",
        "source.org" | "name" => "--org",
        "source.user" => "--user",
        "source.api-url" => "--api-url",
        "target" => "--dest",
        "concurrency" => "--concurrency",
        "encryption" | "encryption.age-recipients" => "--age-recipient",
        _ => return None,
    })
}

/// S3 upload tuning.
#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// Multipart part size in MiB (at least 5). Memory per upload is about
    /// part size × (parts in flight + 1).
    #[arg(long, env = "REPOVAULT_PART_SIZE_MB", default_value_t = defaults::PART_SIZE_MB)]
    pub part_size_mb: usize,
    /// Parts uploaded at once per upload.
    #[arg(long, env = "REPOVAULT_PARTS_IN_FLIGHT", default_value_t = defaults::PARTS_IN_FLIGHT)]
    pub parts_in_flight: usize,
    /// An S3-compatible service's endpoint (R2, B2, MinIO, GCS, Wasabi), where a
    /// bucket's `s3:` entry sets none [default: AWS_ENDPOINT_URL_S3 or
    /// AWS_ENDPOINT_URL, else AWS].
    #[arg(long, env = "REPOVAULT_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 region (R2: auto), where a bucket's `s3:` entry sets none [default:
    /// the SDK's, e.g. AWS_REGION].
    #[arg(long, env = "REPOVAULT_S3_REGION")]
    pub s3_region: Option<String>,
    /// Path-style addressing, where a bucket's `s3:` entry does not say [default:
    /// true with a custom endpoint].
    #[arg(long, env = "REPOVAULT_S3_PATH_STYLE", value_name = "BOOL",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub s3_path_style: Option<bool>,
    /// What the S3 service supports, where a bucket's `s3:` entry does not say: auto
    /// (by endpoint host), aws, r2, b2, minio, gcs or wasabi (docs/STORAGE.md).
    #[arg(
        long,
        env = "REPOVAULT_S3_COMPAT",
        default_value = "auto",
        value_name = "PROVIDER"
    )]
    pub s3_compat: String,
}

impl S3Args {
    /// The S3 settings the command line gives (every flag checked): what a bucket
    /// without settings of its own in the configuration uses.
    pub fn settings(&self) -> Result<S3Settings, InvalidConfig> {
        if let Some(endpoint) = &self.s3_endpoint {
            check_endpoint(endpoint)
                .map_err(|Invalid(reason)| InvalidConfig(format!("--s3-endpoint: {reason}")))?;
        }
        let compat = parse_compat(&RawCompat::Named(self.s3_compat.clone()))
            .map_err(|Invalid(reason)| InvalidConfig(format!("--s3-compat: {reason}")))?;
        Ok(S3Settings {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            path_style: self.s3_path_style,
            compat,
            credentials: S3Credentials::Default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_defaults_show_as_they_are_typed() {
        for text in ["5m", "25s", "2h", "500ms", "0s", "90s"] {
            let parsed: DurationArg = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(DurationArg(defaults::VISIBILITY_TIMEOUT).to_string(), "5m");
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let errors = ConfigErrors(vec![
            ConfigError {
                key: "jobs[0].source.include[1]".into(),
                reason: "bad".into(),
            },
            ConfigError {
                key: "jobs[2].target".into(),
                reason: "bad".into(),
            },
            ConfigError {
                key: "retry.max-attempts".into(),
                reason: "bad".into(),
            },
        ]);
        let renamed = name_keys_for(ConfigOrigin::Flags, errors.clone());
        let keys: Vec<_> = renamed.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["--pattern", "--dest", "retry.max-attempts"]);
        assert_eq!(name_keys_for(ConfigOrigin::File, errors.clone()), errors);
    }
}

/// Which backups a reading command works on.
#[derive(Debug, Args)]
pub struct FromArgs {
    /// The backups: a folder or s3://bucket/prefix [default: the targets of --config or
    /// ./repovault.yml, else ./backups].
    #[arg(long, value_name = "DIR|URL", env = "REPOVAULT_FROM")]
    pub from: Option<String>,
    /// YAML config whose jobs' targets to read.
    #[arg(short, long, env = "REPOVAULT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub identity: IdentityArg,
}

impl FromArgs {
    /// The repository of `target` in `store`, opening sealed objects with
    /// `--identity`.
    pub fn repository<'s>(
        &self,
        store: &'s dyn repovault_core::ports::store::Store,
        target: &repovault_core::Target,
    ) -> Result<repovault_repository::Repository<'s>, InvalidConfig> {
        Ok(repovault_repository::Repository::new(store, &target.prefix)
            .with_keys(self.identity.keys()?))
    }

    /// The configuration, if one applies (`--config`, or `./repovault.yml` without
    /// `--from`).
    pub fn config(&self) -> Result<Option<Config>, InvalidConfig> {
        match (&self.config, &self.from) {
            (Some(path), _) => load_config_file(path).map(Some),
            (None, None) if Path::new(defaults::CONFIG_FILE).exists() => {
                load_config_file(Path::new(defaults::CONFIG_FILE)).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The targets to read: `--from`, else the configuration's, else `./backups`.
    pub fn targets(&self) -> Result<Vec<repovault_core::Target>, InvalidConfig> {
        if let Some(from) = &self.from {
            return targets_of("--from", std::slice::from_ref(from), None);
        }
        match self.config()? {
            Some(config) => targets_of("--config", &[], Some(&config)),
            None => targets_of("--from", &["./backups".to_owned()], None),
        }
    }
}

/// `OWNER/NAME`.
pub fn owner_and_name(text: &str) -> Result<(String, String), InvalidConfig> {
    let Some((owner, name)) = text.split_once('/') else {
        return Err(InvalidConfig(format!("{text:?}: expected OWNER/NAME")));
    };
    repovault_repository::Repository::check_names(owner, name)
        .map_err(|e| InvalidConfig(format!("{text:?}: expected OWNER/NAME: {e}")))?;
    Ok((owner.to_owned(), name.to_owned()))
}

/// `--at`: `2026-11-20` (the end of that day, UTC) or a full timestamp.
pub fn parse_at(text: &str) -> Result<jiff::Timestamp, InvalidConfig> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let date: jiff::civil::Date = text.parse().map_err(|_| {
        InvalidConfig(format!(
            "--at {text:?}: expected 2026-11-20 or 2026-11-20T14:00:00Z"
        ))
    })?;
    let end = date
        .at(23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| InvalidConfig(e.to_string()))?;
    Ok(end.timestamp())
}
