//! The calls store in this process's memory: `dragoman standalone`, or an API without
//! `api.redis_url`. Everything is lost when the process stops. One lock guards all of it, and
//! no `.await` happens while it is held, so each operation is atomic.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dragoman_bus::Event;
use uuid::Uuid;

use super::model::{CallRecord, FeedEntry, StoredEvent, Transcript, TranscriptBuilder, is_stored};
use super::{Applied, CallFilter, CallPage, CallStore, FEED_MAX_EVENTS, MAX_PAGE, Page, StoreError, check_event};

/// Calls in memory, with the same retention as Redis: a call is dropped `retention` after its
/// last stored event (checked whenever the store is used).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    retention: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    calls: HashMap<String, Call>,
    feed: VecDeque<FeedEntry>,
    feed_next: u64,
    /// Like Redis's feed key, the feed expires `retention` after the last stored event.
    feed_expires_at: Option<Instant>,
}

#[derive(Debug)]
struct Call {
    record: CallRecord,
    events: Vec<StoredEvent>,
    seen: HashMap<Uuid, u64>,
    expires_at: Instant,
}

impl MemoryStore {
    pub fn new(retention: Duration) -> Self {
        Self { inner: Arc::default(), retention }
    }

    /// The lock, after dropping calls whose retention ran out. A poisoned lock is taken over:
    /// no operation leaves the data half-changed before it could panic.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        inner.calls.retain(|_, call| call.expires_at > now);
        if inner.feed_expires_at.is_some_and(|at| at <= now) {
            inner.feed.clear();
            inner.feed_expires_at = None;
        }
        inner
    }
}

impl CallStore for MemoryStore {
    async fn apply(&self, event: &Event) -> Result<Applied, StoreError> {
        if !is_stored(event) {
            return Ok(Applied::Ignored);
        }
        let meta = check_event(event)?;
        let expires_at = Instant::now() + self.retention;
        let mut inner = self.lock();
        let inner = &mut *inner;
        let call = inner.calls.entry(meta.call_id.clone()).or_insert_with(|| Call {
            record: CallRecord::new(&meta.call_id, meta.occurred_at),
            events: Vec::new(),
            seen: HashMap::new(),
            expires_at,
        });
        if let Some(&seq) = call.seen.get(&meta.event_id) {
            return Ok(Applied::Duplicate { seq });
        }
        let seq = call.record.last_seq + 1;
        call.record.apply(event, seq);
        call.events.push(StoredEvent { seq, event: event.clone() });
        call.seen.insert(meta.event_id, seq);
        call.expires_at = expires_at;
        inner.feed_next += 1;
        inner.feed.push_back(FeedEntry {
            cursor: format!("0-{}", inner.feed_next),
            call_id: meta.call_id.clone(),
            seq,
            event: event.clone(),
        });
        while inner.feed.len() > FEED_MAX_EVENTS {
            inner.feed.pop_front();
        }
        inner.feed_expires_at = Some(expires_at);
        Ok(Applied::Stored { seq })
    }

    async fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage, StoreError> {
        let inner = self.lock();
        let mut calls: Vec<&CallRecord> = inner
            .calls
            .values()
            .map(|call| &call.record)
            .filter(|record| filter.state.is_none_or(|state| record.state == state))
            .filter(|record| filter.started_from.is_none_or(|from| record.started_at >= from))
            .filter(|record| filter.started_before.is_none_or(|before| record.started_at < before))
            .collect();
        // Newest first; ties by call id, descending, as Redis orders equal scores in reverse.
        calls.sort_by(|a, b| (b.started_at, &b.call_id).cmp(&(a.started_at, &a.call_id)));
        let total = calls.len();
        let calls = calls.into_iter().skip(page.offset).take(page.limit.min(MAX_PAGE)).cloned().collect();
        Ok(CallPage { calls, total })
    }

    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        Ok(self.lock().calls.get(call_id).map(|call| call.record.clone()))
    }

    async fn transcript(&self, call_id: &str) -> Result<Transcript, StoreError> {
        let inner = self.lock();
        let mut builder = TranscriptBuilder::default();
        for stored in inner.calls.get(call_id).map(|call| call.events.as_slice()).unwrap_or_default() {
            builder.add(&stored.event);
        }
        Ok(builder.finish(call_id))
    }

    async fn events_after(&self, call_id: &str, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let inner = self.lock();
        let events = inner.calls.get(call_id).map(|call| call.events.as_slice()).unwrap_or_default();
        // Sequence numbers are 1, 2, 3, …: event n is at index n - 1.
        let start = usize::try_from(after_seq).unwrap_or(usize::MAX).min(events.len());
        Ok(events[start..].iter().take(limit.min(MAX_PAGE)).cloned().collect())
    }

    async fn feed_after(&self, cursor: Option<&str>, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let after = match cursor {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix("0-")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| StoreError::Invalid(format!("feed cursor {cursor:?} is not one this store gave")))?,
        };
        let inner = self.lock();
        Ok(inner.feed.iter().filter(|entry| feed_number(entry) > after).take(limit.min(MAX_PAGE)).cloned().collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn feed_number(entry: &FeedEntry) -> u64 {
    entry.cursor.strip_prefix("0-").and_then(|n| n.parse().ok()).unwrap_or(0)
}
