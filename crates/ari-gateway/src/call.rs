//! One call: its parties, the helper channels and bridges that carry each party's voice to
//! media ingest, and everything the call publishes.
//!
//! Every call is its own task (an actor) with a mailbox: Asterisk's events for the call's
//! channels, operator commands and resynchronisation notices arrive there in order, and the
//! task talks to ARI for this call alone, so calls never wait on each other.
//!
//! Setting up a leg (party channel `P`):
//! 1. media ingest allocates an endpoint for (call, leg, format) over the bus;
//! 2. a mixing bridge `B`, a snoop on `P` with `spy=in` (only what that party says) and an
//!    externalMedia channel sending RTP to the endpoint;
//! 3. both into `B`; TALK_DETECT on `P` when configured; then LegJoined.
//!
//! The ids of every helper channel and bridge are chosen here and recorded before the request
//! that creates them, so that events which arrive before ARI's reply still find the call, and
//! so that teardown deletes whatever may exist, even after a request that timed out (a 404 on
//! delete is fine). Teardown runs once, whatever ended the call: a party hung up, StasisEnd,
//! ChannelDestroyed, the operator, a failed setup, a resynchronisation that no longer finds
//! the party, or gateway shutdown. It then publishes CallEnded.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dragoman_ari::{
    AddChannel, AriClient, AriError, Channel, CreateBridge, Event as AriEvent, ExternalMedia, Snoop, SnoopDirection,
    TalkDetect,
};
use dragoman_bus::control::{
    AllocateEndpoint, ControlError, EndpointAllocated, ErrorCode, LegLanguage, MediaTransport, ReleaseEndpoint, Reply,
};
use dragoman_bus::events::{
    CallDirection, CallEnded, CallStarted, DtmfReceived, EventMeta, LanguageChanged, LanguageSource, LegJoined, Party,
    TalkingChanged,
};
use dragoman_bus::{Bus, Event, audio::AudioFormat, wire};
use tokio::sync::{mpsc, oneshot};

use crate::language::{self, DtmfMenu};
use crate::registry::Registry;

/// What a call's task is told.
#[derive(Debug)]
pub enum Input {
    /// An ARI event about one of the call's channels.
    Ari(Box<AriEvent>),
    /// The operator hangs the call up.
    Hangup { reply: oneshot::Sender<Result<(), ControlError>> },
    /// The operator changes a leg's language.
    SetLanguage { leg: String, language: String, targets: Vec<String>, reply: oneshot::Sender<Result<(), ControlError>> },
    /// Another channel of the same conversation (same linkedid) entered the application: it
    /// becomes the call's next party.
    Join(Box<Channel>),
    /// End the call (e.g. the operator's originate failed).
    End(String),
    /// The events socket came back: these channels existed in Asterisk when they were listed,
    /// at `listed_at` (the request's start).
    Resync { live: Arc<HashSet<String>>, listed_at: Instant },
    /// The gateway stops: tear down and end.
    Shutdown,
}

/// What every call shares.
#[derive(Debug)]
pub struct Shared {
    pub client: AriClient,
    pub bus: Bus,
    pub registry: Registry,
    pub config: dragoman_runtime::config::AriConfig,
    pub menu: DtmfMenu,
    pub format: AudioFormat,
    /// How long to wait for media ingest to allocate an endpoint.
    pub allocate_timeout: Duration,
    /// When to delete a call's helpers once more after a create request got no answer.
    pub recheck_after: Duration,
}

/// How the call began.
#[derive(Debug)]
pub enum Start {
    /// A caller reached the Stasis application.
    Inbound { channel: Box<Channel>, args: Vec<String> },
    /// The operator placed the call: the channel was originated and enters Stasis on answer.
    Outbound { channel_id: String, endpoint: String, language: LegLanguage, ring_timeout: Duration },
}

/// Why the call ended, for CallEnded.
#[derive(Debug, Clone)]
struct Ending {
    reason: String,
    cause: Option<u32>,
}

/// One party of the call and what carries its voice.
#[derive(Debug)]
struct Leg {
    name: String,
    channel_id: String,
    language: LegLanguage,
    bridge_id: Option<String>,
    snoop_id: Option<String>,
    media_id: Option<String>,
    endpoint: bool,
    joined: bool,
    /// The gateway dialled this party (it enters the application when it answers).
    dialled: bool,
    /// Its answer was handled.
    answered: bool,
    /// Since when the channel surely exists in Asterisk.
    confirmed: Option<Instant>,
    pressed: String,
}

