//! The worker end to end on the in-process bus with the real Apertium engine: a final transcript
//! in, one `TranslationProduced` per translatable target out.

use std::sync::Arc;
use std::time::Duration;

use dragoman_bus::events::{EventMeta, Stage, TranscriptProduced, TranslationProduced};
use dragoman_bus::{Bus, CallSubjectKind, ConsumerSpec, DurableSubscription, Event, StreamLimits, Subscription, wire};
use dragoman_mt_worker::TranslationEngine;
use dragoman_mt_worker::apertium::{Apertium, ApertiumConfig};
use dragoman_mt_worker::ct2::{Ct2Translate, Ct2TranslateOptions};
use dragoman_mt_worker::service::{MtSettings, partial_translation_event_id, serve, translation_event_id};
use dragoman_runtime::config::MtEngineKind;
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

/// The next partial translation on the core partials subject (partial transcripts pass by too).
async fn next_partial_translation(partials: &mut Subscription) -> TranslationProduced {
    loop {
        let message = within(20, partials.next()).await.expect("subscription open");
        if let Ok(Event::TranslationProduced(translation)) = wire::decode_event(&message.payload) {
            return translation;
        }
    }
}

async fn assert_nothing_more(translations: &mut DurableSubscription) {
    let more = tokio::time::timeout(Duration::from_millis(800), translations.next()).await;
    assert!(more.is_err(), "unexpected: {more:?}");
}

type Worker = tokio::task::JoinHandle<anyhow::Result<()>>;

async fn start() -> (Bus, Shutdown, DurableSubscription, Worker) {
    let engine = Arc::new(Apertium::new(ApertiumConfig::default()).expect("apertium-eng-spa is installed"));
    start_with(vec![engine], MtSettings::default()).await
}

/// A durable subscription to every call's translations.
async fn subscribe_translations(bus: &Bus) -> DurableSubscription {
    let subjects = bus.subjects();
    bus.durable_subscribe(
        &ConsumerSpec::new(subjects.calls_stream(), "test").filter(subjects.all_calls(CallSubjectKind::Translations)),
    )
    .await
    .expect("subscribe")
}

/// The NLLB-layout echo model, decoded greedily (a second beam never ends on an echo model).
fn echo_engine() -> Arc<dyn TranslationEngine> {
    Arc::new(
        Ct2Translate::load(&[echo_model_path()], &Ct2TranslateOptions { beam_size: 1, ..Default::default() })
            .expect("load"),
    )
}

fn echo_model_path() -> std::path::PathBuf {
    let dir = dragoman_runtime::config::model_dir().join("mt-test/nllb-echo");
    assert!(dir.join("model.bin").is_file(), "{} missing: run scripts/fetch-test-models.sh", dir.display());
    dir
}

