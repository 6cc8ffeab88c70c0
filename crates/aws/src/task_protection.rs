//! ECS task scale-in protection through the ECS agent's endpoint.
//!
//! While a worker holds jobs, its task is protected, so a scale-in (the queue
//! emptied, autoscaling lowers the desired count) never stops it mid-archive; when
//! it goes idle, protection is removed and the task may go. Protection is renewed
//! before it expires for jobs longer than its lifetime.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

/// How long one protection lasts; renewed at half of it while busy.
const EXPIRES_IN_MINUTES: u64 = 60;

/// Asks the ECS agent at `ECS_AGENT_URI` to protect the task while it is busy.
#[derive(Debug)]
pub struct EcsTaskProtection {
    desired: watch::Sender<bool>,
}

impl EcsTaskProtection {
    /// `Some` when running on ECS (`ECS_AGENT_URI` set), `None` elsewhere.
    pub fn from_env() -> Option<Self> {
        std::env::var("ECS_AGENT_URI")
            .ok()
            .filter(|u| !u.is_empty())
            .map(|uri| Self::new(&uri))
    }

    /// Starts the background task that keeps the agent in step with [`Self::set`].
    pub fn new(agent_uri: &str) -> Self {
        let (desired, mut changes) = watch::channel(false);
        let url = format!(
            "{}/task-protection/v1/state",
            agent_uri.trim_end_matches('/')
        );
        tokio::spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let renew_every = Duration::from_secs(EXPIRES_IN_MINUTES * 60 / 2);
            let mut protected = false;
            loop {
                let renew = async {
                    if protected {
                        tokio::time::sleep(renew_every).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let want = *changes.borrow_and_update();
                        if want == protected {
                            continue;
                        }
                        protected = want;
                    }
                    _ = renew => {}
                }
                if let Err(e) = put(&client, &url, protected).await {
                    tracing::warn!(protected, error = %e, "could not update ECS task protection");
                } else {
                    tracing::info!(protected, "ECS task protection updated");
                }
            }
        });
        EcsTaskProtection { desired }
    }

    /// Protected while `busy`.
    pub fn set(&self, busy: bool) {
        self.desired.send_replace(busy);
    }
}

async fn put(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
    protected: bool,
) -> Result<(), String> {
    let body = if protected {
        format!(r#"{{"ProtectionEnabled":true,"ExpiresInMinutes":{EXPIRES_IN_MINUTES}}}"#)
    } else {
        r#"{"ProtectionEnabled":false}"#.to_owned()
    };
    let request = http::Request::put(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() || text.contains("\"failure\"") {
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(())
}
