//! RTP from externalMedia channels, as chan_rtp sends it.
//!
//! Each externalMedia channel owns a UDP socket. Every 20 ms its task looks at the channel's
//! bridge: bridged with a snoop, it sends one packet carrying what the snoop hears (the watched
//! party's speech for `spy=in`/`both`, zeros otherwise, zeros between utterances); bridged
//! directly with a call leg, it sends only while that party speaks; unbridged, nothing. The
//! task ends when the channel is gone. Packets received on the socket are counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::state::{Codec, Direction, Kind, Shared, State};

/// Samples per 20 ms packet at 16 kHz.
const SAMPLES_16K: usize = 320;

/// Starts the sender for `channel_id` on `socket` (already non-blocking).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    channel_id: String,
    socket: std::net::UdpSocket,
    remote: SocketAddr,
    codec: Codec,
) {
    tokio::spawn(async move {
        let socket = match tokio::net::UdpSocket::from_std(socket) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%error, channel_id, "fake ari: rtp socket unusable");
                return;
            }
        };
        let mut rtp = RtpStream::new(codec);
        let mut cursor = Cursor::default();
        let mut interval = tokio::time::interval(Duration::from_millis(20));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = [0u8; 2048];
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let frame = match next_frame(&shared.lock(), &channel_id, &mut cursor) {
                        Next::Gone => return,
                        Next::Silent => continue,
                        Next::Frame(samples) => samples,
                    };
                    let packet = rtp.packet(&frame);
                    if socket.send_to(&packet, remote).await.is_ok() {
                        shared.stats.rtp_packets_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                received = socket.recv_from(&mut buf) => {
                    if received.is_ok() {
                        shared.stats.rtp_packets_received.fetch_add(1, Ordering::Relaxed);
                        if let Some(channel) = shared.lock().channels.get_mut(&channel_id) {
                            channel.rtp_received += 1;
                        }
                    }
                }
            }
        }
    });
}

/// Where a stream is in the utterance it plays.
#[derive(Debug, Default)]
struct Cursor {
    generation: u64,
    position: usize,
}

enum Next {
    /// The channel is gone: stop.
    Gone,
    /// Nothing to send this tick.
    Silent,
    /// 320 samples at 16 kHz.
    Frame(Vec<i16>),
}

fn next_frame(state: &State, channel_id: &str, cursor: &mut Cursor) -> Next {
    let Some(channel) = state.channels.get(channel_id) else { return Next::Gone };
    let Some(bridge) = channel.bridge.as_ref().and_then(|b| state.bridges.get(b)) else { return Next::Silent };
    let others = || bridge.channels.iter().filter(|c| *c != channel_id).filter_map(|c| state.channels.get(c));
    // A snoop streams continuously: its party's speech, zeros otherwise.
    let snoop = others().find_map(|c| match &c.kind {
        Kind::Snoop { target, spy } => Some((target.clone(), *spy)),
        _ => None,
    });
    if let Some((target, spy)) = snoop {
        let speech = matches!(spy, Direction::In | Direction::Both).then(|| state.channels.get(&target)).flatten();
        let mut frame = speech.and_then(|c| take(c.speech.as_ref(), cursor)).unwrap_or_default();
        frame.resize(SAMPLES_16K, 0);
        return Next::Frame(frame);
    }
    // Bridged directly with a leg: packets flow only while that party talks.
    match others().find(|c| matches!(c.kind, Kind::Leg)).and_then(|c| take(c.speech.as_ref(), cursor)) {
        Some(mut frame) => {
            frame.resize(SAMPLES_16K, 0);
            Next::Frame(frame)
        }
        None => Next::Silent,
    }
}

/// The next 20 ms of `speech` for this stream, or None when it has all been played.
fn take(speech: Option<&super::state::Speech>, cursor: &mut Cursor) -> Option<Vec<i16>> {
    let speech = speech?;
    if cursor.generation != speech.generation {
        *cursor = Cursor { generation: speech.generation, position: 0 };
    }
    let rest = speech.samples.get(cursor.position..).filter(|r| !r.is_empty())?;
    let frame = rest[..rest.len().min(SAMPLES_16K)].to_vec();
    cursor.position += frame.len();
    Some(frame)
}

/// RTP header state of one stream: one SSRC, sequence +1 and timestamp +samples per packet,
/// no marker bit.
#[derive(Debug)]
struct RtpStream {
    codec: Codec,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl RtpStream {
    fn new(codec: Codec) -> Self {
        RtpStream { codec, ssrc: rand::random(), sequence: rand::random(), timestamp: rand::random() }
    }

    /// One packet for 320 samples at 16 kHz: slin16 as big-endian samples (payload type 118),
    /// or downsampled to 8 kHz µ-law (payload type 0).
    fn packet(&mut self, frame_16k: &[i16]) -> Vec<u8> {
        let (payload_type, payload, samples): (u8, Vec<u8>, u32) = match self.codec {
            Codec::Slin16 => (118, frame_16k.iter().flat_map(|s| s.to_be_bytes()).collect(), 320),
            Codec::Ulaw => (0, downsample_16k_to_8k(frame_16k).into_iter().map(linear_to_ulaw).collect(), 160),
        };
        let mut packet = Vec::with_capacity(12 + payload.len());
        packet.push(0x80);
        packet.push(payload_type);
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(&payload);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        packet
    }
}

/// 8 kHz → 16 kHz by linear interpolation (enough for prompts in tests).
pub(crate) fn upsample_8k_to_16k(samples: &[i16]) -> Vec<i16> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for (i, &s) in samples.iter().enumerate() {
        let next = samples.get(i + 1).copied().unwrap_or(s);
        out.push(s);
        out.push(((i32::from(s) + i32::from(next)) / 2) as i16);
    }
    out
}

/// 16 kHz → 8 kHz by averaging sample pairs.
fn downsample_16k_to_8k(samples: &[i16]) -> Vec<i16> {
    samples.chunks(2).map(|p| (p.iter().map(|&s| i32::from(s)).sum::<i32>() / p.len() as i32) as i16).collect()
}

/// G.711 µ-law encoding of one sample.
pub(crate) fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && magnitude & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_g711_reference_points() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
    }

    #[test]
    fn rtp_header_advances() {
        let mut stream = RtpStream::new(Codec::Slin16);
        let a = stream.packet(&[1; 320]);
        let b = stream.packet(&[1; 320]);
        assert_eq!((a.len(), a[0], a[1]), (12 + 640, 0x80, 118));
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&b), seq(&a).wrapping_add(1));
        assert_eq!(ts(&b), ts(&a).wrapping_add(320));
        assert_eq!(&a[12..14], &[0, 1]);
    }
}
