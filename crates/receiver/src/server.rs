//! The receiver over HTTP: `POST /webhook` (the URL to give GitHub), `GET /healthz`;
//! and [`serve`], the connection loop that keeps clients without the secret from
//! starving the ones with it.
//!
//! What a client without the secret can hold, and for how long:
//!
//! - a connection that has not sent its whole request head within
//!   [`ServerLimits::header_timeout`] (10 s) is closed (hyper's header read timeout,
//!   which needs a timer to be on at all); a head is at most 32 KiB (else `431`), and
//!   a connection buffers at most 64 KiB;
//! - at most [`ServerLimits::max_connections`] connections are open (fewer when the
//!   process's file limit is low); at the limit, a new connection closes the oldest
//!   one that is not in the middle of a request (a half-open connection, or an idle
//!   keep-alive one), so a flood of half-open connections cannot keep GitHub out;
//! - a body must say its size (`Content-Length`, as GitHub's do, else `411`); over
//!   [`MAX_BODY`], `413` before a byte of it is read; it must arrive
//!   within [`ServerLimits::body_timeout`] (30 s, else `408`);
//! - bodies over 64 KiB are read [`ServerLimits::large_bodies`] (4) at once; another
//!   is answered `503` at once (GitHub shows it; redeliver it). Memory for bodies is
//!   then bounded: 4 × 6 MiB, plus 64 KiB per connection.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tower::ServiceExt;

use crate::{Delivery, MAX_BODY, Receiver};

/// A body up to this size needs no permit: connections bound how many there are.
const SMALL_BODY: u64 = 64 << 10;
/// The largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 32 << 10;
/// What a connection may buffer (hyper's read buffer).
const MAX_BUFFER: usize = 64 << 10;
/// File descriptors kept for everything but connections (the listener, the queue's
/// and the store's clients, logs).
const RESERVED_FDS: u64 = 64;

/// How much the server lets a client hold.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time to send a request's head (from the connection's start, or the end of
    /// the previous response).
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Open connections at most (lowered to what the file limit allows).
    pub max_connections: usize,
    /// Bodies over 64 KiB read at once.
    pub large_bodies: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            large_bodies: 4,
        }
    }
}

/// What the webhook route needs besides the receiver.
struct Hook {
    receiver: Arc<Receiver>,
    large: Arc<Semaphore>,
    body_timeout: Duration,
}

/// The receiver's routes.
pub fn router(receiver: Arc<Receiver>, limits: &ServerLimits) -> Router {
    Router::new()
        .route("/webhook", post(webhook))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(Hook {
            receiver,
            large: Arc::new(Semaphore::new(limits.large_bodies)),
            body_timeout: limits.body_timeout,
        }))
}

/// The declared body size, if there is exactly one valid `Content-Length`.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.parse().ok()
}

async fn webhook(State(hook): State<Arc<Hook>>, request: Request) -> (StatusCode, String) {
    let (parts, body) = request.into_parts();
    let Some(length) = content_length(&parts.headers) else {
        return (
            StatusCode::LENGTH_REQUIRED,
            "Content-Length is required".into(),
        );
    };
    if length > MAX_BODY as u64 {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload too large: at most {MAX_BODY} bytes"),
        );
    }
    let _permit = if length > SMALL_BODY {
        match hook.large.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                tracing::warn!(
                    length,
                    "too many large bodies at once; answered 503 (GitHub can redeliver)"
                );
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy; redeliver later".into(),
                );
            }
        }
    } else {
        None
    };
    let body =
        match tokio::time::timeout(hook.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return (StatusCode::BAD_REQUEST, "the body could not be read".into()),
            Err(_) => {
                return (
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {:?}", hook.body_timeout),
                );
            }
        };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let answer = hook
        .receiver
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

/// The open connections, oldest first.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    /// A request is being handled (its head has arrived): not to be evicted.
    busy: Arc<AtomicBool>,
    evict: oneshot::Sender<()>,
}

