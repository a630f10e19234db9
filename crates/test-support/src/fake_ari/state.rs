//! The fake's world: channels, bridges, playbacks, applications and WebSocket connections, and
//! the events that changes to them cause.
//!
//! Everything lives in one [`State`] behind a std mutex. It is only locked for short sections
//! without awaits; events are queued to each connection's unbounded channel while the lock is
//! held, so every connection sees events in the order the changes happened.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::{FakeAriConfig, FakeAriError, Faults, InboundCall, PlacedCall};

/// Asterisk's timestamp format: `2026-01-02T10:11:12.345+0000`.
pub(crate) fn ari_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// Statuses for the next requests: for any route (key `None`) or for one
/// `(method, path template)`.
pub(crate) type FailurePlan = HashMap<Option<(String, String)>, VecDeque<u16>>;

/// State shared by the server, its tasks and the control handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: FakeAriConfig,
    state: Mutex<State>,
    pub stats: Stats,
    pub faults: Mutex<Faults>,
    pub failures: Mutex<FailurePlan>,
    pub hung: watch::Sender<bool>,
    /// Woken when applications connect or disconnect.
    pub changed: Notify,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub channels_created: AtomicU64,
    pub bridges_created: AtomicU64,
    pub requests_served: AtomicU64,
    pub events_sent: AtomicU64,
    pub websocket_connections: AtomicU64,
    pub rtp_packets_sent: AtomicU64,
    pub rtp_packets_received: AtomicU64,
}

impl Shared {
    pub fn new(config: FakeAriConfig) -> Self {
        Shared {
            config,
            state: Mutex::new(State::new()),
            stats: Stats::default(),
            faults: Mutex::new(Faults::default()),
            failures: Mutex::new(HashMap::new()),
            hung: watch::channel(false).0,
            changed: Notify::new(),
        }
    }

    /// Locks the state. A panic while locked leaves consistent-enough data for a fake, so a
    /// poisoned lock is taken over rather than failing every later test step.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A frame queued for one WebSocket: JSON text, not to be sent before `not_before` (so that
/// REST replies go out before the events they cause).
#[derive(Debug)]
pub(crate) struct Outbound {
    pub text: String,
    pub not_before: Instant,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub tx: mpsc::UnboundedSender<Outbound>,
    pub subscribe_all: bool,
}

#[derive(Debug, Default)]
pub(crate) struct App {
    /// The connection that currently owns the application.
    pub conn: Option<u64>,
    /// Explicit subscriptions (`POST /applications/{app}/subscription`) and bridges the
    /// application's channels joined.
    pub channel_subs: BTreeSet<String>,
    pub bridge_subs: BTreeSet<String>,
}

/// Snoop and whisper directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    None,
    In,
    Out,
    Both,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Direction::None,
            "in" => Direction::In,
            "out" => Direction::Out,
            "both" => Direction::Both,
            _ => return None,
        })
    }
}

/// RTP formats the fake's externalMedia speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// 16 kHz signed linear, big-endian, payload type 118.
    Slin16,
    /// G.711 µ-law, 8 kHz, payload type 0.
    Ulaw,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A call leg (inbound, originated or created).
    Leg,
    /// `Snoop/…` watching `target`.
    Snoop { target: String, spy: Direction },
    /// `UnicastRTP/…` created by externalMedia (its socket lives in its media task).
    External,
}

/// What a party says: 16 kHz samples and a generation, so that each media stream knows when a
/// new utterance starts.
#[derive(Debug, Clone)]
pub(crate) struct Speech {
    pub generation: u64,
    pub samples: Arc<[i16]>,
}

