//! `repovault restore`: get a repository back as a bare repository (and its wiki),
//! checked against its manifest, optionally pushed as a mirror to a new remote.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use repovault_core::{GitHost, Layout};
use repovault_git::GitCredentials;
use repovault_git::verify::check_backup;

use crate::args::{FromArgs, owner_and_name, parse_at};
use crate::exit::InvalidConfig;
use crate::wiring::{load_secret, open_store};

/// Where `restore --push-to` takes its token from.
const PUSH_TOKEN_ENV: &str = "REPOVAULT_PUSH_TOKEN";

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The repository to restore.
    #[arg(value_name = "OWNER/NAME")]
    pub repo: String,
    /// Directory to restore into (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
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
    let (owner, name) = owner_and_name(&args.repo)?;
    let at = args.at.as_deref().map(parse_at).transpose()?;
    if args.to.exists() && std::fs::read_dir(&args.to)?.next().is_some() {
        return Err(InvalidConfig(format!(
            "--to: {} exists and is not empty",
            args.to.display()
        ))
        .into());
    }
    let mut found = None;
    for target in args.from.targets()? {
        let store = open_store(&target, &args.from.s3).await?;
        let layout = Layout::new(&target.prefix);
        let key = match args.backup.as_deref() {
            Some(key) => store.head(key).await?.map(|_| key.to_owned()),
            None => {
                layout
                    .restore_point(store.as_ref(), &owner, &name, at)
                    .await?
            }
        };
        if let Some(key) = key {
            found = Some((store, layout, key));
            break;
        }
    }
    let Some((store, layout, key)) = found else {
        bail!("no backup of {owner}/{name} matches");
    };

    // Extract beside the destination, check, then move into place: a failed restore
    // leaves nothing behind.
    let parent = absolute_parent(&args.to)?;
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("--to: creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".repovault-restore-")
        .tempdir_in(&parent)?;
    let checked = match check_backup(store.as_ref(), &layout, &key, Some(staging.path())).await {
        Ok(checked) => checked,
        Err(reason) => {
            eprintln!("error: {key}: {reason}");
            return Ok(ExitCode::from(crate::EXIT_FAILED));
        }
    };
    if args.to.exists() {
        std::fs::remove_dir(&args.to)?;
    }
    std::fs::rename(staging.keep(), &args.to)
        .with_context(|| format!("--to: moving into {}", args.to.display()))?;

    let bare = args.to.join(format!("{name}.git"));
    println!(
        "restored {owner}/{name} from {key} ({}, {} refs) to {}",
        checked.manifest.created_at,
        checked.manifest.refs.len(),
        bare.display()
    );
    if checked.manifest.wiki_refs.is_some() {
        println!(
            "wiki: {}",
            args.to.join(format!("{name}.wiki.git")).display()
        );
    }
    let lfs = checked.manifest.stored_lfs().count();
    if lfs > 0 {
        println!(
            "lfs: {lfs} object(s) in {} (to a new remote: git lfs push --all <remote>)",
            bare.join("lfs/objects").display()
        );
    }
    if args.metadata {
        let to = args.to.join("data");
        match restore_data(store.as_ref(), &layout, &owner, &name, at, &to).await? {
            Some(items) => println!("data: {items} item(s) in {}", to.display()),
            None => println!("data: none backed up"),
        }
    }
    if let Some(url) = &args.push_to {
        // A URL gets the push token, scoped to its host; a local path needs none.
        let creds = if url.contains("://") {
            let host =
                GitHost::of_url(url).map_err(|e| InvalidConfig(format!("--push-to: {e}")))?;
            let token = load_secret(
                args.push_token_file.as_deref(),
                PUSH_TOKEN_ENV,
                "--push-token-file",
            )?;
            GitCredentials::new(token).scoped(host)
        } else {
            GitCredentials::new(None)
        };
        repovault_git::restore::push_mirror(&bare, url, &creds).await?;
        println!("pushed every ref to {url}");
    }
    Ok(ExitCode::SUCCESS)
}

fn absolute_parent(path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    Ok(absolute.parent().map(Path::to_owned).unwrap_or(absolute))
}

/// Writes the data snapshot of `owner/name` (the one `at` selects) into `to`: one JSON
/// Lines file per kind, the index, and the release assets. Returns the item count.
async fn restore_data(
    store: &dyn repovault_core::ports::store::Store,
    layout: &Layout,
    owner: &str,
    name: &str,
    at: Option<Timestamp>,
    to: &Path,
) -> anyhow::Result<Option<u64>> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let Some((_, index)) = repovault_data::snapshot_at(store, layout, owner, name, at).await?
    else {
        return Ok(None);
    };
    std::fs::create_dir_all(to.join("assets"))?;
    let mut total = 0;
    for (kind, file) in &index.kinds {
        let mut lines = Vec::new();
        for item in repovault_data::read_items(store, &file.key).await? {
            serde_json::to_writer(&mut lines, &item)?;
            lines.push(b'\n');
            total += 1;
        }
        std::fs::write(to.join(format!("{kind}.jsonl")), lines)?;
    }
    for (id, file) in &index.assets {
        let Some(mut body) = store.get_stream(&file.key).await? else {
            bail!("release asset {} is missing", file.key);
        };
        let mut out = tokio::fs::File::create(to.join("assets").join(id.to_string())).await?;
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
    }
    std::fs::write(to.join("index.json"), serde_json::to_vec_pretty(&index)?)?;
    Ok(Some(total))
}