pub struct Call {
    id: String,
    shared: Arc<Shared>,
    inbox: mpsc::UnboundedReceiver<Input>,
    started: Instant,
    started_at_ms: u64,
    legs: Vec<Leg>,
    /// The bridge that connects the two parties, when the gateway dialled the second.
    talk_bridge: Option<String>,
    /// Helper and party channels this call may have created, for teardown.
    created_channels: Vec<String>,
    ending: Option<Ending>,
    /// Parties that joined or answered while a leg was being set up.
    deferred: VecDeque<Input>,
    /// A create request ended without an answer, so Asterisk may still carry it out.
    uncertain: bool,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("id", &self.id).field("legs", &self.legs.len()).finish()
    }
}

/// The prefix of every channel and bridge id the gateway creates: `dragoman-<app>-<kind>-<uuid>`.
pub const ID_PREFIX: &str = "dragoman-";

/// The ending reason when the gateway itself stops.
const STOPPED: &str = "gateway_stopped";

/// The helpers that only carry audio to Dragoman (and can be removed whenever no call owns
/// them), as opposed to the parties and the bridge connecting them.
const AUDIO_HELPERS: [&str; 3] = ["snoop", "media", "bridge"];

/// A fresh id for a channel or bridge the gateway of Stasis application `app` creates.
pub fn helper_id(app: &str, kind: &str) -> String {
    format!("{ID_PREFIX}{app}-{kind}-{}", uuid::Uuid::new_v4().simple())
}

/// Whether `id` is an audio helper this application's gateway made: after a restart or a
/// reconnect, one that no call owns is a leftover to remove. Parties, the bridge that connects
/// them and other applications' helpers are never touched.
pub fn is_own_audio_helper(app: &str, id: &str) -> bool {
    id.strip_prefix(ID_PREFIX)
        .and_then(|rest| rest.strip_prefix(app))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|rest| AUDIO_HELPERS.iter().any(|kind| rest.starts_with(kind) && rest[kind.len()..].starts_with('-')))
}

impl Call {
    pub fn new(id: String, shared: Arc<Shared>, inbox: mpsc::UnboundedReceiver<Input>) -> Self {
        let started_at_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
        Self {
            id,
            shared,
            inbox,
            started: Instant::now(),
            started_at_ms,
            legs: Vec::new(),
            talk_bridge: None,
            created_channels: Vec::new(),
            ending: None,
            deferred: VecDeque::new(),
            uncertain: false,
        }
    }

    /// Runs the call from its start to CallEnded.
    pub async fn run(mut self, start: Start) {
        metrics::gauge!("dragoman_gateway_calls_active").increment(1.0);
        match start {
            Start::Inbound { channel, args } => self.inbound(*channel, args).await,
            Start::Outbound { channel_id, endpoint, language, ring_timeout } => {
                self.outbound(channel_id, endpoint, language, ring_timeout).await
            }
        }
        if self.ending.is_none() {
            self.serve().await;
        }
        self.teardown().await;
        metrics::gauge!("dragoman_gateway_calls_active").decrement(1.0);
    }

    async fn inbound(&mut self, channel: Channel, args: Vec<String>) {
        let setup = Instant::now();
        let party = |c: &Channel| Party { name: c.caller.name.clone(), number: c.caller.number.clone() };
        let callee = Party { name: String::new(), number: channel.dialplan.exten.clone() };
        self.publish(Event::CallStarted(CallStarted {
            meta: self.meta(),
            direction: CallDirection::Inbound,
            caller: party(&channel),
            callee,
            application: self.shared.config.app.clone(),
        }))
        .await;
        if !channel.is_up()
            && let Err(err) = retried(|| self.shared.client.answer(&channel.id)).await
        {
            self.fail("answer", &err);
            return;
        }
        let language = self.variables(&channel).await;
        let dial = match args.iter().find_map(|arg| arg.strip_prefix("dial=")) {
            Some(endpoint) => Some(endpoint.to_owned()),
            None => self.variable(&channel, &self.shared.config.dial_variable).await,
        }
        .filter(|endpoint| !endpoint.is_empty());
        let mut caller = Leg::new("caller", &channel.id, language);
        caller.confirmed = Some(self.started);
        self.legs.push(caller);
        self.setup_leg(0).await;
        metrics::histogram!("dragoman_gateway_setup_seconds").record(setup.elapsed().as_secs_f64());
        if let Some(endpoint) = dial
            && self.ending.is_none()
        {
            self.dial(&channel, &endpoint).await;
        }
    }

