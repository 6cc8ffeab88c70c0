//! The REST subset: users, org/user repository lists with pagination, single
//! repositories, a repository's data beyond git (issues, comments, pull requests,
//! reviews, labels, milestones, releases and assets) with `ETag`/`304` and `since=`,
//! rate limits; Actions settings and security alerts as [`super::settings`] answers.
//! Writes (`POST`/`PATCH`/`PUT`/`DELETE`) are answered by
//! [`super::writes`], after the same authentication and rate limits and the
//! content-creation limit.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::TOKEN_USER;
use super::state::{ApiFault, Inner, OwnerKind, RepoEntry, Shared};

const DOCS: &str = "https://docs.github.com/rest";

/// The largest API request body read (a release body is at most 125,000 characters;
/// asset bytes go to the upload origin).
const MAX_BODY: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    Anonymous,
    Token,
    Bad,
}

/// Who is calling: the configured token or an App installation token that has not
/// expired (as `Bearer`, `token` or Basic password), nobody, or somebody with wrong
/// credentials.
pub(crate) fn auth_of(shared: &Shared, headers: &HeaderMap) -> Auth {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Auth::Anonymous;
    };
    let presented = if let Some(t) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
    {
        Some(t.trim().to_owned())
    } else if let Some(b) = value.strip_prefix("Basic ") {
        STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()))
    } else {
        None
    };
    match (&shared.token, presented) {
        (Some(expected), Some(got)) if *expected == got => Auth::Token,
        (_, Some(got)) if super::app::check_token(shared, &got) == Some(true) => Auth::Token,
        _ => Auth::Bad,
    }
}

pub(crate) fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone, Copy)]
pub(crate) struct Quota {
    limit: u64,
    remaining: u64,
    reset: u64,
    used: u64,
}

pub(crate) fn with_rate_headers(
    mut builder: axum::http::response::Builder,
    q: &Quota,
) -> axum::http::response::Builder {
    for (name, value) in [
        ("x-ratelimit-limit", q.limit),
        ("x-ratelimit-remaining", q.remaining),
        ("x-ratelimit-reset", q.reset),
        ("x-ratelimit-used", q.used),
    ] {
        builder = builder.header(name, value.to_string());
    }
    builder
        .header("x-ratelimit-resource", "core")
        .header("x-github-api-version-selected", "2022-11-28")
}

