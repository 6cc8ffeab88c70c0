//! Every object key repovault reads or writes is built here, and only here.
//!
//! ```text
//! <prefix>repos/<owner>/<repo>/<repo>-<YYYYMMDDTHHMMSSZ>.manifest.json  a backup (restore point)
//! <prefix>repos/<owner>/<repo>/packs/<YYYYMMDDTHHMMSSZ>.bundle          its link of the chain
//! <prefix>repos/<owner>/<repo>/packs/<YYYYMMDDTHHMMSSZ>.wiki.bundle     the wiki's link
//! <prefix>repos/<owner>/<repo>/<repo>-<YYYYMMDDTHHMMSSZ>.tar.zst        a first-format archive
//! <prefix>repos/<owner>/<repo>/latest.json                              newest good backup
//! <prefix>repos/<owner>/<repo>/gone.json                                deleted or moved on GitHub
//! <prefix>repos/<owner>/<repo>/lfs/<oid>                                a Git LFS object, stored once
//! <prefix>repos/<owner>/<repo>/data/<stamp>/<kind>.jsonl.zst            issues, pulls… (zstd JSON Lines)
//! <prefix>repos/<owner>/<repo>/data/<stamp>/index.json                  that data snapshot
//! <prefix>repos/<owner>/<repo>/assets/<asset-id>                        a release asset, stored once
//! <prefix>repos/<owner>/<repo>/attachments/<sha256>                     an attachment named in the data's text, stored once
//! <prefix>orgs/<org>/data/<stamp>/{settings,members,teams}.jsonl.zst   an organization's data
//! <prefix>orgs/<org>/data/<stamp>/index.json, orgs/<org>/latest.json
//! <prefix>orgs/<org>/activity.json                                    how far the planner read the org's event feed
//! <prefix>runs/<run-id>/plan.json                                       what the planner enqueued
//! <prefix>runs/<run-id>/enqueued.json                                   written once all was enqueued
//! <prefix>runs/<run-id>/results/<owner>/<repo>.json                     one record per repo
//! <prefix>runs/<run-id>/report.json, report.md                          the reporter's output
//! ```
//!
//! Keys are built from names the caller has validated (a job message's, an
//! operator's argument); keys read back from a store are taken apart by the `parse_*`
//! functions, which accept only valid owner and repository names and oids.

use jiff::Timestamp;
use repovault_core::{RunId, check_login, check_repo_name, normalize_prefix, parse_stamp, stamp};

const ARCHIVE_SUFFIX: &str = ".tar.zst";
const MANIFEST_SUFFIX: &str = ".manifest.json";

