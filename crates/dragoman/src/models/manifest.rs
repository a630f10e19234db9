//! `dragoman-model.json`: what was installed (where from, every file's size and SHA-256), so
//! `verify` can tell an intact model from a damaged one long after the download.
//!
//! A model folder keeps it inside (`tiny.en-ct2/dragoman-model.json`,
//! `mt/opus-mt-en-es/dragoman-model.json`); a ggml file beside itself
//! (`ggml-tiny.en.bin.dragoman-model.json`).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use dragoman_runtime::config::SttEngineKind;
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use super::catalogue::{ModelKind, TranslationFamily};
use sha2::{Digest, Sha256};

/// The manifest's file name inside a model folder.
pub const MANIFEST_FILE: &str = "dragoman-model.json";
/// The suffix of a ggml file's manifest beside it.
pub const MANIFEST_SUFFIX: &str = ".dragoman-model.json";

/// What was installed and where it came from. Fields a later version adds are ignored by this
/// one, so an older `dragoman` can still verify a newer manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The catalogue name, or the folder or file name for a model outside it.
    pub name: String,
    /// The runtime that loads the files: `ctranslate2` (Whisper folders and translation models)
    /// or `whisper_cpp`.
    pub engine: SttEngineKind,
    /// Set for a translation model (the MT worker's), absent for Whisper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<TranslationFamily>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// The hub repository the files came from (for a converted model: its source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The revision asked for (`main`, a tag, a commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The commit the revision pointed at when the files were downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<DateTime<Utc>>,
    /// The CTranslate2 folder a ggml file was converted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_at: Option<DateTime<Utc>>,
    /// The last time `verify` found every checksum right and the engine loaded the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    pub files: Vec<ManifestFile>,
}

/// One installed file, relative to the model folder (for a ggml model: its own name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Where the manifest of the model at `model_path` (a folder or a ggml file) is.
pub fn manifest_path(model_path: &Path, kind: ModelKind) -> PathBuf {
    if kind.is_file() {
        let mut name = model_path.as_os_str().to_owned();
        name.push(MANIFEST_SUFFIX);
        PathBuf::from(name)
    } else {
        model_path.join(MANIFEST_FILE)
    }
}

/// The folder a manifest's file paths are relative to.
pub fn files_root(model_path: &Path, kind: ModelKind) -> &Path {
    if kind.is_file() { model_path.parent().unwrap_or(Path::new(".")) } else { model_path }
}

impl ModelKind {
    /// `engine` as a manifest records it.
    pub fn engine(self) -> SttEngineKind {
        match self {
            ModelKind::Speech(engine) => engine,
            ModelKind::Translation(_) => SttEngineKind::Ctranslate2,
        }
    }

    /// `family` as a manifest records it.
    pub fn family(self) -> Option<TranslationFamily> {
        match self {
            ModelKind::Speech(_) => None,
            ModelKind::Translation(family) => Some(family),
        }
    }
}

impl Manifest {
    /// What kind of model the manifest describes.
    pub fn kind(&self) -> ModelKind {
        match self.family {
            Some(family) => ModelKind::Translation(family),
            None => ModelKind::Speech(self.engine),
        }
    }

    /// Reads the manifest of the model at `model_path`; `None` when it has none.
    pub fn read(model_path: &Path, kind: ModelKind) -> anyhow::Result<Option<Manifest>> {
        let path = manifest_path(model_path, kind);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("read {}", path.display())),
        };
        let manifest: Manifest = serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        if !manifest.kind().same_format(kind) {
            anyhow::bail!(
                "{} describes a {} model, but {} is not one",
                path.display(),
                manifest.kind().label(),
                model_path.display()
            );
        }
        Ok(Some(manifest))
    }

    /// Writes the manifest for the model at `model_path`, through a temporary file and a rename
    /// so a reader never sees half of it.
    pub fn write(&self, model_path: &Path) -> anyhow::Result<PathBuf> {
        let path = manifest_path(model_path, self.kind());
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp_name);
        let mut text = serde_json::to_string_pretty(self).context("encode the manifest")?;
        text.push('\n');
        std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        Ok(path)
    }

    /// Checks every file against the manifest (present, same size, same SHA-256); returns one
    /// line per problem, naming the file, what the manifest says and what is on disk.
    pub fn check_files(&self, model_path: &Path) -> Vec<String> {
        let root = files_root(model_path, self.kind());
        let mut problems = Vec::new();
        for file in &self.files {
            let path = root.join(&file.path);
            let size = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(err) => {
                    problems.push(format!("{}: {err}", path.display()));
                    continue;
                }
            };
            if size != file.size {
                problems.push(format!(
                    "{}: size is {size} bytes, the manifest says {} bytes",
                    path.display(),
                    file.size
                ));
                continue;
            }
            match hash_file(&path) {
                Ok(hashes) if hashes.sha256 == file.sha256 => {}
                Ok(hashes) => problems.push(format!(
                    "{}: sha256 is {}, the manifest says {}",
                    path.display(),
                    hashes.sha256,
                    file.sha256
                )),
                Err(err) => problems.push(format!("{}: {err}", path.display())),
            }
        }
        problems
    }

    /// Whether every file is there with its recorded size (cheap; no hashing).
    pub fn sizes_match(&self, model_path: &Path) -> bool {
        let root = files_root(model_path, self.kind());
        self.files.iter().all(|file| std::fs::metadata(root.join(&file.path)).is_ok_and(|meta| meta.len() == file.size))
    }
}

