//! The STT worker: transcribes final utterances from the durable queue and partial requests.
//!
//! Layout: [`accuracy`] (WER and the Asterisk prompt corpus), [`engine`] (the `SpeechEngine` trait), [`ct2`] (CTranslate2 via ct2rs),
//! [`whisper_cpp`] (whisper.cpp via whisper-rs), [`ggml_convert`] (CTranslate2 folder → ggml),
//! [`guards`] (hallucination checks), [`pool`] (inference threads, finals first) and
//! [`service`] (the bus loops).

pub mod accuracy;
pub mod ct2;
pub mod engine;
pub mod ggml_convert;
pub mod guards;
pub mod pool;
pub mod whisper_cpp;

pub mod service;

pub use service::run;

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "stt-worker";
