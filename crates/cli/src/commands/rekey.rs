//! `repovault rekey`: re-encrypt what is stored to new recipients, without the
//! payloads ever being decrypted or re-encrypted (each object's age header is
//! rewritten). Resumable: run it again after any interruption.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use repovault_core::config::recipient_lines;
use repovault_repository::{Keys, Recipients, Scope};

use crate::args::{FromArgs, owner_and_name};
use crate::exit::InvalidConfig;
use crate::out::outln;
use crate::wiring::open_from;

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// The backups, and with --identity the key that opens them now.
    #[command(flatten)]
    pub from: FromArgs,
    /// The new recipients: a file of `age1…` / `ssh-ed25519 …` public keys, one per
    /// line (`#` comments), as `age -R` reads.
    #[arg(long, value_name = "FILE")]
    pub to_recipients: PathBuf,
    /// Only this repository's objects (else every repository and organization's data).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
}

/// How many keys of objects left as they are to name.
const NAMED: usize = 10;

pub async fn rekey(args: RekeyArgs) -> anyhow::Result<ExitCode> {
    let repo = args.repo.as_deref().map(owner_and_name).transpose()?;
    let identities = args.from.identity.identities()?.ok_or_else(|| {
        InvalidConfig("--identity (REPOVAULT_AGE_IDENTITY_FILE): rekey needs the key that opens the backups now".into())
    })?;
    let named = |e: &dyn std::fmt::Display| {
        InvalidConfig(format!(
            "--to-recipients {}: {e}",
            args.to_recipients.display()
        ))
    };
    let text = std::fs::read_to_string(&args.to_recipients).map_err(|e| named(&e))?;
    let recipients = Recipients::parse(&recipient_lines(&text)).map_err(|e| named(&e))?;
    let keys = Keys::new(Some(recipients), Some(identities));
    let scope = match &repo {
        Some((owner, name)) => Scope::Repo(owner, name),
        None => Scope::All,
    };
    let mut foreign = Vec::new();
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repository = repovault_repository::Repository::new(store.as_ref(), &target.prefix)
            .with_keys(keys.clone());
        let done = repository.rekey(scope).await?;
        outln!(
            "{target}: {} objects rewrapped, {} already, {} in the clear (left so), {} records updated",
            done.rewritten,
            done.already,
            done.plain,
            done.records
        );
        foreign.extend(done.foreign);
    }
    if foreign.is_empty() {
        return Ok(ExitCode::from(crate::EXIT_OK));
    }
    eprintln!(
        "warning: {} encrypted objects open with none of the --identity keys and were left as they are (give every identity that opens them, e.g. the new one too for backups already written to it):",
        foreign.len()
    );
    for key in foreign.iter().take(NAMED) {
        eprintln!("  {key}");
    }
    if foreign.len() > NAMED {
        eprintln!("  … and {} more", foreign.len() - NAMED);
    }
    Ok(ExitCode::from(crate::EXIT_FAILED))
}
