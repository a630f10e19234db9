//! Whisper on CTranslate2, through the `ct2rs` bindings.
//!
//! The engine talks to CTranslate2 through `ct2rs::sys`, not through `ct2rs::Whisper`: the
//! high-level wrapper returns only text, always pads to 30 s, and computes its mel features
//! with per-frame normalisation that differs from Whisper's. Going one level down gives us
//! what the worker needs:
//!
//! - our own log-mel features (Whisper's reference algorithm), of any length up to 30 s: the
//!   encoder accepts shorter inputs (see [`FeatureWindow`] for why the default stays at 30 s);
//! - the encoder output computed once and reused for every temperature of the fallback, for
//!   language detection and for word alignment;
//! - scores (average log-probability), the no-speech probability, language detection and
//!   cross-attention alignment (word timestamps).
//!
//! Layout: [`Ct2Whisper`] (load, [`SpeechEngine`] impl), [`Ct2Options`], the feature code
//! ([`LogMel`]) and [`ensure_preprocessor_config`] for model folders converted without one.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ct2rs::sys::{self, ComputeType, Config, Device, StorageView, WhisperOptions};
use ct2rs::tokenizers::hf;
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::engine::{DecodeOptions, EngineError, SAMPLE_RATE_HZ, SpeechEngine, Transcription, WordTiming};
use crate::guards;

/// The file CTranslate2 model folders carry the feature extractor's settings in.
pub const PREPROCESSOR_CONFIG_FILE: &str = "preprocessor_config.json";

/// The standard Whisper feature extractor settings (80 mel bins, as every model but large-v3).
const DEFAULT_PREPROCESSOR_CONFIG: &str = r#"{
  "chunk_length": 30,
  "feature_extractor_type": "WhisperFeatureExtractor",
  "feature_size": 80,
  "hop_length": 160,
  "n_fft": 400,
  "n_samples": 480000,
  "nb_max_frames": 3000,
  "padding_side": "right",
  "padding_value": 0.0,
  "processor_class": "WhisperProcessor",
  "return_attention_mask": false,
  "sampling_rate": 16000
}
"#;

/// Where the model runs: the GPU in builds with the `cuda` feature (CTranslate2 built with CUDA
/// and cuDNN), else the CPU. Features are always computed on the CPU; CTranslate2 moves them.
const MODEL_DEVICE: Device = if cfg!(feature = "cuda") { Device::CUDA } else { Device::CPU };

/// Audio frames per encoder output position: the encoder's second convolution has stride 2.
const MEL_FRAMES_PER_ENCODER_FRAME: usize = 2;

/// Decode with Whisper's timestamp tokens (no `<|notimestamps|>` in the prompt), as
/// faster-whisper does by default. Off: measured with the short window over 200 Asterisk
/// prompts, timestamps raised WER from 6.72 % to 7.80 % at the same speed.
const TIMESTAMP_TOKENS: bool = false;

/// The decoder's context; the initial prompt gets at most half of it, as in Whisper.
const MAX_TEXT_CONTEXT: usize = 448;

/// How much audio the encoder sees per utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureWindow {
    /// Pad every utterance to 30 s (3000 mel frames), as Whisper was trained and as
    /// faster-whisper does.
    Full,
    /// Pad the utterance with at least `padding_ms` of silence and round up to a multiple of
    /// `step_ms` (capped at 30 s). CTranslate2 accepts it and the encoder's cost falls with the
    /// window, but Whisper was trained on 30 s windows: see the measurements on `default`.
    Fit { step_ms: u32, padding_ms: u32 },
}

impl FeatureWindow {
    /// The fitted window `stt.short_window` selects: 5 s of padding after the utterance,
    /// rounded up to whole seconds. Measured with tiny.en, int8, 2 threads and the full-window
    /// fallback: on 60 Asterisk prompts WER 6.55 % as on the full window (1 s of padding: 45.8 %
    /// without the fallback; 3 s: 6.80 %); on 200 prompts (`dragoman bench stt --limit 200`)
    /// 6.72 % against 5.56 %, at a third of the real-time factor (0.166 against 0.444).
    pub const SHORT: FeatureWindow = FeatureWindow::Fit { step_ms: 1_000, padding_ms: 5_000 };
}

/// The default is the full window. A fitted window alone does not hold WER with tiny.en: on 40
/// Asterisk prompts, 1 s of padding gave WER 45.8 % (the decoder loops on the utterance), 3 s
/// gave 13.0 % against 10.2 % on the full window. So a fitted pass is only ever a first try:
/// the engine decodes again on the full window whenever it loops or is unsure (see
/// `transcribe_window`), and `stt.short_window` turns it on.
impl Default for FeatureWindow {
    fn default() -> Self {
        FeatureWindow::Full
    }
}

/// How to load and run the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Options {
    /// CTranslate2 compute type: `default` (as converted), `auto`, `int8`, `int8_float32`,
    /// `int16`, `float32`, `float16`, `int8_float16`, `bfloat16`, `int8_bfloat16`.
    pub compute_type: String,
    /// Threads for one transcription; 0 lets CTranslate2 choose.
    pub threads: usize,
    /// How much audio the encoder sees per utterance.
    pub window: FeatureWindow,
}

impl Default for Ct2Options {
    fn default() -> Self {
        Self { compute_type: "int8".into(), threads: 0, window: FeatureWindow::default() }
    }
}

