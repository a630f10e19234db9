//! One suite, two stores: every case runs once on `MemoryStore` and once on `RedisStore`
//! against the real Redis on loopback (`DRAGOMAN_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`), each Redis case under its own namespace, deleted afterwards.

#![allow(clippy::unwrap_used)] // A panic is how a test reports failure.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use dragoman_api::store::{
    Applied, CallFilter, CallState, CallStore, MAX_PAGE, MemoryStore, Page, RedisStore, StoredEvent,
};
use dragoman_bus::Event;
use dragoman_bus::events::Stage;
use dragoman_test_support::within;

const RETENTION: Duration = Duration::from_secs(3600);

/// Runs each case against both stores.
macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    let store = dragoman_api::store::MemoryStore::new(super::RETENTION);
                    dragoman_test_support::within(60, super::$case(store, super::RETENTION)).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = super::redis_url();
                    let store = super::redis_store(&url, super::RETENTION);
                    let prefix = store.key_prefix().to_owned();
                    dragoman_test_support::within(60, super::$case(store, super::RETENTION)).await;
                    super::redis_clean(&url, &prefix).await;
                }
            )*
        }
    };
}

store_suite!(
    the_same_event_is_stored_once,
    concurrent_writers_store_each_event_once_with_no_gaps,
    events_after_pages_through_a_call_in_order,
    a_call_record_follows_its_events,
    the_transcript_joins_translations_and_skips_partials,
    calls_are_listed_newest_first_with_filters_and_pages,
    the_feed_holds_every_call_in_order,
    unknown_calls_read_as_empty,
);

async fn all_events<S: CallStore>(store: &S, call_id: &str) -> Vec<StoredEvent> {
    store.events_after(call_id, 0, MAX_PAGE).await.expect("events")
}

async fn apply_all<S: CallStore>(store: &S, events: &[Event]) {
    for event in events {
        store.apply(event).await.expect("apply");
    }
}

async fn the_same_event_is_stored_once<S: CallStore>(store: S, _: Duration) {
    let line = final_transcript("c1", "caller", 0);
    assert_eq!(store.apply(&started("c1", 0)).await.unwrap(), Applied::Stored { seq: 1 });
    assert_eq!(store.apply(&line).await.unwrap(), Applied::Stored { seq: 2 });
    assert_eq!(store.apply(&line).await.unwrap(), Applied::Duplicate { seq: 2 });
    assert_eq!(
        store.apply(&started("c1", 0)).await.unwrap(),
        Applied::Stored { seq: 3 },
        "a new event id is a new event"
    );

    let events = all_events(&store, "c1").await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(store.transcript("c1").await.unwrap().lines.len(), 1);
    let record = store.get_call("c1").await.unwrap().expect("record");
    assert_eq!((record.transcripts, record.last_seq), (1, 3));
}

async fn concurrent_writers_store_each_event_once_with_no_gaps<S: CallStore>(store: S, _: Duration) {
    let events = whole_call("busy", 60);
    // Four writers apply every event of the call at once, each in its own order, as two
    // recorders with redeliveries would.
    let writers = (0..4).map(|writer| {
        let (store, mut events) = (store.clone(), events.clone());
        if writer % 2 == 1 {
            events.reverse();
        }
        events.rotate_left(writer * 7);
        tokio::spawn(async move {
            let mut stored = 0;
            for event in &events {
                // Like the recorder, a writer tries again when the store says it may work later.
                let applied = loop {
                    match store.apply(event).await {
                        Err(err) if err.is_retryable() => continue,
                        applied => break applied.expect("apply"),
                    }
                };
                if let Applied::Stored { .. } = applied {
                    stored += 1;
                }
            }
            stored
        })
    });
    let stored: usize = futures::future::join_all(writers).await.into_iter().map(|r| r.expect("writer")).sum();
    assert_eq!(stored, events.len(), "each event stored by exactly one writer");

    let stored = all_events(&store, "busy").await;
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=events.len() as u64).collect::<Vec<_>>());
    let ids: HashSet<_> = stored.iter().map(|e| event_id(&e.event)).collect();
    assert_eq!(ids, events.iter().map(event_id).collect::<HashSet<_>>());

    let transcript = store.transcript("busy").await.unwrap();
    assert_eq!(transcript.lines.len(), 60);
    assert!(transcript.lines.iter().all(|line| line.translations.len() == 1));
    let record = store.get_call("busy").await.unwrap().expect("record");
    assert_eq!((record.state, record.transcripts, record.translations), (CallState::Ended, 60, 60));
    assert_eq!(record.last_seq, events.len() as u64);
}

async fn events_after_pages_through_a_call_in_order<S: CallStore>(store: S, _: Duration) {
    let events = whole_call("paged", 25);
    apply_all(&store, &events).await;
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after("paged", after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 7);
        after = last.seq;
        read.extend(page);
    }
    assert_eq!(read.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=events.len() as u64).collect::<Vec<_>>());
    assert_eq!(read.into_iter().map(|e| e.event).collect::<Vec<_>>(), events, "in the order stored, unchanged");
    assert!(store.events_after("paged", events.len() as u64, 10).await.unwrap().is_empty());
    assert_eq!(store.events_after("paged", 50, 1_000_000).await.unwrap().len(), events.len() - 50, "limit is capped");
}

