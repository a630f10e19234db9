//! The whisper.cpp engine on the real Whisper tiny.en against real telephone speech.
//!
//! The fixture is the conversion itself: the CTranslate2 tiny.en folder (fetched by
//! `scripts/fetch-test-models.sh`) is converted to a ggml file in a scratch folder, which
//! whisper.cpp then loads. A wrong name, shape, type, vocabulary or mel filterbank shows up here
//! as a load failure or as text far from the reference.

#[path = "support/asterisk.rs"]
mod asterisk;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use asterisk::{PROMPTS, audio, edits, normalise};
use dragoman_stt_worker::engine::{DecodeOptions, EngineError, SpeechEngine, Transcription};
use dragoman_stt_worker::ggml_convert::{ConvertError, ConvertReport, convert_ct2_to_ggml};
use dragoman_stt_worker::guards;
use dragoman_stt_worker::whisper_cpp::{WhisperCpp, WhisperCppConfig};

/// WER bounds over all of [`PROMPTS`]. Measured on tiny.en (one thread, on a loaded 2-core
/// machine): fitted window 0.095 (16 errors / 168 words; median about 0.35 s per prompt when
/// the machine is quiet), full window 0.065 (11 / 168; about 2 to 4 s per prompt). The fitted
/// window loses a little on the shortest prompts ("caller" heard as "color"); the bounds leave
/// room for a whisper.cpp update.
const MAX_WER_FITTED: f64 = 0.15;
const MAX_WER_FULL: f64 = 0.10;

fn ct2_model_dir() -> PathBuf {
    let root = std::env::var_os("DRAGOMAN_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/dragoman/models")
    });
    let dir = root.join("whisper/tiny.en-ct2");
    assert!(dir.join("model.bin").exists(), "{} missing: run scripts/fetch-test-models.sh", dir.display());
    dir
}

/// A scratch folder of this test process, removed by the caller.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dragoman-ggml-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

struct Fixture {
    report: ConvertReport,
    /// Encoder context sized to each utterance (the default).
    fitted: WhisperCpp,
    /// The full 30-second window.
    full: WhisperCpp,
}

/// Converts tiny.en once and loads it twice; the converted file is deleted once loaded
/// (whisper.cpp keeps the weights in memory).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = scratch("fixture");
        let output = dir.join("ggml-tiny.en.bin");
        let started = Instant::now();
        let report = convert_ct2_to_ggml(&ct2_model_dir(), &output).unwrap_or_else(|err| panic!("convert: {err}"));
        println!("converted in {:.0} ms: {:?}", started.elapsed().as_secs_f64() * 1000.0, report.hparams);
        // One thread: ggml's workers spin while they wait for each other, which on a small
        // shared machine (CI has two cores) costs far more than it gains.
        let config = WhisperCppConfig { threads: 1, ..WhisperCppConfig::default() };
        let fitted = WhisperCpp::load(&output, "tiny.en", config.clone()).unwrap_or_else(|err| panic!("load: {err}"));
        let full_config = WhisperCppConfig { audio_ctx_margin_frames: None, ..config };
        let full = WhisperCpp::load(&output, "tiny.en", full_config).unwrap_or_else(|err| panic!("load: {err}"));
        let _ = std::fs::remove_dir_all(&dir);
        Fixture { report, fitted, full }
    })
}

