//! Checks the client against the vendored ARI Swagger (`asterisk/ari-spec/api-docs/*.json`).
//!
//! - Every client operation runs against a recording HTTP server that answers with JSON made
//!   from the spec's response model; each request must match a spec operation (path template
//!   and method), send only parameters that operation has, and send all it requires.
//! - Every model struct and every event decodes JSON made from the spec's properties (required
//!   only, and all), and writes every property back (no field forgotten).
//! - Every event model in `events.json` maps to a known [`Event`] variant.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dragoman_ari::{
    AddChannel, AriClient, AriConfig, BridgeFeature, CreateBridge, CreateChannel, Dtmf, Event, ExternalMedia,
    HangupReason, MediaDirection, MuteDirection, Originate, Play, Snoop, SnoopDirection, TalkDetect, Transport,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// A minimal reading of the Swagger 1.1 files.

/// One operation: `POST /channels/{channelId}/play` and its parameters.
#[derive(Debug, Clone)]
struct Operation {
    /// `channels.play`: file stem and nickname.
    id: String,
    method: String,
    /// `/channels/{channelId}/play`
    path: String,
    params: Vec<Param>,
    response_class: String,
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    /// `query`, `path` or `body`.
    kind: String,
    required: bool,
}

struct Spec {
    operations: Vec<Operation>,
    /// Every model of every file, by id.
    models: Map<String, Value>,
}

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../asterisk/ari-spec/api-docs")
}

