//! The fake ARI server checked against the vendored ARI spec (Asterisk 22.10.1): every route it
//! serves is a spec operation, every REST body and status and every event frame of a realistic
//! call conforms, RTP arrives as chan_rtp sends it, and nothing leaks.
//!
//! Requests go through raw reqwest and tokio-tungstenite, not through Dragoman's ARI client,
//! so that the check is independent of it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dragoman_test_support::ari_spec::{ParamType, Spec};
use dragoman_test_support::fake_ari::{FakeAri, FakeAriConfig, FakeAriError, Faults, InboundCall, routes};
use dragoman_test_support::within;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const APP: &str = "dragoman";

/// REST calls whose answers are checked against the spec operation they hit.
struct Rest<'a> {
    http: reqwest::Client,
    fake: &'a FakeAri,
    spec: &'a Spec,
}

impl<'a> Rest<'a> {
    fn new(fake: &'a FakeAri, spec: &'a Spec) -> Self {
        Rest { http: reqwest::Client::new(), fake, spec }
    }

    /// Sends the request and checks: the operation exists; a success is 204 without a body
    /// for `void`, otherwise 200/201 with a body valid against `responseClass`; an error is one
    /// of the operation's `errorResponses` with a `{"message": …}` body. Returns status and body.
    async fn call(&self, method: Method, path_and_query: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}{path_and_query}", self.fake.http_url());
        let mut request =
            self.http.request(method.clone(), &url).basic_auth(self.fake.username(), Some(self.fake.password()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = within(5, request.send()).await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("body");
        let op = self
            .spec
            .find_operation(method.as_str(), &format!("/ari{path_and_query}"))
            .unwrap_or_else(|| panic!("{method} {path_and_query} is no spec operation"));
        let what = format!("{method} {path_and_query} ({})", op.nickname);
        if status.is_success() {
            if op.response_class == "void" {
                assert_eq!(status, StatusCode::NO_CONTENT, "{what}");
                assert!(text.is_empty(), "{what}: void answered {text}");
                return (status, Value::Null);
            }
            assert!(matches!(status.as_u16(), 200 | 201), "{what}: {status}");
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
            let problems = self.spec.validate(&op.response_class, &value);
            assert!(problems.is_empty(), "{what} → {}: {problems:#?}\n{value:#}", op.response_class);
            (status, value)
        } else {
            let declared: Vec<u16> = op.error_responses.iter().map(|e| e.code).collect();
            assert!(declared.contains(&status.as_u16()), "{what}: {status} is not among {declared:?}: {text}");
            let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
            assert!(value["message"].is_string(), "{what}: error body {value}");
            (status, value)
        }
    }

    async fn ok(&self, method: Method, path_and_query: &str) -> Value {
        let (status, body) = self.call(method.clone(), path_and_query, None).await;
        assert!(status.is_success(), "{method} {path_and_query}: {status} {body}");
        body
    }

    async fn expect(&self, method: Method, path_and_query: &str, expected: u16) {
        let (status, body) = self.call(method.clone(), path_and_query, None).await;
        assert_eq!(status.as_u16(), expected, "{method} {path_and_query}: {body}");
    }
}

/// The events WebSocket; every frame is validated against events.json.
struct Events<'a> {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    spec: &'a Spec,
    seen: Vec<Value>,
}

impl<'a> Events<'a> {
    async fn connect(fake: &FakeAri, spec: &'a Spec, app: &str) -> Events<'a> {
        let url = format!("{}&api_key={}", fake.events_url(app), fake.api_key());
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", "ari".parse().expect("header"));
        let (ws, response) = within(5, tokio_tungstenite::connect_async(request)).await.expect("connect");
        assert_eq!(response.headers().get("Sec-WebSocket-Protocol").map(|v| v.as_bytes()), Some(&b"ari"[..]));
        within(5, fake.wait_for_app(app)).await;
        Events { ws, spec, seen: Vec::new() }
    }

    /// The next text frame, validated.
    async fn next(&mut self) -> Value {
        loop {
            let message = within(5, self.ws.next()).await.expect("websocket open").expect("frame");
            let Message::Text(text) = message else { continue };
            let event: Value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}"));
            let problems = self.spec.validate_message(&event);
            assert!(problems.is_empty(), "{problems:#?}\n{event:#}");
            assert!(event["asterisk_id"].is_string(), "{event}");
            self.seen.push(event.clone());
            return event;
        }
    }

