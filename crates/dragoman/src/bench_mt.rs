//! `dragoman bench mt`: every translation engine available here, on the same English sentences
//! into Spanish.
//!
//! The sentences are the Asterisk prompt transcripts in English, paired with the Spanish ones
//! ([`prompts::english_spanish`]: 452 prompts, CC-BY-SA-3.0). A "sentence" here is one prompt,
//! as the worker gets one final transcript: most are one sentence, a few are several, which the
//! engines split themselves. The engines are Apertium (when an English → Spanish pair is
//! installed) and each CTranslate2 model of `mt.models`, each loaded alone; with no model
//! configured, the test models `scripts/fetch-test-models.sh` builds (`mt-test/*-echo`), which
//! are real one-layer CTranslate2 Transformers that copy their input: they measure the engine's
//! machinery (tokenisation, batching, decoding), not a translation model's speed or quality.
//! They are decoded greedily whatever `mt.beam_size` says (see [`ct2_subject`]).
//!
//! Per engine:
//!
//! - **One by one**: each sentence translated alone, in sequence (after one warm-up call):
//!   sentences per second, and p50/p95 of the time per sentence.
//! - **Batched**: the same sentences given to the engine [`BATCH_SIZES`] at a time; the best
//!   batched throughput over the one-by-one throughput is `batching_speedup`.
//! - **Across calls**: [`CALLS`] simulated calls at once, each sending its share of the
//!   sentences one after another, through the worker's [`Translator`] (the batcher, with
//!   `mt.max_batch` and `mt.batch_window_ms`, cache off), against one call sending all of them:
//!   how much batching across calls gains, and how many texts an engine call carried.
//! - **chrF** against the Spanish prompts (corpus chrF as sacreBLEU computes it), for every
//!   engine but the echo models.
//!
//! And once, on the engine the worker would use for English → Spanish: the cache hit rate of a
//! simulated IVR call ([`ivr_script`]), with the latency of hits and misses.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dragoman_bus::Language;
use dragoman_mt_worker::apertium::{Apertium, ApertiumConfig};
use dragoman_mt_worker::chrf::ChrfStats;
use dragoman_mt_worker::ct2::{Ct2Translate, Ct2TranslateOptions};
use dragoman_mt_worker::prompts::{self, PromptPair};
use dragoman_mt_worker::{MtSettings, TranslateError, TranslationEngine, Translator, text};
use dragoman_runtime::Config;
use dragoman_runtime::config::{MtEngineKind, model_dir};
use serde_json::{Value, json};

use super::percentiles;
use super::stt::round;

/// Sentences per engine call in the batched measurement.
const BATCH_SIZES: [usize; 2] = [8, 32];
/// Simulated calls translating at once through the batcher.
const CALLS: usize = 16;
/// Where `scripts/fetch-test-models.sh` builds the echo models, under the model directory.
const TEST_MODELS: &str = "mt-test";
/// The simulated IVR calls, one after another, through one cache.
const IVR_CALLS: usize = 10;
/// What a caller waiting in an Asterisk queue hears, in order, each round.
const IVR_WAITING: [&str; 4] = ["queue-thereare", "queue-holdtime", "queue-periodic-announce", "queue-thankyou"];
/// Rounds of the waiting announcements before the agent answers.
const IVR_ROUNDS: usize = 3;
/// The last announcement before the agent answers.
const IVR_NEXT: &str = "queue-youarenext";
/// Lines of conversation per call once the agent answers; each is said once in the whole run.
const IVR_CONVERSATION_LINES: usize = 6;

/// What to run on.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Sentences to translate, spread evenly over the corpus; `None` = all.
    pub limit: Option<usize>,
}

/// One engine and the pair it is measured on.
struct Subject {
    /// The JSON key: `apertium`, `ctranslate2/<model>`.
    key: String,
    engine: Arc<dyn TranslationEngine>,
    source: &'static Language,
    target: &'static Language,
    /// A test model that copies its input: its speed is real, its translations are not.
    echo: bool,
    /// Whether the worker would load it with this configuration (the echo models it would not).
    configured: bool,
    /// CTranslate2's beam (none for Apertium).
    beam_size: Option<usize>,
    /// Loading, and for Apertium starting the pipeline.
    load_ms: f64,
}

/// What the engine itself did, without the service around it.
#[derive(Debug, Default)]
struct Direct {
    latencies: Vec<Duration>,
    sequential_seconds: f64,
    /// Per batch size, the seconds for all sentences.
    batched_seconds: Vec<(usize, f64)>,
    /// The one-by-one translations; `None` where the engine failed.
    translations: Vec<Option<String>>,
    failures: Failures,
}

