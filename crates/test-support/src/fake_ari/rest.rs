//! The REST resources: the route table, authentication, fault injection and the handlers.
//!
//! Success codes follow Asterisk's `res/ari/resource_*.c`: 200 with a body, 204 for void
//! operations, 201 (with `Location`) for new playbacks. Error bodies are `{"message": "…"}`
//! with the codes the spec's `errorResponses` list.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Map, Value, json};

use super::media;
use super::state::{Audience, Codec, Direction, Hangup, Kind, Playback, Shared, State, ari_time};

/// One route the fake serves, named as in the ARI spec.
#[derive(Debug)]
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// Path template relative to `/ari`, in the spec's syntax (`/channels/{channelId}`).
    pub path: &'static str,
    /// The spec's nickname of the operation.
    pub nickname: &'static str,
    /// Query parameters the fake rejects a request without (400), as the spec marks them.
    pub required: &'static [&'static str],
    /// Whether parameters may also come as keys of a JSON body (operations with a
    /// `variables` body parameter).
    pub body_params: bool,
    op: Op,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    ChannelList,
    Originate,
    ChannelCreate,
    ChannelGet,
    Hangup,
    Answer,
    SendDtmf,
    Hold(bool),
    Mute,
    ChannelPlay,
    GetVar,
    SetVar,
    Snoop,
    ExternalMedia,
    BridgeList,
    BridgeCreate,
    BridgeGet,
    BridgeDestroy,
    AddChannel,
    RemoveChannel,
    BridgePlay,
    PlaybackGet,
    PlaybackStop,
    AppList,
    AppGet,
    Subscribe(bool),
    Info,
    Ping,
    Events,
}

const fn route(method: &'static str, path: &'static str, nickname: &'static str, op: Op) -> Route {
    Route { method, path, nickname, required: &[], body_params: false, op }
}

const fn with(mut r: Route, required: &'static [&'static str], body_params: bool) -> Route {
    r.required = required;
    r.body_params = body_params;
    r
}

static ROUTES: &[Route] = &[
    route("GET", "/channels", "list", Op::ChannelList),
    with(route("POST", "/channels", "originate", Op::Originate), &["endpoint"], true),
    with(route("POST", "/channels/create", "create", Op::ChannelCreate), &["endpoint", "app"], true),
    with(route("POST", "/channels/externalMedia", "externalMedia", Op::ExternalMedia), &["app", "format"], true),
    route("GET", "/channels/{channelId}", "get", Op::ChannelGet),
    with(route("POST", "/channels/{channelId}", "originateWithId", Op::Originate), &["endpoint"], true),
    route("DELETE", "/channels/{channelId}", "hangup", Op::Hangup),
    route("POST", "/channels/{channelId}/answer", "answer", Op::Answer),
    route("POST", "/channels/{channelId}/dtmf", "sendDTMF", Op::SendDtmf),
    route("POST", "/channels/{channelId}/hold", "hold", Op::Hold(true)),
    route("DELETE", "/channels/{channelId}/hold", "unhold", Op::Hold(false)),
    route("POST", "/channels/{channelId}/mute", "mute", Op::Mute),
    route("DELETE", "/channels/{channelId}/mute", "unmute", Op::Mute),
    with(route("POST", "/channels/{channelId}/play", "play", Op::ChannelPlay), &["media"], false),
    with(route("POST", "/channels/{channelId}/play/{playbackId}", "playWithId", Op::ChannelPlay), &["media"], false),
    with(route("GET", "/channels/{channelId}/variable", "getChannelVar", Op::GetVar), &["variable"], false),
    with(route("POST", "/channels/{channelId}/variable", "setChannelVar", Op::SetVar), &["variable"], false),
    with(route("POST", "/channels/{channelId}/snoop", "snoopChannel", Op::Snoop), &["app"], false),
    with(route("POST", "/channels/{channelId}/snoop/{snoopId}", "snoopChannelWithId", Op::Snoop), &["app"], false),
    route("GET", "/bridges", "list", Op::BridgeList),
    with(route("POST", "/bridges", "create", Op::BridgeCreate), &[], true),
    route("GET", "/bridges/{bridgeId}", "get", Op::BridgeGet),
    with(route("POST", "/bridges/{bridgeId}", "createWithId", Op::BridgeCreate), &[], true),
    route("DELETE", "/bridges/{bridgeId}", "destroy", Op::BridgeDestroy),
    with(route("POST", "/bridges/{bridgeId}/addChannel", "addChannel", Op::AddChannel), &["channel"], false),
    with(route("POST", "/bridges/{bridgeId}/removeChannel", "removeChannel", Op::RemoveChannel), &["channel"], false),
    with(route("POST", "/bridges/{bridgeId}/play", "play", Op::BridgePlay), &["media"], false),
    with(route("POST", "/bridges/{bridgeId}/play/{playbackId}", "playWithId", Op::BridgePlay), &["media"], false),
    route("GET", "/playbacks/{playbackId}", "get", Op::PlaybackGet),
    route("DELETE", "/playbacks/{playbackId}", "stop", Op::PlaybackStop),
    route("GET", "/applications", "list", Op::AppList),
    route("GET", "/applications/{applicationName}", "get", Op::AppGet),
    with(
        route("POST", "/applications/{applicationName}/subscription", "subscribe", Op::Subscribe(true)),
        &["eventSource"],
        false,
    ),
    with(
        route("DELETE", "/applications/{applicationName}/subscription", "unsubscribe", Op::Subscribe(false)),
        &["eventSource"],
        false,
    ),
    route("GET", "/asterisk/info", "getInfo", Op::Info),
    route("GET", "/asterisk/ping", "ping", Op::Ping),
    with(route("GET", "/events", "eventWebsocket", Op::Events), &["app"], false),
];

