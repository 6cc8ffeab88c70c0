//! Encryption at rest: a backup written to two age recipients (X25519 and ssh-ed25519)
//! by workers that hold no identity, unreadable in the store except for what the
//! design keeps in the clear, restored exactly with either identity, refused with a
//! wrong one or none, verified without one, and restored by hand with `age` and git.

use std::path::{Path, PathBuf};
use std::process::Command;

use repovault_testkit::fixtures;

use crate::support::*;

const CONTENT: &str = "zebra-content-7731";
const MESSAGE: &str = "zebra-message-5521";
const BRANCH: &str = "zebra-branch";

/// Objects the design keeps readable without a key (docs/ARCHITECTURE.md): pointers,
/// records, plans and reports, data indexes; and the folder store's own sidecars (an
/// object's size, SHA-256 and repository: S3 keeps them as tags).
fn plaintext_by_design(key: &str) -> bool {
    key.starts_with(".repovault/")
        || key.starts_with("runs/")
        || key == "latest-run.json"
        || key.ends_with("/latest.json")
        || key.ends_with("/gone.json")
        || key.ends_with("/activity.json")
        || key.ends_with("/index.json")
}

pub(crate) struct Keys {
    dir: tempfile::TempDir,
    pub age_public: String,
    ssh_public: String,
}