/// Whether `text` is a Git LFS oid as repovault stores them: 64 lowercase hex digits
/// (the SHA-256 of the object's content).
pub fn is_oid(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `owner` and `repo` are names a key may be built from (GitHub's rules for
/// logins and repository names: never `.`, `..` or a `/`).
pub fn valid_names(owner: &str, repo: &str) -> bool {
    check_login("owner", owner).is_ok() && check_repo_name("name", repo).is_ok()
}

/// Builds keys under one target prefix (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// A backup's key taken apart. A backup's key is its archive (first format) or, for
/// a bundle chain, its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKey {
    pub owner: String,
    pub repo: String,
    pub at: Timestamp,
    /// The key is a first-format archive (`.tar.zst`), not a manifest.
    pub archive: bool,
}

impl Layout {
    pub fn new(prefix: &str) -> Self {
        Layout {
            prefix: normalize_prefix(prefix),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>repos/`: everything ever backed up.
    pub fn repos_root(&self) -> String {
        format!("{}repos/", self.prefix)
    }

    /// `<prefix>repos/<owner>/<repo>/`: every backup of one repository.
    pub fn repo_dir(&self, owner: &str, repo: &str) -> String {
        format!("{}{owner}/{repo}/", self.repos_root())
    }

    pub fn archive(&self, owner: &str, repo: &str, at: Timestamp) -> String {
        format!(
            "{}{repo}-{}{ARCHIVE_SUFFIX}",
            self.repo_dir(owner, repo),
            stamp(at)
        )
    }

    pub fn manifest(&self, owner: &str, repo: &str, at: Timestamp) -> String {
        format!(
            "{}{repo}-{}{MANIFEST_SUFFIX}",
            self.repo_dir(owner, repo),
            stamp(at)
        )
    }

    /// The manifest of a backup: beside its archive, or the key itself.
    pub fn manifest_for(&self, backup_key: &str) -> Option<String> {
        if backup_key.ends_with(MANIFEST_SUFFIX) {
            return Some(backup_key.to_owned());
        }
        backup_key
            .strip_suffix(ARCHIVE_SUFFIX)
            .map(|stem| format!("{stem}{MANIFEST_SUFFIX}"))
    }

    /// `repos/<owner>/<repo>/packs/`: the links of a repository's chains, shared by
    /// every backup whose manifest lists them.
    pub fn packs_dir(&self, owner: &str, repo: &str) -> String {
        format!("{}packs/", self.repo_dir(owner, repo))
    }

    /// The git bundle a backup at `at` adds to the chain of the repository (or its wiki).
    pub fn bundle(&self, owner: &str, repo: &str, at: Timestamp, wiki: bool) -> String {
        let kind = if wiki { ".wiki" } else { "" };
        format!("{}{}{kind}.bundle", self.packs_dir(owner, repo), stamp(at))
    }

    /// Says the repository left GitHub under this name (deleted, or moved and where).
    pub fn gone(&self, owner: &str, repo: &str) -> String {
        format!("{}gone.json", self.repo_dir(owner, repo))
    }

    /// Where a repository's Git LFS objects are stored, each once.
    pub fn lfs_dir(&self, owner: &str, repo: &str) -> String {
        format!("{}lfs/", self.repo_dir(owner, repo))
    }

    /// A Git LFS object of a repository, by its oid (the SHA-256 of its content).
    pub fn lfs(&self, owner: &str, repo: &str, oid: &str) -> String {
        format!("{}{oid}", self.lfs_dir(owner, repo))
    }

    /// One snapshot's file of a repository's data beyond git, e.g. `issues`.
    pub fn data_file(&self, owner: &str, repo: &str, at: Timestamp, kind: &str) -> String {
        format!(
            "{}data/{}/{kind}.jsonl.zst",
            self.repo_dir(owner, repo),
            stamp(at)
        )
    }

    /// A release asset's bytes, by GitHub's asset id (an asset's content never changes
    /// under its id: a re-upload gets a new one).
    pub fn asset(&self, owner: &str, repo: &str, id: u64) -> String {
        format!("{}assets/{id}", self.repo_dir(owner, repo))
    }

    /// An attachment's bytes (a file or image dropped into a text), by their SHA-256:
    /// stored once however many texts and snapshots name it.
    pub fn attachment(&self, owner: &str, repo: &str, sha256: &str) -> String {
        format!("{}attachments/{sha256}", self.repo_dir(owner, repo))
    }

    /// Whether `key` is a data snapshot's index of `owner/repo`.
    pub fn is_data_index_of(&self, key: &str, owner: &str, repo: &str) -> bool {
        self.data_stamp(key, owner, repo, "index.json")
    }

    /// Whether `key` is the `kind` file of one of `owner/repo`'s data snapshots.
    pub fn is_data_file_of(&self, key: &str, owner: &str, repo: &str, kind: &str) -> bool {
        self.data_stamp(key, owner, repo, &format!("{kind}.jsonl.zst"))
    }

    /// Whether `key` is `repos/<owner>/<repo>/data/<stamp>/<file>`.
    fn data_stamp(&self, key: &str, owner: &str, repo: &str, file: &str) -> bool {
        key.strip_prefix(&format!("{}data/", self.repo_dir(owner, repo)))
            .and_then(|rest| rest.strip_suffix(file)?.strip_suffix('/'))
            .is_some_and(|stamp| parse_stamp(stamp).is_some())
    }

    /// The data snapshot indexes among `keys` (a listing of `repo_dir`), with their
    /// times.
    pub fn data_indexes_among<'a>(
        &self,
        owner: &str,
        repo: &str,
        keys: impl Iterator<Item = &'a str>,
    ) -> Vec<(Timestamp, String)> {
        let dir = format!("{}data/", self.repo_dir(owner, repo));
        keys.filter_map(|key| {
            let stamp = key.strip_prefix(&dir)?.strip_suffix("/index.json")?;
            Some((parse_stamp(stamp)?, key.to_owned()))
        })
        .collect()
    }

    /// One snapshot's index of a repository's data beyond git.
    pub fn data_index(&self, owner: &str, repo: &str, at: Timestamp) -> String {
        format!(
            "{}data/{}/index.json",
            self.repo_dir(owner, repo),
            stamp(at)
        )
    }

    /// An organization's data beyond its repositories (settings, members, teams).
    pub fn org_data_file(&self, org: &str, at: Timestamp, kind: &str) -> String {
        format!(
            "{}orgs/{org}/data/{}/{kind}.jsonl.zst",
            self.prefix,
            stamp(at)
        )
    }

    pub fn org_data_index(&self, org: &str, at: Timestamp) -> String {
        format!("{}orgs/{org}/data/{}/index.json", self.prefix, stamp(at))
    }

    /// Names an organization's newest data snapshot (`{"data": <index key>}`).
    pub fn org_latest(&self, org: &str) -> String {
        format!("{}orgs/{org}/latest.json", self.prefix)
    }

    /// How far the planner has read the organization's event feed, and for which run.
    pub fn org_activity(&self, org: &str) -> String {
        format!("{}orgs/{org}/activity.json", self.prefix)
    }

    pub fn latest(&self, owner: &str, repo: &str) -> String {
        format!("{}latest.json", self.repo_dir(owner, repo))
    }

    /// Names the run planned last into the target (`core::LatestRun`).
    pub fn latest_run(&self) -> String {
        format!("{}latest-run.json", self.prefix)
    }

    pub fn runs_root(&self) -> String {
        format!("{}runs/", self.prefix)
    }

    pub fn run_dir(&self, run: &RunId) -> String {
        format!("{}{run}/", self.runs_root())
    }

    pub fn plan(&self, run: &RunId) -> String {
        format!("{}plan.json", self.run_dir(run))
    }

    /// Written once every planned job was enqueued: a re-run of the planner for the
    /// same run enqueues nothing.
    pub fn enqueued(&self, run: &RunId) -> String {
        format!("{}enqueued.json", self.run_dir(run))
    }

    pub fn results_dir(&self, run: &RunId) -> String {
        format!("{}results/", self.run_dir(run))
    }

    pub fn result(&self, run: &RunId, owner: &str, repo: &str) -> String {
        format!("{}{owner}/{repo}.json", self.results_dir(run))
    }

    pub fn report_json(&self, run: &RunId) -> String {
        format!("{}report.json", self.run_dir(run))
    }

    pub fn report_md(&self, run: &RunId) -> String {
        format!("{}report.md", self.run_dir(run))
    }

    /// The backup keys among `keys`, sorted (oldest first per repository): an
    /// archive, or a manifest that has no archive beside it (a bundle chain's backup).
    pub fn backups_among<'a>(&self, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
        let keys: std::collections::BTreeSet<&str> = keys.collect();
        keys.iter()
            .filter(|key| match self.parse_backup(key) {
                Some(b) if b.archive => true,
                Some(_) => !key
                    .strip_suffix(MANIFEST_SUFFIX)
                    .is_some_and(|stem| keys.contains(format!("{stem}{ARCHIVE_SUFFIX}").as_str())),
                None => false,
            })
            .map(|k| (*k).to_owned())
            .collect()
    }

    /// The backup time in a backup key, whatever prefix the key has (a backup's
    /// identity survives a copy to another prefix or bucket).
    pub fn backup_time(key: &str) -> Option<Timestamp> {
        let file = key.rsplit('/').next()?;
        let stem = file
            .strip_suffix(ARCHIVE_SUFFIX)
            .or_else(|| file.strip_suffix(MANIFEST_SUFFIX))?;
        parse_stamp(stem.rsplit_once('-')?.1)
    }

    /// The repository (`owner`, `repo`) of an LFS object's key.
    pub fn parse_lfs(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.repos_root())?;
        let (owner, rest) = rest.split_once('/')?;
        let (repo, oid) = rest.split_once("/lfs/")?;
        (is_oid(oid) && valid_names(owner, repo)).then(|| (owner.to_owned(), repo.to_owned()))
    }

    /// The repository (`owner`, `repo`) of a release asset's or an attachment's key.
    pub fn parse_asset(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.repos_root())?;
        let (owner, rest) = rest.split_once('/')?;
        let named = match rest.split_once("/assets/") {
            Some((repo, id)) => (
                repo,
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            ),
            None => {
                let (repo, sha256) = rest.split_once("/attachments/")?;
                (repo, is_oid(sha256))
            }
        };
        let (repo, valid) = named;
        (valid && valid_names(owner, repo)).then(|| (owner.to_owned(), repo.to_owned()))
    }

    /// Takes a key of a repository's data snapshot apart (`archive` is false): whose
    /// and when, and whether it is the snapshot's index (else one kind's file).
    /// `None` for any other key.
    pub fn parse_data(&self, key: &str) -> Option<(BackupKey, bool)> {
        let rest = key.strip_prefix(&self.repos_root())?;
        let (owner, rest) = rest.split_once('/')?;
        let (repo, rest) = rest.split_once("/data/")?;
        let (stamp, file) = rest.split_once('/')?;
        let index = match file.strip_suffix(".jsonl.zst") {
            Some(kind) if crate::is_kind(kind) => false,
            Some(_) => return None,
            None if file == "index.json" => true,
            None => return None,
        };
        let at = parse_stamp(stamp)?;
        if !valid_names(owner, repo) {
            return None;
        }
        let key = BackupKey {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            at,
            archive: false,
        };
        Some((key, index))
    }

    /// Takes a chain link's key apart (`archive` is false); `None` for any other key.
    pub fn parse_bundle(&self, key: &str) -> Option<BackupKey> {
        let rest = key.strip_prefix(&self.repos_root())?;
        let (owner, rest) = rest.split_once('/')?;
        let (repo, file) = rest.split_once("/packs/")?;
        let stem = file.strip_suffix(".bundle")?;
        let at = parse_stamp(stem.strip_suffix(".wiki").unwrap_or(stem))?;
        if !valid_names(owner, repo) {
            return None;
        }
        Some(BackupKey {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            at,
            archive: false,
        })
    }

    /// Takes a backup key (archive or manifest) apart; `None` for any other key.
    pub fn parse_backup(&self, key: &str) -> Option<BackupKey> {
        let rest = key.strip_prefix(&self.repos_root())?;
        let (owner, rest) = rest.split_once('/')?;
        let (repo, file) = rest.split_once('/')?;
        let (stem, archive) = match file.strip_suffix(ARCHIVE_SUFFIX) {
            Some(stem) => (stem, true),
            None => (file.strip_suffix(MANIFEST_SUFFIX)?, false),
        };
        let at = parse_stamp(stem.strip_prefix(repo)?.strip_prefix('-')?)?;
        if !valid_names(owner, repo) {
            return None;
        }
        Some(BackupKey {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            at,
            archive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-11-22T14:36:05Z".parse().unwrap()
    }

    #[test]
    fn builds_the_documented_keys() {
        let l = Layout::new("github/acme");
        let run: RunId = "r1".parse().unwrap();
        assert_eq!(
            l.archive("acme", "api", at()),
            "github/acme/repos/acme/api/api-20261122T143605Z.tar.zst"
        );
        assert_eq!(
            l.manifest("acme", "api", at()),
            "github/acme/repos/acme/api/api-20261122T143605Z.manifest.json"
        );
        assert_eq!(
            l.latest("acme", "api"),
            "github/acme/repos/acme/api/latest.json"
        );
        assert_eq!(l.plan(&run), "github/acme/runs/r1/plan.json");
        assert_eq!(l.enqueued(&run), "github/acme/runs/r1/enqueued.json");
        assert_eq!(
            l.result(&run, "acme", "api"),
            "github/acme/runs/r1/results/acme/api.json"
        );
        assert_eq!(l.report_json(&run), "github/acme/runs/r1/report.json");
        assert_eq!(l.report_md(&run), "github/acme/runs/r1/report.md");
        assert_eq!(
            l.org_activity("acme"),
            "github/acme/orgs/acme/activity.json"
        );
    }

    #[test]
    fn empty_prefix_has_no_leading_slash() {
        let l = Layout::new("/");
        assert_eq!(l.latest("o", "r"), "repos/o/r/latest.json");
        assert_eq!(Layout::new("").prefix(), "");
        assert_eq!(Layout::new("a/b/").prefix(), "a/b/");
    }

    #[test]
    fn archive_keys_round_trip() {
        let l = Layout::new("p/");
        let key = l.archive("acme", "my.repo-2", at());
        assert_eq!(
            l.parse_backup(&key),
            Some(BackupKey {
                owner: "acme".into(),
                repo: "my.repo-2".into(),
                at: at(),
                archive: true,
            })
        );
        let manifest = l.manifest("acme", "my.repo-2", at());
        assert_eq!(l.manifest_for(&key).unwrap(), manifest);
        assert_eq!(l.manifest_for(&manifest).unwrap(), manifest);
        assert!(!l.parse_backup(&manifest).unwrap().archive);
        assert_eq!(l.parse_backup(&l.latest("acme", "x")), None);
        assert_eq!(l.parse_backup(&l.bundle("acme", "x", at(), false)), None);
        assert_eq!(Layout::new("q/").parse_backup(&key), None);
        assert_eq!(Layout::backup_time(&key), Some(at()));
        assert_eq!(Layout::backup_time(&manifest), Some(at()));
        assert_eq!(
            Layout::backup_time(&format!("copied/elsewhere/{key}")),
            Some(at())
        );
        assert_eq!(Layout::backup_time(&l.latest("acme", "x")), None);
    }

    #[test]
    fn a_backup_is_its_archive_or_else_its_manifest() {
        let l = Layout::new("");
        let old = "2026-11-01T00:00:00Z".parse().unwrap();
        let keys = [
            l.archive("o", "r", old),
            l.manifest("o", "r", old),
            l.manifest("o", "r", at()),
            l.bundle("o", "r", at(), false),
            l.bundle("o", "r", at(), true),
            l.latest("o", "r"),
        ];
        assert_eq!(
            l.backups_among(keys.iter().map(String::as_str)),
            [l.archive("o", "r", old), l.manifest("o", "r", at())]
        );
        assert_eq!(
            l.bundle("o", "r", at(), true),
            "repos/o/r/packs/20261122T143605Z.wiki.bundle"
        );
        for wiki in [false, true] {
            let link = l.parse_bundle(&l.bundle("o", "r", at(), wiki)).unwrap();
            assert_eq!(
                (link.owner.as_str(), link.repo.as_str(), link.at),
                ("o", "r", at())
            );
        }
        assert_eq!(l.parse_bundle(&l.manifest("o", "r", at())), None);
    }

    #[test]
    fn data_and_asset_keys_are_taken_apart() {
        let l = Layout::new("p/");
        let whose = BackupKey {
            owner: "o".into(),
            repo: "r".into(),
            at: at(),
            archive: false,
        };
        assert_eq!(
            l.parse_data(&l.data_index("o", "r", at())),
            Some((whose.clone(), true))
        );
        assert_eq!(
            l.parse_data(&l.data_file("o", "r", at(), "issue-comments")),
            Some((whose, false))
        );
        for other in [
            "p/repos/o/r/data/20261122T143605Z/Issues.jsonl.zst",
            "p/repos/o/r/data/20261122T143605Z/notes.txt",
            "p/repos/o/r/data/yesterday/index.json",
            "p/repos/o/../data/20261122T143605Z/index.json",
            "p/repos/o/r/data/20261122T143605Z/x/index.json",
        ] {
            assert_eq!(l.parse_data(other), None, "{other}");
        }
        assert_eq!(l.parse_data(&l.org_data_index("o", at())), None);
        assert_eq!(
            l.parse_asset(&l.asset("o", "r", 42)),
            Some(("o".into(), "r".into()))
        );
        assert_eq!(l.parse_asset("p/repos/o/r/assets/4x2"), None);
        let sha = "ab".repeat(32);
        assert_eq!(
            l.parse_asset(&l.attachment("o", "r", &sha)),
            Some(("o".into(), "r".into()))
        );
        assert_eq!(l.parse_asset("p/repos/o/r/attachments/notahash"), None);
        assert_eq!(l.parse_asset("p/repos/o/r/assets/"), None);
        assert_eq!(l.parse_asset(&l.lfs("o", "r", &"a".repeat(64))), None);
    }
}
