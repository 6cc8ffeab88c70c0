//! GitHub's write side, enough to recreate a repository and its data: repositories
//! (create, update, topics), labels, milestones, issues and their comments, pull
//! requests, releases, and release assets (uploaded on the upload origin, see
//! [`super::uploads`]). Written objects join the vectors the read side serves, in the
//! generated objects' shapes, so a later backup reads them back as it reads anything.
//!
//! Faithful where a restore tool depends on it: GitHub's statuses and error bodies
//! (`422 Validation Failed` with `errors[]` of `resource`/`code`/`field`,
//! `Invalid request.` for a body that does not fit the schema, `400 Problems parsing
//! JSON`), one number sequence shared by issues and pull requests, never reused,
//! labels created for unknown names on an issue, assignees silently dropped when not
//! assignable, pull requests checked against the real git repository.
//!
//! Authentication, rate limits and the content-creation limit are checked before a
//! write gets here (see [`super::api`]).

mod access;
mod import;
mod issues;
mod releases;
mod repos;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::TOKEN_USER;
use super::api::{Quota, json_response, with_rate_headers};
use super::metadata::{RepoMeta, decode_segment, user_of};
use super::state::{Inner, OwnerKind, RepoEntry, Shared, key};

const DOCS: &str = "https://docs.github.com/rest";

/// What every write needs from the request that carries it.
pub(crate) struct Writer<'a> {
    pub shared: &'a Shared,
    /// The API's base URL (with `/api/v3` for GitHub Enterprise).
    pub api: &'a str,
    pub quota: &'a Quota,
}

/// A refusal, in GitHub's words.
pub(crate) struct Fail {
    status: StatusCode,
    body: Value,
}

type Result<T> = std::result::Result<T, Fail>;

impl Fail {
    fn new(status: StatusCode, message: &str, doc: &str) -> Fail {
        Fail {
            status,
            body: json!({ "message": message, "documentation_url": doc, "status": status.as_u16().to_string() }),
        }
    }

    fn not_found(doc: &str) -> Fail {
        Fail::new(StatusCode::NOT_FOUND, "Not Found", doc)
    }

    /// `422 Validation Failed` with GitHub's `errors` (`resource`, `code`, `field`…).
    fn validation(doc: &str, errors: Value) -> Fail {
        Fail::failed("Validation Failed", doc, errors)
    }

    /// `422` with `message` and `errors`.
    fn failed(message: &str, doc: &str, errors: Value) -> Fail {
        let errors = match errors {
            Value::Array(_) => errors,
            one => json!([one]),
        };
        Fail {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({ "message": message, "errors": errors, "documentation_url": doc, "status": "422" }),
        }
    }

    /// `422` for a body that does not fit the endpoint's schema.
    fn invalid(doc: &str, detail: &str) -> Fail {
        Fail::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("Invalid request.\n\n{detail}"),
            doc,
        )
    }

    /// What GitHub answers to writes into an archived repository.
    fn archived() -> Fail {
        Fail::new(
            StatusCode::FORBIDDEN,
            "Repository was archived so is read-only.",
            DOCS,
        )
    }

    fn internal(error: impl std::fmt::Display) -> Fail {
        Fail::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("fake GitHub: {error}"),
            DOCS,
        )
    }

    pub(crate) fn into_response(self, quota: &Quota) -> Response {
        json_response(self.status, &self.body, quota, &[])
    }
}

/// What a write answered: its status and body, and the kind it created (for
/// [`Stats::writes_by_kind`](super::Stats::writes_by_kind)).
struct Done {
    status: StatusCode,
    body: Option<Value>,
    created: Option<&'static str>,
}

impl Done {
    fn created(kind: &'static str, body: Value) -> Done {
        Done {
            status: StatusCode::CREATED,
            body: Some(body),
            created: Some(kind),
        }
    }

    fn ok(body: Value) -> Done {
        Done {
            status: StatusCode::OK,
            body: Some(body),
            created: None,
        }
    }

    fn no_content() -> Done {
        Done {
            status: StatusCode::NO_CONTENT,
            body: None,
            created: None,
        }
    }
}

/// A JSON request body, read with the endpoint's schema in mind.
struct Req {
    json: Map<String, Value>,
    /// The endpoint's documentation, which GitHub's error bodies point at.
    doc: &'static str,
}