/// Texts an engine did not translate, and why the first did not.
#[derive(Debug, Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, text: &str, err: &TranslateError) {
        tracing::warn!(error = %err, text, "translation failed");
        self.count += 1;
        self.first.get_or_insert_with(|| format!("{text:?}: {err}"));
    }

    fn merge(&mut self, other: Failures) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// Sentences through the [`Translator`] from some number of calls at once.
#[derive(Debug)]
struct ThroughService {
    calls: usize,
    seconds: f64,
    latencies: Vec<Duration>,
    failures: Failures,
    batches: u64,
    batched_texts: u64,
}

impl ThroughService {
    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds.max(f64::EPSILON)
    }

    fn average_batch(&self) -> f64 {
        self.batched_texts as f64 / self.batches.max(1) as f64
    }
}

pub async fn run(config: &Config, options: &Options) -> anyhow::Result<Value> {
    let pairs = prompts::english_spanish()
        .context("read the Asterisk prompt transcripts (asterisk-core-sounds-en and asterisk-core-sounds-es)")?;
    let chosen: Vec<&PromptPair> = match options.limit {
        Some(limit) if limit < pairs.len() => {
            let limit = limit.max(1);
            (0..limit).map(|i| &pairs[i * pairs.len() / limit]).collect()
        }
        _ => pairs.iter().collect(),
    };
    let texts: Arc<Vec<String>> = Arc::new(chosen.iter().map(|p| p.source.clone()).collect());
    let references: Vec<&str> = chosen.iter().map(|p| p.reference.as_str()).collect();
    let source_sentences: usize = texts.iter().map(|t| text::pieces(t, text::MAX_PIECE_CHARS).len()).sum();
    let mt = &config.mt;
    let settings = MtSettings::from_config(mt);
    println!(
        "mt: {} English prompts ({source_sentences} sentences) into Spanish: one by one, in batches of {:?}, and as {CALLS} \
         calls through the batcher (max_batch {}, window {} ms, cache off); CTranslate2 {}, beam {}, threads {}",
        texts.len(),
        BATCH_SIZES,
        mt.max_batch,
        mt.batch_window_ms,
        mt.compute_type,
        mt.beam_size,
        if mt.threads == 0 { "CTranslate2's default".to_owned() } else { mt.threads.to_string() }
    );

    let loading = config.clone();
    let subjects = tokio::task::spawn_blocking(move || load_subjects(&loading)).await?;
    if subjects.is_empty() {
        bail!("no translation engine here: no Apertium English → Spanish pair, no mt.models, no test models");
    }
    let mut results = serde_json::Map::new();
    let mut measured: Vec<Subject> = Vec::new();
    for (key, subject) in subjects {
        let outcome = match subject {
            Ok(subject) => measure(&subject, &texts, &references, &settings).await.map(|value| (subject, value)),
            Err(err) => Err(err),
        };
        match outcome {
            Ok((subject, value)) => {
                results.insert(key, value);
                measured.push(subject);
            }
            Err(err) => {
                println!("{key}: not measured: {err:#}");
                results.insert(key, json!({ "error": format!("{err:#}") }));
            }
        }
    }
    let chrf_apertium = results.get("apertium").and_then(|v| v.get("chrf")).cloned().unwrap_or(Value::Null);
    results.insert("chrf_apertium_en_es".into(), chrf_apertium);

    // The IVR call runs on the engine the worker would route English → Spanish to: the first
    // configured one that has it (so not an echo model, unless one is configured).
    let ivr_subject = measured.iter().find(|s| s.configured && s.target.code() == "es").or_else(|| measured.first());
    let ivr = match ivr_subject {
        Some(subject) => ivr_call(subject, &pairs, &settings).await,
        None => Value::Null,
    };
    results.insert("ivr_cache_hit_rate".into(), ivr.get("cache_hit_rate").cloned().unwrap_or(Value::Null));
    results.insert("ivr".into(), ivr);
    results.insert("sentences".into(), json!(texts.len()));
    results.insert("source_sentences".into(), json!(source_sentences));
    results.insert("calls".into(), json!(CALLS));
    results.insert("max_batch".into(), json!(mt.max_batch));
    results.insert("batch_window_ms".into(), json!(mt.batch_window_ms));
    results.insert("threads".into(), json!(mt.threads));
    results.insert("compute_type".into(), json!(mt.compute_type));
    results.insert("beam_size".into(), json!(mt.beam_size));
    Ok(Value::Object(results))
}

