//! Traces leave the process over OTLP/HTTP when an endpoint is configured, and the trace
//! context rides in bus headers from publisher to subscriber.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use dragoman_bus::{Headers, headers};
use dragoman_runtime::config::TelemetryConfig;
use dragoman_test_support::within;
use futures::StreamExt;
use tracing::Instrument;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_and_traceparent_crosses_the_bus() {
    // A minimal OTLP/HTTP collector that records what it receives.
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = TelemetryConfig { otlp_endpoint: Some(endpoint), metrics_listen: String::new(), ..Default::default() };
    let telemetry = dragoman_runtime::telemetry::init(&config, "test").unwrap();

    let bus = dragoman_test_support::memory_bus();
    let subject = bus.subjects().stt_partial();
    let mut sub = bus.subscribe(&subject).await.unwrap();
    let span = tracing::info_span!("utterance_published", call_id = "c1");
    async {
        let mut h = Headers::new();
        dragoman_bus::trace::inject_current(&mut h);
        bus.publish(&subject, h, Bytes::from_static(b"x")).await.unwrap();
    }
    .instrument(span)
    .await;
    let message = within(5, sub.next()).await.unwrap();
    let traceparent = message.headers.get(headers::TRACEPARENT).expect("traceparent carried").to_owned();
    assert!(traceparent.starts_with("00-") && traceparent.len() == 55, "{traceparent}");

    // The receiving side continues the same trace.
    let child = tracing::info_span!("utterance_received");
    dragoman_bus::trace::continue_trace(&child, &message.headers);
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let trace_id = child.context().span().span_context().trace_id().to_string();
    assert_eq!(&traceparent[3..35], trace_id);
    drop(child);

    // Shutting down flushes the batch to the collector.
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();
    within(10, async {
        while received.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let body = received.lock().unwrap().concat();
    let needle = b"utterance_published";
    assert!(body.windows(needle.len()).any(|w| w == needle), "exported spans include ours");
}
