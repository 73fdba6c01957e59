//! One place that sets up structured logging and, when `otlp_endpoint` is set, the export of
//! traces over OTLP/gRPC (OpenTelemetry).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogConfig;

/// Where traces go, and under which service name.
#[derive(Debug, Clone)]
pub struct Otlp {
    /// e.g. `http://127.0.0.1:4317` (an OpenTelemetry collector's OTLP/gRPC port).
    pub endpoint: String,
    /// `service.name` of this process's spans, e.g. `banli-coordination`.
    pub service: String,
}

/// What must be shut down at exit: the trace exporter flushes what it holds.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still held (at most a few seconds), then stops the exporter.
    pub async fn shutdown(self) {
        if let Some(p) = self.provider {
            // The batch processor's thread hands its last export to this runtime: wait for
            // it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = p.shutdown_with_timeout(Duration::from_secs(5)) {
                    eprintln!("warning: traces not exported at exit: {e}");
                }
            })
            .await;
        }
    }
}

/// Logging to stderr (text or JSON, filtered by `log.level`); with `otlp`, also every span to
/// an OTLP/gRPC endpoint. `otlp` needs a Tokio runtime: the exporter's calls run on it.
pub fn init(log: &LogConfig, otlp: Option<&Otlp>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|e| {
        eprintln!(
            "warning: log level `{}` is not a valid filter ({e}); using `info`",
            log.level
        );
        EnvFilter::new("info")
    });
    // Colours only on a terminal: a log redirected to a file carries no escape codes.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt: Box<dyn Layer<_> + Send + Sync> = if log.format == "json" {
        Box::new(fmt.json().with_filter(filter))
    } else {
        Box::new(fmt.with_filter(filter))
    };
    let provider = match otlp {
        None => None,
        Some(o) => Some(provider(o)?),
    };
    let otel = provider.as_ref().map(|p| {
        // The log level filters the log only: traces keep every span down to `info`.
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("banli"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    if let Some(o) = otlp {
        banli_eventlog::trace::enable();
        tracing::info!(endpoint = %o.endpoint, service = %o.service, "exporting traces over OTLP/gRPC");
    }
    Ok(Telemetry { provider })
}

fn provider(o: &Otlp) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(o.endpoint.clone())
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot set up the trace exporter for {}: {e}; check otlp_endpoint (e.g. http://127.0.0.1:4317)",
                o.endpoint
            )
        })?;
    let exporter = OnRuntime {
        inner: Arc::new(exporter),
        runtime: tokio::runtime::Handle::try_current().map_err(|_| {
            anyhow::anyhow!("the trace exporter needs a Tokio runtime (a bug: init it in one)")
        })?,
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(o.service.clone())
                .build(),
        )
        .build())
}

/// The OTLP exporter, run on the process's Tokio runtime: the SDK's batch processor exports
/// from a thread of its own, where tonic's connection (a Tokio reactor) cannot be driven.
#[derive(Debug)]
struct OnRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: tokio::runtime::Handle,
}

impl SpanExporter for OnRuntime {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = self.inner.clone();
        match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(r) => r,
            Err(e) => Err(OTelSdkError::InternalFailure(format!(
                "the export task ended: {e}"
            ))),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}
