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

    /// Adds a ref if it is a real ref (under `refs/`, not a peeled entry).
    pub fn insert(&mut self, name: impl Into<String>, oid: impl Into<String>) {
        let name = name.into();
        if name.starts_with("refs/") && !name.ends_with("^{}") {
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

/// Whether `name` is a ref name git accepts (`git check-ref-format`): components that
/// do not begin with `.` or end with `.lock`, no `..`, no `@{`, no control character,
/// space, `~`, `^`, `:`, `?`, `*`, `[` or a backslash, no empty component, not ending in `.`.
/// A name read from a server or a store is checked before it is written anywhere (a
/// newline would split a bundle's header).
pub fn is_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name != "@"
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("@{")
        && !name.chars().any(|c| {
            c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        })
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

impl RefSet {
    /// The first name that is not a valid ref name (see [`is_ref_name`]), if any.
    pub fn invalid_name(&self) -> Option<&str> {
        self.0.keys().map(String::as_str).find(|n| !is_ref_name(n))
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
        for good in [
            "refs/heads/main",
            "refs/pull/12/head",
            "refs/tags/v1.0",
            "refs/heads/a-b_c/d",
        ] {
            assert!(is_ref_name(good), "{good}");
        }
        for bad in [
            "refs/heads/a\nb",
            "refs/heads/..x",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads//x",
            "refs/heads/x/",
            "refs/heads/x.",
            "refs/heads/a@{1}",
            "@",
            "",
        ] {
            assert!(!is_ref_name(bad), "{bad:?}");
        }
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
