//! `dragoman bench stt`: our two Whisper engines and faster-whisper, side by side in one run, on
//! the same audio, model and thread count.
//!
//! The audio is real telephone speech: the Asterisk English prompts (8 kHz, CC-BY-SA-3.0),
//! upsampled to 16 kHz once by media ingest's resampler, so every engine gets identical
//! samples. Three measurements per engine:
//!
//! - **Latency** from the end of an utterance to its transcript, for utterances of about 1, 3
//!   and 8 seconds: the [`LATENCY_PROMPTS`] prompts nearest each length, each transcribed
//!   `repeats` times; p50 and p95. The whole utterance is in memory when the clock starts (the
//!   worker gets finals whole), so this is the engine's time, features included.
//! - **Real-time factor and WER** over the English speech corpus (every prompt with a reference
//!   text: 551), each transcribed once; WER with [`accuracy::normalise`].
//! - **Memory** per loaded model: resident memory after loading and one warm-up transcription,
//!   less before.
//!
//! faster-whisper runs in its own Python process (`scripts/bench_peer_faster_whisper.py`, from
//! the venv `scripts/setup-bench-peer.sh` makes): it reads the same samples from raw f32 files
//! and reports each latency; only `transcribe()` and consuming its segments are timed.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use dragoman_media_ingest::resample::Resampler;
use dragoman_runtime::Config;
use dragoman_runtime::config::SttEngineKind;
use dragoman_stt_worker::accuracy::{self, WordErrorRate};
use dragoman_stt_worker::engine::{DecodeOptions, SpeechEngine};
use dragoman_stt_worker::service::{decode_options, default_model_path, load_engine};
use serde_json::{Value, json};

/// Prompts per utterance length in the latency measurement.
const LATENCY_PROMPTS: usize = 5;
/// Utterance lengths the latency is measured at, in ms.
const LATENCY_TARGETS_MS: [u64; 3] = [1_000, 3_000, 8_000];
/// The peer, as the issue names it.
const FASTER_WHISPER_VERSION: &str = "1.2.1";

/// Which engines to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    #[value(name = "ctranslate2")]
    Ctranslate2,
    #[value(name = "whisper_cpp")]
    WhisperCpp,
    #[value(name = "faster_whisper")]
    FasterWhisper,
}

impl Peer {
    fn key(self) -> &'static str {
        match self {
            Peer::Ctranslate2 => "ctranslate2",
            Peer::WhisperCpp => "whisper_cpp",
            Peer::FasterWhisper => "faster_whisper",
        }
    }
}

/// What to run and on how much.
#[derive(Debug, Clone)]
pub struct Options {
    pub engines: Vec<Peer>,
    /// Corpus prompts for RTF and WER (spread evenly over the corpus); `None` = all.
    pub limit: Option<usize>,
    /// Times each latency prompt is transcribed.
    pub repeats: usize,
    /// The Python that has faster-whisper; default: the venv `scripts/setup-bench-peer.sh` makes.
    pub peer_python: Option<PathBuf>,
}

/// One utterance, 16 kHz.
#[derive(Debug)]
struct Clip {
    id: String,
    text: String,
    samples: Vec<f32>,
}

impl Clip {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / 16_000.0
    }
}

/// The audio every engine gets.
#[derive(Debug)]
struct Workload {
    /// Per latency target, its clips.
    latency: Vec<(u64, Vec<Clip>)>,
    corpus: Vec<Clip>,
    repeats: usize,
}

/// One engine's numbers.
#[derive(Debug, Default)]
struct Measured {
    /// Per latency target: every latency in ms.
    latencies: Vec<(u64, Vec<f64>)>,
    wer: WordErrorRate,
    audio_seconds: f64,
    busy_seconds: f64,
    model_rss_bytes: Option<u64>,
    load_ms: f64,
    failures: usize,
    /// Batched against one by one (our engines only).
    batch: Option<Value>,
}

