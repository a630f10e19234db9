//! The media-ingest service: answers endpoint allocations, runs one task per leg, follows
//! language changes and call ends, and frees legs when they stop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use dragoman_bus::control::{
    AllocateEndpoint, ControlError, EndpointAllocated, ErrorCode, MediaTransport, ReleaseEndpoint,
};
use dragoman_bus::events::Event;
use dragoman_bus::{Bus, CallSubjectKind, record_invalid, subjects, wire};
use dragoman_runtime::config::MediaConfig;
use dragoman_runtime::{Config, Shutdown};
use futures::StreamExt;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::endpoint::EndpointConfig;
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::leg::{LegInfo, LegSettings, LegSink, unix_ms};
use crate::rtp::{Codec, PayloadMap};
use crate::rtp_leg::{self, RtpSettings};
use crate::vad::{self, SileroModel};

pub(crate) type LegKey = (String, String);

pub(crate) struct LegEntry {
    pub(crate) id: u64,
    pub(crate) endpoint: EndpointAllocated,
    pub(crate) info: watch::Sender<LegInfo>,
    pub(crate) stop: CancellationToken,
}

/// Everything the service's tasks share.
pub struct Ingest {
    pub(crate) bus: Bus,
    pub(crate) config: MediaConfig,
    pub(crate) advertise: String,
    pub(crate) leg_settings: Arc<LegSettings>,
    rtp: RtpSettings,
    legs: Mutex<HashMap<LegKey, LegEntry>>,
    /// Streamed legs (AudioSocket, WebSocket) waiting for Asterisk to connect, by connection id.
    pub(crate) pending: Mutex<HashMap<uuid::Uuid, crate::streams::PendingStream>>,
    /// Where the AudioSocket and WebSocket listeners ended up (port 0 in tests).
    pub(crate) stream_ports: Mutex<(Option<u16>, Option<u16>)>,
    next_port: Mutex<u16>,
    next_id: std::sync::atomic::AtomicU64,
    /// Leg tasks and their final-storing tasks.
    pub(crate) tracker: TaskTracker,
    /// Stops every leg (shutdown).
    pub(crate) stop_all: CancellationToken,
    /// Cancelled when the grace period is over: stop retrying to store finals.
    pub(crate) give_up: CancellationToken,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("advertise", &self.advertise).field("legs", &self.active_legs()).finish()
    }
}

/// The RTP settings from config: payload types (with the configured dynamic ones), jitter
/// buffer, timeouts. Fails on values that cannot work.
pub fn rtp_settings(config: &MediaConfig) -> anyhow::Result<RtpSettings> {
    let mut payloads = PayloadMap::default();
    for entry in &config.dynamic_payload_types {
        let (pt, format) = entry
            .split_once('=')
            .with_context(|| format!("media.dynamic_payload_types: {entry:?} is not PT=format (e.g. 96=slin16)"))?;
        let pt: u8 =
            pt.trim().parse().with_context(|| format!("media.dynamic_payload_types: bad payload type in {entry:?}"))?;
        let codec: Codec =
            format.trim().parse().map_err(|e| anyhow::anyhow!("media.dynamic_payload_types: {entry:?}: {e}"))?;
        payloads.insert(pt, codec).map_err(|e| anyhow::anyhow!("media.dynamic_payload_types: {e}"))?;
    }
    let jitter = JitterConfig { reorder_depth_packets: config.jitter_reorder_packets, ..JitterConfig::default() };
    JitterBuffer::new(jitter).context("media.jitter_reorder_packets")?;
    Ok(RtpSettings {
        payloads,
        jitter,
        start_timeout: Duration::from_millis(config.start_timeout_ms),
        stream_timeout: Duration::from_millis(config.stream_timeout_ms),
    })
}

