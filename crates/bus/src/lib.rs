//! Dragoman's bus: the contract between services and with other internal systems.
//!
//! Layout:
//! - [`subjects`]: every subject and stream name, versioned (`dragoman.v1.…`). Only this crate
//!   builds subject strings.
//! - [`events`]: the JSON events about calls (CallStarted … TranslationProduced).
//! - [`audio`]: utterance audio for STT (codec bytes as payload, metadata in headers).
//! - [`control`]: request/reply messages (allocate an RTP endpoint, originate, hang up, set language).
//! - [`wire`]: encoding and decoding; only this crate serializes wire types.
//! - [`language`]: the one language table (BCP 47 ↔ Whisper, NLLB-200, M2M100, OPUS-MT, Apertium).
//! - [`Bus`]: publish/subscribe, queue groups, request/reply and durable (JetStream) streams,
//!   over NATS or in-process with the same semantics (held to one conformance suite).
//! - [`trace`]: W3C `traceparent` in headers.
//!
//! The subject catalogue, with what producers and consumers MUST do, is in this crate's README.

pub mod audio;
mod client;
pub mod control;
pub mod events;
pub mod headers;
pub mod language;
mod memory;
mod nats;
pub mod subjects;
pub mod trace;
pub mod wire;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use client::{
    Bus, BusError, ConsumerSpec, Delivery, DurableSubscription, Message, NatsOptions, Retention, StartAt, StreamSpec,
    Subscription,
};
pub use events::Event;
pub use headers::Headers;
pub use language::{Language, LanguageError};
pub use subjects::{CallSubjectKind, Subjects};
pub use wire::DecodeError;

/// Limits for the streams Dragoman creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// How long call events, transcripts and translations stay replayable.
    pub calls_max_age: Duration,
    pub calls_max_bytes: i64,
    /// How long a final utterance may wait for an STT worker.
    pub stt_max_age: Duration,
    /// Past this, media ingest is told the queue is full (finals wait, they are never dropped).
    pub stt_max_bytes: i64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            calls_max_age: Duration::from_secs(24 * 3600),
            calls_max_bytes: 1 << 30,
            stt_max_age: Duration::from_secs(3600),
            stt_max_bytes: 1 << 30,
        }
    }
}

/// The durable streams every deployment needs: call subjects (limits) and final utterances
/// (work queue).
pub fn standard_streams(subjects: &Subjects, limits: StreamLimits) -> [StreamSpec; 2] {
    [
        StreamSpec {
            name: subjects.calls_stream(),
            subjects: [CallSubjectKind::Events, CallSubjectKind::Transcripts, CallSubjectKind::Translations]
                .map(|kind| subjects.all_calls(kind))
                .to_vec(),
            retention: Retention::Limits,
            max_age: limits.calls_max_age,
            max_bytes: limits.calls_max_bytes,
            duplicate_window: Duration::from_secs(120),
        },
        StreamSpec {
            name: subjects.stt_stream(),
            subjects: vec![subjects.stt_final()],
            retention: Retention::WorkQueue,
            max_age: limits.stt_max_age,
            max_bytes: limits.stt_max_bytes,
            duplicate_window: Duration::from_secs(120),
        },
    ]
}

impl Bus {
    /// Creates (or updates) the [`standard_streams`].
    pub async fn ensure_standard_streams(&self, limits: StreamLimits) -> Result<(), BusError> {
        for spec in standard_streams(self.subjects(), limits) {
            self.ensure_stream(&spec).await?;
        }
        Ok(())
    }

    /// Publishes an event on its call's subject: durably (stored before this returns) for
    /// events, final transcripts and translations; fire-and-forget for partials. The event id
    /// is the de-duplication id, so publishing the same event twice stores it once.
    pub async fn publish_event(&self, event: &Event) -> Result<(), BusError> {
        let meta = event.meta().ok_or_else(|| BusError::backend("publish event", "cannot publish an unknown event"))?;
        let kind = event.subject_kind();
        let subject = self.subjects().call(&meta.call_id, kind).map_err(|e| BusError::backend("publish event", e))?;
        let mut headers = Headers::new()
            .with(headers::EVENT_TYPE, event.type_name())
            .with(headers::MSG_ID, meta.event_id.to_string());
        trace::inject_current(&mut headers);
        let payload = wire::encode(event);
        if kind.is_durable() {
            self.publish_durable(&subject, headers, payload).await
        } else {
            self.publish(&subject, headers, payload).await
        }
    }

    /// Sends a JSON request and decodes the JSON [`control::Reply`].
    pub async fn request_json<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        subject: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<control::Reply<Resp>, RequestError> {
        let mut headers = Headers::new();
        trace::inject_current(&mut headers);
        let reply = self.request(subject, headers, wire::encode(request), timeout).await?;
        Ok(wire::decode(&reply.payload)?)
    }

    /// Answers a request with a JSON [`control::Reply`].
    pub async fn respond_json<T: Serialize>(
        &self,
        request: &Message,
        reply: &control::Reply<T>,
    ) -> Result<(), BusError> {
        self.respond(request, Headers::new(), wire::encode(reply)).await
    }
}

/// A JSON request failed on the bus or came back unreadable.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("unreadable reply: {0}")]
    Decode(#[from] DecodeError),
}

/// The subject with its call id replaced by `*`, for metric labels of bounded cardinality.
pub fn subject_family(subjects: &Subjects, subject: &str) -> String {
    match subjects.parse_call(subject) {
        Ok((_, kind)) => subjects.all_calls(kind),
        Err(_) => subject.to_owned(),
    }
}

/// Logs and counts a message that could not be understood. The caller then skips it (and acks
/// it, when durable): a bad message never crashes or stalls a service.
pub fn record_invalid(subjects: &Subjects, subject: &str, error: &dyn fmt::Display) {
    let family = subject_family(subjects, subject);
    tracing::warn!(subject, error = %error, "invalid message skipped");
    metrics::counter!("dragoman_bus_invalid_total", "subject" => family).increment(1);
}