    /// Reads until an event of `event_type` arrives (about `channel_id` when given).
    async fn until(&mut self, event_type: &str, channel_id: Option<&str>) -> Value {
        loop {
            let event = self.next().await;
            if event["type"] == event_type && channel_id.is_none_or(|id| event["channel"]["id"] == id) {
                return event;
            }
        }
    }
}

/// The types of the events about a channel (`channel`, or `peer` for Dial), in order.
fn types(events: &[Value], channel_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["channel"]["id"] == channel_id || e["peer"]["id"] == channel_id)
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn every_route_is_a_spec_operation_with_the_same_required_parameters() {
    let spec = Spec::vendored();
    assert_eq!(spec.api_version, "10.0.0");
    let mut served = BTreeSet::new();
    for route in routes() {
        let op = spec
            .operations
            .iter()
            .find(|op| op.path == route.path && op.http_method == route.method)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", route.method, route.path));
        assert_eq!(op.nickname, route.nickname, "{} {}", route.method, route.path);
        let required: BTreeSet<&str> = op
            .parameters
            .iter()
            .filter(|p| p.required && p.param_type == ParamType::Query)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(required, route.required.iter().copied().collect(), "{}", op.nickname);
        let has_body = op.parameters.iter().any(|p| p.param_type == ParamType::Body);
        assert_eq!(has_body, route.body_params, "{}", op.nickname);
        assert!(served.insert((route.method, route.path)), "{} {} twice", route.method, route.path);
    }
    // What a gateway needs is there.
    for nickname in ["originate", "answer", "hangup", "snoopChannel", "externalMedia", "addChannel", "setChannelVar"] {
        assert!(routes().iter().any(|r| r.nickname == nickname), "{nickname}");
    }
}