impl Keys {
    /// An age identity (`key.txt`), an ssh-ed25519 one (`id_ed25519`) and an age
    /// identity nothing is encrypted to (`wrong.txt`), made by the standard tools.
    pub(crate) fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stderr).into_owned()
        };
        let age_public = run("age-keygen", &["-o", "key.txt"])
            .trim()
            .trim_start_matches("Public key: ")
            .to_owned();
        run("age-keygen", &["-o", "wrong.txt"]);
        run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "test",
                "-f",
                "id_ed25519",
            ],
        );
        let ssh_public = std::fs::read_to_string(dir.path().join("id_ed25519.pub"))
            .unwrap()
            .trim()
            .to_owned();
        Keys {
            dir,
            age_public,
            ssh_public,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Flips one bit of the file at `path`, at the offset `at(its length)`; flipping it
/// again undoes it.
fn flip_a_byte(path: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at(bytes.len());
    bytes[at] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// Restores `acme/app` into `to` with `identity`.
async fn restore(work: &Path, identity: Option<&Path>, to: &Path) -> std::process::Output {
    let mut args = vec!["restore", "acme/app", "--to", to.to_str().unwrap()];
    if let Some(identity) = identity {
        args.extend(["--identity", identity.to_str().unwrap()]);
    }
    repovault(work, &args, &[]).await
}

/// Restores `acme/app`'s data beyond git into `to` with `identity`; checks its issues
/// came back opened and returns the files written.
async fn restore_data(work: &Path, identity: &Path, to: &Path) -> Vec<PathBuf> {
    let to = to.to_str().unwrap();
    let args = [
        "restore",
        "acme/app",
        "--metadata",
        "--to",
        to,
        "--identity",
    ];
    let out = repovault(
        work,
        &[&args[..], &[identity.to_str().unwrap()]].concat(),
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let restored = walk(Path::new(to));
    let issues = restored
        .iter()
        .find(|p| p.ends_with("issues.jsonl"))
        .expect("issues");
    assert!(
        std::fs::read_to_string(issues)
            .unwrap()
            .contains("\"title\"")
    );
    restored
}

#[tokio::test]
async fn encrypted_backups_hide_their_content_and_restore_with_either_identity_only() {
    let gh = github().await;
    let git = acme_repo(
        &gh,
        "app",
        repovault_testkit::RepoSpec::new("acme", "app"),
        some_data_and_a_release(),
    );
    fixtures::commit(&git, BRANCH, &[("secret.txt", CONTENT.as_bytes())], MESSAGE);
    // An attachment in an issue comment: its content is secret too.
    let attachment = format!("attached {CONTENT} screenshot").into_bytes();
    let url = gh.add_attachment("acme", "app", &attachment);
    gh.add_issue_comment("acme", "app", 1, &format!("See ![x]({url})"));
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let recipients = format!("{},{}", keys.age_public, keys.ssh_public);
    let out = run_org(work.path(), &gh, "r1", &["--age-recipient", &recipients]).await;
    assert!(out.status.success(), "{}", text(&out));

    // Every object but those kept readable by design is an age file, and none holds
    // the content, the commit message, the branch's name or the issues' text.
    let backups = work.path().join("backups");
    let mut sealed = 0;
    for file in walk(&backups) {
        let key = file
            .strip_prefix(&backups)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = std::fs::read(&file).unwrap();
        for needle in [CONTENT, MESSAGE, BRANCH, "\"title\""] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{key} holds {needle:?}"
            );
        }
        if key.ends_with(".manifest.json") {
            // The chain in the clear; refs, HEAD and source an age file inside.
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let inner = manifest["sealed"].as_str().expect("a sealed part");
            assert!(inner.starts_with("YWdlLWVuY3J5cHRpb24ub3JnL3Yx"), "{key}");
            assert!(manifest.get("refs").is_none() && manifest.get("source").is_none());
        } else if !plaintext_by_design(&key) {
            assert!(
                bytes.starts_with(b"age-encryption.org/v1\n"),
                "{key} is not sealed"
            );
            sealed += 1;
        }
    }
    assert!(sealed >= 3, "a link, data files and an asset: {sealed}");

    // Restored exactly with either identity.
    let source = refs_of(&gh.repo_path("acme", "app"));
    for identity in ["key.txt", "id_ed25519"] {
        let to = work.path().join(format!("restored-{identity}"));
        let out = restore(work.path(), Some(&keys.path(identity)), &to).await;
        assert!(out.status.success(), "{identity}: {}", text(&out));
        assert_eq!(refs_of(&to.join("app.git")), source, "{identity}");
        fsck(&to.join("app.git"));
    }
    // The data beyond git too, opened: items as JSON Lines, the attachment as it was.
    let to = work.path().join("restored-data");
    let restored = restore_data(work.path(), &keys.path("key.txt"), &to).await;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&attachment));
    let file = restored
        .iter()
        .find(|p| p.ends_with(&digest))
        .expect("the attachment");
    assert_eq!(std::fs::read(file).unwrap(), attachment);
    // Refused with a wrong identity, and without one, naming the object and the flag.
    for (identity, says) in [
        (
            Some(keys.path("wrong.txt")),
            "encrypted to none of the identities given",
        ),
        (None, "encrypted; give the identity"),
    ] {
        let to = work.path().join("refused");
        let out = restore(work.path(), identity.as_deref(), &to).await;
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains(says) && said.contains("--identity"), "{said}");
        assert!(
            said.contains("repos/acme/app/app-"),
            "names the manifest: {said}"
        );
    }
    // Verified without an identity (what is stored against the digests recorded in the
    // clear), and with one by a restore drill; a drill without one names the flag.
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let key = keys.path("key.txt");
    let drill = [
        "verify",
        "--restore-drill",
        "--identity",
        key.to_str().unwrap(),
    ];
    let out = repovault(work.path(), &drill, &[]).await;
    assert!(
        out.status.success() && text(&out).contains("restore drill ok"),
        "{}",
        text(&out)
    );
    let out = repovault(work.path(), &["verify", "--restore-drill"], &[]).await;
    assert!(
        !out.status.success() && text(&out).contains("--identity"),
        "{}",
        text(&out)
    );
    // Listed without a key: what is in the clear (links, sizes), refs unknown.
    let out = repovault(work.path(), &["ls", "acme/app"], &[]).await;
    assert!(
        out.status.success() && text(&out).contains("latest"),
        "{}",
        text(&out)
    );
    // A damaged link is found without a key.
    let link = walk(&backups)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "bundle"))
        .unwrap();
    flip_a_byte(&link, |len| len - 1);
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert!(
        !out.status.success() && text(&out).contains("sha256"),
        "{}",
        text(&out)
    );
    flip_a_byte(&link, |len| len - 1);

    // A second run after a push adds a link on the chain, with no identity anywhere.
    fixtures::commit(&git, "main", &[("two.txt", b"two")], "second");
    let out = run_org(work.path(), &gh, "r2", &["--age-recipient", &recipients]).await;
    assert!(out.status.success(), "{}", text(&out));
    let latest: repovault_core::LatestPointer =
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/app/latest.json")).unwrap())
            .unwrap();
    let chain = latest.chain.expect("latest.json keeps the chain");
    assert_eq!(chain.bundles.len(), 2, "built on the first backup");
    assert!(chain.bundles[1].size < chain.bundles[0].size);
    let to = work.path().join("restored-2");
    let out = restore(work.path(), Some(&keys.path("key.txt")), &to).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        refs_of(&to.join("app.git")),
        refs_of(&gh.repo_path("acme", "app"))
    );

    // By hand, with the operator's guide's commands verbatim.
    let manifest = backups.join(&latest.backup.manifest_key);
    run_guide_section(
        "### Restoring encrypted backups by hand\n",
        &manifest,
        &[("key.txt", keys.path("key.txt").to_str().unwrap())],
    );
    let by_hand = manifest.parent().unwrap().join("api.git");
    assert_eq!(refs_of(&by_hand), refs_of(&gh.repo_path("acme", "app")));
    fsck(&by_hand);
}

