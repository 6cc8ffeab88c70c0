//! GitHub's GraphQL API, `POST {api}/graphql` (and `/api/graphql` with `enterprise`,
//! as GitHub Enterprise serves it). A query is parsed, validated against GitHub's
//! schema cut down to what the fake serves (`graphql_schema.graphql`), costed as
//! GitHub costs it, charged to its own budget of points, and executed over the fake's
//! data: repositories and owners, discussions ([`super::discussions`]) and Projects v2
//! ([`super::projects`]).
//!
//! Faithful where a reader depends on it:
//! - the token is required, even for public data (`401` without it);
//! - queries and shorthand queries, `operationName`, variables with defaults, aliases,
//!   inline and named fragments (on objects, interfaces and unions), `__typename`,
//!   `@skip`/`@include`; no mutations, subscriptions or introspection;
//! - validation errors as GitHub words them (`Field 'x' doesn't exist on type 'T'`,
//!   unknown or missing arguments, selections on scalars…), with `locations`, `path`
//!   and `extensions.code`, and no `data`;
//! - connections with `first`/`last` (one required, at most 100: GitHub's
//!   `MISSING_PAGINATION_BOUNDARIES`, `EXCESSIVE_PAGINATION`), `after`/`before` with
//!   opaque base64 cursors that keep their place when items move, `orderBy`,
//!   `totalCount`, `nodes`, `edges { cursor node }` and `pageInfo`;
//! - execution errors with GitHub's `type` (`NOT_FOUND`, `INSUFFICIENT_SCOPES`, …)
//!   beside partial `data`, nulls propagating to the nearest nullable field;
//! - a budget of points per window (GitHub: 5,000 an hour) separate from REST's: each
//!   query costs the requests its connections imply divided by 100 (at least 1),
//!   `rateLimit { … }` answers, `x-ratelimit-*` headers with `x-ratelimit-resource:
//!   graphql`; past the budget, GitHub's `200` with a `RATE_LIMITED` error.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use graphql_parser::query as q;
use graphql_parser::schema as s;
use serde_json::{Map, Value, json};

use super::api::{Auth, auth_of, now_epoch};
use super::state::{Inner, OwnerKind, RepoEntry, Shared};

/// The schema served: GitHub's, cut down (see the file's header).
const SCHEMA: &str = include_str!("graphql_schema.graphql");

/// GitHub's budget of GraphQL points per window for a token.
const DEFAULT_POINTS: u64 = 5000;

/// The largest `first` or `last` GitHub takes.
const MAX_PAGE: i64 = 100;

/// The most nodes one query may ask for.
const MAX_NODES: u64 = 500_000;

const DOCS: &str = "https://docs.github.com/graphql";

/// The GraphQL side of the fake's state.
#[derive(Debug, Default)]
pub(crate) struct GraphqlState {
    /// Points per window (GitHub's 5,000 when `None`).
    pub limit: Option<u64>,
    /// The window the points below were used in.
    window: u64,
    used: u64,
    faults: VecDeque<Fault>,
    /// The token lacks `read:project`: `projectsV2`/`projectV2` answer
    /// `INSUFFICIENT_SCOPES`.
    pub deny_projects: bool,
    pub projects: Vec<super::projects::Project>,
}

/// An answer forced on the next GraphQL requests.
#[derive(Debug, Clone, Copy)]
enum Fault {
    RateLimited { reset_after: Duration },
    Secondary { retry_after: Duration },
    Status(u16),
}

impl super::FakeGitHub {
    /// The next `n` GraphQL requests get GitHub's rate-limited answer (`200`, a
    /// `RATE_LIMITED` error, `x-ratelimit-remaining: 0`) with `x-ratelimit-reset`
    /// `reset_after` from then; they cost nothing.
    pub fn graphql_rate_limit_next(&self, n: u32, reset_after: Duration) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner
                .graphql
                .faults
                .push_back(Fault::RateLimited { reset_after });
        }
    }

    /// The next `n` GraphQL requests get a secondary rate-limit `403` with `retry-after`.
    pub fn graphql_secondary_limit_next(&self, n: u32, retry_after: Duration) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner
                .graphql
                .faults
                .push_back(Fault::Secondary { retry_after });
        }
    }

    /// The next `n` GraphQL requests get `status` (e.g. `502`, with the body GitHub
    /// sends when a query times out).
    pub fn graphql_error_next(&self, n: u32, status: u16) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.graphql.faults.push_back(Fault::Status(status));
        }
    }

    /// Whether the token lacks the `read:project` scope: then every `projectsV2` and
    /// `projectV2` field answers `null` with an `INSUFFICIENT_SCOPES` error, the rest
    /// of the query its data.
    pub fn deny_projects(&self, deny: bool) {
        self.shared.lock().graphql.deny_projects = deny;
    }

    /// GraphQL points left in the current window.
    pub fn graphql_points_remaining(&self) -> u64 {
        let mut inner = self.shared.lock();
        let (limit, used, _) = window(&self.shared, &mut inner);
        limit.saturating_sub(used)
    }
}

/// Whether `path` is the GraphQL endpoint.
pub(crate) fn is_graphql_path(shared: &Shared, method: &Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    *method == Method::POST
        && (path == format!("{}/graphql", shared.api_prefix)
            || (!shared.api_prefix.is_empty() && path == "/api/graphql"))
}

/// The budget as it stands: limit, points used, and when the window resets.
fn window(shared: &Shared, inner: &mut Inner) -> (u64, u64, u64) {
    let window_secs = shared.rate_window.as_secs().max(1);
    let window = now_epoch().saturating_sub(shared.started_epoch) / window_secs;
    if window != inner.graphql.window {
        inner.graphql.window = window;
        inner.graphql.used = 0;
    }
    let limit = inner.graphql.limit.unwrap_or(DEFAULT_POINTS);
    let reset = shared.started_epoch + (window + 1) * window_secs;
    (limit, inner.graphql.used, reset)
}

/// The budget as `GET /rate_limit` reports it under `resources.graphql`.
pub(crate) fn budget(shared: &Shared, inner: &Inner) -> Value {
    let window_secs = shared.rate_window.as_secs().max(1);
    let window = now_epoch().saturating_sub(shared.started_epoch) / window_secs;
    let used = if window == inner.graphql.window {
        inner.graphql.used
    } else {
        0
    };
    let limit = inner.graphql.limit.unwrap_or(DEFAULT_POINTS);
    json!({
        "limit": limit,
        "remaining": limit.saturating_sub(used),
        "reset": shared.started_epoch + (window + 1) * window_secs,
        "used": used,
        "resource": "graphql",
    })
}

struct Rate {
    limit: u64,
    used: u64,
    reset: u64,
}

fn reply(
    status: StatusCode,
    body: &Value,
    rate: Option<&Rate>,
    extra: &[(&str, String)],
) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    if let Some(r) = rate {
        for (name, value) in [
            ("x-ratelimit-limit", r.limit),
            ("x-ratelimit-remaining", r.limit.saturating_sub(r.used)),
            ("x-ratelimit-reset", r.reset),
            ("x-ratelimit-used", r.used),
        ] {
            builder = builder.header(name, value.to_string());
        }
        builder = builder.header("x-ratelimit-resource", "graphql");
    }
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn rate_limited_body() -> Value {
    json!({ "errors": [{
        "type": "RATE_LIMITED",
        "message": "API rate limit exceeded for user ID 1001.",
    }] })
}