async fn a_call_record_follows_its_events<S: CallStore>(store: S, _: Duration) {
    // The operator's change (t=5) is stored before the dialplan's language (t=1): the later
    // change still wins, and the end stored before the last line keeps the call ended.
    let events = [
        started("rec", 0),
        language_changed("rec", "caller", "fr", 5),
        joined("rec", "caller", "es", "en", 1),
        joined("rec", "callee", "en", "es", 2),
        ended("rec", 60),
        final_transcript("rec", "callee", 3),
    ];
    apply_all(&store, &events).await;
    let record = store.get_call("rec").await.unwrap().expect("record");
    assert_eq!(record.call_id, "rec");
    assert_eq!(record.state, CallState::Ended);
    assert_eq!(record.started_at, at(0));
    assert_eq!(record.ended_at, Some(at(60)));
    assert_eq!(record.end_reason.as_deref(), Some("hangup"));
    assert_eq!(record.caller.name, "Ana");
    assert_eq!(record.legs.keys().collect::<Vec<_>>(), ["callee", "caller"]);
    let caller = &record.legs["caller"];
    assert_eq!((caller.language.as_deref(), caller.channel_id.as_str()), (Some("fr"), "PJSIP/caller-0001"));
    assert_eq!(record.legs["callee"].language.as_deref(), Some("en"));
    assert_eq!(record.legs["callee"].targets, ["es"]);
    assert_eq!((record.legs["callee"].transcripts, record.last_seq), (1, 6));
}

async fn the_transcript_joins_translations_and_skips_partials<S: CallStore>(store: S, _: Duration) {
    // A translation stored before its transcript, a partial (never stored), and a translation
    // whose transcript never came.
    assert_eq!(store.apply(&transcript("tx", "caller", 0, Stage::Partial)).await.unwrap(), Applied::Ignored);
    apply_all(
        &store,
        &[
            final_translation("tx", "caller", 1),
            final_transcript("tx", "caller", 1),
            final_transcript("tx", "callee", 0),
            final_translation("tx", "callee", 2),
        ],
    )
    .await;
    assert_eq!(all_events(&store, "tx").await.len(), 4, "the partial was not stored");
    let transcript = store.transcript("tx").await.unwrap();
    assert_eq!(transcript.call_id, "tx");
    let lines: Vec<_> = transcript
        .lines
        .iter()
        .map(|l| (l.leg.as_str(), l.text.as_str(), l.translations.get("en").map(|t| t.text.as_str())))
        .collect();
    assert_eq!(
        lines,
        [
            ("callee", "callee line 0", None),
            ("caller", "caller line 1", Some("caller translated 1")),
            ("callee", "callee line 2", Some("callee translated 2")),
        ]
    );
    let first = &transcript.lines[1];
    assert_eq!((first.start_ms, first.end_ms, first.language.as_str()), (1000, 1800, "es"));
    assert_eq!(first.utterance_id, utterance_id("tx", "caller", 1));
}

async fn calls_are_listed_newest_first_with_filters_and_pages<S: CallStore>(store: S, _: Duration) {
    // Five calls a minute apart; the first two have ended.
    for (n, call) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        store.apply(&started(call, 60 * n as i64)).await.unwrap();
        if n < 2 {
            store.apply(&ended(call, 60 * n as i64 + 30)).await.unwrap();
        }
    }
    let ids = |page: &dragoman_api::store::CallPage| page.calls.iter().map(|c| c.call_id.clone()).collect::<Vec<_>>();
    let all = CallFilter::default();
    let first = store.list_calls(&all, Page { offset: 0, limit: 2 }).await.unwrap();
    assert_eq!((ids(&first), first.total), (vec!["e".to_owned(), "d".to_owned()], 5));
    let last = store.list_calls(&all, Page { offset: 4, limit: 2 }).await.unwrap();
    assert_eq!((ids(&last), last.total), (vec!["a".to_owned()], 5));
    assert!(store.list_calls(&all, Page { offset: 5, limit: 2 }).await.unwrap().calls.is_empty());

    let active = CallFilter { state: Some(CallState::Active), ..Default::default() };
    let page = store.list_calls(&active, Page::default()).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec!["e".to_owned(), "d".to_owned(), "c".to_owned()], 3));
    let ended_calls = CallFilter { state: Some(CallState::Ended), ..Default::default() };
    let page = store.list_calls(&ended_calls, Page::default()).await.unwrap();
    assert_eq!(ids(&page), ["b", "a"]);
    assert!(page.calls.iter().all(|c| c.state == CallState::Ended));

    // Started in [60 s, 180 s): b, c; the bound before is exclusive, the one from inclusive.
    let range = CallFilter { started_from: Some(at(60)), started_before: Some(at(180)), ..Default::default() };
    let page = store.list_calls(&range, Page::default()).await.unwrap();
    assert_eq!((ids(&page), page.total), (vec!["c".to_owned(), "b".to_owned()], 2));
    let range = CallFilter { state: Some(CallState::Active), started_from: Some(at(60)), ..range };
    assert_eq!(ids(&store.list_calls(&range, Page::default()).await.unwrap()), ["c"]);
}