pub fn run(config: &Config, options: &Options) -> anyhow::Result<Value> {
    let workload = workload(options)?;
    let corpus_seconds: f64 = workload.corpus.iter().map(Clip::seconds).sum();
    println!(
        "stt: {} corpus prompts ({corpus_seconds:.0} s of speech), latency at {:?} ms with {} prompts x {} repeats, {} threads",
        workload.corpus.len(),
        LATENCY_TARGETS_MS,
        LATENCY_PROMPTS,
        workload.repeats,
        config.stt.threads
    );
    let mut results = serde_json::Map::new();
    let mut converted: Option<tempfile::TempDir> = None;
    for &engine in &options.engines {
        let outcome = match engine {
            Peer::Ctranslate2 | Peer::WhisperCpp => {
                measure_ours(config, engine, &workload, &mut converted).map(|(m, setup)| summary(engine, &m, setup))
            }
            Peer::FasterWhisper => {
                measure_faster_whisper(config, options, &workload).map(|m| summary(engine, &m, json!({})))
            }
        };
        let value = outcome.unwrap_or_else(|err| {
            println!("{}: not measured: {err:#}", engine.key());
            json!({ "error": format!("{err:#}") })
        });
        results.insert(engine.key().into(), value);
    }
    add_speedup(&mut results);
    results.insert("threads".into(), json!(config.stt.threads));
    results.insert("corpus_prompts".into(), json!(workload.corpus.len()));
    results.insert("corpus_audio_seconds".into(), json!(round(corpus_seconds, 1)));
    Ok(Value::Object(results))
}

