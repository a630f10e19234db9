//! `dragoman standalone`: every service in one process on the in-process bus.

use std::process::ExitCode;
use std::sync::Arc;

use dragoman_bus::Bus;
use dragoman_runtime::service::{self, BusKind, EXIT_BAD_CONFIG};
use dragoman_runtime::{Config, Secret, Shutdown};
use futures::future::BoxFuture;

type Run = fn(Arc<Config>, Bus, Shutdown) -> BoxFuture<'static, anyhow::Result<()>>;

/// Every service, in start order.
const SERVICES: [(&str, Run); 5] = [
    (dragoman_media_ingest::SERVICE, |c, b, s| Box::pin(dragoman_media_ingest::run(c, b, s))),
    (dragoman_stt_worker::SERVICE, |c, b, s| Box::pin(dragoman_stt_worker::run(c, b, s))),
    (dragoman_mt_worker::SERVICE, |c, b, s| Box::pin(dragoman_mt_worker::run(c, b, s))),
    (dragoman_api::SERVICE, |c, b, s| Box::pin(dragoman_api::run(c, b, s))),
    (dragoman_ari_gateway::SERVICE, |c, b, s| Box::pin(dragoman_ari_gateway::run(c, b, s))),
];

pub async fn run(mut config: Config) -> ExitCode {
    if config.api.tokens.is_empty() {
        if !config.api.listen.ip().is_loopback() {
            eprintln!(
                "dragoman: bad configuration: api.listen {} is not loopback, so an API token must be set \
                 (api.tokens / DRAGOMAN_API__TOKENS)",
                config.api.listen
            );
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        // On loopback only, a one-off token keeps the single-process demo a single command.
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        eprintln!("dragoman: no api.tokens set; generated a token for this run (loopback only):\n  {token}");
        config.api.tokens = vec![Secret::new(token)];
    }
    service::run_process(config, "standalone", BusKind::InProcess, run_all).await
}

async fn run_all(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let with_gateway = dragoman_ari_gateway::check_config(&config).is_ok();
    if !with_gateway {
        tracing::warn!(
            "no ari.password set: running without the ARI gateway (no Asterisk); set ari.url, ari.username and \
             ari.password (DRAGOMAN_ARI__PASSWORD) to take calls"
        );
    }
    let services = SERVICES.into_iter().filter(|(name, _)| with_gateway || *name != dragoman_ari_gateway::SERVICE);
    let tasks = services.map(|(name, run)| {
        let (config, bus, shutdown) = (config.clone(), bus.clone(), shutdown.clone());
        async move {
            let result = run(config, bus, shutdown.clone()).await;
            if let Err(err) = &result {
                // One service failing stops the process: a half-running pipeline would
                // silently lose work.
                tracing::error!(service = name, error = format!("{err:#}"), "service failed; stopping");
                shutdown.trigger();
            }
            result.map_err(|e| e.context(name))
        }
    });
    futures::future::try_join_all(tasks).await.map(drop)
}