/// The endpointing settings from config. Fails on values that cannot work.
pub fn endpoint_config(config: &MediaConfig) -> anyhow::Result<EndpointConfig> {
    let endpoint = EndpointConfig {
        start_threshold: config.vad_start_threshold as f32,
        stop_threshold: config.vad_stop_threshold as f32,
        pre_roll_ms: config.pre_roll_ms,
        end_silence_ms: config.end_silence_ms,
        min_speech_ms: config.min_speech_ms,
        max_utterance_ms: config.max_utterance_ms,
        partial_interval_ms: config.partial_interval_ms,
        cut_search_ms: EndpointConfig::default().cut_search_ms.min(config.max_utterance_ms.max(1)),
        ..EndpointConfig::default()
    };
    crate::endpoint::Endpointer::new(endpoint.clone(), vad::SAMPLE_RATE_HZ).context("media endpointing settings")?;
    Ok(endpoint)
}

/// Everything a leg needs from config, with the loaded VAD model.
pub fn settings(config: &MediaConfig, model: SileroModel) -> anyhow::Result<(Arc<LegSettings>, RtpSettings)> {
    let endpoint = endpoint_config(config)?;
    Ok((Arc::new(LegSettings { model, endpoint, final_queue: config.final_queue }), rtp_settings(config)?))
}

impl Ingest {
    /// Builds the service state; loads the VAD model (a missing or corrupt model fails here).
    pub fn new(config: &Config, bus: Bus) -> anyhow::Result<Arc<Self>> {
        let media = config.media.clone();
        let model_path = media.vad_model_path.clone().unwrap_or_else(vad::default_model_path);
        let model = SileroModel::load(&model_path).with_context(|| {
            format!(
                "load the Silero VAD model {} (media.vad_model_path; scripts/fetch-test-models.sh fetches it)",
                model_path.display()
            )
        })?;
        let (leg_settings, rtp) = settings(&media, model)?;
        let advertise = media.advertise_address.clone().unwrap_or_else(|| media.rtp_bind_address.to_string());
        Ok(Arc::new(Self {
            bus,
            advertise,
            leg_settings,
            rtp,
            legs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            stream_ports: Mutex::new((None, None)),
            next_port: Mutex::new(media.rtp_port_min),
            next_id: std::sync::atomic::AtomicU64::new(1),
            config: media,
            tracker: TaskTracker::new(),
            stop_all: CancellationToken::new(),
            give_up: CancellationToken::new(),
        }))
    }

    pub(crate) fn legs(&self) -> MutexGuard<'_, HashMap<LegKey, LegEntry>> {
        self.legs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Legs being served now.
    pub fn active_legs(&self) -> usize {
        self.legs().len()
    }