fn load_spec() -> Spec {
    let mut operations = Vec::new();
    let mut models = Map::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(spec_dir())
        .expect("read the vendored ari spec")
        .map(|entry| entry.expect("spec dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "spec files missing: {files:?}");
    for file in files {
        let stem = file.file_stem().and_then(|s| s.to_str()).expect("file stem").to_owned();
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read spec file")).expect("spec file is json");
        for api in doc["apis"].as_array().expect("apis") {
            let path = api["path"].as_str().expect("api path");
            for op in api["operations"].as_array().expect("operations") {
                let params = op["parameters"]
                    .as_array()
                    .map(|params| {
                        params
                            .iter()
                            .map(|p| Param {
                                name: p["name"].as_str().expect("param name").to_owned(),
                                kind: p["paramType"].as_str().expect("paramType").to_owned(),
                                required: p["required"].as_bool().unwrap_or(false),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                operations.push(Operation {
                    id: format!("{stem}.{}", op["nickname"].as_str().expect("nickname")),
                    method: op["httpMethod"].as_str().expect("httpMethod").to_owned(),
                    path: path.to_owned(),
                    params,
                    response_class: op["responseClass"].as_str().expect("responseClass").to_owned(),
                });
            }
        }
        if let Some(Value::Object(file_models)) = doc.get("models") {
            models.extend(file_models.clone());
        }
    }
    Spec { operations, models }
}

impl Spec {
    /// The operation a request hits: same method, same segment count, literals equal; the
    /// most literal template wins (`/channels/create` over `/channels/{channelId}`).
    fn find(&self, method: &str, segments: &[String]) -> Option<&Operation> {
        self.operations
            .iter()
            .filter(|op| op.method == method)
            .filter_map(|op| {
                let template: Vec<&str> = op.path.trim_start_matches('/').split('/').collect();
                if template.len() != segments.len() {
                    return None;
                }
                let mut literals = 0;
                for (part, segment) in template.iter().zip(segments) {
                    if part.starts_with('{') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        literals += 1;
                    } else {
                        return None;
                    }
                }
                Some((literals, op))
            })
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, op)| op)
    }

    fn model(&self, name: &str) -> &Value {
        self.models.get(name).unwrap_or_else(|| panic!("model {name} not in spec"))
    }

    /// Names of the `Event` subtypes in `events.json`.
    fn event_types(&self) -> Vec<String> {
        self.model("Event")["subTypes"]
            .as_array()
            .expect("Event subTypes")
            .iter()
            .map(|name| name.as_str().expect("subtype name").to_owned())
            .collect()
    }

    /// A value of Swagger type `ty`, with nested models filled the same way.
    fn value_of(&self, ty: &str, all: bool) -> Value {
        if let Some(inner) = ty.strip_prefix("List[").and_then(|t| t.strip_suffix(']')) {
            return json!([self.value_of(inner, all)]);
        }
        match ty {
            "string" => json!("text"),
            "int" | "long" => json!(7),
            "double" => json!(1.5),
            "boolean" => json!(true),
            "Date" => json!("2026-01-02T10:11:12.345+0000"),
            "object" => json!({"key": "value"}),
            model => self.instance(model, all),
        }
    }

    /// JSON for a model: its required properties, or all of them. Events get their base
    /// models' properties (`Message`, `Event`) and their `type`.
    fn instance(&self, name: &str, all: bool) -> Value {
        let mut chain = vec![name];
        let is_event = self.event_types().iter().any(|event| event == name);
        if is_event {
            chain.extend(["Event", "Message"]);
        }
        let mut object = Map::new();
        for model in chain {
            let properties = self.model(model)["properties"].as_object().expect("properties");
            for (field, property) in properties {
                if all || property["required"].as_bool().unwrap_or(false) {
                    let ty = property["type"].as_str().expect("property type");
                    object.insert(field.clone(), self.value_of(ty, all));
                }
            }
        }
        if is_event {
            object.insert("type".to_owned(), json!(name));
        }
        Value::Object(object)
    }
}

// ---------------------------------------------------------------------------------------------
// Models.

/// Every key of `expected` (recursively) is in `actual`: the struct kept every field.
fn assert_has_fields(model: &str, expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let path = format!("{at}.{key}");
                let found = actual.get(key).unwrap_or_else(|| panic!("{model}: {path} dropped"));
                assert_has_fields(model, value, found, &path);
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            assert_eq!(expected.len(), actual.len(), "{model}: {at} length");
            for (index, (e, a)) in expected.iter().zip(actual).enumerate() {
                assert_has_fields(model, e, a, &format!("{at}[{index}]"));
            }
        }
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(json: Value) -> Result<Value, serde_json::Error> {
    let decoded: T = serde_json::from_value(json)?;
    serde_json::to_value(&decoded)
}

type RoundTrip = fn(Value) -> Result<Value, serde_json::Error>;

#[test]
fn every_model_struct_decodes_spec_json_and_keeps_every_field() {
    use dragoman_ari::models::*;
    let spec = load_spec();
    let models: &[(&str, RoundTrip)] = &[
        ("Channel", round_trip::<Channel>),
        ("CallerID", round_trip::<CallerId>),
        ("DialplanCEP", round_trip::<DialplanCep>),
        ("Bridge", round_trip::<Bridge>),
        ("Playback", round_trip::<Playback>),
        ("LiveRecording", round_trip::<LiveRecording>),
        ("Variable", round_trip::<Variable>),
        ("AsteriskInfo", round_trip::<AsteriskInfo>),
        ("BuildInfo", round_trip::<BuildInfo>),
        ("SystemInfo", round_trip::<SystemInfo>),
        ("ConfigInfo", round_trip::<ConfigInfo>),
        ("StatusInfo", round_trip::<StatusInfo>),
        ("AsteriskPing", round_trip::<AsteriskPing>),
        ("Application", round_trip::<Application>),
        ("Endpoint", round_trip::<Endpoint>),
        ("TextMessage", round_trip::<TextMessage>),
        ("DeviceState", round_trip::<DeviceState>),
        ("ContactInfo", round_trip::<ContactInfo>),
        ("Peer", round_trip::<Peer>),
        ("ReferTo", round_trip::<ReferTo>),
        ("ReferredBy", round_trip::<ReferredBy>),
        ("RequiredDestination", round_trip::<RequiredDestination>),
        ("AdditionalParam", round_trip::<AdditionalParam>),
    ];
    for (name, round_trip) in models {
        for all in [false, true] {
            let json = spec.instance(name, all);
            let written =
                round_trip(json.clone()).unwrap_or_else(|err| panic!("{name} (all={all}) from {json}: {err}"));
            assert_has_fields(name, &json, &written, name);
        }
    }
}

#[test]
fn every_spec_event_decodes_into_its_variant_and_keeps_every_field() {
    let spec = load_spec();
    let event_types = spec.event_types();
    assert!(event_types.len() >= 45, "only {} event types in spec", event_types.len());
    for name in &event_types {
        for all in [false, true] {
            let json = spec.instance(name, all);
            let event: Event = serde_json::from_value(json.clone())
                .unwrap_or_else(|err| panic!("{name} (all={all}) from {json}: {err}"));
            assert!(!event.is_unknown(), "{name} decoded as Unknown");
            assert_eq!(event.type_name(), name);
            assert_eq!(event.common().map(|c| c.application.as_str()), Some("text"));
            let written = serde_json::to_value(&event).expect("serialize event");
            assert_has_fields(name, &json, &written, name);
        }
    }
}

#[test]
fn known_event_types_are_exactly_the_specs() {
    let spec = load_spec();
    let in_spec: BTreeSet<String> = spec.event_types().into_iter().collect();
    let known: BTreeSet<String> = Event::KNOWN_TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(known, in_spec);
}

// ---------------------------------------------------------------------------------------------
// REST operations against a recording server.

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    /// Percent-decoded path segments after `/ari`.
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Value>,
    /// The spec operation the server matched, if any.
    operation: Option<String>,
}

struct Recorder {
    spec: Spec,
    requests: Mutex<Vec<Recorded>>,
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[index], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 path")
}

async fn record(
    axum::extract::State(recorder): axum::extract::State<Arc<Recorder>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let segments: Vec<String> = path.strip_prefix("/ari/").unwrap_or(path).split('/').map(percent_decode).collect();
    let query = reqwest::Url::parse(&format!("http://recorder{uri}"))
        .expect("request uri")
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let body = (!body.is_empty()).then(|| serde_json::from_slice(&body).expect("json body"));
    let operation = recorder.spec.find(method.as_str(), &segments).cloned();
    recorder.requests.lock().expect("recorder lock").push(Recorded {
        method: method.to_string(),
        segments,
        query,
        body,
        operation: operation.as_ref().map(|op| op.id.clone()),
    });
    let Some(operation) = operation else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "no such operation"}))).into_response();
    };
    if operation.response_class == "void" {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut answer = recorder.spec.value_of(&operation.response_class, true);
    if operation.id == "channels.externalMedia" {
        answer["channelvars"] = json!({
            "UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
            "UNICASTRTP_LOCAL_PORT": "40000"
        });
    }
    axum::Json(answer).into_response()
}