#[derive(Debug)]
pub(crate) struct Channel {
    pub id: String,
    pub name: String,
    pub state: &'static str,
    pub caller: (String, String),
    pub connected: (String, String),
    pub context: String,
    pub exten: String,
    pub priority: i64,
    pub app_name: String,
    pub app_data: String,
    pub creationtime: DateTime<Utc>,
    pub language: String,
    /// The Stasis application the channel is in (and whose events it goes to).
    pub app: Option<String>,
    /// Whether it is in Stasis now (false after StasisEnd, for channels driven by the dialplan).
    pub in_stasis: bool,
    pub vars: BTreeMap<String, String>,
    pub bridge: Option<String>,
    pub kind: Kind,
    pub talk_detect: bool,
    /// RTP packets received on an externalMedia channel's socket.
    pub rtp_received: u64,
    pub speech: Option<Speech>,
}

impl Channel {
    /// The channel as ARI's `Channel` model; `channelvars` only where Asterisk includes them
    /// (the externalMedia reply).
    pub fn to_json(&self, with_vars: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "protocol_id": "",
            "name": self.name,
            "state": self.state,
            "caller": {"name": self.caller.0, "number": self.caller.1},
            "connected": {"name": self.connected.0, "number": self.connected.1},
            "accountcode": "",
            "dialplan": {
                "context": self.context, "exten": self.exten, "priority": self.priority,
                "app_name": self.app_name, "app_data": self.app_data,
            },
            "creationtime": ari_time(self.creationtime),
            "language": self.language,
        });
        if with_vars {
            v["channelvars"] = json!(self.vars);
        }
        v
    }

    fn is_snoop(&self) -> bool {
        matches!(self.kind, Kind::Snoop { .. })
    }
}

#[derive(Debug)]
pub(crate) struct Bridge {
    pub id: String,
    pub name: String,
    pub bridge_type: String,
    pub creator: String,
    pub channels: Vec<String>,
    pub creationtime: DateTime<Utc>,
}

impl Bridge {
    pub fn to_json(&self) -> Value {
        // Asterisk runs a mixing bridge of one or two channels as simple_bridge and switches to
        // softmix when a third joins; holding bridges are always holding_bridge.
        let technology = match (self.bridge_type.as_str(), self.channels.len()) {
            ("holding", _) => "holding_bridge",
            (_, 0..=2) => "simple_bridge",
            _ => "softmix",
        };
        json!({
            "id": self.id,
            "technology": technology,
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": self.creator,
            "name": self.name,
            "channels": self.channels,
            "creationtime": ari_time(self.creationtime),
            "video_mode": "talker",
        })
    }
}

#[derive(Debug)]
pub(crate) struct Playback {
    pub id: String,
    pub media_uri: String,
    pub target_uri: String,
    pub language: String,
    pub state: &'static str,
    /// Channel or bridge whose application hears about it.
    pub target_channel: Option<String>,
    pub target_bridge: Option<String>,
}

impl Playback {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "media_uri": self.media_uri, "target_uri": self.target_uri,
            "language": self.language, "state": self.state,
        })
    }
}

/// How a channel ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hangup {
    pub cause: i64,
    /// Whether the far end asked (ChannelHangupRequest is sent) rather than the application.
    pub request: bool,
}

impl Hangup {
    pub fn far_end() -> Self {
        Hangup { cause: 16, request: true }
    }

    /// The Q.850 cause of a `reason` of `DELETE /channels/{id}`.
    pub fn reason(reason: &str) -> Option<i64> {
        Some(match reason {
            "normal" => 16,
            "busy" => 17,
            "congestion" => 34,
            "no_answer" => 19,
            "timeout" => 18,
            "rejected" => 21,
            "unallocated" => 1,
            "normal_unspecified" => 31,
            "number_incomplete" => 28,
            "codec_mismatch" => 58,
            "interworking" => 127,
            "failure" => 38,
            "answered_elsewhere" => 26,
            _ => return None,
        })
    }
}

