//! Restore into GitHub, round trip: an org backed up from the fake GitHub, each
//! repository restored into a new org through the fake's write side (its content
//! limits hit on the way), the new org backed up in turn, and the two backups compared
//! field by field after the normalisation the README documents (ids, URLs, times the
//! API sets, the provenance line every restored body starts with).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use repovault_testkit::{
    ContentLimit, FakeApp, FakeGitHub, FakeGitHubOptions, MetadataSpec, RepoSpec,
    TEST_APP_PRIVATE_KEY, fixtures,
};
use serde_json::Value;

use crate::support::{TOKEN, refs_of, repovault, run_org, text};

/// An org `acme` with `api` (branches, tags, a wiki, two pull requests whose
/// branches are gone, issues with comments, reviews, labels, a milestone, releases
/// with assets), `bare` (git only, no data beyond it) and `media` (Git LFS objects).
async fn source() -> FakeGitHub {
    // Low enough that the restore meets it: pacing must absorb the 403s.
    source_limited(12, Duration::from_secs(2), true).await
}

/// [`source`] whose content limit is `per_window` creating requests a `window`, and
/// (`import`) which offers the Issue Import API.
async fn source_limited(per_window: u32, window: Duration, import: bool) -> FakeGitHub {
    source_with(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        content_limit: Some(ContentLimit { per_window, window }),
        without_issue_import: !import,
        ..Default::default()
    })
    .await
}

/// The org of [`source`] on a fake started with `options`.
async fn source_with(options: FakeGitHubOptions) -> FakeGitHub {
    let gh = FakeGitHub::start(options).await.expect("start fake GitHub");
    let repo = fixtures::standard_repo(&gh.repo_path("acme", "api"), "api");
    let main = repo.refname_to_id("refs/heads/main").unwrap();
    // The releases' tags, as GitHub makes them when a release is published.
    for tag in ["v1.0.0", "v1.1.0"] {
        fixtures::set_ref(&repo, &format!("refs/tags/{tag}"), main);
    }
    // Pull requests 5 and 6 (after 4 issues): heads whose branches are gone.
    for n in [5, 6] {
        fixtures::set_ref(&repo, &format!("refs/heads/feature-{n}"), main);
        let head = fixtures::commit(
            &repo,
            &format!("feature-{n}"),
            &[(&format!("f{n}.txt"), b"change\n" as &[u8])],
            "a change",
        );
        fixtures::set_ref(&repo, &format!("refs/pull/{n}/head"), head);
        repo.find_reference(&format!("refs/heads/feature-{n}"))
            .unwrap()
            .delete()
            .unwrap();
    }
    fixtures::wiki_repo(&gh.wiki_path("acme", "api"));
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata(
        "acme",
        "api",
        MetadataSpec {
            issues: 4,
            comments_per_issue: 1,
            pulls: 2,
            reviews_per_pull: 1,
            releases: 2,
            asset_bytes: 70_000,
            ..Default::default()
        },
    );
    fixtures::standard_repo(&gh.repo_path("acme", "bare"), "bare");
    gh.add_repo(RepoSpec::new("acme", "bare"));
    fixtures::lfs_repo(
        &gh.repo_path("acme", "media"),
        &gh.lfs_path("acme", "media"),
        50_000,
    );
    gh.add_repo(RepoSpec::new("acme", "media"));
    gh.add_org("restored");
    gh
}

/// `acme` backed up (run `run_id`, with `extra` flags) into a new work directory.
async fn backed_up(gh: &FakeGitHub, run_id: &str, extra: &[&str]) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), gh, run_id, extra).await;
    assert!(out.status.success(), "{}", text(&out));
    work
}

/// `repovault restore <what> <how…>` into the fake, faster than it allows: its limit
/// answers, and pacing waits them out.
async fn restore(work: &Path, gh: &FakeGitHub, what: &str, how: &[&str]) -> std::process::Output {
    let api = gh.api_url();
    let upload = gh.upload_url();
    let mut args = vec![
        "restore",
        what,
        "--from",
        "backups",
        "--restore-api-url",
        &api,
        "--restore-allow-insecure-http",
        "--upload-url",
        &upload,
        "--pace-per-minute",
        "1000",
        "--pace-per-hour",
        "10000",
    ];
    args.extend_from_slice(how);
    repovault(work, &args, &[("REPOVAULT_PUSH_TOKEN", TOKEN)]).await
}