async fn start_recorder() -> (SocketAddr, Arc<Recorder>) {
    let recorder = Arc::new(Recorder { spec: load_spec(), requests: Mutex::new(Vec::new()) });
    let app = axum::Router::new().fallback(record).with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind recorder");
    let addr = listener.local_addr().expect("recorder addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve recorder") });
    (addr, recorder)
}

/// Runs every operation the client has, with every optional parameter set somewhere.
async fn run_every_operation(ari: &AriClient) {
    // Channels.
    assert_eq!(ari.list_channels().await.unwrap().len(), 1);
    ari.get_channel("chan/with space").await.unwrap();
    ari.originate(
        &Originate::to_app("Local/play@test", "dragoman")
            .app_args("leg-a")
            .caller_id("Dragoman <100>")
            .timeout_s(20)
            .channel_id("orig-1")
            .other_channel_id("orig-2")
            .format("slin16")
            .format("ulaw")
            .label("start")
            .variable("CALL_ID", "c1"),
    )
    .await
    .unwrap();
    ari.originate(&Originate::to_extension("PJSIP/alice", "default", "100", 1).originator("c0")).await.unwrap();
    ari.create_channel(
        &CreateChannel::new("PJSIP/bob", "dragoman")
            .app_args("x")
            .channel_id("new-1")
            .other_channel_id("new-2")
            .originator("c0")
            .format("alaw")
            .variable("A", "b"),
    )
    .await
    .unwrap();
    let media = ari
        .external_media(
            &ExternalMedia::rtp("dragoman", "127.0.0.1:40010", "slin16")
                .channel_id("em-1")
                .direction(MediaDirection::Both)
                .connection_type(dragoman_ari::ConnectionType::Client)
                .transport_data("f(json)")
                .data("leg-a")
                .variable("LEG", "a"),
        )
        .await
        .unwrap();
    assert_eq!(media.channel_var("UNICASTRTP_LOCAL_ADDRESS"), Some("127.0.0.1"));
    assert_eq!(media.channel_var("UNICASTRTP_LOCAL_PORT"), Some("40000"));
    ari.external_media(&ExternalMedia::audiosocket(
        "dragoman",
        "127.0.0.1:9092",
        "slin",
        "9c5b3c1e-1a39-4ad8-9b6b-4f0f2c9f4a51",
    ))
    .await
    .unwrap();
    ari.external_media(&ExternalMedia::new("dragoman", "ulaw").transport(Transport::WebSocket)).await.unwrap();
    ari.answer("c1").await.unwrap();
    ari.ring("c1").await.unwrap();
    ari.ring_stop("c1").await.unwrap();
    ari.hold("c1").await.unwrap();
    ari.unhold("c1").await.unwrap();
    ari.mute("c1", MuteDirection::In).await.unwrap();
    ari.unmute("c1", MuteDirection::Both).await.unwrap();
    ari.send_dtmf("c1", &Dtmf::digits("12#").before_ms(10).between_ms(100).duration_ms(120).after_ms(5)).await.unwrap();
    let playback = ari
        .play(
            "c1",
            &Play::media("sound:hello world")
                .then("digits:42")
                .lang("es")
                .offset_ms(0)
                .skip_ms(3000)
                .playback_id("pb-1")
                .announcer_format("slin16"),
        )
        .await
        .unwrap();
    assert_eq!(playback.state, "text");
    let snoop = ari
        .snoop(
            "c1",
            &Snoop::spy("dragoman", SnoopDirection::In)
                .with_whisper(SnoopDirection::Out)
                .app_args("snoop")
                .snoop_id("sn-1"),
        )
        .await
        .unwrap();
    assert_eq!(snoop.id, "text");
    assert_eq!(ari.get_variable("c1", "UNICASTRTP_LOCAL_PORT").await.unwrap(), "text");
    ari.set_variable("c1", "CALL_ID", Some("c1")).await.unwrap();
    ari.set_variable("c1", "CALL_ID", None).await.unwrap();
    ari.enable_talk_detect("c1", TalkDetect { silence_ms: Some(1200), talking_threshold: Some(128) }).await.unwrap();
    ari.disable_talk_detect("c1").await.unwrap();
    ari.continue_in_dialplan("c1", None, None, None).await.unwrap();
    ari.continue_in_dialplan("c1", Some("default"), Some("100"), Some(2)).await.unwrap();
    ari.move_channel("c1", "other-app", Some("x")).await.unwrap();
    ari.dial("new-1", Some("c1"), Some(30)).await.unwrap();
    ari.progress("c1").await.unwrap();
    ari.hangup("c1", Some(HangupReason::Normal)).await.unwrap();
    ari.hangup("c2", None).await.unwrap();
    ari.hangup_with_cause("c3", 16).await.unwrap();

    // Bridges.
    assert_eq!(ari.list_bridges().await.unwrap().len(), 1);
    ari.get_bridge("b1").await.unwrap();
    ari.create_bridge(&CreateBridge::mixing().feature(BridgeFeature::ProxyMedia).bridge_id("b1").name("call c1"))
        .await
        .unwrap();
    ari.create_bridge(&CreateBridge::default()).await.unwrap();
    ari.add_channel(
        "b1",
        &AddChannel::channel("c1")
            .and("em-1")
            .role("participant")
            .absorb_dtmf(false)
            .mute(false)
            .inhibit_connected_line_updates(true),
    )
    .await
    .unwrap();
    ari.remove_channel("b1", &["c1", "em-1"]).await.unwrap();
    ari.play_to_bridge("b1", &Play::media("tone:ring").announcer_format("slin16").playback_id("pb-2")).await.unwrap();
    ari.destroy_bridge("b1").await.unwrap();

    // Playbacks, applications, asterisk.
    ari.get_playback("pb-1").await.unwrap();
    ari.control_playback("pb-1", "pause").await.unwrap();
    ari.stop_playback("pb-1").await.unwrap();
    assert_eq!(ari.list_applications().await.unwrap().len(), 1);
    ari.get_application("dragoman").await.unwrap();
    ari.subscribe("dragoman", &["channel:c1", "bridge:b1"]).await.unwrap();
    ari.unsubscribe("dragoman", &["channel:c1"]).await.unwrap();
    let info = ari.asterisk_info().await.unwrap();
    assert!(info.system.is_some() && info.status.is_some());
    ari.asterisk_info_only(&["system", "build"]).await.unwrap();
    assert_eq!(ari.ping().await.unwrap().ping, "text");
}