/// Parses a CTranslate2 compute type name.
pub fn parse_compute_type(name: &str) -> Option<ComputeType> {
    Some(match name {
        "default" => ComputeType::DEFAULT,
        "auto" => ComputeType::AUTO,
        "float32" => ComputeType::FLOAT32,
        "int8" => ComputeType::INT8,
        "int8_float32" => ComputeType::INT8_FLOAT32,
        "int8_float16" => ComputeType::INT8_FLOAT16,
        "int8_bfloat16" => ComputeType::INT8_BFLOAT16,
        "int16" => ComputeType::INT16,
        "float16" => ComputeType::FLOAT16,
        "bfloat16" => ComputeType::BFLOAT16,
        _ => return None,
    })
}

/// Writes the standard Whisper `preprocessor_config.json` into `dir` when it has none
/// (CTranslate2 conversions made without `--copy_files preprocessor_config.json` lack it).
/// An existing file is left alone.
pub fn ensure_preprocessor_config(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PREPROCESSOR_CONFIG_FILE);
    if path.exists() {
        return Ok(());
    }
    // Write then rename so a concurrent loader never reads half a file.
    let tmp = dir.join(format!(".{PREPROCESSOR_CONFIG_FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, DEFAULT_PREPROCESSOR_CONFIG)?;
    std::fs::rename(&tmp, &path)
}

/// The feature extractor settings the engine uses, read from `preprocessor_config.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FeatureConfig {
    feature_size: usize,
    hop_length: usize,
    n_fft: usize,
    n_samples: usize,
}

impl FeatureConfig {
    fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|err| format!("read {}: {err}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| format!("parse {}: {err}", path.display()))?;
        let field = |name: &str| {
            json.get(name)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| format!("{} lacks the integer field {name}", path.display()))
        };
        let sampling_rate = field("sampling_rate")?;
        if sampling_rate != SAMPLE_RATE_HZ as usize {
            return Err(format!("sampling_rate {sampling_rate} is not {SAMPLE_RATE_HZ}"));
        }
        let config = Self {
            feature_size: field("feature_size")?,
            hop_length: field("hop_length")?,
            n_fft: field("n_fft")?,
            n_samples: field("n_samples")?,
        };
        if config.hop_length == 0 || config.n_fft < 2 || config.n_samples < config.hop_length {
            return Err(format!("{} has inconsistent sizes", path.display()));
        }
        Ok(config)
    }

    fn max_frames(&self) -> usize {
        self.n_samples / self.hop_length
    }
}

/// Whisper's log-mel spectrogram: periodic Hann window, centred STFT with reflect padding,
/// power spectrum, Slaney mel filterbank, log10 clamped to 8 decades below the window's peak
/// and scaled to about [-1, 1].
struct LogMel {
    config: FeatureConfig,
    window: Vec<f32>,
    /// `feature_size` filters over the `n_fft / 2 + 1` power bins, each kept as its non-zero
    /// span (a triangle covers a few bins, so this is ~40x less work than the dense matrix).
    filters: Vec<SparseFilter>,
    fft: Arc<dyn Fft<f32>>,
}

/// One mel filter: `weights` apply to the power bins from `first` on.
#[derive(Debug, Clone, PartialEq)]
struct SparseFilter {
    first: usize,
    weights: Vec<f32>,
}

impl SparseFilter {
    fn new(dense: &[f32]) -> Self {
        let first = dense.iter().position(|&w| w != 0.0).unwrap_or(0);
        let last = dense.iter().rposition(|&w| w != 0.0).map_or(first, |i| i + 1);
        Self { first, weights: dense[first..last].to_vec() }
    }

    fn apply(&self, power: &[f32]) -> f32 {
        self.weights.iter().zip(&power[self.first..]).map(|(w, p)| w * p).sum()
    }
}

impl fmt::Debug for LogMel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogMel").field("config", &self.config).finish_non_exhaustive()
    }
}

