//! Configuration: defaults < `dragoman.toml` (or `--config PATH`) < `DRAGOMAN_SECTION__KEY`.
//!
//! Keys follow the structs below (`api.listen` is `[api] listen` in TOML and
//! `DRAGOMAN_API__LISTEN` in the environment). Unknown keys are rejected, and every error names
//! the key and where its value came from. Lists may be given in the environment as
//! comma-separated strings (`DRAGOMAN_API__TOKENS=a,b`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::secret::Secret;

/// Environment variables with this prefix are configuration.
pub const ENV_PREFIX: &str = "DRAGOMAN_";
/// Names the config file (like `--config`); not itself a key.
pub const CONFIG_PATH_ENV: &str = "DRAGOMAN_CONFIG";
/// Where model files live by default (`~/.cache/dragoman/models`); not itself a key: the
/// per-model keys (e.g. `media.vad_model_path`) default to paths under it.
pub const MODEL_DIR_ENV: &str = "DRAGOMAN_MODEL_DIR";
/// The file read when neither `--config` nor `DRAGOMAN_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "dragoman.toml";

/// The model directory: `$DRAGOMAN_MODEL_DIR`, else `$HOME/.cache/dragoman/models`. Every
/// default model path (`media.vad_model_path`, `stt.model_path`) is under it, and
/// `dragoman models` installs there.
pub fn model_dir() -> PathBuf {
    std::env::var_os(MODEL_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".cache").join("dragoman").join("models")
    })
}

/// Everything Dragoman can be told. Every binary reads the whole of it, so one file serves all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bus: BusConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub api: ApiConfig,
    pub ari: AriConfig,
    pub media: MediaConfig,
    pub stt: SttConfig,
    pub mt: MtConfig,
}

/// The message bus (NATS with JetStream). `dragoman standalone` ignores this and runs an
/// in-process bus.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// NATS server URL(s), comma-separated.
    pub url: String,
    /// First subject token; every subject is `<namespace>.v1.…`. Change it to run two
    /// deployments on one NATS without seeing each other.
    pub namespace: String,
    /// NATS token auth.
    pub token: Option<Secret>,
    /// NATS user (with `password`).
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// NATS credentials file (JWT + NKey), the recommended auth for production.
    pub credentials_file: Option<PathBuf>,
    /// Require TLS to NATS.
    pub tls_required: bool,
    /// CA bundle to verify the NATS server (system roots when unset).
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    /// How long a request (endpoint allocation, operator command) waits for its reply.
    pub request_timeout_ms: u64,
    /// Buffer per subscription; past it, core messages (partials) are dropped and counted.
    pub subscription_capacity: usize,
    /// How long call events, transcripts and translations stay replayable in JetStream.
    pub calls_retention_hours: u64,
    pub calls_max_bytes: i64,
    /// How long a final utterance may wait for an STT worker.
    pub stt_queue_max_age_s: u64,
    /// Past this, final utterances wait at media ingest (they are never dropped).
    pub stt_queue_max_bytes: i64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            namespace: dragoman_bus::subjects::DEFAULT_NAMESPACE.into(),
            token: None,
            user: None,
            password: None,
            credentials_file: None,
            tls_required: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 2_000,
            subscription_capacity: 4_096,
            calls_retention_hours: 24,
            calls_max_bytes: 1 << 30,
            stt_queue_max_age_s: 3_600,
            stt_queue_max_bytes: 1 << 30,
        }
    }
}

impl BusConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn stream_limits(&self) -> dragoman_bus::StreamLimits {
        dragoman_bus::StreamLimits {
            calls_max_age: Duration::from_secs(self.calls_retention_hours * 3600),
            calls_max_bytes: self.calls_max_bytes,
            stt_max_age: Duration::from_secs(self.stt_queue_max_age_s),
            stt_max_bytes: self.stt_queue_max_bytes,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs, traces and metrics.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// tracing-subscriber filter, e.g. `info` or `info,dragoman_bus=debug`.
    pub log_filter: String,
    /// OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`); traces are exported
    /// only when this is set.
    pub otlp_endpoint: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served for this process; empty disables.
    pub metrics_listen: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            log_filter: "info".into(),
            otlp_endpoint: None,
            metrics_listen: "127.0.0.1:9464".into(),
        }
    }
}

/// Graceful shutdown on SIGINT/SIGTERM.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish before the process exits anyway.
    pub grace_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_ms: 10_000 }
    }
}