    /// Dials the second party into the application and bridges it with the first once it
    /// answers (its StasisStart arrives in the mailbox).
    async fn dial(&mut self, caller: &Channel, endpoint: &str) {
        let callee_id = helper_id(&self.shared.config.app, "callee");
        self.shared.registry.add_channel(&callee_id, &self.id);
        self.created_channels.push(callee_id.clone());
        let originate = dragoman_ari::Originate::to_app(endpoint, &self.shared.config.app)
            .channel_id(&callee_id)
            .app_args("dragoman-callee")
            .originator(&caller.id)
            .caller_id(format!("\"{}\" <{}>", caller.caller.name, caller.caller.number));
        // The leg exists before the request: the answer's StasisStart may beat the reply.
        let mut callee = Leg::new("callee", &callee_id, LegLanguage::default());
        callee.dialled = true;
        self.legs.push(callee);
        if let Err(err) = self.shared.client.originate(&originate).await {
            // The caller stays, alone but transcribed, as after a failed Dial().
            self.uncertain |= outcome_unknown(&err);
            metrics::counter!("dragoman_gateway_setup_failures_total", "step" => "dial").increment(1);
            tracing::error!(call = %self.id, endpoint, error = %err, "could not dial the second party");
            self.legs.pop();
            return;
        }
        tracing::info!(call = %self.id, endpoint, channel = %callee_id, "dialling the second party");
        if let Some(callee) = self.legs.last_mut() {
            callee.confirmed = Some(Instant::now());
        }
    }

    async fn outbound(&mut self, channel_id: String, endpoint: String, language: LegLanguage, ring_timeout: Duration) {
        self.publish(Event::CallStarted(CallStarted {
            meta: self.meta(),
            direction: CallDirection::Outbound,
            caller: Party::default(),
            callee: Party { name: String::new(), number: endpoint },
            application: self.shared.config.app.clone(),
        }))
        .await;
        self.created_channels.push(channel_id.clone());
        let mut leg = Leg::new("callee", &channel_id, language);
        leg.language = language::complete(leg.language, None, &self.shared.config);
        self.legs.push(leg);
        // The answer arrives as StasisStart; until then only the end of the channel matters.
        let deadline = tokio::time::Instant::now() + ring_timeout;
        loop {
            let input = tokio::select! {
                input = self.inbox.recv() => input,
                () = tokio::time::sleep_until(deadline) => {
                    self.end("no_answer", None);
                    return;
                }
            };
            let Some(input) = input else { return self.end(STOPPED, None) };
            if let Input::Ari(event) = &input
                && let AriEvent::StasisStart(start) = event.as_ref()
                && start.channel.id == channel_id
            {
                self.legs[0].confirmed = Some(Instant::now());
                self.setup_leg(0).await;
                return;
            }
            self.handle(input).await;
            if self.ending.is_some() {
                return;
            }
        }
    }

    /// Reads the dialplan's language variables.
    async fn variables(&self, channel: &Channel) -> LegLanguage {
        let config = &self.shared.config;
        let language = self.variable(channel, &config.language_variable).await;
        let targets = self.variable(channel, &config.targets_variable).await;
        language::from_variables(language.as_deref(), targets.as_deref())
    }

    /// A channel variable: from the channel's `channelvars` when ari.conf lists it, else asked
    /// for (an unset variable answers 404, which reads as unset).
    async fn variable(&self, channel: &Channel, name: &str) -> Option<String> {
        if let Some(known) = channel.channel_var(name) {
            return Some(known.to_owned());
        }
        match self.shared.client.get_variable(&channel.id, name).await {
            Ok(found) => Some(found).filter(|value| !value.is_empty()),
            Err(err) if err.is_not_found() => None,
            Err(err) => {
                tracing::warn!(call = %self.id, variable = %name, error = %err, "could not read a channel variable");
                None
            }
        }
    }