impl LogMel {
    fn new(config: FeatureConfig) -> Self {
        let n = config.n_fft;
        let window =
            (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect();
        let filters = slaney_mel_filters(SAMPLE_RATE_HZ as f64, n, config.feature_size)
            .iter()
            .map(|f| SparseFilter::new(f))
            .collect();
        let fft = FftPlanner::new().plan_fft_forward(n);
        Self { config, window, filters, fft }
    }

    /// Features of `audio` zero-padded to `frames` frames, row-major `[feature_size, frames]`.
    /// Frames that hold only zeros (the padding past the audio, digital silence) skip the FFT:
    /// their log energy is the floor, so the cost follows the audio, not the window.
    fn compute(&self, audio: &[f32], frames: usize) -> Vec<f32> {
        let FeatureConfig { feature_size, hop_length, n_fft, .. } = self.config;
        let bins = n_fft / 2 + 1;
        let half = n_fft / 2;
        // Audio padded with silence to the window, then reflect-padded by half an FFT each side
        // (torch.stft's `center=True`).
        let len = frames * hop_length;
        let sample = |i: usize| if i < audio.len() { audio[i] } else { 0.0 };
        let reflected = |j: isize| -> f32 {
            // Index into the padded signal of length `len`, reflecting at both ends.
            let last = len as isize - 1;
            let mut k = j;
            if k < 0 {
                k = -k;
            }
            if k > last {
                k = 2 * last - k;
            }
            sample(k.clamp(0, last) as usize)
        };

        let mut out = vec![0.0f32; feature_size * frames];
        let mut buffer = vec![Complex32::new(0.0, 0.0); n_fft];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = vec![0.0f32; bins];
        let mut peak = f32::NEG_INFINITY;
        const SILENT: f32 = -10.0; // log10 of the 1e-10 floor
        for t in 0..frames {
            let start = (t * hop_length) as isize - half as isize;
            let mut any = false;
            for (i, slot) in buffer.iter_mut().enumerate() {
                let x = reflected(start + i as isize) * self.window[i];
                any |= x != 0.0;
                *slot = Complex32::new(x, 0.0);
            }
            if !any {
                for m in 0..feature_size {
                    out[m * frames + t] = SILENT;
                }
                peak = peak.max(SILENT);
                continue;
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (p, c) in power.iter_mut().zip(&buffer) {
                *p = c.norm_sqr();
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let energy = filter.apply(&power);
                let log = energy.max(1e-10).log10();
                peak = peak.max(log);
                out[m * frames + t] = log;
            }
        }
        let floor = peak - 8.0;
        for v in &mut out {
            *v = (v.max(floor) + 4.0) / 4.0;
        }
        out
    }
}

/// The Slaney-style mel filterbank (librosa's default, which Whisper's filters come from).
fn slaney_mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<Vec<f32>> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1_000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let log_step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| if f < MIN_LOG_HZ { f / F_SP } else { MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / log_step };
    let mel_to_hz = |m: f64| if m < MIN_LOG_MEL { m * F_SP } else { MIN_LOG_HZ * (log_step * (m - MIN_LOG_MEL)).exp() };

    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|k| k as f64 * sample_rate / n_fft as f64).collect();
    let top = hz_to_mel(sample_rate / 2.0);
    let mel_freqs: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64)).collect();
    (0..n_mels)
        .map(|m| {
            let (lo, centre, hi) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
            let norm = 2.0 / (hi - lo);
            fft_freqs
                .iter()
                .map(|&f| {
                    let rising = (f - lo) / (centre - lo);
                    let falling = (hi - f) / (hi - centre);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect()
        })
        .collect()
}

/// [`Ct2Whisper::encode_one`]'s result.
struct Encoded {
    encoded: StorageView<'static>,
    language: String,
    language_probability: Option<f32>,
    prompt: Vec<String>,
    sot_sequence: Vec<String>,
}

/// One decoding of one utterance at one temperature.
#[derive(Debug, Clone)]
struct Candidate {
    /// Every generated token, timestamps included (what `max_length` counts).
    generated: usize,
    /// The text tokens: no special or timestamp tokens.
    text_ids: Vec<u32>,
    text: String,
    avg_log_prob: f32,
    no_speech_prob: f32,
    temperature: f32,
}

/// The special tokens the engine builds prompts from.
#[derive(Debug, Clone)]
struct SpecialTokens {
    eot: u32,
    sot: String,
    sot_prev: String,
    transcribe: String,
    no_timestamps: String,
}

/// Whisper (any size, English-only or multilingual) on CTranslate2.
pub struct Ct2Whisper {
    model: String,
    path: PathBuf,
    whisper: sys::Whisper,
    tokenizer: hf::Tokenizer,
    mel: LogMel,
    window: FeatureWindow,
    special: SpecialTokens,
}

impl fmt::Debug for Ct2Whisper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ct2Whisper")
            .field("model", &self.model)
            .field("path", &self.path)
            .field("whisper", &self.whisper)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Ct2Whisper {
    /// Loads a CTranslate2 Whisper model from a folder holding `model.bin`, `config.json`,
    /// `tokenizer.json` and a vocabulary; writes the standard `preprocessor_config.json` there
    /// when it is missing. The model's name is the folder's, less a `-ct2` suffix.
    pub fn load(dir: &Path, options: &Ct2Options) -> Result<Self, EngineError> {
        let model_error = |reason: String| EngineError::Model { path: dir.display().to_string(), reason };
        if !dir.is_dir() {
            return Err(model_error("not a folder".into()));
        }
        for required in ["model.bin", "config.json", "tokenizer.json"] {
            if !dir.join(required).is_file() {
                return Err(model_error(format!("missing {required}")));
            }
        }
        let compute_type = parse_compute_type(&options.compute_type)
            .ok_or_else(|| model_error(format!("unknown compute type {:?}", options.compute_type)))?;
        ensure_preprocessor_config(dir)
            .map_err(|err| model_error(format!("write {PREPROCESSOR_CONFIG_FILE}: {err}")))?;
        let features = FeatureConfig::read(&dir.join(PREPROCESSOR_CONFIG_FILE)).map_err(model_error)?;

        let config = Config {
            device: MODEL_DEVICE,
            compute_type,
            num_threads_per_replica: options.threads,
            ..Config::default()
        };
        let whisper = sys::Whisper::new(dir, config).map_err(|err| model_error(format!("ctranslate2: {err:#}")))?;
        if whisper.n_mels() != features.feature_size {
            return Err(model_error(format!(
                "the model takes {} mel bins but {PREPROCESSOR_CONFIG_FILE} says {}",
                whisper.n_mels(),
                features.feature_size
            )));
        }
        let tokenizer = hf::Tokenizer::new(dir).map_err(|err| model_error(format!("tokenizer: {err:#}")))?;
        let id = |token: &str| {
            tokenizer.deref().token_to_id(token).ok_or_else(|| model_error(format!("the tokenizer lacks {token}")))
        };
        let special = SpecialTokens {
            eot: id("<|endoftext|>")?,
            sot: "<|startoftranscript|>".into(),
            sot_prev: "<|startofprev|>".into(),
            transcribe: "<|transcribe|>".into(),
            no_timestamps: "<|notimestamps|>".into(),
        };
        for token in [&special.sot, &special.sot_prev, &special.transcribe, &special.no_timestamps] {
            id(token)?;
        }

        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let model = name.strip_suffix("-ct2").unwrap_or(&name).to_owned();
        Ok(Self {
            model,
            path: dir.to_path_buf(),
            whisper,
            tokenizer,
            mel: LogMel::new(features),
            window: options.window,
            special,
        })
    }

    /// The number of mel frames the encoder sees for `samples` samples of audio.
    pub fn window_frames(&self, samples: usize) -> usize {
        let config = self.mel.config;
        let max = config.max_frames();
        match self.window {
            FeatureWindow::Full => max,
            FeatureWindow::Fit { step_ms, padding_ms } => {
                let per_ms = SAMPLE_RATE_HZ as usize / 1000;
                let wanted = samples + padding_ms as usize * per_ms;
                let step = (step_ms as usize * per_ms).max(config.hop_length);
                let padded = wanted.div_ceil(step) * step;
                // An even count: the encoder halves it.
                let frames = padded.div_ceil(config.hop_length);
                (frames + frames % 2).min(max)
            }
        }
    }

    fn tokenizer(&self) -> &tokenizers_shim::Tokenizer {
        self.tokenizer.deref()
    }

    /// The tokens that start decoding: the previous text (initial prompt), then Whisper's
    /// start-of-transcript sequence. Returns (prompt, start-of-transcript sequence).
    fn prompt(&self, language: &str, options: &DecodeOptions) -> Result<(Vec<String>, Vec<String>), EngineError> {
        let mut sot_sequence = vec![self.special.sot.clone()];
        if self.whisper.is_multilingual() {
            sot_sequence.push(format!("<|{language}|>"));
            sot_sequence.push(self.special.transcribe.clone());
        }
        let mut prompt = Vec::new();
        if let Some(text) = options.initial_prompt.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let encoding = self
                .tokenizer()
                .encode(format!(" {text}"), false)
                .map_err(|err| EngineError::Inference(format!("tokenize the initial prompt: {err}")))?;
            let tokens = encoding.get_tokens();
            let keep = MAX_TEXT_CONTEXT / 2 - 1;
            prompt.push(self.special.sot_prev.clone());
            prompt.extend(tokens[tokens.len().saturating_sub(keep)..].iter().cloned());
        }
        prompt.extend(sot_sequence.iter().cloned());
        if !TIMESTAMP_TOKENS {
            prompt.push(self.special.no_timestamps.clone());
        }
        Ok((prompt, sot_sequence))
    }

    /// Whisper options for one temperature.
    fn whisper_options(&self, options: &DecodeOptions, temperature: f32, prompt_len: usize) -> WhisperOptions {
        let greedy_or_beam = temperature <= 0.0;
        WhisperOptions {
            beam_size: if greedy_or_beam { options.beam_size.max(1) } else { 1 },
            // 0 samples from the whole distribution; 1 is argmax.
            sampling_topk: if greedy_or_beam { 1 } else { 0 },
            sampling_temperature: if greedy_or_beam { 1.0 } else { temperature },
            max_length: (prompt_len + options.max_tokens.max(1)).min(MAX_TEXT_CONTEXT),
            return_scores: true,
            return_no_speech_prob: true,
            // -1: the suppressed tokens listed in the model's config.json.
            suppress_tokens: vec![-1],
            suppress_blank: true,
            ..WhisperOptions::default()
        }
    }

    /// Decodes every item of an encoded batch at one temperature.
    fn generate(
        &self,
        encoded: &StorageView<'_>,
        prompts: &[Vec<String>],
        options: &DecodeOptions,
        temperature: f32,
    ) -> Result<Vec<Candidate>, EngineError> {
        let prompt_len = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let whisper_options = self.whisper_options(options, temperature, prompt_len);
        let results = self
            .whisper
            .generate(encoded, prompts, &whisper_options)
            .map_err(|err| EngineError::Inference(format!("{err:#}")))?;
        results
            .into_iter()
            .map(|result| {
                let ids = result.sequences_ids.into_iter().next().unwrap_or_default();
                let text_ids: Vec<u32> = ids.iter().map(|&id| id as u32).filter(|&id| id < self.special.eot).collect();
                let text = self
                    .tokenizer()
                    .decode(&text_ids, true)
                    .map_err(|err| EngineError::Inference(format!("detokenize: {err}")))?
                    .trim()
                    .to_owned();
                // CTranslate2 returns the sum of log-probabilities over length^length_penalty
                // (penalty 1 here); Whisper averages over the tokens plus the end token.
                let length = ids.len() as f32;
                let score = result.scores.first().copied().unwrap_or(f32::NEG_INFINITY);
                let avg_log_prob = score * length / (length + 1.0);
                Ok(Candidate {
                    generated: ids.len(),
                    text_ids,
                    text,
                    avg_log_prob,
                    no_speech_prob: result.no_speech_prob,
                    temperature,
                })
            })
            .collect()
    }

    /// The language of each item: the requested one, or the detected one with its probability.
    fn languages(
        &self,
        encoded: &StorageView<'_>,
        batch: usize,
        options: &DecodeOptions,
    ) -> Result<Vec<(String, Option<f32>)>, EngineError> {
        if !self.whisper.is_multilingual() {
            return match options.language.as_deref() {
                None | Some("en") => Ok(vec![("en".to_owned(), None); batch]),
                Some(other) => Err(EngineError::Unsupported(format!(
                    "model {} is English-only and cannot transcribe {other:?}",
                    self.model
                ))),
            };
        }
        if let Some(language) = &options.language {
            if self.tokenizer().token_to_id(&format!("<|{language}|>")).is_none() {
                return Err(EngineError::Unsupported(format!("language {language:?}")));
            }
            return Ok(vec![(language.clone(), None); batch]);
        }
        let detected =
            self.whisper.detect_language(encoded).map_err(|err| EngineError::Inference(format!("{err:#}")))?;
        detected
            .into_iter()
            .map(|ranked| {
                let best = ranked
                    .into_iter()
                    .max_by(|a, b| a.probability.total_cmp(&b.probability))
                    .ok_or_else(|| EngineError::Inference("language detection returned nothing".into()))?;
                let code = best.language.trim_start_matches("<|").trim_end_matches("|>").to_owned();
                Ok((code, Some(best.probability)))
            })
            .collect()
    }

    /// Word timings for each item from the cross-attention alignment (DTW), in ms from the
    /// start of the item's audio.
    fn words(
        &self,
        encoded: &StorageView<'_>,
        sot_sequence: &[String],
        items: &[(&Candidate, usize)],
    ) -> Result<Vec<Vec<WordTiming>>, EngineError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let start: Vec<usize> =
            sot_sequence.iter().filter_map(|t| self.tokenizer().token_to_id(t)).map(|id| id as usize).collect();
        let text_tokens: Vec<Vec<usize>> =
            items.iter().map(|(c, _)| c.text_ids.iter().map(|&id| id as usize).collect()).collect();
        let frames: Vec<usize> = items.iter().map(|(_, frames)| *frames).collect();
        let alignments = self
            .whisper
            .align(encoded, &start, &text_tokens, &frames, 7)
            .map_err(|err| EngineError::Inference(format!("align: {err:#}")))?;
        let ms_per_frame =
            (self.mel.config.hop_length * MEL_FRAMES_PER_ENCODER_FRAME * 1000) as f64 / SAMPLE_RATE_HZ as f64;
        items
            .iter()
            .zip(alignments)
            .map(|((candidate, _), alignment)| {
                let ids = &candidate.text_ids;
                // The encoder frame where the path first reaches each token (the end token
                // included, at index `ids.len()`): token i spans [jump[i], jump[i + 1]).
                let mut jump: Vec<Option<i64>> = vec![None; ids.len() + 1];
                for step in &alignment.alignments {
                    if let Some(slot) = usize::try_from(step.token_x).ok().and_then(|i| jump.get_mut(i))
                        && slot.is_none()
                    {
                        *slot = Some(step.frame_x);
                    }
                }
                let mut last = 0i64;
                let jump: Vec<i64> = jump
                    .into_iter()
                    .map(|frame| {
                        last = frame.unwrap_or(last).max(last);
                        last
                    })
                    .collect();
                let mut words = Vec::new();
                for range in split_words(self, ids) {
                    let text = self
                        .tokenizer()
                        .decode(&ids[range.clone()], true)
                        .map_err(|err| EngineError::Inference(format!("detokenize: {err}")))?;
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let probs = &alignment.text_token_probs;
                    let probability = if range.end <= probs.len() {
                        probs[range.clone()].iter().sum::<f32>() / range.len() as f32
                    } else {
                        0.0
                    };
                    words.push(WordTiming {
                        text: text.to_owned(),
                        start_ms: (jump[range.start] as f64 * ms_per_frame) as u64,
                        end_ms: (jump[range.end] as f64 * ms_per_frame) as u64,
                        probability,
                    });
                }
                Ok(words)
            })
            .collect()
    }

    /// Encodes `audio` padded to `frames` mel frames.
    fn encode(&self, audio: &[f32], frames: usize) -> Result<StorageView<'static>, EngineError> {
        let mut features = self.mel.compute(audio, frames);
        let shape = [1, self.mel.config.feature_size, frames];
        let features = StorageView::new(&shape, &mut features, Device::CPU)
            .map_err(|err| EngineError::Inference(format!("features: {err:#}")))?;
        self.whisper.encode(&features, false).map_err(|err| EngineError::Inference(format!("encode: {err:#}")))
    }

    /// Transcribes audio of at most one window (30 s). With a fitted window, one greedy pass on
    /// it first, kept only when it ends on its own within [`fitted_token_budget`] tokens and
    /// passes the quality checks; anything else (the decoder looping, unsure text) is decoded
    /// again on the full window, with the whole temperature fallback.
    fn transcribe_window(&self, audio: &[f32], options: &DecodeOptions) -> Result<Transcription, EngineError> {
        let full = self.mel.config.max_frames();
        let frames = self.window_frames(audio.len());
        if frames < full {
            if let Some(result) = self.transcribe_fitted(audio, frames, options)? {
                metrics::counter!("dragoman_stt_fitted_window_total", "outcome" => "kept").increment(1);
                return Ok(result);
            }
            metrics::counter!("dragoman_stt_fitted_window_total", "outcome" => "full_window").increment(1);
        }
        self.transcribe_full(audio, full, options)
    }

    /// One utterance encoded, its language settled and its prompt built: what every pass on a
    /// window starts from.
    fn encode_one(&self, audio: &[f32], frames: usize, options: &DecodeOptions) -> Result<Encoded, EngineError> {
        let encoded = self.encode(audio, frames)?;
        let (language, language_probability) =
            self.languages(&encoded, 1, options)?.into_iter().next().unwrap_or(("en".into(), None));
        let (prompt, sot_sequence) = self.prompt(&language, options)?;
        Ok(Encoded { encoded, language, language_probability, prompt, sot_sequence })
    }

    /// The word timings of one decoded utterance of `samples` samples on a window of `frames`.
    fn word_timings(
        &self,
        encoded: &StorageView<'_>,
        sot_sequence: &[String],
        candidate: &Candidate,
        samples: usize,
        frames: usize,
    ) -> Result<Vec<WordTiming>, EngineError> {
        if candidate.text_ids.is_empty() {
            return Ok(Vec::new());
        }
        let content_frames = samples.div_ceil(self.mel.config.hop_length).min(frames);
        Ok(self.words(encoded, sot_sequence, &[(candidate, content_frames)])?.into_iter().next().unwrap_or_default())
    }

    /// The fitted window's single pass: `None` when it must be decoded on the full window.
    fn transcribe_fitted(
        &self,
        audio: &[f32],
        frames: usize,
        options: &DecodeOptions,
    ) -> Result<Option<Transcription>, EngineError> {
        let Encoded { encoded, language, language_probability, prompt, sot_sequence } =
            self.encode_one(audio, frames, options)?;
        let budget = fitted_token_budget(audio.len()).min(options.max_tokens);
        let first = DecodeOptions { max_tokens: budget, ..options.clone() };
        let temperature = options.temperatures.first().copied().unwrap_or(0.0);
        let candidate = self
            .generate(&encoded, std::slice::from_ref(&prompt), &first, temperature)?
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Inference("no result".into()))?;
        // Cut off at the budget: it did not end on its own, which on a short window means a loop.
        if candidate.generated >= budget {
            return Ok(None);
        }
        let mut result = self.transcription(&candidate, &language, language_probability);
        if !guards::acceptable(&result, options) || guards::has_back_to_back_repeat(&result.text, FITTED_REPEAT_WORDS) {
            return Ok(None);
        }
        if options.word_timestamps {
            result.words = self.word_timings(&encoded, &sot_sequence, &candidate, audio.len(), frames)?;
        }
        Ok(Some(result))
    }

    /// The full window with the temperature fallback, as Whisper decodes.
    fn transcribe_full(
        &self,
        audio: &[f32],
        frames: usize,
        options: &DecodeOptions,
    ) -> Result<Transcription, EngineError> {
        let Encoded { encoded, language, language_probability, prompt, sot_sequence } =
            self.encode_one(audio, frames, options)?;

        let temperatures: &[f32] = if options.temperatures.is_empty() { &[0.0] } else { &options.temperatures };
        let mut tried: Vec<(Candidate, Transcription)> = Vec::new();
        for &temperature in temperatures {
            let candidate = self
                .generate(&encoded, std::slice::from_ref(&prompt), options, temperature)?
                .into_iter()
                .next()
                .ok_or_else(|| EngineError::Inference("no result".into()))?;
            let result = self.transcription(&candidate, &language, language_probability);
            let done = guards::acceptable(&result, options);
            tried.push((candidate, result));
            if done {
                break;
            }
        }
        // All temperatures failed: keep the most likely result among the non-repetitive ones,
        // as Whisper does.
        let best = pick(tried, options).ok_or_else(|| EngineError::Inference("no result".into()))?;
        let (candidate, mut result) = best;
        if options.word_timestamps {
            result.words = self.word_timings(&encoded, &sot_sequence, &candidate, audio.len(), frames)?;
        }
        Ok(result)
    }

    fn transcription(&self, candidate: &Candidate, language: &str, language_probability: Option<f32>) -> Transcription {
        Transcription {
            text: candidate.text.clone(),
            language: language.to_owned(),
            language_probability,
            avg_log_prob: candidate.avg_log_prob,
            no_speech_prob: candidate.no_speech_prob,
            temperature: candidate.temperature,
            words: Vec::new(),
        }
    }
}

