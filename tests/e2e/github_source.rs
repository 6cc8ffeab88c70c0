//! The GitHub source against the fake: pagination, visibility, filters, rate limits.

use std::time::{Duration, Instant};

use repovault_core::ports::source::{Source, SourceError};
use repovault_core::{Owner, RepoSelector, Secret};
use repovault_github::GitHubSource;
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, RepoSpec};

const TOKEN: &str = "ghp_testtoken_listing";

async fn github(enterprise: bool) -> FakeGitHub {
    FakeGitHub::start(FakeGitHubOptions {
        token: Some(TOKEN.into()),
        enterprise,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn register(github: &FakeGitHub, org: &str, n: usize) {
    github.add_org(org);
    for i in 0..n {
        github.add_repo(RepoSpec::new(org, &format!("r{i:03}")));
    }
}

/// A source authenticated with the fake's token.
fn source(gh: &FakeGitHub) -> GitHubSource {
    GitHubSource::with_token(&gh.api_url(), Some(&Secret::new(TOKEN))).unwrap()
}

async fn list_org(
    source: &GitHubSource,
    org: &str,
) -> Result<Vec<repovault_core::RepoRef>, SourceError> {
    source
        .list_repos(&RepoSelector::all(Owner::Org(org.into())))
        .await
}

fn names(repos: &[repovault_core::RepoRef]) -> Vec<String> {
    repos.iter().map(|r| r.name.clone()).collect()
}

#[tokio::test]
async fn lists_every_page_of_an_org() {
    let gh = github(false).await;
    register(&gh, "acme", 250);
    let source = source(&gh);
    let repos = list_org(&source, "acme").await.unwrap();
    assert_eq!(repos.len(), 250);
    let mut expected: Vec<String> = (0..250).map(|i| format!("r{i:03}")).collect();
    let mut got = names(&repos);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(gh.stats().api_requests, 3, "three pages of 100");
    assert_eq!(repos[0].clone_url, gh.clone_url("acme", "r000"));
}

#[tokio::test]
async fn enterprise_base_url_keeps_its_path_across_pages() {
    let gh = github(true).await;
    register(&gh, "corp", 130);
    assert!(gh.api_url().ends_with("/api/v3"));
    let source = source(&gh);
    let repos = list_org(&source, "corp").await.unwrap();
    assert_eq!(repos.len(), 130);
}

#[tokio::test]
async fn private_repos_need_the_token() {
    let gh = github(false).await;
    gh.add_org("acme");
    gh.add_repo(RepoSpec::new("acme", "open"));
    gh.add_repo(RepoSpec::new("acme", "secret").private());
    let selector = RepoSelector::all(Owner::Org("acme".into()));
    let anonymous = GitHubSource::with_token(&gh.api_url(), None).unwrap();
    assert_eq!(
        names(&anonymous.list_repos(&selector).await.unwrap()),
        ["open"]
    );
    let authed = source(&gh);
    assert_eq!(
        names(&authed.list_repos(&selector).await.unwrap()),
        ["open", "secret"]
    );
    assert!(authed.list_repos(&selector).await.unwrap()[1].private);
    let wrong = GitHubSource::with_token(&gh.api_url(), Some(&Secret::new("nope"))).unwrap();
    let err = wrong.list_repos(&selector).await.unwrap_err();
    assert!(matches!(err, SourceError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("Bad credentials"), "{err}");
}

#[tokio::test]
async fn user_listing_includes_private_repos_only_for_the_token_owner() {
    let gh = github(false).await;
    gh.add_user("octocat");
    gh.add_repo(RepoSpec::new("octocat", "hello"));
    gh.add_repo(RepoSpec::new("octocat", "diary").private());
    gh.add_repo(RepoSpec::new(repovault_testkit::TOKEN_USER, "mine").private());
    let source = source(&gh);
    let other = source
        .list_repos(&RepoSelector::all(Owner::User("octocat".into())))
        .await
        .unwrap();
    assert_eq!(names(&other), ["hello"]);
    let me = source
        .list_repos(&RepoSelector::all(Owner::User(
            repovault_testkit::TOKEN_USER.into(),
        )))
        .await
        .unwrap();
    assert_eq!(names(&me), ["mine"]);
}

#[tokio::test]
async fn a_missing_org_is_a_clear_permanent_error() {
    let gh = github(false).await;
    let source = source(&gh);
    let err = list_org(&source, "ghost").await.unwrap_err();
    assert_eq!(err.to_string(), "org ghost not found");
}

#[tokio::test]
async fn primary_rate_limit_waits_for_the_reset_then_completes() {
    let gh = github(false).await;
    register(&gh, "acme", 150);
    gh.rate_limit_next(1, Duration::from_secs(1));
    let source = source(&gh);
    let start = Instant::now();
    let repos = list_org(&source, "acme").await.unwrap();
    assert_eq!(repos.len(), 150);
    assert_eq!(gh.stats().rate_limited, 1);
    assert_eq!(
        gh.stats().api_requests,
        3,
        "one refused request, then two pages"
    );
    // The reset was at least a second away: the client must not have retried sooner.
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retried after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn secondary_rate_limit_honours_retry_after() {
    let gh = github(false).await;
    register(&gh, "acme", 10);
    gh.secondary_limit_next(2, Duration::from_secs(1));
    let source = source(&gh);
    let start = Instant::now();
    let repos = list_org(&source, "acme").await.unwrap();
    assert_eq!(repos.len(), 10);
    assert_eq!(gh.stats().rate_limited, 2);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "retried after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_wait_beyond_the_limit_is_a_retryable_error_not_a_hang() {
    let gh = github(false).await;
    register(&gh, "acme", 1);
    gh.rate_limit_next(1, Duration::from_secs(3600));
    let source = source(&gh).max_rate_limit_wait(Duration::from_secs(60));
    let err = list_org(&source, "acme").await.unwrap_err();
    assert!(
        matches!(err, SourceError::RateLimited { wait } if wait > Duration::from_secs(60)),
        "{err}"
    );
    use repovault_core::Classify;
    assert!(err.class().is_retryable());
}

#[tokio::test]
async fn server_errors_are_retried() {
    let gh = github(false).await;
    register(&gh, "acme", 3);
    gh.api_error_next(2, 502);
    let source = source(&gh);
    let repos = list_org(&source, "acme").await.unwrap();
    assert_eq!(repos.len(), 3);
    assert_eq!(gh.stats().api_requests, 3);
}

#[tokio::test]
async fn single_repo_lookup() {
    let gh = github(false).await;
    register(&gh, "acme", 1);
    let source = source(&gh);
    let repo = source.repo("acme", "r000").await.unwrap().unwrap();
    assert_eq!(repo.full_name(), "acme/r000");
    assert!(source.repo("acme", "nope").await.unwrap().is_none());
}

/// `acme/api` on an Enterprise-style fake (`/api/v3`), with data beyond git.
async fn with_data() -> (FakeGitHub, GitHubSource) {
    let gh = github(true).await;
    gh.add_repo(RepoSpec::new("acme", "api"));
    gh.add_metadata(
        "acme",
        "api",
        repovault_testkit::MetadataSpec {
            issues: 30,
            comments_per_issue: 1,
            releases: 1,
            asset_bytes: 3 << 20,
            ..Default::default()
        },
    );
    let source = source(&gh);
    (gh, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_data_pages_follow_links_and_unchanged_pages_cost_nothing() {
    use repovault_core::ports::source::{Page, RepoData};
    let (gh, source) = with_data().await;
    let mut items = Vec::new();
    let mut etags = Vec::new();
    let mut next = Some("/repos/acme/api/issues?state=all&per_page=20".to_owned());
    while let Some(path) = next {
        match source.page(&path, None).await.unwrap() {
            Page::Fetched {
                items: page,
                etag,
                next: following,
            } => {
                items.extend(page);
                etags.push((path, etag.expect("every page has an ETag")));
                next = following;
            }
            Page::NotModified => panic!("unconditional request answered 304"),
        }
    }
    assert_eq!(items.len(), 30);
    assert_eq!(etags.len(), 2, "two pages of 20");
    assert!(
        etags[1].0.starts_with("/api/v3/repos/acme/api/issues?"),
        "{}",
        etags[1].0
    );

    let counted = gh.stats().api_requests - gh.stats().api_not_modified;
    for (path, etag) in &etags {
        assert_eq!(
            source.page(path, Some(etag)).await.unwrap(),
            Page::NotModified
        );
    }
    assert_eq!(gh.stats().api_not_modified, 2);
    assert_eq!(
        gh.stats().api_requests - gh.stats().api_not_modified,
        counted,
        "304s counted against the rate limit"
    );

    gh.add_issue_comment("acme", "api", 3, "changed");
    assert!(matches!(
        source.page(&etags[0].0, Some(&etags[0].1)).await.unwrap(),
        Page::Fetched { .. }
    ));
    let missing = source
        .page("/repos/acme/nope/issues", None)
        .await
        .unwrap_err();
    assert!(matches!(missing, SourceError::NotFound { .. }), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_assets_stream_as_bytes() {
    use futures::StreamExt;
    use repovault_core::ports::source::{Page, RepoData};
    let (_gh, source) = with_data().await;
    let Page::Fetched { items, .. } = source.page("/repos/acme/api/releases", None).await.unwrap()
    else {
        panic!("not modified?");
    };
    let asset = &items[0]["assets"][0];
    let mut stream = source
        .download(&format!("/repos/acme/api/releases/assets/{}", asset["id"]))
        .await
        .unwrap();
    let mut total = 0u64;
    let mut digest = repovault_core::ports::store::ObjectDigest::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        digest.update(&chunk);
    }
    assert_eq!(total, asset["size"].as_u64().unwrap());
    assert_eq!(digest.finish().size, 3 << 20);
}
