//! The ARI gateway: the only service that talks to Asterisk. It follows the Stasis
//! application's events, sets up each call so that every party's voice reaches media ingest
//! as its own RTP stream, and publishes the call's life on the bus (CallStarted, LegJoined,
//! LanguageChanged, DtmfReceived, TalkingChanged, CallEnded). It also serves the operator's
//! commands (originate, hang up, set a leg's language).
//!
//! Layout: [`run`] builds an [`AriClient`] and a [`Gateway`], whose [`Gateway::serve`] reads
//! the events connection (which reconnects by itself) and routes each event through the
//! [`registry`] to its call's task ([`call`]). After a reconnect it resynchronises: calls
//! whose parties are gone end, and this application's leftover audio helpers (snoops,
//! externalMedia channels and their bridges, see [`call::is_own_audio_helper`]) that no call
//! owns are removed. [`language`] reads the dialplan's
//! variables and the DTMF menu.

pub mod call;
pub mod language;
pub mod registry;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dragoman_ari::events::StasisStart;
use dragoman_ari::{AriClient, ConnectionState, Event as AriEvent, EventsConfig, Incoming};
use dragoman_bus::control::{ControlError, Done, ErrorCode, Hangup, Originate, Originated, Reply, SetLanguage};
use dragoman_bus::subjects::{GATEWAY_QUEUE_GROUP, call_id_from_linkedid};
use dragoman_bus::{Bus, Message, wire};
use dragoman_runtime::{Config, Shutdown};
use futures::StreamExt as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::call::{Call, Input, Shared, Start};
use crate::language::DtmfMenu;
use crate::registry::Registry;

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "ari-gateway";

/// The channel variable (ari.conf `channelvars`) that names a call's conversation across
/// transfers; without it, the first channel's id is the call id.
pub const LINKEDID_VARIABLE: &str = "CHANNEL(linkedid)";

/// How long an operator's originate may ring when the request names no timeout.
const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(45);

/// Checks the gateway may start: ARI credentials must be set (there is no default password).
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if config.ari.password.as_ref().is_none_or(|password| password.is_empty()) {
        anyhow::bail!(
            "no ARI password configured: set ari.password (DRAGOMAN_ARI__PASSWORD) to the password of ari.username \
             in Asterisk's ari.conf; there is no default"
        );
    }
    Ok(())
}

/// The ARI client `config.ari` describes.
pub fn client(config: &Config) -> anyhow::Result<AriClient> {
    let ari = &config.ari;
    let password = ari.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default();
    let mut client_config = dragoman_ari::AriConfig::new(&ari.url, &ari.username, password)
        .request_timeout(Duration::from_millis(ari.request_timeout_ms));
    if ari.api_key_auth {
        client_config = client_config.api_key_auth();
    }
    AriClient::new(client_config).context("ari client")
}

/// Runs the gateway until shutdown.
pub async fn run(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    check_config(&config)?;
    let client = client(&config)?;
    let gateway = Gateway::new(&config, client, bus)?;
    let connected = gateway.connected();
    dragoman_runtime::ops::Readiness::process().add("asterisk", move || {
        if *connected.borrow() { Ok(()) } else { Err("the ARI events connection is down".into()) }
    });
    gateway.serve(shutdown).await
}

/// The gateway: the shared parts every call uses.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    connected: watch::Sender<bool>,
}

impl Gateway {
    pub fn new(config: &Config, client: AriClient, bus: Bus) -> anyhow::Result<Self> {
        let format = config.ari.media_format.parse().map_err(|err: String| anyhow::anyhow!("ari.media_format: {err}"))?;
        let shared = Shared {
            client,
            bus,
            registry: Registry::default(),
            menu: DtmfMenu::new(&config.ari.dtmf_menu),
            config: config.ari.clone(),
            format,
            allocate_timeout: config.bus.request_timeout(),
            recheck_after: Duration::from_millis(config.ari.request_timeout_ms) * 2,
        };
        Ok(Self { shared: Arc::new(shared), connected: watch::channel(false).0 })
    }

