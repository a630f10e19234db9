//! The live WebSocket routes: `/v1/calls/{id}/live` (one call) and `/v1/live` (every call).
//!
//! Every message is one JSON text frame:
//!
//! ```json
//! {"kind": "event",   "call_id": "c1", "seq": 7, "event": {"type": "CallStarted", …}}
//! {"kind": "event",   "call_id": "c1", "seq": 7, "cursor": "1718…-0", "event": {…}}   (/v1/live)
//! {"kind": "partial", "call_id": "c1", "event": {"type": "TranscriptProduced", "stage": "partial", …}}
//! ```
//!
//! `event` messages are the call's stored events (call events, final transcripts, final
//! translations) read from the store, so each carries the store's sequence number: 1, 2, 3, …
//! per call, in order, without gaps or duplicates. A client that reconnects passes the last one
//! it saw (`?after=<seq>`, or `?after=<cursor>` on `/v1/live`) and gets exactly what it missed.
//! `partial` messages are forwarded from the bus as they come, without a number: they are
//! ephemeral, may be dropped, and are replaced by their final.
//!
//! The server learns that an event was stored from [`NotifyingStore`], which wraps the store the
//! recorder writes to (the recorder runs in this process), and also reads the store every
//! [`POLL`] in case it missed a notice. The notice carries the event's frame, serialised once:
//! a session on a call's route that has sent everything before it sends that frame without
//! reading the store; any gap (a notice out of order, a lagging receiver) is filled from the
//! store, so order and completeness never depend on the notices.
//!
//! Each client has its own bounded queue of [`QUEUE_MESSAGES`]. History asked for with `after`
//! is sent at the client's pace (but a client that makes no room for [`HISTORY_WAIT`] is
//! closed); once caught up, a client whose queue is full is closed with
//! [`CLOSE_SLOW_CONSUMER`] (4008, "slow consumer") so that it never holds anyone else back. Other
//! close codes: 1001 when the API shuts down, 1011 when the store fails.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use dragoman_bus::{Event, Subscription, wire};
use futures::{SinkExt as _, StreamExt as _};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::store::{
    Applied, CallFilter, CallPage, CallRecord, CallStore, FeedEntry, MAX_PAGE, Page, Store, StoreError, StoredEvent,
    Transcript,
};

/// Messages queued for one client before it counts as slow.
pub const QUEUE_MESSAGES: usize = 256;

/// Close code for a client that does not keep up.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// How often a session reads the store even without a notice.
pub const POLL: Duration = Duration::from_secs(1);

/// How long sending history waits for room in a client's queue before the client counts as
/// slow.
pub const HISTORY_WAIT: Duration = Duration::from_secs(30);

/// How long a closing session waits for its close frame to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// A stored event, as [`NotifyingStore`] announces it.
#[derive(Debug, Clone)]
pub struct StoredNotice {
    pub call_id: String,
    pub seq: u64,
    /// The event's frame on a call's live route, serialised once for every session: a session
    /// that has sent everything up to `seq - 1` sends it as it is, without reading the store.
    pub frame: Utf8Bytes,
}

/// The store, announcing each newly stored event on a broadcast channel. The recorder writes
/// through it; live sessions listen.
#[derive(Debug, Clone)]
pub struct NotifyingStore {
    inner: Store,
    stored: broadcast::Sender<StoredNotice>,
}

impl NotifyingStore {
    pub fn new(inner: Store) -> Self {
        Self { inner, stored: broadcast::channel(4096).0 }
    }

    pub fn inner(&self) -> &Store {
        &self.inner
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StoredNotice> {
        self.stored.subscribe()
    }
}

impl CallStore for NotifyingStore {
    async fn apply(&self, event: &Event) -> Result<Applied, StoreError> {
        let applied = self.inner.apply(event).await?;
        if let (Applied::Stored { seq }, Some(meta)) = (applied, event.meta()) {
            // No receiver is fine: nobody is watching.
            if self.stored.receiver_count() > 0 {
                let Message::Text(frame) = frame("event", &meta.call_id, Some(seq), None, event) else {
                    return Ok(applied);
                };
                let _ = self.stored.send(StoredNotice { call_id: meta.call_id.clone(), seq, frame });
            }
        }
        Ok(applied)
    }

