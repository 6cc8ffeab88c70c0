//! A strict S3: a reverse proxy in front of a full S3 (LocalStack) that answers the
//! requests using a feature some provider lacks as that provider does, so each
//! compatibility profile of the S3 store is tested against what it must not ask for,
//! not assumed to avoid it.
//!
//! Every other request is forwarded verbatim (method, path, query, headers with
//! `Host` as the client sent it — the signature covers it —, the body streamed) and
//! the answer streamed back.
//!
//! How a rejection is answered (an S3 XML error, counted in [`StrictS3::rejected`]):
//!
//! | rule | status | code | as |
//! |---|---|---|---|
//! | [`Rule::Checksums`], [`Rule::FullObjectChecksums`], [`Rule::TrailingChecksums`] | 400 | `InvalidArgument` | Backblaze B2 answers a checksum header it lacks: ``Unsupported header 'x-amz-…' received for this API call.`` |
//! | [`Rule::ConditionalWrites`], [`Rule::Tagging`] | 501 | `NotImplemented` | S3's own answer to a header it does not implement (AWS S3 answered `If-None-Match` on a write so before August 2024) |
//!
//! A rejected request's body is read to its end before the answer, as a server
//! would, so the client sees the error rather than a broken pipe.
//!
//! It also injects transient faults ([`Faults`], for the soak): a share of S3
//! requests answered `503 SlowDown` or `500 InternalError`, of SQS requests
//! `400 ThrottlingException`, spread evenly over the requests of each kind (one in 50,
//! one in 100: a client's retry is all but never faulted again), without reaching the
//! upstream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, IF_NONE_MATCH};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the emulated provider supports: a request using anything else is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictRules {
    /// Checksum algorithms accepted, in S3's spelling (`"CRC64NVME"`, `"SHA256"`,
    /// `"CRC32"`, `"CRC32C"`, `"SHA1"`): an `x-amz-checksum-<alg>` header, or an
    /// `x-amz-checksum-algorithm`, `x-amz-sdk-checksum-algorithm` or `x-amz-trailer`
    /// naming another, is rejected.
    pub checksums: Vec<&'static str>,
    /// `x-amz-checksum-type: FULL_OBJECT` (a multipart upload's whole-object checksum).
    pub full_object_checksums: bool,
    /// aws-chunked bodies with trailing checksums: an `x-amz-trailer` header,
    /// `x-amz-content-sha256: STREAMING-…-TRAILER` or `Content-Encoding: aws-chunked`.
    pub trailing_checksums: bool,
    /// `If-None-Match` on a `PUT` (PutObject, UploadPart) or on a `POST ?uploadId=`
    /// (CompleteMultipartUpload).
    pub conditional_writes: bool,
    /// An `x-amz-tagging` header, or any request on the `?tagging` subresource.
    pub tagging: bool,
}

impl StrictRules {
    /// Every feature: the proxy alone changes nothing (AWS, MinIO since 2025).
    pub fn every_feature() -> StrictRules {
        StrictRules {
            checksums: vec!["CRC64NVME", "SHA256", "CRC32", "CRC32C", "SHA1"],
            full_object_checksums: true,
            trailing_checksums: true,
            conditional_writes: true,
            tagging: true,
        }
    }

    /// What a provider of `repovault_core::config::PROVIDERS` lacks, as its
    /// documentation and its users' reports say (docs/STORAGE.md has the sources).
    pub fn provider(name: &str) -> StrictRules {
        let none = StrictRules {
            checksums: Vec::new(),
            full_object_checksums: false,
            trailing_checksums: false,
            conditional_writes: false,
            tagging: false,
        };
        match name {
            // CRC64NVME full-object and the others composite; no tagging.
            "r2" => StrictRules {
                tagging: false,
                ..StrictRules::every_feature()
            },
            // No x-amz-checksum header, no conditional write, no tagging.
            "b2" | "gcs" => none,
            // CRC32, CRC32C, SHA-1, SHA-256 (not CRC64NVME); tagging; conditional
            // writes undocumented, so refused here.
            "wasabi" => StrictRules {
                checksums: vec!["SHA256", "CRC32", "CRC32C", "SHA1"],
                tagging: true,
                ..none
            },
            "aws" | "minio" => StrictRules::every_feature(),
            other => panic!("no strict rules for provider {other:?}"),
        }
    }
}

