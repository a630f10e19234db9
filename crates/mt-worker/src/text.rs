//! Text preparation shared by every engine: cleaning, sentence splitting, splitting of very long
//! sentences, and putting translated pieces back together.
//!
//! Engines translate sentence by sentence: rule-based engines disambiguate within a sentence,
//! and neural ones have a maximum input length. A long text is split into pieces of at most
//! [`MAX_PIECE_CHARS`] characters, never cut short: every character of the cleaned text is in
//! exactly one piece.

use dragoman_bus::Language;

/// The longest piece sent to an engine at once, in characters. Longer sentences are split at
/// a clause break or a space.
pub const MAX_PIECE_CHARS: usize = 500;

/// Characters that end a sentence when followed by a space or the end of the text.
const TERMINATORS: &[char] = &['.', '!', '?', '…', '؟', '।', '॥', '։'];
/// Full-width terminators that end a sentence even with no space after them.
const FULL_WIDTH_TERMINATORS: &[char] = &['。', '！', '？'];
/// Characters that close a sentence after its terminator (`He said "yes."`).
const CLOSERS: &[char] = &['"', '\'', '”', '’', '»', ')', ']', '」', '』', '）'];
/// Abbreviations after which a full stop does not end a sentence (compared without case).
const ABBREVIATIONS: &[&str] = &["mr", "mrs", "ms", "dr", "prof", "st", "sr", "sra", "jr", "vs", "e.g", "i.e", "etc"];

/// Removes control characters, turns line breaks and tabs into spaces, and collapses runs of
/// whitespace into one space. Transcripts and operator input are one paragraph.
pub fn clean(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if c.is_control() || c == '\u{feff}' {
            // Dropped: a control character or byte-order mark carries nothing to translate.
        } else {
            if pending_space && !cleaned.is_empty() {
                cleaned.push(' ');
            }
            pending_space = false;
            cleaned.push(c);
        }
    }
    cleaned
}

/// Splits cleaned text into sentences (trimmed, none empty).
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let full_width = FULL_WIDTH_TERMINATORS.contains(&c);
        if !full_width && !TERMINATORS.contains(&c) {
            continue;
        }
        let mut end = index + c.len_utf8();
        while let Some(&(next_index, next)) = chars.peek() {
            if TERMINATORS.contains(&next) || FULL_WIDTH_TERMINATORS.contains(&next) || CLOSERS.contains(&next) {
                end = next_index + next.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let followed_by_space = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if !(full_width || followed_by_space) || (c == '.' && ends_with_abbreviation(&text[start..index])) {
            continue;
        }
        push_trimmed(&mut sentences, &text[start..end]);
        start = end;
    }
    push_trimmed(&mut sentences, &text[start..]);
    sentences
}

fn push_trimmed<'a>(sentences: &mut Vec<&'a str>, sentence: &'a str) {
    let sentence = sentence.trim();
    if !sentence.is_empty() {
        sentences.push(sentence);
    }
}

