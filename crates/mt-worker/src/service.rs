//! The service: transcripts in, one `TranslationProduced` per target language out.
//!
//! Final transcripts come from the durable consumer `mt` on the calls stream (filtered to
//! `calls.*.transcripts`), so none is lost while the worker is down, and several workers share
//! them. A transcript carries its leg's `targets`, so the worker keeps no per-call state. Each
//! translation is published durably before the transcript is acked; its event id is a UUIDv5 of
//! the utterance and the target, so a redelivered transcript publishes the same events again and
//! the stream's de-duplication (and consumers, by event id) drop the copies.
//!
//! Requests from every call go through one [`Translator`]: a least-recently-used cache, then a
//! batcher that collects what arrives within `batch_window` (up to `max_batch` texts) and gives
//! each engine all texts of one language pair in one call, so concurrent calls share a forward
//! pass of a neural model. Each pair goes to the first configured engine that has it.
//!
//! A target the table does not know, the source language itself, or a pair no engine has is
//! skipped with a warning and counted (`dragoman_mt_skipped_total{reason}`); the other targets
//! are still translated. An engine failure (a pipeline that died or hung, a model error) is
//! retried after `retry_delay`. Partial transcripts are translated only when
//! `translate_partials` is on, best effort: a failure or a partial that waited too long is
//! dropped, never retried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use dragoman_bus::events::{EventMeta, Stage, TranscriptProduced, TranslationProduced};
use dragoman_bus::{Bus, ConsumerSpec, Event, Language, subjects, wire};
use dragoman_runtime::Shutdown;
use dragoman_runtime::config::MtConfig;
use dragoman_runtime::worker::{HandleError, consume_durable};
use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::cache::{CacheKey, TranslationCache};
use crate::engine::{TranslateError, TranslationEngine};
use crate::text;

/// How the service runs (from the `mt` configuration section).
#[derive(Debug, Clone)]
pub struct MtSettings {
    /// Translations kept in the least-recently-used cache.
    pub cache_entries: usize,
    /// Transcripts handled at once.
    pub concurrency: usize,
    /// Texts given to an engine in one batch.
    pub max_batch: usize,
    /// How long the first request of a batch waits for more.
    pub batch_window: Duration,
    /// How long a transcript waits before another try after an engine failure.
    pub retry_delay: Duration,
    pub translate_partials: bool,
    pub partial_max_age: Duration,
}

impl MtSettings {
    pub fn from_config(config: &MtConfig) -> Self {
        Self {
            cache_entries: config.cache_entries,
            concurrency: config.concurrency,
            max_batch: config.max_batch,
            batch_window: Duration::from_millis(config.batch_window_ms),
            retry_delay: Duration::from_secs(2),
            translate_partials: config.translate_partials,
            partial_max_age: Duration::from_millis(config.partial_max_age_ms),
        }
    }
}

impl Default for MtSettings {
    fn default() -> Self {
        Self::from_config(&MtConfig::default())
    }
}

/// One translation as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub text: String,
    pub cache_hit: bool,
    /// The engine and model that translated it (also for a cache hit).
    pub engine: String,
    pub model: String,
}

/// Counters of a [`Translator`], for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslatorStats {
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Engine calls made by the batcher, and the texts they carried.
    pub batches: u64,
    pub batched_texts: u64,
}

struct Job {
    engine: usize,
    source: &'static Language,
    target: &'static Language,
    text: String,
    reply: oneshot::Sender<Result<String, TranslateError>>,
}

/// The engines, behind a cache and a cross-call batcher. Create it inside a Tokio runtime (the
/// batcher is a task); its methods are async and never block the runtime.
pub struct Translator {
    engines: Vec<Arc<dyn TranslationEngine>>,
    cache: Mutex<TranslationCache>,
    jobs: mpsc::Sender<Job>,
    hits: AtomicU64,
    misses: AtomicU64,
    batch_counts: Arc<(AtomicU64, AtomicU64)>,
}

impl std::fmt::Debug for Translator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translator").field("engines", &self.engines).finish_non_exhaustive()
    }
}

