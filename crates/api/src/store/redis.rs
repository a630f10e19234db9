//! The calls store in Redis.
//!
//! Keys, all under `<namespace>:v1:` (the bus namespace) and all with a TTL of the retention,
//! renewed on every stored event of the call:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `record:<call_id>` | hash | `seq` (the last event number) and `json` (the [`CallRecord`]) |
//! | `events:<call_id>` | stream | one entry per stored event, id `<seq>-0`, field `event` (the event's wire JSON) |
//! | `seen:<call_id>` | hash | event id → its number (idempotency) |
//! | `calls:all`, `calls:active`, `calls:ended` | sorted sets | call ids scored by start time (ms) |
//! | `calls:expiry` | sorted set | call ids scored by when their last event was stored (ms), to drop expired calls from the three indexes |
//! | `feed` | stream | every stored event of every call: `call_id`, `seq`, `event`; trimmed to about [`FEED_MAX_EVENTS`] |
//!
//! The call id is the last part of a key, so no call id can make one call's key another's.
//!
//! One event is stored by one Lua script ([`APPLY`]), which Redis runs atomically: it checks
//! the event id against `seen`, checks the record's `seq` is still the one the writer read
//! (compare-and-set), then writes the record, the event, `seen`, the indexes, the feed and the
//! TTLs. The writer folds the event into the record in Rust ([`CallRecord::apply`], shared with
//! the memory store) and retries when another writer got there first, so there is no
//! read-modify-write race. Redis Cluster is not supported (the script touches the global
//! indexes); a single primary with replicas is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dragoman_bus::{Event, wire};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{RedisError, Script};

use super::model::{CallRecord, CallState, FeedEntry, StoredEvent, Transcript, TranscriptBuilder, is_stored};
use super::{Applied, CallFilter, CallPage, CallStore, FEED_MAX_EVENTS, MAX_PAGE, Page, StoreError, check_event};

/// Compare-and-set writes that lose to another writer are retried this often, each after a
/// short random pause that grows with the attempts (so writers of one call stop colliding),
/// then the event is handed back ([`StoreError::Contended`]) to be tried again later.
const MAX_ATTEMPTS: u32 = 64;

/// KEYS: record, events, seen, calls:all, calls:active, calls:ended, calls:expiry, feed.
/// ARGV: event id, expected seq, record JSON, event JSON, start score (ms), state, call id,
/// retention (ms), feed length, now (ms).
/// Returns `{"stored"|"duplicate", seq}` or `{"conflict", current seq}`.
///
/// Every check comes before the first write, and no write after them can fail on data this
/// script wrote, so an event is stored whole or not at all.
const APPLY: &str = r"
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen then return {'duplicate', seen} end
local current = redis.call('HGET', KEYS[1], 'seq')
if not current then current = '0' end
if current ~= ARGV[2] then return {'conflict', current} end
local seq = tonumber(current) + 1
if seq == 1 then
  -- A call whose record expired before its other keys starts again from nothing.
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('HSET', KEYS[1], 'seq', seq, 'json', ARGV[3])
redis.call('XADD', KEYS[2], seq .. '-0', 'event', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
if ARGV[6] == 'ended' then
  redis.call('ZREM', KEYS[5], ARGV[7])
  redis.call('ZADD', KEYS[6], ARGV[5], ARGV[7])
else
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[7])
end
local cutoff = tonumber(ARGV[10]) - tonumber(ARGV[8])
-- Drop up to 100 calls whose retention ran out from the indexes (the rest go on later runs).
local stale = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', cutoff, 'LIMIT', 0, 100)
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[7], id)
end
redis.call('ZADD', KEYS[7], ARGV[10], ARGV[7])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[9], '*', 'call_id', ARGV[7], 'seq', seq, 'event', ARGV[4])
for i = 1, 8 do redis.call('PEXPIRE', KEYS[i], ARGV[8]) end
return {'stored', tostring(seq)}
";

/// KEYS: calls:all, calls:active, calls:ended, calls:expiry. ARGV: cutoff (ms), batch.
/// Drops calls whose last event is older than the cutoff from the indexes.
const PRUNE: &str = r"
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(stale) do
  for i = 1, 4 do redis.call('ZREM', KEYS[i], id) end
end
return #stale
";

/// Calls in Redis. Cheap to clone; clones share one multiplexed connection, which reconnects
/// by itself after Redis restarts.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    /// The outcome of the last [`CallStore::ping`], for readiness checks (`None`: none yet).
    last_ping: Arc<Mutex<Option<Result<(), String>>>>,
    prefix: String,
    retention: Duration,
    apply: Script,
    prune: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is left out: it may hold a password.
        f.debug_struct("RedisStore").field("prefix", &self.prefix).field("retention", &self.retention).finish()
    }
}

