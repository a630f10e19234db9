//! Real telephone speech for the engine tests: Asterisk English prompts with their reference
//! text, 8 kHz audio upsampled to the engines' 16 kHz, and a word error rate.
//!
//! Included by the engine tests with `#[path = "support/asterisk.rs"] mod asterisk;` so every
//! engine is measured on the same prompts with the same normalisation.

use dragoman_media_ingest::resample::Resampler;

/// Prompts between 1 and 4.5 s with spoken reference text, drawn at random (seed 7) from
/// Debian's `core-sounds-en.txt` (asterisk-core-sounds-en, CC-BY-SA-3.0); the text is copied
/// here because minimal images drop /usr/share/doc. The same list as `ct2_engine.rs`, so the
/// two engines' WERs compare.
pub const PROMPTS: &[(&str, &str)] = &[
    ("call-fwd-no-ans", "Call-Forward on No Answer."),
    ("call-waiting", "Call waiting."),
    ("check-number-dial-again", "Please check the number and dial again."),
    ("conf-enteringno", "You are entering conference number"),
    ("conf-extended", "The conference has been extended."),
    ("conf-full", "That conference is full."),
    ("conf-hasjoin", "is now in the conference."),
    ("conf-hasleft", "has left the conference."),
    ("conf-invalid", "That is not a valid conference number.  Please try again."),
    ("conf-noempty", "No empty conferences currently exist."),
    ("conf-otherinparty", "other participants in the conference"),
    ("confbridge-conf-end", "the conference has ended"),
    ("confbridge-dec-talk-vol-in", "To decrease your speaking volume to other participants..."),
    ("confbridge-inc-list-vol-in", "To increase the audio volume from other participants..."),
    ("confbridge-removed", "You have been removed from the conference."),
    ("dir-first", "letters of your party's first name."),
    ("disabled", "Disabled."),
    ("from-unknown-caller", "From an unknown caller."),
    ("hello-world", "Hello world."),
    ("info-about-last-call", "Information about your last call."),
    ("privacy-incorrect", "I'm sorry, that number is not valid."),
    ("queue-quantity2", "... callers waiting to speak with a representative."),
    ("queue-thereare", "You are currently caller number"),
    ("something-terribly-wrong", "Something is terribly wrong!"),
    ("spy-console", "Console"),
    ("telephone-number", "Telephone number."),
    ("to-call-this-number", "To call this number."),
    ("tt-monkeysintro", "They have been carried away by monkeys"),
    ("vm-pls-try-again", "please try again"),
    ("vm-prev", "Press 4 for the previous message"),
    ("vm-savedto", "saved to"),
    ("vm-tocallnum", "press 1 to call this number"),
    ("vm-tocancelmsg", "press star to cancel this message"),
    ("vm-undelete", "Press 7 to undelete this message"),
];

/// A prompt upsampled to 16 kHz.
pub fn audio(name: &str) -> Vec<f32> {
    let mut resampler = Resampler::new(8_000, 16_000).expect("8 -> 16 kHz");
    let mut out = Vec::new();
    resampler.process_i16(&dragoman_test_support::prompt(name), &mut out);
    resampler.flush(&mut out);
    out
}

/// The project's one WER normalisation and edit distance (see `dragoman_stt_worker::accuracy`).
pub use dragoman_stt_worker::accuracy::{normalise, word_errors as edits};
