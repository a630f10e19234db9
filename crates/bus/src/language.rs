//! The one language table: every language Dragoman transcribes and translates, and what each
//! engine calls it.
//!
//! The API, the events and the configuration speak BCP 47 tags (`"es"`, `"en-US"`, `"pt-BR"`);
//! each engine has its own names for the same languages, and a mismatch between them is silent
//! garbage (a Norwegian transcript sent to NLLB as `no` instead of `nob_Latn`, Chinese asked for
//! as `zh` where the model wants `__zh__`). So every conversion goes through this table, and an
//! unknown tag or an engine without the language is an error that names what is supported.
//!
//! | Column | Example | Used by |
//! |---|---|---|
//! | [`Language::code`] | `nb` | the API, events and configuration (BCP 47 primary subtag) |
//! | [`Language::whisper`] | `no` | Whisper's language token (`<\|no\|>`) and `LanguageDetected` |
//! | [`Language::flores200`] | `nob_Latn` | NLLB-200 (FLORES-200: ISO 639-3 + ISO 15924 script) |
//! | [`Language::m2m100`] | `no` (token `__no__`) | M2M100 |
//! | [`Language::opus_mt`] | `no` | OPUS-MT model names, `Helsinki-NLP/opus-mt-{src}-{tgt}` |
//! | [`Language::apertium`] | `nob` | Apertium pair names, `eng-spa` (ISO 639-3) |
//!
//! The rows are common languages that Whisper transcribes and NLLB-200 translates (not every
//! language the two share: a row is added once each of its codes is checked); M2M100, OPUS-MT
//! and Apertium lack some of them (`None` in the table, [`LanguageError::Unsupported`] from the
//! lookup). Where an engine uses a macrolanguage code that does not name one written standard
//! unambiguously (Apertium's `hbs` for Serbo-Croatian), the column is `None` rather than a guess.
//! The OPUS-MT column gives the code used in model names; which pairs exist on the hub is for the
//! model catalogue to say.

use std::fmt;

/// One row of the language table. Every value is `'static`: use `&'static Language`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Language {
    code: &'static str,
    name: &'static str,
    script: &'static str,
    whisper: &'static str,
    flores200: &'static str,
    m2m100: Option<&'static str>,
    opus_mt: Option<&'static str>,
    apertium: Option<&'static str>,
}

/// An engine, or a naming scheme, that names languages its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Whisper,
    /// NLLB-200, with FLORES-200 codes.
    Nllb,
    M2m100,
    OpusMt,
    Apertium,
}

impl Engine {
    pub const ALL: [Engine; 5] = [Engine::Whisper, Engine::Nllb, Engine::M2m100, Engine::OpusMt, Engine::Apertium];

    /// The name used in errors, logs and `TranslationProduced.engine`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Whisper => "whisper",
            Engine::Nllb => "nllb-200",
            Engine::M2m100 => "m2m100",
            Engine::OpusMt => "opus-mt",
            Engine::Apertium => "apertium",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A language tag that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    /// Not a language tag at all (empty, wrong characters, a subtag of the wrong shape).
    #[error(
        "{tag:?} is not a BCP 47 language tag such as \"en\", \"es\" or \"pt-BR\"; supported: {}",
        supported_codes()
    )]
    Malformed { tag: String },
    /// A well-formed tag for a language (or script) the table does not have.
    #[error("language {tag:?} is not supported{}; supported: {}", reason_suffix(.reason), supported_codes())]
    UnknownLanguage { tag: String, reason: Option<&'static str> },
    /// The language is in the table, but this engine does not have it.
    #[error("{engine} does not support {name} ({code})")]
    Unsupported { engine: Engine, code: &'static str, name: &'static str },
    /// An engine's code that no row of the table carries.
    #[error("{engine} language code {value:?} is not in the language table")]
    UnknownEngineCode { engine: Engine, value: String },
}

fn reason_suffix(reason: &Option<&'static str>) -> String {
    reason.map(|r| format!(" ({r})")).unwrap_or_default()
}

/// Every supported BCP 47 code, comma-separated, for error messages.
pub fn supported_codes() -> String {
    LANGUAGES.iter().map(|l| l.code).collect::<Vec<_>>().join(", ")
}