fn cause_text(cause: i64) -> &'static str {
    match cause {
        1 => "Unallocated (unassigned) number",
        16 => "Normal Clearing",
        17 => "User busy",
        18 => "No user responding",
        19 => "User alerting, no answer",
        21 => "Call Rejected",
        26 => "Answered elsewhere",
        28 => "Invalid number format (addr incomplete)",
        31 => "Normal, unspecified",
        34 => "Circuit/channel congestion",
        38 => "Network out of order",
        58 => "Bearer capability not available",
        127 => "Interworking, unspecified",
        _ => "Unknown",
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub channels: HashMap<String, Channel>,
    pub bridges: HashMap<String, Bridge>,
    pub playbacks: HashMap<String, Playback>,
    pub apps: BTreeMap<String, App>,
    pub conns: HashMap<u64, Conn>,
    pub startup_time: DateTime<Utc>,
    pub last_reload_time: DateTime<Utc>,
    next_id: u64,
}

/// Which applications an event concerns.
#[derive(Debug, Default)]
pub(crate) struct Audience {
    pub channels: Vec<String>,
    pub bridges: Vec<String>,
    /// Deliver only to `subscribeAll` connections (e.g. ChannelDestroyed of a snoop).
    pub subscribe_all_only: bool,
}

impl Audience {
    pub fn channel(id: &str) -> Self {
        Audience { channels: vec![id.to_owned()], ..Default::default() }
    }
}

impl State {
    fn new() -> Self {
        let now = Utc::now();
        State {
            channels: HashMap::new(),
            bridges: HashMap::new(),
            playbacks: HashMap::new(),
            apps: BTreeMap::new(),
            conns: HashMap::new(),
            startup_time: now,
            last_reload_time: now,
            next_id: 1,
        }
    }

    /// A unique number for names and ids.
    pub fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn next_speech(&mut self) -> u64 {
        self.next()
    }

    /// A channel id as Asterisk makes them: `<startup epoch>.<counter>`.
    pub fn new_channel_id(&mut self) -> String {
        let n = self.next();
        format!("{}.{n}", self.startup_time.timestamp())
    }

    pub fn app_connected(&self, app: &str) -> bool {
        self.apps.get(app).and_then(|a| a.conn).is_some_and(|c| self.conns.contains_key(&c))
    }

