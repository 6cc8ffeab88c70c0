//! A counting HTTP forward proxy (what `HTTPS_PROXY`/`HTTP_PROXY` point at), to see
//! that every outbound connection goes through the proxy and what the proxy itself
//! gets to read.
//!
//! - `CONNECT host:port` (HTTPS, or anything tunnelled): answered `200` once a TCP
//!   connection to the target is open, then bytes are copied both ways until either
//!   side closes. The proxy sees only the `CONNECT` request's own headers.
//! - Absolute-form requests (`GET http://host:port/path HTTP/1.1`, plain HTTP):
//!   forwarded to the target in origin form with the client's headers (less the
//!   hop-by-hop ones: `Connection`, `Keep-Alive`, `Proxy-Connection`,
//!   `Proxy-Authorization`, `TE`, `Trailer`, `Upgrade`), the answer streamed back.
//!   Connections are kept alive on both sides: the client's to the proxy, and a pool
//!   of the proxy's to each target.
//! - Anything else (an origin-form request: a client that took the proxy for a
//!   server) is answered `400` and not recorded.
//!
//! Every `CONNECT` and absolute-form request is recorded, `Authorization` and
//! `Proxy-Authorization` values replaced by `<present>`. In refusing mode
//! ([`ForwardProxy::refusing`], [`ForwardProxy::set_refusing`]) each is recorded and
//! answered `403`, nothing forwarded: a client that fails there used the proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    /// The target's host, as the client named it.
    pub host: String,
    pub port: u16,
    /// A `CONNECT` tunnel (the proxy saw none of what went through it).
    pub connect: bool,
    /// The headers the proxy received (lowercase names), credentials' values
    /// replaced by `<present>`.
    pub headers_seen: Vec<(String, String)>,
}

impl ProxiedRequest {
    /// `host:port`.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

struct Shared {
    requests: Mutex<Vec<ProxiedRequest>>,
    refusing: AtomicBool,
    client: Client<HttpConnector, Incoming>,
}

/// The proxy, on `127.0.0.1:<port>`; stops accepting when dropped (tunnels open
/// then run to their end).
pub struct ForwardProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl ForwardProxy {
    /// A proxy that forwards.
    pub async fn start() -> std::io::Result<ForwardProxy> {
        Self::start_with(false).await
    }

    /// A proxy that answers every request `403`.
    pub async fn refusing() -> std::io::Result<ForwardProxy> {
        Self::start_with(true).await
    }

    async fn start_with(refusing: bool) -> std::io::Result<ForwardProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(refusing),
            client: crate::http::forwarding_client(),
        });
        let serving = shared.clone();
        let stop = crate::http::serve(listener, move |req| handle(serving.clone(), req));
        Ok(ForwardProxy {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:<port>`: the value for `HTTPS_PROXY` / `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Refuses (`403`) from now on, or forwards again.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Every request received, in order of arrival.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests per target, `host:port` → count.
    pub fn hosts(&self) -> BTreeMap<String, usize> {
        let mut hosts = BTreeMap::new();
        for request in self.shared.requests.lock().unwrap().iter() {
            *hosts.entry(request.target()).or_insert(0) += 1;
        }
        hosts
    }

    /// Whether the proxy read an `Authorization` header sent to `host` (`host` or
    /// `host:port`): only possible for plain-HTTP requests, never through a tunnel.
    pub fn saw_authorization_for(&self, host: &str) -> bool {
        self.shared.requests.lock().unwrap().iter().any(|r| {
            (r.host == host || r.target() == host)
                && r.headers_seen.iter().any(|(k, _)| k == "authorization")
        })
    }
}

/// Headers the proxy consumes rather than forwards.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<ProxyBody> {
    let connect = req.method() == Method::CONNECT;
    let target = if connect {
        req.uri()
            .authority()
            .and_then(|a| Some((a.host().to_owned(), a.port_u16()?)))
    } else {
        match (req.uri().scheme_str(), req.uri().host()) {
            (Some("http"), Some(host)) => {
                Some((host.to_owned(), req.uri().port_u16().unwrap_or(80)))
            }
            _ => None,
        }
    };
    let Some((host, port)) = target else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "forward proxy: {} {} is neither CONNECT host:port nor an absolute http:// URL",
                req.method(),
                req.uri()
            ),
        );
    };
    let headers_seen = req
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if matches!(k.as_str(), "authorization" | "proxy-authorization") {
                "<present>".to_owned()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect();
    shared.requests.lock().unwrap().push(ProxiedRequest {
        method: req.method().to_string(),
        host: host.clone(),
        port,
        connect,
        headers_seen,
    });
    if shared.refusing.load(Ordering::SeqCst) {
        return text(
            StatusCode::FORBIDDEN,
            format!("forward proxy: refusing {} {}", req.method(), req.uri()),
        );
    }

    if connect {
        let upstream = match TcpStream::connect((host.as_str(), port)).await {
            Ok(upstream) => {
                let _ = upstream.set_nodelay(true);
                upstream
            }
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("forward proxy: connect {host}:{port}: {e}"),
                );
            }
        };
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let mut upstream = upstream;
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream).await;
            }
        });
        return Response::new(Empty::new().map_err(|never| match never {}).boxed());
    }

    let (mut parts, body) = req.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(*name);
    }
    // The pool takes the absolute URI and sends the request in origin form.
    match shared
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(*name);
            }
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            format!("forward proxy: {host}:{port}: {e}"),
        ),
    }
}