/// A fitted-window pass that says a phrase of up to this many words twice back to back is
/// decoded again on the full window: on short windows tiny.en repeats itself (`April April`).
const FITTED_REPEAT_WORDS: usize = 12;

/// Tokens a fitted-window pass may generate for `samples` of audio: fast speech is about four
/// words (six tokens) a second, so twice that plus a margin never cuts a real transcript, and a
/// decoder that loops is stopped early.
pub fn fitted_token_budget(samples: usize) -> usize {
    let seconds = samples as f64 / SAMPLE_RATE_HZ as f64;
    (seconds * 12.0).ceil() as usize + 10
}

/// The result kept when no temperature passed the checks, or the one that did (the last).
fn pick(mut tried: Vec<(Candidate, Transcription)>, options: &DecodeOptions) -> Option<(Candidate, Transcription)> {
    let last_ok = tried.last().is_some_and(|(_, r)| guards::acceptable(r, options));
    if last_ok {
        return tried.pop();
    }
    let not_repetitive =
        tried.iter().any(|(_, r)| guards::compression_ratio(&r.text) <= options.compression_ratio_threshold);
    tried
        .into_iter()
        .filter(|(_, r)| !not_repetitive || guards::compression_ratio(&r.text) <= options.compression_ratio_threshold)
        .max_by(|(_, a), (_, b)| a.avg_log_prob.total_cmp(&b.avg_log_prob))
}

