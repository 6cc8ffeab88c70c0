//! `repovault ls`: what is backed up, newest first.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use repovault_core::{GoneMarker, LatestPointer, Layout, Manifest};
use repovault_reporter::human_bytes;

use crate::args::{FromArgs, owner_and_name};
use crate::wiring::open_store;

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
        let store = open_store(&target, &args.from.s3).await?;
        let layout = Layout::new(&target.prefix);
        let prefix = match &repo {
            Some((owner, name)) => layout.repo_dir(owner, name),
            None => layout.repos_root(),
        };
        let objects = store.list(&prefix).await?;
        let sizes: BTreeMap<&str, u64> = objects.iter().map(|o| (o.key.as_str(), o.size)).collect();
        // owner/name → [(time, key, bytes this backup added)]
        let mut by_repo: BTreeMap<String, Vec<(Timestamp, String, u64)>> = BTreeMap::new();
        for key in layout.backups_among(sizes.keys().copied()) {
            let backup = layout.parse_backup(&key).expect("a backup key");
            let size = if backup.archive {
                sizes[key.as_str()]
            } else {
                [false, true]
                    .iter()
                    .filter_map(|wiki| {
                        sizes.get(
                            layout
                                .bundle(&backup.owner, &backup.repo, backup.at, *wiki)
                                .as_str(),
                        )
                    })
                    .sum()
            };
            by_repo
                .entry(format!("{}/{}", backup.owner, backup.repo))
                .or_default()
                .push((backup.at, key, size));
        }
        for list in by_repo.values_mut() {
            list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
        }
        // Repositories no longer on GitHub under their name: where they went.
        let mut gone: BTreeMap<String, String> = BTreeMap::new();
        for full in by_repo.keys() {
            let (owner, name) = full.split_once('/').expect("owner/name");
            if let Ok(Some(marker)) = store
                .get_json::<GoneMarker>(&layout.gone(owner, name))
                .await
            {
                let at = marker.at.strftime("%Y-%m-%d");
                let text = match marker.to {
                    Some(to) => format!("moved to {to} ({at})"),
                    None => format!("deleted on GitHub ({at}); backups kept"),
                };
                gone.insert(full.clone(), text);
            }
        }
        println!("# {target}");
        match &repo {
            None => {
                println!(
                    "{:<40} {:>7}  {:<20}  {:>10}  NOTE",
                    "REPOSITORY", "BACKUPS", "NEWEST", "STORED"
                );
                for (full, list) in &by_repo {
                    let stored: u64 = list.iter().map(|(_, _, size)| size).sum();
                    println!(
                        "{full:<40} {:>7}  {:<20}  {:>10}  {}",
                        list.len(),
                        list[0].0.to_string(),
                        human_bytes(stored),
                        gone.get(full).map_or("", String::as_str)
                    );
                }
            }
            Some((owner, name)) => {
                if let Some(note) = gone.get(&format!("{owner}/{name}")) {
                    println!("{owner}/{name}: {note}");
                }
                let latest: Option<LatestPointer> =
                    store.get_json(&layout.latest(owner, name)).await?;
                println!(
                    "{:<20}  {:>10}  {:>6}  {:>5}  STATUS",
                    "DATE", "ADDED", "REFS", "LINK"
                );
                for (at, key, size) in by_repo.values().flatten() {
                    let manifest = match layout.manifest_for(key) {
                        Some(m) => store.get_json::<Manifest>(&m).await.ok().flatten(),
                        None => None,
                    };
                    let status = match (&manifest, &latest) {
                        (None, _) => "no manifest (incomplete)",
                        (Some(_), Some(l)) if l.backup.key == *key => "latest",
                        (Some(_), _) => "ok",
                    };
                    let refs = manifest
                        .as_ref()
                        .map_or("-".to_owned(), |m| m.refs.len().to_string());
                    // The backup's place in its chain (1: a full one); `-` for an archive.
                    let link = manifest
                        .filter(|m| !m.bundles.is_empty())
                        .map_or("-".to_owned(), |m| m.bundles.len().to_string());
                    println!(
                        "{:<20}  {:>10}  {refs:>6}  {link:>5}  {status}",
                        at.to_string(),
                        human_bytes(*size)
                    );
                }
            }
        }
        if by_repo.is_empty() {
            println!("(no backups)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
