//! Neural translation with CTranslate2 (through ct2rs): NLLB-200, M2M100 and OPUS-MT (Marian).
//!
//! A model is a CTranslate2 conversion folder as the common hub repositories lay it out:
//! `model.bin`, `config.json`, the vocabularies (`shared_vocabulary.{json,txt}`, or
//! `source_vocabulary.*` and `target_vocabulary.*`) and SentencePiece models. The family, and
//! with it the tokenisation, is read from the folder:
//!
//! | family | SentencePiece | source tokens | target prefix | languages |
//! |---|---|---|---|---|
//! | NLLB-200 | `sentencepiece.bpe.model` | `eng_Latn ▁pieces </s>` | `spa_Latn` | FLORES-200 tokens in the vocabulary |
//! | M2M100 | `sentencepiece.bpe.model` | `__en__ ▁pieces </s>` | `__es__` | `__xx__` tokens in the vocabulary |
//! | OPUS-MT | `source.spm`, `target.spm` | `▁pieces </s>` | none | the pair in the folder name, `opus-mt-en-es` |
//!
//! The language token the decoder is forced to start with comes back as the first token of the
//! hypothesis and is dropped before decoding. Text is cleaned and split into sentences first
//! ([`crate::text`]); a sentence longer than `max_source_tokens` pieces is split again, so no
//! input is ever truncated by the model's length limit. All sentences of all texts in one call
//! go to CTranslate2 as one batch.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ct2rs::sys::{ComputeType, Config, Device, TranslationOptions, Translator};
use dragoman_bus::language::Engine;
use dragoman_bus::{Language, LanguageError};
use sentencepiece::SentencePieceProcessor;

use crate::engine::{TranslateError, TranslationEngine};
use crate::text;

/// `TranslationProduced.engine` for every model of this engine.
pub const ENGINE: &str = "ctranslate2";

const MODEL_DEVICE: Device = if cfg!(feature = "cuda") { Device::CUDA } else { Device::CPU };
const EOS: &str = "</s>";
const SHARED_SPM: &str = "sentencepiece.bpe.model";
const SOURCE_SPM: &str = "source.spm";
const TARGET_SPM: &str = "target.spm";

/// A model family: what decides how text becomes tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Nllb,
    M2m100,
    OpusMt,
}

impl Family {
    /// The language naming scheme of the family.
    pub fn naming(self) -> Engine {
        match self {
            Family::Nllb => Engine::Nllb,
            Family::M2m100 => Engine::M2m100,
            Family::OpusMt => Engine::OpusMt,
        }
    }

    /// The language token of `language` in this family's vocabulary (none for OPUS-MT).
    fn language_token(self, language: &Language) -> Result<Option<String>, LanguageError> {
        Ok(match self {
            Family::Nllb => Some(language.flores200().to_owned()),
            Family::M2m100 => Some(language.m2m100_token()?),
            Family::OpusMt => None,
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.naming().name())
    }
}

/// How models are loaded and decoded.
#[derive(Debug, Clone)]
pub struct Ct2TranslateOptions {
    /// CTranslate2 compute type (`int8` on CPU, `int8_float16` or `float16` on GPU, ...).
    pub compute_type: String,
    /// Threads per model (0: CTranslate2's default).
    pub threads: usize,
    /// 1 = greedy.
    pub beam_size: usize,
    /// Longest sentence in SentencePiece pieces given to the model at once.
    pub max_source_tokens: usize,
}

impl Default for Ct2TranslateOptions {
    fn default() -> Self {
        Self { compute_type: "int8".into(), threads: 0, beam_size: 2, max_source_tokens: 200 }
    }
}

/// Why a model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("translation model {}: {reason}", path.display())]
pub struct Ct2LoadError {
    pub path: PathBuf,
    pub reason: String,
}

/// One loaded CTranslate2 translation model.
pub struct Ct2Model {
    name: String,
    family: Family,
    translator: Translator,
    source_spm: SentencePieceProcessor,
    target_spm: SentencePieceProcessor,
    /// NLLB and M2M100: every table language with a token in the vocabulary (any pair among
    /// them). OPUS-MT: the one source and one target.
    languages: Vec<&'static Language>,
    pair: Option<(&'static Language, &'static Language)>,
    options: Ct2TranslateOptions,
}

impl fmt::Debug for Ct2Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ct2Model")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("languages", &self.languages.iter().map(|l| l.code()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Parses a CTranslate2 compute type name by the names CTranslate2 itself prints.
fn parse_compute_type(name: &str) -> Option<ComputeType> {
    [
        ComputeType::DEFAULT,
        ComputeType::AUTO,
        ComputeType::FLOAT32,
        ComputeType::INT8,
        ComputeType::INT8_FLOAT32,
        ComputeType::INT8_FLOAT16,
        ComputeType::INT8_BFLOAT16,
        ComputeType::INT16,
        ComputeType::FLOAT16,
        ComputeType::BFLOAT16,
    ]
    .into_iter()
    .find(|c| c.to_string() == name)
}

/// Reads a CTranslate2 vocabulary: a JSON list (`*_vocabulary.json`, CTranslate2 ≥ 3) or one
/// token per line (`*_vocabulary.txt`, older conversions).
fn read_vocabulary(dir: &Path, side: &str) -> Result<Option<Vec<String>>, String> {
    let json = dir.join(format!("{side}_vocabulary.json"));
    if json.is_file() {
        let bytes = std::fs::read(&json).map_err(|err| format!("read {}: {err}", json.display()))?;
        return serde_json::from_slice(&bytes).map(Some).map_err(|err| format!("{}: {err}", json.display()));
    }
    let txt = dir.join(format!("{side}_vocabulary.txt"));
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|err| format!("read {}: {err}", txt.display()))?;
        return Ok(Some(text.lines().map(str::to_owned).collect()));
    }
    Ok(None)
}

