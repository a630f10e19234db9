//! Word error rate on real telephone speech: the text normalisation every accuracy figure in
//! this project uses, the word edit distance, and the Asterisk English prompt corpus.
//!
//! The corpus is Debian's `asterisk-core-sounds-en-wav` (8 kHz prompts) with the reference
//! texts of `asterisk-core-sounds-en` (`core-sounds-en.txt.gz`, lines `name: text`); both are
//! CC-BY-SA-3.0, by Digium (Allison Smith's voice). The tests, `dragoman bench stt` and the
//! end-to-end pipeline test all measure against it with [`normalise`], so their numbers compare.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Where Debian installs the English prompts.
pub const DEFAULT_SOUNDS_DIR: &str = "/usr/share/asterisk/sounds/en";
/// Where Debian installs their reference texts.
pub const DEFAULT_TRANSCRIPTS: &str = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz";

/// Text normalisation for word error rates: lowercase; `*` → `star`, `#` → `pound`, `&` →
/// `and` (what a caller hears); apostrophes dropped (`don't` = `dont`); every other character
/// that is not a letter or digit separates words; then numbers written in words become digits
/// (`sixteen` → `16`, `twenty-one` → `21`, `two hundred` → `200`, `fortieth` → `40th`), as
/// Whisper's English normaliser does, so `Press 1` and `press one` compare equal.
pub fn normalise(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '*' => spaced.push_str(" star "),
            '#' => spaced.push_str(" pound "),
            '&' => spaced.push_str(" and "),
            '\'' | '\u{2019}' => {}
            c if c.is_alphanumeric() => spaced.extend(c.to_lowercase()),
            _ => spaced.push(' '),
        }
    }
    numbers_to_digits(spaced.split_whitespace())
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const UNIT_ORDINALS: [&str; 20] = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];
const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const TEN_ORDINALS: [&str; 8] =
    ["twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth", "ninetieth"];

/// A number word's value, and whether it is an ordinal.
fn number_word(word: &str) -> Option<(u64, bool)> {
    // The reference texts spell forty "fourty" in places ("fourth" and "fourteen" stay).
    let word = match word.strip_prefix("fourt") {
        Some(rest) if rest.starts_with('y') || rest.starts_with("ie") => format!("fort{rest}"),
        _ => word.to_owned(),
    };
    let find = |table: &[&str]| table.iter().position(|w| *w == word).map(|i| i as u64);
    find(&UNITS)
        .map(|v| (v, false))
        .or_else(|| find(&UNIT_ORDINALS).map(|v| (v, true)))
        .or_else(|| find(&TENS).map(|i| (20 + 10 * i, false)))
        .or_else(|| find(&TEN_ORDINALS).map(|i| (20 + 10 * i, true)))
        .or(match word.as_str() {
            "hundred" => Some((100, false)),
            "hundredth" => Some((100, true)),
            "thousand" => Some((1000, false)),
            "thousandth" => Some((1000, true)),
            _ => None,
        })
}

fn ordinal_suffix(value: u64) -> &'static str {
    match (value % 10, value % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// Rewrites runs of number words as digits; other words pass through.
fn numbers_to_digits<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    // The number being read: (total of finished thousands, current part below 1000, last word's value).
    let mut current: Option<(u64, u64, u64)> = None;
    let flush = |current: &mut Option<(u64, u64, u64)>, out: &mut Vec<String>, ordinal: bool| {
        if let Some((thousands, part, _)) = current.take() {
            let value = thousands + part;
            out.push(if ordinal { format!("{value}{}", ordinal_suffix(value)) } else { value.to_string() });
        }
    };
    for word in words {
        let Some((value, ordinal)) = number_word(word) else {
            flush(&mut current, &mut out, false);
            out.push(word.to_owned());
            continue;
        };
        current = Some(match (current, value) {
            (None, 100 | 1000) => (0, value, value),
            (None, v) => (0, v, v),
            (Some((t, part, _)), 100) if part % 100 != 0 || part == 0 => {
                (t, (part / 100) * 100 + (part % 100) * 100, 100)
            }
            (Some((t, part, _)), 1000) => (t + part.max(1) * 1000, 0, 1000),
            // "twenty one": a unit after a tens word joins it.
            (Some((t, part, last)), v) if v < 10 && (20..100).contains(&last) && last % 10 == 0 => (t, part + v, v),
            // After "hundred"/"thousand", a smaller number adds on.
            (Some((t, part, last)), v) if (last == 100 || last == 1000) && v < 100 => (t, part + v, v),
            // Anything else (`one six`, `twenty thirty`): a new number.
            (Some(_), v) => {
                flush(&mut current, &mut out, false);
                (0, v, v)
            }
        });
        if ordinal {
            flush(&mut current, &mut out, true);
        }
    }
    flush(&mut current, &mut out, false);
    out
}

