//! What is in the model directory: Whisper models (CTranslate2 folders and ggml files under
//! `whisper/`), matched to the catalogue where they can be, and everything else.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use anyhow::bail;
use dragoman_runtime::config::SttEngineKind;

use super::catalogue::{self, CATALOGUE, Entry, WHISPER_SUBDIR};
use super::manifest::MANIFEST_SUFFIX;

/// The first four bytes of a whisper.cpp ggml file (`0x67676d6c` little-endian).
const GGML_MAGIC: [u8; 4] = *b"lmgg";

/// A Whisper model on disk.
#[derive(Debug, Clone)]
pub struct LocalModel {
    /// The catalogue name, or the folder's or file's name for one outside the catalogue.
    pub name: String,
    pub path: PathBuf,
    pub engine: SttEngineKind,
    pub entry: Option<&'static Entry>,
}

/// Something in the model directory that is not a catalogue model.
#[derive(Debug, Clone)]
pub struct OtherEntry {
    /// Relative to the model directory.
    pub path: PathBuf,
    pub bytes: u64,
    pub kind: String,
}

/// Everything in the model directory.
#[derive(Debug, Default)]
pub struct Scan {
    /// Catalogue models first (in catalogue order), then the others by name.
    pub models: Vec<LocalModel>,
    pub others: Vec<OtherEntry>,
}

/// Looks through `model_dir`; a directory that does not exist is empty.
pub fn scan(model_dir: &Path) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut unknown_models = Vec::new();
    for path in sorted_entries(model_dir)? {
        let name = file_name(&path);
        if name == WHISPER_SUBDIR && path.is_dir() {
            for path in sorted_entries(&path)? {
                let relative = path.strip_prefix(model_dir).unwrap_or(&path).to_path_buf();
                let name = file_name(&path);
                if name.ends_with(MANIFEST_SUFFIX) {
                    continue; // Shown with its model.
                }
                if name.ends_with(".partial") || name.ends_with(".tmp") {
                    scan.others.push(OtherEntry {
                        bytes: disk_bytes(&path),
                        path: relative,
                        kind: "unfinished download or conversion".into(),
                    });
                    continue;
                }
                // A catalogue path is that model even when it is broken, so `verify` reports it.
                let engine = classify(&path).or_else(|| catalogue::installed_at(model_dir, &path).map(|e| e.engine));
                match engine {
                    Some(engine) => {
                        let model = local_model(model_dir, &path, engine);
                        if model.entry.is_some() {
                            scan.models.push(model);
                        } else {
                            unknown_models.push(model);
                        }
                    }
                    None => scan.others.push(OtherEntry {
                        bytes: disk_bytes(&path),
                        path: relative,
                        kind: if path.is_dir() { "folder".into() } else { "file".into() },
                    }),
                }
            }
        } else {
            scan.others.push(OtherEntry {
                bytes: disk_bytes(&path),
                kind: if path.is_dir() { "folder".into() } else { "file".into() },
                path: PathBuf::from(name),
            });
        }
    }
    let catalogue_position = |model: &LocalModel| CATALOGUE.iter().position(|entry| Some(entry) == model.entry);
    scan.models.sort_by_key(catalogue_position);
    scan.models.extend(unknown_models);
    Ok(scan)
}

/// What kind of Whisper model `path` is: a folder with `model.bin` is CTranslate2, a file that
/// starts with the ggml magic is whisper.cpp; anything else is not a model.
pub fn classify(path: &Path) -> Option<SttEngineKind> {
    if path.is_dir() {
        return path.join("model.bin").is_file().then_some(SttEngineKind::Ctranslate2);
    }
    let mut magic = [0u8; 4];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut magic).ok()?;
    (magic == GGML_MAGIC).then_some(SttEngineKind::WhisperCpp)
}

/// A model at `path` (already classified), named after its catalogue entry where it is one.
pub fn local_model(model_dir: &Path, path: &Path, engine: SttEngineKind) -> LocalModel {
    let entry = catalogue::installed_at(model_dir, path).filter(|entry| entry.engine == engine);
    let name = match entry {
        Some(entry) => entry.name.to_owned(),
        None => {
            let name = file_name(path);
            match engine {
                SttEngineKind::WhisperCpp => name.strip_suffix(".bin").unwrap_or(&name).to_owned(),
                SttEngineKind::Ctranslate2 => name,
            }
        }
    };
    LocalModel { name, path: path.to_path_buf(), engine, entry }
}

/// The model `what` names: a catalogue name (installed under `model_dir`), a path, or a name
/// under `model_dir/whisper/`.
pub fn resolve(model_dir: &Path, what: &str) -> anyhow::Result<LocalModel> {
    let whisper = model_dir.join(WHISPER_SUBDIR);
    if let Ok(entry) = catalogue::lookup(what) {
        let path = entry.install_path(model_dir);
        if !path.exists() {
            bail!("{what} is not installed in {}; `dragoman models pull {what}` fetches it", model_dir.display());
        }
        // What is there is checked by whoever asked (verify, convert), with the reasons.
        return Ok(local_model(model_dir, &path, entry.engine));
    }
    for path in [PathBuf::from(what), whisper.join(what), whisper.join(format!("{what}.bin"))] {
        if !path.exists() {
            continue;
        }
        return match classify(&path) {
            Some(engine) => Ok(local_model(model_dir, &path, engine)),
            None if path.is_dir() => {
                bail!("{} is not a CTranslate2 Whisper model: it has no model.bin", path.display())
            }
            None => bail!("{} is not a whisper.cpp ggml model: it does not start with the ggml magic", path.display()),
        };
    }
    bail!(
        "no model {what:?}: not a catalogue name, not a path, and not in {}; `dragoman models list` shows what is there",
        whisper.display()
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
