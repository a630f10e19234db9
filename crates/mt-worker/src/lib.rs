//! The translation worker: translates final transcripts into every target language of the leg.
//!
//! Layout:
//! - [`service`]: the consume loop (durable consumer `mt` on the calls stream's transcripts),
//!   [`Translator`] (engines behind an LRU [`cache`] and a cross-call batcher), publishing
//!   `TranslationProduced`.
//! - [`engine`]: the [`TranslationEngine`] trait every engine implements, and [`TranslateError`].
//! - [`apertium`]: Apertium, rule-based, one long-lived null-flush pipeline per installed pair.
//! - [`ct2`]: CTranslate2 models (NLLB-200, M2M100, OPUS-MT), each with its own tokenisation.
//! - [`text`]: cleaning, sentence splitting, splitting of very long sentences, rejoining.
//! - [`chrf`]: chrF as sacreBLEU computes it, for quality bounds and benchmarks.
//! - [`prompts`]: the Asterisk prompt transcripts (English and Spanish) as a parallel corpus.
//!
//! Language codes come from the one table in [`dragoman_bus::language`].

pub mod apertium;
pub mod cache;
pub mod chrf;
pub mod ct2;
pub mod engine;
pub mod prompts;
pub mod service;
pub mod text;

use std::sync::Arc;

use dragoman_bus::Bus;
use dragoman_runtime::config::{MtConfig, MtEngineKind};
use dragoman_runtime::{Config, Shutdown};

pub use engine::{TranslateError, TranslationEngine};
pub use service::{MtSettings, Translator};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "mt-worker";

/// The engines `config.engines` names, in its order. A CTranslate2 model that is configured but
/// does not load is an error (its pairs would silently go untranslated); Apertium without an
/// installed pair is skipped with a warning, since it is in the default list.
pub fn load_engines(config: &MtConfig) -> anyhow::Result<Vec<Arc<dyn TranslationEngine>>> {
    let mut engines: Vec<Arc<dyn TranslationEngine>> = Vec::new();
    for kind in &config.engines {
        match kind {
            MtEngineKind::Ctranslate2 => {
                let paths = config.model_paths();
                if paths.is_empty() {
                    continue;
                }
                let options = ct2::Ct2TranslateOptions {
                    compute_type: config.compute_type.clone(),
                    threads: config.threads,
                    beam_size: config.beam_size,
                    max_source_tokens: config.max_source_tokens,
                };
                let engine = ct2::Ct2Translate::load(&paths, &options)?;
                for model in engine.models() {
                    let codes: Vec<&str> = model.languages().iter().map(|l| l.code()).collect();
                    tracing::info!(service = SERVICE, engine = ct2::ENGINE, model = model.name(), family = %model.family(), languages = %codes.join(","), "translation model loaded");
                }
                engines.push(Arc::new(engine));
            }
            MtEngineKind::Apertium => {
                let apertium_config = apertium::ApertiumConfig {
                    modes_dir: config.apertium_modes_dir.clone(),
                    ..apertium::ApertiumConfig::default()
                };
                match apertium::Apertium::new(apertium_config) {
                    Ok(engine) => {
                        let pairs: Vec<&str> = engine.pairs().map(|p| p.mode.as_str()).collect();
                        tracing::info!(service = SERVICE, engine = apertium::ENGINE, pairs = %pairs.join(","), "translation engine ready");
                        engines.push(Arc::new(engine));
                    }
                    Err(err) => tracing::warn!(service = SERVICE, error = %err, "apertium not used"),
                }
            }
        }
    }
    Ok(engines)
}

/// Runs the service until shutdown is triggered. Without any usable engine it logs why and
/// takes nothing off the bus, so no transcript is consumed and lost, and the other services of
/// `dragoman standalone` keep running.
pub async fn run(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let mt = config.mt.clone();
    let engines = tokio::task::spawn_blocking(move || load_engines(&mt)).await??;
    if engines.is_empty() {
        tracing::error!(
            service = SERVICE,
            "no translation engine (no mt.models, no Apertium pair): this process takes no work from the bus"
        );
        shutdown.triggered().await;
        return Ok(());
    }
    service::serve(engines, MtSettings::from_config(&config.mt), bus, shutdown).await
}