impl Req {
    fn parse(bytes: &[u8], doc: &'static str) -> Result<Req> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Req {
                json: Map::new(),
                doc,
            });
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(json)) => Ok(Req { json, doc }),
            Ok(other) => Err(Fail::invalid(
                doc,
                &format!("For 'links/0/schema', {other} is not an object."),
            )),
            Err(_) => Err(Fail::new(
                StatusCode::BAD_REQUEST,
                "Problems parsing JSON",
                doc,
            )),
        }
    }

    /// Whether `field` was given (`null` included).
    fn has(&self, field: &str) -> bool {
        self.json.contains_key(field)
    }

    fn type_error(&self, field: &str, value: &Value, what: &str) -> Fail {
        let shown = if value.is_null() {
            "nil".to_owned()
        } else {
            value.to_string()
        };
        Fail::invalid(
            self.doc,
            &format!("For 'properties/{field}', {shown} is not {what}."),
        )
    }

    /// An optional string (`null` as absent). GitHub takes numbers where it wants
    /// text (`"title": 42`).
    fn string(&self, field: &str) -> Result<Option<String>> {
        match self.json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.type_error(field, other, "a string")),
        }
    }

    fn required(&self, field: &str) -> Result<String> {
        if !self.has(field) {
            return Err(Fail::invalid(
                self.doc,
                &format!("\"{field}\" wasn't supplied."),
            ));
        }
        match self.json.get(field) {
            Some(Value::Null) => Err(self.type_error(field, &Value::Null, "a string")),
            _ => Ok(self.string(field)?.unwrap_or_default()),
        }
    }

    fn boolean(&self, field: &str) -> Result<Option<bool>> {
        match self.json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.type_error(field, other, "a boolean")),
        }
    }

    /// An optional list of names: strings, or objects with a `name` (as GitHub takes
    /// `labels`).
    fn names(&self, field: &str) -> Result<Option<Vec<String>>> {
        match self.json.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Object(o) if o.get("name").is_some_and(Value::is_string) => {
                        Ok(o["name"].as_str().unwrap_or_default().to_owned())
                    }
                    other => Err(self.type_error(field, other, "a string")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(other) => Err(self.type_error(field, other, "an array")),
        }
    }
}

/// Who the token is, as GitHub embeds a user (`user`, `author`, `creator`).
fn me(inner: &Inner) -> Value {
    user_of(TOKEN_USER, inner.owner(TOKEN_USER).map_or(0, |o| o.id))
}

/// Whether `login` may be assigned issues in the repository: the token's user and the
/// collaborators.
pub(crate) fn assignable(meta: &RepoMeta, login: &str) -> bool {
    login.eq_ignore_ascii_case(TOKEN_USER) || collaborator(meta, login).is_some()
}

fn collaborator<'a>(meta: &'a RepoMeta, login: &str) -> Option<&'a Value> {
    meta.admin.get("collaborators").and_then(|c| {
        c.iter().find(|c| {
            c["login"]
                .as_str()
                .is_some_and(|l| l.eq_ignore_ascii_case(login))
        })
    })
}

/// A repository being written to: where its URLs and git data are, and who writes.
struct At<'a> {
    w: &'a Writer<'a>,
    owner: String,
    name: String,
    /// `<api>/repos/{owner}/{name}`.
    api: String,
    /// `<web>/{owner}/{name}`.
    web: String,
    git_dir: PathBuf,
    me: Value,
    /// The token's `author_association` here: `OWNER` in its own repositories.
    association: &'static str,
}

impl<'a> At<'a> {
    fn new(w: &'a Writer<'a>, repo: &RepoEntry, me: Value) -> At<'a> {
        let (owner, name) = (repo.spec.owner.clone(), repo.spec.name.clone());
        At {
            api: format!("{}/repos/{owner}/{name}", w.api),
            web: format!("{}/{owner}/{name}", w.shared.base_url),
            git_dir: w.shared.root.join(&owner).join(format!("{name}.git")),
            association: if owner.eq_ignore_ascii_case(TOKEN_USER) {
                "OWNER"
            } else {
                "MEMBER"
            },
            w,
            owner,
            name,
            me,
        }
    }

    fn git(&self) -> Result<git2::Repository> {
        git2::Repository::open_bare(&self.git_dir).map_err(Fail::internal)
    }
}

pub(crate) use import::status as import_status;

