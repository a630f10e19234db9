//! The translation engine trait every engine implements, and its errors.
//!
//! Engines are synchronous and may block for as long as a translation takes: the service calls
//! them from blocking threads, never on the async runtime.

use dragoman_bus::{Language, LanguageError};

/// A machine translation engine (Apertium, and CTranslate2 models to come).
pub trait TranslationEngine: Send + Sync + std::fmt::Debug {
    /// The engine's name, as `TranslationProduced.engine` reports it (`apertium`).
    fn name(&self) -> &str;

    /// What translates this pair, as `TranslationProduced.model` reports it (an Apertium mode
    /// such as `eng-spa`, a model name for neural engines).
    fn model(&self, source: &Language, target: &Language) -> String;

    /// Whether this engine can translate from `source` into `target`.
    fn supports(&self, source: &Language, target: &Language) -> bool;

    /// Translates each text from `source` into `target`. The result has one entry per text, in
    /// order; one text failing does not fail the others. Texts are cleaned and split into
    /// sentences by the engine (see [`crate::text`]); an empty text gives an empty translation.
    fn translate_batch(
        &self,
        texts: &[&str],
        source: &Language,
        target: &Language,
    ) -> Vec<Result<String, TranslateError>>;
}

/// Why a text was not translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The engine does not have this language pair.
    #[error("{engine} cannot translate {source_code} to {target_code}; available pairs: {available}")]
    UnsupportedPair { engine: String, source_code: &'static str, target_code: &'static str, available: String },
    /// A language tag is not in the language table, or the engine lacks the language.
    #[error(transparent)]
    Language(#[from] LanguageError),
    /// The engine's process failed while this text was being translated; it is restarted for the
    /// next request.
    #[error("{engine} {model} failed: {reason}")]
    Engine { engine: String, model: String, reason: String },
    /// The engine did not answer in time; it is restarted for the next request.
    #[error("{engine} {model} gave no answer within {timeout_ms} ms (restarted)")]
    Timeout { engine: String, model: String, timeout_ms: u64 },
}
