//! `encryption:` of a job: the age recipients its target's backups are written to.
//! Core checks the recipients' shape and reads the recipients file; the repository
//! crate turns them into keys (core has no cryptography).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Invalid;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawEncryption {
    /// `age1…` (X25519) or `ssh-ed25519 AAAA…` public keys.
    #[serde(default)]
    pub age_recipients: Vec<String>,
    /// A file of recipients, one per line (`#` comments), as `age -R` reads it.
    pub age_recipients_file: Option<PathBuf>,
}

/// The age recipients every object a target's backups are made of is encrypted to
/// (empty: not encrypted), one public key per entry, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Recipients(pub Vec<String>);

impl Recipients {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The recipients of a recipients file's text: one per line, blank lines and `#`
/// comments skipped.
pub fn recipient_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Whether `text` looks like a recipient repovault takes: an X25519 key (`age1` and
/// bech32 characters) or an ssh-ed25519 public key. Never repeats a secret: an
/// identity (`AGE-SECRET-KEY-1…`) given by mistake is named, not echoed.
pub fn check_recipient(text: &str) -> Result<(), Invalid> {
    if text.starts_with("AGE-SECRET-KEY-") || text.contains("PRIVATE KEY") {
        return Err(Invalid(
            "this is a private key (an identity): give its public key (`age-keygen -y`)".into(),
        ));
    }
    let bech32 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let ok = match text.split_once(' ') {
        None => text.starts_with("age1") && text.len() > 50 && bech32(text),
        Some(("ssh-ed25519", rest)) => rest.starts_with("AAAA"),
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{:?} is not an age recipient (age1…) or an ssh-ed25519 public key",
            text.chars().take(24).collect::<String>()
        )))
    }
}

/// The recipients `raw` names (its list, then its file's lines), every problem named
/// by `key(field)`.
pub(super) fn resolve_encryption(
    raw: RawEncryption,
    cwd: &Path,
    key: &dyn Fn(&str) -> String,
    err: &mut impl FnMut(String, String),
) -> Recipients {
    let mut recipients = Vec::new();
    let bad = std::cell::Cell::new(false);
    let mut err = |key: String, reason: String| {
        bad.set(true);
        err(key, reason)
    };
    for (i, text) in raw.age_recipients.iter().enumerate() {
        let text = text.trim();
        match check_recipient(text) {
            Ok(()) => recipients.push(text.to_owned()),
            Err(Invalid(reason)) => err(key(&format!("encryption.age-recipients[{i}]")), reason),
        }
    }
    if let Some(path) = raw.age_recipients_file {
        let path = cwd.join(path);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (i, line) in recipient_lines(&text).into_iter().enumerate() {
                    match check_recipient(&line) {
                        Ok(()) => recipients.push(line),
                        Err(Invalid(reason)) => err(
                            key("encryption.age-recipients-file"),
                            format!("{}: recipient {}: {reason}", path.display(), i + 1),
                        ),
                    }
                }
            }
            Err(e) => err(
                key("encryption.age-recipients-file"),
                format!("{}: {e}", path.display()),
            ),
        }
    }
    if recipients.is_empty() && !bad.get() {
        err(
            key("encryption"),
            "name at least one recipient (age-recipients or age-recipients-file)".into(),
        );
    }
    recipients.sort();
    recipients.dedup();
    Recipients(recipients)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    #[test]
    fn recipients_are_age_or_ssh_ed25519_public_keys() {
        assert!(check_recipient(AGE).is_ok());
        assert!(check_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH alice@host").is_ok());
        let secret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let refused = check_recipient(secret).unwrap_err().0;
        assert!(
            refused.contains("private key") && !refused.contains("GFPYY"),
            "{refused}"
        );
        assert!(check_recipient("ssh-rsa AAAAB3").is_err());
        assert!(check_recipient("age1UPPER").is_err());
    }

    #[test]
    fn the_file_and_the_list_are_joined_and_each_bad_entry_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.txt"),
            format!("# team\n\n{AGE}\nssh-ed25519 AAAAC3Nza bob\nnonsense\n"),
        )
        .unwrap();
        let raw = RawEncryption {
            age_recipients: vec![AGE.into(), "age1NOPE".into()],
            age_recipients_file: Some("r.txt".into()),
        };
        let mut errors = Vec::new();
        let got = resolve_encryption(raw, dir.path(), &|k| format!("jobs[0].{k}"), &mut |k, r| {
            errors.push((k, r))
        });
        assert_eq!(
            got.0,
            vec![AGE.to_owned(), "ssh-ed25519 AAAAC3Nza bob".to_owned()]
        );
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "jobs[0].encryption.age-recipients[1]",
                "jobs[0].encryption.age-recipients-file"
            ]
        );
        assert!(errors[1].1.contains("recipient 3"), "{}", errors[1].1);
    }
}