#[tokio::test]
async fn encrypted_lfs_objects_are_verified_without_a_key_and_restored_with_one() {
    let gh = github().await;
    gh.add_org("acme");
    let (git, oids) = fixtures::lfs_repo(
        &gh.repo_path("acme", "app"),
        &gh.lfs_path("acme", "app"),
        200_000,
    );
    gh.add_repo(repovault_testkit::RepoSpec::new("acme", "app").has_wiki(false));
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let run = |id: &'static str| {
        let (work, gh, recipient) = (work.path(), &gh, keys.age_public.clone());
        async move {
            let args = ["--lfs", "--no-metadata", "--age-recipient", &recipient];
            let out = run_org(work, gh, id, &args).await;
            assert!(out.status.success(), "{}", text(&out));
        }
    };
    run("r1").await;
    for oid in &oids {
        let stored = std::fs::read(backups.join(format!("repos/acme/app/lfs/{oid}"))).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{oid}");
        let content = std::fs::read(gh.lfs_path("acme", "app").join(oid)).unwrap();
        assert!(!stored.windows(64).any(|w| w == &content[1000..1064]));
    }
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let key = keys.path("key.txt");
    let to = work.path().join("restored");
    let out = restore(work.path(), Some(&key), &to).await;
    assert!(out.status.success(), "{}", text(&out));
    for oid in &oids {
        let restored = to.join(format!(
            "app.git/lfs/objects/{}/{}/{oid}",
            &oid[..2],
            &oid[2..4]
        ));
        assert_eq!(
            std::fs::read(restored).unwrap(),
            std::fs::read(gh.lfs_path("acme", "app").join(oid)).unwrap()
        );
    }

    // A new object: only it is downloaded; the others are known from latest.json.
    let before = gh.stats().lfs_downloads;
    fixtures::commit_lfs(
        &git,
        &gh.lfs_path("acme", "app"),
        "main",
        "new.bin",
        &[7u8; 70_000],
    );
    run("r2").await;
    assert_eq!(gh.stats().lfs_downloads, before + 1);
    let drill = [
        "verify",
        "--restore-drill",
        "--identity",
        key.to_str().unwrap(),
    ];
    let out = repovault(work.path(), &drill, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    // A damaged object is named without a key.
    let damaged = backups.join(format!("repos/acme/app/lfs/{}", oids[0]));
    flip_a_byte(&damaged, |len| len / 2);
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert!(
        !out.status.success() && text(&out).contains(&oids[0]),
        "{}",
        text(&out)
    );
}

