//! The [`Bus`]: one handle, two backends (NATS with JetStream, or in-process), one behaviour.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

use crate::headers::Headers;
use crate::subjects::Subjects;
use crate::{memory, nats};

/// A message as a subscriber sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// Where to send the answer, for requests.
    pub reply: Option<String>,
}

/// Something went wrong talking to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no service answers on {subject}")]
    NoResponders { subject: String },
    #[error("request on {subject} timed out after {timeout:?}")]
    Timeout { subject: String, timeout: Duration },
    #[error("no durable stream stores {subject}")]
    NoStream { subject: String },
    #[error("stream {stream} is full")]
    StreamFull { stream: String },
    #[error("message has no reply subject")]
    NoReplySubject,
    #[error("{operation}: {reason}")]
    Backend { operation: &'static str, reason: String },
    #[error("bus is closed")]
    Closed,
}

impl BusError {
    pub(crate) fn backend(operation: &'static str, err: impl fmt::Display) -> Self {
        Self::Backend { operation, reason: err.to_string() }
    }
}

/// How a JetStream stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Kept until `max_age` or `max_bytes` (call subjects: replayable by any consumer).
    Limits,
    /// Removed once acknowledged (final utterances: a work queue).
    WorkQueue,
}

/// A durable stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub subjects: Vec<String>,
    pub retention: Retention,
    pub max_age: Duration,
    /// Oldest messages are dropped past this for [`Retention::Limits`]; new publishes are
    /// refused for [`Retention::WorkQueue`] (finals wait rather than vanish).
    pub max_bytes: i64,
    /// Messages with the same `Nats-Msg-Id` within this window are stored once.
    pub duplicate_window: Duration,
}

/// Where a new durable consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Every message the stream still holds.
    All,
    /// Only messages published after the consumer was created.
    New,
}

/// A durable consumer: its position survives restarts; several subscribers share its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub stream: String,
    /// Durable name; subscribers with the same name share one position and split the messages.
    pub durable: String,
    /// Subjects to receive (empty = all of the stream).
    pub filter_subjects: Vec<String>,
    /// A delivered message that is not acked within this is delivered again.
    pub ack_wait: Duration,
    /// Give up on a message after this many deliveries (the message is then counted as dead).
    pub max_deliver: u32,
    /// At most this many delivered-but-unacked messages at once (back-pressure).
    pub max_ack_pending: usize,
    pub start_at: StartAt,
}

impl ConsumerSpec {
    pub fn new(stream: impl Into<String>, durable: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            durable: durable.into(),
            filter_subjects: Vec::new(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 10,
            max_ack_pending: 1_000,
            start_at: StartAt::All,
        }
    }

    pub fn filter(mut self, subject: impl Into<String>) -> Self {
        self.filter_subjects.push(subject.into());
        self
    }

    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    pub fn max_deliver(mut self, max_deliver: u32) -> Self {
        self.max_deliver = max_deliver;
        self
    }

    pub fn max_ack_pending(mut self, max_ack_pending: usize) -> Self {
        self.max_ack_pending = max_ack_pending;
        self
    }

    pub fn start_at(mut self, start_at: StartAt) -> Self {
        self.start_at = start_at;
        self
    }
}

/// A stream of core (at-most-once) messages.
pub struct Subscription {
    pub(crate) inner: Pin<Box<dyn Stream<Item = Message> + Send>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subscription")
    }
}

impl Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A stream of durable deliveries; each must be acked, or it comes back after `ack_wait`.
pub struct DurableSubscription {
    pub(crate) inner: Pin<Box<dyn Stream<Item = Result<Delivery, BusError>> + Send>>,
}

impl fmt::Debug for DurableSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DurableSubscription")
    }
}

impl Stream for DurableSubscription {
    type Item = Result<Delivery, BusError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

pub(crate) enum Acker {
    Nats(async_nats::jetstream::message::Acker),
    Memory(memory::Acker),
}

/// One delivery of a durable message.
pub struct Delivery {
    pub message: Message,
    /// 1 on the first delivery, then 2, 3, … on redeliveries.
    pub attempt: u64,
    pub(crate) acker: Acker,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery").field("subject", &self.message.subject).field("attempt", &self.attempt).finish()
    }
}

impl Delivery {
    /// Done with it: it will not be delivered again.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.acker {
            Acker::Nats(acker) => acker.ack().await.map_err(|e| BusError::backend("ack", e)),
            Acker::Memory(acker) => acker.ack(),
        }
    }

    /// Could not handle it now: deliver it again after `delay`.
    pub async fn nak(self, delay: Option<Duration>) -> Result<(), BusError> {
        match self.acker {
            Acker::Nats(acker) => acker
                .ack_with(async_nats::jetstream::AckKind::Nak(delay))
                .await
                .map_err(|e| BusError::backend("nak", e)),
            Acker::Memory(acker) => acker.nak(delay.unwrap_or_default()),
        }
    }

    /// It can never be handled (malformed): never deliver it again.
    pub async fn term(self) -> Result<(), BusError> {
        match self.acker {
            Acker::Nats(acker) => {
                acker.ack_with(async_nats::jetstream::AckKind::Term).await.map_err(|e| BusError::backend("term", e))
            }
            Acker::Memory(acker) => acker.term(),
        }
    }
}

