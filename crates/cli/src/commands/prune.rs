//! `repovault prune`: delete the backups a retention policy no longer keeps.

use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use repovault_core::Target;
use repovault_core::config::RawRetention;
use repovault_core::ports::store::{DryRun, Store};
use repovault_repository::PruneScope;

use crate::args::FromArgs;
use crate::exit::InvalidConfig;
use crate::out::outln;
use crate::wiring::open_from;

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
    // With --keep-* flags: every repository of the targets read, under that policy.
    // Else each target under the policies of the configuration's jobs that write to
    // it, each applied to the repositories its job selects (a job without
    // `retention:` keeps everything it selects).
    let mut targets: Vec<(Target, Vec<PruneScope>)> = Vec::new();
    if !flags.is_empty() {
        for target in args.from.targets()? {
            let scope = PruneScope {
                selector: None,
                policy: flags,
            };
            targets.push((target, vec![scope]));
        }
    } else {
        let config = args.from.config()?.ok_or_else(|| {
            InvalidConfig("no retention policy: pass --keep-* flags, or a --config whose jobs have `retention:`".into())
        })?;
        if config.jobs.iter().all(|j| j.retention.is_empty()) {
            return Err(InvalidConfig(
                "no job has a `retention:` policy; nothing would ever be deleted".into(),
            )
            .into());
        }
        for job in config.jobs {
            let scope = PruneScope {
                selector: Some(job.selector),
                policy: job.retention,
            };
            match targets.iter_mut().find(|(t, _)| *t == job.target) {
                Some((_, scopes)) => scopes.push(scope),
                None => targets.push((job.target, vec![scope])),
            }
        }
    }
    let now = Timestamp::now();
    let (mut kept, mut deleted) = (0usize, 0usize);
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    for (target, scopes) in targets {
        let store = open_from(&args.from, &target).await?;
        let dry_run = DryRun(store.as_ref());
        let store: &dyn Store = if args.dry_run {
            &dry_run
        } else {
            store.as_ref()
        };
        let repo = args.from.repository(store, &target)?;
        for pruned in repo.prune(&scopes, now).await? {
            let (key, at) = (&pruned.key, pruned.at);
            if pruned.kept.is_empty() {
                deleted += 1;
                outln!("{verb} {key} ({at})");
            } else {
                kept += 1;
                let why: Vec<&str> = pruned.kept.iter().map(|r| r.as_str()).collect();
                outln!("keep   {key} ({})", why.join(", "));
            }
        }
    }
    outln!("{kept} kept, {deleted} {verb}");
    Ok(ExitCode::SUCCESS)
}
