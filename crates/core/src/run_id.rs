//! Run identifiers.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Identifies one backup run: `<UTC start, YYYYMMDDTHHMMSSZ>-<4 hex>`, so run folders
/// sort by time. Any `[A-Za-z0-9._-]{1,100}` is accepted, so a scheduler can pass its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    pub fn generate(now: Timestamp) -> Self {
        RunId(format!(
            "{}-{:04x}",
            crate::stamp::stamp(now),
            fastrand::u16(..)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = !value.is_empty()
            && value.len() <= 100
            && !value.starts_with('.')
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(RunId(value))
        } else {
            Err(format!(
                "invalid run id {value:?}: use 1-100 of [A-Za-z0-9._-], not starting with '.'"
            ))
        }
    }
}

impl std::str::FromStr for RunId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunId::try_from(s.to_owned())
    }
}

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_start_with_the_timestamp() {
        let at: Timestamp = "2026-11-22T14:36:00Z".parse().unwrap();
        let id = RunId::generate(at);
        assert!(id.as_str().starts_with("20261122T143600Z-"), "{id}");
        assert!(RunId::try_from(id.to_string()).is_ok());
    }

    #[test]
    fn rejects_path_like_ids() {
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} accepted");
        }
        assert!("nightly-2026.11.22".parse::<RunId>().is_ok());
    }
}
