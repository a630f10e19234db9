//! A fake Asterisk 22 ARI server for tests, benchmarks and demos, where no Asterisk can run.
//!
//! It serves the REST resources and the events WebSocket a call-control gateway uses, answers
//! with the status codes and bodies the ARI spec declares (checked against the vendored spec by
//! `tests/fake_ari_spec.rs`), imitates what a real Asterisk 22 does beyond the spec (replies
//! before events, snoops dying with their channel, `UNICASTRTP_LOCAL_*` variables, RTP from the
//! externalMedia socket) and lets a test drive the far end from Rust: place calls, press keys,
//! talk, hang up, drop the WebSocket, restart, inject faults, and count what is still alive.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dragoman_test_support::fake_ari::{FakeAri, InboundCall};
//!
//! let ari = FakeAri::start().await?;
//! // point the gateway at ari.http_url() / ari.events_url("dragoman"), user/password from ari
//! ari.wait_for_app("dragoman").await;
//! let call = ari.place_inbound_call(InboundCall::new("dragoman", "+4930123").variable("DRAGOMAN_LANGUAGE", "de"))?;
//! ari.speak(&call.channel_id, vec![1000; 16_000]);
//! ari.hangup(&call.channel_id)?;
//! assert_eq!(ari.counters().live_channels, 0);
//! # Ok(()) }
//! ```
//!
//! Layout: `state` holds channels, bridges, playbacks, applications and WebSocket connections
//! behind one mutex that is only held for short, await-free sections, and builds the JSON;
//! `rest` has the route table and the handlers; `events` the WebSocket; `media` the RTP sender.

mod events;
mod media;
mod rest;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use rest::{Route, routes};
use state::{Shared, Speech};

/// How the fake behaves; [`FakeAriConfig::default`] suits most tests.
#[derive(Debug, Clone)]
pub struct FakeAriConfig {
    /// ARI user (ari.conf `[user]`).
    pub username: String,
    /// Its password.
    pub password: String,
    /// How long after a REST reply the events it caused are sent. A real Asterisk answers
    /// first and sends the events about 2 ms later; clients must cope with that order.
    pub event_delay: Duration,
    /// How long a `sound:` playback lasts before PlaybackFinished.
    pub playback_duration: Duration,
    /// Address externalMedia RTP sockets bind to.
    pub media_ip: IpAddr,
    /// The Asterisk entity id (`asterisk_id` in every frame).
    pub asterisk_id: String,
}

impl Default for FakeAriConfig {
    fn default() -> Self {
        FakeAriConfig {
            username: "dragoman".into(),
            password: "dragoman-secret".into(),
            event_delay: Duration::from_millis(2),
            playback_duration: Duration::from_millis(200),
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            asterisk_id: "02:42:ac:11:00:02".into(),
        }
    }
}

/// Faults the fake injects into REST requests and event frames. Set with [`FakeAri::set_faults`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability (0..=1) that a REST request fails with `failure_status` instead of running.
    pub failure_probability: f64,
    /// The status of injected failures (500 when 0).
    pub failure_status: u16,
    /// Delay added to every REST request before it runs.
    pub latency: Duration,
    /// Probability (0..=1) that an event frame is sent twice.
    pub duplicate_event_probability: f64,
    /// Send ChannelHangupRequest twice on far-end hangups, as Asterisk 22 was seen doing for
    /// the `;2` half of a Local channel.
    pub duplicate_hangup_request: bool,
}

/// What the fake has done so far; see [`FakeAri::counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Channels that exist now (calls, snoops, externalMedia channels).
    pub live_channels: usize,
    /// Bridges that exist now.
    pub live_bridges: usize,
    /// Playbacks that have not finished.
    pub live_playbacks: usize,
    /// Channels created since start (not reset by restart).
    pub channels_created: u64,
    /// Bridges created since start.
    pub bridges_created: u64,
    /// REST requests answered (including injected failures and auth failures).
    pub requests_served: u64,
    /// Event frames queued to WebSockets.
    pub events_sent: u64,
    /// Events WebSocket connections accepted.
    pub websocket_connections: u64,
    /// RTP packets sent from externalMedia sockets.
    pub rtp_packets_sent: u64,
    /// RTP packets received on externalMedia sockets.
    pub rtp_packets_received: u64,
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeAriError {
    /// No events WebSocket is connected for this application, so Asterisk's `Stasis()` would fail.
    AppNotConnected(String),
    /// No such channel.
    ChannelNotFound(String),
    /// The argument is not valid (e.g. a DTMF digit outside 0-9, A-D, #, *).
    Invalid(String),
}