pub(crate) async fn handle(shared: &Shared, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    // Before locking: checking an installation token locks the state.
    let auth = auth_of(shared, &parts.headers);
    let mut inner = shared.lock();
    inner.stats.graphql_requests += 1;
    match auth {
        Auth::Token => {}
        Auth::Anonymous => {
            let body = json!({
                "message": "This endpoint requires you to be authenticated.",
                "documentation_url": "https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql",
            });
            return reply(StatusCode::UNAUTHORIZED, &body, None, &[]);
        }
        Auth::Bad => {
            let body = json!({ "message": "Bad credentials", "documentation_url": DOCS });
            return reply(StatusCode::UNAUTHORIZED, &body, None, &[]);
        }
    }
    let (limit, used, reset) = window(shared, &mut inner);
    let mut rate = Rate { limit, used, reset };
    if let Some(fault) = inner.graphql.faults.pop_front() {
        return match fault {
            Fault::RateLimited { reset_after } => {
                inner.stats.graphql_rate_limited += 1;
                rate.used = rate.limit;
                rate.reset = now_epoch() + reset_after.as_secs();
                reply(StatusCode::OK, &rate_limited_body(), Some(&rate), &[])
            }
            Fault::Secondary { retry_after } => {
                inner.stats.graphql_rate_limited += 1;
                let body = json!({
                    "documentation_url": "https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api#secondary-rate-limits",
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
                });
                let retry = retry_after.as_secs().to_string();
                reply(
                    StatusCode::FORBIDDEN,
                    &body,
                    Some(&rate),
                    &[("retry-after", retry)],
                )
            }
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                let body = json!({ "data": null, "errors": [{
                    "message": "Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `0000:0000:0000000:0000000:00000000` when reporting this issue.",
                }] });
                reply(status, &body, Some(&rate), &[])
            }
        };
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let body = json!({ "message": "Problems parsing JSON", "documentation_url": DOCS });
            return reply(StatusCode::BAD_REQUEST, &body, Some(&rate), &[]);
        }
    };
    let (status, answer) = answer(shared, &mut inner, &request, &mut rate);
    reply(status, &answer, Some(&rate), &[])
}

/// The answer to one request (`{"query", "variables", "operationName"}`), charging
/// its cost to the budget.
fn answer(
    shared: &Shared,
    inner: &mut Inner,
    request: &Value,
    rate: &mut Rate,
) -> (StatusCode, Value) {
    let Some(text) = request["query"].as_str() else {
        let message = "A query attribute must be specified and must be a string.";
        return (
            StatusCode::OK,
            json!({ "errors": [{ "message": message }] }),
        );
    };
    let doc = match q::parse_query::<String>(text) {
        Ok(doc) => doc.into_static(),
        Err(e) => return (StatusCode::OK, parse_error(&e.to_string())),
    };
    let variables = match &request["variables"] {
        Value::Object(map) => map.clone(),
        // GitHub also takes the variables as a JSON string.
        Value::String(s) if !s.trim().is_empty() => match serde_json::from_str(s) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let operation_name = request["operationName"].as_str();
    let mut fragments = HashMap::new();
    let mut operations = Vec::new();
    for definition in &doc.definitions {
        match definition {
            q::Definition::Fragment(f) => {
                fragments.insert(f.name.as_str(), f);
            }
            q::Definition::Operation(op) => operations.push(op),
        }
    }
    let chosen = match operation_name {
        Some(name) => operations.iter().find(|op| op_name(op) == Some(name)),
        None if operations.len() == 1 => operations.first(),
        None => {
            let message = "An operation name is required";
            return (
                StatusCode::OK,
                json!({ "errors": [{ "message": message }] }),
            );
        }
    };
    let Some(op) = chosen.copied() else {
        let message = format!(
            "No operation named \"{}\"",
            operation_name.unwrap_or_default()
        );
        return (
            StatusCode::OK,
            json!({ "errors": [{ "message": message }] }),
        );
    };
    let (label, root, definitions, set) = match op {
        q::OperationDefinition::SelectionSet(set) => ("query".to_owned(), "Query", &[][..], set),
        q::OperationDefinition::Query(query) => (
            op_label("query", query.name.as_deref()),
            "Query",
            &query.variable_definitions[..],
            &query.selection_set,
        ),
        q::OperationDefinition::Mutation(m) => (
            op_label("mutation", m.name.as_deref()),
            "Mutation",
            &m.variable_definitions[..],
            &m.selection_set,
        ),
        q::OperationDefinition::Subscription(s) => (
            op_label("subscription", s.name.as_deref()),
            "Subscription",
            &s.variable_definitions[..],
            &s.selection_set,
        ),
    };
    if root != "Query" {
        let message = format!("Schema is not configured for {}s", root.to_lowercase());
        return (
            StatusCode::OK,
            json!({ "errors": [{ "message": message }] }),
        );
    }
    let vars = match coerce_variables(schema(), definitions, &variables) {
        Ok(vars) => vars,
        Err(errors) => return (StatusCode::OK, json!({ "errors": errors })),
    };
    let mut validator = Validator {
        schema: schema(),
        fragments: &fragments,
        declared: definitions.iter().map(|d| d.name.as_str()).collect(),
        label: &label,
        errors: Vec::new(),
        spreading: HashSet::new(),
        used_variables: HashSet::new(),
        used_fragments: HashSet::new(),
    };
    validator.selection_set("Query", set, &mut vec![json!(label)]);
    validator.unused(definitions);
    if !validator.errors.is_empty() {
        return (StatusCode::OK, json!({ "errors": validator.errors }));
    }
    let deny_projects = inner.graphql.deny_projects;
    let mut exec = Exec {
        schema: schema(),
        fragments: &fragments,
        vars,
        errors: Vec::new(),
        world: World {
            inner: &*inner,
            web: &shared.base_url,
            rate: Value::Null,
            deny_projects,
        },
    };
    let (requests, nodes, dry_run) = exec.cost(set);
    if nodes > MAX_NODES {
        let message = format!(
            "This query requests up to {nodes} possible nodes which exceeds the maximum limit of {MAX_NODES}."
        );
        let error = json!({ "type": "MAX_NODE_LIMIT_EXCEEDED", "message": message });
        return (StatusCode::OK, json!({ "errors": [error] }));
    }
    let cost = ((requests + 50) / 100).max(1);
    if !dry_run && rate.used + cost > rate.limit {
        drop(exec);
        inner.stats.graphql_rate_limited += 1;
        rate.used = rate.used.max(rate.limit);
        return (StatusCode::OK, rate_limited_body());
    }
    let used = if dry_run { rate.used } else { rate.used + cost };
    exec.world.rate = json!({
        "cost": cost,
        "limit": rate.limit,
        "nodeCount": nodes,
        "remaining": rate.limit.saturating_sub(used),
        "resetAt": jiff::Timestamp::from_second(rate.reset as i64).map(|t| t.to_string()).unwrap_or_default(),
        "used": used,
    });
    let data = exec
        .select("Query", &Value::Null, &[set], &mut Vec::new())
        .unwrap_or(Value::Null);
    let errors = std::mem::take(&mut exec.errors);
    drop(exec);
    if !dry_run {
        inner.graphql.used += cost;
        inner.stats.graphql_points += cost;
        rate.used = used;
    }
    let mut body = json!({ "data": data });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    (StatusCode::OK, body)
}

fn op_label(kind: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{kind} {name}"),
        None => kind.to_owned(),
    }
}

fn op_name<'q>(op: &'q q::OperationDefinition<'static, String>) -> Option<&'q str> {
    match op {
        q::OperationDefinition::SelectionSet(_) => None,
        q::OperationDefinition::Query(x) => x.name.as_deref(),
        q::OperationDefinition::Mutation(x) => x.name.as_deref(),
        q::OperationDefinition::Subscription(x) => x.name.as_deref(),
    }
}