/// Asterisk's REST Interface, as the ARI gateway uses it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AriConfig {
    /// Asterisk's HTTP server (http.conf), with its `prefix` if one is set:
    /// `http://127.0.0.1:8088` or `https://pbx.example.com:8089`. Events use ws:// or wss://
    /// on the same host.
    pub url: String,
    /// The ARI user (ari.conf `[user]` with `type=user`).
    pub username: String,
    /// That user's password. No default: the gateway refuses to start without one.
    pub password: Option<Secret>,
    /// Send the credentials as `?api_key=user:password` instead of HTTP Basic.
    pub api_key_auth: bool,
    /// The Stasis application the dialplan hands calls to (`Stasis(dragoman)`).
    pub app: String,
    /// How long one ARI request may take before it counts as failed.
    pub request_timeout_ms: u64,
    /// First wait before reconnecting the events socket; it doubles (with jitter) up to
    /// `reconnect_max_ms`.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Audio format Asterisk sends each leg in: `slin16` (16 kHz, best for Whisper) or `ulaw`
    /// (8 kHz, a quarter of the bandwidth).
    pub media_format: String,
    /// Channel variable (set in the dialplan) holding a leg's language, e.g. `es-ES`.
    pub language_variable: String,
    /// Channel variable holding the languages to translate a leg into, comma-separated.
    pub targets_variable: String,
    /// Channel variable holding an endpoint to dial as the call's second party, e.g.
    /// `PJSIP/agent-200` (or the Stasis argument `dial=PJSIP/agent-200`).
    pub dial_variable: String,
    /// Language of a leg when the dialplan and the operator say nothing; unset lets STT detect it.
    pub default_language: Option<String>,
    /// Languages a leg is translated into when the dialplan says nothing. Unset: each leg
    /// into the other leg's language.
    #[serde(deserialize_with = "list_or_csv")]
    pub default_targets: Vec<String>,
    /// The caller's language menu: `*1=en,*2=es`; a party that keys a sequence switches its
    /// leg to that language.
    #[serde(deserialize_with = "list_or_csv")]
    pub dtmf_menu: Vec<String>,
    /// Turn on Asterisk's talk detector (TALK_DETECT) on every leg and publish TalkingChanged.
    pub talk_detect: bool,
    /// TALK_DETECT's silence threshold in ms (Asterisk's default when unset).
    pub talk_detect_silence_ms: Option<u32>,
    /// TALK_DETECT's energy threshold (Asterisk's default when unset).
    pub talk_detect_threshold: Option<u32>,
}

impl Default for AriConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8088".into(),
            username: "dragoman".into(),
            password: None,
            api_key_auth: false,
            app: "dragoman".into(),
            request_timeout_ms: 5_000,
            reconnect_initial_ms: 250,
            reconnect_max_ms: 30_000,
            media_format: "slin16".into(),
            language_variable: "DRAGOMAN_LANGUAGE".into(),
            targets_variable: "DRAGOMAN_TARGETS".into(),
            dial_variable: "DRAGOMAN_DIAL".into(),
            default_language: None,
            default_targets: Vec::new(),
            dtmf_menu: vec!["*1=en".into(), "*2=es".into(), "*3=fr".into(), "*4=de".into()],
            talk_detect: false,
            talk_detect_silence_ms: None,
            talk_detect_threshold: None,
        }
    }
}

/// The operator API.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the REST/WebSocket API listens on.
    pub listen: SocketAddr,
    /// Bearer tokens accepted on every route but health. No default: the API refuses to start
    /// without one (`dragoman standalone` on loopback generates and prints one).
    #[serde(deserialize_with = "list_or_csv")]
    pub tokens: Vec<Secret>,
    /// Origins allowed by CORS (browser consoles on other hosts).
    #[serde(deserialize_with = "list_or_csv")]
    pub cors_origins: Vec<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 503.
    pub request_timeout_ms: u64,
    /// Redis that stores call records and transcripts (`redis://[:password@]host:6379[/db]`).
    /// Unset: they are kept in memory, lost when the API stops, and only one API replica
    /// should run. Run Redis with `appendonly yes` (and `appendfsync always` to lose nothing
    /// in a crash): the recorder acknowledges an event once Redis has it.
    pub redis_url: Option<Secret>,
    /// How long a call's record, events and transcript are kept after its last event.
    pub retention_hours: u64,
    /// Events the recorder stores at once.
    pub recorder_concurrency: usize,
    /// Live WebSocket sessions this API replica serves at once; one more is answered 503, so a
    /// client that opens sockets in a loop cannot exhaust memory or file descriptors.
    pub max_live_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tokens: Vec::new(),
            cors_origins: Vec::new(),
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            redis_url: None,
            retention_hours: 7 * 24,
            recorder_concurrency: 16,
            max_live_connections: 10_000,
        }
    }
}