/// Every route the fake serves; paths are relative to the `/ari` base path.
pub fn routes() -> &'static [Route] {
    ROUTES
}

/// The axum router for `/ari/...`, with authentication in front of every route.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<Shared>>> = BTreeMap::new();
    for r in ROUTES {
        let filter = match r.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            _ => MethodFilter::DELETE,
        };
        let method_router = if matches!(r.op, Op::Events) {
            on(filter, |AxumState(shared): AxumState<Arc<Shared>>, ws: WebSocketUpgrade, uri: Uri| async move {
                super::events::upgrade(shared, ws, Params::parse(uri.query(), None).unwrap_or_default())
            })
        } else {
            on(filter, move |AxumState(shared): AxumState<Arc<Shared>>, uri: Uri, body: Bytes| {
                handle(shared, r, uri, body)
            })
        };
        let entry = by_path.remove(r.path);
        by_path.insert(
            r.path,
            match entry {
                Some(existing) => existing.merge(method_router),
                None => method_router,
            },
        );
    }
    let mut router = Router::new();
    for (path, method_router) in by_path {
        router = router.route(&format!("/ari{path}"), method_router);
    }
    router
        .fallback(|| async { Reply::error(StatusCode::NOT_FOUND, "Resource not found").into_response() })
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

/// HTTP Basic first, then `api_key=user:password`, as res_ari.c does.
async fn authenticate(AxumState(shared): AxumState<Arc<Shared>>, request: Request, next: Next) -> Response {
    let expected = format!("{}:{}", shared.config.username, shared.config.password);
    let headers: &HeaderMap = request.headers();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .is_some_and(|b| b.trim() == base64(expected.as_bytes()));
    let api_key = Params::parse(request.uri().query(), None)
        .ok()
        .and_then(|p| p.get("api_key").map(|k| k == expected))
        .unwrap_or(false);
    if basic || api_key {
        return next.run(request).await;
    }
    shared.stats.requests_served.fetch_add(1, Ordering::Relaxed);
    let mut response = Reply::error(StatusCode::UNAUTHORIZED, "Authentication required").into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Asterisk REST Interface\""));
    response
}

async fn handle(shared: Arc<Shared>, route: &'static Route, uri: Uri, body: Bytes) -> Response {
    shared.stats.requests_served.fetch_add(1, Ordering::Relaxed);
    if let Some(reply) = inject_faults(&shared, route).await {
        return reply.into_response();
    }
    let path = path_params(route.path, uri.path());
    let params = match Params::parse(uri.query(), route.body_params.then_some(&body[..])) {
        Ok(params) => params,
        Err(reply) => return reply.into_response(),
    };
    if let Some(missing) = route.required.iter().find(|name| params.get(name).is_none()) {
        return Reply::error(StatusCode::BAD_REQUEST, &format!("Missing required parameter: {missing}"))
            .into_response();
    }
    let id = |name: &str| path.get(name).cloned().unwrap_or_default();
    let reply = match route.op {
        Op::ExternalMedia => external_media(&shared, &params),
        op => {
            let mut state = shared.lock();
            dispatch(&shared, &mut state, op, &id, &params)
        }
    };
    reply.into_response()
}

