//! The service: final transcripts in, one `TranslationProduced` per target language out.
//!
//! Final transcripts come from the durable consumer `mt` on the calls stream (filtered to
//! `calls.*.transcripts`), so none is lost while the worker is down, and several workers share
//! them. A transcript carries its leg's `targets`, so the worker keeps no per-call state. Each
//! translation is published durably before the transcript is acked; its event id is a UUIDv5 of
//! the utterance and the target, so a redelivered transcript publishes the same events again and
//! the stream's de-duplication (and consumers, by event id) drop the copies.
//!
//! A target the table does not know, the source language itself, or a pair the engine lacks is
//! skipped with a warning and counted (`dragoman_mt_skipped_total{reason}`); the other targets
//! are still translated. An engine failure (a pipeline that died or hung) is retried after
//! `retry_delay`: the engine restarts the pipeline for the next attempt.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use dragoman_bus::events::{EventMeta, Stage, TranscriptProduced, TranslationProduced};
use dragoman_bus::{Bus, ConsumerSpec, Event, Language, subjects, wire};
use dragoman_runtime::Shutdown;
use dragoman_runtime::worker::{HandleError, consume_durable};
use uuid::Uuid;

use crate::apertium::ApertiumConfig;
use crate::cache::{CacheKey, TranslationCache};
use crate::engine::{TranslateError, TranslationEngine};
use crate::text;

/// How the worker runs. Not in the configuration file yet: these are the defaults `run` uses.
#[derive(Debug, Clone)]
pub struct MtSettings {
    /// The Apertium engine (modes directory, per-sentence timeout, piece length).
    pub apertium: ApertiumConfig,
    /// Translations kept in the least-recently-used cache.
    pub cache_entries: usize,
    /// Transcripts handled at once.
    pub concurrency: usize,
    /// How long a transcript waits before another try after an engine failure.
    pub retry_delay: Duration,
}