async fn the_feed_holds_every_call_in_order<S: CallStore>(store: S, _: Duration) {
    let one = whole_call("one", 2);
    let two = whole_call("two", 2);
    for (a, b) in one.iter().zip(&two) {
        store.apply(a).await.unwrap();
        store.apply(b).await.unwrap();
    }
    let mut read = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.feed_after(cursor.as_deref(), 3).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(last.cursor.clone());
        read.extend(page);
    }
    let expected: Vec<_> = one.iter().zip(&two).flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    assert_eq!(read.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), expected);
    let of_two: Vec<_> = read.iter().filter(|e| e.call_id == "two").map(|e| e.seq).collect();
    assert_eq!(of_two, (1..=two.len() as u64).collect::<Vec<_>>());
    assert!(store.feed_after(Some("not-a-cursor"), 3).await.is_err());
}

async fn unknown_calls_read_as_empty<S: CallStore>(store: S, _: Duration) {
    assert_eq!(store.get_call("nobody").await.unwrap(), None);
    assert!(store.transcript("nobody").await.unwrap().lines.is_empty());
    assert!(all_events(&store, "nobody").await.is_empty());
    assert!(store.list_calls(&CallFilter::default(), Page::default()).await.unwrap().calls.is_empty());
    store.ping().await.expect("ping");
    assert!(store.apply(&Event::Unknown).await.is_ok_and(|a| a == Applied::Ignored));
    assert!(store.apply(&started("bad.call", 0)).await.is_err(), "a call id no subject could carry");
}

/// Retention, on both stores: after it, a call is gone from every read.
async fn forgets_calls_after_retention<S: CallStore>(store: S) {
    apply_all(&store, &whole_call("short", 2)).await;
    assert!(store.get_call("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(store.get_call("short").await.unwrap(), None);
    assert!(all_events(&store, "short").await.is_empty());
    assert!(store.transcript("short").await.unwrap().lines.is_empty());
    let page = store.list_calls(&CallFilter::default(), Page::default()).await.unwrap();
    assert_eq!((page.calls.len(), page.total), (0, 0));
    assert!(store.feed_after(None, 10).await.unwrap().is_empty());
    // The call can start again from nothing.
    assert_eq!(store.apply(&started("short", 0)).await.unwrap(), Applied::Stored { seq: 1 });
}

#[tokio::test]
async fn memory_forgets_calls_after_retention() {
    within(30, forgets_calls_after_retention(MemoryStore::new(Duration::from_secs(1)))).await;
}

#[tokio::test]
async fn redis_forgets_calls_after_retention() {
    let url = redis_url();
    let store = redis_store(&url, Duration::from_secs(1));
    let prefix = store.key_prefix().to_owned();
    within(30, forgets_calls_after_retention(store)).await;
    redis_clean(&url, &prefix).await;
}

/// Every key the Redis store writes carries the retention as its TTL, renewed by each event.
#[tokio::test]
async fn redis_keys_all_expire_with_the_retention() {
    let url = redis_url();
    let store: RedisStore = redis_store(&url, RETENTION);
    let prefix = store.key_prefix().to_owned();
    within(30, apply_all(&store, &whole_call("ttl", 3))).await;
    let keys = redis_keys(&url, &prefix).await;
    // `calls:active` is gone: the call ended, and Redis deletes an empty sorted set.
    let expected: Vec<String> =
        ["calls:all", "calls:ended", "calls:expiry", "events:ttl", "feed", "record:ttl", "seen:ttl"]
            .iter()
            .map(|k| format!("{prefix}{k}"))
            .collect();
    assert_eq!(keys, expected);
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for key in &keys {
        let ttl_ms: i64 = ::redis::cmd("PTTL").arg(key).query_async(&mut connection).await.unwrap();
        assert!(ttl_ms > 3_500_000 && ttl_ms <= 3_600_000, "{key} has TTL {ttl_ms} ms");
    }
    redis_clean(&url, &prefix).await;
}

/// A Redis that cannot be reached is an error to retry, never a panic or a partial write.
#[tokio::test]
async fn redis_down_is_a_retryable_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = redis_store(&format!("redis://127.0.0.1:{port}"), RETENTION);
    let err = within(30, store.apply(&started("x", 0))).await.expect_err("nothing listens there");
    assert!(err.is_retryable(), "{err}");
    assert!(within(30, store.ping()).await.is_err());
    assert!(store.health().is_err());
}
