//! How the GitHub token reaches git without being exposed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use repovault_core::Secret;

/// The token used for clones and ref listings. GitHub accepts any user name with a
/// token as the password; we send `x-access-token`.
#[derive(Debug, Clone)]
pub struct GitCredentials {
    token: Option<Secret>,
}

pub(crate) const TOKEN_USER: &str = "x-access-token";

impl GitCredentials {
    pub fn new(token: Option<Secret>) -> Self {
        GitCredentials { token }
    }

    pub(crate) fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// Environment for a `git` child process that talks to `url`: config entries
    /// passed through `GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` (never argv, which any local
    /// user can read), the auth header scoped to the URL's origin so a redirect to
    /// another host does not carry it, and no interactive prompts.
    pub(crate) fn git_env(&self, url: &str) -> Vec<(String, String)> {
        let mut config: Vec<(String, String)> = vec![
            // No credential helper: never prompt, never store.
            ("credential.helper".into(), String::new()),
            // Abort transfers that stall instead of hanging a worker forever.
            ("http.lowSpeedLimit".into(), "1000".into()),
            ("http.lowSpeedTime".into(), "120".into()),
        ];
        if let Some(token) = &self.token {
            let basic = STANDARD.encode(format!("{TOKEN_USER}:{}", token.expose()));
            config.push((
                format!("http.{}.extraHeader", origin(url)),
                format!("Authorization: Basic {basic}"),
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
            Some(token) => {
                let basic =
                    Secret::new(STANDARD.encode(format!("{TOKEN_USER}:{}", token.expose())));
                basic.redact(&token.redact(text))
            }
        }
    }
}

/// `scheme://host[:port]/` of a URL, the scope of an `http.<url>.*` config entry.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or(rest);
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            format!("{scheme}://{host}/")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_the_header_to_the_origin() {
        assert_eq!(
            origin("https://github.com/acme/api.git"),
            "https://github.com/"
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/a/b.git"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            origin("https://user@ghe.example.com/a/b.git"),
            "https://ghe.example.com/"
        );
    }

    #[test]
    fn env_carries_the_token_only_base64_encoded_in_a_header() {
        let creds = GitCredentials::new(Some(Secret::new("ghp_secret")));
        let env = creds.git_env("https://github.com/a/b.git");
        assert!(
            env.iter()
                .all(|(k, v)| !k.contains("ghp_secret") && !v.contains("ghp_secret"))
        );
        assert!(env.iter().any(|(k, v)| k.starts_with("GIT_CONFIG_KEY_")
            && v == "http.https://github.com/.extraHeader"));
        let header = env
            .iter()
            .find(|(_, v)| v.starts_with("Authorization: Basic "))
            .unwrap();
        assert_eq!(creds.redact(&header.1), "Authorization: Basic ***");
        assert_eq!(creds.redact("token ghp_secret"), "token ***");
    }

    #[test]
    fn anonymous_has_no_auth_header() {
        let env = GitCredentials::new(None).git_env("https://github.com/a/b.git");
        assert!(env.iter().all(|(_, v)| !v.starts_with("Authorization")));
        assert!(env.contains(&("GIT_TERMINAL_PROMPT".into(), "0".into())));
    }
}