/// Media ingest: where Asterisk sends each leg's audio, and how it is cut into utterances.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub rtp_bind_address: std::net::IpAddr,
    /// Address told to Asterisk (externalMedia `external_host`); the bind address when unset.
    pub advertise_address: Option<String>,
    /// First port of the RTP range (inclusive).
    pub rtp_port_min: u16,
    /// Last port of the RTP range (inclusive).
    pub rtp_port_max: u16,
    /// Extra RTP payload types, as `PT=format` (e.g. `96=slin16`); 0 ulaw, 8 alaw and 118
    /// slin16 are always known.
    #[serde(deserialize_with = "list_or_csv")]
    pub dynamic_payload_types: Vec<String>,
    /// A leg whose audio stops for this long is finished and its port freed.
    pub stream_timeout_ms: u64,
    /// A leg that never sends a packet is freed after this long.
    pub start_timeout_ms: u64,
    /// Most legs this instance serves at once; allocation answers `exhausted` past it.
    pub max_legs: usize,
    /// Packets that may arrive after a missing one before it is declared lost (20 ms each).
    pub jitter_reorder_packets: u16,
    /// Silero VAD model (`silero_vad_openvino_16k.onnx`); default
    /// `$DRAGOMAN_MODEL_DIR/silero-vad/…`, with `DRAGOMAN_MODEL_DIR` defaulting to
    /// `~/.cache/dragoman/models`.
    pub vad_model_path: Option<PathBuf>,
    /// Speech probability at which an utterance starts.
    pub vad_start_threshold: f64,
    /// Speech probability below which a window counts as silence.
    pub vad_stop_threshold: f64,
    /// Audio kept from before speech onset.
    pub pre_roll_ms: u32,
    /// Silence that ends an utterance.
    pub end_silence_ms: u32,
    /// Shorter speech is ignored (coughs, clicks).
    pub min_speech_ms: u32,
    /// Longer speech is cut at its quietest point in the last few seconds.
    pub max_utterance_ms: u32,
    /// A partial request (the utterance so far) is published this often while someone speaks;
    /// 0 disables partials.
    pub partial_interval_ms: u32,
    /// Final utterances waiting to be stored on the bus per leg; past it the leg waits.
    pub final_queue: usize,
    /// AudioSocket (TCP) listener, e.g. `0.0.0.0:9092`; empty disables it.
    pub audiosocket_listen: String,
    /// WebSocket media listener, e.g. `0.0.0.0:9093`; empty disables it.
    pub websocket_listen: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            rtp_bind_address: std::net::IpAddr::from([127, 0, 0, 1]),
            advertise_address: None,
            rtp_port_min: 40_000,
            rtp_port_max: 40_999,
            dynamic_payload_types: Vec::new(),
            stream_timeout_ms: 10_000,
            start_timeout_ms: 30_000,
            max_legs: 2_000,
            jitter_reorder_packets: 3,
            vad_model_path: None,
            vad_start_threshold: 0.5,
            vad_stop_threshold: 0.35,
            pre_roll_ms: 300,
            end_silence_ms: 500,
            min_speech_ms: 250,
            max_utterance_ms: 15_000,
            partial_interval_ms: 1_000,
            final_queue: 64,
            audiosocket_listen: String::new(),
            websocket_listen: String::new(),
        }
    }
}

/// Which speech-to-text engine a worker runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SttEngineKind {
    /// CTranslate2 (faster-whisper model folders).
    #[default]
    Ctranslate2,
    /// whisper.cpp (ggml model files).
    WhisperCpp,
}

