//! `dragoman bench ingest`: how much media ingest one core carries.
//!
//! The input is real speech: a few Asterisk prompts (8 kHz), encoded once as µ-law RTP at 20 ms
//! per packet and then sent for every leg with its own SSRC, sequence and timestamp origin,
//! starting point in the audio, and a deterministic mix of reordering, duplicates and loss. The
//! packets of all legs are interleaved round-robin, as one server receives them. Packets are
//! built between measured rounds, so only receiving is timed.
//!
//! Layout:
//! - [`bench_plain`]: no VAD. Parse → payload map → decode → jitter buffer → resample each frame
//!   to 16 kHz, for [`PLAIN_LEGS`] legs; packets per CPU second, plus a per-step breakdown.
//! - [`bench_vad`]: the same path with each frame going through a full [`LegPipeline`]
//!   (resample, Silero VAD, endpointing), for [`VAD_LEGS`] legs; CPU seconds per second of leg
//!   audio, and the resident memory those legs take.
//! - [`bench_vad_window`]: the Silero model alone, per 32 ms window.
//!
//! Times are the measuring thread's own CPU time (`/proc/thread-self/schedstat`), so other work
//! on the machine stretches the wall clock but not the result (it still shares the caches).
//! That clock advances at scheduler ticks, so no measured stretch is shorter than 0.25 s.

use std::hint::black_box;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dragoman_media_ingest::endpoint::EndpointConfig;
use dragoman_media_ingest::jitter::{Frame, JitterBuffer, JitterConfig, MediaPacket, PushOutcome};
use dragoman_media_ingest::pipeline::LegPipeline;
use dragoman_media_ingest::resample::Resampler;
use dragoman_media_ingest::rtp::{Codec, PayloadMap, RtpPacket};
use dragoman_media_ingest::vad::{self, SileroModel, SileroVad};
use dragoman_runtime::Config;
use dragoman_runtime::config::MediaConfig;
use serde_json::{Value, json};

/// Where Debian's `asterisk-core-sounds-en-wav` puts the English prompts.
const SOUNDS_DIR: &str = "/usr/share/asterisk/sounds/en";
/// Prompts sent one after another, each followed by [`TURN_GAP_MS`] of silence: like one side
/// of a call, mostly short turns (4 to 7 s) and one 30 s monologue that the endpointer has to
/// cut at `max_utterance_ms`. About 105 s of speech when all are present.
const PROMPTS: [&str; 15] = [
    "agent-alreadyon",
    "auth-incorrect",
    "confbridge-pin",
    "demo-enterkeywords",
    "conf-invalid",
    "demo-thanks",
    "dir-instr",
    "demo-congrats",
    "agent-incorrect",
    "dir-usingkeypad",
    "invalid",
    "pbx-invalid",
    "confbridge-lock-extended",
    "pbx-invalidpark",
    "agent-user",
];
/// Silence after each prompt (the other side's turn).
const TURN_GAP_MS: usize = 1_500;

/// Legs served at once without VAD (the 2,000 concurrent legs).
const PLAIN_LEGS: usize = 2_000;
/// Legs served at once with VAD; also the legs whose memory is measured.
const VAD_LEGS: usize = 500;
/// 20 ms packets per leg in one measured round: 1 s without VAD (~100k packets).
const PLAIN_ROUND_PACKETS: u64 = 50;
/// 200 ms per leg with VAD, so even a short run has several rounds.
const VAD_ROUND_PACKETS: u64 = 10;

/// CPU time each step of the breakdown is measured for: the thread CPU clock only advances at
/// scheduler ticks (up to 4 ms), so a step needs many rounds to be timed to about 2%.
const BREAKDOWN_CPU_SECONDS: f64 = 0.25;

/// Network impairments, per packet sent.
const LOSS: f64 = 0.005;
const DUPLICATE: f64 = 0.005;
/// Chance that a packet swaps places with the next one.
const REORDER: f64 = 0.01;

const PAYLOAD_TYPE: u8 = 0; // µ-law
const SAMPLES_PER_PACKET: usize = 160; // 20 ms at 8 kHz
const CODEC_RATE_HZ: u32 = 8_000;
/// Silero windows per second of audio (512 samples at 16 kHz).
const VAD_WINDOWS_PER_SECOND: f64 = vad::SAMPLE_RATE_HZ as f64 / vad::WINDOW_SAMPLES as f64;

/// Targets from the issue, printed beside the results.
const GOAL_PACKETS_PER_SEC: f64 = 100_000.0;
const GOAL_LEGS_WITH_VAD: f64 = 300.0;