#[tokio::test]
async fn a_realistic_call_conforms_to_the_spec() {
    let spec = Spec::vendored();
    // Playbacks long enough to be seen playing on a busy machine.
    let config = FakeAriConfig { playback_duration: Duration::from_secs(1), ..FakeAriConfig::default() };
    let fake = FakeAri::start_with(config).await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let mut events = Events::connect(&fake, &spec, APP).await;

    // Authentication: none → 401; api_key works as well as Basic.
    let url = format!("{}/asterisk/ping", fake.http_url());
    let anonymous = reqwest::get(&url).await.expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let with_key = reqwest::get(format!("{url}?api_key={}", fake.api_key())).await.expect("get");
    assert_eq!(with_key.status(), StatusCode::OK);

    // An inbound call with a second party, from the dialplan into Stasis.
    let call = fake
        .place_inbound_call(
            InboundCall::new(APP, "+4930123456")
                .variable("DRAGOMAN_LANGUAGE", "de")
                .arg("translate")
                .with_peer("200", false),
        )
        .expect("call");
    let caller = call.channel_id.clone();
    let peer = call.peer_channel_id.clone().expect("peer");
    let start = events.until("StasisStart", Some(&caller)).await;
    assert_eq!(start["args"], json!(["translate"]));
    assert_eq!(start["channel"]["state"], "Ring");
    assert_eq!(start["channel"]["caller"]["number"], "+4930123456");
    events.until("StasisStart", Some(&peer)).await;

    let list = rest.ok(Method::GET, "/channels").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    assert_eq!(rest.ok(Method::GET, &format!("/channels/{caller}")).await["id"], caller);
    let language = rest.ok(Method::GET, &format!("/channels/{caller}/variable?variable=DRAGOMAN_LANGUAGE")).await;
    assert_eq!(language["value"], "de");

    rest.expect(Method::POST, &format!("/channels/{caller}/answer"), 204).await;
    let state = events.until("ChannelStateChange", Some(&caller)).await;
    assert_eq!(state["channel"]["state"], "Up");

    // Originate into the app: the reply says Down and comes before the events.
    let originated = rest.ok(Method::POST, &format!("/channels?endpoint=Local/play@test&app={APP}&appArgs=a,b")).await;
    assert_eq!(originated["state"], "Down");
    let local = originated["id"].as_str().expect("id").to_owned();
    let start = events.until("StasisStart", Some(&local)).await;
    assert_eq!(start["channel"]["state"], "Up");
    assert_eq!(start["args"], json!(["a", "b"]));
    assert_eq!(
        types(&events.seen, &local),
        ["Dial", "ChannelDialplan", "ChannelStateChange", "ChannelStateChange", "Dial", "ChannelVarset", "StasisStart"]
            .map(str::to_owned)
    );

    // The per-leg media pattern: snoop(spy=in) + externalMedia(slin16) in their own bridge.
    let snoop = rest.ok(Method::POST, &format!("/channels/{caller}/snoop?app={APP}&spy=in")).await;
    let snoop_id = snoop["id"].as_str().expect("id").to_owned();
    assert!(snoop["name"].as_str().is_some_and(|n| n.starts_with("Snoop/")));
    events.until("StasisStart", Some(&snoop_id)).await;

    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let host = rtp.local_addr().expect("addr");
    let (_, external) = rest
        .call(
            Method::POST,
            "/channels/externalMedia",
            Some(json!({"app": APP, "external_host": host.to_string(), "format": "slin16", "variables": {"LEG": "caller"}})),
        )
        .await;
    assert_eq!(external["state"], "Down");
    assert_eq!(external["channelvars"]["UNICASTRTP_LOCAL_ADDRESS"], "127.0.0.1");
    assert_eq!(external["channelvars"]["LEG"], "caller");
    let external_id = external["id"].as_str().expect("id").to_owned();
    events.until("StasisStart", Some(&external_id)).await;

    let bridge = rest.ok(Method::POST, "/bridges?type=mixing&name=leg-caller").await;
    let bridge_id = bridge["id"].as_str().expect("id").to_owned();
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel?channel={snoop_id}"), 204).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel?channel={external_id}"), 204).await;
    events.until("ChannelEnteredBridge", Some(&snoop_id)).await;
    let entered = events.until("ChannelEnteredBridge", Some(&external_id)).await;
    assert_eq!(entered["bridge"]["channels"].as_array().map(Vec::len), Some(2));
    let got = rest.ok(Method::GET, &format!("/bridges/{bridge_id}")).await;
    assert_eq!(got["channels"], json!([snoop_id, external_id]));
    assert_eq!(rest.ok(Method::GET, "/bridges").await.as_array().map(Vec::len), Some(1));

    // Playback on a channel and on the bridge.
    let (status, playback) =
        rest.call(Method::POST, &format!("/channels/{peer}/play?media=sound:hello-world"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(playback["target_uri"], format!("channel:{peer}"));
    let playback_id = playback["id"].as_str().expect("id").to_owned();
    assert_eq!(rest.ok(Method::GET, &format!("/playbacks/{playback_id}")).await["state"], "playing");
    let finished = events.until("PlaybackFinished", None).await;
    assert_eq!(finished["playback"]["id"], playback_id);
    let (status, _) = rest.call(Method::POST, &format!("/bridges/{bridge_id}/play/p-1?media=sound:beep"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    rest.expect(Method::DELETE, "/playbacks/p-1", 204).await;

    // Talk detection only reports once the app asked for it.
    assert!(!fake.talking_started(&caller).expect("channel"));
    rest.expect(Method::POST, &format!("/channels/{caller}/variable?variable=TALK_DETECT(set)&value="), 204).await;
    assert!(fake.talk_detect_enabled(&caller));
    assert!(fake.talking_started(&caller).expect("channel"));
    events.until("ChannelTalkingStarted", Some(&caller)).await;
    fake.talking_finished(&caller, Duration::from_millis(1500)).expect("channel");
    assert_eq!(events.until("ChannelTalkingFinished", Some(&caller)).await["duration"], 1500);

    fake.send_dtmf(&caller, '5').expect("dtmf");
    assert_eq!(events.until("ChannelDtmfReceived", Some(&caller)).await["digit"], "5");
    rest.expect(Method::POST, &format!("/channels/{peer}/dtmf?dtmf=12"), 204).await;
    rest.expect(Method::POST, &format!("/channels/{peer}/hold"), 204).await;
    events.until("ChannelHold", Some(&peer)).await;
    rest.expect(Method::DELETE, &format!("/channels/{peer}/hold"), 204).await;
    rest.expect(Method::POST, &format!("/channels/{peer}/mute?direction=in"), 204).await;
    rest.expect(Method::DELETE, &format!("/channels/{peer}/mute"), 204).await;

    // Applications and asterisk resources.
    let apps = rest.ok(Method::GET, "/applications").await;
    assert_eq!(apps[0]["name"], APP);
    let app = rest.ok(Method::POST, &format!("/applications/{APP}/subscription?eventSource=bridge:{bridge_id}")).await;
    assert!(app["bridge_ids"].as_array().is_some_and(|b| b.contains(&json!(bridge_id))));
    rest.ok(Method::GET, &format!("/applications/{APP}")).await;
    let info = rest.ok(Method::GET, "/asterisk/info").await;
    assert_eq!(info["system"]["version"], "22.10.1");
    assert_eq!(rest.ok(Method::GET, "/asterisk/info?only=status").await.as_object().map(|o| o.len()), Some(1));
    assert_eq!(rest.ok(Method::GET, "/asterisk/ping").await["ping"], "pong");

    // Error answers, each among the spec's errorResponses of its operation.
    rest.expect(Method::GET, "/channels/no-such-channel", 404).await;
    rest.expect(Method::POST, "/channels/no-such-channel/answer", 404).await;
    rest.expect(Method::DELETE, "/channels/no-such-channel", 404).await;
    rest.expect(Method::DELETE, &format!("/channels/{peer}?reason=lunch"), 400).await;
    rest.expect(Method::POST, &format!("/channels?app={APP}"), 400).await;
    rest.expect(Method::POST, &format!("/channels?endpoint=PJSIP/x&app={APP}&channelId={caller}"), 409).await;
    rest.expect(Method::POST, &format!("/channels/externalMedia?app={APP}&external_host={host}"), 400).await;
    rest.expect(Method::POST, &format!("/channels/{caller}/snoop?app={APP}"), 400).await;
    rest.expect(Method::POST, &format!("/channels/no-such-channel/snoop?app={APP}&spy=in"), 404).await;
    rest.expect(Method::GET, &format!("/channels/{caller}/variable"), 400).await;
    rest.expect(Method::GET, &format!("/channels/{caller}/variable?variable=NOPE"), 404).await;
    rest.expect(Method::POST, &format!("/channels/{caller}/dtmf"), 400).await;
    rest.expect(Method::GET, "/bridges/no-such-bridge", 404).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}"), 409).await;
    rest.expect(Method::POST, "/bridges/no-such-bridge/addChannel?channel=x", 404).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel?channel=no-such-channel"), 400).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel?channel={snoop_id}"), 409).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel"), 400).await;
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/removeChannel?channel={peer}"), 422).await;
    rest.expect(Method::GET, "/playbacks/no-such-playback", 404).await;
    rest.expect(Method::GET, "/applications/no-such-app", 404).await;
    rest.expect(Method::POST, &format!("/applications/{APP}/subscription?eventSource=channel:nope"), 422).await;
    rest.expect(Method::POST, &format!("/applications/{APP}/subscription?eventSource=moon:1"), 400).await;

    // The caller hangs up: its snoop ends with it, and a later DELETE of the snoop is a 404.
    fake.hangup(&caller).expect("hangup");
    let destroyed = events.until("ChannelDestroyed", Some(&caller)).await;
    assert_eq!(destroyed["cause"], 16);
    let caller_events = types(&events.seen, &caller);
    let position =
        |t: &str| caller_events.iter().rposition(|e| e == t).unwrap_or_else(|| panic!("{t} in {caller_events:?}"));
    assert!(position("ChannelHangupRequest") < position("StasisEnd"), "{caller_events:?}");
    assert!(position("StasisEnd") < position("ChannelDestroyed"), "{caller_events:?}");
    let snoop_events = types(&events.seen, &snoop_id);
    assert!(snoop_events.contains(&"StasisEnd".to_owned()), "{snoop_events:?}");
    assert!(!snoop_events.contains(&"ChannelDestroyed".to_owned()), "{snoop_events:?}");
    rest.expect(Method::DELETE, &format!("/channels/{snoop_id}"), 404).await;

    // The application cleans up the rest; bridges stay until deleted.
    for channel in [&peer, &local, &external_id] {
        rest.expect(Method::DELETE, &format!("/channels/{channel}?reason=normal"), 204).await;
        events.until("ChannelDestroyed", Some(channel)).await;
    }
    assert_eq!(fake.counters().live_bridges, 1);
    rest.expect(Method::DELETE, &format!("/bridges/{bridge_id}"), 204).await;
    assert_eq!(events.until("BridgeDestroyed", None).await["bridge"]["id"], bridge_id);
    let counters = fake.counters();
    assert_eq!((counters.live_channels, counters.live_bridges, counters.live_playbacks), (0, 0, 0), "{counters:?}");
    assert_eq!(counters.channels_created, 5);
    assert_eq!(counters.bridges_created, 1);
    assert!(counters.requests_served > 50, "{counters:?}");

    // Every frame named a known event model (validated on receipt); a few sanity checks on it.
    assert!(events.seen.iter().all(|e| e["application"] == APP));
    assert!(events.seen.len() > 30);
}