impl Translator {
    /// `engines` in order of preference.
    pub fn new(engines: Vec<Arc<dyn TranslationEngine>>, settings: &MtSettings) -> Self {
        let (jobs, queue) = mpsc::channel(settings.max_batch.max(1) * 64);
        let batch_counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        tokio::spawn(run_batches(
            engines.clone(),
            queue,
            settings.max_batch.max(1),
            settings.batch_window,
            batch_counts.clone(),
        ));
        Self {
            engines,
            cache: Mutex::new(TranslationCache::new(settings.cache_entries)),
            jobs,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            batch_counts,
        }
    }

    pub fn engines(&self) -> &[Arc<dyn TranslationEngine>] {
        &self.engines
    }

    /// The engine that translates this pair: the first that has it.
    pub fn route(&self, source: &Language, target: &Language) -> Option<&dyn TranslationEngine> {
        self.engines.iter().find(|e| e.supports(source, target)).map(AsRef::as_ref)
    }

    fn route_index(&self, source: &Language, target: &Language) -> Option<usize> {
        self.engines.iter().position(|e| e.supports(source, target))
    }

    /// Every pair each engine has, for error messages.
    fn available(&self) -> String {
        let names: Vec<&str> = self.engines.iter().map(|e| e.name()).collect();
        if names.is_empty() { "no engine is loaded".to_owned() } else { format!("engines: {}", names.join(", ")) }
    }

    pub fn stats(&self) -> TranslatorStats {
        TranslatorStats {
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
            batches: self.batch_counts.0.load(Ordering::Relaxed),
            batched_texts: self.batch_counts.1.load(Ordering::Relaxed),
        }
    }

    /// Translates one text: from the cache when it has it, else in the next batch.
    pub async fn translate(
        &self,
        text: &str,
        source: &'static Language,
        target: &'static Language,
    ) -> Result<Translated, TranslateError> {
        let Some(index) = self.route_index(source, target) else {
            return Err(TranslateError::UnsupportedPair {
                engine: "any".to_owned(),
                source_code: source.code(),
                target_code: target.code(),
                available: self.available(),
            });
        };
        let engine = &self.engines[index];
        let key = CacheKey { source: source.code(), target: target.code(), text: text::clean(text) };
        let (name, model) = (engine.name().to_owned(), engine.model(source, target));
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("dragoman_mt_cache_hits_total").increment(1);
            return Ok(Translated { text: hit, cache_hit: true, engine: name, model });
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let lost = || TranslateError::Engine {
            engine: name.clone(),
            model: model.clone(),
            reason: "the batcher stopped".to_owned(),
        };
        let job = Job { engine: index, source, target, text: key.text.clone(), reply };
        self.jobs.send(job).await.map_err(|_| lost())?;
        let translation = answer.await.map_err(|_| lost())??;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, translation.clone());
        Ok(Translated { text: translation, cache_hit: false, engine: name, model })
    }
}

/// The batcher: takes the first waiting job, gathers more for up to `window` (or until
/// `max_batch`), and runs them grouped by engine and pair on a blocking thread. Jobs that
/// arrive meanwhile wait and form the next batch, so a busy worker batches more.
async fn run_batches(
    engines: Vec<Arc<dyn TranslationEngine>>,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    window: Duration,
    counts: Arc<(AtomicU64, AtomicU64)>,
) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + window;
        while jobs.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) | Err(_) => break,
                },
            }
        }
        let engines = engines.clone();
        let counts = counts.clone();
        let done = tokio::task::spawn_blocking(move || translate_jobs(&engines, jobs, &counts)).await;
        if let Err(err) = done {
            // The jobs' reply senders were dropped with the task: their callers get an error.
            tracing::error!(error = %err, "translation batch panicked");
        }
    }
}

