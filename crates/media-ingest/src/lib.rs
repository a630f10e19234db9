//! Media ingest: RTP (and AudioSocket, WebSocket media) from Asterisk into voice-segmented
//! utterances on the bus.
//!
//! Status: the protocol and signal modules are being built for issue #3; the service loop
//! (`run`) does not yet take allocation requests, so it holds no audio and loses none.

pub mod endpoint;
pub mod resample;
pub mod vad;

pub mod audiosocket;
pub mod g711;
pub mod jitter;
pub mod rtp;

use std::sync::Arc;

use dragoman_bus::Bus;
use dragoman_runtime::{Config, Shutdown};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "media-ingest";

/// Runs the service until shutdown is triggered.
pub async fn run(_config: Arc<Config>, _bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    tracing::warn!(service = SERVICE, "not implemented yet (issue #3): this process allocates no RTP endpoints");
    shutdown.triggered().await;
    Ok(())
}
