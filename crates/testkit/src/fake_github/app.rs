//! A GitHub App installed on one owner: the JWT-authenticated endpoints
//! (`GET /orgs/{org}/installation`, `GET /users/{user}/installation`,
//! `POST /app/installations/{id}/access_tokens`), and installation tokens that work for
//! the API and git until they expire, then get GitHub's `401 Bad credentials`.
//!
//! The JWT is checked as GitHub does: RS256 signed by the App's key (the test key
//! pair below), `iss` the App's id, issued no later than now, expiring within ten
//! minutes.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::state::{FakeApp, Shared};

/// The test App's private key (PKCS#1 PEM, as GitHub hands App keys out). Test use only.
pub const TEST_APP_PRIVATE_KEY: &str = include_str!("app/test-app-key.pem");
const TEST_APP_PUBLIC_KEY: &str = include_str!("app/test-app-key.pub.pem");

/// The App endpoints' answer, or `None` when `path` is not one of them.
pub(crate) fn handle(
    shared: &Shared,
    method: &Method,
    route: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let endpoint = match (method, segments.as_slice()) {
        (&Method::GET, ["orgs" | "users", owner, "installation"]) => Endpoint::Lookup(owner),
        (&Method::POST, ["app", "installations", id, "access_tokens"]) => Endpoint::Mint(id),
        _ => return None,
    };
    let Some(app) = &shared.app else {
        return Some(reply(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found"}),
        ));
    };
    if let Err(reason) = verify_jwt(app, headers) {
        shared.lock().stats.app_jwt_rejected += 1;
        // GitHub's words for a JWT it cannot use.
        let message = format!("A JSON web token could not be decoded ({reason})");
        return Some(reply(StatusCode::UNAUTHORIZED, json!({"message": message})));
    }
    Some(match endpoint {
        Endpoint::Lookup(owner) if owner.eq_ignore_ascii_case(&app.owner) => reply(
            StatusCode::OK,
            json!({
                "id": app.installation_id, "app_id": app.app_id,
                "account": {"login": app.owner, "type": "Organization"},
                "target_type": "Organization", "repository_selection": "all",
                "access_tokens_url": format!("/app/installations/{}/access_tokens", app.installation_id),
                "permissions": permissions(), "events": [],
            }),
        ),
        Endpoint::Mint(id) if id == app.installation_id.to_string() => {
            let expires = now_secs() + app.token_lifetime.as_secs();
            let token = format!("ghs_{}", random_chars(36));
            let mut inner = shared.lock();
            inner.app_tokens.insert(token.clone(), expires);
            inner.stats.app_tokens_minted.push((token.clone(), expires));
            let expires_at = jiff::Timestamp::from_second(expires as i64).expect("valid time");
            reply(
                StatusCode::CREATED,
                json!({
                    "token": token, "expires_at": expires_at.to_string(),
                    "permissions": permissions(), "repository_selection": "all",
                }),
            )
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps"}),
        ),
    })
}

enum Endpoint<'a> {
    Lookup(&'a str),
    Mint(&'a str),
}

/// Whether `token` is an installation token, and if so whether it still works (an
/// expired one is counted: the run should never use one twice).
pub(crate) fn check_token(shared: &Shared, token: &str) -> Option<bool> {
    let mut inner = shared.lock();
    let expires = *inner.app_tokens.get(token)?;
    if now_secs() < expires {
        return Some(true);
    }
    *inner
        .stats
        .expired_token_uses
        .entry(token.to_owned())
        .or_default() += 1;
    Some(false)
}

fn verify_jwt(app: &FakeApp, headers: &HeaderMap) -> Result<(), String> {
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no Bearer JWT")?;
    let key = DecodingKey::from_rsa_pem(TEST_APP_PUBLIC_KEY.as_bytes()).expect("valid test key");
    let mut validation = Validation::new(Algorithm::RS256);
    // `iss` is checked below: GitHub takes the App id as a number or a string.
    validation.set_required_spec_claims(&["exp"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    let number = |name: &str| {
        claims[name]
            .as_u64()
            .ok_or(format!("{name} is not a number"))
    };
    let issuer = match &claims["iss"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if issuer != app.app_id.to_string() {
        return Err(format!("iss {issuer} is not this App"));
    }
    let (iat, exp, now) = (number("iat")?, number("exp")?, now_secs());
    if iat > now + 1 {
        return Err(
            "'Issued at' claim (iat) must be an Integer representing a time in the past".into(),
        );
    }
    if exp > now + 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    Ok(())
}

fn permissions() -> Value {
    json!({"contents": "read", "metadata": "read", "issues": "read", "pull_requests": "read"})
}

fn reply(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(axum::body::Body::from(body.to_string()))
        .expect("valid response")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_chars(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}
