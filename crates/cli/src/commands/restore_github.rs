//! `repovault restore OWNER/NAME --to-github NEW_OWNER/NEW_NAME`: a backup put back
//! into GitHub (see `repovault_recover`), paced, resumable from its journal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::bail;
use clap::Args;
use repovault_core::GitHost;
use repovault_core::Owner;
use repovault_core::config::defaults;
use repovault_core::ports::source::SourceError;
use repovault_core::ports::source::TokenSource;
use repovault_git::GitCredentials;
use repovault_github::{AppCredentials, GitHubAuth, GitHubSource, Installation};
use repovault_recover::pace::Governor;
use repovault_recover::{Backup, Options, Pace, Plan, RecoverError, Report, Request};
use repovault_repository::{Repository, Scope};

use crate::args::{owner_and_name, parse_at};
use crate::commands::restore::RestoreArgs;
use crate::exit::InvalidConfig;
use crate::out::outln;
use crate::wiring::{load_secret, open_from};

/// Where the token for writing to GitHub comes from: the same write-scoped identity
/// `--push-to` uses, never the backup's token.
const WRITE_TOKEN_ENV: &str = "REPOVAULT_PUSH_TOKEN";

/// Where the restoring App's private key is when no file is named.
const APP_KEY_ENV: &str = "REPOVAULT_RESTORE_APP_PRIVATE_KEY";

#[derive(Debug, Args)]
pub struct GitHubRestoreArgs {
    /// With --to-github: the GitHub API to restore into.
    #[arg(long, value_name = "URL", env = "REPOVAULT_RESTORE_API_URL", default_value = defaults::API_URL)]
    pub restore_api_url: String,
    /// With --to-github: where release assets are uploaded, for a GitHub whose upload
    /// host cannot be told from its API URL.
    #[arg(long, value_name = "URL", env = "REPOVAULT_GITHUB_UPLOAD_URL")]
    pub upload_url: Option<String>,
    /// With --to-github: use an existing repository that is not empty; nothing in it
    /// is overwritten or deleted.
    #[arg(long)]
    pub into_existing: bool,
    /// With --to-github: create the repository public (default: private).
    #[arg(long)]
    pub public: bool,
    /// With --to-github: also branch protection, as backed up (admin rights needed).
    #[arg(long)]
    pub restore_protection: bool,
    /// With --to-github: also collaborators and team permissions, as backed up
    /// (admin rights needed; people outside the organization get invitations).
    #[arg(long)]
    pub restore_access: bool,
    /// With --to-github: print what would be created and how long it takes; create
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --to-github: the journal of what was created, which a rerun continues
    /// from [default: ./repovault-restore-<NEW_OWNER>.<NEW_NAME>.journal].
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// With --to-github: creating requests a minute at most (GitHub allows about 80).
    #[arg(long, value_name = "N", default_value_t = Pace::GITHUB.per_minute, value_parser = clap::value_parser!(u32).range(1..))]
    pub pace_per_minute: u32,
    /// With --to-github: creating requests an hour at most (GitHub allows about 500).
    #[arg(long, value_name = "N", default_value_t = Pace::GITHUB.per_hour, value_parser = clap::value_parser!(u32).range(1..))]
    pub pace_per_hour: u32,
    /// With --to-github: write as this GitHub App (its numeric id, with write
    /// permissions; installed on the target) instead of with a token.
    #[arg(long, value_name = "ID", env = "REPOVAULT_RESTORE_APP_ID")]
    pub restore_app_id: Option<u64>,
    /// With --restore-app-id: the App's private key (PEM) [default: the
    /// REPOVAULT_RESTORE_APP_PRIVATE_KEY environment variable].
    #[arg(
        long,
        value_name = "FILE",
        env = "REPOVAULT_RESTORE_APP_PRIVATE_KEY_FILE"
    )]
    pub restore_app_key_file: Option<PathBuf>,
    /// With --restore-app-id: the App's installation [default: the one on the target
    /// organization].
    #[arg(long, value_name = "ID", env = "REPOVAULT_RESTORE_APP_INSTALLATION_ID")]
    pub restore_app_installation_id: Option<u64>,
    /// With --to-github: allow a plain-http GitHub (a test server).
    #[arg(long)]
    pub restore_allow_insecure_http: bool,
}

/// What every repository of one invocation shares.
struct Session {
    github: GitHubSource,
    host: GitHost,
    creds: GitCredentials,
    pace: Pace,
    /// One pacing budget for every repository restored.
    governor: tokio::sync::Mutex<Governor>,
    stop: Arc<AtomicBool>,
}