    async fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage, StoreError> {
        self.inner.list_calls(filter, page).await
    }

    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        self.inner.get_call(call_id).await
    }

    async fn transcript(&self, call_id: &str) -> Result<Transcript, StoreError> {
        self.inner.transcript(call_id).await
    }

    async fn events_after(&self, call_id: &str, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.events_after(call_id, after_seq, limit).await
    }

    async fn feed_after(&self, cursor: Option<&str>, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        self.inner.feed_after(cursor, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// One frame to a client.
#[derive(Debug, Serialize)]
struct Frame<'a> {
    kind: &'static str,
    call_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    event: &'a Event,
}

fn frame(kind: &'static str, call_id: &str, seq: Option<u64>, cursor: Option<&str>, event: &Event) -> Message {
    let json = serde_json::to_string(&Frame { kind, call_id, seq, cursor, event }).unwrap_or_default();
    Message::Text(Utf8Bytes::from(json))
}

/// Why a session ended on the server's side.
#[derive(Debug)]
enum Stop {
    /// The client went away, or the session's queue closed.
    Gone,
    Close(u16, &'static str),
}

/// The sending half of a session: a bounded queue to the socket writer.
struct Outbox {
    queue: mpsc::Sender<Message>,
}

impl Outbox {
    /// Queues history: waits while the client reads (its own pace, nobody else's), but not
    /// for a client that stopped reading altogether.
    async fn wait(&self, message: Message) -> Result<(), Stop> {
        self.queue.send_timeout(message, HISTORY_WAIT).await.map_err(|err| match err {
            mpsc::error::SendTimeoutError::Timeout(_) => Stop::Close(CLOSE_SLOW_CONSUMER, "slow consumer"),
            mpsc::error::SendTimeoutError::Closed(_) => Stop::Gone,
        })
    }

    /// Queues a live message: a full queue means the client is too slow.
    fn now(&self, message: Message) -> Result<(), Stop> {
        self.queue.try_send(message).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => Stop::Close(CLOSE_SLOW_CONSUMER, "slow consumer"),
            mpsc::error::TrySendError::Closed(_) => Stop::Gone,
        })
    }
}

/// What a session streams: one call's events or the feed of every call.
#[derive(Debug)]
pub enum Source {
    Call { call_id: String, after: u64 },
    Feed { after: Option<String>, filter: FeedFilter },
}

/// Which events `/v1/live` sends.
#[derive(Debug, Default, Clone)]
pub struct FeedFilter {
    /// Only these calls (all when empty).
    pub calls: HashSet<String>,
    /// Only these event types (all when empty).
    pub types: HashSet<String>,
}

impl FeedFilter {
    fn admits(&self, call_id: &str, event: &Event) -> bool {
        (self.calls.is_empty() || self.calls.contains(call_id))
            && (self.types.is_empty() || self.types.contains(event.type_name()))
    }
}

/// The current end of the feed, for a `/v1/live` client that asked for no history.
pub async fn feed_end(store: &NotifyingStore) -> Result<Option<String>, StoreError> {
    let mut cursor: Option<String> = None;
    loop {
        let page = store.feed_after(cursor.as_deref(), MAX_PAGE).await?;
        let full = page.len() >= MAX_PAGE;
        if let Some(last) = page.last() {
            cursor = Some(last.cursor.clone());
        }
        if !full {
            return Ok(cursor);
        }
    }
}

/// Runs one client's session until it leaves, is too slow, or the API stops.
pub async fn session(
    socket: WebSocket,
    store: NotifyingStore,
    notices: broadcast::Receiver<StoredNotice>,
    partials: Option<Subscription>,
    source: Source,
    stop: CancellationToken,
) {
    let (mut sink, mut incoming) = socket.split();
    let (queue, mut outgoing) = mpsc::channel::<Message>(QUEUE_MESSAGES);
    let outbox = Outbox { queue };
    let produce = produce(&store, notices, partials, source, &outbox);
    // The client's own frames: only a close (or the connection ending) matters.
    let listen = async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let write = async {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
    };
    let stopped = tokio::select! {
        stopped = produce => stopped,
        () = listen => Stop::Gone,
        () = write => Stop::Gone,
        () = stop.cancelled() => Stop::Close(1001, "server shutting down"),
    };
    if let Stop::Close(code, reason) = stopped {
        if code == CLOSE_SLOW_CONSUMER {
            metrics::counter!("dragoman_api_live_closed_total", "reason" => "slow_consumer").increment(1);
            tracing::info!(code, reason, "closing a live client");
        }
        let close = Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }));
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
    }
}

