//! The recorder: stores every event of the calls stream (`DRAGOMAN_CALLS`: call events, final
//! transcripts, final translations) in the [`CallStore`], through the durable consumer
//! [`RECORDER_DURABLE`], and acknowledges an event only once the store has it.
//!
//! Partials travel outside the stream (`calls.<id>.partials`, core NATS), so the recorder never
//! sees them. A store that is down is waited for: the event is retried inside its handler for a
//! while, then handed back (nak) to come again, and the consumer never gives up on an event
//! while the stream holds it. Events come again after a crash or restart of the API, NATS or
//! Redis; storing is idempotent by event id, so nothing is stored twice.

use std::time::Duration;

use dragoman_bus::subjects::RECORDER_DURABLE;
use dragoman_bus::{Bus, ConsumerSpec, Event, wire};
use dragoman_runtime::Shutdown;
use dragoman_runtime::worker::{HandleError, consume_durable};

use crate::store::{Applied, CallStore, StoreError};

/// How long one delivery keeps retrying a store that is down before it is handed back; well
/// under the consumer's ack wait, so it is not delivered a second time meanwhile.
const RETRY_WITHIN: Duration = Duration::from_secs(10);

/// The consumer's ack wait.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Delay before a handed-back event comes again.
const NAK_DELAY: Duration = Duration::from_secs(1);

/// The recorder's durable consumer on the calls stream. It never gives up on an event (the
/// stream's retention bounds how long one can wait), and holds few unacknowledged events, so
/// that while the store is down few sit in its buffer past their ack wait.
pub fn consumer_spec(bus: &Bus) -> ConsumerSpec {
    ConsumerSpec::new(bus.subjects().calls_stream(), RECORDER_DURABLE)
        .ack_wait(ACK_WAIT)
        .max_deliver(i32::MAX as u32)
        .max_ack_pending(256)
}

/// Stores the calls stream in `store` until shutdown. `concurrency` events are stored at once;
/// their order within a call may then differ from the stream's, which the store's sequence
/// numbers reflect. If the consumer cannot be reached (NATS down at start) or its stream of
/// deliveries ends, it is attached again after a pause.
pub async fn run<S: CallStore>(bus: Bus, store: S, concurrency: usize, shutdown: Shutdown) -> anyhow::Result<()> {
    let spec = consumer_spec(&bus);
    tracing::info!(durable = RECORDER_DURABLE, stream = %spec.stream, concurrency, "recorder started");
    let handler = |event: Event| record(&store, event, &shutdown);
    while !shutdown.is_triggered() {
        match consume_durable(&bus, &spec, &shutdown, concurrency, decode, handler).await {
            Ok(()) if shutdown.is_triggered() => break,
            Ok(()) => tracing::warn!(durable = RECORDER_DURABLE, "recorder's deliveries ended; attaching again"),
            Err(err) => tracing::warn!(durable = RECORDER_DURABLE, error = %err, "recorder cannot attach; retrying"),
        }
        tokio::select! {
            () = shutdown.triggered() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    tracing::info!("recorder stopped");
    Ok(())
}

fn decode(message: &dragoman_bus::Message) -> Result<Event, dragoman_bus::DecodeError> {
    wire::decode_event(&message.payload)
}

/// Stores one event; `Ok` means the store has it (now or from before).
async fn record<S: CallStore>(store: &S, event: Event, shutdown: &Shutdown) -> Result<(), HandleError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let error = match store.apply(&event).await {
            Ok(applied) => {
                let outcome = match applied {
                    Applied::Stored { .. } => "stored",
                    Applied::Duplicate { .. } => "duplicate",
                    Applied::Ignored => "ignored",
                };
                metrics::counter!("dragoman_recorder_events_total", "outcome" => outcome).increment(1);
                return Ok(());
            }
            Err(err) if !err.is_retryable() => {
                return Err(HandleError::Permanent(err.to_string()));
            }
            Err(err) => err,
        };
        metrics::counter!("dragoman_recorder_store_errors_total").increment(1);
        if started.elapsed() + pause > RETRY_WITHIN || shutdown.is_triggered() {
            return Err(retry(&error));
        }
        tracing::debug!(error = %error, "store failed; retrying");
        tokio::select! {
            () = shutdown.triggered() => return Err(retry(&error)),
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn retry(error: &StoreError) -> HandleError {
    HandleError::Retry { reason: error.to_string(), delay: NAK_DELAY }
}