/// Parsed RTP packet header fields.
#[derive(Debug)]
struct Rtp {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

fn parse_rtp(packet: &[u8]) -> Rtp {
    assert!(packet.len() >= 12 && packet[0] == 0x80, "not plain RTP v2: {:02x?}", &packet[..packet.len().min(12)]);
    Rtp {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload: packet[12..].to_vec(),
    }
}

#[tokio::test]
async fn snooped_speech_arrives_as_rtp_from_the_advertised_port() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let _events = Events::connect(&fake, &spec, APP).await;
    let call = fake.place_inbound_call(InboundCall::new(APP, "100").answered()).expect("call");
    let caller = call.channel_id;

    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let host = rtp.local_addr().expect("addr");
    let snoop = rest.ok(Method::POST, &format!("/channels/{caller}/snoop?app={APP}&spy=in")).await;
    let external =
        rest.ok(Method::POST, &format!("/channels/externalMedia?app={APP}&external_host={host}&format=slin16")).await;
    let port: u16 =
        external["channelvars"]["UNICASTRTP_LOCAL_PORT"].as_str().and_then(|p| p.parse().ok()).expect("port");
    let external_id = external["id"].as_str().expect("id");
    let variable =
        rest.ok(Method::GET, &format!("/channels/{external_id}/variable?variable=UNICASTRTP_LOCAL_PORT")).await;
    assert_eq!(variable["value"], port.to_string());
    let bridge = rest.ok(Method::POST, "/bridges?type=mixing").await;
    let bridge_id = bridge["id"].as_str().expect("id");

