//! # repovault-http
//!
//! Every outbound HTTP connection repovault's own clients open (git's protocol v2,
//! GitHub's web origin, notifications) goes through one [`connector`]: TLS with the
//! system's root certificates, and the proxy the environment names, read as curl
//! reads it: `HTTPS_PROXY`/`https_proxy` for https, `HTTP_PROXY`/`http_proxy` for
//! http, `ALL_PROXY`/`all_proxy` for both, `NO_PROXY`/`no_proxy` for the hosts
//! (domains and their subdomains, IPs, networks) reached directly.
//!
//! An https destination is reached through the proxy by `CONNECT host:port`: the
//! proxy relays TLS it cannot read, so a token in a request never reaches it. An
//! http destination (a local test server) is sent to the proxy in absolute form, as
//! every HTTP client does; requests and their headers are then the proxy's to read,
//! and a proxy's own credentials are sent only in `CONNECT`.
//!
//! The other clients honour the same variables on their own: the AWS SDK (S3, SQS,
//! SNS), octocrab's and the OTLP exporter's `reqwest`; [`git_env`] gives a git child
//! process (curl) the one name it reads differently.

use std::error::Error;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tower::Service;

/// The connector every hyper client of repovault's is built on.
pub type Connector = hyper_rustls::HttpsConnector<ProxyConnector>;

/// A connector with TLS (the system's roots) for https, plain TCP for http, both
/// through the environment's proxy where it names one. `nodelay` turns Nagle's
/// algorithm off (small requests answered at once).
pub fn connector(nodelay: bool) -> Result<Connector, String> {
    let mut direct = HttpConnector::new();
    direct.set_nodelay(nodelay);
    direct.enforce_http(false);
    let proxied = ProxyConnector {
        direct,
        proxies: Arc::new(Matcher::from_env()),
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("loading TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(proxied))
}

/// The variables a git child process (curl) needs to use the proxy [`connector`]
/// uses: curl reads only the lower-case `http_proxy` (the others in either case).
pub fn git_env() -> Vec<(&'static str, String)> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (set("http_proxy"), set("HTTP_PROXY")) {
        (None, Some(upper)) => vec![("http_proxy", upper)],
        _ => Vec::new(),
    }
}

/// TCP connections, direct or through the proxy the environment names for the
/// destination: tunnelled (`CONNECT`) for https, forwarded for http.
#[derive(Clone, Debug)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

type BoxError = Box<dyn Error + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let proxy = self.proxies.intercept(&dst);
        Box::pin(async move {
            let Some(proxy) = proxy else {
                let io = direct.call(dst).await?;
                return Ok(Conn {
                    io,
                    forwarded: false,
                });
            };
            if dst.scheme_str() == Some("https") {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), direct);
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
                let io = tunnel.call(dst).await?;
                Ok(Conn {
                    io,
                    forwarded: false,
                })
            } else {
                let io = direct.call(proxy.uri().clone()).await?;
                Ok(Conn {
                    io,
                    forwarded: true,
                })
            }
        })
    }
}

/// A connection; `forwarded` when it leads to a proxy that takes http requests in
/// absolute form.
#[derive(Debug)]
pub struct Conn {
    io: TokioIo<tokio::net::TcpStream>,
    forwarded: bool,
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
