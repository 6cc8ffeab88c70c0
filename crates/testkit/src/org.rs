//! Whole fixture organizations.

use crate::fixtures;
use crate::{FakeGitHub, RepoSpec};

/// Creates org `org` with `n` public repositories `repo-000`, `repo-001`, ... built
/// with [`fixtures::standard_repo`]; returns their names.
pub fn standard_org(github: &FakeGitHub, org: &str, n: usize) -> Vec<String> {
    github.add_org(org);
    (0..n)
        .map(|i| {
            let name = format!("repo-{i:03}");
            fixtures::standard_repo(&github.repo_path(org, &name), &name);
            github.add_repo(RepoSpec::new(org, &name).has_wiki(false));
            name
        })
        .collect()
}
