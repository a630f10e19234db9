//! The whisper.cpp engine, through `whisper-rs` (which builds whisper.cpp from source with
//! cmake; the `cuda` feature of this crate builds its CUDA backend).
//!
//! One loaded model (`WhisperContext`) is shared by every caller; each transcription borrows a
//! decoding state (KV caches, compute buffers) from a small pool, so concurrent calls from the
//! inference pool never share one and a state is not rebuilt per utterance.
//!
//! The lever that matters for latency is the encoder's audio context. Whisper's encoder always
//! sees a 30-second window (1500 positions of 20 ms); for a 2-second utterance almost all of
//! that is padding. whisper.cpp can run the encoder over fewer positions (`audio_ctx`), so the
//! engine sizes it to the utterance plus a margin of padding, which keeps most of the accuracy of
//! the padded window at a fraction of its cost. Audio longer than one window uses the full
//! context, and whisper.cpp walks the windows itself. A fitted-window result that fails the
//! quality checks (the shortened window sometimes makes the decoder loop) is decoded again on
//! the full window before any higher temperature is tried.
//!
//! Temperature fallback follows [`DecodeOptions::temperatures`] exactly and uses the same
//! checks as the other engine ([`crate::guards::acceptable`]); whisper.cpp's own fallback is
//! switched off because it neither reports which temperature won nor checks the compression
//! ratio.

use std::path::Path;
use std::sync::{Mutex, Once};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use crate::engine::{DecodeOptions, EngineError, SAMPLE_RATE_HZ, SpeechEngine, Transcription, WordTiming};
use crate::guards;

/// Samples per encoder position: 10 ms mel hop, then a stride-2 convolution.
const SAMPLES_PER_AUDIO_CTX: usize = 2 * 160;
/// Centiseconds (whisper.cpp's timestamp unit) to milliseconds.
const MS_PER_TIMESTAMP_UNIT: i64 = 10;

/// How the engine runs (from the worker's config).
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperCppConfig {
    /// CPU threads one transcription uses. ggml's threads spin while they wait for each other,
    /// so more threads than free cores makes a transcription much slower, not faster.
    pub threads: usize,
    /// Run on the GPU when whisper.cpp was built with a GPU backend (the `cuda` feature).
    pub use_gpu: bool,
    /// Flash attention in the GPU kernels.
    pub flash_attn: bool,
    /// Encoder positions (20 ms each) of padding kept after the utterance when the encoder's
    /// audio context is sized to it; `None` always runs the full 30-second window.
    pub audio_ctx_margin_frames: Option<usize>,
    /// Decoding states kept ready for reuse (about the number of concurrent transcriptions).
    pub max_idle_states: usize,
}

impl Default for WhisperCppConfig {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            use_gpu: cfg!(feature = "cuda"),
            flash_attn: false,
            audio_ctx_margin_frames: Some(DEFAULT_AUDIO_CTX_MARGIN_FRAMES),
            max_idle_states: 4,
        }
    }
}

/// Five seconds of padding after the utterance, as for the CTranslate2 engine (see
/// `ct2::FeatureWindow`): with less, tiny.en's decoder loops on a short window more often, and
/// every loop costs a second, full-window pass.
pub const DEFAULT_AUDIO_CTX_MARGIN_FRAMES: usize = 250;

/// A fitted-window result that says a phrase of up to this many words twice back to back is
/// decoded again on the full window.
const FITTED_REPEAT_WORDS: usize = 12;

/// A whisper.cpp model ready to transcribe.
pub struct WhisperCpp {
    context: WhisperContext,
    model: String,
    config: WhisperCppConfig,
    /// whisper.cpp's full encoder context (1500 for every Whisper model).
    n_audio_ctx: usize,
    /// Half the decoder's context: the most prompt tokens Whisper conditions on.
    max_prompt_tokens: usize,
    token_eot: i32,
    states: Mutex<Vec<WhisperState>>,
    /// Decoding parameters per (language, beam size). `whisper-rs` copies the language into a
    /// C string it never frees; building the parameters once per language keeps that bounded.
    templates: Mutex<Vec<Template>>,
}

struct Template {
    language: Option<&'static str>,
    beam_size: usize,
    params: FullParams<'static, 'static>,
}

