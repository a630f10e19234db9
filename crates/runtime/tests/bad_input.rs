//! A malformed or unknown message on any subject is logged, counted and skipped; it never
//! crashes or stalls a service. Checked on both buses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dragoman_bus::control::{ControlError, Done, ErrorCode, Hangup, Reply};
use dragoman_bus::{Bus, ConsumerSpec, Headers, StreamLimits, wire};
use dragoman_runtime::Shutdown;
use dragoman_runtime::worker::{HandleError, consume_durable, serve_requests};
use dragoman_test_support::{memory_bus, nats_bus, within};

fn invalid_count() -> f64 {
    let text = dragoman_runtime::telemetry::prometheus().render();
    text.lines()
        .filter(|l| l.starts_with("dragoman_bus_invalid_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn requests_survive_garbage(bus: Bus) {
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let subject = bus.subjects().control_hangup();
    let server = {
        let (bus, shutdown, subject) = (bus.clone(), shutdown.clone(), subject.clone());
        tokio::spawn(async move {
            serve_requests(&bus, &subject, "ari-gateway", &shutdown, 4, |req: Hangup| async move {
                if req.call_id == "gone" {
                    Err(ControlError::new(ErrorCode::NotFound, "no such call"))
                } else {
                    Ok(Done {})
                }
            })
            .await
        })
    };
    bus.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = invalid_count();

    for garbage in [&b"not json"[..], b"{\"call_id\": 7}", b"", &[0xff, 0xfe, 0x00][..]] {
        let reply =
            within(5, bus.request(&subject, Headers::new(), Bytes::copy_from_slice(garbage), Duration::from_secs(2)))
                .await
                .expect("garbage still gets an answer");
        let reply: Reply<Done> = wire::decode(&reply.payload).unwrap();
        assert!(matches!(reply, Reply::Error(ControlError { code: ErrorCode::BadRequest, .. })), "{reply:?}");
    }
    assert!(invalid_count() >= before + 4.0, "each bad request counted");

    // Still serving, with real answers.
    let ok: Reply<Done> = bus
        .request_json(&subject, &Hangup { call_id: "c1".into(), reason: None }, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(ok, Reply::Ok(Done {}));
    let not_found: Reply<Done> = bus
        .request_json(&subject, &Hangup { call_id: "gone".into(), reason: None }, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(matches!(not_found, Reply::Error(ControlError { code: ErrorCode::NotFound, .. })));

    shutdown.trigger();
    within(5, server).await.unwrap().unwrap();
}

async fn durable_consumers_skip_garbage_and_keep_going(bus: Bus) {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let subject = bus.subjects().stt_final();
    let handled = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let spec = ConsumerSpec::new(bus.subjects().stt_stream(), "stt").ack_wait(Duration::from_secs(30));
    let consumer = {
        let (bus, shutdown, handled, retried) = (bus.clone(), shutdown.clone(), handled.clone(), retried.clone());
        tokio::spawn(async move {
            consume_durable(
                &bus,
                &spec,
                &shutdown,
                2,
                |m| wire::decode::<Hangup>(&m.payload),
                |h: Hangup| {
                    let (handled, retried) = (handled.clone(), retried.clone());
                    async move {
                        // The first attempt at "flaky" fails as if a dependency were down.
                        if h.call_id == "flaky" && retried.fetch_add(1, Ordering::SeqCst) == 0 {
                            return Err(HandleError::Retry {
                                reason: "dependency down".into(),
                                delay: Duration::from_millis(100),
                            });
                        }
                        if h.call_id == "poison" {
                            return Err(HandleError::Permanent("cannot ever work".into()));
                        }
                        handled.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    let before = invalid_count();
    let publish = |payload: Bytes| {
        let (bus, subject) = (bus.clone(), subject.clone());
        async move { bus.publish_durable(&subject, Headers::new(), payload).await.unwrap() }
    };
    publish(Bytes::from_static(b"\x00\x01garbage")).await;
    publish(wire::encode(&Hangup { call_id: "a".into(), reason: None })).await;
    publish(Bytes::from_static(b"{\"unexpected\": true}")).await;
    publish(wire::encode(&Hangup { call_id: "poison".into(), reason: None })).await;
    publish(wire::encode(&Hangup { call_id: "flaky".into(), reason: None })).await;
    publish(wire::encode(&Hangup { call_id: "b".into(), reason: None })).await;

    within(15, async {
        while handled.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    within(10, async {
        while bus.consumer_pending(&bus.subjects().stt_stream(), "stt").await.unwrap() != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(handled.load(Ordering::SeqCst), 3, "a, b and flaky (after one retry) handled once each");
    assert_eq!(retried.load(Ordering::SeqCst), 2, "flaky was attempted twice");
    assert!(invalid_count() >= before + 2.0, "both undecodable messages counted");
    shutdown.trigger();
    within(5, consumer).await.unwrap().unwrap();
    for name in [bus.subjects().calls_stream(), bus.subjects().stt_stream()] {
        let _ = bus.delete_stream(&name).await;
    }
}

#[tokio::test]
async fn in_process_requests_survive_garbage() {
    requests_survive_garbage(memory_bus()).await;
}

#[tokio::test]
async fn nats_requests_survive_garbage() {
    requests_survive_garbage(nats_bus().await).await;
}

#[tokio::test]
async fn in_process_durable_consumers_skip_garbage() {
    durable_consumers_skip_garbage_and_keep_going(memory_bus()).await;
}

#[tokio::test]
async fn nats_durable_consumers_skip_garbage() {
    durable_consumers_skip_garbage_and_keep_going(nats_bus().await).await;
}
