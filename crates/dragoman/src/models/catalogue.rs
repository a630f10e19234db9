//! The models `dragoman models pull` knows: Whisper in CTranslate2 format (the repositories
//! faster-whisper itself downloads from) and whisper.cpp's ggml files. Every entry is a real
//! repository on the Hugging Face hub; nothing here is a placeholder.

use std::path::{Path, PathBuf};

use dragoman_runtime::config::SttEngineKind;

/// Files a CTranslate2 Whisper folder needs, as faster-whisper's own `download_model` selects
/// them (`vocabulary.*` is `vocabulary.txt` or `vocabulary.json`; large-v3 also ships its
/// 128-bin `preprocessor_config.json`). Everything else in those repositories (README.md,
/// .gitattributes) is left on the hub.
pub const CT2_FILE_PATTERNS: [&str; 5] =
    ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"];

/// Files a CTranslate2 folder cannot load without (`Ct2Whisper::load` checks the same ones).
pub const CT2_REQUIRED_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];

/// Where every model of the catalogue is installed, under the model directory.
pub const WHISPER_SUBDIR: &str = "whisper";

/// OpenAI released the Whisper weights under MIT; the CTranslate2 and ggml conversions keep it.
const WHISPER_LICENCE: &str = "MIT";

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

/// One model that can be pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// What the user types, and the name it is installed under: `tiny.en-ct2` is the folder
    /// `whisper/tiny.en-ct2/`, `ggml-tiny.en` the file `whisper/ggml-tiny.en.bin`.
    pub name: &'static str,
    pub engine: SttEngineKind,
    /// The hub repository (`owner/name`).
    pub repo: &'static str,
    /// For a ggml model, the one file taken from the repository; a CTranslate2 model takes
    /// the files matching [`CT2_FILE_PATTERNS`].
    pub file: Option<&'static str>,
    pub licence: &'static str,
    /// Approximate download size: for ggml files the sizes whisper.cpp's `models/README.md`
    /// lists, for CTranslate2 folders the float16 `model.bin` rounded. The hub's own sizes
    /// are what `pull` checks against.
    pub approx_bytes: u64,
}

impl Entry {
    /// Where the model lives under `model_dir`.
    pub fn install_path(&self, model_dir: &Path) -> PathBuf {
        let whisper = model_dir.join(WHISPER_SUBDIR);
        match self.file {
            Some(file) => whisper.join(file),
            None => whisper.join(self.name),
        }
    }

    /// Whether a file at the root of the repository belongs to this model.
    pub fn wants(&self, path: &str) -> bool {
        if path.contains('/') || path.contains('\\') {
            return false;
        }
        match self.file {
            Some(file) => path == file,
            None => CT2_FILE_PATTERNS.iter().any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix) && !path.contains(".."),
                None => path == *pattern,
            }),
        }
    }
}

const fn ct2(name: &'static str, repo: &'static str, approx_bytes: u64) -> Entry {
    Entry { name, engine: SttEngineKind::Ctranslate2, repo, file: None, licence: WHISPER_LICENCE, approx_bytes }
}

const fn ggml(name: &'static str, file: &'static str, approx_bytes: u64) -> Entry {
    Entry {
        name,
        engine: SttEngineKind::WhisperCpp,
        repo: "ggerganov/whisper.cpp",
        file: Some(file),
        licence: WHISPER_LICENCE,
        approx_bytes,
    }
}

