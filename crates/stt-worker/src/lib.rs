//! The STT worker: transcribes final utterances from the durable queue and partial requests.
//!
//! Status: only the service skeleton exists (config, bus, shutdown, ops endpoints). Its work
//! arrives with issue #4; until then `run` consumes nothing, so no message meant for
//! this service is taken off the bus and lost.

pub mod engine;

use std::sync::Arc;

use dragoman_bus::Bus;
use dragoman_runtime::{Config, Shutdown};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "stt-worker";

/// Runs the service until shutdown is triggered.
pub async fn run(_config: Arc<Config>, _bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    tracing::warn!(service = SERVICE, "not implemented yet (issue #4): this process takes no work from the bus");
    shutdown.triggered().await;
    Ok(())
}