/// GitHub's answer to a query that does not parse, from the parser's message
/// (`Parse error at 1:10 …`).
fn parse_error(message: &str) -> Value {
    let text = message.trim_start_matches("query parse error: ");
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let position = head.rsplit(' ').next().unwrap_or_default();
    let (line, column) = position.split_once(':').unwrap_or(("1", "1"));
    let (line, column) = (
        line.parse::<u64>().unwrap_or(1),
        column.parse::<u64>().unwrap_or(1),
    );
    let detail = lines.next().unwrap_or("unexpected end of query").trim();
    json!({ "errors": [{
        "message": format!("Parse error on {detail} at [{line}, {column}]"),
        "locations": [{ "line": line, "column": column }],
    }] })
}

// ---- The schema ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Ty {
    Named(String),
    List(Box<Ty>),
    NonNull(Box<Ty>),
}

impl Ty {
    fn name(&self) -> &str {
        match self {
            Ty::Named(n) => n,
            Ty::List(t) | Ty::NonNull(t) => t.name(),
        }
    }

    fn nullable(&self) -> bool {
        !matches!(self, Ty::NonNull(_))
    }

    fn from_ast<'a>(t: &s::Type<'a, String>) -> Ty {
        match t {
            s::Type::NamedType(n) => Ty::Named(n.clone()),
            s::Type::ListType(t) => Ty::List(Box::new(Ty::from_ast(t))),
            s::Type::NonNullType(t) => Ty::NonNull(Box::new(Ty::from_ast(t))),
        }
    }
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::Named(n) => write!(f, "{n}"),
            Ty::List(t) => write!(f, "[{t}]"),
            Ty::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    Enum,
    Object,
    Interface,
    Union,
    Input,
}

#[derive(Debug)]
struct TypeDef {
    kind: Kind,
    /// An object's or interface's fields, an input object's fields (no arguments).
    fields: BTreeMap<String, FieldDef>,
    interfaces: Vec<String>,
    members: Vec<String>,
    /// An enum's values.
    values: Vec<String>,
}

#[derive(Debug)]
struct FieldDef {
    ty: Ty,
    args: Vec<ArgDef>,
}

#[derive(Debug)]
struct ArgDef {
    name: String,
    ty: Ty,
    default: Option<Value>,
}

#[derive(Debug)]
struct Schema {
    types: HashMap<String, TypeDef>,
}

fn schema() -> &'static Schema {
    static PARSED: OnceLock<Schema> = OnceLock::new();
    PARSED.get_or_init(|| Schema::parse(SCHEMA))
}

/// A constant (no variables) as JSON.
fn constant<'a>(v: &q::Value<'a, String>) -> Value {
    match v {
        q::Value::Variable(_) | q::Value::Null => Value::Null,
        q::Value::Int(n) => json!(n.as_i64()),
        q::Value::Float(f) => json!(f),
        q::Value::String(s) => json!(s),
        q::Value::Boolean(b) => json!(b),
        q::Value::Enum(e) => json!(e),
        q::Value::List(items) => Value::Array(items.iter().map(constant).collect()),
        q::Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), constant(v))).collect())
        }
    }
}

impl Schema {
    fn parse(sdl: &str) -> Schema {
        let doc = graphql_parser::parse_schema::<String>(sdl).expect("the served schema parses");
        let mut types = HashMap::new();
        for name in ["String", "Int", "Float", "Boolean", "ID"] {
            types.insert(name.to_owned(), TypeDef::new(Kind::Scalar));
        }
        let fields = |list: &[s::Field<'_, String>]| {
            list.iter()
                .map(|f| {
                    let args = f
                        .arguments
                        .iter()
                        .map(|a| ArgDef {
                            name: a.name.clone(),
                            ty: Ty::from_ast(&a.value_type),
                            default: a.default_value.as_ref().map(constant),
                        })
                        .collect();
                    let ty = Ty::from_ast(&f.field_type);
                    (f.name.clone(), FieldDef { ty, args })
                })
                .collect()
        };
        for definition in &doc.definitions {
            let s::Definition::TypeDefinition(t) = definition else {
                continue;
            };
            let (name, def) = match t {
                s::TypeDefinition::Scalar(t) => (&t.name, TypeDef::new(Kind::Scalar)),
                s::TypeDefinition::Enum(t) => (
                    &t.name,
                    TypeDef {
                        values: t.values.iter().map(|v| v.name.clone()).collect(),
                        ..TypeDef::new(Kind::Enum)
                    },
                ),
                s::TypeDefinition::Object(t) => (
                    &t.name,
                    TypeDef {
                        fields: fields(&t.fields),
                        interfaces: t.implements_interfaces.clone(),
                        ..TypeDef::new(Kind::Object)
                    },
                ),
                s::TypeDefinition::Interface(t) => (
                    &t.name,
                    TypeDef {
                        fields: fields(&t.fields),
                        ..TypeDef::new(Kind::Interface)
                    },
                ),
                s::TypeDefinition::Union(t) => (
                    &t.name,
                    TypeDef {
                        members: t.types.clone(),
                        ..TypeDef::new(Kind::Union)
                    },
                ),
                s::TypeDefinition::InputObject(t) => (
                    &t.name,
                    TypeDef {
                        fields: t
                            .fields
                            .iter()
                            .map(|f| {
                                let ty = Ty::from_ast(&f.value_type);
                                let def = FieldDef { ty, args: vec![] };
                                (f.name.clone(), def)
                            })
                            .collect(),
                        ..TypeDef::new(Kind::Input)
                    },
                ),
            };
            types.insert(name.clone(), def);
        }
        Schema { types }
    }

    fn kind(&self, name: &str) -> Option<Kind> {
        self.types.get(name).map(|t| t.kind)
    }

    fn field(&self, ty: &str, name: &str) -> Option<&FieldDef> {
        self.types.get(ty)?.fields.get(name)
    }

    /// Whether an object of type `concrete` is a `condition`.
    fn is_a(&self, concrete: &str, condition: &str) -> bool {
        concrete == condition
            || self.types.get(condition).is_some_and(|c| match c.kind {
                Kind::Union => c.members.iter().any(|m| m == concrete),
                Kind::Interface => self
                    .types
                    .get(concrete)
                    .is_some_and(|t| t.interfaces.iter().any(|i| i == condition)),
                _ => false,
            })
    }

