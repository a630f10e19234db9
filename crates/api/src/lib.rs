//! The operator API: REST and live WebSocket for operators and other applications.
//!
//! Layout: [`run`] binds `api.listen` and calls [`serve`], which tests call with a listener on
//! port 0. [`store`] keeps calls (Redis, or memory without `api.redis_url`) and [`recorder`]
//! fills it from the calls stream; both run inside [`serve`]. Today it serves the health and ops
//! routes; the REST resources, the WebSocket and the console arrive with issue #6.

pub mod recorder;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use dragoman_bus::Bus;
use dragoman_runtime::ops::Readiness;
use dragoman_runtime::{Config, Shutdown};
use tokio::net::TcpListener;

use crate::store::{CallStore as _, Store};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "api";

/// Checks the API may start: it never runs without a bearer token.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if config.api.tokens.is_empty() {
        anyhow::bail!(
            "no API token configured: set api.tokens (DRAGOMAN_API__TOKENS) to one or more secrets; \
             there is no default token"
        );
    }
    Ok(())
}

/// The API's routes. `/readyz` checks the bus (on NATS) and the calls store.
pub fn app(bus: &Bus, store: &Store) -> Router {
    let readiness = Readiness::default();
    if !bus.is_in_process() {
        readiness.add_bus(bus);
    }
    if let Store::Redis(redis) = store {
        let redis = redis.clone();
        readiness.add("redis", move || redis.health());
    }
    dragoman_runtime::ops::router(readiness)
}

/// Binds `api.listen` and serves until shutdown.
pub async fn run(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    check_config(&config)?;
    let listener =
        TcpListener::bind(config.api.listen).await.with_context(|| format!("bind api.listen {}", config.api.listen))?;
    serve(listener, config, bus, shutdown).await
}

/// Serves on `listener`, and records the calls stream in the store, until shutdown.
pub async fn serve(listener: TcpListener, config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let store = Store::open(&config.api, bus.subjects().namespace()).context("open the calls store")?;
    tracing::info!(address = %listener.local_addr()?, store = store.kind(), "api listening");
    if let Store::Redis(redis) = &store {
        // Keeps the readiness check current while no event is being stored; logs changes only.
        let (redis, stop) = (redis.clone(), shutdown.clone());
        shutdown.spawn(async move {
            let mut was_up = true;
            while !stop.is_triggered() {
                let result = redis.ping().await;
                match &result {
                    Err(err) if was_up => tracing::warn!(error = %err, "redis does not answer"),
                    Ok(()) if !was_up => tracing::info!("redis answers again"),
                    _ => {}
                }
                was_up = result.is_ok();
                tokio::select! {
                    () = stop.triggered() => break,
                    () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
            }
        });
    }
    let server = axum::serve(listener, app(&bus, &store)).with_graceful_shutdown(shutdown.triggered());
    let recorder = recorder::run(bus.clone(), store.clone(), config.api.recorder_concurrency, shutdown.clone());
    let (served, recorded) = tokio::join!(server.into_future(), recorder);
    served.context("api server")?;
    recorded
}
