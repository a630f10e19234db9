//! The operator API: REST and live WebSocket for operators and other applications.
//!
//! Layout: [`run`] binds `api.listen` and calls [`serve`], which tests call with a listener on
//! port 0. Today it serves the health and ops routes; the REST resources, the WebSocket, Redis
//! persistence and the console arrive with issue #6.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use dragoman_bus::Bus;
use dragoman_runtime::ops::Readiness;
use dragoman_runtime::{Config, Shutdown};
use tokio::net::TcpListener;

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

/// The API's routes.
pub fn app(bus: &Bus) -> Router {
    let readiness = Readiness::default();
    if !bus.is_in_process() {
        readiness.add_bus(bus);
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

/// Serves on `listener` until shutdown.
pub async fn serve(listener: TcpListener, _config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "api listening");
    axum::serve(listener, app(&bus)).with_graceful_shutdown(shutdown.triggered()).await.context("api server")
}