pub async fn restore_into_github(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let gh = &args.github;
    let at = args.at.as_deref().map(parse_at).transpose()?;
    let host = GitHost::from_api_url(&gh.restore_api_url, gh.restore_allow_insecure_http)
        .map_err(|e| InvalidConfig(format!("--restore-api-url: {e}")))?;
    let token = load_secret(
        args.push_token_file.as_deref(),
        WRITE_TOKEN_ENV,
        "--push-token-file",
    )?;
    let auth = match gh.restore_app_id {
        Some(app_id) => {
            let private_key = load_secret(
                gh.restore_app_key_file.as_deref(),
                APP_KEY_ENV,
                "--restore-app-key-file",
            )?
            .ok_or_else(|| {
                InvalidConfig(format!(
                    "--restore-app-id needs the App's private key: --restore-app-key-file or {APP_KEY_ENV}"
                ))
            })?;
            let owner = match (&args.to_github, &args.to_github_org) {
                (Some(to), _) => owner_and_name(to)?.0,
                (None, Some(org)) => org.clone(),
                (None, None) => unreachable!("called with --to-github or --to-github-org"),
            };
            GitHubAuth::App(AppCredentials {
                app_id,
                private_key,
                installation: match gh.restore_app_installation_id {
                    Some(id) => Installation::Id(id),
                    None => Installation::On(Owner::Org(owner)),
                },
            })
        }
        None if token.is_none() && !gh.dry_run => {
            return Err(InvalidConfig(format!(
                "restoring into GitHub needs a token that may create repositories ({WRITE_TOKEN_ENV} or --push-token-file), or a GitHub App (--restore-app-id)"
            ))
            .into());
        }
        None => GitHubAuth::Token(token),
    };
    if args.to_github_org.is_some() && gh.journal.is_some() {
        return Err(InvalidConfig(
            "--journal names one repository's journal: with --to-github-org each repository has its own (./repovault-restore-<ORG>.<NAME>.journal)".into(),
        )
        .into());
    }
    let mut github = GitHubSource::new(&gh.restore_api_url, auth)?;
    if let Some(url) = &gh.upload_url {
        github = github.upload_url(url);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        crate::commands::shutdown_signal().await;
        eprintln!(
            "stopping after the object being created (Ctrl-C again stops at once; run the same command again to continue)"
        );
        on_signal.store(true, Ordering::SeqCst);
        // The journal is durable after every object: stopping now loses nothing.
        crate::commands::shutdown_signal().await;
        std::process::exit(130);
    });
    let pace = Pace {
        per_minute: gh.pace_per_minute,
        per_hour: gh.pace_per_hour,
    };
    // Git gets the token, or an App installation token (valid an hour: pushes come
    // first, and a rerun gets a new one).
    let git_token = if gh.dry_run {
        None
    } else {
        github.token().await?
    };
    let session = Session {
        creds: GitCredentials::new(git_token).scoped(host.clone()),
        github,
        host,
        pace,
        governor: tokio::sync::Mutex::new(Governor::new(pace)),
        stop,
    };
    let targets = args.from.targets()?;
    // Which repositories, to where.
    let pairs: Vec<((String, String), (String, String))> =
        match (&args.to_github, &args.to_github_org) {
            (Some(to), _) => {
                let from = owner_and_name(&args.repo)?;
                let to = owner_and_name(to)
                    .map_err(|e| InvalidConfig(format!("--to-github: {}", e.0)))?;
                vec![(from, to)]
            }
            (None, Some(org)) => {
                repovault_core::check_login("--to-github-org", org)
                    .map_err(|e| InvalidConfig(e.to_string()))?;
                let mut pairs = Vec::new();
                for target in &targets {
                    let store = open_from(&args.from, target).await?;
                    let repo = args.from.repository(store.as_ref(), target)?;
                    for entry in repo.repositories(Scope::All).await? {
                        let wanted = match args.repo.split_once('/') {
                            Some((owner, name)) => entry.owner == owner && entry.name == name,
                            None => entry.owner.eq_ignore_ascii_case(&args.repo),
                        };
                        if wanted
                            && !pairs
                                .iter()
                                .any(|(from, _): &((String, String), _)| from.1 == entry.name)
                        {
                            pairs.push((
                                (entry.owner.clone(), entry.name.clone()),
                                (org.clone(), entry.name),
                            ));
                        }
                    }
                }
                pairs
            }
            (None, None) => unreachable!("called with --to-github or --to-github-org"),
        };
    if pairs.is_empty() {
        bail!("no backup of {} matches", args.repo);
    }
    let mut failed = 0;
    for ((owner, name), (new_owner, new_name)) in pairs {
        if session.stop.load(Ordering::SeqCst) {
            failed += 1;
            continue;
        }
        outln!("{owner}/{name} → {new_owner}/{new_name}");
        let done = restore_from_targets(
            &session,
            &args,
            at,
            (&owner, &name),
            (&new_owner, &new_name),
        )
        .await;
        match done {
            Ok(true) => {}
            Ok(false) => failed += 1,
            // With --to-github-org one repository failing does not stop the others.
            Err(e) if args.to_github.is_none() => {
                eprintln!("error: {new_owner}/{new_name}: {e:#}");
                failed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILED)
    })
}

