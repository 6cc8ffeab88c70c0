//! Logs go to stderr: JSON when it is not a terminal (or when asked), compact text on a
//! terminal. `RUST_LOG` overrides the level. Spans and metrics go over OTLP when the
//! standard `OTEL_*` variables ask (`repovault_telemetry`).

use std::io::IsTerminal;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    #[default]
    Auto,
    Json,
    Text,
}

impl LogFormat {
    /// Whether log lines are JSON.
    pub fn json(self) -> bool {
        match self {
            LogFormat::Auto => !std::io::stderr().is_terminal(),
            LogFormat::Json => true,
            LogFormat::Text => false,
        }
    }
}