/// Every model `pull` knows, CTranslate2 first.
pub const CATALOGUE: &[Entry] = &[
    ct2("tiny-ct2", "Systran/faster-whisper-tiny", 75 * MB),
    ct2("tiny.en-ct2", "Systran/faster-whisper-tiny.en", 75 * MB),
    ct2("base-ct2", "Systran/faster-whisper-base", 145 * MB),
    ct2("base.en-ct2", "Systran/faster-whisper-base.en", 145 * MB),
    ct2("small-ct2", "Systran/faster-whisper-small", 484 * MB),
    ct2("small.en-ct2", "Systran/faster-whisper-small.en", 484 * MB),
    ct2("medium-ct2", "Systran/faster-whisper-medium", 1_530 * MB),
    ct2("medium.en-ct2", "Systran/faster-whisper-medium.en", 1_530 * MB),
    ct2("large-v2-ct2", "Systran/faster-whisper-large-v2", 3_090 * MB),
    ct2("large-v3-ct2", "Systran/faster-whisper-large-v3", 3_090 * MB),
    ct2("large-v3-turbo-ct2", "mobiuslabsgmbh/faster-whisper-large-v3-turbo", 1_620 * MB),
    ggml("ggml-tiny", "ggml-tiny.bin", 75 * MIB),
    ggml("ggml-tiny.en", "ggml-tiny.en.bin", 75 * MIB),
    ggml("ggml-base", "ggml-base.bin", 142 * MIB),
    ggml("ggml-base.en", "ggml-base.en.bin", 142 * MIB),
    ggml("ggml-small", "ggml-small.bin", 466 * MIB),
    ggml("ggml-small.en", "ggml-small.en.bin", 466 * MIB),
    ggml("ggml-medium", "ggml-medium.bin", 1_536 * MIB),
    ggml("ggml-medium.en", "ggml-medium.en.bin", 1_536 * MIB),
    ggml("ggml-large-v2", "ggml-large-v2.bin", 2_970 * MIB),
    ggml("ggml-large-v3", "ggml-large-v3.bin", 2_970 * MIB),
    ggml("ggml-large-v3-turbo", "ggml-large-v3-turbo.bin", 1_536 * MIB),
    ggml("ggml-large-v3-turbo-q5_0", "ggml-large-v3-turbo-q5_0.bin", 547 * MIB),
];

/// Finds a catalogue entry by name; the error says what the user may have meant.
pub fn lookup(name: &str) -> Result<&'static Entry, String> {
    if let Some(entry) = CATALOGUE.iter().find(|entry| entry.name == name) {
        return Ok(entry);
    }
    // `tiny.en` names a size, not a model: offer both formats.
    let candidates: Vec<&str> = CATALOGUE
        .iter()
        .filter(|entry| entry.name == format!("{name}-ct2") || entry.name == format!("ggml-{name}"))
        .map(|entry| entry.name)
        .collect();
    if candidates.is_empty() {
        Err(format!("no model {name:?} in the catalogue; `dragoman models list` shows the names"))
    } else {
        Err(format!("no model {name:?} in the catalogue; did you mean {}?", candidates.join(" or ")))
    }
}

/// The catalogue entry installed at `path` under `model_dir`, if any.
pub fn installed_at(model_dir: &Path, path: &Path) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|entry| entry.install_path(model_dir) == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_say_their_format() {
        for (i, entry) in CATALOGUE.iter().enumerate() {
            assert!(CATALOGUE[..i].iter().all(|other| other.name != entry.name), "{} twice", entry.name);
            match entry.engine {
                SttEngineKind::Ctranslate2 => assert!(entry.name.ends_with("-ct2") && entry.file.is_none()),
                SttEngineKind::WhisperCpp => {
                    let file = entry.file.expect("ggml entries name their file");
                    assert_eq!(format!("{}.bin", entry.name), file);
                }
            }
        }
    }

    #[test]
    fn ct2_models_take_only_what_the_engine_loads() {
        let entry = lookup("tiny.en-ct2").expect("in the catalogue");
        for wanted in ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"] {
            assert!(entry.wants(wanted), "{wanted}");
        }
        for unwanted in ["README.md", ".gitattributes", "vocabulary.", "sub/model.bin", "vocabulary..json"] {
            assert!(!entry.wants(unwanted), "{unwanted}");
        }
        let ggml = lookup("ggml-tiny.en").expect("in the catalogue");
        assert!(ggml.wants("ggml-tiny.en.bin"));
        assert!(!ggml.wants("ggml-tiny.bin"));
    }

    #[test]
    fn install_paths_follow_the_stt_defaults() {
        let dir = Path::new("/models");
        assert_eq!(
            lookup("tiny.en-ct2").expect("in the catalogue").install_path(dir),
            Path::new("/models/whisper/tiny.en-ct2")
        );
        assert_eq!(
            lookup("ggml-tiny.en").expect("in the catalogue").install_path(dir),
            Path::new("/models/whisper/ggml-tiny.en.bin")
        );
    }

    #[test]
    fn a_size_without_a_format_suggests_both() {
        let err = lookup("tiny.en").expect_err("a size, not a model");
        assert!(err.contains("tiny.en-ct2") && err.contains("ggml-tiny.en"), "{err}");
        assert!(lookup("huge").expect_err("no such model").contains("models list"));
    }
}
