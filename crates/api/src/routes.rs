//! The REST resources under `/v1` and the handlers of the live routes. Reads come from the
//! store; commands (originate, hang up, change language) are requests to the ARI gateway on
//! the bus, validated here first so that nothing is sent that the gateway would refuse.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dragoman_bus::control::{Done, Hangup, LegLanguage, Originate, Originated, SetLanguage};
use dragoman_bus::{Bus, CallSubjectKind, Language, Subscription};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::export;
use crate::live::{self, FeedFilter, NotifyingStore, Source, StoredNotice};
use crate::store::{CallFilter, CallRecord, CallState, CallStore as _, MAX_PAGE, Page};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub bus: Bus,
    pub store: NotifyingStore,
    /// How long a command waits for the gateway's reply.
    pub request_timeout: Duration,
    /// Cancelled when the API shuts down; live sessions close with 1001.
    pub stop: CancellationToken,
    /// One permit per live WebSocket session (`api.max_live_connections`).
    pub live_slots: Arc<Semaphore>,
}

/// The subprotocol the live routes speak; a browser that sends its token as the subprotocol
/// `bearer.<token>` offers this one beside it, and the server selects it.
pub const LIVE_SUBPROTOCOL: &str = "dragoman.v1";

/// Takes a live session's slot, or answers 503 when the replica serves as many as it may.
fn live_slot(state: &AppState) -> Result<OwnedSemaphorePermit, AppError> {
    state.live_slots.clone().try_acquire_owned().map_err(|_| {
        AppError::unavailable("this API replica serves as many live connections as api.max_live_connections allows; retry later")
    })
}

/// A leg's language settings in a request.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LegLanguageBody {
    /// BCP 47 tag the party speaks; absent lets STT detect it.
    #[serde(default)]
    pub language: Option<String>,
    /// Languages to translate the leg into.
    #[serde(default)]
    pub targets: Vec<String>,
}

/// `POST /v1/calls`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateBody {
    /// Asterisk endpoint to dial, e.g. `PJSIP/1000`.
    pub endpoint: String,
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Ring timeout in seconds.
    #[serde(default)]
    pub timeout_s: Option<u32>,
    /// The called party (leg `callee`).
    #[serde(default)]
    pub callee: LegLanguageBody,
    /// The calling side (leg `caller`).
    #[serde(default)]
    pub caller: LegLanguageBody,
}

/// `PUT /v1/calls/{id}/legs/{leg}/language`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageBody {
    pub language: String,
    #[serde(default)]
    pub targets: Vec<String>,
}

/// `POST /v1/calls/{id}/hangup` (the body is optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HangupBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /v1/calls` query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `active` or `ended`.
    pub state: Option<CallState>,
    /// Calls that started at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Calls that started before (RFC 3339).
    pub before: Option<DateTime<Utc>>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

/// `GET /v1/calls` answer.
#[derive(Debug, Serialize)]
pub struct CallList {
    pub calls: Vec<CallRecord>,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// One row of `GET /v1/languages`.
#[derive(Debug, Serialize)]
pub struct LanguageInfo {
    /// The BCP 47 code the API takes and events carry.
    pub code: &'static str,
    /// The English name.
    pub name: &'static str,
}

/// `GET /v1/languages` answer.
#[derive(Debug, Serialize)]
pub struct LanguageList {
    pub languages: Vec<LanguageInfo>,
}

/// `GET /v1/calls/{id}/transcript` query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptQuery {
    /// `json` (default), `srt`, `vtt` or `txt`.
    pub format: Option<String>,
    /// Only this translation in SRT, WebVTT and text.
    pub language: Option<String>,
}

/// Live route query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveQuery {
    /// The last sequence number (one call) or cursor (`/v1/live`) the client saw.
    pub after: Option<String>,
    /// Whether to forward partials (default true).
    pub partials: Option<bool>,
    /// `/v1/live`: only these calls, comma-separated.
    pub calls: Option<String>,
    /// `/v1/live`: only these event types, comma-separated.
    pub types: Option<String>,
    /// Taken by the auth layer.
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(value)| value).map_err(AppError::from)
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AppError> {
    query.map(|Query(value)| value).map_err(|rejection| AppError::bad_request(rejection.body_text()))
}