/// SHA-256 and the git blob id (SHA-1 of `blob <size>\0` + content) of a stream: the hub names
/// LFS files by the first and every other file by the second.
#[derive(Debug, Clone)]
pub struct Hasher {
    sha256: Sha256,
    git_blob: Sha1,
    len: u64,
}

/// The digests of a complete stream, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub sha256: String,
    pub git_blob_sha1: String,
    pub len: u64,
}

impl Hasher {
    /// A hasher for a stream of `expected_len` bytes (the git blob id covers the length first).
    pub fn new(expected_len: u64) -> Self {
        let mut git_blob = Sha1::new();
        git_blob.update(format!("blob {expected_len}\0").as_bytes());
        Self { sha256: Sha256::new(), git_blob, len: 0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.git_blob.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.len
    }

    pub fn finish(self) -> Hashes {
        Hashes { sha256: hex(&self.sha256.finalize()), git_blob_sha1: hex(&self.git_blob.finalize()), len: self.len }
    }
}

/// Hashes a file on disk (the git blob id assumes its current length).
pub fn hash_file(path: &Path) -> io::Result<Hashes> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = Hasher::new(len);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finish())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_sha256sum_and_git_hash_object() {
        let mut hasher = Hasher::new(6);
        hasher.update(b"hello\n");
        let hashes = hasher.finish();
        // `printf 'hello\n' | sha256sum` and `printf 'hello\n' | git hash-object --stdin`.
        assert_eq!(hashes.sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
        assert_eq!(hashes.git_blob_sha1, "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(hashes.len, 6);
    }

    #[test]
    fn a_manifest_round_trips_and_ignores_fields_it_does_not_know() {
        let manifest = Manifest {
            name: "tiny.en-ct2".into(),
            engine: SttEngineKind::Ctranslate2,
            family: None,
            licence: Some("MIT".into()),
            repo: Some("Systran/faster-whisper-tiny.en".into()),
            revision: Some("main".into()),
            commit: None,
            endpoint: None,
            pulled_at: None,
            converted_from: None,
            converted_at: None,
            verified_at: None,
            files: vec![ManifestFile { path: "model.bin".into(), size: 3, sha256: "ab".into() }],
        };
        let json = serde_json::to_value(&manifest).expect("encode");
        assert_eq!(json["engine"], "ctranslate2");
        assert!(json.get("commit").is_none() && json.get("family").is_none(), "{json}");
        let mut extended = json.clone();
        extended["added_later"] = serde_json::json!(true);
        assert_eq!(serde_json::from_value::<Manifest>(extended).expect("decode"), manifest);
    }

    #[test]
    fn a_translation_manifest_records_its_family() {
        let kind = ModelKind::Translation(TranslationFamily::Nllb);
        let manifest = Manifest {
            name: "nllb-200-distilled-600M-int8".into(),
            engine: kind.engine(),
            family: kind.family(),
            licence: Some("CC-BY-NC-4.0".into()),
            repo: None,
            revision: None,
            commit: None,
            endpoint: None,
            pulled_at: None,
            converted_from: None,
            converted_at: None,
            verified_at: None,
            files: Vec::new(),
        };
        let json = serde_json::to_value(&manifest).expect("encode");
        assert_eq!((&json["engine"], &json["family"]), (&serde_json::json!("ctranslate2"), &serde_json::json!("nllb")));
        assert_eq!(serde_json::from_value::<Manifest>(json).expect("decode").kind(), kind);
        assert!(!ModelKind::Speech(SttEngineKind::Ctranslate2).same_format(kind));
    }

    #[test]
    fn a_ggml_manifest_sits_beside_its_file() {
        let path =
            manifest_path(Path::new("/m/whisper/ggml-tiny.en.bin"), ModelKind::Speech(SttEngineKind::WhisperCpp));
        assert_eq!(path, Path::new("/m/whisper/ggml-tiny.en.bin.dragoman-model.json"));
        let path = manifest_path(Path::new("/m/whisper/tiny.en-ct2"), ModelKind::Speech(SttEngineKind::Ctranslate2));
        assert_eq!(path, Path::new("/m/whisper/tiny.en-ct2/dragoman-model.json"));
        let opus = ModelKind::Translation(TranslationFamily::OpusMt);
        assert_eq!(
            manifest_path(Path::new("/m/mt/opus-mt-en-es"), opus),
            Path::new("/m/mt/opus-mt-en-es/dragoman-model.json")
        );
    }
}