    /// Sets up leg `index`: endpoint, bridge, snoop, externalMedia; then LegJoined.
    async fn setup_leg(&mut self, index: usize) {
        let other = self.other_language(index);
        let leg = &mut self.legs[index];
        leg.language = language::complete(std::mem::take(&mut leg.language), other.as_deref(), &self.shared.config);
        let (name, party) = (leg.name.clone(), leg.channel_id.clone());
        let request = AllocateEndpoint {
            call_id: self.id.clone(),
            leg: name.clone(),
            format: self.shared.format,
            transport: MediaTransport::Rtp,
            language: leg.language.clone(),
            call_started_at_ms: Some(self.started_at_ms),
        };
        let subject = self.shared.bus.subjects().media_allocate();
        let allocated: Result<Reply<EndpointAllocated>, _> =
            self.shared.bus.request_json(&subject, &request, self.shared.allocate_timeout).await;
        let endpoint = match allocated.map(Reply::into_result) {
            Ok(Ok(endpoint)) => endpoint,
            Ok(Err(refused)) => return self.leg_failed(&name, "allocate", &refused.to_string()),
            Err(err) => return self.leg_failed(&name, "allocate", &err.to_string()),
        };
        self.legs[index].endpoint = true;
        if self.settle().await {
            return;
        }

        let client = self.shared.client.clone();
        let app = self.shared.config.app.clone();
        let bridge_id = helper_id(&self.shared.config.app, "bridge");
        self.shared.registry.add_bridge(&bridge_id, &self.id);
        self.legs[index].bridge_id = Some(bridge_id.clone());
        if let Err(err) = client.create_bridge(&CreateBridge::mixing().bridge_id(&bridge_id).name(&self.id)).await {
            return self.ari_failed(&name, "create bridge", &err);
        }
        let snoop_id = helper_id(&self.shared.config.app, "snoop");
        self.shared.registry.add_channel(&snoop_id, &self.id);
        self.legs[index].snoop_id = Some(snoop_id.clone());
        let snoop = Snoop::spy(&app, SnoopDirection::In).snoop_id(&snoop_id).app_args("dragoman-helper");
        if let Err(err) = client.snoop(&party, &snoop).await {
            return self.ari_failed(&name, "snoop", &err);
        }
        if self.settle().await {
            return;
        }
        let media_id = helper_id(&self.shared.config.app, "media");
        self.shared.registry.add_channel(&media_id, &self.id);
        self.legs[index].media_id = Some(media_id.clone());
        let media =
            ExternalMedia::rtp(&app, endpoint.external_host(), self.shared.format.as_str()).channel_id(&media_id);
        if let Err(err) = client.external_media(&media).await {
            return self.ari_failed(&name, "externalMedia", &err);
        }
        if self.settle().await {
            return;
        }
        if let Err(err) = client.add_channel(&bridge_id, &AddChannel::channel(&snoop_id).and(&media_id)).await {
            return self.ari_failed(&name, "add to bridge", &err);
        }
        if self.shared.config.talk_detect {
            let config = &self.shared.config;
            let thresholds =
                TalkDetect { silence_ms: config.talk_detect_silence_ms, talking_threshold: config.talk_detect_threshold };
            if let Err(err) = client.enable_talk_detect(&party, thresholds).await
            {
                tracing::warn!(call = %self.id, leg = %name, error = %err, "could not enable TALK_DETECT");
            }
        }
        if self.settle().await {
            return;
        }
        let leg = &mut self.legs[index];
        leg.joined = true;
        let joined = LegJoined {
            meta: EventMeta::now(self.id.clone()),
            leg: name,
            channel_id: party,
            party: Party::default(),
            language: leg.language.language.clone(),
            targets: leg.language.targets.clone(),
        };
        self.publish(Event::LegJoined(joined)).await;
    }

    /// An ARI request of a leg's setup failed. When its outcome is unknown (no answer in
    /// time, a dropped connection), Asterisk may still carry it out after teardown has
    /// deleted what existed: teardown then deletes everything once more, later.
    fn ari_failed(&mut self, leg: &str, step: &'static str, err: &AriError) {
        self.uncertain |= outcome_unknown(err);
        self.leg_failed(leg, step, &err.to_string());
    }

