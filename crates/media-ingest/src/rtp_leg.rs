//! One RTP leg: a UDP socket of its own, locked to the first sender, through the jitter buffer
//! into the leg's pipeline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::jitter::{Frame, JitterBuffer, JitterConfig, MediaPacket, PushOutcome};
use crate::leg::LegSink;
use crate::rtp::{Codec, PayloadMap, RtpPacket};

/// Largest datagram accepted; Asterisk sends at most 640 bytes of payload per 20 ms.
pub const MAX_DATAGRAM: usize = 1500;
/// With no packet for this long, frames held for reordering are let out.
const STALL_FLUSH: Duration = Duration::from_millis(120);

/// RTP settings shared by every leg.
#[derive(Debug, Clone)]
pub struct RtpSettings {
    pub payloads: PayloadMap,
    pub jitter: JitterConfig,
    pub start_timeout: Duration,
    pub stream_timeout: Duration,
}

/// Why a leg stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// Told to stop (call ended, release, shutdown).
    Stopped,
    /// No packet ever arrived within `start_timeout`.
    NeverStarted,
    /// Packets stopped for `stream_timeout`.
    WentSilent,
}

fn drop_packet(reason: &'static str) {
    metrics::counter!("dragoman_media_packets_dropped_total", "reason" => reason).increment(1);
}

struct Stream {
    codec: Codec,
    payload_type: u8,
    jitter: JitterBuffer,
    sink: LegSink,
}

/// Receives until stopped or timed out, then finishes the leg (its last final is published).
/// `make_sink` builds the sink once the first packet tells the codec's sample rate.
pub async fn run(
    socket: UdpSocket,
    settings: &RtpSettings,
    stop: tokio_util::sync::CancellationToken,
    mut make_sink: impl FnMut(u32) -> Option<LegSink>,
) -> LegEnd {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut source: Option<SocketAddr> = None;
    let mut stream: Option<Stream> = None;
    let mut samples = Vec::with_capacity(640);
    let mut frames: Vec<Frame> = Vec::new();
    let mut last_packet = Instant::now();
    let mut flushed = true;
    let end = loop {
        let limit = if source.is_some() { settings.stream_timeout } else { settings.start_timeout };
        let wake = if flushed { last_packet + limit } else { (last_packet + STALL_FLUSH).min(last_packet + limit) };
        let received = tokio::select! {
            _ = stop.cancelled() => break LegEnd::Stopped,
            received = tokio::time::timeout_at(wake, socket.recv_from(&mut buf)) => received,
        };
        let (len, from) = match received {
            Err(_) if last_packet.elapsed() >= limit => {
                break if source.is_some() { LegEnd::WentSilent } else { LegEnd::NeverStarted };
            }
            Err(_) => {
                // A stall: let out what the jitter buffer holds for reordering.
                if let Some(s) = stream.as_mut() {
                    s.jitter.flush(&mut frames);
                    feed(&mut s.sink, &mut frames).await;
                }
                flushed = true;
                continue;
            }
            Ok(Err(err)) => {
                // e.g. ICMP port unreachable reported on a later recv; the socket stays usable.
                tracing::debug!(error = %err, "rtp socket error");
                continue;
            }
            Ok(Ok(received)) => received,
        };
        if len > MAX_DATAGRAM {
            drop_packet("oversized");
            continue;
        }
        if source.is_some_and(|locked| locked != from) {
            // Nobody but the Asterisk that sent first can put audio into this leg.
            drop_packet("wrong_source");
            continue;
        }
        let packet = match RtpPacket::parse(&buf[..len]) {
            Ok(packet) => packet,
            Err(_) => {
                drop_packet("malformed");
                continue;
            }
        };
        let Some(codec) = settings.payloads.get(packet.payload_type) else {
            drop_packet("payload_type");
            continue;
        };
        if stream.is_none() {
            let jitter_config = JitterConfig { sample_rate_hz: codec.sample_rate_hz(), ..settings.jitter };
            let Ok(jitter) = JitterBuffer::new(jitter_config) else {
                drop_packet("payload_type");
                continue;
            };
            let Some(sink) = make_sink(codec.sample_rate_hz()) else { break LegEnd::Stopped };
            source = Some(from);
            tracing::debug!(%from, codec = %codec, "rtp stream started");
            stream = Some(Stream { codec, payload_type: packet.payload_type, jitter, sink });
        }
        let Some(s) = stream.as_mut() else { continue };
        if packet.payload_type != s.payload_type {
            // A codec switch mid-stream would change the clock rate under the jitter buffer.
            drop_packet("payload_type_changed");
            continue;
        }
        samples.clear();
        if s.codec.decode(packet.payload, &mut samples).is_err() {
            drop_packet("malformed");
            continue;
        }
        last_packet = Instant::now();
        flushed = false;
        let outcome = s.jitter.push(
            &MediaPacket {
                ssrc: packet.ssrc,
                sequence: packet.sequence,
                timestamp: packet.timestamp,
                samples: &samples,
            },
            &mut frames,
        );
        match outcome {
            PushOutcome::Duplicate => drop_packet("duplicate"),
            PushOutcome::Late => drop_packet("late"),
            PushOutcome::Accepted | PushOutcome::Probation | PushOutcome::Restarted => {
                metrics::counter!("dragoman_media_packets_total").increment(1);
            }
        }
        feed(&mut s.sink, &mut frames).await;
    };
    if let Some(mut s) = stream {
        s.jitter.finish(&mut frames);
        feed(&mut s.sink, &mut frames).await;
        if let Err(err) = s.sink.finish().await {
            tracing::warn!(error = %err, "finishing the leg failed");
        }
    }
    end
}

async fn feed(sink: &mut LegSink, frames: &mut Vec<Frame>) {
    for frame in frames.drain(..) {
        if let Err(err) = sink.push(&frame.samples).await {
            metrics::counter!("dragoman_media_pipeline_errors_total").increment(1);
            tracing::warn!(error = %err, "pipeline error; frame skipped");
        }
    }
}