/// Runs one batch: per engine and pair, each distinct text once.
fn translate_jobs(engines: &[Arc<dyn TranslationEngine>], jobs: Vec<Job>, counts: &(AtomicU64, AtomicU64)) {
    type Group = (usize, &'static str, &'static str);
    let mut groups: HashMap<Group, Vec<Job>> = HashMap::new();
    for job in jobs {
        groups.entry((job.engine, job.source.code(), job.target.code())).or_default().push(job);
    }
    for ((engine, _, _), jobs) in groups {
        let (source, target) = (jobs[0].source, jobs[0].target);
        let mut texts: Vec<&str> = Vec::new();
        for job in &jobs {
            if !texts.contains(&job.text.as_str()) {
                texts.push(&job.text);
            }
        }
        counts.0.fetch_add(1, Ordering::Relaxed);
        counts.1.fetch_add(texts.len() as u64, Ordering::Relaxed);
        metrics::histogram!("dragoman_mt_batch_texts").record(texts.len() as f64);
        let results = engines[engine].translate_batch(&texts, source, target);
        let by_text: HashMap<String, Result<String, TranslateError>> =
            texts.iter().map(|t| (*t).to_owned()).zip(results).collect();
        for job in jobs {
            let result = by_text.get(job.text.as_str()).cloned().unwrap_or_else(|| {
                Err(TranslateError::Engine {
                    engine: engines[engine].name().to_owned(),
                    model: engines[engine].model(source, target),
                    reason: "no result".to_owned(),
                })
            });
            // Dropped on the other side only when the caller gave up; nothing to do then.
            let _ = job.reply.send(result);
        }
    }
}

/// The event id of a transcript's translation into `target`: the same on every redelivery.
pub fn translation_event_id(utterance_id: &Uuid, target: &str) -> Uuid {
    Uuid::new_v5(utterance_id, format!("translation:final:{target}").as_bytes())
}

/// The event id of a partial's translation: one per partial text and target.
pub fn partial_translation_event_id(utterance_id: &Uuid, target: &str, text: &str) -> Uuid {
    Uuid::new_v5(utterance_id, format!("translation:partial:{target}:{text}").as_bytes())
}

fn skipped(reason: &'static str) {
    metrics::counter!("dragoman_mt_skipped_total", "reason" => reason).increment(1);
}

