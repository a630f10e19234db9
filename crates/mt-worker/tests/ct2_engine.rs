//! The CTranslate2 engine on real CTranslate2 models built by `scripts/build_test_mt_models.py`
//! (run by `scripts/fetch-test-models.sh`): one-layer Transformers in the NLLB-200, M2M100 and
//! OPUS-MT layouts whose weights make them copy their input. A copy model makes every step
//! checkable: a wrong source language token, a missing target prefix, a mixed-up vocabulary or
//! a lossy split would each change the output.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dragoman_bus::Language;
use dragoman_mt_worker::ct2::{Ct2Model, Ct2Translate, Ct2TranslateOptions, ENGINE, Family};
use dragoman_mt_worker::service::{MtSettings, Translator};
use dragoman_mt_worker::{TranslateError, TranslationEngine};

fn model_path(name: &str) -> PathBuf {
    let dir = dragoman_runtime::config::model_dir().join("mt-test").join(name);
    assert!(dir.join("model.bin").is_file(), "{} missing: run scripts/fetch-test-models.sh", dir.display());
    dir
}

fn lang(code: &str) -> &'static Language {
    Language::parse(code).expect("in the table")
}

/// Greedy decoding. The echo models give their one right answer full probability; a second
/// beam has nothing sensible to copy and never ends, so beam search would run every sentence to
/// the length limit (about 40x slower, same output).
fn greedy() -> Ct2TranslateOptions {
    Ct2TranslateOptions { beam_size: 1, ..Ct2TranslateOptions::default() }
}

/// The three test models in one engine, loaded once.
fn engine() -> &'static Ct2Translate {
    static ENGINE: OnceLock<Ct2Translate> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let paths = ["opus-mt-en-es-echo", "nllb-echo", "m2m100-echo"].map(model_path);
        Ct2Translate::load(&paths, &greedy()).expect("test models load")
    })
}

fn model(name: &str) -> &'static Ct2Model {
    engine().models().iter().find(|m| m.name() == name).expect("loaded")
}

#[test]
fn families_and_languages_are_read_from_the_folders() {
    let opus = model("opus-mt-en-es-echo");
    assert_eq!(opus.family(), Family::OpusMt);
    assert_eq!(opus.languages().iter().map(|l| l.code()).collect::<Vec<_>>(), ["en", "es"]);
    assert!(opus.supports(lang("en"), lang("es")));
    assert!(!opus.supports(lang("es"), lang("en")), "an OPUS-MT model has one direction");

    let nllb = model("nllb-echo");
    assert_eq!(nllb.family(), Family::Nllb);
    let mut codes: Vec<&str> = nllb.languages().iter().map(|l| l.code()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["de", "en", "es", "fr", "pt", "ru", "zh"]);
    assert!(nllb.supports(lang("ru"), lang("pt")));
    assert!(!nllb.supports(lang("en"), lang("en")));
    assert!(!nllb.supports(lang("en"), lang("ja")), "no jpn_Jpan token in this vocabulary");

    assert_eq!(model("m2m100-echo").family(), Family::M2m100);
}

#[test]
fn each_family_builds_its_own_source_tokens_and_target_prefix() {
    let (en, es) = (lang("en"), lang("es"));
    let (tokens, prefix) = model("nllb-echo").encode("Hello", en, es).expect("encode");
    assert_eq!(tokens.first().map(String::as_str), Some("eng_Latn"));
    assert_eq!(tokens.last().map(String::as_str), Some("</s>"));
    assert!(tokens.len() > 2, "the text's pieces are in between: {tokens:?}");
    assert_eq!(prefix, ["spa_Latn"]);

    let (tokens, prefix) = model("m2m100-echo").encode("Hello", en, es).expect("encode");
    assert_eq!((tokens[0].as_str(), prefix.as_slice()), ("__en__", ["__es__".to_owned()].as_slice()));

    let (tokens, prefix) = model("opus-mt-en-es-echo").encode("Hello", en, es).expect("encode");
    assert!(tokens[0].starts_with('▁'), "OPUS-MT starts with the text itself: {tokens:?}");
    assert_eq!(tokens.last().map(String::as_str), Some("</s>"));
    assert!(prefix.is_empty());
}

#[test]
fn generation_starts_with_the_forced_target_language() {
    // The model copies source position t at step t; without the target prefix its first token
    // would be the source language token.
    let hypotheses = model("nllb-echo").generate(&["Thank you."], lang("en"), lang("fr")).expect("generate");
    assert_eq!(hypotheses[0].first().map(String::as_str), Some("fra_Latn"));
    let hypotheses = model("m2m100-echo").generate(&["Thank you."], lang("en"), lang("de")).expect("generate");
    assert_eq!(hypotheses[0].first().map(String::as_str), Some("__de__"));
}

