//! Events of a made-up call, and Redis helpers, shared by the store and recorder tests.

#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part; a panic is a test failure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dragoman_api::store::RedisStore;
use dragoman_bus::Event;
use dragoman_bus::events::{
    CallDirection, CallEnded, CallStarted, EventMeta, LanguageChanged, LanguageSource, LegJoined, Party, Stage,
    TranscriptProduced, TranslationProduced,
};
use uuid::Uuid;

/// The Redis tests use: `DRAGOMAN_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("DRAGOMAN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis store under a fresh namespace.
pub fn redis_store(url: &str, retention: Duration) -> RedisStore {
    RedisStore::open(url, &dragoman_test_support::unique_namespace(), retention).expect("redis url parses")
}

/// Every key under the store's prefix.
pub async fn redis_keys(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("tests need Redis at {url} ({e}); run .ci/run or start redis-server"));
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut connection).await.unwrap();
    keys.sort();
    keys
}

/// Deletes every key under the store's prefix.
pub async fn redis_clean(url: &str, prefix: &str) {
    let keys = redis_keys(url, prefix).await;
    if keys.is_empty() {
        return;
    }
    let client = redis::Client::open(url).expect("redis url");
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut connection).await.unwrap();
}

/// A time `seconds` after a fixed origin, so records are comparable across runs.
pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).expect("valid time")
}

fn meta(call_id: &str, seconds: i64) -> EventMeta {
    EventMeta { event_id: Uuid::now_v7(), call_id: call_id.to_owned(), occurred_at: at(seconds) }
}

pub fn started(call_id: &str, seconds: i64) -> Event {
    Event::CallStarted(CallStarted {
        meta: meta(call_id, seconds),
        direction: CallDirection::Inbound,
        caller: Party { name: "Ana".into(), number: "+34600000000".into() },
        callee: Party { name: "Desk".into(), number: "200".into() },
        application: "dragoman".into(),
    })
}

pub fn joined(call_id: &str, leg: &str, language: &str, target: &str, seconds: i64) -> Event {
    Event::LegJoined(LegJoined {
        meta: meta(call_id, seconds),
        leg: leg.into(),
        channel_id: format!("PJSIP/{leg}-0001"),
        party: Party::default(),
        language: Some(language.into()),
        targets: vec![target.into()],
    })
}

pub fn language_changed(call_id: &str, leg: &str, language: &str, seconds: i64) -> Event {
    Event::LanguageChanged(LanguageChanged {
        meta: meta(call_id, seconds),
        leg: leg.into(),
        language: language.into(),
        targets: vec!["en".into()],
        source: LanguageSource::Operator,
    })
}

pub fn ended(call_id: &str, seconds: i64) -> Event {
    Event::CallEnded(CallEnded {
        meta: meta(call_id, seconds),
        reason: "hangup".into(),
        cause: Some(16),
        duration_ms: 1000,
    })
}

/// The final transcript of utterance `n` of `leg`, with its deterministic utterance id.
pub fn final_transcript(call_id: &str, leg: &str, n: u64) -> Event {
    transcript(call_id, leg, n, Stage::Final)
}

pub fn transcript(call_id: &str, leg: &str, n: u64, stage: Stage) -> Event {
    Event::TranscriptProduced(TranscriptProduced {
        meta: meta(call_id, 10 + n as i64),
        leg: leg.into(),
        utterance_id: utterance_id(call_id, leg, n),
        sequence: n,
        stage,
        text: format!("{leg} line {n}"),
        language: "es".into(),
        confidence: 0.9,
        start_ms: 1_000 * n,
        end_ms: 1_000 * n + 800,
        words: Vec::new(),
        targets: vec!["en".into()],
        engine: "whisper.cpp".into(),
        model: "tiny".into(),
    })
}

pub fn final_translation(call_id: &str, leg: &str, n: u64) -> Event {
    Event::TranslationProduced(TranslationProduced {
        meta: meta(call_id, 10 + n as i64),
        leg: leg.into(),
        utterance_id: utterance_id(call_id, leg, n),
        sequence: n,
        stage: Stage::Final,
        source_language: "es".into(),
        source_text: format!("{leg} line {n}"),
        target_language: "en".into(),
        text: format!("{leg} translated {n}"),
        start_ms: 1_000 * n,
        end_ms: 1_000 * n + 800,
        engine: "apertium".into(),
        model: String::new(),
        elapsed_ms: 3,
    })
}

pub fn utterance_id(call_id: &str, leg: &str, n: u64) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{call_id}/{leg}/{n}").as_bytes())
}

/// A whole call: start, two legs, `lines` final transcripts alternating between the legs, each
/// with its translation, and the end.
pub fn whole_call(call_id: &str, lines: u64) -> Vec<Event> {
    let mut events =
        vec![started(call_id, 0), joined(call_id, "caller", "es", "en", 1), joined(call_id, "callee", "en", "es", 2)];
    for n in 0..lines {
        let leg = if n % 2 == 0 { "caller" } else { "callee" };
        events.push(final_transcript(call_id, leg, n));
        events.push(final_translation(call_id, leg, n));
    }
    events.push(ended(call_id, 10_000));
    events
}

pub fn event_id(event: &Event) -> Uuid {
    event.meta().expect("known event").event_id
}