/// Word-level edit distance: substitutions + deletions + insertions.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = diagonal + usize::from(r != h);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[hypothesis.len()]
}

/// Errors and reference words summed over a set: WER = errors / words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WordErrorRate {
    pub errors: usize,
    pub words: usize,
}

impl WordErrorRate {
    /// Adds one utterance; returns its own error count.
    pub fn add(&mut self, reference: &str, hypothesis: &str) -> usize {
        let reference = normalise(reference);
        let errors = word_errors(&reference, &normalise(hypothesis));
        self.errors += errors;
        self.words += reference.len();
        errors
    }

    /// The rate as a fraction (0.05 = 5 %); 0 for an empty set.
    pub fn rate(&self) -> f64 {
        if self.words == 0 { 0.0 } else { self.errors as f64 / self.words as f64 }
    }
}

/// One prompt of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The prompt's name (its file name without `.wav`, e.g. `hello-world`).
    pub name: String,
    /// The reference text as Debian ships it, less annotations ([`spoken_text`]).
    pub text: String,
    /// 8 kHz mono samples.
    pub samples: Vec<i16>,
}

impl Prompt {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / 8000
    }
}

/// The corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {reason} (apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en)")]
    Read { path: PathBuf, reason: String },
}

/// The reference texts, by prompt name. Comment lines (`;`) are skipped.
pub fn read_transcripts(path: &Path) -> Result<BTreeMap<String, String>, CorpusError> {
    let error = |reason: String| CorpusError::Read { path: path.to_path_buf(), reason };
    let file = std::fs::File::open(path).map_err(|err| error(err.to_string()))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).map_err(|err| error(err.to_string()))?;
    // The file is mostly ASCII with a few Latin-1 bytes; those never matter for the words.
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter(|line| !line.starts_with(';'))
        .filter_map(|line| line.split_once(": "))
        .map(|(name, text)| (name.trim().to_owned(), text.trim().to_owned()))
        .collect())
}

/// Whether a reference text holds speech: words left once `[annotations]`, `(notes)` and
/// `<notes>` are removed (`[ascending tones]`, `<beep ascending>`, `(9 seconds of silence)`
/// are not speech).
pub fn is_speech(text: &str) -> bool {
    let mut depth = 0i32;
    text.chars().any(|c| {
        match c {
            '[' | '<' | '(' => depth += 1,
            ']' | '>' | ')' => depth -= 1,
            c if depth <= 0 && c.is_alphanumeric() => return true,
            _ => {}
        }
        false
    })
}