impl Default for MtSettings {
    fn default() -> Self {
        Self {
            apertium: ApertiumConfig::default(),
            cache_entries: 10_000,
            concurrency: 4,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// An engine with a cache in front of it. Its methods block: call them off the async runtime.
#[derive(Debug)]
pub struct Translator {
    engine: Arc<dyn TranslationEngine>,
    cache: Mutex<TranslationCache>,
}

impl Translator {
    pub fn new(engine: Arc<dyn TranslationEngine>, cache_entries: usize) -> Self {
        Self { engine, cache: Mutex::new(TranslationCache::new(cache_entries)) }
    }

    pub fn engine(&self) -> &dyn TranslationEngine {
        self.engine.as_ref()
    }

    /// Translates one text, from the cache when it has it. Returns the translation and whether
    /// it was a cache hit.
    pub fn translate(
        &self,
        text: &str,
        source: &'static Language,
        target: &'static Language,
    ) -> Result<(String, bool), TranslateError> {
        let key = CacheKey { source: source.code(), target: target.code(), text: text::clean(text) };
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok((hit, true));
        }
        let translation =
            self.engine.translate_batch(&[key.text.as_str()], source, target).pop().unwrap_or_else(|| {
                Err(TranslateError::Engine {
                    engine: self.engine.name().to_owned(),
                    model: self.engine.model(source, target),
                    reason: "no result".to_owned(),
                })
            })?;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, translation.clone());
        Ok((translation, false))
    }
}

/// The event id of a transcript's translation into `target`: the same on every redelivery.
pub fn translation_event_id(utterance_id: &Uuid, target: &str) -> Uuid {
    Uuid::new_v5(utterance_id, format!("translation:final:{target}").as_bytes())
}

fn skipped(reason: &'static str) {
    metrics::counter!("dragoman_mt_skipped_total", "reason" => reason).increment(1);
}

/// Translates one final transcript into each of its targets and publishes the translations.
pub async fn handle_transcript(
    bus: &Bus,
    translator: &Arc<Translator>,
    transcript: TranscriptProduced,
    retry_delay: Duration,
) -> Result<(), HandleError> {
    if transcript.stage != Stage::Final || transcript.targets.is_empty() {
        return Ok(());
    }
    let call_id = transcript.meta.call_id.as_str();
    let source = match Language::parse(&transcript.language) {
        Ok(source) => source,
        Err(err) => {
            tracing::warn!(call_id, leg = %transcript.leg, error = %err, "transcript language not supported");
            skipped("unknown_language");
            return Ok(());
        }
    };
    let mut done: Vec<&'static Language> = Vec::new();
    for tag in &transcript.targets {
        let target = match Language::parse(tag) {
            Ok(target) => target,
            Err(err) => {
                tracing::warn!(call_id, leg = %transcript.leg, error = %err, "target language not supported");
                skipped("unknown_language");
                continue;
            }
        };
        if target == source || done.contains(&target) {
            continue;
        }
        done.push(target);
        let engine = translator.engine();
        if !engine.supports(source, target) {
            tracing::warn!(
                call_id,
                leg = %transcript.leg,
                engine = engine.name(),
                source = source.code(),
                target = target.code(),
                "the engine cannot translate this pair"
            );
            skipped("unsupported_pair");
            continue;
        }
        let started = Instant::now();
        let result = tokio::task::spawn_blocking({
            let (translator, text) = (translator.clone(), transcript.text.clone());
            move || translator.translate(&text, source, target)
        })
        .await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (text, hit) = match result {
            Ok(Ok(translated)) => translated,
            Ok(Err(err @ (TranslateError::UnsupportedPair { .. } | TranslateError::Language(_)))) => {
                tracing::warn!(call_id, leg = %transcript.leg, error = %err, "translation not possible");
                skipped("unsupported_pair");
                continue;
            }
            Ok(Err(err)) => return Err(HandleError::Retry { reason: err.to_string(), delay: retry_delay }),
            Err(join) => {
                return Err(HandleError::Retry { reason: format!("translation task: {join}"), delay: retry_delay });
            }
        };
        if hit {
            metrics::counter!("dragoman_mt_cache_hits_total").increment(1);
        }
        let event = Event::TranslationProduced(TranslationProduced {
            meta: EventMeta {
                event_id: translation_event_id(&transcript.utterance_id, tag.trim()),
                call_id: transcript.meta.call_id.clone(),
                occurred_at: Utc::now(),
            },
            leg: transcript.leg.clone(),
            utterance_id: transcript.utterance_id,
            sequence: transcript.sequence,
            stage: Stage::Final,
            source_language: transcript.language.clone(),
            source_text: transcript.text.clone(),
            target_language: tag.trim().to_owned(),
            text,
            start_ms: transcript.start_ms,
            end_ms: transcript.end_ms,
            engine: engine.name().to_owned(),
            model: engine.model(source, target),
            elapsed_ms,
        });
        bus.publish_event(&event)
            .await
            .map_err(|err| HandleError::Retry { reason: format!("publish translation: {err}"), delay: retry_delay })?;
        metrics::counter!("dragoman_mt_translations_total").increment(1);
    }
    Ok(())
}

/// Consumes final transcripts with `engine` until shutdown.
pub async fn serve(
    engine: Arc<dyn TranslationEngine>,
    settings: MtSettings,
    bus: Bus,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let translator = Arc::new(Translator::new(engine, settings.cache_entries));
    let spec = ConsumerSpec::new(bus.subjects().calls_stream(), subjects::MT_DURABLE)
        .filter(bus.subjects().all_calls(dragoman_bus::CallSubjectKind::Transcripts));
    let retry_delay = settings.retry_delay;
    consume_durable(
        &bus,
        &spec,
        &shutdown,
        settings.concurrency,
        |message| wire::decode_event(&message.payload),
        |event| {
            let (bus, translator) = (bus.clone(), translator.clone());
            async move {
                match event {
                    Event::TranscriptProduced(transcript) => {
                        handle_transcript(&bus, &translator, transcript, retry_delay).await
                    }
                    _ => Ok(()),
                }
            }
        },
    )
    .await?;
    Ok(())
}