/// The tensors whisper.cpp's `whisper_model_load` creates for a model of these sizes (its
/// `ASR_TENSOR_NAMES` table), spelled out here independently of the converter's planner.
fn whisper_cpp_tensor_names(n_audio_layer: usize, n_text_layer: usize) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = [
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
        "encoder.ln_post.weight",
        "encoder.ln_post.bias",
        "decoder.positional_embedding",
        "decoder.token_embedding.weight",
        "decoder.ln.weight",
        "decoder.ln.bias",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let block = [
        "mlp_ln.weight",
        "mlp_ln.bias",
        "mlp.0.weight",
        "mlp.0.bias",
        "mlp.2.weight",
        "mlp.2.bias",
        "attn_ln.weight",
        "attn_ln.bias",
        "attn.query.weight",
        "attn.query.bias",
        "attn.key.weight",
        "attn.value.weight",
        "attn.value.bias",
        "attn.out.weight",
        "attn.out.bias",
    ];
    let cross = [
        "cross_attn_ln.weight",
        "cross_attn_ln.bias",
        "cross_attn.query.weight",
        "cross_attn.query.bias",
        "cross_attn.key.weight",
        "cross_attn.value.weight",
        "cross_attn.value.bias",
        "cross_attn.out.weight",
        "cross_attn.out.bias",
    ];
    for i in 0..n_audio_layer {
        names.extend(block.iter().map(|t| format!("encoder.blocks.{i}.{t}")));
    }
    for i in 0..n_text_layer {
        names.extend(block.iter().chain(&cross).map(|t| format!("decoder.blocks.{i}.{t}")));
    }
    names
}

#[test]
fn the_converted_model_has_whisper_cpps_layout_for_tiny_en() {
    let report = &fixture().report;
    let h = report.hparams;
    assert_eq!(
        (h.n_vocab, h.n_audio_ctx, h.n_audio_state, h.n_audio_head, h.n_audio_layer),
        (51_864, 1_500, 384, 6, 4)
    );
    assert_eq!((h.n_text_ctx, h.n_text_state, h.n_text_head, h.n_text_layer, h.n_mels), (448, 384, 6, 4, 80));
    // GPT-2's 50256 BPE tokens; whisper.cpp numbers <|endoftext|> and the rest itself.
    assert_eq!(report.tokens_written, 50_256);
    let written: BTreeSet<String> = report.tensors.iter().cloned().collect();
    assert_eq!(written.len(), report.tensors.len(), "a tensor was written twice");
    assert_eq!(written, whisper_cpp_tensor_names(4, 4));
    assert_eq!(report.tensors.len(), 167);
    assert!(!fixture().fitted.multilingual());
}

fn transcribe(engine: &WhisperCpp, samples: &[f32], options: &DecodeOptions) -> Transcription {
    let result = engine.transcribe(samples, options).unwrap_or_else(|err| panic!("transcribe: {err}"));
    guards::clean(result, options)
}

/// Transcribes every prompt, prints a line each and a summary, and returns the WER.
fn word_error_rate(label: &str, engine: &WhisperCpp) -> f64 {
    let options = DecodeOptions::default();
    let (mut errors, mut words) = (0, 0);
    let (mut total, mut audio_total) = (Duration::ZERO, 0.0);
    for (name, reference) in PROMPTS {
        let samples = audio(name);
        let started = Instant::now();
        let result = transcribe(engine, &samples, &options);
        let elapsed = started.elapsed();
        total += elapsed;
        audio_total += samples.len() as f64 / 16_000.0;
        let reference = normalise(reference);
        let wrong = edits(&reference, &normalise(&result.text));
        errors += wrong;
        words += reference.len();
        println!(
            "{label} {name:28} {:4.2} s audio ctx {:4} {:5.0} ms  errors {wrong}  logprob {:6.3}  nospeech {:.3}  t {:.1}  {:?}",
            samples.len() as f64 / 16_000.0,
            engine.audio_ctx_for(samples.len()),
            elapsed.as_secs_f64() * 1000.0,
            result.avg_log_prob,
            result.no_speech_prob,
            result.temperature,
            result.text
        );
    }
    let wer = errors as f64 / words as f64;
    println!(
        "{label}: WER {wer:.3} ({errors} errors / {words} words); {} prompts, {audio_total:.1} s audio, {:.0} ms total, {:.0} ms mean, RTF {:.3}",
        PROMPTS.len(),
        total.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0 / PROMPTS.len() as f64,
        total.as_secs_f64() / audio_total
    );
    wer
}

#[test]
fn asterisk_prompts_transcribe_within_the_wer_bound_with_a_fitted_window() {
    let wer = word_error_rate("fitted", &fixture().fitted);
    assert!(wer <= MAX_WER_FITTED, "WER {wer:.3} above {MAX_WER_FITTED}");
}

