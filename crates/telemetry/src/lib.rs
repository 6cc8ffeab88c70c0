//! # repovault-telemetry
//!
//! Logs, traces and metrics for every binary, set up in one place ([`init`]):
//!
//! - logs on stderr, JSON or compact text, `RUST_LOG` over the default level;
//! - with `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`)
//!   set, every `tracing` span is also an OpenTelemetry span, and the instruments of
//!   [`metrics`] are exported, both over OTLP/HTTP (protobuf). The standard variables
//!   apply (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`…).
//!   Without them nothing is exported and the instruments are no-ops;
//! - [`propagation`]: the W3C trace context a job message carries from the planner to
//!   the worker, so one job is one trace across processes; and the trace and span ids
//!   recorded on a span, so a log line leads to its trace.
//!
//! ```no_run
//! let telemetry = repovault_telemetry::init(true, "info", "repovault-worker");
//! repovault_telemetry::metrics().jobs.add(1, &[repovault_telemetry::kv("outcome", "ok")]);
//! telemetry.shutdown(); // exports what is left
//! ```

mod instruments;
pub mod propagation;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use instruments::{Metrics, metrics};
pub use opentelemetry::KeyValue;

/// A metric attribute.
pub fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

/// The exporters [`init`] started; [`Telemetry::shutdown`] flushes them.
#[must_use = "call shutdown() before exiting, or the last spans and metrics are lost"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Whether spans and metrics are exported.
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports what is buffered and stops the exporters. Call it outside the async
    /// runtime, once the work is done.
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer
            && let Err(e) = tracer.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
        if let Some(meter) = self.meter
            && let Err(e) = meter.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last metrics failed");
        }
    }
}

/// Whether the environment asks for OTLP export.
fn otlp_wanted() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
}

/// Installs the global subscriber (logs; spans over OTLP when asked) and the meter
/// provider. `service` names the process unless `OTEL_SERVICE_NAME` does. Call it
/// before starting an async runtime (the OTLP client is a blocking one, on its own
/// threads). A second call keeps the first subscriber.
pub fn init(json: bool, default_level: &str, service: &str) -> Telemetry {
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{default_level},hyper=warn,octocrab=warn,aws=warn,opentelemetry=warn,reqwest=warn"
            ))
        })
    };
    let (tracer, meter) = if otlp_wanted() {
        match exporters(service) {
            Ok(pair) => (Some(pair.0), Some(pair.1)),
            Err(e) => {
                eprintln!("warning: OpenTelemetry export not started: {e}");
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    // Spans are exported from repovault's own crates at info level, whatever
    // `RUST_LOG` asks of the logs: a quiet log must not mean no traces.
    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("repovault"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("repovault", tracing::Level::INFO),
            )
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter())
            .boxed()
    } else {
        // Colour only on a terminal: a pipe or a file gets plain text.
        fmt.compact()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter())
            .boxed()
    };
    // A second init (tests calling a binary's entry twice) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init();
    Telemetry { tracer, meter }
}

use tracing_subscriber::Layer as _;

fn exporters(service: &str) -> Result<(SdkTracerProvider, SdkMeterProvider), String> {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_owned());
    }
    let resource = resource.build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics).build();
    let meter = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_tracer_provider(tracer.clone());
    opentelemetry::global::set_meter_provider(meter.clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok((tracer, meter))
}
