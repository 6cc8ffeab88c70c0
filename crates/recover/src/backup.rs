//! The backup being put back, as `restore` wrote it into a working directory: the bare
//! repository (its LFS objects inside), the wiki, and the data beyond git as JSON
//! Lines, with release assets by id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use repovault_core::Manifest;
use serde_json::Value;

use crate::RecoverError;

/// A restored backup.
#[derive(Debug)]
pub struct Backup {
    /// The backup's key in the store (its manifest).
    pub key: String,
    pub manifest: Manifest,
    pub repo_dir: PathBuf,
    pub wiki_dir: Option<PathBuf>,
    /// The data beyond git, by kind; `None` when the backup has none.
    pub data: Option<Data>,
}

/// A data snapshot's items by kind, and where its release assets are.
#[derive(Debug)]
pub struct Data {
    pub kinds: BTreeMap<String, Vec<Value>>,
    pub assets_dir: PathBuf,
}

impl Data {
    /// The items of `kind` (none when the snapshot lacks it).
    pub fn items(&self, kind: &str) -> &[Value] {
        self.kinds.get(kind).map_or(&[], Vec::as_slice)
    }
}

impl Backup {
    /// Restores backup `key` of `owner/name`, with its newest data snapshot at or
    /// before `at` (the newest without: a job reads the data after git, so a
    /// snapshot's time is later than its backup's), from `repo` into `work` (a new or
    /// empty directory), checked, and opens it.
    pub async fn restore(
        repo: &repovault_repository::Repository<'_>,
        owner: &str,
        name: &str,
        key: &str,
        at: Option<jiff::Timestamp>,
        work: &Path,
    ) -> Result<Backup, RecoverError> {
        let request = repovault_repository::RestoreRequest {
            owner,
            name,
            key,
            to: work,
            data: Some(at),
        };
        let restored = repo
            .restore(&request)
            .await
            .map_err(|e| RecoverError::Backup(e.to_string()))?;
        Backup::open(
            work,
            key,
            restored.checked.manifest,
            restored.repo_dir,
            restored.wiki_dir,
        )
    }

    /// The backup restored into `dir` (`<name>.git`, `<name>.wiki.git`, `data/`).
    pub fn open(
        dir: &Path,
        key: &str,
        manifest: Manifest,
        repo_dir: PathBuf,
        wiki_dir: Option<PathBuf>,
    ) -> Result<Backup, RecoverError> {
        let data_dir = dir.join("data");
        let data = if data_dir.join("index.json").is_file() {
            let mut kinds = BTreeMap::new();
            for entry in std::fs::read_dir(&data_dir).map_err(RecoverError::io(&data_dir))? {
                let path = entry.map_err(RecoverError::io(&data_dir))?.path();
                let Some(kind) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".jsonl"))
                else {
                    continue;
                };
                let text = std::fs::read_to_string(&path).map_err(RecoverError::io(&path))?;
                let items = text
                    .lines()
                    .map(serde_json::from_str)
                    .collect::<Result<Vec<Value>, _>>()
                    .map_err(|e| RecoverError::Backup(format!("{}: {e}", path.display())))?;
                kinds.insert(kind.to_owned(), items);
            }
            Some(Data {
                kinds,
                assets_dir: data_dir.join("assets"),
            })
        } else {
            None
        };
        Ok(Backup {
            key: key.to_owned(),
            manifest,
            repo_dir,
            wiki_dir,
            data,
        })
    }

    /// The branches the backup holds (`refs/heads/<name>` → name).
    pub fn branches(&self) -> impl Iterator<Item = &str> {
        self.manifest
            .refs
            .iter()
            .filter_map(|(name, _)| name.strip_prefix("refs/heads/"))
    }

    pub fn has_branch(&self, branch: &str) -> bool {
        self.branches().any(|b| b == branch)
    }

    /// The original repository's `owner/name`.
    pub fn full_name(&self) -> String {
        self.manifest.source.full_name()
    }

    /// The pull requests (by number) whose head must be pushed as
    /// `restored/pr/<N>`: their branch is gone, or lives in a fork.
    pub fn detached_heads(&self) -> Vec<u64> {
        let Some(data) = &self.data else {
            return Vec::new();
        };
        let own = self.full_name();
        data.items("pulls")
            .iter()
            .filter_map(|pull| {
                let number = pull["number"].as_u64()?;
                let head_ref = format!("refs/pull/{number}/head");
                self.manifest.refs.get(&head_ref)?;
                // The branch itself only when it is this repository's (a deleted
                // fork's `head.repo` is null) and still where the pull request left it.
                let branch = pull["head"]["ref"].as_str().unwrap_or("");
                let same_repo = pull["head"]["repo"]["full_name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&own));
                let tip = self.manifest.refs.get(&format!("refs/heads/{branch}"));
                let at_head = tip.is_some() && tip == pull["head"]["sha"].as_str();
                (!(same_repo && at_head)).then_some(number)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(pulls: Vec<Value>) -> Backup {
        let sha = |c: char| c.to_string().repeat(40);
        let manifest: Manifest = serde_json::from_value(json!({
            "schema": 1, "repository": "acme/api", "created_at": "2026-12-01T00:00:00Z",
            "run_id": "r1", "tool": "repovault test", "default_branch": "main",
            "head": "refs/heads/main",
            "refs": {
                "refs/heads/main": sha('a'), "refs/heads/feature": sha('b'),
                "refs/pull/1/head": sha('b'), "refs/pull/2/head": sha('c'),
                "refs/pull/3/head": sha('a'), "refs/pull/4/head": sha('e'),
            },
            "refs_digest": "", "wiki_refs": null, "git_bytes": 0,
            "source": { "owner": "acme", "name": "api", "id": 1,
                "clone_url": "https://github.com/acme/api.git", "default_branch": "main",
                "pushed_at": null, "size_kb": 1, "private": false, "archived": false,
                "fork": false, "has_wiki": false },
        }))
        .unwrap();
        let mut kinds = BTreeMap::new();
        kinds.insert("pulls".to_owned(), pulls);
        Backup {
            key: "k".into(),
            manifest,
            repo_dir: PathBuf::new(),
            wiki_dir: None,
            data: Some(Data {
                kinds,
                assets_dir: PathBuf::new(),
            }),
        }
    }

    #[test]
    fn a_pull_requests_head_is_its_branch_only_when_the_branch_is_its_own_and_unmoved() {
        let pull = |n: u64, branch: &str, sha: char, repo: Value| json!({ "number": n, "head": { "ref": branch, "sha": sha.to_string().repeat(40), "repo": repo } });
        let own = json!({ "full_name": "acme/api" });
        let backup = backup(vec![
            // Its branch, where it left it: pushed as that branch.
            pull(1, "feature", 'b', own.clone()),
            // Its branch is gone.
            pull(2, "gone", 'c', own.clone()),
            // A deleted fork (`head.repo` null) whose branch is named like one here,
            // at the same commit: still not this repository's branch.
            pull(3, "main", 'a', Value::Null),
            // Its branch moved on since.
            pull(4, "feature", 'e', own),
            // No head ref in the backup: nothing to push.
            pull(5, "other", 'f', Value::Null),
        ]);
        assert_eq!(backup.detached_heads(), vec![2, 3, 4]);
    }
}