impl fmt::Display for FakeAriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FakeAriError::AppNotConnected(app) => write!(f, "stasis app {app} is not connected"),
            FakeAriError::ChannelNotFound(id) => write!(f, "channel {id} not found"),
            FakeAriError::Invalid(why) => write!(f, "invalid argument: {why}"),
        }
    }
}

impl std::error::Error for FakeAriError {}

/// An inbound call to place with [`FakeAri::place_inbound_call`]: a caller dialled `exten` in
/// `context`, and the dialplan ran `Stasis(app, args…)`.
#[derive(Debug, Clone)]
pub struct InboundCall {
    /// The Stasis application the call enters.
    pub app: String,
    /// Caller id number.
    pub caller_number: String,
    /// Caller id name.
    pub caller_name: String,
    /// Dialplan context of the call.
    pub context: String,
    /// Dialled extension.
    pub exten: String,
    /// Arguments of `Stasis()`, delivered in StasisStart's `args`.
    pub args: Vec<String>,
    /// Channel variables set by the dialplan (readable with `GET /channels/{id}/variable`).
    pub variables: BTreeMap<String, String>,
    /// Whether the dialplan answered before `Stasis()` (state `Up`), or the app must answer
    /// (state `Ring`).
    pub answered: bool,
    /// A second party, for a two-party call.
    pub peer: Option<PeerLeg>,
}

/// The second party of a two-party call: another channel in the same Stasis application
/// (e.g. the outbound leg the dialplan dialled), optionally already bridged with the caller.
#[derive(Debug, Clone)]
pub struct PeerLeg {
    /// Endpoint the peer channel is named after, e.g. `PJSIP/bob`.
    pub endpoint: String,
    /// Its number (the callee).
    pub number: String,
    /// Whether both legs are put into a mixing bridge, as a dialplan `Dial()` would connect them.
    pub bridged: bool,
}

impl InboundCall {
    /// A call from `caller_number` to extension `100` in `from-external`, not yet answered.
    pub fn new(app: &str, caller_number: &str) -> Self {
        InboundCall {
            app: app.to_owned(),
            caller_number: caller_number.to_owned(),
            caller_name: String::new(),
            context: "from-external".into(),
            exten: "100".into(),
            args: Vec::new(),
            variables: BTreeMap::new(),
            answered: false,
            peer: None,
        }
    }

    /// Sets a channel variable, e.g. `DRAGOMAN_LANGUAGE` or `DRAGOMAN_TARGETS`.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Adds a `Stasis()` argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Sets the dialled context and extension.
    pub fn dialled(mut self, context: &str, exten: &str) -> Self {
        self.context = context.to_owned();
        self.exten = exten.to_owned();
        self
    }

    /// Marks the call answered by the dialplan before it entered Stasis.
    pub fn answered(mut self) -> Self {
        self.answered = true;
        self
    }

    /// Adds a second party `PJSIP/<number>` in the same application, bridged with the caller
    /// when `bridged`.
    pub fn with_peer(mut self, number: &str, bridged: bool) -> Self {
        self.peer = Some(PeerLeg { endpoint: format!("PJSIP/{number}"), number: number.to_owned(), bridged });
        self
    }
}

/// The channels (and bridge) a placed call consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCall {
    /// The caller's channel.
    pub channel_id: String,
    /// The peer's channel, if the call has one.
    pub peer_channel_id: Option<String>,
    /// The bridge joining both, if they were bridged.
    pub bridge_id: Option<String>,
}

