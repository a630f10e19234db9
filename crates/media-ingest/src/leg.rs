//! What every leg shares, whatever its transport: its identity and languages, the pipeline,
//! and publishing partials (loss-tolerant) and finals (durable, retried until stored).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dragoman_bus::Bus;
use dragoman_bus::audio::{AudioFormat, UtteranceAudio, UtteranceMeta};
use dragoman_bus::events::Stage;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::endpoint::EndpointConfig;
use crate::pipeline::{LegPipeline, PipelineError, Segment, to_pcm16le};
use crate::vad::SileroModel;

/// Who a leg is and what it speaks; changes apply from the next utterance on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    pub call_id: String,
    pub leg: String,
    pub language: Option<String>,
    pub targets: Vec<String>,
}

/// Unix time in ms.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// Settings every leg needs, shared by all legs of the service.
#[derive(Debug, Clone)]
pub struct LegSettings {
    pub model: SileroModel,
    pub endpoint: EndpointConfig,
    pub final_queue: usize,
}

/// The per-leg signal path plus where its output goes.
#[derive(Debug)]
pub struct LegSink {
    pipeline: LegPipeline,
    info: watch::Receiver<LegInfo>,
    bus: Bus,
    finals: mpsc::Sender<UtteranceAudio>,
    /// Language and targets of the utterance in progress, fixed when it starts.
    current: Option<LegInfo>,
}

impl LegSink {
    /// A sink whose samples arrive at `codec_rate_hz`; `offset_ms` places its first sample on
    /// the call's timeline. Spawns the task that stores finals; it ends once the sink is gone
    /// and every final is stored (or `give_up` is cancelled).
    pub fn new(
        settings: &LegSettings,
        codec_rate_hz: u32,
        offset_ms: u64,
        info: watch::Receiver<LegInfo>,
        bus: Bus,
        give_up: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Result<Self, PipelineError> {
        let pipeline = LegPipeline::new(&settings.model, codec_rate_hz, settings.endpoint.clone(), offset_ms)?;
        let (finals, queue) = mpsc::channel(settings.final_queue.max(1));
        tracker.spawn(store_finals(bus.clone(), queue, give_up));
        Ok(Self { pipeline, info, bus, finals, current: None })
    }

    /// Feeds samples at the codec rate and publishes what they complete. Waits when the final
    /// queue is full (finals are never dropped).
    pub async fn push(&mut self, samples: &[i16]) -> Result<(), PipelineError> {
        let segments = self.pipeline.push(samples)?;
        for segment in segments {
            self.publish(segment).await;
        }
        Ok(())
    }

    /// The stream ended: publishes the utterance in progress as a final.
    pub async fn finish(mut self) -> Result<(), PipelineError> {
        if let Some(segment) = self.pipeline.finish()? {
            self.publish(segment).await;
        }
        Ok(())
    }

    async fn publish(&mut self, segment: Segment) {
        let info = match &self.current {
            Some(info) => info.clone(),
            None => {
                let info = self.info.borrow().clone();
                self.current = Some(info.clone());
                info
            }
        };
        let stage = if segment.is_final { Stage::Final } else { Stage::Partial };
        let audio = UtteranceAudio {
            meta: UtteranceMeta {
                call_id: info.call_id.clone(),
                leg: info.leg.clone(),
                utterance_id: segment.utterance_id,
                sequence: segment.sequence,
                stage,
                format: AudioFormat::Pcm16le,
                start_ms: segment.start_ms,
                end_ms: segment.end_ms,
                language: info.language.clone(),
                targets: info.targets.clone(),
                sent_at_ms: unix_ms(),
                prompt: None,
            },
            audio: Bytes::from(to_pcm16le(&segment.samples)),
        };
        if segment.is_final {
            self.current = None;
            metrics::counter!("dragoman_media_utterances_total", "stage" => "final").increment(1);
            metrics::histogram!("dragoman_media_utterance_seconds")
                .record((segment.end_ms - segment.start_ms) as f64 / 1000.0);
            if self.finals.send(audio).await.is_err() {
                // The storing task only stops after give_up; the final is then reported lost.
                metrics::counter!("dragoman_media_finals_lost_total").increment(1);
                tracing::error!(call_id = %info.call_id, leg = %info.leg, "final utterance lost: store task gone");
            }
        } else {
            metrics::counter!("dragoman_media_utterances_total", "stage" => "partial").increment(1);
            let subject = self.bus.subjects().stt_partial();
            let mut headers = audio.to_headers();
            dragoman_bus::trace::inject_current(&mut headers);
            if let Err(err) = self.bus.publish(&subject, headers, audio.audio).await {
                // Partials are loss-tolerant: newer ones follow.
                metrics::counter!("dragoman_media_partials_dropped_total").increment(1);
                tracing::debug!(error = %err, "partial not published");
            }
        }
    }
}

/// Stores finals in order, retrying each until JetStream has it.
async fn store_finals(bus: Bus, mut queue: mpsc::Receiver<UtteranceAudio>, give_up: CancellationToken) {
    let subject = bus.subjects().stt_final();
    while let Some(utterance) = queue.recv().await {
        let mut headers = utterance.to_headers();
        dragoman_bus::trace::inject_current(&mut headers);
        let mut delay = Duration::from_millis(50);
        loop {
            match bus.publish_durable(&subject, headers.clone(), utterance.audio.clone()).await {
                Ok(()) => break,
                Err(err) => {
                    metrics::counter!("dragoman_media_final_retries_total").increment(1);
                    tracing::warn!(
                        call_id = %utterance.meta.call_id, leg = %utterance.meta.leg, error = %err,
                        "final utterance not stored yet; retrying"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = give_up.cancelled() => {
                            let lost = 1 + queue.len();
                            metrics::counter!("dragoman_media_finals_lost_total").increment(lost as u64);
                            tracing::error!(lost, "gave up storing final utterances at shutdown");
                            return;
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Shared handle type for the VAD model.
pub type SharedSettings = Arc<LegSettings>;
