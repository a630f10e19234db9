//! The ops endpoints every service serves: `/healthz` (alive), `/readyz` (dependencies
//! reachable) and `/metrics` (Prometheus).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use dragoman_bus::Bus;
use tokio::net::TcpListener;

use crate::Shutdown;

type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Named readiness checks; `/readyz` is 200 only when all pass.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, Check>>>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.checks.read().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

impl Readiness {
    /// The process's readiness, served on `telemetry.metrics_listen`: a service adds its own
    /// dependencies here (the gateway adds Asterisk).
    pub fn process() -> &'static Readiness {
        static PROCESS: std::sync::OnceLock<Readiness> = std::sync::OnceLock::new();
        PROCESS.get_or_init(Readiness::default)
    }

    /// Adds (or replaces) a check.
    pub fn add(&self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
        if let Ok(mut checks) = self.checks.write() {
            checks.insert(name.to_owned(), Box::new(check));
        }
    }

    /// Adds a check that the bus is connected.
    pub fn add_bus(&self, bus: &Bus) {
        let bus = bus.clone();
        self.add("nats", move || if bus.is_connected() { Ok(()) } else { Err("not connected".into()) });
    }

    /// Each check's outcome.
    pub fn report(&self) -> BTreeMap<String, Result<(), String>> {
        self.checks
            .read()
            .map(|checks| checks.iter().map(|(name, check)| (name.clone(), check())).collect())
            .unwrap_or_default()
    }
}

/// Routes for `/healthz`, `/readyz` and `/metrics`, to merge into a service's own router.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let report = readiness.report();
    let ready = report.values().all(Result::is_ok);
    let body: BTreeMap<String, String> =
        report.into_iter().map(|(name, outcome)| (name, outcome.err().unwrap_or_else(|| "ok".into()))).collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({ "ready": ready, "checks": body })))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::prometheus().render())
}

/// Serves the ops routes on `listener` until shutdown.
pub async fn serve(listener: TcpListener, readiness: Readiness, shutdown: Shutdown) -> std::io::Result<()> {
    axum::serve(listener, router(readiness)).with_graceful_shutdown(shutdown.triggered()).await
}
