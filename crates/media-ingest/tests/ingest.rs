//! Real sockets on loopback: Asterisk prompts sent as RTP (with reordering, loss, duplicates and
//! hostile packets), over AudioSocket and over WebSocket media come out of media ingest as
//! utterances on the bus whose times match the prompts' speech spans. Every codec, language
//! changes, call ends, shared allocation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dragoman_bus::audio::{AudioFormat, UtteranceAudio};
use dragoman_bus::control::{AllocateEndpoint, EndpointAllocated, ErrorCode, LegLanguage, MediaTransport, Reply};
use dragoman_bus::events::{CallEnded, Event, EventMeta, LanguageChanged, LanguageSource, Stage};
use dragoman_bus::{Bus, ConsumerSpec, DurableSubscription, StreamLimits, Subscription, subjects};
use dragoman_media_ingest::g711;
use dragoman_media_ingest::resample::{Resampler, f32_to_i16};
use dragoman_media_ingest::rtp::RtpPacket;
use dragoman_runtime::{Config, Shutdown};
use dragoman_test_support::{memory_bus, nats_bus, prompt, within};
use futures::StreamExt;
use tokio::net::UdpSocket;

const RATE: usize = 8_000;

/// A call leg's audio: prompts separated by digital silence, with where each prompt sits.
struct Script {
    samples: Vec<i16>,
    /// (start_ms, end_ms) of each prompt on the leg's timeline.
    spans: Vec<(u64, u64)>,
}

fn script(parts: &[(&str, u64)], tail_ms: u64) -> Script {
    let mut samples = Vec::new();
    let mut spans = Vec::new();
    for (name, silence_before_ms) in parts {
        samples.extend(std::iter::repeat_n(0i16, *silence_before_ms as usize * RATE / 1000));
        let start = samples.len() as u64 * 1000 / RATE as u64;
        samples.extend(prompt(name));
        spans.push((start, samples.len() as u64 * 1000 / RATE as u64));
    }
    samples.extend(std::iter::repeat_n(0i16, tail_ms as usize * RATE / 1000));
    Script { samples, spans }
}

struct Harness {
    bus: Bus,
    shutdown: Shutdown,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    finals: DurableSubscription,
    partials: Subscription,
}

fn config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.media.rtp_port_min = 42_000;
    config.media.rtp_port_max = 42_999;
    config.media.stream_timeout_ms = 3_000;
    config.media.start_timeout_ms = 10_000;
    config.media.dynamic_payload_types = vec!["96=slin16".into()];
    config.media.audiosocket_listen = "127.0.0.1:0".into();
    config.media.websocket_listen = "127.0.0.1:0".into();
    tweak(&mut config);
    config
}

async fn start(bus: Bus, config: Config) -> Harness {
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let finals =
        bus.durable_subscribe(&ConsumerSpec::new(bus.subjects().stt_stream(), subjects::STT_DURABLE)).await.unwrap();
    let partials = bus.subscribe(&bus.subjects().stt_partial()).await.unwrap();
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let service = tokio::spawn(dragoman_media_ingest::run(Arc::new(config), bus.clone(), shutdown.clone()));
    Harness { bus, shutdown, service, finals, partials }
}

impl Harness {
    async fn allocate(&self, call_id: &str, leg: &str, format: AudioFormat) -> Result<EndpointAllocated, ErrorCode> {
        self.allocate_on(call_id, leg, format, MediaTransport::Rtp).await
    }