/// The engines to measure, in the order of `mt.engines`, each with its JSON key. One that
/// cannot be loaded is reported, not fatal.
fn load_subjects(config: &Config) -> Vec<(String, anyhow::Result<Subject>)> {
    let mut subjects = Vec::new();
    for kind in &config.mt.engines {
        match kind {
            MtEngineKind::Apertium => subjects.push(("apertium".to_owned(), apertium_subject(config))),
            MtEngineKind::Ctranslate2 => {
                let (paths, configured) =
                    if config.mt.models.is_empty() { (test_models(), false) } else { (config.mt.model_paths(), true) };
                for path in paths {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    subjects.push((format!("ctranslate2/{name}"), ct2_subject(config, path, configured)));
                }
            }
        }
    }
    subjects
}

/// The echo models under `$DRAGOMAN_MODEL_DIR/mt-test`, by name; none when it is absent.
fn test_models() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(model_dir().join(TEST_MODELS)) else { return Vec::new() };
    let mut paths: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.join("model.bin").is_file()).collect();
    paths.sort();
    paths
}

fn apertium_subject(config: &Config) -> anyhow::Result<Subject> {
    let (source, target) = (Language::parse("en")?, Language::parse("es")?);
    let started = Instant::now();
    // As `dragoman_mt_worker::load_engines` sets it up.
    let engine = Apertium::new(ApertiumConfig {
        modes_dir: config.mt.apertium_modes_dir.clone(),
        timeout: Duration::from_secs(10),
        max_piece_chars: text::MAX_PIECE_CHARS,
    })?;
    if !engine.supports(source, target) {
        let pairs: Vec<&str> = engine.pairs().map(|p| p.mode.as_str()).collect();
        bail!("no English → Spanish pair (installed: {}; apt-get install apertium-eng-spa)", pairs.join(", "));
    }
    engine.start(source, target)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(Subject {
        key: "apertium".to_owned(),
        engine: Arc::new(engine),
        source,
        target,
        echo: false,
        configured: true,
        beam_size: None,
        load_ms,
    })
}

fn ct2_subject(config: &Config, path: PathBuf, configured: bool) -> anyhow::Result<Subject> {
    let echo = path.starts_with(model_dir().join(TEST_MODELS));
    let options = Ct2TranslateOptions {
        compute_type: config.mt.compute_type.clone(),
        threads: config.mt.threads,
        // An echo model's second beam never meets `</s>` (only the copy does), so with a beam
        // of 2 every sentence would be decoded to the length limit: greedy is what measures it.
        beam_size: if echo { 1 } else { config.mt.beam_size },
        max_source_tokens: config.mt.max_source_tokens,
    };
    let started = Instant::now();
    let engine = Ct2Translate::load(std::slice::from_ref(&path), &options)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let model = engine.models().first().context("no model loaded")?;
    let source = Language::parse("en")?;
    // Spanish when the model has it, else its first other language: the sentences are English.
    let target = std::iter::once(Language::parse("es")?)
        .chain(model.languages().iter().copied())
        .find(|target| model.supports(source, target))
        .with_context(|| format!("{} does not translate from English (the sentences are English)", model.name()))?;
    Ok(Subject {
        key: format!("ctranslate2/{}", model.name()),
        engine: Arc::new(engine),
        source,
        target,
        echo,
        configured,
        beam_size: Some(options.beam_size),
        load_ms,
    })
}

