//! One leg's signal path after the jitter buffer: samples at the codec rate → 16 kHz → Silero
//! VAD → endpointing → partial and final utterances, with times in ms from call start.

use uuid::Uuid;

use crate::endpoint::{EndpointConfig, EndpointConfigError, EndpointEvent, Endpointer, Utterance};
use crate::resample::{ResampleError, Resampler};
use crate::vad::{self, SileroModel, SileroVad, VadError};

/// The pipeline could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error(transparent)]
    Endpoint(#[from] EndpointConfigError),
    #[error(transparent)]
    Vad(#[from] VadError),
}

/// An utterance ready for the bus: 16 kHz mono samples and its place in the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub utterance_id: Uuid,
    /// Utterance number within the leg, from 0; a partial carries the number of the utterance
    /// it belongs to.
    pub sequence: u64,
    pub is_final: bool,
    /// Start and end in ms from call start.
    pub start_ms: u64,
    pub end_ms: u64,
    pub samples: Vec<f32>,
}

/// The signal path of one leg.
#[derive(Debug)]
pub struct LegPipeline {
    resampler: Resampler,
    vad: SileroVad,
    endpointer: Endpointer,
    /// Where this leg's first sample sits on the call's timeline.
    offset_ms: u64,
    resampled: Vec<f32>,
    sequence: u64,
    utterance_id: Uuid,
}

impl LegPipeline {
    /// A pipeline for samples at `codec_rate_hz`, whose first sample is `offset_ms` after the
    /// call started.
    pub fn new(
        model: &SileroModel,
        codec_rate_hz: u32,
        endpoint: EndpointConfig,
        offset_ms: u64,
    ) -> Result<Self, PipelineError> {
        Ok(Self {
            resampler: Resampler::new(codec_rate_hz, vad::SAMPLE_RATE_HZ)?,
            vad: SileroVad::new(model),
            endpointer: Endpointer::new(endpoint, vad::SAMPLE_RATE_HZ)?,
            offset_ms,
            resampled: Vec::with_capacity(1024),
            sequence: 0,
            utterance_id: Uuid::now_v7(),
        })
    }

    /// Whether an utterance is in progress.
    pub fn in_speech(&self) -> bool {
        self.endpointer.in_speech()
    }

    /// Feeds samples at the codec rate; returns the partials and finals they complete.
    pub fn push(&mut self, samples: &[i16]) -> Result<Vec<Segment>, PipelineError> {
        self.resampled.clear();
        self.resampler.process_i16(samples, &mut self.resampled);
        let windows = self.vad.push(&self.resampled)?;
        let mut segments = Vec::new();
        for window in windows {
            for event in self.endpointer.push(window.probability, &window.samples) {
                if let Some(segment) = self.segment(event) {
                    segments.push(segment);
                }
            }
        }
        Ok(segments)
    }

    /// The stream ended: flushes what the filters hold and returns the last final, if speech
    /// was in progress.
    pub fn finish(&mut self) -> Result<Option<Segment>, PipelineError> {
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        let mut last = None;
        for window in self.vad.push(&self.resampled)? {
            for event in self.endpointer.push(window.probability, &window.samples) {
                if let Some(segment) = self.segment(event) {
                    // Only finals matter now; a partial this late would be stale at once.
                    if segment.is_final {
                        last = Some(segment);
                    }
                }
            }
        }
        if let Some(utterance) = self.endpointer.finish() {
            last = Some(self.final_segment(utterance));
        }
        Ok(last)
    }

    fn segment(&mut self, event: EndpointEvent) -> Option<Segment> {
        match event {
            EndpointEvent::SpeechStarted { .. } => None,
            EndpointEvent::Partial { start_ms, end_ms, samples } => Some(Segment {
                utterance_id: self.utterance_id,
                sequence: self.sequence,
                is_final: false,
                start_ms: self.offset_ms + start_ms,
                end_ms: self.offset_ms + end_ms,
                samples,
            }),
            EndpointEvent::Final(utterance) => Some(self.final_segment(utterance)),
        }
    }

    fn final_segment(&mut self, utterance: Utterance) -> Segment {
        let segment = Segment {
            utterance_id: self.utterance_id,
            sequence: self.sequence,
            is_final: true,
            start_ms: self.offset_ms + utterance.start_ms,
            end_ms: self.offset_ms + utterance.end_ms,
            samples: utterance.samples,
        };
        self.sequence += 1;
        self.utterance_id = Uuid::now_v7();
        segment
    }
}

/// 16-bit little-endian PCM bytes of `samples` (the `pcm16le` bus format).
pub fn to_pcm16le(samples: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for &sample in samples {
        bytes.extend_from_slice(&crate::resample::f32_to_i16(sample).to_le_bytes());
    }
    bytes
}