/// Restores `owner/name`'s backup from the first target that has one matching.
async fn restore_from_targets(
    session: &Session,
    args: &RestoreArgs,
    at: Option<jiff::Timestamp>,
    (owner, name): (&str, &str),
    (new_owner, new_name): (&str, &str),
) -> anyhow::Result<bool> {
    let gh = &args.github;
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repo = args.from.repository(store.as_ref(), &target)?;
        let key = match args.backup.as_deref() {
            Some(key) => store.head(key).await?.map(|_| key.to_owned()),
            None => repo.restore_point(owner, name, at).await?,
        };
        let Some(key) = key else { continue };
        let journal = gh.journal.clone().unwrap_or_else(|| {
            // An owner has no `.`: no two targets share a journal.
            PathBuf::from(format!("repovault-restore-{new_owner}.{new_name}.journal"))
        });
        return restore_one(
            session,
            &repo,
            (&key, at),
            (owner, name),
            (new_owner, new_name),
            &journal,
            gh,
        )
        .await;
    }
    bail!("no backup of {owner}/{name} matches")
}

/// Restores one backup (its key, and the time its data is taken at); `Ok(false)`
/// when it stopped short (a rerun continues).
async fn restore_one(
    session: &Session,
    repo: &Repository<'_>,
    (key, at): (&str, Option<jiff::Timestamp>),
    (owner, name): (&str, &str),
    (new_owner, new_name): (&str, &str),
    journal: &std::path::Path,
    gh: &GitHubRestoreArgs,
) -> anyhow::Result<bool> {
    let work = tempfile::Builder::new()
        .prefix("repovault-restore-")
        .tempdir()?;
    let backup = Backup::restore(repo, owner, name, key, at, &work.path().join("backup")).await?;
    let plan = Plan::of(&backup);
    print_plan(key, &plan, &session.pace)?;
    if gh.dry_run {
        outln!("dry run: nothing created");
        return Ok(true);
    }
    let progress = |line: &str| eprintln!("{line}");
    let request = Request {
        backup: &backup,
        owner: new_owner,
        name: new_name,
        writer: &session.github,
        git_origin: &session.host.origin(),
        creds: &session.creds,
        journal,
        options: Options {
            into_existing: gh.into_existing,
            public: gh.public,
            protection: gh.restore_protection,
            access: gh.restore_access,
            pace: session.pace,
        },
        governor: &session.governor,
        stop: &session.stop,
        progress: &progress,
    };
    let report = match repovault_recover::restore_into_github(&request).await {
        Ok(report) => report,
        // What the operator must change (the target, the token): exit 2.
        Err(
            e @ (RecoverError::NotEmpty(_)
            | RecoverError::Owner(_)
            | RecoverError::Journal(_)
            | RecoverError::GitHub(
                _,
                SourceError::Unauthorized { .. } | SourceError::Forbidden { .. },
            )),
        ) => {
            return Err(InvalidConfig(e.to_string()).into());
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "what was created is in {}; run the same command again to continue",
                journal.display()
            );
            return Ok(false);
        }
    };
    print_report(new_owner, new_name, &report)?;
    Ok(report.complete)
}

fn print_plan(key: &str, plan: &Plan, pace: &Pace) -> anyhow::Result<()> {
    outln!("from {key}:");
    outln!(
        "  git: {} branch(es), {} tag(s), {} pull request head(s) as restored/pr/<N>, {} Git LFS object(s){}",
        plan.branches,
        plan.tags,
        plan.pr_heads,
        plan.lfs_objects,
        if plan.wiki { ", the wiki" } else { "" }
    );
    if !plan.has_data {
        outln!("  data: none backed up: git alone will be restored");
        return Ok(());
    }
    outln!(
        "  data: {} label(s), {} milestone(s), {} issue(s), {} pull request(s), {} comment(s) and review(s), {} release(s), {} asset(s)",
        plan.labels,
        plan.milestones,
        plan.issues,
        plan.pulls,
        plan.comments,
        plan.releases,
        plan.assets
    );
    let eta = pace.estimate(plan.requests);
    outln!(
        "  up to {} creating request(s) at {}/min and {}/h: about {} (less where the Issue Import API takes an issue with its comments at once)",
        plan.requests,
        pace.per_minute,
        pace.per_hour,
        humanize(eta)
    );
    Ok(())
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        3600..86400 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86400.0),
    }
}

fn print_report(owner: &str, name: &str, report: &Report) -> anyhow::Result<()> {
    let created: Vec<String> = report
        .created
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    outln!(
        "{} {owner}/{name}: created {}",
        if report.complete {
            "restored into"
        } else {
            "partly restored into"
        },
        if created.is_empty() {
            "nothing new".into()
        } else {
            created.join(", ")
        }
    );
    outln!(
        "pacing waited {} (GitHub's limits {}); journal {} ({} entries from earlier runs)",
        humanize(report.paced),
        humanize(report.limited),
        report.journal.display(),
        report.resumed
    );
    for note in &report.notes {
        outln!("note: {note}");
    }
    Ok(())
}
