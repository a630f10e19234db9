//! A per-stream jitter buffer: RTP packets in, in-order 20 ms frames out.
//!
//! # Push, not pull
//!
//! Frames come out of [`JitterBuffer::push`] as soon as they can be decided: the next expected
//! packet is present, or the reorder window for a missing one has passed. The window is counted
//! in packets (`reorder_depth_packets`): a missing packet is declared lost once a packet that
//! many sequence numbers later has arrived. There is no `pop_ready(now)`. Why:
//!
//! - Dragoman feeds speech recognition, not a loudspeaker. Nothing needs a steady playout
//!   clock, so a time-driven buffer would only add its full depth as latency to every frame.
//!   Here in-order packets (the normal case on loopback) pass straight through, and only a
//!   hole costs up to `reorder_depth_packets` packet times.
//! - Frame positions come from RTP timestamps (the sender's clock), not arrival times, so
//!   network jitter never shifts audio on the timeline.
//! - It is deterministic and clock-free: no timer per stream, and tests need no fake time.
//!
//! The cost: with no packets arriving, nothing comes out. A caller that must notice a stalled
//! stream keeps its own timer and calls [`JitterBuffer::flush`] (play what is buffered now) or
//! [`JitterBuffer::finish`] (end of stream).
//!
//! # Timeline
//!
//! Output is a gap-free sequence of frames of exactly 20 ms each; [`Frame::start_sample`]
//! counts samples from the first packet. Missing packets become concealment (the last 20 ms of
//! real audio repeated with a linear fade over `conceal_fade_frames`, then zeros), and a
//! timestamp gap without missing packets (the sender paused) becomes silence, each exactly as
//! long as the timestamps say, so a frame's position is its time since the call started.
//!
//! # Hostile or broken input
//!
//! At most `reorder_depth_packets` packets are held, plus one probation packet. A packet far
//! outside the window (a forward jump beyond `max_dropout_packets`, or further back than
//! `max_misorder_packets`) or from another SSRC is not trusted on its own: as in RFC 3550
//! appendix A.1 it is held on probation, and only when the next packet follows it in sequence
//! does the buffer restart on the new sequence (a resync, or a new stream for a new SSRC),
//! after playing out what it held. The timeline continues: a new SSRC starts right after the
//! last frame; a resync on the same SSRC fills the timestamp gap when it is plausible
//! (at most `max_gap_ms`). Timestamp gaps above `max_gap_ms` are treated as discontinuities
//! (counted in `timestamp_jumps`) rather than filled, which bounds the output of one push.

use std::collections::BTreeMap;
use std::mem;

/// Frames are always 20 ms long.
pub const FRAME_MS: u32 = 20;

/// Jitter buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Sample rate of the pushed samples (the codec's clock rate); a multiple of 50.
    pub sample_rate_hz: u32,
    /// How many later packets may arrive before a missing one is declared lost
    /// (3 packets = 60 ms at Asterisk's 20 ms packetisation). 0 disables reordering.
    pub reorder_depth_packets: u16,
    /// Concealment frames that repeat and fade the last audio before it turns to silence.
    pub conceal_fade_frames: u16,
    /// Forward sequence jumps up to this many packets count as loss; larger ones are a resync.
    pub max_dropout_packets: u16,
    /// Packets up to this many sequence numbers behind are late or duplicate; further back
    /// is a resync (the sender restarted its sequence).
    pub max_misorder_packets: u16,
    /// Longest timestamp gap that is filled with concealment or silence.
    pub max_gap_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: 16_000,
            reorder_depth_packets: 3,
            conceal_fade_frames: 3,
            max_dropout_packets: 250,
            max_misorder_packets: 100,
            max_gap_ms: 10_000,
        }
    }
}

/// A [`JitterConfig`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JitterConfigError {
    /// 20 ms frames need a whole number of samples.
    #[error("sample rate {0} Hz is not a positive multiple of 50")]
    BadSampleRate(u32),
    /// The sequence windows must fit the 16-bit sequence space and hold the reorder depth.
    #[error(
        "sequence windows must satisfy reorder_depth_packets <= max_dropout_packets <= 32767 \
         and max_misorder_packets <= 32767"
    )]
    BadSequenceWindows,
}

/// One RTP packet's audio, decoded to samples at the configured rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPacket<'a> {
    /// RTP synchronisation source.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// The decoded samples.
    pub samples: &'a [i16],
}

/// What a frame's samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Contains received audio.
    Audio,
    /// Stands in for lost packets (repeat-and-fade, then zeros).
    Concealed,
    /// Fills a timestamp gap where the sender sent nothing (zeros), or pads the last frame.
    Silence,
}

/// 20 ms of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Position of the first sample, counted from the stream's first sample.
    pub start_sample: u64,
    /// Sample rate of `samples`.
    pub sample_rate_hz: u32,
    /// Audio if any sample was received, else Concealed if any was concealed, else Silence.
    pub kind: FrameKind,
    /// Exactly `sample_rate_hz / 50` samples.
    pub samples: Vec<i16>,
}