impl RedisStore {
    /// A store at `url` under `namespace`. Connects lazily: the first operations fail with
    /// [`StoreError::Unavailable`] until Redis answers.
    pub fn open(url: &str, namespace: &str, retention: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Invalid(format!("api.redis_url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            connection,
            last_ping: Arc::default(),
            prefix: format!("{namespace}:v1:"),
            retention,
            apply: Script::new(APPLY),
            prune: Script::new(PRUNE),
        })
    }

    /// Whether the last ping succeeded; an error until one did.
    pub fn health(&self) -> Result<(), String> {
        let last = self.last_ping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.clone().unwrap_or_else(|| Err("not checked yet".into()))
    }

    /// The prefix of every key this store writes (`<namespace>:v1:`), for tests and tooling.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, kind: &str, call_id: &str) -> String {
        format!("{}{kind}:{call_id}", self.prefix)
    }

    fn index(&self, name: &str) -> String {
        format!("{}calls:{name}", self.prefix)
    }

    fn retention_ms(&self) -> u64 {
        u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// The record and its `seq`, and whether `event_id` was stored already, in one round trip.
    async fn read_for_apply(&self, call_id: &str, event_id: &str) -> Result<ReadForApply, StoreError> {
        let mut connection = self.connection.clone();
        let (seen, seq, json): (Option<u64>, Option<u64>, Option<String>) = redis::pipe()
            .hget(self.key("seen", call_id), event_id)
            .hget(self.key("record", call_id), "seq")
            .hget(self.key("record", call_id), "json")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if let Some(seq) = seen {
            return Ok(ReadForApply::Seen(seq));
        }
        let record = match json {
            Some(json) => Some(Box::new(parse_record(&json)?)),
            None => None,
        };
        Ok(ReadForApply::Current { seq: seq.unwrap_or(0), record })
    }

    async fn xrange(&self, key: &str, start: &str, count: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        let mut connection = self.connection.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        reply
            .ids
            .iter()
            .map(|entry| {
                let seq = entry.id.split_once('-').and_then(|(seq, _)| seq.parse().ok()).unwrap_or(0);
                Ok((seq, entry_event(entry)?))
            })
            .collect()
    }
}

enum ReadForApply {
    Seen(u64),
    Current { seq: u64, record: Option<Box<CallRecord>> },
}

