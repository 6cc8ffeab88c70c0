//! A fake of the ECS agent's task-protection endpoint (`$ECS_AGENT_URI`), recording
//! every state a worker asks for.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running fake agent. Stops when dropped.
pub struct FakeEcsAgent {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Value>>>,
    _stop: oneshot::Sender<()>,
}

const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/repovault/0123456789abcdef";

impl FakeEcsAgent {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/task-protection/v1/state", put(update).get(current))
            .with_state(requests.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FakeEcsAgent {
            addr,
            requests,
            _stop: stop,
        })
    }

    /// What to set `ECS_AGENT_URI` to.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every `ProtectionEnabled` asked for, in order.
    pub fn states(&self) -> Vec<bool> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|r| r.get("ProtectionEnabled")?.as_bool())
            .collect()
    }

    /// The raw request bodies.
    pub fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn update(
    State(requests): State<Arc<Mutex<Vec<Value>>>>,
    body: String,
) -> (StatusCode, String) {
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        let failure = json!({ "failure": { "Arn": TASK_ARN, "Reason": "InvalidParameterException", "Detail": "body is not JSON" } });
        return (StatusCode::BAD_REQUEST, failure.to_string());
    };
    let enabled = request
        .get("ProtectionEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request);
    let protection = json!({ "protection": { "ExpirationDate": null, "ProtectionEnabled": enabled, "TaskArn": TASK_ARN } });
    (StatusCode::OK, protection.to_string())
}

async fn current(State(requests): State<Arc<Mutex<Vec<Value>>>>) -> String {
    let enabled = requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .and_then(|r| r.get("ProtectionEnabled")?.as_bool())
        .unwrap_or(false);
    json!({ "protection": { "ProtectionEnabled": enabled, "TaskArn": TASK_ARN } }).to_string()
}
