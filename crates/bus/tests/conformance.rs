//! One conformance suite, two buses: every test runs against real NATS (JetStream) and against
//! the in-process bus, so `dragoman standalone` behaves like a deployment.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use dragoman_bus::{Bus, BusError, ConsumerSpec, Headers, StartAt, StreamLimits, headers};
use dragoman_test_support::within;
use futures::StreamExt;

fn payload(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Lets a fresh NATS subscription reach the server before publishing.
async fn settle(bus: &Bus) {
    bus.ping().await.expect("ping");
}

async fn pubsub_delivers_to_every_subscriber_with_wildcards(bus: Bus) {
    let ns = bus.subjects().namespace().to_owned();
    let mut exact = bus.subscribe(&format!("{ns}.a.b")).await.unwrap();
    let mut star = bus.subscribe(&format!("{ns}.a.*")).await.unwrap();
    let mut tail = bus.subscribe(&format!("{ns}.>")).await.unwrap();
    let mut other = bus.subscribe(&format!("{ns}.x.*")).await.unwrap();
    settle(&bus).await;

    let h = Headers::new().with(headers::TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    bus.publish(&format!("{ns}.a.b"), h.clone(), payload("one")).await.unwrap();
    for sub in [&mut exact, &mut star, &mut tail] {
        let m = within(5, sub.next()).await.expect("message");
        assert_eq!(m.subject, format!("{ns}.a.b"));
        assert_eq!(m.payload, payload("one"));
        assert_eq!(m.headers.get(headers::TRACEPARENT), h.get(headers::TRACEPARENT));
    }
    bus.publish(&format!("{ns}.x.y"), Headers::new(), payload("two")).await.unwrap();
    assert_eq!(within(5, other.next()).await.unwrap().payload, payload("two"));
    assert_eq!(within(5, tail.next()).await.unwrap().payload, payload("two"));
    // `exact` and `star` must not see x.y: the next thing they get is the marker.
    bus.publish(&format!("{ns}.a.b"), Headers::new(), payload("marker")).await.unwrap();
    assert_eq!(within(5, exact.next()).await.unwrap().payload, payload("marker"));
    assert_eq!(within(5, star.next()).await.unwrap().payload, payload("marker"));
}

async fn queue_group_delivers_each_message_to_exactly_one_member(bus: Bus) {
    let subject = bus.subjects().stt_partial();
    let mut members: Vec<_> = Vec::new();
    for _ in 0..3 {
        members.push(bus.queue_subscribe(&subject, "stt").await.unwrap());
    }
    let mut watcher = bus.subscribe(&subject).await.unwrap();
    settle(&bus).await;
    let n = 150;
    for i in 0..n {
        bus.publish(&subject, Headers::new(), payload(&i.to_string())).await.unwrap();
    }
    // The plain subscriber sees all of them.
    for _ in 0..n {
        within(5, watcher.next()).await.unwrap();
    }
    let mut seen = BTreeMap::new();
    let mut per_member = Vec::new();
    for member in &mut members {
        let mut count = 0;
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), member.next()).await {
            *seen.entry(String::from_utf8(m.payload.to_vec()).unwrap()).or_insert(0) += 1;
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(seen.len(), n, "every message delivered to the group");
    assert!(seen.values().all(|&c| c == 1), "no message delivered twice: {seen:?}");
    assert!(per_member.iter().filter(|&&c| c > 0).count() >= 2, "work is shared: {per_member:?}");
}

async fn request_reply_round_trips(bus: Bus) {
    let subject = bus.subjects().media_allocate();
    let mut responder = bus.queue_subscribe(&subject, "media-ingest").await.unwrap();
    settle(&bus).await;
    let server = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let request = responder.next().await.expect("request");
            let echoed = request.headers.get("X-Echo").unwrap_or("none").to_owned();
            let mut reply = request.payload.to_vec();
            reply.extend_from_slice(b"-pong");
            bus.respond(&request, Headers::new().with("X-Echo", echoed), Bytes::from(reply)).await.unwrap();
        })
    };
    let reply = bus
        .request(&subject, Headers::new().with("X-Echo", "42"), payload("ping"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.payload, payload("ping-pong"));
    assert_eq!(reply.headers.get("X-Echo"), Some("42"));
    server.await.unwrap();
}

