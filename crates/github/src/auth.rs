//! How a connection authenticates: a fixed token (classic or fine-grained personal
//! access token), nothing, or a GitHub App installation whose tokens octocrab mints
//! from the App's JWT and renews before they expire.

use std::time::Duration;

use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use repovault_core::ports::source::SourceError;
use repovault_core::{Owner, Secret};
use serde::Deserialize;
use tokio::sync::OnceCell;

/// A token handed to git has at least this long to live: a fetch, a ref listing or
/// a batch of LFS downloads started with it finishes before it expires. (API
/// requests need less: octocrab renews within 30 s of expiry.)
pub const GIT_TOKEN_MARGIN: Duration = Duration::from_secs(10 * 60);

/// Who a connection authenticates as.
pub enum GitHubAuth {
    /// A personal access token, or anonymous.
    Token(Option<Secret>),
    /// A GitHub App installation.
    App(AppCredentials),
}

/// A GitHub App: its id, its private key (PEM), and the installation to act as.
pub struct AppCredentials {
    pub app_id: u64,
    pub private_key: Secret,
    pub installation: Installation,
}

/// Which installation of the App.
pub enum Installation {
    Id(u64),
    /// The installation on this organization or user, looked up with the App's JWT.
    On(Owner),
}

/// The authenticated octocrab client of a connection.
pub(crate) enum Client {
    Token {
        octocrab: Octocrab,
        token: Option<Secret>,
    },
    App {
        /// Authenticates as the App itself (JWT): installation lookups and tokens.
        app: Octocrab,
        installation: Installation,
        /// The installation's client, shared by every request (it caches the token:
        /// a clone would mint its own).
        client: Box<OnceCell<Octocrab>>,
    },
}

/// The HTTP client under octocrab: `reqwest`, through the process's proxies
/// (`repovault_http::Proxies`: CONNECT for https). It follows no redirect:
/// octocrab's own layer does.
fn transport() -> Result<reqwest::Client, String> {
    let proxies = repovault_http::Proxies::current();
    let direct = reqwest::NoProxy::from_string(&proxies.no_proxy);
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for (url, scheme) in [(&proxies.http, "http"), (&proxies.https, "https")] {
        if let Some(url) = url {
            let proxy = match scheme {
                "http" => reqwest::Proxy::http(url.as_str()),
                _ => reqwest::Proxy::https(url.as_str()),
            }
            .map_err(|_| format!("the {scheme} proxy is not a URL"))?;
            builder = builder.proxy(proxy.no_proxy(direct.clone()));
        }
    }
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

impl Client {
    /// A client for `api_url` that authenticates as `auth`.
    pub(crate) fn new(api_url: &str, auth: GitHubAuth) -> Result<Client, String> {
        let builder = || -> Result<_, String> {
            Ok(Octocrab::builder()
                .base_uri(api_url)
                .map_err(|e| e.to_string())?
                .add_header(
                    http::HeaderName::from_static("x-github-api-version"),
                    "2022-11-28".to_owned(),
                ))
        };
        Ok(match auth {
            GitHubAuth::Token(token) => {
                let builder = match &token {
                    Some(token) => builder()?.personal_token(token.expose().to_owned()),
                    None => builder()?,
                };
                Client::Token {
                    octocrab: builder
                        .build_with_reqwest(transport()?)
                        .map_err(|e| e.to_string())?,
                    token,
                }
            }
            GitHubAuth::App(app) => {
                let key = octocrab::EncodingKey::from_rsa_pem(app.private_key.expose().as_bytes())
                    .map_err(|e| {
                        format!("the App's private key is not an RSA key in PEM form ({e})")
                    })?;
                Client::App {
                    app: builder()?
                        .app(AppId(app.app_id), key)
                        .build_with_reqwest(transport()?)
                        .map_err(|e| e.to_string())?,
                    installation: app.installation,
                    client: Box::default(),
                }
            }
        })
    }

    /// Whether requests carry a person's token (`/user` answers with its login).
    pub(crate) fn is_personal(&self) -> bool {
        matches!(self, Client::Token { token: Some(_), .. })
    }

    /// The client to send API requests with.
    pub(crate) async fn octocrab(&self) -> Result<&Octocrab, SourceError> {
        match self {
            Client::Token { octocrab, .. } => Ok(octocrab),
            Client::App {
                app,
                installation,
                client,
            } => {
                client
                    .get_or_try_init(|| async {
                        let id = match installation {
                            Installation::Id(id) => *id,
                            Installation::On(owner) => installation_of(app, owner).await?,
                        };
                        tracing::info!(
                            installation = id,
                            "authenticating as the GitHub App installation"
                        );
                        app.installation(InstallationId(id))
                            .map_err(|e| app_error(&e))
                    })
                    .await
            }
        }
    }

    /// A token for git with at least [`GIT_TOKEN_MARGIN`] left.
    pub(crate) async fn git_token(&self) -> Result<Option<Secret>, SourceError> {
        match self {
            Client::Token { token, .. } => Ok(token.clone()),
            Client::App { .. } => {
                let client = self.octocrab().await?;
                let margin = chrono::Duration::from_std(GIT_TOKEN_MARGIN).expect("small");
                let token = client
                    .installation_token_with_buffer(margin)
                    .await
                    .map_err(|e| app_error(&e))?;
                use octocrab::secrecy::ExposeSecret as _;
                Ok(Some(Secret::new(token.expose_secret())))
            }
        }
    }
}

/// `GET /orgs/{org}/installation` (or `/users/{user}/…`) as the App.
async fn installation_of(app: &Octocrab, owner: &Owner) -> Result<u64, SourceError> {
    #[derive(Deserialize)]
    struct Found {
        id: u64,
    }
    let path = match owner {
        Owner::Org(org) => format!("/orgs/{org}/installation"),
        Owner::User(user) => format!("/users/{user}/installation"),
    };
    let found: Found = app.get(&path, None::<&()>).await.map_err(|e| match &e {
        octocrab::Error::GitHub { source, .. } if source.status_code.as_u16() == 404 => {
            SourceError::App {
                message: format!("the App is not installed on {owner}: install it there, or set auth.installation-id"),
            }
        }
        _ => app_error(&e),
    })?;
    Ok(found.id)
}

/// An octocrab error while authenticating as the App: a refusal (bad key, wrong id,
/// suspended installation) is permanent; a server error or a broken connection is
/// worth retrying.
fn app_error(e: &octocrab::Error) -> SourceError {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            if status >= 500 || status == 429 {
                SourceError::Http {
                    status,
                    url: "the App's installation token".into(),
                    message: source.message.clone(),
                }
            } else {
                SourceError::App {
                    message: format!(
                        "HTTP {status}: {}; check the job's auth.app-id and the App's private key",
                        source.message
                    ),
                }
            }
        }
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => SourceError::Transport {
            url: "the App's installation token".into(),
            message: e.to_string(),
        },
        other => SourceError::App {
            message: other.to_string(),
        },
    }
}