async fn inject_faults(shared: &Shared, route: &Route) -> Option<Reply> {
    let mut hung = shared.hung.subscribe();
    let _ = hung.wait_for(|h| !h).await;
    let faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let queued = {
        let mut failures = shared.failures.lock().unwrap_or_else(|e| e.into_inner());
        let key = Some((route.method.to_owned(), route.path.to_owned()));
        let specific = failures.get_mut(&key).and_then(VecDeque::pop_front);
        specific.or_else(|| failures.get_mut(&None).and_then(VecDeque::pop_front))
    };
    let random = faults.failure_probability > 0.0 && rand::random_bool(faults.failure_probability.min(1.0));
    let status = queued.or(random.then_some(faults.failure_status))?;
    let status =
        StatusCode::from_u16(status).ok().filter(|s| *s != StatusCode::OK).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(Reply::error(status, "Internal Server Error"))
}

/// `{channelId}` → value, by matching the template against the request path.
fn path_params(template: &str, path: &str) -> BTreeMap<String, String> {
    let path = path.strip_prefix("/ari").unwrap_or(path);
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.to_owned(), percent_decode(p)))
        })
        .collect()
}

/// A REST answer: status and optional JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    body: Option<Value>,
    location: Option<String>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply { status: StatusCode::OK, body: Some(body), location: None }
    }

    fn no_content() -> Self {
        Reply { status: StatusCode::NO_CONTENT, body: None, location: None }
    }

    fn created(body: Value, location: String) -> Self {
        Reply { status: StatusCode::CREATED, body: Some(body), location: Some(location) }
    }

    fn error(status: StatusCode, message: &str) -> Self {
        Reply { status, body: Some(json!({ "message": message })), location: None }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, axum::Json(body)).into_response(),
            None => self.status.into_response(),
        };
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// Query parameters, plus the keys of a JSON body for operations that read them.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    /// The body's `variables` object.
    variables: Map<String, Value>,
}

impl Params {
    pub fn parse(query: Option<&str>, body: Option<&[u8]>) -> Result<Self, Reply> {
        let mut params = Params::default();
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.pairs.push((percent_decode(k), percent_decode(v)));
        }
        if let Some(body) = body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
                return Err(Reply::error(StatusCode::BAD_REQUEST, "Malformed JSON body"));
            };
            for (k, v) in object {
                match (k.as_str(), v) {
                    ("variables", Value::Object(vars)) => params.variables = vars,
                    (_, Value::String(s)) => params.pairs.push((k, s)),
                    // A list stands for a comma-separated value (`allowMultiple`).
                    (_, Value::Array(items)) => {
                        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        params.pairs.push((k, items.iter().map(text).collect::<Vec<_>>().join(",")));
                    }
                    (_, other) => params.pairs.push((k, other.to_string())),
                }
            }
        }
        Ok(params)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// All values of `name`: repeated keys and comma-separated lists.
    pub fn multi(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Channel variables from the body: `"NAME": "v"` or `"NAME": {"value": "v", …}`.
    fn variables(&self) -> BTreeMap<String, String> {
        self.variables
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Object(o) => o.get("value").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn not_found(what: &str) -> Reply {
    Reply::error(StatusCode::NOT_FOUND, &format!("{what} not found"))
}

/// The channel, if it exists (404) and is in a Stasis application (409).
fn stasis_channel<'a>(state: &'a mut State, id: &str) -> Result<&'a mut super::state::Channel, Reply> {
    let channel = state.channels.get_mut(id).ok_or_else(|| not_found("Channel"))?;
    if !channel.in_stasis {
        return Err(Reply::error(StatusCode::CONFLICT, "Channel not in Stasis application"));
    }
    Ok(channel)
}