/// A rule of [`StrictRules`], named as its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Checksums,
    FullObjectChecksums,
    TrailingChecksums,
    ConditionalWrites,
    Tagging,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Checksums => "checksums",
            Rule::FullObjectChecksums => "full_object_checksums",
            Rule::TrailingChecksums => "trailing_checksums",
            Rule::ConditionalWrites => "conditional_writes",
            Rule::Tagging => "tagging",
        }
    }

    /// Status and S3 error code of the answer (see the module's table).
    pub fn answer(self) -> (StatusCode, &'static str) {
        match self {
            Rule::Checksums | Rule::FullObjectChecksums | Rule::TrailingChecksums => {
                (StatusCode::BAD_REQUEST, "InvalidArgument")
            }
            Rule::ConditionalWrites | Rule::Tagging => {
                (StatusCode::NOT_IMPLEMENTED, "NotImplemented")
            }
        }
    }
}

/// A request's use of something the provider lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    /// The header (lowercase) or query parameter (`?tagging`) at fault.
    pub culprit: String,
}

impl Violation {
    fn new(rule: Rule, culprit: impl Into<String>) -> Option<Violation> {
        Some(Violation {
            rule,
            culprit: culprit.into(),
        })
    }

    fn message(&self) -> String {
        match self.rule.answer().0 {
            StatusCode::NOT_IMPLEMENTED => {
                "A header you provided implies functionality that is not implemented".into()
            }
            _ => format!(
                "Unsupported header '{}' received for this API call.",
                self.culprit
            ),
        }
    }

    /// The S3 XML error body.
    fn xml(&self, request_id: &str) -> String {
        let (_, code) = self.rule.answer();
        let header = if self.culprit.starts_with('?') {
            String::new()
        } else {
            format!("<Header>{}</Header>", xml_escape(&self.culprit))
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{header}<RequestId>{request_id}</RequestId></Error>",
            xml_escape(&self.message())
        )
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The first rule a request breaks, in the order of [`StrictRules`]' fields; `None`
/// if the provider would take it. `query` is the URI's query without the `?`.
pub fn check(
    rules: &StrictRules,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Violation> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let accepted = |alg: &str| {
        rules
            .checksums
            .iter()
            .any(|ok| ok.eq_ignore_ascii_case(alg.trim()))
    };

    // Checksums: a value sent, an algorithm named, a trailer announced, or (with
    // none accepted) checksums asked back (B2 refuses `x-amz-checksum-mode`).
    if rules.checksums.is_empty() && headers.contains_key("x-amz-checksum-mode") {
        return Violation::new(Rule::Checksums, "x-amz-checksum-mode");
    }
    for (name, value) in headers {
        let name = name.as_str();
        if let Some(alg) = name.strip_prefix("x-amz-checksum-")
            && !matches!(alg, "type" | "algorithm" | "mode")
            && !accepted(alg)
        {
            return Violation::new(Rule::Checksums, name);
        }
        if matches!(
            name,
            "x-amz-checksum-algorithm" | "x-amz-sdk-checksum-algorithm"
        ) && !value.to_str().is_ok_and(accepted)
        {
            return Violation::new(Rule::Checksums, name);
        }
    }
    if let Some(trailer) = header("x-amz-trailer") {
        for named in trailer.split(',').map(str::trim) {
            if let Some(alg) = named.to_ascii_lowercase().strip_prefix("x-amz-checksum-")
                && !accepted(alg)
            {
                return Violation::new(Rule::Checksums, "x-amz-trailer");
            }
        }
    }

    if !rules.full_object_checksums
        && header("x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("FULL_OBJECT"))
    {
        return Violation::new(Rule::FullObjectChecksums, "x-amz-checksum-type");
    }

    if !rules.trailing_checksums {
        if headers.contains_key("x-amz-trailer") {
            return Violation::new(Rule::TrailingChecksums, "x-amz-trailer");
        }
        if header("x-amz-content-sha256")
            .is_some_and(|v| v.starts_with("STREAMING-") && v.ends_with("-TRAILER"))
        {
            return Violation::new(Rule::TrailingChecksums, "x-amz-content-sha256");
        }
        if headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|coding| coding.trim().eq_ignore_ascii_case("aws-chunked"))
        {
            return Violation::new(Rule::TrailingChecksums, "content-encoding");
        }
    }

    let params: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or(""))
        .collect();
    if !rules.conditional_writes && headers.contains_key(IF_NONE_MATCH) {
        let complete = *method == Method::POST && params.contains(&"uploadId");
        if *method == Method::PUT || complete {
            return Violation::new(Rule::ConditionalWrites, "if-none-match");
        }
    }

    if !rules.tagging {
        if headers.contains_key("x-amz-tagging") {
            return Violation::new(Rule::Tagging, "x-amz-tagging");
        }
        if params.contains(&"tagging") {
            return Violation::new(Rule::Tagging, "?tagging");
        }
    }
    None
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Transient faults to inject, per thousand requests of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// S3 requests answered `503 SlowDown` and `500 InternalError`, alternately.
    pub s3_per_mille: u64,
    /// SQS requests answered `400 ThrottlingException`.
    pub sqs_per_mille: u64,
}

impl Faults {
    /// Whether the `n`th request (from 1) of a kind faulted `per_mille` times in a
    /// thousand gets a fault: spread evenly, never twice in a row below 500‰.
    fn hits(n: u64, per_mille: u64) -> bool {
        n * per_mille / 1000 > (n - 1) * per_mille / 1000
    }
}

/// Requests seen and faults injected, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    pub s3_requests: u64,
    pub s3_faults: u64,
    pub sqs_requests: u64,
    pub sqs_faults: u64,
}

