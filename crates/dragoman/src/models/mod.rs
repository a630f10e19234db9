//! `dragoman models list | pull | verify | convert`: the speech models the STT worker loads and
//! the translation models the MT worker loads.
//!
//! Models live in the model directory (`$DRAGOMAN_MODEL_DIR`, default
//! `~/.cache/dragoman/models`, [`dragoman_runtime::config::model_dir`]) where the workers look:
//! `whisper/<name>-ct2/` for CTranslate2, `whisper/ggml-<name>.bin` for whisper.cpp (the STT
//! worker's defaults), and `mt/<name>/` for CTranslate2 translation models (the names
//! `mt.models` lists).
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
use dragoman_runtime::config::SttEngineKind;

use self::catalogue::ModelKind;

/// Exit status after Ctrl-C, as shells report a SIGINT death.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The catalogue of models, and what is installed in the model directory.
    List,
    /// Download a catalogue model from the Hugging Face hub into the model directory, checking
    /// every file's size and checksum (HF_TOKEN is sent as a bearer token when set).
    Pull {
        /// A catalogue name from `dragoman models list`, e.g. tiny.en-ct2, ggml-tiny.en or
        /// opus-mt-en-es.
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
        /// A catalogue name, a path, or a name under <model dir>/whisper or <model dir>/mt
        /// [default: every model in the model directory, and those the config names].
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
        ModelsCommand::List => list::list(&model_dir, config).map(|report| {
            print!("{report}");
            ExitCode::SUCCESS
        }),
        ModelsCommand::Pull { name, revision, endpoint } => {
            run_pull(&model_dir, &name, &revision, endpoint, config, runtime)
        }
        ModelsCommand::Verify { model } => run_verify(&model_dir, model.as_deref(), config),
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
    config: &Config,
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
    match entry.kind {
        ModelKind::Speech(engine) => {
            if path != dragoman_stt_worker::service::default_model_path(engine) {
                println!(
                    "        to use it: DRAGOMAN_STT__ENGINE={} DRAGOMAN_STT__MODEL_PATH={}",
                    engine_key(engine),
                    path.display()
                );
            }
        }
        ModelKind::Translation(_) => {
            if !config.mt.model_paths().contains(&path) {
                println!(
                    "        to use it: mt.models = [\"{}\"] in the config file, or DRAGOMAN_MT__MODELS={}",
                    entry.name, entry.name
                );
            }
            println!("        licence: {}", licence_note(entry.licence));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a model's licence means for its user, in a few words.
fn licence_note(licence: &str) -> String {
    match licence {
        "CC-BY-NC-4.0" => format!("{licence}, NON-COMMERCIAL use only"),
        "CC-BY-4.0" => format!("{licence}, credit the authors (Helsinki-NLP for OPUS-MT)"),
        _ => licence.to_owned(),
    }
}

/// One model to check: found on disk, or named by the config and not loadable as it is.
enum Check {
    Model(local::LocalModel),
    Broken { name: String, path: PathBuf, reason: String },
}

fn run_verify(model_dir: &Path, model: Option<&str>, config: &Config) -> anyhow::Result<ExitCode> {
    let checks = match model {
        Some(what) => vec![Check::Model(local::resolve(model_dir, what)?)],
        None => {
            let found = local::scan(model_dir)
                .map_err(|err| anyhow::anyhow!("read the model directory {}: {err}", model_dir.display()))?
                .models;
            let mut extra = Vec::new();
            // The models the workers are configured to load, when they live elsewhere or are
            // missing: verify answers "will the workers start with this config?".
            let stt_path = config.stt.model_path.clone().filter(|path| found.iter().all(|m| m.path != *path));
            if let Some(path) = stt_path
                && let Some(kind) = local::classify(&path)
            {
                extra.push(Check::Model(local::local_model(model_dir, &path, kind)));
            }
            for (name, path) in config.mt.models.iter().zip(config.mt.model_paths()) {
                if found.iter().any(|m| m.path == path) {
                    continue;
                }
                let check = match local::classify(&path) {
                    Some(kind @ ModelKind::Translation(_)) => Check::Model(local::local_model(model_dir, &path, kind)),
                    _ if !path.exists() => Check::Broken {
                        name: name.clone(),
                        path,
                        reason: format!(
                            "named in mt.models but not installed; `dragoman models pull {name}` installs a catalogue model"
                        ),
                    },
                    _ => Check::Broken {
                        name: name.clone(),
                        reason: match local::classify_translation(&path) {
                            Err(reason) if !reason.is_empty() => {
                                format!("named in mt.models, but not a translation model: {reason}")
                            }
                            _ => "named in mt.models, but not a CTranslate2 translation model folder".into(),
                        },
                        path,
                    },
                };
                extra.push(check);
            }
            let mut checks: Vec<Check> = found.into_iter().map(Check::Model).collect();
            checks.extend(extra);
            if checks.is_empty() {
                anyhow::bail!("no models in {}; `dragoman models pull NAME` installs one", model_dir.display());
            }
            checks
        }
    };
    let mut failed = 0;
    for check in &checks {
        let (name, path, outcome) = match check {
            Check::Model(model) => (&model.name, &model.path, verify::verify_model(model, config)),
            Check::Broken { name, path, reason } => (name, path, verify::Outcome::failed(reason.clone())),
        };
        let status = if outcome.ok { "OK" } else { "FAILED" };
        println!("{status:<7} {name} ({})", path.display());
        for line in &outcome.lines {
            println!("        {line}");
        }
        failed += usize::from(!outcome.ok);
    }
    if failed > 0 {
        eprintln!("dragoman models: {failed} of {} model(s) failed verification", checks.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
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
    fn licences_say_what_they_allow() {
        assert_eq!(licence_note("CC-BY-NC-4.0"), "CC-BY-NC-4.0, NON-COMMERCIAL use only");
        assert_eq!(licence_note("MIT"), "MIT");
    }

    #[test]
    fn engine_keys_are_the_config_values() {
        for engine in [SttEngineKind::Ctranslate2, SttEngineKind::WhisperCpp] {
            assert_eq!(serde_json::to_value(engine).expect("encode"), engine_key(engine));
        }
    }
}