/// Splits text tokens into words: a word starts at a token that begins with a space (`Ġ` in
/// byte-level BPE) or is punctuation.
fn split_words(engine: &Ct2Whisper, ids: &[u32]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, &id) in ids.iter().enumerate() {
        let token = engine.tokenizer().id_to_token(id).unwrap_or_default();
        let starts_word = token.starts_with('Ġ')
            || token.chars().next().is_some_and(|c| c.is_ascii_punctuation() && !matches!(c, '\'' | '-'));
        if i > start && starts_word {
            ranges.push(start..i);
            start = i;
        }
    }
    if start < ids.len() {
        ranges.push(start..ids.len());
    }
    ranges
}

/// `ct2rs` re-exports no name for the `tokenizers` crate; this names the type its
/// Hugging Face tokenizer dereferences to.
mod tokenizers_shim {
    pub(super) type Tokenizer = <ct2rs::tokenizers::hf::Tokenizer as std::ops::Deref>::Target;
}

fn check_audio(audio: &[f32]) -> Result<(), EngineError> {
    if audio.iter().any(|s| !s.is_finite()) {
        return Err(EngineError::BadAudio("samples must be finite".into()));
    }
    Ok(())
}

impl SpeechEngine for Ct2Whisper {
    fn engine(&self) -> &'static str {
        "ctranslate2"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn multilingual(&self) -> bool {
        self.whisper.is_multilingual()
    }

