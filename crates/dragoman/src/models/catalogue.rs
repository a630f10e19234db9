//! The models `dragoman models pull` knows: Whisper for the STT worker (CTranslate2 folders from
//! the repositories faster-whisper itself downloads from, and whisper.cpp's ggml files) and
//! CTranslate2 translation models for the MT worker (NLLB-200, M2M100, OPUS-MT). Every entry is
//! a real repository on the Hugging Face hub; nothing here is a placeholder.
//!
//! Nobody here can reach the hub, so the translation repositories were chosen from what others
//! publish and use: each entry says where its file list was seen. The hub pages quoted are its
//! "Files and versions" listings (`huggingface.co/<repo>/tree/<commit>`).

use std::path::{Path, PathBuf};

use dragoman_mt_worker::ct2::Family;
use dragoman_runtime::config::SttEngineKind;
use serde::{Deserialize, Serialize};

/// Files a CTranslate2 Whisper folder needs, as faster-whisper's own `download_model` selects
/// them (`vocabulary.*` is `vocabulary.txt` or `vocabulary.json`; large-v3 also ships its
/// 128-bin `preprocessor_config.json`). Everything else in those repositories (README.md,
/// .gitattributes) is left on the hub.
pub const CT2_FILE_PATTERNS: [&str; 5] =
    ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"];

/// Files a CTranslate2 translation folder is loaded from (`Ct2Model::load` of the MT worker):
/// the model, its vocabularies and its SentencePiece models. The hub repositories also carry
/// Hugging Face tokenizer files (`tokenizer.json`, 17 MB for NLLB), which the worker does not
/// read and which stay on the hub.
pub const MT_FILE_PATTERNS: [&str; 8] = [
    "config.json",
    "model.bin",
    "shared_vocabulary.*",
    "source_vocabulary.*",
    "target_vocabulary.*",
    "sentencepiece.bpe.model",
    "source.spm",
    "target.spm",
];

/// Where Whisper models are installed, under the model directory (the STT worker's defaults).
pub const WHISPER_SUBDIR: &str = "whisper";
/// Where translation models are installed, under the model directory: `mt.models` names
/// folders there.
pub const MT_SUBDIR: &str = "mt";

/// OpenAI released the Whisper weights under MIT; the CTranslate2 and ggml conversions keep it.
const WHISPER_LICENCE: &str = "MIT";
/// Meta's NLLB-200 weights (the model cards of `facebook/nllb-200-*`).
const NLLB_LICENCE: &str = "CC-BY-NC-4.0";
/// Meta's M2M100 weights (`facebook/m2m100_418M`); jncraton's conversion is tagged MIT too.
const M2M100_LICENCE: &str = "MIT";
/// Helsinki-NLP's OPUS-MT models (`Helsinki-NLP/opus-mt-*` model cards). gaudi's conversions
/// are tagged apache-2.0 on the hub, but a conversion cannot change the weights' licence.
const OPUS_MT_LICENCE: &str = "CC-BY-4.0";

const MB: u64 = 1_000_000;
const MIB: u64 = 1 << 20;

/// A family of translation models: what decides the tokenisation and language naming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranslationFamily {
    Nllb,
    M2m100,
    OpusMt,
}

impl TranslationFamily {
    pub fn label(self) -> &'static str {
        match self {
            TranslationFamily::Nllb => "NLLB-200",
            TranslationFamily::M2m100 => "M2M100",
            TranslationFamily::OpusMt => "OPUS-MT",
        }
    }
}

impl From<Family> for TranslationFamily {
    fn from(family: Family) -> Self {
        match family {
            Family::Nllb => TranslationFamily::Nllb,
            Family::M2m100 => TranslationFamily::M2m100,
            Family::OpusMt => TranslationFamily::OpusMt,
        }
    }
}

/// What a model is for, and so how it is laid out, installed and loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Whisper for the STT worker, in one of its engines' formats, under `whisper/`.
    Speech(SttEngineKind),
    /// A CTranslate2 translation model for the MT worker, a folder under `mt/`.
    Translation(TranslationFamily),
}

