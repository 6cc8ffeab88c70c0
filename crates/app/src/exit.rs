//! Exit codes: 0 all good, 1 some repositories failed, 2 configuration or
//! infrastructure failure.

use std::process::ExitCode;

pub const EXIT_OK: u8 = 0;
/// Some repositories failed or are missing; the rest were backed up.
pub const EXIT_FAILED: u8 = 1;
/// Invalid configuration, or infrastructure (store, queue, API) unusable.
pub const EXIT_CONFIG: u8 = 2;

/// Prints `error: <err>` with its causes and returns exit code 2.
pub fn config_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::from(EXIT_CONFIG)
}