struct Shared {
    upstream: String,
    rules: StrictRules,
    faults: Faults,
    fault_counts: Mutex<FaultCounts>,
    client: Client<HttpConnector, Incoming>,
    rejected: Mutex<Vec<String>>,
    served: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// The proxy, on `127.0.0.1:<port>`; stops accepting when dropped.
pub struct StrictS3 {
    /// `http://127.0.0.1:<port>`: the S3 endpoint to give a client.
    pub endpoint: String,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl StrictS3 {
    /// Starts the proxy in front of `upstream_endpoint` (`http://host:port`).
    pub async fn start(upstream_endpoint: &str, rules: StrictRules) -> StrictS3 {
        StrictS3::with_faults(upstream_endpoint, rules, Faults::default()).await
    }

    /// [`start`](StrictS3::start), injecting `faults`.
    pub async fn with_faults(
        upstream_endpoint: &str,
        rules: StrictRules,
        faults: Faults,
    ) -> StrictS3 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the strict S3 proxy");
        let addr: SocketAddr = listener.local_addr().expect("a local address");
        let shared = Arc::new(Shared {
            upstream: upstream_endpoint.trim_end_matches('/').to_owned(),
            rules,
            faults,
            fault_counts: Mutex::new(FaultCounts::default()),
            client: crate::http::forwarding_client(),
            rejected: Mutex::new(Vec::new()),
            served: Mutex::new(Default::default()),
        });
        let serving = shared.clone();
        let stop = crate::http::serve(listener, move |req| {
            let shared = serving.clone();
            async move { handle(&shared, req).await }
        });
        StrictS3 {
            endpoint: format!("http://{addr}"),
            shared,
            _stop: stop,
        }
    }

    /// One line per rejected request: method, path, rule and culprit, e.g.
    /// `PUT /bucket/key conditional_writes (if-none-match)`.
    pub fn rejected(&self) -> Vec<String> {
        self.shared.rejected.lock().unwrap().clone()
    }

    /// Requests seen and faults injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        *self.shared.fault_counts.lock().unwrap()
    }

    /// Every request forwarded so far, by [`verb`]: what a run costs in requests.
    pub fn served(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.served.lock().unwrap().clone()
    }
}

