//! The operator API: REST and live WebSocket for operators and other applications.
//!
//! Layout: [`run`] binds `api.listen` and calls [`serve`], which tests call with a listener on
//! port 0. [`store`] keeps calls (Redis, or memory without `api.redis_url`) and [`recorder`]
//! fills it from the calls stream; both run inside [`serve`]. [`routes`] holds the REST
//! resources under `/v1` and the live handlers, [`live`] the WebSocket sessions, [`auth`] the
//! bearer tokens, [`error`] the problem+json errors, [`export`] SRT/WebVTT/text, [`openapi`]
//! `/openapi.json`, [`console`] the operator's web console at `/console/` (static files built
//! into the binary from `crates/api/console/`, talking to `/v1` with the operator's token).

pub mod auth;
pub mod console;
pub mod error;
pub mod export;
pub mod live;
pub mod openapi;
pub mod recorder;
pub mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post, put};
use dragoman_bus::Bus;
use dragoman_runtime::ops::Readiness;
use dragoman_runtime::{Config, Shutdown};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::Tokens;
use crate::error::AppError;
use crate::live::NotifyingStore;
use crate::routes::AppState;
use crate::store::{CallStore as _, Store};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "api";

/// Checks the API may start: it never runs without a bearer token, and every CORS origin must
/// be a valid header value.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if config.api.tokens.iter().all(|token| token.is_empty()) {
        anyhow::bail!(
            "no API token configured: set api.tokens (DRAGOMAN_API__TOKENS) to one or more secrets; \
             there is no default token"
        );
    }
    for origin in &config.api.cors_origins {
        HeaderValue::from_str(origin).with_context(|| format!("api.cors_origins: {origin:?} is not an origin"))?;
    }
    Ok(())
}

/// The API's routes: `/v1` behind the bearer tokens; `/healthz`, `/readyz` (the bus on NATS
/// and the calls store), `/metrics`, `/openapi.json` and the console's static files open. `stop`
/// closes live sessions.
pub fn app(config: &Config, bus: &Bus, store: &NotifyingStore, stop: CancellationToken) -> Router {
    let readiness = Readiness::default();
    if !bus.is_in_process() {
        readiness.add_bus(bus);
    }
    if let Store::Redis(redis) = store.inner() {
        let redis = redis.clone();
        readiness.add("redis", move || redis.health());
    }
    let state = AppState {
        bus: bus.clone(),
        store: store.clone(),
        request_timeout: config.bus.request_timeout(),
        stop,
        live_slots: Arc::new(tokio::sync::Semaphore::new(config.api.max_live_connections)),
    };
    let tokens = Tokens::new(&config.api.tokens);
    let v1 = Router::new()
        .route("/v1/calls", get(routes::list_calls).post(routes::originate))
        .route("/v1/calls/{call_id}", get(routes::get_call))
        .route("/v1/calls/{call_id}/hangup", post(routes::hangup))
        .route("/v1/calls/{call_id}/legs/{leg}/language", put(routes::set_language))
        .route("/v1/calls/{call_id}/transcript", get(routes::transcript))
        .route("/v1/calls/{call_id}/live", get(routes::call_live))
        .route("/v1/live", get(routes::feed_live))
        .route("/v1/languages", get(routes::languages))
        .route_layer(middleware::from_fn_with_state(tokens, auth::require_token))
        .with_state(state);
    let timeout = Duration::from_millis(config.api.request_timeout_ms);
    let mut router = v1
        .merge(dragoman_runtime::ops::router(readiness))
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }))
        .merge(console::router())
        .fallback(|| async { AppError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            AppError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route; see /openapi.json")
        })
        .layer(DefaultBodyLimit::max(config.api.max_body_bytes))
        .layer(middleware::from_fn(move |request: Request, next: Next| time_limit(timeout, request, next)));
    if let Some(cors) = cors(&config.api.cors_origins) {
        router = router.layer(cors);
    }
    router
}

/// Answers 503 when a request takes longer than `api.request_timeout_ms` to answer (a live
/// session only needs its upgrade answered in time).
async fn time_limit(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            AppError::unavailable(format!("no answer within api.request_timeout_ms ({} ms)", timeout.as_millis()))
                .into_response()
        }
    }
}

/// CORS for `api.cors_origins` (`*` allows any origin); none when the list is empty.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::LOCATION])
            .max_age(Duration::from_secs(600)),
    )
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
    let store = NotifyingStore::new(store);
    let router = app(&config, &bus, &store, shutdown.child_token());
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.triggered());
    let recorder = recorder::run(bus.clone(), store.clone(), config.api.recorder_concurrency, shutdown.clone());
    let (served, recorded) = tokio::join!(server.into_future(), recorder);
    served.context("api server")?;
    recorded
}