#[test]
fn text_round_trips_through_tokenisation_batching_and_decoding() {
    let texts = [
        "Thank you for calling. Please hold!",
        "Привет, 你好 — naïve café ☎ 42",
        "  one\ttwo\r\nthree\u{7}  ",
        "",
        "Is that Mr. Smith? Yes.",
    ];
    for (name, source, target) in
        [("nllb-echo", "en", "es"), ("m2m100-echo", "en", "pt"), ("opus-mt-en-es-echo", "en", "es")]
    {
        let (source, target) = (lang(source), lang(target));
        assert!(engine().supports(source, target));
        let results = engine().translate_batch(&texts, source, target);
        let got: Vec<String> = results.into_iter().map(|r| r.expect("translated")).collect();
        assert_eq!(
            got,
            [
                "Thank you for calling. Please hold!",
                "Привет, 你好 — naïve café ☎ 42",
                "one two three",
                "",
                "Is that Mr. Smith? Yes.",
            ],
            "{name}"
        );
    }
    assert_eq!(engine().model(lang("en"), lang("es")), "opus-mt-en-es-echo", "the first model with the pair");
    assert_eq!(engine().model(lang("es"), lang("en")), "nllb-echo");
    assert_eq!(engine().name(), ENGINE);
}

#[test]
fn very_long_text_is_split_to_fit_and_never_truncated() {
    // About 900 pieces: past the 512 positions of the test models and the 200-piece sentence
    // limit, with no sentence break at all.
    let words: Vec<String> = (0..300).map(|i| format!("word{i}")).collect();
    let text = words.join(" ");
    let got = engine().translate_batch(&[&text], lang("en"), lang("fr")).pop().expect("one").expect("translated");
    assert_eq!(got, text);

    // The same for a script written without spaces (pieces are joined without one, as Chinese
    // is written).
    let cjk = "你好世界".repeat(60);
    let got = engine().translate_batch(&[&cjk], lang("en"), lang("zh")).pop().expect("one").expect("translated");
    assert_eq!(got, cjk);
}

#[test]
fn a_pair_no_model_has_is_a_clear_error() {
    let err = engine().translate_batch(&["Hello"], lang("en"), lang("ja")).pop().expect("one").expect_err("no model");
    match &err {
        TranslateError::UnsupportedPair { engine, source_code, target_code, available } => {
            assert_eq!((engine.as_str(), *source_code, *target_code), (ENGINE, "en", "ja"));
            assert!(available.contains("opus-mt-en-es-echo: en-es"), "{available}");
            assert!(available.contains("nllb-echo: any pair of"), "{available}");
        }
        other => panic!("expected UnsupportedPair, got {other:?}"),
    }
    assert!(err.to_string().contains("cannot translate en to ja"), "{err}");
}

#[test]
fn folders_that_are_not_translation_models_are_refused_with_the_reason() {
    let options = Ct2TranslateOptions::default();
    let scratch = tempfile::tempdir().expect("tempdir");
    let err = Ct2Model::load(scratch.path(), &options).expect_err("empty folder");
    assert!(err.to_string().contains("missing model.bin"), "{err}");

    // An OPUS-MT folder whose name does not say its pair.
    let unnamed = scratch.path().join("my-model");
    std::fs::create_dir(&unnamed).expect("mkdir");
    for entry in std::fs::read_dir(model_path("opus-mt-en-es-echo")).expect("read") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), unnamed.join(entry.file_name())).expect("copy");
    }
    let err = Ct2Model::load(&unnamed, &options).expect_err("no pair");
    assert!(err.to_string().contains("opus-mt-<source>-<target>"), "{err}");

    let bad = Ct2TranslateOptions { compute_type: "int3".into(), ..options };
    let err = Ct2Model::load(&model_path("nllb-echo"), &bad).expect_err("compute type");
    assert!(err.to_string().contains("unknown compute type"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_many_calls_share_one_batch_and_repeats_come_from_the_cache() {
    let models = Ct2Translate::load(&[model_path("nllb-echo")], &greedy()).expect("load");
    let settings = MtSettings { batch_window: Duration::from_millis(200), max_batch: 32, ..MtSettings::default() };
    let translator = Translator::new(vec![Arc::new(models)], &settings);
    let texts: Vec<String> = (0..8).map(|i| format!("Caller number {i} is waiting.")).collect();
    let (en, es) = (lang("en"), lang("es"));
    let results = futures::future::join_all(texts.iter().map(|t| translator.translate(t, en, es))).await;
    for (text, result) in texts.iter().zip(results) {
        let translated = result.expect("translated");
        assert_eq!(translated.text, *text);
        assert!(!translated.cache_hit);
        assert_eq!((translated.engine.as_str(), translated.model.as_str()), (ENGINE, "nllb-echo"));
    }
    let stats = translator.stats();
    assert_eq!((stats.batches, stats.batched_texts), (1, 8), "eight calls, one engine batch");

    let again = translator.translate(&texts[3], en, es).await.expect("translated");
    assert!(again.cache_hit);
    assert_eq!(again.text, texts[3]);
    assert_eq!(translator.stats().cache_hits, 1);
    assert_eq!(translator.stats().batches, 1, "a cache hit runs no batch");
}
