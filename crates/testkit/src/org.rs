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

/// A standard org plus the cases a backup must handle: an empty repository, one with
/// a wiki, one claiming a wiki that does not exist, a private one, a fork, an archived
/// one, and one with unicode and very long ref names.
pub fn showcase_org(github: &FakeGitHub, org: &str, n: usize) -> Vec<String> {
    let mut names = standard_org(github, org, n);
    let mut add = |spec: RepoSpec, build: &dyn Fn(&std::path::Path)| {
        build(&github.repo_path(&spec.owner, &spec.name));
        names.push(spec.name.clone());
        github.add_repo(spec);
    };
    add(RepoSpec::new(org, "empty"), &|p| {
        fixtures::init_bare(p, "main");
    });
    add(RepoSpec::new(org, "with-wiki"), &|p| {
        fixtures::standard_repo(p, "with-wiki");
    });
    fixtures::wiki_repo(&github.wiki_path(org, "with-wiki"));
    add(
        RepoSpec::new(org, "wiki-never-written").has_wiki(true),
        &|p| {
            fixtures::standard_repo(p, "wiki-never-written");
        },
    );
    add(RepoSpec::new(org, "private-repo").private(), &|p| {
        fixtures::standard_repo(p, "private-repo");
    });
    add(RepoSpec::new(org, "a-fork").fork(), &|p| {
        fixtures::standard_repo(p, "a-fork");
    });
    add(RepoSpec::new(org, "old-archived").archived(), &|p| {
        fixtures::standard_repo(p, "old-archived");
    });
    add(RepoSpec::new(org, "unusual-refs"), &|p| {
        let repo = fixtures::standard_repo(p, "unusual-refs");
        fixtures::add_unusual_refs(&repo);
    });
    names
}
