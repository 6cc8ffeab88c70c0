//! Where a job's git data lives, derived from its API URL, and the checks that keep the
//! token on that host: a clone URL is accepted only if it is exactly
//! `<origin>/<owner>/<name>(.git)` for the job's own repository, and plain `http://`
//! only when the operator opted in (`allow-insecure-http`).

use std::fmt;

use url::Url;

use crate::Invalid;

/// The error text for a plain-http URL without the opt-in, naming what to do.
fn insecure(url: &str) -> Invalid {
    Invalid(format!(
        "{url:?} is plain http: the token would cross the network unencrypted; \
         use https, or pass --allow-insecure-http (config `allow-insecure-http: true`) \
         for a local test server"
    ))
}

/// Refuses a plain `http://` URL unless `allow_insecure_http`. The message names the
/// URL, not the key: the caller names the key.
fn check_scheme(url: &str, allow_insecure_http: bool) -> Result<(), Invalid> {
    let parsed = Url::parse(url).map_err(|e| Invalid(format!("{url:?} is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http => Ok(()),
        "http" => Err(insecure(url)),
        other => Err(Invalid(format!(
            "{url:?}: unsupported scheme {other:?}; use https"
        ))),
    }
}

/// The origin (`scheme://host[:port]`) git is served from for one GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitHost {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl GitHost {
    /// The git host of a GitHub API base URL: `https://api.github.com` → `github.com`,
    /// `https://api.SUB.ghe.com` → `SUB.ghe.com`, GitHub Enterprise Server
    /// `https://HOST/api/v3` → `HOST`; any other URL (a test server) serves git on its
    /// own origin.
    pub fn from_api_url(api_url: &str, allow_insecure_http: bool) -> Result<GitHost, Invalid> {
        check_scheme(api_url, allow_insecure_http)?;
        let url = Url::parse(api_url).map_err(|e| Invalid(format!("{api_url:?}: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid(format!(
                "{api_url:?} must not carry credentials; use token-file or GITHUB_TOKEN"
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Invalid(format!("{api_url:?} has no host")))?
            .to_ascii_lowercase();
        let path = url.path().trim_end_matches('/');
        let host = match (host.strip_prefix("api."), path) {
            (Some(git_host), "") => git_host.to_owned(),
            _ => host,
        };
        Ok(GitHost {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
        })
    }

    /// The origin of any URL (for a push target named by the operator). A URL that
    /// carries credentials is refused: a token belongs in a file or the environment,
    /// never in a URL that is echoed, logged and kept in shell history.
    pub fn of_url(url: &str) -> Result<GitHost, Invalid> {
        let parsed = Url::parse(url).map_err(|e| Invalid(format!("{url:?} is not a URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Invalid(format!(
                "{}://{}…: a URL must not carry credentials",
                parsed.scheme(),
                parsed.host_str().unwrap_or("?")
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| Invalid(format!("{url:?} has no host")))?;
        Ok(GitHost {
            scheme: parsed.scheme().to_owned(),
            host: host.to_ascii_lowercase(),
            port: parsed.port(),
        })
    }

    /// `scheme://host[:port]`: where `owner/name.git` is served.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// Whether this origin is plain http: only ever the case when the operator
    /// opted in (`allow-insecure-http`, for a test server).
    pub fn is_plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// `true` if `url` is on this origin: same scheme, host and port, no user info.
    pub fn serves(&self, url: &str) -> bool {
        Url::parse(url).is_ok_and(|u| {
            u.scheme() == self.scheme
                && u.host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
                && u.port() == self.port
                && u.username().is_empty()
                && u.password().is_none()
        })
    }

    /// Accepts `clone_url` only if it is `<origin>/<owner>/<name>` or `….git`, with no
    /// query, fragment or user info: a job message cannot send the token, or name a
    /// repository other than its own, anywhere else.
    pub fn check_clone_url(&self, clone_url: &str, owner: &str, name: &str) -> Result<(), Invalid> {
        let refuse = |why: &str| {
            Err(Invalid(format!(
                "clone_url {clone_url:?} refused: {why} (expected {self}/{owner}/{name}.git)"
            )))
        };
        let Ok(url) = Url::parse(clone_url) else {
            return refuse("not a URL");
        };
        if !self.serves(clone_url) {
            return refuse("not on the configured GitHub host");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return refuse("it has a query or fragment");
        }
        let path = url.path();
        let expected = format!("/{owner}/{name}");
        if path != expected && path != format!("{expected}.git") {
            return refuse("its path is not the message's own repository");
        }
        Ok(())
    }
}

impl fmt::Display for GitHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(api: &str) -> String {
        GitHost::from_api_url(api, true).unwrap().to_string()
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_echoing_them() {
        let err = GitHost::of_url("https://x-access-token:ghp_secret@github.com/a/b.git")
            .unwrap_err()
            .0;
        assert!(
            err.contains("credentials") && !err.contains("ghp_secret"),
            "{err}"
        );
        assert!(GitHost::of_url("https://github.com/a/b.git").is_ok());
    }

    #[test]
    fn derives_the_git_host_from_the_api_url() {
        assert_eq!(host("https://api.github.com"), "https://github.com");
        assert_eq!(host("https://api.github.com/"), "https://github.com");
        assert_eq!(
            host("https://ghe.example.com/api/v3"),
            "https://ghe.example.com"
        );
        assert_eq!(host("https://api.acme.ghe.com"), "https://acme.ghe.com");
        assert_eq!(host("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            host("http://127.0.0.1:8080/api/v3"),
            "http://127.0.0.1:8080"
        );
        assert!(GitHost::from_api_url("https://u:p@api.github.com", true).is_err());
    }

    #[test]
    fn plain_http_needs_the_opt_in_and_says_so() {
        let err = GitHost::from_api_url("http://ghe.internal/api/v3", false)
            .unwrap_err()
            .0;
        assert!(err.contains("--allow-insecure-http"), "{err}");
        assert!(err.contains("allow-insecure-http: true"), "{err}");
        assert!(GitHost::from_api_url("http://ghe.internal/api/v3", true).is_ok());
        assert!(check_scheme("ftp://x", true).is_err());
    }

    #[test]
    fn accepts_only_the_messages_own_repository_on_the_configured_host() {
        let gh = GitHost::from_api_url("https://api.github.com", false).unwrap();
        for ok in [
            "https://github.com/acme/api.git",
            "https://github.com/acme/api",
            "https://GitHub.com/acme/api.git",
        ] {
            assert!(gh.check_clone_url(ok, "acme", "api").is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("https://evil.example/acme/api.git", "host"),
            ("https://github.com.evil.example/acme/api.git", "host"),
            ("https://github.com@evil.example/acme/api.git", "host"),
            ("https://x:y@github.com/acme/api.git", "host"),
            ("http://github.com/acme/api.git", "host"),
            ("https://github.com:8443/acme/api.git", "host"),
            ("https://github.com/acme/other.git", "path"),
            ("https://github.com/evil/api.git", "path"),
            ("https://github.com/acme/api.git/../../evil/x.git", "path"),
            ("https://github.com/acme/api.git?x=1", "query"),
            ("not a url", "URL"),
        ] {
            let err = gh.check_clone_url(bad, "acme", "api").unwrap_err().0;
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn serves_compares_whole_origins() {
        let gh = GitHost::of_url("http://127.0.0.1:9000/x.git").unwrap();
        assert!(gh.serves("http://127.0.0.1:9000/other/repo.git"));
        assert!(!gh.serves("http://127.0.0.1:9001/other/repo.git"));
        assert!(!gh.serves("https://127.0.0.1:9000/other/repo.git"));
    }
}
