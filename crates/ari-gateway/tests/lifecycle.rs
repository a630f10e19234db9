//! The gateway against the fake Asterisk (checked against the ARI spec by test-support's own
//! tests), over real loopback sockets: call setup with each party's voice on its own RTP
//! stream, the events the gateway publishes, languages from the dialplan, DTMF and the
//! operator, talk detection, reconnection and resynchronisation, and teardown that leaves no
//! channel or bridge behind, whatever point a call hangs up at.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

use std::time::Duration;

use dragoman_ari_gateway::Gateway;
use dragoman_bus::control::{Done, ErrorCode, Hangup, LegLanguage, Originate, Originated, Reply, SetLanguage};
use dragoman_bus::events::{CallDirection, LanguageSource};
use dragoman_bus::{Bus, CallSubjectKind, Event, StreamLimits, Subscription, wire};
use dragoman_runtime::{Config, Secret, Shutdown};
use dragoman_test_support::fake_ari::{Counters, FakeAri, Faults, InboundCall};
use dragoman_test_support::rtp_endpoints::RtpEndpoints;
use dragoman_test_support::within;
use futures::StreamExt as _;
use rand::Rng as _;

const APP: &str = "dragoman";

struct Harness {
    fake: FakeAri,
    bus: Bus,
    gateway: Gateway,
    events: Subscription,
    endpoints: RtpEndpoints,
    shutdown: Shutdown,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start(configure: impl FnOnce(&mut Config)) -> Harness {
    let fake = FakeAri::start().await.unwrap();
    let bus = dragoman_test_support::memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let mut config = Config::default();
    config.ari.url = format!("http://{}", fake.addr());
    config.ari.username = fake.username().to_owned();
    config.ari.password = Some(Secret::new(fake.password()));
    config.ari.reconnect_initial_ms = 20;
    config.ari.reconnect_max_ms = 200;
    configure(&mut config);
    let endpoints = RtpEndpoints::serve(&bus).await.unwrap();
    let events = bus.subscribe(&bus.subjects().all_calls(CallSubjectKind::Events)).await.unwrap();
    let gateway = Gateway::new(&config, dragoman_ari_gateway::client(&config).unwrap(), bus.clone()).unwrap();
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let mut connected = gateway.connected();
    tokio::spawn(gateway.clone().serve(shutdown.clone()));
    within(10, connected.wait_for(|up| *up)).await.unwrap();
    within(10, fake.wait_for_app(APP)).await;
    Harness { fake, bus, gateway, events, endpoints, shutdown }
}

impl Harness {
    /// The next call event the gateway published.
    async fn next_event(&mut self) -> Event {
        let message = within(10, self.events.next()).await.unwrap();
        wire::decode_event(&message.payload).unwrap()
    }

    /// Call events until one of type `kind` for `call`; returns it and what came before.
    async fn until(&mut self, call: &str, kind: &str) -> (Event, Vec<Event>) {
        let mut before = Vec::new();
        loop {
            let event = self.next_event().await;
            if event.meta().is_some_and(|m| m.call_id == call) && event.type_name() == kind {
                return (event, before);
            }
            if std::env::var_os("LIFECYCLE_DEBUG").is_some() {
                eprintln!("DEBUG waiting for {kind} of {call}: {event:?}");
            }
            before.push(event);
        }
    }

    /// Waits for RTP (slin16, payload type 118) on the leg's endpoint.
    async fn rtp_flowing(&self, call: &str, leg: &str) {
        within(10, async {
            while self.endpoints.received(call, leg).is_none_or(|received| received.packets < 5) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(self.endpoints.received(call, leg).map(|received| received.payload_type), Some(118));
    }

    /// Waits until the fake holds no channel and no bridge, and the gateway no call.
    async fn all_clean(&self) -> Counters {
        let waited = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let counters = self.fake.counters();
                if counters.live_channels == 0 && counters.live_bridges == 0 && self.gateway.registry().is_empty() {
                    return counters;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "leaked: channels {:?}, bridges {:?}, calls {}",
                self.fake.channel_ids(),
                self.fake.bridge_ids(),
                self.gateway.registry().len()
            )
        })
    }

    async fn command<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        subject: String,
        request: &Req,
    ) -> Reply<Resp> {
        self.bus.request_json(&subject, request, Duration::from_secs(5)).await.unwrap()
    }
}