    /// Queues an event to every application it concerns. `delay` holds it back after the
    /// REST reply that caused it.
    pub fn emit(
        &mut self,
        shared: &Shared,
        event_type: &str,
        mut body: Map<String, Value>,
        to: Audience,
        delay: Duration,
    ) {
        body.insert("type".into(), event_type.into());
        body.insert("timestamp".into(), ari_time(Utc::now()).into());
        body.insert("asterisk_id".into(), shared.config.asterisk_id.clone().into());
        let mut apps = BTreeSet::new();
        if !to.subscribe_all_only {
            for id in &to.channels {
                if let Some(app) = self.channels.get(id).and_then(|c| c.app.clone()) {
                    apps.insert(app);
                }
            }
            for (name, app) in &self.apps {
                if to.channels.iter().any(|c| app.channel_subs.contains(c))
                    || to.bridges.iter().any(|b| app.bridge_subs.contains(b))
                {
                    apps.insert(name.clone());
                }
            }
        }
        for (name, app) in &self.apps {
            if app.conn.and_then(|c| self.conns.get(&c)).is_some_and(|c| c.subscribe_all) {
                apps.insert(name.clone());
            }
        }
        let duplicate = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).duplicate_event_probability;
        let not_before = Instant::now() + delay;
        for app in apps {
            let Some(conn) = self.apps.get(&app).and_then(|a| a.conn).and_then(|c| self.conns.get(&c)) else {
                continue;
            };
            body.insert("application".into(), app.clone().into());
            let text = Value::Object(body.clone()).to_string();
            let copies = if duplicate > 0.0 && rand::random_bool(duplicate.min(1.0)) { 2 } else { 1 };
            for _ in 0..copies {
                if conn.tx.send(Outbound { text: text.clone(), not_before }).is_ok() {
                    shared.stats.events_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Sends `text` as is to the connection of `app`.
    pub fn send_raw(&self, app: &str, text: &str) -> usize {
        let conn = self.apps.get(app).and_then(|a| a.conn).and_then(|c| self.conns.get(&c));
        let frame = Outbound { text: text.to_owned(), not_before: Instant::now() };
        usize::from(conn.is_some_and(|c| c.tx.send(frame).is_ok()))
    }

    /// A channel event with `channel` and extra fields.
    pub fn emit_channel(&mut self, shared: &Shared, event_type: &str, id: &str, extra: Value, delay: Duration) {
        let Some(channel) = self.channels.get(id) else { return };
        let mut body = extra.as_object().cloned().unwrap_or_default();
        body.insert("channel".into(), channel.to_json(false));
        self.emit(shared, event_type, body, Audience::channel(id), delay);
    }

    /// Creates a channel in `app` and counts it.
    #[allow(clippy::too_many_arguments)]
    pub fn add_channel(
        &mut self,
        shared: &Shared,
        id: String,
        name: String,
        app: Option<&str>,
        state: &'static str,
        caller: (String, String),
        kind: Kind,
    ) -> String {
        let (context, exten, app_name, app_data) = match app {
            Some(app) => ("default".to_owned(), "s".to_owned(), "Stasis".to_owned(), app.to_owned()),
            None => ("default".to_owned(), "s".to_owned(), String::new(), String::new()),
        };
        let channel = Channel {
            id: id.clone(),
            name,
            state,
            caller,
            connected: (String::new(), String::new()),
            context,
            exten,
            priority: 1,
            app_name,
            app_data,
            creationtime: Utc::now(),
            language: "en".into(),
            app: app.map(str::to_owned),
            in_stasis: app.is_some(),
            vars: BTreeMap::new(),
            bridge: None,
            kind,
            talk_detect: false,
            rtp_received: 0,
            speech: None,
        };
        self.channels.insert(id.clone(), channel);
        shared.stats.channels_created.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// StasisStart for a channel that entered its application.
    pub fn stasis_start(&mut self, shared: &Shared, id: &str, args: &[String], delay: Duration) {
        if let Some(channel) = self.channels.get_mut(id) {
            let app = channel.app.clone().unwrap_or_default();
            channel.app_name = "Stasis".into();
            channel.app_data = std::iter::once(app).chain(args.iter().cloned()).collect::<Vec<_>>().join(",");
        }
        self.emit_channel(shared, "StasisStart", id, json!({"args": args}), delay);
    }

    pub fn add_bridge(&mut self, shared: &Shared, id: String, bridge_type: &str, name: &str) -> String {
        let bridge = Bridge {
            id: id.clone(),
            name: name.to_owned(),
            bridge_type: bridge_type.to_owned(),
            creator: "Stasis".into(),
            channels: Vec::new(),
            creationtime: Utc::now(),
        };
        self.bridges.insert(id.clone(), bridge);
        shared.stats.bridges_created.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// Puts a channel into a bridge: ChannelEnteredBridge. The channel's application starts
    /// hearing about the bridge.
    pub fn enter_bridge(&mut self, shared: &Shared, bridge_id: &str, channel_id: &str, delay: Duration) {
        let Some(bridge) = self.bridges.get_mut(bridge_id) else { return };
        let Some(channel) = self.channels.get_mut(channel_id) else { return };
        bridge.channels.push(channel_id.to_owned());
        channel.bridge = Some(bridge_id.to_owned());
        if let Some(app) = channel.app.clone() {
            self.apps.entry(app).or_default().bridge_subs.insert(bridge_id.to_owned());
        }
        let body = self.bridge_event_body(bridge_id, channel_id);
        let to = Audience {
            channels: vec![channel_id.to_owned()],
            bridges: vec![bridge_id.to_owned()],
            ..Default::default()
        };
        self.emit(shared, "ChannelEnteredBridge", body, to, delay);
    }

    /// Takes a channel out of its bridge: ChannelLeftBridge.
    pub fn leave_bridge(&mut self, shared: &Shared, channel_id: &str, delay: Duration) {
        let Some(bridge_id) = self.channels.get_mut(channel_id).and_then(|c| c.bridge.take()) else { return };
        if let Some(bridge) = self.bridges.get_mut(&bridge_id) {
            bridge.channels.retain(|c| c != channel_id);
        }
        let body = self.bridge_event_body(&bridge_id, channel_id);
        let to = Audience { channels: vec![channel_id.to_owned()], bridges: vec![bridge_id], ..Default::default() };
        self.emit(shared, "ChannelLeftBridge", body, to, delay);
    }

    fn bridge_event_body(&self, bridge_id: &str, channel_id: &str) -> Map<String, Value> {
        let mut body = Map::new();
        if let Some(bridge) = self.bridges.get(bridge_id) {
            body.insert("bridge".into(), bridge.to_json());
        }
        if let Some(channel) = self.channels.get(channel_id) {
            body.insert("channel".into(), channel.to_json(false));
        }
        body
    }

    /// Ends a channel the way Asterisk does: HangupRequest (far-end hangups only), the snoops
    /// watching it end first, then ChannelLeftBridge, StasisEnd and ChannelDestroyed. A snoop's
    /// ChannelDestroyed only reaches `subscribeAll` connections, as observed on Asterisk 22.
    pub fn destroy_channel(&mut self, shared: &Shared, id: &str, hangup: Hangup, delay: Duration) {
        if !self.channels.contains_key(id) {
            return;
        }
        if hangup.request {
            let twice = shared.faults.lock().unwrap_or_else(|e| e.into_inner()).duplicate_hangup_request;
            for _ in 0..if twice { 2 } else { 1 } {
                self.emit_channel(shared, "ChannelHangupRequest", id, json!({"cause": hangup.cause}), delay);
            }
        }
        let snoops: Vec<String> = self
            .channels
            .values()
            .filter(|c| matches!(&c.kind, Kind::Snoop { target, .. } if target == id))
            .map(|c| c.id.clone())
            .collect();
        for snoop in snoops {
            self.destroy_channel(shared, &snoop, Hangup { cause: 16, request: false }, delay);
        }
        self.leave_bridge(shared, id, delay);
        let Some(channel) = self.channels.get(id) else { return };
        let (snoop, in_stasis) = (channel.is_snoop(), channel.in_stasis);
        if in_stasis {
            self.emit_channel(shared, "StasisEnd", id, json!({}), delay);
        }
        let cause = hangup.cause;
        let destroyed = json!({"cause": cause, "cause_txt": cause_text(cause)});
        let mut body = destroyed.as_object().cloned().unwrap_or_default();
        if let Some(channel) = self.channels.get(id) {
            body.insert("channel".into(), channel.to_json(false));
        }
        let to = Audience { subscribe_all_only: snoop, ..Audience::channel(id) };
        self.emit(shared, "ChannelDestroyed", body, to, delay);
        self.channels.remove(id);
        for app in self.apps.values_mut() {
            app.channel_subs.remove(id);
        }
        self.playbacks.retain(|_, p| p.target_channel.as_deref() != Some(id));
    }

    /// Deletes a bridge: its channels leave it, then BridgeDestroyed.
    pub fn destroy_bridge(&mut self, shared: &Shared, id: &str, delay: Duration) {
        let members = self.bridges.get(id).map(|b| b.channels.clone()).unwrap_or_default();
        for channel in members {
            self.leave_bridge(shared, &channel, delay);
        }
        let Some(bridge) = self.bridges.get(id) else { return };
        let mut body = Map::new();
        body.insert("bridge".into(), bridge.to_json());
        let to = Audience { bridges: vec![id.to_owned()], ..Default::default() };
        self.emit(shared, "BridgeDestroyed", body, to, delay);
        self.bridges.remove(id);
        for app in self.apps.values_mut() {
            app.bridge_subs.remove(id);
        }
        self.playbacks.retain(|_, p| p.target_bridge.as_deref() != Some(id));
    }

    pub fn place_inbound_call(&mut self, shared: &Shared, call: InboundCall) -> Result<PlacedCall, FakeAriError> {
        if !self.app_connected(&call.app) {
            return Err(FakeAriError::AppNotConnected(call.app));
        }
        let state = if call.answered { "Up" } else { "Ring" };
        let id = self.new_channel_id();
        let n = self.next();
        let name = format!("PJSIP/{}-{n:08x}", call.caller_number.trim_start_matches('+'));
        let caller = (call.caller_name.clone(), call.caller_number.clone());
        self.add_channel(shared, id.clone(), name, Some(&call.app), state, caller, Kind::Leg);
        if let Some(channel) = self.channels.get_mut(&id) {
            channel.context = call.context.clone();
            channel.exten = call.exten.clone();
            channel.priority = 2;
            channel.vars = call.variables.clone();
            if let Some(peer) = &call.peer {
                channel.connected = (String::new(), peer.number.clone());
            }
        }
        self.stasis_start(shared, &id, &call.args, Duration::ZERO);
        let mut placed = PlacedCall { channel_id: id.clone(), peer_channel_id: None, bridge_id: None };
        if let Some(peer) = call.peer {
            let peer_id = self.new_channel_id();
            let n = self.next();
            let name = format!("{}-{n:08x}", peer.endpoint);
            let caller = (String::new(), peer.number.clone());
            self.add_channel(shared, peer_id.clone(), name, Some(&call.app), "Up", caller, Kind::Leg);
            if let Some(channel) = self.channels.get_mut(&peer_id) {
                channel.connected = (call.caller_name.clone(), call.caller_number.clone());
                channel.vars = call.variables;
            }
            self.stasis_start(shared, &peer_id, &call.args, Duration::ZERO);
            if peer.bridged {
                let bridge_id = self.add_bridge(shared, uuid::Uuid::new_v4().to_string(), "mixing", "");
                self.enter_bridge(shared, &bridge_id, &id, Duration::ZERO);
                self.enter_bridge(shared, &bridge_id, &peer_id, Duration::ZERO);
                placed.bridge_id = Some(bridge_id);
            }
            placed.peer_channel_id = Some(peer_id);
        }
        Ok(placed)
    }

    pub fn dtmf_received(&mut self, shared: &Shared, id: &str, digit: char) -> Result<(), FakeAriError> {
        if !self.channels.contains_key(id) {
            return Err(FakeAriError::ChannelNotFound(id.into()));
        }
        let extra = json!({"digit": digit.to_string(), "duration_ms": 100});
        self.emit_channel(shared, "ChannelDtmfReceived", id, extra, Duration::ZERO);
        Ok(())
    }

    pub fn talking(&mut self, shared: &Shared, id: &str, finished: Option<Duration>) -> Result<bool, FakeAriError> {
        let channel = self.channels.get(id).ok_or_else(|| FakeAriError::ChannelNotFound(id.into()))?;
        if !channel.talk_detect {
            return Ok(false);
        }
        match finished {
            None => self.emit_channel(shared, "ChannelTalkingStarted", id, json!({}), Duration::ZERO),
            Some(duration) => {
                let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
                self.emit_channel(shared, "ChannelTalkingFinished", id, json!({"duration": ms}), Duration::ZERO);
            }
        }
        Ok(true)
    }

    /// Forgets every connection; their writer tasks see the channel close and drop the socket
    /// without a close frame.
    pub fn drop_connections(&mut self) {
        self.conns.clear();
        for app in self.apps.values_mut() {
            app.conn = None;
        }
    }

    pub fn restart(&mut self) {
        self.drop_connections();
        self.channels.clear();
        self.bridges.clear();
        self.playbacks.clear();
        self.apps.clear();
        self.startup_time = Utc::now();
        self.last_reload_time = self.startup_time;
    }
}