impl std::fmt::Debug for WhisperCpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperCpp")
            .field("model", &self.model)
            .field("config", &self.config)
            .field("n_audio_ctx", &self.n_audio_ctx)
            .finish_non_exhaustive()
    }
}

static LOGGING: Once = Once::new();

impl WhisperCpp {
    /// Loads a ggml model file (see [`crate::ggml_convert`] to make one from a CTranslate2
    /// folder). `model` is the name reported in results (e.g. `tiny.en`).
    pub fn load(path: &Path, model: impl Into<String>, config: WhisperCppConfig) -> Result<Self, EngineError> {
        // whisper.cpp logs every load and decode to stderr; send it through `tracing` instead.
        LOGGING.call_once(whisper_rs::install_logging_hooks);
        let model_error = |reason: String| EngineError::Model { path: path.display().to_string(), reason };
        if !path.is_file() {
            return Err(model_error("no such file".into()));
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(config.use_gpu).flash_attn(config.flash_attn);
        let context = WhisperContext::new_with_params(path, params)
            .map_err(|err| model_error(format!("whisper.cpp could not load it ({err:?}); see the log for why")))?;
        let n_audio_ctx = usize::try_from(context.n_audio_ctx()).unwrap_or(0);
        let max_prompt_tokens = usize::try_from(context.n_text_ctx() / 2 - 1).unwrap_or(0);
        let token_eot = context.token_eot();
        let engine = Self {
            context,
            model: model.into(),
            config,
            n_audio_ctx,
            max_prompt_tokens,
            token_eot,
            states: Mutex::new(Vec::new()),
            templates: Mutex::new(Vec::new()),
        };
        // Build one state now so a model that cannot run fails at load, not on the first call.
        let state = engine.take_state()?;
        engine.return_state(state);
        Ok(engine)
    }

    /// The encoder context for `samples` of audio: sized to the audio plus the margin, or 0
    /// (whisper.cpp's "full window") when there is no margin or the audio fills a window.
    pub fn audio_ctx_for(&self, samples: usize) -> usize {
        let Some(margin) = self.config.audio_ctx_margin_frames else { return 0 };
        let needed = samples.div_ceil(SAMPLES_PER_AUDIO_CTX) + margin;
        if needed >= self.n_audio_ctx { 0 } else { needed }
    }

    fn take_state(&self) -> Result<WhisperState, EngineError> {
        if let Some(state) = self.states.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(state);
        }
        self.context.create_state().map_err(|err| EngineError::Inference(format!("create a decoding state: {err:?}")))
    }

