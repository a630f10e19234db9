//! What every Dragoman binary shares.
//!
//! Layout:
//! - [`config`]: figment layering (defaults < file < `DRAGOMAN_*` env), validation, the key reference.
//! - [`telemetry`]: logs, OpenTelemetry traces, the Prometheus registry.
//! - [`shutdown`]: cancellation token + task tracker, SIGINT/SIGTERM, grace period.
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`service`]: the skeleton around a service's `run` (config → telemetry → bus → run → drain).
//! - [`worker`]: consume loops that count, log and skip bad messages instead of failing.

pub mod config;
pub mod ops;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod worker;

pub use config::Config;
pub use secret::Secret;
pub use shutdown::Shutdown;
