//! The STT worker service: final utterances from the durable work queue (acked only after the
//! transcript is stored), partial requests from a queue group (stale ones dropped), inference on
//! the pool, `TranscriptProduced` out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dragoman_bus::audio::{AudioFormat, UtteranceAudio};
use dragoman_bus::events::{Event, EventMeta, LanguageDetected, Stage, TranscriptProduced, Word};
use dragoman_bus::language::Engine as LanguageNaming;
use dragoman_bus::{Bus, ConsumerSpec, Language, record_invalid, subjects};
use dragoman_runtime::config::{SttConfig, SttEngineKind};
use dragoman_runtime::worker::{HandleError, consume_durable};
use dragoman_runtime::{Config, Shutdown};
use futures::StreamExt;
use uuid::Uuid;

use crate::engine::{DecodeOptions, EngineError, SAMPLE_RATE_HZ, SpeechEngine, Transcription};
use crate::pool::InferencePool;

/// Shortest audio worth transcribing.
const MIN_AUDIO_MS: u64 = 100;
/// A final waits this long for a thread before it is delivered again (to another worker).
const FINAL_ACK_WAIT: Duration = Duration::from_secs(120);

/// The default model location for an engine.
pub fn default_model_path(engine: SttEngineKind) -> PathBuf {
    let dir = dragoman_runtime::config::model_dir();
    match engine {
        SttEngineKind::Ctranslate2 => dir.join("whisper/tiny.en-ct2"),
        SttEngineKind::WhisperCpp => dir.join("whisper/ggml-tiny.en.bin"),
    }
}

/// Loads the configured engine; a missing or corrupt model fails here, at start-up.
pub fn load_engine(config: &SttConfig) -> anyhow::Result<Arc<dyn SpeechEngine>> {
    let path = config.model_path.clone().unwrap_or_else(|| default_model_path(config.engine));
    let hint = "stt.model_path; scripts/fetch-test-models.sh fetches tiny.en, `dragoman models convert` makes ggml";
    Ok(match config.engine {
        SttEngineKind::Ctranslate2 => {
            let options = crate::ct2::Ct2Options {
                compute_type: config.compute_type.clone(),
                threads: config.threads,
                window: if config.short_window {
                    crate::ct2::FeatureWindow::SHORT
                } else {
                    crate::ct2::FeatureWindow::Full
                },
            };
            Arc::new(
                crate::ct2::Ct2Whisper::load(&path, &options)
                    .with_context(|| format!("load {} ({hint})", path.display()))?,
            )
        }
        SttEngineKind::WhisperCpp => {
            let whisper = crate::whisper_cpp::WhisperCppConfig {
                threads: config.threads,
                audio_ctx_margin_frames: if config.short_window {
                    Some(crate::whisper_cpp::DEFAULT_AUDIO_CTX_MARGIN_FRAMES)
                } else {
                    None
                },
                ..Default::default()
            };
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Arc::new(
                crate::whisper_cpp::WhisperCpp::load(&path, name, whisper)
                    .with_context(|| format!("load {} ({hint})", path.display()))?,
            )
        }
    })
}

/// Decode options for one utterance: the config's, with the utterance's language and prompt.
fn options_for(
    config: &SttConfig,
    engine: &dyn SpeechEngine,
    utterance: &UtteranceAudio,
) -> Result<DecodeOptions, String> {
    decode_options(config, engine, utterance.meta.language.as_deref(), utterance.meta.prompt.as_deref())
}

/// Whisper's code for a requested language: through the language table (`nb-NO` → `no`,
/// `zh-Hans` → `zh`), else the primary subtag as given, for Whisper languages the table does not
/// carry (the engine refuses codes its model does not know).
pub fn whisper_language(tag: &str) -> String {
    match Language::parse(tag) {
        Ok(language) => language.whisper().to_owned(),
        Err(_) => tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase(),
    }
}

/// The code events carry for a language Whisper reports: the table's BCP 47 code (`no` →
/// `nb`), so the translation worker and the API read the same code for the same language;
/// Whisper's own code for a language the table does not carry.
pub fn table_language(whisper: &str) -> String {
    Language::from_engine_code(LanguageNaming::Whisper, whisper)
        .map(|language| language.code().to_owned())
        .unwrap_or_else(|_| whisper.to_owned())
}