/// A language tag checked against the language table; 422 names the supported ones.
fn language(tag: &str) -> Result<String, AppError> {
    Language::parse(tag).map(|l| l.code().to_owned()).map_err(|err| AppError::unsupported(err.to_string()))
}

fn leg_language(leg: LegLanguageBody) -> Result<LegLanguage, AppError> {
    Ok(LegLanguage {
        language: leg.language.as_deref().map(language).transpose()?,
        targets: leg.targets.iter().map(|t| language(t)).collect::<Result<_, _>>()?,
    })
}

/// The call as stored, or 404.
async fn call(state: &AppState, call_id: &str) -> Result<CallRecord, AppError> {
    state.store.get_call(call_id).await?.ok_or_else(|| AppError::unknown_call(call_id))
}

/// The call, or 404, or 409 when it already ended.
async fn active_call(state: &AppState, call_id: &str) -> Result<CallRecord, AppError> {
    let record = call(state, call_id).await?;
    if record.state == CallState::Ended {
        return Err(AppError::call_ended(call_id));
    }
    Ok(record)
}

/// Every language a leg may speak or be translated into, sorted by code.
pub async fn languages() -> Json<LanguageList> {
    let languages = Language::all().iter().map(|l| LanguageInfo { code: l.code(), name: l.name() }).collect();
    Json(LanguageList { languages })
}

pub async fn originate(
    State(state): State<AppState>,
    body: Result<Json<OriginateBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let body = json_body(body)?;
    if body.endpoint.trim().is_empty() || body.endpoint.chars().any(char::is_control) {
        return Err(AppError::bad_request("endpoint must be an Asterisk endpoint such as PJSIP/1000"));
    }
    let request = Originate {
        endpoint: body.endpoint,
        caller_id: body.caller_id,
        callee: leg_language(body.callee)?,
        caller: leg_language(body.caller)?,
        timeout_s: body.timeout_s,
    };
    let subject = state.bus.subjects().control_originate();
    let originated: Originated =
        state.bus.request_json(&subject, &request, state.request_timeout).await?.into_result()?;
    let location = format!("/v1/calls/{}", originated.call_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(originated)).into_response())
}

pub async fn list_calls(
    State(state): State<AppState>,
    params: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<CallList>, AppError> {
    let params = query(params)?;
    let page = Page { offset: params.offset.unwrap_or(0), limit: params.limit.unwrap_or(50).clamp(1, MAX_PAGE) };
    let filter = CallFilter { state: params.state, started_from: params.from, started_before: params.before };
    let found = state.store.list_calls(&filter, page).await?;
    Ok(Json(CallList { calls: found.calls, total: found.total, offset: page.offset, limit: page.limit }))
}

pub async fn get_call(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
) -> Result<Json<CallRecord>, AppError> {
    Ok(Json(call(&state, &call_id).await?))
}

pub async fn hangup(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let body: HangupBody = if body.iter().all(u8::is_ascii_whitespace) {
        HangupBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| AppError::bad_request(format!("bad JSON body: {err}")))?
    };
    active_call(&state, &call_id).await?;
    let subject = state.bus.subjects().control_hangup();
    let request = Hangup { call_id: call_id.clone(), reason: body.reason };
    let _: Done = state.bus.request_json(&subject, &request, state.request_timeout).await?.into_result()?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "call_id": call_id }))).into_response())
}

pub async fn set_language(
    State(state): State<AppState>,
    Path((call_id, leg)): Path<(String, String)>,
    body: Result<Json<LanguageBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let body = json_body(body)?;
    let request = SetLanguage {
        call_id: call_id.clone(),
        leg: leg.clone(),
        language: language(&body.language)?,
        targets: body.targets.iter().map(|t| language(t)).collect::<Result<_, _>>()?,
    };
    let record = active_call(&state, &call_id).await?;
    if !record.legs.contains_key(&leg) {
        let known: Vec<&str> = record.legs.keys().map(String::as_str).collect();
        return Err(AppError::not_found(format!("call {call_id:?} has no leg {leg:?} (legs: {})", known.join(", "))));
    }
    let subject = state.bus.subjects().control_set_language();
    let _: Done = state.bus.request_json(&subject, &request, state.request_timeout).await?.into_result()?;
    Ok((StatusCode::ACCEPTED, Json(request)).into_response())
}