/// Old or alternative primary subtags and the row they mean.
const ALIASES: &[(&str, &str)] = &[
    // Norwegian: Whisper, M2M100 and OPUS-MT say `no`; written Norwegian is almost always Bokmål.
    ("no", "nb"),
    // Deprecated ISO 639-1 codes still sent by Java and Android locales.
    ("iw", "he"),
    ("in", "id"),
    // Filipino, the standard form of Tagalog.
    ("fil", "tl"),
];

impl Language {
    /// Parses a BCP 47 tag: `en`, `EN`, `en-US`, `pt-BR`, `zh-Hans-CN`, `nb-NO`; `_` is accepted
    /// for `-` (`pt_BR`, as POSIX locales write it). The primary language must be in the table;
    /// a region is accepted and dropped; a script must be the row's own (`sr-Latn` and `zh-Hant`
    /// are refused: the engines write Serbian in Cyrillic and Chinese in simplified characters).
    pub fn parse(tag: &str) -> Result<&'static Language, LanguageError> {
        let malformed = || LanguageError::Malformed { tag: tag.to_owned() };
        let trimmed = tag.trim();
        if trimmed.is_empty() {
            return Err(malformed());
        }
        let mut subtags = trimmed.split(['-', '_']);
        let primary = subtags.next().unwrap_or_default();
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed());
        }
        let primary = primary.to_ascii_lowercase();
        let code = ALIASES.iter().find(|(alias, _)| *alias == primary).map_or(primary.as_str(), |(_, code)| code);
        let unknown = |reason| LanguageError::UnknownLanguage { tag: tag.to_owned(), reason };
        let language = LANGUAGES.iter().find(|l| l.code == code).ok_or_else(|| unknown(None))?;

        let mut position = 0;
        for subtag in subtags {
            position += 1;
            if subtag.is_empty() || subtag.len() > 8 || !subtag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(malformed());
            }
            // Only the subtags right after the language may be a script or a region; later ones
            // are variants and extensions, which change nothing here.
            if position > 2 {
                continue;
            }
            let is_script = subtag.len() == 4 && subtag.bytes().all(|b| b.is_ascii_alphabetic());
            let is_region = (subtag.len() == 2 && subtag.bytes().all(|b| b.is_ascii_alphabetic()))
                || (subtag.len() == 3 && subtag.bytes().all(|b| b.is_ascii_digit()));
            if is_script && position == 1 {
                if !subtag.eq_ignore_ascii_case(language.script) {
                    return Err(unknown(Some("only the script of the language table is supported")));
                }
            } else if is_region {
                // zh-TW, zh-HK and zh-MO mean traditional characters (CLDR likely subtags).
                let traditional = ["TW", "HK", "MO"].iter().any(|r| subtag.eq_ignore_ascii_case(r));
                if language.code == "zh" && traditional {
                    return Err(unknown(Some("traditional Chinese is not supported")));
                }
            }
        }
        Ok(language)
    }

    /// The row for an engine's own code: Whisper's `no` is Norwegian Bokmål, NLLB's
    /// `heb_Hebr` Hebrew. Apertium pairs also use two-letter codes in their older names
    /// (`en-es`), which are accepted for rows that have an Apertium code.
    pub fn from_engine_code(engine: Engine, value: &str) -> Result<&'static Language, LanguageError> {
        LANGUAGES
            .iter()
            .find(|l| match engine {
                Engine::Apertium => l.apertium.is_some_and(|a| a == value || l.code == value),
                _ => l.engine_code(engine).is_ok_and(|c| c == value),
            })
            .ok_or_else(|| LanguageError::UnknownEngineCode { engine, value: value.to_owned() })
    }

    /// This language's name for `engine`, or [`LanguageError::Unsupported`].
    pub fn engine_code(&self, engine: Engine) -> Result<&'static str, LanguageError> {
        let code = match engine {
            Engine::Whisper => Some(self.whisper),
            Engine::Nllb => Some(self.flores200),
            Engine::M2m100 => self.m2m100,
            Engine::OpusMt => self.opus_mt,
            Engine::Apertium => self.apertium,
        };
        code.ok_or(LanguageError::Unsupported { engine, code: self.code, name: self.name })
    }

    /// The BCP 47 code used in the API and in events (`en`, `nb`, `zh`).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The English name (`Norwegian Bokmål`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The ISO 15924 script the engines write this language in (`Latn`, `Cyrl`, `Hans`).
    pub fn script(&self) -> &'static str {
        self.script
    }

    /// Whisper's code (`no` for Norwegian, `zh` for Chinese). Every row has one.
    pub fn whisper(&self) -> &'static str {
        self.whisper
    }

    /// NLLB-200's FLORES-200 code (`eng_Latn`, `zho_Hans`). Every row has one.
    pub fn flores200(&self) -> &'static str {
        self.flores200
    }

    /// M2M100's code (`en`); its token is [`Language::m2m100_token`].
    pub fn m2m100(&self) -> Result<&'static str, LanguageError> {
        self.engine_code(Engine::M2m100)
    }

    /// M2M100's language token, forced as the first target token and put before the source.
    pub fn m2m100_token(&self) -> Result<String, LanguageError> {
        self.m2m100().map(|code| format!("__{code}__"))
    }

    /// The code in OPUS-MT model names.
    pub fn opus_mt(&self) -> Result<&'static str, LanguageError> {
        self.engine_code(Engine::OpusMt)
    }

    /// Apertium's ISO 639-3 code (`eng`, `spa`, `cat`).
    pub fn apertium(&self) -> Result<&'static str, LanguageError> {
        self.engine_code(Engine::Apertium)
    }

    /// Every language in the table.
    pub fn all() -> &'static [Language] {
        LANGUAGES
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.code)
    }
}