/// Reads the store and the partials until the session must stop, queueing frames.
async fn produce(
    store: &NotifyingStore,
    mut notices: broadcast::Receiver<StoredNotice>,
    mut partials: Option<Subscription>,
    source: Source,
    outbox: &Outbox,
) -> Stop {
    let (call, mut seq, mut cursor, filter) = match source {
        Source::Call { call_id, after } => (Some(call_id), after, None, FeedFilter::default()),
        Source::Feed { after, filter } => (None, 0, after, filter),
    };
    let mut caught_up = false;
    loop {
        // Everything stored since the last read, page by page.
        loop {
            let sent = match &call {
                Some(call_id) => match store.events_after(call_id, seq, MAX_PAGE).await {
                    Ok(events) => {
                        for stored in &events {
                            let message = frame("event", call_id, Some(stored.seq), None, &stored.event);
                            if let Err(stop) = send(outbox, message, caught_up).await {
                                return stop;
                            }
                            seq = stored.seq;
                        }
                        events.len()
                    }
                    Err(err) => return store_failed(&err),
                },
                None => match store.feed_after(cursor.as_deref(), MAX_PAGE).await {
                    Ok(entries) => {
                        for entry in &entries {
                            if filter.admits(&entry.call_id, &entry.event) {
                                let message =
                                    frame("event", &entry.call_id, Some(entry.seq), Some(&entry.cursor), &entry.event);
                                if let Err(stop) = send(outbox, message, caught_up).await {
                                    return stop;
                                }
                            }
                            cursor = Some(entry.cursor.clone());
                        }
                        entries.len()
                    }
                    Err(err) => return store_failed(&err),
                },
            };
            if sent < MAX_PAGE {
                break;
            }
        }
        caught_up = true;
        // Wait for something new: a notice for this session, a partial, or the poll.
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        loop {
            let partial = async {
                match partials.as_mut() {
                    Some(subscription) => subscription.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                notice = notices.recv() => match notice {
                    // The next event of this call: send the frame the notice carries.
                    Ok(notice) if call.as_ref().is_some_and(|c| *c == notice.call_id && notice.seq == seq + 1) => {
                        if let Err(stop) = outbox.now(Message::Text(notice.frame)) {
                            return stop;
                        }
                        seq = notice.seq;
                    }
                    Ok(notice) if call.as_ref().is_some_and(|c| *c != notice.call_id || notice.seq <= seq) => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return Stop::Gone,
                },
                message = partial => match message {
                    Some(message) => {
                        let Ok(event) = wire::decode_event(&message.payload) else { continue };
                        let Some(meta) = event.meta() else { continue };
                        if call.is_none() && !filter.admits(&meta.call_id, &event) {
                            continue;
                        }
                        if let Err(stop) = outbox.now(frame("partial", &meta.call_id, None, None, &event)) {
                            return stop;
                        }
                    }
                    None => partials = None,
                },
                () = &mut poll => break,
            }
        }
    }
}

async fn send(outbox: &Outbox, message: Message, caught_up: bool) -> Result<(), Stop> {
    if caught_up { outbox.now(message) } else { outbox.wait(message).await }
}

fn store_failed(err: &StoreError) -> Stop {
    tracing::warn!(error = %err, "live session cannot read the store");
    Stop::Close(1011, "the calls store is unavailable")
}