/// The targets worth translating into: parsed, not the source, not repeated, and with an
/// engine. Others are logged and counted.
fn targets<'t>(
    translator: &Translator,
    transcript: &'t TranscriptProduced,
    source: &'static Language,
) -> Vec<(&'t str, &'static Language)> {
    let call_id = transcript.meta.call_id.as_str();
    let mut out: Vec<(&str, &'static Language)> = Vec::new();
    for tag in &transcript.targets {
        let target = match Language::parse(tag) {
            Ok(target) => target,
            Err(err) => {
                tracing::warn!(call_id, leg = %transcript.leg, error = %err, "target language not supported");
                skipped("unknown_language");
                continue;
            }
        };
        if target == source || out.iter().any(|(_, t)| *t == target) {
            continue;
        }
        if translator.route(source, target).is_none() {
            tracing::warn!(
                call_id,
                leg = %transcript.leg,
                source = source.code(),
                target = target.code(),
                available = %translator.available(),
                "no engine translates this pair"
            );
            skipped("unsupported_pair");
            continue;
        }
        out.push((tag.trim(), target));
    }
    out
}

/// Translates one transcript into each of its targets (all at once, so they share a batch)
/// and publishes the translations.
pub async fn handle_transcript(
    bus: &Bus,
    translator: &Arc<Translator>,
    settings: &MtSettings,
    transcript: TranscriptProduced,
) -> Result<(), HandleError> {
    let partial = match transcript.stage {
        Stage::Final => false,
        Stage::Partial if settings.translate_partials => true,
        Stage::Partial => return Ok(()),
    };
    if transcript.targets.is_empty() {
        return Ok(());
    }
    if partial {
        let age = (Utc::now() - transcript.meta.occurred_at).to_std().unwrap_or_default();
        if age > settings.partial_max_age {
            skipped("stale_partial");
            return Ok(());
        }
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
    let targets = targets(translator, &transcript, source);
    let started = Instant::now();
    let results = futures::future::join_all(
        targets.iter().map(|(_, target)| translator.translate(&transcript.text, source, target)),
    )
    .await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    for ((tag, _), result) in targets.into_iter().zip(results) {
        let translated = match result {
            Ok(translated) => translated,
            Err(err @ (TranslateError::UnsupportedPair { .. } | TranslateError::Language(_))) => {
                tracing::warn!(call_id, leg = %transcript.leg, error = %err, "translation not possible");
                skipped("unsupported_pair");
                continue;
            }
            Err(err) if partial => {
                tracing::debug!(call_id, leg = %transcript.leg, error = %err, "partial not translated");
                skipped("partial_failed");
                continue;
            }
            Err(err) => return Err(HandleError::Retry { reason: err.to_string(), delay: settings.retry_delay }),
        };
        let event_id = if partial {
            partial_translation_event_id(&transcript.utterance_id, tag, &transcript.text)
        } else {
            translation_event_id(&transcript.utterance_id, tag)
        };
        let event = Event::TranslationProduced(TranslationProduced {
            meta: EventMeta { event_id, call_id: transcript.meta.call_id.clone(), occurred_at: Utc::now() },
            leg: transcript.leg.clone(),
            utterance_id: transcript.utterance_id,
            sequence: transcript.sequence,
            stage: transcript.stage,
            source_language: transcript.language.clone(),
            source_text: transcript.text.clone(),
            target_language: tag.to_owned(),
            text: translated.text,
            start_ms: transcript.start_ms,
            end_ms: transcript.end_ms,
            engine: translated.engine,
            model: translated.model,
            elapsed_ms,
        });
        match bus.publish_event(&event).await {
            Ok(()) => metrics::counter!("dragoman_mt_translations_total", "stage" => if partial { "partial" } else { "final" })
                .increment(1),
            Err(err) if partial => tracing::debug!(call_id, error = %err, "partial translation not published"),
            Err(err) => {
                return Err(HandleError::Retry {
                    reason: format!("publish translation: {err}"),
                    delay: settings.retry_delay,
                });
            }
        }
    }
    Ok(())
}

/// Consumes transcripts with `engines` (in order of preference) until shutdown: finals from the
/// durable consumer, and, with `translate_partials`, partials from the core partials subject in
/// the `mt` queue group (shed under load like every partial).
pub async fn serve(
    engines: Vec<Arc<dyn TranslationEngine>>,
    settings: MtSettings,
    bus: Bus,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let translator = Arc::new(Translator::new(engines, &settings));
    let settings = Arc::new(settings);
    let partials = if settings.translate_partials {
        let subject = bus.subjects().all_calls(dragoman_bus::CallSubjectKind::Partials);
        let subscription = bus.queue_subscribe(&subject, subjects::MT_QUEUE_GROUP).await?;
        let (bus, translator, settings, shutdown) =
            (bus.clone(), translator.clone(), settings.clone(), shutdown.clone());
        Some(tokio::spawn(async move {
            subscription
                .take_until(shutdown.triggered())
                .for_each_concurrent(settings.concurrency, |message| {
                    let (bus, translator, settings) = (bus.clone(), translator.clone(), settings.clone());
                    async move {
                        if let Ok(Event::TranscriptProduced(transcript)) = wire::decode_event(&message.payload)
                            && transcript.stage == Stage::Partial
                        {
                            // Partials never retry: the error is already logged and counted.
                            let _ = handle_transcript(&bus, &translator, &settings, transcript).await;
                        }
                    }
                })
                .await;
        }))
    } else {
        None
    };
    let spec = ConsumerSpec::new(bus.subjects().calls_stream(), subjects::MT_DURABLE)
        .filter(bus.subjects().all_calls(dragoman_bus::CallSubjectKind::Transcripts));
    let finals = consume_durable(
        &bus,
        &spec,
        &shutdown,
        settings.concurrency,
        |message| wire::decode_event(&message.payload),
        |event| {
            let (bus, translator, settings) = (bus.clone(), translator.clone(), settings.clone());
            async move {
                match event {
                    Event::TranscriptProduced(transcript) if transcript.stage == Stage::Final => {
                        handle_transcript(&bus, &translator, &settings, transcript).await
                    }
                    _ => Ok(()),
                }
            }
        },
    )
    .await;
    if let Some(partials) = partials {
        // Ends with the shutdown that ended the finals; after a bus error, stop it here.
        if finals.is_err() {
            partials.abort();
        }
        let _ = partials.await;
    }
    finals?;
    Ok(())
}