impl Frame {
    /// Milliseconds from the stream's start to this frame.
    pub fn start_ms(&self) -> u64 {
        self.start_sample * 1000 / u64::from(self.sample_rate_hz)
    }
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Played at once or buffered for reordering.
    Accepted,
    /// Already buffered or played; dropped.
    Duplicate,
    /// Its slot was already played out (declared lost); dropped.
    Late,
    /// Out of the window or from a new SSRC: held until the next packet confirms it.
    Probation,
    /// Confirmed a held packet: the buffer restarted on the new sequence or SSRC.
    Restarted,
}

/// Counters since the buffer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets whose audio was output.
    pub played: u64,
    /// Duplicates dropped.
    pub duplicate: u64,
    /// Packets dropped because their slot had been played out.
    pub late: u64,
    /// Sequence numbers declared lost.
    pub lost: u64,
    /// Frames output as [`FrameKind::Concealed`].
    pub concealed_frames: u64,
    /// Frames output as [`FrameKind::Silence`].
    pub silence_frames: u64,
    /// Probation packets never confirmed.
    pub discarded: u64,
    /// Restarts on the same SSRC after a sequence jump.
    pub resyncs: u64,
    /// Restarts on a new SSRC.
    pub ssrc_changes: u64,
    /// Timestamp gaps that were negative or above `max_gap_ms` (not filled).
    pub timestamp_jumps: u64,
}

#[derive(Debug)]
struct Stream {
    ssrc: u32,
    /// Extended sequence number of the next packet to play.
    next_seq: u64,
    /// RTP timestamp of the next sample to output.
    expected_ts: u32,
    /// Bit i set: sequence `next_seq - 1 - i` was played from a received packet.
    played_mask: u64,
    /// Packets declared lost since the last one played.
    lost_since_played: u64,
}

#[derive(Debug)]
struct Buffered {
    timestamp: u32,
    samples: Vec<i16>,
}

