//! Exit codes: 0 all good, 1 some repositories failed, 2 configuration or
//! infrastructure failure, 141 standard output closed early (as a Unix tool killed by
//! SIGPIPE reports it).

use std::process::ExitCode;

pub const EXIT_OK: u8 = 0;
/// Some repositories failed or are missing; the rest were backed up.
pub const EXIT_FAILED: u8 = 1;
/// Invalid configuration, or infrastructure (store, queue, API) unusable.
pub const EXIT_CONFIG: u8 = 2;
/// Standard output's reader went away (`repovault ls | head`): stopped quietly.
pub const EXIT_STDOUT_CLOSED: u8 = 128 + 13;

/// Prints `error: <err>` with its causes, each once, and returns exit code 2.
pub fn infrastructure_error(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", render(err));
    ExitCode::from(EXIT_CONFIG)
}

/// `err` and its causes, `: `-separated, leaving out a cause whose text an outer
/// error already quotes (many errors show their source in their own message).
pub fn render(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that quotes its source in its message and also exposes it.
    #[derive(Debug)]
    struct Quoting {
        source: std::io::Error,
    }

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "store I/O on k: {}", self.source)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let err = anyhow::Error::new(Quoting { source: io }).context("writing the plan");
        assert_eq!(
            render(&err),
            "writing the plan: store I/O on k: No such file or directory"
        );
    }
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
