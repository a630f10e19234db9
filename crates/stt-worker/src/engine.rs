//! The speech-to-text engine interface. Engines are synchronous and CPU/GPU-bound: the worker
//! calls them on its own inference pool, never on the async runtime.

use std::fmt;

/// Sample rate every engine takes: 16 kHz mono f32 in [-1, 1].
pub const SAMPLE_RATE_HZ: u32 = 16_000;

/// How to decode one request (from config, overridden per call where the request says so).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Whisper language code (`en`, `es`, …); `None` detects it (multilingual models only).
    pub language: Option<String>,
    /// 1 = greedy.
    pub beam_size: usize,
    /// Tried in order until the output passes the quality checks (temperature fallback).
    pub temperatures: Vec<f32>,
    /// Text that conditions the decoder: names, product words, the previous utterance.
    pub initial_prompt: Option<String>,
    pub word_timestamps: bool,
    /// Give up on a result whose average token log-probability is below this (then the next
    /// temperature is tried).
    pub log_prob_threshold: f32,
    /// A result whose gzip compression ratio is above this is repetitive (hallucination).
    pub compression_ratio_threshold: f32,
    /// With no-speech probability above this (and a low log-probability), the audio has no
    /// speech: the result is empty.
    pub no_speech_threshold: f32,
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: Some("en".into()),
            beam_size: 1,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            initial_prompt: None,
            word_timestamps: false,
            log_prob_threshold: -1.0,
            compression_ratio_threshold: 2.4,
            no_speech_threshold: 0.6,
            max_tokens: 224,
        }
    }
}

/// One word with its timing, in ms from the start of the audio given to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// What an engine heard in one utterance, before the worker's hallucination guards.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcription {
    pub text: String,
    /// Whisper language code of `text`.
    pub language: String,
    /// Probability of the detected language, when it was detected.
    pub language_probability: Option<f32>,
    /// Mean log-probability of the generated tokens.
    pub avg_log_prob: f32,
    /// Probability that the audio holds no speech (Whisper's `<|nospeech|>` token).
    pub no_speech_prob: f32,
    /// The temperature that produced this result.
    pub temperature: f32,
    pub words: Vec<WordTiming>,
}

/// An engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("bad audio: {0}")]
    BadAudio(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A loaded model that turns 16 kHz audio into text.
pub trait SpeechEngine: Send + Sync + fmt::Debug {
    /// `whisper_cpp` or `ctranslate2`.
    fn engine(&self) -> &'static str;
    /// The model's name (e.g. `tiny.en`).
    fn model(&self) -> &str;
    /// Whether the model knows more than English (and can detect the language).
    fn multilingual(&self) -> bool;
    /// Transcribes one utterance of 16 kHz mono samples.
    fn transcribe(&self, audio: &[f32], options: &DecodeOptions) -> Result<Transcription, EngineError>;
    /// Transcribes several utterances at once where the engine can batch; by default one by one.
    fn transcribe_batch(&self, audio: &[&[f32]], options: &DecodeOptions) -> Vec<Result<Transcription, EngineError>> {
        audio.iter().map(|a| self.transcribe(a, options)).collect()
    }
}