/// The speech-to-text worker.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SttConfig {
    pub engine: SttEngineKind,
    /// CTranslate2 model folder, or ggml model file for whisper.cpp; default
    /// `$DRAGOMAN_MODEL_DIR/whisper/tiny.en-ct2` (ctranslate2) or `…/whisper/ggml-tiny.en.bin`.
    pub model_path: Option<PathBuf>,
    /// CTranslate2 compute type: `int8` (fastest on CPU), `int8_float32`, `float32`, `float16`
    /// and `int8_float16` (GPU), `auto`, or `default` (as the model was converted).
    pub compute_type: String,
    /// Threads each inference thread's engine uses.
    pub threads: usize,
    /// Inference threads (each holds a share of the engine's work; finals first).
    pub inference_threads: usize,
    /// Finals decoded together where the engine batches.
    pub max_batch: usize,
    /// Partials waiting for a thread; past it the oldest is shed.
    pub partial_queue: usize,
    /// Partials older than this when they arrive are dropped.
    pub partial_max_age_ms: u64,
    /// Language when an utterance names none; empty lets a multilingual model detect it.
    pub default_language: String,
    /// 1 = greedy.
    pub beam_size: usize,
    /// Temperature fallback, tried in order until a result passes the checks.
    #[serde(deserialize_with = "list_or_csv")]
    pub temperatures: Vec<f64>,
    /// Text that conditions every decode (names, product words); a call's prompt replaces it.
    pub initial_prompt: Option<String>,
    pub word_timestamps: bool,
    /// No speech when the no-speech probability is above this and the text is unsure.
    pub no_speech_threshold: f64,
    /// Below this mean token log-probability a result is unsure (next temperature).
    pub log_prob_threshold: f64,
    /// Above this gzip compression ratio a result is repetitive (next temperature).
    pub compression_ratio_threshold: f64,
    /// Size the engine's audio window to the utterance (plus 5 s of silence) instead of
    /// Whisper's 30 s: one greedy pass on it, and a full-window decode whenever that pass loops,
    /// repeats itself or is unsure. About 3x faster on phone-length utterances, for a little
    /// accuracy (tiny.en over 200 Asterisk prompts: WER 6.72 % against 5.56 %; see `dragoman
    /// bench stt`); off decodes every utterance on the full window.
    pub short_window: bool,
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            engine: SttEngineKind::Ctranslate2,
            model_path: None,
            compute_type: "int8".into(),
            threads: 2,
            inference_threads: 1,
            max_batch: 4,
            partial_queue: 4,
            partial_max_age_ms: 1_500,
            default_language: "en".into(),
            beam_size: 1,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            initial_prompt: None,
            word_timestamps: true,
            no_speech_threshold: 0.6,
            log_prob_threshold: -1.0,
            compression_ratio_threshold: 2.4,
            short_window: true,
        }
    }
}

/// A translation engine the worker can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MtEngineKind {
    /// CTranslate2 models (NLLB-200, M2M100, OPUS-MT) listed in `mt.models`.
    Ctranslate2,
    /// Apertium pairs installed from Debian (`apertium-eng-spa`, ...).
    Apertium,
}

/// The translation worker.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MtConfig {
    /// Engines in order of preference: each pair goes to the first engine that has it.
    #[serde(deserialize_with = "list_or_csv")]
    pub engines: Vec<MtEngineKind>,
    /// CTranslate2 model folders: names under `$DRAGOMAN_MODEL_DIR/mt` (as `dragoman models
    /// pull` installs them, e.g. `nllb-200-distilled-600M-int8`) or absolute paths. A listed
    /// model that does not load stops the worker.
    #[serde(deserialize_with = "list_or_csv")]
    pub models: Vec<String>,
    /// CTranslate2 compute type (`int8` on CPU; `int8_float16` or `float16` on GPU).
    pub compute_type: String,
    /// Threads each CTranslate2 model uses (0: CTranslate2's default).
    pub threads: usize,
    /// 1 = greedy; 2-4 is a little better and slower.
    pub beam_size: usize,
    /// Longest sentence, in SentencePiece pieces, given to a neural model at once; longer ones
    /// are split (never truncated). A translation may run to twice this plus 16 tokens, which
    /// must stay within the model's positions (512 for OPUS-MT, 1024 for NLLB-200 and M2M100).
    pub max_source_tokens: usize,
    /// Where Apertium's installed modes are.
    pub apertium_modes_dir: PathBuf,
    /// Translations kept in the least-recently-used cache (IVR prompts repeat all day).
    pub cache_entries: usize,
    /// Transcripts handled at once (their sentences are batched together).
    pub concurrency: usize,
    /// Texts translated in one engine batch, across calls.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others, in ms (0: batch only what is
    /// already waiting).
    pub batch_window_ms: u64,
    /// Also translate partial transcripts, for captions that move as people speak.
    pub translate_partials: bool,
    /// Partial transcripts older than this when their turn comes are dropped.
    pub partial_max_age_ms: u64,
}