/// Runs every case; `seconds` is the CPU time each stage measures for (at least one round).
/// Blocking: run it off the async runtime.
pub fn run(config: &Config, seconds: u64) -> anyhow::Result<Value> {
    let budget = Duration::from_secs(seconds.max(1));
    let clock = ThreadCpu::detect()?;
    let settings = Settings::from_config(&config.media)?;
    let speech = Speech::load(Path::new(SOUNDS_DIR))?;
    println!(
        "input: {:.1} s of audio from {} prompts with {TURN_GAP_MS} ms gaps ({} packets of 20 ms µ-law), impairments {:.1}% reorder, \
         {:.1}% duplicate, {:.1}% loss; cpu clock {}",
        speech.seconds(),
        speech.files.len(),
        speech.packets,
        REORDER * 100.0,
        DUPLICATE * 100.0,
        LOSS * 100.0,
        clock.source
    );
    let model_path = config.media.vad_model_path.clone().unwrap_or_else(vad::default_model_path);
    let model = SileroModel::load(&model_path).with_context(|| {
        format!(
            "load the Silero VAD model {} (set media.vad_model_path or DRAGOMAN_MODEL_DIR; \
             scripts/fetch-test-models.sh fetches it)",
            model_path.display()
        )
    })?;

    let utterances = speech.utterances(&model, &settings)?;
    println!(
        "input as the service segments it: {} utterances, mean {:.1} s, longest {:.1} s, {:.0}% of the time in one",
        utterances.count,
        utterances.mean_seconds,
        utterances.longest_seconds,
        utterances.speech_share * 100.0
    );

    // Memory first, while the heap holds little freed space that new legs could reuse unseen.
    let with_vad = bench_vad(&speech, &settings, &model, &clock, budget)?;
    let plain = bench_plain(&speech, &settings, &clock, budget)?;
    let window = bench_vad_window(&speech, &model, &clock, budget / 4)?;
    let peak_rss_bytes = memory()?.peak_rss_bytes;

    let rtp_ms_per_audio_second = plain.ns_per_packet * 50.0 / 1e6;
    let vad_share = window.ms_per_window * VAD_WINDOWS_PER_SECOND / with_vad.cpu_ms_per_audio_second;
    println!(
        "without vad: {:.0} packets/s per core (min {:.0}, max {:.0} over {} rounds of {} legs; {:.2} µs/packet: \
         parse {:.3}, decode {:.3}, jitter {:.3}, resample {:.3}); goal {GOAL_PACKETS_PER_SEC:.0} ({:+.0}%)",
        plain.packets_per_sec,
        plain.min_packets_per_sec,
        plain.max_packets_per_sec,
        plain.rounds,
        PLAIN_LEGS,
        plain.ns_per_packet / 1e3,
        plain.breakdown.parse_ns / 1e3,
        plain.breakdown.decode_ns / 1e3,
        plain.breakdown.jitter_ns / 1e3,
        plain.breakdown.resample_ns / 1e3,
        percent_of_goal(plain.packets_per_sec, GOAL_PACKETS_PER_SEC),
    );
    println!(
        "with vad: {:.0} legs per core (min {:.0} over {} rounds of {} legs; {:.2} ms cpu per second of audio, \
         silero {:.3} ms per 32 ms window ≈ {:.0}% of it); goal {GOAL_LEGS_WITH_VAD:.0} ({:+.0}%)",
        with_vad.legs_per_core,
        with_vad.min_legs_per_core,
        with_vad.rounds,
        VAD_LEGS,
        with_vad.cpu_ms_per_audio_second,
        window.ms_per_window,
        vad_share * 100.0,
        percent_of_goal(with_vad.legs_per_core, GOAL_LEGS_WITH_VAD),
    );
    println!(
        "memory: peak {:.1} KiB per leg over {:.1} s of audio each ({} legs with vad; an utterance in progress \
         holds 62.5 KiB per second of it), {:.1} KiB per leg just created; peak rss {:.1} MiB",
        with_vad.bytes_per_leg_peak as f64 / 1024.0,
        with_vad.audio_seconds_per_leg,
        VAD_LEGS,
        with_vad.bytes_per_leg_idle as f64 / 1024.0,
        peak_rss_bytes as f64 / (1024.0 * 1024.0),
    );

    Ok(json!({
        "packets_per_sec_per_core": plain.packets_per_sec.round(),
        "legs_per_core_with_vad": round_to(with_vad.legs_per_core, 1),
        "bytes_per_leg": with_vad.bytes_per_leg_peak,
        "packets_per_sec_per_core_min": plain.min_packets_per_sec.round(),
        "packets_per_sec_per_core_max": plain.max_packets_per_sec.round(),
        "ns_per_packet": round_to(plain.ns_per_packet, 1),
        "ns_per_packet_parse": round_to(plain.breakdown.parse_ns, 1),
        "ns_per_packet_decode": round_to(plain.breakdown.decode_ns, 1),
        "ns_per_packet_jitter": round_to(plain.breakdown.jitter_ns, 1),
        "ns_per_packet_resample": round_to(plain.breakdown.resample_ns, 1),
        "plain_legs": PLAIN_LEGS,
        "plain_packets": plain.packets,
        "plain_cpu_seconds": round_to(plain.cpu_seconds, 3),
        "plain_wall_seconds": round_to(plain.wall_seconds, 3),
        "legs_per_core_with_vad_min": round_to(with_vad.min_legs_per_core, 1),
        "cpu_ms_per_audio_second_with_vad": round_to(with_vad.cpu_ms_per_audio_second, 3),
        "rtp_ms_per_audio_second": round_to(rtp_ms_per_audio_second, 3),
        "vad_ms_per_window": round_to(window.ms_per_window, 4),
        "vad_share_of_leg_cpu": round_to(vad_share, 3),
        "vad_legs": VAD_LEGS,
        "vad_audio_seconds": round_to(with_vad.audio_seconds, 1),
        "vad_cpu_seconds": round_to(with_vad.cpu_seconds, 3),
        "segments": with_vad.segments,
        "finals": with_vad.finals,
        "mean_final_ms": with_vad.mean_final_ms.round(),
        "legs_in_speech_at_end": with_vad.in_speech_at_end,
        "bytes_per_leg_idle": with_vad.bytes_per_leg_idle,
        "audio_seconds_per_leg": round_to(with_vad.audio_seconds_per_leg, 2),
        "peak_rss_bytes": peak_rss_bytes,
        "dropped_packets": plain.dropped + with_vad.dropped,
        "cpu_clock": clock.source,
        "goal_packets_per_sec_per_core": GOAL_PACKETS_PER_SEC,
        "goal_legs_per_core_with_vad": GOAL_LEGS_WITH_VAD,
    }))
}

