//! `repovault ls`: what is backed up, newest first.

use std::process::ExitCode;

use clap::Args;
use repovault_reporter::human_bytes;
use repovault_repository::{Scope, describe_gone};

use crate::args::{FromArgs, owner_and_name};
use crate::out::outln;
use crate::wiring::open_from;

#[derive(Debug, Args)]
pub struct LsArgs {
    /// List this repository's backups (default: every repository).
    #[arg(value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    #[command(flatten)]
    pub from: FromArgs,
}

pub async fn ls(args: LsArgs) -> anyhow::Result<ExitCode> {
    let repo = args.repo.as_deref().map(owner_and_name).transpose()?;
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repository = args.from.repository(store.as_ref(), &target)?;
        outln!("# {target}");
        match &repo {
            None => {
                let entries = repository.repositories(Scope::All).await?;
                outln!(
                    "{:<40} {:>7}  {:<20}  {:>10}  {:>10}  NOTE",
                    "REPOSITORY",
                    "BACKUPS",
                    "NEWEST",
                    "STORED",
                    "DATA"
                );
                for entry in &entries {
                    outln!(
                        "{:<40} {:>7}  {:<20}  {:>10}  {:>10}  {}",
                        entry.full_name(),
                        entry.backups,
                        entry.newest.map_or("-".to_owned(), |t| t.to_string()),
                        human_bytes(entry.stored),
                        human_bytes(entry.data),
                        entry.gone.as_ref().map(describe_gone).unwrap_or_default()
                    );
                }
                if entries.is_empty() {
                    outln!("(no backups)");
                }
            }
            Some((owner, name)) => {
                if let Some(gone) = repository.gone(owner, name).await? {
                    outln!("{owner}/{name}: {}", describe_gone(&gone));
                }
                let backups = repository.catalog(owner, name).await?;
                outln!(
                    "{:<20}  {:>10}  {:>6}  {:>5}  STATUS",
                    "DATE",
                    "ADDED",
                    "REFS",
                    "LINK"
                );
                for backup in &backups {
                    let status = match (&backup.problem, backup.latest) {
                        (Some(problem), _) => problem.as_str(),
                        (None, true) => "latest",
                        (None, false) => "ok",
                    };
                    let or_dash = |n: Option<usize>| n.map_or("-".to_owned(), |n| n.to_string());
                    outln!(
                        "{:<20}  {:>10}  {:>6}  {:>5}  {status}",
                        backup.created_at.to_string(),
                        human_bytes(backup.bytes_added),
                        or_dash(backup.refs),
                        or_dash(backup.link),
                    );
                }
                if backups.is_empty() {
                    outln!("(no backups)");
                }
                let (snapshots, assets) = repository.data_catalog(owner, name).await?;
                if !snapshots.is_empty() {
                    outln!("");
                    outln!(
                        "{:<20}  {:>10}  {:>6}  STATUS",
                        "DATA SNAPSHOT",
                        "ADDED",
                        "FILES"
                    );
                    for snapshot in &snapshots {
                        let status = if snapshot.latest { "latest" } else { "" };
                        outln!(
                            "{:<20}  {:>10}  {:>6}  {status}",
                            snapshot.fetched_at.to_string(),
                            human_bytes(snapshot.bytes_added),
                            snapshot.files,
                        );
                    }
                    outln!("release assets: {}", human_bytes(assets));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
