//! `repovault verify`: download archives, check them against their manifests, and
//! optionally prove they restore.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use repovault_core::RunId;
use repovault_reporter::human_bytes;
use repovault_repository::{Repository, Scope, check_backup, check_stored};

use crate::args::{FromArgs, owner_and_name};
use crate::exit::InvalidConfig;
use crate::out::outln;
use crate::wiring::open_from;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Only the archives a run wrote or confirmed.
    #[arg(long, value_name = "RUN_ID", conflicts_with = "repo")]
    pub run: Option<RunId>,
    /// Only this repository's archives.
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Check a random share of the archives, e.g. `5%`: run often, every archive gets
    /// its turn.
    #[arg(long, value_name = "PERCENT", value_parser = percent)]
    pub sample: Option<f64>,
    /// Also extract each archive and prove the repositories are whole: refs equal the
    /// manifest's, `git fsck --full` clean.
    #[arg(long)]
    pub restore_drill: bool,
    /// Where drills extract [default: the system temp dir].
    #[arg(long, env = "REPOVAULT_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?}: expected a percentage like 5%"))?;
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(format!("{text:?}: expected more than 0% and at most 100%"))
    }
}

pub async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let repo = args.repo.as_deref().map(owner_and_name).transpose()?;
    let (mut checked, mut failed) = (0usize, 0usize);
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repository = args.from.repository(store.as_ref(), &target)?;
        let mut keys = select(&repository, args.run.as_ref(), repo.as_ref()).await?;
        if let Some(share) = args.sample {
            let wanted = ((keys.len() as f64) * share / 100.0).ceil() as usize;
            fastrand::shuffle(&mut keys);
            keys.truncate(wanted.max(1).min(keys.len()));
            keys.sort();
        }
        for key in keys {
            let scratch = if args.restore_drill {
                Some(scratch_dir(args.work_dir.as_ref())?)
            } else {
                None
            };
            let drill = scratch.as_ref().map(|d| d.path().join("restore"));
            checked += 1;
            // Without an identity nothing is opened: what is stored is checked against
            // what the manifest records in the clear (all of it, unless encrypted).
            let result = if drill.is_none() && !repository.keys().opens() {
                check_stored(&repository, &key)
                    .await
                    .map(|size| (size, None))
            } else {
                check_backup(&repository, &key, drill.as_deref())
                    .await
                    .map(|ok| (ok.size, Some(ok.manifest.refs.len())))
            };
            match result {
                Ok((size, refs)) => {
                    let drilled = match refs.filter(|_| args.restore_drill) {
                        Some(refs) => format!(", restore drill ok ({refs} refs)"),
                        None => String::new(),
                    };
                    outln!("ok    {key}  {}  sha256 ok{drilled}", human_bytes(size));
                }
                Err(reason) => {
                    failed += 1;
                    outln!("FAIL  {key}: {reason}");
                }
            }
        }
    }
    outln!(
        "verified {checked} backup(s): {} ok, {failed} failed",
        checked - failed
    );
    if checked == 0 {
        eprintln!("warning: no backups matched");
    }
    Ok(ExitCode::from(if failed > 0 {
        crate::EXIT_FAILED
    } else {
        crate::EXIT_OK
    }))
}

/// Backup keys to check: a run's, a repository's, or every one.
async fn select(
    repository: &Repository<'_>,
    run: Option<&RunId>,
    repo: Option<&(String, String)>,
) -> anyhow::Result<Vec<String>> {
    let mut keys: Vec<String> = match (run, repo) {
        (Some(run), _) => {
            let backups = repository.run_backups(run).await?;
            if backups.is_none() {
                return Err(InvalidConfig(format!("--run: no run {run} here")).into());
            }
            backups.unwrap_or_default()
        }
        (None, Some((owner, name))) => repository.backup_keys(Scope::Repo(owner, name)).await?,
        (None, None) => repository.backup_keys(Scope::All).await?,
    };
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// A scratch directory for a restore drill, removed when dropped.
pub fn scratch_dir(work_dir: Option<&PathBuf>) -> std::io::Result<tempfile::TempDir> {
    let base = work_dir.cloned().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    tempfile::Builder::new()
        .prefix("repovault-drill-")
        .tempdir_in(base)
}
