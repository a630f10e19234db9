//! The partial-transcript path end to end on the bus: a partial request for real speech comes
//! back as a `TranscriptProduced` partial on the call's partials subject; a stale partial
//! (older than `stt.partial_max_age_ms` when it arrives) is dropped and produces nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dragoman_bus::audio::{AudioFormat, UtteranceAudio, UtteranceMeta};
use dragoman_bus::events::{Event, Stage};
use dragoman_bus::{CallSubjectKind, StreamLimits, wire};
use dragoman_media_ingest::resample::Resampler;
use dragoman_runtime::{Config, Shutdown};
use dragoman_test_support::{memory_bus, prompt, within};
use futures::StreamExt;
use uuid::Uuid;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A prompt as 16 kHz little-endian PCM, what media ingest publishes.
fn pcm16le(name: &str) -> Bytes {
    let mut resampler = Resampler::new(8_000, 16_000).expect("8 -> 16 kHz");
    let mut samples = Vec::new();
    resampler.process_i16(&prompt(name), &mut samples);
    resampler.flush(&mut samples);
    samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()).collect::<Vec<u8>>().into()
}

fn partial(call_id: &str, audio: Bytes, sent_at_ms: u64) -> UtteranceAudio {
    let duration_ms = audio.len() as u64 / 32;
    UtteranceAudio {
        meta: UtteranceMeta {
            call_id: call_id.into(),
            leg: "caller".into(),
            utterance_id: Uuid::new_v4(),
            sequence: 0,
            stage: Stage::Partial,
            format: AudioFormat::Pcm16le,
            start_ms: 1_000,
            end_ms: 1_000 + duration_ms,
            language: Some("en-US".into()),
            targets: vec![],
            sent_at_ms,
            prompt: None,
        },
        audio,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_partial_is_transcribed_and_a_stale_one_dropped() {
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let mut config = Config::default();
    config.stt.partial_max_age_ms = 1_500;
    let config = Arc::new(config);
    let shutdown = Shutdown::new(Duration::from_secs(10));
    let stt = tokio::spawn(dragoman_stt_worker::run(config.clone(), bus.clone(), shutdown.clone()));
    let subjects = bus.subjects().clone();
    let mut partials = bus.subscribe(&subjects.call("partial-test", CallSubjectKind::Partials).unwrap()).await.unwrap();
    bus.ping().await.unwrap();

    // Core subjects keep nothing for late subscribers (a partial is loss-tolerant by design), so
    // until the worker has loaded its model and subscribed, requests go nowhere: send a stale
    // and a fresh partial every two seconds until a transcript comes back.
    let audio = pcm16le("hello-world");
    let (mut stale_ids, mut fresh_ids) = (Vec::new(), Vec::new());
    let mut first = None;
    for _ in 0..30 {
        let stale = partial("partial-test", audio.clone(), now_ms() - 10_000);
        let fresh = partial("partial-test", audio.clone(), now_ms());
        stale_ids.push(stale.meta.utterance_id);
        fresh_ids.push(fresh.meta.utterance_id);
        for utterance in [&stale, &fresh] {
            bus.publish(&subjects.stt_partial(), utterance.to_headers(), utterance.audio.clone()).await.unwrap();
        }
        if let Ok(message) = tokio::time::timeout(Duration::from_secs(2), partials.next()).await {
            first = message;
            break;
        }
    }
    let message = first.expect("a partial transcript within a minute");
    let Event::TranscriptProduced(transcript) = wire::decode_event(&message.payload).unwrap() else {
        panic!("not a transcript")
    };
    assert_eq!(transcript.stage, Stage::Partial);
    assert!(fresh_ids.contains(&transcript.utterance_id), "not one of the fresh partials");
    assert_eq!(transcript.language, "en");
    let words = dragoman_stt_worker::accuracy::normalise(&transcript.text);
    assert_eq!(words, ["hello", "world"], "{:?}", transcript.text);

    // Whatever else arrives answers a fresh request: every stale one was dropped.
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(3), partials.next()).await {
        let Event::TranscriptProduced(transcript) = wire::decode_event(&message.payload).unwrap() else {
            panic!("not a transcript")
        };
        assert!(!stale_ids.contains(&transcript.utterance_id), "a stale partial was transcribed");
        assert!(fresh_ids.contains(&transcript.utterance_id));
    }

    shutdown.trigger();
    within(30, stt).await.unwrap().unwrap();
}