/// A running fake ARI server. Dropping it stops the server; media tasks end within one packet
/// time once their channel is gone.
#[derive(Debug)]
pub struct FakeAri {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAri {
    /// Starts a fake with the default configuration on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<FakeAri> {
        FakeAri::start_with(FakeAriConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0`.
    pub async fn start_with(config: FakeAriConfig) -> std::io::Result<FakeAri> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        FakeAri::serve(config, listener)
    }

    /// Serves on a listener the caller bound (e.g. a fixed port for a demo).
    pub fn serve(config: FakeAriConfig, listener: tokio::net::TcpListener) -> std::io::Result<FakeAri> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = rest::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "fake ari server stopped");
            }
        });
        Ok(FakeAri { shared, addr, server })
    }

    /// Stops the server and drops every WebSocket and channel.
    pub fn stop(self) {
        drop(self);
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// REST base URL, e.g. `http://127.0.0.1:40123/ari`.
    pub fn http_url(&self) -> String {
        format!("http://{}/ari", self.addr)
    }

    /// Events WebSocket URL for `app` (comma-separated for several), without credentials.
    pub fn events_url(&self, app: &str) -> String {
        format!("ws://{}/ari/events?app={app}&subscribeAll=false", self.addr)
    }

    /// The ARI user.
    pub fn username(&self) -> &str {
        &self.shared.config.username
    }

    /// The ARI password.
    pub fn password(&self) -> &str {
        &self.shared.config.password
    }

    /// `user:password`, for the `api_key` query parameter.
    pub fn api_key(&self) -> String {
        format!("{}:{}", self.shared.config.username, self.shared.config.password)
    }

    /// Waits until an events WebSocket is connected for `app`.
    pub async fn wait_for_app(&self, app: &str) {
        loop {
            let notified = self.shared.changed.notified();
            if self.shared.lock().app_connected(app) {
                return;
            }
            notified.await;
        }
    }

    /// Whether an events WebSocket is connected for `app` now.
    pub fn app_connected(&self, app: &str) -> bool {
        self.shared.lock().app_connected(app)
    }

    /// Places an inbound call: creates the caller's channel (and the peer's, and their bridge)
    /// and sends StasisStart for each to the application.
    pub fn place_inbound_call(&self, call: InboundCall) -> Result<PlacedCall, FakeAriError> {
        self.shared.lock().place_inbound_call(&self.shared, call)
    }

    /// The far end pressed `digit`: ChannelDtmfReceived (sent when the key is released).
    pub fn send_dtmf(&self, channel_id: &str, digit: char) -> Result<(), FakeAriError> {
        if !matches!(digit, '0'..='9' | 'A'..='D' | '#' | '*') {
            return Err(FakeAriError::Invalid(format!("dtmf digit {digit:?}")));
        }
        self.shared.lock().dtmf_received(&self.shared, channel_id, digit)
    }

    /// The party on `channel_id` started talking: ChannelTalkingStarted, only if the app set
    /// `TALK_DETECT(set)` on the channel. Returns whether an event was sent.
    pub fn talking_started(&self, channel_id: &str) -> Result<bool, FakeAriError> {
        self.shared.lock().talking(&self.shared, channel_id, None)
    }

    /// The party stopped talking after `duration`: ChannelTalkingFinished, only with TALK_DETECT.
    pub fn talking_finished(&self, channel_id: &str, duration: Duration) -> Result<bool, FakeAriError> {
        self.shared.lock().talking(&self.shared, channel_id, Some(duration))
    }

    /// What the party on `channel_id` says, as 16 kHz mono samples. Snoops with `spy=in` (or
    /// `both`) on the channel carry it, from its start, to the externalMedia channels bridged
    /// with them; silence follows.
    pub fn speak(&self, channel_id: &str, samples_16k: Vec<i16>) -> Result<(), FakeAriError> {
        let mut state = self.shared.lock();
        let generation = state.next_speech();
        let channel =
            state.channels.get_mut(channel_id).ok_or_else(|| FakeAriError::ChannelNotFound(channel_id.into()))?;
        channel.speech = Some(Speech { generation, samples: samples_16k.into() });
        Ok(())
    }

    /// Like [`FakeAri::speak`] with 8 kHz samples (e.g. an Asterisk prompt), upsampled.
    pub fn speak_8k(&self, channel_id: &str, samples_8k: &[i16]) -> Result<(), FakeAriError> {
        self.speak(channel_id, media::upsample_8k_to_16k(samples_8k))
    }

    /// The far end hung up `channel_id`: ChannelHangupRequest, the snoops watching it end
    /// (StasisEnd), then ChannelLeftBridge, StasisEnd and ChannelDestroyed for the channel.
    pub fn hangup(&self, channel_id: &str) -> Result<(), FakeAriError> {
        let mut state = self.shared.lock();
        if !state.channels.contains_key(channel_id) {
            return Err(FakeAriError::ChannelNotFound(channel_id.into()));
        }
        state.destroy_channel(&self.shared, channel_id, state::Hangup::far_end(), Duration::ZERO);
        Ok(())
    }

    /// Closes every events WebSocket abruptly (no close frame), as a network failure would.
    /// Channels and bridges stay.
    pub fn drop_connections(&self) {
        self.shared.lock().drop_connections();
        self.shared.changed.notify_waiters();
    }

    /// Simulates an Asterisk restart: WebSockets drop, every channel, bridge, playback and
    /// application is gone without events, and `/asterisk/info` reports a new startup time.
    pub fn restart(&self) {
        self.shared.lock().restart();
        self.shared.changed.notify_waiters();
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// Makes the next REST requests fail with these statuses, one each, before the random
    /// failures of [`Faults`] apply.
    pub fn fail_next_requests(&self, statuses: impl IntoIterator<Item = u16>) {
        self.shared.failures.lock().unwrap_or_else(|e| e.into_inner()).entry(None).or_default().extend(statuses);
    }

    /// Makes the next requests to one route fail with these statuses, one each, e.g.
    /// `fail_next_on("POST", "/channels/externalMedia", [500])`. The path is the template as in
    /// [`routes`] (`/channels/{channelId}/answer`). These apply before [`FakeAri::fail_next_requests`].
    pub fn fail_next_on(&self, method: &str, path_template: &str, statuses: impl IntoIterator<Item = u16>) {
        let key = Some((method.to_uppercase(), path_template.to_owned()));
        self.shared.failures.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().extend(statuses);
    }

    /// While hung, REST requests are accepted but not answered (until `set_hung(false)`), and
    /// no events are sent; they queue up and flow once the fake recovers.
    pub fn set_hung(&self, hung: bool) {
        self.shared.hung.send_replace(hung);
    }

    /// Sends a frame that is not valid JSON to the WebSocket of `app`. Returns how many
    /// connections got it (0 or 1).
    pub fn inject_malformed_frame(&self, app: &str) -> usize {
        self.inject_frame(app, "{\"type\": \"StasisStart\", \"application\": ")
    }

    /// Sends `text` as is to the WebSocket of `app`, after the events already queued: an event
    /// type the client does not know, a frame with missing fields, and so on. Returns how many
    /// connections got it (0 or 1).
    pub fn inject_frame(&self, app: &str, text: &str) -> usize {
        self.shared.lock().send_raw(app, text)
    }

    /// Counts of live and created objects and of traffic.
    pub fn counters(&self) -> Counters {
        let state = self.shared.lock();
        let stats = &self.shared.stats;
        Counters {
            live_channels: state.channels.len(),
            live_bridges: state.bridges.len(),
            live_playbacks: state.playbacks.len(),
            channels_created: stats.channels_created.load(Ordering::Relaxed),
            bridges_created: stats.bridges_created.load(Ordering::Relaxed),
            requests_served: stats.requests_served.load(Ordering::Relaxed),
            events_sent: stats.events_sent.load(Ordering::Relaxed),
            websocket_connections: stats.websocket_connections.load(Ordering::Relaxed),
            rtp_packets_sent: stats.rtp_packets_sent.load(Ordering::Relaxed),
            rtp_packets_received: stats.rtp_packets_received.load(Ordering::Relaxed),
        }
    }

    /// Ids of the channels that exist now.
    pub fn channel_ids(&self) -> Vec<String> {
        self.shared.lock().channels.keys().cloned().collect()
    }

    /// Ids of the bridges that exist now.
    pub fn bridge_ids(&self) -> Vec<String> {
        self.shared.lock().bridges.keys().cloned().collect()
    }

    /// A channel as `GET /channels/{id}` would show it.
    pub fn channel_json(&self, channel_id: &str) -> Option<serde_json::Value> {
        let state = self.shared.lock();
        state.channels.get(channel_id).map(|c| c.to_json(false))
    }

    /// The value of a channel variable, including those the application set.
    pub fn channel_variable(&self, channel_id: &str, name: &str) -> Option<String> {
        self.shared.lock().channels.get(channel_id)?.vars.get(name).cloned()
    }

    /// RTP packets received so far on the socket of an externalMedia channel (audio the
    /// application sends towards a party), or None if there is no such channel.
    pub fn rtp_packets_received(&self, channel_id: &str) -> Option<u64> {
        self.shared.lock().channels.get(channel_id).map(|c| c.rtp_received)
    }

    /// Whether the application enabled talk detection (`TALK_DETECT(set)`) on the channel.
    pub fn talk_detect_enabled(&self, channel_id: &str) -> bool {
        self.shared.lock().channels.get(channel_id).is_some_and(|c| c.talk_detect)
    }
}

impl Drop for FakeAri {
    fn drop(&mut self) {
        self.server.abort();
        self.shared.lock().restart();
    }
}
