//! Where the API keeps calls: records, every stored event with a per-call sequence number, and
//! transcripts, behind one interface ([`CallStore`]) with two implementations held to one test
//! suite (`tests/store.rs`): [`RedisStore`] (a deployment) and [`MemoryStore`] (`dragoman
//! standalone`, or no `api.redis_url`).
//!
//! Writes come only from the recorder ([`crate::recorder`]), one [`CallStore::apply`] per event:
//! idempotent by event id (a redelivered or re-applied event is stored once), atomic (the
//! record, the event log, the indexes and the TTLs change together or not at all), safe with
//! several writers at once. Reads serve the REST and WebSocket routes:
//!
//! | route need | method |
//! |---|---|
//! | list calls (active/ended, time range, paging, newest first) | [`CallStore::list_calls`] |
//! | one call (legs, languages, state, timings) | [`CallStore::get_call`] |
//! | transcript with translations (export as JSON, SRT, WebVTT, text) | [`CallStore::transcript`] |
//! | a call's events in order, resuming after sequence N (WebSocket reconnect) | [`CallStore::events_after`] |
//! | every call's events in order, resuming after a cursor | [`CallStore::feed_after`] |
//!
//! Partial transcripts and translations are never stored (see [`is_stored`]); live captions
//! come from the bus.
//!
//! Layout: [`model`] (the record and transcript built from events, shared by both stores),
//! [`memory`], [`redis`].

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dragoman_bus::Event;
use dragoman_runtime::config::ApiConfig;

pub mod memory;
pub mod model;
pub mod redis;

pub use memory::MemoryStore;
pub use model::{
    CallRecord, CallState, FeedEntry, LegRecord, StoredEvent, Transcript, TranscriptLine, TranslationText, is_stored,
};
pub use redis::RedisStore;

/// Most calls or events one read returns; larger limits are lowered to it.
pub const MAX_PAGE: usize = 1_000;

/// Events the all-calls feed keeps (the oldest go first; Redis trims approximately).
pub const FEED_MAX_EVENTS: usize = 10_000;

/// What [`CallStore::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored now, as the call's event number `seq`.
    Stored { seq: u64 },
    /// Already stored (same event id), as number `seq`; nothing changed.
    Duplicate { seq: u64 },
    /// Not kept: a partial, or an event type this build does not know.
    Ignored,
}

/// The store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis is down, slow or refused: the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Other writers changed the call every time this one tried; try again later.
    #[error("call {call_id} changed under {attempts} attempts to store an event")]
    Contended { call_id: String, attempts: u32 },
    /// The event can never be stored (e.g. a call id no subject could carry).
    #[error("invalid event: {0}")]
    Invalid(String),
    /// What the store holds cannot be read back.
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether trying again later may work.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Contended { .. })
    }
}

/// Which calls [`CallStore::list_calls`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls in this state (all when `None`).
    pub state: Option<CallState>,
    /// Only calls that started at or after this.
    pub started_from: Option<DateTime<Utc>>,
    /// Only calls that started before this. Fix it to the time of a listing's first page to
    /// page through a stable set while new calls come in.
    pub started_before: Option<DateTime<Utc>>,
}

/// One page of a listing: skip `offset`, return at most `limit` (capped at [`MAX_PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Default for Page {
    fn default() -> Self {
        Self { offset: 0, limit: 50 }
    }
}

/// Calls, newest first (by start time, then call id, both descending).
#[derive(Debug, Clone, PartialEq)]
pub struct CallPage {
    pub calls: Vec<CallRecord>,
    /// Calls matching the filter in all pages. May briefly count calls whose retention just
    /// ran out and that no page returns any more.
    pub total: usize,
}