impl ModelKind {
    /// For people: `CTranslate2` and `whisper.cpp` (the Whisper formats), or the family.
    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Speech(SttEngineKind::Ctranslate2) => "CTranslate2",
            ModelKind::Speech(SttEngineKind::WhisperCpp) => "whisper.cpp",
            ModelKind::Translation(family) => family.label(),
        }
    }

    /// The folder under the model directory models of this kind are installed in.
    pub fn subdir(self) -> &'static str {
        match self {
            ModelKind::Speech(_) => WHISPER_SUBDIR,
            ModelKind::Translation(_) => MT_SUBDIR,
        }
    }

    /// A whisper.cpp model is one file; every other model is a folder.
    pub fn is_file(self) -> bool {
        self == ModelKind::Speech(SttEngineKind::WhisperCpp)
    }

    /// Whether a model of kind `other` at the same place is the same model: the Whisper format
    /// must match; a translation model is one whatever family its files turn out to be (verify
    /// then says when that is not the family its catalogue entry names).
    pub fn same_format(self, other: ModelKind) -> bool {
        match (self, other) {
            (ModelKind::Speech(a), ModelKind::Speech(b)) => a == b,
            (ModelKind::Translation(_), ModelKind::Translation(_)) => true,
            _ => false,
        }
    }

    /// What the model's folder must hold for its engine to load it (nothing for a ggml file,
    /// which is its own single file).
    pub fn requirements(self) -> &'static [Requirement] {
        match self {
            ModelKind::Speech(SttEngineKind::Ctranslate2) => &WHISPER_CT2_REQUIRED,
            ModelKind::Speech(SttEngineKind::WhisperCpp) => &[],
            ModelKind::Translation(TranslationFamily::Nllb | TranslationFamily::M2m100) => &SHARED_SPM_REQUIRED,
            ModelKind::Translation(TranslationFamily::OpusMt) => &OPUS_MT_REQUIRED,
        }
    }

    /// The requirements `has` (is this file there?) does not meet.
    pub fn missing(self, has: impl Fn(&str) -> bool) -> Vec<&'static Requirement> {
        self.requirements().iter().filter(|requirement| !requirement.met(&has)).collect()
    }
}

/// One thing a model folder needs: any one of `any_of`, each a set of files that must all be
/// there (`shared_vocabulary.json`, or `source_vocabulary.json` and `target_vocabulary.json`).
#[derive(Debug, PartialEq, Eq)]
pub struct Requirement {
    pub any_of: &'static [&'static [&'static str]],
}

impl Requirement {
    pub fn met(&self, has: impl Fn(&str) -> bool) -> bool {
        self.any_of.iter().any(|files| files.iter().all(|file| has(file)))
    }

    /// The one file this requirement is, when it is one.
    pub fn single(&self) -> Option<&'static str> {
        match self.any_of {
            [[file]] => Some(file),
            _ => None,
        }
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let alternatives: Vec<String> = self.any_of.iter().map(|files| files.join(" and ")).collect();
        f.write_str(&alternatives.join(" or "))
    }
}

/// `Ct2Whisper::load` of the STT worker checks the same ones.
static WHISPER_CT2_REQUIRED: [Requirement; 3] = [
    Requirement { any_of: &[&["model.bin"]] },
    Requirement { any_of: &[&["config.json"]] },
    Requirement { any_of: &[&["tokenizer.json"]] },
];
/// NLLB-200 and M2M100: one SentencePiece model and one vocabulary for both sides.
static SHARED_SPM_REQUIRED: [Requirement; 4] = [
    Requirement { any_of: &[&["model.bin"]] },
    Requirement { any_of: &[&["config.json"]] },
    Requirement { any_of: &[&["sentencepiece.bpe.model"]] },
    Requirement { any_of: &[&["shared_vocabulary.json"], &["shared_vocabulary.txt"]] },
];
/// OPUS-MT (Marian): a SentencePiece model per side, and a shared vocabulary or one per side.
static OPUS_MT_REQUIRED: [Requirement; 5] = [
    Requirement { any_of: &[&["model.bin"]] },
    Requirement { any_of: &[&["config.json"]] },
    Requirement { any_of: &[&["source.spm"]] },
    Requirement { any_of: &[&["target.spm"]] },
    Requirement {
        any_of: &[
            &["shared_vocabulary.json"],
            &["shared_vocabulary.txt"],
            &["source_vocabulary.json", "target_vocabulary.json"],
            &["source_vocabulary.txt", "target_vocabulary.txt"],
        ],
    },
];

/// One model that can be pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// What the user types, and the name it is installed under: `tiny.en-ct2` is the folder
    /// `whisper/tiny.en-ct2/`, `ggml-tiny.en` the file `whisper/ggml-tiny.en.bin`,
    /// `nllb-200-distilled-600M-int8` the folder `mt/nllb-200-distilled-600M-int8/` (the name
    /// `mt.models` lists).
    pub name: &'static str,
    pub kind: ModelKind,
    /// The hub repository (`owner/name`).
    pub repo: &'static str,
    /// For a ggml model, the one file taken from the repository; a folder model takes the
    /// files matching [`CT2_FILE_PATTERNS`] or [`MT_FILE_PATTERNS`].
    pub file: Option<&'static str>,
    pub licence: &'static str,
    /// Approximate download size: for ggml files the sizes whisper.cpp's `models/README.md`
    /// lists, for folders what the hub's listing shows for the files taken, rounded. The hub's
    /// own sizes are what `pull` checks against.
    pub approx_bytes: u64,
}

