//! The CTranslate2 engine on the real Whisper tiny.en (fetched by `scripts/fetch-test-models.sh`)
//! against real telephone speech: the Asterisk English prompts and their reference texts.

#[path = "support/asterisk.rs"]
mod asterisk;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use asterisk::{PROMPTS, audio, edits, normalise};
use dragoman_stt_worker::ct2::{Ct2Options, Ct2Whisper, FeatureWindow};
use dragoman_stt_worker::engine::{DecodeOptions, EngineError, SpeechEngine, Transcription};
use dragoman_stt_worker::guards;

/// Word error rate bound over all of [`PROMPTS`] with the default (30 s) window. Measured
/// 0.048 at temperature 0 (8 errors in 168 words, mostly "caller" heard as "color"); the bound
/// leaves room for a CTranslate2 or compute-type change.
const MAX_WER: f64 = 0.10;

fn model_dir() -> PathBuf {
    let root = std::env::var_os("DRAGOMAN_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/dragoman/models")
    });
    let dir = root.join("whisper/tiny.en-ct2");
    assert!(dir.join("model.bin").exists(), "{} missing: run scripts/fetch-test-models.sh", dir.display());
    dir
}

/// One engine per window kind, shared by the tests (loading takes a moment).
fn engine(window: FeatureWindow) -> &'static Ct2Whisper {
    static FITTED: OnceLock<Ct2Whisper> = OnceLock::new();
    static FULL: OnceLock<Ct2Whisper> = OnceLock::new();
    let cell = match window {
        FeatureWindow::Full => &FULL,
        FeatureWindow::Fit { .. } => &FITTED,
    };
    cell.get_or_init(|| {
        let options = Ct2Options { window, ..Ct2Options::default() };
        Ct2Whisper::load(&model_dir(), &options).unwrap_or_else(|err| panic!("load tiny.en: {err}"))
    })
}

fn default_engine() -> &'static Ct2Whisper {
    engine(Ct2Options::default().window)
}

#[test]
fn a_fitted_window_is_shorter_than_30_s_and_even() {
    let fit = engine(FeatureWindow::SHORT);
    // 2 s and a sample, plus 5 s of padding, rounded up to whole seconds: 8 s.
    assert_eq!(fit.window_frames(2 * 16_000 + 1), 800);
    assert_eq!(fit.window_frames(40 * 16_000), 3_000);
    assert_eq!(default_engine().window_frames(16_000), 3_000);
}

fn transcribe(engine: &Ct2Whisper, samples: &[f32], options: &DecodeOptions) -> Transcription {
    let result = engine.transcribe(samples, options).unwrap_or_else(|err| panic!("transcribe: {err}"));
    guards::clean(result, options)
}

/// Transcribes `prompts` and returns the WER over all of them, printing each line.
fn word_error_rate(engine: &Ct2Whisper, prompts: &[(&str, &str)]) -> f64 {
    let options = DecodeOptions::default();
    let (mut errors, mut words) = (0, 0);
    for (name, reference) in prompts {
        let samples = audio(name);
        let started = Instant::now();
        let result = transcribe(engine, &samples, &options);
        let elapsed = started.elapsed();
        let reference = normalise(reference);
        let wrong = edits(&reference, &normalise(&result.text));
        errors += wrong;
        words += reference.len();
        println!(
            "{name:28} {:5.2} s audio {:5.0} ms  errors {wrong}  logprob {:6.3}  t {:.1}  {:?}",
            samples.len() as f64 / 16_000.0,
            elapsed.as_secs_f64() * 1000.0,
            result.avg_log_prob,
            result.temperature,
            result.text
        );
    }
    let wer = errors as f64 / words as f64;
    println!("WER {wer:.3} ({errors} errors / {words} words)");
    wer
}

#[test]
fn asterisk_prompts_transcribe_within_the_wer_bound() {
    let wer = word_error_rate(default_engine(), PROMPTS);
    assert!(wer <= MAX_WER, "WER {wer:.3} above {MAX_WER}");
}

/// WER bound for the short window (a fitted pass, the full window when it loops, repeats
/// itself or is unsure). Measured 0.089 on these prompts (15 errors in 168 words) against 0.048
/// on the full window: the fitted pass mishears a few short prompts without looping ("caller"
/// as "color", "Call-Forward" as "Call for"), which no check catches. Over 200 prompts the gap
/// is smaller (6.72 % against 5.56 %, `dragoman bench stt --limit 200`).
const MAX_WER_SHORT: f64 = 0.12;

#[test]
fn asterisk_prompts_transcribe_within_the_wer_bound_with_the_short_window() {
    let short = word_error_rate(engine(FeatureWindow::SHORT), PROMPTS);
    assert!(short <= MAX_WER_SHORT, "short-window WER {short:.3} above {MAX_WER_SHORT}");
}