    fn return_state(&self, state: WhisperState) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        if states.len() < self.config.max_idle_states.max(1) {
            states.push(state);
        }
    }

    /// The language to decode in: English for English-only models, a validated code, or
    /// detection (`None`) for a multilingual model without one.
    fn language(&self, options: &DecodeOptions) -> Result<Option<&'static str>, EngineError> {
        if !self.context.is_multilingual() {
            return match options.language.as_deref() {
                None | Some("en") => Ok(Some("en")),
                Some(other) => Err(EngineError::Unsupported(format!(
                    "model {} is English-only; language {other:?} was asked for",
                    self.model
                ))),
            };
        }
        match options.language.as_deref() {
            None | Some("auto") => Ok(None),
            Some(code) => whisper_rs::get_lang_id(code)
                .and_then(whisper_rs::get_lang_str)
                .map(Some)
                .ok_or_else(|| EngineError::Unsupported(format!("unknown language code {code:?}"))),
        }
    }

    fn params(&self, language: Option<&'static str>, beam_size: usize) -> FullParams<'static, 'static> {
        let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = templates.iter().find(|t| t.language == language && t.beam_size == beam_size) {
            return t.params.clone();
        }
        let strategy = if beam_size <= 1 {
            // Above temperature 0 whisper.cpp samples this many candidates and keeps the
            // likeliest, as Whisper's `best_of`; at 0 it runs one.
            SamplingStrategy::Greedy { best_of: 5 }
        } else {
            SamplingStrategy::BeamSearch { beam_size: i32::try_from(beam_size).unwrap_or(i32::MAX), patience: -1.0 }
        };
        let mut params = FullParams::new(strategy);
        params.set_language(language);
        params.set_detect_language(false);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_translate(false);
        // Each utterance stands alone; context from earlier ones comes in as the prompt.
        params.set_no_context(true);
        params.set_suppress_blank(true);
        // Non-speech annotations ("(beeping)", "[music]") are suppressed, as faster-whisper's
        // default `suppress_tokens=[-1]` does for the other engine.
        params.set_suppress_nst(true);
        // The engine runs the temperature fallback itself (see the module docs).
        params.set_temperature_inc(0.0);
        // Never let whisper.cpp drop a window as "no speech": the engine reports the
        // probability and the worker's guards decide, as for the other engine.
        params.set_no_speech_thold(f32::INFINITY);
        params.set_logprob_thold(f32::NEG_INFINITY);
        params.set_entropy_thold(f32::INFINITY);
        templates.push(Template { language, beam_size, params: params.clone() });
        params
    }

    /// The prompt as tokens, the last `max_prompt_tokens` of them, as Whisper conditions on.
    fn prompt_tokens(&self, prompt: &str) -> Result<Vec<i32>, EngineError> {
        let prompt = prompt.replace('\0', " ");
        let prompt = format!(" {}", prompt.trim());
        // whisper.cpp returns minus the needed count when the buffer is short, which
        // `whisper-rs` does not check; a token is at least one byte, so this buffer always fits.
        let mut tokens = self
            .context
            .tokenize(&prompt, prompt.len() + 8)
            .map_err(|err| EngineError::Inference(format!("tokenize the prompt: {err:?}")))?;
        let excess = tokens.len().saturating_sub(self.max_prompt_tokens);
        tokens.drain(..excess);
        Ok(tokens)
    }

    /// One decoding pass at one temperature.
    fn decode_once(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        options: &DecodeOptions,
        language: Option<&'static str>,
        prompt: &[i32],
        attempt: Attempt,
    ) -> Result<Transcription, EngineError> {
        let Attempt { temperature, audio_ctx } = attempt;
        // The template lives for 'static; this run's parameters only borrow `prompt`.
        let mut params: FullParams<'static, '_> = self.params(language, options.beam_size);
        params.set_n_threads(i32::try_from(self.config.threads.max(1)).unwrap_or(1));
        params.set_audio_ctx(i32::try_from(audio_ctx).unwrap_or(0));
        params.set_temperature(temperature);
        params.set_max_tokens(i32::try_from(token_budget(audio.len(), options.max_tokens)).unwrap_or(i32::MAX));
        // One segment per 30 s window is all an utterance needs. Timestamp tokens stay on
        // even without word timings: measured on tiny.en with a fitted window, decoding
        // without them loops on the sentence far more often (the timestamps tell the decoder
        // where the speech ends).
        params.set_single_segment(true);
        params.set_no_timestamps(false);
        params.set_token_timestamps(options.word_timestamps);
        params.set_tokens(prompt);
        state.full(params, audio).map_err(|err| EngineError::Inference(format!("whisper_full: {err:?}")))?;
        self.collect(state, language, temperature, options.word_timestamps)
    }

    /// Gathers the text, log-probability, no-speech probability and word timings of the last
    /// `full` run.
    fn collect(
        &self,
        state: &WhisperState,
        language: Option<&'static str>,
        temperature: f32,
        with_words: bool,
    ) -> Result<Transcription, EngineError> {
        let mut text = String::new();
        let mut log_prob_sum = 0.0f64;
        let mut n_text_tokens = 0usize;
        let mut no_speech_prob: Option<f32> = None;
        let mut words: Vec<WordTiming> = Vec::new();
        let mut word_probs: Vec<f32> = Vec::new();
        for segment in state.as_iter() {
            let segment_text =
                segment.to_str_lossy().map_err(|err| EngineError::Inference(format!("segment text: {err:?}")))?;
            text.push_str(&segment_text);
            // One probability per window; a long recording keeps the most speech-like window's.
            let p = segment.no_speech_probability();
            no_speech_prob = Some(no_speech_prob.map_or(p, |q| q.min(p)));
            for index in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(index) else { continue };
                let data = token.token_data();
                if data.id >= self.token_eot {
                    continue;
                }
                log_prob_sum += f64::from(data.plog);
                n_text_tokens += 1;
                if with_words {
                    let piece = token.to_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                    add_token_to_words(&mut words, &mut word_probs, &piece, data.t0, data.t1, data.p);
                }
            }
        }
        for (word, probs) in words.iter_mut().zip(&word_probs) {
            word.probability = *probs;
        }
        let language = match language {
            Some(code) => code.to_owned(),
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state()).unwrap_or("en").to_owned(),
        };
        Ok(Transcription {
            text: text.trim().to_owned(),
            language,
            language_probability: None,
            // The end-of-text token is not among the segment's tokens; like Whisper, average
            // over the text tokens.
            avg_log_prob: if n_text_tokens == 0 { 0.0 } else { (log_prob_sum / n_text_tokens as f64) as f32 },
            // No segment at all: nothing was heard.
            no_speech_prob: no_speech_prob.unwrap_or(1.0),
            temperature,
            words,
        })
    }
}