    // Nothing flows before the channel is bridged with the snoop.
    let mut buf = [0u8; 2048];
    assert!(tokio::time::timeout(Duration::from_millis(100), rtp.recv_from(&mut buf)).await.is_err());
    let snoop_id = snoop["id"].as_str().expect("id");
    rest.expect(Method::POST, &format!("/bridges/{bridge_id}/addChannel?channel={snoop_id},{external_id}"), 204).await;

    // The caller says a ramp; it arrives big-endian, after zeros while nobody spoke.
    let speech: Vec<i16> = (0..3200).map(|i| (i as i16) * 7 - 11_000).collect();
    fake.speak(&caller, speech.clone()).expect("speak");
    let started = tokio::time::Instant::now();
    let mut packets = Vec::new();
    let mut received = Vec::new();
    while packets.len() < 40 {
        let (n, from) = within(2, rtp.recv_from(&mut buf)).await.expect("recv");
        assert_eq!(from.port(), port, "RTP must come from UNICASTRTP_LOCAL_PORT");
        let packet = parse_rtp(&buf[..n]);
        assert_eq!(packet.payload_type, 118);
        assert_eq!(packet.payload.len(), 640);
        assert!(!packet.marker);
        received.extend(packet.payload.chunks(2).map(|b| i16::from_be_bytes([b[0], b[1]])));
        packets.push(packet);
    }
    // 40 packets of 20 ms: the sender paces itself (loose bound, not a timing test).
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    for pair in packets.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(320));
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
    }
    let first = received.iter().position(|&s| s != 0).expect("speech in the stream");
    assert_eq!(&received[first..first + speech.len()], &speech[..], "payload is the speech, big-endian");
    assert!(received[first + speech.len()..].iter().all(|&s| s == 0), "silence after the utterance");
    assert!(fake.counters().rtp_packets_sent >= 40);

    // Packets sent to the advertised port are counted, per channel too.
    assert_eq!(fake.rtp_packets_received(external_id), Some(0));
    rtp.send_to(&[0x80, 118, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], ("127.0.0.1", port)).await.expect("send");

    // The caller hangs up: the snoop dies with it and the stream stops.
    fake.hangup(&caller).expect("hangup");
    while tokio::time::timeout(Duration::from_millis(200), rtp.recv_from(&mut buf)).await.is_ok() {}
    assert_eq!(fake.rtp_packets_received(external_id), Some(1));
    assert_eq!(fake.counters().rtp_packets_received, 1);
}