async fn request_without_responders_fails_fast(bus: Bus) {
    let subject = bus.subjects().control_hangup();
    let started = std::time::Instant::now();
    let err = bus.request(&subject, Headers::new(), payload("x"), Duration::from_secs(10)).await.unwrap_err();
    assert!(matches!(err, BusError::NoResponders { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "no-responders must not wait for the timeout");
}

async fn request_times_out_when_nobody_answers(bus: Bus) {
    let subject = bus.subjects().control_originate();
    let _silent = bus.subscribe(&subject).await.unwrap();
    settle(&bus).await;
    let err = bus.request(&subject, Headers::new(), payload("x"), Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, BusError::Timeout { .. }), "{err:?}");
}

async fn durable_messages_wait_for_a_consumer_and_are_acked(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subject = bus.subjects().stt_final();
    // Published before anyone consumes: stored, not lost.
    for i in 0..5 {
        bus.publish_durable(&subject, Headers::new().with(headers::MSG_ID, format!("m{i}")), payload(&i.to_string()))
            .await
            .unwrap();
    }
    let spec = ConsumerSpec::new(bus.subjects().stt_stream(), "stt").ack_wait(Duration::from_secs(30));
    let mut consumer = bus.durable_subscribe(&spec).await.unwrap();
    for i in 0..5 {
        let d = within(5, consumer.next()).await.unwrap().unwrap();
        assert_eq!(d.message.payload, payload(&i.to_string()), "in order");
        assert_eq!(d.attempt, 1);
        d.ack().await.unwrap();
    }
    within(5, async {
        while bus.consumer_pending(&spec.stream, &spec.durable).await.unwrap() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await.is_err(),
        "acked messages never return"
    );
}

async fn unacked_messages_are_redelivered(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subject = bus.subjects().stt_final();
    bus.publish_durable(&subject, Headers::new(), payload("utterance")).await.unwrap();
    let spec = ConsumerSpec::new(bus.subjects().stt_stream(), "stt").ack_wait(Duration::from_secs(1));
    let mut consumer = bus.durable_subscribe(&spec).await.unwrap();
    let first = within(5, consumer.next()).await.unwrap().unwrap();
    assert_eq!(first.attempt, 1);
    drop(first); // a worker that crashed mid-utterance never acks
    let again = within(10, consumer.next()).await.unwrap().unwrap();
    assert_eq!(again.message.payload, payload("utterance"));
    assert_eq!(again.attempt, 2);
    // A nak brings it back without waiting for ack_wait.
    again.nak(None).await.unwrap();
    let third = within(5, consumer.next()).await.unwrap().unwrap();
    assert_eq!(third.attempt, 3);
    third.ack().await.unwrap();
}

async fn a_new_subscriber_resumes_the_durable_position(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subject = bus.subjects().stt_final();
    for i in 0..4 {
        bus.publish_durable(&subject, Headers::new(), payload(&i.to_string())).await.unwrap();
    }
    let spec = ConsumerSpec::new(bus.subjects().stt_stream(), "stt").ack_wait(Duration::from_secs(1));
    let mut first = bus.durable_subscribe(&spec).await.unwrap();
    for _ in 0..2 {
        within(5, first.next()).await.unwrap().unwrap().ack().await.unwrap();
    }
    drop(first); // the process restarts
    let mut second = bus.durable_subscribe(&spec).await.unwrap();
    let mut rest = Vec::new();
    while rest.len() < 2 {
        let d = within(10, second.next()).await.unwrap().unwrap();
        rest.push(String::from_utf8(d.message.payload.to_vec()).unwrap());
        d.ack().await.unwrap();
    }
    rest.sort();
    assert_eq!(rest, ["2", "3"], "acked messages are not replayed, unacked ones are");
}

async fn subscribers_of_one_durable_share_the_work(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subject = bus.subjects().stt_final();
    let spec =
        ConsumerSpec::new(bus.subjects().stt_stream(), "stt").ack_wait(Duration::from_secs(30)).max_ack_pending(4);
    let a = bus.durable_subscribe(&spec).await.unwrap();
    let b = bus.durable_subscribe(&spec).await.unwrap();
    let n = 40;
    for i in 0..n {
        bus.publish_durable(&subject, Headers::new(), payload(&i.to_string())).await.unwrap();
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (name, mut sub) in [("a", a), ("b", b)] {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = sub.next().await {
                let body = String::from_utf8(d.message.payload.to_vec()).unwrap();
                // Slow handling lets the other member take its share.
                tokio::time::sleep(Duration::from_millis(10)).await;
                d.ack().await.unwrap();
                if tx.send((name, body)).is_err() {
                    break;
                }
            }
        });
    }
    let mut bodies = HashSet::new();
    let mut by_member: BTreeMap<&str, usize> = BTreeMap::new();
    while bodies.len() < n {
        let (name, body) = within(20, rx.recv()).await.unwrap();
        assert!(bodies.insert(body.clone()), "{body} handled twice");
        *by_member.entry(name).or_default() += 1;
    }
    assert_eq!(by_member.len(), 2, "both members worked: {by_member:?}");
}

async fn duplicate_message_ids_are_stored_once(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subjects = bus.subjects().clone();
    let subject = subjects.call("call-1", dragoman_bus::CallSubjectKind::Transcripts).unwrap();
    for _ in 0..3 {
        bus.publish_durable(&subject, Headers::new().with(headers::MSG_ID, "event-1"), payload("same")).await.unwrap();
    }
    bus.publish_durable(&subject, Headers::new().with(headers::MSG_ID, "event-2"), payload("next")).await.unwrap();
    let spec = ConsumerSpec::new(subjects.calls_stream(), "recorder")
        .filter(subjects.all_calls(dragoman_bus::CallSubjectKind::Transcripts));
    let mut consumer = bus.durable_subscribe(&spec).await.unwrap();
    let first = within(5, consumer.next()).await.unwrap().unwrap();
    assert_eq!(first.message.payload, payload("same"));
    first.ack().await.unwrap();
    let second = within(5, consumer.next()).await.unwrap().unwrap();
    assert_eq!(second.message.payload, payload("next"), "the duplicates were dropped");
    second.ack().await.unwrap();
}

async fn consumers_filter_and_start_where_asked(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let subjects = bus.subjects().clone();
    let events = subjects.call("c9", dragoman_bus::CallSubjectKind::Events).unwrap();
    let transcripts = subjects.call("c9", dragoman_bus::CallSubjectKind::Transcripts).unwrap();
    bus.publish_durable(&events, Headers::new(), payload("old-event")).await.unwrap();
    let only_new = ConsumerSpec::new(subjects.calls_stream(), "live")
        .filter(subjects.all_calls(dragoman_bus::CallSubjectKind::Transcripts))
        .start_at(StartAt::New);
    let mut consumer = bus.durable_subscribe(&only_new).await.unwrap();
    bus.publish_durable(&events, Headers::new(), payload("new-event")).await.unwrap();
    bus.publish_durable(&transcripts, Headers::new(), payload("new-transcript")).await.unwrap();
    let d = within(5, consumer.next()).await.unwrap().unwrap();
    assert_eq!(d.message.payload, payload("new-transcript"));
    assert_eq!(d.message.subject, transcripts);
    d.ack().await.unwrap();
}

async fn durable_publish_without_a_stream_is_an_error(bus: Bus) {
    // No streams created in this namespace.
    let err = bus.publish_durable(&bus.subjects().stt_final(), Headers::new(), payload("x")).await.unwrap_err();
    assert!(matches!(err, BusError::NoStream { .. } | BusError::Backend { .. }), "{err:?}");
}

async fn invalid_subjects_are_refused(bus: Bus) {
    assert!(bus.publish("a.*.b", Headers::new(), payload("x")).await.is_err());
    assert!(bus.publish("a..b", Headers::new(), payload("x")).await.is_err());
    assert!(bus.subscribe("a.>.b").await.is_err());
}

async fn cleanup(bus: &Bus) {
    for name in [bus.subjects().calls_stream(), bus.subjects().stt_stream()] {
        let _ = bus.delete_stream(&name).await;
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $test() {
                    let bus = dragoman_test_support::memory_bus();
                    dragoman_test_support::within(60, super::$test(bus.clone())).await;
                    super::cleanup(&bus).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $test() {
                    let bus = dragoman_test_support::nats_bus().await;
                    let result = tokio::time::timeout(
                        std::time::Duration::from_secs(60),
                        tokio::spawn(super::$test(bus.clone())),
                    )
                    .await;
                    super::cleanup(&bus).await;
                    match result {
                        Ok(Ok(())) => {}
                        Ok(Err(panic)) => std::panic::resume_unwind(panic.into_panic()),
                        Err(_) => panic!("timed out"),
                    }
                }
            )*
        }
    };
}

conformance!(
    pubsub_delivers_to_every_subscriber_with_wildcards,
    queue_group_delivers_each_message_to_exactly_one_member,
    request_reply_round_trips,
    request_without_responders_fails_fast,
    request_times_out_when_nobody_answers,
    durable_messages_wait_for_a_consumer_and_are_acked,
    unacked_messages_are_redelivered,
    a_new_subscriber_resumes_the_durable_position,
    subscribers_of_one_durable_share_the_work,
    duplicate_message_ids_are_stored_once,
    consumers_filter_and_start_where_asked,
    durable_publish_without_a_stream_is_an_error,
    invalid_subjects_are_refused,
);