/// Answers a write to the API (`route` split into segments, without `/api/v3`).
pub(crate) fn handle(
    w: &Writer,
    inner: &mut Inner,
    method: &Method,
    segments: &[&str],
    body: &[u8],
) -> Response {
    match route(w, inner, method, segments, body) {
        Ok(done) => {
            if let Some(kind) = done.created {
                inner.stats.created(kind);
                // What the organization's feed shows of it (labels, milestones,
                // protection, teams: nothing, as on GitHub).
                let event = match kind {
                    "issues" | "issue-imports" => Some("IssuesEvent"),
                    "issue-comments" => Some("IssueCommentEvent"),
                    "pulls" => Some("PullRequestEvent"),
                    "releases" => Some("ReleaseEvent"),
                    "collaborators" => Some("MemberEvent"),
                    _ => None,
                };
                if let (Some(event), ["repos", owner, name, ..]) = (event, segments) {
                    inner.publish(owner, name, event);
                }
            }
            match done.body {
                Some(body) => json_response(done.status, &body, w.quota, &[]),
                None => with_rate_headers(Response::builder().status(done.status), w.quota)
                    .body(Body::empty())
                    .expect("valid response"),
            }
        }
        Err(fail) => fail.into_response(w.quota),
    }
}

fn route(
    w: &Writer,
    inner: &mut Inner,
    method: &Method,
    segments: &[&str],
    body: &[u8],
) -> Result<Done> {
    match (method, segments) {
        (&Method::POST, ["orgs", org, "repos"]) => {
            let doc = repos::DOC_CREATE_ORG;
            match inner.owner(org) {
                Some(o) if o.kind == OwnerKind::Org => {
                    let login = o.login.clone();
                    repos::create(w, inner, &login, Req::parse(body, doc)?)
                }
                _ => Err(Fail::not_found(doc)),
            }
        }
        (&Method::PUT, ["orgs", org, "teams", slug, "repos", owner, name]) => {
            let doc = access::DOC_TEAM;
            if !inner.owner(org).is_some_and(|o| o.kind == OwnerKind::Org) {
                return Err(Fail::not_found(doc));
            }
            let Some(repo) = inner.repos.get_mut(&key(owner, name)) else {
                return Err(Fail::not_found(doc));
            };
            access::add_team(&mut repo.meta, slug, Req::parse(body, doc)?)
        }
        (&Method::POST, ["user", "repos"]) => {
            let req = Req::parse(body, repos::DOC_CREATE_USER)?;
            repos::create(w, inner, TOKEN_USER, req)
        }
        (_, ["repos", owner, name, rest @ ..]) => {
            let me = me(inner);
            let Some(repo) = inner.repos.get_mut(&key(owner, name)) else {
                return Err(Fail::not_found(DOCS));
            };
            // Only unarchiving is allowed in an archived repository.
            if repo.spec.archived && !(method == Method::PATCH && rest.is_empty()) {
                return Err(Fail::archived());
            }
            let at = At::new(w, repo, me);
            repo_route(&at, repo, method, rest, body)
        }
        _ => Err(Fail::not_found(DOCS)),
    }
}