/// Picks the clips: the corpus (or an even spread of `limit` prompts) and the latency sets.
fn workload(options: &Options) -> anyhow::Result<Workload> {
    let prompts = accuracy::english_speech_prompts(
        Path::new(accuracy::DEFAULT_SOUNDS_DIR),
        Path::new(accuracy::DEFAULT_TRANSCRIPTS),
    )?;
    let to_clip = |prompt: &accuracy::Prompt, id: String| -> anyhow::Result<Clip> {
        let mut resampler = Resampler::new(8_000, 16_000)?;
        let mut samples = Vec::with_capacity(prompt.samples.len() * 2 + 64);
        resampler.process_i16(&prompt.samples, &mut samples);
        resampler.flush(&mut samples);
        Ok(Clip { id, text: prompt.text.clone(), samples })
    };
    let chosen: Vec<&accuracy::Prompt> = match options.limit {
        Some(limit) if limit < prompts.len() => {
            let limit = limit.max(1);
            (0..limit).map(|i| &prompts[i * prompts.len() / limit]).collect()
        }
        _ => prompts.iter().collect(),
    };
    let corpus = chosen.iter().map(|p| to_clip(p, format!("corpus/{}", p.name))).collect::<anyhow::Result<_>>()?;
    let mut latency = Vec::new();
    for target in LATENCY_TARGETS_MS {
        let mut nearest: Vec<&accuracy::Prompt> = prompts.iter().collect();
        nearest.sort_by_key(|p| (p.duration_ms().abs_diff(target), p.name.clone()));
        let clips = nearest
            .iter()
            .take(LATENCY_PROMPTS)
            .map(|p| to_clip(p, format!("latency{target}/{}", p.name)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        latency.push((target, clips));
    }
    Ok(Workload { latency, corpus, repeats: options.repeats.max(1) })
}

/// Loads one of our engines as the worker would (the config's `stt` section with this
/// engine), then measures it.
fn measure_ours(
    config: &Config,
    which: Peer,
    workload: &Workload,
    converted: &mut Option<tempfile::TempDir>,
) -> anyhow::Result<(Measured, Value)> {
    let mut stt = config.stt.clone();
    let kind = if which == Peer::Ctranslate2 { SttEngineKind::Ctranslate2 } else { SttEngineKind::WhisperCpp };
    if stt.engine != kind {
        stt.model_path = None;
    }
    stt.engine = kind;
    if kind == SttEngineKind::WhisperCpp && stt.model_path.is_none() {
        let ggml = default_model_path(kind);
        if !ggml.exists() {
            // No ggml weights: convert the CTranslate2 folder, as `dragoman models convert` does.
            let source = default_model_path(SttEngineKind::Ctranslate2);
            let dir = match converted {
                Some(dir) => dir,
                None => converted.insert(tempfile::Builder::new().prefix("dragoman-bench-stt").tempdir()?),
            };
            let output = dir.path().join("ggml-tiny.en.bin");
            if !output.exists() {
                dragoman_stt_worker::ggml_convert::convert_ct2_to_ggml(&source, &output)
                    .with_context(|| format!("convert {} to ggml", source.display()))?;
                println!("whisper_cpp: converted {} to {}", source.display(), output.display());
            }
            stt.model_path = Some(output);
        }
    }
    let before = super::ingest::memory().ok();
    let started = Instant::now();
    let engine = load_engine(&stt)?;
    let options = decode_options(&stt, engine.as_ref(), Some("en"), None).map_err(anyhow::Error::msg)?;
    let mut measured = Measured { load_ms: started.elapsed().as_secs_f64() * 1e3, ..Measured::default() };
    // Warm-up: the first call allocates the engine's buffers.
    let warm = &workload.corpus[0];
    engine.transcribe(&warm.samples, &options).map_err(|err| anyhow::anyhow!("warm-up on {}: {err}", warm.id))?;
    measured.model_rss_bytes = match (before, super::ingest::memory().ok()) {
        (Some(before), Some(after)) => Some(after.rss_bytes.saturating_sub(before.rss_bytes)),
        _ => None,
    };

    for (target, clips) in &workload.latency {
        let mut latencies = Vec::new();
        for _ in 0..workload.repeats {
            for clip in clips {
                let started = Instant::now();
                let result = engine.transcribe(&clip.samples, &options);
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                measured.failures += usize::from(result.is_err());
            }
        }
        measured.latencies.push((*target, latencies));
    }
    corpus_pass(engine.as_ref(), &options, workload, &mut measured);
    measured.batch = Some(batch_gain(engine.as_ref(), &options, workload));
    let setup = json!({
        "model": stt.model_path.clone().unwrap_or_else(|| default_model_path(kind)),
        "compute_type": if kind == SttEngineKind::Ctranslate2 { json!(stt.compute_type) } else { Value::Null },
        "short_window": stt.short_window,
    });
    Ok((measured, setup))
}

/// Throughput of the finals that arrive together (the worker batches up to `stt.max_batch`):
/// the 3 s latency clips decoded as one batch against one by one, best of three each.
fn batch_gain(engine: &dyn SpeechEngine, options: &DecodeOptions, workload: &Workload) -> Value {
    let Some((_, clips)) = workload.latency.iter().find(|(target, _)| *target == 3_000) else { return Value::Null };
    let audio: Vec<&[f32]> = clips.iter().map(|c| c.samples.as_slice()).collect();
    let best = |run: &dyn Fn()| {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let one_by_one = best(&|| {
        for a in &audio {
            let _ = engine.transcribe(a, options);
        }
    });
    let batched = best(&|| {
        let _ = engine.transcribe_batch(&audio, options);
    });
    println!(
        "{}: {} utterances of ~3 s one by one {:.0} ms, as one batch {:.0} ms",
        engine.engine(),
        audio.len(),
        one_by_one * 1e3,
        batched * 1e3
    );
    json!({
        "utterances": audio.len(),
        "one_by_one_ms": round(one_by_one * 1e3, 1),
        "batched_ms": round(batched * 1e3, 1),
        "speedup": round(one_by_one / batched, 2),
    })
}

fn corpus_pass(engine: &dyn SpeechEngine, options: &DecodeOptions, workload: &Workload, measured: &mut Measured) {
    for clip in &workload.corpus {
        let started = Instant::now();
        let result = engine.transcribe(&clip.samples, options);
        measured.busy_seconds += started.elapsed().as_secs_f64();
        measured.audio_seconds += clip.seconds();
        match result {
            Ok(transcription) => {
                // The worker's guards run on every result before it is published.
                let text = dragoman_stt_worker::guards::clean(transcription, options).text;
                measured.wer.add(&clip.text, &text);
            }
            Err(err) => {
                measured.failures += 1;
                measured.wer.add(&clip.text, "");
                tracing::warn!(clip = %clip.id, error = %err, "transcription failed");
            }
        }
    }
}

/// Runs faster-whisper on the same clips in its own process.
fn measure_faster_whisper(config: &Config, options: &Options, workload: &Workload) -> anyhow::Result<Measured> {
    let python = match &options.peer_python {
        Some(python) => python.clone(),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            let venv = home.join(".cache/dragoman/bench-peer/bin/python");
            if !venv.exists() {
                bail!("no faster-whisper: run scripts/setup-bench-peer.sh (or pass --peer-python)");
            }
            venv
        }
    };
    let script = peer_script()?;
    let dir = tempfile::Builder::new().prefix("dragoman-bench-peer").tempdir()?;
    let mut items = Vec::new();
    let mut write = |clip: &Clip, repeats: usize| -> anyhow::Result<()> {
        let path = dir.path().join(format!("{}.f32", items.len()));
        let bytes: Vec<u8> = clip.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        items.push(json!({ "id": clip.id, "file": path, "repeats": repeats }));
        Ok(())
    };
    for (_, clips) in &workload.latency {
        for clip in clips {
            write(clip, workload.repeats)?;
        }
    }
    for clip in &workload.corpus {
        write(clip, 1)?;
    }
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, serde_json::to_vec(&json!({ "items": items }))?)?;

    let model = match (&config.stt.engine, &config.stt.model_path) {
        (SttEngineKind::Ctranslate2, Some(path)) => path.clone(),
        _ => default_model_path(SttEngineKind::Ctranslate2),
    };
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("--model")
        .arg(&model)
        .args(["--threads", &config.stt.threads.to_string()])
        .args(["--compute-type", &config.stt.compute_type])
        .args(["--beam-size", &config.stt.beam_size.to_string()])
        .args(["--language", "en"])
        .arg("--manifest")
        .arg(&manifest)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {} {}", python.display(), script.display()))?;
    let stdout = child.stdout.take().context("peer stdout")?;
    let mut measured = Measured::default();
    let mut by_target: Vec<(u64, Vec<f64>)> = LATENCY_TARGETS_MS.iter().map(|&t| (t, Vec::new())).collect();
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let message: Value = serde_json::from_str(&line).with_context(|| format!("peer said {line:?}"))?;
        match message["type"].as_str() {
            Some("ready") => {
                if message["faster_whisper"].as_str() != Some(FASTER_WHISPER_VERSION) {
                    println!(
                        "faster_whisper: version {} (the issue names {FASTER_WHISPER_VERSION})",
                        message["faster_whisper"]
                    );
                }
                measured.model_rss_bytes = message["model_rss_bytes"].as_u64();
                measured.load_ms = message["load_ms"].as_f64().unwrap_or_default();
            }
            Some("result") => {
                let id = message["id"].as_str().unwrap_or_default();
                let latencies: Vec<f64> =
                    message["latencies_ms"].as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
                let text = message["text"].as_str().unwrap_or_default();
                if let Some(clip) = workload.corpus.iter().find(|c| c.id == id) {
                    measured.wer.add(&clip.text, text);
                    measured.audio_seconds += clip.seconds();
                    measured.busy_seconds += latencies.iter().sum::<f64>() / 1e3;
                } else if let Some((_, all)) = LATENCY_TARGETS_MS
                    .iter()
                    .position(|t| id.starts_with(&format!("latency{t}/")))
                    .and_then(|i| by_target.get_mut(i))
                {
                    all.extend(latencies);
                }
            }
            Some("done") => done = true,
            Some("error") => bail!("faster-whisper: {}", message["message"]),
            _ => bail!("peer said {line:?}"),
        }
    }
    let status = child.wait()?;
    if !done || !status.success() {
        bail!("faster-whisper peer ended with {status} before it was done");
    }
    measured.latencies = by_target;
    Ok(measured)
}