fn dispatch(shared: &Arc<Shared>, state: &mut State, op: Op, id: &dyn Fn(&str) -> String, p: &Params) -> Reply {
    let delay = shared.config.event_delay;
    let result = match op {
        Op::ChannelList => Ok(Reply::ok(Value::Array(state.channels.values().map(|c| c.to_json(false)).collect()))),
        Op::ChannelGet => state
            .channels
            .get(&id("channelId"))
            .map(|c| Reply::ok(c.to_json(false)))
            .ok_or_else(|| not_found("Channel")),
        Op::Originate => originate(shared, state, id("channelId"), p, false),
        Op::ChannelCreate => originate(shared, state, String::new(), p, true),
        Op::Hangup => hangup(shared, state, &id("channelId"), p),
        Op::Answer => stasis_channel(state, &id("channelId"))
            .map(|channel| std::mem::replace(&mut channel.state, "Up"))
            .map(|before| {
                if before != "Up" {
                    state.emit_channel(shared, "ChannelStateChange", &id("channelId"), json!({}), delay);
                }
                Reply::no_content()
            }),
        Op::SendDtmf => match p.get("dtmf").filter(|d| !d.is_empty()) {
            None => Err(Reply::error(StatusCode::BAD_REQUEST, "DTMF is required")),
            Some(_) => stasis_channel(state, &id("channelId")).map(|_| Reply::no_content()),
        },
        Op::Hold(on) => stasis_channel(state, &id("channelId")).map(|_| ()).map(|()| {
            let event = if on { "ChannelHold" } else { "ChannelUnhold" };
            state.emit_channel(shared, event, &id("channelId"), json!({}), delay);
            Reply::no_content()
        }),
        Op::Mute => stasis_channel(state, &id("channelId")).map(|_| Reply::no_content()),
        Op::ChannelPlay => stasis_channel(state, &id("channelId"))
            .map(|channel| (channel.id.clone(), p.get("lang").unwrap_or(&channel.language).to_owned()))
            .map(|(target, language)| {
                let uri = format!("channel:{target}");
                start_playback(shared, state, p, &id("playbackId"), uri, language, (Some(target), None))
            }),
        Op::GetVar => stasis_channel(state, &id("channelId")).and_then(|channel| {
            let name = p.get("variable").unwrap_or_default();
            match channel.vars.get(name) {
                Some(value) => Ok(Reply::ok(json!({ "value": value }))),
                None => Err(Reply::error(StatusCode::NOT_FOUND, "Provided variable was not found")),
            }
        }),
        Op::SetVar => stasis_channel(state, &id("channelId")).map(|channel| {
            let name = p.get("variable").unwrap_or_default();
            let value = p.get("value").unwrap_or_default();
            // TALK_DETECT is a dialplan function: setting it switches talk detection on or off
            // rather than storing a variable.
            match name {
                "TALK_DETECT(set)" => channel.talk_detect = true,
                "TALK_DETECT(remove)" => channel.talk_detect = false,
                _ => {
                    channel.vars.insert(name.to_owned(), value.to_owned());
                }
            }
            Reply::no_content()
        }),
        Op::Snoop => snoop(shared, state, &id("channelId"), id("snoopId"), p),
        Op::ExternalMedia => {
            Err(Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "externalMedia is not dispatched here"))
        }
        Op::BridgeList => Ok(Reply::ok(Value::Array(state.bridges.values().map(|b| b.to_json()).collect()))),
        Op::BridgeGet => {
            state.bridges.get(&id("bridgeId")).map(|b| Reply::ok(b.to_json())).ok_or_else(|| not_found("Bridge"))
        }
        Op::BridgeCreate => {
            let bridge_id =
                Some(id("bridgeId")).filter(|b| !b.is_empty()).or_else(|| p.get("bridgeId").map(str::to_owned));
            if bridge_id.as_ref().is_some_and(|b| state.bridges.contains_key(b)) {
                Err(Reply::error(StatusCode::CONFLICT, "Bridge with the same bridgeId already exists"))
            } else {
                let types = p.multi("type");
                let bridge_type = if types.iter().any(|t| t == "holding") { "holding" } else { "mixing" };
                let bridge_id = bridge_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let bridge_id = state.add_bridge(shared, bridge_id, bridge_type, p.get("name").unwrap_or_default());
                let bridge = state.bridges[&bridge_id].to_json();
                state.emit(shared, "BridgeCreated", obj("bridge", bridge.clone()), Audience::default(), delay);
                Ok(Reply::ok(bridge))
            }
        }
        Op::BridgeDestroy => {
            let bridge_id = id("bridgeId");
            if state.bridges.contains_key(&bridge_id) {
                state.destroy_bridge(shared, &bridge_id, delay);
                Ok(Reply::no_content())
            } else {
                Err(not_found("Bridge"))
            }
        }
        Op::AddChannel => add_channels(shared, state, &id("bridgeId"), p),
        Op::RemoveChannel => remove_channels(shared, state, &id("bridgeId"), p),
        Op::BridgePlay => match state.bridges.get(&id("bridgeId")) {
            None => Err(not_found("Bridge")),
            Some(bridge) => {
                let target = bridge.id.clone();
                let language = p.get("lang").unwrap_or("en").to_owned();
                Ok(start_playback(
                    shared,
                    state,
                    p,
                    &id("playbackId"),
                    format!("bridge:{target}"),
                    language,
                    (None, Some(target)),
                ))
            }
        },
        Op::PlaybackGet => state
            .playbacks
            .get(&id("playbackId"))
            .map(|pb| Reply::ok(pb.to_json()))
            .ok_or_else(|| not_found("Playback")),
        Op::PlaybackStop => match finish_playback(shared, state, &id("playbackId"), delay) {
            true => Ok(Reply::no_content()),
            false => Err(not_found("Playback")),
        },
        Op::AppList => {
            Ok(Reply::ok(Value::Array(state.apps.keys().map(|name| application_json(state, name)).collect())))
        }
        Op::AppGet => {
            let name = id("applicationName");
            if state.apps.contains_key(&name) {
                Ok(Reply::ok(application_json(state, &name)))
            } else {
                Err(not_found("Application"))
            }
        }
        Op::Subscribe(subscribe) => subscription(state, &id("applicationName"), p, subscribe),
        Op::Info => Ok(Reply::ok(asterisk_info(shared, state, &p.multi("only")))),
        Op::Ping => Ok(Reply::ok(json!({
            "asterisk_id": shared.config.asterisk_id,
            "ping": "pong",
            "timestamp": ari_time(chrono::Utc::now()),
        }))),
        Op::Events => Err(Reply::error(StatusCode::BAD_REQUEST, "Upgrade to a WebSocket")),
    };
    result.unwrap_or_else(|e| e)
}