#[derive(Debug)]
struct Candidate {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    samples: Vec<i16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleClass {
    Real,
    Concealed,
    Silence,
}

/// The jitter buffer for one RTP stream (one call leg). See the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    frame_len: usize,
    max_gap_samples: u32,
    stream: Option<Stream>,
    buffer: BTreeMap<u64, Buffered>,
    candidate: Option<Candidate>,
    pending: Vec<i16>,
    pending_start: u64,
    pending_real: usize,
    pending_concealed: usize,
    /// The last `frame_len` received samples, source of the concealment.
    last_real: Vec<i16>,
    /// Concealed samples output since the last received one.
    conceal_pos: usize,
    last_packet_len: usize,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with the given settings.
    pub fn new(config: JitterConfig) -> Result<Self, JitterConfigError> {
        if config.sample_rate_hz == 0 || !config.sample_rate_hz.is_multiple_of(1000 / FRAME_MS) {
            return Err(JitterConfigError::BadSampleRate(config.sample_rate_hz));
        }
        if config.reorder_depth_packets > config.max_dropout_packets
            || config.max_dropout_packets > 0x7FFF
            || config.max_misorder_packets > 0x7FFF
        {
            return Err(JitterConfigError::BadSequenceWindows);
        }
        let frame_len = (config.sample_rate_hz / (1000 / FRAME_MS)) as usize;
        let max_gap_samples = u64::from(config.max_gap_ms) * u64::from(config.sample_rate_hz) / 1000;
        Ok(Self {
            config,
            frame_len,
            max_gap_samples: u32::try_from(max_gap_samples).unwrap_or(i32::MAX as u32).min(i32::MAX as u32),
            stream: None,
            buffer: BTreeMap::new(),
            candidate: None,
            pending: Vec::with_capacity(frame_len),
            pending_start: 0,
            pending_real: 0,
            pending_concealed: 0,
            last_real: Vec::with_capacity(frame_len),
            conceal_pos: 0,
            last_packet_len: frame_len,
            stats: JitterStats::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Samples per 20 ms frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Counters so far.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Packets held for reordering (not counting a probation packet).
    pub fn buffered_packets(&self) -> usize {
        self.buffer.len()
    }

    /// Timeline position in samples: everything output plus the partial frame being filled.
    pub fn position_samples(&self) -> u64 {
        self.pending_start + self.pending.len() as u64
    }

    /// Takes one packet; frames that became ready are appended to `out`.
    pub fn push(&mut self, packet: &MediaPacket<'_>, out: &mut Vec<Frame>) -> PushOutcome {
        self.stats.received += 1;
        self.push_counted(packet, out)
    }

    fn push_counted(&mut self, packet: &MediaPacket<'_>, out: &mut Vec<Frame>) -> PushOutcome {
        let Some(stream) = &self.stream else {
            self.start_stream(packet.ssrc, packet.sequence, packet.timestamp, None);
            self.insert_and_release(0, packet, out);
            return PushOutcome::Accepted;
        };
        if packet.ssrc != stream.ssrc {
            return self.probation(packet, out);
        }
        let diff = i32::from(packet.sequence.wrapping_sub(stream.next_seq as u16) as i16);
        if diff < 0 {
            let back = diff.unsigned_abs();
            if back > u32::from(self.config.max_misorder_packets) {
                return self.probation(packet, out);
            }
            let played = back <= 64 && (stream.played_mask >> (back - 1)) & 1 == 1;
            return if played {
                self.stats.duplicate += 1;
                PushOutcome::Duplicate
            } else {
                self.stats.late += 1;
                PushOutcome::Late
            };
        }
        if diff > i32::from(self.config.max_dropout_packets) {
            return self.probation(packet, out);
        }
        self.insert_and_release(diff as u64, packet, out)
    }

    /// Plays out everything buffered now, treating missing packets as lost. The partial frame
    /// stays pending, so later packets continue the timeline seamlessly.
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        while let Some((key, buffered)) = self.buffer.pop_first() {
            if let Some(stream) = self.stream.as_mut() {
                let missing = key.saturating_sub(stream.next_seq);
                Self::skip_lost(stream, &mut self.stats, missing);
                stream.next_seq = key;
            }
            self.play(buffered, out);
        }
    }

    /// Ends the stream: plays out what is buffered, drops an unconfirmed probation packet and
    /// pads the last partial frame with silence. A later packet starts a new stream at the
    /// current position.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        self.flush(out);
        if self.candidate.take().is_some() {
            self.stats.discarded += 1;
        }
        if !self.pending.is_empty() {
            let missing = self.frame_len - self.pending.len();
            self.append(&vec![0; missing], SampleClass::Silence, out);
        }
        self.stream = None;
        self.last_real.clear();
        self.conceal_pos = 0;
    }

    fn start_stream(&mut self, ssrc: u32, sequence: u16, timestamp: u32, lost_before: Option<u64>) {
        self.stream = Some(Stream {
            ssrc,
            // The buffer is empty whenever a stream starts, so the base can be reset.
            next_seq: u64::from(sequence),
            expected_ts: timestamp,
            played_mask: 0,
            lost_since_played: lost_before.unwrap_or(0),
        });
    }

    fn insert_and_release(&mut self, offset: u64, packet: &MediaPacket<'_>, out: &mut Vec<Frame>) -> PushOutcome {
        let Some(stream) = &self.stream else {
            return PushOutcome::Late; // unreachable: callers start a stream first
        };
        let key = stream.next_seq + offset;
        if self.buffer.contains_key(&key) {
            self.stats.duplicate += 1;
            return PushOutcome::Duplicate;
        }
        self.buffer.insert(key, Buffered { timestamp: packet.timestamp, samples: packet.samples.to_vec() });
        self.release(out);
        PushOutcome::Accepted
    }

    /// Plays every packet that is next in line, declaring missing ones lost once the reorder
    /// window past them is filled.
    fn release(&mut self, out: &mut Vec<Frame>) {
        let depth = u64::from(self.config.reorder_depth_packets);
        loop {
            let (Some(stream), Some((&first, _)), Some((&highest, _))) =
                (self.stream.as_mut(), self.buffer.first_key_value(), self.buffer.last_key_value())
            else {
                return;
            };
            if first == stream.next_seq {
                if let Some(buffered) = self.buffer.remove(&first) {
                    self.play(buffered, out);
                }
            } else if highest >= stream.next_seq + depth {
                // Everything below `highest - depth + 1` has had its full window.
                let limit = first.min(highest + 1 - depth);
                let missing = limit - stream.next_seq;
                Self::skip_lost(stream, &mut self.stats, missing);
            } else {
                return;
            }
        }
    }

    fn skip_lost(stream: &mut Stream, stats: &mut JitterStats, missing: u64) {
        if missing == 0 {
            return;
        }
        stats.lost += missing;
        stream.lost_since_played += missing;
        stream.next_seq += missing;
        stream.played_mask = u32::try_from(missing).ok().and_then(|m| stream.played_mask.checked_shl(m)).unwrap_or(0);
    }

    /// Outputs one packet at `stream.next_seq`, first filling any timestamp gap before it.
    fn play(&mut self, buffered: Buffered, out: &mut Vec<Frame>) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let gap = buffered.timestamp.wrapping_sub(stream.expected_ts) as i32;
        let lost = stream.lost_since_played;
        stream.expected_ts = buffered.timestamp.wrapping_add(buffered.samples.len() as u32);
        stream.lost_since_played = 0;
        stream.next_seq += 1;
        stream.played_mask = (stream.played_mask << 1) | 1;
        self.stats.played += 1;

        let fill = if gap == 0 {
            0
        } else if gap > 0 && gap.unsigned_abs() <= self.max_gap_samples {
            gap.unsigned_abs() as usize
        } else {
            self.stats.timestamp_jumps += 1;
            // Timestamps cannot say how long the lost audio was: assume packets like the last.
            usize::try_from(lost)
                .unwrap_or(usize::MAX)
                .saturating_mul(self.last_packet_len)
                .min(self.max_gap_samples as usize)
        };
        if fill > 0 {
            if lost > 0 {
                self.conceal(fill, out);
            } else {
                self.append(&vec![0; fill], SampleClass::Silence, out);
                // Audio from before a pause must not be replayed to conceal a later loss.
                self.last_real.clear();
            }
        }
        if !buffered.samples.is_empty() {
            self.last_packet_len = buffered.samples.len();
        }
        self.append(&buffered.samples, SampleClass::Real, out);
    }

