//! The translation worker: translates final transcripts into every target language of the leg.
//!
//! Layout:
//! - [`service`]: the consume loop (durable consumer `mt` on the calls stream's transcripts),
//!   [`Translator`] (an engine behind an LRU [`cache`]), publishing `TranslationProduced`.
//! - [`engine`]: the [`TranslationEngine`] trait every engine implements, and [`TranslateError`].
//! - [`apertium`]: Apertium, rule-based, one long-lived null-flush pipeline per installed pair.
//! - [`text`]: cleaning, sentence splitting, splitting of very long sentences, rejoining.
//! - [`chrf`]: chrF as sacreBLEU computes it, for quality bounds and benchmarks.
//! - [`prompts`]: the Asterisk prompt transcripts (English and Spanish) as a parallel corpus.
//!
//! Language codes come from the one table in [`dragoman_bus::language`].

pub mod apertium;
pub mod cache;
pub mod chrf;
pub mod engine;
pub mod prompts;
pub mod service;
pub mod text;

use std::sync::Arc;

use dragoman_bus::Bus;
use dragoman_runtime::{Config, Shutdown};

pub use engine::{TranslateError, TranslationEngine};
pub use service::{MtSettings, Translator};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "mt-worker";

/// Runs the service until shutdown is triggered. Without a usable engine (no Apertium pair
/// installed) it logs why and takes nothing off the bus, so no transcript is consumed and lost,
/// and the other services of `dragoman standalone` keep running.
pub async fn run(_config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let settings = MtSettings::default();
    let apertium_config = settings.apertium.clone();
    let engine = match tokio::task::spawn_blocking(move || apertium::Apertium::new(apertium_config)).await? {
        Ok(engine) => engine,
        Err(err) => {
            tracing::error!(service = SERVICE, error = %err, "no translation engine: this process takes no work from the bus");
            shutdown.triggered().await;
            return Ok(());
        }
    };
    let pairs: Vec<&str> = engine.pairs().map(|p| p.mode.as_str()).collect();
    tracing::info!(service = SERVICE, engine = apertium::ENGINE, pairs = %pairs.join(","), "translation engine ready");
    service::serve(Arc::new(engine), settings, bus, shutdown).await
}
