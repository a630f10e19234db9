//! The in-process bus: the semantics of core NATS and JetStream, inside one process.
//!
//! - Core publish is at most once: each subscription has a bounded buffer; a full buffer drops
//!   the message and counts it in `dragoman_bus_dropped_total`, so a slow subscriber never
//!   slows a publisher.
//! - A queue group delivers each message to one of its members.
//! - Durable streams keep messages by age and size; durable consumers track a position and the
//!   messages delivered but not acked, and deliver those again after `ack_wait` (at least once).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::client::{
    Acker as DeliveryAcker, BusError, ConsumerSpec, Delivery, DurableSubscription, Message, Retention, StartAt,
    StreamSpec, Subscription,
};
use crate::headers::{self, Headers};
use crate::subjects::subject_matches;

#[derive(Clone)]
pub(crate) struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    capacity: usize,
    closed: AtomicBool,
    /// Woken on every durable publish, ack-capacity change and close.
    durable_activity: Notify,
}

#[derive(Default)]
struct State {
    subs: Vec<Sub>,
    next_sub_id: u64,
    group_cursor: HashMap<String, usize>,
    streams: HashMap<String, StreamState>,
}

struct Sub {
    id: u64,
    pattern: String,
    group: Option<String>,
    tx: mpsc::Sender<Message>,
}

struct Stored {
    subject: String,
    headers: Headers,
    payload: Bytes,
    stored_at: Instant,
}

impl Stored {
    fn size(&self) -> i64 {
        (self.subject.len() + self.payload.len() + self.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>())
            as i64
    }
}

struct StreamState {
    spec: StreamSpec,
    messages: BTreeMap<u64, Stored>,
    last_seq: u64,
    bytes: i64,
    dedupe: HashMap<String, Instant>,
    consumers: HashMap<String, ConsumerState>,
}

struct Pending {
    deadline: Instant,
    attempt: u64,
}

struct ConsumerState {
    spec: ConsumerSpec,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
}

impl ConsumerState {
    fn wants(&self, subject: &str) -> bool {
        self.spec.filter_subjects.is_empty() || self.spec.filter_subjects.iter().any(|f| subject_matches(f, subject))
    }
}

impl StreamState {
    fn prune(&mut self, now: Instant) {
        let max_age = self.spec.max_age;
        while let Some(entry) = self.messages.first_entry() {
            let too_old = !max_age.is_zero() && now.duration_since(entry.get().stored_at) > max_age;
            let too_big =
                self.spec.retention == Retention::Limits && self.spec.max_bytes > 0 && self.bytes > self.spec.max_bytes;
            if !(too_old || too_big) {
                break;
            }
            let seq = *entry.key();
            self.bytes -= entry.get().size();
            entry.remove();
            for consumer in self.consumers.values_mut() {
                consumer.pending.remove(&seq);
            }
        }
        let window = self.spec.duplicate_window;
        self.dedupe.retain(|_, at| now.duration_since(*at) <= window);
    }

    fn store(&mut self, subject: &str, headers: &Headers, payload: &Bytes) -> Result<(), BusError> {
        let now = Instant::now();
        self.prune(now);
        if let Some(id) = headers.get(headers::MSG_ID) {
            if self.dedupe.contains_key(id) {
                return Ok(());
            }
            self.dedupe.insert(id.to_owned(), now);
        }
        let stored =
            Stored { subject: subject.to_owned(), headers: headers.clone(), payload: payload.clone(), stored_at: now };
        let size = stored.size();
        if self.spec.retention == Retention::WorkQueue
            && self.spec.max_bytes > 0
            && self.bytes + size > self.spec.max_bytes
        {
            if let Some(id) = headers.get(headers::MSG_ID) {
                self.dedupe.remove(id);
            }
            return Err(BusError::StreamFull { stream: self.spec.name.clone() });
        }
        self.last_seq += 1;
        self.bytes += size;
        self.messages.insert(self.last_seq, stored);
        self.prune(now);
        Ok(())
    }

    fn remove(&mut self, seq: u64) {
        if let Some(stored) = self.messages.remove(&seq) {
            self.bytes -= stored.size();
        }
    }
}