fn percent_of_goal(value: f64, goal: f64) -> f64 {
    (value / goal - 1.0) * 100.0
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The per-leg settings the service would use, from the same configuration.
#[derive(Debug)]
struct Settings {
    payloads: PayloadMap,
    jitter: JitterConfig,
    endpoint: EndpointConfig,
}

impl Settings {
    fn from_config(media: &MediaConfig) -> anyhow::Result<Self> {
        // The service's own mapping from config, at the µ-law clock rate.
        let rtp = dragoman_media_ingest::service::rtp_settings(media)?;
        let jitter = JitterConfig { sample_rate_hz: CODEC_RATE_HZ, ..rtp.jitter };
        JitterBuffer::new(jitter).context("media.jitter_reorder_packets")?;
        let endpoint = dragoman_media_ingest::service::endpoint_config(media)?;
        Ok(Self { payloads: rtp.payloads, jitter, endpoint })
    }
}

/// The test speech, µ-law encoded once; every leg sends these payloads from its own offset.
#[derive(Debug)]
struct Speech {
    files: Vec<String>,
    /// `packets` payloads of [`SAMPLES_PER_PACKET`] bytes, back to back.
    payloads: Vec<u8>,
    packets: usize,
    /// The same speech at 16 kHz, for timing the VAD model alone.
    samples_16k: Vec<f32>,
}

impl Speech {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut samples: Vec<i16> = Vec::new();
        let mut files = Vec::new();
        for name in PROMPTS {
            let path = dir.join(format!("{name}.wav"));
            if !path.exists() {
                continue;
            }
            read_prompt(&path, &mut samples)?;
            samples.resize(samples.len() + TURN_GAP_MS * CODEC_RATE_HZ as usize / 1000, 0);
            files.push(name.to_owned());
        }
        if samples.is_empty() {
            bail!(
                "no speech to send: none of {} found in {} (install asterisk-core-sounds-en-wav)",
                PROMPTS.map(|name| format!("{name}.wav")).join(", "),
                dir.display()
            );
        }
        samples.resize(samples.len().next_multiple_of(SAMPLES_PER_PACKET), 0);
        let mut payloads = Vec::with_capacity(samples.len());
        Codec::Ulaw.encode(&samples, &mut payloads);
        let mut resampler = Resampler::new(CODEC_RATE_HZ, vad::SAMPLE_RATE_HZ)?;
        let mut samples_16k = Vec::with_capacity(samples.len() * 2);
        resampler.process_i16(&samples, &mut samples_16k);
        resampler.flush(&mut samples_16k);
        Ok(Self { files, packets: samples.len() / SAMPLES_PER_PACKET, payloads, samples_16k })
    }

    /// What the service's pipeline makes of the speech, sent once without impairments.
    fn utterances(&self, model: &SileroModel, settings: &Settings) -> anyhow::Result<Utterances> {
        let mut pipeline = LegPipeline::new(model, CODEC_RATE_HZ, settings.endpoint.clone(), 0)?;
        let mut samples = Vec::with_capacity(SAMPLES_PER_PACKET);
        let mut finals = Vec::new();
        for index in 0..self.packets {
            samples.clear();
            Codec::Ulaw.decode(self.payload(index), &mut samples)?;
            finals.extend(pipeline.push(&samples)?.into_iter().filter(|segment| segment.is_final));
        }
        finals.extend(pipeline.finish()?);
        let lengths: Vec<f64> = finals.iter().map(|segment| (segment.end_ms - segment.start_ms) as f64 / 1e3).collect();
        let total: f64 = lengths.iter().sum();
        Ok(Utterances {
            count: lengths.len(),
            mean_seconds: total / lengths.len().max(1) as f64,
            longest_seconds: lengths.iter().copied().fold(0.0, f64::max),
            speech_share: total / self.seconds(),
        })
    }

    fn seconds(&self) -> f64 {
        (self.packets * SAMPLES_PER_PACKET) as f64 / f64::from(CODEC_RATE_HZ)
    }

    fn payload(&self, index: usize) -> &[u8] {
        let start = (index % self.packets) * SAMPLES_PER_PACKET;
        &self.payloads[start..start + SAMPLES_PER_PACKET]
    }
}

