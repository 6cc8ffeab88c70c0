//! The refs of a local bare repository, read with libgit2.

use std::path::Path;

use git2::Repository;
use repovault_core::RefSet;

use crate::GitError;

/// The refs of a repository and where its `HEAD` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRefs {
    /// The ref `HEAD` points at (`refs/heads/main`), if it is symbolic.
    pub head: Option<String>,
    pub refs: RefSet,
}

/// Reads every ref of a local repository. Symbolic refs under `refs/` are resolved to
/// the object they point at.
pub fn read_refs(path: &Path) -> Result<RepoRefs, GitError> {
    let repo = Repository::open_bare(path)?;
    let head = repo.find_reference("HEAD").ok().and_then(|r| {
        r.symbolic_target_bytes()
            .map(|t| String::from_utf8_lossy(t).into_owned())
    });
    let mut refs = RefSet::new();
    for reference in repo.references()? {
        let reference = reference?;
        let name = String::from_utf8_lossy(reference.name_bytes()).into_owned();
        let target = match reference.target() {
            Some(oid) => Some(oid),
            None => reference.resolve().ok().and_then(|r| r.target()),
        };
        if let Some(oid) = target {
            refs.insert(name, oid.to_string());
        }
    }
    Ok(RepoRefs { head, refs })
}