    /// Allocates (or, for a repeated request, returns) the endpoint of a leg.
    pub async fn allocate(self: &Arc<Self>, request: AllocateEndpoint) -> Result<EndpointAllocated, ControlError> {
        let bad = |message: String| ControlError::new(ErrorCode::BadRequest, message);
        subjects::validate_token(&request.call_id).map_err(|e| bad(format!("call_id: {e}")))?;
        if request.leg.is_empty() || request.leg.len() > 64 || request.leg.chars().any(char::is_control) {
            return Err(bad("leg must be 1-64 printable characters".into()));
        }
        let key = (request.call_id.clone(), request.leg.clone());
        if let Some(existing) = self.legs().get(&key) {
            return Ok(existing.endpoint.clone());
        }
        if self.active_legs() >= self.config.max_legs {
            return Err(ControlError::new(
                ErrorCode::Exhausted,
                format!("this instance serves {} legs already", self.config.max_legs),
            ));
        }
        if request.transport != MediaTransport::Rtp {
            return crate::streams::allocate(self, request);
        }
        let socket = self.bind_port().await?;
        let port = socket.local_addr().map_err(|e| ControlError::new(ErrorCode::Internal, e.to_string()))?.port();
        let endpoint = EndpointAllocated {
            host: self.advertise.clone(),
            port,
            transport: MediaTransport::Rtp,
            connection_id: None,
        };
        let info = LegInfo {
            call_id: request.call_id.clone(),
            leg: request.leg.clone(),
            language: request.language.language.clone(),
            targets: request.language.targets.clone(),
        };
        let (info_tx, info_rx) = watch::channel(info);
        let stop = self.stop_all.child_token();
        let id = self.next_leg_id();
        {
            let mut legs = self.legs();
            if let Some(existing) = legs.get(&key) {
                // Lost a race with an identical request; keep the first.
                return Ok(existing.endpoint.clone());
            }
            legs.insert(key.clone(), LegEntry { id, endpoint: endpoint.clone(), info: info_tx, stop: stop.clone() });
        }
        metrics::gauge!("dragoman_media_legs_active").set(self.active_legs() as f64);
        let call_started_at_ms = request.call_started_at_ms.unwrap_or_else(unix_ms);
        let this = self.clone();
        self.tracker.spawn(async move {
            let span = tracing::info_span!("leg", call_id = %key.0, leg = %key.1, port);
            let sink_for = |rate: u32| {
                let offset_ms = unix_ms().saturating_sub(call_started_at_ms);
                LegSink::new(
                    &this.leg_settings,
                    rate,
                    offset_ms,
                    info_rx.clone(),
                    this.bus.clone(),
                    this.give_up.clone(),
                    &this.tracker,
                )
                .map_err(|e| tracing::error!(error = %e, "cannot build the leg pipeline"))
                .ok()
            };
            let end = tracing::Instrument::instrument(rtp_leg::run(socket, &this.rtp, stop, sink_for), span).await;
            tracing::info!(call_id = %key.0, leg = %key.1, ?end, "leg finished");
            this.remove(&key, id);
        });
        tracing::info!(call_id = %request.call_id, leg = %request.leg, port, "rtp endpoint allocated");
        Ok(endpoint)
    }

    /// Binds the next free port of the range. Ports another process (or another media-ingest
    /// instance) holds fail to bind and are skipped, so no port is handed out twice.
    async fn bind_port(&self) -> Result<UdpSocket, ControlError> {
        let (min, max) = (self.config.rtp_port_min, self.config.rtp_port_max);
        let span = u32::from(max - min) + 1;
        let ip: IpAddr = self.config.rtp_bind_address;
        for _ in 0..span {
            let port = {
                let mut next = self.next_port.lock().unwrap_or_else(|p| p.into_inner());
                let port = *next;
                *next = if port >= max { min } else { port + 1 };
                port
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(socket) => return Ok(socket),
                Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(err) => return Err(ControlError::new(ErrorCode::Internal, format!("bind {ip}:{port}: {err}"))),
            }
        }
        Err(ControlError::new(ErrorCode::Exhausted, format!("no free port in {min}..={max}")))
    }