impl Entry {
    /// Where the model lives under `model_dir`.
    pub fn install_path(&self, model_dir: &Path) -> PathBuf {
        let dir = model_dir.join(self.kind.subdir());
        match self.file {
            Some(file) => dir.join(file),
            None => dir.join(self.name),
        }
    }

    /// Whether a file at the root of the repository belongs to this model.
    pub fn wants(&self, path: &str) -> bool {
        if path.contains('/') || path.contains('\\') {
            return false;
        }
        let patterns: &[&str] = match (self.file, self.kind) {
            (Some(file), _) => return path == file,
            (None, ModelKind::Translation(_)) => &MT_FILE_PATTERNS,
            (None, ModelKind::Speech(_)) => &CT2_FILE_PATTERNS,
        };
        patterns.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => path.len() > prefix.len() && path.starts_with(prefix) && !path.contains(".."),
            None => path == *pattern,
        })
    }
}

const fn ct2(name: &'static str, repo: &'static str, approx_bytes: u64) -> Entry {
    Entry {
        name,
        kind: ModelKind::Speech(SttEngineKind::Ctranslate2),
        repo,
        file: None,
        licence: WHISPER_LICENCE,
        approx_bytes,
    }
}

const fn ggml(name: &'static str, file: &'static str, approx_bytes: u64) -> Entry {
    Entry {
        name,
        kind: ModelKind::Speech(SttEngineKind::WhisperCpp),
        repo: "ggerganov/whisper.cpp",
        file: Some(file),
        licence: WHISPER_LICENCE,
        approx_bytes,
    }
}

const fn mt(
    name: &'static str,
    family: TranslationFamily,
    repo: &'static str,
    licence: &'static str,
    approx_bytes: u64,
) -> Entry {
    Entry { name, kind: ModelKind::Translation(family), repo, file: None, licence, approx_bytes }
}

/// An OPUS-MT pair converted by gaudi, installed as `opus-mt-<source>-<target>`: the MT worker
/// reads the pair from that folder name.
const fn opus(name: &'static str, repo: &'static str, approx_bytes: u64) -> Entry {
    mt(name, TranslationFamily::OpusMt, repo, OPUS_MT_LICENCE, approx_bytes)
}

/// Every model `pull` knows: Whisper (CTranslate2, then ggml), then translation models.
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
    // huggingface.co/JustFrederik/nllb-200-distilled-600M-ct2-int8/tree/f84941b: config.json,
    // model.bin (623 MB, LFS), sentencepiece.bpe.model (4.85 MB, LFS), shared_vocabulary.txt
    // (2.57 MB), and HF tokenizer files. The most used NLLB conversion in public code (speech
    // translators, subtitle tools); some of them also download sentencepiece.bpe.model from it.
    mt(
        "nllb-200-distilled-600M-int8",
        TranslationFamily::Nllb,
        "JustFrederik/nllb-200-distilled-600M-ct2-int8",
        NLLB_LICENCE,
        630 * MB,
    ),
    // huggingface.co/JustFrederik/nllb-200-distilled-1.3B-ct2-int8/tree/934060f: the same files,
    // model.bin 1.38 GB. Not OpenNMT/nllb-200-distilled-1.3B-ct2-int8, which more projects
    // name: its listing (tree/70f572a) has no sentencepiece.bpe.model, only tokenizer.json,
    // and the MT worker tokenises with SentencePiece.
    mt(
        "nllb-200-distilled-1.3B-int8",
        TranslationFamily::Nllb,
        "JustFrederik/nllb-200-distilled-1.3B-ct2-int8",
        NLLB_LICENCE,
        1_390 * MB,
    ),
    // huggingface.co/jncraton/m2m100_418M-ct2-int8/tree/main (commit 7c1b262): config.json,
    // model.bin (491 MB, LFS), sentencepiece.bpe.model (2.42 MB, LFS), shared_vocabulary.json
    // (2.8 MB); used by VRChat translators and desktop tools that pin its model.bin checksum.
    // (jncraton/m2m100_1.2B-ct2-int8 has no sentencepiece.bpe.model, so it is not here.)
    mt("m2m100-418M-int8", TranslationFamily::M2m100, "jncraton/m2m100_418M-ct2-int8", M2M100_LICENCE, 497 * MB),
    // gaudi converted every Helsinki-NLP/opus-mt-* model with one script, float16, with the
    // same files: config.json, model.bin, shared_vocabulary.json, source.spm, target.spm.
    // huggingface.co/gaudi/opus-mt-en-es-ctranslate2/tree/e705cd3 lists them (model.bin
    // 156 MB); the other pairs are named with those five files by subtitle translators, mobile
    // apps and podcast tools in public code. Sizes of those are approximate.
    opus("opus-mt-en-es", "gaudi/opus-mt-en-es-ctranslate2", 159 * MB),
    opus("opus-mt-es-en", "gaudi/opus-mt-es-en-ctranslate2", 150 * MB),
    opus("opus-mt-en-fr", "gaudi/opus-mt-en-fr-ctranslate2", 150 * MB),
    opus("opus-mt-fr-en", "gaudi/opus-mt-fr-en-ctranslate2", 150 * MB),
    opus("opus-mt-en-de", "gaudi/opus-mt-en-de-ctranslate2", 150 * MB),
    opus("opus-mt-de-en", "gaudi/opus-mt-de-en-ctranslate2", 150 * MB),
];