pub async fn transcript(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    params: Result<Query<TranscriptQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let params = query(params)?;
    let target = params.language.as_deref().map(language).transpose()?;
    let format = params.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "srt" | "vtt" | "txt") {
        return Err(AppError::bad_request(format!("unknown format {format:?}: use json, srt, vtt or txt")));
    }
    call(&state, &call_id).await?;
    let transcript = state.store.transcript(&call_id).await?;
    let target = target.as_deref();
    let (content_type, body) = match format {
        "srt" => ("application/x-subrip; charset=utf-8", export::srt(&transcript, target)),
        "vtt" => ("text/vtt; charset=utf-8", export::webvtt(&transcript, target)),
        "txt" => ("text/plain; charset=utf-8", export::text(&transcript, target)),
        _ => return Ok(Json(transcript).into_response()),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

pub async fn call_live(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    params: Result<Query<LiveQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let params = query(params)?;
    let upgrade = upgrade.map_err(|rejection| AppError::new(rejection.status(), rejection.body_text()))?;
    let slot = live_slot(&state)?;
    let after = match params.after.as_deref() {
        None | Some("") => 0,
        Some(after) => after.parse().map_err(|_| AppError::bad_request("after must be a sequence number"))?,
    };
    call(&state, &call_id).await?;
    // Listen before the first read, so nothing stored in between is missed.
    let notices = state.store.subscribe();
    let subject = state
        .bus
        .subjects()
        .call(&call_id, CallSubjectKind::Partials)
        .map_err(|err| AppError::bad_request(err.to_string()))?;
    let partials = subscribe_partials(&state, params.partials.unwrap_or(true), &subject).await?;
    Ok(open_session(state, upgrade, slot, notices, partials, Source::Call { call_id, after }))
}

pub async fn feed_live(
    State(state): State<AppState>,
    params: Result<Query<LiveQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let params = query(params)?;
    let upgrade = upgrade.map_err(|rejection| AppError::new(rejection.status(), rejection.body_text()))?;
    let slot = live_slot(&state)?;
    let list = |value: Option<&str>| -> HashSet<String> {
        value.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    };
    let filter = FeedFilter { calls: list(params.calls.as_deref()), types: list(params.types.as_deref()) };
    let notices = state.store.subscribe();
    let after = match params.after {
        Some(after) if !after.is_empty() => {
            // A cursor this store never gave is the client's mistake: say so now (400) rather
            // than upgrade and close the socket with 1011 on the first read.
            state.store.feed_after(Some(&after), 1).await?;
            Some(after)
        }
        _ => live::feed_end(&state.store).await?,
    };
    let subject = state.bus.subjects().all_calls(CallSubjectKind::Partials);
    let partials = subscribe_partials(&state, params.partials.unwrap_or(true), &subject).await?;
    Ok(open_session(state, upgrade, slot, notices, partials, Source::Feed { after, filter }))
}

/// The partials subscription of a live session, unless the client turned partials off.
async fn subscribe_partials(state: &AppState, wanted: bool, subject: &str) -> Result<Option<Subscription>, AppError> {
    if !wanted {
        return Ok(None);
    }
    state.bus.subscribe(subject).await.map(Some).map_err(|err| AppError::unavailable(err.to_string()))
}

/// Upgrades to the live session, which holds its slot until it ends.
fn open_session(
    state: AppState,
    upgrade: WebSocketUpgrade,
    slot: OwnedSemaphorePermit,
    notices: broadcast::Receiver<StoredNotice>,
    partials: Option<Subscription>,
    source: Source,
) -> Response {
    upgrade.protocols([LIVE_SUBPROTOCOL]).on_upgrade(move |socket| async move {
        live::session(socket, state.store, notices, partials, source, state.stop).await;
        drop(slot);
    })
}