fn obj(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.into(), value);
    map
}

/// `POST /channels` (and `/channels/{channelId}`, `/channels/create`): the new channel answers
/// at once. The reply says `Down`; the events follow it, in the order a real Asterisk 22 sent
/// them for a Local channel: Dial, ChannelDialplan, ChannelStateChange ×2, Dial (ANSWER),
/// ChannelVarset STASISSTATUS, StasisStart.
fn originate(
    shared: &Arc<Shared>,
    state: &mut State,
    path_id: String,
    p: &Params,
    create: bool,
) -> Result<Reply, Reply> {
    let delay = shared.config.event_delay;
    let endpoint = p.get("endpoint").unwrap_or_default().to_owned();
    let Some((tech, resource)) = endpoint.split_once('/').filter(|(t, r)| !t.is_empty() && !r.is_empty()) else {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "Endpoint must be of the form Tech/Resource"));
    };
    let app = p.get("app").filter(|a| !a.is_empty()).map(str::to_owned);
    if !create && app.is_none() && p.get("extension").is_none() {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "Application or extension must be specified"));
    }
    let channel_id = Some(path_id).filter(|i| !i.is_empty()).or_else(|| p.get("channelId").map(str::to_owned));
    if channel_id.as_ref().is_some_and(|i| state.channels.contains_key(i)) {
        return Err(Reply::error(StatusCode::CONFLICT, "Channel with given unique ID already exists"));
    }
    let channel_id = channel_id.unwrap_or_else(|| state.new_channel_id());
    let n = state.next();
    let name = match tech {
        "Local" => format!("Local/{resource}-{n:08x};1"),
        _ => format!("{tech}/{resource}-{n:08x}"),
    };
    let caller = p
        .get("callerId")
        .map(|c| match c.split_once('<') {
            Some((name, number)) => (name.trim().trim_matches('"').to_owned(), number.trim_end_matches('>').to_owned()),
            None => (String::new(), c.to_owned()),
        })
        .unwrap_or_default();
    state.add_channel(shared, channel_id.clone(), name, app.as_deref(), "Down", caller, Kind::Leg);
    let args: Vec<String> = p.multi("appArgs");
    let channel = state.channels.get_mut(&channel_id).ok_or_else(|| not_found("Channel"))?;
    channel.vars = p.variables();
    if app.is_none() {
        channel.context = p.get("context").unwrap_or("default").to_owned();
        channel.exten = p.get("extension").unwrap_or("s").to_owned();
        channel.priority = p.get("priority").and_then(|x| x.parse().ok()).unwrap_or(1);
    }
    let reply = channel.to_json(false);
    if app.is_some() {
        if create {
            state.stasis_start(shared, &channel_id, &args, delay);
        } else {
            let dial = |status: &str| json!({"dialstring": resource, "dialstatus": status});
            let with_peer = |state: &State, mut body: Value| {
                body["peer"] = state.channels[&channel_id].to_json(false);
                body.as_object().cloned().unwrap_or_default()
            };
            let to = || Audience::channel(&channel_id);
            let body = with_peer(state, dial(""));
            state.emit(shared, "Dial", body, to(), delay);
            let app_data = app.clone().unwrap_or_default();
            let extra = json!({"dialplan_app": "Stasis", "dialplan_app_data": app_data});
            state.emit_channel(shared, "ChannelDialplan", &channel_id, extra, delay);
            if let Some(channel) = state.channels.get_mut(&channel_id) {
                channel.state = "Up";
            }
            state.emit_channel(shared, "ChannelStateChange", &channel_id, json!({}), delay);
            state.emit_channel(shared, "ChannelStateChange", &channel_id, json!({}), delay);
            let body = with_peer(state, dial("ANSWER"));
            state.emit(shared, "Dial", body, to(), delay);
            let extra = json!({"variable": "STASISSTATUS", "value": ""});
            state.emit_channel(shared, "ChannelVarset", &channel_id, extra, delay);
            state.stasis_start(shared, &channel_id, &args, delay);
        }
    }
    Ok(Reply::ok(reply))
}