/// How users make an OPUS-MT model the catalogue does not have.
pub const OPUS_MT_CONVERT_HINT: &str = "pip install ctranslate2 transformers sentencepiece torch, then \
    ct2-transformers-converter --model Helsinki-NLP/opus-mt-SRC-TGT --output_dir <model dir>/mt/opus-mt-SRC-TGT \
    --copy_files source.spm target.spm (docs/TRANSLATION.md)";

/// Finds a catalogue entry by name; the error says what the user may have meant.
pub fn lookup(name: &str) -> Result<&'static Entry, String> {
    if let Some(entry) = CATALOGUE.iter().find(|entry| entry.name == name) {
        return Ok(entry);
    }
    // `tiny.en` names a size, not a model: offer both formats. `nllb` or `opus-mt-en` names a
    // family or the start of a name: offer its models.
    let candidates: Vec<&str> = CATALOGUE
        .iter()
        .filter(|entry| match entry.kind {
            ModelKind::Speech(_) => entry.name == format!("{name}-ct2") || entry.name == format!("ggml-{name}"),
            ModelKind::Translation(_) => name.len() >= 3 && entry.name.starts_with(name),
        })
        .map(|entry| entry.name)
        .collect();
    if !candidates.is_empty() {
        return Err(format!("no model {name:?} in the catalogue; did you mean {}?", candidates.join(" or ")));
    }
    if name.starts_with("opus-mt-") {
        return Err(format!(
            "no model {name:?} in the catalogue, which has a few common OPUS-MT pairs; to convert another: {OPUS_MT_CONVERT_HINT}"
        ));
    }
    Err(format!("no model {name:?} in the catalogue; `dragoman models list` shows the names"))
}

/// The catalogue entry installed at `path` under `model_dir`, if any.
pub fn installed_at(model_dir: &Path, path: &Path) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|entry| entry.install_path(model_dir) == path)
}

#[cfg(test)]
mod tests {
    use dragoman_bus::Language;
    use dragoman_bus::language::Engine;

    use super::*;

    #[test]
    fn names_are_unique_and_say_their_format() {
        for (i, entry) in CATALOGUE.iter().enumerate() {
            assert!(CATALOGUE[..i].iter().all(|other| other.name != entry.name), "{} twice", entry.name);
            match entry.kind {
                ModelKind::Speech(SttEngineKind::Ctranslate2) => {
                    assert!(entry.name.ends_with("-ct2") && entry.file.is_none())
                }
                ModelKind::Speech(SttEngineKind::WhisperCpp) => {
                    let file = entry.file.expect("ggml entries name their file");
                    assert_eq!(format!("{}.bin", entry.name), file);
                }
                ModelKind::Translation(_) => assert!(entry.file.is_none(), "{}", entry.name),
            }
        }
    }