pub(crate) fn json_response(
    status: StatusCode,
    body: &Value,
    quota: &Quota,
    extra: &[(&str, String)],
) -> Response {
    let mut builder = with_rate_headers(Response::builder().status(status), quota)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

pub(crate) fn error_body(status: StatusCode, message: &str) -> Value {
    json!({ "message": message, "documentation_url": DOCS, "status": status.as_u16().to_string() })
}

/// Counts an API request (of the token, or anonymous) in the rate-limit window and
/// returns the quota it leaves, and which counter it used (`0` token, `1` anonymous).
pub(crate) fn count_request(shared: &Shared, inner: &mut Inner, auth: Auth) -> (Quota, usize) {
    inner.stats.api_requests += 1;
    let (limit, who) = if auth == Auth::Token {
        (shared.rate_limit, 0)
    } else {
        (60, 1)
    };
    let window_secs = shared.rate_window.as_secs().max(1);
    let window = now_epoch().saturating_sub(shared.started_epoch) / window_secs;
    if window != inner.window {
        inner.window = window;
        inner.window_used = [0, 0];
    }
    inner.window_used[who] += 1;
    let used = inner.window_used[who];
    let quota = Quota {
        limit,
        remaining: limit.saturating_sub(used),
        reset: shared.started_epoch + (window + 1) * window_secs,
        used,
    };
    (quota, who)
}

/// GitHub's refusals before a request is routed, in its order: bad credentials, a
/// write without credentials, an injected fault, the primary rate limit, and for
/// writes the content-creation limit. `None` lets the request through.
pub(crate) fn refusal(
    shared: &Shared,
    inner: &mut Inner,
    auth: Auth,
    write: bool,
    quota: &mut Quota,
) -> Option<Response> {
    if auth == Auth::Bad {
        return Some(json_response(
            StatusCode::UNAUTHORIZED,
            &error_body(StatusCode::UNAUTHORIZED, "Bad credentials"),
            quota,
            &[],
        ));
    }
    if write && auth == Auth::Anonymous {
        return Some(json_response(
            StatusCode::UNAUTHORIZED,
            &error_body(StatusCode::UNAUTHORIZED, "Requires authentication"),
            quota,
            &[],
        ));
    }
    if let Some(fault) = inner.api_faults.pop_front() {
        return Some(fault_response(inner, fault, quota));
    }
    if quota.used > quota.limit {
        let reset_after = std::time::Duration::from_secs(quota.reset.saturating_sub(now_epoch()));
        return Some(fault_response(
            inner,
            ApiFault::Primary { reset_after },
            quota,
        ));
    }
    if write {
        if let Some(limit) = shared.content_limit
            && let Err(wait) = inner.take_content_slot(limit)
        {
            inner.stats.content_limited += 1;
            inner.stats.rate_limited += 1;
            // Whole seconds until the window frees a slot: a client that waits that
            // long is let through.
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let body = json!({
                "message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            });
            return Some(json_response(
                StatusCode::FORBIDDEN,
                &body,
                quota,
                &[("retry-after", retry_after.max(1).to_string())],
            ));
        }
        inner.stats.content_requests += 1;
    }
    None
}

/// Whether `method` writes: what the content-creation limit counts.
pub(crate) fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    )
}

pub(crate) async fn handle(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Some(route) = path.strip_prefix(shared.api_prefix.as_str())
        && let Some(response) = super::app::handle(shared, &parts.method, route, &parts.headers)
    {
        shared.lock().stats.api_requests += 1;
        return response;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .body(Body::empty())
                .expect("valid response");
        }
    };
    let auth = auth_of(shared, &parts.headers);
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let if_none_match = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let wants_bytes = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    let write = is_write(&parts.method);
    let mut inner = shared.lock();
    // Conditional requests answered 304 are taken back below: they do not count.
    let (mut quota, who) = count_request(shared, &mut inner, auth);
    if let Some(refused) = refusal(shared, &mut inner, auth, write, &mut quota) {
        return refused;
    }
    let Some(route) = path.strip_prefix(shared.api_prefix.as_str()) else {
        return not_found(&quota);
    };
    let segments: Vec<&str> = route.trim_matches('/').split('/').collect();
    let api = format!("{}{}", shared.base_url, shared.api_prefix);
    let authed = auth == Auth::Token;
    if write {
        let writer = super::writes::Writer {
            shared,
            api: &api,
            quota: &quota,
        };
        return super::writes::handle(&writer, &mut inner, &parts.method, &segments, &body);
    }
    let ctx = Ctx {
        shared,
        inner: &inner,
        api: &api,
        authed,
        quota: &quota,
        query: &query,
        if_none_match: if_none_match.as_deref(),
    };
    let response = match segments.as_slice() {
        ["user"] if authed => {
            let me = inner.owner(TOKEN_USER).expect("token user exists");
            json_response(
                StatusCode::OK,
                &owner_json(&api, &shared.base_url, &me.login, me.id, OwnerKind::User),
                &quota,
                &[],
            )
        }
        ["user"] | ["user", "repos"] if !authed => json_response(
            StatusCode::UNAUTHORIZED,
            &error_body(StatusCode::UNAUTHORIZED, "Requires authentication"),
            &quota,
            &[],
        ),
        ["user", "repos"] => ctx.list(TOKEN_USER, true, format!("{api}/user/repos")),
        ["users", login] => match inner.owner(login) {
            Some(owner) => {
                let mut user =
                    owner_json(&api, &shared.base_url, &owner.login, owner.id, owner.kind);
                user["name"] = Value::Null;
                json_response(StatusCode::OK, &user, &quota, &[])
            }
            None => not_found(&quota),
        },
        ["users", login, "repos"] => ctx.list_user(inner.owner(login).map(|o| o.id)),
        ["user", id, "repos"] => ctx.list_user(id.parse().ok()),
        ["orgs", login, "repos"] => ctx.list_org(inner.owner(login).map(|o| o.id)),
        ["orgs", login, rest @ ..] => match inner.owner(login) {
            Some(org) if org.kind == OwnerKind::Org => ctx.org_data(&org.login, org.id, rest),
            _ => not_found(&quota),
        },
        ["organizations", id, "repos"] => ctx.list_org(id.parse().ok()),
        ["repos", owner, name, rest @ ..] => match inner.repo(owner, name) {
            Some(repo) if authed || !repo.spec.private => ctx.repo_data(repo, rest, wants_bytes),
            _ => not_found(&quota),
        },
        ["rate_limit"] => {
            let core = json!({ "limit": quota.limit, "remaining": quota.remaining, "reset": quota.reset, "used": quota.used, "resource": "core" });
            json_response(
                StatusCode::OK,
                &json!({ "resources": { "core": core, "graphql": super::graphql::budget(shared, &inner) }, "rate": core }),
                &quota,
                &[],
            )
        }
        _ => not_found(&quota),
    };
    if response.status() == StatusCode::NOT_MODIFIED {
        inner.stats.api_not_modified += 1;
        inner.window_used[who] -= 1;
    }
    response
}