/// The conventional OPUS-MT model name for a pair, `Helsinki-NLP/opus-mt-en-es`. Not every pair
/// exists on the hub.
pub fn opus_mt_model(source: &Language, target: &Language) -> Result<String, LanguageError> {
    Ok(format!("Helsinki-NLP/opus-mt-{}-{}", source.opus_mt()?, target.opus_mt()?))
}

/// The Apertium pair (mode) name, `eng-spa`.
pub fn apertium_pair(source: &Language, target: &Language) -> Result<String, LanguageError> {
    Ok(format!("{}-{}", source.apertium()?, target.apertium()?))
}

macro_rules! languages {
    ($( $code:literal $name:literal $script:literal
        whisper $whisper:literal nllb $flores:literal m2m100 $m2m:tt opus $opus:tt apertium $apertium:tt; )*) => {
        &[$(Language {
            code: $code,
            name: $name,
            script: $script,
            whisper: $whisper,
            flores200: $flores,
            m2m100: languages!(@opt $m2m),
            opus_mt: languages!(@opt $opus),
            apertium: languages!(@opt $apertium),
        },)*]
    };
    (@opt -) => { None };
    (@opt $value:literal) => { Some($value) };
}

/// The table, sorted by code. Sources: Whisper's `tokenizer.LANGUAGES`, NLLB-200's
/// `FAIRSEQ_LANGUAGE_CODES` (FLORES-200), M2M100's 100 languages, OPUS-MT model names, and
/// Apertium's pair names (Debian's `apertium-*` packages). `-` is "this engine does not have it".
static LANGUAGES: &[Language] = languages! {
    "af" "Afrikaans" "Latn"        whisper "af" nllb "afr_Latn" m2m100 "af" opus "af" apertium "afr";
    "ar" "Arabic" "Arab"           whisper "ar" nllb "arb_Arab" m2m100 "ar" opus "ar" apertium -;
    "az" "Azerbaijani" "Latn"      whisper "az" nllb "azj_Latn" m2m100 "az" opus "az" apertium -;
    "be" "Belarusian" "Cyrl"       whisper "be" nllb "bel_Cyrl" m2m100 "be" opus "be" apertium "bel";
    "bg" "Bulgarian" "Cyrl"        whisper "bg" nllb "bul_Cyrl" m2m100 "bg" opus "bg" apertium "bul";
    "bn" "Bengali" "Beng"          whisper "bn" nllb "ben_Beng" m2m100 "bn" opus "bn" apertium "ben";
    "bs" "Bosnian" "Latn"          whisper "bs" nllb "bos_Latn" m2m100 "bs" opus "bs" apertium -;
    "ca" "Catalan" "Latn"          whisper "ca" nllb "cat_Latn" m2m100 "ca" opus "ca" apertium "cat";
    "cs" "Czech" "Latn"            whisper "cs" nllb "ces_Latn" m2m100 "cs" opus "cs" apertium "ces";
    "cy" "Welsh" "Latn"            whisper "cy" nllb "cym_Latn" m2m100 "cy" opus "cy" apertium "cym";
    "da" "Danish" "Latn"           whisper "da" nllb "dan_Latn" m2m100 "da" opus "da" apertium "dan";
    "de" "German" "Latn"           whisper "de" nllb "deu_Latn" m2m100 "de" opus "de" apertium "deu";
    "el" "Greek" "Grek"            whisper "el" nllb "ell_Grek" m2m100 "el" opus "el" apertium "ell";
    "en" "English" "Latn"          whisper "en" nllb "eng_Latn" m2m100 "en" opus "en" apertium "eng";
    "es" "Spanish" "Latn"          whisper "es" nllb "spa_Latn" m2m100 "es" opus "es" apertium "spa";
    "et" "Estonian" "Latn"         whisper "et" nllb "est_Latn" m2m100 "et" opus "et" apertium -;
    "eu" "Basque" "Latn"           whisper "eu" nllb "eus_Latn" m2m100 -    opus "eu" apertium "eus";
    "fa" "Persian" "Arab"          whisper "fa" nllb "pes_Arab" m2m100 "fa" opus "fa" apertium -;
    "fi" "Finnish" "Latn"          whisper "fi" nllb "fin_Latn" m2m100 "fi" opus "fi" apertium "fin";
    "fr" "French" "Latn"           whisper "fr" nllb "fra_Latn" m2m100 "fr" opus "fr" apertium "fra";
    "gl" "Galician" "Latn"         whisper "gl" nllb "glg_Latn" m2m100 "gl" opus "gl" apertium "glg";
    "gu" "Gujarati" "Gujr"         whisper "gu" nllb "guj_Gujr" m2m100 "gu" opus "gu" apertium "guj";
    "he" "Hebrew" "Hebr"           whisper "he" nllb "heb_Hebr" m2m100 "he" opus "he" apertium "heb";
    "hi" "Hindi" "Deva"            whisper "hi" nllb "hin_Deva" m2m100 "hi" opus "hi" apertium "hin";
    "hr" "Croatian" "Latn"         whisper "hr" nllb "hrv_Latn" m2m100 "hr" opus "hr" apertium -;
    "hu" "Hungarian" "Latn"        whisper "hu" nllb "hun_Latn" m2m100 "hu" opus "hu" apertium "hun";
    "hy" "Armenian" "Armn"         whisper "hy" nllb "hye_Armn" m2m100 "hy" opus "hy" apertium "hye";
    "id" "Indonesian" "Latn"       whisper "id" nllb "ind_Latn" m2m100 "id" opus "id" apertium "ind";
    "is" "Icelandic" "Latn"        whisper "is" nllb "isl_Latn" m2m100 "is" opus "is" apertium "isl";
    "it" "Italian" "Latn"          whisper "it" nllb "ita_Latn" m2m100 "it" opus "it" apertium "ita";
    "ja" "Japanese" "Jpan"         whisper "ja" nllb "jpn_Jpan" m2m100 "ja" opus "ja" apertium "jpn";
    "ka" "Georgian" "Geor"         whisper "ka" nllb "kat_Geor" m2m100 "ka" opus "ka" apertium "kat";
    "kk" "Kazakh" "Cyrl"           whisper "kk" nllb "kaz_Cyrl" m2m100 "kk" opus "kk" apertium "kaz";
    "kn" "Kannada" "Knda"          whisper "kn" nllb "kan_Knda" m2m100 "kn" opus "kn" apertium "kan";
    "ko" "Korean" "Hang"           whisper "ko" nllb "kor_Hang" m2m100 "ko" opus "ko" apertium "kor";
    "lt" "Lithuanian" "Latn"       whisper "lt" nllb "lit_Latn" m2m100 "lt" opus "lt" apertium "lit";
    "lv" "Latvian" "Latn"          whisper "lv" nllb "lvs_Latn" m2m100 "lv" opus "lv" apertium -;
    "mk" "Macedonian" "Cyrl"       whisper "mk" nllb "mkd_Cyrl" m2m100 "mk" opus "mk" apertium "mkd";
    "ml" "Malayalam" "Mlym"        whisper "ml" nllb "mal_Mlym" m2m100 "ml" opus "ml" apertium "mal";
    "mr" "Marathi" "Deva"          whisper "mr" nllb "mar_Deva" m2m100 "mr" opus "mr" apertium "mar";
    "ms" "Malay" "Latn"            whisper "ms" nllb "zsm_Latn" m2m100 "ms" opus "ms" apertium "zlm";
    "nb" "Norwegian Bokmål" "Latn" whisper "no" nllb "nob_Latn" m2m100 "no" opus "no" apertium "nob";
    "ne" "Nepali" "Deva"           whisper "ne" nllb "npi_Deva" m2m100 "ne" opus "ne" apertium -;
    "nl" "Dutch" "Latn"            whisper "nl" nllb "nld_Latn" m2m100 "nl" opus "nl" apertium "nld";
    "nn" "Norwegian Nynorsk" "Latn" whisper "nn" nllb "nno_Latn" m2m100 -   opus "nn" apertium "nno";
    "oc" "Occitan" "Latn"          whisper "oc" nllb "oci_Latn" m2m100 "oc" opus "oc" apertium "oci";
    "pa" "Punjabi" "Guru"          whisper "pa" nllb "pan_Guru" m2m100 "pa" opus "pa" apertium "pan";
    "pl" "Polish" "Latn"           whisper "pl" nllb "pol_Latn" m2m100 "pl" opus "pl" apertium "pol";
    "pt" "Portuguese" "Latn"       whisper "pt" nllb "por_Latn" m2m100 "pt" opus "pt" apertium "por";
    "ro" "Romanian" "Latn"         whisper "ro" nllb "ron_Latn" m2m100 "ro" opus "ro" apertium "ron";
    "ru" "Russian" "Cyrl"          whisper "ru" nllb "rus_Cyrl" m2m100 "ru" opus "ru" apertium "rus";
    "sk" "Slovak" "Latn"           whisper "sk" nllb "slk_Latn" m2m100 "sk" opus "sk" apertium "slk";
    "sl" "Slovenian" "Latn"        whisper "sl" nllb "slv_Latn" m2m100 "sl" opus "sl" apertium "slv";
    "sq" "Albanian" "Latn"         whisper "sq" nllb "als_Latn" m2m100 "sq" opus "sq" apertium -;
    "sr" "Serbian" "Cyrl"          whisper "sr" nllb "srp_Cyrl" m2m100 "sr" opus "sr" apertium -;
    "sv" "Swedish" "Latn"          whisper "sv" nllb "swe_Latn" m2m100 "sv" opus "sv" apertium "swe";
    "sw" "Swahili" "Latn"          whisper "sw" nllb "swh_Latn" m2m100 "sw" opus "sw" apertium -;
    "ta" "Tamil" "Taml"            whisper "ta" nllb "tam_Taml" m2m100 "ta" opus "ta" apertium "tam";
    "te" "Telugu" "Telu"           whisper "te" nllb "tel_Telu" m2m100 -    opus "te" apertium "tel";
    "th" "Thai" "Thai"             whisper "th" nllb "tha_Thai" m2m100 "th" opus "th" apertium "tha";
    "tl" "Tagalog" "Latn"          whisper "tl" nllb "tgl_Latn" m2m100 "tl" opus "tl" apertium "tgl";
    "tr" "Turkish" "Latn"          whisper "tr" nllb "tur_Latn" m2m100 "tr" opus "tr" apertium "tur";
    "uk" "Ukrainian" "Cyrl"        whisper "uk" nllb "ukr_Cyrl" m2m100 "uk" opus "uk" apertium "ukr";
    "ur" "Urdu" "Arab"             whisper "ur" nllb "urd_Arab" m2m100 "ur" opus "ur" apertium "urd";
    "vi" "Vietnamese" "Latn"       whisper "vi" nllb "vie_Latn" m2m100 "vi" opus "vi" apertium "vie";
    "zh" "Chinese (simplified)" "Hans" whisper "zh" nllb "zho_Hans" m2m100 "zh" opus "zh" apertium -;
};

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Whisper's `tokenizer.LANGUAGES` (large-v3: 100 languages).
    const WHISPER: &str = "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no \
        th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo \
        so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue";

    /// M2M100's 100 languages (`facebook/m2m100_418M`).
    const M2M100: &str = "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl gu \
        ha he hi hr ht hu hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr ms my ne nl no ns oc \
        or pa pl ps pt ro ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk ur uz vi wo xh yi yo zh zu";

    /// NLLB-200's `FAIRSEQ_LANGUAGE_CODES` (FLORES-200, 202 codes).
    const FLORES200: &str = "ace_Arab ace_Latn acm_Arab acq_Arab aeb_Arab afr_Latn ajp_Arab aka_Latn amh_Ethi \
        apc_Arab arb_Arab ars_Arab ary_Arab arz_Arab asm_Beng ast_Latn awa_Deva ayr_Latn azb_Arab azj_Latn bak_Cyrl \
        bam_Latn ban_Latn bel_Cyrl bem_Latn ben_Beng bho_Deva bjn_Arab bjn_Latn bod_Tibt bos_Latn bug_Latn bul_Cyrl \
        cat_Latn ceb_Latn ces_Latn cjk_Latn ckb_Arab crh_Latn cym_Latn dan_Latn deu_Latn dik_Latn dyu_Latn dzo_Tibt \
        ell_Grek eng_Latn epo_Latn est_Latn eus_Latn ewe_Latn fao_Latn pes_Arab fij_Latn fin_Latn fon_Latn fra_Latn \
        fur_Latn fuv_Latn gla_Latn gle_Latn glg_Latn grn_Latn guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hne_Deva \
        hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kab_Latn kac_Latn \
        kam_Latn kan_Knda kas_Arab kas_Deva kat_Geor knc_Arab knc_Latn kaz_Cyrl kbp_Latn kea_Latn khm_Khmr kik_Latn \
        kin_Latn kir_Cyrl kmb_Latn kon_Latn kor_Hang kmr_Latn lao_Laoo lvs_Latn lij_Latn lim_Latn lin_Latn lit_Latn \
        lmo_Latn ltg_Latn ltz_Latn lua_Latn lug_Latn luo_Latn lus_Latn mag_Deva mai_Deva mal_Mlym mar_Deva min_Latn \
        mkd_Cyrl plt_Latn mlt_Latn mni_Beng khk_Cyrl mos_Latn mri_Latn zsm_Latn mya_Mymr nld_Latn nno_Latn nob_Latn \
        npi_Deva nso_Latn nus_Latn nya_Latn oci_Latn gaz_Latn ory_Orya pag_Latn pan_Guru pap_Latn pol_Latn por_Latn \
        prs_Arab pbt_Arab quy_Latn ron_Latn run_Latn rus_Cyrl sag_Latn san_Deva sat_Beng scn_Latn shn_Mymr sin_Sinh \
        slk_Latn slv_Latn smo_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn als_Latn srd_Latn srp_Cyrl ssw_Latn \
        sun_Latn swe_Latn swh_Latn szl_Latn tam_Taml tat_Cyrl tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi taq_Latn \
        taq_Tfng tpi_Latn tsn_Latn tso_Latn tuk_Latn tum_Latn tur_Latn twi_Latn tzm_Tfng uig_Arab ukr_Cyrl umb_Latn \
        urd_Arab uzn_Latn vec_Latn vie_Latn war_Latn wol_Latn xho_Latn ydd_Hebr yor_Latn yue_Hant zho_Hans zho_Hant \
        zul_Latn";

    fn lang(tag: &str) -> &'static Language {
        Language::parse(tag).unwrap_or_else(|err| panic!("{tag}: {err}"))
    }

    #[test]
    fn the_reference_lists_are_complete() {
        assert_eq!(WHISPER.split_whitespace().count(), 100);
        assert_eq!(M2M100.split_whitespace().count(), 100);
        assert_eq!(FLORES200.split_whitespace().count(), 202);
    }

    #[test]
    fn every_row_parses_from_its_code_in_any_case_and_with_a_region() {
        for row in LANGUAGES {
            assert_eq!(lang(row.code), row);
            assert_eq!(lang(&row.code.to_ascii_uppercase()), row);
            assert_eq!(lang(&format!("{}-{}", row.code, "419")), row, "{}", row.code);
            assert_eq!(lang(&format!(" {}_XX ", row.code)), row, "{}", row.code);
            assert_eq!(lang(&format!("{}-{}", row.code, row.script.to_ascii_lowercase())), row, "{}", row.code);
        }
    }

    #[test]
    fn every_engine_code_of_every_row_round_trips() {
        for row in LANGUAGES {
            for engine in Engine::ALL {
                if let Ok(code) = row.engine_code(engine) {
                    assert_eq!(Language::from_engine_code(engine, code), Ok(row), "{engine} {code}");
                }
            }
        }
    }

    #[test]
    fn every_column_is_unique() {
        for column in [None].into_iter().chain(Engine::ALL.map(Some)) {
            let codes: Vec<&str> = LANGUAGES
                .iter()
                .filter_map(|l| match column {
                    None => Some(l.code),
                    Some(engine) => l.engine_code(engine).ok(),
                })
                .collect();
            let unique: HashSet<&str> = codes.iter().copied().collect();
            assert_eq!(unique.len(), codes.len(), "duplicate in {column:?}");
        }
        let names: HashSet<&str> = LANGUAGES.iter().map(|l| l.name).collect();
        assert_eq!(names.len(), LANGUAGES.len());
    }

    #[test]
    fn every_engine_code_is_one_the_engine_knows() {
        let whisper: HashSet<&str> = WHISPER.split_whitespace().collect();
        let m2m100: HashSet<&str> = M2M100.split_whitespace().collect();
        let flores: HashSet<&str> = FLORES200.split_whitespace().collect();
        for row in LANGUAGES {
            assert!(whisper.contains(row.whisper), "{}: whisper {}", row.code, row.whisper);
            assert!(flores.contains(row.flores200), "{}: flores {}", row.code, row.flores200);
            if let Some(code) = row.m2m100 {
                assert!(m2m100.contains(code), "{}: m2m100 {code}", row.code);
            }
        }
        // The converse: where the table says M2M100 lacks a language, it really does.
        for row in LANGUAGES.iter().filter(|l| l.m2m100.is_none()) {
            assert!(!m2m100.contains(row.code) && !m2m100.contains(row.whisper), "{}", row.code);
        }
    }

    #[test]
    fn every_row_is_well_formed() {
        assert!(LANGUAGES.len() >= 40);
        assert!(LANGUAGES.windows(2).all(|w| w[0].code < w[1].code), "the table is sorted by code");
        let lower = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase());
        for row in LANGUAGES {
            assert!(lower(row.code, 2), "{}", row.code);
            let (iso639_3, script) = row.flores200.split_once('_').expect("flores code has a script");
            assert!(lower(iso639_3, 3), "{}", row.flores200);
            assert_eq!(script, row.script, "the row's script is its FLORES-200 script");
            if let Some(apertium) = row.apertium {
                assert!(lower(apertium, 3), "{apertium}");
            }
            if let Some(opus) = row.opus_mt {
                assert!(lower(opus, 2), "{opus}");
            }
            assert!(!row.name.is_empty());
        }
    }

    #[test]
    fn known_codes() {
        assert_eq!(lang("zh").flores200(), "zho_Hans");
        assert_eq!(lang("zh-CN").m2m100_token().as_deref(), Ok("__zh__"));
        assert_eq!(lang("zh-Hans-SG").code(), "zh");
        assert_eq!(lang("he").flores200(), "heb_Hebr");
        assert_eq!(lang("iw"), lang("he"));
        assert_eq!(lang("in"), lang("id"));
        assert_eq!(lang("fil"), lang("tl"));
        assert_eq!(lang("en").flores200(), "eng_Latn");
        assert_eq!(lang("es").flores200(), "spa_Latn");
        assert_eq!(lang("ar").flores200(), "arb_Arab");
        assert_eq!(lang("fa").flores200(), "pes_Arab");
        assert_eq!(lang("lv").flores200(), "lvs_Latn");
        assert_eq!(lang("ms").flores200(), "zsm_Latn");
        assert_eq!(lang("sw").flores200(), "swh_Latn");
        assert_eq!(lang("ko").flores200(), "kor_Hang");
        assert_eq!(lang("en").m2m100_token().as_deref(), Ok("__en__"));
        assert_eq!(lang("pt-BR").code(), "pt");
        assert_eq!(lang("pt_PT").flores200(), "por_Latn");
        assert_eq!(lang("EN").code(), "en");
        assert_eq!(lang("en-US").whisper(), "en");
        assert_eq!(lang("en-Latn-GB-oxendict").code(), "en");
        assert_eq!(lang("de-CH-x-phonebk").code(), "de");
    }

    #[test]
    fn norwegian() {
        // BCP 47 says `nb` (Bokmål) and `nn` (Nynorsk); `no` is the macrolanguage, which Whisper,
        // M2M100 and OPUS-MT use for Bokmål.
        let bokmal = lang("nb");
        assert_eq!(lang("no"), bokmal);
        assert_eq!(lang("nb-NO"), bokmal);
        assert_eq!(lang("no-NO"), bokmal);
        assert_eq!(bokmal.code(), "nb");
        assert_eq!(bokmal.whisper(), "no");
        assert_eq!(bokmal.flores200(), "nob_Latn");
        assert_eq!(bokmal.m2m100(), Ok("no"));
        assert_eq!(bokmal.apertium(), Ok("nob"));
        assert_eq!(Language::from_engine_code(Engine::Whisper, "no"), Ok(bokmal));
        let nynorsk = lang("nn");
        assert_ne!(nynorsk, bokmal);
        assert_eq!(nynorsk.flores200(), "nno_Latn");
        assert_eq!(nynorsk.apertium(), Ok("nno"));
        assert!(nynorsk.m2m100().is_err());
    }

    #[test]
    fn pair_names() {
        assert_eq!(opus_mt_model(lang("en"), lang("es")).as_deref(), Ok("Helsinki-NLP/opus-mt-en-es"));
        assert_eq!(opus_mt_model(lang("nb"), lang("de")).as_deref(), Ok("Helsinki-NLP/opus-mt-no-de"));
        assert_eq!(apertium_pair(lang("en"), lang("es")).as_deref(), Ok("eng-spa"));
        assert_eq!(apertium_pair(lang("nn"), lang("nb")).as_deref(), Ok("nno-nob"));
        assert_eq!(apertium_pair(lang("ms"), lang("id")).as_deref(), Ok("zlm-ind"));
        let err = apertium_pair(lang("en"), lang("sr")).expect_err("must be refused");
        assert_eq!(err.to_string(), "apertium does not support Serbian (sr)");
    }

    #[test]
    fn apertium_names_old_pairs_with_two_letter_codes() {
        assert_eq!(Language::from_engine_code(Engine::Apertium, "eng"), Ok(lang("en")));
        assert_eq!(Language::from_engine_code(Engine::Apertium, "en"), Ok(lang("en")));
        assert_eq!(Language::from_engine_code(Engine::Apertium, "ms"), Ok(lang("ms")));
        // Serbo-Croatian has no row, and Croatian has no Apertium code.
        assert!(Language::from_engine_code(Engine::Apertium, "hbs").is_err());
        assert!(Language::from_engine_code(Engine::Apertium, "hr").is_err());
    }

    #[test]
    fn unsupported_engine_names_engine_and_language() {
        let err = lang("eu").m2m100().expect_err("must be refused");
        assert_eq!(err, LanguageError::Unsupported { engine: Engine::M2m100, code: "eu", name: "Basque" });
        assert_eq!(err.to_string(), "m2m100 does not support Basque (eu)");
        assert_eq!(
            lang("te").m2m100_token().expect_err("must be refused").to_string(),
            "m2m100 does not support Telugu (te)"
        );
        let err = Language::from_engine_code(Engine::Nllb, "xxx_Latn").expect_err("must be refused");
        assert_eq!(err.to_string(), "nllb-200 language code \"xxx_Latn\" is not in the language table");
        assert!(Language::from_engine_code(Engine::Whisper, "nb").is_err(), "Whisper says no, not nb");
    }

    #[test]
    fn garbage_is_refused_with_the_supported_list() {
        for tag in ["", "  ", "e", "english", "en--US", "en-", "-en", "en-US!", "12", "e1", "en-toolongsubtag", "é"] {
            let err = Language::parse(tag).expect_err("must be refused");
            assert!(matches!(err, LanguageError::Malformed { .. }), "{tag:?}: {err:?}");
            let message = err.to_string();
            assert!(message.contains("supported: af, ar,") && message.contains(", zh"), "{message}");
        }
        for tag in ["xx", "kl", "tlh", "la", "yue", "jw"] {
            let err = Language::parse(tag).expect_err("must be refused");
            assert!(matches!(err, LanguageError::UnknownLanguage { reason: None, .. }), "{tag:?}: {err:?}");
            assert!(err.to_string().starts_with(&format!("language {tag:?} is not supported; supported: af,")));
        }
    }

    #[test]
    fn a_script_or_region_the_engines_do_not_write_is_refused() {
        for tag in ["zh-Hant", "zh-TW", "zh-HK", "zh-Hant-TW", "sr-Latn", "en-Cyrl", "zh_mo"] {
            let err = Language::parse(tag).expect_err("must be refused");
            assert!(matches!(err, LanguageError::UnknownLanguage { reason: Some(_), .. }), "{tag:?}: {err:?}");
        }
        assert_eq!(
            Language::parse("zh-TW").expect_err("must be refused").to_string().split(';').next(),
            Some("language \"zh-TW\" is not supported (traditional Chinese is not supported)")
        );
        assert_eq!(lang("sr-Cyrl-RS").code(), "sr");
        assert_eq!(lang("zh-SG").code(), "zh");
    }
}