impl CallStore for RedisStore {
    async fn apply(&self, event: &Event) -> Result<Applied, StoreError> {
        if !is_stored(event) {
            return Ok(Applied::Ignored);
        }
        let meta = check_event(event)?;
        let call_id = meta.call_id.as_str();
        let event_id = meta.event_id.to_string();
        let event_json = wire::encode(event);
        let keys = [
            self.key("record", call_id),
            self.key("events", call_id),
            self.key("seen", call_id),
            self.index("all"),
            self.index("active"),
            self.index("ended"),
            self.index("expiry"),
            format!("{}feed", self.prefix),
        ];
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                let pause_us = rand::random_range(0..=200 * u64::from(attempt.min(25)));
                tokio::time::sleep(Duration::from_micros(pause_us)).await;
            }
            let (seq, mut record) = match self.read_for_apply(call_id, &event_id).await? {
                ReadForApply::Seen(seq) => return Ok(Applied::Duplicate { seq }),
                ReadForApply::Current { seq, record } => (seq, record),
            };
            if seq == 0 {
                // A record from before an expiry is not carried into a call that starts again.
                record = None;
            }
            let mut record = record.map_or_else(|| CallRecord::new(call_id, meta.occurred_at), |record| *record);
            record.apply(event, seq + 1);
            let record_json = serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let state = match record.state {
                CallState::Active => "active",
                CallState::Ended => "ended",
            };
            let mut invocation = self.apply.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            invocation
                .arg(&event_id)
                .arg(seq)
                .arg(record_json)
                .arg(event_json.as_ref())
                .arg(record.started_at.timestamp_millis())
                .arg(state)
                .arg(call_id)
                .arg(self.retention_ms())
                .arg(FEED_MAX_EVENTS)
                .arg(Utc::now().timestamp_millis());
            let mut connection = self.connection.clone();
            let (outcome, seq): (String, u64) = invocation.invoke_async(&mut connection).await.map_err(unavailable)?;
            match outcome.as_str() {
                "stored" => return Ok(Applied::Stored { seq }),
                "duplicate" => return Ok(Applied::Duplicate { seq }),
                // Another writer stored an event of this call since the read: read again.
                _ => continue,
            }
        }
        Err(StoreError::Contended { call_id: call_id.to_owned(), attempts: MAX_ATTEMPTS })
    }

    async fn list_calls(&self, filter: &CallFilter, page: Page) -> Result<CallPage, StoreError> {
        let mut connection = self.connection.clone();
        let cutoff =
            Utc::now().timestamp_millis().saturating_sub(i64::try_from(self.retention_ms()).unwrap_or(i64::MAX));
        let indexes = ["all", "active", "ended", "expiry"].map(|name| self.index(name));
        let mut prune = self.prune.prepare_invoke();
        for index in &indexes {
            prune.key(index);
        }
        let _: i64 = prune.arg(cutoff).arg(1_000).invoke_async(&mut connection).await.map_err(unavailable)?;

        let index = match filter.state {
            None => &indexes[0],
            Some(CallState::Active) => &indexes[1],
            Some(CallState::Ended) => &indexes[2],
        };
        let min = filter.started_from.map_or_else(|| "-inf".to_owned(), |from| millis(from).to_string());
        let max = filter.started_before.map_or_else(|| "+inf".to_owned(), |before| format!("({}", millis(before)));
        let limit = page.limit.min(MAX_PAGE);
        let (total, ids): (usize, Vec<String>) = redis::pipe()
            .cmd("ZCOUNT")
            .arg(index)
            .arg(&min)
            .arg(&max)
            .cmd("ZRANGE")
            .arg(index)
            .arg(&max)
            .arg(&min)
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(page.offset)
            .arg(limit)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(CallPage { calls: Vec::new(), total });
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hget(self.key("record", id), "json");
        }
        let records: Vec<Option<String>> = pipe.query_async(&mut connection).await.map_err(unavailable)?;
        // A record that expired between the prune and this read is left out.
        let calls = records.iter().flatten().map(|json| parse_record(json)).collect::<Result<_, _>>()?;
        Ok(CallPage { calls, total })
    }

    async fn get_call(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        let mut connection = self.connection.clone();
        let json: Option<String> = redis::cmd("HGET")
            .arg(self.key("record", call_id))
            .arg("json")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        json.map(|json| parse_record(&json)).transpose()
    }

    async fn transcript(&self, call_id: &str) -> Result<Transcript, StoreError> {
        let key = self.key("events", call_id);
        let mut builder = TranscriptBuilder::default();
        let mut after = 0;
        loop {
            let chunk = self.xrange(&key, &format!("{}-0", after + 1), MAX_PAGE).await?;
            let Some(&(last, _)) = chunk.last() else { break };
            for (_, event) in &chunk {
                builder.add(event);
            }
            if chunk.len() < MAX_PAGE {
                break;
            }
            after = last;
        }
        Ok(builder.finish(call_id))
    }

    async fn events_after(&self, call_id: &str, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let start = format!("{}-0", after_seq.saturating_add(1));
        let events = self.xrange(&self.key("events", call_id), &start, limit.min(MAX_PAGE)).await?;
        Ok(events.into_iter().map(|(seq, event)| StoredEvent { seq, event }).collect())
    }

    async fn feed_after(&self, cursor: Option<&str>, limit: usize) -> Result<Vec<FeedEntry>, StoreError> {
        let start = match cursor {
            None => "-".to_owned(),
            Some(cursor) if is_stream_id(cursor) => format!("({cursor}"),
            Some(cursor) => {
                return Err(StoreError::Invalid(format!("feed cursor {cursor:?} is not one this store gave")));
            }
        };
        let mut connection = self.connection.clone();
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(format!("{}feed", self.prefix))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit.min(MAX_PAGE))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        reply
            .ids
            .iter()
            .map(|entry| {
                Ok(FeedEntry {
                    cursor: entry.id.clone(),
                    call_id: entry.get("call_id").unwrap_or_default(),
                    seq: entry.get("seq").unwrap_or_default(),
                    event: entry_event(entry)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let result = redis::cmd("PING").query_async::<String>(&mut connection).await.map(drop).map_err(unavailable);
        let health = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        *self.last_ping.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(health);
        result
    }
}

fn unavailable(err: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {err}"))
}

fn parse_record(json: &str) -> Result<CallRecord, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("call record: {e}")))
}

fn entry_event(entry: &redis::streams::StreamId) -> Result<Event, StoreError> {
    let bytes: Vec<u8> =
        entry.get("event").ok_or_else(|| StoreError::Corrupt(format!("entry {} has no event", entry.id)))?;
    wire::decode_event(&bytes).map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", entry.id)))
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// `<ms>-<n>`, as Redis writes stream ids.
fn is_stream_id(cursor: &str) -> bool {
    cursor.split_once('-').is_some_and(|(ms, n)| {
        !ms.is_empty() && !n.is_empty() && (ms.chars().chain(n.chars())).all(|c| c.is_ascii_digit())
    })
}