#[derive(Debug)]
struct Utterances {
    count: usize,
    mean_seconds: f64,
    longest_seconds: f64,
    speech_share: f64,
}

fn read_prompt(path: &Path, samples: &mut Vec<i16>) -> anyhow::Result<()> {
    let mut reader = hound::WavReader::open(path).with_context(|| format!("open {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_rate != CODEC_RATE_HZ
        || spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        bail!("{} is not 8 kHz 16-bit mono: {spec:?}", path.display());
    }
    for sample in reader.samples::<i16>() {
        samples.push(sample.with_context(|| format!("read {}", path.display()))?);
    }
    Ok(())
}

/// SplitMix64: a small deterministic generator, so every run sends the same packets.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// What one leg's sender (Asterisk) and the network between do to its packets.
#[derive(Debug)]
struct LegSource {
    ssrc: u32,
    first_sequence: u16,
    first_timestamp: u32,
    /// Where in the speech this leg starts, in packets, so legs are not in lockstep.
    audio_offset: usize,
    /// Packets sent so far.
    sent: u64,
    rng: SplitMix,
}

impl LegSource {
    fn new(leg: usize, speech: &Speech) -> Self {
        let mut rng = SplitMix(0xD4A6_0000_0000_0000 ^ leg as u64);
        // Multiplying by an odd constant is a bijection on u32: distinct legs, distinct SSRCs.
        let ssrc = (leg as u32).wrapping_mul(0x9E37_79B1) ^ 0x5A5A_5A5A;
        Self {
            ssrc,
            // Random origins, so sequence and timestamp wrap-around happen during the run.
            first_sequence: rng.next_u64() as u16,
            first_timestamp: rng.next_u64() as u32,
            audio_offset: (rng.next_u64() % speech.packets as u64) as usize,
            sent: 0,
            rng,
        }
    }

    /// The next `count` packets the sender emits, as they arrive: packet numbers with some
    /// lost, some doubled and some swapped with their successor.
    fn arrivals(&mut self, count: u64, out: &mut Vec<u64>) {
        out.clear();
        for number in self.sent..self.sent + count {
            if self.rng.chance(LOSS) {
                continue;
            }
            out.push(number);
            if self.rng.chance(DUPLICATE) {
                out.push(number);
            }
        }
        self.sent += count;
        let mut index = 0;
        while index + 1 < out.len() {
            if self.rng.chance(REORDER) {
                out.swap(index, index + 1);
                index += 2;
            } else {
                index += 1;
            }
        }
    }

    fn write(&self, number: u64, speech: &Speech, buf: &mut Vec<u8>) -> anyhow::Result<()> {
        let packet = RtpPacket::new(
            PAYLOAD_TYPE,
            self.first_sequence.wrapping_add(number as u16),
            self.first_timestamp.wrapping_add((number as u32).wrapping_mul(SAMPLES_PER_PACKET as u32)),
            self.ssrc,
            speech.payload(self.audio_offset + number as usize),
        )
        .with_marker(number == 0);
        packet.write(buf)?;
        Ok(())
    }
}

/// One round of datagrams from every leg, interleaved round-robin.
#[derive(Debug, Default)]
struct Round {
    bytes: Vec<u8>,
    /// Which leg's socket each datagram came in on, and where it lies in `bytes`.
    datagrams: Vec<(usize, Range<usize>)>,
    arrivals: Vec<Vec<u64>>,
}

impl Round {
    /// Builds the next `packets_per_leg` packet times of every leg.
    fn build(&mut self, sources: &mut [LegSource], packets_per_leg: u64, speech: &Speech) -> anyhow::Result<()> {
        self.bytes.clear();
        self.datagrams.clear();
        self.arrivals.resize_with(sources.len(), Vec::new);
        for (source, arrivals) in sources.iter_mut().zip(&mut self.arrivals) {
            source.arrivals(packets_per_leg, arrivals);
        }
        let longest = self.arrivals.iter().map(Vec::len).max().unwrap_or(0);
        for slot in 0..longest {
            for (leg, (source, arrivals)) in sources.iter().zip(&self.arrivals).enumerate() {
                if let Some(&number) = arrivals.get(slot) {
                    let start = self.bytes.len();
                    source.write(number, speech, &mut self.bytes)?;
                    self.datagrams.push((leg, start..self.bytes.len()));
                }
            }
        }
        Ok(())
    }
}

/// Where 16-bit frames from the jitter buffer go.
trait FrameSink {
    /// Takes one 20 ms frame at the codec rate; returns how many outputs it produced.
    fn frame(&mut self, samples: &[i16]) -> anyhow::Result<usize>;
}

/// Without VAD: resampling to 16 kHz is the end of the line.
#[derive(Debug)]
struct ResampleTo16k {
    resampler: Resampler,
    output: Vec<f32>,
}

impl ResampleTo16k {
    fn new() -> anyhow::Result<Self> {
        Ok(Self { resampler: Resampler::new(CODEC_RATE_HZ, vad::SAMPLE_RATE_HZ)?, output: Vec::with_capacity(400) })
    }
}

impl FrameSink for ResampleTo16k {
    fn frame(&mut self, samples: &[i16]) -> anyhow::Result<usize> {
        self.output.clear();
        self.resampler.process_i16(samples, &mut self.output);
        Ok(black_box(&self.output).len())
    }
}

/// With VAD: the service's pipeline, counting the finals it produces and their audio.
#[derive(Debug)]
struct Pipeline {
    pipeline: LegPipeline,
    finals: u64,
    final_ms: u64,
}

impl FrameSink for Pipeline {
    fn frame(&mut self, samples: &[i16]) -> anyhow::Result<usize> {
        let segments = self.pipeline.push(samples)?;
        for segment in segments.iter().filter(|segment| segment.is_final) {
            self.finals += 1;
            self.final_ms += segment.end_ms - segment.start_ms;
        }
        Ok(segments.len())
    }
}

/// How far [`Leg::receive`] takes a packet: for the per-step breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Depth {
    Parse,
    Decode,
    Jitter,
    Full,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    packets: u64,
    dropped: u64,
    frames: u64,
    outputs: u64,
}