    /// A leg could not be set up: the call goes on (the parties still talk), without that
    /// leg's transcript.
    fn leg_failed(&mut self, leg: &str, step: &'static str, error: &str) {
        metrics::counter!("dragoman_gateway_setup_failures_total", "step" => step).increment(1);
        tracing::error!(call = %self.id, leg, step, error, "leg setup failed; the call goes on without its transcript");
    }

    /// Handles whatever arrived during setup; true when the call is ending. A party that
    /// joins or answers meanwhile waits until this setup is over.
    async fn settle(&mut self) -> bool {
        while let Ok(input) = self.inbox.try_recv() {
            self.handle_now(input).await;
        }
        self.ending.is_some()
    }

    async fn serve(&mut self) {
        while self.ending.is_none() {
            let input = match self.deferred.pop_front() {
                Some(input) => input,
                None => match self.inbox.recv().await {
                    Some(input) => input,
                    None => return self.end(STOPPED, None),
                },
            };
            self.handle(input).await;
        }
    }

    /// Handles an input, setting up a leg for a party that joins or answers.
    async fn handle(&mut self, input: Input) {
        match input {
            Input::Join(channel) => self.join(*channel).await,
            Input::Ari(event) => match *event {
                AriEvent::StasisStart(start) => self.answered(&start).await,
                other => self.on_event(other).await,
            },
            other => self.handle_now(other).await,
        }
    }

    /// Handles an input that needs no leg setup; defers those that do.
    async fn handle_now(&mut self, input: Input) {
        match input {
            Input::Join(_) => self.deferred.push_back(input),
            Input::Ari(event) if matches!(*event, AriEvent::StasisStart(_)) => self.deferred.push_back(Input::Ari(event)),
            Input::Ari(event) => self.on_event(*event).await,
            Input::Hangup { reply } => {
                for leg in &self.legs {
                    if let Err(err) = self.shared.client.hangup(&leg.channel_id, None).await
                        && !err.is_not_found()
                    {
                        tracing::warn!(call = %self.id, channel = %leg.channel_id, error = %err, "hang-up failed");
                    }
                }
                self.end("operator", None);
                let _ = reply.send(Ok(()));
            }
            Input::SetLanguage { leg, language, targets, reply } => {
                let answer = self.set_language(&leg, language, targets, LanguageSource::Operator).await;
                let _ = reply.send(answer);
            }
            Input::Resync { live, listed_at } => {
                // Only a party known to exist before the list was asked for can be missing
                // from it; one still ringing ends by its ring timeout.
                let known_before = |leg: &&Leg| leg.confirmed.is_some_and(|at| at < listed_at);
                if let Some(gone) = self.legs.iter().filter(known_before).find(|leg| !live.contains(&leg.channel_id)) {
                    tracing::warn!(call = %self.id, channel = %gone.channel_id, "the party's channel is gone after reconnecting");
                    self.end("ended_while_disconnected", None);
                }
            }
            Input::Shutdown => self.end(STOPPED, None),
            Input::End(reason) => self.end(&reason, None),
        }
    }

    /// Another channel of the conversation becomes the call's next party.
    async fn join(&mut self, channel: Channel) {
        let name =
            if self.legs.iter().any(|leg| leg.name == "callee") { format!("party{}", self.legs.len() + 1) } else { "callee".to_owned() };
        tracing::info!(call = %self.id, channel = %channel.id, leg = %name, "another party joined the conversation");
        let language = self.variables(&channel).await;
        let mut party = Leg::new(&name, &channel.id, language);
        party.confirmed = Some(Instant::now());
        self.legs.push(party);
        let index = self.legs.len() - 1;
        self.setup_leg(index).await;
    }

