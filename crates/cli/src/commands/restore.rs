//! `repovault restore`: get a repository back as a bare repository (and its wiki),
//! checked against its manifest, optionally pushed as a mirror to a new remote.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use repovault_core::GitHost;
use repovault_git::GitCredentials;
use repovault_repository::{RestoreError, RestoreRequest};

use crate::args::{FromArgs, owner_and_name, parse_at};
use crate::exit::InvalidConfig;
use crate::out::outln;
use crate::wiring::{load_secret, open_from};

/// Where `restore --push-to` takes its token from.
const PUSH_TOKEN_ENV: &str = "REPOVAULT_PUSH_TOKEN";

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The repository to restore (with --to-github-org: an owner, every repository
    /// of it).
    #[arg(value_name = "OWNER/NAME")]
    pub repo: String,
    /// Directory to restore into (must not exist, or be empty).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["to_github", "to_github_org"])]
    pub to: Option<PathBuf>,
    /// Restore into GitHub instead: a new (or empty) repository OWNER/NAME, with its
    /// git data, labels, milestones, issues, pull requests and releases. The token
    /// comes from REPOVAULT_PUSH_TOKEN (or --push-token-file), a write-scoped identity
    /// separate from the backup's.
    #[arg(long, value_name = "OWNER/NAME", conflicts_with_all = ["to", "push_to", "metadata"])]
    pub to_github: Option<String>,
    /// Restore every backed-up repository of the owner given as OWNER (or the one
    /// OWNER/NAME) into this GitHub organization, each under its own name, one after
    /// the other, each with its own journal.
    #[arg(long, value_name = "ORG", conflicts_with_all = ["to", "to_github", "push_to", "metadata", "backup"])]
    pub to_github_org: Option<String>,
    #[command(flatten)]
    pub github: crate::commands::restore_github::GitHubRestoreArgs,
    /// The newest backup at or before this time (`2026-11-20` means the end of that
    /// day, UTC; or a full timestamp) [default: the latest good backup].
    #[arg(long, value_name = "DATE", conflicts_with = "backup")]
    pub at: Option<String>,
    /// Restore this backup exactly (its key, as `ls` and `verify` print it; `--archive`
    /// is another name for it).
    #[arg(long, value_name = "KEY", alias = "archive")]
    pub backup: Option<String>,
    /// Also write the repository's data beyond git (issues, pull requests…) from the
    /// backup at or before the same time into `<DIR>/data/` as JSON Lines, with its
    /// release assets in `<DIR>/data/assets/`.
    #[arg(long)]
    pub metadata: bool,
    /// Then push every ref to this remote (`git push --mirror`, no hooks run). The
    /// token for it comes from REPOVAULT_PUSH_TOKEN (or --push-token-file), never from
    /// the backup token, and is sent to this URL's host only.
    #[arg(long, value_name = "URL")]
    pub push_to: Option<String>,
    /// File holding the token for --push-to [default: REPOVAULT_PUSH_TOKEN].
    #[arg(long, value_name = "FILE", env = "REPOVAULT_PUSH_TOKEN_FILE")]
    pub push_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub from: FromArgs,
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    if args.to_github.is_some() || args.to_github_org.is_some() {
        return crate::commands::restore_github::restore_into_github(args).await;
    }
    let (owner, name) = owner_and_name(&args.repo)?;
    let to = args
        .to
        .clone()
        .expect("clap requires --to without --to-github");
    let at = args.at.as_deref().map(parse_at).transpose()?;
    // Refused before anything is read: the push token is needed at the end.
    let push = match &args.push_to {
        Some(url) => Some((url, push_credentials(url, &args)?)),
        None => None,
    };
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repo = args.from.repository(store.as_ref(), &target)?;
        let key = match args.backup.as_deref() {
            Some(key) => store.head(key).await?.map(|_| key.to_owned()),
            None => repo.restore_point(&owner, &name, at).await?,
        };
        let Some(key) = key else { continue };
        let request = RestoreRequest {
            owner: &owner,
            name: &name,
            key: &key,
            to: &to,
            data: args.metadata.then_some(at),
        };
        let restored = match repo.restore(&request).await {
            Ok(restored) => restored,
            Err(RestoreError::Destination(reason)) => {
                return Err(InvalidConfig(format!("--to: {reason}")).into());
            }
            Err(e @ (RestoreError::Check { .. } | RestoreError::Repo(_))) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(crate::EXIT_FAILED));
            }
            Err(e) => return Err(e.into()),
        };
        let manifest = &restored.checked.manifest;
        outln!(
            "restored {owner}/{name} from {key} ({}, {} refs) to {}",
            manifest.created_at,
            manifest.refs.len(),
            restored.repo_dir.display()
        );
        if let Some(wiki) = &restored.wiki_dir {
            outln!("wiki: {}", wiki.display());
        }
        if restored.lfs_objects > 0 {
            outln!(
                "lfs: {} object(s) in {} (to a new remote: git lfs push --all <remote>)",
                restored.lfs_objects,
                restored.repo_dir.join("lfs/objects").display()
            );
        }
        if args.metadata {
            match restored.data_items {
                Some(items) => outln!("data: {items} item(s) in {}", to.join("data").display()),
                None => outln!("data: none backed up"),
            }
        }
        if let Some((url, creds)) = push {
            repovault_git::restore::push_mirror(&restored.repo_dir, url, &creds).await?;
            outln!("pushed every ref to {url}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    bail!("no backup of {owner}/{name} matches");
}

/// The push token, scoped to `url`'s host; a local path needs none.
pub(crate) fn push_credentials(url: &str, args: &RestoreArgs) -> anyhow::Result<GitCredentials> {
    if !url.contains("://") {
        return Ok(GitCredentials::new(None));
    }
    let host = GitHost::of_url(url).map_err(|e| InvalidConfig(format!("--push-to: {e}")))?;
    let token = load_secret(
        args.push_token_file.as_deref(),
        PUSH_TOKEN_ENV,
        "--push-token-file",
    )?;
    Ok(GitCredentials::new(token).scoped(host))
}