    #[test]
    fn translation_names_are_what_the_mt_worker_loads() {
        for entry in CATALOGUE {
            match entry.kind {
                ModelKind::Translation(TranslationFamily::OpusMt) => {
                    // The worker reads the pair from the folder name, `opus-mt-<source>-<target>`.
                    let pair = entry.name.strip_prefix("opus-mt-").expect("named after the pair");
                    let (source, target) = pair.split_once('-').expect("a pair");
                    for code in [source, target] {
                        assert!(Language::from_engine_code(Engine::OpusMt, code).is_ok(), "{}", entry.name);
                    }
                    assert!(entry.repo.contains(&format!("opus-mt-{pair}")), "{}", entry.repo);
                    assert_eq!(entry.licence, "CC-BY-4.0");
                }
                ModelKind::Translation(TranslationFamily::Nllb) => {
                    assert!(entry.name.starts_with("nllb-200-"));
                    assert_eq!(entry.licence, "CC-BY-NC-4.0", "NLLB-200 weights are non-commercial");
                }
                ModelKind::Translation(TranslationFamily::M2m100) => {
                    assert!(entry.name.starts_with("m2m100-"));
                    assert_eq!(entry.licence, "MIT");
                }
                ModelKind::Speech(_) => {}
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
    fn translation_models_take_the_vocabularies_and_sentencepiece_not_the_hf_tokenizer() {
        let nllb = lookup("nllb-200-distilled-600M-int8").expect("in the catalogue");
        for wanted in
            ["model.bin", "config.json", "shared_vocabulary.txt", "shared_vocabulary.json", "sentencepiece.bpe.model"]
        {
            assert!(nllb.wants(wanted), "{wanted}");
        }
        let opus = lookup("opus-mt-en-es").expect("in the catalogue");
        for wanted in ["source.spm", "target.spm", "source_vocabulary.json", "target_vocabulary.txt"] {
            assert!(opus.wants(wanted), "{wanted}");
        }
        for unwanted in [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.json",
            "generation_config.json",
        ] {
            assert!(!nllb.wants(unwanted) && !opus.wants(unwanted), "{unwanted}");
        }
    }

    #[test]
    fn requirements_follow_the_family() {
        let has = |files: &'static [&'static str]| move |name: &str| files.contains(&name);
        let nllb = ModelKind::Translation(TranslationFamily::Nllb);
        let complete = has(&["model.bin", "config.json", "sentencepiece.bpe.model", "shared_vocabulary.txt"]);
        assert!(nllb.missing(complete).is_empty());
        let missing = nllb.missing(has(&["model.bin", "config.json", "tokenizer.json"]));
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert_eq!(missing, ["sentencepiece.bpe.model", "shared_vocabulary.json or shared_vocabulary.txt"]);

        let opus = ModelKind::Translation(TranslationFamily::OpusMt);
        let split = has(&[
            "model.bin",
            "config.json",
            "source.spm",
            "target.spm",
            "source_vocabulary.json",
            "target_vocabulary.json",
        ]);
        assert!(opus.missing(split).is_empty());
        let half =
            opus.missing(has(&["model.bin", "config.json", "source.spm", "target.spm", "source_vocabulary.json"]));
        assert_eq!(half.len(), 1);
        assert!(half[0].to_string().contains("source_vocabulary.json and target_vocabulary.json"), "{}", half[0]);

        let whisper = ModelKind::Speech(SttEngineKind::Ctranslate2).missing(has(&["model.bin", "config.json"]));
        assert_eq!(whisper.iter().map(|r| r.single()).collect::<Vec<_>>(), [Some("tokenizer.json")]);
    }

    #[test]
    fn install_paths_follow_the_worker_defaults() {
        let dir = Path::new("/models");
        let path = |name: &str| lookup(name).expect("in the catalogue").install_path(dir);
        assert_eq!(path("tiny.en-ct2"), Path::new("/models/whisper/tiny.en-ct2"));
        assert_eq!(path("ggml-tiny.en"), Path::new("/models/whisper/ggml-tiny.en.bin"));
        assert_eq!(path("nllb-200-distilled-600M-int8"), Path::new("/models/mt/nllb-200-distilled-600M-int8"));
        assert_eq!(path("opus-mt-en-es"), Path::new("/models/mt/opus-mt-en-es"));
    }

    #[test]
    fn a_size_without_a_format_suggests_both() {
        let err = lookup("tiny.en").expect_err("a size, not a model");
        assert!(err.contains("tiny.en-ct2") && err.contains("ggml-tiny.en"), "{err}");
        assert!(lookup("huge").expect_err("no such model").contains("models list"));
    }

    #[test]
    fn a_family_suggests_its_models_and_an_unknown_opus_pair_says_how_to_convert_it() {
        let err = lookup("nllb").expect_err("a family, not a model");
        assert!(err.contains("nllb-200-distilled-600M-int8 or nllb-200-distilled-1.3B-int8"), "{err}");
        let err = lookup("opus-mt-en").expect_err("the start of a name");
        assert!(err.contains("opus-mt-en-es") && err.contains("opus-mt-en-de"), "{err}");
        let err = lookup("opus-mt-en-it").expect_err("not in the catalogue");
        assert!(err.contains("ct2-transformers-converter --model Helsinki-NLP/opus-mt-SRC-TGT"), "{err}");
    }
}
