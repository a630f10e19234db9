//! A transcript as SRT, WebVTT or plain text. One cue per final utterance, timed from call
//! start; its text is `<leg>: <text>`, then one line per translation, `[<language>] <text>`
//! (only the language asked for when the request names one).

use std::fmt::Write as _;

use crate::store::{Transcript, TranscriptLine};

/// `HH:MM:SS<sep>mmm`: SRT separates milliseconds with `,`, WebVTT with `.`.
pub fn timestamp(ms: u64, separator: char) -> String {
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{seconds:02}{separator}{millis:03}")
}

/// The cue text of one line; a cue never contains an empty line (it would end the cue).
fn cue_text(line: &TranscriptLine, target: Option<&str>) -> String {
    let clean = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text = format!("{}: {}", line.leg, clean(&line.text));
    for (language, translation) in &line.translations {
        if target.is_none_or(|target| target == language) {
            let _ = write!(text, "\n[{language}] {}", clean(&translation.text));
        }
    }
    text
}

/// End of a cue: never before its start, so a player accepts it.
fn end_ms(line: &TranscriptLine) -> u64 {
    line.end_ms.max(line.start_ms + 1)
}

pub fn srt(transcript: &Transcript, target: Option<&str>) -> String {
    let mut out = String::new();
    for (index, line) in transcript.lines.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            index + 1,
            timestamp(line.start_ms, ','),
            timestamp(end_ms(line), ','),
            cue_text(line, target)
        );
    }
    out
}

pub fn webvtt(transcript: &Transcript, target: Option<&str>) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for line in &transcript.lines {
        // WebVTT cue text must not contain `-->`, and `<`/`&` start markup.
        let text = cue_text(line, target).replace('&', "&amp;").replace('<', "&lt;").replace("-->", "--&gt;");
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            line.utterance_id,
            timestamp(line.start_ms, '.'),
            timestamp(end_ms(line), '.'),
            text
        );
    }
    out
}

/// `[HH:MM:SS] leg: text`, translations indented below.
pub fn text(transcript: &Transcript, target: Option<&str>) -> String {
    let mut out = String::new();
    for line in &transcript.lines {
        let stamp = &timestamp(line.start_ms, '.')[..8];
        let cue = cue_text(line, target).replace('\n', "\n    ");
        let _ = writeln!(out, "[{stamp}] {cue}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_each_format() {
        assert_eq!(timestamp(0, ','), "00:00:00,000");
        assert_eq!(timestamp(3_723_004, ','), "01:02:03,004");
        assert_eq!(timestamp(61_500, '.'), "00:01:01.500");
    }
}
