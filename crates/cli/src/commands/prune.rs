//! `repovault prune`: delete the backups a retention policy no longer keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use repovault_core::retention::{RetentionPolicy, StoredBackup};
use repovault_core::{LatestPointer, Layout, Target};

use crate::args::{FromArgs, duration};
use crate::exit::InvalidConfig;
use crate::wiring::open_store;

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the N newest backups of each repository.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours with backups.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days with backups.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks with backups.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months with backups.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years with backups.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every backup younger than this (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within: Option<Duration>,
}

impl PruneArgs {
    fn policy_from_flags(&self) -> RetentionPolicy {
        RetentionPolicy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within,
        }
    }
}

pub async fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let flags = args.policy_from_flags();
    // What to prune: with --keep-* flags, every repository of the targets read; else
    // each job of the configuration with its own policy (its owner's repositories).
    let scopes: Vec<(Target, Option<String>, RetentionPolicy)> = if !flags.is_empty() {
        args.from
            .targets()?
            .into_iter()
            .map(|t| (t, None, flags))
            .collect()
    } else {
        let config = args.from.config()?.ok_or_else(|| {
            InvalidConfig("no retention policy: pass --keep-* flags, or a --config whose jobs have `retention:`".into())
        })?;
        config
            .jobs
            .into_iter()
            .filter(|j| !j.retention.is_empty())
            .map(|j| {
                (
                    j.target,
                    Some(j.selector.owner.login().to_owned()),
                    j.retention,
                )
            })
            .collect()
    };
    if scopes.is_empty() {
        return Err(InvalidConfig(
            "no job has a `retention:` policy; nothing would ever be deleted".into(),
        )
        .into());
    }
    let now = Timestamp::now();
    let (mut kept, mut deleted) = (0usize, 0usize);
    for (target, owner, policy) in scopes {
        let store = open_store(&target, &args.from.s3).await?;
        let layout = Layout::new(&target.prefix);
        let prefix = match &owner {
            Some(owner) => format!("{}{owner}/", layout.repos_root()),
            None => layout.repos_root(),
        };
        let objects = store.list(&prefix).await?;
        let keys: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let mut by_repo: BTreeMap<(String, String), Vec<(String, StoredBackup)>> = BTreeMap::new();
        for object in &objects {
            let Some(archive) = layout.parse_archive(&object.key) else {
                continue;
            };
            let has_manifest = layout
                .manifest_for(&object.key)
                .is_some_and(|m| keys.contains(m.as_str()));
            by_repo
                .entry((archive.owner, archive.repo))
                .or_default()
                .push((
                    object.key.clone(),
                    StoredBackup {
                        at: archive.at,
                        stored_at: object.last_modified,
                        has_manifest,
                    },
                ));
        }
        for ((owner, name), archives) in by_repo {
            let latest: Option<LatestPointer> =
                store.get_json(&layout.latest(&owner, &name)).await?;
            let protected_at = latest.and_then(|l| Layout::archive_time(&l.archive.key));
            let backups: Vec<StoredBackup> = archives.iter().map(|(_, b)| b.clone()).collect();
            let decisions = policy.decide(&backups, protected_at, now);
            for ((key, backup), reasons) in archives.iter().zip(decisions) {
                let at = backup.at;
                if reasons.is_empty() {
                    deleted += 1;
                    if args.dry_run {
                        println!("would delete {key} ({at})");
                    } else {
                        store.delete(key).await?;
                        if let Some(manifest) = layout.manifest_for(key) {
                            store.delete(&manifest).await?;
                        }
                        println!("deleted {key} ({at})");
                    }
                } else {
                    kept += 1;
                    let why: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
                    println!("keep   {key} ({})", why.join(", "));
                }
            }
        }
    }
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    println!("{kept} kept, {deleted} {verb}");
    Ok(ExitCode::SUCCESS)
}