    /// The object types a value of type `name` may be.
    fn possible<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        match self.kind(name) {
            Some(Kind::Object) => vec![name],
            Some(Kind::Interface | Kind::Union) => self
                .types
                .iter()
                .filter(|(n, t)| t.kind == Kind::Object && self.is_a(n, name))
                .map(|(n, _)| n.as_str())
                .collect(),
            _ => vec![],
        }
    }

    /// Problems with `v`, a variable's JSON value, as a `ty`: GitHub's `problems`.
    fn check_json(&self, ty: &Ty, v: &Value, path: &mut Vec<Value>, problems: &mut Vec<Value>) {
        let mut problem = |explanation: String, path: &[Value]| {
            problems.push(json!({ "path": path, "explanation": explanation }));
        };
        match (ty, v) {
            (Ty::NonNull(_), Value::Null) => problem("Expected value to not be null".into(), path),
            (Ty::NonNull(inner), v) => self.check_json(inner, v, path, problems),
            (_, Value::Null) => {}
            (Ty::List(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(json!(i));
                    self.check_json(inner, item, path, problems);
                    path.pop();
                }
            }
            (Ty::List(inner), v) => self.check_json(inner, v, path, problems),
            (Ty::Named(name), v) => match self.types.get(name) {
                Some(t) if t.kind == Kind::Input => {
                    let Value::Object(given) = v else {
                        return problem(format!("Expected {v} to be a key-value object."), path);
                    };
                    for key in given.keys().filter(|k| !t.fields.contains_key(*k)) {
                        path.push(json!(key));
                        problem(format!("Field is not defined on {name}"), path);
                        path.pop();
                    }
                    for (key, field) in &t.fields {
                        path.push(json!(key));
                        self.check_json(
                            &field.ty,
                            given.get(key).unwrap_or(&Value::Null),
                            path,
                            problems,
                        );
                        path.pop();
                    }
                }
                Some(t) if t.kind == Kind::Enum => {
                    if !v.as_str().is_some_and(|e| t.values.iter().any(|x| x == e)) {
                        problem(
                            format!("Expected {v} to be one of: {}", t.values.join(", ")),
                            path,
                        );
                    }
                }
                _ => {
                    let fits = match name.as_str() {
                        "Int" => v.is_i64(),
                        "Float" => v.is_number(),
                        "Boolean" => v.is_boolean(),
                        "ID" => v.is_string() || v.is_i64(),
                        _ => v.is_string(),
                    };
                    if !fits {
                        problem(format!("Could not coerce value {v} to {name}"), path);
                    }
                }
            },
        }
    }

    /// Whether a literal argument value fits `ty` (a variable is taken as it is).
    fn fits(&self, ty: &Ty, v: &GValue) -> bool {
        match (ty, v) {
            (_, q::Value::Variable(_)) => true,
            (Ty::NonNull(_), q::Value::Null) => false,
            (Ty::NonNull(inner), v) => self.fits(inner, v),
            (_, q::Value::Null) => true,
            (Ty::List(inner), q::Value::List(items)) => items.iter().all(|i| self.fits(inner, i)),
            (Ty::List(inner), v) => self.fits(inner, v),
            (Ty::Named(name), v) => match (self.types.get(name), v) {
                (Some(t), q::Value::Object(given)) if t.kind == Kind::Input => {
                    given.keys().all(|k| t.fields.contains_key(k))
                        && t.fields.iter().all(|(k, f)| match given.get(k) {
                            Some(v) => self.fits(&f.ty, v),
                            None => f.ty.nullable(),
                        })
                }
                (Some(t), q::Value::Enum(e)) if t.kind == Kind::Enum => t.values.contains(e),
                (Some(t), _) if t.kind != Kind::Scalar => false,
                (_, q::Value::Int(_)) => matches!(name.as_str(), "Int" | "Float" | "ID"),
                (_, q::Value::Float(_)) => name == "Float",
                (_, q::Value::Boolean(_)) => name == "Boolean",
                (_, q::Value::String(_)) => !matches!(name.as_str(), "Int" | "Float" | "Boolean"),
                _ => false,
            },
        }
    }

    fn is_connection(&self, field: &FieldDef) -> bool {
        field.ty.name().ends_with("Connection") && self.kind(field.ty.name()) == Some(Kind::Object)
    }
}

impl TypeDef {
    fn new(kind: Kind) -> TypeDef {
        TypeDef {
            kind,
            fields: BTreeMap::new(),
            interfaces: vec![],
            members: vec![],
            values: vec![],
        }
    }
}

// ---- Variables ---------------------------------------------------------------