/// A reference text without its annotations: `[…]`, `(…)` and `<…>` removed
/// (`IAX (note: does not say "2")` → `IAX`).
pub fn spoken_text(text: &str) -> String {
    let mut depth = 0i32;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '[' | '<' | '(' => depth += 1,
            ']' | '>' | ')' => depth = (depth - 1).max(0),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads one 8 kHz 16-bit mono WAV prompt.
pub fn read_prompt(path: &Path) -> Result<Vec<i16>, CorpusError> {
    let error = |reason: String| CorpusError::Read { path: path.to_path_buf(), reason };
    let mut reader = hound::WavReader::open(path).map_err(|err| error(err.to_string()))?;
    let spec = reader.spec();
    if (spec.sample_rate, spec.channels, spec.bits_per_sample) != (8000, 1, 16) {
        return Err(error(format!(
            "expected 8 kHz mono 16-bit, found {} Hz, {} channels, {} bits",
            spec.sample_rate, spec.channels, spec.bits_per_sample
        )));
    }
    reader.samples::<i16>().collect::<Result<_, _>>().map_err(|err| error(err.to_string()))
}

/// Every English speech prompt that has both a reference text and a WAV file (551 with
/// Debian's packages: 568 with both, less 7 tones and 10 stretches of silence), in name order.
pub fn english_speech_prompts(sounds_dir: &Path, transcripts: &Path) -> Result<Vec<Prompt>, CorpusError> {
    let mut prompts = Vec::new();
    for (name, text) in read_transcripts(transcripts)? {
        let path = sounds_dir.join(format!("{name}.wav"));
        if !is_speech(&text) || !path.is_file() {
            continue;
        }
        let samples = read_prompt(&path)?;
        prompts.push(Prompt { name, text: spoken_text(&text), samples });
    }
    if prompts.is_empty() {
        return Err(CorpusError::Read { path: sounds_dir.to_path_buf(), reason: "no prompt with a reference".into() });
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn normalisation_writes_numbers_as_digits_and_names_the_keys() {
        assert_eq!(normalise("Press 1, then #."), words("press 1 then pound"));
        assert_eq!(normalise("press one, then pound"), words("press 1 then pound"));
        assert_eq!(normalise("Press * to cancel"), words("press star to cancel"));
        assert_eq!(normalise("party's Call-Forward"), words("partys call forward"));
        assert_eq!(normalise("R&D 42"), words("r and d 42"));
        assert!(normalise("...").is_empty());
    }

    #[test]
    fn number_words_become_digits() {
        assert_eq!(normalise("sixteen"), normalise("16"));
        assert_eq!(normalise("twenty-one"), words("21"));
        assert_eq!(normalise("Fourtieth"), normalise("40th"));
        assert_eq!(normalise("fourty four"), words("44"));
        assert_eq!(normalise("fourteenth fourth"), words("14th 4th"));
        assert_eq!(normalise("the first name"), words("the 1st name"));
        assert_eq!(normalise("one hundred and five"), words("100 and 5"));
        assert_eq!(normalise("two hundred twelve"), words("212"));
        assert_eq!(normalise("three thousand"), words("3000"));
        assert_eq!(normalise("twenty second"), words("22nd"));
        assert_eq!(normalise("eleventh"), words("11th"));
        assert_eq!(normalise("one six"), words("1 6"));
        assert_eq!(normalise("no one is there"), words("no 1 is there"));
    }

    #[test]
    fn edit_distance_counts_substitutions_insertions_and_deletions() {
        assert_eq!(word_errors(&words("a b c"), &words("a b c")), 0);
        assert_eq!(word_errors(&words("a b c"), &words("a x c")), 1);
        assert_eq!(word_errors(&words("a b c"), &words("a c")), 1);
        assert_eq!(word_errors(&words("a b c"), &words("a b c d e")), 2);
        assert_eq!(word_errors(&words("a b"), &[]), 2);
        assert_eq!(word_errors(&[], &words("a b")), 2);
    }

    #[test]
    fn rate_sums_over_utterances() {
        let mut wer = WordErrorRate::default();
        assert_eq!(wer.add("Hello world.", "hello world"), 0);
        assert_eq!(wer.add("Press 1", "press two"), 1);
        assert_eq!(wer, WordErrorRate { errors: 1, words: 4 });
        assert!((wer.rate() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn annotations_are_not_speech() {
        assert!(!is_speech("[ascending tones]"));
        assert!(!is_speech("<beep ascending>"));
        assert!(!is_speech("(9 seconds of silence)"));
        assert!(is_speech("Hello world."));
        assert!(is_speech("[pause] Goodbye"));
        assert_eq!(spoken_text("IAX (note: does not say \"2\")"), "IAX");
        assert_eq!(spoken_text("Please hang up. (simple tone sound plays)"), "Please hang up.");
        assert_eq!(spoken_text("[tones] Goodbye <beep>"), "Goodbye");
    }
}