/// One leg's receive path, as `rtp_leg` runs it minus the socket and the metrics.
#[derive(Debug)]
struct Leg<S> {
    jitter: JitterBuffer,
    samples: Vec<i16>,
    frames: Vec<Frame>,
    sink: S,
}

impl<S: FrameSink> Leg<S> {
    fn new(settings: &Settings, sink: S) -> anyhow::Result<Self> {
        Ok(Self {
            jitter: JitterBuffer::new(settings.jitter)?,
            samples: Vec::with_capacity(SAMPLES_PER_PACKET),
            frames: Vec::new(),
            sink,
        })
    }

    fn receive(
        &mut self,
        payloads: &PayloadMap,
        datagram: &[u8],
        depth: Depth,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        counts.packets += 1;
        let Ok(packet) = RtpPacket::parse(datagram) else {
            counts.dropped += 1;
            return Ok(());
        };
        if depth == Depth::Parse {
            black_box(&packet);
            return Ok(());
        }
        let Some(codec) = payloads.get(packet.payload_type).filter(|codec| *codec == Codec::Ulaw) else {
            counts.dropped += 1;
            return Ok(());
        };
        self.samples.clear();
        if codec.decode(packet.payload, &mut self.samples).is_err() {
            counts.dropped += 1;
            return Ok(());
        }
        if depth == Depth::Decode {
            black_box(&self.samples);
            return Ok(());
        }
        let media = MediaPacket {
            ssrc: packet.ssrc,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            samples: &self.samples,
        };
        match self.jitter.push(&media, &mut self.frames) {
            PushOutcome::Duplicate | PushOutcome::Late => counts.dropped += 1,
            PushOutcome::Accepted | PushOutcome::Probation | PushOutcome::Restarted => {}
        }
        for frame in self.frames.drain(..) {
            counts.frames += 1;
            if depth == Depth::Full {
                counts.outputs += self.sink.frame(&frame.samples)? as u64;
            }
        }
        Ok(())
    }
}

fn receive_round<S: FrameSink>(
    legs: &mut [Leg<S>],
    round: &Round,
    payloads: &PayloadMap,
    depth: Depth,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    for (leg, range) in &round.datagrams {
        legs[*leg].receive(payloads, &round.bytes[range.clone()], depth, counts)?;
    }
    Ok(())
}