/// The peer script, found next to the binary's source tree or in the working directory.
fn peer_script() -> anyhow::Result<PathBuf> {
    const NAME: &str = "scripts/bench_peer_faster_whisper.py";
    let candidates = [PathBuf::from(NAME), Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(NAME)];
    candidates.into_iter().find(|p| p.is_file()).with_context(|| format!("{NAME} not found"))
}

/// One engine's JSON: the keys, then the detail.
fn summary(engine: Peer, measured: &Measured, setup: Value) -> Value {
    let mut value = json!({});
    let mut line = format!("{}:", engine.key());
    for (target, latencies) in &measured.latencies {
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let seconds = target / 1000;
        let (p50, p95) = (quantile(&sorted, 0.50), quantile(&sorted, 0.95));
        value[format!("p50_ms_{seconds}s")] = json!(round(p50, 1));
        value[format!("p95_ms_{seconds}s")] = json!(round(p95, 1));
        line.push_str(&format!(" {seconds}s p50 {p50:.0} ms p95 {p95:.0} ms;"));
    }
    let rtf = if measured.audio_seconds > 0.0 { measured.busy_seconds / measured.audio_seconds } else { 0.0 };
    value["rtf"] = json!(round(rtf, 4));
    value["wer"] = json!(round(measured.wer.rate(), 4));
    value["wer_errors"] = json!(measured.wer.errors);
    value["wer_words"] = json!(measured.wer.words);
    value["model_rss_bytes"] = json!(measured.model_rss_bytes);
    value["load_ms"] = json!(round(measured.load_ms, 1));
    value["failures"] = json!(measured.failures);
    if let Some(batch) = &measured.batch {
        value["batch"] = batch.clone();
    }
    value["setup"] = setup;
    line.push_str(&format!(
        " RTF {rtf:.3}; WER {:.2} % ({}/{}); model {:.0} MiB",
        measured.wer.rate() * 100.0,
        measured.wer.errors,
        measured.wer.words,
        measured.model_rss_bytes.unwrap_or_default() as f64 / 1_048_576.0
    ));
    println!("{line}");
    value
}

/// `speedup_vs_faster_whisper`: faster-whisper's p50 at 3 s over our best (fastest) engine's,
/// with whether that engine's WER is at or below the peer's.
fn add_speedup(results: &mut serde_json::Map<String, Value>) {
    let p50 = |key: &str| results.get(key).and_then(|v| v["p50_ms_3s"].as_f64()).filter(|v| *v > 0.0);
    let Some(peer) = p50("faster_whisper") else { return };
    let best = ["ctranslate2", "whisper_cpp"]
        .into_iter()
        .filter_map(|key| p50(key).map(|ms| (key, ms)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let Some((key, ours)) = best else { return };
    let speedup = peer / ours;
    let wer = |key: &str| results.get(key).and_then(|v| v["wer"].as_f64()).unwrap_or(f64::MAX);
    let wer_ok = wer(key) <= wer("faster_whisper");
    println!(
        "best: {key}, {speedup:.2}x faster than faster-whisper at 3 s (p50), WER at or below the peer's: {wer_ok}"
    );
    results.insert("speedup_vs_faster_whisper".into(), json!(round(speedup, 2)));
    results.insert("best_engine".into(), json!(key));
    results.insert("best_engine_wer_at_or_below_peer".into(), json!(wer_ok));
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

pub(super) fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