/// Whether Debian's `age` opens `file` with `identity`.
fn age_opens(file: &Path, identity: &Path) -> bool {
    Command::new("age")
        .args(["-d", "-i", identity.to_str().unwrap(), "-o", "/dev/null"])
        .arg(file)
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn rekey_moves_every_object_to_the_new_keys_and_a_killed_rekey_rerun_loses_nothing() {
    let gh = github().await;
    let git = acme_repo(
        &gh,
        "app",
        repovault_testkit::RepoSpec::new("acme", "app"),
        some_data_and_a_release(),
    );
    let keys = Keys::new();
    let work = tempfile::tempdir().unwrap();
    let old = ["--age-recipient", keys.age_public.as_str()];
    let out = run_org(work.path(), &gh, "r1", &old).await;
    assert!(out.status.success(), "{}", text(&out));
    fixtures::commit(&git, "main", &[("two.txt", b"two")], "second");
    let out = run_org(work.path(), &gh, "r2", &old).await;
    assert!(out.status.success(), "{}", text(&out));
    let new = keys.path("new.txt");
    let made = Command::new("age-keygen")
        .args(["-o", new.to_str().unwrap()])
        .output()
        .unwrap();
    let new_public = String::from_utf8_lossy(&made.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_owned();
    let recipients = keys.path("new.pub");
    std::fs::write(&recipients, format!("# after the rotation\n{new_public}\n")).unwrap();
    let backups = work.path().join("backups");
    let sealed: Vec<PathBuf> = walk(&backups)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n")
        })
        .collect();
    assert!(sealed.len() >= 4, "links, data files, an asset: {sealed:?}");

    // Killed while it works on the repository: every object still opens with one key.
    let old_identity = keys.path("key.txt");
    let rekey = [
        "rekey",
        "--identity",
        old_identity.to_str().unwrap(),
        "--to-recipients",
        recipients.to_str().unwrap(),
    ];
    let mut child = tokio::process::Command::new(bin("repovault"))
        .args(rekey)
        .current_dir(work.path())
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stderr.take().unwrap()));
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("rekeying") && line.contains("repos/acme/app/") {
            child.start_kill().unwrap();
            break;
        }
    }
    child.wait().await.unwrap();
    for file in &sealed {
        let (by_old, by_new) = (age_opens(file, &old_identity), age_opens(file, &new));
        assert!(
            by_old ^ by_new,
            "{}: old {by_old}, new {by_new}",
            file.display()
        );
    }

    // Run again: done, every object with the new key only.
    let out = repovault(work.path(), &rekey, &[]).await;
    assert!(
        out.status.success() && text(&out).contains("records updated"),
        "{}",
        text(&out)
    );
    for file in &sealed {
        assert!(age_opens(file, &new), "{}", file.display());
        assert!(!age_opens(file, &old_identity), "{}", file.display());
    }
    // What is stored matches its records (no key), and restores exactly with the new
    // identity, by repovault and by hand; the old one is refused.
    let out = repovault(work.path(), &["verify"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let source = refs_of(&gh.repo_path("acme", "app"));
    let to = work.path().join("restored-new");
    let out = restore(work.path(), Some(&new), &to).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(refs_of(&to.join("app.git")), source);
    fsck(&to.join("app.git"));
    restore_data(work.path(), &new, &work.path().join("restored-data")).await;
    let to = work.path().join("refused");
    let out = restore(work.path(), Some(&old_identity), &to).await;
    assert!(
        !out.status.success() && text(&out).contains("encrypted to none of the identities"),
        "{}",
        text(&out)
    );

    // The chain goes on under the new key.
    fixtures::commit(&git, "main", &[("three.txt", b"three")], "third");
    let out = run_org(work.path(), &gh, "r3", &["--age-recipient", &new_public]).await;
    assert!(out.status.success(), "{}", text(&out));
    let source = refs_of(&gh.repo_path("acme", "app"));
    let to = work.path().join("restored-3");
    let out = restore(work.path(), Some(&new), &to).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(refs_of(&to.join("app.git")), source);
    // By hand with `age` and git: rekeyed links and the new one alike.
    let latest: repovault_core::LatestPointer =
        serde_json::from_slice(&std::fs::read(backups.join("repos/acme/app/latest.json")).unwrap())
            .unwrap();
    let manifest = backups.join(&latest.backup.manifest_key);
    run_guide_section(
        "### Restoring encrypted backups by hand\n",
        &manifest,
        &[("key.txt", new.to_str().unwrap())],
    );
    assert_eq!(refs_of(&manifest.parent().unwrap().join("api.git")), source);
}
