//! Command-line arguments.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use repovault_app::LogFormat;
use repovault_core::config::{
    ConfigError, ConfigErrors, RawConfig, RawJob, RawOptions, RawSource, defaults,
};

#[derive(Debug, Parser)]
#[command(name = "repovault", version, about = "Back up whole GitHub organizations to object storage", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: auto (JSON unless a terminal), json, text.
    #[arg(long, global = true, default_value = "auto", value_parser = clap::value_parser!(LogFormat))]
    pub log_format: LogFormat,
    /// More logging (-v: info on a terminal, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Cli {
    /// Terminals get a progress line and only warnings; pipes get info-level JSON.
    pub fn default_log_level(&self) -> &'static str {
        use std::io::IsTerminal;
        match self.verbose {
            0 if std::io::stderr().is_terminal() => "warn",
            0 | 1 => "info",
            _ => "debug",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, back up and report in one process (the embedded default: a local folder,
    /// no AWS account needed).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Repositories backed up at once.
    #[arg(long, env = "REPOVAULT_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Run id (default: the UTC start time plus a random suffix).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Where clones are made while archiving (default: the system temp dir).
    #[arg(long, env = "REPOVAULT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

/// What to back up: a YAML config file, or the quick path with flags.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// YAML config file [default: ./repovault.yml when present and no --org/--user].
    #[arg(short, long, env = "REPOVAULT_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Where backups go: a folder or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|URL", default_value = "./backups")]
    pub dest: String,
    /// GitHub API base URL (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = defaults::API_URL)]
    pub api_url: String,
    /// File holding the GitHub token [default: the GITHUB_TOKEN environment variable].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Where a configuration came from, so errors name what the user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOrigin {
    File,
    Flags,
}

impl SelectArgs {
    /// The raw configuration these arguments describe.
    pub fn raw_config(&self, cwd: &Path) -> Result<(RawConfig, ConfigOrigin), ConfigErrors> {
        let quick = !self.org.is_empty() || !self.user.is_empty();
        if quick && self.config.is_some() {
            return Err(single(
                "--config",
                "use either a config file or --org/--user, not both",
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
            let jobs = self
                .org
                .iter()
                .map(|o| source(Some(o), None))
                .chain(self.user.iter().map(|u| source(None, Some(u))))
                .map(|source| RawJob {
                    name: None,
                    source,
                    target: Some(self.dest.clone()),
                    options: RawOptions {
                        wiki: Some(!self.no_wiki),
                        ..RawOptions::default()
                    },
                })
                .collect();
            let raw = RawConfig {
                token_file: self.token_file.clone(),
                jobs,
                ..RawConfig::default()
            };
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
        let text = std::fs::read_to_string(&path)
            .map_err(|e| single("--config", &format!("cannot read {}: {e}", path.display())))?;
        let mut raw = RawConfig::from_yaml(&text).map_err(|mut errors| {
            for e in &mut errors.0 {
                e.reason = format!("{}: {}", path.display(), e.reason);
            }
            errors
        })?;
        if self.token_file.is_some() {
            raw.token_file = self.token_file.clone();
        }
        Ok((raw, ConfigOrigin::File))
    }
}

fn single(key: &str, reason: &str) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        key: key.into(),
        reason: reason.into(),
    }])
}

/// Renames configuration keys to the flags that set them, for the quick path.
pub fn name_keys_for(origin: ConfigOrigin, mut errors: ConfigErrors) -> ConfigErrors {
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
        "source.org" => "--org",
        "source.user" => "--user",
        "source.api-url" => "--api-url",
        "target" => "--dest",
        "concurrency" => "--concurrency",
        "name" => "--org",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
