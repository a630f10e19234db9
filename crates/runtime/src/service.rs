//! Running a service as a process: the same steps for every binary.
//!
//! Load and validate config before binding anything (exit 64 on bad config), start telemetry,
//! log the effective config redacted, connect the bus, serve the ops endpoints, run the
//! service until SIGINT/SIGTERM, then finish in-flight work, drain the bus and flush telemetry
//! within the grace period.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dragoman_bus::{Bus, NatsOptions, Subjects};

use crate::config::{Config, ConfigError};
use crate::ops::Readiness;
use crate::{Shutdown, telemetry};

/// Exit code for bad configuration (EX_CONFIG is 78; sysexits' EX_USAGE, 64, is what the
/// project promises for any invalid invocation or config).
pub const EXIT_BAD_CONFIG: u8 = 64;

/// A service's entry point: `run(config, bus, shutdown)`, returning once shutdown has been
/// asked for and its in-flight work is done.
pub type RunFuture = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Loads config, or prints why not and returns the exit code to use.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|err| {
        report_config_error(&err);
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}

fn report_config_error(err: &ConfigError) {
    eprintln!("dragoman: bad configuration: {err}");
}

/// NATS options from config.
pub fn nats_options(config: &Config, service: &str) -> NatsOptions {
    let bus = &config.bus;
    NatsOptions {
        url: bus.url.clone(),
        name: Some(format!("dragoman-{service}")),
        token: bus.token.as_ref().map(|t| t.expose().to_owned()),
        user_password: bus.user.clone().zip(bus.password.as_ref().map(|p| p.expose().to_owned())),
        credentials_file: bus.credentials_file.clone(),
        tls_required: bus.tls_required,
        tls_ca_file: bus.tls_ca_file.clone(),
        tls_client_cert: bus.tls_cert_file.clone().zip(bus.tls_key_file.clone()),
        connect_timeout: Duration::from_millis(bus.connect_timeout_ms),
        subscription_capacity: bus.subscription_capacity,
    }
}

/// Connects to NATS and makes sure the standard streams exist.
pub async fn connect_nats(config: &Config, service: &str) -> anyhow::Result<Bus> {
    let subjects = Subjects::new(&config.bus.namespace).context("bus.namespace")?;
    let bus = Bus::connect_nats(&nats_options(config, service), subjects)
        .await
        .with_context(|| format!("connect to nats at {}", config.bus.url))?;
    bus.ensure_standard_streams(config.bus.stream_limits()).await.context("create jetstream streams")?;
    Ok(bus)
}

/// An in-process bus with the standard streams.
pub async fn in_process_bus(config: &Config) -> anyhow::Result<Bus> {
    let subjects = Subjects::new(&config.bus.namespace).context("bus.namespace")?;
    let bus = Bus::in_process(subjects, config.bus.subscription_capacity);
    bus.ensure_standard_streams(config.bus.stream_limits()).await.context("create in-process streams")?;
    Ok(bus)
}

/// Which bus a process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    Nats,
    InProcess,
}

/// Everything around `run`: the shared skeleton of every Dragoman process.
pub async fn run_process<F, Fut>(config: Config, service: &str, bus_kind: BusKind, run: F) -> ExitCode
where
    F: FnOnce(Arc<Config>, Bus, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let telemetry = match telemetry::init(&config.telemetry, service) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("dragoman: telemetry: {err:#}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), config = %config.redacted_json(), "starting");

    let shutdown = Shutdown::new(Duration::from_millis(config.shutdown.grace_ms));
    let outcome = serve(config, service, bus_kind, shutdown.clone(), run).await;
    let code = match &outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "stopped with an error");
            eprintln!("dragoman {service}: {err:#}");
            ExitCode::FAILURE
        }
    };
    if !shutdown.wait_for_tasks().await {
        tracing::warn!(
            grace_ms = shutdown.grace().as_millis() as u64,
            "in-flight work did not finish within the grace period"
        );
    }
    tracing::info!(service, "stopped");
    telemetry.shutdown();
    code
}

async fn serve<F, Fut>(
    config: Config,
    service: &str,
    bus_kind: BusKind,
    shutdown: Shutdown,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Arc<Config>, Bus, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let bus = match bus_kind {
        BusKind::Nats => connect_nats(&config, service).await?,
        BusKind::InProcess => in_process_bus(&config).await?,
    };
    let readiness = Readiness::process().clone();
    if bus_kind == BusKind::Nats {
        readiness.add_bus(&bus);
    }
    if !config.telemetry.metrics_listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&config.telemetry.metrics_listen)
            .await
            .with_context(|| format!("bind telemetry.metrics_listen {}", config.telemetry.metrics_listen))?;
        tracing::info!(address = %listener.local_addr()?, "ops endpoints (/healthz, /readyz, /metrics) listening");
        let (readiness, stop) = (readiness.clone(), shutdown.clone());
        shutdown.spawn(async move {
            if let Err(err) = crate::ops::serve(listener, readiness, stop).await {
                tracing::error!(error = %err, "ops server failed");
            }
        });
    }
    let signal = shutdown.clone();
    tokio::spawn(async move { signal.on_signal().await });

    let result = run(Arc::new(config), bus.clone(), shutdown.clone()).await;
    // Whatever ended `run`, everything else stops too.
    shutdown.trigger();
    let drained = tokio::time::timeout(shutdown.grace(), bus.drain()).await;
    match drained {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "draining the bus failed"),
        Err(_) => tracing::warn!("draining the bus took longer than the grace period"),
    }
    result
}

/// The multi-threaded Tokio runtime every binary runs on, or the exit code after saying why not.
pub fn async_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|err| {
        eprintln!("dragoman: cannot start the async runtime: {err}");
        ExitCode::FAILURE
    })
}

/// Command-line arguments every service binary takes.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// Config file (default: ./dragoman.toml if it exists; also DRAGOMAN_CONFIG).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// `main` for a single-service binary: parse args, load config, run on NATS.
pub fn service_main<F, Fut>(service: &'static str, run: F) -> ExitCode
where
    F: FnOnce(Arc<Config>, Bus, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use clap::Parser;
    let args = ServiceArgs::parse();
    let config = match load_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match async_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(run_process(config, service, BusKind::Nats, run))
}
