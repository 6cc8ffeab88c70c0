//! Builders for real git repositories used as fixtures.

use std::path::Path;

use git2::{Oid, Repository, Signature, Time};

/// A commit's author and committer, fixed so fixtures are reproducible.
fn signature(seconds: i64) -> Signature<'static> {
    Signature::new(
        "Fixture Bot",
        "fixtures@repovault.test",
        &Time::new(seconds, 0),
    )
    .expect("valid signature")
}

/// A bare repository whose `HEAD` points at `refs/heads/<default_branch>`.
pub fn init_bare(path: &Path, default_branch: &str) -> Repository {
    let repo = Repository::init_bare(path).expect("init bare repository");
    repo.set_head(&format!("refs/heads/{default_branch}"))
        .expect("set HEAD");
    repo
}

/// Commits `files` (flat names) on top of `branch` (creating it), returns the commit.
pub fn commit(repo: &Repository, branch: &str, files: &[(&str, &[u8])], message: &str) -> Oid {
    let refname = format!("refs/heads/{branch}");
    let parent = repo
        .find_reference(&refname)
        .ok()
        .and_then(|r| r.target())
        .map(|oid| repo.find_commit(oid).expect("parent commit"));
    let mut builder = repo
        .treebuilder(
            parent
                .as_ref()
                .map(|p| p.tree().expect("parent tree"))
                .as_ref(),
        )
        .expect("tree builder");
    for (name, content) in files {
        let blob = repo.blob(content).expect("write blob");
        builder.insert(name, blob, 0o100644).expect("insert blob");
    }
    let tree = repo
        .find_tree(builder.write().expect("write tree"))
        .expect("tree");
    let when = parent
        .as_ref()
        .map_or(1_700_000_000, |p| p.time().seconds() + 60);
    let sig = signature(when);
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some(&refname), &sig, &sig, message, &tree, &parents)
        .expect("commit")
}

/// Points `refname` at `target`, creating or moving it.
pub fn set_ref(repo: &Repository, refname: &str, target: Oid) {
    repo.reference(refname, target, true, "fixture")
        .expect("set ref");
}

/// An annotated tag `refs/tags/<name>` on `target`.
pub fn annotated_tag(repo: &Repository, name: &str, target: Oid) -> Oid {
    let object = repo.find_object(target, None).expect("tag target");
    repo.tag(
        name,
        &object,
        &signature(1_700_000_000),
        &format!("release {name}"),
        true,
    )
    .expect("annotated tag")
}

/// The standard fixture: `main` with three commits, a `dev` branch, a lightweight and an
/// annotated tag, and a pull-request ref, as GitHub would have them.
pub fn standard_repo(path: &Path, name: &str) -> Repository {
    let repo = init_bare(path, "main");
    commit(
        &repo,
        "main",
        &[("README.md", format!("# {name}\n").as_bytes())],
        "initial commit",
    );
    let second = commit(
        &repo,
        "main",
        &[("src.txt", format!("{name} v1\n").as_bytes())],
        "add source",
    );
    let head = commit(
        &repo,
        "main",
        &[("src.txt", format!("{name} v2\n").as_bytes())],
        "update source",
    );
    let dev = commit(
        &repo,
        "dev",
        &[("dev.txt", b"work in progress\n")],
        "dev work",
    );
    set_ref(&repo, "refs/tags/v1.0", second);
    annotated_tag(&repo, "v1.1", head);
    set_ref(&repo, "refs/pull/1/head", dev);
    repo
}

/// Refs with unicode and very long names, which must survive archive and restore.
pub fn add_unusual_refs(repo: &Repository) {
    let head = repo.refname_to_id("refs/heads/main").expect("main exists");
    set_ref(repo, "refs/heads/feature/ünïcødé-名前-🚀", head);
    let long: Vec<String> = (0..6)
        .map(|i| format!("segment-{i}-{}", "x".repeat(60)))
        .collect();
    set_ref(repo, &format!("refs/heads/{}", long.join("/")), head);
}

/// A wiki repository with one page.
pub fn wiki_repo(path: &Path) -> Repository {
    let repo = init_bare(path, "master");
    commit(
        &repo,
        "master",
        &[("Home.md", b"Welcome to the wiki\n")],
        "create wiki",
    );
    repo
}

/// A repository holding `bytes` of incompressible data (plus the standard refs), for
/// tests that need a long upload.
pub fn large_repo(path: &Path, name: &str, bytes: usize) -> Repository {
    let repo = standard_repo(path, name);
    let mut rng = fastrand::Rng::with_seed(bytes as u64);
    let data: Vec<u8> = (0..bytes).map(|_| rng.u8(..)).collect();
    commit(
        &repo,
        "main",
        &[("payload.bin", &data)],
        "add a large payload",
    );
    repo
}

/// The Git LFS pointer file for `content`, and the object's oid (its SHA-256).
pub fn lfs_pointer(content: &[u8]) -> (Vec<u8>, String) {
    use sha2::Digest;
    let oid = hex::encode(sha2::Sha256::digest(content));
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
        content.len()
    );
    (pointer.into_bytes(), oid)
}

/// Commits `content` on `branch` as git-lfs would: a pointer file `name` (and a
/// `.gitattributes` tracking `*.bin`) in the repository, the content in
/// `lfs_dir/<oid>`, where the fake GitHub's LFS server finds it. Returns the oid.
pub fn commit_lfs(
    repo: &Repository,
    lfs_dir: &Path,
    branch: &str,
    name: &str,
    content: &[u8],
) -> String {
    let (pointer, oid) = lfs_pointer(content);
    std::fs::create_dir_all(lfs_dir).expect("lfs dir");
    std::fs::write(lfs_dir.join(&oid), content).expect("lfs object");
    commit(
        repo,
        branch,
        &[
            (
                ".gitattributes",
                b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
            ),
            (name, &pointer),
        ],
        &format!("add {name} (LFS)"),
    );
    oid
}

/// A repository with Git LFS objects of `bytes` each (incompressible, all distinct)
/// on several branches: `main` (two, one replaced later in its history), `design`
/// and `data` (one each, plus what `main` had when they branched). Returns the
/// repository and every object's oid.
pub fn lfs_repo(path: &Path, lfs_dir: &Path, bytes: usize) -> (Repository, Vec<String>) {
    let repo = standard_repo(path, "lfs");
    let mut rng = fastrand::Rng::with_seed(bytes as u64 + 7);
    let mut blob = || -> Vec<u8> { (0..bytes).map(|_| rng.u8(..)).collect() };
    let mut oids = vec![commit_lfs(&repo, lfs_dir, "main", "model.bin", &blob())];
    let main = repo.refname_to_id("refs/heads/main").expect("main");
    set_ref(&repo, "refs/heads/design", main);
    set_ref(&repo, "refs/heads/data", main);
    oids.push(commit_lfs(&repo, lfs_dir, "design", "mockup.bin", &blob()));
    oids.push(commit_lfs(&repo, lfs_dir, "data", "dataset.bin", &blob()));
    oids.push(commit_lfs(&repo, lfs_dir, "main", "model.bin", &blob()));
    oids.push(commit_lfs(&repo, lfs_dir, "main", "weights.bin", &blob()));
    (repo, oids)
}
