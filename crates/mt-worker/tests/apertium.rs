//! The Apertium engine on Debian's real `apertium-eng-spa`, and on small pipelines of `sed` (the
//! same mode-file mechanism) where a test needs a stage to die or hang on cue.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use dragoman_bus::Language;
use dragoman_mt_worker::apertium::{Apertium, ApertiumConfig};
use dragoman_mt_worker::chrf::ChrfStats;
use dragoman_mt_worker::{TranslateError, TranslationEngine, prompts, text};

/// chrF of `apertium-eng-spa` on the English prompts against the Spanish ones, measured at 45.5
/// (452 prompts; the same as `apertium -u eng-spa` scored by sacreBLEU 2.6). A drop below this
/// means the pipeline or the text handling lost something.
const MIN_CHRF_ENG_SPA: f64 = 45.0;

fn lang(tag: &str) -> &'static Language {
    Language::parse(tag).expect("language in the table")
}

fn debian_apertium() -> Apertium {
    Apertium::new(ApertiumConfig::default()).expect("apertium and apertium-eng-spa are installed (see .ci/run)")
}

fn translate_one(engine: &Apertium, text: &str, source: &str, target: &str) -> Result<String, TranslateError> {
    engine.translate_batch(&[text], lang(source), lang(target)).pop().expect("one result per text")
}