async fn start_with(
    engines: Vec<Arc<dyn TranslationEngine>>,
    settings: MtSettings,
) -> (Bus, Shutdown, DurableSubscription, Worker) {
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let translations = subscribe_translations(&bus).await;
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let worker = tokio::spawn(serve(engines, settings, bus.clone(), shutdown.clone()));
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
    let mut translations = subscribe_translations(&bus).await;
    bus.publish_event(&transcript("call-3", Stage::Final, "Thank you.", "en", &["es"])).await.expect("publish");
    assert_eq!(next_translation(&mut translations).await.text, "Gracias.");
    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pair_goes_to_the_first_engine_that_has_it() {
    let echo = echo_engine();
    let apertium: Arc<dyn TranslationEngine> =
        Arc::new(Apertium::new(ApertiumConfig::default()).expect("apertium-eng-spa is installed"));
    let (bus, shutdown, mut translations, worker) = start_with(vec![apertium, echo], MtSettings::default()).await;

    // en→es: Apertium comes first and has it. en→fr: only the (echo) NLLB model has it.
    bus.publish_event(&transcript("call-4", Stage::Final, "Thank you.", "en", &["es", "fr"])).await.expect("publish");
    let mut got = [next_translation(&mut translations).await, next_translation(&mut translations).await];
    got.sort_by(|a, b| a.target_language.cmp(&b.target_language));
    let summary: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|t| (t.target_language.as_str(), t.text.as_str(), t.engine.as_str(), t.model.as_str()))
        .collect();
    assert_eq!(summary, [("es", "Gracias.", "apertium", "eng-spa"), ("fr", "Thank you.", "ctranslate2", "nllb-echo")]);
    assert_nothing_more(&mut translations).await;
    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_are_translated_only_when_switched_on_and_while_fresh() {
    let echo = echo_engine();
    let settings = MtSettings { translate_partials: true, ..MtSettings::default() };
    let (bus, shutdown, mut translations, worker) = start_with(vec![echo], settings).await;
    // Partials travel on the core partials subject, outside the stream.
    let mut partials = bus.subscribe(&bus.subjects().all_calls(CallSubjectKind::Partials)).await.expect("subscribe");

    // The worker subscribes to partials as it starts: send until one comes back.
    let event = transcript("call-5", Stage::Partial, "Good morning", "en", &["de"]);
    let Event::TranscriptProduced(source) = event.clone() else { unreachable!() };
    let partial = within(20, async {
        loop {
            bus.publish_event(&event).await.expect("publish");
            if let Ok(translation) =
                tokio::time::timeout(Duration::from_millis(500), next_partial_translation(&mut partials)).await
            {
                return translation;
            }
        }
    })
    .await;
    assert_eq!(
        (partial.stage, partial.text.as_str(), partial.target_language.as_str()),
        (Stage::Partial, "Good morning", "de")
    );
    assert_eq!(partial.meta.event_id, partial_translation_event_id(&source.utterance_id, "de", "Good morning"));

    // A partial that waited longer than partial_max_age is dropped: a caption that late is noise.
    let Event::TranscriptProduced(mut stale) = transcript("call-5", Stage::Partial, "Good", "en", &["de"]) else {
        unreachable!()
    };
    stale.meta.occurred_at -= chrono::Duration::seconds(10);
    bus.publish_event(&Event::TranscriptProduced(stale)).await.expect("publish");
    // (Copies of the first partial, sent while the worker was starting, may still arrive.)
    while let Ok(translation) =
        tokio::time::timeout(Duration::from_millis(800), next_partial_translation(&mut partials)).await
    {
        assert_eq!(translation.source_text, "Good morning", "the stale partial was translated");
    }

    // Partials never reach the durable translations; the final does, as a final.
    bus.publish_event(&transcript("call-5", Stage::Final, "Good morning.", "en", &["de"])).await.expect("publish");
    let last = next_translation(&mut translations).await;
    assert_eq!((last.stage, last.text.as_str()), (Stage::Final, "Good morning."));
    assert_nothing_more(&mut translations).await;
    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_loads_the_configured_models_before_apertium() {
    let mut config = Config::default();
    config.mt.models = vec![echo_model_path().display().to_string()];
    assert_eq!(config.mt.engines, [MtEngineKind::Ctranslate2, MtEngineKind::Apertium]);
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let mut translations = subscribe_translations(&bus).await;
    let worker = tokio::spawn(dragoman_mt_worker::run(Arc::new(config), bus.clone(), shutdown.clone()));
    bus.publish_event(&transcript("call-6", Stage::Final, "Thank you.", "en", &["es"])).await.expect("publish");
    let translation = next_translation(&mut translations).await;
    assert_eq!((translation.engine.as_str(), translation.text.as_str()), ("ctranslate2", "Thank you."));
    shutdown.trigger();
    within(10, worker).await.expect("worker task").expect("worker stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_configured_model_that_does_not_load() {
    let mut config = Config::default();
    config.mt.models = vec!["/nonexistent/opus-mt-en-es".to_owned()];
    let bus = memory_bus();
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let err = within(10, Box::pin(dragoman_mt_worker::run(Arc::new(config), bus, shutdown)))
        .await
        .expect_err("a configured model that does not load is an error");
    assert!(err.to_string().contains("/nonexistent/opus-mt-en-es"), "{err}");
}