#[tokio::test]
async fn every_request_the_client_sends_matches_a_spec_operation() {
    let (addr, recorder) = start_recorder().await;
    let ari = AriClient::new(AriConfig::new(format!("http://{addr}"), "dragoman", "secret")).expect("client");
    run_every_operation(&ari).await;

    let requests = recorder.requests.lock().expect("recorder lock").clone();
    let mut hit = BTreeSet::new();
    for request in &requests {
        let described = format!("{} /{}", request.method, request.segments.join("/"));
        let id = request.operation.as_ref().unwrap_or_else(|| panic!("{described}: not in spec"));
        let operation = recorder.spec.operations.iter().find(|op| &op.id == id).expect("matched operation");
        hit.insert(id.clone());

        let sent: BTreeMap<&str, &str> = request.query.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(sent.len(), request.query.len(), "{described}: a parameter sent twice");
        for name in sent.keys() {
            assert!(
                operation.params.iter().any(|p| p.kind == "query" && p.name == *name),
                "{described} ({id}): query parameter {name} is not in the spec"
            );
        }
        let body_keys: Vec<&String> = request.body.iter().filter_map(Value::as_object).flat_map(Map::keys).collect();
        for key in &body_keys {
            assert!(
                operation.params.iter().any(|p| p.kind == "body" && &p.name == *key),
                "{described} ({id}): body field {key} is not a body parameter"
            );
        }
        for param in operation.params.iter().filter(|p| p.required) {
            let present = match param.kind.as_str() {
                "query" => sent.contains_key(param.name.as_str()),
                "body" => body_keys.iter().any(|k| **k == param.name),
                _ => true, // path parameters: the template matched
            };
            assert!(present, "{described} ({id}): required {} not sent", param.name);
        }
    }

    let expected: BTreeSet<String> = [
        "channels.list",
        "channels.get",
        "channels.originate",
        "channels.create",
        "channels.externalMedia",
        "channels.hangup",
        "channels.answer",
        "channels.ring",
        "channels.ringStop",
        "channels.hold",
        "channels.unhold",
        "channels.mute",
        "channels.unmute",
        "channels.sendDTMF",
        "channels.play",
        "channels.snoopChannel",
        "channels.getChannelVar",
        "channels.continueInDialplan",
        "channels.move",
        "channels.dial",
        "channels.progress",
        "playbacks.control",
        "channels.setChannelVar",
        "bridges.list",
        "bridges.get",
        "bridges.create",
        "bridges.addChannel",
        "bridges.removeChannel",
        "bridges.destroy",
        "bridges.play",
        "playbacks.get",
        "playbacks.stop",
        "applications.list",
        "applications.get",
        "applications.subscribe",
        "applications.unsubscribe",
        "asterisk.getInfo",
        "asterisk.ping",
    ]
    .iter()
    .map(|id| (*id).to_owned())
    .collect();
    assert_eq!(hit, expected);
}

