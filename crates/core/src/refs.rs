//! The refs of a repository and their digest, the basis of incremental backups.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every ref of a repository (`refs/...` name → object id), sorted by name.
/// `HEAD` and peeled tag entries (`^{}`) are not refs and are never included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefSet(BTreeMap<String, String>);

impl RefSet {
    pub fn new() -> Self {
        RefSet::default()
    }

    /// Adds a ref if it is a real ref: under `refs/`, not a peeled entry, and a name
    /// git accepts ([`check_ref_name`]; a newline in a name would split a bundle's
    /// header).
    pub fn insert(&mut self, name: impl Into<String>, oid: impl Into<String>) {
        let name = name.into();
        if name.starts_with("refs/") && check_ref_name(&name).is_ok() {
            self.0.insert(name, oid.into());
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// SHA-256 over `"<oid> <name>\n"` lines in name order: equal digests mean the
    /// repository has not changed since.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (name, oid) in &self.0 {
            hasher.update(oid.as_bytes());
            hasher.update(b" ");
            hasher.update(name.as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }
}

/// Whether git accepts `name` as a ref's full name (`git check-ref-format`): at
/// least two `/`-separated components, none empty, none starting with `.` or ending
/// in `.lock`; no `..`, no `@{`, not `@`, not ending in `.`; no control character,
/// space, `~`, `^`, `:`, `?`, `*`, `[` or `\`. The error says which rule it breaks.
pub fn check_ref_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name == "@" {
        return Err("it is `@`");
    }
    if let Some(bad) = name.chars().find(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err(if bad.is_ascii_control() {
            "it has a control character"
        } else {
            "it has a space or one of ~ ^ : ? * [ \\"
        });
    }
    if name.contains("..") {
        return Err("it has `..`");
    }
    if name.contains("@{") {
        return Err("it has `@{`");
    }
    if name.ends_with('.') {
        return Err("it ends with `.`");
    }
    if !name.contains('/') {
        return Err("it has one component only");
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err("it has an empty component (a leading, trailing or double `/`)");
        }
        if component.starts_with('.') {
            return Err("a component starts with `.`");
        }
        if component.ends_with(".lock") {
            return Err("a component ends with `.lock`");
        }
    }
    Ok(())
}

impl RefSet {
    /// The first name that is not a valid ref name (see [`check_ref_name`]), if any: a
    /// set read back from a store did not pass through [`RefSet::insert`].
    pub fn invalid_name(&self) -> Option<&str> {
        self.0
            .keys()
            .map(String::as_str)
            .find(|n| check_ref_name(n).is_err())
    }

    /// The first object id that is not 40 (SHA-1) or 64 (SHA-256) lowercase hex
    /// digits, if any.
    pub fn invalid_oid(&self) -> Option<&str> {
        self.0
            .values()
            .map(String::as_str)
            .find(|oid| !is_object_id(oid))
    }
}

/// Whether `oid` is a git object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
pub fn is_object_id(oid: &str) -> bool {
    matches!(oid.len(), 40 | 64) && oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FromIterator<(String, String)> for RefSet {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut set = RefSet::new();
        for (name, oid) in iter {
            set.insert(name, oid);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_head_and_peeled_entries() {
        let set: RefSet = [
            ("HEAD", "a"),
            ("refs/heads/main", "a"),
            ("refs/tags/v1^{}", "b"),
            ("refs/tags/v1", "c"),
        ]
        .into_iter()
        .map(|(n, o)| (n.to_owned(), o.to_owned()))
        .collect();
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("refs/tags/v1"), Some("c"));
    }

    #[test]
    fn ref_names_follow_gits_rules() {
        for ok in [
            "refs/heads/main",
            "refs/heads/release/x#",
            "refs/tags/v1.0",
            "refs/heads/caf\u{e9}",
            "refs/pull/123/head",
            "refs/heads/a.b",
            "refs/heads/@",
        ] {
            assert_eq!(check_ref_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "main",
            "refs/heads/a\nb",
            "refs/heads/a\rb",
            "refs/heads/a\u{0}b",
            "refs/heads/a\u{7f}",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[b",
            "refs/heads/a\\b",
            "refs/heads/a..b",
            "refs/heads/a@{1}",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/x.",
            "refs/heads/",
            "refs//heads",
            "/refs/heads/x",
            "@",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_git_would_refuse_is_never_a_ref() {
        let mut set = RefSet::new();
        set.insert("refs/heads/a\nb", "1");
        set.insert("refs/heads/ok", "2");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn object_ids_are_lowercase_hex_of_a_hash() {
        assert!(is_object_id(&"a".repeat(40)) && is_object_id(&"0".repeat(64)));
        assert!(!is_object_id(&"A".repeat(40)) && !is_object_id("abc"));
    }

    #[test]
    fn digest_depends_on_names_and_oids_not_order() {
        let mut a = RefSet::new();
        a.insert("refs/heads/main", "1");
        a.insert("refs/heads/dev", "2");
        let mut b = RefSet::new();
        b.insert("refs/heads/dev", "2");
        b.insert("refs/heads/main", "1");
        assert_eq!(a.digest(), b.digest());
        b.insert("refs/heads/main", "3");
        assert_ne!(a.digest(), b.digest());
        assert_ne!(RefSet::new().digest(), a.digest());
    }
}
