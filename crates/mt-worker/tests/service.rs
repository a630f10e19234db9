//! The worker end to end on the in-process bus with the real Apertium engine: a final transcript
//! in, one `TranslationProduced` per translatable target out.

use std::sync::Arc;
use std::time::Duration;

use dragoman_bus::events::{EventMeta, Stage, TranscriptProduced, TranslationProduced};
use dragoman_bus::{Bus, CallSubjectKind, ConsumerSpec, DurableSubscription, Event, StreamLimits, wire};
use dragoman_mt_worker::apertium::{Apertium, ApertiumConfig};
use dragoman_mt_worker::service::{MtSettings, serve, translation_event_id};
use dragoman_runtime::{Config, Shutdown};
use dragoman_test_support::{memory_bus, within};
use futures::StreamExt as _;
use uuid::Uuid;

fn transcript(call_id: &str, stage: Stage, text: &str, language: &str, targets: &[&str]) -> Event {
    Event::TranscriptProduced(TranscriptProduced {
        meta: EventMeta::now(call_id),
        leg: "caller".to_owned(),
        utterance_id: Uuid::now_v7(),
        sequence: 3,
        stage,
        text: text.to_owned(),
        language: language.to_owned(),
        confidence: 0.9,
        start_ms: 1_000,
        end_ms: 2_500,
        words: Vec::new(),
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        engine: "test".to_owned(),
        model: "test".to_owned(),
    })
}

async fn next_translation(translations: &mut DurableSubscription) -> TranslationProduced {
    let delivery = within(20, translations.next()).await.expect("stream open").expect("delivery");
    let event = wire::decode_event(&delivery.message.payload).expect("decodes");
    delivery.ack().await.expect("ack");
    match event {
        Event::TranslationProduced(translation) => translation,
        other => panic!("not a translation: {other:?}"),
    }
}

async fn assert_nothing_more(translations: &mut DurableSubscription) {
    let more = tokio::time::timeout(Duration::from_millis(800), translations.next()).await;
    assert!(more.is_err(), "unexpected: {more:?}");
}

async fn start() -> (Bus, Shutdown, DurableSubscription, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let subjects = bus.subjects().clone();
    let translations = bus
        .durable_subscribe(
            &ConsumerSpec::new(subjects.calls_stream(), "test")
                .filter(subjects.all_calls(CallSubjectKind::Translations)),
        )
        .await
        .expect("subscribe");
    let engine = Arc::new(Apertium::new(ApertiumConfig::default()).expect("apertium-eng-spa is installed"));
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let worker = tokio::spawn(serve(engine, MtSettings::default(), bus.clone(), shutdown.clone()));
    (bus, shutdown, translations, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_transcripts_are_translated_into_each_supported_target() {
    let (bus, shutdown, mut translations, worker) = start().await;

    // es is translated; en is the source; de has no Apertium pair here; xx is no language.
    let event = transcript("call-1", Stage::Final, "Hello. Thank you.", "en", &["en", "es-ES", "de", "xx"]);
    bus.publish_event(&event).await.expect("publish");
    let Event::TranscriptProduced(source) = event else { unreachable!() };
    let translation = next_translation(&mut translations).await;
    assert_eq!(translation.text, "Hola. Gracias.");
    assert_eq!(translation.target_language, "es-ES");
    assert_eq!(translation.source_language, "en");
    assert_eq!(translation.source_text, "Hello. Thank you.");
    assert_eq!((translation.engine.as_str(), translation.model.as_str()), ("apertium", "eng-spa"));
    assert_eq!(translation.meta.call_id, "call-1");
    assert_eq!(translation.meta.event_id, translation_event_id(&source.utterance_id, "es-ES"));
    assert_eq!(
        (translation.leg.as_str(), translation.utterance_id, translation.sequence),
        ("caller", source.utterance_id, 3)
    );
    assert_eq!((translation.start_ms, translation.end_ms, translation.stage), (1_000, 2_500, Stage::Final));
    assert_nothing_more(&mut translations).await;

    // Partials are not translated; neither is a transcript without targets or in an unknown
    // language. Each is acknowledged, and the worker goes on.
    for event in [
        transcript("call-1", Stage::Partial, "Hello", "en", &["es"]),
        transcript("call-1", Stage::Final, "Hello.", "en", &[]),
        transcript("call-1", Stage::Final, "Hello.", "klingon", &["es"]),
    ] {
        bus.publish_event(&event).await.expect("publish");
    }
    assert_nothing_more(&mut translations).await;

    // Spanish to English, and an empty final (nothing was said) gives an empty translation.
    bus.publish_event(&transcript("call-2", Stage::Final, "Buenos días.", "es", &["en"])).await.expect("publish");
    assert_eq!(next_translation(&mut translations).await.text, "Good morning.");
    bus.publish_event(&transcript("call-2", Stage::Final, "", "es", &["en"])).await.expect("publish");
    assert_eq!(next_translation(&mut translations).await.text, "");

    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_with_the_installed_pairs() {
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let worker = tokio::spawn(dragoman_mt_worker::run(Arc::new(Config::default()), bus.clone(), shutdown.clone()));
    let subjects = bus.subjects().clone();
    let mut translations = bus
        .durable_subscribe(
            &ConsumerSpec::new(subjects.calls_stream(), "test")
                .filter(subjects.all_calls(CallSubjectKind::Translations)),
        )
        .await
        .expect("subscribe");
    bus.publish_event(&transcript("call-3", Stage::Final, "Thank you.", "en", &["es"])).await.expect("publish");
    assert_eq!(next_translation(&mut translations).await.text, "Gracias.");
    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}
