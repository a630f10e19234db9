//! What is in the model directory: Whisper models (CTranslate2 folders and ggml files under
//! `whisper/`) and translation models (CTranslate2 folders under `mt/`), matched to the
//! catalogue where they can be, and everything else.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use anyhow::bail;
use dragoman_runtime::config::SttEngineKind;

use super::catalogue::{self, CATALOGUE, Entry, MT_SUBDIR, ModelKind, TranslationFamily, WHISPER_SUBDIR};
use super::manifest::MANIFEST_SUFFIX;

/// The first four bytes of a whisper.cpp ggml file (`0x67676d6c` little-endian).
const GGML_MAGIC: [u8; 4] = *b"lmgg";

/// Files only a translation folder has: a Whisper CTranslate2 folder has `vocabulary.*` and
/// `tokenizer.json`, never SentencePiece models or `shared_vocabulary.*`.
const TRANSLATION_MARKERS: [&str; 6] = [
    "sentencepiece.bpe.model",
    "source.spm",
    "shared_vocabulary.json",
    "shared_vocabulary.txt",
    "source_vocabulary.json",
    "source_vocabulary.txt",
];

/// A model on disk.
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The catalogue name, or the folder's or file's name for one outside the catalogue.
    pub name: String,
    pub path: PathBuf,
    /// For a catalogue path, what the catalogue says it is; otherwise what its files say.
    pub kind: ModelKind,
    pub entry: Option<&'static Entry>,
}

/// Something in the model directory that is not a catalogue model.
#[derive(Debug, Clone)]
pub struct OtherEntry {
    /// Relative to the model directory.
    pub path: PathBuf,
    pub bytes: u64,
    pub kind: String,
    /// Why a folder that looks like a model is not one, for `list`.
    pub problem: Option<String>,
}

/// Everything in the model directory.
#[derive(Debug, Default)]
pub struct Scan {
    /// Catalogue models first (in catalogue order), then the others by path.
    pub models: Vec<LocalModel>,
    pub others: Vec<OtherEntry>,
}

/// Looks through `model_dir`; a directory that does not exist is empty.
pub fn scan(model_dir: &Path) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut unknown_models = Vec::new();
    for path in sorted_entries(model_dir)? {
        let name = file_name(&path);
        let is_models_folder = (name == WHISPER_SUBDIR || name == MT_SUBDIR) && path.is_dir();
        if !is_models_folder {
            scan.others.push(OtherEntry {
                bytes: disk_bytes(&path),
                kind: if path.is_dir() { "folder".into() } else { "file".into() },
                path: PathBuf::from(name),
                problem: None,
            });
            continue;
        }
        for path in sorted_entries(&path)? {
            let relative = path.strip_prefix(model_dir).unwrap_or(&path).to_path_buf();
            let entry_name = file_name(&path);
            if entry_name.ends_with(MANIFEST_SUFFIX) {
                continue; // Shown with its model.
            }
            if entry_name.ends_with(".partial") || entry_name.ends_with(".tmp") {
                scan.others.push(OtherEntry {
                    bytes: disk_bytes(&path),
                    path: relative,
                    kind: "unfinished download or conversion".into(),
                    problem: None,
                });
                continue;
            }
            let classified = if name == MT_SUBDIR {
                classify_translation(&path).map(ModelKind::Translation)
            } else {
                classify_whisper(&path).map(ModelKind::Speech).ok_or_else(String::new)
            };
            // A catalogue path is that model even when it is broken, so `verify` reports it.
            let kind = match (catalogue::installed_at(model_dir, &path), classified) {
                (Some(entry), _) => Ok(entry.kind),
                (None, classified) => classified,
            };
            match kind {
                Ok(kind) => {
                    let model = local_model(model_dir, &path, kind);
                    if model.entry.is_some() {
                        scan.models.push(model);
                    } else {
                        unknown_models.push(model);
                    }
                }
                Err(reason) => scan.others.push(OtherEntry {
                    bytes: disk_bytes(&path),
                    path: relative,
                    kind: if path.is_dir() { "folder".into() } else { "file".into() },
                    problem: (!reason.is_empty()).then(|| format!("not a translation model: {reason}")),
                }),
            }
        }
    }
    let catalogue_position = |model: &LocalModel| CATALOGUE.iter().position(|entry| Some(entry) == model.entry);
    scan.models.sort_by_key(catalogue_position);
    scan.models.extend(unknown_models);
    Ok(scan)
}

/// What kind of model `path` is: a ggml file, a CTranslate2 translation folder (it has
/// SentencePiece models or CTranslate2 vocabularies) or a CTranslate2 Whisper folder (any
/// other folder with `model.bin`); `None` for anything else, a translation folder whose family
/// cannot be told included.
pub fn classify(path: &Path) -> Option<ModelKind> {
    if path.is_dir() && TRANSLATION_MARKERS.iter().any(|marker| path.join(marker).is_file()) {
        return classify_translation(path).ok().map(ModelKind::Translation);
    }
    classify_whisper(path).map(ModelKind::Speech)
}