/// Decode options from the config, with a request's language (BCP-47 or Whisper code; `None`
/// takes `stt.default_language`) and initial prompt (`None` takes `stt.initial_prompt`).
/// Errors name a language the model cannot transcribe or that is no language code.
pub fn decode_options(
    config: &SttConfig,
    engine: &dyn SpeechEngine,
    language: Option<&str>,
    prompt: Option<&str>,
) -> Result<DecodeOptions, String> {
    let wanted =
        language.map(str::to_owned).or_else(|| Some(config.default_language.clone()).filter(|l| !l.is_empty()));
    let language = wanted.as_deref().map(whisper_language);
    match &language {
        Some(l) if !engine.multilingual() && l != "en" => {
            return Err(format!("model {} is English-only; cannot transcribe language {l:?}", engine.model()));
        }
        Some(l) if l.len() < 2 || l.len() > 3 || !l.chars().all(|c| c.is_ascii_lowercase()) => {
            return Err(format!("{l:?} is not a language code"));
        }
        _ => {}
    }
    Ok(DecodeOptions {
        language: if engine.multilingual() { language } else { Some("en".into()) },
        beam_size: config.beam_size,
        temperatures: config.temperatures.iter().map(|&t| t as f32).collect(),
        initial_prompt: prompt.map(str::to_owned).or_else(|| config.initial_prompt.clone()),
        word_timestamps: config.word_timestamps,
        log_prob_threshold: config.log_prob_threshold as f32,
        compression_ratio_threshold: config.compression_ratio_threshold as f32,
        no_speech_threshold: config.no_speech_threshold as f32,
        ..DecodeOptions::default()
    })
}

/// 16 kHz mono samples from an utterance's payload.
pub fn samples(utterance: &UtteranceAudio) -> Result<Vec<f32>, String> {
    let bytes = &utterance.audio;
    let samples: Vec<f32> = match utterance.meta.format {
        AudioFormat::Pcm16le => {
            bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
        }
        AudioFormat::Slin16 => {
            bytes.chunks_exact(2).map(|b| f32::from(i16::from_be_bytes([b[0], b[1]])) / 32768.0).collect()
        }
        other => return Err(format!("format {other} is not 16 kHz; media ingest publishes pcm16le")),
    };
    if samples.iter().any(|s| !s.is_finite()) {
        return Err("audio has non-finite samples".into());
    }
    Ok(samples)
}

/// The worker's shared state.
struct Worker {
    bus: Bus,
    config: SttConfig,
    engine: Arc<dyn SpeechEngine>,
    pool: InferencePool,
}

impl Worker {
    fn transcript(&self, utterance: &UtteranceAudio, result: &Transcription, stage: Stage) -> TranscriptProduced {
        let m = &utterance.meta;
        // Deterministic per utterance and stage: a redelivered final publishes the same event id,
        // which JetStream and every consumer de-duplicate.
        let event_id = Uuid::new_v5(&m.utterance_id, if stage == Stage::Final { b"final" } else { b"partial" });
        let mut meta = EventMeta::now(&m.call_id);
        meta.event_id = event_id;
        TranscriptProduced {
            meta,
            leg: m.leg.clone(),
            utterance_id: m.utterance_id,
            sequence: m.sequence,
            stage,
            text: result.text.clone(),
            language: if result.language.is_empty() { "en".into() } else { table_language(&result.language) },
            confidence: result.avg_log_prob.exp().clamp(0.0, 1.0),
            start_ms: m.start_ms,
            end_ms: m.end_ms,
            words: result
                .words
                .iter()
                .map(|w| Word {
                    text: w.text.clone(),
                    start_ms: m.start_ms + w.start_ms,
                    end_ms: m.start_ms + w.end_ms,
                    probability: Some(w.probability),
                })
                .collect(),
            targets: m.targets.clone(),
            engine: self.engine.engine().into(),
            model: self.engine.model().into(),
        }
    }

    async fn handle_final(&self, utterance: UtteranceAudio) -> Result<(), HandleError> {
        let m = &utterance.meta;
        let span = tracing::info_span!("transcribe", call_id = %m.call_id, leg = %m.leg, sequence = m.sequence);
        let audio = samples(&utterance).map_err(HandleError::Permanent)?;
        if (audio.len() as u64) * 1000 / u64::from(SAMPLE_RATE_HZ) < MIN_AUDIO_MS {
            metrics::counter!("dragoman_stt_skipped_total", "reason" => "too_short").increment(1);
            tracing::info!(parent: &span, "utterance too short to transcribe; skipped");
            return Ok(());
        }
        let options = options_for(&self.config, self.engine.as_ref(), &utterance).map_err(HandleError::Permanent)?;
        let waited = std::time::Instant::now();
        let result = match self.pool.transcribe_final(audio, options).await {
            Ok(Ok(result)) => result,
            Ok(Err(EngineError::BadAudio(reason) | EngineError::Unsupported(reason))) => {
                return Err(HandleError::Permanent(reason));
            }
            Ok(Err(err)) => return Err(HandleError::Retry { reason: err.to_string(), delay: Duration::from_secs(1) }),
            Err(closed) => {
                return Err(HandleError::Retry { reason: closed.to_string(), delay: Duration::from_secs(1) });
            }
        };
        metrics::histogram!("dragoman_stt_final_seconds").record(waited.elapsed().as_secs_f64());
        if result.text.trim().is_empty() {
            metrics::counter!("dragoman_stt_skipped_total", "reason" => "no_speech").increment(1);
            tracing::info!(parent: &span, no_speech_prob = result.no_speech_prob, "no speech in the utterance");
            return Ok(());
        }
        if m.language.is_none() && self.engine.multilingual() {
            if let Some(probability) = result.language_probability {
                let detected = Event::LanguageDetected(LanguageDetected {
                    meta: EventMeta::now(&m.call_id),
                    leg: m.leg.clone(),
                    language: table_language(&result.language),
                    probability,
                });
                if let Err(err) = self.bus.publish_event(&detected).await {
                    tracing::warn!(parent: &span, error = %err, "could not publish LanguageDetected");
                }
            }
        }
        let event = Event::TranscriptProduced(self.transcript(&utterance, &result, Stage::Final));
        self.bus.publish_event(&event).await.map_err(|err| HandleError::Retry {
            reason: format!("publish transcript: {err}"),
            delay: Duration::from_millis(500),
        })?;
        metrics::counter!("dragoman_stt_transcripts_total", "stage" => "final").increment(1);
        Ok(())
    }