    async fn allocate_on(
        &self,
        call_id: &str,
        leg: &str,
        format: AudioFormat,
        transport: MediaTransport,
    ) -> Result<EndpointAllocated, ErrorCode> {
        let request = AllocateEndpoint {
            call_id: call_id.into(),
            leg: leg.into(),
            format,
            transport,
            language: LegLanguage { language: Some("en".into()), targets: vec!["es".into(), "fr".into()] },
            call_started_at_ms: Some(dragoman_media_ingest::leg::unix_ms()),
        };
        // The service may still be loading the VAD model: retry while nobody answers.
        for _ in 0..100 {
            match self.bus.request_json(&self.bus.subjects().media_allocate(), &request, Duration::from_secs(5)).await {
                Ok(Reply::Ok(endpoint)) => return Ok(endpoint),
                Ok(Reply::Error(err)) => return Err(err.code),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("media ingest never answered allocation requests");
    }

    async fn next_final(&mut self) -> UtteranceAudio {
        let delivery = within(20, self.finals.next()).await.expect("consumer open").expect("delivery");
        let utterance =
            UtteranceAudio::from_parts(&delivery.message.headers, delivery.message.payload.clone()).unwrap();
        delivery.ack().await.unwrap();
        utterance
    }

    async fn stop(self) {
        self.shutdown.trigger();
        within(10, self.service).await.unwrap().unwrap();
        for name in [self.bus.subjects().calls_stream(), self.bus.subjects().stt_stream()] {
            let _ = self.bus.delete_stream(&name).await;
        }
    }
}

/// How the sender encodes audio.
#[derive(Clone, Copy)]
enum Wire {
    Ulaw,
    Alaw,
    /// slin16, big-endian, with this payload type.
    Slin16(u8),
}

fn packets(audio: &[i16], wire: Wire, ssrc: u32) -> Vec<Vec<u8>> {
    let (payload_type, samples, per_packet) = match wire {
        Wire::Ulaw => (0, audio.to_vec(), 160),
        Wire::Alaw => (8, audio.to_vec(), 160),
        Wire::Slin16(pt) => {
            let mut resampler = Resampler::new(8_000, 16_000).unwrap();
            let mut up = Vec::new();
            resampler.process_i16(audio, &mut up);
            resampler.flush(&mut up);
            (pt, up.into_iter().map(f32_to_i16).collect(), 320)
        }
    };
    // Start near the top of both counters so the stream wraps around.
    let mut sequence: u16 = 65_500;
    let mut timestamp: u32 = u32::MAX - 20 * per_packet as u32;
    let mut out = Vec::new();
    for chunk in samples.chunks(per_packet) {
        let mut payload = Vec::new();
        match wire {
            Wire::Ulaw => g711::encode_ulaw(chunk, &mut payload),
            Wire::Alaw => g711::encode_alaw(chunk, &mut payload),
            Wire::Slin16(_) => g711::encode_slin_be(chunk, &mut payload),
        }
        let mut bytes = Vec::new();
        RtpPacket::new(payload_type, sequence, timestamp, ssrc, &payload).write(&mut bytes).unwrap();
        out.push(bytes);
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(per_packet as u32);
    }
    out
}

/// Reorders, duplicates and drops packets deterministically, as a bad network would.
fn impair(packets: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (i, packet) in packets.into_iter().enumerate() {
        if i % 53 == 7 {
            continue; // lost
        }
        if i % 29 == 3 {
            out.push(packet.clone()); // duplicated
        }
        if i % 11 == 5 && !out.is_empty() {
            let previous = out.len() - 1;
            out.insert(previous, packet); // arrives before its predecessor
        } else {
            out.push(packet);
        }
    }
    out
}

async fn send(socket: &UdpSocket, to: SocketAddr, packets: &[Vec<u8>]) {
    for (i, packet) in packets.iter().enumerate() {
        socket.send_to(packet, to).await.unwrap();
        // Faster than real time (timing comes from RTP timestamps), but paced so loopback
        // buffers never overflow.
        if i % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn assert_matches_span(utterance: &UtteranceAudio, span: (u64, u64)) {
    let (start, end) = (utterance.meta.start_ms, utterance.meta.end_ms);
    // Pre-roll (300 ms) before the onset; the prompts themselves start and end with some quiet.
    assert!(start + 450 >= span.0 && start <= span.0 + 400, "start {start} vs prompt {span:?}");
    assert!(end + 450 >= span.1 && end <= span.1 + 400, "end {end} vs prompt {span:?}");
    let audio_ms = utterance.meta.format.duration_ms(utterance.audio.len());
    assert!(audio_ms.abs_diff(end - start) <= 20, "audio {audio_ms} ms for {start}..{end}");
}

async fn codec_case(bus: Bus, wire: Wire, format: AudioFormat) {
    let mut h = start(bus, config(|_| {})).await;
    let call_id = format!("call-{}", uuid::Uuid::new_v4().simple());
    let endpoint = h.allocate(&call_id, "caller", format).await.unwrap();
    assert_eq!(endpoint.host, "127.0.0.1");
    let to: SocketAddr = endpoint.external_host().parse().unwrap();
    let leg = script(&[("hello-world", 800), ("all-circuits-busy-now", 1_200)], 1_500);
    let stream = impair(packets(&leg.samples, wire, 0x1234_5678));

    let asterisk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let intruder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (first, rest) = stream.split_at(10);
    send(&asterisk, to, first).await;
    // Hostile and broken input mid-call: loud audio from another address, garbage, truncated
    // headers, an unknown payload type and an oversized datagram from the locked source.
    let loud: Vec<i16> = (0..160).map(|i| if i % 2 == 0 { 20_000 } else { -20_000 }).collect();
    for packet in packets(&loud.repeat(100), Wire::Ulaw, 0x1234_5678) {
        intruder.send_to(&packet, to).await.unwrap();
    }
    let mut bad_pt = Vec::new();
    RtpPacket::new(99, 1, 1, 0x1234_5678, &[0u8; 160]).write(&mut bad_pt).unwrap();
    for junk in [vec![0xffu8; 40], vec![0x80, 0x00, 0x01], bad_pt, vec![0x80u8; 2_000], Vec::new()] {
        asterisk.send_to(&junk, to).await.unwrap();
    }
    send(&asterisk, to, rest).await;

    for (i, span) in leg.spans.iter().enumerate() {
        let utterance = h.next_final().await;
        let m = &utterance.meta;
        assert_eq!((m.call_id.as_str(), m.leg.as_str(), m.sequence), (call_id.as_str(), "caller", i as u64));
        assert_eq!(m.stage, Stage::Final);
        assert_eq!(m.format, AudioFormat::Pcm16le);
        assert_eq!(m.language.as_deref(), Some("en"));
        assert_eq!(m.targets, ["es", "fr"]);
        eprintln!("utterance {i}: {}..{} ms, prompt {span:?}", m.start_ms, m.end_ms);
        assert_matches_span(&utterance, *span);
    }
    // Partials came while the longer prompt was spoken, each for an utterance in progress.
    let mut partials = 0;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(200), h.partials.next()).await {
        let partial = UtteranceAudio::from_parts(&message.headers, message.payload).unwrap();
        assert_eq!(partial.meta.stage, Stage::Partial);
        assert!(partial.meta.end_ms > partial.meta.start_ms);
        partials += 1;
    }
    assert!(partials >= 1, "partials published during speech");
    // Nothing else: the intruder's loud audio never became an utterance.
    assert!(tokio::time::timeout(Duration::from_millis(1_500), h.finals.next()).await.is_err(), "no extra finals");
    h.stop().await;
}

#[tokio::test]
async fn ulaw_over_nats() {
    codec_case(nats_bus().await, Wire::Ulaw, AudioFormat::Ulaw).await;
}

#[tokio::test]
async fn ulaw_in_process() {
    codec_case(memory_bus(), Wire::Ulaw, AudioFormat::Ulaw).await;
}

#[tokio::test]
async fn alaw() {
    codec_case(memory_bus(), Wire::Alaw, AudioFormat::Alaw).await;
}

#[tokio::test]
async fn slin16_big_endian() {
    codec_case(memory_bus(), Wire::Slin16(118), AudioFormat::Slin16).await;
}

#[tokio::test]
async fn slin16_on_a_configured_dynamic_payload_type() {
    codec_case(memory_bus(), Wire::Slin16(96), AudioFormat::Slin16).await;
}

#[tokio::test]
async fn language_changes_apply_to_the_next_utterance() {
    let mut h = start(memory_bus(), config(|_| {})).await;
    let call_id = "call-lang";
    let to: SocketAddr =
        h.allocate(call_id, "callee", AudioFormat::Ulaw).await.unwrap().external_host().parse().unwrap();
    let asterisk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let first = script(&[("hello-world", 500)], 1_000);
    let all = packets(&[first.samples.clone(), script(&[("hello-world", 0)], 1_000).samples].concat(), Wire::Ulaw, 7);
    let split = first.samples.len() / 160;
    send(&asterisk, to, &all[..split]).await;
    assert_eq!(h.next_final().await.meta.language.as_deref(), Some("en"));
    h.bus
        .publish_event(&Event::LanguageChanged(LanguageChanged {
            meta: EventMeta::now(call_id),
            leg: "callee".into(),
            language: "es".into(),
            targets: vec!["en".into()],
            source: LanguageSource::Dtmf,
        }))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&asterisk, to, &all[split..]).await;
    let second = h.next_final().await;
    assert_eq!((second.meta.language.as_deref(), second.meta.targets.as_slice()), (Some("es"), &["en".to_owned()][..]));
    assert_eq!(second.meta.sequence, 1);
    h.stop().await;
}

#[tokio::test]
async fn a_call_ending_mid_sentence_still_yields_its_final() {
    let mut h = start(memory_bus(), config(|c| c.media.stream_timeout_ms = 60_000)).await;
    let call_id = "call-ends";
    let to: SocketAddr =
        h.allocate(call_id, "caller", AudioFormat::Ulaw).await.unwrap().external_host().parse().unwrap();
    let asterisk = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let leg = script(&[("all-circuits-busy-now", 500)], 0);
    let all = packets(&leg.samples, Wire::Ulaw, 9);
    // Hang up two thirds of the way into the prompt.
    send(&asterisk, to, &all[..all.len() * 2 / 3]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.bus
        .publish_event(&Event::CallEnded(CallEnded {
            meta: EventMeta::now(call_id),
            reason: "hangup".into(),
            cause: Some(16),
            duration_ms: 2_000,
        }))
        .await
        .unwrap();
    let last = h.next_final().await;
    assert!(last.meta.end_ms < leg.spans[0].1, "cut at the hang-up, not at the prompt's end");
    assert!(last.meta.end_ms > leg.spans[0].0 + 500);
    // The leg is gone: the same key gets a fresh endpoint, and the old port is free again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.allocate(call_id, "caller", AudioFormat::Ulaw).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn instances_sharing_the_allocation_queue_never_hand_out_a_port_twice() {
    let bus = memory_bus();
    let narrow = |c: &mut Config| {
        c.media.rtp_port_min = 43_100;
        c.media.rtp_port_max = 43_109;
    };
    let a = start(bus.clone(), config(narrow)).await;
    let b = start(bus.clone(), config(narrow)).await;
    let mut ports = std::collections::BTreeSet::new();
    for i in 0..10 {
        let endpoint = a.allocate(&format!("c{i}"), "caller", AudioFormat::Ulaw).await.unwrap();
        assert!(ports.insert(endpoint.port), "port {} handed out twice", endpoint.port);
    }
    assert_eq!(a.allocate("c10", "caller", AudioFormat::Ulaw).await.unwrap_err(), ErrorCode::Exhausted);
    a.stop().await;
    b.shutdown.trigger();
    within(10, b.service).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_repeated_allocation_gets_the_same_endpoint() {
    let h = start(memory_bus(), config(|_| {})).await;
    let first = h.allocate("again", "caller", AudioFormat::Ulaw).await.unwrap();
    let second = h.allocate("again", "caller", AudioFormat::Ulaw).await.unwrap();
    assert_eq!(first, second, "a retrying gateway must not get a second port");
    let other_leg = h.allocate("again", "callee", AudioFormat::Ulaw).await.unwrap();
    assert_ne!(first.port, other_leg.port);
    h.stop().await;
}

#[tokio::test]
async fn bad_allocation_requests_get_clear_errors() {
    let h = start(memory_bus(), config(|_| {})).await;
    assert_eq!(h.allocate("bad.call", "caller", AudioFormat::Ulaw).await.unwrap_err(), ErrorCode::BadRequest);
    assert_eq!(h.allocate("ok", "", AudioFormat::Ulaw).await.unwrap_err(), ErrorCode::BadRequest);
    h.stop().await;
}

#[tokio::test]
async fn a_leg_that_never_sends_is_freed() {
    let h = start(
        memory_bus(),
        config(|c| {
            c.media.start_timeout_ms = 300;
            c.media.rtp_port_min = 43_200;
            c.media.rtp_port_max = 43_200;
        }),
    )
    .await;
    h.allocate("idle", "caller", AudioFormat::Ulaw).await.unwrap();
    assert_eq!(h.allocate("other", "caller", AudioFormat::Ulaw).await.unwrap_err(), ErrorCode::Exhausted);
    tokio::time::sleep(Duration::from_millis(800)).await;
    h.allocate("other", "caller", AudioFormat::Ulaw).await.expect("the idle leg's port was freed");
    h.stop().await;
}

async fn expect_script(h: &mut Harness, call_id: &str, leg: &Script) {
    for (i, span) in leg.spans.iter().enumerate() {
        let utterance = h.next_final().await;
        assert_eq!((utterance.meta.call_id.as_str(), utterance.meta.sequence), (call_id, i as u64));
        assert_matches_span(&utterance, *span);
    }
}

#[tokio::test]
async fn audiosocket_feeds_the_same_pipeline() {
    use dragoman_media_ingest::audiosocket::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut h = start(memory_bus(), config(|_| {})).await;
    assert_eq!(
        h.allocate_on("as-call", "caller", AudioFormat::Ulaw, MediaTransport::Audiosocket).await.unwrap_err(),
        ErrorCode::BadRequest,
        "audiosocket carries slin only"
    );
    let endpoint = h.allocate_on("as-call", "caller", AudioFormat::Slin, MediaTransport::Audiosocket).await.unwrap();
    assert_eq!(endpoint.transport, MediaTransport::Audiosocket);
    let connection_id: uuid::Uuid = endpoint.connection_id.as_deref().unwrap().parse().unwrap();
    let address = endpoint.external_host();

    // A stranger naming no allocated leg is closed at once.
    let mut stranger = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut hello = bytes::BytesMut::new();
    Message::Uuid(uuid::Uuid::new_v4()).encode(&mut hello).unwrap();
    stranger.write_all(&hello).await.unwrap();
    let mut rest = Vec::new();
    within(5, stranger.read_to_end(&mut rest)).await.unwrap();

    let leg = script(&[("hello-world", 800), ("all-circuits-busy-now", 1_200)], 1_500);
    let mut asterisk = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut out = bytes::BytesMut::new();
    Message::Uuid(connection_id).encode(&mut out).unwrap();
    asterisk.write_all(&out).await.unwrap();
    for (i, chunk) in leg.samples.chunks(160).enumerate() {
        let mut frame = bytes::BytesMut::new();
        Message::audio_from_samples(chunk).encode(&mut frame).unwrap();
        // Split writes: framing must survive arbitrary TCP segmentation.
        let (a, b) = frame.split_at(frame.len() / 3);
        asterisk.write_all(a).await.unwrap();
        asterisk.write_all(b).await.unwrap();
        if i % 8 == 7 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    expect_script(&mut h, "as-call", &leg).await;
    let mut bye = bytes::BytesMut::new();
    Message::Hangup.encode(&mut bye).unwrap();
    asterisk.write_all(&bye).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn websocket_media_feeds_the_same_pipeline() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message as Ws;

    let mut h = start(memory_bus(), config(|_| {})).await;
    let endpoint = h.allocate_on("ws-call", "callee", AudioFormat::Slin16, MediaTransport::Websocket).await.unwrap();
    let base = format!("ws://{}/media", endpoint.external_host());
    let unknown = tokio_tungstenite::connect_async(format!("{base}/{}", uuid::Uuid::new_v4())).await;
    assert!(unknown.is_err(), "an unknown connection id is refused");

    let url = format!("{base}/{}", endpoint.connection_id.as_deref().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Ws::text("MEDIA_START connection_id:x channel:y format:slin16 optimal_frame_size:640")).await.unwrap();
    let leg = script(&[("hello-world", 800), ("all-circuits-busy-now", 1_200)], 1_500);
    let mut resampler = Resampler::new(8_000, 16_000).unwrap();
    let mut up = Vec::new();
    resampler.process_i16(&leg.samples, &mut up);
    resampler.flush(&mut up);
    // Arbitrary message sizes: chan_websocket does not frame media for us.
    for (i, chunk) in up.chunks(1_000).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|&s| f32_to_i16(s).to_le_bytes()).collect();
        socket.send(Ws::binary(bytes)).await.unwrap();
        if i % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    expect_script(&mut h, "ws-call", &leg).await;
    socket.close(None).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn streamed_legs_nobody_connects_to_are_freed() {
    let h = start(memory_bus(), config(|c| c.media.start_timeout_ms = 300)).await;
    let first = h.allocate_on("late", "caller", AudioFormat::Slin, MediaTransport::Audiosocket).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let second = h.allocate_on("late", "caller", AudioFormat::Slin, MediaTransport::Audiosocket).await.unwrap();
    assert_ne!(first.connection_id, second.connection_id, "the first registration expired and was freed");
    h.stop().await;
}
