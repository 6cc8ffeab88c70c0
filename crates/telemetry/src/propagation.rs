//! One job, one trace, across processes: the W3C trace context (`traceparent`,
//! `tracestate`) of a span, as a plain map a job message carries, and a span
//! continued from such a map. Without an exporter the map is empty and nothing
//! happens.

use std::collections::BTreeMap;

use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C trace context of `span` (empty values left out: SQS refuses them).
pub fn context_of(span: &tracing::Span) -> BTreeMap<String, String> {
    let mut carrier = std::collections::HashMap::new();
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut carrier));
    carrier.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

/// Makes `span` a child of the span `carrier` describes. Call it before the span is
/// entered. A missing or malformed context leaves `span` a new trace's root.
pub fn continue_from(span: &tracing::Span, carrier: &BTreeMap<String, String>) {
    if carrier.is_empty() {
        return;
    }
    let map: std::collections::HashMap<String, String> = carrier.clone().into_iter().collect();
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&map));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Records `span`'s trace and span ids in its `trace_id` and `span_id` fields (declare
/// them `Empty`): log lines inside it then name their trace. No-op without an exporter.
pub fn record_ids(span: &tracing::Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", span_context.trace_id().to_string());
        span.record("span_id", span_context.span_id().to_string());
    }
}