fn hangup(shared: &Arc<Shared>, state: &mut State, channel_id: &str, p: &Params) -> Result<Reply, Reply> {
    let cause = match (p.get("reason_code"), p.get("reason")) {
        (Some(code), _) => {
            code.parse().map_err(|_| Reply::error(StatusCode::BAD_REQUEST, "Invalid reason for hangup provided"))?
        }
        (None, Some(reason)) => Hangup::reason(reason)
            .ok_or_else(|| Reply::error(StatusCode::BAD_REQUEST, "Invalid reason for hangup provided"))?,
        (None, None) => 16,
    };
    if !state.channels.contains_key(channel_id) {
        return Err(not_found("Channel"));
    }
    state.destroy_channel(shared, channel_id, Hangup { cause, request: false }, shared.config.event_delay);
    Ok(Reply::no_content())
}

/// `POST /channels/{id}/snoop`: a `Snoop/…` channel in `app` (StasisStart follows the reply).
fn snoop(shared: &Arc<Shared>, state: &mut State, target: &str, path_id: String, p: &Params) -> Result<Reply, Reply> {
    let direction = |name: &str| {
        Direction::parse(p.get(name).unwrap_or("none"))
            .ok_or_else(|| Reply::error(StatusCode::BAD_REQUEST, &format!("Invalid direction specified for {name}")))
    };
    let (spy, whisper) = (direction("spy")?, direction("whisper")?);
    if spy == Direction::None && whisper == Direction::None {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "Direction must be specified for at least spy or whisper"));
    }
    if !state.channels.contains_key(target) {
        return Err(not_found("Channel"));
    }
    let snoop_id = Some(path_id).filter(|i| !i.is_empty()).or_else(|| p.get("snoopId").map(str::to_owned));
    if snoop_id.as_ref().is_some_and(|i| state.channels.contains_key(i)) {
        return Err(Reply::error(StatusCode::BAD_REQUEST, "Snoop channel with given ID already exists"));
    }
    let snoop_id = snoop_id.unwrap_or_else(|| state.new_channel_id());
    let n = state.next();
    let name = format!("Snoop/{target}-{n:08x}");
    let app = p.get("app").unwrap_or_default().to_owned();
    let kind = Kind::Snoop { target: target.to_owned(), spy };
    state.add_channel(shared, snoop_id.clone(), name, Some(&app), "Up", Default::default(), kind);
    let reply = state.channels[&snoop_id].to_json(false);
    state.stasis_start(shared, &snoop_id, &p.multi("appArgs"), shared.config.event_delay);
    Ok(Reply::ok(reply))
}

