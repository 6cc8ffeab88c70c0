//! # repovault-app
//!
//! The wiring the `repovault`, `planner`, `worker` and `reporter` binaries share, so
//! each `main` stays thin: logging setup, the GitHub token, exit codes, and turning a
//! configuration's targets and jobs into concrete stores and sources.

mod exit;
mod logging;
mod wiring;

pub use exit::{EXIT_CONFIG, EXIT_FAILED, EXIT_OK, config_error};
pub use logging::{LogFormat, init_logging};
pub use wiring::{load_token, open_sources, open_store, open_targets};