fn coerce_variables(
    schema: &Schema,
    definitions: &[q::VariableDefinition<'static, String>],
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<Value>> {
    let mut vars = Map::new();
    let mut errors = Vec::new();
    for d in definitions {
        let ty = Ty::from_ast(&d.var_type);
        if !matches!(
            schema.kind(ty.name()),
            Some(Kind::Scalar | Kind::Enum | Kind::Input)
        ) {
            errors.push(json!({
                "extensions": { "code": "variableRequiresValidType", "typeName": ty.name(), "variableName": d.name },
                "locations": [location(d.position)],
                "message": format!("{} isn't a defined input type (on ${})", ty.name(), d.name),
            }));
            continue;
        }
        let value = match given.get(&d.name) {
            Some(v) => Some(v.clone()),
            None => d.default_value.as_ref().map(constant),
        };
        let mut problems = Vec::new();
        schema.check_json(
            &ty,
            value.as_ref().unwrap_or(&Value::Null),
            &mut vec![],
            &mut problems,
        );
        if !problems.is_empty() {
            errors.push(json!({
                "extensions": { "value": value.clone().unwrap_or(Value::Null), "problems": problems },
                "locations": [location(d.position)],
                "message": format!("Variable ${} of type {ty} was provided invalid value", d.name),
            }));
        }
        if let Some(value) = value {
            vars.insert(d.name.clone(), value);
        }
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

fn location(p: graphql_parser::Pos) -> Value {
    json!({ "line": p.line, "column": p.column })
}

fn variables_in<'q>(v: &'q GValue, out: &mut Vec<&'q str>) {
    match v {
        q::Value::Variable(name) => out.push(name),
        q::Value::List(items) => items.iter().for_each(|i| variables_in(i, out)),
        q::Value::Object(map) => map.values().for_each(|i| variables_in(i, out)),
        _ => {}
    }
}

// ---- Validation --------------------------------------------------------------

type Fragments<'q> = HashMap<&'q str, &'q FragDef>;
type Set = q::SelectionSet<'static, String>;
type Field = q::Field<'static, String>;
type FragDef = q::FragmentDefinition<'static, String>;
type GValue = q::Value<'static, String>;

/// GitHub's static checks, each failure an error with its `extensions.code`.
struct Validator<'v, 'q> {
    schema: &'static Schema,
    fragments: &'v Fragments<'q>,
    declared: HashSet<&'q str>,
    label: &'v str,
    errors: Vec<Value>,
    spreading: HashSet<&'q str>,
    used_variables: HashSet<&'q str>,
    used_fragments: HashSet<&'q str>,
}

impl<'q> Validator<'_, 'q> {
    fn error(
        &mut self,
        message: String,
        position: graphql_parser::Pos,
        path: &[Value],
        extensions: Value,
    ) {
        self.errors.push(json!({
            "path": path,
            "extensions": extensions,
            "locations": [location(position)],
            "message": message,
        }));
    }

    fn selection_set(&mut self, parent: &str, set: &'q Set, path: &mut Vec<Value>) {
        for item in &set.items {
            match item {
                q::Selection::Field(f) => self.field(parent, f, path),
                q::Selection::InlineFragment(fragment) => {
                    let condition = match &fragment.type_condition {
                        Some(q::TypeCondition::On(c)) => c.as_str(),
                        None => parent,
                    };
                    path.push(json!(format!("... on {condition}")));
                    let values = fragment
                        .directives
                        .iter()
                        .flat_map(|d| d.arguments.iter().map(|(_, v)| v));
                    self.variables(values, fragment.position, path);
                    if self.condition(condition, parent, fragment.position, path) {
                        self.selection_set(condition, &fragment.selection_set, path);
                    }
                    path.pop();
                }
                q::Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    self.used_fragments.insert(name);
                    path.push(json!(format!("... {name}")));
                    let values = spread
                        .directives
                        .iter()
                        .flat_map(|d| d.arguments.iter().map(|(_, v)| v));
                    self.variables(values, spread.position, path);
                    match self.fragments.get(name) {
                        None => self.error(
                            format!("Fragment {name} was used, but not defined"),
                            spread.position,
                            path,
                            json!({ "code": "useAndDefineFragment", "fragmentName": name }),
                        ),
                        Some(def) => {
                            let q::TypeCondition::On(condition) = &def.type_condition;
                            if self.condition(condition, parent, spread.position, path)
                                && self.spreading.insert(name)
                            {
                                self.selection_set(condition, &def.selection_set, path);
                                self.spreading.remove(name);
                            }
                        }
                    }
                    path.pop();
                }
            }
        }
    }

    /// GitHub refuses variables and fragments defined but not used.
    fn unused(&mut self, definitions: &'q [q::VariableDefinition<'static, String>]) {
        let label = self.label.to_owned();
        let by = match label.split_once(' ') {
            Some((_, name)) => name.to_owned(),
            None => format!("anonymous {label}"),
        };
        for d in definitions {
            if !self.used_variables.contains(d.name.as_str()) {
                self.error(
                    format!("Variable ${} is declared by {by} but not used", d.name),
                    d.position,
                    &[json!(label)],
                    json!({ "code": "variableNotUsed", "variableName": d.name }),
                );
            }
        }
        let mut defined: Vec<_> = self.fragments.iter().collect();
        defined.sort_by_key(|(name, _)| **name);
        for (name, fragment) in defined {
            if !self.used_fragments.contains(name) {
                self.errors.push(json!({
                    "path": [format!("fragment {name}")],
                    "extensions": { "code": "useAndDefineFragment", "fragmentName": name },
                    "locations": [location(fragment.position)],
                    "message": format!("Fragment {name} was defined, but not used"),
                }));
            }
        }
    }

    /// Whether a fragment on `condition` may apply inside `parent`.
    fn condition(
        &mut self,
        condition: &str,
        parent: &str,
        position: graphql_parser::Pos,
        path: &[Value],
    ) -> bool {
        if !matches!(
            self.schema.kind(condition),
            Some(Kind::Object | Kind::Interface | Kind::Union)
        ) {
            self.error(
                format!("No such type {condition}, so it can't be a fragment condition"),
                position,
                path,
                json!({ "code": "undefinedType", "typeName": condition }),
            );
            return false;
        }
        let parents = self.schema.possible(parent);
        if !self
            .schema
            .possible(condition)
            .iter()
            .any(|p| parents.contains(p))
        {
            self.error(
                format!("Fragment on {condition} can't be spread inside {parent}"),
                position,
                path,
                json!({ "code": "fragmentSpreadImpossible", "typeName": condition, "fragmentName": "unknown" }),
            );
            return false;
        }
        true
    }

    fn field(&mut self, parent: &str, f: &'q Field, path: &mut Vec<Value>) {
        let key = f.alias.as_deref().unwrap_or(&f.name);
        path.push(json!(key));
        self.field_in(parent, f, path);
        path.pop();
    }

    /// Notes the variables `values` use, each of which must be declared.
    fn variables(
        &mut self,
        values: impl Iterator<Item = &'q GValue>,
        position: graphql_parser::Pos,
        path: &[Value],
    ) {
        let mut used = Vec::new();
        values.for_each(|v| variables_in(v, &mut used));
        for name in used {
            self.used_variables.insert(name);
            if !self.declared.contains(name) {
                let by = match self.label.split_once(' ') {
                    Some((_, name)) => name.to_owned(),
                    None => format!("anonymous {}", self.label),
                };
                self.error(
                    format!("Variable ${name} is used by {by} but not declared"),
                    position,
                    path,
                    json!({ "code": "variableNotDefined", "variableName": name }),
                );
            }
        }
    }

    fn field_in(&mut self, parent: &str, f: &'q Field, path: &mut Vec<Value>) {
        let values = f.arguments.iter().map(|(_, v)| v);
        let in_directives = f
            .directives
            .iter()
            .flat_map(|d| d.arguments.iter().map(|(_, v)| v));
        self.variables(values.chain(in_directives), f.position, path);
        if f.name == "__typename" {
            return;
        }
        if self.schema.kind(parent) == Some(Kind::Union) {
            self.error(
                format!("Selections can't be made directly on unions (see selections on {parent})"),
                f.position,
                path,
                json!({ "code": "selectionMismatch", "nodeName": parent }),
            );
            return;
        }
        let Some(def) = self.schema.field(parent, &f.name) else {
            self.error(
                format!("Field '{}' doesn't exist on type '{parent}'", f.name),
                f.position,
                path,
                json!({ "code": "undefinedField", "typeName": parent, "fieldName": f.name }),
            );
            return;
        };
        for (name, value) in &f.arguments {
            if let Some(a) = def.args.iter().find(|a| a.name == *name)
                && !self.schema.fits(&a.ty, value)
            {
                self.error(
                    format!("Argument '{name}' on Field '{}' has an invalid value ({value}). Expected type '{}'.", f.name, a.ty),
                    f.position,
                    path,
                    json!({ "code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": name }),
                );
            }
            if !def.args.iter().any(|a| a.name == *name) {
                self.error(
                    format!("Field '{}' doesn't accept argument '{name}'", f.name),
                    f.position,
                    path,
                    json!({ "code": "argumentNotAccepted", "name": f.name, "typeName": "Field", "argumentName": name }),
                );
            }
        }
        let missing: Vec<&str> = def
            .args
            .iter()
            .filter(|a| !a.ty.nullable() && a.default.is_none())
            .filter(|a| !f.arguments.iter().any(|(n, _)| *n == a.name))
            .map(|a| a.name.as_str())
            .collect();
        if !missing.is_empty() {
            self.error(
                format!(
                    "Field '{}' is missing required arguments: {}",
                    f.name,
                    missing.join(", ")
                ),
                f.position,
                path,
                json!({ "code": "missingRequiredArguments", "className": "Field", "name": f.name, "arguments": missing.join(", ") }),
            );
        }
        let result = def.ty.name();
        let leaf = matches!(self.schema.kind(result), Some(Kind::Scalar | Kind::Enum));
        let has_selections = !f.selection_set.items.is_empty();
        if leaf && has_selections {
            let kind = if self.schema.kind(result) == Some(Kind::Enum) {
                "enums"
            } else {
                "scalars"
            };
            let names: Vec<String> = f
                .selection_set
                .items
                .iter()
                .filter_map(|s| match s {
                    q::Selection::Field(x) => Some(x.name.clone()),
                    _ => None,
                })
                .collect();
            self.error(
                format!(
                    "Selections can't be made on {kind} (field '{}' returns {result} but has selections [{}])",
                    f.name,
                    names.join(", ")
                ),
                f.position,
                path,
                json!({ "code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": result }),
            );
        } else if !leaf && !has_selections {
            self.error(
                format!(
                    "Field must have selections (field '{}' returns {} but has no selections. Did you mean '{} {{ ... }}'?)",
                    f.name, def.ty, f.name
                ),
                f.position,
                path,
                json!({ "code": "selectionMismatch", "nodeName": format!("field '{}'", f.name), "typeName": result }),
            );
        } else if !leaf {
            self.selection_set(result, &f.selection_set, path);
        }
    }
}

// ---- Execution ---------------------------------------------------------------

/// A field that could not be resolved: GitHub's error `type` and message.
pub(crate) struct FieldError {
    kind: &'static str,
    message: String,
}

impl FieldError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            kind,
            message: message.into(),
        }
    }
}

/// A non-null field came out null: its parent is null too.
struct Nulled;

struct Exec<'e, 'q> {
    schema: &'static Schema,
    fragments: &'e Fragments<'q>,
    vars: Map<String, Value>,
    errors: Vec<Value>,
    world: World<'e>,
}

type Fields<'q> = Vec<(String, Vec<&'q Field>)>;