/// Every measurement of one engine, printed and as its JSON object.
async fn measure(
    subject: &Subject,
    texts: &Arc<Vec<String>>,
    references: &[&str],
    settings: &MtSettings,
) -> anyhow::Result<Value> {
    let engine = subject.engine.clone();
    let (source, target) = (subject.source, subject.target);
    let all = texts.clone();
    let mut direct = tokio::task::spawn_blocking(move || measure_direct(engine.as_ref(), &all, source, target)).await?;
    let one_call = through_service(subject, texts, settings, 1).await;
    let mut calls = through_service(subject, texts, settings, CALLS.min(texts.len())).await;

    let n = texts.len() as f64;
    let sequential = n / direct.sequential_seconds.max(f64::EPSILON);
    let (p50, p95, _) = percentiles(&mut direct.latencies);
    let mut value = json!({
        "engine": subject.engine.name(),
        "model": subject.engine.model(source, target),
        "pair": format!("{}-{}", source.code(), target.code()),
        "beam_size": subject.beam_size,
        "sentences_per_sec": round(sequential, 1),
        "p50_ms": p50,
        "p95_ms": p95,
    });
    let mut line = format!(
        "{} ({} {}→{}): one by one {sequential:.1}/s (p50 {p50:.1} ms, p95 {p95:.1} ms); batches of",
        subject.key,
        value["model"].as_str().unwrap_or_default(),
        source.code(),
        target.code()
    );
    let mut best = 0.0f64;
    for (size, seconds) in &direct.batched_seconds {
        let per_sec = n / seconds.max(f64::EPSILON);
        best = best.max(per_sec);
        value[format!("sentences_per_sec_batch_{size}")] = json!(round(per_sec, 1));
        line.push_str(&format!(" {size}: {per_sec:.1}/s,"));
    }
    let speedup = best / sequential.max(f64::EPSILON);
    value["batching_speedup"] = json!(round(speedup, 2));
    line.push_str(&format!(" {speedup:.2}x;"));

    let (calls_p50, calls_p95, _) = percentiles(&mut calls.latencies);
    let calls_speedup = calls.per_sec() / one_call.per_sec().max(f64::EPSILON);
    value["one_call_sentences_per_sec"] = json!(round(one_call.per_sec(), 1));
    value["calls_sentences_per_sec"] = json!(round(calls.per_sec(), 1));
    value["calls_p50_ms"] = json!(calls_p50);
    value["calls_p95_ms"] = json!(calls_p95);
    value["calls_avg_batch"] = json!(round(calls.average_batch(), 2));
    value["calls_batches"] = json!(calls.batches);
    value["calls_speedup"] = json!(round(calls_speedup, 2));
    line.push_str(&format!(
        " {} calls through the batcher {:.1}/s (p95 {calls_p95:.1} ms, {:.1} texts per engine call), one call {:.1}/s: {calls_speedup:.2}x",
        calls.calls,
        calls.per_sec(),
        calls.average_batch(),
        one_call.per_sec()
    ));

    if subject.echo {
        value["echo_model"] = json!(true);
        value["chrf"] = Value::Null;
        line.push_str("; echo model (copies its input, decoded greedily): machinery speed only, no chrF");
    } else if target.code() == "es" {
        let mut stats = ChrfStats::default();
        for (translation, reference) in direct.translations.iter().zip(references) {
            stats += ChrfStats::sentence(translation.as_deref().unwrap_or_default(), reference);
        }
        value["chrf"] = json!(round(stats.score(), 2));
        line.push_str(&format!("; chrF {:.2}", stats.score()));
    }
    let mut failures = direct.failures;
    failures.merge(one_call.failures);
    failures.merge(calls.failures);
    value["failures"] = json!(failures.count);
    value["load_ms"] = json!(round(subject.load_ms, 1));
    if let Some(error) = &failures.first {
        line.push_str(&format!("; {} failed, the first {error}", failures.count));
        value["first_error"] = json!(error);
    }
    println!("{line}");
    Ok(value)
}

/// The engine alone: one warm-up call, each sentence alone, then in batches.
fn measure_direct(engine: &dyn TranslationEngine, texts: &[String], source: &Language, target: &Language) -> Direct {
    let mut direct = Direct::default();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    // Warm-up: the first call allocates CTranslate2's buffers, and Apertium's pipeline pages in
    // its dictionaries.
    let _ = engine.translate_batch(&refs[..refs.len().min(1)], source, target);

    let started = Instant::now();
    for text in &refs {
        let one = Instant::now();
        let result = engine.translate_batch(std::slice::from_ref(text), source, target).pop().unwrap_or_else(no_result);
        direct.latencies.push(one.elapsed());
        match result {
            Ok(translation) => direct.translations.push(Some(translation)),
            Err(err) => {
                direct.failures.add(text, &err);
                direct.translations.push(None);
            }
        }
    }
    direct.sequential_seconds = started.elapsed().as_secs_f64();

    for size in BATCH_SIZES {
        let started = Instant::now();
        for chunk in refs.chunks(size) {
            let mut results = engine.translate_batch(chunk, source, target).into_iter();
            for text in chunk {
                if let Err(err) = results.next().unwrap_or_else(no_result) {
                    direct.failures.add(text, &err);
                }
            }
        }
        direct.batched_seconds.push((size, started.elapsed().as_secs_f64()));
    }
    direct
}

/// An engine that answered fewer results than texts.
fn no_result() -> Result<String, TranslateError> {
    Err(TranslateError::Engine {
        engine: "bench".into(),
        model: String::new(),
        reason: "no result for this text".into(),
    })
}

