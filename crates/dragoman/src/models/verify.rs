//! `dragoman models verify` and `convert`: checksums against the manifest, then the proof that
//! matters, the model loading in its engine.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::Utc;
use dragoman_mt_worker::ct2::{Ct2Model, Ct2TranslateOptions};
use dragoman_runtime::Config;
use dragoman_runtime::config::{MtConfig, SttConfig, SttEngineKind};
use dragoman_stt_worker::ct2::{Ct2Options, Ct2Whisper};
use dragoman_stt_worker::engine::SpeechEngine;
use dragoman_stt_worker::whisper_cpp::{WhisperCpp, WhisperCppConfig};

use super::catalogue::{ModelKind, TranslationFamily, WHISPER_SUBDIR};
use super::human_bytes;
use super::local::{LocalModel, resolve};
use super::manifest::{MANIFEST_FILE, Manifest, ManifestFile, hash_file, manifest_path};

/// What verifying one model found.
#[derive(Debug)]
pub struct Outcome {
    /// On success, what was checked; on failure, one line per problem.
    pub lines: Vec<String>,
    pub ok: bool,
}

impl Outcome {
    pub fn failed(line: String) -> Outcome {
        Outcome { lines: vec![line], ok: false }
    }
}

/// Verifies one model: its files against its manifest (or, without one, that the files the
/// engine needs are there), then loads it. A model whose files are damaged is not loaded.
pub fn verify_model(model: &LocalModel, config: &Config) -> Outcome {
    let manifest = match Manifest::read(&model.path, model.kind) {
        Ok(manifest) => manifest,
        Err(err) => return Outcome { lines: vec![format!("{err:#}")], ok: false },
    };
    let files_line = match &manifest {
        Some(manifest) => {
            let problems = manifest.check_files(&model.path);
            if !problems.is_empty() {
                let mut lines = problems;
                lines.push("not loaded: its files do not match the manifest".into());
                return Outcome { lines, ok: false };
            }
            format!(
                "{} file(s) match {}",
                manifest.files.len(),
                manifest_path(&model.path, model.kind).file_name().unwrap_or_default().to_string_lossy()
            )
        }
        None => {
            let missing: Vec<String> = model
                .kind
                .missing(|file| model.path.join(file).is_file())
                .into_iter()
                .map(|requirement| match requirement.single() {
                    Some(file) => format!("{}: missing", model.path.join(file).display()),
                    None => format!("{}: missing {requirement}", model.path.display()),
                })
                .collect();
            if !missing.is_empty() {
                return Outcome { lines: missing, ok: false };
            }
            format!("no {MANIFEST_FILE}, so no checksums; the files it needs are there")
        }
    };
    let loaded = match model.kind {
        ModelKind::Speech(engine) => load(engine, &model.path, &model.name, config.stt.threads),
        ModelKind::Translation(family) => load_translation(family, &model.path, &config.mt),
    };
    match loaded {
        Ok(loaded) => {
            if let Some(mut manifest) = manifest {
                manifest.verified_at = Some(Utc::now());
                if let Err(err) = manifest.write(&model.path) {
                    eprintln!("dragoman models: could not record the verification: {err:#}");
                }
            }
            Outcome { lines: vec![files_line, loaded], ok: true }
        }
        Err(err) => Outcome { lines: vec![files_line, err], ok: false },
    }
}

/// Loads the model with its engine; says what loaded, or why it did not.
pub fn load(engine: SttEngineKind, path: &Path, name: &str, threads: usize) -> Result<String, String> {
    let loaded: Box<dyn SpeechEngine> = match engine {
        SttEngineKind::Ctranslate2 => {
            let options = Ct2Options { threads, ..Ct2Options::default() };
            Box::new(Ct2Whisper::load(path, &options).map_err(|err| format!("CTranslate2 cannot load it: {err}"))?)
        }
        SttEngineKind::WhisperCpp => {
            let config = WhisperCppConfig { threads: threads.max(1), ..WhisperCppConfig::default() };
            Box::new(WhisperCpp::load(path, name, config).map_err(|err| format!("whisper.cpp cannot load it: {err}"))?)
        }
    };
    let languages = if loaded.multilingual() { "multilingual" } else { "English only" };
    Ok(format!("{} loads it ({languages})", ModelKind::Speech(engine).label()))
}

