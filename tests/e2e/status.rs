//! The status page and read-only API (`repovault serve`): the API behind a bearer
//! token, the page in a real browser (headless Chromium, Debian's package, which
//! `scripts/test` installs), after a run with ok and failed repositories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use repovault_testkit::localstack::eventually;
use repovault_testkit::{FaultStatus, org};

use crate::procs::Proc;
use crate::support::*;

const API_TOKEN: &str = "status-page-token";

/// `repovault serve` on `listen`, reading `./backups` in `dir`, with the API token
/// or without, and `extra` arguments, once it answers.
async fn serve(dir: &Path, listen: &str, token: bool, extra: &[&str]) -> Proc {
    let env: Vec<(String, String)> = if token {
        vec![("REPOVAULT_API_TOKEN".into(), API_TOKEN.into())]
    } else {
        vec![]
    };
    let mut args = vec!["serve", "--from", "./backups", "--listen", listen];
    args.extend_from_slice(extra);
    let server = Proc::spawn("serve", "repovault", &args, &env, dir);
    let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
    eventually(
        "the status server to listen",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        },
    )
    .await;
    server
}

/// Headless Chromium: the page's rendered DOM, and a phone-sized screenshot.
fn chromium(url: &str, screenshot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=412,915",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("chromium (scripts/test installs Debian's package)");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[&format!("--screenshot={}", screenshot.display())]);
    run(&["--dump-dom"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_page_shows_failures_first_in_a_real_browser_and_needs_the_token_or_a_loopback_host()
 {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 3);
    gh.fail_fetch("acme", &names[1], FaultStatus::Always(403));
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "nightly-1", &["--no-metadata"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = serve(work.path(), &listen, true, &[]).await;
    let base = format!("http://{listen}");

    // With a token, the API and the pages need it (on loopback too).
    for path in ["/api/runs/latest", "/", &format!("/repo/acme/{}", names[0])] {
        for auth in [None, Some("Bearer wrong")] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let (status, body) = http("GET", &format!("{base}{path}"), &headers, vec![]).await;
            assert_eq!(status, 401, "{path} {auth:?}");
            assert!(!body.contains(&names[0]), "{body}");
        }
    }
    let bearer = format!("Bearer {API_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let (status, body) = http("GET", &format!("{base}/api/runs/latest"), &auth, vec![]).await;
    assert_eq!(status, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest["run_id"], "nightly-1");
    assert_eq!(
        (
            latest["totals"]["ok"].as_u64(),
            latest["totals"]["failed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let (status, body) = http(
        "GET",
        &format!("{base}/api/backups?repo=acme/{}", names[0]),
        &auth,
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let backups: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(backups["backups"].as_array().unwrap().len(), 1);
    assert_eq!(backups["backups"][0]["latest"], true);
    let (status, body) = http("GET", &format!("{base}/"), &auth, vec![]).await;
    assert_eq!(status, 200);
    assert!(body.contains(&names[1]), "{body}");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait().await.success(), "{}", server.log());

    // Without a token, on loopback: the page for loopback names only (no tunnel, no
    // proxy, no DNS rebinding reaches it); the API not at all.
    let mut local = serve(work.path(), &listen, false, &[]).await;
    for host in [
        "attacker.example",
        "attacker.example:80",
        "127.0.0.1.nip.io",
    ] {
        let (status, body) = http("GET", &format!("{base}/"), &[("host", host)], vec![]).await;
        assert_eq!(status, 421, "Host {host}: {body}");
        assert!(!body.contains(&names[1]), "{body}");
    }
    assert_eq!(
        http("GET", &format!("{base}/api/runs/latest"), &[], vec![])
            .await
            .0,
        401
    );

    // The page, rendered by Chromium: the run's counts, every repository, the failed
    // one first with its reason; sized for a phone.
    let shots = screenshot_dir();
    let screenshot = shots.join("status-page.png");
    let dom = chromium(&format!("{base}/"), &screenshot);
    assert!(dom.contains("name=\"viewport\""), "not sized for a phone");
    assert!(dom.contains("nightly-1"), "{dom}");
    let failed = dom
        .find(&format!("acme/{}", names[1]))
        .expect("the failed repository");
    for ok in [&names[0], &names[2]] {
        let at = dom.find(&format!("acme/{ok}")).expect("an ok repository");
        assert!(failed < at, "the failure is not listed first");
    }
    assert!(dom.contains("403"), "the failure's reason is not shown");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "no screenshot"
    );
    // A repository's page.
    let dom = chromium(
        &format!("{base}/repo/acme/{}", names[0]),
        &shots.join("repo-page.png"),
    );
    assert!(dom.contains("latest"), "{dom}");
    local.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(local.wait().await.success(), "{}", local.log());

    // Beyond loopback, with --public-pages: the pages for anyone, the API with the
    // token only.
    let port = free_port();
    let mut open = serve(
        work.path(),
        &format!("0.0.0.0:{port}"),
        true,
        &["--public-pages"],
    )
    .await;
    let page = format!("http://127.0.0.1:{port}/");
    let (status, body) = http("GET", &page, &[("host", "status.example.com")], vec![]).await;
    assert_eq!(status, 200, "{body}");
    let api = format!("http://127.0.0.1:{port}/api/runs/latest");
    assert_eq!(http("GET", &api, &[], vec![]).await.0, 401);
    assert_eq!(http("GET", &api, &auth, vec![]).await.0, 200);
    open.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(open.wait().await.success());
}

/// Where screenshots go: `docs/` with `REPOVAULT_UPDATE_SCREENSHOTS=1` (docs/OPERATING.md
/// shows them), else the target directory.
fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = if std::env::var("REPOVAULT_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs")
    } else {
        root.join("target/screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ls` and the status page (its API and its page) show the same bytes for the same
/// backup: one catalog computes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ls_and_the_status_page_show_the_same_bytes_for_each_backup() {
    let gh = github().await;
    let names = org::standard_org(&gh, "acme", 1);
    let work = tempfile::tempdir().unwrap();
    let out = run_org(work.path(), &gh, "r1", &["--no-metadata"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let repo = git2::Repository::open_bare(gh.repo_path("acme", &names[0])).unwrap();
    repovault_testkit::fixtures::commit(&repo, "main", &[("new.txt", &[7u8; 3000])], "more");
    let out = run_org(work.path(), &gh, "r2", &["--no-metadata"]).await;
    assert!(out.status.success(), "{}", text(&out));

    let full = format!("acme/{}", names[0]);
    let out = repovault(work.path(), &["ls", &full, "--from", "./backups"], &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let ls = String::from_utf8_lossy(&out.stdout).into_owned();

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = serve(work.path(), &listen, true, &[]).await;
    let bearer = format!("Bearer {API_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let base = format!("http://{listen}");
    let (status, body) = http(
        "GET",
        &format!("{base}/api/backups?repo={full}"),
        &auth,
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (status, page) = http("GET", &format!("{base}/repo/{full}"), &auth, vec![]).await;
    assert_eq!(status, 200, "{page}");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait().await.success(), "{}", server.log());

    let backups = api["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2, "{body}");
    let sizes: Vec<u64> = backups
        .iter()
        .map(|b| b["bytes_added"].as_u64().unwrap())
        .collect();
    assert_ne!(sizes[0], sizes[1], "two different links: {sizes:?}");
    for backup in backups {
        let at: jiff::Timestamp = backup["created_at"].as_str().unwrap().parse().unwrap();
        let shown = repovault_reporter::human_bytes(backup["bytes_added"].as_u64().unwrap());
        let line = ls
            .lines()
            .find(|l| l.starts_with(&at.to_string()))
            .unwrap_or_else(|| panic!("no ls line for {at}:\n{ls}"));
        assert!(line.contains(&shown), "ls says {line:?}, the API {shown}");
        let row = format!(
            "<td>{}</td><td>{}</td><td>{shown}</td>",
            at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            backup["refs"]
        );
        assert!(page.contains(&row), "the page lacks {row:?}:\n{page}");
    }
}

/// A reader that leaves early (`repovault ls | head`) stops `ls` quietly with 141, as
/// SIGPIPE stops a Unix tool, not with a panic.
#[test]
fn ls_into_a_closed_pipe_stops_quietly() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("backups")).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(bin("repovault"))
        .args(["ls", "--from", "./backups"])
        .current_dir(work.path())
        .env_remove("REPOVAULT_CONFIG")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