/// What kind of Whisper model `path` is: a folder with `model.bin` is CTranslate2, a file that
/// starts with the ggml magic is whisper.cpp; anything else is not a model.
fn classify_whisper(path: &Path) -> Option<SttEngineKind> {
    if path.is_dir() {
        return path.join("model.bin").is_file().then_some(SttEngineKind::Ctranslate2);
    }
    let mut magic = [0u8; 4];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut magic).ok()?;
    (magic == GGML_MAGIC).then_some(SttEngineKind::WhisperCpp)
}

/// The family of the translation folder `dir`, told from its files the way the MT worker's
/// loader tells it: `source.spm` is OPUS-MT; `sentencepiece.bpe.model` is NLLB-200 when the
/// vocabulary has `eng_Latn`, M2M100 when it has `__en__`. The error says why it is none (an
/// empty reason: not a model folder at all).
pub fn classify_translation(dir: &Path) -> Result<TranslationFamily, String> {
    if !dir.is_dir() || !dir.join("model.bin").is_file() {
        return Err(String::new());
    }
    if dir.join("source.spm").is_file() {
        return Ok(TranslationFamily::OpusMt);
    }
    if !dir.join("sentencepiece.bpe.model").is_file() {
        return Err("no SentencePiece model (sentencepiece.bpe.model, or source.spm and target.spm)".into());
    }
    let vocabulary =
        ["shared_vocabulary.json", "shared_vocabulary.txt", "target_vocabulary.json", "target_vocabulary.txt"]
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
            .ok_or("no shared_vocabulary.json or shared_vocabulary.txt")?;
    let text = fs::read_to_string(&vocabulary).map_err(|err| format!("read {}: {err}", vocabulary.display()))?;
    // A JSON list quotes its tokens; a text vocabulary has one per line.
    let has = |token: &str| text.contains(&format!("\"{token}\"")) || text.lines().any(|line| line == token);
    if has("eng_Latn") {
        Ok(TranslationFamily::Nllb)
    } else if has("__en__") {
        Ok(TranslationFamily::M2m100)
    } else {
        Err(format!("{} has neither NLLB-200 (eng_Latn) nor M2M100 (__en__) language tokens", vocabulary.display()))
    }
}

/// A model at `path` (already classified), named after its catalogue entry where it is one.
pub fn local_model(model_dir: &Path, path: &Path, kind: ModelKind) -> LocalModel {
    let entry = catalogue::installed_at(model_dir, path).filter(|entry| entry.kind.same_format(kind));
    let name = match entry {
        Some(entry) => entry.name.to_owned(),
        None => {
            let name = file_name(path);
            match kind {
                ModelKind::Speech(SttEngineKind::WhisperCpp) => name.strip_suffix(".bin").unwrap_or(&name).to_owned(),
                _ => name,
            }
        }
    };
    LocalModel { name, path: path.to_path_buf(), kind: entry.map_or(kind, |entry| entry.kind), entry }
}

/// The model `what` names: a catalogue name (installed under `model_dir`), a path, or a name
/// under `model_dir/whisper/` or `model_dir/mt/`.
pub fn resolve(model_dir: &Path, what: &str) -> anyhow::Result<LocalModel> {
    let whisper = model_dir.join(WHISPER_SUBDIR);
    let mt = model_dir.join(MT_SUBDIR);
    if let Ok(entry) = catalogue::lookup(what) {
        let path = entry.install_path(model_dir);
        if !path.exists() {
            bail!("{what} is not installed in {}; `dragoman models pull {what}` fetches it", model_dir.display());
        }
        // What is there is checked by whoever asked (verify, convert), with the reasons.
        return Ok(local_model(model_dir, &path, entry.kind));
    }
    for path in [PathBuf::from(what), whisper.join(what), whisper.join(format!("{what}.bin")), mt.join(what)] {
        if !path.exists() {
            continue;
        }
        // Under mt/ everything is meant as a translation model, whatever it lacks.
        let translation = path.starts_with(&mt)
            || (path.is_dir() && TRANSLATION_MARKERS.iter().any(|marker| path.join(marker).is_file()));
        if translation {
            return match classify_translation(&path) {
                Ok(family) => Ok(local_model(model_dir, &path, ModelKind::Translation(family))),
                Err(reason) => bail!(
                    "{} is not a translation model the MT worker can load: {}",
                    path.display(),
                    if reason.is_empty() { "it has no model.bin" } else { &reason }
                ),
            };
        }
        if let Some(kind) = classify(&path) {
            return Ok(local_model(model_dir, &path, kind));
        }
        if path.is_dir() {
            bail!("{} is not a CTranslate2 model: it has no model.bin", path.display());
        }
        bail!("{} is not a whisper.cpp ggml model: it does not start with the ggml magic", path.display());
    }
    bail!(
        "no model {what:?}: not a catalogue name, not a path, and not in {} or {}; `dragoman models list` shows what is there",
        whisper.display(),
        mt.display()
    )
}

/// Bytes on disk under `path` (a file's length, or the sum over a folder), for display.
pub fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| disk_bytes(&entry.path())).sum())
        .unwrap_or(0)
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut entries = match fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.map(|entry| entry.path())).collect::<io::Result<Vec<_>>>()?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err),
    };
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}