/// The OPUS-MT pair from a folder name such as `opus-mt-en-es`, `opus-mt-en-es-ct2-int8`.
fn opus_pair_from_name(name: &str) -> Option<(&'static Language, &'static Language)> {
    let rest = &name[name.find("opus-mt-")? + "opus-mt-".len()..];
    let mut parts = rest.split('-');
    let source = Language::from_engine_code(Engine::OpusMt, parts.next()?).ok()?;
    let target = Language::from_engine_code(Engine::OpusMt, parts.next()?).ok()?;
    Some((source, target))
}

impl Ct2Model {
    /// Loads a model folder and works out its family and languages.
    pub fn load(dir: &Path, options: &Ct2TranslateOptions) -> Result<Self, Ct2LoadError> {
        let error = |reason: String| Ct2LoadError { path: dir.to_owned(), reason };
        for required in ["model.bin", "config.json"] {
            if !dir.join(required).is_file() {
                return Err(error(format!("missing {required}")));
            }
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let compute_type = parse_compute_type(&options.compute_type)
            .ok_or_else(|| error(format!("unknown compute type {:?}", options.compute_type)))?;
        let target_vocabulary = match read_vocabulary(dir, "shared").map_err(&error)? {
            Some(shared) => shared,
            None => read_vocabulary(dir, "target")
                .map_err(&error)?
                .ok_or_else(|| error("no shared_vocabulary or target_vocabulary file".into()))?,
        };
        let tokens: HashSet<&str> = target_vocabulary.iter().map(String::as_str).collect();
        let open = |file: &str| {
            SentencePieceProcessor::open(dir.join(file)).map_err(|err| error(format!("sentencepiece {file}: {err}")))
        };

        let (family, source_spm, target_spm) = if dir.join(SOURCE_SPM).is_file() {
            (Family::OpusMt, open(SOURCE_SPM)?, open(TARGET_SPM)?)
        } else if dir.join(SHARED_SPM).is_file() {
            let family = if tokens.contains("eng_Latn") {
                Family::Nllb
            } else if tokens.contains("__en__") {
                Family::M2m100
            } else {
                return Err(error(format!(
                    "{SHARED_SPM} present but the vocabulary has neither NLLB (eng_Latn) nor M2M100 (__en__) language tokens"
                )));
            };
            (family, open(SHARED_SPM)?, open(SHARED_SPM)?)
        } else {
            return Err(error(format!("no SentencePiece model ({SHARED_SPM}, or {SOURCE_SPM} and {TARGET_SPM})")));
        };

        let (languages, pair) = match family {
            Family::OpusMt => {
                let (source, target) = opus_pair_from_name(&name).ok_or_else(|| {
                    error("an OPUS-MT folder is named after its pair (opus-mt-<source>-<target>)".into())
                })?;
                (vec![source, target], Some((source, target)))
            }
            _ => {
                let languages: Vec<&'static Language> = Language::all()
                    .iter()
                    .filter(|l| family.language_token(l).ok().flatten().is_some_and(|t| tokens.contains(t.as_str())))
                    .collect();
                if languages.len() < 2 {
                    return Err(error(format!("the vocabulary has fewer than two {family} languages of the table")));
                }
                (languages, None)
            }
        };

        let config = Config {
            device: MODEL_DEVICE,
            compute_type,
            num_threads_per_replica: options.threads,
            ..Config::default()
        };
        let translator = Translator::new(dir, &config).map_err(|err| error(format!("ctranslate2: {err:#}")))?;
        Ok(Self { name, family, translator, source_spm, target_spm, languages, pair, options: options.clone() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The languages of the model, in table order (OPUS-MT: source, then target).
    pub fn languages(&self) -> &[&'static Language] {
        &self.languages
    }

    pub fn supports(&self, source: &Language, target: &Language) -> bool {
        match self.pair {
            Some((s, t)) => s == source && t == target,
            None => source != target && self.languages.contains(&source) && self.languages.contains(&target),
        }
    }

    /// The source tokens for one sentence, and the target prefix.
    pub fn encode(
        &self,
        sentence: &str,
        source: &Language,
        target: &Language,
    ) -> Result<(Vec<String>, Vec<String>), TranslateError> {
        let mut tokens = Vec::new();
        if let Some(token) = self.family.language_token(source)? {
            tokens.push(token);
        }
        let pieces =
            self.source_spm.encode(sentence).map_err(|err| self.engine_error(format!("sentencepiece: {err}")))?;
        tokens.extend(pieces.into_iter().map(|p| p.piece));
        tokens.push(EOS.to_owned());
        let prefix = self.family.language_token(target)?.into_iter().collect();
        Ok((tokens, prefix))
    }

    /// Text for a hypothesis: the forced language token dropped, SentencePiece decoded.
    pub fn decode(&self, hypothesis: &[String], prefix_len: usize) -> Result<String, TranslateError> {
        let pieces = hypothesis.get(prefix_len..).unwrap_or_default();
        self.target_spm.decode_pieces(pieces).map_err(|err| self.engine_error(format!("sentencepiece: {err}")))
    }

    /// Translates sentences (each at most `max_source_tokens` pieces) in one batch, returning
    /// the raw hypotheses (language token included).
    pub fn generate(
        &self,
        sentences: &[&str],
        source: &Language,
        target: &Language,
    ) -> Result<Vec<Vec<String>>, TranslateError> {
        if sentences.is_empty() {
            return Ok(Vec::new());
        }
        let mut sources = Vec::with_capacity(sentences.len());
        let mut prefixes = Vec::with_capacity(sentences.len());
        for sentence in sentences {
            let (tokens, prefix) = self.encode(sentence, source, target)?;
            sources.push(tokens);
            prefixes.push(prefix);
        }
        let longest = sources.iter().map(Vec::len).max().unwrap_or(0);
        let options = TranslationOptions {
            beam_size: self.options.beam_size.max(1),
            // No truncation: sentences were split to fit beforehand.
            max_input_length: 0,
            // A translation rarely runs past twice its source; a looping model stops there.
            max_decoding_length: longest * 2 + 16,
            ..TranslationOptions::default()
        };
        let results = if prefixes.iter().all(Vec::is_empty) {
            self.translator.translate_batch(&sources, &options, None)
        } else {
            self.translator.translate_batch_with_target_prefix(&sources, &prefixes, &options, None)
        }
        .map_err(|err| self.engine_error(format!("ctranslate2: {err:#}")))?;
        Ok(results.into_iter().map(|r| r.hypotheses.into_iter().next().unwrap_or_default()).collect())
    }

    /// Splits a sentence until every piece fits `max_source_tokens`.
    fn fit<'a>(&self, sentence: &'a str, out: &mut Vec<&'a str>) -> Result<(), TranslateError> {
        let count =
            self.source_spm.encode(sentence).map_err(|err| self.engine_error(format!("sentencepiece: {err}")))?.len();
        let chars = sentence.chars().count();
        if count <= self.options.max_source_tokens || chars <= 1 {
            out.push(sentence);
            return Ok(());
        }
        let max_chars = (chars * self.options.max_source_tokens / count).clamp(1, chars - 1);
        for piece in text::split_long(sentence, max_chars) {
            self.fit(piece, out)?;
        }
        Ok(())
    }

    fn engine_error(&self, reason: String) -> TranslateError {
        TranslateError::Engine { engine: ENGINE.to_owned(), model: self.name.clone(), reason }
    }

    /// Translates whole texts: sentences of every text in one batch, put back together per text.
    fn translate_texts(
        &self,
        texts: &[&str],
        source: &Language,
        target: &Language,
    ) -> Vec<Result<String, TranslateError>> {
        let per_text: Vec<Vec<String>> = texts.iter().map(|t| text::pieces(t, text::MAX_PIECE_CHARS)).collect();
        let mut sentences: Vec<&str> = Vec::new();
        let mut counts = Vec::with_capacity(texts.len());
        for pieces in &per_text {
            let before = sentences.len();
            for piece in pieces {
                if let Err(err) = self.fit(piece, &mut sentences) {
                    return vec![Err(err); texts.len()];
                }
            }
            counts.push(sentences.len() - before);
        }
        let prefix_len = match self.family.language_token(target) {
            Ok(token) => usize::from(token.is_some()),
            Err(err) => return vec![Err(err.into()); texts.len()],
        };
        let hypotheses = match self.generate(&sentences, source, target) {
            Ok(hypotheses) => hypotheses,
            Err(err) => return vec![Err(err); texts.len()],
        };
        text::regroup(hypotheses.iter().map(|h| self.decode(h, prefix_len)), &counts, target)
    }
}

/// The CTranslate2 engine: every loaded model; a pair goes to the first model that has it.
#[derive(Debug)]
pub struct Ct2Translate {
    models: Vec<Ct2Model>,
}

impl Ct2Translate {
    /// Loads each model folder. Fails on the first folder that does not load: a configured
    /// model that silently went missing would be a pair silently untranslated.
    pub fn load(dirs: &[PathBuf], options: &Ct2TranslateOptions) -> Result<Self, Ct2LoadError> {
        let models = dirs.iter().map(|dir| Ct2Model::load(dir, options)).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { models })
    }

    pub fn models(&self) -> &[Ct2Model] {
        &self.models
    }

    fn model_for(&self, source: &Language, target: &Language) -> Option<&Ct2Model> {
        self.models.iter().find(|m| m.supports(source, target))
    }

    fn unsupported(&self, source: &Language, target: &Language) -> TranslateError {
        let available = self
            .models
            .iter()
            .map(|m| match m.pair {
                Some((s, t)) => format!("{}: {}-{}", m.name, s.code(), t.code()),
                None => format!(
                    "{}: any pair of {}",
                    m.name,
                    m.languages.iter().map(|l| l.code()).collect::<Vec<_>>().join(",")
                ),
            })
            .collect::<Vec<_>>()
            .join("; ");
        TranslateError::UnsupportedPair {
            engine: ENGINE.to_owned(),
            source_code: source.code(),
            target_code: target.code(),
            available,
        }
    }
}

impl TranslationEngine for Ct2Translate {
    fn name(&self) -> &str {
        ENGINE
    }

    fn model(&self, source: &Language, target: &Language) -> String {
        self.model_for(source, target).map(|m| m.name.clone()).unwrap_or_default()
    }

    fn supports(&self, source: &Language, target: &Language) -> bool {
        self.model_for(source, target).is_some()
    }

    fn translate_batch(
        &self,
        texts: &[&str],
        source: &Language,
        target: &Language,
    ) -> Vec<Result<String, TranslateError>> {
        match self.model_for(source, target) {
            Some(model) => model.translate_texts(texts, source, target),
            None => vec![Err(self.unsupported(source, target)); texts.len()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_pairs_come_from_folder_names() {
        let (s, t) = opus_pair_from_name("opus-mt-en-es").expect("pair");
        assert_eq!((s.code(), t.code()), ("en", "es"));
        let (s, t) = opus_pair_from_name("gaudi--opus-mt-de-en-ctranslate2").expect("pair");
        assert_eq!((s.code(), t.code()), ("de", "en"));
        assert!(opus_pair_from_name("opus-mt-en").is_none());
        assert!(opus_pair_from_name("opus-mt-en-xx").is_none());
        assert!(opus_pair_from_name("nllb-200").is_none());
    }

    #[test]
    fn compute_types_parse_by_ctranslate2_names() {
        assert_eq!(parse_compute_type("int8"), Some(ComputeType::INT8));
        assert_eq!(parse_compute_type("int8_float16"), Some(ComputeType::INT8_FLOAT16));
        assert_eq!(parse_compute_type("float32"), Some(ComputeType::FLOAT32));
        assert_eq!(parse_compute_type("int4"), None);
    }
}
