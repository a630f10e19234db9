//! Hallucination guards, applied to every engine's output the same way.
//!
//! Whisper invents text for audio without speech (hold music, tones, silence) and sometimes
//! loops on a phrase. Three checks catch that, after faster-whisper's and OpenAI's practice:
//! the no-speech probability together with a low log-probability, the gzip compression ratio
//! (repetitive text compresses well), and removal of a phrase repeated back to back.

use std::io::Write as _;

use crate::engine::{DecodeOptions, Transcription};

/// How well `text` compresses with gzip: its length over its compressed length.
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    if encoder.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match encoder.finish() {
        Ok(compressed) if !compressed.is_empty() => text.len() as f32 / compressed.len() as f32,
        _ => 0.0,
    }
}

/// Whether a result is good enough to stop the temperature fallback.
pub fn acceptable(result: &Transcription, options: &DecodeOptions) -> bool {
    let repetitive = compression_ratio(&result.text) > options.compression_ratio_threshold;
    let unlikely = result.avg_log_prob < options.log_prob_threshold;
    // Silence is an acceptable answer: no need to resample it at higher temperatures.
    !repetitive && (!unlikely || is_no_speech(result, options))
}

/// Above this no-speech probability the audio holds no speech whatever the text's confidence:
/// on 3 s of digital silence tiny.en says "you" with no-speech 0.95 and log-probability -0.38.
pub const CERTAIN_NO_SPEECH: f32 = 0.9;

/// Whether the audio held no speech: Whisper is sure of it, or says so and its text is not
/// confident.
pub fn is_no_speech(result: &Transcription, options: &DecodeOptions) -> bool {
    result.no_speech_prob > CERTAIN_NO_SPEECH.max(options.no_speech_threshold)
        || (result.no_speech_prob > options.no_speech_threshold && result.avg_log_prob < options.log_prob_threshold)
}

/// Collapses a phrase of 1 to 8 words repeated three or more times back to back into one. The
/// shortest repeating phrase wins, so `16 16 16 16 16` becomes `16`, not `16 16`.
pub fn remove_repeated_phrases(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    'outer: while i < words.len() {
        for n in 1..=8 {
            if i + 3 * n > words.len() {
                continue;
            }
            let phrase = &words[i..i + n];
            let mut repeats = 1;
            while i + (repeats + 1) * n <= words.len() && same(&words[i + repeats * n..i + (repeats + 1) * n], phrase) {
                repeats += 1;
            }
            if repeats >= 3 {
                out.extend_from_slice(phrase);
                i += repeats * n;
                continue 'outer;
            }
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

/// Whether some phrase of up to `max_words` words is said twice back to back (`April April`,
/// `Press 1. Press 1.`). People do repeat themselves, so this is no reason to drop text; the
/// engines use it to distrust a fitted-window pass, whose failure mode is exactly
/// this, and to decode on the full window instead.
pub fn has_back_to_back_repeat(text: &str, max_words: usize) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    (1..=max_words)
        .any(|n| (0..words.len().saturating_sub(2 * n - 1)).any(|i| same(&words[i..i + n], &words[i + n..i + 2 * n])))
}

fn same(a: &[&str], b: &[&str]) -> bool {
    let norm = |w: &str| w.trim_matches(|c: char| c.is_ascii_punctuation()).to_lowercase();
    a.iter().zip(b).all(|(x, y)| norm(x) == norm(y))
}

/// Removes what Whisper writes for sounds rather than words: `[Music]`, `(beeping)`, `♪ … ♪`.
/// Text left with no letter or digit is empty.
pub fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match (closing, c) {
            (Some(end), c) if c == end => closing = None,
            (Some(_), _) => {}
            (None, '[') => closing = Some(']'),
            (None, '(') => closing = Some(')'),
            (None, '♪' | '♫' | '♬' | '♩') => {}
            (None, c) => out.push(c),
        }
    }
    if out.chars().any(char::is_alphanumeric) {
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        String::new()
    }
}