#[test]
fn asterisk_prompts_transcribe_within_the_wer_bound_with_the_full_window() {
    let wer = word_error_rate("full", &fixture().full);
    assert!(wer <= MAX_WER_FULL, "WER {wer:.3} above {MAX_WER_FULL}");
}

#[test]
fn the_fitted_window_follows_the_audio_length() {
    let engine = &fixture().fitted;
    let margin = WhisperCppConfig::default().audio_ctx_margin_frames.expect("a margin by default");
    // 2 s = 100 positions of 20 ms.
    assert_eq!(engine.audio_ctx_for(32_000), 100 + margin);
    assert_eq!(engine.audio_ctx_for(32_001), 101 + margin);
    // A window's worth or more: whisper.cpp's full context (0).
    assert_eq!(engine.audio_ctx_for(30 * 16_000), 0);
    assert_eq!(fixture().full.audio_ctx_for(32_000), 0);
}

#[test]
fn silence_and_a_tone_give_no_text() {
    let options = DecodeOptions::default();
    let silence = vec![0.0f32; 3 * 16_000];
    let tone: Vec<f32> =
        (0..3 * 16_000).map(|i| 0.3 * (2.0 * std::f32::consts::PI * 1_000.0 * i as f32 / 16_000.0).sin()).collect();
    let asterisk: Vec<(&str, Vec<f32>)> =
        ["silence/3", "beep", "ascending-2tone", "descending-2tone"].into_iter().map(|n| (n, audio(n))).collect();
    let cases = [("silence", &silence), ("tone", &tone)].into_iter().chain(asterisk.iter().map(|(n, a)| (*n, a)));
    for (name, samples) in cases {
        let raw = fixture().fitted.transcribe(samples, &options).expect("transcribe");
        println!(
            "{name}: no_speech_prob {:.3} avg_log_prob {:.3} text {:?}",
            raw.no_speech_prob, raw.avg_log_prob, raw.text
        );
        assert!((0.0..=1.0).contains(&raw.no_speech_prob));
        let cleaned = guards::clean(raw, &options);
        assert_eq!(cleaned.text, "", "{name}");
    }
}

#[test]
fn word_timestamps_fall_inside_the_audio_in_order() {
    let options = DecodeOptions { word_timestamps: true, ..DecodeOptions::default() };
    let samples = audio("check-number-dial-again");
    let result = fixture().fitted.transcribe(&samples, &options).expect("transcribe");
    let audio_ms = samples.len() as u64 * 1000 / 16_000;
    println!("{:?}", result.words);
    let texts: Vec<String> = result.words.iter().flat_map(|w| normalise(&w.text)).collect();
    assert_eq!(texts, normalise(&result.text));
    let mut previous_start = 0;
    for word in &result.words {
        assert!(word.start_ms >= previous_start && word.start_ms <= word.end_ms, "{word:?}");
        assert!(word.end_ms <= audio_ms + 100, "{word:?} past {audio_ms} ms");
        assert!((0.0..=1.0).contains(&word.probability), "{word:?}");
        previous_start = word.start_ms;
    }
}

#[test]
fn an_initial_prompt_and_beam_search_decode_correctly() {
    let options = DecodeOptions {
        initial_prompt: Some("Voicemail menu of an Asterisk PBX.".into()),
        beam_size: 5,
        ..DecodeOptions::default()
    };
    let result = transcribe(&fixture().fitted, &audio("vm-undelete"), &options);
    let reference = normalise("Press 7 to undelete this message");
    assert!(edits(&reference, &normalise(&result.text)) <= 1, "{:?}", result.text);
}

