//! `repovault prune`: delete the backups a retention policy no longer keeps.

use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use repovault_core::config::RawRetention;
use repovault_core::ports::store::{DryRun, Store};
use repovault_core::retention::{self, RetentionPolicy};
use repovault_core::{Layout, Target};

use crate::args::FromArgs;
use crate::exit::InvalidConfig;
use crate::wiring::open_store;

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub keep: RawRetention,
}

pub async fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let flags = args
        .keep
        .resolve(|rule| format!("--{rule}"))
        .map_err(|e| InvalidConfig(e.to_string()))?;
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
        let dry_run = DryRun(store.as_ref());
        let store: &dyn Store = if args.dry_run {
            &dry_run
        } else {
            store.as_ref()
        };
        let layout = Layout::new(&target.prefix);
        let prefix = match &owner {
            Some(owner) => format!("{}{owner}/", layout.repos_root()),
            None => layout.repos_root(),
        };
        for pruned in retention::prune(store, &layout, &prefix, &policy, now).await? {
            let (key, at) = (&pruned.key, pruned.at);
            if pruned.kept.is_empty() {
                deleted += 1;
                let verb = if args.dry_run {
                    "would delete"
                } else {
                    "deleted"
                };
                println!("{verb} {key} ({at})");
            } else {
                kept += 1;
                let why: Vec<&str> = pruned.kept.iter().map(|r| r.as_str()).collect();
                println!("keep   {key} ({})", why.join(", "));
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