/// Whether the word before a full stop is an abbreviation or an initial (`Dr.`, `J.`).
fn ends_with_abbreviation(before_stop: &str) -> bool {
    let word = before_stop.rsplit(char::is_whitespace).next().unwrap_or_default();
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    let mut letters = word.chars();
    let single_capital = matches!((letters.next(), letters.next()), (Some(first), None) if first.is_uppercase());
    single_capital || ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

/// Splits a sentence longer than `max_chars` characters into pieces of at most `max_chars`: at
/// the last clause break (`,` `;` `:` followed by a space) in the second half of the window,
/// else at its last space, else (a run with no space, as in Chinese) at `max_chars`. Only the
/// spaces at the cuts are dropped.
pub fn split_long(sentence: &str, max_chars: usize) -> Vec<&str> {
    let max_chars = max_chars.max(1);
    let mut pieces = Vec::new();
    let mut rest = sentence.trim();
    while rest.chars().count() > max_chars {
        // Byte offsets of the window's characters; `window_end` is where character max_chars starts.
        let offsets: Vec<usize> = rest.char_indices().map(|(i, _)| i).take(max_chars + 1).collect();
        let window_end = offsets[max_chars];
        let window = &rest[..window_end];
        let half = offsets[max_chars / 2];
        let clause = window
            .char_indices()
            .filter(|&(i, c)| i >= half && matches!(c, ',' | ';' | ':' | '，' | '、' | '；'))
            .map(|(i, c)| i + c.len_utf8())
            .rfind(|&after| rest[after..].starts_with(char::is_whitespace));
        let space = || window.rfind(char::is_whitespace).filter(|&i| i > 0);
        // The character after the window may itself be a space: cutting there loses nothing.
        let space_after = rest[window_end..].starts_with(char::is_whitespace).then_some(window_end);
        let cut = clause.or(space_after).or_else(space).unwrap_or(window_end);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece.trim_end());
        rest = tail.trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// What an engine translates for one text: cleaned, split into sentences, long sentences split.
/// Empty for a text with nothing to translate.
pub fn pieces(text: &str, max_chars: usize) -> Vec<String> {
    let cleaned = clean(text);
    split_sentences(&cleaned)
        .into_iter()
        .flat_map(|sentence| split_long(sentence, max_chars))
        .map(str::to_owned)
        .collect()
}

/// Puts translated pieces back together: with a space, or with nothing for languages written
/// without spaces between sentences (Chinese, Japanese).
pub fn join(pieces: &[String], target: &Language) -> String {
    let separator = match target.script() {
        "Hans" | "Hant" | "Jpan" => "",
        _ => " ",
    };
    pieces.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(separator)
}

/// Puts per-piece translations back into texts: `counts[i]` pieces belong to text `i`, in order.
/// A text with one failed piece fails; the others are unaffected.
pub fn regroup<E>(
    pieces: impl IntoIterator<Item = Result<String, E>>,
    counts: &[usize],
    target: &Language,
) -> Vec<Result<String, E>> {
    let mut pieces = pieces.into_iter();
    counts
        .iter()
        .map(|&count| {
            // Take every piece of this text before looking at errors, so the next text starts at
            // its own first piece.
            let parts: Vec<Result<String, E>> = pieces.by_ref().take(count).collect();
            parts.into_iter().collect::<Result<Vec<String>, E>>().map(|parts| join(&parts, target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_control_characters_and_collapses_whitespace() {
        assert_eq!(clean("  Hello,\tworld\r\n\u{7}again\u{0}!  "), "Hello, world again!");
        assert_eq!(clean("\u{feff}a\u{1b}[0mb"), "a[0mb");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" \n\t "), "");
        assert_eq!(clean("\u{0}\u{1}\u{7f}"), "");
        // Joiners carry meaning in some scripts (Persian, emoji) and are kept.
        assert_eq!(clean("می\u{200c}خواهم"), "می\u{200c}خواهم");
    }

    #[test]
    fn sentences_split_after_terminators_followed_by_space() {
        assert_eq!(
            split_sentences("Please hold. Your call is important to us! Are you there? Yes…"),
            ["Please hold.", "Your call is important to us!", "Are you there?", "Yes…"]
        );
        assert_eq!(split_sentences("He said \"stop.\" Then he left."), ["He said \"stop.\"", "Then he left."]);
        assert_eq!(split_sentences("Wait... what?! No."), ["Wait...", "what?!", "No."]);
        assert_eq!(split_sentences("¿Dónde está? Aquí."), ["¿Dónde está?", "Aquí."]);
        assert_eq!(split_sentences("no terminator"), ["no terminator"]);
        assert_eq!(split_sentences(""), Vec::<&str>::new());
    }

    #[test]
    fn sentences_do_not_split_inside_numbers_addresses_or_after_abbreviations() {
        assert_eq!(
            split_sentences("It costs 3.50 dollars. Visit www.example.com now."),
            ["It costs 3.50 dollars.", "Visit www.example.com now."]
        );
        assert_eq!(
            split_sentences("Dr. Smith and J. R. Jones met Mrs. Lee. They talked."),
            ["Dr. Smith and J. R. Jones met Mrs. Lee.", "They talked."]
        );
    }

    #[test]
    fn full_width_terminators_split_without_spaces() {
        assert_eq!(split_sentences("你好。请稍等！谢谢"), ["你好。", "请稍等！", "谢谢"]);
        assert_eq!(split_sentences("こんにちは。元気？"), ["こんにちは。", "元気？"]);
    }

    #[test]
    fn long_sentences_split_at_clauses_then_spaces_and_lose_nothing() {
        let sentence = "one two three, four five six seven eight, nine ten";
        let pieces = split_long(sentence, 20);
        assert!(pieces.iter().all(|p| p.chars().count() <= 20), "{pieces:?}");
        assert_eq!(pieces.join(" "), sentence);
        assert_eq!(pieces[0], "one two three,");

        let words: Vec<String> = (0..2000).map(|i| format!("word{i}")).collect();
        let long = words.join(" ");
        let pieces = split_long(&long, MAX_PIECE_CHARS);
        assert!(pieces.len() > 20);
        assert!(pieces.iter().all(|p| !p.is_empty() && p.chars().count() <= MAX_PIECE_CHARS));
        assert_eq!(pieces.join(" "), long, "every word is kept, in order");
    }

    #[test]
    fn a_run_without_spaces_is_cut_at_the_limit() {
        let run: String = "漢字かな".repeat(300);
        let pieces = split_long(&run, 100);
        assert_eq!(pieces.len(), 12);
        assert!(pieces.iter().all(|p| p.chars().count() == 100));
        assert_eq!(pieces.concat(), run);
        assert_eq!(split_long("abcdef", 1), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(split_long("abc", 0), ["a", "b", "c"], "a zero limit still makes progress");
    }

    #[test]
    fn short_sentences_are_left_alone() {
        assert_eq!(split_long("short one", 500), ["short one"]);
        assert_eq!(split_long("  ", 500), Vec::<&str>::new());
        assert_eq!(split_long("exactly ten", 11), ["exactly ten"]);
    }

    #[test]
    fn pieces_cover_the_whole_text() {
        assert!(pieces("", MAX_PIECE_CHARS).is_empty());
        assert!(pieces(" \u{0}\n ", MAX_PIECE_CHARS).is_empty());
        let text = format!("First sentence.\nSecond\tone! {}", "x ".repeat(700));
        let pieces = pieces(&text, MAX_PIECE_CHARS);
        assert_eq!(pieces[..2], ["First sentence.", "Second one!"]);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_PIECE_CHARS));
        assert_eq!(pieces.join(" "), clean(&text));
    }

    #[test]
    fn join_uses_the_target_languages_separator() {
        let parts = ["Hola.".to_owned(), " ".to_owned(), "¿Qué tal?".to_owned()];
        let es = Language::parse("es").expect("es");
        assert_eq!(join(&parts, es), "Hola. ¿Qué tal?");
        let zh = Language::parse("zh").expect("zh");
        assert_eq!(join(&["你好。".to_owned(), "谢谢".to_owned()], zh), "你好。谢谢");
        assert_eq!(join(&[], es), "");
    }
}