/// `owner/name`'s newest backup restored into `dir`, with its data: (refs, wiki refs,
/// items by kind, asset bytes by release tag and asset name).
struct Restored {
    refs: BTreeMap<String, String>,
    wiki: BTreeMap<String, String>,
    data: BTreeMap<String, Vec<Value>>,
    assets: BTreeMap<(String, String), Vec<u8>>,
}

async fn restored(work: &Path, repo: &str, dir: &str) -> Restored {
    let out = repovault(
        work,
        &[
            "restore",
            repo,
            "--to",
            dir,
            "--metadata",
            "--from",
            "backups",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let name = repo.split('/').nth(1).unwrap();
    let dir = work.join(dir);
    let refs = |path: &Path| -> BTreeMap<String, String> {
        if !path.exists() {
            return BTreeMap::new();
        }
        refs_of(path)
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let mut data: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("data")).into_iter().flatten() {
        let path = entry.unwrap().path();
        let Some(kind) = path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".jsonl")
        else {
            continue;
        };
        let items = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        data.insert(kind.to_owned(), items);
    }
    let mut assets = BTreeMap::new();
    for release in data.get("releases").into_iter().flatten() {
        let release: &Value = release;
        for asset in release["assets"].as_array().unwrap() {
            let bytes = std::fs::read(
                dir.join("data/assets")
                    .join(asset["id"].as_u64().unwrap().to_string()),
            )
            .unwrap();
            assets.insert(
                (
                    release["tag_name"].as_str().unwrap().to_owned(),
                    asset["name"].as_str().unwrap().to_owned(),
                ),
                bytes,
            );
        }
    }
    Restored {
        refs: refs(&dir.join(format!("{name}.git"))),
        wiki: refs(&dir.join(format!("{name}.wiki.git"))),
        data,
        assets,
    }
}

/// A restored body without the quoted provenance lines it starts with.
fn original_text(body: &str) -> String {
    let mut lines = body.lines().peekable();
    while lines.peek().is_some_and(|l| l.starts_with('>')) {
        lines.next();
    }
    lines.collect::<Vec<_>>().join("\n").trim().to_owned()
}

fn by_number(items: &[Value]) -> BTreeMap<u64, &Value> {
    items
        .iter()
        .map(|i| (i["number"].as_u64().unwrap(), i))
        .collect()
}

fn names(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|l| l[field].as_str().unwrap().to_owned())
        .collect()
}

