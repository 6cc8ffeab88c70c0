//! `repovault serve`: the status page and read-only API (`repovault_status`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use repovault_core::config::Config;
use repovault_core::{Secret, Target};
use repovault_status::Status;

use crate::args::{FromArgs, S3Args};
use crate::commands::shutdown_signal;
use crate::wiring::{check_secret_strength, load_secret, open_store};

/// Where the API token is when no file is named.
const TOKEN_ENV: &str = "REPOVAULT_API_TOKEN";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// File holding the bearer token the API and the pages need [default:
    /// REPOVAULT_API_TOKEN]. Without one, only requests to localhost, 127.0.0.1 or
    /// `[::1]` are answered, and the API not at all.
    #[arg(long, value_name = "FILE", env = "REPOVAULT_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Serve the pages without the token (the API still needs it): for a page meant
    /// to be public, or a proxy that authenticates its users itself.
    #[arg(long)]
    pub public_pages: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REPOVAULT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub status: StatusArgs,
    #[command(flatten)]
    pub from: FromArgs,
}

/// The API token, if one is configured, checked (see `check_secret_strength`;
/// `real_github`: the process also serves jobs of a GitHub reached over https).
pub fn load_api_token(args: &StatusArgs, real_github: bool) -> anyhow::Result<Option<Secret>> {
    let token = load_secret(
        args.api_token_file.as_deref(),
        TOKEN_ENV,
        "--api-token-file",
    )?;
    if let Some(token) = &token {
        let what = match &args.api_token_file {
            Some(_) => "--api-token-file",
            None => TOKEN_ENV,
        };
        check_secret_strength(token, what, real_github)?;
    }
    Ok(token)
}

/// The status page's routes over `targets`, with `token` (see [`load_api_token`]).
pub async fn status_router(
    args: &StatusArgs,
    targets: &[Target],
    s3: &S3Args,
    config: Option<&Config>,
    token: Option<Secret>,
) -> anyhow::Result<axum::Router> {
    let mut stores = Vec::new();
    for target in targets {
        if !stores.iter().any(|(t, _)| t == target) {
            stores.push((target.clone(), open_store(target, s3, config).await?));
        }
    }
    if token.is_none() {
        tracing::warn!(
            "no API token (--api-token-file or {TOKEN_ENV}): the API answers 401, and only requests to localhost, 127.0.0.1 or [::1] are answered"
        );
    }
    Ok(Arc::new(Status::new(stores, token, args.public_pages)).router())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let targets = args.from.targets()?;
    // `serve` reads a store, not GitHub: the demo's values are only too short or not.
    let token = load_api_token(&args.status, false)?;
    let app = status_router(
        &args.status,
        &targets,
        &args.from.s3,
        args.from.config()?.as_ref(),
        token,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("--listen {}", args.listen))?;
    tracing::info!(listen = %args.listen, "serving the status page");
    // The receiver's connection loop: the same timeouts and connection limit.
    let limits = repovault_receiver::server::ServerLimits::default();
    repovault_receiver::server::serve(listener, app, &limits, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