pub(crate) fn not_found(quota: &Quota) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &error_body(StatusCode::NOT_FOUND, "Not Found"),
        quota,
        &[],
    )
}

fn fault_response(inner: &mut Inner, fault: ApiFault, quota: &mut Quota) -> Response {
    match fault {
        ApiFault::Primary { reset_after } => {
            inner.stats.rate_limited += 1;
            quota.remaining = 0;
            quota.reset = now_epoch() + reset_after.as_secs();
            let message = "API rate limit exceeded for user ID 1001. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.";
            let body = json!({ "message": message, "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api", "status": "403" });
            json_response(StatusCode::FORBIDDEN, &body, quota, &[])
        }
        ApiFault::Secondary { retry_after } => {
            inner.stats.rate_limited += 1;
            let message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.";
            let body = json!({ "message": message, "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits", "status": "403" });
            json_response(
                StatusCode::FORBIDDEN,
                &body,
                quota,
                &[("retry-after", retry_after.as_secs().to_string())],
            )
        }
        ApiFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            json_response(status, &error_body(status, "Server Error"), quota, &[])
        }
    }
}

struct Ctx<'a> {
    shared: &'a Shared,
    inner: &'a Inner,
    api: &'a str,
    authed: bool,
    quota: &'a Quota,
    query: &'a HashMap<String, String>,
    if_none_match: Option<&'a str>,
}

