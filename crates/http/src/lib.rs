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
//! A configuration's `proxy:` ([`configure`]) replaces the environment's for every
//! client but the OTLP exporter, which starts before the configuration is read.
//!
//! The cloud's metadata services ([`ALWAYS_DIRECT`]: EC2's instance metadata, ECS's
//! task credentials) are link-local, out of any proxy's reach: they are always
//! reached directly.
//!
//! The other clients are given the same [`Proxies::current`]: the AWS SDK's
//! (repovault-aws) and octocrab's `reqwest` (repovault-github); [`git_env`] gives a
//! git child process (curl) the variables it reads. The OTLP exporter's `reqwest`
//! reads the environment on its own.

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

/// The addresses always reached directly: EC2's instance metadata service (IPv4 and
/// IPv6) and ECS's task credentials endpoint.
pub const ALWAYS_DIRECT: &str = "169.254.169.254,169.254.170.2,fd00:ec2::254";

/// The proxies every client uses: the configuration's (`proxy:`, see [`configure`]),
/// else the environment's, read as curl reads them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Proxies {
    /// For http destinations: `http_proxy`, `HTTP_PROXY`, else `ALL_PROXY`.
    pub http: Option<String>,
    /// For https destinations: `HTTPS_PROXY`, `https_proxy`, else `ALL_PROXY`.
    pub https: Option<String>,
    /// `NO_PROXY` (or `no_proxy`) and [`ALWAYS_DIRECT`].
    pub no_proxy: String,
}

/// The configuration's proxies, once set.
static CONFIGURED: std::sync::OnceLock<Proxies> = std::sync::OnceLock::new();

/// Makes `proxies` the process's, instead of the environment's: called when the
/// configuration is read, before any client is made. The same proxies again are
/// accepted (a configuration read twice); others are refused.
pub fn configure(proxies: Proxies) -> Result<(), String> {
    if CONFIGURED.get_or_init(|| proxies.clone()) == &proxies {
        Ok(())
    } else {
        Err("a second, different proxy for one process".into())
    }
}

impl std::fmt::Debug for Proxies {
    /// Without the URLs: they may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxies")
            .field("http", &self.http.as_ref().map(|_| "<set>"))
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Proxies {
    /// The process's: the configuration's, else the environment's.
    pub fn current() -> Proxies {
        CONFIGURED.get().cloned().unwrap_or_else(Proxies::from_env)
    }

    /// One proxy for http and https, and the hosts reached directly.
    pub fn fixed(url: &str, no_proxy: &[String]) -> Proxies {
        let mut direct: Vec<&str> = no_proxy.iter().map(String::as_str).collect();
        direct.push(ALWAYS_DIRECT);
        Proxies {
            http: Some(url.to_owned()),
            https: Some(url.to_owned()),
            no_proxy: direct.join(","),
        }
    }

    /// The process's environment's.
    pub fn from_env() -> Proxies {
        Proxies::from(|name| std::env::var(name).ok())
    }

    /// What `var` gives (empty values are unset).
    pub fn from(var: impl Fn(&str) -> Option<String>) -> Proxies {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        let all = first(&["ALL_PROXY", "all_proxy"]);
        let no_proxy = match first(&["NO_PROXY", "no_proxy"]) {
            Some(listed) => format!("{listed},{ALWAYS_DIRECT}"),
            None => ALWAYS_DIRECT.to_owned(),
        };
        Proxies {
            http: first(&["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone()),
            https: first(&["HTTPS_PROXY", "https_proxy"]).or(all),
            no_proxy,
        }
    }

    /// The variables a git child process (curl) reads, in the lower case it reads
    /// first: the same proxies as every other client.
    pub fn git_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("no_proxy", self.no_proxy.clone())];
        if let Some(http) = &self.http {
            env.push(("http_proxy", http.clone()));
        }
        if let Some(https) = &self.https {
            env.push(("https_proxy", https.clone()));
        }
        env
    }

    fn matcher(&self) -> Matcher {
        let mut builder = Matcher::builder().no(&self.no_proxy);
        if let Some(http) = &self.http {
            builder = builder.http(http);
        }
        if let Some(https) = &self.https {
            builder = builder.https(https);
        }
        builder.build()
    }
}

/// A connector with TLS (the system's roots) for https, plain TCP for http, both
/// through the environment's proxy where it names one. `nodelay` turns Nagle's
/// algorithm off (small requests answered at once).
pub fn connector(nodelay: bool) -> Result<Connector, String> {
    let mut direct = HttpConnector::new();
    direct.set_nodelay(nodelay);
    direct.enforce_http(false);
    let proxied = ProxyConnector {
        direct,
        proxies: Arc::new(Proxies::current().matcher()),
    };
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("loading TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(proxied))
}

/// The variables a git child process (curl) needs to use the proxies [`connector`]
/// uses (curl reads `http_proxy` in lower case only).
pub fn git_env() -> Vec<(&'static str, String)> {
    Proxies::current().git_env()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        Proxies::from(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn variables_are_read_as_curl_reads_them() {
        let p = proxies(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("HTTP_PROXY", "http://plain:8080"),
            ("NO_PROXY", "internal.example"),
        ]);
        assert_eq!(p.https.as_deref(), Some("http://proxy:3128"));
        assert_eq!(p.http.as_deref(), Some("http://plain:8080"));
        assert_eq!(p.no_proxy, format!("internal.example,{ALWAYS_DIRECT}"));
        let all = proxies(&[("ALL_PROXY", "http://both:1"), ("https_proxy", "")]);
        assert_eq!(all.http, all.https);
        assert_eq!(all.https.as_deref(), Some("http://both:1"));
    }

    #[test]
    fn the_metadata_services_are_never_proxied() {
        let matcher = proxies(&[("HTTP_PROXY", "http://proxy:3128")]).matcher();
        let uri = |u: &str| u.parse::<Uri>().unwrap();
        assert!(matcher.intercept(&uri("http://api.example/")).is_some());
        for direct in [
            "http://169.254.169.254/latest/api/token",
            "http://169.254.170.2/v2/credentials/x",
        ] {
            assert!(matcher.intercept(&uri(direct)).is_none(), "{direct}");
        }
    }
}
