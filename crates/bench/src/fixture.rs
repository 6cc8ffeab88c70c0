//! The benchmark's organization: a few large repositories with long histories and
//! many refs, and many tiny ones, served by the testkit's fake GitHub.

use repovault_testkit::history::{HistorySpec, generate};
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, RepoSpec, fixtures};

pub const ORG: &str = "bench";
pub const TOKEN: &str = "bench-token";

pub struct Fixture {
    pub github: FakeGitHub,
    /// Every repository name, large ones first.
    pub repos: Vec<String>,
    /// Total size of the bare repositories, bytes.
    pub bytes: u64,
}

pub async fn build(large_mb: &[usize], commits: usize, tiny: usize) -> anyhow::Result<Fixture> {
    let github = FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        // Runs repeat over one fixture: GitHub's hourly budget is not what is measured.
        rate_limit: Some(u64::MAX / 2),
        ..Default::default()
    })
    .await?;
    github.add_org(ORG);
    let mut repos = Vec::new();
    for (i, mb) in large_mb.iter().enumerate() {
        let name = format!("large-{i}-{mb}mb");
        let path = github.repo_path(ORG, &name);
        let spec = HistorySpec::sized(*mb, commits, i as u64 + 1);
        tokio::task::spawn_blocking(move || generate(&path, spec)).await??;
        github.add_repo(RepoSpec::new(ORG, &name).has_wiki(false));
        repos.push(name);
    }
    for i in 0..tiny {
        let name = format!("tiny-{i:04}");
        fixtures::standard_repo(&github.repo_path(ORG, &name), &name);
        github.add_repo(RepoSpec::new(ORG, &name).has_wiki(false));
        repos.push(name);
    }
    let bytes = dir_bytes(&github.root().join(ORG));
    Ok(Fixture {
        github,
        repos,
        bytes,
    })
}

pub fn dir_bytes(path: &std::path::Path) -> u64 {
    repovault_git::dir_size(path).unwrap_or(0)
}
