//! Streamed inputs that feed the same per-leg pipeline as RTP: AudioSocket (TCP) and WebSocket
//! media. Both are ordered transports, so they skip the jitter buffer.
//!
//! Allocation registers the leg under a fresh connection id; Asterisk then connects and names
//! it (AudioSocket: the UUID message, which externalMedia's `data` sets; WebSocket: the path
//! `/media/<connection id>`). A leg nobody connects to within `start_timeout_ms` is freed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use dragoman_bus::audio::AudioFormat;
use dragoman_bus::control::{AllocateEndpoint, ControlError, EndpointAllocated, ErrorCode, MediaTransport};
use dragoman_runtime::Shutdown;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::audiosocket::{Decoder, Message};
use crate::g711;
use crate::leg::{LegInfo, LegSink, unix_ms};
use crate::service::{Ingest, LegEntry, LegKey};

/// A streamed leg waiting for its connection.
#[derive(Debug)]
pub(crate) struct PendingStream {
    key: LegKey,
    id: u64,
    format: AudioFormat,
    info: watch::Receiver<LegInfo>,
    stop: CancellationToken,
    call_started_at_ms: u64,
}

/// Largest AudioSocket payload or WebSocket message accepted.
const MAX_MESSAGE: usize = 64 * 1024;
/// The UUID message must arrive this soon after an AudioSocket connects.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

fn drop_input(reason: &'static str) {
    metrics::counter!("dragoman_media_stream_input_dropped_total", "reason" => reason).increment(1);
}

/// Registers a streamed leg and tells the gateway where Asterisk should connect.
pub(crate) fn allocate(ingest: &Arc<Ingest>, request: AllocateEndpoint) -> Result<EndpointAllocated, ControlError> {
    let (audiosocket, websocket) = *ingest.stream_ports.lock().unwrap_or_else(|p| p.into_inner());
    let unsupported = |what: &str| ControlError::new(ErrorCode::Unsupported, what.to_owned());
    let port = match request.transport {
        MediaTransport::Audiosocket => {
            if request.format != AudioFormat::Slin {
                return Err(ControlError::new(
                    ErrorCode::BadRequest,
                    "audiosocket carries slin (8 kHz signed linear) only: use format slin",
                ));
            }
            audiosocket.ok_or_else(|| unsupported("audiosocket is off on this instance (media.audiosocket_listen)"))?
        }
        MediaTransport::Websocket => {
            websocket.ok_or_else(|| unsupported("websocket media is off on this instance (media.websocket_listen)"))?
        }
        MediaTransport::Rtp => return Err(unsupported("rtp is allocated elsewhere")),
    };
    let connection_id = Uuid::new_v4();
    let key = (request.call_id.clone(), request.leg.clone());
    let endpoint = EndpointAllocated {
        host: ingest.advertise.clone(),
        port,
        transport: request.transport,
        connection_id: Some(connection_id.to_string()),
    };
    let (info, info_rx) = watch::channel(LegInfo {
        call_id: request.call_id.clone(),
        leg: request.leg.clone(),
        language: request.language.language.clone(),
        targets: request.language.targets.clone(),
    });
    let stop = ingest.stop_all.child_token();
    let id = ingest.next_leg_id();
    {
        let mut legs = ingest.legs();
        if let Some(existing) = legs.get(&key) {
            return Ok(existing.endpoint.clone());
        }
        legs.insert(key.clone(), LegEntry { id, endpoint: endpoint.clone(), info, stop: stop.clone() });
    }
    ingest.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(
        connection_id,
        PendingStream {
            key: key.clone(),
            id,
            format: request.format,
            info: info_rx,
            stop: stop.clone(),
            call_started_at_ms: request.call_started_at_ms.unwrap_or_else(unix_ms),
        },
    );
    // Free the leg if Asterisk never connects.
    let (ingest2, timeout) = (ingest.clone(), Duration::from_millis(ingest.config.start_timeout_ms));
    ingest.tracker.spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(timeout) => {}
            _ = stop.cancelled() => {}
        }
        let unclaimed = ingest2.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&connection_id).is_some();
        if unclaimed {
            tracing::info!(call_id = %key.0, leg = %key.1, "nobody connected to the streamed leg; freed");
            ingest2.remove(&key, id);
        }
    });
    tracing::info!(call_id = %request.call_id, leg = %request.leg, transport = ?request.transport, port, "stream endpoint allocated");
    Ok(endpoint)
}

