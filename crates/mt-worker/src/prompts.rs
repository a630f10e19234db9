//! The Asterisk prompt transcripts as a parallel corpus: the same prompt names in English and
//! Spanish (Debian's `asterisk-core-sounds-en` and `asterisk-core-sounds-es`, CC-BY-SA-3.0 by
//! Digium). Translation quality is measured on it with [`crate::chrf`].
//!
//! Each package ships `core-sounds-<lang>.txt.gz` with lines `name: text` (`digits/7: seven`)
//! and `;` comments. The Spanish file has been shipped in Latin-1 in some releases, so a file
//! that is not UTF-8 is read as Latin-1.

use std::collections::BTreeMap;
use std::io::{self, Read as _};
use std::path::Path;

/// Where Debian installs the English prompt transcripts.
pub const ENGLISH_TRANSCRIPTS: &str = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz";
/// Where Debian installs the Spanish prompt transcripts.
pub const SPANISH_TRANSCRIPTS: &str = "/usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz";

/// Reads a transcript file (gzip or plain): prompt name → text. When a name appears twice, the
/// first line wins. Names with an empty text are kept, with an empty text.
pub fn read_transcripts(path: &Path) -> io::Result<BTreeMap<String, String>> {
    let raw = std::fs::read(path)?;
    let mut bytes = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut bytes)?;
    } else {
        bytes = raw;
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        // Latin-1 maps each byte to the code point of the same value.
        Err(err) => err.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    Ok(parse_transcripts(&text))
}

/// Parses `name: text` lines; blank lines, `;` comments and lines without a colon are skipped.
pub fn parse_transcripts(text: &str) -> BTreeMap<String, String> {
    let mut transcripts = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some((name, text)) = line.split_once(':') {
            transcripts.entry(name.trim().to_owned()).or_insert_with(|| text.trim().to_owned());
        }
    }
    transcripts
}

/// One prompt in two languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPair {
    pub name: String,
    pub source: String,
    pub reference: String,
}

/// The prompts present in both files with text on both sides, in name order. Prompts that are
/// only a description of a sound (`[this is a simple beep tone]`) are left out: they are not
/// speech, and the two files describe them differently.
pub fn parallel(source: &BTreeMap<String, String>, reference: &BTreeMap<String, String>) -> Vec<PromptPair> {
    let is_description = |text: &str| text.starts_with('[') && text.ends_with(']');
    source
        .iter()
        .filter_map(|(name, source)| {
            let reference = reference.get(name)?;
            let usable = |text: &str| !text.is_empty() && !is_description(text);
            (usable(source) && usable(reference)).then(|| PromptPair {
                name: name.clone(),
                source: source.clone(),
                reference: reference.clone(),
            })
        })
        .collect()
}

/// The English → Spanish prompt pairs from Debian's packages.
pub fn english_spanish() -> io::Result<Vec<PromptPair>> {
    let english = read_transcripts(Path::new(ENGLISH_TRANSCRIPTS))?;
    let spanish = read_transcripts(Path::new(SPANISH_TRANSCRIPTS))?;
    Ok(parallel(&english, &spanish))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_texts() {
        let parsed = parse_transcripts(
            "; Core Asterisk Sounds\n\nagent-pass: Please enter your password: now.\ndigits/0: cero\n\
             digits/0: diez\ndir-welcome:\nno colon here\n",
        );
        assert_eq!(parsed["agent-pass"], "Please enter your password: now.");
        assert_eq!(parsed["digits/0"], "cero", "the first line of a repeated name wins");
        assert_eq!(parsed["dir-welcome"], "");
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn pairs_only_prompts_with_speech_on_both_sides() {
        let en = parse_transcripts("a: Hello.\nb: [beep tone]\nc: Only English.\nd:\ne: Goodbye.\n");
        let es = parse_transcripts("a: Hola.\nb: [tono]\nd: Vacío\ne: Adiós.\nf: Solo español.\n");
        let pairs = parallel(&en, &es);
        let names: Vec<&str> = pairs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "e"]);
        assert_eq!(pairs[1].reference, "Adiós.");
    }

    #[test]
    fn latin1_files_are_decoded() {
        let dir = std::env::temp_dir().join(format!("dragoman-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("latin1.txt");
        std::fs::write(&path, b"vm-options: Opci\xf3n inv\xe1lida\n").expect("write");
        let parsed = read_transcripts(&path).expect("read");
        assert_eq!(parsed["vm-options"], "Opción inválida");
        std::fs::remove_dir_all(&dir).ok();
    }
}