/// One decoding pass: a temperature and an encoder context (0 = the full window).
#[derive(Debug, Clone, Copy)]
struct Attempt {
    temperature: f32,
    audio_ctx: usize,
}

/// Speech carries well under 16 tokens a second (timestamps included); a window decoding
/// past that is looping, and stopping it early bounds the cost of a hallucination before the
/// fallback's checks reject it.
const MAX_TOKENS_PER_SECOND: usize = 16;

/// The most tokens one window of `samples` may produce.
fn token_budget(samples: usize, max_tokens: usize) -> usize {
    let window_seconds = samples.min(30 * SAMPLE_RATE_HZ as usize).div_ceil(SAMPLE_RATE_HZ as usize);
    max_tokens.min(MAX_TOKENS_PER_SECOND * (window_seconds + 1))
}

/// Appends one text token to the word list: a token starting with a space starts a word.
/// A word's probability is the lowest of its tokens' (one unsure piece makes the word unsure).
fn add_token_to_words(words: &mut Vec<WordTiming>, probs: &mut Vec<f32>, piece: &str, t0: i64, t1: i64, p: f32) {
    let to_ms = |t: i64| u64::try_from(t.max(0) * MS_PER_TIMESTAMP_UNIT).unwrap_or(0);
    let starts_word = piece.starts_with(' ') || words.is_empty();
    if starts_word {
        let text = piece.trim_start().to_owned();
        if text.is_empty() {
            return;
        }
        words.push(WordTiming { text, start_ms: to_ms(t0), end_ms: to_ms(t1.max(t0)), probability: p });
        probs.push(p);
    } else if let (Some(word), Some(prob)) = (words.last_mut(), probs.last_mut()) {
        word.text.push_str(piece);
        word.end_ms = word.end_ms.max(to_ms(t1));
        *prob = prob.min(p);
    }
}

/// Of the results tried, the accepted one (the last), else the most likely non-repetitive one.
fn pick(mut tried: Vec<Transcription>, options: &DecodeOptions) -> Option<Transcription> {
    if tried.last().is_some_and(|r| guards::acceptable(r, options)) {
        return tried.pop();
    }
    let repetitive = |r: &Transcription| guards::compression_ratio(&r.text) > options.compression_ratio_threshold;
    let any_fluent = tried.iter().any(|r| !repetitive(r));
    tried.into_iter().filter(|r| !any_fluent || !repetitive(r)).max_by(|a, b| a.avg_log_prob.total_cmp(&b.avg_log_prob))
}

impl SpeechEngine for WhisperCpp {
    fn engine(&self) -> &'static str {
        "whisper_cpp"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn multilingual(&self) -> bool {
        self.context.is_multilingual()
    }