impl Ctx<'_> {
    fn list_org(&self, id: Option<u64>) -> Response {
        match id.and_then(|id| self.inner.owner_by_id(id)) {
            Some(org) if org.kind == OwnerKind::Org => self.list(
                &org.login,
                self.authed,
                format!("{}/organizations/{}/repos", self.api, org.id),
            ),
            _ => not_found(self.quota),
        }
    }

    /// `/users/{u}/repos` lists public repositories only, whoever asks.
    fn list_user(&self, id: Option<u64>) -> Response {
        match id.and_then(|id| self.inner.owner_by_id(id)) {
            Some(user) if user.kind == OwnerKind::User => self.list(
                &user.login,
                false,
                format!("{}/user/{}/repos", self.api, user.id),
            ),
            _ => not_found(self.quota),
        }
    }

    /// One page of `owner`'s repositories, oldest first, with a `Link` header.
    fn list(&self, owner: &str, include_private: bool, link_base: String) -> Response {
        let kind = self.query.get("type").map_or("all", String::as_str);
        let mut repos: Vec<&RepoEntry> = self
            .inner
            .repos
            .values()
            .filter(|r| r.spec.owner.eq_ignore_ascii_case(owner))
            .filter(|r| include_private || !r.spec.private)
            .filter(|r| match kind {
                "public" => !r.spec.private,
                "private" => r.spec.private,
                "forks" => r.spec.fork,
                "sources" => !r.spec.fork,
                _ => true,
            })
            .collect();
        repos.sort_by_key(|r| r.created_at);
        // Only the page's repositories become JSON: an org of 10,000 is listed in 100
        // pages, and rendering all of it for each made the fake, not the planner, the
        // slow part of the planner benchmark.
        self.page_in(
            repos,
            |r| repo_json(self.shared, self.api, r, self.authed),
            &link_base,
            None,
        )
    }

    /// One page of `items` (`per_page`, `page`), with GitHub's `Link` header, an
    /// `ETag`, and `304 Not Modified` when `If-None-Match` names the page as it is.
    fn page_of(&self, items: Vec<Value>, link_base: &str) -> Response {
        self.page_in(items, |v| v, link_base, None)
    }

    /// One page as [`page_of`](Self::page_of) in GitHub's wrapped form:
    /// `{"total_count": <all items>, "<field>": [<the page>]}`.
    fn page_of_wrapped(&self, field: &str, items: Vec<Value>, link_base: &str) -> Response {
        self.page_in(items, |v| v, link_base, Some(field))
    }

    /// One page of `items`, only its items turned into JSON by `render`.
    fn page_in<T>(
        &self,
        items: Vec<T>,
        render: impl Fn(T) -> Value,
        link_base: &str,
        wrapper: Option<&str>,
    ) -> Response {
        let total_count = items.len();
        let per_page: usize = self
            .query
            .get("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page: usize = self
            .query
            .get("page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let items: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(render)
            .collect();
        let mut kept: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| k.as_str() != "page" && k.as_str() != "per_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        kept.sort();
        kept.push(format!("per_page={per_page}"));
        let url = |p: usize| format!("<{link_base}?{}&page={p}>", kept.join("&"));
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("{}; rel=\"prev\"", url(page - 1)));
        }
        if page < last {
            links.push(format!("{}; rel=\"next\"", url(page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if page > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        let body = match wrapper {
            None => Value::Array(items),
            Some(field) => {
                let mut body = serde_json::Map::new();
                body.insert("total_count".into(), json!(total_count));
                body.insert(field.into(), Value::Array(items));
                Value::Object(body)
            }
        };
        let etag = etag_of(&body);
        if self.if_none_match == Some(etag.as_str()) {
            let unchanged = Quota {
                remaining: self.quota.remaining + 1,
                used: self.quota.used.saturating_sub(1),
                ..*self.quota
            };
            return with_rate_headers(
                Response::builder().status(StatusCode::NOT_MODIFIED),
                &unchanged,
            )
            .header(header::ETAG, etag)
            .body(Body::empty())
            .expect("valid response");
        }
        let mut extra = vec![("etag", etag)];
        if !links.is_empty() {
            extra.push(("link", links.join(", ")));
        }
        json_response(StatusCode::OK, &body, self.quota, &extra)
    }

    /// GitHub's answer to a token without the admin rights a resource needs.
    fn no_admin_rights(&self) -> Response {
        json_response(
            StatusCode::FORBIDDEN,
            &error_body(
                StatusCode::FORBIDDEN,
                "Must have admin rights to Repository.",
            ),
            self.quota,
            &[],
        )
    }

    /// What [`super::settings`] answered, paged.
    fn settings_answer(&self, answer: super::settings::Answer, link_base: &str) -> Response {
        use super::settings::Answer;
        match answer {
            Answer::List(items) => self.page_of(items, link_base),
            Answer::Wrapped(field, items) => self.page_of_wrapped(field, items, link_base),
            Answer::One(item) => json_response(StatusCode::OK, &item, self.quota, &[]),
            Answer::Refused(status, message) => {
                json_response(status, &error_body(status, message), self.quota, &[])
            }
        }
    }

    /// `/orgs/{login}/<rest>`: an organization's settings, members and teams.
    fn org_data(&self, login: &str, id: u64, rest: &[&str]) -> Response {
        let link = |path: &str| format!("{}/orgs/{login}/{path}", self.api);
        let settings = self.inner.org_settings.get(&login.to_lowercase());
        if let Some(answer) = super::settings::OrgSettings::answer(settings, rest, self.authed) {
            return self.settings_answer(answer, &link(&rest.join("/")));
        }
        let member = |login: &str, id: u64| json!({ "login": login, "id": id, "type": "User", "site_admin": false });
        match rest {
            [] => {
                let mut org = owner_json(self.api, &self.shared.base_url, login, id, OwnerKind::Org);
                if self.authed {
                    org["default_repository_permission"] = json!("read");
                    org["members_can_create_repositories"] = json!(false);
                    org["two_factor_requirement_enabled"] = json!(true);
                }
                json_response(StatusCode::OK, &org, self.quota, &[])
            }
            ["members"] => self.page_of(
                vec![member(TOKEN_USER, 1001), member("octocat", 583231)],
                &link("members"),
            ),
            ["teams"] if self.authed => self.page_of(
                vec![json!({ "id": 7001, "slug": "platform", "name": "Platform", "privacy": "closed", "permission": "pull" })],
                &link("teams"),
            ),
            ["teams"] => self.no_admin_rights(),
            // Public events of the organization's public repositories, 300 at most.
            ["events"] => self.page_of(self.inner.feed(login), &link("events")),
            _ => not_found(self.quota),
        }
    }

    /// `/repos/{owner}/{name}/<rest>`: the repository itself and its data beyond git.
    fn repo_data(&self, repo: &RepoEntry, rest: &[&str], wants_bytes: bool) -> Response {
        let meta = &repo.meta;
        let base = format!("{}/repos/{}/{}", self.api, repo.spec.owner, repo.spec.name);
        let link = |path: &str| format!("{base}/{path}");
        let state = self.query.get("state").map_or("open", String::as_str);
        let in_state = |v: &&Value| state == "all" || v["state"] == state;
        let since = self
            .query
            .get("since")
            .and_then(|s| s.replace("%3A", ":").parse::<jiff::Timestamp>().ok());
        let updated_since = |v: &&Value| {
            since.is_none_or(|since| {
                v["updated_at"]
                    .as_str()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .is_some_and(|t| t >= since)
            })
        };
        let descending = self.query.get("direction").is_some_and(|d| d == "desc");
        let by_updated = |mut items: Vec<Value>| {
            items.sort_by_key(|v| v["updated_at"].as_str().unwrap_or_default().to_owned());
            if descending {
                items.reverse();
            }
            items
        };
        if let Some(status) = meta.withheld.get(&rest.join("/")) {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::NOT_FOUND);
            let message = status.canonical_reason().unwrap_or("Error");
            return json_response(status, &error_body(status, message), self.quota, &[]);
        }
        let admin = self.authed && !meta.admin_denied;
        if let Some(answer) = meta.settings.answer(rest, admin, self.query) {
            return self.settings_answer(answer, &link(&rest.join("/")));
        }
        let one = |item: Option<&Value>| match item {
            Some(item) => json_response(StatusCode::OK, item, self.quota, &[]),
            None => not_found(self.quota),
        };
        let number = |n: &str| n.parse::<u64>().ok();
        match rest {
            [] => json_response(
                StatusCode::OK,
                &repo_json(self.shared, self.api, repo, self.authed),
                self.quota,
                &[],
            ),
            ["topics"] => json_response(
                StatusCode::OK,
                &json!({ "names": repo.spec.topics }),
                self.quota,
                &[],
            ),
            ["issues", n] if number(n).is_some() => one(meta
                .issues
                .iter()
                .find(|i| i["number"].as_u64() == number(n))),
            ["issues", n, "comments"] if number(n).is_some() => {
                if !meta
                    .issues
                    .iter()
                    .any(|i| i["number"].as_u64() == number(n))
                {
                    return not_found(self.quota);
                }
                let issue_url = link(&format!("issues/{n}"));
                let items = meta
                    .issue_comments
                    .iter()
                    .filter(|c| c["issue_url"] == issue_url.as_str())
                    .filter(updated_since);
                self.page_of(
                    items.cloned().collect(),
                    &link(&format!("issues/{n}/comments")),
                )
            }
            ["pulls", n] if number(n).is_some() => one(meta
                .pulls
                .iter()
                .find(|p| p["number"].as_u64() == number(n))),
            ["labels", name] => {
                let name = super::metadata::decode_segment(name).unwrap_or_default();
                one(meta.labels.iter().find(|l| {
                    l["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&name))
                }))
            }
            ["milestones", n] if number(n).is_some() => one(meta
                .milestones
                .iter()
                .find(|m| m["number"].as_u64() == number(n))),
            // Drafts have no tag yet: GitHub does not find them by it.
            ["releases", "tags", tag] => {
                let tag = super::metadata::decode_segment(tag).unwrap_or_default();
                one(meta
                    .releases
                    .iter()
                    .find(|r| r["tag_name"] == tag.as_str() && r["draft"] != true))
            }
            ["releases", id] if number(id).is_some() => one(meta
                .releases
                .iter()
                .find(|r| r["id"].as_u64() == number(id))),
            ["releases", id, "assets"] if number(id).is_some() => {
                match meta
                    .releases
                    .iter()
                    .find(|r| r["id"].as_u64() == number(id))
                {
                    Some(release) => {
                        let items = release["assets"].as_array().cloned().unwrap_or_default();
                        self.page_of(items, &link(&format!("releases/{id}/assets")))
                    }
                    None => not_found(self.quota),
                }
            }
            // `204` when the user may be assigned issues, `404` otherwise.
            ["import", "issues", id] => {
                let api = format!("{}/repos/{}/{}", self.api, repo.spec.owner, repo.spec.name);
                let status = id
                    .parse()
                    .ok()
                    .and_then(|id| super::writes::import_status(&api, meta, id));
                match status {
                    Some(status) => json_response(StatusCode::OK, &status, self.quota, &[]),
                    None => not_found(self.quota),
                }
            }
            ["assignees", login] => {
                if super::writes::assignable(meta, login) {
                    with_rate_headers(
                        Response::builder().status(StatusCode::NO_CONTENT),
                        self.quota,
                    )
                    .body(Body::empty())
                    .expect("valid response")
                } else {
                    not_found(self.quota)
                }
            }
            ["issues"] => {
                let items = meta.issues.iter().filter(in_state).filter(updated_since);
                self.page_of(by_updated(items.cloned().collect()), &link("issues"))
            }
            ["issues", "events"] => self.page_of(meta.issue_events.clone(), &link("issues/events")),
            ["issues", "comments"] => {
                let items = meta.issue_comments.iter().filter(updated_since);
                self.page_of(
                    by_updated(items.cloned().collect()),
                    &link("issues/comments"),
                )
            }
            ["pulls"] => {
                let items = meta.pulls.iter().filter(in_state).cloned().collect();
                self.page_of(by_updated(items), &link("pulls"))
            }
            ["pulls", "comments"] => {
                let items = meta.review_comments.iter().filter(updated_since);
                self.page_of(
                    by_updated(items.cloned().collect()),
                    &link("pulls/comments"),
                )
            }
            ["pulls", number, "reviews"] => match number.parse::<u64>() {
                Ok(n) if meta.pulls.iter().any(|p| p["number"] == n) => {
                    let items = meta.reviews.get(&n).cloned().unwrap_or_default();
                    self.page_of(items, &link(&format!("pulls/{n}/reviews")))
                }
                _ => not_found(self.quota),
            },
            ["labels"] => self.page_of(meta.labels.clone(), &link("labels")),
            ["comments"] => self.page_of(meta.commit_comments.clone(), &link("comments")),
            // The repository's branches from git, by name, each saying whether it is
            // protected; `?protected=true` lists the protected ones only.
            ["branches"] => {
                let only_protected = self.query.get("protected").is_some_and(|p| p == "true");
                let dir = self
                    .shared
                    .root
                    .join(&repo.spec.owner)
                    .join(format!("{}.git", repo.spec.name));
                let mut branches: std::collections::BTreeMap<String, String> =
                    git2::Repository::open_bare(&dir)
                        .ok()
                        .and_then(|git| {
                            let refs = git.references_glob("refs/heads/*").ok()?;
                            Some(
                                refs.flatten()
                                    .filter_map(|r| {
                                        Some((
                                            r.shorthand().ok()?.to_owned(),
                                            r.target()?.to_string(),
                                        ))
                                    })
                                    .collect(),
                            )
                        })
                        .unwrap_or_default();
                // Protected branches the generated data names exist even without git.
                for name in meta.protected_branches.keys() {
                    branches
                        .entry(name.clone())
                        .or_insert_with(|| format!("{:040x}", 1));
                }
                let items = branches
                    .into_iter()
                    .map(|(name, sha)| (meta.protected_branches.contains_key(&name), name, sha))
                    .filter(|(protected, _, _)| *protected || !only_protected)
                    .map(|(protected, name, sha)| json!({ "name": name, "protected": protected, "commit": { "sha": sha } }))
                    .collect();
                self.page_of(items, &link("branches"))
            }
            ["branches", branch, "protection"] => {
                if meta.admin_denied || !self.authed {
                    return self.no_admin_rights();
                }
                // Named as a path segment: percent-encoded (`release%2Fx%23`).
                let branch = super::metadata::decode_segment(branch).unwrap_or_default();
                match meta.protected_branches.get(&branch) {
                    Some(protection) => json_response(StatusCode::OK, protection, self.quota, &[]),
                    None => json_response(
                        StatusCode::NOT_FOUND,
                        &error_body(StatusCode::NOT_FOUND, "Branch not protected"),
                        self.quota,
                        &[],
                    ),
                }
            }
            [kind @ ("collaborators" | "teams" | "hooks" | "keys" | "rulesets")] => {
                if meta.admin_denied || !self.authed {
                    return self.no_admin_rights();
                }
                let items = meta.admin.get(*kind).cloned().unwrap_or_default();
                self.page_of(items, &link(kind))
            }
            ["milestones"] => {
                let items = meta.milestones.iter().filter(in_state).cloned().collect();
                self.page_of(items, &link("milestones"))
            }
            ["releases"] => self.page_of(meta.releases.clone(), &link("releases")),
            ["releases", "assets", id] => {
                let id: u64 = id.parse().unwrap_or(0);
                match meta.assets.get(&id) {
                    Some(bytes) if wants_bytes => {
                        with_rate_headers(Response::builder().status(StatusCode::OK), self.quota)
                            .header(header::CONTENT_TYPE, "application/octet-stream")
                            .body(Body::from(bytes.clone()))
                            .expect("valid response")
                    }
                    Some(_) => {
                        let asset = meta
                            .releases
                            .iter()
                            .flat_map(|r| r["assets"].as_array().cloned().unwrap_or_default())
                            .find(|a| a["id"] == id)
                            .expect("every asset belongs to a release");
                        json_response(StatusCode::OK, &asset, self.quota, &[])
                    }
                    None => not_found(self.quota),
                }
            }
            _ => not_found(self.quota),
        }
    }
}

/// A weak validator for a response body: a hash of its JSON text.
fn etag_of(body: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

pub(crate) fn owner_json(api: &str, base: &str, login: &str, id: u64, kind: OwnerKind) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("{base}/avatars/u/{id}?v=4"),
        "url": format!("{api}/users/{login}"),
        "html_url": format!("{base}/{login}"),
        "repos_url": format!("{api}/users/{login}/repos"),
        "type": if kind == OwnerKind::Org { "Organization" } else { "User" },
        "site_admin": false,
    })
}

/// A repository object with GitHub's field names.
pub(crate) fn repo_json(shared: &Shared, api: &str, r: &RepoEntry, authed: bool) -> Value {
    let s = &r.spec;
    let full = format!("{}/{}", s.owner, s.name);
    let base = &shared.base_url;
    let host = base.split("://").nth(1).unwrap_or(base);
    let mut v = json!({
        "id": r.id,
        "node_id": format!("R_kgDO{}", r.id),
        "name": s.name,
        "full_name": full,
        "private": s.private,
        "owner": owner_json(api, base, &s.owner, r.owner_id, r.owner_kind),
        "html_url": format!("{base}/{full}"),
        "description": s.description,
        "fork": s.fork,
        "url": format!("{api}/repos/{full}"),
        "git_url": format!("git://{host}/{full}.git"),
        "ssh_url": format!("git@{host}:{full}.git"),
        "clone_url": format!("{base}/{full}.git"),
        "svn_url": format!("{base}/{full}"),
        "mirror_url": null,
        "homepage": s.homepage,
        "language": null,
        "size": r.size_kb,
        "stargazers_count": 0,
        "watchers_count": 0,
        "forks_count": 0,
        "open_issues_count": 0,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "has_issues": s.has_issues,
        "has_projects": s.has_projects,
        "has_downloads": true,
        "has_wiki": s.has_wiki,
        "has_pages": false,
        "has_discussions": r.meta.discussions.enabled,
        "archived": s.archived,
        "disabled": false,
        "is_template": false,
        "allow_forking": true,
        "web_commit_signoff_required": false,
        "license": null,
        "topics": s.topics,
        "visibility": s.visibility(),
        "default_branch": s.default_branch,
        "created_at": r.created_at.to_string(),
        "updated_at": r.pushed_at.to_string(),
        "pushed_at": r.pushed_at.to_string(),
    });
    if authed {
        let admin = r.token_admin;
        v["permissions"] = json!({ "admin": admin, "maintain": admin, "push": admin, "triage": admin, "pull": true });
        // GitHub shows merge settings to those who may push.
        v["allow_squash_merge"] = json!(s.allow_squash_merge);
        v["allow_merge_commit"] = json!(s.allow_merge_commit);
        v["allow_rebase_merge"] = json!(s.allow_rebase_merge);
        v["allow_auto_merge"] = json!(s.allow_auto_merge);
        v["delete_branch_on_merge"] = json!(s.delete_branch_on_merge);
    }
    v
}