/// What a request is, as a bill counts it: `SQS <operation>` (JSON protocol), or
/// `S3 <method>` with what distinguishes listing, tagging and multipart requests.
pub fn verb(method: &Method, query: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let operation = target.rsplit('.').next().unwrap_or(target);
        return format!("SQS {operation}");
    }
    let has = |name: &str| {
        query
            .unwrap_or_default()
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    let what = if has("list-type") || has("prefix") && *method == Method::GET {
        " list"
    } else if has("tagging") {
        " tagging"
    } else if has("uploads") {
        " create-multipart"
    } else if has("partNumber") {
        " part"
    } else if has("uploadId") {
        " multipart"
    } else if has("delete") {
        " delete-objects"
    } else {
        ""
    };
    format!("S3 {method}{what}")
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<ProxyBody> {
    let verb = verb(req.method(), req.uri().query(), req.headers());
    if let Some(fault) = shared.fault(verb.starts_with("SQS")) {
        let _ = req.into_body().collect().await;
        return fault;
    }
    *shared.served.lock().unwrap().entry(verb).or_default() += 1;
    let violation = check(
        &shared.rules,
        req.method(),
        req.uri().query(),
        req.headers(),
    );
    if let Some(violation) = violation {
        let line = format!(
            "{} {} {} ({})",
            req.method(),
            req.uri().path(),
            violation.rule.name(),
            violation.culprit
        );
        let request_id = {
            let mut rejected = shared.rejected.lock().unwrap();
            rejected.push(line);
            format!("strict-s3-{}", rejected.len())
        };
        // Read the body to its end: the client is answered, not cut off mid-upload.
        let _ = req.into_body().collect().await;
        let (status, _) = violation.rule.answer();
        return Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/xml")
            .header("x-amz-request-id", &request_id)
            .body(full(violation.xml(&request_id)))
            .expect("a valid response");
    }
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("{}{path}", shared.upstream);
    parts.uri = match uri.parse::<Uri>() {
        Ok(uri) => uri,
        Err(e) => return bad_gateway(format!("{uri}: {e}")),
    };
    match shared
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => response.map(|b| b.boxed()),
        Err(e) => bad_gateway(format!("{}: {e}", shared.upstream)),
    }
}

impl Shared {
    /// The answer of an injected fault, if this request gets one.
    fn fault(&self, sqs: bool) -> Option<Response<ProxyBody>> {
        let mut guard = self.fault_counts.lock().unwrap();
        let counts = &mut *guard;
        let (seen, injected, per_mille) = if sqs {
            (
                &mut counts.sqs_requests,
                &mut counts.sqs_faults,
                self.faults.sqs_per_mille,
            )
        } else {
            (
                &mut counts.s3_requests,
                &mut counts.s3_faults,
                self.faults.s3_per_mille,
            )
        };
        *seen += 1;
        if !Faults::hits(*seen, per_mille) {
            return None;
        }
        *injected += 1;
        let request_id = format!("fault-{}", *injected);
        let (status, content_type, body) = if sqs {
            (
                StatusCode::BAD_REQUEST,
                "application/x-amz-json-1.0",
                r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}"#
                    .to_owned(),
            )
        } else {
            let (status, code, message) = if *injected % 2 == 1 {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SlowDown",
                    "Please reduce your request rate.",
                )
            } else {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            };
            (
                status,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
                ),
            )
        };
        Some(
            Response::builder()
                .status(status)
                .header(CONTENT_TYPE, content_type)
                .header("x-amz-request-id", &request_id)
                .body(full(body))
                .expect("a valid response"),
        )
    }
}

/// A whole body of `text`.
fn full(text: String) -> ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}