/// A connector that sends small writes at once (no Nagle delays between a request's
/// head and body).
fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Uri;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The URI a client asks the proxy for: `http://host:port/path`.
    fn absolute(host_port: &str, path: &str) -> Uri {
        format!("http://{host_port}{path}").parse().unwrap()
    }

    /// A target server answering `<method> <uri> auth=<yes|no>` to every request.
    async fn target() -> SocketAddr {
        use axum::extract::Request;
        let app = axum::Router::new().fallback(|req: Request| async move {
            let auth = if req.headers().contains_key("authorization") {
                "yes"
            } else {
                "no"
            };
            let hop = req.headers().contains_key("proxy-authorization");
            format!(
                "{} {} auth={auth} proxy-auth={hop}",
                req.method(),
                req.uri()
            )
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// An HTTP/1.1 client connection over `io` (plain hyper, no pool).
    async fn handshake<T>(io: T) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        send
    }

    async fn send(
        client: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        uri: Uri,
        host: &str,
    ) -> (u16, String) {
        let request = Request::get(uri)
            .header("host", host)
            .header("authorization", "Bearer s3cr3t")
            .header("proxy-authorization", "Basic cHJveHk=")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn forwards_absolute_form_requests_and_counts_them() {
        let (a, b) = (target().await, target().await);
        let proxy = ForwardProxy::start().await.unwrap();
        let mut client = handshake(TcpStream::connect(proxy.addr()).await.unwrap()).await;
        // Two targets on one kept-alive connection to the proxy.
        for (addr, path) in [(a, "/one?x=1"), (b, "/two"), (a, "/three")] {
            let (status, body) = send(
                &mut client,
                absolute(&addr.to_string(), path),
                &addr.to_string(),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(
                body,
                format!("GET {path} auth=yes proxy-auth=false"),
                "origin form, the credential for the target kept, the proxy's dropped"
            );
        }
        assert_eq!(
            proxy.hosts(),
            BTreeMap::from([(a.to_string(), 2), (b.to_string(), 1)])
        );
        let first = &proxy.requests()[0];
        assert_eq!(
            (
                first.method.as_str(),
                first.host.as_str(),
                first.port,
                first.connect
            ),
            ("GET", "127.0.0.1", a.port(), false)
        );
        assert!(
            first
                .headers_seen
                .contains(&("authorization".into(), "<present>".into()))
                && first
                    .headers_seen
                    .contains(&("proxy-authorization".into(), "<present>".into())),
            "{:?}",
            first.headers_seen
        );
        assert!(!format!("{:?}", proxy.requests()).contains("s3cr3t"));
        assert!(proxy.saw_authorization_for("127.0.0.1"));
        assert!(proxy.saw_authorization_for(&a.to_string()));
        assert!(!proxy.saw_authorization_for("example.com"));
    }

    /// Sends `CONNECT target` on a fresh connection to the proxy: the status line
    /// and, on 200, the open tunnel.
    async fn connect(proxy: &ForwardProxy, target: &str) -> (String, TcpStream) {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream
            .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        (head.lines().next().unwrap_or_default().to_owned(), stream)
    }

    #[tokio::test]
    async fn tunnels_connect_without_seeing_inside() {
        let addr = target().await;
        let proxy = ForwardProxy::start().await.unwrap();
        let (status, tunnel) = connect(&proxy, &addr.to_string()).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut client = handshake(tunnel).await;
        for _ in 0..2 {
            let (status, body) =
                send(&mut client, "/inside".parse().unwrap(), &addr.to_string()).await;
            assert_eq!(
                (status, body.as_str()),
                (200, "GET /inside auth=yes proxy-auth=true")
            );
        }
        let requests = proxy.requests();
        assert_eq!(requests.len(), 1, "one tunnel: {requests:?}");
        assert_eq!(
            (
                requests[0].method.as_str(),
                requests[0].connect,
                requests[0].target()
            ),
            ("CONNECT", true, addr.to_string())
        );
        assert!(
            !proxy.saw_authorization_for(&addr.to_string()),
            "the token went through the tunnel, unread"
        );

        // A target nobody listens on: 502, no tunnel.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let (status, _) = connect(&proxy, &closed.to_string()).await;
        assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    }

    #[tokio::test]
    async fn refusing_mode_answers_403_and_still_counts() {
        let addr = target().await;
        let proxy = ForwardProxy::refusing().await.unwrap();
        let (status, _) = connect(&proxy, &addr.to_string()).await;
        assert!(status.starts_with("HTTP/1.1 403"), "{status}");
        let mut client = handshake(TcpStream::connect(proxy.addr()).await.unwrap()).await;
        let (status, _) = send(&mut client, absolute(&addr.to_string(), "/x"), "h").await;
        assert_eq!(status, 403);
        assert_eq!(proxy.hosts(), BTreeMap::from([(addr.to_string(), 2)]));

        proxy.set_refusing(false);
        let (status, body) = send(&mut client, absolute(&addr.to_string(), "/x"), "h").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "GET /x auth=yes proxy-auth=false")
        );

        // Origin form is not a proxy request: 400, not counted.
        let (status, _) = send(&mut client, "/direct".parse().unwrap(), "h").await;
        assert_eq!(status, 400);
        assert_eq!(proxy.requests().len(), 3);
    }
}