/// CPU and wall time of one measured stretch.
struct Stopwatch<'a> {
    clock: &'a ThreadCpu,
    cpu: Duration,
    wall: Instant,
}

impl<'a> Stopwatch<'a> {
    fn start(clock: &'a ThreadCpu) -> anyhow::Result<Self> {
        Ok(Self { clock, cpu: clock.now()?, wall: Instant::now() })
    }

    /// (cpu, wall) seconds since start.
    fn stop(&self) -> anyhow::Result<(f64, f64)> {
        let cpu = self.clock.now()?.saturating_sub(self.cpu);
        Ok((cpu.as_secs_f64(), self.wall.elapsed().as_secs_f64()))
    }
}

#[derive(Debug)]
struct PlainResult {
    packets_per_sec: f64,
    min_packets_per_sec: f64,
    max_packets_per_sec: f64,
    ns_per_packet: f64,
    rounds: usize,
    packets: u64,
    dropped: u64,
    cpu_seconds: f64,
    wall_seconds: f64,
    breakdown: Breakdown,
}

#[derive(Debug)]
struct Breakdown {
    parse_ns: f64,
    decode_ns: f64,
    jitter_ns: f64,
    resample_ns: f64,
}

fn plain_legs(settings: &Settings, speech: &Speech) -> anyhow::Result<(Vec<LegSource>, Vec<Leg<ResampleTo16k>>)> {
    let sources = (0..PLAIN_LEGS).map(|leg| LegSource::new(leg, speech)).collect();
    let legs = (0..PLAIN_LEGS).map(|_| Leg::new(settings, ResampleTo16k::new()?)).collect::<anyhow::Result<_>>()?;
    Ok((sources, legs))
}

/// Packets per CPU second without VAD, for [`PLAIN_LEGS`] legs at once.
fn bench_plain(
    speech: &Speech,
    settings: &Settings,
    clock: &ThreadCpu,
    budget: Duration,
) -> anyhow::Result<PlainResult> {
    let (mut sources, mut legs) = plain_legs(settings, speech)?;
    let mut round = Round::default();
    let mut counts = Counts::default();
    // Warm-up: every stream started, every buffer grown to its working size.
    round.build(&mut sources, PLAIN_ROUND_PACKETS / 2, speech)?;
    receive_round(&mut legs, &round, &settings.payloads, Depth::Full, &mut counts)?;

    let (mut packets, mut dropped, mut cpu_seconds, mut wall_seconds) = (0, 0, 0.0, 0.0);
    let mut rates = Vec::new();
    while rates.is_empty() || cpu_seconds < budget.as_secs_f64() {
        round.build(&mut sources, PLAIN_ROUND_PACKETS, speech)?;
        let mut counts = Counts::default();
        let stopwatch = Stopwatch::start(clock)?;
        receive_round(&mut legs, &round, &settings.payloads, Depth::Full, &mut counts)?;
        let (cpu, wall) = stopwatch.stop()?;
        packets += counts.packets;
        dropped += counts.dropped;
        cpu_seconds += cpu;
        wall_seconds += wall;
        rates.push(counts.packets as f64 / cpu.max(1e-9));
    }
    drop(legs);

    // Each step's cost: the same packets taken one step further each time, on fresh legs.
    let mut ns_per_packet_to = |depth: Depth| -> anyhow::Result<f64> {
        let (mut sources, mut legs) = plain_legs(settings, speech)?;
        let mut counts = Counts::default();
        round.build(&mut sources, PLAIN_ROUND_PACKETS / 2, speech)?;
        receive_round(&mut legs, &round, &settings.payloads, depth, &mut counts)?;
        let (mut packets, mut cpu_seconds) = (0, 0.0);
        while packets == 0 || cpu_seconds < BREAKDOWN_CPU_SECONDS {
            // Before the jitter buffer nothing keeps state, so the same round can be resent.
            if packets == 0 || depth >= Depth::Jitter {
                round.build(&mut sources, PLAIN_ROUND_PACKETS, speech)?;
            }
            let mut counts = Counts::default();
            let stopwatch = Stopwatch::start(clock)?;
            receive_round(&mut legs, &round, &settings.payloads, depth, &mut counts)?;
            cpu_seconds += stopwatch.stop()?.0;
            packets += counts.packets;
        }
        Ok(cpu_seconds * 1e9 / packets as f64)
    };
    let parse = ns_per_packet_to(Depth::Parse)?;
    let decode = ns_per_packet_to(Depth::Decode)?;
    let jitter = ns_per_packet_to(Depth::Jitter)?;
    let full = ns_per_packet_to(Depth::Full)?;
    let breakdown = Breakdown {
        parse_ns: parse,
        decode_ns: (decode - parse).max(0.0),
        jitter_ns: (jitter - decode).max(0.0),
        resample_ns: (full - jitter).max(0.0),
    };

    Ok(PlainResult {
        packets_per_sec: packets as f64 / cpu_seconds,
        min_packets_per_sec: rates.iter().copied().fold(f64::INFINITY, f64::min),
        max_packets_per_sec: rates.iter().copied().fold(0.0, f64::max),
        ns_per_packet: cpu_seconds * 1e9 / packets as f64,
        rounds: rates.len(),
        packets,
        dropped,
        cpu_seconds,
        wall_seconds,
        breakdown,
    })
}

