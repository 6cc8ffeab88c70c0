//! How the GitHub token reaches git, and only the host it belongs to.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use repovault_core::{GitHost, Secret};

/// The token used for clones, ref listings and pushes, bound to the one origin it may
/// be sent to. GitHub accepts any user name with a token as the password; we send
/// `x-access-token`.
///
/// Unscoped credentials ([`GitCredentials::new`]) send the token nowhere: scope them
/// with [`GitCredentials::scoped`] to the origin the job is for.
#[derive(Debug, Clone)]
pub struct GitCredentials {
    token: Option<Secret>,
    origin: Option<GitHost>,
}

pub(crate) const TOKEN_USER: &str = "x-access-token";

impl GitCredentials {
    pub fn new(token: Option<Secret>) -> Self {
        GitCredentials {
            token,
            origin: None,
        }
    }

    /// The same token, to be sent to `origin` and nowhere else.
    pub fn scoped(&self, origin: GitHost) -> Self {
        GitCredentials {
            token: self.token.clone(),
            origin: Some(origin),
        }
    }

    /// Whether plain http (and loopback addresses) may be used: the credentials are
    /// scoped to a plain-http origin, which the configuration allows only with
    /// `allow-insecure-http` (a test server).
    pub(crate) fn allows_plain_http(&self) -> bool {
        self.origin.as_ref().is_some_and(GitHost::is_plain_http)
    }

    /// The token, if `url` is on the origin it belongs to.
    pub(crate) fn token_for(&self, url: &str) -> Option<&Secret> {
        match (&self.token, &self.origin) {
            (Some(token), Some(origin)) if origin.serves(url) => Some(token),
            _ => None,
        }
    }

    /// The `Authorization: Basic` value for a request to `url`, if `url` is on the
    /// token's origin (marked sensitive: never logged by the HTTP stack).
    pub(crate) fn authorization(&self, url: &str) -> Option<http::HeaderValue> {
        self.token_for(url).map(|token| {
            let mut value = http::HeaderValue::from_str(&format!("Basic {}", basic(token)))
                .expect("base64 is a valid header");
            value.set_sensitive(true);
            value
        })
    }

    /// Environment for a `git` child process that talks to `url`: config entries
    /// passed through `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` (never argv, which any local
    /// user can read), no redirects followed (git would carry the header to wherever a
    /// redirect points), the auth header only when `url` is on the token's origin, and
    /// no interactive prompts or credential helpers.
    pub(crate) fn git_env(&self, url: &str) -> Vec<(String, String)> {
        let mut config: Vec<(String, String)> = vec![
            // No credential helper: never prompt, never store.
            ("credential.helper".into(), String::new()),
            ("http.followRedirects".into(), "false".into()),
            // Abort transfers that stall instead of hanging a worker forever.
            ("http.lowSpeedLimit".into(), "1000".into()),
            ("http.lowSpeedTime".into(), "120".into()),
        ];
        if let (Some(token), Some(origin)) = (self.token_for(url), &self.origin) {
            config.push((
                format!("http.{origin}/.extraHeader"),
                format!("Authorization: Basic {}", basic(token)),
            ));
        }
        let mut env = vec![
            ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
            ("GIT_CONFIG_COUNT".to_owned(), config.len().to_string()),
        ];
        for (i, (key, value)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), key));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), value));
        }
        env
    }

    /// Removes the token (raw or inside the Basic header) from text quoted in errors.
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.token {
            None => text.to_owned(),
            Some(token) => Secret::new(basic(token)).redact(&token.redact(text)),
        }
    }
}

/// `x-access-token:<token>`, base64-encoded: HTTP Basic credentials GitHub accepts.
fn basic(token: &Secret) -> String {
    STANDARD.encode(format!("{TOKEN_USER}:{}", token.expose()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github() -> GitCredentials {
        let host = GitHost::from_api_url("https://api.github.com", false).unwrap();
        GitCredentials::new(Some(Secret::new("ghp_secret"))).scoped(host)
    }

    fn header(env: &[(String, String)]) -> Option<&String> {
        env.iter()
            .map(|(_, v)| v)
            .find(|v| v.starts_with("Authorization: Basic "))
    }

    #[test]
    fn env_carries_the_token_only_base64_encoded_in_a_header_for_its_origin() {
        let creds = github();
        let env = creds.git_env("https://github.com/a/b.git");
        assert!(
            env.iter()
                .all(|(k, v)| !k.contains("ghp_secret") && !v.contains("ghp_secret"))
        );
        assert!(env.iter().any(|(k, v)| k.starts_with("GIT_CONFIG_KEY_")
            && v == "http.https://github.com/.extraHeader"));
        assert_eq!(
            creds.redact(header(&env).unwrap()),
            "Authorization: Basic ***"
        );
        assert_eq!(creds.redact("token ghp_secret"), "token ***");
    }

    #[test]
    fn no_token_for_another_host_or_when_unscoped() {
        let creds = github();
        for url in [
            "https://evil.example/a/b.git",
            "http://github.com/a/b.git",
            "https://github.com.evil.example/a/b.git",
        ] {
            assert!(header(&creds.git_env(url)).is_none(), "{url}");
            assert!(creds.token_for(url).is_none(), "{url}");
        }
        let unscoped = GitCredentials::new(Some(Secret::new("ghp_secret")));
        assert!(header(&unscoped.git_env("https://github.com/a/b.git")).is_none());
    }

    #[test]
    fn redirects_are_never_followed_and_prompts_never_shown() {
        let env = GitCredentials::new(None).git_env("https://github.com/a/b.git");
        assert!(header(&env).is_none());
        assert!(env.contains(&("GIT_TERMINAL_PROMPT".into(), "0".into())));
        let i = env
            .iter()
            .find(|(k, v)| k.starts_with("GIT_CONFIG_KEY_") && v == "http.followRedirects")
            .map(|(k, _)| k.trim_start_matches("GIT_CONFIG_KEY_").to_owned())
            .expect("http.followRedirects is set");
        assert!(env.contains(&(format!("GIT_CONFIG_VALUE_{i}"), "false".into())));
    }
}