/// `POST /channels/externalMedia`: binds a real UDP socket, reports it in
/// `channelvars.UNICASTRTP_LOCAL_ADDRESS/PORT`, and starts the RTP sender.
fn external_media(shared: &Arc<Shared>, p: &Params) -> Reply {
    let encapsulation = p.get("encapsulation").unwrap_or("rtp");
    let transport = p.get("transport").unwrap_or("udp");
    match (encapsulation, transport) {
        ("rtp", "udp") => {}
        ("rtp" | "audiosocket" | "none", "udp" | "tcp" | "websocket") => {
            return Reply::error(StatusCode::NOT_IMPLEMENTED, "Unsupported encapsulation/transport combination");
        }
        _ => return Reply::error(StatusCode::BAD_REQUEST, "Invalid encapsulation or transport"),
    }
    let codec = match p.get("format").unwrap_or_default() {
        "slin16" => Codec::Slin16,
        "ulaw" => Codec::Ulaw,
        other => {
            return Reply::error(StatusCode::NOT_IMPLEMENTED, &format!("Format {other} is not supported by the fake"));
        }
    };
    let Some(remote) = p.get("external_host").and_then(|h| h.parse::<SocketAddr>().ok()) else {
        return Reply::error(StatusCode::BAD_REQUEST, "external_host must be host:port");
    };
    let socket = match std::net::UdpSocket::bind((shared.config.media_ip, 0)).and_then(|s| {
        s.set_nonblocking(true)?;
        Ok(s)
    }) {
        Ok(socket) => socket,
        Err(error) => return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("Failed to bind RTP: {error}")),
    };
    let Ok(local) = socket.local_addr() else {
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "Failed to bind RTP");
    };
    let app = p.get("app").unwrap_or_default().to_owned();
    let mut state = shared.lock();
    let channel_id = match p.get("channelId") {
        Some(id) if state.channels.contains_key(id) => {
            return Reply::error(StatusCode::CONFLICT, "Channel with given unique ID already exists");
        }
        Some(id) => id.to_owned(),
        None => state.new_channel_id(),
    };
    let n = state.next();
    let name = format!("UnicastRTP/{remote}-0x{n:x}");
    state.add_channel(shared, channel_id.clone(), name, Some(&app), "Down", Default::default(), Kind::External);
    let mut vars = p.variables();
    vars.insert("UNICASTRTP_LOCAL_ADDRESS".into(), local.ip().to_string());
    vars.insert("UNICASTRTP_LOCAL_PORT".into(), local.port().to_string());
    let Some(channel) = state.channels.get_mut(&channel_id) else { return not_found("Channel") };
    channel.vars = vars;
    let reply = channel.to_json(true);
    channel.state = "Up";
    let args: Vec<String> = p.get("data").map(|d| vec![d.to_owned()]).unwrap_or_default();
    state.stasis_start(shared, &channel_id, &args, shared.config.event_delay);
    drop(state);
    media::spawn(shared.clone(), channel_id, socket, remote, codec);
    Reply::ok(reply)
}

fn add_channels(shared: &Arc<Shared>, state: &mut State, bridge_id: &str, p: &Params) -> Result<Reply, Reply> {
    if !state.bridges.contains_key(bridge_id) {
        return Err(not_found("Bridge"));
    }
    let channels = p.multi("channel");
    for id in &channels {
        let channel =
            state.channels.get(id).ok_or_else(|| Reply::error(StatusCode::BAD_REQUEST, "Channel not found"))?;
        if !channel.in_stasis {
            return Err(Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "Channel not in Stasis application"));
        }
        if channel.bridge.is_some() {
            return Err(Reply::error(StatusCode::CONFLICT, "Channel is already in a bridge"));
        }
    }
    for id in &channels {
        state.enter_bridge(shared, bridge_id, id, shared.config.event_delay);
    }
    Ok(Reply::no_content())
}

fn remove_channels(shared: &Arc<Shared>, state: &mut State, bridge_id: &str, p: &Params) -> Result<Reply, Reply> {
    if !state.bridges.contains_key(bridge_id) {
        return Err(not_found("Bridge"));
    }
    let channels = p.multi("channel");
    for id in &channels {
        let channel =
            state.channels.get(id).ok_or_else(|| Reply::error(StatusCode::BAD_REQUEST, "Channel not found"))?;
        if channel.bridge.as_deref() != Some(bridge_id) {
            return Err(Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "Channel not in this bridge"));
        }
    }
    for id in &channels {
        state.leave_bridge(shared, id, shared.config.event_delay);
    }
    Ok(Reply::no_content())
}

/// A new playback: the reply says `queued`, PlaybackStarted follows, PlaybackFinished comes
/// after the configured duration (or when stopped).
fn start_playback(
    shared: &Arc<Shared>,
    state: &mut State,
    p: &Params,
    path_id: &str,
    target_uri: String,
    language: String,
    (target_channel, target_bridge): (Option<String>, Option<String>),
) -> Reply {
    let delay = shared.config.event_delay;
    let playback_id = Some(path_id.to_owned())
        .filter(|i| !i.is_empty())
        .or_else(|| p.get("playbackId").map(str::to_owned))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let media = p.multi("media");
    let mut playback = Playback {
        id: playback_id.clone(),
        media_uri: media.first().cloned().unwrap_or_default(),
        target_uri,
        language,
        state: "queued",
        target_channel,
        target_bridge,
    };
    let reply = playback.to_json();
    playback.state = "playing";
    let audience = playback_audience(&playback);
    let started = obj("playback", playback.to_json());
    state.playbacks.insert(playback_id.clone(), playback);
    state.emit(shared, "PlaybackStarted", started, audience, delay);
    let shared_for_timer = shared.clone();
    let duration = shared.config.playback_duration * u32::try_from(media.len().max(1)).unwrap_or(1);
    let timer_id = playback_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        let mut state = shared_for_timer.lock();
        finish_playback(&shared_for_timer, &mut state, &timer_id, Duration::ZERO);
    });
    Reply::created(reply, format!("/playbacks/{playback_id}"))
}

