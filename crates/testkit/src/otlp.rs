//! An OTLP/HTTP receiver, as a collector would be: `POST /v1/traces` and
//! `POST /v1/metrics` with protobuf bodies, decoded with the official OpenTelemetry
//! protobuf definitions (`opentelemetry-proto`), kept for tests to look at.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;

/// A span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of the process that sent it.
    pub service: String,
    pub name: String,
    /// Hex, as W3C trace context writes them.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// The span's status is an error.
    pub error: bool,
}

/// One data point of a metric as received.
#[derive(Debug, Clone)]
pub struct ReceivedPoint {
    pub service: String,
    pub metric: String,
    pub unit: String,
    pub attributes: BTreeMap<String, String>,
    /// A sum's or gauge's value, a histogram's sum.
    pub value: f64,
    /// A histogram's count (0 for sums and gauges).
    pub count: u64,
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    points: Vec<ReceivedPoint>,
    requests: u64,
}

/// A running receiver. Stops when dropped.
pub struct OtlpReceiver {
    endpoint: String,
    received: Arc<Mutex<Received>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl OtlpReceiver {
    pub async fn start() -> anyhow::Result<OtlpReceiver> {
        let received = Arc::new(Mutex::new(Received::default()));
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/metrics", post(metrics))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(OtlpReceiver {
            endpoint,
            received,
            _stop: stop,
        })
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` should say.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// Every data point received (cumulative exports repeat a point: the last wins).
    pub fn points(&self) -> Vec<ReceivedPoint> {
        self.lock().points.clone()
    }

    /// Export requests received.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn ok() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(axum::body::Body::empty())
        .expect("valid response")
}

fn bad(e: impl std::fmt::Display) -> Response {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .body(axum::body::Body::from(e.to_string()))
        .expect("valid response")
}

async fn traces(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut received = received.lock().unwrap_or_else(|p| p.into_inner());
    received.requests += 1;
    for resource_spans in request.resource_spans {
        let service = service_of(resource_spans.resource.as_ref().map(|r| &r.attributes[..]));
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.spans.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    // STATUS_CODE_ERROR = 2
                    error: span.status.is_some_and(|s| s.code == 2),
                });
            }
        }
    }
    ok()
}

async fn metrics(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> Response {
    let request = match ExportMetricsServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut received = received.lock().unwrap_or_else(|p| p.into_inner());
    received.requests += 1;
    for resource_metrics in request.resource_metrics {
        let service = service_of(
            resource_metrics
                .resource
                .as_ref()
                .map(|r| &r.attributes[..]),
        );
        for scope in resource_metrics.scope_metrics {
            for m in scope.metrics {
                let point = |attrs: &[KeyValue], value: f64, count: u64| ReceivedPoint {
                    service: service.clone(),
                    metric: m.name.clone(),
                    unit: m.unit.clone(),
                    attributes: attributes(attrs),
                    value,
                    count,
                };
                let number = |p: &Option<number_data_point::Value>| match p {
                    Some(number_data_point::Value::AsDouble(v)) => *v,
                    Some(number_data_point::Value::AsInt(v)) => *v as f64,
                    None => 0.0,
                };
                let points: Vec<ReceivedPoint> = match &m.data {
                    Some(metric::Data::Sum(sum)) => sum
                        .data_points
                        .iter()
                        .map(|p| point(&p.attributes, number(&p.value), 0))
                        .collect(),
                    Some(metric::Data::Gauge(gauge)) => gauge
                        .data_points
                        .iter()
                        .map(|p| point(&p.attributes, number(&p.value), 0))
                        .collect(),
                    Some(metric::Data::Histogram(h)) => h
                        .data_points
                        .iter()
                        .map(|p| point(&p.attributes, p.sum.unwrap_or(0.0), p.count))
                        .collect(),
                    _ => Vec::new(),
                };
                received.points.extend(points);
            }
        }
    }
    ok()
}

fn service_of(attributes: Option<&[KeyValue]>) -> String {
    attributes
        .map(self::attributes)
        .and_then(|a| a.get("service.name").cloned())
        .unwrap_or_default()
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