/// What a connection's task gets when it is admitted.
struct Admitted {
    id: u64,
    busy: Arc<AtomicBool>,
    evicted: oneshot::Receiver<()>,
}

impl Connections {
    /// Makes room for one more connection under `max` (closing the oldest one that
    /// is not handling a request), then registers it; `None` when every connection
    /// is busy.
    fn admit(&mut self, max: usize) -> Option<Admitted> {
        while self.open.len() >= max {
            if !self.evict_oldest_idle() {
                return None;
            }
        }
        let id = self.next;
        self.next += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let (evict, evicted) = oneshot::channel();
        self.open.insert(
            id,
            Slot {
                busy: busy.clone(),
                evict,
            },
        );
        Some(Admitted { id, busy, evicted })
    }

    /// Closes the oldest connection not handling a request; false if there is none.
    fn evict_oldest_idle(&mut self) -> bool {
        let Some(id) = self
            .open
            .iter()
            .find(|(_, slot)| !slot.busy.load(Ordering::Acquire))
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some(slot) = self.open.remove(&id) {
            let _ = slot.evict.send(());
        }
        true
    }
}

/// Connections the process's file limit leaves room for, beyond [`RESERVED_FDS`].
fn connections_the_file_limit_allows() -> usize {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => {
            usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
        }
        Err(_) => usize::MAX,
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes; then
/// lets requests in progress finish (at most `body_timeout`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits
        .max_connections
        .min(connections_the_file_limit_allows());
    tracing::info!(
        max_connections = max,
        header_timeout_secs = limits.header_timeout.as_secs(),
        body_timeout_secs = limits.body_timeout.as_secs(),
        "serving"
    );
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut last_warning: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was
                // accepted): make room and try again shortly.
                if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "accepting a connection failed; closing the oldest idle one");
                    last_warning = Some(tokio::time::Instant::now());
                }
                registry(&connections).evict_oldest_idle();
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(admitted) = registry(&connections).admit(max) else {
            // Every connection is in the middle of a request: this one waits its
            // turn with the client (closed now).
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            app.clone(),
            limits.clone(),
            admitted,
            stop_rx.clone(),
            connections.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.body_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open at shutdown were closed");
    }
    Ok(())
}

fn registry(connections: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    connections.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves one connection until it ends, is evicted, or the server stops.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: ServerLimits,
    admitted: Admitted,
    mut stop: watch::Receiver<bool>,
    connections: Arc<Mutex<Connections>>,
) {
    let Admitted { id, busy, evicted } = admitted;
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let busy = busy.clone();
            async move {
                busy.store(true, Ordering::Release);
                let response = app.oneshot(request.map(axum::body::Body::new)).await;
                busy.store(false, Ordering::Release);
                response
            }
        });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_BUFFER);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Dropping the connection closes its socket.
        _ = evicted => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.body_timeout, conn.as_mut()).await;
        }
    }
    registry(&connections).open.remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room_and_busy_ones_stay() {
        let mut c = Connections::default();
        let a = c.admit(2).unwrap();
        let b = c.admit(2).unwrap();
        a.busy.store(true, Ordering::Release);
        let mut b_evicted = b.evicted;
        let third = c.admit(2).expect("room made");
        assert!(
            b_evicted.try_recv().is_ok(),
            "the oldest idle one was closed"
        );
        let mut a_evicted = a.evicted;
        assert!(a_evicted.try_recv().is_err(), "a busy one stays");
        third.busy.store(true, Ordering::Release);
        assert!(c.admit(2).is_none(), "every connection busy: no room");
        assert_eq!(c.open.len(), 2);
    }

    #[test]
    fn content_length_must_be_one_number() {
        let mut h = HeaderMap::new();
        assert_eq!(content_length(&h), None);
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(content_length(&h), Some(12));
        h.append(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(content_length(&h), None);
        h.insert(header::CONTENT_LENGTH, "-1".parse().unwrap());
        assert_eq!(content_length(&h), None);
    }
}
