//! What `git` children see: repovault runs git (mirror clones, index-pack, cat-file
//! for LFS pointers, restores) with an environment of its own, never with the
//! GitHub token, the App's private key, AWS credentials or repovault's secrets, which
//! a hook, a credential helper or git-lfs started by git would otherwise inherit.

use std::path::Path;

use repovault_testkit::{RepoSpec, fixtures};

use crate::support::*;

/// Secrets a deployment's environment holds, by name and value.
const SECRETS: &[(&str, &str)] = &[
    (
        "GITHUB_APP_PRIVATE_KEY",
        "-----BEGIN RSA PRIVATE KEY-----leaked",
    ),
    ("GH_TOKEN", "ghp_leakedGhToken0123456789"),
    ("REPOVAULT_WEBHOOK_SECRET", "leaked-webhook-secret"),
    ("REPOVAULT_API_TOKEN", "leaked-api-token-0123"),
    ("AWS_SECRET_ACCESS_KEY", "leakedAwsSecretAccessKey"),
    ("AWS_SESSION_TOKEN", "leakedAwsSessionToken"),
];

/// A directory with a `git` that appends its environment to `<dir>/env-<pid>` and
/// runs the real git.
fn env_dumping_git(dir: &Path) {
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_owned();
    let script = format!(
        "#!/bin/sh\nenv > '{}/env-'$$\nexec '{real}' \"$@\"\n",
        dir.display()
    );
    let path = dir.join("git");
    std::fs::write(&path, script).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn git_children_get_no_token_no_key_and_no_secret() {
    let gh = github_v0().await;
    gh.add_org("acme");
    fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    gh.add_repo(RepoSpec::new("acme", "api"));
    let fake = tempfile::tempdir().unwrap();
    env_dumping_git(fake.path());
    let work = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(&str, &str)> = SECRETS.to_vec();
    env.push(("PATH", &path));
    // A server without protocol v2: `git clone --mirror`; then a restore, which
    // indexes, checks and pushes with git.
    let api = gh.api_url();
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "acme",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--no-metadata",
        ],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let restored = work.path().join("restored");
    let out = repovault(
        work.path(),
        &["restore", "acme/api", "--to", restored.to_str().unwrap()],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let dumps: Vec<String> = std::fs::read_dir(fake.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("env-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(dumps.len() >= 2, "git ran {} time(s)", dumps.len());
    for dump in &dumps {
        for (name, value) in SECRETS.iter().chain([&("GITHUB_TOKEN", TOKEN)]) {
            assert!(
                !dump.lines().any(|l| l.starts_with(&format!("{name}="))),
                "git saw {name}:\n{dump}"
            );
            assert!(!dump.contains(value), "git saw {name}'s value:\n{dump}");
        }
        assert!(dump.contains("PATH="), "{dump}");
    }
}