#[test]
fn an_english_only_model_refuses_other_languages_and_bad_audio() {
    let engine = &fixture().fitted;
    let spanish = DecodeOptions { language: Some("es".into()), ..DecodeOptions::default() };
    assert!(matches!(engine.transcribe(&audio("hello-world"), &spanish), Err(EngineError::Unsupported(_))));
    assert!(matches!(engine.transcribe(&[0.0, f32::NAN], &DecodeOptions::default()), Err(EngineError::BadAudio(_))));
    let empty = engine.transcribe(&[], &DecodeOptions::default()).expect("empty audio is no speech");
    assert_eq!((empty.text.as_str(), empty.no_speech_prob), ("", 1.0));
    // A 50 ms fragment (below whisper.cpp's 100 ms minimum) still gets an answer.
    engine.transcribe(&audio("hello-world")[..800], &DecodeOptions::default()).expect("short fragment");
    assert_eq!((engine.model(), engine.engine()), ("tiny.en", "whisper_cpp"));
}

/// A scratch copy of the CTranslate2 folder whose `model.bin` is `model` (vocabulary and
/// config copied from the real one).
fn ct2_folder_with(name: &str, model: &[u8]) -> PathBuf {
    let dir = scratch(name);
    for file in ["config.json", "vocabulary.txt"] {
        std::fs::copy(ct2_model_dir().join(file), dir.join(file)).expect("copy model file");
    }
    std::fs::write(dir.join("model.bin"), model).expect("write model.bin");
    dir
}

fn convert_error(dir: &Path) -> ConvertError {
    let output = dir.join("out.bin");
    let err = convert_ct2_to_ggml(dir, &output).expect_err("conversion must fail");
    assert!(!output.exists(), "no output on failure");
    assert!(!dir.join("out.bin.partial").exists(), "no partial output left behind");
    println!("{err}");
    err
}

#[test]
fn a_truncated_or_corrupt_model_bin_fails_with_a_clear_error() {
    let real = std::fs::read(ct2_model_dir().join("model.bin")).expect("read model.bin");

    // Cut inside the header, inside the variable index, inside a tensor's data, and just
    // before the alias table at the end.
    for (cut, expected) in
        [(3, "the binary version"), (40, "variable"), (real.len() / 2, "data of"), (real.len() - 4, "")]
    {
        let dir = ct2_folder_with("truncated", &real[..cut]);
        let err = convert_error(&dir);
        assert!(matches!(err, ConvertError::Truncated { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("truncated") && err.to_string().contains(expected), "cut at {cut}: {err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    let dir = ct2_folder_with("garbage", b"this is not a ctranslate2 model at all, just text");
    assert!(matches!(convert_error(&dir), ConvertError::Unsupported { .. } | ConvertError::Corrupt { .. }));
    let _ = std::fs::remove_dir_all(&dir);

    // A flipped byte in a shape: the size check catches it.
    let mut flipped = real.clone();
    let name = b"decoder/embeddings/weight\0";
    let at = flipped.windows(name.len()).position(|w| w == name).expect("embedding header") + name.len() + 1;
    flipped[at] ^= 0x40;
    let dir = ct2_folder_with("flipped", &flipped);
    let err = convert_error(&dir);
    assert!(matches!(err, ConvertError::Corrupt { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    // No vocabulary at all.
    let dir = ct2_folder_with("novocab", &real);
    std::fs::remove_file(dir.join("vocabulary.txt")).expect("remove vocabulary");
    assert!(matches!(convert_error(&dir), ConvertError::Vocabulary { .. }));
    let _ = std::fs::remove_dir_all(&dir);

    // Nothing there.
    let dir = scratch("empty");
    assert!(matches!(convert_error(&dir), ConvertError::Io { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn whisper_cpp_refuses_a_file_that_is_not_a_ggml_model() {
    let dir = scratch("notggml");
    let path = dir.join("model.bin");
    std::fs::write(&path, b"not a ggml model").expect("write");
    match WhisperCpp::load(&path, "bad", WhisperCppConfig::default()) {
        Err(EngineError::Model { path: p, reason }) => {
            assert_eq!(p, path.display().to_string());
            println!("{reason}");
        }
        other => panic!("expected a model error, got {other:?}"),
    }
    assert!(matches!(
        WhisperCpp::load(&dir.join("missing.bin"), "bad", WhisperCppConfig::default()),
        Err(EngineError::Model { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