fn call_id(channel: &str) -> String {
    dragoman_bus::subjects::call_id_from_linkedid(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_call_gets_its_own_media_stream_and_leaves_nothing_behind() {
    let mut h = start(|_| {}).await;
    let placed = h
        .fake
        .place_inbound_call(
            InboundCall::new(APP, "+34600111222").variable("DRAGOMAN_LANGUAGE", "es").variable("DRAGOMAN_TARGETS", "en,fr"),
        )
        .unwrap();
    let call = call_id(&placed.channel_id);

    let (started, _) = h.until(&call, "CallStarted").await;
    let Event::CallStarted(started) = started else { unreachable!() };
    assert_eq!((started.direction, started.caller.number.as_str()), (CallDirection::Inbound, "+34600111222"));
    let (joined, _) = h.until(&call, "LegJoined").await;
    let Event::LegJoined(joined) = joined else { unreachable!() };
    assert_eq!((joined.leg.as_str(), joined.channel_id.as_str()), ("caller", placed.channel_id.as_str()));
    assert_eq!((joined.language.as_deref(), joined.targets.as_slice()), (Some("es"), &["en".to_owned(), "fr".to_owned()][..]));
    h.rtp_flowing(&call, "caller").await;
    // The party, its snoop and its externalMedia channel; one bridge holding the latter two.
    let counters = h.fake.counters();
    assert_eq!((counters.live_channels, counters.live_bridges), (3, 1));
    let bridge = h.fake.bridge_ids().pop().unwrap();
    assert!(bridge.starts_with(dragoman_ari_gateway::call::ID_PREFIX));
    let answered = h.fake.channel_json(&placed.channel_id).unwrap();
    assert_eq!(answered["state"], "Up", "the gateway answers a ringing call");

    h.fake.hangup(&placed.channel_id).unwrap();
    let (ended, _) = h.until(&call, "CallEnded").await;
    let Event::CallEnded(ended) = ended else { unreachable!() };
    assert_eq!(ended.reason, "hangup");
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_dials_the_second_party_and_each_party_streams_on_its_own() {
    let mut h = start(|_| {}).await;
    let placed = h
        .fake
        .place_inbound_call(
            InboundCall::new(APP, "+34600111222").variable("DRAGOMAN_LANGUAGE", "es").variable("DRAGOMAN_DIAL", "PJSIP/agent-7"),
        )
        .unwrap();
    let call = call_id(&placed.channel_id);
    let mut joined = Vec::new();
    let mut changes = Vec::new();
    while joined.len() < 2 {
        match h.next_event().await {
            Event::LegJoined(leg) if leg.meta.call_id == call => joined.push(leg),
            Event::LanguageChanged(change) if change.meta.call_id == call => changes.push(change),
            _ => {}
        }
    }
    assert_eq!(joined.iter().map(|l| l.leg.as_str()).collect::<Vec<_>>(), ["caller", "callee"]);
    // Nothing said what the agent speaks, and no default is configured: STT detects it, and
    // the agent's words go into the caller's language.
    assert_eq!((joined[1].language.as_deref(), joined[1].targets.as_slice()), (None, &["es".to_owned()][..]));
    assert!(changes.is_empty(), "the agent's language is unknown, so the caller's targets stay: {changes:?}");
    h.rtp_flowing(&call, "caller").await;
    h.rtp_flowing(&call, "callee").await;
    // Two parties, two snoops, two externalMedia; a bridge per leg plus the one joining the parties.
    let counters = h.fake.counters();
    assert_eq!((counters.live_channels, counters.live_bridges), (6, 3));

    // The agent hangs up: the caller is hung up too and everything goes.
    let callee = joined[1].channel_id.clone();
    h.fake.hangup(&callee).unwrap();
    h.until(&call, "CallEnded").await;
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_and_the_operator_change_languages_and_the_operator_hangs_up() {
    let mut h = start(|_| {}).await;
    let placed = h.fake.place_inbound_call(InboundCall::new(APP, "+441632960000").answered()).unwrap();
    let call = call_id(&placed.channel_id);
    let (joined, _) = h.until(&call, "LegJoined").await;
    let Event::LegJoined(joined) = joined else { unreachable!() };
    assert_eq!(joined.language, None, "no dialplan variable and no default: STT detects the language");

    h.fake.send_dtmf(&placed.channel_id, '*').unwrap();
    h.fake.send_dtmf(&placed.channel_id, '2').unwrap();
    let (changed, before) = h.until(&call, "LanguageChanged").await;
    let digits: Vec<String> =
        before.iter().filter_map(|e| if let Event::DtmfReceived(d) = e { Some(d.digit.clone()) } else { None }).collect();
    assert_eq!(digits, ["*", "2"]);
    let Event::LanguageChanged(changed) = changed else { unreachable!() };
    assert_eq!((changed.leg.as_str(), changed.language.as_str(), changed.source), ("caller", "es", LanguageSource::Dtmf));

    let subjects = h.bus.subjects().clone();
    let request = SetLanguage { call_id: call.clone(), leg: "caller".into(), language: "fr".into(), targets: vec!["en".into()] };
    let reply: Reply<Done> = h.command(subjects.control_set_language(), &request).await;
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    let (changed, _) = h.until(&call, "LanguageChanged").await;
    let Event::LanguageChanged(changed) = changed else { unreachable!() };
    assert_eq!((changed.language.as_str(), changed.targets.as_slice(), changed.source), ("fr", &["en".to_owned()][..], LanguageSource::Operator));
    let wrong_leg = SetLanguage { leg: "nobody".into(), ..request };
    let reply: Reply<Done> = h.command(subjects.control_set_language(), &wrong_leg).await;
    let Reply::Error(error) = reply else { panic!("a leg that does not exist was accepted") };
    assert_eq!(error.code, ErrorCode::NotFound);
    assert!(error.message.contains("caller"), "{}", error.message);

    let reply: Reply<Done> = h.command(subjects.control_hangup(), &Hangup { call_id: call.clone(), reason: None }).await;
    assert!(matches!(reply, Reply::Ok(_)), "{reply:?}");
    let (ended, _) = h.until(&call, "CallEnded").await;
    let Event::CallEnded(ended) = ended else { unreachable!() };
    assert_eq!(ended.reason, "operator");
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_places_a_call_that_follows_the_same_path() {
    let mut h = start(|_| {}).await;
    let request = Originate {
        endpoint: "PJSIP/1000".into(),
        caller_id: Some("\"Desk\" <200>".into()),
        callee: LegLanguage { language: Some("fr".into()), targets: vec!["en".into()] },
        caller: LegLanguage::default(),
        timeout_s: Some(20),
    };
    let reply: Reply<Originated> = h.command(h.bus.subjects().control_originate(), &request).await;
    let Reply::Ok(placed) = reply else { panic!("originate failed: {reply:?}") };
    let (started, _) = h.until(&placed.call_id, "CallStarted").await;
    let Event::CallStarted(started) = started else { unreachable!() };
    assert_eq!(started.direction, CallDirection::Outbound);
    let (joined, _) = h.until(&placed.call_id, "LegJoined").await;
    let Event::LegJoined(joined) = joined else { unreachable!() };
    assert_eq!((joined.leg.as_str(), joined.language.as_deref()), ("callee", Some("fr")));
    assert_eq!(joined.channel_id, placed.channel_id);
    h.rtp_flowing(&placed.call_id, "callee").await;

    h.fake.hangup(&placed.channel_id).unwrap();
    h.until(&placed.call_id, "CallEnded").await;
    h.all_clean().await;

    // Asterisk refuses: the operator learns why, and nothing is left behind.
    let bad = Originate { endpoint: "nonsense".into(), ..request };
    let reply: Reply<Originated> = h.command(h.bus.subjects().control_originate(), &bad).await;
    let Reply::Error(error) = reply else { panic!("a bad endpoint was accepted") };
    assert_eq!(error.code, ErrorCode::BadRequest);
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_detection_is_enabled_per_leg_and_published() {
    let mut h = start(|config| config.ari.talk_detect = true).await;
    let placed = h.fake.place_inbound_call(InboundCall::new(APP, "100").answered()).unwrap();
    let call = call_id(&placed.channel_id);
    h.until(&call, "LegJoined").await;
    assert!(h.fake.talk_detect_enabled(&placed.channel_id));
    assert!(h.fake.talking_started(&placed.channel_id).unwrap());
    assert!(h.fake.talking_finished(&placed.channel_id, Duration::from_millis(1_500)).unwrap());
    let (first, _) = h.until(&call, "TalkingChanged").await;
    let (second, _) = h.until(&call, "TalkingChanged").await;
    let (Event::TalkingChanged(first), Event::TalkingChanged(second)) = (first, second) else { unreachable!() };
    assert!(first.talking && !second.talking);
    assert_eq!(second.duration_ms, Some(1_500));
    h.fake.hangup(&placed.channel_id).unwrap();
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_survive_a_dropped_socket_and_end_when_asterisk_restarts() {
    let mut h = start(|_| {}).await;
    let mut connected = h.gateway.connected();
    let placed = h.fake.place_inbound_call(InboundCall::new(APP, "100").answered()).unwrap();
    let call = call_id(&placed.channel_id);
    h.until(&call, "LegJoined").await;

    // The socket drops; the gateway reconnects and the call goes on.
    h.fake.drop_connections();
    within(10, connected.wait_for(|up| !*up)).await.unwrap();
    within(10, connected.wait_for(|up| *up)).await.unwrap();
    within(10, h.fake.wait_for_app(APP)).await;
    h.fake.send_dtmf(&placed.channel_id, '5').unwrap();
    let (dtmf, _) = h.until(&call, "DtmfReceived").await;
    assert!(matches!(dtmf, Event::DtmfReceived(d) if d.digit == "5"));
    assert_eq!(h.gateway.registry().len(), 1);

    // Asterisk restarts: every channel is gone, so the call ends once the gateway is back.
    h.fake.restart();
    let (ended, _) = h.until(&call, "CallEnded").await;
    let Event::CallEnded(ended) = ended else { unreachable!() };
    assert_eq!(ended.reason, "ended_while_disconnected");
    h.all_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_calls_hung_up_at_random_points_leak_nothing_even_with_faults() {
    let mut h = start(|config| config.ari.request_timeout_ms = 2_000).await;
    // One REST request in twenty fails, one frame in ten arrives twice, some frames are garbage.
    h.fake.set_faults(Faults {
        failure_probability: 0.05,
        failure_status: 500,
        duplicate_event_probability: 0.1,
        ..Faults::default()
    });
    const CALLS: usize = 200;
    let mut calls = Vec::new();
    for n in 0..CALLS {
        let mut call = InboundCall::new(APP, &format!("+3460000{n:04}")).variable("DRAGOMAN_LANGUAGE", "es");
        if n % 3 == 0 {
            call = call.variable("DRAGOMAN_DIAL", &format!("PJSIP/agent-{n}"));
        }
        if n % 2 == 0 {
            call = call.answered();
        }
        let placed = h.fake.place_inbound_call(call).unwrap();
        calls.push(placed.channel_id);
        if n % 25 == 0 {
            h.fake.inject_malformed_frame(APP);
        }
    }
    // Hang each up somewhere between "before the gateway saw it" and "well after setup".
    let hangups: Vec<_> = calls
        .iter()
        .map(|channel| {
            let (fake_channel, delay) = (channel.clone(), rand::rng().random_range(0..2_000u64));
            (fake_channel, Duration::from_millis(delay))
        })
        .collect();
    let fake = &h.fake;
    futures::future::join_all(hangups.into_iter().map(|(channel, delay)| async move {
        tokio::time::sleep(delay).await;
        // The far end may have been hung up already by a failed setup.
        let _ = fake.hangup(&channel);
    }))
    .await;

    let mut ended = std::collections::HashSet::new();
    let mut legs_joined = 0;
    let expected: std::collections::HashSet<String> = calls.iter().map(|c| call_id(c)).collect();
    within(60, async {
        while !expected.is_subset(&ended) {
            match h.next_event().await {
                Event::CallEnded(e) => {
                    assert!(ended.insert(e.meta.call_id.clone()), "{} ended twice", e.meta.call_id);
                }
                Event::LegJoined(_) => legs_joined += 1,
                _ => {}
            }
        }
    })
    .await;
    // Some calls got all the way through setup before their hang-up, some did not.
    assert!(legs_joined > 0, "no leg was ever set up");
    h.fake.set_faults(Faults::default());
    let counters = h.all_clean().await;
    assert!(counters.channels_created as usize > CALLS, "setups ran: {counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_asterisk_fails_setups_by_timeout_and_once_it_answers_nothing_is_left() {
    let mut h = start(|config| config.ari.request_timeout_ms = 300).await;
    // Asterisk stops answering while calls arrive; their setups time out.
    let placed: Vec<_> = (0..5)
        .map(|n| h.fake.place_inbound_call(InboundCall::new(APP, &format!("70{n}")).answered()).unwrap())
        .collect();
    h.fake.set_hung(true);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    h.fake.set_hung(false);
    for call in &placed {
        let _ = h.fake.hangup(&call.channel_id);
    }
    let expected: std::collections::HashSet<String> = placed.iter().map(|c| call_id(&c.channel_id)).collect();
    let mut ended = std::collections::HashSet::new();
    within(30, async {
        while !expected.is_subset(&ended) {
            if let Event::CallEnded(e) = h.next_event().await {
                ended.insert(e.meta.call_id);
            }
        }
    })
    .await;
    h.all_clean().await;
}