#[derive(Debug)]
struct VadResult {
    legs_per_core: f64,
    min_legs_per_core: f64,
    cpu_ms_per_audio_second: f64,
    rounds: usize,
    audio_seconds: f64,
    audio_seconds_per_leg: f64,
    cpu_seconds: f64,
    segments: u64,
    finals: u64,
    mean_final_ms: f64,
    in_speech_at_end: usize,
    dropped: u64,
    /// Resident memory per leg once created.
    bytes_per_leg_idle: u64,
    /// The most resident memory per leg while they ran.
    bytes_per_leg_peak: u64,
}

/// CPU per second of leg audio with the full pipeline, and the memory [`VAD_LEGS`] legs take.
fn bench_vad(
    speech: &Speech,
    settings: &Settings,
    model: &SileroModel,
    clock: &ThreadCpu,
    budget: Duration,
) -> anyhow::Result<VadResult> {
    let mut sources: Vec<LegSource> = (0..VAD_LEGS).map(|leg| LegSource::new(leg, speech)).collect();
    let mut round = Round::default();
    // The first round's datagram buffers are allocated before the baseline.
    round.build(&mut sources, VAD_ROUND_PACKETS, speech)?;
    let before = memory()?.rss_bytes;
    let mut legs = (0..VAD_LEGS)
        .map(|_| {
            let pipeline = LegPipeline::new(model, CODEC_RATE_HZ, settings.endpoint.clone(), 0)?;
            Leg::new(settings, Pipeline { pipeline, finals: 0, final_ms: 0 })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let created = memory()?.rss_bytes;
    let mut highest = created;

    let (mut frames, mut segments, mut dropped, mut cpu_seconds) = (0, 0, 0, 0.0);
    let mut rates = Vec::new();
    let mut first = true;
    while rates.is_empty() || cpu_seconds < budget.as_secs_f64() {
        if !first {
            round.build(&mut sources, VAD_ROUND_PACKETS, speech)?;
        }
        first = false;
        let mut counts = Counts::default();
        let stopwatch = Stopwatch::start(clock)?;
        receive_round(&mut legs, &round, &settings.payloads, Depth::Full, &mut counts)?;
        let (cpu, _) = stopwatch.stop()?;
        highest = highest.max(memory()?.rss_bytes);
        frames += counts.frames;
        segments += counts.outputs;
        dropped += counts.dropped;
        cpu_seconds += cpu;
        // Each frame is 20 ms of one leg's audio.
        rates.push(counts.frames as f64 * 0.020 / cpu.max(1e-9));
    }
    let finals: u64 = legs.iter().map(|leg| leg.sink.finals).sum();
    let final_ms: u64 = legs.iter().map(|leg| leg.sink.final_ms).sum();
    let in_speech = legs.iter().filter(|leg| leg.sink.pipeline.in_speech()).count();
    drop(legs);
    let audio_seconds = frames as f64 * 0.020;
    Ok(VadResult {
        legs_per_core: audio_seconds / cpu_seconds,
        min_legs_per_core: rates.iter().copied().fold(f64::INFINITY, f64::min),
        cpu_ms_per_audio_second: cpu_seconds * 1e3 / audio_seconds,
        rounds: rates.len(),
        audio_seconds,
        audio_seconds_per_leg: audio_seconds / VAD_LEGS as f64,
        cpu_seconds,
        segments,
        finals,
        mean_final_ms: final_ms as f64 / finals.max(1) as f64,
        in_speech_at_end: in_speech,
        dropped,
        bytes_per_leg_idle: created.saturating_sub(before) / VAD_LEGS as u64,
        bytes_per_leg_peak: highest.saturating_sub(before) / VAD_LEGS as u64,
    })
}

#[derive(Debug)]
struct WindowResult {
    ms_per_window: f64,
}

/// The Silero model alone: CPU per 32 ms window of real speech.
fn bench_vad_window(
    speech: &Speech,
    model: &SileroModel,
    clock: &ThreadCpu,
    budget: Duration,
) -> anyhow::Result<WindowResult> {
    let mut detector = SileroVad::new(model);
    let windows: Vec<&[f32]> = speech.samples_16k.chunks_exact(vad::WINDOW_SAMPLES).collect();
    if windows.is_empty() {
        bail!("the speech is shorter than one vad window");
    }
    let mut scored = 0u64;
    let stopwatch = Stopwatch::start(clock)?;
    let mut cpu = 0.0;
    while scored == 0 || cpu < budget.as_secs_f64() {
        for window in windows.iter().cycle().skip(scored as usize % windows.len()).take(50) {
            black_box(detector.process_window(window)?);
        }
        scored += 50;
        cpu = stopwatch.stop()?.0;
    }
    Ok(WindowResult { ms_per_window: cpu * 1e3 / scored as f64 })
}

/// The calling thread's CPU time, read from procfs so no `unsafe` is needed.
#[derive(Debug)]
struct ThreadCpu {
    source: &'static str,
    path: PathBuf,
}

impl ThreadCpu {
    fn detect() -> anyhow::Result<Self> {
        // schedstat has nanoseconds; stat only clock ticks (10 ms), still fine over seconds.
        for (source, path) in [("schedstat", "/proc/thread-self/schedstat"), ("stat", "/proc/thread-self/stat")] {
            let clock = Self { source, path: PathBuf::from(path) };
            if clock.now().is_ok() {
                return Ok(clock);
            }
        }
        bail!("cannot read the thread's cpu time from /proc/thread-self (schedstat or stat)")
    }

    fn now(&self) -> anyhow::Result<Duration> {
        let text = std::fs::read_to_string(&self.path).with_context(|| format!("read {}", self.path.display()))?;
        let parsed = if self.source == "schedstat" {
            // "<ns on cpu> <ns waiting> <timeslices>"
            text.split_whitespace().next().and_then(|ns| ns.parse().ok()).map(Duration::from_nanos)
        } else {
            // utime and stime are fields 14 and 15, counted after the ")" that ends the name;
            // USER_HZ is 100 on every Linux ABI.
            text.rsplit_once(')').and_then(|(_, rest)| {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
                Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
            })
        };
        parsed.with_context(|| format!("unexpected contents of {}: {text:?}", self.path.display()))
    }
}

#[derive(Debug)]
pub(super) struct Memory {
    pub(super) rss_bytes: u64,
    pub(super) peak_rss_bytes: u64,
}

/// Resident and peak resident memory of this process, from `/proc/self/status`.
pub(super) fn memory() -> anyhow::Result<Memory> {
    memory_of("/proc/self/status")
}

/// Resident and peak resident memory from a `/proc/<pid>/status` file.
pub(super) fn memory_of(path: &str) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .with_context(|| format!("no {name} in {path}"))?;
        let kib: u64 =
            line.trim().trim_end_matches("kB").trim().parse().with_context(|| format!("parse {name}{line}"))?;
        Ok(kib * 1024)
    };
    Ok(Memory { rss_bytes: field("VmRSS:")?, peak_rss_bytes: field("VmHWM:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impairments_are_deterministic_and_near_their_rates() {
        let speech = Speech {
            files: Vec::new(),
            payloads: vec![0xFF; SAMPLES_PER_PACKET * 10],
            packets: 10,
            samples_16k: Vec::new(),
        };
        let mut a = LegSource::new(7, &speech);
        let mut b = LegSource::new(7, &speech);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        a.arrivals(100_000, &mut first);
        b.arrivals(100_000, &mut second);
        assert_eq!(first, second);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let lost = 100_000 - sorted.len();
        let duplicates = first.len() - sorted.len();
        let out_of_order = first.windows(2).filter(|pair| pair[1] < pair[0]).count();
        assert!((300..700).contains(&lost), "{lost} lost");
        assert!((300..700).contains(&duplicates), "{duplicates} duplicates");
        assert!((700..1300).contains(&out_of_order), "{out_of_order} reordered");
    }

    #[test]
    fn rounds_interleave_legs_and_parse_back() {
        let speech = Speech {
            files: Vec::new(),
            payloads: vec![0xFF; SAMPLES_PER_PACKET * 10],
            packets: 10,
            samples_16k: Vec::new(),
        };
        let mut sources: Vec<LegSource> = (0..3).map(|leg| LegSource::new(leg, &speech)).collect();
        let mut round = Round::default();
        round.build(&mut sources, 4, &speech).expect("build a round");
        assert_eq!(round.datagrams.iter().take(3).map(|(leg, _)| *leg).collect::<Vec<_>>(), [0, 1, 2]);
        for (leg, range) in &round.datagrams {
            let packet = RtpPacket::parse(&round.bytes[range.clone()]).expect("parse a datagram back");
            assert_eq!(packet.ssrc, sources[*leg].ssrc);
            assert_eq!(packet.payload.len(), SAMPLES_PER_PACKET);
        }
    }
}