#[tokio::test]
async fn ulaw_external_media_sends_160_byte_packets_with_payload_type_0() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let _events = Events::connect(&fake, &spec, APP).await;
    let call = fake.place_inbound_call(InboundCall::new(APP, "100")).expect("call");
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let host = rtp.local_addr().expect("addr");
    let snoop = rest.ok(Method::POST, &format!("/channels/{}/snoop?app={APP}&spy=both", call.channel_id)).await;
    let external =
        rest.ok(Method::POST, &format!("/channels/externalMedia?app={APP}&external_host={host}&format=ulaw")).await;
    let bridge = rest.ok(Method::POST, "/bridges").await;
    let (b, s, e) = (bridge["id"].as_str(), snoop["id"].as_str(), external["id"].as_str());
    let (b, s, e) = (b.expect("bridge"), s.expect("snoop"), e.expect("external"));
    rest.expect(Method::POST, &format!("/bridges/{b}/addChannel?channel={s}&channel={e}"), 204).await;
    let mut buf = [0u8; 2048];
    let (n, _) = within(2, rtp.recv_from(&mut buf)).await.expect("recv");
    let packet = parse_rtp(&buf[..n]);
    assert_eq!((packet.payload_type, packet.payload.len()), (0, 160));
    assert!(packet.payload.iter().all(|&b| b == 0xFF), "µ-law silence");
    // Destroying the bridge stops the stream, and leaves the channels.
    rest.expect(Method::DELETE, &format!("/bridges/{b}"), 204).await;
    while tokio::time::timeout(Duration::from_millis(200), rtp.recv_from(&mut buf)).await.is_ok() {}
    assert_eq!(fake.counters().live_channels, 3);
}

