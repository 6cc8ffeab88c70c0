//! Behind a corporate proxy: with `HTTP_PROXY`/`HTTPS_PROXY` set, every request to
//! GitHub (API and git) and to S3 goes through the proxy (testkit's counting forward
//! proxy), a host `NO_PROXY` names is reached directly, and over https the proxy is
//! asked only to open a tunnel: it never sees the token.

use std::process::Output;

use repovault_testkit::ForwardProxy;
use repovault_testkit::localstack::LocalStack;
use repovault_testkit::org;

use crate::support::*;

/// `repovault run` of acme into `dest` (an S3 URL at `s3_endpoint`), with the proxy
/// variables `proxy` names and `NO_PROXY` as given.
async fn run_through(
    gh_api: &str,
    dest: &str,
    s3_endpoint: &str,
    proxy: &ForwardProxy,
    no_proxy: &str,
) -> Output {
    let work = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--org",
        "acme",
        "--api-url",
        gh_api,
        "--allow-insecure-http",
        "--dest",
        dest,
        "--s3-endpoint",
        s3_endpoint,
        "--s3-region",
        "us-east-1",
    ];
    let url = proxy.url();
    repovault(
        work.path(),
        &args,
        &[
            ("HTTP_PROXY", &url),
            ("HTTPS_PROXY", &url),
            ("http_proxy", ""),
            ("https_proxy", ""),
            ("NO_PROXY", no_proxy),
            ("no_proxy", ""),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await
}

/// `host:port` of an `http://host:port/...` URL.
fn authority(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("an http URL");
    rest.split('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_github_git_and_s3_request_goes_through_the_proxy() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 3);
    let ls = LocalStack::connect().await;
    let stack = ls.stack("proxy", 5).await;
    let proxy = ForwardProxy::start().await.unwrap();

    let out = run_through(
        &gh.api_url(),
        &format!("s3://{}/github", stack.bucket),
        &ls.endpoint,
        &proxy,
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));

    let hosts = proxy.hosts();
    let stats = gh.stats();
    let through = hosts.get(&authority(&gh.api_url())).copied().unwrap_or(0) as u64;
    assert!(
        stats.api_requests > 0 && stats.git_requests > 0,
        "{stats:?}"
    );
    assert!(
        through >= stats.api_requests + stats.git_requests,
        "GitHub served {} API and {} git requests; the proxy forwarded {through}",
        stats.api_requests,
        stats.git_requests
    );
    let s3 = hosts.get(&authority(&ls.endpoint)).copied().unwrap_or(0);
    assert!(s3 > 0, "no S3 request went through the proxy: {hosts:?}");

    // The same through a proxy that refuses everything: nothing gets through, so
    // nothing is backed up (no request took another way).
    proxy.set_refusing(true);
    let stack = ls.stack("proxy-refused", 5).await;
    let out = run_through(
        &gh.api_url(),
        &format!("s3://{}/github", stack.bucket),
        &ls.endpoint,
        &proxy,
        "",
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    let stored = ls
        .s3
        .list_objects_v2()
        .bucket(&stack.bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.key_count(), Some(0), "{:?}", stored.contents());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_no_proxy_names_is_reached_directly() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    let ls = LocalStack::connect().await;
    let stack = ls.stack("no-proxy", 5).await;
    let proxy = ForwardProxy::start().await.unwrap();
    // The same LocalStack, named `localhost`: NO_PROXY covers it, not GitHub's
    // 127.0.0.1.
    let s3 = ls.endpoint.replace("127.0.0.1", "localhost");

    let out = run_through(
        &gh.api_url(),
        &format!("s3://{}/github", stack.bucket),
        &s3,
        &proxy,
        "localhost",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let hosts = proxy.hosts();
    assert!(
        hosts.keys().all(|h| !h.starts_with("localhost:")),
        "S3 went through the proxy: {hosts:?}"
    );
    assert!(
        hosts.contains_key(&authority(&gh.api_url())),
        "GitHub did not: {hosts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_proxy_only_opens_a_tunnel_and_never_sees_the_token() {
    let proxy = ForwardProxy::start().await.unwrap();
    // A GitHub over https that the proxy cannot reach: the client asks it for a
    // tunnel, the only thing a proxy may see of an https request.
    let out = run_through(
        "https://api.github.invalid",
        "s3://rv-proxy-unused/github",
        "https://s3.invalid",
        &proxy,
        "",
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.connect && r.target() == "api.github.invalid:443"),
        "{requests:?}"
    );
    for r in &requests {
        assert!(
            r.connect,
            "a request was sent to the proxy in the clear: {r:?}"
        );
        assert!(
            r.headers_seen
                .iter()
                .all(|(name, value)| name != "authorization" && !value.contains(TOKEN)),
            "{r:?}"
        );
    }
}

/// `proxy:` in the configuration, no proxy variable set: the same as the
/// variables, `no-proxy` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_s_proxy_is_used_without_the_environment() {
    let gh = github().await;
    org::standard_org(&gh, "acme", 2);
    let ls = LocalStack::connect().await;
    let stack = ls.stack("proxy-config", 5).await;
    let proxy = ForwardProxy::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let s3 = ls.endpoint.replace("127.0.0.1", "localhost");
    std::fs::write(
        work.path().join("repovault.yml"),
        format!(
            r#"allow-insecure-http: true
proxy: {{ url: "{proxy}", no-proxy: [localhost] }}
jobs:
  - source: {{ org: acme, api-url: "{api}" }}
    target: s3://{bucket}/github
s3:
  {bucket}: {{ endpoint: "{s3}", region: us-east-1 }}
"#,
            proxy = proxy.url(),
            api = gh.api_url(),
            bucket = stack.bucket,
        ),
    )
    .unwrap();
    let out = repovault(
        work.path(),
        &["run"],
        &[
            ("HTTP_PROXY", ""),
            ("HTTPS_PROXY", ""),
            ("NO_PROXY", ""),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let hosts = proxy.hosts();
    let stats = gh.stats();
    let through = hosts.get(&authority(&gh.api_url())).copied().unwrap_or(0) as u64;
    assert!(
        through >= stats.api_requests + stats.git_requests,
        "{hosts:?} {stats:?}"
    );
    assert!(
        hosts.keys().all(|h| !h.starts_with("localhost:")),
        "no-proxy's host went through the proxy: {hosts:?}"
    );
}
