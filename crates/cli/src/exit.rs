//! Exit codes: 0 all good, 1 some repositories failed, 2 configuration or
//! infrastructure failure.

use std::process::ExitCode;

pub const EXIT_OK: u8 = 0;
/// Some repositories failed or are missing; the rest were backed up.
pub const EXIT_FAILED: u8 = 1;
/// Invalid configuration, or infrastructure (store, queue, API) unusable.
pub const EXIT_CONFIG: u8 = 2;

/// Prints `error: <err>` with its causes and returns exit code 2.
pub fn infrastructure_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::from(EXIT_CONFIG)
}

/// A configuration error: printed as `error: invalid configuration:` and the
/// problems, one per line, each naming its key.
#[derive(Debug)]
pub struct InvalidConfig(pub String);

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration:")?;
        for line in self.0.lines() {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidConfig {}
