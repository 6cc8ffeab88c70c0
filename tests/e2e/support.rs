//! Shared helpers: locating the built binaries, running them, fixture orgs, and
//! checking backups with nothing but standard tools (`tar`, `git`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use repovault_core::{BackupFormat, Manifest, RefSet};
use repovault_reporter::Report;
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec, fixtures};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TOKEN: &str = "ghp_e2eSecretToken0123456789";

/// A binary built by `cargo build --workspace --all-targets`, which the test command runs
/// first; they sit one directory above this test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` first (scripts/test does)",
        path.display()
    );
    path
}

/// A fake GitHub that accepts [`TOKEN`].
pub async fn github() -> FakeGitHub {
    FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await
    .expect("start fake GitHub")
}

/// A fake GitHub that accepts [`TOKEN`] and speaks git protocol v0 only, as an old
/// server would: backups then take the fallback (a mirror clone with the git CLI,
/// packed by `git pack-objects` into the same chain links).
pub async fn github_v0() -> FakeGitHub {
    FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        git_protocol_v0: true,
        ..Default::default()
    })
    .await
    .expect("start fake GitHub")
}

/// Runs `repovault` with `args` in `cwd`, the token in the environment, and returns
/// its output. Async so the in-process fake GitHub keeps serving meanwhile.
pub async fn repovault(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(bin("repovault"));
    cmd.args(args)
        .current_dir(cwd)
        .env("GITHUB_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .env_remove("REPOVAULT_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run repovault")
}

pub fn text(output: &Output) -> String {
    format!(
        "--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn report(backups: &Path, run_id: &str) -> Report {
    let path = backups.join("runs").join(run_id).join("report.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("report.json parses")
}

/// Every backup of `owner/name` under `<backups>` (empty prefix): its manifest
/// files, oldest first.
pub fn backups_of(backups: &Path, owner: &str, name: &str) -> Vec<PathBuf> {
    let dir = backups.join("repos").join(owner).join(name);
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.to_string_lossy().ends_with(".manifest.json"));
    found.sort();
    found
}

/// The first-format archive beside a backup's manifest.
pub fn archive_of(manifest: &Path) -> PathBuf {
    PathBuf::from(
        manifest
            .to_string_lossy()
            .replace(".manifest.json", ".tar.zst"),
    )
}

/// What a backup restored by hand holds.
pub struct Extracted {
    pub dir: tempfile::TempDir,
    pub manifest: Manifest,
}

/// Restores the backup whose manifest is at `manifest` with standard tools only, as
/// docs/OPERATING.md tells a user to: `tar --zstd -xf` for an archive; for a bundle chain
/// `git clone --mirror` of the first link, `git fetch --prune` of each next one, and
/// `git symbolic-ref HEAD`.
pub fn extract(manifest: &Path) -> Extracted {
    let dir = tempfile::tempdir().unwrap();
    let parsed: Manifest = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    if parsed.format == BackupFormat::TarZst {
        let archive = archive_of(manifest);
        let status = std::process::Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar failed on {}", archive.display());
        let manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("MANIFEST.json")).unwrap())
                .unwrap();
        return Extracted { dir, manifest };
    }
    // Links sit in `packs/` beside the manifest, whatever the store's prefix.
    let packs = manifest.parent().expect("a manifest file").join("packs");
    let name = &parsed.source.name;
    let mut chains = vec![(
        &parsed.bundles,
        format!("{name}.git"),
        parsed.head.as_deref(),
    )];
    if parsed.wiki_refs.is_some() {
        chains.push((&parsed.wiki_bundles, format!("{name}.wiki.git"), None));
    }
    for (links, repo, head) in chains {
        let repo = dir.path().join(repo);
        for (i, link) in links.iter().enumerate() {
            let bundle = packs.join(link.key.rsplit('/').next().unwrap());
            let args: Vec<&std::ffi::OsStr> = if i == 0 {
                vec![
                    "clone".as_ref(),
                    "--mirror".as_ref(),
                    "--quiet".as_ref(),
                    bundle.as_ref(),
                    repo.as_ref(),
                ]
            } else {
                vec![
                    "-C".as_ref(),
                    repo.as_ref(),
                    "fetch".as_ref(),
                    "--prune".as_ref(),
                    "--quiet".as_ref(),
                    bundle.as_ref(),
                    "+refs/*:refs/*".as_ref(),
                ]
            };
            git(&args);
        }
        if let Some(head) = head {
            git(&[
                "-C".as_ref(),
                repo.as_ref(),
                "symbolic-ref".as_ref(),
                "HEAD".as_ref(),
                head.as_ref(),
            ]);
        }
    }
    Extracted {
        dir,
        manifest: parsed,
    }
}

