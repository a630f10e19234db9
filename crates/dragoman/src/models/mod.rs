//! `dragoman models list | pull | verify | convert`: the speech models the STT worker loads.
//!
//! Models live in the model directory (`$DRAGOMAN_MODEL_DIR`, default
//! `~/.cache/dragoman/models`, [`dragoman_runtime::config::model_dir`]) where the STT worker's
//! default paths point: `whisper/<name>-ct2/` for CTranslate2, `whisper/ggml-<name>.bin` for
//! whisper.cpp.
//!
//! Layout: [`catalogue`] (the models `pull` knows), [`hub`] (the Hugging Face hub over HTTP),
//! [`pull`], [`manifest`] (`dragoman-model.json`: every file's size and SHA-256), [`local`]
//! (what is on disk), [`verify`] (checksums, loading, conversion) and [`list`].

mod catalogue;
mod hub;
mod list;
mod local;
mod manifest;
mod pull;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use dragoman_runtime::Config;
use dragoman_runtime::config::{SttConfig, SttEngineKind};

/// Exit status after Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The catalogue of models, and what is installed in the model directory.
    List,
    /// Download a catalogue model from the Hugging Face hub into the model directory, checking
    /// every file's size and checksum (HF_TOKEN is sent as a bearer token when set).
    Pull {
        /// A catalogue name from `dragoman models list`, e.g. tiny.en-ct2 or ggml-tiny.en.
        name: String,
        /// Branch, tag or commit of the hub repository.
        #[arg(long, default_value = "main")]
        revision: String,
        /// Hub URL [default: $HF_ENDPOINT, else https://huggingface.co].
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Check installed models: every file against the model's manifest, then a load in its
    /// engine. Exits 1 if any model fails.
    Verify {
        /// A catalogue name, a path, or a name under <model dir>/whisper [default: every model
        /// in the model directory].
        model: Option<String>,
    },
    /// Convert a CTranslate2 Whisper folder to a whisper.cpp ggml file, then load it.
    Convert {
        /// The CTranslate2 folder: a path or an installed name such as tiny.en-ct2.
        source: String,
        /// Where to write the ggml file [default: <model dir>/whisper/ggml-<name>.bin].
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Runs one `dragoman models` command; 0 on success, 1 on any failure (with a message on
/// stderr saying what and where), 130 after Ctrl-C during a download.
pub fn run(command: ModelsCommand, config: &Config, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let model_dir = dragoman_runtime::config::model_dir();
    let result = match command {
        ModelsCommand::List => list::list(&model_dir, &config.stt).map(|report| {
            print!("{report}");
            ExitCode::SUCCESS
        }),
        ModelsCommand::Pull { name, revision, endpoint } => run_pull(&model_dir, &name, &revision, endpoint, runtime),
        ModelsCommand::Verify { model } => run_verify(&model_dir, model.as_deref(), &config.stt),
        ModelsCommand::Convert { source, output } => {
            verify::convert(&model_dir, &source, output, &config.stt).map(|output| {
                println!("OK      {}", output.display());
                ExitCode::SUCCESS
            })
        }
    };
    result.unwrap_or_else(|err| {
        eprintln!("dragoman models: {err:#}");
        ExitCode::FAILURE
    })
}

fn run_pull(
    model_dir: &Path,
    name: &str,
    revision: &str,
    endpoint: Option<String>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitCode> {
    let entry = catalogue::lookup(name).map_err(anyhow::Error::msg)?;
    let hub = hub::Hub::from_env(endpoint)?;
    let pulled = runtime.block_on(async {
        tokio::select! {
            result = pull::pull(&hub, entry, revision, model_dir) => result.map(Some),
            // Dropping the download deletes its temporary file.
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })?;
    let Some(path) = pulled else {
        eprintln!("dragoman models: interrupted; the unfinished download was deleted");
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    };
    println!("OK      {} pulled into {}", entry.name, path.display());
    let default_path = dragoman_stt_worker::service::default_model_path(entry.engine);
    if path != default_path {
        println!(
            "        to use it: DRAGOMAN_STT__ENGINE={} DRAGOMAN_STT__MODEL_PATH={}",
            engine_key(entry.engine),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_verify(model_dir: &Path, model: Option<&str>, stt: &SttConfig) -> anyhow::Result<ExitCode> {
    let models = match model {
        Some(what) => vec![local::resolve(model_dir, what)?],
        None => {
            let mut found = local::scan(model_dir)
                .map_err(|err| anyhow::anyhow!("read the model directory {}: {err}", model_dir.display()))?
                .models;
            // The model the STT worker is configured to load, when it lives elsewhere.
            if let Some(path) = stt.model_path.as_deref().filter(|path| found.iter().all(|m| m.path != *path))
                && let Some(engine) = local::classify(path)
            {
                found.push(local::local_model(model_dir, path, engine));
            }
            if found.is_empty() {
                anyhow::bail!(
                    "no models in {}; `dragoman models pull NAME` installs one",
                    model_dir.join(catalogue::WHISPER_SUBDIR).display()
                );
            }
            found
        }
    };
    let mut failed = 0;
    for model in &models {
        let outcome = verify::verify_model(model, stt);
        let status = if outcome.ok { "OK" } else { "FAILED" };
        println!("{status:<7} {} ({})", model.name, model.path.display());
        for line in &outcome.lines {
            println!("        {line}");
        }
        failed += usize::from(!outcome.ok);
    }
    if failed > 0 {
        eprintln!("dragoman models: {failed} of {} model(s) failed verification", models.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine's name for people.
fn engine_label(engine: SttEngineKind) -> &'static str {
    match engine {
        SttEngineKind::Ctranslate2 => "CTranslate2",
        SttEngineKind::WhisperCpp => "whisper.cpp",
    }
}

/// The engine's value for `stt.engine`.
fn engine_key(engine: SttEngineKind) -> &'static str {
    match engine {
        SttEngineKind::Ctranslate2 => "ctranslate2",
        SttEngineKind::WhisperCpp => "whisper_cpp",
    }
}

/// Decimal units, as the hub shows sizes: `75.5 MB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1_000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1_000.0;
    let mut unit = 0;
    while value >= 1_000.0 && unit + 1 < UNITS.len() {
        value /= 1_000.0;
        unit += 1;
    }
    if value >= 100.0 { format!("{value:.0} {}", UNITS[unit]) } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// The first 12 characters of a commit id.
fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_hubs() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(75_537_502), "75.5 MB");
        assert_eq!(human_bytes(145_000_000), "145 MB");
        assert_eq!(human_bytes(3_090_000_000), "3.1 GB");
    }

    #[test]
    fn engine_keys_are_the_config_values() {
        for engine in [SttEngineKind::Ctranslate2, SttEngineKind::WhisperCpp] {
            assert_eq!(serde_json::to_value(engine).expect("encode"), engine_key(engine));
        }
    }
}