    fn transcribe(&self, audio: &[f32], options: &DecodeOptions) -> Result<Transcription, EngineError> {
        check_audio(audio)?;
        if audio.is_empty() {
            return Ok(Transcription {
                language: options.language.clone().unwrap_or_else(|| "en".into()),
                no_speech_prob: 1.0,
                ..Transcription::default()
            });
        }
        // Longer than one window: transcribe window by window and join, each word shifted by
        // its window's start. Utterances are normally far shorter than 30 s.
        let window = self.mel.config.n_samples;
        let mut joined: Option<Transcription> = None;
        for (index, chunk) in audio.chunks(window).enumerate() {
            let mut part = self.transcribe_window(chunk, options)?;
            let offset_ms = (index * window) as u64 * 1000 / SAMPLE_RATE_HZ as u64;
            for word in &mut part.words {
                word.start_ms += offset_ms;
                word.end_ms += offset_ms;
            }
            joined = Some(match joined {
                None => part,
                Some(mut all) => {
                    if !part.text.is_empty() {
                        if !all.text.is_empty() {
                            all.text.push(' ');
                        }
                        all.text.push_str(&part.text);
                    }
                    all.avg_log_prob = all.avg_log_prob.min(part.avg_log_prob);
                    all.no_speech_prob = all.no_speech_prob.min(part.no_speech_prob);
                    all.temperature = all.temperature.max(part.temperature);
                    all.words.extend(part.words);
                    all
                }
            });
        }
        joined.ok_or_else(|| EngineError::Inference("no result".into()))
    }