/// The calls store. Both implementations are cheap to clone (clones share the data).
///
/// Sequence numbers: each call's stored events are numbered 1, 2, 3, … in the order the store
/// received them, with no gaps and no number given twice, even with several writers; an event
/// applied again keeps its first number. Retention: a call's record, events and transcript
/// expire `retention` after its last stored event.
pub trait CallStore: Clone + Send + Sync + 'static {
    /// Stores one event of a call and updates its record, once per event id. Atomic: after an
    /// error nothing of the event is stored, and applying it again is safe.
    fn apply(&self, event: &Event) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// Calls matching `filter`, newest first.
    fn list_calls(&self, filter: &CallFilter, page: Page) -> impl Future<Output = Result<CallPage, StoreError>> + Send;

    /// One call, or `None` when it is unknown or its retention ran out.
    fn get_call(&self, call_id: &str) -> impl Future<Output = Result<Option<CallRecord>, StoreError>> + Send;

    /// The call's final transcript with translations (empty when the call is unknown).
    fn transcript(&self, call_id: &str) -> impl Future<Output = Result<Transcript, StoreError>> + Send;

    /// The call's events numbered above `after_seq`, in order, at most `limit` (capped at
    /// [`MAX_PAGE`]). `after_seq` 0 reads from the start; a client that reconnects passes the
    /// last number it saw and misses nothing.
    fn events_after(
        &self,
        call_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Every call's events in the order they were stored, after `cursor` (from the oldest
    /// kept when `None`), at most `limit`. Keeps the last [`FEED_MAX_EVENTS`] or so.
    fn feed_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FeedEntry>, StoreError>> + Send;

    /// Whether the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The store the API uses: Redis when `api.redis_url` is set, memory otherwise.
#[derive(Debug, Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// The store `config` asks for, under `namespace` (the bus namespace, so deployments that
    /// share a NATS and a Redis stay apart). Does not wait for Redis: the first operations fail
    /// with [`StoreError::Unavailable`] until it answers.
    pub fn open(config: &ApiConfig, namespace: &str) -> Result<Self, StoreError> {
        let retention = Duration::from_secs(config.retention_hours.saturating_mul(3600));
        Ok(match &config.redis_url {
            Some(url) => Self::Redis(RedisStore::open(url.expose(), namespace, retention)?),
            None => Self::Memory(MemoryStore::new(retention)),
        })
    }

    /// `redis` or `memory`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

impl CallStore for Store {
    async fn apply(&self, event: &Event) -> Result<Applied, StoreError> {
        match self {
            Self::Memory(store) => store.apply(event).await,
            Self::Redis(store) => store.apply(event).await,
        }
    }

    async fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage, StoreError> {
        match self {
            Self::Memory(store) => store.list_calls(filter, page).await,
            Self::Redis(store) => store.list_calls(filter, page).await,
        }
    }

    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        match self {
            Self::Memory(store) => store.get_call(call_id).await,
            Self::Redis(store) => store.get_call(call_id).await,
        }
    }

    async fn transcript(&self, call_id: &str) -> Result<Transcript, StoreError> {
        match self {
            Self::Memory(store) => store.transcript(call_id).await,
            Self::Redis(store) => store.transcript(call_id).await,
        }
    }

    async fn events_after(&self, call_id: &str, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Self::Memory(store) => store.events_after(call_id, after_seq, limit).await,
            Self::Redis(store) => store.events_after(call_id, after_seq, limit).await,
        }
    }

    async fn feed_after(&self, cursor: Option<&str>, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        match self {
            Self::Memory(store) => store.feed_after(cursor, limit).await,
            Self::Redis(store) => store.feed_after(cursor, limit).await,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(store) => store.ping().await,
            Self::Redis(store) => store.ping().await,
        }
    }
}

/// Checks an event can be stored at all: it has a call id that is a valid subject token.
fn check_event(event: &Event) -> Result<&dragoman_bus::events::EventMeta, StoreError> {
    let meta = event.meta().ok_or_else(|| StoreError::Invalid("event of an unknown type".into()))?;
    dragoman_bus::subjects::validate_token(&meta.call_id).map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(meta)
}