fn playback_audience(playback: &Playback) -> Audience {
    Audience {
        channels: playback.target_channel.iter().cloned().collect(),
        bridges: playback.target_bridge.iter().cloned().collect(),
        ..Default::default()
    }
}

/// Ends a playback with PlaybackFinished; false if there is no such playback.
fn finish_playback(shared: &Shared, state: &mut State, id: &str, delay: Duration) -> bool {
    let Some(mut playback) = state.playbacks.remove(id) else { return false };
    playback.state = "done";
    let audience = playback_audience(&playback);
    state.emit(shared, "PlaybackFinished", obj("playback", playback.to_json()), audience, delay);
    true
}

fn application_json(state: &State, name: &str) -> Value {
    let app = state.apps.get(name);
    let mut channel_ids: Vec<&String> =
        state.channels.values().filter(|c| c.app.as_deref() == Some(name)).map(|c| &c.id).collect();
    channel_ids.extend(app.iter().flat_map(|a| a.channel_subs.iter()));
    channel_ids.sort();
    channel_ids.dedup();
    json!({
        "name": name,
        "channel_ids": channel_ids,
        "bridge_ids": app.map(|a| a.bridge_subs.iter().collect::<Vec<_>>()).unwrap_or_default(),
        "endpoint_ids": [],
        "device_names": [],
        "events_allowed": [],
        "events_disallowed": [],
    })
}

fn subscription(state: &mut State, name: &str, p: &Params, subscribe: bool) -> Result<Reply, Reply> {
    if !state.apps.contains_key(name) {
        return Err(not_found("Application"));
    }
    let sources = p.multi("eventSource");
    let mut parsed = Vec::new();
    for source in &sources {
        let (scheme, object) = source.split_once(':').unwrap_or((source, ""));
        let exists = match scheme {
            "channel" => state.channels.contains_key(object),
            "bridge" => state.bridges.contains_key(object),
            "endpoint" | "deviceState" => false,
            _ => return Err(Reply::error(StatusCode::BAD_REQUEST, "Invalid event source URI scheme")),
        };
        if !exists {
            return Err(Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "Unable to find event source"));
        }
        parsed.push((scheme == "channel", object.to_owned()));
    }
    let app = state.apps.entry(name.to_owned()).or_default();
    for (is_channel, object) in parsed {
        let set = if is_channel { &mut app.channel_subs } else { &mut app.bridge_subs };
        if subscribe {
            set.insert(object);
        } else if !set.remove(&object) {
            return Err(Reply::error(StatusCode::CONFLICT, "Application not subscribed to event source"));
        }
    }
    Ok(Reply::ok(application_json(state, name)))
}

fn asterisk_info(shared: &Shared, state: &State, only: &[String]) -> Value {
    let all = json!({
        "build": {
            "os": "Linux", "kernel": "6.1.0", "options": "BUILD_NATIVE, OPTIONAL_API",
            "machine": "x86_64", "date": "2026-06-25 00:00:00 UTC", "user": "dragoman",
        },
        "system": {"version": "22.10.1", "entity_id": shared.config.asterisk_id},
        "config": {
            "name": "dragoman-fake", "default_language": "en",
            "setid": {"user": "asterisk", "group": "asterisk"},
        },
        "status": {
            "startup_time": ari_time(state.startup_time),
            "last_reload_time": ari_time(state.last_reload_time),
        },
    });
    if only.is_empty() {
        return all;
    }
    let mut filtered = Map::new();
    for key in only {
        if let Some(v) = all.get(key) {
            filtered.insert(key.clone(), v.clone());
        }
    }
    Value::Object(filtered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("TALK_DETECT%28set%29"), "TALK_DETECT(set)");
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        let p = Params::parse(Some("channel=a,b&channel=c"), Some(br#"{"app":"x","variables":{"V":"1"}}"#))
            .unwrap_or_default();
        assert_eq!(p.multi("channel"), ["a", "b", "c"]);
        assert_eq!(p.get("app"), Some("x"));
        assert_eq!(p.variables().get("V").map(String::as_str), Some("1"));
        let p = Params::parse(None, Some(br#"{"appArgs":["a","b"],"timeout":30}"#)).unwrap_or_default();
        assert_eq!((p.multi("appArgs"), p.get("timeout")), (vec!["a".to_owned(), "b".to_owned()], Some("30")));
    }
}