    /// A StasisStart for one of the call's channels: the party the gateway dialled answered.
    async fn answered(&mut self, start: &dragoman_ari::events::StasisStart) {
        // Only once for a party the gateway dialled: Asterisk may repeat an event.
        let Some(index) = self.legs.iter().position(|leg| leg.channel_id == start.channel.id && leg.dialled) else {
            return;
        };
        if std::mem::replace(&mut self.legs[index].answered, true) {
            return;
        }
        // Connect the parties, then set up the answering party's own leg.
        let talk = helper_id(&self.shared.config.app, "talk");
        self.shared.registry.add_bridge(&talk, &self.id);
        self.talk_bridge = Some(talk.clone());
        let parties = AddChannel::channel(&self.legs[0].channel_id).and(&start.channel.id);
        let connected = match self.shared.client.create_bridge(&CreateBridge::mixing().bridge_id(&talk)).await {
            Ok(_) => self.shared.client.add_channel(&talk, &parties).await,
            Err(err) => Err(err),
        };
        if let Err(err) = connected {
            self.fail("connect parties", &err);
            return;
        }
        let language = self.variables(&start.channel).await;
        self.legs[index].language = language;
        self.setup_leg(index).await;
        // The first leg translated into nothing until the other party's language was known.
        if let Some(other) = self.legs[index].language.language.clone()
            && self.legs[0].language.targets.is_empty()
            && self.legs[0].language.language.as_deref() != Some(other.as_str())
        {
            let language = self.legs[0].language.language.clone().unwrap_or_default();
            let leg = self.legs[0].name.clone();
            let _ = self.set_language(&leg, language, vec![other], LanguageSource::Dialplan).await;
        }
    }

    async fn on_event(&mut self, event: AriEvent) {
        let Some(channel) = event.channel_id().map(str::to_owned) else { return };
        let party = self.legs.iter().position(|leg| leg.channel_id == channel);
        match (&event, party) {
            // A soft hang-up request (an async goto, a redirect) lets the channel go on.
            (AriEvent::ChannelHangupRequest(request), Some(_)) if request.soft == Some(true) => {}
            (AriEvent::StasisEnd(_) | AriEvent::ChannelDestroyed(_) | AriEvent::ChannelHangupRequest(_), Some(_)) => {
                let cause = match &event {
                    AriEvent::ChannelDestroyed(e) => u32::try_from(e.cause).ok(),
                    AriEvent::ChannelHangupRequest(e) => e.cause.and_then(|c| u32::try_from(c).ok()),
                    _ => None,
                };
                self.end("hangup", cause);
            }
            (AriEvent::ChannelDtmfReceived(dtmf), Some(index)) => {
                let leg = self.legs[index].name.clone();
                let duration_ms = u64::try_from(dtmf.duration_ms).unwrap_or(0);
                let meta = self.meta();
                let digit = dtmf.digit.clone();
                self.publish(Event::DtmfReceived(DtmfReceived { meta, leg: leg.clone(), digit: digit.clone(), duration_ms }))
                    .await;
                let chosen = self.shared.menu.press(&mut self.legs[index].pressed, &digit);
                if let Some(language) = chosen {
                    let targets = self.legs[index].language.targets.clone();
                    let _ = self.set_language(&leg, language, targets, LanguageSource::Dtmf).await;
                }
            }
            (AriEvent::ChannelTalkingStarted(_), Some(index)) => self.talking(index, true, None).await,
            (AriEvent::ChannelTalkingFinished(finished), Some(index)) => {
                self.talking(index, false, u64::try_from(finished.duration).ok()).await;
            }
            (AriEvent::StasisEnd(_), None) => {
                // A helper left: a snoop dies with its party, before the party's own events.
                tracing::debug!(call = %self.id, channel = %channel, "a helper channel left the application");
            }
            _ => {}
        }
    }

    async fn talking(&mut self, index: usize, talking: bool, duration_ms: Option<u64>) {
        let event = TalkingChanged { meta: self.meta(), leg: self.legs[index].name.clone(), talking, duration_ms };
        self.publish(Event::TalkingChanged(event)).await;
    }

    async fn set_language(
        &mut self,
        leg: &str,
        language: String,
        targets: Vec<String>,
        source: LanguageSource,
    ) -> Result<(), ControlError> {
        let Some(index) = self.legs.iter().position(|l| l.name == leg) else {
            let legs: Vec<&str> = self.legs.iter().map(|l| l.name.as_str()).collect();
            return Err(ControlError::new(ErrorCode::NotFound, format!("call {} has no leg {leg:?} (legs: {legs:?})", self.id)));
        };
        // No targets, or only the new language itself: translate into the other party's.
        let targets: Vec<String> = targets.into_iter().filter(|target| *target != language).collect();
        let chosen = LegLanguage { language: Some(language.clone()), targets };
        let chosen = language::complete(chosen, self.other_language(index).as_deref(), &self.shared.config);
        let targets = chosen.targets.clone();
        self.legs[index].language = chosen;
        let meta = self.meta();
        self.publish(Event::LanguageChanged(LanguageChanged { meta, leg: leg.to_owned(), language, targets, source }))
            .await;
        Ok(())
    }