fn claim(ingest: &Ingest, connection_id: &Uuid) -> Option<PendingStream> {
    ingest.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(connection_id)
}

/// The bound listeners, if configured.
#[derive(Debug)]
pub(crate) struct Listeners {
    audiosocket: Option<TcpListener>,
    websocket: Option<TcpListener>,
}

/// Binds the AudioSocket and WebSocket listeners that are configured.
pub(crate) async fn bind(ingest: &Arc<Ingest>) -> anyhow::Result<Listeners> {
    let bind = |address: String, key: &'static str| async move {
        if address.is_empty() {
            return Ok::<_, anyhow::Error>(None);
        }
        let listener = TcpListener::bind(&address).await.with_context(|| format!("bind {key} {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "{key} listening");
        Ok(Some(listener))
    };
    let audiosocket = bind(ingest.config.audiosocket_listen.clone(), "media.audiosocket_listen").await?;
    let websocket = bind(ingest.config.websocket_listen.clone(), "media.websocket_listen").await?;
    let port = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port());
    *ingest.stream_ports.lock().unwrap_or_else(|p| p.into_inner()) = (port(&audiosocket), port(&websocket));
    Ok(Listeners { audiosocket, websocket })
}

/// Serves both listeners until shutdown.
pub(crate) async fn serve(ingest: Arc<Ingest>, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let audiosocket = async {
        let Some(listener) = listeners.audiosocket else { return Ok::<_, anyhow::Error>(()) };
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        loop {
            let accepted = tokio::select! {
                _ = &mut stop => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let ingest = ingest.clone();
                    ingest.clone().tracker.spawn(async move {
                        tracing::debug!(%peer, "audiosocket connection");
                        audiosocket_connection(ingest, stream).await;
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "audiosocket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let websocket = async {
        let Some(listener) = listeners.websocket else { return Ok(()) };
        let app = axum::Router::new()
            .route("/media/{connection_id}", axum::routing::get(websocket_upgrade))
            .with_state(ingest.clone());
        axum::serve(listener, app).with_graceful_shutdown(shutdown.triggered()).await.context("websocket media server")
    };
    tokio::try_join!(audiosocket, websocket).map(drop)
}

async fn read_message(
    stream: &mut TcpStream,
    decoder: &Decoder,
    buf: &mut BytesMut,
) -> anyhow::Result<Option<Message>> {
    loop {
        if let Some(message) = decoder.decode(buf)? {
            return Ok(Some(message));
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

async fn audiosocket_connection(ingest: Arc<Ingest>, mut stream: TcpStream) {
    let decoder = Decoder::new(MAX_MESSAGE);
    let mut buf = BytesMut::with_capacity(4096);
    let pending = match tokio::time::timeout(HELLO_TIMEOUT, read_message(&mut stream, &decoder, &mut buf)).await {
        Ok(Ok(Some(Message::Uuid(id)))) => match claim(&ingest, &id) {
            Some(pending) => pending,
            None => {
                drop_input("unknown_connection");
                tracing::warn!(connection_id = %id, "audiosocket for no allocated leg; closed");
                return;
            }
        },
        _ => {
            drop_input("no_hello");
            tracing::warn!("audiosocket did not start with its UUID; closed");
            return;
        }
    };
    let Some(mut sink) = sink_for(&ingest, &pending, 8_000) else { return };
    let timeout = Duration::from_millis(ingest.config.stream_timeout_ms);
    let mut samples = Vec::with_capacity(320);
    loop {
        let message = tokio::select! {
            _ = pending.stop.cancelled() => break,
            message = tokio::time::timeout(timeout, read_message(&mut stream, &decoder, &mut buf)) => message,
        };
        match message {
            Ok(Ok(Some(Message::Audio(bytes)))) => {
                samples.clear();
                if g711::decode_slin_le(&bytes, &mut samples).is_err() {
                    drop_input("malformed");
                    continue;
                }
                push(&mut sink, &samples).await;
            }
            Ok(Ok(Some(Message::Dtmf(_) | Message::Uuid(_)))) => {}
            Ok(Ok(Some(Message::Hangup | Message::Error(_)) | None)) => break,
            Ok(Err(err)) => {
                drop_input("malformed");
                tracing::warn!(error = %err, "bad audiosocket framing; closing the leg");
                break;
            }
            Err(_) => {
                tracing::info!("audiosocket went silent; closing the leg");
                break;
            }
        }
    }
    finish(&ingest, pending, sink).await;
}

async fn websocket_upgrade(
    ws: WebSocketUpgrade,
    Path(connection_id): Path<String>,
    State(ingest): State<Arc<Ingest>>,
) -> Response {
    let Some(pending) = connection_id.parse::<Uuid>().ok().and_then(|id| claim(&ingest, &id)) else {
        drop_input("unknown_connection");
        return (StatusCode::NOT_FOUND, "no leg is allocated under that connection id\n").into_response();
    };
    ws.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| websocket_leg(ingest, pending, socket))
}

async fn websocket_leg(ingest: Arc<Ingest>, pending: PendingStream, mut socket: WebSocket) {
    let Some(mut sink) = sink_for(&ingest, &pending, pending.format.sample_rate()) else { return };
    let timeout = Duration::from_millis(ingest.config.stream_timeout_ms);
    let mut samples = Vec::with_capacity(640);
    loop {
        let message = tokio::select! {
            _ = pending.stop.cancelled() => break,
            message = tokio::time::timeout(timeout, socket.recv()) => message,
        };
        match message {
            Ok(Some(Ok(WsMessage::Binary(bytes)))) => {
                samples.clear();
                // Asterisk's WebSocket media is the channel's format as Asterisk holds it:
                // G.711 bytes, or signed linear in host (little-endian) order.
                let decoded = match pending.format {
                    AudioFormat::Ulaw => {
                        g711::decode_ulaw(&bytes, &mut samples);
                        Ok(())
                    }
                    AudioFormat::Alaw => {
                        g711::decode_alaw(&bytes, &mut samples);
                        Ok(())
                    }
                    AudioFormat::Slin | AudioFormat::Slin16 | AudioFormat::Pcm16le => {
                        g711::decode_slin_le(&bytes, &mut samples)
                    }
                };
                if decoded.is_err() {
                    drop_input("malformed");
                    continue;
                }
                push(&mut sink, &samples).await;
            }
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                // Control events (MEDIA_START, …) carry nothing the pipeline needs.
                tracing::debug!(event = %text.chars().take(200).collect::<String>(), "websocket media control");
            }
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(Some(Ok(WsMessage::Close(_))) | None) => break,
            Ok(Some(Err(err))) => {
                tracing::info!(error = %err, "websocket media closed with an error");
                break;
            }
            Err(_) => {
                tracing::info!("websocket media went silent; closing the leg");
                break;
            }
        }
    }
    finish(&ingest, pending, sink).await;
}

fn sink_for(ingest: &Arc<Ingest>, pending: &PendingStream, rate: u32) -> Option<LegSink> {
    let offset_ms = unix_ms().saturating_sub(pending.call_started_at_ms);
    match LegSink::new(
        &ingest.leg_settings,
        rate,
        offset_ms,
        pending.info.clone(),
        ingest.bus.clone(),
        ingest.give_up.clone(),
        &ingest.tracker,
    ) {
        Ok(sink) => Some(sink),
        Err(err) => {
            tracing::error!(error = %err, "cannot build the leg pipeline");
            ingest.remove(&pending.key, pending.id);
            None
        }
    }
}

async fn push(sink: &mut LegSink, samples: &[i16]) {
    if let Err(err) = sink.push(samples).await {
        metrics::counter!("dragoman_media_pipeline_errors_total").increment(1);
        tracing::warn!(error = %err, "pipeline error; audio skipped");
    }
}

async fn finish(ingest: &Ingest, pending: PendingStream, sink: LegSink) {
    if let Err(err) = sink.finish().await {
        tracing::warn!(error = %err, "finishing the leg failed");
    }
    tracing::info!(call_id = %pending.key.0, leg = %pending.key.1, "streamed leg finished");
    ingest.remove(&pending.key, pending.id);
}