/// `/repos/{owner}/{name}/<rest>`.
fn repo_route(
    at: &At,
    repo: &mut RepoEntry,
    method: &Method,
    rest: &[&str],
    body: &[u8],
) -> Result<Done> {
    let number = |n: &str, doc: &str| n.parse::<u64>().map_err(|_| Fail::not_found(doc));
    let meta = &mut repo.meta;
    match (method, rest) {
        (&Method::PATCH, []) => repos::update(at, repo, Req::parse(body, repos::DOC_UPDATE)?),
        (&Method::PUT, ["topics"]) => repos::topics(repo, Req::parse(body, repos::DOC_TOPICS)?),
        (&Method::PUT, ["branches", branch, "protection"]) => {
            let doc = access::DOC_PROTECTION;
            let branch = decode_segment(branch).ok_or_else(|| Fail::not_found(doc))?;
            access::protect(at, meta, &branch, Req::parse(body, doc)?)
        }
        // Whether GitHub Actions may run in the repository (`{enabled}`): `204`.
        (&Method::PUT, ["actions", "permissions"]) => {
            let req = Req::parse(body, access::DOC_ACTIONS)?;
            if req.boolean("enabled")?.is_none() {
                return Err(Fail::invalid(
                    access::DOC_ACTIONS,
                    "\"enabled\" wasn't supplied.",
                ));
            }
            Ok(Done {
                created: Some("actions-permissions"),
                ..Done::no_content()
            })
        }
        (&Method::PUT, ["collaborators", login]) => {
            let doc = access::DOC_COLLABORATOR;
            access::add_collaborator(meta, login, Req::parse(body, doc)?)
        }
        (&Method::POST, ["labels"]) => {
            issues::create_label(at, meta, Req::parse(body, issues::DOC_LABEL_CREATE)?)
        }
        (&Method::PATCH, ["labels", name]) => {
            let doc = issues::DOC_LABEL_UPDATE;
            let name = decode_segment(name).ok_or_else(|| Fail::not_found(doc))?;
            issues::update_label(at, meta, &name, Req::parse(body, doc)?)
        }
        (&Method::POST, ["milestones"]) => {
            let req = Req::parse(body, issues::DOC_MILESTONE_CREATE)?;
            issues::create_milestone(at, meta, req)
        }
        (&Method::PATCH, ["milestones", n]) => {
            let doc = issues::DOC_MILESTONE_UPDATE;
            let n = number(n, doc)?;
            issues::update_milestone(meta, n, Req::parse(body, doc)?)
        }
        (&Method::DELETE, ["milestones", n]) => {
            issues::delete_milestone(meta, number(n, issues::DOC_MILESTONE_DELETE)?)
        }
        (&Method::POST, ["import", "issues"]) if !at.w.shared.without_issue_import => {
            import::start(at, meta, Req::parse(body, import::DOC)?)
        }
        (&Method::POST, ["issues"]) => {
            issues::create_issue(at, meta, Req::parse(body, issues::DOC_ISSUE_CREATE)?)
        }
        (&Method::PATCH, ["issues", n]) => {
            let doc = issues::DOC_ISSUE_UPDATE;
            let n = number(n, doc)?;
            issues::update_issue(at, meta, n, Req::parse(body, doc)?)
        }
        (&Method::POST, ["issues", n, "comments"]) => {
            let doc = issues::DOC_COMMENT_CREATE;
            let n = number(n, doc)?;
            issues::create_comment(at, meta, n, Req::parse(body, doc)?)
        }
        (&Method::POST, ["pulls"]) => {
            issues::create_pull(at, meta, Req::parse(body, issues::DOC_PULL_CREATE)?)
        }
        (&Method::PATCH, ["pulls", n]) => {
            let doc = issues::DOC_PULL_UPDATE;
            let n = number(n, doc)?;
            issues::update_pull(at, meta, n, Req::parse(body, doc)?)
        }
        (&Method::POST, ["releases"]) => {
            let req = Req::parse(body, releases::DOC_CREATE)?;
            releases::create(at, &repo.spec.default_branch, meta, req)
        }
        (&Method::PATCH, ["releases", id]) => {
            let doc = releases::DOC_UPDATE;
            let id = number(id, doc)?;
            releases::update(at, meta, id, Req::parse(body, doc)?)
        }
        _ => Err(Fail::not_found(DOCS)),
    }
}

/// `POST <uploads>/repos/{owner}/{name}/releases/{id}/assets?name=&label=`: stores
/// `bytes` as a new asset of the release. Authentication and limits are checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upload_asset(
    w: &Writer,
    inner: &mut Inner,
    owner: &str,
    name: &str,
    release: &str,
    asset_name: Option<String>,
    label: Option<String>,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response {
    let me = me(inner);
    let result = match inner.repos.get_mut(&key(owner, name)) {
        None => Err(Fail::not_found(releases::DOC_UPLOAD)),
        Some(repo) if repo.spec.archived => Err(Fail::archived()),
        Some(repo) => match release.parse::<u64>() {
            Ok(id) => {
                let at = At::new(w, repo, me);
                releases::add_asset(
                    &at,
                    &mut repo.meta,
                    id,
                    asset_name,
                    label,
                    content_type,
                    bytes,
                )
            }
            Err(_) => Err(Fail::not_found(releases::DOC_UPLOAD)),
        },
    };
    match result {
        Ok(asset) => {
            inner.stats.created("assets");
            json_response(StatusCode::CREATED, &asset, w.quota, &[])
        }
        Err(fail) => fail.into_response(w.quota),
    }
}