#[test]
fn silence_and_tones_give_no_text() {
    let options = DecodeOptions::default();
    let tone: Vec<f32> =
        (0..3 * 16_000).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 1_000.0 * i as f32 / 16_000.0).sin()).collect();
    let cases = [
        ("digital silence", vec![0.0f32; 3 * 16_000]),
        ("1 kHz tone", tone),
        // Asterisk's own non-speech prompts: recorded silence, a beep, two-tone signals.
        ("silence/3", audio("silence/3")),
        ("beep", audio("beep")),
        ("ascending-2tone", audio("ascending-2tone")),
        ("descending-2tone", audio("descending-2tone")),
    ];
    for (name, samples) in cases {
        let raw = default_engine().transcribe(&samples, &options).expect("transcribe");
        println!(
            "{name}: no_speech_prob {:.3} avg_log_prob {:.3} text {:?}",
            raw.no_speech_prob, raw.avg_log_prob, raw.text
        );
        let cleaned = guards::clean(raw, &options);
        assert_eq!(cleaned.text, "", "{name} must give no text");
    }
}

#[test]
fn word_timestamps_fall_inside_the_audio_in_order() {
    let options = DecodeOptions { word_timestamps: true, ..DecodeOptions::default() };
    let samples = audio("check-number-dial-again");
    let result = default_engine().transcribe(&samples, &options).expect("transcribe");
    let audio_ms = samples.len() as u64 * 1000 / 16_000;
    println!("{:?}", result.words);
    let texts: Vec<String> = result.words.iter().flat_map(|w| normalise(&w.text)).collect();
    assert_eq!(texts, normalise(&result.text));
    let mut previous_end = 0;
    for word in &result.words {
        assert!(word.start_ms >= previous_end && word.start_ms <= word.end_ms, "{word:?}");
        assert!(word.end_ms <= audio_ms + 100, "{word:?} past {audio_ms} ms");
        assert!((0.0..=1.0).contains(&word.probability), "{word:?}");
        previous_end = word.end_ms;
    }
    let spoken_ms = result.words.last().map(|w| w.end_ms - result.words[0].start_ms).unwrap_or(0);
    assert!(spoken_ms > audio_ms / 2, "words span {spoken_ms} ms of {audio_ms} ms");
}

#[test]
fn a_batch_reads_like_one_by_one() {
    let options = DecodeOptions::default();
    let names = ["hello-world", "conf-full", "vm-tocallnum"];
    let samples: Vec<Vec<f32>> = names.iter().map(|n| audio(n)).collect();
    let refs: Vec<&[f32]> = samples.iter().map(Vec::as_slice).collect();
    let batch = default_engine().transcribe_batch(&refs, &options);
    for ((name, samples), result) in names.iter().zip(&samples).zip(batch) {
        let batched = guards::clean(result.expect("batch item"), &options);
        let single = transcribe(default_engine(), samples, &options);
        assert_eq!(normalise(&batched.text), normalise(&single.text), "{name}");
    }
}

#[test]
fn an_initial_prompt_conditions_without_breaking_decoding() {
    let options = DecodeOptions {
        initial_prompt: Some("Voicemail menu of an Asterisk PBX.".into()),
        beam_size: 5,
        ..DecodeOptions::default()
    };
    let result = transcribe(default_engine(), &audio("vm-undelete"), &options);
    let reference = normalise("Press 7 to undelete this message");
    assert!(edits(&reference, &normalise(&result.text)) <= 1, "{:?}", result.text);
}

#[test]
fn an_english_only_model_refuses_other_languages_and_bad_audio() {
    let spanish = DecodeOptions { language: Some("es".into()), ..DecodeOptions::default() };
    assert!(matches!(default_engine().transcribe(&audio("hello-world"), &spanish), Err(EngineError::Unsupported(_))));
    assert!(matches!(
        default_engine().transcribe(&[0.0, f32::NAN], &DecodeOptions::default()),
        Err(EngineError::BadAudio(_))
    ));
    assert!(!default_engine().multilingual());
    assert_eq!(default_engine().model(), "tiny.en");
    assert_eq!(default_engine().engine(), "ctranslate2");
}

#[test]
fn a_missing_or_corrupt_model_folder_fails_to_load_clearly() {
    let options = Ct2Options::default();
    let reason = |dir: &std::path::Path| match Ct2Whisper::load(dir, &options) {
        Err(EngineError::Model { path, reason }) => {
            assert_eq!(path, dir.display().to_string());
            reason
        }
        other => panic!("expected a model error, got {other:?}"),
    };
    let scratch = std::env::temp_dir().join(format!("dragoman-ct2-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(reason(&scratch), "not a folder");

    std::fs::create_dir_all(&scratch).expect("scratch dir");
    assert_eq!(reason(&scratch), "missing model.bin");

    for file in ["config.json", "tokenizer.json", "vocabulary.txt"] {
        std::fs::copy(model_dir().join(file), scratch.join(file)).expect("copy model file");
    }
    std::fs::write(scratch.join("model.bin"), b"not a ctranslate2 model").expect("write corrupt model");
    let corrupt = reason(&scratch);
    assert!(corrupt.starts_with("ctranslate2:"), "{corrupt}");

    let unknown = Ct2Options { compute_type: "int3".into(), ..Ct2Options::default() };
    assert!(matches!(Ct2Whisper::load(&model_dir(), &unknown), Err(EngineError::Model { .. })));
    let _ = std::fs::remove_dir_all(&scratch);
}