    /// Encodes and decodes the batch together at the first temperature (one window fitted to
    /// the longest item); items that fail the checks fall back one by one.
    fn transcribe_batch(&self, audio: &[&[f32]], options: &DecodeOptions) -> Vec<Result<Transcription, EngineError>> {
        let window = self.mel.config.n_samples;
        if audio.len() < 2 || audio.iter().any(|a| a.is_empty() || a.len() > window || check_audio(a).is_err()) {
            return audio.iter().map(|a| self.transcribe(a, options)).collect();
        }
        match self.transcribe_batch_first_pass(audio, options) {
            Ok(first) => first
                .into_iter()
                .zip(audio)
                .map(|(result, a)| match result {
                    Some(result) => Ok(result),
                    None => self.transcribe(a, options),
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "batched transcription failed; transcribing one by one");
                audio.iter().map(|a| self.transcribe(a, options)).collect()
            }
        }
    }
}

impl Ct2Whisper {
    /// The batch at the first temperature: `Some` for items that passed the checks.
    fn transcribe_batch_first_pass(
        &self,
        audio: &[&[f32]],
        options: &DecodeOptions,
    ) -> Result<Vec<Option<Transcription>>, EngineError> {
        let longest = audio.iter().map(|a| a.len()).max().unwrap_or(0);
        let frames = self.window_frames(longest);
        let feature_size = self.mel.config.feature_size;
        let mut features = Vec::with_capacity(audio.len() * feature_size * frames);
        for a in audio {
            features.extend(self.mel.compute(a, frames));
        }
        let shape = [audio.len(), feature_size, frames];
        let features = StorageView::new(&shape, &mut features, Device::CPU)
            .map_err(|err| EngineError::Inference(format!("features: {err:#}")))?;
        let encoded =
            self.whisper.encode(&features, false).map_err(|err| EngineError::Inference(format!("encode: {err:#}")))?;
        let languages = self.languages(&encoded, audio.len(), options)?;
        let mut prompts = Vec::with_capacity(audio.len());
        let mut sot_sequences = Vec::with_capacity(audio.len());
        for (language, _) in &languages {
            let (prompt, sot) = self.prompt(language, options)?;
            prompts.push(prompt);
            sot_sequences.push(sot);
        }
        // CTranslate2 takes one start sequence for a whole batch's alignment; items whose
        // languages differ get their words from the one-by-one path.
        let same_start = sot_sequences.windows(2).all(|w| w[0] == w[1]);
        let temperature = options.temperatures.first().copied().unwrap_or(0.0);
        // On a fitted window, the same token budget as one by one: a looping item is cut off
        // early and decoded again alone (which falls back to the full window).
        let fitted = frames < self.mel.config.max_frames();
        let budget = if fitted { fitted_token_budget(longest).min(options.max_tokens) } else { options.max_tokens };
        let first = DecodeOptions { max_tokens: budget, ..options.clone() };
        let candidates = self.generate(&encoded, &prompts, &first, temperature)?;
        let mut results: Vec<Option<Transcription>> = candidates
            .iter()
            .zip(&languages)
            .map(|(candidate, (language, probability))| {
                let result = self.transcription(candidate, language, *probability);
                let cut_off = fitted
                    && (candidate.generated >= budget
                        || guards::has_back_to_back_repeat(&result.text, FITTED_REPEAT_WORDS));
                (!cut_off && guards::acceptable(&result, options)).then_some(result)
            })
            .collect();
        if options.word_timestamps {
            if !same_start {
                return Ok(vec![None; audio.len()]);
            }
            let items: Vec<(&Candidate, usize)> = candidates
                .iter()
                .zip(audio)
                .map(|(c, a)| (c, a.len().div_ceil(self.mel.config.hop_length).min(frames)))
                .collect();
            let words = self.words(&encoded, &sot_sequences[0], &items)?;
            for (result, words) in results.iter_mut().zip(words) {
                if let Some(result) = result {
                    result.words = words;
                }
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_filters_match_whisper_shape() {
        let filters = slaney_mel_filters(16_000.0, 400, 80);
        assert_eq!(filters.len(), 80);
        assert!(filters.iter().all(|row| row.len() == 201));
        // Every filter has some weight, and the first bin (DC) feeds none.
        assert!(filters.iter().all(|row| row.iter().any(|&w| w > 0.0)));
        assert!(filters.iter().all(|row| row[0] == 0.0));
        // Whisper's mel_filters.npz for 80 bins: the first filter peaks at bin 1 with ~0.0246.
        assert!((filters[0][1] - 0.0246).abs() < 1e-3, "{}", filters[0][1]);
    }

    #[test]
    fn sparse_filters_equal_the_dense_matrix() {
        let dense = slaney_mel_filters(16_000.0, 400, 80);
        let power: Vec<f32> = (0..201).map(|k| ((k * 7919) % 101) as f32 / 10.0 + 0.01).collect();
        for row in &dense {
            let full: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
            let sparse = SparseFilter::new(row);
            assert!(sparse.weights.len() < 40, "{}", sparse.weights.len());
            assert!((sparse.apply(&power) - full).abs() <= 1e-5 * full.abs().max(1.0), "{full}");
        }
    }

    fn config() -> FeatureConfig {
        FeatureConfig { feature_size: 80, hop_length: 160, n_fft: 400, n_samples: 480_000 }
    }

    #[test]
    fn features_of_silence_are_flat_and_a_tone_peaks_in_its_band() {
        let mel = LogMel::new(config());
        let silence = mel.compute(&[0.0; 16_000], 100);
        assert_eq!(silence.len(), 80 * 100);
        assert!(silence.iter().all(|&v| (v - silence[0]).abs() < 1e-6));

        let tone: Vec<f32> =
            (0..16_000).map(|i| (2.0 * std::f32::consts::PI * 1_000.0 * i as f32 / 16_000.0).sin()).collect();
        let features = mel.compute(&tone, 100);
        let frame = 50;
        let loudest = (0..80).max_by(|&a, &b| features[a * 100 + frame].total_cmp(&features[b * 100 + frame]));
        // 1 kHz sits at mel bin ~ 15 / (hz_to_mel(8000) / 81) ≈ 27.
        assert!(matches!(loudest, Some(25..=29)), "{loudest:?}");
        // Values are clamped to 8 decades (2.0 after scaling) below the peak.
        let max = features.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let min = features.iter().copied().fold(f32::INFINITY, f32::min);
        assert!((max - min - 2.0).abs() < 1e-4, "{min}..{max}");
    }

    #[test]
    fn preprocessor_config_is_written_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("dragoman-ct2-pre-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(PREPROCESSOR_CONFIG_FILE);
        let _ = std::fs::remove_file(&path);
        ensure_preprocessor_config(&dir).expect("write");
        assert_eq!(FeatureConfig::read(&path), Ok(config()));
        std::fs::write(&path, "{\"sampling_rate\": 16000}").expect("overwrite");
        ensure_preprocessor_config(&dir).expect("keep");
        assert!(FeatureConfig::read(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn compute_types_parse() {
        assert_eq!(parse_compute_type("int8"), Some(ComputeType::INT8));
        assert_eq!(parse_compute_type("float32"), Some(ComputeType::FLOAT32));
        assert_eq!(parse_compute_type("int4"), None);
    }
}
