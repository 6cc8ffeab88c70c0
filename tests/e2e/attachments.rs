//! Attachments: files and images dropped into issue, comment, discussion and release
//! text, downloaded from GitHub's host once each, stored by their SHA-256 and listed in
//! the snapshot with their URL; a private one with the token on GitHub's host and never
//! at the storage origin it redirects to; one that cannot be fetched listed with why.

use repovault_testkit::{MetadataSpec, RepoSpec};
use sha2::Digest;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attachment_named_three_times_is_stored_once_and_the_storage_never_sees_the_token() {
    let gh = github().await;
    acme_repo(
        &gh,
        "api",
        RepoSpec::new("acme", "api").private(),
        MetadataSpec {
            issues: 3,
            discussions: 1,
            ..Default::default()
        },
    );
    let screenshot = b"\x89PNG\r\n\x1a\n a screenshot of the failing build".to_vec();
    let url = gh.add_attachment("acme", "api", &screenshot);
    for number in 1..=3 {
        let body = format!("It fails like this:\n\n![build]({url})\n");
        gh.add_issue_comment("acme", "api", number, &body);
    }
    let work = tempfile::tempdir().unwrap();
    let backups = work.path().join("backups");
    let out = run_org(work.path(), &gh, "r1", &[]).await;
    assert!(out.status.success(), "{}", text(&out));

    let (key, index) = latest_index(&backups);
    let stored = index.attachments[&url].file.clone().expect("stored");
    let sha256 = hex::encode(sha2::Sha256::digest(&screenshot));
    assert_eq!(stored.sha256, sha256);
    assert_eq!(
        std::fs::read(backups.join(&stored.key)).unwrap(),
        screenshot,
        "{}",
        stored.key
    );
    let files: Vec<_> = walk(&backups.join("repos/acme/api/attachments"));
    assert_eq!(files.len(), 1, "stored once: {files:?}");
    // The discussion's image was never uploaded: listed with why, not an error.
    let missing: Vec<_> = index
        .attachments
        .iter()
        .filter(|(_, a)| a.file.is_none())
        .collect();
    assert!(!missing.is_empty(), "{index:?}");
    assert!(
        missing
            .iter()
            .all(|(_, a)| a.error.as_deref().is_some_and(|e| e.contains("not found")))
    );
    assert!(index.failed.is_empty(), "{index:?}");
    let stats = gh.stats();
    assert!(stats.attachment_requests >= 2, "{stats:?}");
    assert_eq!(stats.attachment_storage_requests_with_token, 0);

    // Nothing changed: nothing downloaded again.
    let before = gh.stats().attachment_requests;
    let out = run_org(work.path(), &gh, "r2", &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(gh.stats().attachment_requests, before);
    assert_eq!(latest_index(&backups).0, key);

    // Restored beside the JSON, with a map from each URL to its file.
    let out = repovault(
        work.path(),
        &["restore", "acme/api", "--to", "out", "--metadata"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let data = work.path().join("out/data");
    let map: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data.join("attachments.json"))
            .unwrap_or_else(|e| panic!("{e}: {:?}", walk(&work.path().join("out")))),
    )
    .unwrap();
    let file = map[&url]["file"].as_str().unwrap();
    assert_eq!(std::fs::read(data.join(file)).unwrap(), screenshot);
}
