//! # repovault-cli
//!
//! The binaries and what they share. `repovault` has every command; `planner`,
//! `worker` and `reporter` are the distributed roles as standalone binaries (one image,
//! the container's command picks one), each the same code as `repovault plan|work|report`.
//!
//! Each `main` is thin: [`start`] parses arguments, sets up logging and a runtime, and
//! calls a command; commands turn configuration into concrete adapters
//! (`wiring`) and call the planner, worker and reporter libraries.

mod args;
pub mod commands;
mod exit;
mod logging;
mod out;
mod progress;
pub mod roles;
mod wiring;

use std::future::Future;
use std::process::ExitCode;

pub use args::GlobalArgs;
pub use exit::{EXIT_CONFIG, EXIT_FAILED, EXIT_OK};

/// Sets up logging (and OpenTelemetry export when the environment asks, as
/// `service`) and a runtime, runs `command`, exports what telemetry is left, and turns
/// the command's result into an exit code: its own, or 2 with the error printed.
pub fn start<F>(global: &GlobalArgs, service: &str, command: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<ExitCode>>,
{
    let telemetry = repovault_telemetry::init(
        global.log_format.json(),
        global.default_log_level(),
        service,
    );
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let result = runtime.block_on(command);
            drop(runtime);
            match result {
                Ok(code) => code,
                Err(e) if e.is::<out::StdoutClosed>() => ExitCode::from(exit::EXIT_STDOUT_CLOSED),
                Err(e) => exit::infrastructure_error(&e),
            }
        }
        Err(e) => exit::infrastructure_error(&e.into()),
    };
    telemetry.shutdown();
    code
}
