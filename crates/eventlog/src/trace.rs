//! Trace context through the event log (链路追踪): a command's span, the relay's publish and
//! every consumer's apply in every service form one trace.
//!
//! A store puts the W3C `traceparent` of the span it writes in (the request's) into each event's
//! envelope JSON (field `traceparent`); the relay and the consumer runner read it back and make
//! their spans children of it. Spans are exported only when the process installed an
//! OpenTelemetry layer ([`enable`], called by `banli serve` when `otlp_endpoint` is set); until
//! then nothing here allocates a span per event.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Marks this process as exporting traces: the relay and the consumers open a span per event.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether this process exports traces.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The W3C `traceparent` of the current span, when it belongs to an exported trace.
pub fn traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    of_context(&tracing::Span::current().context())
}

/// The trace context for events written in the course of applying an event: the current
/// span's, else the one the applied event's envelope carries (a consumer applies a batch at
/// once, outside any one event's span). `None` when tracing is off.
pub fn inherited(payload: &[u8]) -> Option<String> {
    if !enabled() {
        return None;
    }
    traceparent().or_else(|| of_payload(payload))
}

/// The W3C `traceparent` of an OpenTelemetry context, when it holds a valid span.
pub fn of_context(cx: &opentelemetry::Context) -> Option<String> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The remote parent a `traceparent` names (version `00`, lowercase hex, ids not all zero);
/// `None` for anything else.
pub fn parse(traceparent: &str) -> Option<opentelemetry::Context> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if parts.next().is_some()
        || version != "00"
        || !hex(trace, 32)
        || !hex(span, 16)
        || !hex(flags, 2)
    {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    sc.is_valid()
        .then(|| opentelemetry::Context::new().with_remote_span_context(sc))
}

/// Makes `span` a child of the trace a `traceparent` names (nothing when it names none).
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(cx) = traceparent.and_then(parse) {
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` an event's envelope JSON carries, if any.
pub fn of_payload(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Carrier {
        traceparent: Option<String>,
    }
    serde_json::from_slice::<Carrier>(payload)
        .ok()
        .and_then(|c| c.traceparent)
}

/// A span for one event handled by `stage` (`publish`, `apply`) in a process that exports
/// traces, child of the trace its envelope carries; `None` when tracing is off.
pub fn event_span(stage: &'static str, who: &str, e: &crate::Envelope) -> Option<tracing::Span> {
    if !enabled() {
        return None;
    }
    let span = tracing::info_span!(
        "event",
        otel.name = %format!("{stage} {}", e.event_type),
        otel.kind = if stage == "publish" { "producer" } else { "consumer" },
        messaging.system = "banli",
        messaging.operation = stage,
        messaging.destination.name = %e.event_type,
        messaging.consumer.group.name = who,
        messaging.message.id = %e.event_id,
        banli.aggregate_id = %e.aggregate_id,
        banli.aggregate_version = e.aggregate_version,
        banli.outcome = tracing::field::Empty,
    );
    follow(&span, of_payload(&e.payload).as_deref());
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_bad_ones_are_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parse(tp).expect("a valid traceparent");
        assert_eq!(of_context(&cx).as_deref(), Some(tp));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_envelope_carries_it() {
        let p = br#"{"event_id":"x","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
        assert_eq!(
            of_payload(p).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        assert_eq!(of_payload(br#"{"event_id":"x"}"#), None);
        assert_eq!(of_payload(b"not json"), None);
    }

    #[test]
    fn nothing_without_an_exporter() {
        // No OpenTelemetry layer in this test process: no context to carry.
        assert_eq!(of_context(&opentelemetry::Context::new()), None);
    }
}