#[tokio::test]
async fn counters_return_to_zero_after_hundreds_of_calls_end_at_random_points() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let mut events = Events::connect(&fake, &spec, APP).await;
    let mut bridges = Vec::new();
    let mut calls = Vec::new();
    for i in 0..200 {
        let call =
            fake.place_inbound_call(InboundCall::new(APP, &format!("{i}")).with_peer("200", i % 2 == 0)).expect("call");
        bridges.extend(call.bridge_id.clone());
        calls.push(call);
    }
    // Calls end at different points: far end or application, caller or peer first, with or
    // without a snoop on the caller. A snoop dies with its caller.
    let mut expected_live = 0;
    for (i, call) in calls.iter().enumerate() {
        let snooped = i % 3 == 0;
        if snooped {
            let snoop = rest.ok(Method::POST, &format!("/channels/{}/snoop?app={APP}&spy=in", call.channel_id)).await;
            let bridge = rest.ok(Method::POST, "/bridges").await;
            let (b, s) = (bridge["id"].as_str().expect("id"), snoop["id"].as_str().expect("id"));
            rest.expect(Method::POST, &format!("/bridges/{b}/addChannel?channel={s}"), 204).await;
            bridges.push(b.to_owned());
        }
        let peer = call.peer_channel_id.as_deref().expect("peer");
        match i % 4 {
            0 => fake.hangup(&call.channel_id).expect("hangup"),
            1 => rest.expect(Method::DELETE, &format!("/channels/{}", call.channel_id), 204).await,
            2 => fake.hangup(peer).expect("hangup"),
            _ => rest.expect(Method::DELETE, &format!("/channels/{peer}?reason=busy"), 204).await,
        }
        let caller_lives = i % 4 >= 2;
        expected_live += 1 + usize::from(snooped && caller_lives);
    }
    let counters = fake.counters();
    assert_eq!(counters.live_channels, expected_live, "{counters:?}");
    // The application hangs up what is left; the snoops go with their callers.
    let legs: Vec<String> = fake
        .channel_ids()
        .into_iter()
        .filter(|id| {
            fake.channel_json(id).is_some_and(|c| c["name"].as_str().is_some_and(|n| !n.starts_with("Snoop/")))
        })
        .collect();
    assert_eq!(legs.len(), 200);
    for id in legs {
        rest.expect(Method::DELETE, &format!("/channels/{id}"), 204).await;
    }
    assert_eq!(fake.counters().live_channels, 0);
    assert_eq!(fake.counters().live_bridges, bridges.len(), "bridges stay until deleted");
    for b in &bridges {
        rest.expect(Method::DELETE, &format!("/bridges/{b}"), 204).await;
    }
    let counters = fake.counters();
    assert_eq!((counters.live_channels, counters.live_bridges), (0, 0), "{counters:?}");
    assert_eq!(counters.channels_created, 400 + 67);
    // Every channel's last event arrives, in order, after the replies.
    let last = fake.counters().events_sent as usize;
    while events.seen.len() < last {
        events.next().await;
    }
    let mut destroyed = HashMap::new();
    for e in &events.seen {
        if e["type"] == "ChannelDestroyed" {
            *destroyed.entry(e["channel"]["id"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(destroyed.len(), 400, "every leg destroyed once, snoops only end");
    assert!(destroyed.values().all(|&n| n == 1));
}

#[tokio::test]
async fn a_newer_connection_replaces_the_older_and_drops_and_restarts_close_sockets() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let mut old = Events::connect(&fake, &spec, APP).await;
    let mut new = Events::connect(&fake, &spec, APP).await;
    let replaced = old.next().await;
    assert_eq!((replaced["type"].as_str(), replaced["application"].as_str()), (Some("ApplicationReplaced"), Some(APP)));
    let call = fake.place_inbound_call(InboundCall::new(APP, "1")).expect("call");
    new.until("StasisStart", Some(&call.channel_id)).await;

    // An abrupt drop: the socket ends without a close frame; the channels stay.
    fake.drop_connections();
    let end = within(5, new.ws.next()).await;
    assert!(!matches!(end, Some(Ok(Message::Close(_)))), "{end:?}");
    assert!(!fake.app_connected(APP));
    assert_eq!(fake.counters().live_channels, 1);
    assert_eq!(fake.place_inbound_call(InboundCall::new(APP, "2")), Err(FakeAriError::AppNotConnected(APP.into())));

    // Reconnect and resynchronise: the channel is still listed; a restart empties everything.
    let mut again = Events::connect(&fake, &spec, APP).await;
    let before = rest.ok(Method::GET, "/asterisk/info").await["status"]["startup_time"].clone();
    assert_eq!(rest.ok(Method::GET, "/channels").await[0]["id"], call.channel_id);
    tokio::time::sleep(Duration::from_millis(5)).await; // startup times have millisecond resolution
    fake.restart();
    let end = within(5, again.ws.next()).await;
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
    assert_eq!(rest.ok(Method::GET, "/channels").await, json!([]));
    assert_ne!(rest.ok(Method::GET, "/asterisk/info").await["status"]["startup_time"], before);
    assert_eq!(fake.counters().live_channels, 0);
}

#[tokio::test]
async fn faults_fail_delay_hang_duplicate_and_corrupt() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let mut events = Events::connect(&fake, &spec, APP).await;
    let http = reqwest::Client::new();
    let ping = format!("{}/asterisk/ping?api_key={}", fake.http_url(), fake.api_key());

    fake.fail_next_requests([503, 500]);
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::OK);

    // Failures for one route come first and leave the others alone.
    fake.fail_next_on("POST", "/channels/externalMedia", [500]);
    fake.fail_next_requests([503]);
    let media =
        format!("{}/channels/externalMedia?api_key={}&app={APP}&format=slin16", fake.http_url(), fake.api_key());
    assert_eq!(http.post(&media).send().await.expect("send").status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(http.post(&media).send().await.expect("send").status(), StatusCode::BAD_REQUEST, "no external_host");

    fake.set_faults(Faults { failure_probability: 1.0, failure_status: 502, ..Faults::default() });
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::BAD_GATEWAY);
    fake.set_faults(Faults { latency: Duration::from_millis(150), ..Faults::default() });
    let started = tokio::time::Instant::now();
    assert_eq!(http.get(&ping).send().await.expect("send").status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));

    // Hung: the request is accepted but not answered until the fake recovers.
    fake.set_faults(Faults::default());
    fake.set_hung(true);
    let pending = tokio::spawn(http.get(&ping).send());
    let hung = tokio::time::timeout(Duration::from_millis(300), http.get(&ping).send()).await;
    assert!(hung.is_err(), "a hung fake answered");
    fake.set_hung(false);
    assert_eq!(within(5, pending).await.expect("join").expect("send").status(), StatusCode::OK);

    // Duplicated events, then a frame that is not JSON.
    fake.set_faults(Faults { duplicate_event_probability: 1.0, ..Faults::default() });
    let call = fake.place_inbound_call(InboundCall::new(APP, "1")).expect("call");
    let first = events.next().await;
    let second = events.next().await;
    assert_eq!(first, second);
    assert_eq!(first["channel"]["id"], call.channel_id);
    fake.set_faults(Faults::default());
    assert_eq!(fake.inject_malformed_frame(APP), 1);
    let frame = within(5, events.ws.next()).await.expect("open").expect("frame");
    let text = frame.into_text().expect("text");
    assert!(serde_json::from_str::<Value>(text.as_str()).is_err());
    // An event type the client does not know, as newer Asterisk versions add them.
    assert_eq!(fake.inject_frame(APP, r#"{"type": "ChannelFutureThing", "application": "dragoman"}"#), 1);
    let frame = within(5, events.ws.next()).await.expect("open").expect("frame").into_text().expect("text");
    let unknown: Value = serde_json::from_str(frame.as_str()).expect("json");
    assert!(!spec.validate_message(&unknown).is_empty(), "an unknown type is not a spec event");
    // The connection still works afterwards.
    fake.send_dtmf(&call.channel_id, '#').expect("dtmf");
    assert_eq!(events.next().await["digit"], "#");
    rest.expect(Method::DELETE, &format!("/channels/{}", call.channel_id), 204).await;

    // A far-end hangup whose request arrives twice, then the end as usual.
    fake.set_faults(Faults { duplicate_hangup_request: true, ..Faults::default() });
    let call = fake.place_inbound_call(InboundCall::new(APP, "2")).expect("call");
    fake.hangup(&call.channel_id).expect("hangup");
    events.until("ChannelDestroyed", Some(&call.channel_id)).await;
    let seen = types(&events.seen, &call.channel_id);
    assert_eq!(seen, ["StasisStart", "ChannelHangupRequest", "ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"]);
}

#[tokio::test]
async fn events_websocket_without_subprotocol_or_app() {
    let fake = FakeAri::start().await.expect("start fake");
    // Without Sec-WebSocket-Protocol the upgrade is still accepted.
    let url = format!("{}&api_key={}", fake.events_url(APP), fake.api_key());
    let (_ws, response) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    assert!(response.headers().get("Sec-WebSocket-Protocol").is_none());
    within(5, fake.wait_for_app(APP)).await;
    // Without app: MissingParams, as Asterisk sends it.
    let url = format!("ws://{}/ari/events?api_key={}", fake.addr(), fake.api_key());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    let frame = within(5, ws.next()).await.expect("open").expect("frame").into_text().expect("text");
    let message: Value = serde_json::from_str(frame.as_str()).expect("json");
    assert!(Spec::vendored().validate_message(&message).is_empty(), "{message}");
    assert_eq!(message["params"], json!(["app"]));
    // Without credentials: 401 before any upgrade.
    let unauthenticated = tokio_tungstenite::connect_async(fake.events_url(APP).as_str()).await;
    assert!(unauthenticated.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_at_once_leave_nothing_behind() {
    let fake = std::sync::Arc::new(FakeAri::start().await.expect("start fake"));
    let spec = Spec::vendored();
    let _events = Events::connect(&fake, &spec, APP).await;
    let http = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32 {
        let (fake, http) = (fake.clone(), http.clone());
        tasks.spawn(async move {
            let base = fake.http_url();
            let auth = |r: reqwest::RequestBuilder| r.basic_auth(fake.username(), Some(fake.password()));
            for call in 0..20 {
                let id = format!("c-{task}-{call}");
                let url = format!("{base}/channels/{id}?endpoint=PJSIP/{call}&app={APP}");
                let originated = auth(http.post(&url)).send().await.expect("originate");
                assert_eq!(originated.status(), StatusCode::OK);
                let bridge = format!("{base}/bridges/b-{id}");
                assert_eq!(auth(http.post(&bridge)).send().await.expect("bridge").status(), StatusCode::OK);
                let add = format!("{bridge}/addChannel?channel={id}");
                assert_eq!(auth(http.post(&add)).send().await.expect("add").status(), StatusCode::NO_CONTENT);
                let hangup = format!("{base}/channels/{id}");
                assert_eq!(auth(http.delete(&hangup)).send().await.expect("hangup").status(), StatusCode::NO_CONTENT);
                assert_eq!(auth(http.delete(&bridge)).send().await.expect("destroy").status(), StatusCode::NO_CONTENT);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("client task");
    }
    let counters = fake.counters();
    assert_eq!((counters.live_channels, counters.live_bridges), (0, 0), "{counters:?}");
    assert_eq!((counters.channels_created, counters.bridges_created), (640, 640));
    assert!(counters.requests_served >= 3200, "{counters:?}");
}

#[tokio::test]
async fn subscribe_all_connections_also_see_the_end_of_snoops() {
    let spec = Spec::vendored();
    let fake = FakeAri::start().await.expect("start fake");
    let rest = Rest::new(&fake, &spec);
    let url = format!(
        "{}&api_key={}",
        fake.events_url(APP).replace("subscribeAll=false", "subscribeAll=true"),
        fake.api_key()
    );
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect");
    within(5, fake.wait_for_app(APP)).await;
    let mut events = Events { ws, spec: &spec, seen: Vec::new() };
    let call = fake.place_inbound_call(InboundCall::new(APP, "1")).expect("call");
    let snoop = rest.ok(Method::POST, &format!("/channels/{}/snoop?app={APP}&spy=in", call.channel_id)).await;
    let snoop_id = snoop["id"].as_str().expect("id");
    fake.hangup(&call.channel_id).expect("hangup");
    events.until("ChannelDestroyed", Some(snoop_id)).await;
    events.until("ChannelDestroyed", Some(&call.channel_id)).await;
}