impl<'q> Exec<'_, 'q> {
    /// A value in the query, variables replaced; `None` for a variable not given.
    fn value(&self, v: &GValue) -> Option<Value> {
        Some(match v {
            q::Value::Variable(name) => return self.vars.get(name.as_str()).cloned(),
            q::Value::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.value(i).unwrap_or(Value::Null))
                    .collect(),
            ),
            q::Value::Object(map) => Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.value(v)?)))
                    .collect(),
            ),
            other => constant(other),
        })
    }

    /// `field`'s arguments: those given, and the schema's defaults for the others.
    fn args(&self, def: &FieldDef, field: &Field) -> Map<String, Value> {
        let mut args = Map::new();
        for a in &def.args {
            let given = field
                .arguments
                .iter()
                .find(|(n, _)| *n == a.name)
                .and_then(|(_, v)| self.value(v));
            if let Some(v) = given.or_else(|| a.default.clone()) {
                args.insert(a.name.clone(), v);
            }
        }
        args
    }

    fn skipped(&self, directives: &[q::Directive<'static, String>]) -> bool {
        directives.iter().any(|d| {
            let condition = d
                .arguments
                .iter()
                .find(|(n, _)| n == "if")
                .and_then(|(_, v)| self.value(v))
                .and_then(|v| v.as_bool());
            matches!(
                (d.name.as_str(), condition),
                ("skip", Some(true)) | ("include", Some(false))
            )
        })
    }

    /// The fields `sets` select on an object of type `ty`, by response key in order.
    fn collect(
        &self,
        ty: &str,
        sets: &[&'q Set],
        out: &mut Fields<'q>,
        seen: &mut HashSet<&'q str>,
    ) {
        for set in sets {
            for item in &set.items {
                match item {
                    q::Selection::Field(f) if !self.skipped(&f.directives) => {
                        let key = f.alias.as_deref().unwrap_or(&f.name);
                        match out.iter_mut().find(|(k, _)| k == key) {
                            Some((_, group)) => group.push(f),
                            None => out.push((key.to_owned(), vec![f])),
                        }
                    }
                    q::Selection::InlineFragment(fr) if !self.skipped(&fr.directives) => {
                        let applies = match &fr.type_condition {
                            Some(q::TypeCondition::On(c)) => self.schema.is_a(ty, c),
                            None => true,
                        };
                        if applies {
                            self.collect(ty, &[&fr.selection_set], out, seen);
                        }
                    }
                    q::Selection::FragmentSpread(sp) if !self.skipped(&sp.directives) => {
                        let name = sp.fragment_name.as_str();
                        if let Some(def) = self.fragments.get(name)
                            && seen.insert(name)
                        {
                            let q::TypeCondition::On(c) = &def.type_condition;
                            if self.schema.is_a(ty, c) {
                                self.collect(ty, &[&def.selection_set], out, seen);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn select(
        &mut self,
        ty: &str,
        obj: &Value,
        sets: &[&'q Set],
        path: &mut Vec<Value>,
    ) -> Result<Value, Nulled> {
        let mut fields = Vec::new();
        self.collect(ty, sets, &mut fields, &mut HashSet::new());
        let mut out = Map::new();
        for (key, group) in fields {
            let f = group[0];
            if f.name == "__typename" {
                out.insert(key, json!(ty));
                continue;
            }
            // Validated against the declared type; a value without a known
            // concrete type has none of its fields.
            let Some(def) = self.schema.field(ty, &f.name) else {
                out.insert(key, Value::Null);
                continue;
            };
            path.push(json!(key));
            let value = self.field(ty, obj, def, &group, path);
            path.pop();
            match value {
                Ok(v) => {
                    out.insert(key, v);
                }
                Err(Nulled) if def.ty.nullable() => {
                    out.insert(key, Value::Null);
                }
                Err(Nulled) => return Err(Nulled),
            }
        }
        Ok(Value::Object(out))
    }

    fn error(&mut self, e: FieldError, f: &Field, path: &[Value]) {
        self.errors.push(json!({
            "type": e.kind,
            "path": path,
            "locations": [location(f.position)],
            "message": e.message,
        }));
    }

    fn field(
        &mut self,
        ty: &str,
        obj: &Value,
        def: &FieldDef,
        group: &[&'q Field],
        path: &mut Vec<Value>,
    ) -> Result<Value, Nulled> {
        let f = group[0];
        let args = self.args(def, f);
        let resolved = self.world.resolve(ty, obj, &f.name, &args).and_then(|v| {
            if self.schema.is_connection(def) {
                paginate(&f.name, v, &args)
            } else {
                Ok(v)
            }
        });
        let raw = match resolved {
            Ok(v) => v,
            // Without the scope, GitHub leaves the field null and answers the rest.
            Err(e) if e.kind == "INSUFFICIENT_SCOPES" => {
                self.error(e, f, path);
                return Ok(Value::Null);
            }
            Err(e) => {
                self.error(e, f, path);
                return if def.ty.nullable() {
                    Ok(Value::Null)
                } else {
                    Err(Nulled)
                };
            }
        };
        let sets: Vec<_> = group.iter().map(|f| &f.selection_set).collect();
        let at = format!("{ty}.{}", f.name);
        self.complete(&def.ty, raw, &sets, path, &at, f)
    }

    fn complete(
        &mut self,
        ty: &Ty,
        v: Value,
        sets: &[&'q Set],
        path: &mut Vec<Value>,
        at: &str,
        f: &Field,
    ) -> Result<Value, Nulled> {
        match ty {
            Ty::NonNull(inner) => {
                let v = self.complete(inner, v, sets, path, at, f)?;
                if v.is_null() {
                    self.errors.push(json!({
                        "path": path,
                        "locations": [location(f.position)],
                        "message": format!("Cannot return null for non-nullable field {at}"),
                    }));
                    return Err(Nulled);
                }
                Ok(v)
            }
            Ty::List(inner) => {
                let Value::Array(items) = v else {
                    return Ok(Value::Null);
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    path.push(json!(i));
                    let done = self.complete(inner, item, sets, path, at, f);
                    path.pop();
                    match done {
                        Ok(x) => out.push(x),
                        Err(Nulled) if inner.nullable() => out.push(Value::Null),
                        Err(Nulled) => return Err(Nulled),
                    }
                }
                Ok(Value::Array(out))
            }
            Ty::Named(name) => {
                if v.is_null() {
                    return Ok(Value::Null);
                }
                match self.schema.kind(name) {
                    Some(Kind::Object) => self.select(name, &v, sets, path),
                    Some(Kind::Interface | Kind::Union) => {
                        let concrete = v["__typename"].as_str().unwrap_or_default().to_owned();
                        self.select(&concrete, &v, sets, path)
                    }
                    _ => Ok(v),
                }
            }
        }
    }

    /// What the query costs: the requests its connections imply (each connection
    /// once per node of the connections around it), the nodes it may return, and
    /// whether `rateLimit(dryRun: true)` asks not to run it.
    fn cost(&self, set: &'q Set) -> (u64, u64, bool) {
        let mut total = (0, 0, false);
        self.cost_of("Query", set, 1, &mut total, &mut HashSet::new());
        total
    }

    fn cost_of(
        &self,
        ty: &str,
        set: &'q Set,
        times: u64,
        total: &mut (u64, u64, bool),
        spreading: &mut HashSet<&'q str>,
    ) {
        for item in &set.items {
            match item {
                q::Selection::Field(f) => {
                    let Some(def) = self.schema.field(ty, &f.name) else {
                        continue;
                    };
                    let args = self.args(def, f);
                    if ty == "Query" && f.name == "rateLimit" && args["dryRun"] == true {
                        total.2 = true;
                    }
                    let mut inner = times;
                    if self.schema.is_connection(def) {
                        let page = args
                            .get("first")
                            .or(args.get("last"))
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        total.0 += times;
                        inner = times.saturating_mul(page);
                        total.1 = total.1.saturating_add(inner);
                    }
                    self.cost_of(def.ty.name(), &f.selection_set, inner, total, spreading);
                }
                q::Selection::InlineFragment(fr) => {
                    let on = match &fr.type_condition {
                        Some(q::TypeCondition::On(c)) => c.as_str(),
                        None => ty,
                    };
                    self.cost_of(on, &fr.selection_set, times, total, spreading);
                }
                q::Selection::FragmentSpread(sp) => {
                    let name = sp.fragment_name.as_str();
                    if let Some(def) = self.fragments.get(name)
                        && spreading.insert(name)
                    {
                        let q::TypeCondition::On(c) = &def.type_condition;
                        self.cost_of(c, &def.selection_set, times, total, spreading);
                        spreading.remove(name);
                    }
                }
            }
        }
    }
}

/// A connection over `items` (all of them, in their stored order): `orderBy`
/// applied, the page `first`/`last`/`after`/`before` select, as GitHub answers it.
fn paginate(name: &str, items: Value, args: &Map<String, Value>) -> Result<Value, FieldError> {
    let items = match items {
        Value::Array(items) => items,
        _ => vec![],
    };
    let first = args.get("first").and_then(Value::as_i64);
    let last = args.get("last").and_then(Value::as_i64);
    if first.is_none() && last.is_none() {
        return Err(FieldError::new(
            "MISSING_PAGINATION_BOUNDARIES",
            format!(
                "You must provide a `first` or `last` value to properly paginate the `{name}` connection."
            ),
        ));
    }
    for (arg, n) in [("first", first), ("last", last)] {
        if let Some(n) = n
            && n > MAX_PAGE
        {
            return Err(FieldError::new(
                "EXCESSIVE_PAGINATION",
                format!(
                    "Requesting {n} records on the `{name}` connection exceeds the `{arg}` limit of {MAX_PAGE} records."
                ),
            ));
        }
    }
    // Sort keys: the ordered field's value, then the stored position.
    let (key, descending) = match args.get("orderBy") {
        Some(Value::Object(order)) => (
            order_key(
                order
                    .get("field")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            order.get("direction").and_then(Value::as_str) == Some("DESC"),
        ),
        _ => (None, false),
    };
    let mut keyed: Vec<((Value, usize), Value)> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let k = key.map_or(Value::Null, |k| item[k].clone());
            ((k, i), item)
        })
        .collect();
    let order = |a: &(Value, usize), b: &(Value, usize)| {
        let o = compare(&a.0, &b.0).then(a.1.cmp(&b.1));
        if descending { o.reverse() } else { o }
    };
    keyed.sort_by(|a, b| order(&a.0, &b.0));
    let cursor_of =
        |k: &(Value, usize)| STANDARD.encode(format!("cursor:v2:{}", json!([k.0, k.1])));
    let parse_cursor = |c: &str| -> Result<(Value, usize), FieldError> {
        let invalid = || {
            FieldError::new(
                "INVALID_CURSOR_ARGUMENTS",
                format!("`{c}` does not appear to be a valid cursor."),
            )
        };
        let raw = STANDARD.decode(c).map_err(|_| invalid())?;
        let text = String::from_utf8(raw).map_err(|_| invalid())?;
        let body = text.strip_prefix("cursor:v2:").ok_or_else(invalid)?;
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(parts)) if parts.len() == 2 && parts[1].is_u64() => {
                Ok((parts[0].clone(), parts[1].as_u64().unwrap_or(0) as usize))
            }
            _ => Err(invalid()),
        }
    };
    let mut lo = 0;
    let mut hi = keyed.len();
    if let Some(after) = args.get("after").and_then(Value::as_str) {
        let c = parse_cursor(after)?;
        lo = keyed
            .iter()
            .position(|(k, _)| order(k, &c).is_gt())
            .unwrap_or(keyed.len());
    }
    if let Some(before) = args.get("before").and_then(Value::as_str) {
        let c = parse_cursor(before)?;
        hi = keyed
            .iter()
            .position(|(k, _)| order(k, &c).is_ge())
            .unwrap_or(keyed.len());
    }
    hi = hi.max(lo);
    let total = keyed.len();
    let (mut start, mut end) = (lo, hi);
    if let Some(n) = first {
        end = end.min(start + n.max(0) as usize);
    }
    if let Some(n) = last {
        start = start.max(end.saturating_sub(n.max(0) as usize));
    }
    let page = &keyed[start..end];
    let edges: Vec<Value> = page
        .iter()
        .map(|(k, node)| json!({ "cursor": cursor_of(k), "node": node }))
        .collect();
    Ok(json!({
        "totalCount": total,
        "nodes": page.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < total,
            "hasPreviousPage": start > 0,
            "startCursor": page.first().map(|(k, _)| cursor_of(k)),
            "endCursor": page.last().map(|(k, _)| cursor_of(k)),
        },
    }))
}

/// The field of a node an `orderBy: {field}` sorts on; `None`: stored order.
fn order_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "CREATED_AT" => "createdAt",
        "UPDATED_AT" => "updatedAt",
        "NUMBER" => "number",
        "TITLE" => "title",
        "NAME" => "name",
        "PUSHED_AT" => "pushedAt",
        "VOTE_COUNT" => "totalVoteCount",
        _ => return None,
    })
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

// ---- The data ----------------------------------------------------------------

/// What queries read: the fake's state, as GraphQL objects (JSON with GitHub's field
/// names and `__typename`). `{"$repo": "owner/name"}` and `{"$owner": "login"}` stand
/// for a repository or an owner, looked up when reached.
pub(crate) struct World<'w> {
    pub inner: &'w Inner,
    /// The web origin (`https://github.com`'s stand-in).
    pub web: &'w str,
    rate: Value,
    deny_projects: bool,
}

impl World<'_> {
    fn resolve(
        &self,
        ty: &str,
        obj: &Value,
        field: &str,
        args: &Map<String, Value>,
    ) -> Result<Value, FieldError> {
        let arg = |name: &str| args.get(name).and_then(Value::as_str).unwrap_or_default();
        let number = || args.get("number").and_then(Value::as_u64).unwrap_or(0);
        if self.deny_projects && (field == "projectsV2" || field == "projectV2") {
            return Err(FieldError::new(
                "INSUFFICIENT_SCOPES",
                format!(
                    "Your token has not been granted the required scopes to execute this query. The '{field}' field requires one of the following scopes: ['read:project'], but your token has only been granted the: ['repo', 'read:org'] scopes. Please modify your token's scopes at: https://github.com/settings/tokens."
                ),
            ));
        }
        match (ty, field) {
            ("Query", "repository") => {
                let (owner, name) = (arg("owner"), arg("name"));
                self.repo_node(owner, name).ok_or_else(|| {
                    FieldError::new(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to a Repository with the name '{owner}/{name}'."
                        ),
                    )
                })
            }
            ("Query", "organization") => self
                .owner_of_kind(arg("login"), OwnerKind::Org)
                .ok_or_else(|| {
                    FieldError::new(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to an Organization with the login of '{}'.",
                            arg("login")
                        ),
                    )
                }),
            ("Query", "user") => self
                .owner_of_kind(arg("login"), OwnerKind::User)
                .ok_or_else(|| {
                    FieldError::new(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to a User with the login of '{}'.",
                            arg("login")
                        ),
                    )
                }),
            ("Query", "repositoryOwner") => {
                Ok(self.owner_node(arg("login")).unwrap_or(Value::Null))
            }
            ("Query", "viewer") => Ok(self.owner_node(super::TOKEN_USER).unwrap_or(Value::Null)),
            ("Query", "rateLimit") => Ok(self.rate.clone()),
            ("Organization" | "User", "repository") => {
                let (owner, name) = (obj["login"].as_str().unwrap_or_default(), arg("name"));
                self.repo_node(owner, name).ok_or_else(|| {
                    FieldError::new(
                        "NOT_FOUND",
                        format!(
                            "Could not resolve to a Repository with the name '{owner}/{name}'."
                        ),
                    )
                })
            }
            ("Organization" | "User" | "Repository", "projectsV2" | "projectV2") => {
                let projects = &self.inner.graphql.projects;
                let mine: Vec<&super::projects::Project> = match ty {
                    "Repository" => {
                        let full = obj["nameWithOwner"].as_str().unwrap_or_default();
                        projects.iter().filter(|p| p.links(full)).collect()
                    }
                    _ => {
                        let login = obj["login"].as_str().unwrap_or_default();
                        projects.iter().filter(|p| p.owned_by(login)).collect()
                    }
                };
                if field == "projectV2" {
                    return mine
                        .iter()
                        .find(|p| p.number == number())
                        .map(|p| p.node(self))
                        .ok_or_else(|| {
                            FieldError::new(
                                "NOT_FOUND",
                                format!(
                                    "Could not resolve to a ProjectV2 with the number {}.",
                                    number()
                                ),
                            )
                        });
                }
                let query = arg("query").to_lowercase();
                Ok(Value::Array(
                    mine.iter()
                        .filter(|p| p.title.to_lowercase().contains(&query))
                        .map(|p| p.node(self))
                        .collect(),
                ))
            }
            ("Repository", _) if field.starts_with("discussion") => {
                let full = obj["nameWithOwner"].as_str().unwrap_or_default();
                let (owner, name) = full.split_once('/').unwrap_or_default();
                let Some(repo) = self.inner.repo(owner, name) else {
                    return Ok(Value::Null);
                };
                super::discussions::resolve(self, repo, field, args)
            }
            ("ProjectV2", "field") => Ok(obj["fields"]
                .as_array()
                .and_then(|fields| fields.iter().find(|f| f["name"] == arg("name")))
                .cloned()
                .unwrap_or(Value::Null)),
            ("ProjectV2Item", "fieldValueByName") => Ok(obj["fieldValues"]
                .as_array()
                .and_then(|values| values.iter().find(|v| v["field"]["name"] == arg("name")))
                .cloned()
                .unwrap_or(Value::Null)),
            ("ProjectV2SingleSelectField", "options") => {
                let options = obj["options"].as_array().cloned().unwrap_or_default();
                Ok(Value::Array(
                    match args.get("names").and_then(Value::as_array) {
                        Some(names) => options
                            .into_iter()
                            .filter(|o| names.contains(&o["name"]))
                            .collect(),
                        None => options,
                    },
                ))
            }
            _ => Ok(self.hydrate(obj.get(field).cloned().unwrap_or(Value::Null))),
        }
    }

    /// `v` with a stand-in (`$repo`, `$owner`), or a list of them, looked up.
    fn hydrate(&self, v: Value) -> Value {
        match v {
            Value::Object(ref map) if map.contains_key("$repo") => {
                let full = map["$repo"].as_str().unwrap_or_default();
                let (owner, name) = full.split_once('/').unwrap_or_default();
                self.repo_node(owner, name).unwrap_or(Value::Null)
            }
            Value::Object(ref map) if map.contains_key("$owner") => self
                .owner_node(map["$owner"].as_str().unwrap_or_default())
                .unwrap_or(Value::Null),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| self.hydrate(i)).collect())
            }
            v => v,
        }
    }

    fn owner_of_kind(&self, login: &str, kind: OwnerKind) -> Option<Value> {
        self.inner
            .owner(login)
            .filter(|o| o.kind == kind)
            .and_then(|o| self.owner_node(&o.login))
    }

    /// An organization or user, as the REST API's owner objects name it.
    pub(crate) fn owner_node(&self, login: &str) -> Option<Value> {
        let o = self.inner.owner(login)?;
        let web = self.web;
        Some(json!({
            "__typename": if o.kind == OwnerKind::Org { "Organization" } else { "User" },
            "id": format!("MDQ6VXNlcj{}", o.id),
            "databaseId": o.id,
            "login": o.login,
            "name": null,
            "url": format!("{web}/{}", o.login),
            "resourcePath": format!("/{}", o.login),
            "avatarUrl": format!("{web}/avatars/u/{}?v=4", o.id),
        }))
    }

    /// A repository, its ids and fields as the REST API's repository object has them.
    pub(crate) fn repo_node(&self, owner: &str, name: &str) -> Option<Value> {
        let r: &RepoEntry = self.inner.repo(owner, name)?;
        let s = &r.spec;
        let full = format!("{}/{}", s.owner, s.name);
        let owner = self.owner_node(&s.owner).unwrap_or(Value::Null);
        Some(json!({
            "__typename": "Repository",
            "id": format!("R_kgDO{}", r.id),
            "databaseId": r.id,
            "name": s.name,
            "nameWithOwner": full,
            "owner": owner,
            "description": s.description,
            "url": format!("{}/{full}", self.web),
            "resourcePath": format!("/{full}"),
            "isPrivate": s.private,
            "isArchived": s.archived,
            "isFork": s.fork,
            "visibility": s.visibility().to_uppercase(),
            "createdAt": r.created_at.to_string(),
            "updatedAt": r.pushed_at.to_string(),
            "pushedAt": r.pushed_at.to_string(),
            "hasIssuesEnabled": s.has_issues,
            "hasProjectsEnabled": s.has_projects,
            "hasWikiEnabled": s.has_wiki,
            "hasDiscussionsEnabled": r.meta.discussions.enabled,
        }))
    }
}