    fn transcribe(&self, audio: &[f32], options: &DecodeOptions) -> Result<Transcription, EngineError> {
        if audio.iter().any(|s| !s.is_finite()) {
            return Err(EngineError::BadAudio("samples must be finite".into()));
        }
        let language = self.language(options)?;
        if audio.is_empty() {
            return Ok(Transcription {
                language: language.unwrap_or("en").to_owned(),
                no_speech_prob: 1.0,
                ..Transcription::default()
            });
        }
        // whisper.cpp skips audio shorter than 100 ms (it returns no segment); pad such a
        // fragment with silence rather than lose it.
        let min_samples = SAMPLE_RATE_HZ as usize / 10 + SAMPLE_RATE_HZ as usize / 100;
        let padded;
        let audio = if audio.len() < min_samples {
            padded = [audio, vec![0.0; min_samples - audio.len()].as_slice()].concat();
            &padded[..]
        } else {
            audio
        };
        let prompt = match options.initial_prompt.as_deref() {
            Some(p) if !p.trim().is_empty() => self.prompt_tokens(p)?,
            _ => Vec::new(),
        };
        let temperatures: &[f32] = if options.temperatures.is_empty() { &[0.0] } else { &options.temperatures };

        let mut state = self.take_state()?;
        let mut tried = Vec::with_capacity(temperatures.len());
        let mut outcome = Ok(());
        // The fitted window first; when its result fails the checks, the full window at the
        // first temperature, then the rest of the temperatures on the full window. Measured on
        // tiny.en, the fitted window's failures are loops that the full window does not make,
        // and one full-window pass costs far less than sampling five candidates at each
        // higher temperature.
        let fitted = self.audio_ctx_for(audio.len());
        let mut attempts: Vec<Attempt> =
            temperatures.iter().map(|&temperature| Attempt { temperature, audio_ctx: 0 }).collect();
        if fitted != 0 {
            attempts.insert(0, Attempt { temperature: temperatures[0], audio_ctx: fitted });
        }
        for attempt in attempts {
            match self.decode_once(&mut state, audio, options, language, &prompt, attempt) {
                Ok(result) => {
                    // The fitted window's typical failure is the sentence said twice, which the
                    // compression ratio does not catch; the full window gets another go.
                    let looped =
                        attempt.audio_ctx != 0 && guards::has_back_to_back_repeat(&result.text, FITTED_REPEAT_WORDS);
                    let done = !looped && guards::acceptable(&result, options);
                    tried.push(result);
                    if done {
                        break;
                    }
                }
                Err(err) => {
                    outcome = Err(err);
                    break;
                }
            }
        }
        // A state whose run failed may hold anything; only a clean one goes back to the pool.
        match outcome {
            Ok(()) => self.return_state(state),
            Err(err) => return Err(err),
        }
        pick(tried, options).ok_or_else(|| EngineError::Inference("no result".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(text: &str, avg_log_prob: f32, temperature: f32) -> Transcription {
        Transcription { text: text.into(), avg_log_prob, temperature, language: "en".into(), ..Default::default() }
    }

    #[test]
    fn the_token_budget_follows_the_audio_length() {
        assert_eq!(token_budget(16_000, 224), 32);
        assert_eq!(token_budget(3 * 16_000 + 1, 224), 80);
        assert_eq!(token_budget(60 * 16_000, 224), 224);
        assert_eq!(token_budget(1, 10), 10);
    }

    #[test]
    fn tokens_join_into_words_at_spaces() {
        let mut words = Vec::new();
        let mut probs = Vec::new();
        add_token_to_words(&mut words, &mut probs, " Hel", 10, 20, 0.9);
        add_token_to_words(&mut words, &mut probs, "lo", 20, 30, 0.5);
        add_token_to_words(&mut words, &mut probs, " world", 35, 60, 0.8);
        add_token_to_words(&mut words, &mut probs, ".", 60, 61, 0.99);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["Hello", "world."]);
        assert_eq!((words[0].start_ms, words[0].end_ms), (100, 300));
        assert_eq!(probs, vec![0.5, 0.8]);
    }

    #[test]
    fn fallback_keeps_the_accepted_or_the_likeliest_fluent_result() {
        let options = DecodeOptions::default();
        let accepted = pick(vec![result("uh", -2.0, 0.0), result("hello there", -0.2, 0.2)], &options);
        assert_eq!(accepted.map(|r| r.temperature), Some(0.2));
        let looping = "press four for the previous message ".repeat(20);
        let best =
            pick(vec![result(&looping, -0.1, 0.0), result("hello", -1.5, 0.2), result("yellow", -1.2, 0.4)], &options);
        assert_eq!(best.map(|r| r.text), Some("yellow".into()));
    }
}