fn bad_gateway(why: String) -> Response<ProxyBody> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(full(format!("strict S3 proxy: upstream failed: {why}")))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> StrictRules {
        StrictRules {
            checksums: Vec::new(),
            full_object_checksums: false,
            trailing_checksums: false,
            conditional_writes: false,
            tagging: false,
        }
    }

    fn all() -> StrictRules {
        StrictRules {
            checksums: vec!["CRC64NVME", "SHA256", "CRC32", "CRC32C", "SHA1"],
            full_object_checksums: true,
            trailing_checksums: true,
            conditional_writes: true,
            tagging: true,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    fn rule(
        rules: &StrictRules,
        method: Method,
        query: Option<&str>,
        pairs: &[(&'static str, &'static str)],
    ) -> Option<(Rule, String)> {
        check(rules, &method, query, &headers(pairs)).map(|v| (v.rule, v.culprit))
    }

    #[test]
    fn checksum_algorithms_outside_the_list_are_rejected() {
        let sha_crc = StrictRules {
            checksums: vec!["SHA256", "CRC32"],
            ..none()
        };
        let put = |pairs| rule(&sha_crc, Method::PUT, None, pairs);
        assert_eq!(put(&[("x-amz-checksum-sha256", "abc=")]), None);
        assert_eq!(put(&[("x-amz-checksum-crc32", "abc=")]), None);
        assert_eq!(
            put(&[("x-amz-checksum-crc64nvme", "abc=")]),
            Some((Rule::Checksums, "x-amz-checksum-crc64nvme".into()))
        );
        assert_eq!(
            put(&[("x-amz-sdk-checksum-algorithm", "CRC32C")]),
            Some((Rule::Checksums, "x-amz-sdk-checksum-algorithm".into()))
        );
        assert_eq!(put(&[("x-amz-sdk-checksum-algorithm", "crc32")]), None);
        assert_eq!(
            rule(
                &sha_crc,
                Method::POST,
                Some("uploads"),
                &[("x-amz-checksum-algorithm", "CRC64NVME")]
            ),
            Some((Rule::Checksums, "x-amz-checksum-algorithm".into()))
        );
        // The response-checksum mode of a GET names no algorithm: a store with
        // checksums takes it, one without any refuses it (as B2 does).
        let mode = [("x-amz-checksum-mode", "ENABLED")];
        assert_eq!(rule(&sha_crc, Method::GET, None, &mode), None);
        assert_eq!(
            rule(&none(), Method::GET, None, &mode),
            Some((Rule::Checksums, "x-amz-checksum-mode".into()))
        );
        // A store without checksums takes none at all.
        assert_eq!(
            rule(
                &none(),
                Method::PUT,
                None,
                &[("x-amz-checksum-sha256", "abc=")]
            ),
            Some((Rule::Checksums, "x-amz-checksum-sha256".into()))
        );
        // A trailer naming an algorithm is checked even where trailers are taken.
        let trailers = StrictRules {
            trailing_checksums: true,
            ..sha_crc.clone()
        };
        assert_eq!(
            rule(
                &trailers,
                Method::PUT,
                None,
                &[("x-amz-trailer", "x-amz-checksum-crc64nvme")]
            ),
            Some((Rule::Checksums, "x-amz-trailer".into()))
        );
        assert_eq!(
            rule(
                &trailers,
                Method::PUT,
                None,
                &[("x-amz-trailer", "x-amz-checksum-crc32")]
            ),
            None
        );
    }

    #[test]
    fn full_object_checksums_and_trailers_are_their_own_rules() {
        let crc = StrictRules {
            checksums: vec!["CRC64NVME", "CRC32"],
            ..none()
        };
        assert_eq!(
            rule(
                &crc,
                Method::POST,
                Some("uploads"),
                &[
                    ("x-amz-checksum-algorithm", "CRC64NVME"),
                    ("x-amz-checksum-type", "FULL_OBJECT")
                ]
            ),
            Some((Rule::FullObjectChecksums, "x-amz-checksum-type".into()))
        );
        assert_eq!(
            rule(
                &crc,
                Method::POST,
                Some("uploads"),
                &[("x-amz-checksum-type", "COMPOSITE")]
            ),
            None
        );
        for (pairs, culprit) in [
            (
                &[("x-amz-trailer", "x-amz-checksum-crc32")][..],
                "x-amz-trailer",
            ),
            (
                &[("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")][..],
                "x-amz-content-sha256",
            ),
            (
                &[("content-encoding", "gzip, aws-chunked")][..],
                "content-encoding",
            ),
        ] {
            assert_eq!(
                rule(&crc, Method::PUT, Some("partNumber=1&uploadId=u"), pairs),
                Some((Rule::TrailingChecksums, culprit.into())),
                "{pairs:?}"
            );
        }
        assert_eq!(
            rule(
                &crc,
                Method::PUT,
                None,
                &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]
            ),
            None
        );
    }

    #[test]
    fn conditional_writes_are_if_none_match_on_a_put_or_a_completion() {
        let inm = &[("if-none-match", "*")][..];
        assert_eq!(
            rule(&none(), Method::PUT, None, inm),
            Some((Rule::ConditionalWrites, "if-none-match".into()))
        );
        assert_eq!(
            rule(&none(), Method::POST, Some("uploadId=abc"), inm),
            Some((Rule::ConditionalWrites, "if-none-match".into()))
        );
        // A conditional read is plain HTTP, which every store has.
        assert_eq!(rule(&none(), Method::GET, None, inm), None);
        assert_eq!(rule(&none(), Method::POST, Some("uploads"), inm), None);
        assert_eq!(rule(&all(), Method::PUT, None, inm), None);
    }

    #[test]
    fn tagging_is_a_header_or_the_subresource() {
        assert_eq!(
            rule(&none(), Method::PUT, None, &[("x-amz-tagging", "a=b")]),
            Some((Rule::Tagging, "x-amz-tagging".into()))
        );
        for (method, query) in [
            (Method::GET, "tagging"),
            (Method::PUT, "tagging="),
            (Method::DELETE, "versionId=1&tagging"),
        ] {
            assert_eq!(
                rule(&none(), method.clone(), Some(query), &[]),
                Some((Rule::Tagging, "?tagging".into())),
                "{method} ?{query}"
            );
        }
        // Only the parameter's name counts.
        assert_eq!(
            rule(&none(), Method::GET, Some("prefix=tagging"), &[]),
            None
        );
        assert_eq!(rule(&all(), Method::GET, Some("tagging"), &[]), None);
    }

    #[test]
    fn requests_are_counted_as_a_bill_names_them() {
        let none = HeaderMap::new();
        let get = |q: &str| verb(&Method::GET, Some(q), &none);
        assert_eq!(get("list-type=2&prefix=runs%2F"), "S3 GET list");
        assert_eq!(get("tagging"), "S3 GET tagging");
        assert_eq!(verb(&Method::GET, None, &none), "S3 GET");
        assert_eq!(verb(&Method::HEAD, None, &none), "S3 HEAD");
        assert_eq!(
            verb(&Method::PUT, Some("partNumber=1&uploadId=u"), &none),
            "S3 PUT part"
        );
        assert_eq!(
            verb(&Method::POST, Some("uploadId=u"), &none),
            "S3 POST multipart"
        );
        let sqs = headers(&[("x-amz-target", "AmazonSQS.ReceiveMessage")]);
        assert_eq!(verb(&Method::POST, None, &sqs), "SQS ReceiveMessage");
    }

    #[test]
    fn a_plain_request_passes_the_strictest_rules() {
        let plain = &[
            ("host", "127.0.0.1:4566"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-meta-repository", "acme/api"),
            ("content-md5", "abc="),
        ][..];
        assert_eq!(rule(&none(), Method::PUT, None, plain), None);
        assert_eq!(rule(&none(), Method::GET, Some("list-type=2"), plain), None);
        assert_eq!(rule(&none(), Method::POST, Some("uploadId=u"), plain), None);
    }

    #[test]
    fn answers_are_s3_errors() {
        let v = check(
            &none(),
            &Method::PUT,
            None,
            &headers(&[("if-none-match", "*")]),
        )
        .unwrap();
        assert_eq!(
            v.rule.answer(),
            (StatusCode::NOT_IMPLEMENTED, "NotImplemented")
        );
        let xml = v.xml("r1");
        assert!(
            xml.contains("<Code>NotImplemented</Code>")
                && xml.contains("<Header>if-none-match</Header>"),
            "{xml}"
        );
        let v = check(
            &none(),
            &Method::PUT,
            None,
            &headers(&[("x-amz-checksum-crc32", "x")]),
        )
        .unwrap();
        assert_eq!(
            v.rule.answer(),
            (StatusCode::BAD_REQUEST, "InvalidArgument")
        );
        assert!(
            v.xml("r2").contains(
                "<Message>Unsupported header &apos;x-amz-checksum-crc32&apos; received for this API call.</Message>"
            ),
            "{}",
            v.xml("r2")
        );
    }

    /// An upstream that answers every request with what it received.
    async fn echo_upstream() -> String {
        use axum::extract::Request;
        let app = axum::Router::new().fallback(|req: Request| async move {
            let mut text = format!("{} {}\n", req.method(), req.uri());
            for (k, v) in req.headers() {
                text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .unwrap();
            text.push_str(&format!("body {}", body.len()));
            ([("x-upstream", "yes")], text)
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[test]
    fn faults_are_spread_evenly_and_never_twice_in_a_row() {
        let hits: Vec<u64> = (1..=1000).filter(|&n| Faults::hits(n, 20)).collect();
        assert_eq!(hits.len(), 20);
        assert_eq!(hits[..3], [50, 100, 150]);
        assert!((1..=1000).all(|n| !Faults::hits(n, 0)));
        let ten: Vec<u64> = (1..=1000).filter(|&n| Faults::hits(n, 10)).collect();
        assert!(ten.windows(2).all(|w| w[1] - w[0] == 100), "{ten:?}");
    }

    #[tokio::test]
    async fn injected_faults_are_s3_and_sqs_errors_a_client_retries() {
        let upstream = echo_upstream().await;
        let faults = Faults {
            s3_per_mille: 500,
            sqs_per_mille: 500,
        };
        let proxy = StrictS3::with_faults(&upstream, none(), faults).await;
        let get = |url: String| async move { crate::http::request("GET", &url, &[], vec![]).await };
        let s3 = format!("{}/bucket/k", proxy.endpoint);
        // Every second S3 request: 503 SlowDown, then 500 InternalError.
        assert_eq!(get(s3.clone()).await.0, 200);
        let (status, text) = get(s3.clone()).await;
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("<Code>SlowDown</Code>"), "{text}");
        assert_eq!(get(s3.clone()).await.0, 200);
        let (status, text) = get(s3.clone()).await;
        assert_eq!(status, 500, "{text}");
        assert!(text.contains("<Code>InternalError</Code>"), "{text}");
        // SQS (a JSON-protocol request) is counted apart.
        let sqs = |body: &'static str| {
            let url = proxy.endpoint.clone();
            async move {
                crate::http::request(
                    "POST",
                    &url,
                    &[("x-amz-target", "AmazonSQS.SendMessage")],
                    body.as_bytes().to_vec(),
                )
                .await
            }
        };
        assert_eq!(sqs("{}").await.0, 200);
        let (status, text) = sqs("{}").await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("ThrottlingException"), "{text}");
        assert_eq!(
            proxy.fault_counts(),
            FaultCounts {
                s3_requests: 4,
                s3_faults: 2,
                sqs_requests: 2,
                sqs_faults: 1
            }
        );
        // Only what went through is billed.
        assert_eq!(proxy.served().values().sum::<u64>(), 3);
    }

    #[tokio::test]
    async fn forwards_what_it_takes_verbatim_and_answers_the_rest_itself() {
        let upstream = echo_upstream().await;
        let proxy = StrictS3::start(&upstream, none()).await;
        let url = format!("{}/bucket/a%20key?x-id=PutObject", proxy.endpoint);
        let (status, text) = crate::http::request(
            "PUT",
            &url,
            &[("host", "s3.example:9000"), ("x-amz-meta-a", "b")],
            vec![7; 100_000],
        )
        .await;
        assert_eq!(status, 200, "{text}");
        assert!(
            text.starts_with("PUT /bucket/a%20key?x-id=PutObject\n"),
            "{text}"
        );
        assert!(
            text.contains("host: s3.example:9000\n"),
            "Host as sent: {text}"
        );
        assert!(
            text.contains("x-amz-meta-a: b\n") && text.ends_with("body 100000"),
            "{text}"
        );

        let (status, text) = crate::http::request(
            "PUT",
            &format!("{}/bucket/k", proxy.endpoint),
            &[("if-none-match", "*")],
            vec![7; 1 << 20],
        )
        .await;
        assert_eq!(status, 501, "{text}");
        assert!(text.contains("<Code>NotImplemented</Code>"), "{text}");
        let (status, text) = crate::http::request(
            "GET",
            &format!("{}/bucket/k?tagging", proxy.endpoint),
            &[],
            vec![],
        )
        .await;
        assert_eq!(status, 501, "{text}");
        assert_eq!(
            proxy.rejected(),
            [
                "PUT /bucket/k conditional_writes (if-none-match)",
                "GET /bucket/k tagging (?tagging)"
            ]
        );
    }
}