impl Default for MtConfig {
    fn default() -> Self {
        Self {
            engines: vec![MtEngineKind::Ctranslate2, MtEngineKind::Apertium],
            models: Vec::new(),
            compute_type: "int8".into(),
            threads: 0,
            beam_size: 2,
            max_source_tokens: 200,
            apertium_modes_dir: PathBuf::from("/usr/share/apertium/modes"),
            cache_entries: 10_000,
            concurrency: 16,
            max_batch: 16,
            batch_window_ms: 5,
            translate_partials: false,
            partial_max_age_ms: 1_500,
        }
    }
}

impl MtConfig {
    /// The folders of `models`: names resolve under `$DRAGOMAN_MODEL_DIR/mt`.
    pub fn model_paths(&self) -> Vec<PathBuf> {
        self.models
            .iter()
            .map(|model| {
                let path = PathBuf::from(model);
                if path.is_absolute() { path } else { model_dir().join("mt").join(model) }
            })
            .collect()
    }
}

/// One `ari.dtmf_menu` entry, `*1=en`: the keys and the language.
pub fn dtmf_menu_entry(entry: &str) -> Option<(&str, &str)> {
    let (keys, language) = entry.split_once('=')?;
    let (keys, language) = (keys.trim(), language.trim());
    let valid = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
    (!keys.is_empty() && keys.chars().all(valid) && !language.is_empty()).then_some((keys, language))
}