fn git(args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new("git")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn refs_of(repo: &Path) -> RefSet {
    repovault_git::read_refs(repo)
        .unwrap_or_else(|e| panic!("{}: {e}", repo.display()))
        .refs
}

/// `git fsck --full` on a bare repository; panics with its output on failure.
pub fn fsck(repo: &Path) {
    let out = std::process::Command::new("git")
        .args(["fsck", "--full", "--no-dangling"])
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git fsck failed in {}: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restores the backup of `owner/name` by hand, checks its refs equal the source's and that
/// fsck is clean, and returns the extraction.
pub fn assert_archive_matches(
    backups: &Path,
    github: &FakeGitHub,
    owner: &str,
    name: &str,
) -> Extracted {
    let found = backups_of(backups, owner, name);
    assert_eq!(
        found.len(),
        1,
        "{owner}/{name}: expected one backup, found {found:?}"
    );
    let extracted = extract(&found[0]);
    let bare = extracted.dir.path().join(format!("{name}.git"));
    assert_eq!(
        refs_of(&bare),
        refs_of(&github.repo_path(owner, name)),
        "{owner}/{name}: refs differ"
    );
    assert_eq!(
        extracted.manifest.refs,
        refs_of(&bare),
        "{owner}/{name}: manifest refs differ"
    );
    fsck(&bare);
    extracted
}

/// [`run_org`]'s extra flags for a run that probes every kind of every repository's
/// data, whatever the organization's event feed shows: for what the feed never
/// shows (settings, discussions), or to test the probes themselves.
pub const PROBE_EVERY_KIND: &[&str] = &["--probe-every", "0s"];

/// `repovault run --org acme --api-url <fake> --run-id <run_id> <extra>` in `cwd`.
pub async fn run_org(cwd: &Path, gh: &FakeGitHub, run_id: &str, extra: &[&str]) -> Output {
    let api = gh.api_url();
    let mut args = vec![
        "run",
        "--org",
        "acme",
        "--api-url",
        &api,
        "--allow-insecure-http",
        "--run-id",
        run_id,
    ];
    args.extend_from_slice(extra);
    repovault(cwd, &args, &[]).await
}

/// Runs the "Restoring by hand" commands of the operator's guide (`docs/OPERATING.md`,
/// where the README points) verbatim: every `sh` block of the section, up to the next
/// heading, in one shell, on the backup whose manifest is `manifest`. They leave
/// `api.git` beside it.
pub fn run_readme_restore(manifest: &Path) {
    run_guide_section("### Restoring by hand\n", manifest, &[]);
}

/// Runs every `sh` block of the operator's guide's section under `heading` verbatim,
/// on the backup whose manifest is `manifest`, with `also` replaced as well (a key
/// file's path).
pub fn run_guide_section(heading: &str, manifest: &Path, also: &[(&str, &str)]) {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/OPERATING.md"))
            .unwrap();
    let start = guide
        .find(heading)
        .expect("the section in docs/OPERATING.md")
        + heading.len();
    let section = &guide[start..];
    let end = ["\n## ", "\n### "]
        .iter()
        .filter_map(|next| section.find(next))
        .min()
        .unwrap_or(section.len());
    let section = &section[..end];
    let mut script = String::new();
    for block in section.split("```sh\n").skip(1) {
        script.push_str(&block[..block.find("```").expect("a closed block")]);
    }
    assert!(!script.is_empty(), "no commands in the section");
    let script = script
        .replace(
            "backups/repos/my-org/api",
            manifest.parent().unwrap().to_str().unwrap(),
        )
        .replace(
            "api-20261122T143605Z.manifest.json",
            manifest.file_name().unwrap().to_str().unwrap(),
        );
    let script = also
        .iter()
        .fold(script, |script, (from, to)| script.replace(from, to));
    let out = std::process::Command::new("sh")
        .args(["-ec", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub use repovault_testkit::http::request as http;

/// A free loopback port (bound, then released for the process under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A working directory for the distributed roles: `repovault.yml` with one job `acme`
/// (the fake's org, backed up into `target`; `job_extra`: more YAML lines of the job,
/// indented four spaces) and an empty `work/`.
pub fn deployment_dir(gh: &FakeGitHub, target: &str, job_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repovault.yml"),
        format!(
            "allow-insecure-http: true\nretry: {{ base-delay: 1s, max-delay: 2s }}\nconcurrency: 4\njobs:\n  - name: acme\n    source: {{ org: acme, api-url: \"{}\" }}\n    target: {target}\n{job_extra}",
            gh.api_url(),
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    dir
}

/// An HTTP answer as the raw client below read it.
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The `rel="next"` URL's path and query, if any.
    pub fn next(&self) -> Option<String> {
        self.header("link")
            .split(',')
            .find(|l| l.contains("rel=\"next\""))
            .and_then(|l| l.split(['<', '>']).nth(1))
            .map(|url| url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap())
    }
}

/// `method url` over a plain TCP stream (HTTP/1.1), with `Authorization: Bearer
/// <token>` when given.
pub async fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_lowercase(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The data index `latest.json` names for `acme/api` under `backups`, and its key.
pub fn latest_index(backups: &Path) -> (String, repovault_core::DataIndex) {
    let latest: repovault_core::LatestPointer =
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/api/latest.json")).unwrap())
            .unwrap();
    let key = latest.data.expect("a data snapshot");
    let index = serde_json::from_slice(&std::fs::read(backups.join(&key)).unwrap()).unwrap();
    (key, index)
}

/// `acme/<name>` on `gh` (a standard repository, no wiki) with `data` beyond git;
/// `acme` made an organization first if it is not one yet. Returns its git repository.
pub fn acme_repo(
    gh: &FakeGitHub,
    name: &str,
    spec: RepoSpec,
    data: MetadataSpec,
) -> git2::Repository {
    gh.add_org("acme");
    let git = fixtures::standard_repo(&gh.repo_path("acme", name), name);
    gh.add_repo(spec.has_wiki(false));
    gh.add_metadata("acme", name, data);
    git
}

/// A little of every kind of issue data, and a release with a 4 KiB asset.
pub fn some_data_and_a_release() -> MetadataSpec {
    MetadataSpec {
        issues: 3,
        comments_per_issue: 1,
        pulls: 1,
        reviews_per_pull: 1,
        releases: 1,
        asset_bytes: 4 << 10,
        ..Default::default()
    }
}

/// The organization `acme`'s newest data index in `backups`.
pub async fn acme_org_index(backups: &Path) -> repovault_core::DataIndex {
    let store = repovault_local::FsStore::new(backups);
    let repo = repovault_repository::Repository::new(&store, "");
    let key = repo.org_latest("acme").await.unwrap().unwrap();
    repo.org_data_index("acme", &key).await.unwrap().unwrap()
}
