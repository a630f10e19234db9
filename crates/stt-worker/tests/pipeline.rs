//! Accuracy on real telephone speech, end to end: Asterisk prompts sent as RTP (ulaw, 8 kHz) to
//! media ingest, voice-segmented, transcribed by the STT worker on the bus, each final
//! transcript compared with the prompt's reference text. Word error rate over the set, with the
//! normalisation documented in `dragoman_stt_worker::accuracy::normalise`, must stay under a bound set
//! from measurement. Both engines run the same real tiny.en weights (whisper.cpp's converted
//! from the CTranslate2 folder by our own converter).

use std::sync::Arc;
use std::time::Duration;

use dragoman_bus::audio::AudioFormat;
use dragoman_bus::control::{AllocateEndpoint, EndpointAllocated, LegLanguage, MediaTransport, Reply};
use dragoman_bus::events::{Event, Stage};
use dragoman_bus::{Bus, CallSubjectKind, ConsumerSpec, StreamLimits, wire};
use dragoman_media_ingest::g711;
use dragoman_media_ingest::rtp::RtpPacket;
use dragoman_runtime::config::SttEngineKind;
use dragoman_runtime::{Config, Shutdown};
use dragoman_stt_worker::accuracy::{self, normalise, word_errors};
use dragoman_test_support::{memory_bus, prompt, within};
use futures::StreamExt;

/// Every 9th English prompt (by name) of 1 to 5 s with a reference text.
fn corpus() -> Vec<(String, Vec<i16>, String)> {
    let references = accuracy::read_transcripts(std::path::Path::new(accuracy::DEFAULT_TRANSCRIPTS))
        .unwrap_or_else(|err| panic!("{err}"));
    let mut chosen = Vec::new();
    for (i, (name, text)) in references.iter().enumerate() {
        if i % 9 != 0 || name.contains('/') || text.is_empty() {
            continue;
        }
        let path = dragoman_test_support::sounds_dir().join(format!("{name}.wav"));
        if !path.exists() {
            continue;
        }
        let audio = prompt(name);
        let seconds = audio.len() as f64 / 8000.0;
        if (1.0..=5.0).contains(&seconds) {
            chosen.push((name.clone(), audio, text.clone()));
        }
    }
    chosen
}

async fn allocate(bus: &Bus) -> EndpointAllocated {
    let request = AllocateEndpoint {
        call_id: "wer".into(),
        leg: "caller".into(),
        format: AudioFormat::Ulaw,
        transport: MediaTransport::Rtp,
        language: LegLanguage { language: Some("en".into()), targets: vec![] },
        call_started_at_ms: None,
    };
    for _ in 0..200 {
        if let Ok(Reply::Ok(endpoint)) =
            bus.request_json(&bus.subjects().media_allocate(), &request, Duration::from_secs(5)).await
        {
            return endpoint;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("media ingest never answered");
}

async fn word_error_rate(engine: SttEngineKind, model_path: Option<std::path::PathBuf>) -> f64 {
    let bus = memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let mut config = Config::default();
    config.media.rtp_port_min = 44_000;
    config.media.rtp_port_max = 44_999;
    config.media.stream_timeout_ms = 30_000;
    config.stt.engine = engine;
    config.stt.model_path = model_path;
    let config = Arc::new(config);
    let shutdown = Shutdown::new(Duration::from_secs(10));
    let ingest = tokio::spawn(dragoman_media_ingest::run(config.clone(), bus.clone(), shutdown.clone()));
    let stt = tokio::spawn(dragoman_stt_worker::run(config.clone(), bus.clone(), shutdown.clone()));
    let subjects = bus.subjects().clone();
    let mut transcripts_out = bus
        .durable_subscribe(
            &ConsumerSpec::new(subjects.calls_stream(), "test")
                .filter(subjects.all_calls(CallSubjectKind::Transcripts)),
        )
        .await
        .unwrap();

    let corpus = corpus();
    assert!(corpus.len() >= 20, "{} prompts", corpus.len());
    let endpoint = allocate(&bus).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to: std::net::SocketAddr = endpoint.external_host().parse().unwrap();
    // Each prompt followed by 1.2 s of silence, so each becomes one utterance.
    let mut audio = vec![0i16; 4_000];
    for (_, prompt, _) in &corpus {
        audio.extend(prompt);
        audio.extend(std::iter::repeat_n(0i16, 9_600));
    }
    let sender = tokio::spawn(async move {
        for (i, chunk) in audio.chunks(160).enumerate() {
            let mut payload = Vec::new();
            g711::encode_ulaw(chunk, &mut payload);
            let mut packet = Vec::new();
            RtpPacket::new(0, i as u16, (i * 160) as u32, 42, &payload).write(&mut packet).unwrap();
            socket.send_to(&packet, to).await.unwrap();
            // Twice real time: the worker, not the sender, must be the bottleneck we measure.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let (mut errors, mut words) = (0, 0);
    for (index, (name, _, reference)) in corpus.iter().enumerate() {
        let delivery = within(120, transcripts_out.next()).await.unwrap().unwrap();
        let Event::TranscriptProduced(t) = wire::decode_event(&delivery.message.payload).unwrap() else {
            panic!("not a transcript")
        };
        delivery.ack().await.unwrap();
        assert_eq!(t.stage, Stage::Final);
        assert_eq!(t.sequence, index as u64, "{name}: one utterance per prompt, in order");
        let reference = normalise(reference);
        let wrong = word_errors(&reference, &normalise(&t.text));
        if wrong > 0 {
            eprintln!("{name}: {wrong} errors\n  ref: {}\n  got: {}", reference.join(" "), t.text);
        }
        errors += wrong;
        words += reference.len();
    }
    sender.await.unwrap();
    shutdown.trigger();
    within(30, ingest).await.unwrap().unwrap();
    within(30, stt).await.unwrap().unwrap();
    let wer = errors as f64 / words as f64;
    eprintln!("{engine:?}: WER {:.2}% ({errors}/{words} words, {} prompts)", wer * 100.0, corpus.len());
    wer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctranslate2_transcribes_telephone_speech_through_the_pipeline() {
    let wer = word_error_rate(SttEngineKind::Ctranslate2, None).await;
    assert!(wer < 0.12, "WER {wer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_cpp_transcribes_telephone_speech_through_the_pipeline() {
    let ct2 = dragoman_stt_worker::service::default_model_path(SttEngineKind::Ctranslate2);
    let ggml =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pipeline-tiny.en-{}.bin", std::process::id()));
    dragoman_stt_worker::ggml_convert::convert_ct2_to_ggml(&ct2, &ggml).expect("convert the CTranslate2 model to ggml");
    let wer = word_error_rate(SttEngineKind::WhisperCpp, Some(ggml.clone())).await;
    let _ = std::fs::remove_file(&ggml);
    assert!(wer < 0.12, "WER {wer}");
}