/// `calls` simulated calls at once through a fresh [`Translator`] with the cache off, each
/// sending every `calls`-th sentence, one after another (a call's next final comes after its
/// previous one).
async fn through_service(subject: &Subject, texts: &[String], settings: &MtSettings, calls: usize) -> ThroughService {
    let settings = MtSettings { cache_entries: 0, ..settings.clone() };
    let translator = Translator::new(vec![subject.engine.clone()], &settings);
    let (source, target) = (subject.source, subject.target);
    let calls = calls.max(1);
    let started = Instant::now();
    let per_call = futures::future::join_all((0..calls).map(|call| {
        let translator = &translator;
        async move {
            let mut latencies = Vec::new();
            let mut failures = Failures::default();
            for text in texts.iter().skip(call).step_by(calls) {
                let one = Instant::now();
                let result = translator.translate(text, source, target).await;
                latencies.push(one.elapsed());
                if let Err(err) = result {
                    failures.add(text, &err);
                }
            }
            (latencies, failures)
        }
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let stats = translator.stats();
    let mut measured = ThroughService {
        calls,
        seconds,
        latencies: Vec::new(),
        failures: Failures::default(),
        batches: stats.batches,
        batched_texts: stats.batched_texts,
    };
    for (latencies, failures) in per_call {
        measured.latencies.extend(latencies);
        measured.failures.merge(failures);
    }
    measured
}

/// What the simulated IVR calls say, call by call: the queue's announcements ([`IVR_WAITING`]
/// [`IVR_ROUNDS`] times, then [`IVR_NEXT`]), then [`IVR_CONVERSATION_LINES`] lines of
/// conversation that are said only once in the whole run (other prompts, standing in for what
/// caller and agent say). The announcements missing from the corpus are left out.
fn ivr_script(pairs: &[PromptPair]) -> Vec<Vec<String>> {
    let prompt = |name: &str| pairs.iter().find(|p| p.name == name).map(|p| p.source.clone());
    let round: Vec<String> = IVR_WAITING.iter().filter_map(|name| prompt(name)).collect();
    let mut seen: HashSet<String> = round.iter().cloned().chain(prompt(IVR_NEXT)).map(|t| text::clean(&t)).collect();
    // Unique once cleaned, as the cache sees them, so no conversation line is a hit.
    let mut conversation = pairs.iter().map(|p| &p.source).filter(|t| seen.insert(text::clean(t)));
    let mut waiting: Vec<String> = (0..IVR_ROUNDS).flat_map(|_| round.iter().cloned()).collect();
    waiting.extend(prompt(IVR_NEXT));
    (0..IVR_CALLS)
        .map(|_| {
            let mut call = waiting.clone();
            call.extend(conversation.by_ref().take(IVR_CONVERSATION_LINES).cloned());
            call
        })
        .collect()
}

/// The simulated IVR calls, one after another, through one [`Translator`] with the cache on.
async fn ivr_call(subject: &Subject, pairs: &[PromptPair], settings: &MtSettings) -> Value {
    let script = ivr_script(pairs);
    let translator = Translator::new(vec![subject.engine.clone()], settings);
    let (mut hits, mut misses, mut failures) = (Vec::new(), Vec::new(), 0usize);
    for call in &script {
        for line in call {
            let started = Instant::now();
            match translator.translate(line, subject.source, subject.target).await {
                Ok(translated) if translated.cache_hit => hits.push(started.elapsed()),
                Ok(_) => misses.push(started.elapsed()),
                Err(err) => {
                    tracing::warn!(error = %err, "ivr line not translated");
                    failures += 1;
                }
            }
        }
    }
    let stats = translator.stats();
    let requests = stats.cache_hits + stats.cache_misses;
    let rate = stats.cache_hits as f64 / requests.max(1) as f64;
    let (hit_p50, hit_p95, _) = percentiles(&mut hits);
    let (miss_p50, miss_p95, _) = percentiles(&mut misses);
    println!(
        "ivr: {} calls of {} lines each on {} (cache of {} entries): hit rate {:.1} % ({} of {requests}); \
         hits p50 {hit_p50:.3} ms, misses p50 {miss_p50:.1} ms p95 {miss_p95:.1} ms",
        script.len(),
        script.first().map_or(0, Vec::len),
        subject.key,
        settings.cache_entries,
        rate * 100.0,
        stats.cache_hits,
    );
    json!({
        "engine": subject.key,
        "calls": script.len(),
        "requests": requests,
        "cache_hits": stats.cache_hits,
        "cache_misses": stats.cache_misses,
        "cache_hit_rate": round(rate, 4),
        "hit_p50_ms": hit_p50,
        "hit_p95_ms": hit_p95,
        "miss_p50_ms": miss_p50,
        "miss_p95_ms": miss_p95,
        "failures": failures,
    })
}