/// The final cleanup of an accepted result: empty for no speech or sound annotations only,
/// loops removed, whitespace tidied.
pub fn clean(mut result: Transcription, options: &DecodeOptions) -> Transcription {
    let text = strip_annotations(&result.text);
    if is_no_speech(&result, options) || text.is_empty() {
        result.text.clear();
        result.words.clear();
        return result;
    }
    result.text = remove_repeated_phrases(&text);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_text_compresses_well() {
        let normal = "Please hold while we connect your call to the next available agent.";
        let looping = "Thank you. ".repeat(30);
        assert!(compression_ratio(normal) < 2.4, "{}", compression_ratio(normal));
        assert!(compression_ratio(&looping) > 2.4, "{}", compression_ratio(&looping));
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn loops_collapse_but_ordinary_repetition_stays() {
        assert_eq!(remove_repeated_phrases("thank you thank you thank you thank you"), "thank you");
        assert_eq!(remove_repeated_phrases("16 16 16 16 16"), "16");
        assert_eq!(remove_repeated_phrases("16 16 16 16 16 16 16 16 16 16"), "16");
        assert_eq!(remove_repeated_phrases("Hello. Hello. Hello. Is anyone there?"), "Hello. Is anyone there?");
        assert_eq!(remove_repeated_phrases("no no I said no"), "no no I said no");
        assert_eq!(remove_repeated_phrases("press one, press one"), "press one, press one");
        assert_eq!(remove_repeated_phrases(""), "");
    }

    #[test]
    fn back_to_back_repeats_are_found_up_to_the_phrase_length() {
        assert!(has_back_to_back_repeat("April April", 4));
        assert!(has_back_to_back_repeat("Press 4 for the previous message. Press 4 for the previous message.", 12));
        assert!(!has_back_to_back_repeat("Press 4 for the previous message. Press 4 for the previous message.", 5));
        assert!(!has_back_to_back_repeat("press one for sales, press two for support", 12));
        assert!(!has_back_to_back_repeat("", 12));
        assert!(!has_back_to_back_repeat("hello", 12));
        assert!(has_back_to_back_repeat("Please check the number. Please check the number.", 12));
        assert!(has_back_to_back_repeat("Press 4 for the message. Press 4 for the message. Press 4", 12));
        assert!(!has_back_to_back_repeat("Please check the number and dial again.", 12));
    }

    #[test]
    fn no_speech_needs_certainty_or_both_signals() {
        let options = DecodeOptions::default();
        let mut result =
            Transcription { text: "you".into(), no_speech_prob: 0.95, avg_log_prob: -1.5, ..Default::default() };
        assert!(is_no_speech(&result, &options));
        assert_eq!(clean(result.clone(), &options).text, "");
        result.avg_log_prob = -0.2; // sure of the no-speech token: nothing, however confident the text
        assert!(is_no_speech(&result, &options));
        result.no_speech_prob = 0.7; // unsure of it, confident text: keep it
        assert!(!is_no_speech(&result, &options));
        assert_eq!(clean(result, &options).text, "you");
    }

    #[test]
    fn sound_annotations_are_not_speech() {
        assert_eq!(strip_annotations("♪♪♪"), "");
        assert_eq!(strip_annotations(" [Music] "), "");
        assert_eq!(strip_annotations("(beeping) ."), "");
        assert_eq!(strip_annotations("Please hold. [Music] Thank you."), "Please hold. Thank you.");
        assert_eq!(strip_annotations("Press 1 (one) now"), "Press 1 now");
        let options = DecodeOptions::default();
        let music =
            Transcription { text: "♪♪♪".into(), no_speech_prob: 0.75, avg_log_prob: -0.75, ..Default::default() };
        assert_eq!(clean(music, &options).text, "");
    }

    #[test]
    fn fallback_stops_on_plausible_text() {
        let options = DecodeOptions::default();
        let good = Transcription { text: "all circuits are busy now".into(), avg_log_prob: -0.3, ..Default::default() };
        let looping = Transcription { text: "busy ".repeat(40), avg_log_prob: -0.3, ..Default::default() };
        let unsure = Transcription { text: "all circuits".into(), avg_log_prob: -1.8, ..Default::default() };
        assert!(acceptable(&good, &options));
        assert!(!acceptable(&looping, &options));
        assert!(!acceptable(&unsure, &options));
    }
}
