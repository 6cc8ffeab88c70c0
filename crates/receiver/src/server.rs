//! The receiver over HTTP: `POST /webhook` (the URL to give GitHub), `GET /healthz`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use crate::{Delivery, MAX_BODY, Receiver};

/// The receiver's routes.
pub fn router(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

async fn webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let answer = receiver
        .handle(Delivery {
            event: header("x-github-event"),
            id: header("x-github-delivery"),
            signature: header("x-hub-signature-256"),
            body: &body,
        })
        .await;
    (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        answer.body,
    )
}