// ---- Shapes shared by the data modules -----------------------------------------

/// A GraphQL node id as GitHub writes them: `<prefix>_kwDO` and the database id.
pub(crate) fn node_id(prefix: &str, id: u64) -> String {
    let bytes = id.to_be_bytes();
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    format!("{prefix}_kwDO{}", URL_SAFE_NO_PAD.encode(&bytes[start..]))
}

/// An author (`Actor`): a user, or the `github-actions` bot.
pub(crate) fn actor(web: &str, login: &str) -> Value {
    let id = login.bytes().fold(583_000u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 10_000_000;
    if login == "github-actions" {
        return json!({
            "__typename": "Bot", "id": node_id("BOT", id), "login": login,
            "url": format!("{web}/apps/{login}"), "resourcePath": format!("/apps/{login}"),
            "avatarUrl": format!("{web}/avatars/in/15368?v=4"),
        });
    }
    json!({
        "__typename": "User", "id": node_id("U", id), "databaseId": id, "login": login, "name": null,
        "url": format!("{web}/{login}"), "resourcePath": format!("/{login}"),
        "avatarUrl": format!("{web}/avatars/u/{id}?v=4"),
    })
}

/// A label of repository `full` (`owner/name`) from its REST object.
pub(crate) fn label_node(web: &str, full: &str, rest: &Value) -> Value {
    let name = rest["name"].as_str().unwrap_or_default();
    json!({
        "__typename": "Label", "id": rest["node_id"], "name": name, "color": rest["color"],
        "description": rest["description"], "isDefault": rest["default"].as_bool().unwrap_or(false),
        "url": format!("{web}/{full}/labels/{}", super::metadata::encode_segment(name)),
        "createdAt": null, "updatedAt": null,
    })
}

/// Markdown as GitHub renders it, for the few forms the generated bodies use:
/// paragraphs, and an image alone on its line.
pub(crate) fn body_html(markdown: &str) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    markdown
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| match image(p.trim()) {
            Some((alt, url)) => format!(
                "<p dir=\"auto\"><a target=\"_blank\" rel=\"noopener noreferrer\" href=\"{0}\"><img src=\"{0}\" alt=\"{1}\" style=\"max-width: 100%;\"></a></p>",
                escape(url),
                escape(alt)
            ),
            None => format!("<p dir=\"auto\">{}</p>", escape(p.trim())),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of a body as GitHub's `bodyText` gives it: images by their alt text.
pub(crate) fn body_text(markdown: &str) -> String {
    markdown
        .split("\n\n")
        .map(|p| image(p.trim()).map_or(p.trim(), |(alt, _)| alt))
        .collect::<Vec<_>>()
        .join("\n")
}

fn image(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("![")?;
    let (alt, rest) = rest.split_once("](")?;
    Some((alt, rest.strip_suffix(')')?))
}