    async fn handle_partial(self: Arc<Self>, utterance: UtteranceAudio) {
        let age = dragoman_bus_now_ms().saturating_sub(utterance.meta.sent_at_ms);
        if age > self.config.partial_max_age_ms {
            metrics::counter!("dragoman_stt_partials_shed_total", "reason" => "stale").increment(1);
            return;
        }
        let (Ok(audio), Ok(options)) =
            (samples(&utterance), options_for(&self.config, self.engine.as_ref(), &utterance))
        else {
            metrics::counter!("dragoman_stt_partials_shed_total", "reason" => "invalid").increment(1);
            return;
        };
        let answer = self.pool.transcribe_partial(audio, DecodeOptions { temperatures: vec![0.0], ..options });
        let Ok(Ok(result)) = answer.await else { return };
        if result.text.trim().is_empty() {
            return;
        }
        let event = Event::TranscriptProduced(self.transcript(&utterance, &result, Stage::Partial));
        if self.bus.publish_event(&event).await.is_ok() {
            metrics::counter!("dragoman_stt_transcripts_total", "stage" => "partial").increment(1);
        }
    }
}

fn dragoman_bus_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// Runs the STT worker until shutdown; in-flight finals finish (or are left unacked, to be
/// delivered again).
pub async fn run(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let stt = config.stt.clone();
    let engine = tokio::task::spawn_blocking({
        let stt = stt.clone();
        move || load_engine(&stt)
    })
    .await??;
    tracing::info!(engine = engine.engine(), model = engine.model(), "stt engine loaded");
    let pool = InferencePool::new(engine.clone(), stt.inference_threads, stt.max_batch, stt.partial_queue);
    let worker = Arc::new(Worker { bus: bus.clone(), config: stt.clone(), engine, pool });
    let in_flight = stt.inference_threads * stt.max_batch * 2;

    let finals = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move {
            let spec = ConsumerSpec::new(worker.bus.subjects().stt_stream(), subjects::STT_DURABLE)
                .ack_wait(FINAL_ACK_WAIT)
                .max_ack_pending(in_flight);
            consume_durable(
                &worker.bus.clone(),
                &spec,
                &shutdown,
                in_flight,
                |m| UtteranceAudio::from_parts(&m.headers, m.payload.clone()),
                |utterance| {
                    let worker = worker.clone();
                    async move { worker.handle_final(utterance).await }
                },
            )
            .await
            .map_err(anyhow::Error::from)
        }
    };
    let partials = {
        let (worker, shutdown) = (worker.clone(), shutdown.clone());
        async move {
            let subjects = worker.bus.subjects().clone();
            let mut requests = worker.bus.queue_subscribe(&subjects.stt_partial(), subjects::STT_QUEUE_GROUP).await?;
            let stop = shutdown.triggered();
            tokio::pin!(stop);
            loop {
                let message = tokio::select! {
                    _ = &mut stop => return Ok::<_, anyhow::Error>(()),
                    message = requests.next() => match message { Some(m) => m, None => return Ok(()) },
                };
                match UtteranceAudio::from_parts(&message.headers, message.payload) {
                    Ok(utterance) => {
                        tokio::spawn(worker.clone().handle_partial(utterance));
                    }
                    Err(err) => record_invalid(&subjects, &message.subject, &err),
                }
            }
        }
    };
    tokio::try_join!(finals, partials).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_languages_become_whisper_codes() {
        assert_eq!(whisper_language("nb-NO"), "no");
        assert_eq!(whisper_language("en-US"), "en");
        assert_eq!(whisper_language("zh-Hans"), "zh");
        assert_eq!(whisper_language("iw"), "he");
        // Outside the table: passed on for the engine to accept or refuse.
        assert_eq!(whisper_language("haw"), "haw");
    }

    #[test]
    fn reported_languages_become_table_codes() {
        assert_eq!(table_language("no"), "nb");
        assert_eq!(table_language("en"), "en");
        assert_eq!(table_language("haw"), "haw");
    }
}
