//! `fake-github`: the testkit's fake GitHub as a standalone server, serving a
//! generated fixture organization (for docker-compose demos and manual runs).

use clap::Parser;
use repovault_testkit::{FakeGitHub, FakeGitHubOptions, org};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A fake GitHub (REST + git smart HTTP) serving a fixture organization"
)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Host name to write into clone URLs and Link headers (e.g. the compose service name).
    #[arg(long)]
    public_host: Option<String>,
    /// Token that authenticates (the `GITHUB_TOKEN` clients must present).
    #[arg(long, env = "FAKE_GITHUB_TOKEN")]
    token: Option<String>,
    /// Organization to create.
    #[arg(long, default_value = "acme")]
    org: String,
    /// Repositories to generate in it.
    #[arg(long, default_value_t = 20)]
    repos: usize,
    /// Where repositories are written (a temp dir by default).
    #[arg(long)]
    root: Option<std::path::PathBuf>,
    /// Also create `<org>/large` holding this many MiB of incompressible data.
    #[arg(long, default_value_t = 0)]
    large_repo_mb: usize,
    /// Serve the API under /api/v3, as GitHub Enterprise does.
    #[arg(long)]
    enterprise: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let github = FakeGitHub::start(FakeGitHubOptions {
        token: args.token,
        enterprise: args.enterprise,
        root: args.root,
        port: args.port,
        host: Some(args.host),
        public_host: args.public_host,
        ..Default::default()
    })
    .await?;
    let mut names = org::showcase_org(&github, &args.org, args.repos);
    if args.large_repo_mb > 0 {
        repovault_testkit::fixtures::large_repo(
            &github.repo_path(&args.org, "large"),
            "large",
            args.large_repo_mb << 20,
        );
        github.add_repo(repovault_testkit::RepoSpec::new(&args.org, "large").has_wiki(false));
        names.push("large".into());
    }
    println!(
        "fake GitHub serving {} repositories of {} at {}",
        names.len(),
        args.org,
        github.api_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