    pub(crate) fn next_leg_id(&self) -> u64 {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The AudioSocket and WebSocket ports in use, once bound.
    pub fn stream_ports(&self) -> (Option<u16>, Option<u16>) {
        *self.stream_ports.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn remove(&self, key: &LegKey, id: u64) {
        let mut legs = self.legs();
        if legs.get(key).is_some_and(|e| e.id == id) {
            legs.remove(key);
        }
        metrics::gauge!("dragoman_media_legs_active").set(legs.len() as f64);
    }

    /// Stops one leg (its last final is still published).
    pub fn release(&self, call_id: &str, leg: &str) -> bool {
        match self.legs().get(&(call_id.to_owned(), leg.to_owned())) {
            Some(entry) => {
                entry.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// Stops every leg of a call.
    pub fn end_call(&self, call_id: &str) -> usize {
        let legs = self.legs();
        let mut stopped = 0;
        for ((call, _), entry) in legs.iter() {
            if call == call_id {
                entry.stop.cancel();
                stopped += 1;
            }
        }
        stopped
    }

    /// Applies a language change to a leg; later utterances carry it.
    pub fn set_language(&self, call_id: &str, leg: &str, language: &str, targets: &[String]) -> bool {
        match self.legs().get(&(call_id.to_owned(), leg.to_owned())) {
            Some(entry) => {
                entry.info.send_modify(|info| {
                    info.language = Some(language.to_owned());
                    info.targets = targets.to_vec();
                });
                true
            }
            None => false,
        }
    }

    /// Follows call events: language changes and call ends.
    async fn follow_calls(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let subjects = self.bus.subjects().clone();
        let mut events = self.bus.subscribe(&subjects.all_calls(CallSubjectKind::Events)).await?;
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        loop {
            let message = tokio::select! {
                _ = &mut stop => return Ok(()),
                message = events.next() => match message { Some(m) => m, None => return Ok(()) },
            };
            match wire::decode_event(&message.payload) {
                Ok(Event::LanguageChanged(change)) => {
                    self.set_language(&change.meta.call_id, &change.leg, &change.language, &change.targets);
                }
                Ok(Event::CallEnded(ended)) => {
                    self.end_call(&ended.meta.call_id);
                }
                Ok(_) => {}
                Err(dragoman_bus::DecodeError::UnknownEvent) => {
                    metrics::counter!("dragoman_bus_unknown_events_total").increment(1);
                }
                Err(err) => record_invalid(&subjects, &message.subject, &err),
            }
        }
    }

    /// Serves release requests; every instance hears them and the owner acts.
    async fn serve_releases(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let subjects = self.bus.subjects().clone();
        let mut releases = self.bus.subscribe(&subjects.media_release()).await?;
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        loop {
            let message = tokio::select! {
                _ = &mut stop => return Ok(()),
                message = releases.next() => match message { Some(m) => m, None => return Ok(()) },
            };
            match wire::decode::<ReleaseEndpoint>(&message.payload) {
                Ok(request) => {
                    if self.release(&request.call_id, &request.leg) && message.reply.is_some() {
                        let reply = dragoman_bus::control::Reply::Ok(dragoman_bus::control::Done {});
                        let _ = self.bus.respond_json(&message, &reply).await;
                    }
                }
                Err(err) => record_invalid(&subjects, &message.subject, &err),
            }
        }
    }
}

/// Runs media ingest until shutdown; then every leg finishes and its last final is stored
/// (retried until the grace period is over).
pub async fn run(config: Arc<Config>, bus: Bus, shutdown: Shutdown) -> anyhow::Result<()> {
    let ingest = Ingest::new(&config, bus.clone())?;
    let allocate = {
        let (ingest, shutdown) = (ingest.clone(), shutdown.clone());
        async move {
            let subject = ingest.bus.subjects().media_allocate();
            dragoman_runtime::worker::serve_requests(
                &ingest.bus.clone(),
                &subject,
                subjects::MEDIA_QUEUE_GROUP,
                &shutdown,
                16,
                |request: AllocateEndpoint| {
                    let ingest = ingest.clone();
                    async move { ingest.allocate(request).await }
                },
            )
            .await
            .map_err(anyhow::Error::from)
        }
    };
    tracing::info!(
        bind = %config.media.rtp_bind_address,
        ports = format!("{}-{}", config.media.rtp_port_min, config.media.rtp_port_max),
        "media ingest ready"
    );
    let listeners = crate::streams::bind(&ingest).await?;
    let result = tokio::try_join!(
        allocate,
        ingest.clone().follow_calls(shutdown.clone()),
        ingest.clone().serve_releases(shutdown.clone()),
        crate::streams::serve(ingest.clone(), listeners, shutdown.clone()),
    );
    // Stop taking audio, finish every leg, then wait for finals to be stored.
    ingest.stop_all.cancel();
    ingest.tracker.close();
    if tokio::time::timeout(shutdown.grace(), ingest.tracker.wait()).await.is_err() {
        ingest.give_up.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), ingest.tracker.wait()).await;
    }
    result.map(drop)
}
