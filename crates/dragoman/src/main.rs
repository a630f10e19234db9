//! `dragoman`: every service in one process (`standalone`), one service on NATS
//! (`dragoman <service>`), benchmarks (`dragoman bench <stage>`) and config tools.

mod bench;
mod models;
mod standalone;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dragoman_runtime::service::{self, BusKind};

#[derive(Debug, Parser)]
#[command(name = "dragoman", version, about = "Live call transcription and translation for Asterisk")]
struct Cli {
    /// Config file (default: ./dragoman.toml if it exists; also DRAGOMAN_CONFIG).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service in one process on the in-process bus: no NATS, no Redis.
    Standalone,
    /// The operator API (REST, WebSocket, console) on NATS.
    Api,
    /// The Asterisk ARI gateway on NATS.
    AriGateway,
    /// Media ingest (RTP/AudioSocket → utterances) on NATS.
    MediaIngest,
    /// A speech-to-text worker on NATS.
    SttWorker,
    /// A translation worker on NATS.
    MtWorker,
    /// Benchmarks: a human summary, and with --json one JSON object as the last line.
    Bench {
        /// What to measure.
        stage: bench::Stage,
        /// Print the results as one JSON object on the last line.
        #[arg(long)]
        json: bool,
        /// How long to measure each case, in seconds (bus, ingest, api).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// stt: the engines to compare.
        #[arg(long, value_delimiter = ',', default_value = "ctranslate2,whisper_cpp,faster_whisper")]
        engines: Vec<bench::stt::Peer>,
        /// stt: corpus prompts for RTF and WER, spread over the corpus (default: all 551);
        /// mt: English prompts translated, spread over the 452 (default: all).
        #[arg(long)]
        limit: Option<usize>,
        /// stt: times each latency prompt is transcribed.
        #[arg(long, default_value_t = 4)]
        repeats: usize,
        /// gateway: two-party calls set up in all.
        #[arg(long, default_value_t = 1000)]
        calls: usize,
        /// gateway: calls being set up at once.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// api: live WebSocket clients.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// stt: the Python with faster-whisper (default: the venv scripts/setup-bench-peer.sh makes).
        #[arg(long)]
        peer_python: Option<PathBuf>,
    },
    /// Speech and translation models: the catalogue, downloads from the Hugging Face hub, checks, conversion.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load, validate and print the effective configuration (secrets redacted).
    Show,
    /// Print .env.example: every key with its default.
    EnvExample,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match service::load_config(cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match service::async_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match cli.command {
        Command::Standalone => runtime.block_on(standalone::run(config)),
        Command::Api => {
            if let Err(err) = dragoman_api::check_config(&config) {
                eprintln!("dragoman: bad configuration: {err}");
                return ExitCode::from(service::EXIT_BAD_CONFIG);
            }
            runtime.block_on(service::run_process(config, "api", BusKind::Nats, dragoman_api::run))
        }
        Command::AriGateway => {
            if let Err(err) = dragoman_ari_gateway::check_config(&config) {
                eprintln!("dragoman: bad configuration: {err}");
                return ExitCode::from(service::EXIT_BAD_CONFIG);
            }
            runtime.block_on(service::run_process(config, "ari-gateway", BusKind::Nats, dragoman_ari_gateway::run))
        }
        Command::MediaIngest => {
            runtime.block_on(service::run_process(config, "media-ingest", BusKind::Nats, dragoman_media_ingest::run))
        }
        Command::SttWorker => {
            runtime.block_on(service::run_process(config, "stt-worker", BusKind::Nats, dragoman_stt_worker::run))
        }
        Command::MtWorker => {
            runtime.block_on(service::run_process(config, "mt-worker", BusKind::Nats, dragoman_mt_worker::run))
        }
        Command::Bench { stage, json, seconds, engines, limit, repeats, peer_python, subscribers, calls, concurrency } => {
            let stt = bench::stt::Options { engines, limit, repeats, peer_python };
            let mt = bench::mt::Options { limit };
            let api = bench::api::Options { subscribers };
            let gateway = bench::gateway::Options { calls, concurrency };
            runtime.block_on(bench::run(stage, &config, json, seconds, stt, mt, api, gateway))
        }
        Command::Models { command } => models::run(command, &config, &runtime),
        Command::Config { command: ConfigCommand::Show } => {
            println!("{}", serde_json::to_string_pretty(&config).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::EnvExample } => {
            print!("{}", dragoman_runtime::config::env_example());
            ExitCode::SUCCESS
        }
    }
}