/// Accepts a list, or a comma-separated string (handy in environment variables).
fn list_or_csv<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<serde_json::Value>),
        Text(String),
    }
    let values = match ListOrString::deserialize(deserializer)? {
        ListOrString::List(items) => items,
        ListOrString::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::Value::String(s.to_owned()))
            .collect(),
    };
    values
        .into_iter()
        .map(|value| {
            serde_json::from_value(value.clone())
                .or_else(|err| {
                    // A number written in a comma-separated string (`DRAGOMAN_STT__TEMPERATURES=0,0.2`).
                    match value.as_str().and_then(|s| s.parse::<f64>().ok()) {
                        Some(number) => serde_json::from_value(serde_json::json!(number)),
                        None => Err(err),
                    }
                })
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

/// Configuration could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{}", describe(.0))]
    Invalid(Box<figment::Error>),
    #[error("invalid value for {key}: {reason}")]
    Value { key: &'static str, reason: String },
}

/// Figment's errors, with the key in lowercase dotted form and, for the environment, the exact
/// variable to fix.
fn describe(err: &figment::Error) -> String {
    err.clone()
        .into_iter()
        .map(|e| {
            let key = e.path.iter().map(|p| p.to_ascii_lowercase()).collect::<Vec<_>>().join(".");
            let source = match &e.metadata {
                Some(meta) if meta.name.contains("environment") => {
                    let var: Vec<String> = e.path.iter().map(|p| p.to_ascii_uppercase()).collect();
                    format!("environment variable {ENV_PREFIX}{}", var.join("__"))
                }
                Some(meta) => match &meta.source {
                    Some(source) => format!("{} {source}", meta.name),
                    None => meta.name.to_string(),
                },
                None => "defaults".to_owned(),
            };
            if key.is_empty() {
                format!("{} (from {source})", e.kind)
            } else {
                format!("key `{key}`: {} (from {source})", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        Self::Invalid(Box::new(err))
    }
}

impl Config {
    /// The layered figment: defaults (from `#[serde(default)]`) < file < environment.
    pub fn figment(path: Option<&Path>) -> Result<Figment, ConfigError> {
        let explicit = path.map(Path::to_path_buf).or_else(|| std::env::var_os(CONFIG_PATH_ENV).map(PathBuf::from));
        let mut figment = Figment::new();
        match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path)),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        let env = Env::prefixed(ENV_PREFIX)
            .split("__")
            // DRAGOMAN_CONFIG names the file, DRAGOMAN_MODEL_DIR the model directory, and
            // DRAGOMAN_TEST_* belong to the test suite: none of them is a key.
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key != "config" && key != "model_dir" && !key.starts_with("test_")
            });
        Ok(figment.merge(env))
    }

    /// Loads and validates the configuration.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config: Config = Self::figment(path)?.extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        dragoman_bus::Subjects::new(&self.bus.namespace)
            .map_err(|e| ConfigError::Value { key: "bus.namespace", reason: e.to_string() })?;
        if self.bus.url.trim().is_empty() {
            return Err(ConfigError::Value { key: "bus.url", reason: "must not be empty".into() });
        }
        if self.bus.password.is_some() != self.bus.user.is_some() {
            return Err(ConfigError::Value { key: "bus.user", reason: "bus.user and bus.password go together".into() });
        }
        if self.bus.tls_cert_file.is_some() != self.bus.tls_key_file.is_some() {
            return Err(ConfigError::Value {
                key: "bus.tls_cert_file",
                reason: "bus.tls_cert_file and bus.tls_key_file go together".into(),
            });
        }
        if self.bus.request_timeout_ms == 0 {
            return Err(ConfigError::Value { key: "bus.request_timeout_ms", reason: "must be above 0".into() });
        }
        if !self.telemetry.metrics_listen.is_empty() && self.telemetry.metrics_listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Value {
                key: "telemetry.metrics_listen",
                reason: format!(
                    "{:?} is not an address like 127.0.0.1:9464 (or empty to disable)",
                    self.telemetry.metrics_listen
                ),
            });
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::Value {
                key: "telemetry.otlp_endpoint",
                reason: format!("{endpoint:?} must be an http:// or https:// URL"),
            });
        }
        let ari = &self.ari;
        if !(ari.url.starts_with("http://") || ari.url.starts_with("https://")) {
            return Err(ConfigError::Value {
                key: "ari.url",
                reason: format!("{:?} must be an http:// or https:// URL (Asterisk's http.conf)", ari.url),
            });
        }
        if ari.app.trim().is_empty() || ari.app.contains(',') {
            return Err(ConfigError::Value { key: "ari.app", reason: "one Stasis application name".into() });
        }
        if ari.request_timeout_ms == 0 || ari.reconnect_initial_ms == 0 || ari.reconnect_max_ms < ari.reconnect_initial_ms
        {
            return Err(ConfigError::Value {
                key: "ari.request_timeout_ms",
                reason: "timeouts must be above 0 and ari.reconnect_max_ms at least ari.reconnect_initial_ms".into(),
            });
        }
        let asterisk_sends = ari.media_format.parse::<dragoman_bus::audio::AudioFormat>();
        if !asterisk_sends.is_ok_and(|format| format != dragoman_bus::audio::AudioFormat::Pcm16le) {
            return Err(ConfigError::Value {
                key: "ari.media_format",
                reason: format!("{:?} is not one of slin16, slin, ulaw, alaw (Asterisk's format names)", ari.media_format),
            });
        }
        if let Some(entry) = ari.dtmf_menu.iter().find(|entry| dtmf_menu_entry(entry).is_none()) {
            return Err(ConfigError::Value {
                key: "ari.dtmf_menu",
                reason: format!("{entry:?} is not like *1=en (keys 0-9, *, #, A-D, then a language)"),
            });
        }
        let media = &self.media;
        if media.rtp_port_min == 0 || media.rtp_port_min > media.rtp_port_max {
            return Err(ConfigError::Value {
                key: "media.rtp_port_min",
                reason: format!("range {}..={} is empty or starts at 0", media.rtp_port_min, media.rtp_port_max),
            });
        }
        if u64::from(media.max_utterance_ms) > dragoman_bus::audio::MAX_UTTERANCE_MS {
            return Err(ConfigError::Value {
                key: "media.max_utterance_ms",
                reason: format!("at most {} (the bus's utterance limit)", dragoman_bus::audio::MAX_UTTERANCE_MS),
            });
        }
        for (key, listen) in [
            ("media.audiosocket_listen", &media.audiosocket_listen),
            ("media.websocket_listen", &media.websocket_listen),
        ] {
            if !listen.is_empty() && listen.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::Value {
                    key,
                    reason: format!("{listen:?} is not an address like 0.0.0.0:9092"),
                });
            }
        }
        let stt = &self.stt;
        if stt.threads == 0 || stt.inference_threads == 0 || stt.max_batch == 0 || stt.beam_size == 0 {
            return Err(ConfigError::Value {
                key: "stt.threads",
                reason: "stt.threads, stt.inference_threads, stt.max_batch and stt.beam_size must be at least 1".into(),
            });
        }
        if stt.temperatures.iter().any(|t| !(0.0..=2.0).contains(t)) {
            return Err(ConfigError::Value { key: "stt.temperatures", reason: "each must be between 0 and 2".into() });
        }
        let mt = &self.mt;
        if mt.engines.is_empty() {
            return Err(ConfigError::Value { key: "mt.engines", reason: "name at least one engine".into() });
        }
        if mt.beam_size == 0 || mt.max_source_tokens < 8 || mt.concurrency == 0 || mt.max_batch == 0 {
            return Err(ConfigError::Value {
                key: "mt.beam_size",
                reason: "mt.beam_size, mt.concurrency and mt.max_batch must be at least 1, mt.max_source_tokens at least 8"
                    .into(),
            });
        }
        if self.api.tokens.iter().any(Secret::is_empty) {
            return Err(ConfigError::Value { key: "api.tokens", reason: "tokens must not be empty strings".into() });
        }
        if let Some(url) = &self.api.redis_url
            && !["redis://", "redis+unix://", "unix://"].iter().any(|scheme| url.expose().starts_with(scheme))
        {
            // The URL may hold a password, so it is not echoed.
            return Err(ConfigError::Value {
                key: "api.redis_url",
                reason: "must start with redis://, redis+unix:// or unix:// (TLS is not supported)".into(),
            });
        }
        if self.api.retention_hours == 0 || self.api.recorder_concurrency == 0 || self.api.max_live_connections == 0 {
            return Err(ConfigError::Value {
                key: "api.retention_hours",
                reason: "api.retention_hours, api.recorder_concurrency and api.max_live_connections must be at least 1"
                    .into(),
            });
        }
        Ok(())
    }

    /// The effective configuration as JSON with every secret replaced by `[redacted]`.
    pub fn redacted_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// One configuration key, for `.env.example` and the reference in docs/OPERATIONS.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReference {
    /// Dotted key, e.g. `api.listen`.
    pub key: String,
    /// Environment variable, e.g. `DRAGOMAN_API__LISTEN`.
    pub env: String,
    /// Default as it would be written in the environment (empty when unset).
    pub default: String,
    pub description: String,
}