/// A modes directory with one fake pair, English → German, whose pipeline is `pipeline`.
fn fake_engine(pipeline: &str, timeout: Duration) -> (Apertium, TempDir) {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("eng-deu.mode"), pipeline).expect("write mode");
    let config = ApertiumConfig { modes_dir: dir.0.clone(), timeout, ..ApertiumConfig::default() };
    (Apertium::new(config).expect("fake pair"), dir)
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dragoman-apertium-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn is_running(pid: u32) -> bool {
    // A killed child stays a zombie until reaped; only a live process has state other than Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

fn kill(pid: u32) {
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_running(pid) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn translates_english_to_spanish() {
    let engine = debian_apertium();
    assert!(engine.supports(lang("en"), lang("es")));
    assert!(engine.supports(lang("es"), lang("en")));
    assert_eq!(engine.model(lang("en"), lang("es")), "eng-spa");
    assert_eq!(engine.name(), "apertium");

    let texts = [
        "Please enter your password followed by the pound key.",
        "The person at extension 1234 is busy. Please try again later.",
        "",
        "Thank you for calling.",
    ];
    let results = engine.translate_batch(&texts, lang("en"), lang("es-ES"));
    let results: Vec<String> = results.into_iter().map(|r| r.expect("translated")).collect();
    // What `apertium -u eng-spa` answers for each.
    assert_eq!(results[0], "Complacer introducir vuestra contraseña seguida por el tono de libra.");
    assert_eq!(results[1], "La persona en prórroga 1234 es ocupado. Complacer probar otra vez más tarde.");
    assert_eq!(results[2], "", "empty text, empty translation");
    assert_eq!(results[3], "Gracias Para llamar.");
}

#[test]
fn translates_spanish_with_accents_to_english() {
    let engine = debian_apertium();
    let translation = translate_one(&engine, "Por favor, ingrese su contraseña después del tono.", "es", "en");
    assert_eq!(translation.as_deref(), Ok("Please, ingrese his password after the tone."));
}

#[test]
fn reserved_characters_and_control_characters_survive() {
    let engine = debian_apertium();
    let translation =
        translate_one(&engine, "Press [1] for sales\u{7}, ^2$ for a/b <test> {x} ~ @home \\ now.", "en", "es")
            .expect("translated");
    assert_eq!(translation, "Prensa [1] para ventas, ^2$ para un/b <prueba> {x} ~ @casa \\ ahora.");
    for kept in ["[1]", "^2$", "/b", "{x}", "~", "@", "\\"] {
        assert!(translation.contains(kept), "{kept:?} lost in {translation:?}");
    }
    assert!(!translation.contains('\u{7}'));
    // Unknown words come back unmarked.
    let unknown = translate_one(&engine, "The xyzzyq is blorfing.", "en", "es").expect("translated");
    assert!(unknown.contains("xyzzyq") && !unknown.contains('*') && !unknown.contains('#'), "{unknown}");
}

#[test]
fn long_text_is_split_and_nothing_is_lost() {
    let engine = debian_apertium();
    // One sentence of 2,400 words with no full stop: split at spaces, every piece translated.
    // Numbers pass through Apertium unchanged, so they show that every piece came back in order.
    let long_sentence = (1..=600).map(|i| format!("the room {i}")).collect::<Vec<_>>().join(" and ");
    assert!(long_sentence.len() > 10 * text::MAX_PIECE_CHARS);
    let translation = translate_one(&engine, &long_sentence, "en", "es").expect("translated");
    let numbers: Vec<u32> = translation.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert_eq!(numbers, (1..=600).collect::<Vec<u32>>());
    assert_eq!(translation.to_lowercase().matches("sala").count(), 600, "{translation}");
    // 300 sentences.
    let many = "The house is big. ".repeat(300);
    let translation = translate_one(&engine, &many, "en", "es").expect("translated");
    assert_eq!(translation.matches("La casa es grande.").count(), 300);
}

#[test]
fn unknown_pair_is_a_clear_error() {
    let engine = debian_apertium();
    assert!(!engine.supports(lang("en"), lang("de")));
    let err = translate_one(&engine, "Hello.", "en", "de").expect_err("must be refused");
    assert!(matches!(err, TranslateError::UnsupportedPair { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("apertium cannot translate en to de; available pairs:"), "{message}");
    assert!(message.contains("en-es") && message.contains("es-en"), "{message}");
    // Even an empty text gets the error: the pair, not the text, is wrong.
    assert!(translate_one(&engine, "", "en", "de").is_err());
}

#[test]
fn empty_text_starts_nothing() {
    let engine = debian_apertium();
    assert_eq!(translate_one(&engine, "", "en", "es").as_deref(), Ok(""));
    assert_eq!(translate_one(&engine, " \n\t\u{0} ", "en", "es").as_deref(), Ok(""));
    assert!(engine.stage_pids(lang("en"), lang("es")).is_empty());
}

#[test]
fn a_killed_pipeline_is_restarted_for_the_next_request() {
    let engine = debian_apertium();
    assert_eq!(translate_one(&engine, "Hello.", "en", "es").as_deref(), Ok("Hola."));
    let pids = engine.stage_pids(lang("en"), lang("es"));
    assert!(pids.len() >= 8, "one process per stage: {pids:?}");
    // Kill the tagger, in the middle of the pipeline, while it is idle.
    kill(pids[1]);
    assert_eq!(translate_one(&engine, "Good morning.", "en", "es").as_deref(), Ok("Buenos días."));
    let restarted = engine.stage_pids(lang("en"), lang("es"));
    assert_eq!(restarted.len(), pids.len());
    assert!(restarted.iter().all(|pid| !pids.contains(pid)), "a new pipeline: {pids:?} → {restarted:?}");
    assert!(pids.iter().all(|&pid| !is_running(pid)), "the old stages are gone");
    // And the last stage too.
    kill(*restarted.last().expect("stages"));
    assert_eq!(translate_one(&engine, "Thank you.", "en", "es").as_deref(), Ok("Gracias."));
}

#[test]
fn a_stage_that_dies_mid_request_fails_that_request_only() {
    // `sed -z -u '/poison/Q'` echoes each record and exits, printing nothing, on one that
    // contains "poison".
    let (engine, _dir) = fake_engine("sed -u 's/x/x/' | sed -u '/poison/Q' | sed -u 's/y/y/'", Duration::from_secs(10));
    assert_eq!(translate_one(&engine, "Hello [there]. ", "en", "de").as_deref(), Ok("Hello [there]."));
    let err = translate_one(&engine, "This is poison.", "en", "de").expect_err("must be refused");
    let TranslateError::Engine { engine: name, model, reason } = &err else { panic!("{err:?}") };
    assert_eq!((name.as_str(), model.as_str()), ("apertium", "eng-deu"));
    assert!(reason.contains("exited while translating") && reason.contains("sed exited"), "{reason}");
    assert!(engine.stage_pids(lang("en"), lang("de")).is_empty(), "the broken pipeline is stopped");
    assert_eq!(translate_one(&engine, "Still here.", "en", "de").as_deref(), Ok("Still here."));
    // In a batch, the texts before the poisoned one may or may not have come back, but the
    // poisoned one fails and the engine serves the next batch.
    let results = engine.translate_batch(&["one.", "poison.", "three."], lang("en"), lang("de"));
    assert!(results[1].is_err());
    let results = engine.translate_batch(&["one.", "two.", "three."], lang("en"), lang("de"));
    assert_eq!(results, [Ok("one.".to_owned()), Ok("two.".to_owned()), Ok("three.".to_owned())]);
}

#[test]
fn a_hung_pipeline_times_out_and_is_restarted() {
    let (engine, _dir) = fake_engine("sed -u '/hang/e sleep 3'", Duration::from_millis(300));
    let started = Instant::now();
    let err = translate_one(&engine, "Please hang on.", "en", "de").expect_err("must be refused");
    assert!(started.elapsed() < Duration::from_secs(2), "the timeout, not the stage, ended the wait");
    assert!(matches!(err, TranslateError::Timeout { timeout_ms: 300, .. }), "{err:?}");
    assert_eq!(err.to_string(), "apertium eng-deu gave no answer within 300 ms (restarted)");
    assert_eq!(translate_one(&engine, "Fine now.", "en", "de").as_deref(), Ok("Fine now."));
}

#[test]
fn a_pipeline_that_cannot_start_is_a_clear_error() {
    let (engine, _dir) = fake_engine("dragoman-no-such-program 'x.bin'", Duration::from_secs(1));
    let err = translate_one(&engine, "Hello.", "en", "de").expect_err("must be refused");
    assert_eq!(
        err.to_string(),
        "apertium eng-deu failed: could not start the pipeline: start dragoman-no-such-program: No such file or \
         directory (os error 2)"
    );
}

#[test]
fn pieces_of_a_long_text_come_back_in_order() {
    // An identity pipeline shows exactly what the engine does to text around the translation.
    let (engine, _dir) = fake_engine("sed -u 's/x/x/'", Duration::from_secs(10));
    let words: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
    let long = format!("Start. {} End!\nAnd\u{1b} more?", words.join(" "));
    let translation = translate_one(&engine, &long, "en", "de").expect("translated");
    assert_eq!(translation, text::clean(&long));
    assert!(text::pieces(&long, text::MAX_PIECE_CHARS).len() > 30, "many pieces went through the window");
}

#[test]
fn chrf_of_english_prompts_against_spanish_prompts() {
    let pairs = prompts::english_spanish().expect("asterisk-core-sounds-en and -es are installed (see .ci/run)");
    assert!(pairs.len() > 400, "{} prompt pairs", pairs.len());
    let engine = debian_apertium();
    let sources: Vec<&str> = pairs.iter().map(|p| p.source.as_str()).collect();
    let started = Instant::now();
    let translations = engine.translate_batch(&sources, lang("en"), lang("es"));
    let elapsed = started.elapsed();
    let mut stats = ChrfStats::default();
    for (pair, translation) in pairs.iter().zip(&translations) {
        let translation = translation.as_ref().unwrap_or_else(|err| panic!("{}: {err}", pair.name));
        stats += ChrfStats::sentence(translation, &pair.reference);
    }
    let chrf = stats.score();
    println!(
        "chrF apertium eng-spa on {} Asterisk prompts: {chrf:.2} ({:.0} ms for all)",
        pairs.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    assert!(chrf >= MIN_CHRF_ENG_SPA, "chrF {chrf:.2} < {MIN_CHRF_ENG_SPA}");
}