#[derive(Clone)]
enum Backend {
    Nats(nats::NatsBus),
    Memory(memory::MemoryBus),
}

/// A handle to the bus; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    backend: Backend,
    subjects: Subjects,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.backend {
            Backend::Nats(_) => "nats",
            Backend::Memory(_) => "in-process",
        };
        f.debug_struct("Bus").field("backend", &kind).field("subjects", &self.subjects).finish()
    }
}

/// How to reach NATS.
#[derive(Clone, Default)]
pub struct NatsOptions {
    /// One or more server URLs, comma-separated.
    pub url: String,
    pub name: Option<String>,
    pub token: Option<String>,
    pub user_password: Option<(String, String)>,
    pub credentials_file: Option<std::path::PathBuf>,
    /// Require TLS, with this CA file to verify the server (system roots when `None`).
    pub tls_required: bool,
    pub tls_ca_file: Option<std::path::PathBuf>,
    pub tls_client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub connect_timeout: Duration,
    /// Capacity of each subscription's buffer; messages past it are dropped and counted.
    pub subscription_capacity: usize,
}

impl fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are deliberately left out.
        f.debug_struct("NatsOptions").field("url", &self.url).field("name", &self.name).finish_non_exhaustive()
    }
}

impl Bus {
    /// Connects to NATS; JetStream must be enabled on the server for durable operations.
    pub async fn connect_nats(options: &NatsOptions, subjects: Subjects) -> Result<Bus, BusError> {
        let backend = nats::NatsBus::connect(options).await?;
        Ok(Bus { backend: Backend::Nats(backend), subjects })
    }

    /// An in-process bus with the same semantics, for `dragoman standalone` and tests.
    /// `capacity` bounds every subscription's buffer.
    pub fn in_process(subjects: Subjects, capacity: usize) -> Bus {
        Bus { backend: Backend::Memory(memory::MemoryBus::new(capacity)), subjects }
    }

    /// The subjects of this bus's namespace.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Whether this bus is the in-process one.
    pub fn is_in_process(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    /// Fire-and-forget publish (core NATS: at most once).
    pub async fn publish(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        match &self.backend {
            Backend::Nats(b) => b.publish(subject, headers, payload, None).await,
            Backend::Memory(b) => b.publish(subject, headers, payload, None),
        }
    }

    /// Publishes and waits until a durable stream has stored the message. Duplicates (same
    /// `Nats-Msg-Id` within the stream's window) are stored once and still succeed.
    pub async fn publish_durable(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        match &self.backend {
            Backend::Nats(b) => b.publish_durable(subject, headers, payload).await,
            Backend::Memory(b) => b.publish_durable(subject, headers, payload),
        }
    }

    /// Every message on subjects matching `subject` (wildcards allowed).
    pub async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.subscribe(subject, None).await,
            Backend::Memory(b) => b.subscribe(subject, None),
        }
    }

    /// Like [`Bus::subscribe`], but each message goes to only one member of `group`.
    pub async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.subscribe(subject, Some(group)).await,
            Backend::Memory(b) => b.subscribe(subject, Some(group)),
        }
    }

    /// Sends a request and waits for the first reply.
    pub async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.request(subject, headers, payload, timeout).await,
            Backend::Memory(b) => b.request(subject, headers, payload, timeout).await,
        }
    }

    /// Answers a request.
    pub async fn respond(&self, request: &Message, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        let reply = request.reply.as_deref().ok_or(BusError::NoReplySubject)?;
        self.publish(reply, headers, payload).await
    }

    /// Creates the stream, or updates it to `spec`.
    pub async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        match &self.backend {
            Backend::Nats(b) => b.ensure_stream(spec).await,
            Backend::Memory(b) => b.ensure_stream(spec),
        }
    }

    /// Deletes a stream and everything in it (tests clean up with this).
    pub async fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        match &self.backend {
            Backend::Nats(b) => b.delete_stream(name).await,
            Backend::Memory(b) => b.delete_stream(name),
        }
    }

    /// Attaches to (creating if needed) a durable consumer.
    pub async fn durable_subscribe(&self, spec: &ConsumerSpec) -> Result<DurableSubscription, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.durable_subscribe(spec).await,
            Backend::Memory(b) => b.durable_subscribe(spec),
        }
    }

    /// Messages a durable consumer has not yet had acked (delivered or waiting).
    pub async fn consumer_pending(&self, stream: &str, durable: &str) -> Result<u64, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.consumer_pending(stream, durable).await,
            Backend::Memory(b) => b.consumer_pending(stream, durable),
        }
    }

    /// Whether the bus is reachable right now.
    pub fn is_connected(&self) -> bool {
        match &self.backend {
            Backend::Nats(b) => b.is_connected(),
            Backend::Memory(_) => true,
        }
    }

    /// Round trip to the server (always fine in-process).
    pub async fn ping(&self) -> Result<Duration, BusError> {
        match &self.backend {
            Backend::Nats(b) => b.ping().await,
            Backend::Memory(_) => Ok(Duration::ZERO),
        }
    }

    /// Flushes what was published; for NATS, then unsubscribes everything and closes.
    pub async fn drain(&self) -> Result<(), BusError> {
        match &self.backend {
            Backend::Nats(b) => b.drain().await,
            Backend::Memory(b) => {
                b.close();
                Ok(())
            }
        }
    }
}