/// Loads a translation model as the MT worker does, and says what it translates; a model of
/// another family than `expected` (the catalogue's, or what its files said) is an error.
pub fn load_translation(expected: TranslationFamily, path: &Path, mt: &MtConfig) -> Result<String, String> {
    let options = Ct2TranslateOptions {
        compute_type: mt.compute_type.clone(),
        threads: mt.threads,
        ..Ct2TranslateOptions::default()
    };
    let model = Ct2Model::load(path, &options).map_err(|err| format!("CTranslate2 cannot load it: {err}"))?;
    let family = TranslationFamily::from(model.family());
    if family != expected {
        return Err(format!(
            "CTranslate2 loads it as {}, but it should be {}: its files are not the model its name says",
            family.label(),
            expected.label()
        ));
    }
    let codes: Vec<&str> = model.languages().iter().map(|language| language.code()).collect();
    let languages = match (family, codes.as_slice()) {
        (TranslationFamily::OpusMt, [source, target]) => format!("{source} → {target}"),
        _ => format!("any pair of {} languages: {}", codes.len(), codes.join(", ")),
    };
    Ok(format!("CTranslate2 loads it ({}, {languages})", family.label()))
}

/// Converts the CTranslate2 folder `source` names into a ggml file at `output` (default
/// `<model_dir>/whisper/ggml-<name>.bin`), loads it with whisper.cpp and writes its manifest.
/// A file whisper.cpp cannot load is deleted.
pub fn convert(model_dir: &Path, source: &str, output: Option<PathBuf>, stt: &SttConfig) -> anyhow::Result<PathBuf> {
    let source = resolve(model_dir, source)?;
    match source.kind {
        ModelKind::Speech(SttEngineKind::Ctranslate2) => {}
        ModelKind::Speech(SttEngineKind::WhisperCpp) => {
            bail!("{} is a whisper.cpp model already; convert takes a CTranslate2 folder", source.path.display())
        }
        ModelKind::Translation(family) => bail!(
            "{} is a {} translation model; convert makes whisper.cpp files of CTranslate2 Whisper folders",
            source.path.display(),
            family.label()
        ),
    }
    let folder = source.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let size = folder.strip_suffix("-ct2").unwrap_or(&folder).to_owned();
    let output = output.unwrap_or_else(|| model_dir.join(WHISPER_SUBDIR).join(format!("ggml-{size}.bin")));
    if let Some(parent) = output.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let name = output.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();

    let report = dragoman_stt_worker::ggml_convert::convert_ct2_to_ggml(&source.path, &output)
        .with_context(|| format!("convert {} to {}", source.path.display(), output.display()))?;
    eprintln!(
        "converted {} to {}: {} tensors, {} tokens, {}",
        source.path.display(),
        output.display(),
        report.tensors.len(),
        report.tokens_written,
        human_bytes(report.bytes_written)
    );
    let loaded = match load(SttEngineKind::WhisperCpp, &output, &name, stt.threads) {
        Ok(loaded) => loaded,
        Err(err) => {
            // Leaving it would make the STT worker fail on it later, with less context.
            let _ = std::fs::remove_file(&output);
            bail!("{}: {err}; the file was deleted", output.display());
        }
    };
    let hashes = hash_file(&output).with_context(|| format!("read {}", output.display()))?;
    let source_manifest = Manifest::read(&source.path, source.kind).ok().flatten();
    let now = Utc::now();
    let manifest = Manifest {
        name: name.clone(),
        engine: SttEngineKind::WhisperCpp,
        family: None,
        licence: source_manifest.as_ref().and_then(|m| m.licence.clone()),
        repo: source_manifest.as_ref().and_then(|m| m.repo.clone()),
        revision: source_manifest.as_ref().and_then(|m| m.revision.clone()),
        commit: source_manifest.as_ref().and_then(|m| m.commit.clone()),
        endpoint: None,
        pulled_at: None,
        converted_from: Some(std::fs::canonicalize(&source.path).unwrap_or(source.path.clone())),
        converted_at: Some(now),
        verified_at: Some(now),
        files: vec![ManifestFile {
            path: output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            size: hashes.len,
            sha256: hashes.sha256,
        }],
    };
    manifest.write(&output)?;
    eprintln!("{}: {loaded}", output.display());
    Ok(output)
}