    /// The live calls' registry (tests and benchmarks count calls with it).
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Whether the events connection to Asterisk is up.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.subscribe()
    }

    /// Follows Asterisk's events and serves the operator's commands until shutdown; then every
    /// call's transcription is torn down (the calls themselves go on).
    pub async fn serve(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let commands = self.commands(&shutdown).await?;
        let config = &self.shared.config;
        let events_config = EventsConfig::new(&config.app)
            .backoff(Duration::from_millis(config.reconnect_initial_ms), Duration::from_millis(config.reconnect_max_ms));
        let mut events = self.shared.client.events(events_config, shutdown.child_token());
        let mut state = events.state();
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        metrics::gauge!("dragoman_gateway_asterisk_connected").set(0.0);
        loop {
            let item = tokio::select! {
                () = &mut stop => break,
                item = events.recv() => item,
            };
            match item {
                Some(Incoming::Connected) => {
                    tracing::info!(app = %config.app, "connected to Asterisk");
                    metrics::gauge!("dragoman_gateway_asterisk_connected").set(1.0);
                    self.connected.send_replace(true);
                    let gateway = self.clone();
                    tokio::spawn(async move { gateway.resync().await });
                }
                Some(Incoming::Disconnected { reason }) => {
                    tracing::warn!(reason = %reason, "lost the connection to Asterisk; reconnecting");
                    metrics::gauge!("dragoman_gateway_asterisk_connected").set(0.0);
                    self.connected.send_replace(false);
                }
                Some(Incoming::Event(event)) => self.dispatch(event),
                None => {
                    if *state.borrow_and_update() != ConnectionState::Stopped {
                        tracing::warn!("the events connection stopped");
                    }
                    break;
                }
            }
        }
        commands.abort();
        self.stop_calls().await;
        Ok(())
    }

    /// Routes one event to its call, or starts a call for a new channel in the application.
    fn dispatch(&self, event: AriEvent) {
        metrics::counter!("dragoman_gateway_ari_events_total").increment(1);
        if let AriEvent::StasisStart(start) = &event
            && !self.shared.registry.knows_channel(&start.channel.id)
        {
            return self.stasis_start(start);
        }
        let Some(channel) = event.channel_id() else { return };
        match self.shared.registry.by_channel(channel) {
            Some(inbox) => {
                // A call's task only ends after removing itself from the registry; an event that
                // races with that end has nothing left to do.
                let _ = inbox.send(Input::Ari(Box::new(event)));
            }
            None => {
                metrics::counter!("dragoman_gateway_ari_events_unrouted_total").increment(1);
                tracing::debug!(event = event.type_name(), channel, "event for a channel no call owns");
            }
        }
    }

    fn stasis_start(&self, start: &StasisStart) {
        let channel = &start.channel;
        if channel.id.starts_with(call::ID_PREFIX) || start.args.iter().any(|arg| arg.starts_with("dragoman-")) {
            // A channel this gateway made whose call is gone (a helper created just before its
            // call ended, or an operator's call answered after a restart): remove it.
            metrics::counter!("dragoman_gateway_orphans_removed_total").increment(1);
            let (client, id) = (self.shared.client.clone(), channel.id.clone());
            tokio::spawn(async move {
                let _ = client.hangup(&id, None).await;
            });
            return;
        }
        let linked = channel.channel_var(LINKEDID_VARIABLE).unwrap_or(&channel.id);
        let call_id = call_id_from_linkedid(linked);
        if let Some(inbox) = self.shared.registry.join(&call_id, &channel.id) {
            // The same conversation (a transfer, or the other half of a dialled call).
            let _ = inbox.send(Input::Join(Box::new(channel.clone())));
            return;
        }
        let start = Start::Inbound { channel: Box::new(channel.clone()), args: start.args.clone() };
        if !self.spawn_call(call_id.clone(), &channel.id, start) {
            tracing::warn!(call = %call_id, channel = %channel.id, "a call with this id is already running; channel ignored");
        }
    }

    fn spawn_call(&self, call_id: String, channel_id: &str, start: Start) -> bool {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        if !self.shared.registry.add_call(&call_id, channel_id, inbox_tx) {
            return false;
        }
        metrics::counter!("dragoman_gateway_calls_total").increment(1);
        let call = Call::new(call_id, self.shared.clone(), inbox);
        tokio::spawn(call.run(start));
        true
    }

    /// After (re)connecting: calls whose parties no longer exist end; helper channels and
    /// bridges no call owns are removed (left by a call that ended while disconnected, or by
    /// an earlier run of the gateway).
    async fn resync(&self) {
        let client = &self.shared.client;
        let listed_at = std::time::Instant::now();
        let channels = match client.list_channels().await {
            Ok(channels) => channels,
            Err(err) => {
                tracing::warn!(error = %err, "could not list channels to resynchronise");
                return;
            }
        };
        let live: Arc<HashSet<String>> = Arc::new(channels.iter().map(|c| c.id.clone()).collect());
        for inbox in self.shared.registry.calls() {
            let _ = inbox.send(Input::Resync { live: live.clone(), listed_at });
        }
        let registry = &self.shared.registry;
        let app = &self.shared.config.app;
        for channel in channels.iter().filter(|c| call::is_own_audio_helper(app, &c.id) && !registry.knows_channel(&c.id)) {
            metrics::counter!("dragoman_gateway_orphans_removed_total").increment(1);
            if let Err(err) = client.hangup(&channel.id, None).await
                && !err.is_not_found()
            {
                tracing::warn!(channel = %channel.id, error = %err, "could not remove a leftover helper channel");
            }
        }
        match client.list_bridges().await {
            Ok(bridges) => {
                for bridge in bridges.iter().filter(|b| call::is_own_audio_helper(app, &b.id) && !registry.knows_bridge(&b.id)) {
                    metrics::counter!("dragoman_gateway_orphans_removed_total").increment(1);
                    if let Err(err) = client.destroy_bridge(&bridge.id).await
                        && !err.is_not_found()
                    {
                        tracing::warn!(bridge = %bridge.id, error = %err, "could not remove a leftover bridge");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not list bridges to resynchronise"),
        }
    }

    /// Tells every call the gateway stops and waits (within reason) for their teardown.
    async fn stop_calls(&self) {
        for inbox in self.shared.registry.calls() {
            let _ = inbox.send(Input::Shutdown);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !self.shared.registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Serves originate (one gateway of the queue group takes each) and hang-up and
    /// set-language (every gateway hears them; the one that owns the call answers).
    async fn commands(&self, shutdown: &Shutdown) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let subjects = self.shared.bus.subjects().clone();
        let bus = &self.shared.bus;
        let mut originate = bus.queue_subscribe(&subjects.control_originate(), GATEWAY_QUEUE_GROUP).await?;
        let mut hangup = bus.subscribe(&subjects.control_hangup()).await?;
        let mut set_language = bus.subscribe(&subjects.control_set_language()).await?;
        let gateway = self.clone();
        Ok(shutdown.spawn(async move {
            loop {
                tokio::select! {
                    Some(message) = originate.next() => {
                        let gateway = gateway.clone();
                        tokio::spawn(async move { gateway.originate(message).await });
                    }
                    Some(message) = hangup.next() => gateway.hangup(message).await,
                    Some(message) = set_language.next() => gateway.set_language(message).await,
                    else => return,
                }
            }
        }))
    }

    async fn originate(&self, message: Message) {
        let reply = match wire::decode::<Originate>(&message.payload) {
            Ok(request) => self.place(request).await,
            Err(err) => Err(ControlError::new(ErrorCode::BadRequest, format!("unreadable originate: {err}"))),
        };
        self.respond(&message, reply.into()).await;
    }

    async fn place(&self, request: Originate) -> Result<Originated, ControlError> {
        let call_id = call_id_from_linkedid(&uuid::Uuid::now_v7().to_string());
        let channel_id = call::helper_id(&self.shared.config.app, "out");
        let ring = request.timeout_s.map_or(DEFAULT_RING_TIMEOUT, |s| Duration::from_secs(u64::from(s)));
        let start = Start::Outbound {
            channel_id: channel_id.clone(),
            endpoint: request.endpoint.clone(),
            language: request.callee.clone(),
            ring_timeout: ring + Duration::from_secs(5),
        };
        // The call's task exists before the request, so the answer's events find it.
        if !self.spawn_call(call_id.clone(), &channel_id, start) {
            return Err(ControlError::new(ErrorCode::Internal, "call id collision"));
        }
        let mut originate = dragoman_ari::Originate::to_app(&request.endpoint, &self.shared.config.app)
            .channel_id(&channel_id)
            .app_args("dragoman-outbound")
            .timeout_s(i64::from(request.timeout_s.unwrap_or(DEFAULT_RING_TIMEOUT.as_secs() as u32)));
        if let Some(caller_id) = &request.caller_id {
            originate = originate.caller_id(caller_id);
        }
        match self.shared.client.originate(&originate).await {
            Ok(channel) => Ok(Originated { call_id, channel_id: channel.id }),
            Err(err) => {
                if let Some(inbox) = self.shared.registry.by_call(&call_id) {
                    let _ = inbox.send(Input::End("originate_failed".into()));
                }
                let code = match err.status() {
                    Some(400) => ErrorCode::BadRequest,
                    _ => ErrorCode::Upstream,
                };
                Err(ControlError::new(code, format!("asterisk refused to originate to {}: {err}", request.endpoint)))
            }
        }
    }

    async fn hangup(&self, message: Message) {
        let request = match wire::decode::<Hangup>(&message.payload) {
            Ok(request) => request,
            Err(err) => return self.respond(&message, Reply::<Done>::Error(unreadable("hang-up", &err))).await,
        };
        let Some(inbox) = self.shared.registry.by_call(&request.call_id) else { return };
        let (reply, answer) = oneshot::channel();
        if inbox.send(Input::Hangup { reply }).is_err() {
            return;
        }
        let gateway = self.clone();
        tokio::spawn(async move {
            let result = answer.await.unwrap_or_else(|_| Err(ended()));
            gateway.respond(&message, result.map(|()| Done {}).into()).await;
        });
    }

    async fn set_language(&self, message: Message) {
        let request = match wire::decode::<SetLanguage>(&message.payload) {
            Ok(request) => request,
            Err(err) => return self.respond(&message, Reply::<Done>::Error(unreadable("set-language", &err))).await,
        };
        let Some(inbox) = self.shared.registry.by_call(&request.call_id) else { return };
        let (reply, answer) = oneshot::channel();
        let input = Input::SetLanguage { leg: request.leg, language: request.language, targets: request.targets, reply };
        if inbox.send(input).is_err() {
            return;
        }
        let gateway = self.clone();
        tokio::spawn(async move {
            let result = answer.await.unwrap_or_else(|_| Err(ended()));
            gateway.respond(&message, result.map(|()| Done {}).into()).await;
        });
    }

    async fn respond<T: serde::Serialize>(&self, message: &Message, reply: Reply<T>) {
        if let Err(err) = self.shared.bus.respond_json(message, &reply).await {
            tracing::warn!(error = %err, "could not answer a command");
        }
    }
}

fn unreadable(what: &str, err: &impl std::fmt::Display) -> ControlError {
    ControlError::new(ErrorCode::BadRequest, format!("unreadable {what} request: {err}"))
}

fn ended() -> ControlError {
    ControlError::new(ErrorCode::Conflict, "the call ended")
}