#[tokio::test]
async fn values_arrive_decoded_as_sent() {
    let (addr, recorder) = start_recorder().await;
    let ari = AriClient::new(AriConfig::new(format!("http://{addr}/"), "u", "p")).expect("client");
    ari.get_channel("chan/with space?").await.unwrap();
    ari.play("c1", &Play::media("sound:hello world").then("tone:ring;tonezone=fr")).await.unwrap();
    ari.enable_talk_detect("c1", TalkDetect::default()).await.unwrap();
    ari.originate(&Originate::to_app("Local/a@b", "dragoman").variable("X", "1")).await.unwrap();

    let requests = recorder.requests.lock().expect("recorder lock").clone();
    let query = |index: usize, name: &str| -> Option<String> {
        let request: &Recorded = &requests[index];
        request.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    assert_eq!(requests[0].segments, ["channels", "chan/with space?"]);
    assert_eq!(requests[0].operation.as_deref(), Some("channels.get"));
    assert_eq!(query(1, "media").as_deref(), Some("sound:hello world,tone:ring;tonezone=fr"));
    assert_eq!(query(2, "variable").as_deref(), Some("TALK_DETECT(set)"));
    assert_eq!(query(2, "value").as_deref(), Some(""));
    assert_eq!(requests[3].body, Some(json!({"variables": {"X": "1"}})));
}