    fn conceal(&mut self, len: usize, out: &mut Vec<Frame>) {
        let fade_len = usize::from(self.config.conceal_fade_frames) * self.frame_len;
        let mut samples = Vec::with_capacity(len);
        for _ in 0..len {
            let position = self.conceal_pos;
            let sample = if position < fade_len && !self.last_real.is_empty() {
                let source = i64::from(self.last_real[position % self.last_real.len()]);
                // Linear fade from full level to zero across `fade_len` samples.
                (source * (fade_len - position) as i64 / fade_len as i64) as i16
            } else {
                0
            };
            samples.push(sample);
            self.conceal_pos = self.conceal_pos.saturating_add(1);
        }
        self.append(&samples, SampleClass::Concealed, out);
    }

    fn append(&mut self, mut samples: &[i16], class: SampleClass, out: &mut Vec<Frame>) {
        if class == SampleClass::Real && !samples.is_empty() {
            self.conceal_pos = 0;
            let keep_from = samples.len().saturating_sub(self.frame_len);
            self.last_real.extend_from_slice(&samples[keep_from..]);
            let excess = self.last_real.len().saturating_sub(self.frame_len);
            self.last_real.drain(..excess);
        }
        while !samples.is_empty() {
            let take = (self.frame_len - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            match class {
                SampleClass::Real => self.pending_real += take,
                SampleClass::Concealed => self.pending_concealed += take,
                SampleClass::Silence => {}
            }
            samples = &samples[take..];
            if self.pending.len() == self.frame_len {
                self.emit_frame(out);
            }
        }
    }

    fn emit_frame(&mut self, out: &mut Vec<Frame>) {
        let kind = if self.pending_real > 0 {
            FrameKind::Audio
        } else if self.pending_concealed > 0 {
            self.stats.concealed_frames += 1;
            FrameKind::Concealed
        } else {
            self.stats.silence_frames += 1;
            FrameKind::Silence
        };
        let samples = mem::replace(&mut self.pending, Vec::with_capacity(self.frame_len));
        out.push(Frame { start_sample: self.pending_start, sample_rate_hz: self.config.sample_rate_hz, kind, samples });
        self.pending_start += self.frame_len as u64;
        self.pending_real = 0;
        self.pending_concealed = 0;
    }

    /// Holds an out-of-window or foreign-SSRC packet until the next packet confirms it.
    fn probation(&mut self, packet: &MediaPacket<'_>, out: &mut Vec<Frame>) -> PushOutcome {
        match &self.candidate {
            Some(c) if c.ssrc == packet.ssrc && c.sequence == packet.sequence => {
                self.stats.duplicate += 1;
                PushOutcome::Duplicate
            }
            Some(c) if c.ssrc == packet.ssrc && c.sequence.wrapping_add(1) == packet.sequence => {
                if let Some(candidate) = self.candidate.take() {
                    self.restart(candidate, out);
                }
                // Now in sequence right after the candidate, so this takes the normal path.
                self.push_counted(packet, out);
                PushOutcome::Restarted
            }
            _ => {
                if self.candidate.is_some() {
                    self.stats.discarded += 1;
                }
                self.candidate = Some(Candidate {
                    ssrc: packet.ssrc,
                    sequence: packet.sequence,
                    timestamp: packet.timestamp,
                    samples: packet.samples.to_vec(),
                });
                PushOutcome::Probation
            }
        }
    }

    /// Plays out the old sequence, then starts over from the confirmed candidate.
    fn restart(&mut self, candidate: Candidate, out: &mut Vec<Frame>) {
        self.flush(out);
        let (expected_ts, lost_before) = match &self.stream {
            Some(old) if old.ssrc == candidate.ssrc => {
                self.stats.resyncs += 1;
                // Same clock: fill the gap if the timestamps make it plausible (play checks),
                // and conceal it since packets in between were lost.
                (old.expected_ts, Some(1))
            }
            Some(_) => {
                self.stats.ssrc_changes += 1;
                // A new source has an unrelated clock: continue right after the last frame.
                (candidate.timestamp, None)
            }
            None => (candidate.timestamp, None),
        };
        self.start_stream(candidate.ssrc, candidate.sequence, expected_ts, lost_before);
        let samples = candidate.samples;
        self.insert_and_release(
            0,
            &MediaPacket {
                ssrc: candidate.ssrc,
                sequence: candidate.sequence,
                timestamp: candidate.timestamp,
                samples: &samples,
            },
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x5EED;

    fn buffer(rate: u32, depth: u16) -> JitterBuffer {
        JitterBuffer::new(JitterConfig {
            sample_rate_hz: rate,
            reorder_depth_packets: depth,
            ..JitterConfig::default()
        })
        .expect("valid config")
    }

    /// 20 ms of 8 kHz audio whose every sample identifies the packet (never zero).
    fn tone(tag: u16) -> Vec<i16> {
        vec![1000 + (tag % 30_000) as i16; 160]
    }

    fn push(jb: &mut JitterBuffer, seq: u16, ts: u32, samples: &[i16], out: &mut Vec<Frame>) -> PushOutcome {
        jb.push(&MediaPacket { ssrc: SSRC, sequence: seq, timestamp: ts, samples }, out)
    }

    fn assert_contiguous(frames: &[Frame], frame_len: usize) {
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.start_sample, (i * frame_len) as u64, "frame {i} misplaced");
            assert_eq!(f.samples.len(), frame_len, "frame {i} has the wrong length");
        }
    }

    #[test]
    fn config_is_validated() {
        let bad_rate = JitterConfig { sample_rate_hz: 8_001, ..JitterConfig::default() };
        assert_eq!(JitterBuffer::new(bad_rate).err(), Some(JitterConfigError::BadSampleRate(8_001)));
        let zero = JitterConfig { sample_rate_hz: 0, ..JitterConfig::default() };
        assert_eq!(JitterBuffer::new(zero).err(), Some(JitterConfigError::BadSampleRate(0)));
        let windows = JitterConfig { reorder_depth_packets: 300, ..JitterConfig::default() };
        assert_eq!(JitterBuffer::new(windows).err(), Some(JitterConfigError::BadSequenceWindows));
        let windows = JitterConfig { max_misorder_packets: 40_000, ..JitterConfig::default() };
        assert_eq!(JitterBuffer::new(windows).err(), Some(JitterConfigError::BadSequenceWindows));
        let jb = JitterBuffer::new(JitterConfig::default()).expect("defaults are valid");
        assert_eq!(jb.frame_len(), 320);
    }

    #[test]
    fn in_order_packets_pass_straight_through() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        for i in 0..5u16 {
            assert_eq!(push(&mut jb, 100 + i, 5_000 + u32::from(i) * 160, &tone(i), &mut out), PushOutcome::Accepted);
            assert_eq!(out.len(), usize::from(i) + 1, "no added latency");
        }
        assert_contiguous(&out, 160);
        for (i, f) in out.iter().enumerate() {
            assert_eq!(f.kind, FrameKind::Audio);
            assert_eq!(f.samples, tone(i as u16));
        }
        assert_eq!(out[3].start_ms(), 60);
        assert_eq!(jb.stats().played, 5);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.buffered_packets(), 0);
    }

    #[test]
    fn reorders_within_the_window() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        for i in [0u16, 2, 3, 1, 4] {
            push(&mut jb, i, u32::from(i) * 160, &tone(i), &mut out);
        }
        assert_contiguous(&out, 160);
        let tags: Vec<i16> = out.iter().map(|f| f.samples[0]).collect();
        assert_eq!(tags, (0..5).map(|i| tone(i)[0]).collect::<Vec<_>>());
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn waits_exactly_the_depth_before_declaring_loss() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        push(&mut jb, 2, 320, &tone(2), &mut out);
        push(&mut jb, 3, 480, &tone(3), &mut out);
        assert_eq!(out.len(), 1, "packet 1 may still arrive");
        assert_eq!(jb.buffered_packets(), 2);
        push(&mut jb, 4, 640, &tone(4), &mut out);
        assert_eq!(out.len(), 5, "4 = 1 + depth: packet 1 is lost");
        assert_eq!(out[1].kind, FrameKind::Concealed);
        assert_eq!(jb.stats().lost, 1);
        assert_eq!(push(&mut jb, 1, 160, &tone(1), &mut out), PushOutcome::Late);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn duplicates_are_dropped_before_and_after_playing() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 10, 0, &tone(10), &mut out);
        push(&mut jb, 12, 320, &tone(12), &mut out);
        assert_eq!(push(&mut jb, 12, 320, &tone(12), &mut out), PushOutcome::Duplicate, "buffered");
        push(&mut jb, 11, 160, &tone(11), &mut out);
        assert_eq!(push(&mut jb, 10, 0, &tone(10), &mut out), PushOutcome::Duplicate, "played");
        assert_eq!(push(&mut jb, 11, 160, &tone(11), &mut out), PushOutcome::Duplicate, "played");
        assert_eq!(out.len(), 3);
        assert_eq!(jb.stats().duplicate, 3);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        let start_ts = u32::MAX - 300;
        // 65533, 65534, 65535, 0, 1, 2 with 65535 and 0 swapped.
        let order = [0u16, 1, 3, 2, 4, 5];
        for k in order {
            let seq = 65533u16.wrapping_add(k);
            let ts = start_ts.wrapping_add(u32::from(k) * 160);
            assert_eq!(push(&mut jb, seq, ts, &tone(k), &mut out), PushOutcome::Accepted);
        }
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), 6);
        assert!(out.iter().all(|f| f.kind == FrameKind::Audio));
        assert_eq!(
            out.iter().map(|f| f.samples[0]).collect::<Vec<_>>(),
            (0..6).map(|k| tone(k)[0]).collect::<Vec<_>>()
        );
        assert_eq!(jb.stats().timestamp_jumps, 0);
        // A packet from before the wrap is recognised as already played.
        assert_eq!(push(&mut jb, 65535, start_ts.wrapping_add(320), &tone(2), &mut out), PushOutcome::Duplicate);
    }

    #[test]
    fn concealment_repeats_and_fades_then_goes_silent() {
        let config = JitterConfig {
            sample_rate_hz: 8_000,
            reorder_depth_packets: 0,
            conceal_fade_frames: 2,
            ..JitterConfig::default()
        };
        let mut jb = JitterBuffer::new(config).expect("valid");
        let mut out = Vec::new();
        let ramp: Vec<i16> = (0..160).map(|i| 100 * i as i16).collect();
        push(&mut jb, 0, 0, &ramp, &mut out);
        // Packets 1..=4 lost; 5 arrives (timestamp says 4 packets are missing).
        push(&mut jb, 5, 5 * 160, &tone(5), &mut out);
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), 6, "timeline stays exact");
        let kinds: Vec<FrameKind> = out.iter().map(|f| f.kind).collect();
        use FrameKind::*;
        assert_eq!(kinds, vec![Audio, Concealed, Concealed, Concealed, Concealed, Audio]);
        let fade_len = 320i64;
        for (i, &s) in out[1].samples.iter().enumerate() {
            assert_eq!(i64::from(s), i64::from(ramp[i]) * (fade_len - i as i64) / fade_len, "sample {i}");
        }
        for (i, &s) in out[2].samples.iter().enumerate() {
            let pos = 160 + i as i64;
            assert_eq!(i64::from(s), i64::from(ramp[i]) * (fade_len - pos) / fade_len, "sample {pos}");
        }
        assert!(out[3].samples.iter().all(|&s| s == 0));
        assert!(out[4].samples.iter().all(|&s| s == 0));
        assert_eq!(out[5].samples, tone(5));
        assert_eq!(jb.stats().lost, 4);
        assert_eq!(jb.stats().concealed_frames, 4);
    }

    #[test]
    fn a_timestamp_gap_without_loss_is_silence() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        // The sender paused for 1 s (discontinuous transmission), sequence continues.
        push(&mut jb, 1, 160 + 8_000, &tone(1), &mut out);
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), 1 + 50 + 1);
        assert!(out[1..51].iter().all(|f| f.kind == FrameKind::Silence && f.samples.iter().all(|&s| s == 0)));
        assert_eq!(out[51].samples, tone(1));
        assert_eq!(out[51].start_ms(), 1_020);
        assert_eq!(jb.stats().silence_frames, 50);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn implausible_timestamp_gaps_are_not_filled() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        push(&mut jb, 1, 1_000_000_000, &tone(1), &mut out); // far beyond max_gap_ms
        push(&mut jb, 2, 1_000_000_000 - 5_000, &tone(2), &mut out); // backwards
        push(&mut jb, 3, 1_000_000_000 - 5_000 + 160, &tone(3), &mut out);
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), 4);
        assert_eq!(jb.stats().timestamp_jumps, 2);
        // A lost packet across a timestamp jump is still concealed, one packet long.
        push(&mut jb, 5, 42, &tone(5), &mut out);
        push(&mut jb, 8, 42 + 3 * 160, &tone(8), &mut out);
        assert_contiguous(&out, 160);
        assert_eq!(out.iter().filter(|f| f.kind == FrameKind::Concealed).count(), 1);
    }

    #[test]
    fn packets_of_10_and_30_ms_are_reframed_to_20_ms() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        let mut ts = 0u32;
        let mut all = Vec::new();
        for (seq, len) in [80usize, 80, 240, 240, 80, 80, 160].into_iter().enumerate() {
            let samples: Vec<i16> = (0..len).map(|i| (ts as usize + i) as i16).collect();
            all.extend_from_slice(&samples);
            push(&mut jb, seq as u16, ts, &samples, &mut out);
            ts += len as u32;
        }
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), all.len() / 160);
        let joined: Vec<i16> = out.iter().flat_map(|f| f.samples.iter().copied()).collect();
        assert_eq!(joined, all);
        // A partial frame is padded only by finish.
        push(&mut jb, 7, ts, &[7; 50], &mut out);
        assert_eq!(jb.position_samples(), all.len() as u64 + 50);
        let before = out.len();
        jb.finish(&mut out);
        assert_eq!(out.len(), before + 1);
        let last = out.last().expect("padded frame");
        assert_eq!(last.kind, FrameKind::Audio);
        assert_eq!(&last.samples[..50], &[7; 50]);
        assert!(last.samples[50..].iter().all(|&s| s == 0));
    }

    #[test]
    fn flush_and_finish_play_out_the_buffer() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        push(&mut jb, 2, 320, &tone(2), &mut out);
        assert_eq!(out.len(), 1);
        jb.flush(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].kind, FrameKind::Concealed);
        assert_eq!(out[2].samples, tone(2));
        // The stream continues after a flush.
        assert_eq!(push(&mut jb, 3, 480, &tone(3), &mut out), PushOutcome::Accepted);
        assert_eq!(out.len(), 4);
        jb.finish(&mut out);
        assert_eq!(out.len(), 4, "nothing partial to pad");
        // After finish a new stream starts at once, continuing the timeline.
        push(&mut jb, 9_000, 77, &tone(9), &mut out);
        assert_contiguous(&out, 160);
        assert_eq!(out[4].samples, tone(9));
    }

    #[test]
    fn a_new_ssrc_is_a_new_stream_on_the_same_timeline() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        push(&mut jb, 2, 320, &tone(2), &mut out); // buffered, waiting for 1
        let samples = tone(40);
        let p = MediaPacket { ssrc: 0xBEEF, sequence: 40_000, timestamp: 123_456, samples: &samples };
        assert_eq!(jb.push(&p, &mut out), PushOutcome::Probation);
        assert_eq!(out.len(), 1, "one stray packet changes nothing");
        let samples2 = tone(41);
        let p2 = MediaPacket { ssrc: 0xBEEF, sequence: 40_001, timestamp: 123_456 + 160, samples: &samples2 };
        assert_eq!(jb.push(&p2, &mut out), PushOutcome::Restarted);
        assert_contiguous(&out, 160);
        let kinds: Vec<FrameKind> = out.iter().map(|f| f.kind).collect();
        use FrameKind::*;
        assert_eq!(kinds, vec![Audio, Concealed, Audio, Audio, Audio]);
        assert_eq!(out[3].samples, tone(40));
        assert_eq!(out[4].samples, tone(41));
        assert_eq!(jb.stats().ssrc_changes, 1);
        assert_eq!(jb.stats().lost, 1);
        // The old SSRC is now the foreign one.
        assert_eq!(push(&mut jb, 3, 480, &tone(3), &mut out), PushOutcome::Probation);
        let p3 = MediaPacket { ssrc: 0xBEEF, sequence: 40_002, timestamp: 123_456 + 320, samples: &samples2 };
        assert_eq!(jb.push(&p3, &mut out), PushOutcome::Accepted);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn a_confirmed_sequence_jump_resyncs_and_fills_a_plausible_gap() {
        let mut jb = buffer(8_000, 3);
        let mut out = Vec::new();
        push(&mut jb, 0, 0, &tone(0), &mut out);
        // 1000 packets later (beyond max_dropout_packets = 250), timestamps 2 s on.
        assert_eq!(push(&mut jb, 1_000, 16_000, &tone(1), &mut out), PushOutcome::Probation);
        assert_eq!(push(&mut jb, 1, 160, &tone(2), &mut out), PushOutcome::Accepted, "old stream continues");
        assert_eq!(push(&mut jb, 1_000, 16_000, &tone(1), &mut out), PushOutcome::Duplicate);
        assert_eq!(push(&mut jb, 1_001, 16_160, &tone(3), &mut out), PushOutcome::Restarted);
        assert_contiguous(&out, 160);
        assert_eq!(out.len(), 2 + 98 + 2, "gap from 320 to 16000 filled exactly");
        assert!(out[2..100].iter().all(|f| f.kind == FrameKind::Concealed));
        assert_eq!(out[100].samples, tone(1));
        assert_eq!(out[101].samples, tone(3));
        assert_eq!(jb.stats().resyncs, 1);
        // A sender restarting its sequence far behind is also a resync, not a flood of "late".
        push(&mut jb, 500, 16_320, &tone(4), &mut out);
        push(&mut jb, 501, 16_480, &tone(5), &mut out);
        assert_eq!(jb.stats().resyncs, 2);
        assert_eq!(out.last().map(|f| f.samples[0]), Some(tone(5)[0]));
    }

    /// Small deterministic PRNG (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn a_flood_of_far_future_packets_keeps_memory_bounded() {
        let mut jb = buffer(16_000, 3);
        let mut out = Vec::new();
        let samples = vec![1i16; 320];
        push(&mut jb, 0, 0, &samples, &mut out);
        let mut rng = Rng(7);
        for _ in 0..100_000 {
            let p = MediaPacket {
                ssrc: if rng.below(2) == 0 { SSRC } else { rng.next() as u32 },
                sequence: rng.next() as u16,
                timestamp: rng.next() as u32,
                samples: &samples,
            };
            jb.push(&p, &mut out);
            assert!(jb.buffered_packets() <= 3);
            // One push plays at most the held packets, the candidate and itself, each after a
            // gap of at most max_gap_ms (500 frames) or 250 lost packets.
            assert!(out.len() <= 5 * (500 + 1));
            out.clear();
        }
        assert!(jb.stats().discarded > 10_000);
    }

    /// Simulates a network: 2000 packets of 20 ms (sequence and timestamp both wrap), arriving
    /// reordered by less than the depth, with drops and duplicates. Every received packet must
    /// appear exactly at its own position, every dropped one must be concealed.
    #[test]
    fn property_reorder_drop_duplicate_within_depth() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed);
            let depth = 1 + rng.below(5) as u16;
            let mut jb = buffer(8_000, depth);
            let n = 2_000u64;
            let first_seq = 65_000u16;
            let first_ts = u32::MAX - 50_000;
            let dropped: Vec<bool> = (0..n).map(|i| i != 0 && i != n - 1 && rng.below(20) == 0).collect();
            // key = i + r with r < depth: packet i always arrives before packet i + depth.
            let mut arrivals: Vec<(u64, u64)> = (0..n)
                .filter(|&i| !dropped[i as usize])
                // Packet 0 goes first: the first packet received defines the stream's start.
                .map(|i| (if i == 0 { 0 } else { i + rng.below(u64::from(depth)) }, i))
                .collect();
            arrivals.sort_by_key(|&(key, _)| key);
            let mut order: Vec<u64> = arrivals.into_iter().map(|(_, i)| i).collect();
            // Duplicates: re-send some packets again a couple of positions later.
            let mut duplicates = 0u64;
            let mut with_dups = Vec::new();
            for (pos, &i) in order.iter().enumerate() {
                with_dups.push(i);
                if rng.below(20) == 0 && pos + 1 < order.len() {
                    with_dups.push(i);
                    duplicates += 1;
                }
            }
            order = with_dups;

            let mut out = Vec::new();
            for &i in &order {
                let samples = tone(i as u16);
                let seq = first_seq.wrapping_add(i as u16);
                let ts = first_ts.wrapping_add(i as u32 * 160);
                jb.push(&MediaPacket { ssrc: SSRC, sequence: seq, timestamp: ts, samples: &samples }, &mut out);
            }
            jb.finish(&mut out);
            assert_contiguous(&out, 160);
            assert_eq!(out.len() as u64, n, "seed {seed}");
            for (i, frame) in out.iter().enumerate() {
                if dropped[i] {
                    assert_eq!(frame.kind, FrameKind::Concealed, "seed {seed} frame {i}");
                } else {
                    assert_eq!(frame.kind, FrameKind::Audio, "seed {seed} frame {i}");
                    assert_eq!(frame.samples, tone(i as u16), "seed {seed} frame {i}");
                }
            }
            let stats = jb.stats();
            let lost = dropped.iter().filter(|&&d| d).count() as u64;
            assert_eq!(stats.lost, lost, "seed {seed}");
            assert_eq!(stats.duplicate, duplicates, "seed {seed}");
            assert_eq!(stats.late, 0, "seed {seed}");
            assert_eq!(stats.played, n - lost);
            assert_eq!(stats.received, n - lost + duplicates);
            assert_eq!(stats.concealed_frames, lost);
        }
    }

    /// Arbitrary reordering (beyond the depth): packets may be late, but whatever is output is
    /// in order, at its exact position, and every sequence number is either played or lost.
    #[test]
    fn property_arbitrary_reordering_never_misplaces_audio() {
        for seed in 100..120u64 {
            let mut rng = Rng(seed);
            let mut jb = buffer(8_000, 3);
            let n = 1_000u64;
            let mut arrivals: Vec<(u64, u64)> = (0..n).map(|i| (i + rng.below(12), i)).collect();
            arrivals.sort_by_key(|&(key, _)| key);
            // The first packet must come first: it defines the stream's start.
            let mut order: Vec<u64> = arrivals.into_iter().map(|(_, i)| i).collect();
            order.retain(|&i| i != 0);
            order.insert(0, 0);
            let mut out = Vec::new();
            for &i in &order {
                let samples = tone(i as u16);
                let seq = 30_000u16.wrapping_add(i as u16);
                jb.push(
                    &MediaPacket { ssrc: SSRC, sequence: seq, timestamp: i as u32 * 160, samples: &samples },
                    &mut out,
                );
            }
            jb.finish(&mut out);
            assert_contiguous(&out, 160);
            let stats = *jb.stats();
            // Sequence numbers after the last played one that never arrived in time are not
            // output at all, so the frame count is the highest played packet + 1.
            assert_eq!(stats.played + stats.lost, out.len() as u64, "seed {seed}");
            assert_eq!(stats.played + stats.late, n, "seed {seed}");
            for (i, frame) in out.iter().enumerate() {
                match frame.kind {
                    FrameKind::Audio => {
                        assert_eq!(frame.samples, tone(i as u16), "seed {seed} frame {i}")
                    }
                    FrameKind::Concealed => {}
                    FrameKind::Silence => panic!("seed {seed}: silence at {i} without a pause"),
                }
            }
            assert!(stats.late > 0, "seed {seed}: the test should produce late packets");
        }
    }
}
