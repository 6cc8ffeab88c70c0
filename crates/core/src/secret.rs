//! A value that must never be printed: GitHub tokens.

use std::fmt;

/// A secret string. `Debug` and `Display` print `***`; the only way to read it is
/// [`Secret::expose`], which makes every use greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, trimming surrounding whitespace (token files end in a newline).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_owned())
    }

    /// The secret itself. Callers must not log, format or persist the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `***`, for error messages
    /// that quote a child process's output.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("ghp_abc123\n");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "ghp_abc123");
    }

    #[test]
    fn redacts_occurrences() {
        let s = Secret::new("tok");
        assert_eq!(s.redact("a tok b tok"), "a *** b ***");
        assert_eq!(Secret::new("").redact("abc"), "abc");
    }
}