    fn other_language(&self, index: usize) -> Option<String> {
        self.legs.iter().enumerate().find(|(i, _)| *i != index).and_then(|(_, leg)| leg.language.language.clone())
    }

    fn fail(&mut self, step: &'static str, err: &AriError) {
        self.uncertain |= outcome_unknown(err);
        metrics::counter!("dragoman_gateway_setup_failures_total", "step" => step).increment(1);
        tracing::error!(call = %self.id, step, error = %err, "call setup failed; ending the call");
        self.end("setup_failed", None);
    }

    fn end(&mut self, reason: &str, cause: Option<u32>) {
        if self.ending.is_none() {
            self.ending = Some(Ending { reason: reason.to_owned(), cause });
        }
    }

    /// Deletes every helper channel and bridge, hangs up what the gateway dialled, frees the
    /// endpoints and publishes CallEnded. Each delete is tried whatever the others answer.
    async fn teardown(&mut self) {
        self.shared.registry.close_call(&self.id);
        let client = self.shared.client.clone();
        let ending = self.ending.clone().unwrap_or(Ending { reason: "hangup".into(), cause: None });
        // When the gateway stops, the parties keep talking: only what carries their voice to
        // Dragoman goes. Otherwise the call is over for everyone: a party the gateway dialled
        // is hung up with it, and so is one that reached the application through the
        // dialplan, so nobody is left in silence.
        let stopping = ending.reason == STOPPED;
        let mut bridges: Vec<String> = self.legs.iter().filter_map(|leg| leg.bridge_id.clone()).collect();
        let mut channels: Vec<String> =
            self.legs.iter().flat_map(|leg| [leg.snoop_id.clone(), leg.media_id.clone()]).flatten().collect();
        if !stopping {
            bridges.extend(self.talk_bridge.clone());
            channels.extend(self.legs.iter().map(|leg| leg.channel_id.clone()));
            channels.extend(self.created_channels.iter().cloned());
        } else {
            // A party still ringing would answer into an application nobody serves.
            let ringing = self.legs.iter().filter(|leg| (leg.dialled && !leg.answered) || leg.confirmed.is_none());
            channels.extend(ringing.map(|leg| leg.channel_id.clone()));
        }
        // Whatever reached the mailbox after the end: parties that joined now are hung up with
        // the call (or left alone when the gateway stops); commands learn the call ended.
        self.inbox.close();
        let mut late: Vec<Input> = self.deferred.drain(..).collect();
        while let Ok(input) = self.inbox.try_recv() {
            late.push(input);
        }
        for input in late {
            match input {
                Input::Join(channel) if !stopping => channels.push(channel.id.clone()),
                Input::Hangup { reply } | Input::SetLanguage { reply, .. } => {
                    let _ = reply.send(Err(ControlError::new(ErrorCode::Conflict, "the call ended")));
                }
                _ => {}
            }
        }
        channels.sort();
        channels.dedup();
        let deletes = bridges
            .iter()
            .map(|bridge| async { (bridge.as_str(), retried(|| client.destroy_bridge(bridge)).await) })
            .collect::<Vec<_>>();
        for (bridge, result) in futures::future::join_all(deletes).await {
            if let Err(err) = result
                && !err.is_not_found()
            {
                metrics::counter!("dragoman_gateway_teardown_failures_total", "kind" => "bridge").increment(1);
                tracing::warn!(call = %self.id, bridge, error = %err, "could not destroy a bridge");
            }
        }
        let hangups = channels
            .iter()
            .map(|channel| async { (channel.as_str(), retried(|| client.hangup(channel, None)).await) })
            .collect::<Vec<_>>();
        for (channel, result) in futures::future::join_all(hangups).await {
            if let Err(err) = result
                && !err.is_not_found()
            {
                metrics::counter!("dragoman_gateway_teardown_failures_total", "kind" => "channel").increment(1);
                tracing::warn!(call = %self.id, channel, error = %err, "could not hang up a channel");
            }
        }
        if self.uncertain {
            // A create still in flight lands after the deletes above: delete again once any
            // such request has surely been answered or abandoned.
            let (client, call, later) = (client.clone(), self.id.clone(), self.shared.recheck_after);
            let (bridges, channels) = (bridges.clone(), channels.clone());
            tokio::spawn(async move {
                tokio::time::sleep(later).await;
                for bridge in &bridges {
                    if retried(|| client.destroy_bridge(bridge)).await.is_ok() {
                        metrics::counter!("dragoman_gateway_late_cleanups_total", "kind" => "bridge").increment(1);
                        tracing::warn!(call, bridge, "removed a bridge created after its call ended");
                    }
                }
                for channel in &channels {
                    if retried(|| client.hangup(channel, None)).await.is_ok() {
                        metrics::counter!("dragoman_gateway_late_cleanups_total", "kind" => "channel").increment(1);
                        tracing::warn!(call, channel, "removed a channel created after its call ended");
                    }
                }
            });
        }
        for leg in self.legs.iter().filter(|leg| leg.endpoint) {
            let release = ReleaseEndpoint { call_id: self.id.clone(), leg: leg.name.clone() };
            let subject = self.shared.bus.subjects().media_release();
            if let Err(err) = self.shared.bus.publish(&subject, Default::default(), wire::encode(&release)).await {
                tracing::warn!(call = %self.id, error = %err, "could not release a media endpoint (media ingest frees it on CallEnded)");
            }
        }
        self.shared.registry.remove_call(&self.id);
        if stopping {
            tracing::info!(call = %self.id, "gateway stopping: transcription of the call stops, the call goes on");
            return;
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let ended = CallEnded { meta: self.meta(), reason: ending.reason.clone(), cause: ending.cause, duration_ms };
        self.publish(Event::CallEnded(ended)).await;
        metrics::counter!("dragoman_gateway_calls_ended_total", "reason" => ending.reason).increment(1);
    }

    fn meta(&self) -> EventMeta {
        EventMeta::now(self.id.clone())
    }

    /// Publishes a call event; retried a few times, since an event lost here is lost for good.
    async fn publish(&self, event: Event) {
        for attempt in 0..5u32 {
            match self.shared.bus.publish_event(&event).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(call = %self.id, event = event.type_name(), attempt, error = %err, "publishing failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        metrics::counter!("dragoman_gateway_events_lost_total").increment(1);
        tracing::error!(call = %self.id, event = event.type_name(), "could not publish a call event");
    }
}

/// Whether a failed request may still have been carried out.
fn outcome_unknown(err: &AriError) -> bool {
    matches!(err, AriError::Timeout { .. } | AriError::Transport { .. })
}

/// Runs a teardown request, again after a failure other than 404 (up to four tries over
/// about a second): a channel or bridge left behind is a leak in the PBX.
async fn retried<F, Fut>(request: F) -> Result<(), AriError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), AriError>>,
{
    let mut result = request().await;
    for attempt in 0..3u32 {
        match &result {
            Err(err) if !err.is_not_found() => {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                result = request().await;
            }
            _ => break,
        }
    }
    result
}

impl Leg {
    fn new(name: &str, channel_id: &str, language: LegLanguage) -> Self {
        Self {
            name: name.to_owned(),
            channel_id: channel_id.to_owned(),
            language,
            bridge_id: None,
            snoop_id: None,
            media_id: None,
            endpoint: false,
            joined: false,
            dialled: false,
            answered: false,
            confirmed: None,
            pressed: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_applications_audio_helpers_count_as_leftovers() {
        for kind in AUDIO_HELPERS {
            assert!(is_own_audio_helper("dragoman", &helper_id("dragoman", kind)), "{kind}");
        }
        // The parties and the bridge connecting them survive a gateway restart.
        for kind in ["callee", "out", "talk"] {
            assert!(!is_own_audio_helper("dragoman", &helper_id("dragoman", kind)), "{kind}");
        }
        // Another gateway's application, and look-alikes.
        assert!(!is_own_audio_helper("dragoman", &helper_id("dragoman2", "snoop")));
        assert!(!is_own_audio_helper("dragoman2", &helper_id("dragoman", "snoop")));
        assert!(!is_own_audio_helper("dragoman", "dragoman-dragoman-snoopy-1"));
        assert!(!is_own_audio_helper("dragoman", "1718000000.42"));
    }
}