/// Every key of [`Config`], with its default and the doc comment of its field.
pub fn reference() -> Vec<KeyReference> {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default();
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    let mut keys = Vec::new();
    let Some(sections) = schema.pointer("/properties").and_then(|p| p.as_object()) else { return keys };
    for (section, section_schema) in sections {
        let section_def = resolve(&schema, section_schema);
        let Some(fields) = section_def.get("properties").and_then(|p| p.as_object()) else { continue };
        for (field, field_schema) in fields {
            let key = format!("{section}.{field}");
            let default = match defaults.pointer(&format!("/{section}/{field}")) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                Some(other) => other.to_string(),
            };
            let description = field_schema
                .get("description")
                .and_then(|d| d.as_str())
                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            keys.push(KeyReference {
                env: format!("{ENV_PREFIX}{}__{}", section.to_uppercase(), field.to_uppercase()),
                key,
                default,
                description,
            });
        }
    }
    keys
}

fn resolve<'a>(root: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

/// `.env.example`: every key with its default, commented out, grouped by section.
pub fn env_example() -> String {
    let mut out = String::from(
        "# Every Dragoman configuration key, with its default. Generated from the config structs\n\
         # (crates/runtime/src/config.rs) by `dragoman config env-example`; a test keeps it in sync.\n\
         # Environment beats dragoman.toml, which beats these defaults. Lists take commas.\n\
         # Secrets have no defaults: set them here or in your secret store, never in git.\n",
    );
    let mut section = String::new();
    for key in reference() {
        let this_section = key.key.split('.').next().unwrap_or_default().to_owned();
        if this_section != section {
            out.push_str(&format!("\n# [{this_section}]\n"));
            section = this_section;
        }
        if !key.description.is_empty() {
            out.push_str(&format!("# {}\n", key.description));
        }
        out.push_str(&format!("#{}={}\n", key.env, key.default));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &Jail) -> Result<Config, ConfigError> {
        let _ = jail;
        Config::load(None)
    }

    #[test]
    fn defaults_then_file_then_environment() {
        Jail::expect_with(|jail| {
            let config = load_in(jail).expect("defaults load");
            assert_eq!(config.api.listen.to_string(), "127.0.0.1:8080");

            jail.create_file("dragoman.toml", "[api]\nlisten = \"0.0.0.0:9000\"\n[bus]\nnamespace = \"site-a\"\n")?;
            let config = load_in(jail).expect("file loads");
            assert_eq!(config.api.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(config.bus.namespace, "site-a");

            jail.set_env("DRAGOMAN_API__LISTEN", "127.0.0.1:9100");
            jail.set_env("DRAGOMAN_API__TOKENS", "t1, t2");
            jail.set_env("DRAGOMAN_STT__TEMPERATURES", "0, 0.5");
            let config = load_in(jail).expect("env loads");
            assert_eq!(config.api.listen.to_string(), "127.0.0.1:9100");
            assert_eq!(config.bus.namespace, "site-a", "file value kept where env is silent");
            assert_eq!(config.api.tokens.iter().map(Secret::expose).collect::<Vec<_>>(), ["t1", "t2"]);
            assert_eq!(config.stt.temperatures, [0.0, 0.5]);
            Ok(())
        });
    }

    #[test]
    fn explicit_path_wins_and_must_exist() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "[shutdown]\ngrace_ms = 123\n")?;
            let config = Config::load(Some(Path::new("other.toml"))).expect("loads");
            assert_eq!(config.shutdown.grace_ms, 123);
            let err = Config::load(Some(Path::new("missing.toml"))).unwrap_err();
            assert!(err.to_string().contains("missing.toml"), "{err}");
            jail.set_env("DRAGOMAN_CONFIG", "other.toml");
            assert_eq!(Config::load(None).expect("loads").shutdown.grace_ms, 123);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected_naming_key_and_source() {
        Jail::expect_with(|jail| {
            jail.create_file("dragoman.toml", "[api]\nlisen = \"0.0.0.0:1\"\n")?;
            let err = load_in(jail).unwrap_err().to_string();
            assert!(err.contains("lisen"), "{err}");
            assert!(err.contains("dragoman.toml"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_API__PORT", "1");
            let err = load_in(jail).unwrap_err().to_string();
            assert!(err.contains("port"), "{err}");
            assert!(err.contains("DRAGOMAN_API__PORT"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_API__LISTEN", "not-an-address");
            let err = load_in(jail).unwrap_err().to_string();
            assert!(err.contains("listen") && err.contains("DRAGOMAN_API__LISTEN"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_BUS__NAMESPACE", "a.b");
            let err = load_in(jail).unwrap_err().to_string();
            assert!(err.contains("bus.namespace"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_TELEMETRY__OTLP_ENDPOINT", "collector:4318");
            let err = load_in(jail).unwrap_err().to_string();
            assert!(err.contains("telemetry.otlp_endpoint"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn test_variables_and_the_config_path_are_not_keys() {
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_TEST_NATS_URL", "nats://127.0.0.1:1");
            jail.set_env("DRAGOMAN_MODEL_DIR", "/models");
            load_in(jail).expect("DRAGOMAN_TEST_* and DRAGOMAN_MODEL_DIR ignored");
            Ok(())
        });
    }

    #[test]
    fn effective_config_redacts_secrets() {
        Jail::expect_with(|jail| {
            jail.set_env("DRAGOMAN_API__TOKENS", "super-secret-token");
            jail.set_env("DRAGOMAN_BUS__TOKEN", "nats-secret");
            let json = load_in(jail).expect("loads").redacted_json();
            assert!(!json.contains("super-secret-token") && !json.contains("nats-secret"), "{json}");
            assert!(json.contains(crate::secret::REDACTED));
            Ok(())
        });
    }

    #[test]
    fn reference_covers_every_key_with_env_names() {
        let keys = reference();
        let listen = keys.iter().find(|k| k.key == "api.listen").expect("api.listen listed");
        assert_eq!(listen.env, "DRAGOMAN_API__LISTEN");
        assert_eq!(listen.default, "127.0.0.1:8080");
        assert!(!listen.description.is_empty());
        // Every key in the serialized defaults is in the reference, and nothing else is.
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut expected = Vec::new();
        for (section, fields) in defaults.as_object().unwrap() {
            for field in fields.as_object().unwrap().keys() {
                expected.push(format!("{section}.{field}"));
            }
        }
        let mut listed: Vec<_> = keys.iter().map(|k| k.key.clone()).collect();
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected);
    }
}