fn branches_and_tags(refs: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    refs.iter()
        .filter(|(k, _)| {
            (k.starts_with("refs/heads/") && !k.starts_with("refs/heads/restored/"))
                || k.starts_with("refs/tags/")
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_restored_into_github_backs_up_as_the_same_org() {
    let gh = source().await;
    let work = backed_up(&gh, "before", &["--lfs"]).await;

    // --dry-run: the plan and its time, nothing created.
    let out = restore(
        work.path(),
        &gh,
        "acme/api",
        &["--to-github", "restored/api", "--dry-run"],
    )
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("4 issue(s), 2 pull request(s)"), "{said}");
    assert!(said.contains("creating request(s) at 1000/min"), "{said}");
    assert!(said.contains("dry run: nothing created"), "{said}");
    assert_eq!(gh.stats().content_requests, 0, "a dry run creates nothing");

    // Every repository of acme into the org `restored`. The wiki needs its first page
    // made on GitHub: the first run says so and exits 1 with the rest restored; the
    // page made, the rerun pushes the wiki and finds nothing else to do.
    let org = [
        "--to-github-org",
        "restored",
        "--restore-protection",
        "--restore-access",
    ];
    let out = restore(work.path(), &gh, "acme", &org).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("create any page at"), "{said}");
    assert!(said.contains("restored into restored/media"), "{said}");
    assert!(said.contains("restored into restored/bare"), "{said}");
    assert!(
        gh.stats().content_limited > 0,
        "the fake's limit was met: {said}"
    );
    assert!(said.contains("pacing waited"), "{said}");
    assert_eq!(
        gh.stats().writes_by_kind.get("issue-imports"),
        Some(&4),
        "acme/api's four issues were imported with their comments"
    );
    // Actions were disabled in each repository it made, before anything was pushed.
    assert_eq!(
        gh.stats().writes_by_kind.get("actions-permissions"),
        Some(&3),
        "{said}"
    );
    let made = gh.stats().content_requests;
    gh.init_wiki("restored", "api");
    let out = restore(work.path(), &gh, "acme", &org).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("restored into restored/api: created nothing new"),
        "{said}"
    );
    assert_eq!(
        gh.stats().content_requests,
        made,
        "the rerun created nothing: {said}"
    );

    // Git LFS objects, uploaded before the push that needs them.
    let lfs = |owner: &str| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(gh.lfs_path(owner, "media"))
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let oid = path.file_name().unwrap().to_str().unwrap().to_owned();
                (oid, std::fs::read(&path).unwrap())
            })
            .collect()
    };
    assert_eq!(
        lfs("acme"),
        lfs("restored"),
        "every LFS object, byte for byte"
    );

    // The new org, backed up.
    let api = gh.api_url();
    let out = repovault(
        work.path(),
        &[
            "run",
            "--org",
            "restored",
            "--api-url",
            &api,
            "--allow-insecure-http",
            "--run-id",
            "after",
            "--lfs",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let (media_before, media_after) = (
        restored(work.path(), "acme/media", "media-before").await,
        restored(work.path(), "restored/media", "media-after").await,
    );
    assert_eq!(
        branches_and_tags(&media_before.refs),
        branches_and_tags(&media_after.refs)
    );

    let before = restored(work.path(), "acme/api", "before").await;
    let after = restored(work.path(), "restored/api", "after").await;
    assert_eq!(
        branches_and_tags(&before.refs),
        branches_and_tags(&after.refs)
    );
    for n in [5, 6] {
        assert_eq!(
            after.refs.get(&format!("refs/heads/restored/pr/{n}")),
            before.refs.get(&format!("refs/pull/{n}/head")),
            "pull request {n}'s head"
        );
    }
    assert_eq!(before.wiki, after.wiki);
    assert_eq!(before.assets, after.assets, "every asset, byte for byte");

    let kinds = |r: &Restored, kind: &str| r.data.get(kind).cloned().unwrap_or_default();
    let label_names = |r: &Restored| -> BTreeSet<String> {
        kinds(r, "labels")
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(label_names(&after).is_superset(&label_names(&before)));
    let milestones = |r: &Restored| -> BTreeSet<(String, String)> {
        kinds(r, "milestones")
            .iter()
            .map(|m| (m["title"].to_string(), m["state"].to_string()))
            .collect()
    };
    assert_eq!(milestones(&before), milestones(&after));

    let (old, new) = (kinds(&before, "issues"), kinds(&after, "issues"));
    let (old, new) = (by_number(&old), by_number(&new));
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>(),
        "numbers kept"
    );
    for (n, was) in &old {
        let now = new[n];
        assert_eq!(was["title"], now["title"], "#{n}");
        assert_eq!(was["state"], now["state"], "#{n}");
        assert_eq!(
            original_text(now["body"].as_str().unwrap()),
            was["body"].as_str().unwrap().trim(),
            "#{n}"
        );
        assert_eq!(
            names(&was["labels"], "name"),
            names(&now["labels"], "name"),
            "#{n}"
        );
        assert_eq!(was["milestone"]["title"], now["milestone"]["title"], "#{n}");
        assert_eq!(
            was.get("pull_request").is_some(),
            now.get("pull_request").is_some(),
            "#{n}"
        );
        if was.get("pull_request").is_none() {
            // Through the Issue Import API: when it was opened and closed is kept.
            assert_eq!(was["created_at"], now["created_at"], "#{n}");
            assert_eq!(was["closed_at"], now["closed_at"], "#{n}");
        }
    }
    let (old_pulls, new_pulls) = (kinds(&before, "pulls"), kinds(&after, "pulls"));
    let new_pulls = by_number(&new_pulls);
    for was in &old_pulls {
        let n = was["number"].as_u64().unwrap();
        let now = new_pulls[&n];
        assert_eq!(was["title"], now["title"], "pull {n}");
        assert_eq!(was["state"], now["state"], "pull {n}");
        assert_eq!(was["base"]["ref"], now["base"]["ref"], "pull {n}");
        assert_eq!(now["head"]["ref"], format!("restored/pr/{n}"), "pull {n}");
    }
    // Every comment, review and review comment is a comment of its issue.
    let texts = |items: &[Value]| -> BTreeSet<String> {
        items
            .iter()
            .map(|c| original_text(c["body"].as_str().unwrap_or("")))
            .collect()
    };
    let mut wanted = texts(&kinds(&before, "issue-comments"));
    wanted.extend(texts(&kinds(&before, "reviews")));
    wanted.extend(texts(&kinds(&before, "review-comments")));
    assert_eq!(wanted, texts(&kinds(&after, "issue-comments")));

    // With --restore-protection and --restore-access: the same rules, people and teams.
    let rules = |r: &Restored| -> Vec<Value> {
        let mut rules = kinds(r, "branch-protection");
        for rule in &mut rules {
            rule.as_object_mut().unwrap().remove("url");
        }
        rules
    };
    assert!(!rules(&before).is_empty());
    assert_eq!(rules(&before), rules(&after));
    let people = |r: &Restored, kind: &str, key: &str, role: &str| -> BTreeSet<String> {
        kinds(r, kind)
            .iter()
            .map(|p| format!("{} {}", p[key], p[role]))
            .collect()
    };
    assert_eq!(
        people(&before, "collaborators", "login", "role_name"),
        people(&after, "collaborators", "login", "role_name")
    );
    assert_eq!(
        people(&before, "teams", "slug", "permission"),
        people(&after, "teams", "slug", "permission")
    );

    let releases = |r: &Restored| -> BTreeSet<(String, String, String)> {
        kinds(r, "releases")
            .iter()
            .map(|x| {
                (
                    x["tag_name"].to_string(),
                    x["name"].to_string(),
                    x["body"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(releases(&before), releases(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_without_data_restores_git_alone_and_says_so() {
    let gh = source().await;
    let work = backed_up(&gh, "git-only", &["--no-metadata"]).await;
    let out = restore(
        work.path(),
        &gh,
        "acme/bare",
        &["--to-github", "restored/bare"],
    )
    .await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("no data beyond git: git alone was restored"),
        "{said}"
    );
    let refs = |owner: &str| -> BTreeMap<String, String> {
        refs_of(&gh.repo_path(owner, "bare"))
            .iter()
            .filter(|(k, _)| k.starts_with("refs/heads/") || k.starts_with("refs/tags/"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(refs("acme"), refs("restored"));
    // A second restore into it is refused: the repository is not empty any more.
    let out = restore(
        work.path(),
        &gh,
        "acme/bare",
        &["--to-github", "restored/bare", "--journal", "other.journal"],
    )
    .await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("--into-existing"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_with_write_permissions_restores_with_its_installation_tokens() {
    let gh = source_with(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        app: Some(FakeApp {
            app_id: 4343,
            installation_id: 88,
            owner: "restored".into(),
            token_lifetime: Duration::from_secs(3600),
        }),
        ..Default::default()
    })
    .await;
    let work = backed_up(&gh, "before", &[]).await;
    // No write token anywhere: only the App can create, push and upload.
    let api = gh.api_url();
    let upload = gh.upload_url();
    let out = repovault(
        work.path(),
        &[
            "restore",
            "acme/api",
            "--to-github",
            "restored/api",
            "--from",
            "backups",
            "--restore-api-url",
            &api,
            "--restore-allow-insecure-http",
            "--upload-url",
            &upload,
            "--restore-app-id",
            "4343",
        ],
        &[("REPOVAULT_RESTORE_APP_PRIVATE_KEY", TEST_APP_PRIVATE_KEY)],
    )
    .await;
    let said = text(&out);
    // Everything but the wiki, whose first page nobody made.
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("create any page at"), "{said}");
    let stats = gh.stats();
    assert!(!stats.app_tokens_minted.is_empty(), "{said}");
    assert_eq!(stats.writes_by_kind.get("repos"), Some(&1), "{said}");
    assert_eq!(stats.writes_by_kind.get("assets"), Some(&2), "{said}");
    assert!(stats.pushes.contains_key("restored/api"), "{said}");
    assert!(
        !said.contains(TEST_APP_PRIVATE_KEY.lines().nth(1).unwrap()),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_killed_midway_and_run_again_creates_nothing_twice() {
    // Slow enough (about three creating requests a second) that each kill lands
    // while the step it aims at is still going; without the Issue Import API, so
    // issues and their comments are made one request at a time.
    let gh = source_limited(3, Duration::from_secs(1), false).await;
    let work = backed_up(&gh, "before", &[]).await;
    let journal = work.path().join("repovault-restore-restored.api.journal");
    // Killed at two points: once a few issues were journaled, once a release was.
    for (entry, at_least, step) in [("\"issue\"", 3, "issues"), ("\"release\"", 1, "releases")] {
        let api = gh.api_url();
        let upload = gh.upload_url();
        let mut child = tokio::process::Command::new(crate::support::bin("repovault"))
            .args([
                "restore",
                "acme/api",
                "--to-github",
                "restored/api",
                "--from",
                "backups",
                "--restore-api-url",
                &api,
                "--restore-allow-insecure-http",
                "--upload-url",
                &upload,
                "--pace-per-minute",
                "1000",
                "--pace-per-hour",
                "10000",
            ])
            .current_dir(work.path())
            .env("REPOVAULT_PUSH_TOKEN", TOKEN)
            .env_remove("REPOVAULT_CONFIG")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let lines = std::fs::read_to_string(&journal).unwrap_or_default();
            if lines.matches(entry).count() >= at_least {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {entry} journaled: {lines}"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the restore ended ({status}) before it could be killed: {lines}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().await.unwrap();
        let lines = std::fs::read_to_string(&journal).unwrap();
        assert!(
            !lines.contains(&format!("\"step\":\"{step}\"")),
            "killed after {step} had finished, not during: {lines}"
        );
    }
    gh.init_wiki("restored", "api");
    let out = restore(
        work.path(),
        &gh,
        "acme/api",
        &["--to-github", "restored/api"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let writes = gh.stats().writes_by_kind;
    assert_eq!(writes.get("repos"), Some(&1), "{writes:?}");
    // 4 issues and 2 pull requests, each once; 2 releases and their 2 assets once.
    assert_eq!(writes.get("issues").copied().unwrap_or(0), 4, "{writes:?}");
    assert_eq!(writes.get("pulls").copied().unwrap_or(0), 2, "{writes:?}");
    assert_eq!(writes.get("releases"), Some(&2), "{writes:?}");
    assert_eq!(writes.get("assets"), Some(&2), "{writes:?}");
    // 6 issue comments, 2 reviews, 2 review comments.
    assert_eq!(writes.get("issue-comments"), Some(&10), "{writes:?}");
    let issues = gh_issues(&gh).await;
    let mut numbers: Vec<u64> = issues
        .iter()
        .map(|i| i["number"].as_u64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=6).collect::<Vec<_>>(),
        "no duplicate, numbers kept"
    );
}

async fn gh_issues(gh: &FakeGitHub) -> Vec<Value> {
    let url = format!(
        "{}/repos/restored/api/issues?state=all&per_page=100",
        gh.api_url()
    );
    let auth = format!("Bearer {TOKEN}");
    let (status, body) =
        repovault_testkit::http::request("GET", &url, &[("authorization", &auth)], Vec::new())
            .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