/// What a durable subscriber should do next.
enum Pull {
    Deliver(Delivery),
    WaitUntil(Option<Instant>),
    Gone,
}

impl MemoryBus {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                capacity: capacity.max(1),
                closed: AtomicBool::new(false),
                durable_activity: Notify::new(),
            }),
        }
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, BusError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(BusError::Closed);
        }
        Ok(lock(&self.inner.state))
    }

    /// Delivers to core subscribers and stores in matching streams; returns how many core
    /// subscribers received it.
    fn route(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        reply: Option<String>,
        durable: bool,
    ) -> Result<usize, BusError> {
        crate::subjects::validate_publish_subject(subject)?;
        let mut state = self.state()?;
        let mut stored = false;
        for stream in state.streams.values_mut() {
            if stream.spec.subjects.iter().any(|p| subject_matches(p, subject)) {
                stream.store(subject, &headers, &payload)?;
                stored = true;
            }
        }
        if durable && !stored {
            return Err(BusError::NoStream { subject: subject.to_owned() });
        }
        if stored {
            self.inner.durable_activity.notify_waiters();
        }

        let message = Message { subject: subject.to_owned(), headers, payload, reply };
        state.subs.retain(|s| !s.tx.is_closed());
        let mut delivered = 0;
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, sub) in state.subs.iter().enumerate() {
            if !subject_matches(&sub.pattern, subject) {
                continue;
            }
            match &sub.group {
                Some(group) => groups.entry(group.clone()).or_default().push(i),
                None => delivered += usize::from(offer(&sub.tx, &message)),
            }
        }
        for (group, members) in groups {
            let cursor = state.group_cursor.entry(group).or_insert(0);
            let start = *cursor;
            *cursor = cursor.wrapping_add(1);
            // Try members in turn from the cursor, so one full buffer does not lose the message.
            let taken = (0..members.len()).any(|k| {
                let sub = &state.subs[members[(start + k) % members.len()]];
                sub.tx.try_send(message.clone()).is_ok()
            });
            if taken {
                delivered += 1;
            } else {
                metrics::counter!("dragoman_bus_dropped_total", "reason" => "slow_consumer").increment(1);
            }
        }
        Ok(delivered)
    }

    pub(crate) fn publish(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        reply: Option<String>,
    ) -> Result<(), BusError> {
        self.route(subject, headers, payload, reply, false).map(drop)
    }

    pub(crate) fn publish_durable(&self, subject: &str, headers: Headers, payload: Bytes) -> Result<(), BusError> {
        self.route(subject, headers, payload, None, true).map(drop)
    }

    pub(crate) fn subscribe(&self, subject: &str, group: Option<&str>) -> Result<Subscription, BusError> {
        crate::subjects::validate_subscribe_subject(subject)?;
        let (tx, rx) = mpsc::channel(self.inner.capacity);
        let mut state = self.state()?;
        state.next_sub_id += 1;
        let id = state.next_sub_id;
        state.subs.push(Sub { id, pattern: subject.to_owned(), group: group.map(str::to_owned), tx });
        drop(state);
        let guard = SubGuard { bus: self.clone(), id };
        let stream =
            futures::stream::unfold(
                (rx, guard),
                |(mut rx, guard)| async move { rx.recv().await.map(|m| (m, (rx, guard))) },
            );
        Ok(Subscription { inner: Box::pin(stream) })
    }

    pub(crate) async fn request(
        &self,
        subject: &str,
        headers: Headers,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Message, BusError> {
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        let mut replies = self.subscribe(&inbox, None)?;
        let delivered = self.route(subject, headers, payload, Some(inbox), false)?;
        if delivered == 0 {
            return Err(BusError::NoResponders { subject: subject.to_owned() });
        }
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(BusError::Closed),
            Err(_) => Err(BusError::Timeout { subject: subject.to_owned(), timeout }),
        }
    }

    pub(crate) fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let mut state = self.state()?;
        for (name, other) in &state.streams {
            let overlaps = other.spec.subjects.iter().any(|a| spec.subjects.iter().any(|b| a == b));
            if name != &spec.name && overlaps {
                return Err(BusError::backend("ensure stream", format!("subjects overlap with stream {name}")));
            }
        }
        match state.streams.get_mut(&spec.name) {
            Some(stream) => stream.spec = spec.clone(),
            None => {
                state.streams.insert(
                    spec.name.clone(),
                    StreamState {
                        spec: spec.clone(),
                        messages: BTreeMap::new(),
                        last_seq: 0,
                        bytes: 0,
                        dedupe: HashMap::new(),
                        consumers: HashMap::new(),
                    },
                );
            }
        }
        Ok(())
    }

    pub(crate) fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        let mut state = self.state()?;
        state
            .streams
            .remove(name)
            .map(drop)
            .ok_or_else(|| BusError::backend("delete stream", format!("no stream {name}")))
    }

    pub(crate) fn consumer_pending(&self, stream: &str, durable: &str) -> Result<u64, BusError> {
        let state = self.state()?;
        let stream = state
            .streams
            .get(stream)
            .ok_or_else(|| BusError::backend("consumer info", format!("no stream {stream}")))?;
        let consumer = stream
            .consumers
            .get(durable)
            .ok_or_else(|| BusError::backend("consumer info", format!("no consumer {durable}")))?;
        let waiting = stream.messages.range(consumer.next_seq..).filter(|(_, m)| consumer.wants(&m.subject)).count();
        Ok((waiting + consumer.pending.len()) as u64)
    }

    pub(crate) fn durable_subscribe(&self, spec: &ConsumerSpec) -> Result<DurableSubscription, BusError> {
        {
            let mut state = self.state()?;
            let stream = state
                .streams
                .get_mut(&spec.stream)
                .ok_or_else(|| BusError::backend("create consumer", format!("no stream {}", spec.stream)))?;
            let start = match spec.start_at {
                StartAt::All => 0,
                StartAt::New => stream.last_seq + 1,
            };
            stream
                .consumers
                .entry(spec.durable.clone())
                .and_modify(|c| {
                    // A changed spec keeps the position, as a JetStream consumer update does.
                    let next = c.next_seq;
                    c.spec = spec.clone();
                    c.next_seq = next;
                })
                .or_insert_with(|| ConsumerState { spec: spec.clone(), next_seq: start, pending: BTreeMap::new() });
        }
        let bus = self.clone();
        let stream_name = spec.stream.clone();
        let durable = spec.durable.clone();
        let stream = futures::stream::unfold((), move |()| {
            let bus = bus.clone();
            let stream_name = stream_name.clone();
            let durable = durable.clone();
            async move {
                loop {
                    let notified = bus.inner.durable_activity.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    match bus.pull(&stream_name, &durable) {
                        Pull::Deliver(delivery) => return Some((Ok(delivery), ())),
                        Pull::Gone => return None,
                        Pull::WaitUntil(Some(deadline)) => {
                            tokio::select! {
                                _ = &mut notified => {}
                                _ = tokio::time::sleep_until(deadline) => {}
                            }
                        }
                        Pull::WaitUntil(None) => notified.await,
                    }
                }
            }
        });
        Ok(DurableSubscription { inner: Box::pin(stream) })
    }

    fn pull(&self, stream_name: &str, durable: &str) -> Pull {
        let Ok(mut state) = self.state() else { return Pull::Gone };
        let Some(stream) = state.streams.get_mut(stream_name) else { return Pull::Gone };
        let now = Instant::now();
        stream.prune(now);
        let retention = stream.spec.retention;
        let Some(consumer) = stream.consumers.get_mut(durable) else { return Pull::Gone };

        // Redeliver what timed out first; give up on what was delivered too often.
        let expired: Vec<u64> = consumer.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(s, _)| *s).collect();
        let mut dead = Vec::new();
        for seq in expired {
            let attempt = consumer.pending[&seq].attempt;
            if attempt >= u64::from(consumer.spec.max_deliver.max(1)) {
                consumer.pending.remove(&seq);
                dead.push(seq);
                metrics::counter!("dragoman_bus_max_deliveries_total").increment(1);
                continue;
            }
            let pending = consumer.pending.get_mut(&seq).expect("seq listed above");
            pending.attempt += 1;
            pending.deadline = now + consumer.spec.ack_wait;
            let attempt = pending.attempt;
            if let Some(stored) = stream.messages.get(&seq) {
                let delivery = self.delivery(stream_name, durable, seq, attempt, stored);
                return Pull::Deliver(delivery);
            }
            consumer.pending.remove(&seq);
        }
        if retention == Retention::WorkQueue {
            for seq in dead {
                stream.remove(seq);
            }
        }
        let consumer = stream.consumers.get_mut(durable).expect("checked above");

        if consumer.pending.len() < consumer.spec.max_ack_pending.max(1) {
            let next = stream
                .messages
                .range(consumer.next_seq..)
                .find(|(_, m)| consumer.wants(&m.subject))
                .map(|(seq, _)| *seq);
            if let Some(seq) = next {
                consumer.next_seq = seq + 1;
                consumer.pending.insert(seq, Pending { deadline: now + consumer.spec.ack_wait, attempt: 1 });
                let stored = &stream.messages[&seq];
                return Pull::Deliver(self.delivery(stream_name, durable, seq, 1, stored));
            }
        }
        Pull::WaitUntil(consumer.pending.values().map(|p| p.deadline).min())
    }

    fn delivery(&self, stream: &str, durable: &str, seq: u64, attempt: u64, stored: &Stored) -> Delivery {
        Delivery {
            message: Message {
                subject: stored.subject.clone(),
                headers: stored.headers.clone(),
                payload: stored.payload.clone(),
                reply: None,
            },
            attempt,
            acker: DeliveryAcker::Memory(Acker {
                bus: self.clone(),
                stream: stream.to_owned(),
                durable: durable.to_owned(),
                seq,
                attempt,
            }),
        }
    }

    fn settle(
        &self,
        stream_name: &str,
        durable: &str,
        seq: u64,
        attempt: u64,
        outcome: Settle,
    ) -> Result<(), BusError> {
        let mut state = self.state()?;
        let Some(stream) = state.streams.get_mut(stream_name) else { return Ok(()) };
        let retention = stream.spec.retention;
        let Some(consumer) = stream.consumers.get_mut(durable) else { return Ok(()) };
        // An ack for an earlier delivery of a message that was since redelivered still counts,
        // as in JetStream; a nak only applies to the delivery it names.
        let Some(pending) = consumer.pending.get_mut(&seq) else { return Ok(()) };
        match outcome {
            Settle::Nak(delay) if pending.attempt == attempt => pending.deadline = Instant::now() + delay,
            Settle::Nak(_) => {}
            Settle::Ack => {
                consumer.pending.remove(&seq);
                if retention == Retention::WorkQueue {
                    stream.remove(seq);
                }
            }
        }
        drop(state);
        self.inner.durable_activity.notify_waiters();
        Ok(())
    }

    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        lock(&self.inner.state).subs.clear();
        self.inner.durable_activity.notify_waiters();
    }
}

enum Settle {
    Ack,
    Nak(Duration),
}

fn offer(tx: &mpsc::Sender<Message>, message: &Message) -> bool {
    match tx.try_send(message.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("dragoman_bus_dropped_total", "reason" => "slow_consumer").increment(1);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave State half-updated in a way that matters more
    // than losing the bus, so keep going with the data as it is.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SubGuard {
    bus: MemoryBus,
    id: u64,
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        lock(&self.bus.inner.state).subs.retain(|s| s.id != self.id);
    }
}

/// Settles one in-process delivery.
pub(crate) struct Acker {
    bus: MemoryBus,
    stream: String,
    durable: String,
    seq: u64,
    attempt: u64,
}

impl Acker {
    pub(crate) fn ack(self) -> Result<(), BusError> {
        self.bus.settle(&self.stream, &self.durable, self.seq, self.attempt, Settle::Ack)
    }

    pub(crate) fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.bus.settle(&self.stream, &self.durable, self.seq, self.attempt, Settle::Nak(delay))
    }

    pub(crate) fn term(self) -> Result<(), BusError> {
        self.bus.settle(&self.stream, &self.durable, self.seq, self.attempt, Settle::Ack)
    }
}
